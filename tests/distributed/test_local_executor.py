"""Distributed execution without Ray: the same split tasks on a ``LocalExecutor`` (threads). Splits, the
engine decision and EXPLAIN, results equal to local execution, retries, and cancellation. ~15 s (most of it
the TPC-H world's load, shared with the Ray group)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlglot import parse_one

from gateway.distributed import Distributor, LocalExecutor, TaskLost
from gateway.distributed.splits import unsplittable
from gateway.errors import ExecutionError, QueryCancelledError
from gateway.execution.engine import QueryEngine
from tests import tpch
from tests.distributed.conftest import distributed_settings, run_and_cancel
from tests.tpch import assert_same_rows

#: TPC-H queries that cover every source's splits (orders/customer: ctid; partsupp/part/supplier: key ranges;
#: lineitem: one split per file) and the residual's joins and aggregates over them
QUERIES = (1, 3, 5, 9, 10, 16, 18)
#: a query whose PostgreSQL fragment sleeps 60 s (``conftest.SLOW_VIEW``), joined with a Parquet table
SLOW_SQL = ("SELECT s.o_orderkey, n.n_name FROM pg.tpch.slow_orders s "
            "JOIN {nation} n ON n.n_nationkey = s.o_custkey % 25")


class FlakyExecutor(LocalExecutor):
    """Loses each split's first ``losses`` attempts, as a worker dying would."""

    def __init__(self, losses: int) -> None:
        super().__init__(2)
        self.losses = losses
        self.attempts: dict[tuple, int] = {}
        self._count_lock = threading.Lock()

    def run(self, task, cancel, inputs=()):
        with self._count_lock:
            key = (getattr(task, "fragment_id", task.stage), task.index)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            lost = self.attempts[key] <= self.losses
        if lost:
            raise TaskLost("WorkerCrashedError: the worker died (injected)")
        return super().run(task, cancel, inputs)

    def result(self, handle):
        exc = handle[0].exception(0) if handle[0].done() else None
        if isinstance(exc, TaskLost):
            raise exc
        return super().result(handle)


class StrandingExecutor(LocalExecutor):
    """Loses the first attempt of each PostgreSQL split while its statement keeps running in a thread of its
    own, as a dead worker node leaves it running at the source; ``stranded`` holds what each such run ended
    with and after how many seconds."""

    def __init__(self, pg_uri: str) -> None:
        super().__init__(2)
        self.pg_uri = pg_uri
        self.stranded: list[dict] = []
        self._seen: set[tuple] = set()
        self._seen_lock = threading.Lock()

    def run(self, task, cancel, inputs=()):
        key = (getattr(task, "fragment_id", task.stage), task.index)
        with self._seen_lock:
            first = getattr(task, "source", None) is not None and task.source.kind == "postgresql" \
                and key not in self._seen
            self._seen.add(key)
        if not first:
            return super().run(task, cancel, inputs)
        box = {"tag": task.tag, "started": time.monotonic()}
        self.stranded.append(box)

        def orphan() -> None:
            result = LocalExecutor.run(self, task, threading.Event(), inputs)
            box["ended"], box["seconds"] = result.error or "finished", time.monotonic() - box["started"]

        threading.Thread(target=orphan, daemon=True).start()
        deadline = time.monotonic() + 20
        while not _statement_runs(self.pg_uri, task.tag) and time.monotonic() < deadline:
            time.sleep(0.05)
        raise TaskLost("NodeDiedError: the node died (injected), its statement still running")


def _statement_runs(pg_uri: str, tag: str) -> bool:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(pg_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND strpos(query, $1) > 0 "
                    "AND pid <> pg_backend_pid()", (tag,))
        return cur.fetchone()[0] > 0


def _engine(world, executor=None, **execution) -> QueryEngine:
    settings = distributed_settings(world["settings"], **execution)
    engine = QueryEngine(settings)
    engine.distributor = Distributor(settings.execution, settings.sources, executor or LocalExecutor(2))
    return engine


@pytest.fixture(scope="module")
def engines(tpch_world):
    local = QueryEngine(tpch_world["settings"])
    distributed = _engine(tpch_world)
    yield local, distributed
    distributed.close()
    local.close()


