"""SQL habits: SHOW CATALOGS/SCHEMAS/TABLES/COLUMNS, DESCRIBE, the gateway-wide information_schema, SELECT
version() and "did you mean" naming only existing objects, through every entry point: REST (real HTTP), Flight
SQL (ADBC driver against a real server), the CLI (a subprocess) and the engine.

Expected names come from the demo files (sqlite3's PRAGMA, the Parquet dataset's schema), the PostgreSQL
test database's own catalog, and the installed package metadata. About 8 s (the federated ``gateway`` fixture
of PostgreSQL/MariaDB is shared with other modules).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import sqlite3
import tomllib
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import httpx
import pyarrow.dataset as ds
import pytest

from gateway.errors import SqlSyntaxError, UnknownObjectError
from gateway.settings import load_settings, prepare, settings_from_dict
from tests.demo_support import serving_rest
from tests.test_cli import cli_env, gateway_command
from tests.test_rest import error_of

LAKE_USER, LAKE_PASSWORD = "lake_reader", "a long enough lake password"
CUSTOMERS_SQL_TYPES = ["BIGINT", "TEXT", "TEXT", "TEXT", "DATE", "DECIMAL(10, 2)", "BOOLEAN"]


def sqlite_tables(config: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(config.parent / "demo_data" / "demo.db")) as db:
        return sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


def sqlite_columns(config: Path, table: str) -> list[tuple[str, str]]:
    """(name, 'YES'/'NO' nullable) of a demo SQLite table, in order."""
    with contextlib.closing(sqlite3.connect(config.parent / "demo_data" / "demo.db")) as db:
        return [(r[1], "NO" if r[3] else "YES") for r in db.execute(f"PRAGMA table_info({table})")]


def lake_tables(config: Path) -> list[str]:
    """The lake's tables: a folder each, or a file each (named without its extension)."""
    folder = config.parent / "demo_data" / "lake"
    return sorted(p.name.split(".")[0] for p in folder.iterdir() if not p.name.startswith("."))


def gateway_version() -> str:
    return (f"federated-sql-gateway {importlib.metadata.version('federated-sql-gateway')} "
            f"(Apache DataFusion {importlib.metadata.version('datafusion')})")


# -- fixtures -------------------------------------------------------------------------------------------

def _limited_settings(config: Path):
    """The demo with auth on: ``LAKE_USER`` may use ``demo_lake`` only."""
    raw = tomllib.loads(config.read_text())
    raw["auth"] = {"enabled": True, "users": [{"name": LAKE_USER, "password": LAKE_PASSWORD,
                                               "sources": ["demo_lake"]}]}
    return settings_from_dict(raw, base_dir=config.parent)


@pytest.fixture(scope="module")
def limited_client(demo_config):
    with serving_rest(_limited_settings(demo_config)) as url, \
            httpx.Client(base_url=url, timeout=30.0, auth=(LAKE_USER, LAKE_PASSWORD)) as c:
        yield c


@pytest.fixture(scope="module")
def flight_settings(demo_config):
    return prepare(load_settings(demo_config))


def rows(response: httpx.Response) -> list[list]:
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def run(client: httpx.Client, sql: str) -> list[list]:
    return rows(client.post("/v1/query", json={"sql": sql}))


# -- REST -------------------------------------------------------------------------------------------------

def test_show_catalogs_and_schemas(client):
    assert run(client, "SHOW CATALOGS") == [["demo_db", "sqlite"], ["demo_lake", "parquet"]]
    assert run(client, "show schemas") == [["demo_db", "main"], ["demo_lake", "main"]]
    assert run(client, "SHOW SCHEMAS FROM demo_lake;") == [["demo_lake", "main"]]
    assert run(client, "SHOW CATALOGS LIKE '%lake'") == [["demo_lake", "parquet"]]


def test_show_tables(client, demo_config):
    everything = [["demo_db", "main", t, "BASE TABLE"] for t in sqlite_tables(demo_config)] + \
                 [["demo_lake", "main", t, "BASE TABLE"] for t in lake_tables(demo_config)]
    assert run(client, "SHOW TABLES") == everything
    assert run(client, "SHOW TABLES FROM demo_db.main") == [r for r in everything if r[0] == "demo_db"]
    assert run(client, 'SHOW TABLES IN "demo_lake"') == [r for r in everything if r[0] == "demo_lake"]
    assert run(client, "SHOW TABLES FROM demo_lake LIKE 'o%'") == [["demo_lake", "main", "orders", "BASE TABLE"]]


def test_describe_and_show_columns(client, demo_config):
    expected = [[name, sql_type, nullable] for (name, nullable), sql_type
                in zip(sqlite_columns(demo_config, "customers"), CUSTOMERS_SQL_TYPES, strict=True)]
    assert run(client, "DESCRIBE demo_db.customers") == expected
    assert run(client, "-- leading comments are fine\nDESC customers") == expected
    assert run(client, "SHOW COLUMNS FROM demo_db.main.customers") == expected
    lake = ds.dataset(demo_config.parent / "demo_data" / "lake" / "orders", format="parquet", partitioning="hive")
    assert [r[0] for r in run(client, "SHOW COLUMNS IN demo_lake.orders")] == lake.schema.names


