"""Error reporting, end to end over the real Flight SQL server (ADBC) and the real REST app (HTTP).

Issues (security/robustness review): every Flight SQL error carried the server's Python traceback with install
paths; statements failing in CreatePreparedStatement / GetFlightInfo were missing from /metrics, /v1/history
and the log; ``SELECT 1/0`` answered 500; a ±Infinity parameter rendered as a column name; a NaN in a JSON body
answered 500 and FastAPI's validation errors had their own shape; ``SELECT *`` over a join of tables sharing
column names lost columns (REST JSON rows) or the join pushdown; ``/healthz`` said ok with sources down and
named them to anyone, and ``/metrics`` was open with auth on.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
import time
from decimal import Decimal
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import httpx
import pytest
from adbc_driver_flightsql import DatabaseOptions
from prometheus_client.parser import text_string_to_metric_families

from flight_server.server import GatewayFlightServer
from gateway.api import create_app
from gateway.api import health as rest_health
from gateway.auth import Authenticator
from gateway.client import rebuild_error
from gateway.errors import (
    InvalidQueryError,
    InvalidRequestError,
    SourceQueryError,
    SourceUnavailableError,
    SqlSyntaxError,
    UnknownObjectError,
)
from gateway.execution.engine import QueryEngine
from gateway.logs import LOG_SQL_CHARS
from gateway.settings import settings_from_dict
from tests.demo_support import running_app
from tests.sources import fresh_pg_database

# what must never reach a client: a Python traceback, a frame, a server path
LEAKS = ("Traceback", 'File "', "/work/", "site-packages", ".py\"", "/tmp/")
OPS_TOKEN = "ops-" + "o" * 28
LIMITED_TOKEN = "limited-" + "l" * 24
STAR_JOIN = "SELECT * FROM pg.a c JOIN pg.t ON t.id = c.id"
JSON = {"content-type": "application/json"}

PG_SETUP = [
    # "infinity" is a column: a -Infinity parameter rendered as a number read it as one (x = -infinity)
    "CREATE TABLE t (id int PRIMARY KEY, name text, x double precision, infinity double precision)",
    "INSERT INTO t VALUES (1, 'a', 1.5, 0), (2, 'b', -2, 0), (3, 'c', -7, 7)",
    "CREATE TABLE a (id int PRIMARY KEY, name text)",
    "INSERT INTO a VALUES (1, 'z'), (3, 'y')",
    "CREATE FUNCTION boom() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom at the source'; END $$",
    "CREATE VIEW boom AS SELECT boom() AS z",
    "ANALYZE",
]


# -- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folder(demo_folder) -> Path:
    """The demo config and data (``demo_data/``) of the session."""
    return demo_folder


@pytest.fixture(scope="module")
def pg_uri(pg_server) -> str:
    """A database of its own (tables ``t``, ``a``, view ``boom``), dropped at the end of the module."""
    with fresh_pg_database(pg_server, "gw_err_") as uri:
        with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            for sql in PG_SETUP:
                cur.execute(sql)
        yield uri


def _demo_sources() -> list[dict]:
    return [{"name": "demo_db", "kind": "sqlite", "path": "demo_data/demo.db"},
            {"name": "demo_lake", "kind": "parquet", "path": "demo_data/lake"}]


@pytest.fixture(scope="module")
def gateway(folder, pg_uri):
    """Demo sources, ``pg`` and ``down`` (a PostgreSQL nobody listens for); auth off."""
    settings = settings_from_dict({"sources": [
        *_demo_sources(), {"name": "pg", "kind": "postgresql", "uri": pg_uri},
        {"name": "down", "kind": "postgresql", "uri": "postgresql://postgres@127.0.0.1:1/nothing"},
    ]}, base_dir=folder)
    engine = QueryEngine(settings)
    yield engine
    engine.close()


@contextlib.contextmanager
def _flight(engine: QueryEngine, authenticator: Authenticator):
    """(uri, server): a real Flight SQL server over ``engine`` on a free loopback port."""
    server = GatewayFlightServer(engine, "grpc://127.0.0.1:0", authenticator)
    thread = threading.Thread(target=server.serve, name="flight-errors-test", daemon=True)
    thread.start()
    try:
        yield f"grpc://127.0.0.1:{server.port}", server
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def servers(gateway):
    """(flight uri, flight server, REST client) over the one ``gateway``: what a statement does over Flight
    SQL is seen in the REST app's /metrics and /v1/history."""
    authenticator = Authenticator(gateway.settings.auth)
    with _flight(gateway, authenticator) as (uri, server), running_app(create_app(gateway, authenticator)) as url, \
            httpx.Client(base_url=url, timeout=30.0) as client:
        yield uri, server, client


