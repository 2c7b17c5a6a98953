"""Loading a test data world (Arrow tables by name) the same into the five source kinds: a fresh PostgreSQL
database (one schema), a fresh MariaDB database, a SQLite file, a Parquet folder and a CSV folder.

Both worlds that are loaded everywhere use it: the fuzzer's (``tests/fuzz/data.py``, PostgreSQL schema ``fz``)
and the conformance suite's (``tests/conformance/data.py``, schema ``cf``). A column's type in each database
follows from its Arrow type through one logical kind (``column_kind``) and one type map per database, so the
sources hold exactly the same values for the same types:

    >>> column_kind(pa.decimal128(8, 3)), sql_type(pa.field("w", pa.decimal128(8, 3)), PG_TYPES)
    ('dec', 'numeric(8,3)')
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

#: test databases in PostgreSQL sort text by a language's rules, as production databases do (this machine's
#: default, C.UTF-8, is byte order, and would hide every text-ordering trap that the planner must avoid)
PG_DATABASE_OPTIONS = "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"

# each database's type of a logical kind: int, small, dec, float, text, date, ts, tstz, bool
PG_TYPES = {"int": "integer", "small": "smallint", "dec": "numeric(12,2)", "float": "double precision",
            "text": "text", "date": "date", "ts": "timestamp", "tstz": "timestamptz", "bool": "boolean"}
MYSQL_TYPES = {"int": "int", "small": "smallint", "dec": "decimal(12,2)", "float": "double",
               "text": "varchar(40)", "date": "date", "ts": "datetime(6)", "tstz": "timestamp(6) NULL",
               "bool": "tinyint(1)"}
SQLITE_TYPES = {"int": "INTEGER", "small": "SMALLINT", "dec": "DECIMAL(12,2)", "float": "REAL", "text": "TEXT",
                "date": "DATE", "ts": "TIMESTAMP", "tstz": "TIMESTAMP", "bool": "BOOLEAN"}


def column_kind(t: pa.DataType) -> str:
    """The logical kind of an Arrow type (the key of the type maps)."""
    if pa.types.is_int16(t):
        return "small"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_decimal(t):
        return "dec"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t):
        return "text"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "tstz" if t.tz else "ts"
    if pa.types.is_boolean(t):
        return "bool"
    raise ValueError(t)


def sql_type(f: pa.Field, types: dict[str, str]) -> str:
    """The column type in a database: its kind's type in ``types``, with the field's own decimal precision."""
    kind = column_kind(f.type)
    if kind == "dec":
        return types["dec"].split("(")[0] + f"({f.type.precision},{f.type.scale})"
    return types[kind]


def _columns(data: pa.Table, types: dict[str, str]) -> str:
    return ", ".join(f"{f.name} {sql_type(f, types)}{' PRIMARY KEY' if f.name == 'id' else ''}" for f in data.schema)


def load_postgres(uri: str, tables: dict[str, pa.Table], schema: str) -> None:
    """Create ``schema`` in the database at ``uri`` with every table: ADBC ingest of a staging table (decimals
    as text), then typed casts. The session's time zone is UTC (how ``timestamptz`` text is read)."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute(f"CREATE SCHEMA {schema}")
        for name, data in tables.items():
            cur.execute(f"CREATE TABLE {schema}.{name} ({_columns(data, PG_TYPES)})")
            staging = data
            for i, f in enumerate(data.schema):
                if pa.types.is_decimal(f.type):
                    staging = staging.set_column(i, f.name, staging.column(i).cast(pa.string()))
            cur.adbc_ingest(f"{name}_staging", staging, mode="create", db_schema_name=schema)
            casts = ", ".join(f"{f.name}::{sql_type(f, PG_TYPES)}" for f in data.schema)
            cur.execute(f"INSERT INTO {schema}.{name} SELECT {casts} FROM {schema}.{name}_staging")
            cur.execute(f"DROP TABLE {schema}.{name}_staging")
            cur.execute(f"ANALYZE {schema}.{name}")


def load_mysql(params: dict, database: str, tables: dict[str, pa.Table]) -> None:
    """Create every table in ``database`` (which must exist; utf8mb4) and insert the rows (PyMySQL; time zone
    UTC, timestamps as naive UTC)."""
    import pymysql

    conn = pymysql.connect(database=database, autocommit=True, charset="utf8mb4", **params)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            for name, data in tables.items():
                cur.execute(f"CREATE TABLE {name} ({_columns(data, MYSQL_TYPES)})")
                rows = [tuple(v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v for v in r.values())
                        for r in data.to_pylist()]
                cur.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * data.num_columns)})", rows)
                cur.execute(f"ANALYZE TABLE {name}")
    finally:
        conn.close()


