"""TPC-H data and queries for the correctness suite (and bench/): generated offline by DuckDB's tpch extension.

A standard benchmark's data set, so it stays its own data rather than a group of the tests' world
(``tests/world.py``); the ``tpch_world`` fixture of ``tests/conftest.py`` loads it once per session into the
world's PostgreSQL and MariaDB databases through the world's loader (``load_postgres`` and ``load_mysql``
below, which bench/ also uses) and a Parquet folder beside the world's (one file per ship year, not
Hive-partitioned). The eight tables are split across the sources:
- PostgreSQL (schema ``tpch``): ``orders``, ``customer``
- MariaDB (its own database): ``part``, ``partsupp``, ``supplier``
- Parquet: ``lineitem`` as one file per ship year under ``lineitem/``, ``nation.parquet``, ``region.parquet``
"""

from __future__ import annotations

import decimal
import glob
import math
import os
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from tests import sources
from tests.world import WorldTable

PLACEMENT = {
    "orders": "pg", "customer": "pg",
    "part": "maria", "partsupp": "maria", "supplier": "maria",
    "lineitem": "lake", "nation": "lake", "region": "lake",
}


def _duckdb():
    import duckdb
    import duckdb_extension_tpch

    con = duckdb.connect()
    pattern = os.path.join(os.path.dirname(duckdb_extension_tpch.__file__), "extensions", "*", "tpch.duckdb_extension")
    con.execute(f"LOAD '{glob.glob(pattern)[0]}'")
    return con


def generate(scale_factor: float) -> tuple[dict[str, pa.Table], dict[int, str]]:
    """(tables as Arrow, {query number: standard query text}) at ``scale_factor``."""
    con = _duckdb()
    con.execute(f"CALL dbgen(sf={scale_factor})")
    tables = {name: con.execute(f"SELECT * FROM {name}").to_arrow_table() for name in PLACEMENT}
    queries = dict(con.execute("SELECT query_nr, query FROM tpch_queries()").fetchall())
    con.close()
    # plain utf8 (DuckDB may hand out string views); keys and sizes keep DuckDB's int32/int64 types
    tables = {n: t.cast(pa.schema([
        pa.field(f.name, pa.string() if pa.types.is_string_view(f.type) or pa.types.is_large_string(f.type) else f.type,
                 f.nullable)
        for f in t.schema])) for n, t in tables.items()}
    return tables, queries


def sql_type(t: pa.DataType, mysql: bool) -> str:
    """A TPC-H column's type in MariaDB (``mysql``) or PostgreSQL, as ``world_table`` has the loader create it."""
    if pa.types.is_string(t):
        return "varchar(255)" if mysql else "text"
    return sources.sql_type(pa.field("column", t), sources.MYSQL_TYPES if mysql else sources.PG_TYPES)


def world_table(name: str, table: pa.Table, place: str) -> WorldTable:
    """A TPC-H table as the world's loader (``tests/sources.py``) takes it: every column NOT NULL, text as
    ``varchar(255)`` in MariaDB (``text`` in PostgreSQL), PostgreSQL schema ``tpch``, no primary key."""
    data = table.cast(pa.schema([f.with_nullable(False) for f in table.schema]))
    text = {f.name: "varchar(255)" for f in table.schema if pa.types.is_string(f.type)}
    return WorldTable(name, "tpch", lambda: data, (place,), primary_key=None, types={"mysql": text})


def load_postgres(uri: str, tables: dict[str, pa.Table], names: Iterable[str] | None = None,
                  primary_keys: dict[str, tuple[str, ...]] | None = None, say=lambda text: None) -> None:
    """The tables ``names`` (default: those ``PLACEMENT`` puts in PostgreSQL) into schema ``tpch`` of the
    database at ``uri`` with the world's loader (ADBC ingest, typed casts, ``ANALYZE``), then the primary key
    of ``primary_keys[name]`` when given; ``say`` hears the progress."""
    import adbc_driver_postgresql.dbapi as pg

    for name in [n for n, s in PLACEMENT.items() if s == "pg"] if names is None else names:
        say(f"  PostgreSQL tpch.{name} ({tables[name].num_rows:,} rows)")
        sources.load_postgres(uri, [world_table(name, tables[name], "postgresql")])
        if primary_keys:
            with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute(f"ALTER TABLE tpch.{name} ADD PRIMARY KEY ({', '.join(primary_keys[name])})")


def load_mysql(params: dict, database: str, tables: dict[str, pa.Table]) -> None:
    """The tables ``PLACEMENT`` puts in MariaDB into ``database`` (which must exist) with the world's loader."""
    sources.load_mysql(params, database, [world_table(n, tables[n], "mysql") for n, s in PLACEMENT.items()
                                          if s == "maria"])


def write_parquet(folder: Path, tables: dict[str, pa.Table]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lineitem = tables["lineitem"]
    years = pc.year(lineitem.column("l_shipdate"))
    for year in sorted(set(years.to_pylist())):
        (folder / "lineitem").mkdir(exist_ok=True)
        pq.write_table(lineitem.filter(pc.equal(years, year)), folder / "lineitem" / f"lineitem-{year}.parquet")
    for name in ("nation", "region"):
        pq.write_table(tables[name], folder / f"{name}.parquet")
    return folder


def qualify_tables(sql: str, names: dict[str, str]) -> str:
    """The query text with each TPC-H table name replaced by ``names[table]`` (e.g. ``pg.tpch.orders``)."""
    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name in names and not node.args.get("db"):
            parts = names[node.name].split(".")
            table = exp.table_(parts[-1], db=parts[-2] if len(parts) > 1 else None,
                               catalog=parts[-3] if len(parts) > 2 else None)
            table.set("alias", node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name)))
            return table
        return node

    return sqlglot.parse_one(sql, read="postgres").transform(rewrite).sql(dialect="postgres")


def _normalize(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, decimal.Decimal):
        return value.normalize() if value == value else value
    return value


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def assert_same_rows(got: pa.Table, want: pa.Table, label: object = None) -> None:
    """Same columns, types and rows (in any order; floats within 1e-9 relative); ``label`` (e.g. the query's
    number) is named in every failure."""
    assert got.column_names == want.column_names, label
    assert [f.type for f in got.schema] == [f.type for f in want.schema], label
    assert got.num_rows == want.num_rows, label
    key = lambda row: tuple((v is None, str(_normalize(v))) for v in row)  # noqa: E731
    got_rows = sorted((tuple(r.values()) for r in got.to_pylist()), key=key)
    want_rows = sorted((tuple(r.values()) for r in want.to_pylist()), key=key)
    for g, w in zip(got_rows, want_rows, strict=True):
        assert all(_close(a, b) for a, b in zip(g, w, strict=True)), (g, w) if label is None else (label, g, w)
