"""The conformance data world: two small tables full of semantic traps, loaded the same into every source kind.

``items`` (40 rows): ``name`` text with mixed case, accents, trailing and leading spaces, ``''``, LIKE
wildcards and NULLs; ``code`` text that looks like dates (ISO and not); ``amount`` decimal(12,2);
``ratio`` float (sums that depend on their order); ``flag`` boolean; ``day`` date; ``at`` timestamp; ``grp``
a small group key; ``n`` an int, half NULL. ``tags`` (30 rows): ``item_id`` -> items.id (and keys that match
nothing, and NULL), ``label`` text, ``weight`` decimal(8,3).

The loaders take the logical kind of each column from its Arrow type and reuse the fuzzer's type maps
(``tests/fuzz/data.py``), so the five sources hold exactly what the fuzzer's would for the same types.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from tests.fuzz.data import (
    MYSQL_TYPES,
    PG_DATABASE_OPTIONS,
    PG_TYPES,
    SQLITE_TYPES,
    _with_database,
    drop_five_sources,
    five_source_settings,
    mysql_params,
    write_files,
)

#: source name -> source kind, in the order the suite runs them
KINDS = {"pg": "postgresql", "maria": "mysql", "lite": "sqlite", "pq": "parquet", "csv": "csv", "dl": "delta",
         "ice": "iceberg"}

NAMES = ["apple", "Apple", "APPLE", "äpfel", "Äpfel", "émile", "Émile", "emile", "zed", "Zed", "trail ", "trail",
         " lead", "", "a%b", "a_b", "ab", "straße", "STRASSE", "Zoë", None, "ß", "x", "X"]
CODES = ["2024-01-05", "2024-1-5", "2023-12-31", "31/12/2023", "2024-01-05 ", "2024-02-30", "20240105", None]
RATIOS = [0.1, 0.2, 0.3, 1e16, -1e16, 1.5, -0.7, 2.25, None, 3.3333333333333335, 1e-9]
LABELS = ["red", "Red", "RED", "rouge", "rôt", "blue ", "blue", None, "Blue"]


def _items() -> pa.Table:
    rows = []
    for i in range(1, 41):
        rows.append({
            "id": i,
            "name": NAMES[i % len(NAMES)],
            "code": CODES[i % len(CODES)],
            "amount": None if i % 9 == 0 else Decimal(i * 1234 - 20000) / 100,
            "ratio": RATIOS[i % len(RATIOS)],
            "flag": None if i % 7 == 0 else i % 3 == 0,
            "day": None if i % 8 == 0 else dt.date(2023, 12, 25) + dt.timedelta(days=i * 3),
            "at": None if i % 10 == 0 else dt.datetime(2024, 1, 1, 12) + dt.timedelta(hours=i * 7, microseconds=i * 11),
            "grp": i % 4,
            "n": None if i % 2 else i // 2,
        })
    schema = pa.schema([
        pa.field("id", pa.int32(), nullable=False), pa.field("name", pa.string()), pa.field("code", pa.string()),
        pa.field("amount", pa.decimal128(12, 2)), pa.field("ratio", pa.float64()), pa.field("flag", pa.bool_()),
        pa.field("day", pa.date32()), pa.field("at", pa.timestamp("us")), pa.field("grp", pa.int16()),
        pa.field("n", pa.int32()),
    ])
    return pa.Table.from_pylist(rows, schema=schema)


def _tags() -> pa.Table:
    rows = [{"id": i, "item_id": None if i % 11 == 0 else (i * 7) % 45 + 1, "label": LABELS[i % len(LABELS)],
             "weight": Decimal(i * 137 % 5000) / 1000} for i in range(1, 31)]
    schema = pa.schema([pa.field("id", pa.int32(), nullable=False), pa.field("item_id", pa.int32()),
                        pa.field("label", pa.string()), pa.field("weight", pa.decimal128(8, 3))])
    return pa.Table.from_pylist(rows, schema=schema)


def canonical_tables() -> dict[str, pa.Table]:
    return {"items": _items(), "tags": _tags()}


def _kind(t: pa.DataType) -> str:
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


def _sql_type(f: pa.Field, types: dict[str, str]) -> str:
    """The column type in a database: the fuzzer's map, with the field's own decimal precision and scale."""
    kind = _kind(f.type)
    if kind == "dec":
        return types["dec"].split("(")[0] + f"({f.type.precision},{f.type.scale})"
    return types[kind]


def _columns(data: pa.Table, types: dict[str, str]) -> str:
    return ", ".join(f"{f.name} {_sql_type(f, types)}{' PRIMARY KEY' if f.name == 'id' else ''}" for f in data.schema)


def load_postgres(uri: str, tables: dict[str, pa.Table]) -> None:
    """Schema ``cf`` with every table: ADBC ingest of a staging table (decimals as text), then typed casts."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA cf")
        for name, data in tables.items():
            cur.execute(f"CREATE TABLE cf.{name} ({_columns(data, PG_TYPES)})")
            staging = data
            for i, f in enumerate(data.schema):
                if pa.types.is_decimal(f.type):
                    staging = staging.set_column(i, f.name, staging.column(i).cast(pa.string()))
            cur.adbc_ingest(f"{name}_staging", staging, mode="create", db_schema_name="cf")
            casts = ", ".join(f"{f.name}::{_sql_type(f, PG_TYPES)}" for f in data.schema)
            cur.execute(f"INSERT INTO cf.{name} SELECT {casts} FROM cf.{name}_staging")
            cur.execute(f"DROP TABLE cf.{name}_staging")
            cur.execute(f"ANALYZE cf.{name}")


