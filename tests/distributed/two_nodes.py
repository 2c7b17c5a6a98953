"""Run by test_ray_cluster.py in its own process (a driver joins one Ray cluster per process, and the session's
one-node runtime is already joined): a two-node ``ray.cluster_utils.Cluster`` on loopback addresses (127.0.0.2
head, 127.0.0.3 worker, one CPU each), TPC-H queries distributed over both nodes, and one query whose worker
node is killed while its task runs.

    python -m tests.distributed.two_nodes SPEC.json OUT_DIR

SPEC: ``{"settings": <settings dict>, "queries": {n: sql}, "join_settings": <settings dict>, "join_queries":
{n: sql}, "nap_sql": sql, "pg_uri": uri, "maria": pymysql connection parameters}``. Writes ``q<n>.arrow``,
``j<n>.arrow`` (the join queries, run with ``join_settings``: hash join stages over both nodes) and
``nap.arrow`` (the results) and ``stats.json`` (per query: nodes, tasks, retries, join stage) to OUT_DIR.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa


def _write(table: pa.Table, path: Path) -> None:
    with pa.ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)


def _busy(pg_uri: str, maria: dict) -> bool:
    """Whether both nap statements run: PostgreSQL's (pg_stat_activity) and MariaDB's (its process list)."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    with pg.connect(pg_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%nap_orders%' "
                    "AND pid <> pg_backend_pid()")
        if cur.fetchone()[0] == 0:
            return False
    conn = pymysql.connect(**maria)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%nap_supplier%' "
                        "AND ID <> CONNECTION_ID()")
            return cur.fetchone()[0] > 0
    finally:
        conn.close()


def main(spec_path: str, out: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from gateway.execution.engine import QueryEngine
    from gateway.settings import settings_from_dict

    spec = json.loads(Path(spec_path).read_text())
    out_dir = Path(out)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.2",
                                                                "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.3")
    ray.init(address=cluster.address, log_to_driver=False)
    engine = QueryEngine(settings_from_dict(spec["settings"], base_dir=Path(out)))
    stats = {}
    try:
        cluster.wait_for_nodes()
        for number, sql in spec["queries"].items():
            result = engine.execute(sql)
            _write(result.reader.read_all(), out_dir / f"q{number}.arrow")
            stats[number] = {"nodes": max(f.nodes for f in result.stats.fragments),
                             "tasks": sum(f.tasks for f in result.stats.fragments)}
        joining = QueryEngine(settings_from_dict(spec["join_settings"], base_dir=Path(out)))
        try:
            for number, sql in spec["join_queries"].items():
                result = joining.execute(sql)
                _write(result.reader.read_all(), out_dir / f"j{number}.arrow")
                stats[f"j{number}"] = {"join_stage": " ".join(f.join_stage or "" for f in result.stats.fragments)}
        finally:
            joining.close()
        box: dict = {}

        def run() -> None:
            try:
                result = engine.execute(spec["nap_sql"])
                box["table"] = result.reader.read_all()
                box["stats"] = result.stats
            except BaseException as exc:
                box["error"] = f"{type(exc).__name__}: {exc}"

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 180
        while not _busy(spec["pg_uri"], spec["maria"]):  # both tasks run: one per node (one CPU each)
            if time.monotonic() > deadline or not thread.is_alive():
                raise SystemExit("the nap query's PostgreSQL statement never started")
            time.sleep(0.1)
        cluster.remove_node(worker, allow_graceful=False)  # the worker node dies mid-query
        thread.join(240)
        if thread.is_alive():
            raise SystemExit("the query hung after its worker node died")
        if "error" in box:
            raise SystemExit(f"the query failed after its worker node died: {box['error']}")
        _write(box["table"], out_dir / "nap.arrow")
        stats["nap"] = {"retries": sum(f.retries for f in box["stats"].fragments),
                        "tasks": sum(f.tasks for f in box["stats"].fragments)}
        (out_dir / "stats.json").write_text(json.dumps(stats))
    finally:
        engine.close()
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
