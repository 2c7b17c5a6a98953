"""TPC-H at a large scale factor (SF10 and up) loaded without holding it in memory, for the benchmarks that read it.

``bench/tpch_bench.py`` generates the data as Arrow tables in this process and loads them from there: at SF10
that holds ~13 GB and more. This loader keeps the data in a DuckDB database file instead (``dbgen`` under a
memory limit) and streams each table out in record batches of ``BATCH_ROWS`` rows:

- Parquet (lake/ and local/, the same layout and types as ``placements.write_lake``/``write_local``) through
  ``pyarrow.parquet.ParquetWriter``;
- PostgreSQL through DuckDB's postgres extension (``INSERT INTO pg.tpch.<table> SELECT ...``: binary COPY)
  into tables created with the types the other loader gives them, then the primary key and ``ANALYZE``;
- MariaDB through DuckDB-written CSV files and ``LOAD DATA LOCAL INFILE`` (one file at a time), then
  ``ANALYZE TABLE``.

Only the tables the given placements put in each database are loaded there (every table goes to Parquet):
``meta.json`` records which (``tables_by_source``) and ``tpch_bench.loaded_meta`` accepts the data for those
placements only. Without ``--placement`` every table goes everywhere (the layout ``tpch_bench`` loads itself).

    .venv/bin/python bench/tpch_large_load.py --scale-factor 10 --database gw_bench_tpch10 \\
        --data /tmp/gw_bench_tpch10 --placement split

Peak memory: DuckDB's limit (``--memory-gb``, default 4) plus a batch. Progress is printed per table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench import placements as pl  # noqa: E402
from bench.tpch_bench import DATABASE, DEFAULT_MYSQL, DEFAULT_PG, LAYOUT, mysql_params, with_database  # noqa: E402
from tests import tpch  # noqa: E402

#: rows per record batch streamed out of DuckDB
BATCH_ROWS = 1_000_000


def _plain(schema: pa.Schema) -> pa.Schema:
    """``schema`` with string views and large strings as plain utf8 (as ``tests.tpch.generate`` casts them)."""
    return pa.schema([pa.field(f.name, pa.string() if pa.types.is_string_view(f.type)
                               or pa.types.is_large_string(f.type) else f.type, f.nullable) for f in schema])


def _batches(con, sql: str):
    """``(schema, iterator of record batches)`` of ``sql`` in DuckDB, strings as plain utf8."""
    reader = con.execute(sql).to_arrow_reader(BATCH_ROWS)
    schema = _plain(reader.schema)
    return schema, (batch.cast(schema) for batch in reader)


def write_parquet(con, path: Path, sql: str) -> int:
    """``sql``'s rows into one Parquet file at ``path``; returns the rows written."""
    schema, batches = _batches(con, sql)
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def write_files(con, folder: Path, say) -> dict[str, int]:
    """lake/ (lineitem one file per ship year) and local/ (one file per table); ``{table: rows}``."""
    lake, local = folder / "lake", folder / "local"
    for path in (lake, local):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    (lake / "lineitem").mkdir()
    rows = {}
    for name in pl.TABLES:
        say(f"  Parquet {name}")
        rows[name] = write_parquet(con, local / f"{name}.parquet", f"SELECT * FROM {name}")
        if name == "lineitem":
            years = [y for (y,) in con.execute("SELECT DISTINCT year(l_shipdate) FROM lineitem ORDER BY 1").fetchall()]
            for year in years:
                write_parquet(con, lake / "lineitem" / f"lineitem-{year}.parquet",
                              f"SELECT * FROM lineitem WHERE year(l_shipdate) = {year}")
        else:
            shutil.copyfile(local / f"{name}.parquet", lake / f"{name}.parquet")
    return rows


def load_postgres(con, uri: str, names: list[str], say) -> None:
    """``names`` into schema ``tpch`` of the (fresh) database at ``uri``: created with the world's types,
    filled by DuckDB's binary COPY, then primary key and ANALYZE."""
    import adbc_driver_postgresql.dbapi as pg

    _load_extension(con, "postgres_scanner")
    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS tpch")
        for name in names:
            schema = _plain(con.execute(f"SELECT * FROM {name} LIMIT 0").to_arrow_reader().schema)
            columns = ", ".join(f"{f.name} {tpch.sql_type(f.type, False)} NOT NULL" for f in schema)
            cur.execute(f"DROP TABLE IF EXISTS tpch.{name}")
            cur.execute(f"CREATE TABLE tpch.{name} ({columns})")
    parts = uri.split("/")
    con.execute(f"ATTACH 'host=127.0.0.1 port=5432 user=postgres dbname={parts[-1]}' AS pgdb (TYPE postgres)")
    try:
        for name in names:
            say(f"  PostgreSQL tpch.{name}")
            con.execute(f"INSERT INTO pgdb.tpch.{name} SELECT * FROM {name}")
    finally:
        con.execute("DETACH pgdb")
    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        for name in names:
            say(f"  PostgreSQL tpch.{name}: primary key, ANALYZE")
            cur.execute(f"ALTER TABLE tpch.{name} ADD PRIMARY KEY ({', '.join(pl.PRIMARY_KEYS[name])})")
            cur.execute(f"ANALYZE tpch.{name}")


