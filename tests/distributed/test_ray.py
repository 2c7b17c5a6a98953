"""Distributed execution on a real Ray runtime (``ray.init(num_cpus=2, include_dashboard=False)``, shared by
the session): all 22 TPC-H queries (SF 0.01) over PostgreSQL, MariaDB and Parquet return the same rows as
DataFusion over the same tables; EXPLAIN ANALYZE shows the tasks and nodes; a cancelled query leaves no
statement running in PostgreSQL (``pg_stat_activity``). ~40-70 s on this machine, Ray's start included."""

from __future__ import annotations

import pytest

from gateway.errors import QueryCancelledError
from gateway.execution.engine import QueryEngine
from tests import tpch
from tests.distributed.conftest import distributed_settings, run_and_cancel
from tests.distributed.test_local_executor import SLOW_SQL
from tests.tpch import assert_same_rows

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def on_ray(tpch_world, ray_runtime):
    engine = QueryEngine(distributed_settings(tpch_world["settings"]))
    yield engine
    engine.close()  # the runtime belongs to ray_runtime: close() leaves it running


@pytest.mark.parametrize("number", range(1, 23))
def test_tpch_on_ray_equals_local(tpch_world, on_ray, number):
    sql = tpch.qualify_tables(tpch_world["queries"][number], tpch_world["names"])
    result = on_ray.execute(sql)
    got = result.reader.read_all()
    assert_same_rows(got, tpch_world["reference"].sql(tpch_world["queries"][number]).to_arrow_table())
    if not result.stats.pushed_whole:
        assert all(f.engine == "ray" and f.tasks >= 1 for f in result.stats.fragments)


def test_explain_analyze_on_ray(tpch_world, on_ray, ray_runtime):
    sql = tpch.qualify_tables(tpch_world["queries"][3], tpch_world["names"])
    text = on_ray.explain(sql, analyze=True)
    assert "engine: ray, 4 tasks on 1 node(s), 0 retried," in text
    assert on_ray.metrics.registry.get_sample_value("gateway_distributed_shuffled_bytes_total") > 0


def test_cancel_on_ray_cancels_the_tasks_and_their_statements(tpch_world, on_ray):
    errors = run_and_cancel(on_ray, SLOW_SQL.format(nation=tpch_world["names"]["nation"]), tpch_world["pg_uri"],
                            timeout_s=60)
    assert errors and isinstance(errors[0], QueryCancelledError)


@pytest.fixture(scope="module")
def join_stage_on_ray(tpch_world, ray_runtime):
    """An engine whose every inner join of two split fragments runs as a hash join stage of 2 Ray tasks."""
    engine = QueryEngine(distributed_settings(tpch_world["settings"], join_min_rows=0, join_partitions=2))
    yield engine
    engine.close()


@pytest.mark.parametrize("number", (3, 9, 12))  # orders x lineitem (PostgreSQL x Parquet); supplier x lineitem
def test_join_stage_on_ray_equals_local(tpch_world, join_stage_on_ray, number):
    sql = tpch.qualify_tables(tpch_world["queries"][number], tpch_world["names"])
    result = join_stage_on_ray.execute(sql)
    assert_same_rows(result.reader.read_all(),
                     tpch_world["reference"].sql(tpch_world["queries"][number]).to_arrow_table())
    stages = [f.join_stage for f in result.stats.fragments if f.join_stage and "hash join stage" in f.join_stage]
    assert len(stages) == 1 and "hash join stage: 2 tasks on 1 node(s), 2 partitions on" in stages[0], stages


def test_explain_analyze_shows_the_join_stage_on_ray(tpch_world, join_stage_on_ray):
    sql = tpch.qualify_tables(tpch_world["queries"][12], tpch_world["names"])
    before = join_stage_on_ray.metrics.registry.get_sample_value("gateway_distributed_shuffled_bytes_total") or 0
    text = join_stage_on_ray.explain(sql, analyze=True)
    assert "bytes hash-partitioned into the object store; hash join stage: 2 tasks on 1 node(s)" in text, text
    assert "bytes shuffled" in text and "moved to the coordinator" in text
    after = join_stage_on_ray.metrics.registry.get_sample_value("gateway_distributed_shuffled_bytes_total")
    assert after > before