@pytest.fixture(scope="module")
def flight_uri(servers) -> str:
    return servers[0]


@pytest.fixture(scope="module")
def rest(servers) -> httpx.Client:
    return servers[2]


@pytest.fixture(scope="module")
def auth_gateway(folder):
    """Demo sources with auth on: API tokens ``ops`` (every source) and ``limited`` (demo_db only)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GW_ERR_OPS_TOKEN", OPS_TOKEN)
        env.setenv("GW_ERR_LIMITED_TOKEN", LIMITED_TOKEN)
        settings = settings_from_dict({"sources": _demo_sources(), "auth": {"enabled": True, "api_tokens": [
            {"name": "ops", "token": "${GW_ERR_OPS_TOKEN}"},
            {"name": "limited", "token": "${GW_ERR_LIMITED_TOKEN}", "sources": ["demo_db"]},
        ]}}, base_dir=folder)
    engine = QueryEngine(settings)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def auth_servers(auth_gateway):
    authenticator = Authenticator(auth_gateway.settings.auth)
    with _flight(auth_gateway, authenticator) as (uri, _), \
            running_app(create_app(auth_gateway, authenticator)) as url, \
            httpx.Client(base_url=url, timeout=30.0) as client:
        yield uri, client


@pytest.fixture(scope="module")
def down_gateway(folder):
    """Three sources, two of them down: a PostgreSQL nobody listens for, a Parquet folder that is missing."""
    settings = settings_from_dict({"sources": [
        {"name": "demo_db", "kind": "sqlite", "path": "demo_data/demo.db"},
        {"name": "down_pg", "kind": "postgresql", "uri": "postgresql://postgres@127.0.0.1:1/nothing"},
        {"name": "down_lake", "kind": "parquet", "path": "no_such_folder"},
    ]}, base_dir=folder)
    engine = QueryEngine(settings)
    yield engine
    engine.close()


# -- helpers ----------------------------------------------------------------------------------------------

def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_no_leak(text: str, folder: Path) -> None:
    for leak in (*LEAKS, str(folder)):
        assert leak not in text, f"{leak!r} reached the client: {text[:600]}"


def error_of(response: httpx.Response, status: int, code: str) -> dict:
    """The ``error`` object of a gateway error answer (the one shape), checked for status and code."""
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert {"code", "message", "phase"} <= set(body["error"])
    return body["error"]


def flight_error(uri: str, sql: str, parameters=None, **connect) -> flightsql.Error:
    """The error ADBC raises for ``sql`` (executed and fetched)."""
    with flightsql.connect(uri, autocommit=True, **connect) as conn, conn.cursor() as cur, \
            pytest.raises(flightsql.Error) as info:
        cur.execute(sql, parameters)
        cur.fetch_arrow_table()
    return info.value


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def errors_key(code: str, protocol: str) -> tuple[str, tuple]:
    return "gateway_query_errors_total", (("code", code), ("protocol", protocol))


def query_lines(caplog, sql: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gateway.queries" and getattr(r, "sql", None) == sql]


def tag() -> str:
    """A fresh number: SQL texts of one test stay apart from the others' in the shared history."""
    return str(secrets.randbelow(10**9))


# -- 1. no traceback over Flight SQL --------------------------------------------------------------------------

FLIGHT_FAILURES = {
    "syntax_error": ("SELEC 1", "InvalidArgument", SqlSyntaxError, "SQL syntax error at line 1, column 7"),
    "unknown_table": ("SELECT * FROM demo_lake.nope", "NotFound", UnknownObjectError,
                      "unknown table 'nope' in demo_lake"),
    "source_unavailable": ("SELECT * FROM down.public.t", "Unavailable", SourceUnavailableError,
                           "source 'down' is unavailable"),
    "source_query_failed": ("SELECT z FROM pg.public.boom", "Internal", SourceQueryError,
                            "boom at the source"),
    "division_by_zero": ("SELECT 1/0 AS q", "InvalidArgument", InvalidQueryError, "Divide by zero"),
}


