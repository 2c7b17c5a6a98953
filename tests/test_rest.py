"""The REST API over real HTTP.

``gateway.api.create_app`` runs in a real uvicorn server on a background thread (one per module, plus
auth-enabled ones); requests go through ``httpx``. Every expected value is computed from the demo files
directly (sqlite3 for ``demo_db``, pyarrow.dataset for ``demo_lake``), never through the gateway.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
import tomllib
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.api import create_app
from gateway.auth import Authenticator
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.demo_support import (
    customers_db,
    lake_table_names,
    orders_table,
    running_app,
    sqlite_scalar,
)

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ALICE_PASSWORD = "correct horse battery staple"

# customers (SQLite) JOIN orders (Parquet), a filter on each side, GROUP BY, ORDER BY, LIMIT
JOIN_SQL = """
SELECT c.region, count(*) AS n_orders, sum(o.total) AS revenue, max(o.order_date) AS last_order
FROM demo_db.customers c
JOIN demo_lake.orders o ON o.customer_id = c.id
WHERE c.active AND c.region <> 'south' AND o.year >= 2023 AND o.status = 'shipped'
GROUP BY c.region
ORDER BY revenue DESC
LIMIT 2
"""
JOIN_COLUMNS = [
    {"name": "region", "type": "string"},
    {"name": "n_orders", "type": "int64"},
    {"name": "revenue", "type": "decimal128(20, 2)"},
    {"name": "last_order", "type": "date32[day]"},
]


def join_reference(config: Path) -> list[list]:
    """JOIN_SQL computed with sqlite3 + pyarrow.dataset + Python."""
    region_of = {r["id"]: r["region"] for r in customers_db(config, "active AND region <> 'south'")}
    orders = orders_table(
        config, (ds.field("year") >= 2023) & (ds.field("status") == "shipped"),
        ["customer_id", "total", "order_date"],
    )
    groups: dict[str, list] = {}
    for row in orders.to_pylist():
        region = region_of.get(row["customer_id"])
        if region is None:
            continue
        g = groups.setdefault(region, [0, Decimal("0.00"), dt.date.min])
        g[0] += 1
        g[1] += row["total"]
        g[2] = max(g[2], row["order_date"])
    ranked = sorted(([region, *g] for region, g in groups.items()), key=lambda r: r[2], reverse=True)
    assert len(ranked) == 3  # north, east, west: the LIMIT really cuts
    return ranked[:2]


def as_json(value):
    """How the REST API promises to encode a value in JSON (decimals as strings, dates ISO-8601)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def error_of(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


# -- fixtures -------------------------------------------------------------------------------------------

def _auth_settings(config: Path, ttl_s: float):
    raw = tomllib.loads(config.read_text())
    raw["auth"] = {"enabled": True, "users": [{"name": "alice", "password": ALICE_PASSWORD}], "token_ttl_s": ttl_s}
    return settings_from_dict(raw, base_dir=config.parent)


def _auth_server(config: Path, ttl_s: float):
    settings = _auth_settings(config, ttl_s)
    gateway = QueryEngine(settings)
    authenticator = Authenticator(settings.auth)
    try:
        with running_app(create_app(gateway, authenticator)) as url, httpx.Client(base_url=url, timeout=30) as c:
            yield c, authenticator
    finally:
        gateway.close()


@pytest.fixture(scope="module")
def auth_client(demo_config):
    """(client, authenticator) of an auth-enabled app: user alice, tokens valid 60 s."""
    yield from _auth_server(demo_config, 60.0)


@pytest.fixture
def short_ttl_auth_client(demo_config):
    """(client, authenticator) of an auth-enabled app whose bearer tokens live 1 s."""
    yield from _auth_server(demo_config, 1.0)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- queries --------------------------------------------------------------------------------------------

def test_federated_join_json(client, demo_config):
    response = client.post("/v1/query", json={"sql": JOIN_SQL})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["query_id"])
    assert body["columns"] == JOIN_COLUMNS
    expected = [[as_json(v) for v in row] for row in join_reference(demo_config)]
    assert body["rows"] == expected
    assert body["row_count"] == 2
    assert isinstance(body["rows"][0][2], str)  # decimals travel as strings, exactly


