"""The SQLAlchemy 2 dialect ``gateway+flightsql://`` (gateway/sqlalchemy.py) against the real Flight SQL server:
SQLAlchemy's inspector, ``select()`` and ``text()`` with named and positional parameters, over SQLite, Parquet and a
real PostgreSQL database with composite and single-column foreign keys; engines with a catalog (``?catalog=``, a
source) and a default schema, whose unqualified names resolve there (``customers`` is both ``demo_db.main`` and
``pg.crm``); the same dialect on SQLAlchemy 1.4 (as Apache Superset 6.1 pins it); the time-grain SQL and date
literals of the Superset engine spec. Expected values come from the sources read directly (sqlite3,
pyarrow.dataset, PostgreSQL itself), never through the gateway.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import pyarrow.dataset as ds
import pytest
import sqlalchemy as sa

from gateway.errors import UnknownObjectError
from gateway.settings import settings_from_dict
from gateway.sqlalchemy import TIME_GRAINS, datetime_literal
from tests.conftest import IN_CI
from tests.flight_support import setup_pg

#: SQLAlchemy 1.4 for the dialect's 1.4 test (Apache Superset 6.1 pins it), installed once from PyPI
SQLALCHEMY_14 = Path("/tmp/gw-test-sqlalchemy-1.4")


@pytest.fixture(scope="module")
def flight_settings(demo_folder, pg_database):
    setup_pg(pg_database)
    return settings_from_dict({"sources": [
        {"name": "demo_db", "kind": "sqlite", "path": "demo_data/demo.db"},
        {"name": "demo_lake", "kind": "parquet", "path": "demo_data/lake"},
        {"name": "pg", "kind": "postgresql", "uri": pg_database},
    ]}, base_dir=demo_folder)


@pytest.fixture(scope="module")
def engine(served):
    engine = sa.create_engine(f"gateway+flightsql://127.0.0.1:{served[1].port}")
    yield engine
    engine.dispose()


@contextlib.contextmanager
def gateway_engine(served, query: str = "", **kwargs):
    """An engine on the served gateway with URL query ``query`` (``catalog=pg&schema=crm``), disposed after."""
    engine = sa.create_engine(f"gateway+flightsql://127.0.0.1:{served[1].port}{'?' if query else ''}{query}",
                              **kwargs)
    try:
        yield engine
    finally:
        engine.dispose()


def sqlite_rows(demo_folder, sql: str, params: tuple = ()) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(demo_folder / "demo_data" / "demo.db")) as db:
        return db.execute(sql, params).fetchall()


def pg_rows(pg_database: str, sql: str) -> list[tuple]:
    with pg.connect(pg_database) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_entry_points_register_the_dialect_without_an_import(served):
    names = {e.name: e.value for e in importlib.metadata.entry_points(group="sqlalchemy.dialects")}
    assert names["gateway.flightsql"] == names["gateway"] == "gateway.sqlalchemy:GatewayDialect"
    # a fresh interpreter that never imports gateway: the URL alone finds the dialect
    code = ("import sqlalchemy as sa, sys; e = sa.create_engine(sys.argv[1]); "
            "print(e.connect().execute(sa.text('SELECT 41 + 1 AS x')).scalar())")
    result = subprocess.run([sys.executable, "-c", code, f"gateway://127.0.0.1:{served[1].port}"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "42", result.stderr


def test_sources_are_catalogs_so_equal_schema_names_stay_apart(engine):
    inspector = sa.inspect(engine)
    schemas = inspector.get_schema_names()
    assert {"demo_db.main", "demo_lake.main", "pg.bi"} <= set(schemas)
    assert inspector.get_table_names(schema="demo_db.main") == ["customers", "products"]
    assert inspector.get_table_names(schema="demo_lake.main") == ["orders", "regions"]
    assert inspector.get_table_names() == []  # there is no default schema
    with pytest.raises(ValueError, match=r"expected 'source\.schema'"):
        inspector.get_table_names(schema="main")


def test_tables_views_columns_and_types(engine, demo_config):
    inspector = sa.inspect(engine)
    assert {"parent", "child", "grandchild"} <= set(inspector.get_table_names(schema="pg.bi"))
    assert "slow" in inspector.get_view_names(schema="pg.bi") and "slow" not in inspector.get_table_names("pg.bi")
    assert inspector.has_table("parent", schema="pg.bi") and not inspector.has_table("nope", schema="pg.bi")
    columns = inspector.get_columns("parent", schema="pg.bi")
    assert [(c["name"], type(c["type"]), c["nullable"]) for c in columns] == [
        ("a", sa.Integer, False), ("b", sa.Integer, False), ("label", sa.String, True)]
    customers = {c["name"]: c["type"] for c in inspector.get_columns("customers", schema="demo_db.main")}
    assert isinstance(customers["credit_limit"], sa.Numeric) and (customers["credit_limit"].precision,
                                                                  customers["credit_limit"].scale) == (10, 2)
    assert isinstance(customers["signup_date"], sa.Date) and isinstance(customers["active"], sa.Boolean)
    orders = {c["name"]: type(c["type"]) for c in inspector.get_columns("orders", schema="demo_lake.main")}
    assert orders["order_id"] is sa.BigInteger and orders["order_date"] is sa.Date
    assert inspector.get_table_comment("parent", schema="pg.bi") == {"text": None}
    with pytest.raises(sa.exc.NoSuchTableError):
        inspector.get_columns("nope", schema="pg.bi")


def test_primary_and_foreign_keys(engine):
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("parent", schema="pg.bi")["constrained_columns"] == ["a", "b"]
    assert inspector.get_pk_constraint("child", schema="pg.bi")["constrained_columns"] == ["id"]
    [child_fk] = inspector.get_foreign_keys("child", schema="pg.bi")
    assert child_fk == {"name": "child_parent_fk", "constrained_columns": ["pa", "pb"], "referred_schema": "pg.bi",
                        "referred_table": "parent", "referred_columns": ["a", "b"], "options": {}}
    [grandchild_fk] = inspector.get_foreign_keys("grandchild", schema="pg.bi")
    assert (grandchild_fk["constrained_columns"], grandchild_fk["referred_table"]) == (["child_id"], "child")
    assert inspector.get_foreign_keys("parent", schema="pg.bi") == []
    assert inspector.get_indexes("parent", schema="pg.bi") == []
    # a reflected Table carries the keys
    child = sa.Table("child", sa.MetaData(), schema="pg.bi", autoload_with=engine)
    assert [c.name for c in child.primary_key] == ["id"]
    assert {(fk.parent.name, fk.column.name) for fk in child.foreign_keys} == {("pa", "a"), ("pb", "b")}


def test_select_with_bound_parameters(engine, demo_folder):
    customers = sa.Table("customers", sa.MetaData(), schema="demo_db.main", autoload_with=engine)
    query = (sa.select(customers.c.id, customers.c.name)
             .where(customers.c.id < 10, customers.c.region == "north").order_by(customers.c.id))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(query)]
    expected = sqlite_rows(demo_folder, "SELECT id, name FROM customers WHERE id < 10 AND region = 'north' ORDER BY id")
    assert rows == expected and rows  # never an empty result from parameters bound as NULL


def test_text_with_named_and_positional_parameters(engine, demo_folder):
    expected = sqlite_rows(demo_folder, "SELECT id, region FROM customers WHERE region = ? AND id < ? ORDER BY id",
                           ("south", 40))
    assert expected
    named = sa.text("SELECT id, region FROM demo_db.customers WHERE region = :region AND id < :limit ORDER BY id")
    with engine.connect() as conn:
        # the same name twice and in a different order than the values are given
        assert [tuple(r) for r in conn.execute(named, {"limit": 40, "region": "south"})] == expected
        twice = sa.text("SELECT count(*) FROM demo_db.customers WHERE id >= :n AND id <= :n")
        assert conn.execute(twice, {"n": 7}).scalar() == 1
        positional = conn.exec_driver_sql(
            "SELECT id, region FROM demo_db.customers WHERE region = ? AND id < ? ORDER BY id", ("south", 40))
        assert [tuple(r) for r in positional] == expected


def test_join_across_two_sources_with_the_same_schema_name(engine, demo_folder):
    metadata = sa.MetaData()
    customers = sa.Table("customers", metadata, schema="demo_db.main", autoload_with=engine)
    orders = sa.Table("orders", metadata, schema="demo_lake.main", autoload_with=engine)
    query = (sa.select(customers.c.region, sa.func.count().label("n"))
             .select_from(orders.join(customers, orders.c.customer_id == customers.c.id))
             .where(orders.c.year == sa.bindparam("year")).group_by(customers.c.region).order_by(customers.c.region))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(query, {"year": 2023})]
    region_of = dict(sqlite_rows(demo_folder, "SELECT id, region FROM customers"))
    lake = ds.dataset(demo_folder / "demo_data" / "lake" / "orders", partitioning="hive")
    counts: dict[str, int] = {}
    for customer in lake.to_table(columns=["customer_id"], filter=ds.field("year") == 2023).column(0).to_pylist():
        counts[region_of[customer]] = counts.get(region_of[customer], 0) + 1
    assert rows == sorted(counts.items())


def test_a_catalog_engine_names_the_schemas_of_its_source_plainly(served, engine, pg_database):
    with gateway_engine(served, "catalog=pg") as pg_engine:
        inspector = sa.inspect(pg_engine)
        with pg_engine.connect() as conn:
            assert pg_engine.dialect.get_catalog_names(conn) == ["demo_db", "demo_lake", "pg"]
        schemas = inspector.get_schema_names()
        assert {"bi", "crm"} <= set(schemas)
        assert schemas == [s.removeprefix("pg.") for s in sa.inspect(engine).get_schema_names() if s.startswith("pg.")]
        real = {name for (name,) in pg_rows(pg_database, "SELECT table_name FROM information_schema.tables "
                                                         "WHERE table_schema = 'bi' AND table_type = 'BASE TABLE'")}
        assert set(inspector.get_table_names(schema="bi")) == real and {"parent", "child"} <= real
        views = {name for (name,) in pg_rows(pg_database, "SELECT table_name FROM information_schema.views "
                                                          "WHERE table_schema = 'bi'")}
        assert set(inspector.get_view_names(schema="bi")) == views and "slow" in views  # other tests add views
        assert inspector.get_table_names() == []  # pg has several schemas and the engine names none
        assert [(c["name"], type(c["type"])) for c in inspector.get_columns("parent", schema="bi")] == [
            ("a", sa.Integer), ("b", sa.Integer), ("label", sa.String)]
        assert inspector.get_pk_constraint("parent", schema="bi")["constrained_columns"] == ["a", "b"]
        [child_fk] = inspector.get_foreign_keys("child", schema="bi")
        assert (child_fk["referred_schema"], child_fk["referred_table"]) == ("bi", "parent")
        assert not inspector.has_table("customers", schema="bi") and inspector.has_table("customers", schema="crm")


def test_a_catalog_with_one_schema_makes_it_the_default(served, demo_folder):
    lake = ds.dataset(demo_folder / "demo_data" / "lake" / "orders", format="parquet", partitioning="hive")
    with gateway_engine(served, "catalog=demo_lake") as lake_engine:
        inspector = sa.inspect(lake_engine)
        assert inspector.default_schema_name == "main" and inspector.get_schema_names() == ["main"]
        assert inspector.get_table_names() == inspector.get_table_names(schema="main") == ["orders", "regions"]
        orders = sa.Table("orders", sa.MetaData(), autoload_with=lake_engine)  # no schema: the default one
        assert [c.name for c in orders.columns] == lake.schema.names
        with lake_engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == lake.count_rows()


def test_unqualified_names_resolve_in_the_engines_catalog_and_schema(served, engine, demo_folder, pg_database):
    [(pg_count,)] = pg_rows(pg_database, "SELECT count(*) FROM crm.customers")
    [(sqlite_count,)] = sqlite_rows(demo_folder, "SELECT count(*) FROM customers")
    assert pg_count != sqlite_count  # so that each answer shows which customers table was read
    count = sa.text("SELECT count(*) FROM customers")
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="ambiguous"):
        conn.execute(count)  # no catalog: customers is demo_db.main.customers and pg.crm.customers
    for query, kwargs in (("catalog=pg&schema=crm", {}), ("", {"connect_args": {"catalog": "pg", "schema": "crm"}})):
        with gateway_engine(served, query, **kwargs) as pg_engine, pg_engine.connect() as conn:
            assert pg_engine.dialect.default_schema_name == "crm"
            assert conn.execute(count).scalar() == pg_count
            customers = sa.Table("customers", sa.MetaData(), schema="crm", autoload_with=pg_engine)
            assert str(sa.select(customers.c.id).compile(pg_engine)).split()[-1] == "crm.customers"
            assert conn.execute(sa.select(sa.func.count()).select_from(customers)).scalar() == pg_count
    for query in ("catalog=demo_db", "schema=demo_db.main"):  # a single-schema source; a source.schema default
        with gateway_engine(served, query) as db_engine, db_engine.connect() as conn:
            assert conn.execute(count).scalar() == sqlite_count
            assert sa.inspect(db_engine).get_table_names() == ["customers", "products"]
            # fully qualified names reach every source from any engine
            joined = sa.text("SELECT count(*) FROM customers c JOIN pg.crm.customers p ON p.id = c.id")
            assert conn.execute(joined).scalar() == min(pg_count, sqlite_count)


def test_an_unknown_catalog_or_schema_fails_at_connect(served):
    with gateway_engine(served, "catalog=nope") as bad, pytest.raises(sa.exc.DBAPIError, match="'catalog'"):
        bad.connect()  # the gateway refuses the session option
    for query in ("catalog=pg&schema=nope", "schema=demo_db.nope"):
        with gateway_engine(served, query) as bad, pytest.raises(UnknownObjectError, match="unknown schema 'nope'"):
            bad.connect()
    with gateway_engine(served, "schema=main") as bad, pytest.raises(ValueError, match=r"expected 'source\.schema'"):
        bad.connect()  # without a catalog a schema names its source


def test_schema_names_with_a_dot_are_quoted_as_the_engine_names_schemas():
    # a flightsql source names its schemas catalog.schema of the remote server: one identifier of the gateway
    query = sa.select(sa.table("t", sa.column("a"), schema="gw2.remote.sales"))
    assert str(query.compile(sa.create_engine("gateway+flightsql://h:1"))).split()[-1] == 'gw2."remote.sales".t'
    query = sa.select(sa.table("t", sa.column("a"), schema="remote.sales"))
    assert str(query.compile(sa.create_engine("gateway+flightsql://h:1?catalog=gw2"))).split()[-1] == '"remote.sales".t'


def sqlalchemy_14() -> Path:
    """A folder holding SQLAlchemy 1.4 (``pip install --target``, made once and reused); skipped when it cannot
    be installed, failed under CI=true."""
    if not (SQLALCHEMY_14 / "sqlalchemy").is_dir():
        partial = SQLALCHEMY_14.with_name(f"{SQLALCHEMY_14.name}.{os.getpid()}")
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(partial),
                               "sqlalchemy>=1.4.54,<2"], capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            message = f"SQLAlchemy 1.4 could not be installed: {done.stderr.strip()[-400:]}"
            pytest.fail(message) if IN_CI else pytest.skip(message)
        with contextlib.suppress(OSError):  # another run may have made it meanwhile
            partial.rename(SQLALCHEMY_14)
        shutil.rmtree(partial, ignore_errors=True)
    return SQLALCHEMY_14


SQLALCHEMY_14_SCRIPT = """
import json, sys
import pyarrow as pa
import sqlalchemy as sa
from gateway.sqlalchemy import sqlalchemy_type
engine = sa.create_engine(sys.argv[1])
inspector = sa.inspect(engine)  # the first connection runs the dialect's initialize()
out = {"version": sa.__version__, "schemas": inspector.get_schema_names(),
       "tables": inspector.get_table_names(schema="demo_lake.main"),
       "columns": [[c["name"], type(c["type"]).__name__] for c in inspector.get_columns("orders", "demo_lake.main")],
       "float64": type(sqlalchemy_type(pa.float64())).__name__}