@pytest.mark.parametrize("name", list(FLIGHT_FAILURES))
def test_flight_error_has_code_and_message_but_no_traceback(flight_uri, folder, name):
    sql, status, cls, message = FLIGHT_FAILURES[name]
    error = flight_error(flight_uri, sql)
    text = str(error)
    assert f"({status};" in text  # the gRPC status, as ADBC names it
    assert f"[{cls.code}]" in text and message in text
    assert_no_leak(text, folder)
    rebuilt = rebuild_error(error)  # gateway.client's reading of "[code] message" still works
    assert type(rebuilt) is cls and message in rebuilt.message


def test_unexpected_flight_error_is_internal_with_an_error_id_and_no_traceback(servers, folder, monkeypatch,
                                                                              caplog):
    uri, server, _ = servers

    def broken(command):
        raise RuntimeError(f"defect in {folder}/secret_module.py")

    monkeypatch.setattr(server.metadata, "schema_of", broken)
    caplog.set_level(logging.ERROR, logger="flight_server.errors")
    with flightsql.connect(uri, autocommit=True) as conn, pytest.raises(flightsql.Error) as info:
        conn.adbc_get_table_types()
    text = str(info.value)
    assert "(Internal;" in text and "[internal] GetFlightInfo failed on the server" in text
    assert "secret_module" not in text
    assert_no_leak(text, folder)
    error_id = re.search(r"error id ([0-9a-f]+)", text).group(1)
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert len(logged) == 1 and logged[0].exc_info is not None  # the traceback stays in the server log


# -- 2. every failure counted and recorded ----------------------------------------------------------------------

def test_failed_flight_statements_are_in_metrics_history_and_log(servers, caplog):
    uri, _, client = servers
    caplog.set_level(logging.INFO, logger="gateway.queries")
    n = tag()
    failing = {  # refused in CreatePreparedStatement (planning) and in DoGet (execution)
        f"SELEC {n}": "syntax_error",
        f"SELECT * FROM demo_lake.nope_{n}": "unknown_object",
        f"SELECT {n} / 0 AS q": "invalid_query",
    }
    before = samples(client.get("/metrics").text)
    for sql in failing:
        flight_error(uri, sql)
    after = samples(client.get("/metrics").text)
    history = client.get("/v1/history", params={"limit": 50}).json()
    for sql, code in failing.items():
        entries = [h for h in history if h["sql"] == sql]
        assert len(entries) == 1, entries  # recorded once, not once per RPC
        entry = entries[0]
        assert (entry["status"], entry["error_code"], entry["protocol"]) == ("error", code, "flight_sql")
        assert entry["error"] and entry["user"] is None
        key = errors_key(code, "flight_sql")
        assert after[key] == before.get(key, 0) + 1
        [line] = query_lines(caplog, sql)
        assert (line.query_id, line.status, line.error_code, line.protocol) == (entry["query_id"], "error", code,
                                                                                "flight_sql")
        assert line.user is None and line.seconds >= 0 and line.getMessage() == "query finished"
    assert after[("gateway_queries_total", (("status", "error"),))] >= \
        before.get(("gateway_queries_total", (("status", "error"),)), 0) + len(failing)