def load_mysql(params: dict, database: str, tables: dict[str, pa.Table]) -> None:
    import pymysql

    conn = pymysql.connect(database=database, autocommit=True, charset="utf8mb4", **params)
    try:
        with conn.cursor() as cur:
            for name, data in tables.items():
                cur.execute(f"CREATE TABLE {name} ({_columns(data, MYSQL_TYPES)})")
                cur.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * data.num_columns)})",
                                [tuple(r.values()) for r in data.to_pylist()])
                cur.execute(f"ANALYZE TABLE {name}")
    finally:
        conn.close()


def write_sqlite(path: Path, tables: dict[str, pa.Table]) -> Path:
    """Decimals as text, dates and timestamps as ISO text, booleans 0/1 (how SQLite databases hold them)."""

    def cell(v):
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, dt.datetime):
            return v.isoformat(sep=" ")
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


def write_lake(root: Path, tables: dict[str, pa.Table]) -> None:
    """The tables as Delta tables under ``root/delta`` and as Iceberg tables (namespace ``cf``) of a SQLite
    catalog ``root/iceberg.db`` with its warehouse under ``root/warehouse``."""
    from deltalake import write_deltalake
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("ice", uri=f"sqlite:///{root}/iceberg.db", warehouse=f"file://{root}/warehouse")
    catalog.create_namespace("cf")
    for name, data in tables.items():
        write_deltalake(str(root / "delta" / name), data)
        catalog.create_table(f"cf.{name}", schema=data.schema).append(data)


def lake_settings(settings, root: Path):
    """``settings`` with the lake sources of ``write_lake``: ``dl`` (Delta) and ``ice`` (Iceberg)."""
    from gateway.settings import SourceConfig

    settings.sources.append(SourceConfig(name="dl", kind="delta", path=str(root / "delta")))
    settings.sources.append(SourceConfig(name="ice", kind="iceberg", uri=f"sqlite:///{root}/iceberg.db",
                                         warehouse=f"{root}/warehouse"))
    return settings


@dataclass
class World:
    """The tables in a fresh PostgreSQL database (schema ``cf``), a fresh MariaDB database, a SQLite file, a
    Parquet folder and a CSV folder; ``prefix[source]`` is the ``catalog.schema`` of its tables."""

    pg_admin_uri: str
    mysql_uri: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gw_conformance_")))
    tables: dict[str, pa.Table] = field(default_factory=canonical_tables)
    database: str = ""

    def create(self) -> World:
        import adbc_driver_postgresql.dbapi as pg
        import pymysql

        self.database = f"gw_conf_{secrets.token_hex(4)}"
        with pg.connect(self.pg_admin_uri, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {self.database} {PG_DATABASE_OPTIONS}")
        admin = pymysql.connect(autocommit=True, **mysql_params(self.mysql_uri))
        try:
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4")
        finally:
            admin.close()
        load_postgres(_with_database(self.pg_admin_uri, self.database), self.tables)
        load_mysql(mysql_params(self.mysql_uri), self.database, self.tables)
        write_sqlite(self.root / "conformance.db", self.tables)
        write_files(self.root / "pq", self.tables, "parquet")
        write_files(self.root / "csv", self.tables, "csv")
        write_lake(self.root, self.tables)
        return self

    @property
    def prefix(self) -> dict[str, str]:
        return {"pg": "pg.cf", "maria": f"maria.{self.database}", "lite": "lite.main", "pq": "pq.main",
                "csv": "csv.main", "dl": "dl.main", "ice": "ice.cf"}

    def settings(self):
        settings = five_source_settings(self.root, _with_database(self.pg_admin_uri, self.database),
                                        _with_database(self.mysql_uri, self.database), "conformance.db")
        return lake_settings(settings, self.root)

    def close(self) -> None:
        drop_five_sources(self.pg_admin_uri, self.database, self.mysql_uri, self.database, self.root)
