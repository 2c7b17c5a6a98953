"""TPC-H local vs on Ray: the same QueryEngine in this process, once with ``[execution] engine = "local"``, once
on a one-node Ray runtime, once on a two-node Ray cluster on loopback addresses (``ray.cluster_utils.Cluster``,
127.0.0.2 and 127.0.0.3). Per query: median seconds, Ray tasks, bytes moved to the coordinator through the object
store, and the peak resident memory of the coordinator and of the Ray workers (``VmHWM``).

    python bench/ray_bench.py [--scale-factor 1] [--placement split] [--queries 1,3,5,9,18] [--repeat 1]
                              [--modes local,ray1,ray2] [--max-splits 8] [--join-min-rows N]
                              [--out bench/results/ray-sf1.json]

The data is the TPC-H benchmark's (``bench/tpch_bench.py --scale-factor N`` loads it once: PostgreSQL and
MariaDB database ``gw_bench_tpch``, Parquet under /tmp/gw_bench_tpch); this script only reads it. Every query
of a Ray mode is distributed (``min_rows = 0``). On this 2-core machine the numbers say what Ray's per-task
and transfer costs are, not how a real cluster scales: see README "Scaling out".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import placements as pl  # noqa: E402
from bench.common import same_rows, write_results  # noqa: E402
from bench.tpch_bench import (  # noqa: E402
    DATABASE,
    DEFAULT_DATA,
    DEFAULT_MYSQL,
    DEFAULT_PG,
    loaded_meta,
    standard_queries,
    with_database,
)
from tests import tpch  # noqa: E402


def settings_for(args, engine: str, address: str | None = None):
    from gateway.settings import settings_from_dict

    lake = Path(args.data) / "lake"
    return settings_from_dict({
        "sources": [
            {"name": "pg", "kind": "postgresql", "uri": with_database(args.pg, args.database)},
            {"name": "maria", "kind": "mysql", "uri": with_database(args.mysql, args.database)},
            {"name": "lake", "kind": "parquet", "path": str(lake)},
        ],
        "execution": {"engine": engine, "min_rows": 0, "max_splits": args.max_splits,
                      "split_min_rows": args.split_min_rows, **({"ray_address": address} if address else {}),
                      **({"join_min_rows": args.join_min_rows} if args.join_min_rows is not None else {})},
    }, base_dir=lake)


def _descends_from_us(pid: int) -> bool:
    """Whether process ``pid`` was started (directly or not) by this one: our runtime's workers, not another
    job's on the same machine."""
    me = os.getpid()
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == me:
            return True
    return False


def worker_peak_bytes() -> int:
    """The largest peak resident set (VmHWM) of the Ray worker processes this run started, in bytes."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            if "ray::" not in (status.parent / "cmdline").read_bytes().decode(errors="replace"):
                continue
        except OSError:
            continue
        if not _descends_from_us(int(status.parent.name)):
            continue
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) * 1024)
    return peak


def run_mode(args, mode: str, sqls: dict[int, str], reference: dict) -> dict:
    """Every query ``args.repeat`` times after one warm-up, under ``mode`` (local, ray1, ray2). The first mode's
    answers go into ``reference``; a later mode's are checked against them (``check``)."""
    import ray

    from gateway.execution.engine import QueryEngine

    cluster = None
    if mode == "ray1":
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    elif mode == "ray2":
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.2",
                                                                "include_dashboard": False})
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.3")
        ray.init(address=cluster.address, log_to_driver=False)
    engine = QueryEngine(settings_for(args, "local" if mode == "local" else "ray"))
    out = {}
    try:
        for number, sql in sqls.items():
            engine.execute(sql).reader.read_all()  # warm-up: connectors, worker imports, statistics
            times, stats, answer = [], None, None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = engine.execute(sql)
                answer = result.reader.read_all()
                times.append(time.perf_counter() - t0)
                stats = result.stats
            if number in reference:
                first, want = reference[number]
                wrong = same_rows(answer, want)
                check = f"same as {first}" if wrong is None else f"DIFFERS from {first}: {wrong}"
            else:
                reference[number], check = (mode, answer), "reference"
            out[number] = {
                "seconds": round(statistics.median(times), 3),
                "tasks": sum(f.tasks for f in stats.fragments),
                "nodes": max((f.nodes for f in stats.fragments), default=0),
                "bytes_moved": sum(f.shuffled_bytes for f in stats.fragments),
                "rows_fetched": sum(f.rows for f in stats.fragments),
                "check": check,
            }
            print(mode, number, out[number], flush=True)
        out["peak_coordinator_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out["peak_worker_bytes"] = worker_peak_bytes() if mode != "local" else 0
    finally:
        engine.close()
        if mode != "local":
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--placement", default="split")
    parser.add_argument("--queries", default="1,3,5,9,18")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--modes", default="local,ray1,ray2")
    parser.add_argument("--max-splits", type=int, default=8)
    parser.add_argument("--split-min-rows", type=int, default=100_000)
    parser.add_argument("--join-min-rows", type=int, default=None,
                        help="[execution] join_min_rows: hash join stages on the workers (default: the setting's)")
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--mysql", default=DEFAULT_MYSQL)
    parser.add_argument("--database", default=DATABASE, help="the PostgreSQL and MariaDB database of the data")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    meta, why = loaded_meta(args, Path(args.data), [args.placement])
    if meta is None:
        sys.exit(f"no TPC-H data at SF {args.scale_factor:g}: {why}; run bench/tpch_bench.py "
                 f"--scale-factor {args.scale_factor:g} first")
    names = pl.qualified_names(pl.placement(args.placement), args.database)
    queries = standard_queries()
    sqls = {int(n): tpch.qualify_tables(queries[int(n)], names) for n in args.queries.split(",")}
    results = {"scale_factor": args.scale_factor, "placement": args.placement, "repeat": args.repeat,
               "modes": {}}
    reference: dict = {}
    for mode in args.modes.split(","):
        results["modes"][mode] = run_mode(args, mode, sqls, reference)
    if args.out:
        write_results(args.out, results)  # with the machine and the commit measured
    else:
        print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
