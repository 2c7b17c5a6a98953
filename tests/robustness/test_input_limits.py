"""Hostile statements are refused before planning, fast, with a 400 / INVALID_ARGUMENT naming the limit, over
REST and over Flight SQL (ADBC); the process lives on and answers the next query. Issue: a 6,000-branch UNION
killed the process (SIGSEGV in DataFusion), 50 nested parentheses and 100,000 parameters answered a bare 500."""

from __future__ import annotations

import time

import adbc_driver_flightsql.dbapi as flightsql
import httpx
import pytest

from gateway.execution.engine import QueryEngine
from gateway.settings import load_settings
from planner.limits import InputLimits
from tests.demo_support import serving_rest, write_demo_config
from tests.flight_support import serve

HOSTILE = {
    "union_6000_branches": (" UNION ALL ".join(f"SELECT {i}" for i in range(6000)), "set_operations"),
    "or_list_10_mb": ("SELECT count(*) FROM demo_lake.orders WHERE "
                      + " OR ".join(f"order_id = {i}" for i in range(600_000)), "statement_bytes"),
    "parentheses_50_deep": ("SELECT " + "(" * 50 + "1" + ")" * 50, "nesting_depth"),
    "parameters_100000": ("SELECT " + ", ".join("?" for _ in range(100_000)), "parameters"),
    "calls_50_deep": ("SELECT " + "abs(" * 50 + "1" + ")" * 50, "nesting_depth"),
    "in_list_30000": ("SELECT count(*) FROM demo_lake.orders WHERE order_id IN ("
                      + ",".join(str(i) for i in range(30_000)) + ")", "in_list"),
    "or_chain_3000": ("SELECT count(*) FROM demo_lake.orders WHERE "
                      + " OR ".join(f"order_id = {i}" for i in range(3000)), "boolean_terms"),
}
# within the limits: answered (not refused), however deep
ADMITTED = {
    "parentheses_40_deep": "SELECT " + "(" * 40 + "1" + ")" * 40,
    "calls_40_deep": "SELECT " + "abs(" * 40 + "1" + ")" * 40,
    "union_200_branches": " UNION ALL ".join(f"SELECT {i} AS n" for i in range(200)),
}


@pytest.fixture(scope="module")
def demo_settings(demo_config):
    return load_settings(demo_config)


@pytest.fixture(scope="module")
def rest(demo_settings):
    with serving_rest(demo_settings) as url, httpx.Client(base_url=url, timeout=60.0) as client:
        yield client


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_statement_is_refused_over_rest(rest, name):
    sql, limit = HOSTILE[name]
    t0 = time.perf_counter()
    response = rest.post("/v1/query", json={"sql": sql})
    elapsed = time.perf_counter() - t0
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "input_limit" and error["limit"] == limit
    assert limit in error["message"]
    assert elapsed < 2.0
    assert rest.post("/v1/query", json={"sql": "SELECT 1 AS one"}).json()["rows"] == [[1]]


@pytest.mark.parametrize("name", list(ADMITTED))
def test_statement_within_limits_is_answered(rest, name):
    response = rest.post("/v1/query", json={"sql": ADMITTED[name]})
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["rows"]) == (200 if name.startswith("union") else 1)


def test_hostile_statements_over_flight_sql(demo_settings):
    with serve(demo_settings) as (uri, _), flightsql.connect(uri) as conn:
        for name in ("union_6000_branches", "parentheses_50_deep", "or_list_10_mb"):
            sql, limit = HOSTILE[name]
            t0 = time.perf_counter()
            with conn.cursor() as cur, pytest.raises(flightsql.ProgrammingError) as info:
                cur.execute(sql)
            assert time.perf_counter() - t0 < 2.0
            assert "INVALID_ARGUMENT" in str(info.value) or "InvalidArgument" in str(info.value)
            assert limit in str(info.value)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM demo_lake.orders")
            assert cur.fetchone()[0] > 0


def test_limits_are_configurable(tmp_path):
    config = write_demo_config(tmp_path)
    config.write_text(config.read_text() + "\n[limits]\nmax_set_operations = 2\nmax_statement_bytes = 100\n")
    settings = load_settings(config)
    assert settings.limits.input_limits() == InputLimits(set_operations=2, statement_bytes=100)
    gateway = QueryEngine(settings)
    try:
        from gateway.errors import InputLimitError

        with pytest.raises(InputLimitError, match="set_operations"):
            gateway.plan("SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4")
        assert gateway.execute("SELECT 1 UNION SELECT 2").reader.read_all().num_rows == 2
    finally:
        gateway.close()