def test_failed_flight_statement_is_recorded_with_its_user(auth_servers, auth_gateway, caplog):
    uri, _ = auth_servers
    caplog.set_level(logging.INFO, logger="gateway.queries")
    sql = f"SELECT * FROM demo_lake.orders_{tag()}"
    error = flight_error(uri, sql, db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {OPS_TOKEN}"})
    assert "[unknown_object]" in str(error)
    [entry] = [h for h in auth_gateway.metrics.history() if h.sql == sql]
    assert (entry.user, entry.protocol, entry.error_code) == ("ops", "flight_sql", "unknown_object")
    [line] = query_lines(caplog, sql)
    assert line.user == "ops" and line.query_id == entry.query_id


def test_failed_rest_queries_are_counted_by_code_and_protocol(rest, caplog):
    caplog.set_level(logging.INFO, logger="gateway.queries")
    sql = f"SELEC {tag()}"
    before = samples(rest.get("/metrics").text)
    error_of(rest.post("/v1/query", json={"sql": sql}), 400, "syntax_error")
    after = samples(rest.get("/metrics").text)
    key = errors_key("syntax_error", "rest")
    assert after[key] == before.get(key, 0) + 1
    entry = next(h for h in rest.get("/v1/history").json() if h["sql"] == sql)
    assert (entry["status"], entry["error_code"], entry["protocol"]) == ("error", "syntax_error", "rest")
    [line] = query_lines(caplog, sql)
    assert line.protocol == "rest" and line.error_code == "syntax_error"


def test_answered_queries_record_their_protocol(rest, flight_uri, gateway):
    n = tag()
    rest_sql, flight_sql = f"SELECT {n} AS rest_n", f"SELECT {n} AS flight_n"
    assert rest.post("/v1/query", json={"sql": rest_sql}).json()["rows"] == [[int(n)]]
    with flightsql.connect(flight_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(flight_sql)
        assert cur.fetchall() == [(int(n),)]
    by_sql = {h.sql: h for h in gateway.metrics.history()}
    assert (by_sql[rest_sql].protocol, by_sql[rest_sql].status) == ("rest", "ok")
    assert (by_sql[flight_sql].protocol, by_sql[flight_sql].status) == ("flight_sql", "ok")
    assert by_sql[rest_sql].error_code is None


def test_query_log_line_cuts_the_sql_to_1000_characters(rest, caplog):
    caplog.set_level(logging.INFO, logger="gateway.queries")
    sql = f"SELEC {tag()} " + "x" * 3000
    error_of(rest.post("/v1/query", json={"sql": sql}), 400, "syntax_error")
    line = next(r for r in caplog.records if r.name == "gateway.queries" and getattr(r, "sql_chars", 0) == len(sql))
    assert line.sql == sql[:LOG_SQL_CHARS] + "..." and len(line.sql) == LOG_SQL_CHARS + 3
    assert any(h["sql"] == sql for h in rest.get("/v1/history").json())  # the history keeps it whole


# -- 3. the query's own errors are 400 --------------------------------------------------------------------------

QUERY_VALUE_ERRORS = {
    "division_by_zero": ("SELECT 1/0 AS q", "Divide by zero"),
    "division_by_zero_of_a_column": ("SELECT id / (id - id) AS q FROM pg.public.t", "Divide by zero"),
    "failed_cast": ("SELECT CAST(s AS INT) AS n FROM (VALUES ('x')) AS v(s)", "Cannot cast string 'x'"),
    "overflow": ("SELECT v / -1 AS n FROM (VALUES (CAST(-9223372036854775808 AS BIGINT))) AS t(v)", "overflow"),
    "division_by_zero_in_a_file_source": ("SELECT quantity / (quantity - quantity) AS q FROM demo_lake.orders",
                                          "Divide by zero"),
}


@pytest.mark.parametrize("name", list(QUERY_VALUE_ERRORS))
def test_query_value_error_is_400_invalid_query(rest, folder, name):
    sql, message = QUERY_VALUE_ERRORS[name]
    response = rest.post("/v1/query", json={"sql": sql})
    error = error_of(response, 400, "invalid_query")
    assert message.lower() in error["message"].lower() and error["phase"] == "execution"
    assert_no_leak(response.text, folder)


def test_select_null_column_from_postgres(rest):
    response = rest.post("/v1/query", json={"sql": "SELECT id, NULL FROM pg.public.t ORDER BY id"})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[1, None], [2, None], [3, None]]


def test_select_null_column_from_sqlite_and_parquet(rest):
    db = rest.post("/v1/query", json={"sql": "SELECT id, NULL AS n FROM demo_db.customers ORDER BY id LIMIT 2"})
    assert db.status_code == 200, db.text
    assert [row[1] for row in db.json()["rows"]] == [None, None]
    lake = rest.post("/v1/query", json={"sql": "SELECT region, NULL AS n FROM demo_lake.regions"})
    assert lake.status_code == 200, lake.text
    assert {row[1] for row in lake.json()["rows"]} == {None}


# -- 4. ±Infinity parameters --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [float("inf"), float("-inf"), Decimal("Infinity"), Decimal("-Infinity"),
                                   float("nan"), Decimal("NaN")], ids=str)
def test_non_finite_parameter_is_refused(gateway, value):
    # rendered as a number, -Infinity read the column "infinity": row 3 (x = -7, infinity = 7) matched
    with pytest.raises(InvalidRequestError, match=r"(Infinity|NaN) is not accepted as a parameter"):
        gateway.execute("SELECT id FROM pg.public.t WHERE x = ?", [value]).reader.read_all()


def test_finite_float_parameter_binds(gateway):
    table = gateway.execute("SELECT id FROM pg.public.t WHERE x = ? ORDER BY id", [-7.0]).reader.read_all()
    assert table.column("id").to_pylist() == [3]


