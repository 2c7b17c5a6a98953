"""Placements of the eight TPC-H tables over the three sources (``pg``, ``maria``, ``lake``) for
bench/tpch_bench.py, and the loaders that put every table in every source once per scale factor.

A placement maps each table to the source whose copy a query reads; the query text names that copy
(``pg.tpch.lineitem``, ``maria.gw_bench_tpch.lineitem`` or ``lake.main.lineitem``), so switching placement needs
no reload: the gateway's catalog and DuckDB attach the three sources once and the qualified SQL picks the copies.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests import tpch

# a fixed order (not tests/tpch.py's dict order) so that random:SEED stays the same placement
TABLES = ("lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region")
SOURCES = ("pg", "maria", "lake")
PRIMARY_KEYS = {
    "lineitem": ["l_orderkey", "l_linenumber"], "orders": ["o_orderkey"], "customer": ["c_custkey"],
    "part": ["p_partkey"], "partsupp": ["ps_partkey", "ps_suppkey"], "supplier": ["s_suppkey"],
    "nation": ["n_nationkey"], "region": ["r_regionkey"],
}

# tests/tpch.py's PLACEMENT, copied so that an edit there does not silently change what `split` measured
SPLIT = {"orders": "pg", "customer": "pg", "part": "maria", "partsupp": "maria", "supplier": "maria",
         "lineitem": "lake", "nation": "lake", "region": "lake"}

NAMED: dict[str, dict[str, str]] = {
    "all-pg": {t: "pg" for t in TABLES},
    "all-maria": {t: "maria" for t in TABLES},
    "all-lake": {t: "lake" for t in TABLES},
    "split": SPLIT,
    # the placement where the gateway was measured 1.70x slower than DuckDB
    "issue": {t: "lake" if t in ("lineitem", "orders") else "pg" for t in TABLES},
}
DEFAULT = (*NAMED, "random:1", "random:2", "random:3", "random:4")

DESCRIPTIONS = {
    "all-pg": "every table in PostgreSQL",
    "all-maria": "every table in MariaDB",
    "all-lake": "every table as Parquet",
    "split": "the correctness suite's split (tests/tpch.py)",
    "issue": "lineitem and orders as Parquet, the rest in PostgreSQL",
}


def placement(name: str) -> dict[str, str]:
    """``{table: source}`` for a named placement or ``random:SEED`` (each table to a source uniformly, in
    TABLES order, from ``random.Random(SEED)``)."""
    if name in NAMED:
        return dict(NAMED[name])
    kind, _, seed = name.partition(":")
    if kind == "random" and seed.strip().lstrip("-").isdigit():
        rng = random.Random(int(seed))
        return {t: rng.choice(SOURCES) for t in TABLES}
    raise ValueError(f"unknown placement {name!r}: one of {', '.join(NAMED)} or random:SEED")


def describe(name: str, where: dict[str, str]) -> str:
    """``pg: orders, customer; maria: ...; lake: ...`` (sources without tables left out)."""
    return "; ".join(f"{s}: {', '.join(t for t in TABLES if where[t] == s)}" for s in SOURCES
                     if any(where[t] == s for t in TABLES))


def qualified_names(where: dict[str, str], database: str) -> dict[str, str]:
    """``{table: the source-qualified name of the copy the placement reads}``."""
    return {t: {"pg": f"pg.tpch.{t}", "maria": f"maria.{database}.{t}", "lake": f"lake.main.{t}"}[s]
            for t, s in where.items()}


def lake_location(lake: Path, table: str) -> Path:
    """lineitem is a folder of one file per ship year; the other tables one file each."""
    return lake / table if (lake / table).is_dir() else lake / f"{table}.parquet"


# -- loading every table everywhere ----------------------------------------------------------------------

def load_postgres(uri: str, tables: dict[str, pa.Table], say=lambda text: None) -> None:
    """All tables into schema ``tpch`` of the (fresh) database at ``uri`` (``tests.tpch.load_postgres``: ADBC
    ingest into a staging table with decimals as text, ``INSERT ... SELECT`` with the numeric casts), each with
    its primary key, ``ANALYZE``."""
    tpch.load_postgres(uri, tables, TABLES, PRIMARY_KEYS, say)


def load_mysql(params: dict, database: str, tables: dict[str, pa.Table], scratch: Path,
               say=lambda text: None) -> None:
    """All tables into ``database`` (dropped and created) through CSV and ``LOAD DATA LOCAL INFILE``
    (executemany is far too slow at SF 1), primary key, ``ANALYZE TABLE``; the server's default collation."""

    def write_csv(name: str, path: Path) -> None:
        table = tables[name]
        say(f"  MariaDB {database}.{name} ({table.num_rows:,} rows)")
        pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False, delimiter="|"))

    load_mysql_csv(params, database, {n: tables[n].schema for n in TABLES}, scratch, write_csv,
                   {n: tables[n].num_rows for n in TABLES})


