"""Named views (``[[views]]``): querying a view alone, joined with a source table, in sub-queries and CTEs, each
answering exactly as the same SQL written inline; filters pushed through a view to its source; views listed by
Flight SQL (ADBC), REST, SHOW/DESCRIBE; config errors (a view catalog named like a source, a cycle, bad SQL, an
unknown key); authorization through the view (security-invoker); OpenLineage column lineage through a view.
Over the demo catalog (SQLite + Parquet). About 5 s."""

from __future__ import annotations

import base64
import contextlib
import re
import threading
import tomllib
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import httpx
import pyarrow as pa
import pytest
import sqlglot

from flight_server.server import GatewayFlightServer
from gateway.api import create_app
from gateway.auth import Authenticator, hash_password
from gateway.errors import ConfigError, PermissionDeniedError, SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from gateway.trust.lineage import LineageBuilder
from planner.derived_filters import push_into_derived_tables
from tests.demo_support import running_app

DEMO_SOURCES = [{"name": "demo_db", "kind": "sqlite", "path": "demo_data/demo.db"},
                {"name": "demo_lake", "kind": "parquet", "path": "demo_data/lake"}]
PLAIN_SQL = "SELECT order_id, customer_id, total, status FROM demo_lake.orders"
BY_CUSTOMER_SQL = ("SELECT c.name AS customer, count(*) AS n, sum(o.total) AS total FROM demo_lake.orders o "
                   "JOIN demo_db.customers c ON c.id = o.customer_id GROUP BY c.name")
EAST_SQL = "SELECT id, name, credit_limit FROM demo_db.customers WHERE region = 'east'"
VIEWS = [
    {"name": "bi.sales.orders_plain", "sql": PLAIN_SQL, "description": "orders, four columns"},
    {"name": "bi.sales.by_customer", "sql": BY_CUSTOMER_SQL},
    {"name": "bi.sales.top_customers", "sql": "SELECT customer, total FROM bi.sales.by_customer WHERE total > 15000"},
    {"name": "bi.crm.east", "sql": EAST_SQL},
]
CAROL_PW = "carol-pw-333"


def view_settings(folder: Path, views=VIEWS, **extra):
    return settings_from_dict({"sources": DEMO_SOURCES, "views": views, **extra}, base_dir=folder)


@pytest.fixture(scope="module")
def engine(demo_folder):
    engine = QueryEngine(view_settings(demo_folder))
    yield engine
    engine.close()


def rows(engine: QueryEngine, sql: str, **scope) -> list[dict]:
    return engine.execute(sql, **scope).reader.read_all().to_pylist()


# -- querying -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("over_view", "inline"), [
    ("SELECT * FROM bi.sales.orders_plain ORDER BY order_id LIMIT 20",
     f"SELECT * FROM ({PLAIN_SQL}) AS orders_plain ORDER BY order_id LIMIT 20"),
    ("SELECT customer, n, total FROM bi.sales.by_customer ORDER BY total DESC, customer LIMIT 5",
     f"SELECT customer, n, total FROM ({BY_CUSTOMER_SQL}) AS b ORDER BY total DESC, customer LIMIT 5"),
    ("SELECT * FROM bi.sales.top_customers ORDER BY customer",  # a view over a view
     f"SELECT customer, total FROM ({BY_CUSTOMER_SQL}) AS b WHERE total > 15000 ORDER BY customer"),
], ids=["alone", "aggregate-join", "view-over-view"])
def test_view_answers_as_inline_sql(engine, over_view, inline):
    got = rows(engine, over_view)
    assert got and got == rows(engine, inline)


def test_view_joined_with_a_source_table(engine):
    sql = ("SELECT v.order_id, c.name, v.total FROM {} v JOIN demo_db.customers c ON c.id = v.customer_id "
           "WHERE v.status = 'returned' AND c.region = 'west' ORDER BY v.order_id LIMIT 30")
    got = rows(engine, sql.format("bi.sales.orders_plain"))
    assert len(got) == 30 and got == rows(engine, sql.format(f"({PLAIN_SQL})"))