with engine.connect() as conn:
    sql = sa.text("SELECT id, region FROM demo_db.customers WHERE region = :r AND id < :n ORDER BY id")
    out["rows"] = [list(r) for r in conn.execute(sql, {"r": "south", "n": 40})]
    out["catalogs"] = engine.dialect.get_catalog_names(conn)
engine.dispose()
lake = sa.create_engine(sys.argv[1] + "?catalog=demo_lake&schema=main")  # as Superset makes it for SQL Lab
out["lake_schemas"], out["lake_tables"] = sa.inspect(lake).get_schema_names(), sa.inspect(lake).get_table_names()
with lake.connect() as conn:
    out["lake_count"] = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar()
lake.dispose()
print(json.dumps(out))
"""


def test_the_dialect_works_with_sqlalchemy_1_4_as_apache_superset_pins_it(served, demo_folder):
    # Superset 6.1 runs SQLAlchemy 1.4 (bench/superset_check.py runs Superset itself): 1.4 asks the class for
    # dbapi(), hands initialize() the driver's own connection and has no Double type
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(sqlalchemy_14()), str(Path(__file__).parents[1])])}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", SQLALCHEMY_14_SCRIPT,
                             f"gateway+flightsql://127.0.0.1:{served[1].port}"],
                            capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["version"].startswith("1.4.")
    assert {"demo_db.main", "demo_lake.main"} <= set(out["schemas"]) and out["tables"] == ["orders", "regions"]
    assert [name for name, _ in out["columns"]] == [f.name for f in ds.dataset(
        demo_folder / "demo_data" / "lake" / "orders", format="parquet", partitioning="hive").schema]
    assert dict(out["columns"])["total"] == "Numeric" and out["float64"] == "Float"
    expected = sqlite_rows(demo_folder, "SELECT id, region FROM customers WHERE region = ? AND id < ? ORDER BY id",
                           ("south", 40))
    assert [tuple(r) for r in out["rows"]] == expected and expected
    assert out["catalogs"] == ["demo_db", "demo_lake", "pg"]
    assert (out["lake_schemas"], out["lake_tables"]) == (["main"], ["orders", "regions"])
    assert out["lake_count"] == ds.dataset(demo_folder / "demo_data" / "lake" / "orders", partitioning="hive").count_rows()


# the Superset engine spec's SQL (gateway/superset.py hands these to Superset; bench/superset_check.py runs it)
THURSDAY, SUNDAY = dt.datetime(2024, 3, 14, 15, 9, 26, 500000), dt.datetime(2024, 3, 17, 10, 0)
TRUNCATED = {  # grain: (THURSDAY, SUNDAY) truncated
    None: (THURSDAY, SUNDAY),
    "PT1S": (dt.datetime(2024, 3, 14, 15, 9, 26), SUNDAY),
    "PT1M": (dt.datetime(2024, 3, 14, 15, 9), SUNDAY),
    "PT1H": (dt.datetime(2024, 3, 14, 15), SUNDAY),
    "P1D": (dt.datetime(2024, 3, 14), dt.datetime(2024, 3, 17)),
    "P1W": (dt.datetime(2024, 3, 11), dt.datetime(2024, 3, 11)),
    "1969-12-29T00:00:00Z/P1W": (dt.datetime(2024, 3, 11), dt.datetime(2024, 3, 11)),
    "1969-12-28T00:00:00Z/P1W": (dt.datetime(2024, 3, 10), dt.datetime(2024, 3, 17)),
    "P1W/1970-01-03T00:00:00Z": (dt.datetime(2024, 3, 16), dt.datetime(2024, 3, 23)),
    "P1W/1970-01-04T00:00:00Z": (dt.datetime(2024, 3, 17), dt.datetime(2024, 3, 17)),
    "P1M": (dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 1)),
    "P3M": (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1)),
    "P1Y": (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1)),
}


def test_time_grains_truncate_timestamps_as_superset_names_them(engine):
    assert set(TIME_GRAINS) == set(TRUNCATED)
    values = ", ".join(f"({i}, {datetime_literal('TIMESTAMP', t)})" for i, t in enumerate((THURSDAY, SUNDAY)))
    with engine.connect() as conn:
        for grain, expression in TIME_GRAINS.items():
            sql = f"SELECT {expression.format(col='ts')} AS g FROM (VALUES {values}) AS v(i, ts) ORDER BY i"
            assert tuple(r[0] for r in conn.execute(sa.text(sql))) == TRUNCATED[grain], grain


def test_a_monthly_series_over_a_date_column_with_date_literals(engine, demo_folder):
    start, end = datetime_literal("DATE", dt.datetime(2023, 1, 1)), datetime_literal("date", dt.datetime(2024, 1, 1))
    assert (start, datetime_literal("VARCHAR", THURSDAY)) == ("DATE '2023-01-01'", None)
    sql = (f"SELECT {TIME_GRAINS['P1M'].format(col='signup_date')} AS m, count(*) AS n FROM demo_db.main.customers "
           f"WHERE signup_date >= {start} AND signup_date < {end} GROUP BY 1 ORDER BY 1")
    with engine.connect() as conn:
        rows = [(r.m.strftime("%Y-%m"), r.n) for r in conn.execute(sa.text(sql))]
    expected = sqlite_rows(demo_folder, "SELECT strftime('%Y-%m', signup_date), count(*) FROM customers "
                                        "WHERE signup_date >= '2023-01-01' AND signup_date < '2024-01-01' GROUP BY 1 ORDER BY 1")
    assert rows == expected and len(rows) == 12
