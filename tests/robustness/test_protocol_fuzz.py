"""Fuzzed requests over both protocols never make the gateway answer a 5xx it does not document, never show a
traceback, and never take it down. Issue: 3,574 fuzzed requests found bare 500s and Python tracebacks.

- **SQL** (hypothesis, fixed seed): queries built from the test tables' real columns (expressions, casts,
  functions, CASE, IN, BETWEEN, joins across PostgreSQL, Parquet and SQLite, GROUP BY, ORDER BY), token soups
  and mutated SQL, sent to ``POST /v1/query`` and through the ADBC Flight SQL client, with random parameters.
- **REST bodies**: JSON objects with the query API's fields and random ones, of any JSON type; raw bodies
  that are not JSON, NaN, deep nesting.
- **Flight SQL commands**: random bytes as a command descriptor and as a ticket.
- **schemathesis** over the app's own OpenAPI document: every operation, cases generated from its schema.

Allowed 5xx: the documented source and limit errors (501 unimplemented, 502 source_query_failed, 503
source_unavailable, 504 timeout, 507 resource_limit); never 500. Real servers: PostgreSQL, the Parquet lake,
SQLite, the REST app over HTTP and the Flight SQL server on loopback ports. Cost: about 60-90 s on the shared
2-core machine (~600 cases in all; each case's time is bounded by a 10 s query limit).
"""

from __future__ import annotations

import json

import httpx
import hypothesis.strategies as st
import pyarrow as pa
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, event, given, seed, settings
from pyarrow import flight

from gateway.api import create_app
from gateway.client import connect, rebuild_error
from gateway.errors import GatewayError
from gateway.settings import settings_from_dict
from tests.demo_support import running_app
from tests.flight_support import serve

#: what must never reach a client (a traceback, a frame, an install path)
LEAKS = ("Traceback (most recent call last)", 'File "', "site-packages", "/work/main")
#: documented 5xx answers and their codes (gateway.api.errors.STATUS_MEANINGS)
DOCUMENTED_5XX = {501: {"unimplemented"}, 502: {"source_query_failed"}, 503: {"source_unavailable"},
                  504: {"timeout"}, 507: {"resource_limit"}}
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))

COLUMNS = {
    "pg.crm.customers": ("id", "name", "email", "region", "created", "updated_at", "last_login", "credit", "score",
                         "active", "tier", "lifetime_value"),
    "lake.orders": ("order_id", "customer_id", "product_id", "amount", "status", "ordered_at", "ship_date", "qty",
                    "year"),
    "shop.main.products": ("product_id", "name", "category", "price", "weight", "launched", "discontinued"),
}
TOKENS = ("SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "LIMIT", "JOIN", "ON", "UNION ALL", "(", ")", ",",
          "*", "=", "<", "+", "-", "/", "%", "||", "AND", "OR", "NOT", "NULL", "CASE", "WHEN", "THEN", "END",
          "CAST", "AS", "INT", "'x'", "1", "0", "-1e309", "9223372036854775808", "?", "$1", "pg.crm.customers",
          "lake.orders", "id", "amount", "count(*)", "sum(", "WITH", "EXPLAIN", "INSERT", "DROP", ";", "--", "/*",
          "'", '"', "\\", "\x00", "é", "🦆")


@pytest.fixture(scope="module")
def servers(pg_database, files):
    """(rest_url, flight_uri) over one engine: PostgreSQL, the Parquet lake and SQLite; 10 s per query."""
    settings_ = settings_from_dict({
        "sources": [{"name": "pg", "kind": "postgresql", "uri": pg_database},
                    {"name": "lake", "kind": "parquet", "path": str(files["lake"])},
                    {"name": "shop", "kind": "sqlite", "path": str(files["sqlite"])}],
        "limits": {"query_timeout_s": 10, "max_result_rows": 100_000},
    }, base_dir=files["root"])
    with serve(settings_) as (uri, server), running_app(create_app(server.gateway)) as url:
        yield url, uri


@pytest.fixture(scope="module")
def rest(servers):
    with httpx.Client(base_url=servers[0], timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def flight_conn(servers):
    with connect(servers[1]) as conn:
        yield conn


# -- strategies ---------------------------------------------------------------------------------------------

def _literals() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(-(2**63), 2**63).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.text(max_size=8).map(lambda s: "'" + s.replace("'", "''") + "'"),
        st.sampled_from(["NULL", "TRUE", "FALSE", "DATE '2024-01-31'", "TIMESTAMP '2024-01-01 00:00:00'",
                         "INTERVAL '1 day'", "1e308", "0.0", "-0"]),
    )