@pytest.mark.parametrize("sql", [
    "SELECT count(*) AS n FROM demo_db.customers WHERE id IN (SELECT customer_id FROM {plain} WHERE status = 'open')",
    "WITH t AS (SELECT customer_id, sum(total) AS s FROM {plain} GROUP BY customer_id) "
    "SELECT e.name, t.s FROM t JOIN {east} e ON e.id = t.customer_id ORDER BY e.name LIMIT 10",
    "SELECT name FROM {east} e WHERE EXISTS (SELECT 1 FROM {plain} p WHERE p.customer_id = e.id AND p.total > 900) "
    "ORDER BY name",
], ids=["in-subquery", "cte-body", "exists"])
def test_view_in_subqueries_and_ctes(engine, sql):
    got = rows(engine, sql.format(plain="bi.sales.orders_plain", east="bi.crm.east"))
    assert got and got == rows(engine, sql.format(plain=f"({PLAIN_SQL})", east=f"({EAST_SQL})"))


def test_filter_is_pushed_through_the_view(engine):
    over_view = engine.explain("SELECT v.order_id FROM bi.sales.orders_plain v WHERE v.status = 'shipped'")
    inline = engine.explain(f"SELECT v.order_id FROM ({PLAIN_SQL}) v WHERE v.status = 'shipped'")
    assert over_view == inline
    fragment_sql = next(line for line in over_view.splitlines() if line.strip().startswith("SQL: SELECT"))
    assert "FROM \"orders\"" in fragment_sql and "'shipped'" in fragment_sql  # the filter runs in the source
    joined = engine.explain("SELECT e.name, o.total FROM bi.crm.east e JOIN demo_lake.orders o "
                            "ON o.customer_id = e.id WHERE e.id < 20 AND o.status = 'open'")
    sqlite = next(line for line in joined.splitlines() if "SQL: SELECT" in line and '"customers"' in line)
    assert "\"region\" = 'east'" in sqlite and "\"id\" < 20" in sqlite  # the view's filter and the query's


def test_views_are_typed_at_start(engine):
    view = engine.catalog.views.find(["bi", "sales", "by_customer"])
    assert view.schema.names == ["customer", "n", "total"] and view.sources == {"demo_db", "demo_lake"}
    assert [str(t) for t in view.tables] == ["demo_db.main.customers", "demo_lake.main.orders"]
    assert engine.catalog.views.find(["BI", "Sales", "TOP_customers"]).sources == {"demo_db", "demo_lake"}


# -- listing --------------------------------------------------------------------------------------------------

def test_show_and_describe(engine):
    tables = rows(engine, "SHOW TABLES FROM bi")
    assert [(t["table_schema"], t["table_name"], t["table_type"]) for t in tables] == [
        ("crm", "east", "VIEW"), ("sales", "by_customer", "VIEW"), ("sales", "orders_plain", "VIEW"),
        ("sales", "top_customers", "VIEW")]
    assert {"catalog_name": "bi", "source_kind": "view"} in rows(engine, "SHOW CATALOGS")
    assert [(c["column_name"], c["data_type"]) for c in rows(engine, "DESCRIBE bi.sales.by_customer")] == [
        ("customer", "TEXT"), ("n", "BIGINT"), ("total", "DECIMAL(20, 2)")]


@contextlib.contextmanager
def flight_server(settings):
    engine = QueryEngine(settings)
    server = GatewayFlightServer(engine, "grpc://127.0.0.1:0", Authenticator(settings.auth))
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"grpc://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        engine.close()


def test_flight_sql_lists_views(demo_folder):
    with flight_server(view_settings(demo_folder)) as uri, flightsql.connect(uri, autocommit=True) as conn:
        catalogs = [c["catalog_name"] for c in conn.adbc_get_objects(depth="catalogs").read_all().to_pylist()]
        assert catalogs == ["bi", "demo_db", "demo_lake"]
        objects = conn.adbc_get_objects(depth="tables", catalog_filter="bi", table_types_filter=["VIEW"])
        found = {(s["db_schema_name"], t["table_name"], t["table_type"])
                 for c in objects.read_all().to_pylist() for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]}
        assert found == {("sales", "orders_plain", "VIEW"), ("sales", "by_customer", "VIEW"),
                         ("sales", "top_customers", "VIEW"), ("crm", "east", "VIEW")}
        schema = conn.adbc_get_table_schema("by_customer", catalog_filter="bi", db_schema_filter="sales")
        assert schema.names == ["customer", "n", "total"] and schema.field("n").type == pa.int64()
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM bi.sales.orders_plain WHERE status IS NULL")
            assert cursor.fetchone() == (1264,)


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def secured(demo_folder):
    """A REST app over the views with auth: alice may use every source, carol only demo_db."""
    settings = view_settings(demo_folder, auth={"enabled": True, "users": [
        {"name": "alice", "password_hash": hash_password("alice-pw-1")},
        {"name": "carol", "password_hash": hash_password(CAROL_PW), "sources": ["demo_db"]}]})
    engine = QueryEngine(settings)
    try:
        with running_app(create_app(engine, Authenticator(settings.auth))) as url:
            yield url, engine
    finally:
        engine.close()