def test_infinity_parameter_is_refused_over_rest_and_flight(rest, flight_uri):
    body = '{"sql": "SELECT id FROM pg.public.t WHERE x < ?", "params": [-Infinity]}'
    error = error_of(rest.post("/v1/query", content=body, headers=JSON), 400, "invalid_request")
    assert "-Infinity is not accepted" in error["message"]
    text = str(flight_error(flight_uri, "SELECT id FROM pg.public.t WHERE x < ?", (float("inf"),)))
    assert "(InvalidArgument;" in text and "[invalid_request] Infinity is not accepted" in text


# -- 5. malformed requests: 400 in the gateway's one error shape ------------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ('{"sql": "SELECT 1 AS x", "max_staleness_s": NaN}', "body.max_staleness_s"),
    ('{"sql": "SELECT 1 AS x", "timeout_s": Infinity}', "body.timeout_s"),
    ('{"sql": "SELECT 1 AS x", "timeout_s": NaN}', "body.timeout_s"),
])
def test_nan_or_infinity_in_json_body_is_400(rest, body, field):
    error = error_of(rest.post("/v1/query", content=body, headers=JSON), 400, "invalid_request")
    assert error["phase"] == "request"
    assert field in [f["field"] for f in error["fields"]]
    assert "NaN" not in str(error["fields"])  # the input is not echoed


def test_nan_parameter_in_json_body_is_400(rest):
    body = '{"sql": "SELECT id FROM pg.public.t WHERE x = ?", "params": [NaN]}'
    error = error_of(rest.post("/v1/query", content=body, headers=JSON), 400, "invalid_request")
    assert "NaN is not accepted as a parameter" in error["message"]


@pytest.mark.parametrize("body,field", [
    ('{"nosql": 1}', "body.sql"),
    ('{"sql": 5}', "body.sql"),
    ('{"sql": "SELECT 1", "format": "xml"}', "body.format"),
    ('{"sql": "SELECT 1", "timeout_s": -1}', "body.timeout_s"),
    ("not json at all", "body"),
])
def test_validation_errors_answer_400_in_the_gateway_error_shape(rest, body, field):
    response = rest.post("/v1/query", content=body, headers=JSON)
    error = error_of(response, 400, "invalid_request")  # not FastAPI's 422 {"detail": [...]}
    assert error["phase"] == "request"
    assert any(f["field"].startswith(field) for f in error["fields"]), error
    assert error["message"].startswith("invalid request: ")


def test_bad_query_parameter_answers_the_gateway_error_shape(rest):
    error = error_of(rest.get("/v1/history", params={"limit": "many"}), 400, "invalid_request")
    assert error["fields"][0]["field"] == "query.limit"


def test_unknown_route_answers_the_gateway_error_shape(rest):
    assert error_of(rest.get("/v1/nothing"), 404, "not_found")["phase"] == "request"
    error_of(rest.delete("/v1/query"), 405, "method_not_allowed")


def test_unexpected_rest_error_is_500_without_traceback(rest, gateway, folder, monkeypatch, caplog):
    def broken():
        raise RuntimeError(f"defect in {folder}/secret_module.py")

    monkeypatch.setattr(gateway, "cache_status", broken)
    caplog.set_level(logging.ERROR, logger="gateway.api.errors")
    response = rest.get("/v1/cache")
    error = error_of(response, 500, "internal")
    assert_no_leak(response.text, folder)
    assert "secret_module" not in response.text
    assert any(getattr(r, "error_id", None) == error["error_id"] and r.exc_info for r in caplog.records)


# -- 6. SELECT * over a join of tables that share column names --------------------------------------------------------

def test_star_over_join_keeps_every_column_over_rest(rest):
    body = rest.post("/v1/query", json={"sql": STAR_JOIN + " ORDER BY c.id"}).json()
    assert [c["name"] for c in body["columns"]] == ["id", "name", "id", "name", "x", "infinity"]
    # rows by position: no column of the second table replaced the first's
    assert body["rows"] == [[1, "z", 1, "a", 1.5, 0.0], [3, "y", 3, "c", -7.0, 7.0]]