def write_sqlite(path: Path, tables: dict[str, pa.Table]) -> Path:
    """Every table in a new SQLite file; decimals as text, dates and timestamps (naive UTC) as ISO text,
    booleans 0/1 (how SQLite databases hold them)."""

    def cell(v):
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, dt.datetime):
            return v.replace(tzinfo=None).isoformat(sep=" ")
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, bool):
            return int(v)
        return v

    with sqlite3.connect(path) as conn:
        for name, data in tables.items():
            conn.execute(f"CREATE TABLE {name} ({_columns(data, SQLITE_TYPES)})")
            conn.executemany(f"INSERT INTO {name} VALUES ({', '.join(['?'] * data.num_columns)})",
                             [tuple(cell(v) for v in r.values()) for r in data.to_pylist()])
    return path


def write_files(folder: Path, tables: dict[str, pa.Table], kind: str) -> Path:
    """One ``<table>.parquet`` or ``<table>.csv`` file per table under ``folder``."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for name, data in tables.items():
        if kind == "parquet":
            pq.write_table(data, folder / f"{name}.parquet")
        else:
            pcsv.write_csv(data, folder / f"{name}.csv")
    return folder


def with_database(uri: str, database: str) -> str:
    """``uri`` naming ``database`` as its path."""
    return urlunsplit(urlsplit(uri)._replace(path=f"/{database}"))


def mysql_params(uri: str) -> dict:
    """PyMySQL connect arguments of a ``mysql://`` URI."""
    parts = urlsplit(uri)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306, "user": parts.username or "root",
            "password": parts.password or ""}


@contextlib.contextmanager
def fresh_pg_database(admin_uri: str, prefix: str, options: str = "") -> Iterator[str]:
    """A new PostgreSQL database ``<prefix><random>`` (``CREATE DATABASE ... <options>``) on the server of
    ``admin_uri``; yields its URI and drops it (``WITH (FORCE)``) afterwards, also after a failure."""
    import adbc_driver_postgresql.dbapi as pg

    name = database_name(prefix)
    with pg.connect(admin_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} {options}".rstrip())
    try:
        yield with_database(admin_uri, name)
    finally:
        with pg.connect(admin_uri, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_name(prefix: str) -> str:
    """A fresh database name: ``prefix`` and 8 random hex digits."""
    return f"{prefix}{secrets.token_hex(4)}"


def load_five_sources(tables: dict[str, pa.Table], root: Path, pg_admin_uri: str, mysql_uri: str, database: str, *,
                      pg_schema: str, sqlite_file: str) -> None:
    """Create ``database`` in PostgreSQL and in MariaDB and load ``tables`` into both (the PostgreSQL ones under
    ``pg_schema``), into ``root / sqlite_file``, and as Parquet and CSV files under ``root / "pq"`` and
    ``root / "csv"`` (``drop_five_sources`` drops and removes them, also after a failed load)."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    with pg.connect(pg_admin_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database} {PG_DATABASE_OPTIONS}")
    admin = pymysql.connect(autocommit=True, **mysql_params(mysql_uri))
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    finally:
        admin.close()
    load_postgres(with_database(pg_admin_uri, database), tables, pg_schema)
    load_mysql(mysql_params(mysql_uri), database, tables)
    write_sqlite(root / sqlite_file, tables)
    write_files(root / "pq", tables, "parquet")
    write_files(root / "csv", tables, "csv")


def five_source_settings(root: Path, pg_uri: str, mysql_uri: str, sqlite_file: str, limits: dict | None = None):
    """Gateway settings over the five sources a test data set was loaded into: ``pg`` and ``maria`` at the
    given URIs, ``lite`` (``root / sqlite_file``), ``pq`` and ``csv`` (folders under ``root``)."""
    from gateway.settings import settings_from_dict

    return settings_from_dict({"limits": limits or {}, "sources": [
        {"name": "pg", "kind": "postgresql", "uri": pg_uri},
        {"name": "maria", "kind": "mysql", "uri": mysql_uri},
        {"name": "lite", "kind": "sqlite", "path": str(root / sqlite_file)},
        {"name": "pq", "kind": "parquet", "path": str(root / "pq")},
        {"name": "csv", "kind": "csv", "path": str(root / "csv")},
    ]}, base_dir=root)


def drop_five_sources(pg_admin_uri: str, pg_db: str | None, mysql_uri: str, mysql_db: str | None, root: Path) -> None:
    """Drop a test data set's PostgreSQL and MariaDB databases (each if named) and remove its files, each step
    even when the one before failed."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    try:
        if pg_db:
            with pg.connect(pg_admin_uri, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
    finally:
        try:
            if mysql_db:
                admin = pymysql.connect(autocommit=True, **mysql_params(mysql_uri))
                with admin.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {mysql_db}")
                admin.close()
        finally:
            shutil.rmtree(root, ignore_errors=True)