def load_mysql_csv(params: dict, database: str, schemas: dict[str, pa.Schema], scratch: Path,
                   write_csv, rows: dict[str, int] | None = None) -> None:
    """Tables of ``schemas`` (Arrow) into ``database`` (dropped and created, utf8mb4): each created with its
    primary key, written by ``write_csv(name, path)`` as a headerless ``|``-separated file, loaded with ``LOAD
    DATA LOCAL INFILE``, checked against ``rows[name]`` when given (RuntimeError), then ``ANALYZE TABLE``."""
    import pymysql

    conn = pymysql.connect(autocommit=True, local_infile=True, **params)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database}")
            cur.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
            cur.execute(f"USE {database}")
            for name, schema in schemas.items():
                columns = ", ".join(f"{f.name} {tpch.sql_type(f.type, True)} NOT NULL" for f in schema)
                cur.execute(f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({', '.join(PRIMARY_KEYS[name])}))")
                path = scratch / f"{name}.csv"
                write_csv(name, path)
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {name} CHARACTER SET utf8mb4 FIELDS TERMINATED BY '|' "
                    "OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n'", (str(path),))
                path.unlink()
                if rows is not None:
                    cur.execute(f"SELECT count(*) FROM {name}")
                    count = cur.fetchone()[0]
                    if count != rows[name]:
                        raise RuntimeError(f"MariaDB {name}: {count} rows loaded, want {rows[name]}")
                cur.execute(f"ANALYZE TABLE {name}")
                cur.fetchall()
    finally:
        conn.close()


def write_lake(folder: Path, tables: dict[str, pa.Table]) -> None:
    """The lake source's folder: ``lineitem/lineitem-<year>.parquet`` (one file per ship year, as the
    correctness suite writes it) and ``<table>.parquet`` for the seven others."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    lineitem = tables["lineitem"]
    years = pc.year(lineitem.column("l_shipdate"))
    (folder / "lineitem").mkdir()
    for year in sorted(set(years.to_pylist())):
        pq.write_table(lineitem.filter(pc.equal(years, year)), folder / "lineitem" / f"lineitem-{year}.parquet")
    for name in TABLES:
        if name != "lineitem":
            pq.write_table(tables[name], folder / f"{name}.parquet")


def write_local(folder: Path, tables: dict[str, pa.Table]) -> None:
    """One file per table: the reference answers, the all-local contender and the rows-needed counts."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in TABLES:
        pq.write_table(tables[name], folder / f"{name}.parquet")


def count_rows(pg_uri: str, mysql: dict, database: str, tables: dict[str, list[str]] | None = None
               ) -> dict[str, dict[str, int]]:
    """``{source: {table: rows}}`` of the two databases' copies, of ``tables[source]`` when given (else of every
    table); raises when they cannot be read."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    counts: dict[str, dict[str, int]] = {"pg": {}, "maria": {}}
    with pg.connect(pg_uri, autocommit=True) as conn, conn.cursor() as cur:
        for name in (tables or {}).get("pg", TABLES):
            cur.execute(f"SELECT count(*) FROM tpch.{name}")
            counts["pg"][name] = cur.fetchone()[0]
    conn = pymysql.connect(database=database, **mysql)
    try:
        with conn.cursor() as cur:
            for name in (tables or {}).get("maria", TABLES):
                cur.execute(f"SELECT count(*) FROM {name}")
                counts["maria"][name] = cur.fetchone()[0]
    finally:
        conn.close()
    return counts