def test_rest_lists_views(secured):
    url, _ = secured
    alice = basic("alice", "alice-pw-1")
    assert {"name": "bi", "kind": "view"} in httpx.get(f"{url}/v1/sources", headers=alice).json()
    listed = httpx.get(f"{url}/v1/sources/bi/tables", headers=alice).json()
    assert {"source": "bi", "schema": "sales", "table": "by_customer", "type": "VIEW"} in listed and len(listed) == 4
    described = httpx.post(f"{url}/v1/query", json={"sql": "DESCRIBE bi.crm.east"}, headers=alice).json()
    assert [r[0] for r in described["rows"]] == ["id", "name", "credit_limit"]


# -- authorization (security-invoker) ---------------------------------------------------------------------------

def test_view_over_a_source_the_caller_may_not_use_is_refused_as_the_source_is(secured):
    url, engine = secured
    carol = basic("carol", CAROL_PW)
    on_table = httpx.post(f"{url}/v1/query", json={"sql": "SELECT * FROM demo_lake.orders"}, headers=carol)
    on_view = httpx.post(f"{url}/v1/query", json={"sql": "SELECT * FROM bi.sales.orders_plain"}, headers=carol)
    assert on_table.status_code == on_view.status_code == 403
    assert on_view.json()["error"] == on_table.json()["error"]  # same code, message and source
    assert on_view.json()["error"]["source"] == "demo_lake"
    joined = httpx.post(f"{url}/v1/query", headers=carol, json={
        "sql": "SELECT e.name FROM bi.crm.east e JOIN bi.sales.by_customer b ON b.customer = e.name"})
    assert joined.status_code == 403
    with pytest.raises(PermissionDeniedError, match="demo_lake"):
        engine.plan("SELECT * FROM bi.sales.top_customers", allowed_sources=["demo_db"])
    with pytest.raises(PermissionDeniedError, match="demo_lake"):
        engine.execute("DESCRIBE bi.sales.orders_plain", allowed_sources=["demo_db"])
    # carol sees and reads the view over her source, and only that one
    assert httpx.get(f"{url}/v1/sources/bi/tables", headers=carol).json() == [
        {"source": "bi", "schema": "crm", "table": "east", "type": "VIEW"}]
    answer = httpx.post(f"{url}/v1/query", json={"sql": "SELECT count(*) FROM bi.crm.east"}, headers=carol).json()
    assert answer["rows"] == [[50]]


