"""Planner passes: name resolution, read-only checks, syntax errors, and each pushdown rule with its reason.

Each rule is checked on the fragment SQL the planner produces (golden fragments, one source dialect each)."""

from __future__ import annotations

import pytest

from gateway.errors import (
    AmbiguousNameError,
    InvalidRequestError,
    SourceUnavailableError,
    SqlSyntaxError,
    UnknownObjectError,
    UnsupportedStatementError,
)
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.conftest import free_port


@pytest.fixture(scope="module")
def offline_gateway(files):
    """SQLite + Parquet sources plus a PostgreSQL source that is down (nothing listens on its port)."""
    settings = settings_from_dict({"sources": [
        {"name": "down", "kind": "postgresql", "uri": f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
        {"name": "lake", "kind": "parquet", "path": str(files["lake"])},
        {"name": "lake2", "kind": "parquet", "path": str(files["lake"])},
        {"name": "shop", "kind": "sqlite", "path": str(files["sqlite"])},
    ]}, base_dir=files["root"])
    gw = QueryEngine(settings)
    yield gw
    gw.close()


@pytest.mark.parametrize("sql", [
    "DROP TABLE down.public.t",
    "DELETE FROM down.public.t",
    "INSERT INTO down.public.t VALUES (1)",
    "UPDATE down.public.t SET a = 1",
    "CREATE TABLE x (a int)",
    "TRUNCATE down.public.t",
    "WITH d AS (DELETE FROM down.public.t RETURNING *) SELECT * FROM d",
    "SELECT * INTO newtable FROM down.public.t",
    "BEGIN",
    "SET search_path TO x",
    "SELECT 1; SELECT 2",
])
def test_writes_are_refused_before_any_source_is_contacted(offline_gateway, sql):
    # the 'down' source is unreachable: a SourceUnavailableError would mean it was contacted
    with pytest.raises(UnsupportedStatementError) as err:
        offline_gateway.execute(sql)
    assert "read-only" in err.value.message or "one statement" in err.value.message


def test_syntax_error_has_line_and_column(offline_gateway):
    with pytest.raises(SqlSyntaxError) as err:
        offline_gateway.execute("SELECT product_id\nFROM shop.main.products\nWHERE (price > 1")
    assert err.value.line == 3
    assert err.value.column is not None and err.value.column >= 1
    assert "line 3" in err.value.message
    with pytest.raises(SqlSyntaxError) as err:
        offline_gateway.execute("SELECT FROM WHERE")
    assert err.value.line == 1 and err.value.column == 13


def test_unknown_names_list_the_nearest(offline_gateway):
    with pytest.raises(UnknownObjectError) as err:
        offline_gateway.execute("SELECT * FROM shop.main.prodcts")
    assert err.value.nearest == ["products"]
    with pytest.raises(UnknownObjectError) as err:
        offline_gateway.execute("SELECT * FROM shopp.main.products")
    assert "shop" in err.value.nearest
    with pytest.raises(UnknownObjectError) as err:
        offline_gateway.execute("SELECT prise FROM shop.main.products")
    assert err.value.nearest[0] == "price" and "column" in err.value.message


def test_ambiguous_name_lists_candidates(offline_gateway):
    with pytest.raises(AmbiguousNameError) as err:
        offline_gateway.execute("SELECT count(*) FROM orders")
    assert "lake.main.orders" in err.value.message and "lake2.main.orders" in err.value.message


def test_two_part_and_unqualified_names_resolve(offline_gateway):
    # 'down' cannot be listed, but the names resolve in the sources that answer
    assert offline_gateway.execute("SELECT count(*) AS n FROM products").reader.read_all().column("n")[0].as_py() == 400
    assert offline_gateway.execute("SELECT count(*) AS n FROM lake.orders").reader.read_all().column("n")[0].as_py() == 6000
    with pytest.raises(SourceUnavailableError) as err:
        offline_gateway.execute("SELECT * FROM nowhere_table")
    assert "down" in err.value.message


def test_source_down_fails_only_its_queries(offline_gateway):
    with pytest.raises(SourceUnavailableError) as err:
        offline_gateway.execute("SELECT * FROM down.public.t")
    assert err.value.source == "down" and "unavailable" in err.value.message
    # the gateway and the other sources keep working
    n = offline_gateway.execute("SELECT count(*) AS n FROM shop.main.products p JOIN lake.orders o "
                                "ON o.product_id = p.product_id").reader.read_all().column("n")[0].as_py()
    assert n > 0


def test_parameter_count_mismatch(offline_gateway):
    with pytest.raises(InvalidRequestError, match="2 parameter"):
        offline_gateway.execute("SELECT * FROM shop.main.products WHERE product_id = ? OR name = ?", [1])


def _fragment_sql(gw, sql: str, source: str) -> str:
    plan = gw.plan(sql)
    return next(f.sql for f in plan.fragments if f.source == source)


def _reasons(gw, sql: str) -> list[str]:
    return [f"{n.what}: {n.reason}" for n in gw.plan(sql).not_pushed]


def test_sqlite_like_is_not_pushed(offline_gateway):
    sql = "SELECT name FROM shop.main.products WHERE name LIKE 'g%' AND product_id < 10"
    assert _fragment_sql(offline_gateway, sql, "shop").endswith('WHERE "products"."product_id" < 10')
    assert any("LIKE ignores case" in r for r in _reasons(offline_gateway, sql))


def test_sqlite_decimal_and_date_predicates_stay_local(offline_gateway):
    sql = "SELECT name FROM shop.main.products WHERE price > 10 AND launched > DATE '2016-01-01'"
    assert "WHERE" not in _fragment_sql(offline_gateway, sql, "shop")
    reasons = " | ".join(_reasons(offline_gateway, sql))
    assert "read as text" in reasons and "stored as text" in reasons
    # decimals are read as text, so no digit is lost to a binary float
    assert 'CAST("products"."price" AS TEXT)' in _fragment_sql(offline_gateway, sql, "shop")


def test_outer_join_filters(offline_gateway):
    # ON-filter of a LEFT JOIN's right side goes into that side's fragment
    sql = ("SELECT p.product_id, o.order_id FROM shop.main.products p LEFT JOIN lake.orders o "
           "ON o.product_id = p.product_id AND o.qty > 40")
    assert '"o"."qty" > 40' in _fragment_sql(offline_gateway, sql, "lake")
    # WHERE on the null-supplying side must not be pushed into it
    sql = ("SELECT p.product_id FROM shop.main.products p LEFT JOIN lake.orders o "
           "ON o.product_id = p.product_id WHERE o.qty IS NULL AND p.product_id < 50")
    assert "WHERE" not in _fragment_sql(offline_gateway, sql, "lake")
    assert '"p"."product_id" < 50' in _fragment_sql(offline_gateway, sql, "shop")


def test_filter_moved_into_join_on_is_pushed(offline_gateway):
    sql = ("SELECT p.name FROM shop.main.products p JOIN lake.orders o ON o.product_id = p.product_id "
           "AND p.product_id = 7 AND o.status = 'open'")
    assert '"p"."product_id" = 7' in _fragment_sql(offline_gateway, sql, "shop")
    assert "\"o\".\"status\" = 'open'" in _fragment_sql(offline_gateway, sql, "lake")


def test_limit_rules(offline_gateway):
    assert "LIMIT 5" in _fragment_sql(offline_gateway, "SELECT name FROM shop.main.products LIMIT 5", "shop")
    sql = "SELECT name FROM shop.main.products WHERE name LIKE 'a%' LIMIT 5"
    assert "LIMIT" not in _fragment_sql(offline_gateway, sql, "shop")
    assert any("LIMIT" in r and "filter that stays" in r for r in _reasons(offline_gateway, sql))


def test_file_source_single_query_pushed_whole(offline_gateway):
    plan = offline_gateway.plan("SELECT status, avg(amount) FROM lake.orders WHERE year = 2022 GROUP BY status")
    assert plan.pushed_whole
    assert "GROUP BY" in plan.fragments[0].sql and "Residual" not in plan.explain()


def test_pg_rules_in_fragment_sql(gateway):
    sql = ("SELECT c.name, o.amount FROM pg.crm.customers c JOIN lake.orders o ON o.customer_id = c.id "
           "WHERE c.name > 'm' AND c.email LIKE '%@example.org' AND c.tier + 1 = 5")
    pg_sql = _fragment_sql(gateway, sql, "pg")
    assert "LIKE '%@example.org'" in pg_sql and '("c"."tier" + 1) = 5' in pg_sql  # as written, parenthesized
    # text ranges follow PostgreSQL's database collation unless the byte-order collation is explicit
    assert '"c"."name" COLLATE "C" > \'m\'' in pg_sql
    assert not any("collation" in r for r in _reasons(gateway, sql))


def test_pg_text_ordering_is_pushed_in_byte_order(gateway):
    sql = ("SELECT c.name FROM pg.crm.customers c WHERE c.name BETWEEN 'A' AND 'z' "
           "ORDER BY c.name DESC LIMIT 3")
    pg_sql = _fragment_sql(gateway, sql, "pg")
    assert '"c"."name" COLLATE "C" BETWEEN' in pg_sql and 'ORDER BY "c"."name" COLLATE "C" DESC' in pg_sql
    rows = gateway.execute(sql).reader.read_all().to_pylist()
    names = sorted((r["name"] for r in gateway.execute(
        "SELECT c.name FROM pg.crm.customers c").reader.read_all().to_pylist() if r["name"] is not None and "A" <= r["name"] <= "z"),
        key=lambda n: n.encode(), reverse=True)
    assert [r["name"] for r in rows] == names[:3]


def test_csv_source(tmp_path):
    folder = tmp_path / "csv"
    (folder / "cities").mkdir(parents=True)
    (folder / "cities" / "a.csv").write_text("city,population,founded\nOslo,709000,1040\nBergen,286000,1070\n")
    (folder / "cities" / "b.csv").write_text("city,population,founded\nTromsø,77000,1794\n")
    (folder / "rivers.csv").write_text("river,length_km\nGlomma,621\n")
    settings = settings_from_dict({"sources": [{"name": "csvs", "kind": "csv", "path": str(folder)}]},
                                  base_dir=tmp_path)
    gw = QueryEngine(settings)
    assert gw.catalog.list_tables("csvs", "main") == ["cities", "rivers"]
    got = gw.execute("SELECT city, population FROM csvs.cities WHERE founded > 1050 ORDER BY city").reader.read_all()
    assert got.to_pylist() == [{"city": "Bergen", "population": 286000}, {"city": "Tromsø", "population": 77000}]
    assert gw.execute("SELECT length_km FROM rivers").reader.read_all().column(0).to_pylist() == [621]