def _sql(world, number: int) -> str:
    return tpch.qualify_tables(world["queries"][number], world["names"])


def test_unsplittable_says_which_clause():
    assert unsplittable(parse_one("SELECT a FROM t WHERE a > 1")) is None
    assert unsplittable(parse_one("SELECT a FROM t JOIN u ON t.k = u.k")) is None
    assert unsplittable(parse_one("SELECT a, COUNT(*) FROM t GROUP BY a")) == "GROUP BY"
    assert unsplittable(parse_one("SELECT a FROM t ORDER BY a LIMIT 3")) == "ORDER BY"
    assert unsplittable(parse_one("SELECT a FROM t LEFT JOIN u ON t.k = u.k")) == "an outer join"


@pytest.mark.parametrize("number", QUERIES)
def test_split_reads_equal_local_reads(tpch_world, engines, number):
    local, distributed = engines
    sql = _sql(tpch_world, number)
    want = local.execute(sql).reader.read_all()
    result = distributed.execute(sql)
    got = result.reader.read_all()
    assert_same_rows(got, want)
    assert_same_rows(got, tpch_world["reference"].sql(tpch_world["queries"][number]).to_arrow_table())
    if not result.stats.pushed_whole:
        ran = [f for f in result.stats.fragments if f.engine]
        assert ran and all(f.tasks >= 1 for f in ran)
        if number != 16:  # Q16's MariaDB fragments group and count DISTINCT in the source: one task each
            assert any(f.tasks > 1 for f in ran), [(f.id, f.source, f.tasks) for f in ran]


def test_each_source_is_cut_its_own_way(tpch_world, engines):
    _, distributed = engines
    text = distributed.explain(_sql(tpch_world, 9))
    assert "engine: ray, 4 tasks: ctid page ranges of tpch.orders" in text
    assert "value ranges (no integer primary key: each split scans the table) of" in text, text  # MariaDB
    assert "one split per partition of lineitem (7 files or folders)" in text


def test_small_queries_stay_local_and_explain_says_why(tpch_world):
    engine = _engine(tpch_world, min_rows=1_000_000, min_bytes=1 << 40)
    try:
        sql = _sql(tpch_world, 3)
        text = engine.explain(sql)
        assert "engine: local: estimated" in text and "< min_rows 1,000,000" in text
        result = engine.execute(sql)
        result.reader.read_all()
        assert not any(f.engine for f in result.stats.fragments)
    finally:
        engine.close()


def test_local_engine_decides_nothing(tpch_world):
    engine = QueryEngine(tpch_world["settings"])
    try:
        assert "engine:" not in engine.explain(_sql(tpch_world, 3))
    finally:
        engine.close()


def test_explain_analyze_shows_tasks_nodes_and_bytes(tpch_world, engines):
    _, distributed = engines
    text = distributed.explain(_sql(tpch_world, 3), analyze=True)
    assert "engine: local, 4 tasks on 1 node(s), 0 retried," in text
    assert "bytes moved to the coordinator" in text


def test_a_lost_task_is_submitted_again(tpch_world, engines):
    local, _ = engines
    engine = _engine(tpch_world, FlakyExecutor(losses=1), max_retries=1)
    try:
        sql = _sql(tpch_world, 3)
        result = engine.execute(sql)
        assert_same_rows(result.reader.read_all(), local.execute(sql).reader.read_all())
        ran = [f for f in result.stats.fragments if f.engine]
        assert sum(f.retries for f in ran) == sum(f.tasks for f in ran) // 2 > 0
        exposition = engine.metrics.registry.get_sample_value("gateway_distributed_retries_total")
        assert exposition == sum(f.retries for f in ran)
        assert engine.metrics.registry.get_sample_value("gateway_distributed_tasks_total") == sum(f.tasks for f in ran)
    finally:
        engine.close()