def load_mysql(con, params: dict, database: str, names: list[str], scratch: Path, say) -> None:
    """``names`` into ``database`` (dropped and created; ``placements.load_mysql_csv``: the world's types, primary
    key, ``LOAD DATA LOCAL INFILE``, ``ANALYZE TABLE``) from DuckDB-written CSV files, one table at a time."""

    def write_csv(name: str, path: Path) -> None:
        say(f"  MariaDB {database}.{name}")
        con.execute(f"COPY (SELECT * FROM {name}) TO '{path}' (FORMAT csv, DELIMITER '|', HEADER false, "
                    "QUOTE '\"', DATEFORMAT '%Y-%m-%d')")

    schemas = {n: _plain(con.execute(f"SELECT * FROM {n} LIMIT 0").to_arrow_reader().schema) for n in names}
    pl.load_mysql_csv(params, database, schemas, scratch, write_csv)


def _load_extension(con, package: str) -> None:
    """Load a DuckDB extension from its PyPI package (``duckdb_extension_<name>``: no download at run time)."""
    import glob
    import importlib
    import os

    module = importlib.import_module(f"duckdb_extension_{package}")
    found = glob.glob(os.path.join(os.path.dirname(module.__file__), "extensions", "*", "*.duckdb_extension"))
    con.execute(f"LOAD '{found[0]}'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=10)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--data", default="/tmp/gw_bench_tpch10")
    parser.add_argument("--placement", action="append", help="repeatable; default: every table everywhere")
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--mysql", default=DEFAULT_MYSQL)
    parser.add_argument("--memory-gb", type=float, default=4)
    args = parser.parse_args(argv)

    import adbc_driver_postgresql.dbapi as pg
    import duckdb

    folder = Path(args.data)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)
    wanted = {s: sorted({t for p in args.placement for t, where in pl.placement(p).items() if where == s})
              for s in ("pg", "maria")} if args.placement else {s: list(pl.TABLES) for s in ("pg", "maria")}
    say = lambda text: print(f"{dt.datetime.now():%H:%M:%S} {text}", flush=True)  # noqa: E731
    timings = {}
    path = folder / "dbgen.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute(f"SET memory_limit = '{args.memory_gb}GB'")
    con.execute(f"SET temp_directory = '{folder / 'duckdb_tmp'}'")
    con.execute("SET preserve_insertion_order = false")
    try:
        t0 = time.perf_counter()
        say(f"generating TPC-H SF {args.scale_factor:g} into {path}")
        _load_extension(con, "tpch")
        con.execute(f"CALL dbgen(sf={args.scale_factor})")
        timings["generate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = write_files(con, folder, say)
        timings["parquet"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with pg.connect(args.pg, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
            cur.execute(f"CREATE DATABASE {args.database}")
        load_postgres(con, with_database(args.pg, args.database), wanted["pg"], say)
        timings["postgresql"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        scratch = folder / "csv"
        scratch.mkdir(exist_ok=True)
        load_mysql(con, mysql_params(args.mysql), args.database, wanted["maria"], scratch, say)
        timings["mariadb"] = time.perf_counter() - t0
    finally:
        con.close()
        path.unlink(missing_ok=True)
        shutil.rmtree(folder / "duckdb_tmp", ignore_errors=True)
    complete = all(len(wanted[s]) == len(pl.TABLES) for s in wanted)
    meta = {"scale_factor": args.scale_factor,
            "layout": LAYOUT if complete else "tables by source",
            "tables_by_source": wanted, "placements": args.placement or [],
            "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "rows": rows,
            "load_seconds": {k: round(v, 1) for k, v in timings.items()}, "loader": "bench/tpch_large_load.py"}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    say(f"done: {json.dumps(meta['load_seconds'])}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