def test_information_schema_with_filters_aggregates_and_joins(client, demo_config):
    counts = run(client, "SELECT table_catalog, table_name, count(*) AS n FROM information_schema.columns "
                         "WHERE table_catalog = 'demo_db' GROUP BY 1, 2 ORDER BY 2")
    assert counts == [["demo_db", t, len(sqlite_columns(demo_config, t))] for t in sqlite_tables(demo_config)]
    # information_schema joined with itself and with a real source (the VALUES run in the residual plan)
    joined = run(client, "SELECT c.column_name FROM information_schema.tables t JOIN information_schema.columns c "
                         "ON c.table_name = t.table_name AND c.table_catalog = t.table_catalog "
                         "WHERE t.table_catalog = 'demo_db' AND t.table_name = 'customers' ORDER BY c.ordinal_position")
    assert [r[0] for r in joined] == [name for name, _ in sqlite_columns(demo_config, "customers")]
    with_data = run(client, "SELECT count(*) FROM demo_db.customers c JOIN information_schema.columns i "
                            "ON i.column_name = 'region' AND i.table_name = 'customers'")
    assert with_data == [[200]]
    schemata = run(client, "SELECT catalog_name, schema_name FROM demo_lake.information_schema.schemata")
    assert schemata == [["demo_lake", "main"]]


def test_information_schema_is_planned_without_any_fragment(client):
    plan = client.post("/v1/explain", json={"sql": "SELECT * FROM information_schema.tables"}).json()
    assert plan["fragments"] == [] and "VALUES" in plan["residual_sql"]


def test_select_version_is_the_gateway(client):
    assert run(client, "SELECT version()") == [[gateway_version()]]
    response = client.post("/v1/query", json={"sql": "SELECT version() AS v, 1 AS one"})
    assert response.json()["columns"][0]["name"] == "v" and rows(response) == [[gateway_version(), 1]]


@pytest.mark.parametrize(("sql", "status", "code", "nearest"), [
    ("SHOW TABLES FROM demo_lak", 404, "unknown_object", ["demo_lake"]),
    ("SHOW TABLES FROM demo_db.mian", 404, "unknown_object", ["main"]),
    ("DESCRIBE demo_db.custmers", 404, "unknown_object", ["customers"]),
    ("SHOW FUNCTIONS", 400, "syntax_error", None),
    ("SHOW COLUMNS customers", 400, "syntax_error", None),
])
def test_metadata_statement_errors(client, sql, status, code, nearest):
    error = error_of(client.post("/v1/query", json={"sql": sql}), status, code)
    if nearest is not None:
        assert error["nearest"][:1] == nearest  # the nearest first
    else:
        assert "SHOW CATALOGS" in error["message"] and "DESCRIBE table" in error["message"]


def test_write_statements_are_still_refused(client):
    error = error_of(client.post("/v1/query", json={"sql": "DROP TABLE demo_db.customers"}), 400,
                     "unsupported_statement")
    assert "read-only" in error["message"]


def test_metadata_honours_source_permissions(limited_client):
    assert run(limited_client, "SHOW CATALOGS") == [["demo_lake", "parquet"]]
    assert {r[0] for r in run(limited_client, "SELECT table_catalog FROM information_schema.columns")} == \
        {"demo_lake"}
    assert run(limited_client, "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'demo_db'") \
        == [[0]]
    # a source the user may not use is refused as a SELECT on it is (403), never described
    error = error_of(limited_client.post("/v1/query", json={"sql": "DESCRIBE demo_db.customers"}), 403,
                     "permission_denied")
    assert "customers" not in error["message"]  # nothing of demo_db is named
    error_of(limited_client.post("/v1/query", json={"sql": "SELECT * FROM demo_db.information_schema.tables"}),
             403, "permission_denied")


# -- Flight SQL (ADBC), the CLI ----------------------------------------------------------------------------

def test_flight_sql_through_adbc(uri, demo_config):
    with flightsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES FROM demo_db")
        assert [r[2] for r in cur.fetchall()] == sqlite_tables(demo_config)
        cur.execute("SELECT version()")
        assert cur.fetchall() == [(gateway_version(),)]
        cur.execute("DESCRIBE demo_db.customers")
        assert [(r[0], r[2]) for r in cur.fetchall()] == sqlite_columns(demo_config, "customers")
        cur.execute("SELECT count(*) FROM information_schema.schemata WHERE catalog_name = ?", parameters=["demo_db"])
        assert cur.fetchall() == [(1,)]


def test_cli(demo_config):
    import subprocess

    result = subprocess.run([*gateway_command(), "query", "SHOW TABLES FROM demo_lake", "--config", str(demo_config),
                             "--format", "csv"], check=False, capture_output=True, text=True, env=cli_env(),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert [line.split(",")[2] for line in result.stdout.strip().splitlines()[1:]] == lake_tables(demo_config)


# -- "did you mean" names only objects that exist -----------------------------------------------------------

def test_did_you_mean_names_existing_tables_only(gateway, pg_database):
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(pg_database) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'customers'")
        schemas = sorted(r[0] for r in cur.fetchall())
    assert len(gateway.catalog.list_schemas("pg")) > 1  # the 2-part name pg.customers is ambiguous
    for written in ("pg.customers", "pg.custmers"):
        with pytest.raises(UnknownObjectError) as caught:
            gateway.plan(f"SELECT * FROM {written}")
        # the tables of that name come first (other near names follow: the session's databases also hold TPC-H)
        assert caught.value.nearest[:len(schemas)] == [f"pg.{s}.customers" for s in schemas]
        for name in caught.value.nearest:  # each suggestion plans
            gateway.plan(f"SELECT * FROM {name}")


def test_unsupported_show_is_a_syntax_error_in_the_engine(gateway):
    with pytest.raises(SqlSyntaxError, match="unsupported SHOW statement"):
        gateway.plan("SHOW FUNCTIONS")