def test_federated_join_arrow_stream(client, demo_config):
    as_json_rows = client.post("/v1/query", json={"sql": JOIN_SQL, "format": "json"}).json()
    response = client.post("/v1/query", json={"sql": JOIN_SQL, "format": "arrow"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == ARROW_STREAM
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-query-id"])

    reader = pa.ipc.open_stream(response.content)
    table = reader.read_all()
    assert table.schema.names == [c["name"] for c in JOIN_COLUMNS]
    assert table.schema.field("revenue").type == pa.decimal128(20, 2)
    assert table.schema.field("last_order").type == pa.date32()
    # the same columns and values as the JSON answer...
    assert [{"name": f.name, "type": str(f.type)} for f in table.schema] == as_json_rows["columns"]
    rows = [list(r.values()) for r in table.to_pylist()]
    assert [[as_json(v) for v in row] for row in rows] == as_json_rows["rows"]
    # ...and as the independent reference, in native types (Decimal, date)
    assert rows == join_reference(demo_config)


def test_query_with_positional_parameters(client, demo_config):
    sql = (
        "SELECT o.order_id, o.total, c.name FROM demo_lake.orders o "
        "JOIN demo_db.customers c ON c.id = o.customer_id "
        "WHERE c.region = ? AND o.quantity >= ? AND o.order_date < ? ORDER BY o.order_id"
    )
    params = ["west", 8, "2022-03-01"]
    response = client.post("/v1/query", json={"sql": sql, "params": params})
    assert response.status_code == 200, response.text
    body = response.json()

    names = {c["id"]: c["name"] for c in customers_db(demo_config, "region = ?", ("west",))}
    orders = orders_table(
        demo_config, (ds.field("quantity") >= 8) & (ds.field("order_date") < pa.scalar(dt.date(2022, 3, 1))),
    ).to_pylist()
    expected = sorted(
        [o["order_id"], str(o["total"]), names[o["customer_id"]]] for o in orders if o["customer_id"] in names
    )
    assert expected, "the reference must not be empty"
    assert [c["name"] for c in body["columns"]] == ["order_id", "total", "name"]
    assert body["rows"] == expected
    assert body["row_count"] == len(expected)

    # the same query with other values gives other rows: the parameters are really bound
    other = client.post("/v1/query", json={"sql": sql, "params": ["north", 9, "2025-01-01"]}).json()
    north = {c["id"] for c in customers_db(demo_config, "region = 'north'")}
    expected_north = orders_table(
        demo_config, (ds.field("quantity") >= 9) & (ds.field("order_date") < pa.scalar(dt.date(2025, 1, 1))),
    ).to_pylist()
    assert other["row_count"] == sum(o["customer_id"] in north for o in expected_north)


def test_parameter_count_mismatch_is_400(client):
    response = client.post("/v1/query", json={"sql": "SELECT id FROM demo_db.customers WHERE id = ?",
                                              "params": [1, 2]})
    error = error_of(response, 400, "invalid_request")
    assert "1 parameter" in error["message"] and "2 value" in error["message"]


# -- explain --------------------------------------------------------------------------------------------

def test_explain_shows_pushed_sqlite_filter_and_residual(client):
    sql = (
        "SELECT c.name, sum(o.total) AS spent FROM demo_db.customers c "
        "JOIN demo_lake.orders o ON o.customer_id = c.id "
        "WHERE c.region = ? AND o.quantity > 5 GROUP BY c.name"
    )
    response = client.post("/v1/explain", json={"sql": sql, "params": ["north"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pushed_whole"] is False
    by_source = {f["source"]: f for f in body["fragments"]}
    assert set(by_source) == {"demo_db", "demo_lake"}

    sqlite_fragment = by_source["demo_db"]
    assert sqlite_fragment["tables"] == ["demo_db.main.customers"]
    # the bound parameter is pushed into the SQLite fragment's WHERE clause
    assert re.search(r"""WHERE\s+"?c"?\."?region"?\s*=\s*'north'""", sqlite_fragment["sql"]), sqlite_fragment
    assert any("filter" in p and "north" in p for p in sqlite_fragment["pushed"])
    lake_fragment = by_source["demo_lake"]
    assert re.search(r"""WHERE\s+"?o"?\."?quantity"?\s*>\s*5""", lake_fragment["sql"]), lake_fragment

    residual = body["residual_sql"]
    assert all(f["id"] in residual for f in body["fragments"])
    assert "JOIN" in residual.upper() and "GROUP BY" in residual.upper()
    assert "north" not in residual  # the filter is gone from the residual: it runs in SQLite
    assert "Residual" in body["plan"] and sqlite_fragment["sql"] in body["plan"]
    assert body["not_pushed"] == []  # both filters ran in their sources: nothing stayed behind


def test_explain_lists_what_stayed_local_and_why(client):
    # SQLite's LIKE ignores case: the filter stays in DataFusion, and so the LIMIT (which must follow it)
    sql = "SELECT name FROM demo_db.customers WHERE name LIKE 'A%' ORDER BY id LIMIT 3"
    response = client.post("/v1/explain", json={"sql": sql})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["not_pushed"] == [
        {"what": """filter "customers"."name" LIKE 'A%' on demo_db.main.customers""",
         "reason": "LIKE ignores case in this source's dialect"},
        {"what": "LIMIT on demo_db.main.customers", "reason": "the query has a filter that stays in DataFusion"},
    ]
    [fragment] = body["fragments"]
    assert "LIKE" not in fragment["sql"] and "LIMIT" not in fragment["sql"]
    for item in body["not_pushed"]:
        assert item["reason"] in body["plan"]


def test_explain_single_source_query_is_pushed_whole(client):
    body = client.post("/v1/explain", json={"sql": "SELECT count(*) AS n FROM demo_lake.orders WHERE year = 2024"})
    body = body.json()
    assert body["pushed_whole"] is True
    assert body["residual_sql"] is None
    [fragment] = body["fragments"]
    assert fragment["source"] == "demo_lake" and "2024" in fragment["sql"]


# -- catalog --------------------------------------------------------------------------------------------

def test_sources(client, demo_config):
    response = client.get("/v1/sources")
    assert response.status_code == 200
    configured = tomllib.loads(demo_config.read_text())["sources"]
    assert response.json() == [{"name": s["name"], "kind": s["kind"]} for s in configured]


def test_tables_of_demo_lake_and_demo_db(client, demo_config):
    lake = client.get("/v1/sources/demo_lake/tables")
    assert lake.status_code == 200
    assert all(t["source"] == "demo_lake" for t in lake.json())
    assert sorted(t["table"] for t in lake.json()) == lake_table_names(demo_config) == ["orders", "regions"]

    db = client.get("/v1/sources/demo_db/tables").json()
    in_sqlite = sqlite_scalar(
        demo_config, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master "
        "WHERE type = 'table' ORDER BY name)"
    )
    assert [t["table"] for t in db] == in_sqlite.split(",") == ["customers", "products"]


def test_tables_of_unknown_source_is_404_with_nearest(client):
    error = error_of(client.get("/v1/sources/demo_lak/tables"), 404, "unknown_object")
    assert error["kind"] == "source" and error["name"] == "demo_lak"
    assert error["nearest"][0] == "demo_lake"
    assert "demo_lake" in error["message"]


def test_healthz(client):
    """Liveness only: no source names to anyone (readiness per source is /readyz)."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and sorted(ready["sources"]) == ["demo_db", "demo_lake"]


def orders_dataset_count(config: Path, year: int) -> int:
    return orders_table(config, ds.field("year") == year, ["order_id"]).num_rows


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def test_metrics_count_queries_and_source_rows(client, demo_config):
    ok_key = ("gateway_queries_total", (("status", "ok"),))
    rows_key = ("gateway_source_rows_total", (("source", "demo_lake"),))
    before = _samples(client.get("/metrics").text)

    response = client.post("/v1/query", json={"sql": "SELECT order_id FROM demo_lake.orders WHERE year = 2024"})
    assert response.status_code == 200
    expected_rows = orders_dataset_count(demo_config, 2024)
    assert response.json()["row_count"] == expected_rows

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "gateway_queries_total" in metrics.text
    after = _samples(metrics.text)
    assert after[ok_key] == before.get(ok_key, 0) + 1
    assert after[rows_key] == before.get(rows_key, 0) + expected_rows



def test_history_lists_the_query_with_fragment_rows(client, demo_config):
    sql = (
        "SELECT c.name, o.order_id FROM demo_db.customers c JOIN demo_lake.orders o ON o.customer_id = c.id "
        "WHERE c.region = 'north' AND o.year = 2022"
    )
    body = client.post("/v1/query", json={"sql": sql}).json()
    north = {c["id"] for c in customers_db(demo_config, "region = 'north'")}
    orders_2022 = orders_table(demo_config, ds.field("year") == 2022, ["customer_id"]).column(0).to_pylist()
    assert body["row_count"] == sum(cid in north for cid in orders_2022)

    history = client.get("/v1/history", params={"limit": 5})
    assert history.status_code == 200
    entry = next(h for h in history.json() if h["query_id"] == body["query_id"])
    assert history.json()[0]["query_id"] == body["query_id"]  # newest first
    assert entry["sql"] == sql
    assert entry["status"] == "ok" and entry["error"] is None
    assert entry["rows"] == body["row_count"]
    assert entry["user"] is None  # auth disabled
    assert entry["pushed_whole"] is False
    fragment_rows = {f["source"]: f["rows"] for f in entry["fragments"]}
    # each source returned only its filtered rows: the filters ran in SQLite and in the Parquet scan, and
    # a dynamic filter sent the north customers' ids into the orders scan
    assert fragment_rows == {"demo_db": len(north), "demo_lake": sum(cid in north for cid in orders_2022)}


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "post" in paths["/v1/query"] and "post" in paths["/v1/explain"]
    assert {"/v1/sources", "/v1/sources/{source}/tables", "/v1/history", "/healthz", "/metrics"} <= set(paths)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# -- errors ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "arrow"])
def test_syntax_error_is_400_with_line_and_column(client, fmt):
    sql = "SELECT id\nFROM demo_db.customers\nWHERE id = )"
    error = error_of(client.post("/v1/query", json={"sql": sql, "format": fmt}), 400, "syntax_error")
    assert error["phase"] == "parsing"
    assert error["line"] == 3
    assert error["column"] == sql.splitlines()[2].index(")") + 1
    assert "line 3, column 12" in error["message"]


def test_unknown_column_is_404_with_nearest(client):
    error = error_of(client.post("/v1/query", json={"sql": "SELECT id, emial FROM demo_db.customers"}),
                     404, "unknown_object")
    assert error["kind"] == "column" and error["name"] == "emial"
    assert "email" in error["nearest"]
    assert "customers" in error["message"]


def test_unknown_qualified_column_is_404_with_nearest(client):
    sql = "SELECT c.id, c.regoin FROM demo_db.customers c"
    error = error_of(client.post("/v1/query", json={"sql": sql}), 404, "unknown_object")
    assert "region" in error["nearest"]


@pytest.mark.parametrize(("sql", "statement"), [
    ("DELETE FROM demo_db.customers WHERE id = 1", "DELETE"),
    ("DROP TABLE demo_db.customers", "DROP"),
    ("INSERT INTO demo_db.customers (id, name) VALUES (1000, 'x')", "INSERT"),
])
def test_write_statements_are_refused(client, demo_config, sql, statement):
    error = error_of(client.post("/v1/query", json={"sql": sql}), 400, "unsupported_statement")
    assert error["statement"] == statement
    assert "read-only" in error["message"]
    # and nothing changed in the source
    assert sqlite_scalar(demo_config, "SELECT count(*) FROM customers") == 200
    assert sqlite_scalar(demo_config, "SELECT count(*) FROM customers WHERE id IN (1, 1000)") == 1


# -- auth -----------------------------------------------------------------------------------------------

COUNT_SQL = "SELECT count(*) AS n FROM demo_db.customers WHERE active"


def test_auth_missing_header_is_401(auth_client):
    client, _ = auth_client
    for response in (client.post("/v1/query", json={"sql": COUNT_SQL}), client.get("/v1/sources")):
        error = error_of(response, 401, "authentication_failed")
        assert error["phase"] == "auth"


def test_auth_wrong_password_is_401(auth_client):
    client, _ = auth_client
    wrong = error_of(client.post("/v1/query", json={"sql": COUNT_SQL}, headers=basic("alice", "nope")),
                     401, "authentication_failed")
    unknown = error_of(client.post("/v1/query", json={"sql": COUNT_SQL}, headers=basic("mallory", ALICE_PASSWORD)),
                       401, "authentication_failed")
    assert wrong["message"] == unknown["message"]  # never says which part was wrong
    garbage = client.post("/v1/query", json={"sql": COUNT_SQL}, headers={"Authorization": "Bearer not-a-token"})
    error_of(garbage, 401, "authentication_failed")


def test_auth_basic_ok(auth_client, demo_config):
    client, _ = auth_client
    response = client.post("/v1/query", json={"sql": COUNT_SQL}, headers=basic("alice", ALICE_PASSWORD))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == [[sqlite_scalar(demo_config, "SELECT count(*) FROM customers WHERE active")]]
    history = client.get("/v1/history", headers=basic("alice", ALICE_PASSWORD)).json()
    entry = next(h for h in history if h["query_id"] == body["query_id"])
    assert entry["user"] == "alice"


def test_auth_bearer_token_ok(auth_client, demo_config):
    client, authenticator = auth_client
    token = authenticator.login("alice", ALICE_PASSWORD)
    headers = {"Authorization": f"Bearer {token}"}
    sql = "SELECT region, count(*) AS n FROM demo_db.customers GROUP BY region ORDER BY region"
    response = client.post("/v1/query", json={"sql": sql}, headers=headers)
    assert response.status_code == 200, response.text
    expected = sorted(Counter(c["region"] for c in customers_db(demo_config)).items())
    assert [tuple(r) for r in response.json()["rows"]] == expected
    sources = client.get("/v1/sources", headers=headers)
    assert [s["name"] for s in sources.json()] == ["demo_db", "demo_lake"]


def test_auth_expired_token_is_401(short_ttl_auth_client, demo_config):
    client, authenticator = short_ttl_auth_client
    token = authenticator.login("alice", ALICE_PASSWORD)
    headers = {"Authorization": f"Bearer {token}"}
    fresh = client.post("/v1/query", json={"sql": COUNT_SQL}, headers=headers)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["rows"] == [[sqlite_scalar(demo_config, "SELECT count(*) FROM customers WHERE active")]]
    time.sleep(authenticator.ttl_s + 0.2)
    error = error_of(client.post("/v1/query", json={"sql": COUNT_SQL}, headers=headers),
                     401, "authentication_failed")
    assert "expired" in error["message"]
