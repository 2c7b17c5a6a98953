"""The one loader of the tests' data world (``tests/world.py``): each table into every source kind it is placed
in, the same way for every table. ``World`` places them under one root: a fresh PostgreSQL database (one schema
per group), a fresh MariaDB database of the same name, the SQLite file ``world.db``, the Parquet folder ``pq/``
and the CSV folder ``csv/`` (and, on demand, Delta tables under ``delta/`` and an Iceberg SQLite catalog).

A column's type in each database follows from its Arrow type through one logical kind (``column_kind``) and
one type map per database, so the sources hold exactly the same values for the same types; a table's
``types`` override names the few columns that keep another type:

    >>> column_kind(pa.decimal128(8, 3)), sql_type(pa.field("w", pa.decimal128(8, 3)), PG_TYPES)
    ('dec', 'numeric(8,3)')
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from tests import world as world_tables
from tests.world import WorldTable

#: test databases in PostgreSQL sort text by a language's rules, as production databases do (this machine's
#: default, C.UTF-8, is byte order, and would hide every text-ordering trap that the planner must avoid)
PG_DATABASE_OPTIONS = "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"

# each database's type of a logical kind: int, big, small, dec, float, text, date, ts, tstz, bool
PG_TYPES = {"int": "integer", "big": "bigint", "small": "smallint", "dec": "numeric(12,2)",
            "float": "double precision", "text": "text", "date": "date", "ts": "timestamp", "tstz": "timestamptz",
            "bool": "boolean"}
MYSQL_TYPES = {"int": "int", "big": "bigint", "small": "smallint", "dec": "decimal(12,2)", "float": "double",
               "text": "varchar(40)", "date": "date", "ts": "datetime(6)", "tstz": "timestamp(6) NULL",
               "bool": "tinyint(1)"}
SQLITE_TYPES = {"int": "INTEGER", "big": "INTEGER", "small": "SMALLINT", "dec": "DECIMAL(12,2)", "float": "REAL",
                "text": "TEXT", "date": "DATE", "ts": "TIMESTAMP", "tstz": "TIMESTAMP", "bool": "BOOLEAN"}
#: source name -> source kind of the world's settings, in the order the suites run them
SOURCE_KINDS = {"pg": "postgresql", "maria": "mysql", "lite": "sqlite", "pq": "parquet", "csv": "csv",
                "dl": "delta", "ice": "iceberg"}


def column_kind(t: pa.DataType) -> str:
    """The logical kind of an Arrow type (the key of the type maps)."""
    if pa.types.is_int16(t):
        return "small"
    if pa.types.is_int64(t):
        return "big"
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


def column_types(table: WorldTable, kind: str, types: dict[str, str]) -> dict[str, str]:
    """Each column's type in a database of ``kind``: the table's override, else the mapped type."""
    override = table.types.get(kind, {})
    return {f.name: override.get(f.name) or sql_type(f, types) for f in table.data.schema}


def _columns(table: WorldTable, kind: str, types: dict[str, str]) -> str:
    """The column list of ``CREATE TABLE``: the primary key declared, other non-nullable fields NOT NULL."""
    def constraint(f: pa.Field) -> str:
        if f.name == table.primary_key:
            return " PRIMARY KEY"
        return "" if f.nullable else " NOT NULL"

    typed = column_types(table, kind, types)
    return ", ".join(f"{f.name} {typed[f.name]}{constraint(f)}" for f in table.data.schema)


def load_postgres(uri: str, tables: Iterable[WorldTable]) -> None:
    """Every table into the schema named by its group in the database at ``uri``: ADBC ingest of a staging
    table (decimals as text), then typed casts, ``ANALYZE``. The session's time zone is UTC (how
    ``timestamptz`` text is read)."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        for table in tables:
            schema, name, data = table.group, table.name, table.data
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            cur.execute(f"CREATE TABLE {schema}.{name} ({_columns(table, 'postgresql', PG_TYPES)})")
            staging = data
            for i, f in enumerate(data.schema):
                if pa.types.is_decimal(f.type):
                    staging = staging.set_column(i, f.name, staging.column(i).cast(pa.string()))
            cur.adbc_ingest(f"{name}_staging", staging, mode="create", db_schema_name=schema)
            typed = column_types(table, "postgresql", PG_TYPES)
            casts = ", ".join(f"{f.name}::{typed[f.name]}" for f in data.schema)
            cur.execute(f"INSERT INTO {schema}.{name} SELECT {casts} FROM {schema}.{name}_staging")
            cur.execute(f"DROP TABLE {schema}.{name}_staging")
            cur.execute(f"ANALYZE {schema}.{name}")


