"""A two-node Ray cluster on loopback addresses (``tests/distributed/two_nodes.py``, in its own process): TPC-H
queries use both nodes and equal DataFusion's answers (also with hash join stages, whose join tasks are spread
over both nodes); a worker node killed while its task runs is survived
(the task is submitted again on the other node) and the answer is still right. ~75 s on this machine when it
is quiet (cluster start and worker imports), up to ~190 s under a load average of 15."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tests import tpch
from tests.conftest import IN_CI, MYSQL_URI, _mysql_params
from tests.distributed.conftest import distributed_settings
from tests.tpch import assert_same_rows

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
QUERIES = (3, 9, 18)
JOIN_QUERIES = (3, 12)  # also run with every join of two split fragments as a hash join stage of 2 tasks


def _read(path: Path) -> pa.Table:
    with pa.ipc.open_file(path) as reader:
        return reader.read_all()


def test_two_loopback_nodes_and_a_node_killed_mid_query(tpch_world, tmp_path):
    if importlib.util.find_spec("ray") is None:
        (pytest.fail if IN_CI else pytest.skip)("ray is not installed (pip install '.[ray]')")
    settings = distributed_settings(tpch_world["settings"], max_retries=2)
    nap_sql = (f"SELECT o.o_orderkey, s.s_nationkey FROM pg.tpch.nap_orders o "
               f"JOIN maria.{tpch_world['maria_database']}.nap_supplier s ON s.s_suppkey = o.o_custkey % 100 + 1")
    spec = {"settings": settings.model_dump(exclude={"config_dir"}, exclude_defaults=True),
            "queries": {n: tpch.qualify_tables(tpch_world["queries"][n], tpch_world["names"]) for n in QUERIES},
            "join_settings": distributed_settings(tpch_world["settings"], join_min_rows=0, join_partitions=2
                                                  ).model_dump(exclude={"config_dir"}, exclude_defaults=True),
            "join_queries": {n: tpch.qualify_tables(tpch_world["queries"][n], tpch_world["names"])
                             for n in JOIN_QUERIES},
            "nap_sql": nap_sql, "pg_uri": tpch_world["pg_uri"], "maria": _mysql_params(MYSQL_URI)}
    (tmp_path / "spec.json").write_text(json.dumps(spec, default=str))
    done = subprocess.run([sys.executable, "-m", "tests.distributed.two_nodes", str(tmp_path / "spec.json"),
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads((tmp_path / "stats.json").read_text())
    reference = tpch_world["reference"]
    for n in QUERIES:
        assert_same_rows(_read(tmp_path / f"q{n}.arrow"), reference.sql(tpch_world["queries"][n]).to_arrow_table())
    assert max(stats[str(n)]["nodes"] for n in QUERIES) == 2, stats
    for n in JOIN_QUERIES:
        assert_same_rows(_read(tmp_path / f"j{n}.arrow"), reference.sql(tpch_world["queries"][n]).to_arrow_table())
        assert "hash join stage: 2 tasks on" in stats[f"j{n}"]["join_stage"], stats
    # join tasks are spread: partition i on its own node, its inputs moved node to node by Ray
    assert any("hash join stage: 2 tasks on 2 node(s)" in stats[f"j{n}"]["join_stage"] for n in JOIN_QUERIES), stats
    want = reference.sql("SELECT o.o_orderkey, s.s_nationkey FROM orders o "
                         "JOIN supplier s ON s.s_suppkey = o.o_custkey % 100 + 1").to_arrow_table()
    assert_same_rows(_read(tmp_path / "nap.arrow"), want)
    assert stats["nap"]["retries"] >= 1, stats