def _expressions(aliases: dict[str, str]) -> st.SearchStrategy[str]:
    columns = [f"{alias}.{column}" for alias, table in aliases.items() for column in COLUMNS[table]]
    base = st.one_of(st.sampled_from(columns), _literals())

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "=", "<>", "<", ">=", "AND", "OR", "||",
                                              "LIKE", "IS DISTINCT FROM"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(["upper", "lower", "abs", "length", "round", "coalesce", "nullif", "trim",
                                       "sqrt", "ln", "date_trunc"]), st.lists(inner, min_size=1, max_size=2)
                      ).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
            st.tuples(inner, st.sampled_from(["INT", "BIGINT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP",
                                              "DECIMAL(10, 2)", "BOOLEAN"])).map(lambda t: f"CAST({t[0]} AS {t[1]})"),
            st.tuples(inner, inner, inner).map(lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END"),
            inner.map(lambda e: f"({e} IS NULL)"),
            st.tuples(inner, st.lists(_literals(), min_size=1, max_size=4)).map(
                lambda t: f"({t[0]} IN ({', '.join(t[1])}))"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} BETWEEN {t[1]} AND {t[2]})"),
            inner.map(lambda e: f"(NOT {e})"),
        )

    return st.recursive(base, extend, max_leaves=6)


@st.composite
def queries(draw) -> str:
    """A SELECT over one or two of the test tables (two: a join, often across sources)."""
    tables = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=2))
    aliases = {f"t{i}": table for i, table in enumerate(tables)}
    expressions = _expressions(aliases)
    select = draw(st.lists(expressions, min_size=1, max_size=3))
    sql = f"SELECT {', '.join(f'{e} AS c{i}' for i, e in enumerate(select))} FROM {tables[0]} t0"
    if len(tables) == 2:
        left, right = draw(st.sampled_from(COLUMNS[tables[0]])), draw(st.sampled_from(COLUMNS[tables[1]]))
        kind = draw(st.sampled_from(["JOIN", "LEFT JOIN", "FULL JOIN"]))
        sql += f" {kind} {tables[1]} t1 ON t0.{left} = t1.{right}"
    if draw(st.booleans()):
        sql += f" WHERE {draw(expressions)}"
    if draw(st.integers(0, 3)) == 0:
        sql = f"SELECT c0, count(*) AS n FROM ({sql}) s GROUP BY c0"
    if draw(st.booleans()):
        sql += " ORDER BY 1"
    return sql + f" LIMIT {draw(st.integers(0, 50))}"


def _mutated(sql: str, data: st.DataObject) -> str:
    position = data.draw(st.integers(0, len(sql)))
    return sql[:position] + data.draw(st.sampled_from(TOKENS)) + sql[position:]


any_sql = st.one_of(  # three of five draws are queries over the real tables
    queries(), queries(), queries(),
    st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join),
    st.text(max_size=40),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10,
)


# -- checks -------------------------------------------------------------------------------------------------

def assert_no_leak(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} reached the client: {text[:500]}"


def check_rest(response: httpx.Response, sent: object) -> None:
    """No undocumented 5xx, no traceback; an error is the gateway's error shape."""
    check_answer(response.status_code, response.headers.get("content-type", ""), response.text, sent)


def check_answer(status: int, content_type: str, text: str, sent: object) -> None:
    """``check_rest`` of an answer's parts (``status``, its content type, its body as text)."""
    assert_no_leak(text)
    code = _error_code(text) if content_type.startswith("application/json") else None
    if status >= 500:
        assert code in DOCUMENTED_5XX.get(status, ()), f"{status} {code} for {sent!r}: {text[:500]}"
    if status >= 400 and content_type.startswith("application/json"):
        assert code, text[:500]


def _error_code(text: str) -> str | None:
    try:
        return json.loads(text)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def check_flight_error(exc: BaseException, sent: object) -> None:
    assert_no_leak(str(exc))
    error = rebuild_error(exc)
    assert isinstance(error, GatewayError), f"not a gateway error for {sent!r}: {exc!r}"
    if error.http_status >= 500:
        assert error.code in DOCUMENTED_5XX.get(error.http_status, ()), f"{error.code} for {sent!r}: {error}"


# -- the fuzzers ----------------------------------------------------------------------------------------------

