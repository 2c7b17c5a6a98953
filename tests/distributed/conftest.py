"""The distributed tests' world: TPC-H at a tiny scale factor in their own PostgreSQL and MariaDB databases
(random names, dropped at the end) and a Parquet folder, plus engines that read fragments as split tasks.

``tpch_world`` is session-scoped (loading costs ~5 s); ``ray_runtime`` starts one real Ray runtime
(``ray.init(num_cpus=2, include_dashboard=False)``, ~5-15 s on this machine) for every test marked ``ray``,
and shuts it down with ``ray.shutdown()`` at the end of the session.
"""

from __future__ import annotations

import secrets

import pytest

from tests import tpch
from tests.conftest import IN_CI, MYSQL_URI, _mysql_params, _with_database

SCALE_FACTOR = 0.01
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
def tpch_world(pg_server, mysql_server, tmp_path_factory):
    """``(settings, reference, queries, names)``: the three sources' settings, a DataFusion context over the
    same tables loaded locally, the 22 query texts, and ``{table: qualified gateway name}``."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql
    from datafusion import SessionContext

    from gateway.settings import settings_from_dict

    tables, queries = tpch.generate(SCALE_FACTOR)
    pg_name = f"gw_dist_{secrets.token_hex(4)}"
    with pg.connect(pg_server, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {pg_name}")
    pg_uri = _with_database(pg_server, pg_name)
    params = _mysql_params(MYSQL_URI)
    maria_name = f"gw_dist_{secrets.token_hex(4)}"
    admin = pymysql.connect(autocommit=True, **params)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {maria_name}")
    try:
        tpch.load_postgres(pg_uri, tables)
        with pg.connect(pg_uri, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(SLOW_VIEW)
            cur.execute(NAP_VIEWS["pg"])
        tpch.load_mysql(params, maria_name, tables)
        with pymysql.connect(database=maria_name, autocommit=True, **params) as conn, conn.cursor() as cur:
            cur.execute(NAP_VIEWS["maria"])
        lake = tpch.write_parquet(tmp_path_factory.mktemp("dist") / "lake", tables)
        settings = settings_from_dict({"sources": [
            {"name": "pg", "kind": "postgresql", "uri": pg_uri},
            {"name": "maria", "kind": "mysql", "uri": _with_database(MYSQL_URI, maria_name)},
            {"name": "lake", "kind": "parquet", "path": str(lake)},
        ]}, base_dir=lake)
        names = {t: {"pg": f"pg.tpch.{t}", "maria": f"maria.{maria_name}.{t}", "lake": f"lake.main.{t}"}[s]
                 for t, s in tpch.PLACEMENT.items()}
        reference = SessionContext()
        for name, table in tables.items():
            reference.register_record_batches(name, [table.to_batches()])
        yield {"settings": settings, "reference": reference, "queries": queries, "names": names, "pg_uri": pg_uri,
               "maria_database": maria_name}
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {maria_name}")
        admin.close()
        with pg.connect(pg_server, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")


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
