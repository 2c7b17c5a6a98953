"""The distributed tests' world: the session's TPC-H (``tpch_world``, tests/conftest.py: scale factor 0.01 in
the session's PostgreSQL and MariaDB databases and a Parquet folder) with slow views of their own, plus engines
that read fragments as split tasks.

``tpch_world`` is session-scoped (loading costs ~5 s); ``ray_runtime`` starts one real Ray runtime
(``ray.init(num_cpus=2, include_dashboard=False)``, ~5-15 s on this machine) for every test marked ``ray``,
and shuts it down with ``ray.shutdown()`` at the end of the session.
"""

from __future__ import annotations

import pytest

from tests.conftest import IN_CI, MYSQL_URI, _mysql_params

#: a PostgreSQL view whose every read sleeps (the cancel tests look for its statement in pg_stat_activity)
SLOW_VIEW = "CREATE VIEW tpch.slow_orders AS SELECT o.o_orderkey, o.o_custkey FROM tpch.orders o, pg_sleep(60)"
#: views whose reads take ~4 s, one per database (the node-loss test keeps one task busy on each node)
NAP_VIEWS = {
    "pg": "CREATE VIEW tpch.nap_orders AS SELECT o.o_orderkey, o.o_custkey FROM tpch.orders o, pg_sleep(4)",
    "maria": "CREATE VIEW nap_supplier AS SELECT s.s_suppkey, s.s_nationkey FROM supplier s "
             "JOIN (SELECT SLEEP(4) AS z) t",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "ray: starts a real Ray runtime (tests/distributed)")


@pytest.fixture(scope="session")
def tpch_world(tpch_world):
    """The session's ``tpch_world`` (tests/conftest.py: ``settings``, ``reference``, ``queries``, ``names``,
    ``pg_uri``, ``maria_database``) with the slow and napping views of these tests added to its databases."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    with pg.connect(tpch_world["pg_uri"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(SLOW_VIEW)
        cur.execute(NAP_VIEWS["pg"])
    with pymysql.connect(database=tpch_world["maria_database"], autocommit=True,
                         **_mysql_params(MYSQL_URI)) as conn, conn.cursor() as cur:
        cur.execute(NAP_VIEWS["maria"])
    return tpch_world


def distributed_settings(settings, **execution):
    """``settings`` with ``[execution] engine = "ray"`` distributing every query into up to 4 splits, and
    ``execution`` overrides."""
    config = {"engine": "ray", "min_rows": 0, "split_min_rows": 0, "max_splits": 4, **execution}
    return settings.model_copy(update={"execution": settings.execution.model_copy(update=config)})


@pytest.fixture(scope="session")
def ray_runtime():
    """One real Ray runtime for the session (2 CPUs, no dashboard); ``ray.shutdown()`` at the end."""
    try:
        import ray
    except ImportError:
        if IN_CI:
            pytest.fail("ray is not installed (pip install '.[ray]')", pytrace=False)
        pytest.skip("ray is not installed (pip install '.[ray]')")
    # address="local": this session's own runtime, even while another run's cluster is up on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def slow_statements(pg_uri: str) -> int:
    """Active backends running the slow view's read (``pg_stat_activity``), other than this check."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(pg_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%slow_orders%' "
                    "AND pid <> pg_backend_pid()")
        return int(cur.fetchone()[0])


def run_and_cancel(engine, sql: str, pg_uri: str, timeout_s: float = 30.0) -> list[BaseException]:
    """Run ``sql`` on a thread, cancel it once its slow statement runs in PostgreSQL, and return the errors
    the run raised. Asserts that the statement started, that the run ended within 10 s of the cancel, and
    that no slow statement is left running in PostgreSQL after it."""
    import threading
    import time

    cancel = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            engine.execute(sql, cancel=cancel).reader.read_all()
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while slow_statements(pg_uri) == 0 and thread.is_alive():
        assert time.monotonic() < deadline, "the slow statement never started"
        time.sleep(0.2)
    t0 = time.monotonic()
    cancel.set()
    thread.join(15)
    assert not thread.is_alive() and time.monotonic() - t0 < 10
    while slow_statements(pg_uri):
        assert time.monotonic() - t0 < 10, "the source statement still runs after the cancel"
        time.sleep(0.2)
    return errors