@seed(20261130)
@SETTINGS
@given(sql=any_sql, data=st.data())
def test_fuzzed_sql_over_rest(rest, sql, data):
    if data.draw(st.integers(0, 3)) == 0:
        sql = _mutated(sql, data)
    body = {"sql": sql, "timeout_s": 10}
    if data.draw(st.integers(0, 4)) == 0:
        body["params"] = data.draw(st.lists(json_values, max_size=3))
    response = rest.post("/v1/query", json=body)
    event(f"HTTP {response.status_code} {_error_code(response.text) or ''}".strip())  # --hypothesis-show-statistics
    check_rest(response, body)


@seed(20261201)
@settings(SETTINGS, max_examples=100)
@given(sql=any_sql, data=st.data())
def test_fuzzed_sql_over_flight_sql(flight_conn, sql, data):
    params = data.draw(st.one_of(st.none(), st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8),
                                                                st.floats(allow_nan=False, allow_infinity=False),
                                                                st.none()), max_size=2)))
    assume(sql)  # ADBC refuses an empty statement itself, before sending it
    try:
        flight_conn.query(sql, params or None)
    except Exception as exc:  # every failure is checked
        check_flight_error(exc, (sql, params))
    assert flight_conn.query("SELECT 1 AS one").num_rows == 1  # the session is fine


@seed(20261202)
@settings(SETTINGS, max_examples=100)
@given(body=st.one_of(
    st.fixed_dictionaries({}, optional={"sql": st.one_of(queries(), json_values), "params": json_values,
                                        "format": st.one_of(st.sampled_from(["json", "ndjson", "arrow", "csv",
                                                                             "parquet", "xml"]), json_values),
                                        "timeout_s": json_values, "query_id": json_values,
                                        "max_staleness_s": json_values, "default_schema": json_values}),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    json_values,
))
def test_fuzzed_rest_bodies(rest, body):
    check_rest(rest.post("/v1/query", content=json.dumps(body), headers={"content-type": "application/json"}), body)


@pytest.mark.parametrize("raw", [
    b"", b"{", b'{"sql": "SELECT 1",}', b'{"sql": NaN}', b'{"sql": "SELECT ?", "params": [Infinity]}',
    b"[" * 10_000 + b"]" * 10_000, b'{"sql": "' + b"\\u0000" * 1000 + b'"}', b"\xff\xfe\x00",
    b'{"sql": "SELECT 1", "sql": "SELECT 2"}', json.dumps({"sql": "SELECT 1", "params": [[[[[[1]]]]]]}).encode(),
])
def test_malformed_rest_bodies(rest, raw):
    check_rest(rest.post("/v1/query", content=raw, headers={"content-type": "application/json"}), raw[:50])
    assert rest.get("/healthz").status_code == 200


@seed(20261203)
@settings(SETTINGS, max_examples=50)
@given(command=st.binary(max_size=200), ticket=st.binary(max_size=200))
def test_fuzzed_flight_commands_and_tickets(servers, command, ticket):
    client = flight.connect(servers[1])
    try:
        for call in (lambda: client.get_flight_info(flight.FlightDescriptor.for_command(command)),
                     lambda: client.do_get(flight.Ticket(ticket)).read_all()):
            try:
                call()
            except (flight.FlightError, pa.ArrowException) as exc:
                assert_no_leak(str(exc))
                assert not isinstance(exc, flight.FlightInternalError) or "error id" in str(exc), str(exc)[:300]
    finally:
        client.close()


# -- schemathesis over the OpenAPI document ---------------------------------------------------------------------

#: operations not fuzzed here: the catalog refresh (restarts the catalog under the other cases), and those with
#: an open finding of this fuzzer, by its owner's module (remove the entry once fixed)
_SKIPPED = {
    ("POST", "/v1/catalog/refresh"): "restarts the catalog",
}


def test_openapi_operations_answer_no_undocumented_5xx(servers, rest):
    """Every operation of ``/openapi.json``, 10 cases each (derandomized), against the running app."""
    schema = schemathesis.openapi.from_dict(rest.get("/openapi.json").json())
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in _SKIPPED:
            continue

        _fuzz_operation(operation, servers[0])
        checked += 1
    assert checked >= 15
    assert rest.get("/healthz").status_code == 200


def _fuzz_operation(operation, base_url: str) -> None:
    """10 derandomized cases of one OpenAPI operation, each checked with ``check_rest``."""

    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(base_url=base_url, timeout=60)
        sent = (operation.method, case.formatted_path, case.query, case.body)
        content_type = response.headers.get("content-type") or [""]  # schemathesis: a list per header
        check_answer(response.status_code, content_type[0], response.text, sent)

    run()