def load_mysql(params: dict, database: str, tables: Iterable[WorldTable]) -> None:
    """Create every table in ``database`` (which must exist; utf8mb4) and insert the rows (PyMySQL; time zone
    UTC, timestamps as naive UTC), ``ANALYZE TABLE``."""
    import pymysql

    conn = pymysql.connect(database=database, autocommit=True, charset="utf8mb4", **params)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            for table in tables:
                name, data = table.name, table.data
                cur.execute(f"CREATE TABLE {name} ({_columns(table, 'mysql', MYSQL_TYPES)})")
                rows = [tuple(v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v for v in r.values())
                        for r in data.to_pylist()]
                cur.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * data.num_columns)})", rows)
                cur.execute(f"ANALYZE TABLE {name}")
    finally:
        conn.close()


def _sqlite_cell(v):
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    return v


def write_sqlite(path: Path, tables: Iterable[WorldTable]) -> Path:
    """Every table into the SQLite file ``path``; decimals as text, dates and timestamps (naive UTC) as ISO
    text, booleans 0/1 (how SQLite databases hold them)."""
    with sqlite3.connect(path) as conn:
        for table in tables:
            data = table.data
            conn.execute(f"CREATE TABLE {table.name} ({_columns(table, 'sqlite', SQLITE_TYPES)})")
            conn.executemany(f"INSERT INTO {table.name} VALUES ({', '.join(['?'] * data.num_columns)})",
                             [tuple(_sqlite_cell(v) for v in r.values()) for r in data.to_pylist()])
    return path


def write_files(folder: Path, tables: Iterable[WorldTable], kind: str) -> Path:
    """One ``<table>.parquet`` or ``<table>.csv`` file per table under ``folder``; a Parquet table with a
    ``partition`` as the Hive folder ``<table>/<column>=<value>/part-0.parquet`` instead."""
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for table in tables:
        data = table.data
        if kind == "csv":
            pcsv.write_csv(data, folder / f"{table.name}.csv")
        elif table.partition is None:
            pq.write_table(data, folder / f"{table.name}.parquet")
        else:
            column, values_of = table.partition
            values = values_of(data)
            for value in sorted(set(values.to_pylist())):
                part = folder / table.name / f"{column}={value}"
                part.mkdir(parents=True, exist_ok=True)
                pq.write_table(data.filter(pc.equal(values, value)), part / "part-0.parquet")
    return folder


def write_lakehouse(root: Path, tables: Iterable[WorldTable]) -> None:
    """Tables placed in ``delta`` as Delta tables under ``root/delta``; those placed in ``iceberg`` as Iceberg
    tables (namespace: their group) of the SQLite catalog ``root/iceberg.db``, warehouse ``root/warehouse``."""
    from deltalake import write_deltalake
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("ice", uri=f"sqlite:///{root}/iceberg.db", warehouse=f"file://{root}/warehouse")
    namespaces: set[str] = set()
    for table in tables:
        if "delta" in table.places:
            write_deltalake(str(root / "delta" / table.name), table.data)
        if "iceberg" in table.places:
            if table.group not in namespaces:
                catalog.create_namespace(table.group)
                namespaces.add(table.group)
            catalog.create_table(f"{table.group}.{table.name}", schema=table.data.schema).append(table.data)


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


@contextlib.contextmanager
def fresh_mysql_database(uri: str, prefix: str) -> Iterator[str]:
    """A new MariaDB/MySQL database ``<prefix><random>`` (utf8mb4) on the server of ``uri``; yields its name and
    drops it afterwards, also after a failure."""
    import pymysql

    name = database_name(prefix)
    admin = pymysql.connect(autocommit=True, **mysql_params(uri))
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def database_name(prefix: str) -> str:
    """A fresh database name: ``prefix`` and 8 random hex digits."""
    return f"{prefix}{secrets.token_hex(4)}"


