"""Every query is bounded in time: past ``limits.query_timeout_s`` (or the query's own ``timeout_s``, given
through the engine, REST, or the Flight SQL session option) it answers QueryTimeoutError (HTTP 504, Flight
TIMED_OUT) and its source statements are cancelled. Issue: nothing timed out anywhere."""

from __future__ import annotations

import time

import httpx
import pytest

from gateway.client import connect
from gateway.errors import QueryTimeoutError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.demo_support import serving_rest
from tests.flight_support import serve, setup_pg, slow_backends

SLOW = "SELECT s FROM pg.bi.slow"  # keeps a PostgreSQL backend in pg_sleep(60) unless cancelled


@pytest.fixture(scope="module")
def settings(pg_database, files):
    setup_pg(pg_database)
    return settings_from_dict({
        "sources": [{"name": "pg", "kind": "postgresql", "uri": pg_database},
                    {"name": "lake", "kind": "parquet", "path": str(files["lake"])}],
        "limits": {"query_timeout_s": 30},
    }, base_dir=files["root"])


def _database(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def _no_slow_backend_within(pg_server, pg_database, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not [b for b in slow_backends(pg_server, _database(pg_database)) if b[1] == "active"]:
            return True
        time.sleep(0.1)
    return False


def test_engine_timeout_cancels_the_source_statement(settings, pg_server, pg_database):
    gateway = QueryEngine(settings)
    try:
        t0 = time.perf_counter()
        with pytest.raises(QueryTimeoutError, match="time limit of 1 s"):
            gateway.execute(SLOW, timeout_s=1).reader.read_all()
        assert time.perf_counter() - t0 < 5.0  # 1 s limit; slack for a loaded 2-core machine
        assert _no_slow_backend_within(pg_server, pg_database, 2.0)
        assert gateway.metrics.history()[0].status == "timeout"
        # the next query runs as usual
        assert gateway.execute("SELECT count(*) AS n FROM lake.orders").reader.read_all().num_rows == 1
    finally:
        gateway.close()


def test_default_limit_from_settings(pg_database, files, pg_server):
    settings = settings_from_dict({
        "sources": [{"name": "pg", "kind": "postgresql", "uri": pg_database}],
        "limits": {"query_timeout_s": 1},
    }, base_dir=files["root"])
    setup_pg(pg_database)
    gateway = QueryEngine(settings)
    try:
        with pytest.raises(QueryTimeoutError):
            gateway.execute(SLOW).reader.read_all()
        assert _no_slow_backend_within(pg_server, pg_database, 2.0)
    finally:
        gateway.close()


def test_local_runaway_join_is_stopped(settings):
    """A residual hash join that explodes (5 self-joins on a low-cardinality key) stops at its time limit."""
    gateway = QueryEngine(settings)
    try:
        sql = ("SELECT count(*) AS n FROM lake.orders a JOIN lake.orders b ON a.status = b.status "
               "JOIN lake.orders c ON c.status = b.status JOIN lake.orders d ON d.status = c.status "
               "JOIN pg.crm.customers e ON e.id = d.customer_id")
        t0 = time.perf_counter()
        with pytest.raises(QueryTimeoutError):
            gateway.execute(sql, timeout_s=1).reader.read_all()
        assert time.perf_counter() - t0 < 5.0  # 1 s limit; slack for a loaded 2-core machine
        t1 = time.perf_counter()
        assert gateway.execute("SELECT 1 AS one").reader.read_all().num_rows == 1
        assert time.perf_counter() - t1 < 3.0
    finally:
        gateway.close()


def test_rest_timeout_is_504(settings, pg_server, pg_database):
    with serving_rest(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/v1/query", json={"sql": SLOW, "timeout_s": 1})
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"
        assert _no_slow_backend_within(pg_server, pg_database, 2.0)


def test_flight_sql_session_timeout(settings, pg_server, pg_database):
    with serve(settings) as (uri, _), connect(uri, timeout_s=1) as conn:
        t0 = time.perf_counter()
        with pytest.raises(QueryTimeoutError):
            conn.query(SLOW)
        assert time.perf_counter() - t0 < 5.0  # 1 s limit; slack for a loaded 2-core machine
        assert _no_slow_backend_within(pg_server, pg_database, 2.0)
        assert conn.query("SELECT 1 AS one").num_rows == 1