def test_star_over_join_keeps_every_column_over_flight(flight_uri):
    with flightsql.connect(flight_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(STAR_JOIN + " ORDER BY c.id")
        table = cur.fetch_arrow_table()
    assert table.schema.names == ["id", "name", "id", "name", "x", "infinity"]
    assert [list(row) for row in zip(*(c.to_pylist() for c in table.columns), strict=True)] == \
        [[1, "z", 1, "a", 1.5, 0.0], [3, "y", 3, "c", -7.0, 7.0]]


def test_star_over_join_is_pushed_as_one_join(gateway):
    sql = STAR_JOIN + " WHERE t.name < 'b'"  # the filter stays in DataFusion (collation): no whole-query push
    rows = gateway.execute(sql).reader.read_all()
    assert rows.schema.names == ["id", "name", "id", "name", "x", "infinity"]
    assert [list(r) for r in zip(*(c.to_pylist() for c in rows.columns), strict=True)] == [[1, "z", 1, "a", 1.5, 0.0]]
    plan = gateway.plan(sql)
    assert plan.fallback is None, plan.fallback
    assert [sorted(f.tables) for f in plan.fragments] == [["pg.public.a", "pg.public.t"]]


# -- 7. liveness, readiness, metrics --------------------------------------------------------------------------------

def test_healthz_is_liveness_without_source_names(rest):
    response = rest.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_lists_each_source_when_two_of_three_are_down(down_gateway):
    with running_app(create_app(down_gateway)) as url:
        t0 = time.perf_counter()
        response = httpx.get(f"{url}/readyz", timeout=30)
        elapsed = time.perf_counter() - t0
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}  # alive all the same
    error = error_of(response, 503, "not_ready")  # the gateway's one error shape, as every 4xx/5xx
    assert {name: s["status"] for name, s in error["sources"].items()} == {
        "demo_db": "ok", "down_pg": "unavailable", "down_lake": "unavailable"}
    assert "'down_pg' (unavailable)" in error["message"] and "demo_db" not in error["message"]
    assert elapsed < rest_health.READINESS_TIMEOUT_S + 2.0


def test_readyz_names_sources_only_to_authenticated_callers(auth_servers):
    _, client = auth_servers
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ready"}
    assert "demo_db" not in anonymous.text
    assert client.get("/readyz", headers=bearer("not-a-valid-token-at-all")).json() == {"status": "ready"}
    ops = client.get("/readyz", headers=bearer(OPS_TOKEN)).json()
    assert {name: s["status"] for name, s in ops["sources"].items()} == {"demo_db": "ok", "demo_lake": "ok"}
    limited = client.get("/readyz", headers=bearer(LIMITED_TOKEN)).json()
    assert list(limited["sources"]) == ["demo_db"]


def test_readyz_bounds_a_hanging_source(down_gateway, monkeypatch):
    monkeypatch.setattr(rest_health, "READINESS_TIMEOUT_S", 0.5)
    release = threading.Event()
    calls = []
    connector = down_gateway.catalog.connector("demo_db")

    def hang() -> list[str]:
        calls.append(1)
        release.wait(30)
        return ["main"]

    monkeypatch.setattr(connector, "list_schemas", hang)
    try:
        with running_app(create_app(down_gateway)) as url:
            for _ in range(2):
                t0 = time.perf_counter()
                error = error_of(httpx.get(f"{url}/readyz", timeout=30), 503, "not_ready")
                assert time.perf_counter() - t0 < 2.0
                assert error["sources"]["demo_db"]["status"] == "timeout"
        assert len(calls) == 1  # the second check did not start another probe of the hung source
    finally:
        release.set()


def test_metrics_need_credentials_when_auth_is_on(auth_servers):
    _, client = auth_servers
    error_of(client.get("/metrics"), 401, "authentication_failed")
    error_of(client.get("/metrics", headers=bearer(LIMITED_TOKEN)), 403, "permission_denied")
    ops = client.get("/metrics", headers=bearer(OPS_TOKEN))
    assert ops.status_code == 200 and "gateway_queries_total" in ops.text


def test_metrics_can_be_made_public(auth_gateway, monkeypatch):
    monkeypatch.setattr(auth_gateway.settings.auth, "public_metrics", True)
    with running_app(create_app(auth_gateway, Authenticator(auth_gateway.settings.auth))) as url:
        response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200 and "gateway_query_errors" in response.text


def test_metrics_are_open_when_auth_is_off(rest):
    response = rest.get("/metrics")
    assert response.status_code == 200 and "gateway_query_errors" in response.text


def test_invalid_query_error_is_known_to_the_client():
    """The client rebuilds InvalidQueryError from its Flight status (400 / INVALID_ARGUMENT)."""
    from gateway.errors import ERRORS_BY_CODE

    assert ERRORS_BY_CODE["invalid_query"] is InvalidQueryError
    assert InvalidQueryError.http_status == 400 and InvalidQueryError.flight_kind == "invalid_argument"