# -- config errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("views", "key", "message"), [
    ([{"name": "demo_db.x.v", "sql": "SELECT 1 AS a"}], "views[0].name", "is the name of source 'demo_db'"),
    ([{"name": "DEMO_LAKE.x.v", "sql": "SELECT 1 AS a"}], "views[0].name", "is the name of source 'demo_lake'"),
    ([{"name": "bi.s.a", "sql": "SELECT * FROM bi.s.b"}, {"name": "bi.s.b", "sql": "SELECT * FROM bi.s.c"},
      {"name": "bi.s.c", "sql": "SELECT * FROM bi.s.a"}], "views[0].sql",
     "cycle: bi.s.a -> bi.s.b -> bi.s.c -> bi.s.a"),
    ([{"name": "bi.s.a", "sql": "SELECT * FROM bi.s.a"}], "views[0].sql", "cycle: bi.s.a -> bi.s.a"),
    ([{"name": "bi.s.a", "sql": "SELECT * FROM bi.s.nothere"}], "views[0].sql", "reads 'bi.s.nothere', which is no"),
    ([{"name": "bi.s.a", "sql": "SELEC 1"}], "views[0].sql", "not a read-only query"),
    ([{"name": "bi.s.a", "sql": "DELETE FROM demo_lake.orders"}], "views[0].sql", "read-only"),
    ([{"name": "bi.a", "sql": "SELECT 1 AS a"}], "views[0].name", "is not catalog.schema.view"),
    ([{"name": "bi.s.a", "sql": "SELECT 1 AS a", "descripton": "x"}], "views[0].descripton",
     "unknown key 'descripton'; did you mean 'description'?"),
    ([{"name": "bi.s.a", "sql": "SELECT 1 AS a"}, {"name": "BI.s.A", "sql": "SELECT 2 AS a"}], "views[1].name",
     "duplicate view name"),
], ids=["collision", "collision-case", "cycle", "self-cycle", "unknown-view", "syntax", "not-read-only", "two-parts",
        "unknown-key", "duplicate"])
def test_config_errors(demo_folder, views, key, message):
    with pytest.raises(ConfigError, match="views") as caught:
        view_settings(demo_folder, views=views)
    assert caught.value.details["key"] == key and message in caught.value.message, caught.value.message


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT amount FROM demo_lake.orders", "view 'bi.s.bad': unknown column 'amount'"),
    ("SELECT * FROM demo_lake.ordrs", "view 'bi.s.bad': unknown table 'ordrs'"),
    ("SELECT o.order_id, c.id AS order_id FROM demo_lake.orders o JOIN demo_db.customers c ON c.id = o.customer_id",
     "order_id"),
], ids=["unknown-column", "unknown-table", "duplicate-column"])
def test_bad_view_sql_fails_the_start_naming_the_view(demo_folder, sql, message):
    settings = view_settings(demo_folder, views=[{"name": "bi.s.bad", "sql": sql}])
    with pytest.raises(ConfigError) as caught:
        QueryEngine(settings)
    assert message in caught.value.message and caught.value.details["view"] == "bi.s.bad"


# -- lineage --------------------------------------------------------------------------------------------------

def test_openlineage_column_lineage_maps_through_the_view(engine):
    sql = "SELECT t.customer, t.total * 2 AS doubled FROM bi.sales.top_customers t"
    plan = engine.plan(sql)
    builder = LineageBuilder("gw", "q", engine.catalog)
    facet = builder.column_lineage(sql, plan)
    lake = builder.dataset_name(engine.catalog.resolve(["demo_lake", "main", "orders"]))
    db = builder.dataset_name(engine.catalog.resolve(["demo_db", "main", "customers"]))

    def inputs(column):
        return {((f.namespace, f.name), f.field, f.transformations[0].subtype) for f in facet.fields[column].inputFields}

    assert inputs("customer") == {(db, "name", "IDENTITY")}
    assert inputs("doubled") == {(lake, "total", "AGGREGATION")}
    # the run's inputs are the tables under the view
    assert sorted({t for f in plan.fragments for t in f.tables}) == ["demo_db.main.customers", "demo_lake.main.orders"]


