"""TPC-H data and queries for the correctness suite (and bench/): generated offline by DuckDB's tpch extension.

The eight tables are split across the sources:
- PostgreSQL (schema ``tpch``): ``orders``, ``customer``
- MariaDB (its own database): ``part``, ``partsupp``, ``supplier``
- Parquet: ``lineitem`` as one file per ship year under ``lineitem/``, ``nation.parquet``, ``region.parquet``
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

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


def _sql_type(t: pa.DataType, mysql: bool) -> str:
    if pa.types.is_int32(t):
        return "integer"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})" if mysql else f"numeric({t.precision},{t.scale})"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_string(t):
        return "varchar(255)" if mysql else "text"
    raise ValueError(f"no SQL type for {t}")


def load_postgres(uri: str, tables: dict[str, pa.Table]) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA tpch")
        for name in (n for n, s in PLACEMENT.items() if s == "pg"):
            table = tables[name]
            columns = ", ".join(f"{f.name} {_sql_type(f.type, False)} NOT NULL" for f in table.schema)
            cur.execute(f"CREATE TABLE tpch.{name} ({columns})")
            staging = table.cast(pa.schema([
                pa.field(f.name, pa.string() if pa.types.is_decimal(f.type) else f.type) for f in table.schema
            ]))
            cur.adbc_ingest(f"{name}_staging", staging, mode="create", db_schema_name="tpch")
            select = ", ".join(
                f"{f.name}::{_sql_type(f.type, False)}" if pa.types.is_decimal(f.type) else f.name for f in table.schema
            )
            cur.execute(f"INSERT INTO tpch.{name} SELECT {select} FROM tpch.{name}_staging")
            cur.execute(f"DROP TABLE tpch.{name}_staging")
            cur.execute(f"ANALYZE tpch.{name}")


def load_mysql(params: dict, database: str, tables: dict[str, pa.Table]) -> None:
    import pymysql

    conn = pymysql.connect(database=database, autocommit=True, **params)
    try:
        with conn.cursor() as cur:
            for name in (n for n, s in PLACEMENT.items() if s == "maria"):
                table = tables[name]
                columns = ", ".join(f"{f.name} {_sql_type(f.type, True)} NOT NULL" for f in table.schema)
                cur.execute(f"CREATE TABLE {name} ({columns})")
                placeholders = ", ".join(["%s"] * table.num_columns)
                rows = [tuple(r.values()) for r in table.to_pylist()]
                for start in range(0, len(rows), 5000):
                    cur.executemany(f"INSERT INTO {name} VALUES ({placeholders})", rows[start:start + 5000])
                cur.execute(f"ANALYZE TABLE {name}")
    finally:
        conn.close()


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