def test_a_lost_tasks_statement_is_cancelled_at_its_source(tpch_world):
    """A task whose worker or node died may leave its statement running at the source, for nobody: the
    coordinator cancels it by the tag the task's SQL carries (each attempt its own), and the retry answers."""
    executor = StrandingExecutor(tpch_world["pg_uri"])
    engine = _engine(tpch_world, executor, max_retries=1)
    try:
        sql = ("SELECT s.o_orderkey, n.n_name FROM pg.tpch.nap_orders s "
               f"JOIN {tpch_world['names']['nation']} n ON n.n_nationkey = s.o_custkey % 25")
        result = engine.execute(sql)
        orders = tpch_world["reference"].sql("SELECT count(*) AS n FROM orders").to_arrow_table()
        assert result.reader.read_all().num_rows == orders.column(0)[0].as_py()
        assert executor.stranded and sum(f.retries for f in result.stats.fragments) >= len(executor.stranded)
        deadline = time.monotonic() + 10
        while any("ended" not in box for box in executor.stranded) and time.monotonic() < deadline:
            time.sleep(0.05)
        for box in executor.stranded:  # the nap view sleeps 4 s: cancelled well before
            assert box["tag"].startswith("gw-task-") and "canceling statement" in box.get("ended", ""), box
            assert box["seconds"] < 3.5, box
            assert not _statement_runs(tpch_world["pg_uri"], box["tag"])
    finally:
        engine.close()


def test_retries_that_run_out_fail_naming_the_stage(tpch_world):
    engine = _engine(tpch_world, FlakyExecutor(losses=5), max_retries=2)
    try:
        t0 = time.monotonic()
        with pytest.raises(ExecutionError, match=r"stage 'scan \w+' failed: scan \w+ split \d/\d \(source '\w+'\) "
                                                 r"was lost 3 time\(s\), no retries left"):
            engine.execute(_sql(tpch_world, 3)).reader.read_all()
        assert time.monotonic() - t0 < 30
    finally:
        engine.close()


def test_cancel_stops_the_split_tasks_and_their_statements(tpch_world):
    engine = _engine(tpch_world)
    try:
        errors = run_and_cancel(engine, SLOW_SQL.format(nation=tpch_world["names"]["nation"]), tpch_world["pg_uri"])
        assert errors and isinstance(errors[0], QueryCancelledError)
    finally:
        engine.close()


def test_execution_config_is_checked(tmp_path):
    from gateway.errors import ConfigError
    from gateway.settings import settings_from_dict

    with pytest.raises(ConfigError, match=r"execution\.engine"):
        settings_from_dict({"execution": {"engine": "spark"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"execution\.min_rows"):
        settings_from_dict({"execution": {"engine": "ray", "min_rows": -1}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"unknown key 'ray_adress'; did you mean 'ray_address'"):
        settings_from_dict({"execution": {"ray_adress": "auto"}}, base_dir=tmp_path)


def test_cancel_tagged_stops_a_mariadb_statement(tpch_world):
    """MariaDB's side of cancelling a lost task's statement: KILL QUERY of the statement whose text holds the
    tag (the PostgreSQL side is the test above)."""
    import pymysql

    from connectors import connector_class
    from tests.conftest import MYSQL_URI, _mysql_params

    tag = "gw-task-0123456789abcdef"
    box: dict = {}

    def sleeper() -> None:
        conn = pymysql.connect(**_mysql_params(MYSQL_URI))
        try:
            with conn.cursor() as cur:
                cur.execute(f"/* {tag} */ SELECT SLEEP(20)")
                box["ended"] = "finished"
        except pymysql.err.OperationalError as exc:
            box["ended"] = str(exc)
        finally:
            conn.close()

    thread = threading.Thread(target=sleeper)
    thread.start()
    maria = connector_class("mysql")("maria", {"uri": MYSQL_URI})
    try:
        deadline = time.monotonic() + 10
        cancelled = 0
        while not cancelled and time.monotonic() < deadline:
            time.sleep(0.1)
            cancelled = maria.cancel_tagged(tag)
        thread.join(5)
        assert cancelled == 1 and "interrupted" in box.get("ended", ""), box
        assert maria.cancel_tagged(tag) == 0
    finally:
        thread.join(20)
        maria.close()