def test_readme_views_example_runs(demo_folder):
    """The README's ``[[views]]`` example, added to the demo catalog, loads and its queries answer."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("### Named views", 1)[1].split("\n### ", 1)[0]
    config = tomllib.loads(re.search(r"```toml\n(.+?)```", section, re.S).group(1))
    queries = [q.strip() for q in re.search(r"```sql\n(.+?)```", section, re.S).group(1).split(";") if q.strip()]
    engine = QueryEngine(view_settings(demo_folder, views=config["views"]))
    try:
        assert [str(v.ref) for v in engine.catalog.views] == ["bi.sales.by_customer", "bi.sales.large_customers"]
        for sql in queries:
            assert rows(engine, sql), sql
    finally:
        engine.close()


# -- filters into derived tables (planner.derived_filters) ---------------------------------------------------------

@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT v.a FROM (SELECT t.a AS a, t.b + 1 AS b FROM t AS t) AS v WHERE v.b > 2 AND v.a = 1",
     "SELECT v.a FROM (SELECT t.a AS a, t.b + 1 AS b FROM t AS t WHERE (t.b + 1) > 2 AND t.a = 1) AS v"),
    ("SELECT v.a FROM u AS u LEFT JOIN (SELECT t.a AS a FROM t AS t) AS v ON v.a = u.a WHERE v.a = 1",  # optional side
     None),
    ("SELECT v.a FROM (SELECT t.a AS a, count(*) AS n FROM t AS t GROUP BY t.a) AS v WHERE v.a = 1", None),
    ("SELECT v.a FROM (SELECT t.a AS a FROM t AS t LIMIT 5) AS v WHERE v.a = 1", None),
    ("SELECT v.a FROM (SELECT t.a AS a FROM t AS t) AS v JOIN u AS u ON u.a = v.a WHERE v.a = u.b", None),
    ("SELECT v.a FROM (SELECT t.a AS a FROM t AS t) AS v WHERE v.a > (SELECT max(u.a) FROM u AS u)", None),
], ids=["plain", "null-supplying", "aggregate", "limit", "two-tables", "sub-query"])
def test_filters_move_into_derived_tables_only_where_answers_do_not_change(sql, expected):
    tree = sqlglot.parse_one(sql)
    assert push_into_derived_tables(tree).sql() == sqlglot.parse_one(expected or sql).sql()


def test_view_over_a_source_down_at_start_does_not_stop_the_start(demo_folder):
    """A source that cannot be reached at start does not stop the gateway: its views answer 503 naming the view
    (``ViewTyping.retry`` types them once the source answers), the others work and are listed."""
    vault = {"name": "vault", "kind": "postgresql", "uri": "postgresql://postgres@127.0.0.1:1/vault"}
    settings = settings_from_dict({"sources": [*DEMO_SOURCES, vault], "views": [
        {"name": "bi.s.secret", "sql": "SELECT * FROM vault.public.keys"},
        {"name": "bi.s.east", "sql": EAST_SQL}]}, base_dir=demo_folder)
    engine = QueryEngine(settings)
    try:
        secret = engine.catalog.views.find(["bi", "s", "secret"])
        assert secret.query is None and "vault" in secret.error
        with pytest.raises(SourceUnavailableError, match=r"bi\.s\.secret"):
            engine.plan("SELECT * FROM bi.s.secret")
        assert len(rows(engine, "SELECT * FROM bi.s.east")) == 50
        assert ("s", "east", "VIEW") in {(t["table_schema"], t["table_name"], t["table_type"])
                                        for t in rows(engine, "SHOW TABLES FROM bi")}
    finally:
        engine.close()


def test_views_follow_schema_drift_of_their_tables(tmp_path):
    """After a catalog refresh the views are typed again: a column added under ``SELECT *`` is listed; a view
    whose column was dropped answers an error naming the view and the column, while the other views work."""
    import sqlite3

    path = tmp_path / "drift.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, "x", 10), (2, "y", 20)])
    settings = settings_from_dict({"sources": [{"name": "s", "kind": "sqlite", "path": str(path)}], "views": [
        {"name": "bi.d.every", "sql": "SELECT * FROM s.main.t"},
        {"name": "bi.d.ab", "sql": "SELECT a, b FROM s.main.t"}]}, base_dir=tmp_path)
    engine = QueryEngine(settings)
    try:
        assert engine.catalog.views.find(["bi", "d", "every"]).schema.names == ["id", "a", "b"]
        with sqlite3.connect(path) as db:
            db.execute("ALTER TABLE t ADD COLUMN c REAL")
        engine.catalog.refresh("s")
        assert rows(engine, "SELECT count(*) AS n FROM bi.d.every") == [{"n": 2}]
        assert engine.catalog.views.find(["bi", "d", "every"]).schema.names == ["id", "a", "b", "c"]
        with sqlite3.connect(path) as db:
            db.execute("ALTER TABLE t DROP COLUMN b")
        engine.catalog.refresh("s")
        assert [r["a"] for r in rows(engine, "SELECT a FROM bi.d.every ORDER BY id")] == ["x", "y"]
        with pytest.raises(SourceUnavailableError, match=r"bi\.d\.ab.*\bb\b"):
            engine.plan("SELECT * FROM bi.d.ab")
    finally:
        engine.close()