@dataclass
class World:
    """The world's ``tables`` placed under ``root``, each kind on first use and once: ``postgres(admin_uri)``
    creates and loads the PostgreSQL database, ``mysql(uri)`` the MariaDB one (both named ``database``),
    ``files()`` writes the SQLite file and the Parquet and CSV folders, ``lakehouse()`` the Delta and Iceberg
    copies. ``close()`` drops both databases and removes ``root``, each step even when the one before failed.

    ``prefix(source, group)`` is the ``catalog.schema`` of a group's tables in a source of ``settings()``
    (``pg``, ``maria``, ``lite``, ``pq``, ``csv``, and with ``lakehouse=True`` ``dl`` and ``ice``)."""

    root: Path
    tables: tuple[WorldTable, ...] = world_tables.TABLES
    database: str = field(default_factory=lambda: database_name("gw_world_"))
    pg_admin_uri: str | None = None
    mysql_uri: str | None = None
    _files: bool = False
    _lakehouse: bool = False

    def placed(self, kind: str) -> list[WorldTable]:
        """The tables with a copy in ``kind``."""
        return [t for t in self.tables if kind in t.places]

    def group(self, name: str) -> dict[str, pa.Table]:
        """The canonical tables of group ``name`` by table name."""
        return {t.name: t.data for t in self.tables if t.group == name}

    def postgres(self, admin_uri: str) -> str:
        """The URI of the world's PostgreSQL database on the server of ``admin_uri``, created and loaded once."""
        import adbc_driver_postgresql.dbapi as pg

        if self.pg_admin_uri is None:
            with pg.connect(admin_uri, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {self.database} {PG_DATABASE_OPTIONS}")
            self.pg_admin_uri = admin_uri
            load_postgres(self.pg_uri, self.placed("postgresql"))
        return self.pg_uri

    def mysql(self, uri: str) -> str:
        """The URI of the world's MariaDB database on the server of ``uri``, created and loaded once."""
        import pymysql

        if self.mysql_uri is None:
            admin = pymysql.connect(autocommit=True, **mysql_params(uri))
            try:
                with admin.cursor() as cur:
                    cur.execute(f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4")
            finally:
                admin.close()
            self.mysql_uri = uri
            load_mysql(mysql_params(uri), self.database, self.placed("mysql"))
        return self.maria_uri

    def files(self) -> dict[str, Path]:
        """``{"sqlite": file, "parquet": folder, "csv": folder, "root": root}``, written once."""
        if not self._files:
            self._files = True
            write_sqlite(self.root / "world.db", self.placed("sqlite"))
            write_files(self.root / "pq", self.placed("parquet"), "parquet")
            write_files(self.root / "csv", self.placed("csv"), "csv")
        return {"sqlite": self.root / "world.db", "parquet": self.root / "pq", "csv": self.root / "csv",
                "root": self.root}

    def lakehouse(self) -> None:
        """The Delta and Iceberg copies, written once."""
        if not self._lakehouse:
            self._lakehouse = True
            write_lakehouse(self.root, [t for t in self.tables if {"delta", "iceberg"} & set(t.places)])

    @property
    def pg_uri(self) -> str:
        return with_database(self.pg_admin_uri, self.database)

    @property
    def maria_uri(self) -> str:
        return with_database(self.mysql_uri, self.database)

    def prefix(self, source: str, group: str) -> str:
        return {"pg": f"pg.{group}", "maria": f"maria.{self.database}", "lite": "lite.main", "pq": "pq.main",
                "csv": "csv.main", "dl": "dl.main", "ice": f"ice.{group}"}[source]

    def settings(self, limits: dict | None = None, lakehouse: bool = False):
        """Gateway settings over the five sources (all loaded), with ``limits`` as ``[limits]``; with
        ``lakehouse`` also ``dl`` (Delta) and ``ice`` (Iceberg)."""
        from gateway.settings import settings_from_dict

        files = self.files()
        sources = [
            {"name": "pg", "kind": "postgresql", "uri": self.pg_uri},
            {"name": "maria", "kind": "mysql", "uri": self.maria_uri},
            {"name": "lite", "kind": "sqlite", "path": str(files["sqlite"])},
            {"name": "pq", "kind": "parquet", "path": str(files["parquet"])},
            {"name": "csv", "kind": "csv", "path": str(files["csv"])},
        ]
        if lakehouse:
            self.lakehouse()
            sources += [{"name": "dl", "kind": "delta", "path": str(self.root / "delta")},
                        {"name": "ice", "kind": "iceberg", "uri": f"sqlite:///{self.root}/iceberg.db",
                         "warehouse": f"{self.root}/warehouse"}]
        return settings_from_dict({"limits": limits or {}, "sources": sources}, base_dir=self.root)

    def close(self) -> None:
        import adbc_driver_postgresql.dbapi as pg
        import pymysql

        try:
            if self.pg_admin_uri:
                with pg.connect(self.pg_admin_uri, autocommit=True) as conn, conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        finally:
            try:
                if self.mysql_uri:
                    admin = pymysql.connect(autocommit=True, **mysql_params(self.mysql_uri))
                    with admin.cursor() as cur:
                        cur.execute(f"DROP DATABASE IF EXISTS {self.database}")
                    admin.close()
            finally:
                shutil.rmtree(self.root, ignore_errors=True)
