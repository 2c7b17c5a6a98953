"""TPC-H across PostgreSQL, MariaDB and Parquet: the gateway end to end over Flight SQL, beside DuckDB and
DataFusion, in one run. See bench/README.md.

    python bench/tpch_bench.py [--scale-factor 1] [--queries 1,3,5] [--repeat 3] [--skip-load] [--drop]
                               [--pg URI] [--mysql URI] [--data DIR] [--out FILE] [--write-readme]

The split is the correctness suite's (tests/tpch.py): orders, customer -> PostgreSQL (schema ``tpch`` of the
database ``gw_bench_tpch``); part, partsupp, supplier -> MariaDB (database ``gw_bench_tpch``); lineitem (one
Parquet file per ship year), nation, region -> a Parquet folder. A copy of all eight tables as local Parquet
files sits beside it for the all-local contender and for counting the rows each query needs.

Contenders, each with one warm-up run and ``--repeat`` timed runs per query (the median is reported):
- ``gateway``: the real Flight SQL server (GatewayFlightServer on a free loopback port) over a QueryEngine with the
  three sources, queried through the ADBC Flight SQL driver (``fetch_arrow_table``); rows and bytes fetched
  per source come from the gateway's query history.
- ``duckdb``: DuckDB with postgres_scanner and mysql_scanner (loaded from the duckdb-extension-* wheels of the
  same version, by path: nothing is downloaded) attached as ``pg`` and ``maria``, and Parquet views in an
  attached in-memory database ``lake``, so the same source-qualified SQL runs unchanged.
- ``datafusion-nopush``: every table the query names is pulled whole (PostgreSQL through ADBC, MariaDB through
  connectorx, Parquet read whole, the three sources in parallel) into a fresh DataFusion session, then the
  query runs there; the time includes the pulls.
- ``datafusion-local``: DataFusion over the eight tables as local Parquet files.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    duckdb_extension_path,
    geomean,
    git_commit,
    machine,
    median,
    same_rows,
    write_readme_section,
)
from tests import tpch  # noqa: E402

DATABASE = "gw_bench_tpch"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL = "mysql://root@127.0.0.1:3306"
DEFAULT_DATA = "/tmp/gw_bench_tpch"
CONTENDERS = ("gateway", "duckdb", "datafusion-nopush", "datafusion-local")
PEERS = ("duckdb", "datafusion-nopush", "datafusion-local")
SOURCES = ("pg", "maria", "lake")
PRIMARY_KEYS = {
    "orders": ["o_orderkey"], "customer": ["c_custkey"],
    "part": ["p_partkey"], "partsupp": ["ps_partkey", "ps_suppkey"], "supplier": ["s_suppkey"],
}
README_HEADING = "## TPC-H benchmark"
README_INTRO = ("`bench/tpch_bench.py` (see [bench/README.md](bench/README.md)): TPC-H over PostgreSQL, MariaDB and "
                "Parquet through the Flight SQL server, beside DuckDB and DataFusion.")
GOAL_TIME_RATIO = 0.8      # gateway geomean / DuckDB geomean
GOAL_FETCH_RATIO = 1.1     # rows fetched / rows needed, per query


# -- locations -------------------------------------------------------------------------------------------

def with_database(uri: str, database: str) -> str:
    return urlunsplit(urlsplit(uri)._replace(path=f"/{database}"))


def mysql_params(uri: str) -> dict:
    parts = urlsplit(uri)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or "root"), "password": unquote(parts.password or "")}


def qualified_names() -> dict[str, str]:
    return {t: {"pg": f"pg.tpch.{t}", "maria": f"maria.{DATABASE}.{t}", "lake": f"lake.main.{t}"}[s]
            for t, s in tpch.PLACEMENT.items()}


# -- loading ---------------------------------------------------------------------------------------------

def load_postgres(admin_uri: str, tables: dict[str, pa.Table]) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(admin_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DATABASE}")
    uri = with_database(admin_uri, DATABASE)
    tpch.load_postgres(uri, tables)  # ADBC ingest (COPY) into staging tables, then INSERT ... SELECT with casts
    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        for name in (n for n, s in tpch.PLACEMENT.items() if s == "pg"):
            cur.execute(f"ALTER TABLE tpch.{name} ADD PRIMARY KEY ({', '.join(PRIMARY_KEYS[name])})")
            cur.execute(f"ANALYZE tpch.{name}")


def load_mysql(uri: str, tables: dict[str, pa.Table], scratch: Path) -> None:
    """CSV files through ``LOAD DATA LOCAL INFILE`` (executemany is far too slow at SF1)."""
    import pymysql

    conn = pymysql.connect(autocommit=True, local_infile=True, **mysql_params(uri))
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
            cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
            cur.execute(f"USE {DATABASE}")
            for name in (n for n, s in tpch.PLACEMENT.items() if s == "maria"):
                table = tables[name]
                columns = ", ".join(f"{f.name} {tpch._sql_type(f.type, True)} NOT NULL" for f in table.schema)
                cur.execute(f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({', '.join(PRIMARY_KEYS[name])}))")
                path = scratch / f"{name}.csv"
                pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False, delimiter="|"))
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {name} CHARACTER SET utf8mb4 FIELDS TERMINATED BY '|' "
                    "OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n'", (str(path),))
                path.unlink()
                cur.execute(f"SELECT count(*) FROM {name}")
                count = cur.fetchone()[0]
                if count != table.num_rows:
                    raise RuntimeError(f"MariaDB {name}: {count} rows loaded, want {table.num_rows}")
                cur.execute(f"ANALYZE TABLE {name}")
                cur.fetchall()
    finally:
        conn.close()


def write_files(folder: Path, tables: dict[str, pa.Table]) -> None:
    for sub in ("lake", "local"):
        shutil.rmtree(folder / sub, ignore_errors=True)
    tpch.write_parquet(folder / "lake", tables)  # lineitem/lineitem-<year>.parquet, nation.parquet, region.parquet
    (folder / "local").mkdir(parents=True)
    for name, table in tables.items():
        pq.write_table(table, folder / "local" / f"{name}.parquet")


def load_all(args, folder: Path, say) -> dict:
    timings = {}
    t0 = time.perf_counter()
    say(f"generating TPC-H SF {args.scale_factor} with DuckDB's tpch extension")
    tables, _ = tpch.generate(args.scale_factor)
    timings["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say(f"writing Parquet under {folder}")
    write_files(folder, tables)
    timings["parquet"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say(f"loading PostgreSQL database {DATABASE} (orders, customer)")
    load_postgres(args.pg, tables)
    timings["postgresql"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say(f"loading MariaDB database {DATABASE} (part, partsupp, supplier)")
    with tempfile.TemporaryDirectory(prefix="gw_bench_csv_") as scratch:
        load_mysql(args.mysql, tables, Path(scratch))
    timings["mariadb"] = time.perf_counter() - t0
    meta = {"scale_factor": args.scale_factor, "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "rows": {n: t.num_rows for n, t in tables.items()},
            "load_seconds": {k: round(v, 1) for k, v in timings.items()}}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def check_loaded(args, meta: dict) -> str | None:
    """Why the databases do not hold the data ``meta`` describes (another scale factor, say), or None."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    counts = {}
    try:
        with pg.connect(with_database(args.pg, DATABASE), autocommit=True) as conn, conn.cursor() as cur:
            for name in (n for n, s in tpch.PLACEMENT.items() if s == "pg"):
                cur.execute(f"SELECT count(*) FROM tpch.{name}")
                counts[name] = cur.fetchone()[0]
        conn = pymysql.connect(database=DATABASE, **mysql_params(args.mysql))
        with conn.cursor() as cur:
            for name in (n for n, s in tpch.PLACEMENT.items() if s == "maria"):
                cur.execute(f"SELECT count(*) FROM {name}")
                counts[name] = cur.fetchone()[0]
        conn.close()
    except Exception as exc:
        return f"the {DATABASE} databases cannot be read ({exc})"
    wrong = {n: c for n, c in counts.items() if c != meta["rows"][n]}
    if wrong:
        return f"the databases hold other data than {args.data} describes ({wrong} rows, want {meta['rows']})"
    return None


def drop_all(args, folder: Path, say) -> None:
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    with pg.connect(args.pg, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    conn = pymysql.connect(autocommit=True, **mysql_params(args.mysql))
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    conn.close()
    shutil.rmtree(folder, ignore_errors=True)
    say(f"dropped PostgreSQL and MariaDB databases {DATABASE} and removed {folder}")


def standard_queries() -> dict[int, str]:
    con = tpch._duckdb()
    try:
        return dict(con.execute("SELECT query_nr, query FROM tpch_queries()").fetchall())
    finally:
        con.close()


def referenced_tables(sql: str) -> set[str]:
    return {t.name for t in sqlglot.parse_one(sql, read="postgres").find_all(exp.Table) if t.name in tpch.PLACEMENT}


# -- rows each query needs -------------------------------------------------------------------------------

def _has_subquery(node: exp.Expression) -> bool:
    return node.find(exp.Select) is not None


def _only_on(node: exp.Expression, alias: str) -> bool:
    columns = list(node.find_all(exp.Column))
    return bool(columns) and all(c.table == alias for c in columns) and not _has_subquery(node)


def _conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    node = node.unnest()
    return [c.unnest() for c in node.flatten()] if isinstance(node, exp.And) else [node]


def _implied(node: exp.Expression, alias: str) -> exp.Expression | None:
    """For an OR across tables, the predicate it implies on ``alias``: OR over the disjuncts of each one's
    conjuncts on ``alias`` alone (None when some disjunct says nothing about ``alias``)."""
    parts = []
    for disjunct in (d.unnest() for d in node.flatten()):
        mine = [c for c in _conjuncts(disjunct) if _only_on(c, alias)]
        if not mine:
            return None
        parts.append(exp.and_(*mine) if len(mine) > 1 else mine[0])
    return exp.paren(exp.or_(*parts))


def single_table_predicates(sql: str, schema: dict[str, dict[str, str]]) -> list[dict]:
    """Each occurrence of a TPC-H table in ``sql`` with the conjunction of the predicates that involve it alone.

    Taken per SELECT scope (sub-queries and CTEs are scopes of their own): the conjuncts of WHERE and of the
    ON of inner joins whose columns all belong to the occurrence; for the right side of a LEFT JOIN only its
    ON conjuncts; an OR across tables contributes the predicate it implies on the occurrence. Conjuncts with
    sub-queries (IN/EXISTS/scalar) are left out: a semi-join is not a single-table filter.
    """
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    expression = qualify(sqlglot.parse_one(sql, read="postgres"), schema=schema, dialect="postgres")
    found = []
    for scope in traverse_scope(expression):
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        shared = _conjuncts(select.args["where"].this) if select.args.get("where") else []
        outer_on: dict[str, list[exp.Expression]] = {}
        for join in select.args.get("joins") or []:
            on = _conjuncts(join.args.get("on"))
            if join.side == "LEFT" and isinstance(join.this, exp.Table):
                outer_on[join.this.alias_or_name] = on
            elif join.side in ("RIGHT", "FULL"):
                raise NotImplementedError("RIGHT/FULL joins are not in TPC-H")
            else:
                shared += on
        for alias, (_, source) in scope.selected_sources.items():
            if not isinstance(source, exp.Table) or source.name not in tpch.PLACEMENT:
                continue
            candidates = outer_on.get(alias, shared)
            predicates = []
            for conjunct in candidates:
                if _only_on(conjunct, alias):
                    predicates.append(conjunct)
                elif isinstance(conjunct, exp.Or) and not _has_subquery(conjunct):
                    implied = _implied(conjunct, alias)
                    if implied is not None:
                        predicates.append(implied)
            found.append({"table": source.name, "alias": alias,
                          "predicate": exp.and_(*predicates) if predicates else None})
    return found


def rows_needed(queries: dict[int, str], local: Path) -> dict[int, dict]:
    """Per query: each table occurrence with its single-table predicates and how many rows of the local
    Parquet copy satisfy them (DuckDB counts), and the sums per source."""
    import duckdb

    con = duckdb.connect()
    schema = {}
    for name in tpch.PLACEMENT:
        arrow = pq.read_schema(local / f"{name}.parquet")
        schema[name] = {f.name: "TEXT" if pa.types.is_string(f.type) else str(f.type).upper()
                        .replace("DECIMAL128", "DECIMAL").replace("DATE32[DAY]", "DATE").replace("INT32", "INT")
                        .replace("INT64", "BIGINT") for f in arrow}
    out = {}
    for number, sql in queries.items():
        occurrences = []
        for occ in single_table_predicates(sql, schema):
            alias = exp.to_identifier(occ["alias"], quoted=True).sql("duckdb")
            where = f" WHERE {occ['predicate'].sql('duckdb')}" if occ["predicate"] is not None else ""
            path = (local / f"{occ['table']}.parquet").as_posix()
            rows = con.execute(f"SELECT count(*) FROM read_parquet('{path}') AS {alias}{where}").fetchone()[0]
            occurrences.append({"table": occ["table"], "alias": occ["alias"], "source": tpch.PLACEMENT[occ["table"]],
                                "predicate": occ["predicate"].sql("postgres") if occ["predicate"] is not None
                                else None, "rows": rows})
        per_source = {s: sum(o["rows"] for o in occurrences if o["source"] == s) for s in SOURCES}
        out[number] = {"occurrences": occurrences, "per_source": per_source, "total": sum(per_source.values())}
    con.close()
    return out


# -- contenders ------------------------------------------------------------------------------------------

class Contender:
    name = ""

    def run(self, number: int) -> tuple[pa.Table, dict]:
        raise NotImplementedError

    def cancel(self) -> None:
        """Best effort: stop the run in progress (called from another thread on a timeout)."""

    def reset(self) -> None:
        """Get ready for the next run after one that did not stop when cancelled."""

    def close(self) -> None:
        pass


def run_with_timeout(contender: Contender, number: int, timeout: float) -> tuple[pa.Table, dict]:
    """``contender.run(number)`` in a worker thread; past ``timeout`` seconds it is cancelled (and abandoned if
    it does not stop) and TimeoutError is raised, so one stuck query does not stop the benchmark."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = contender.run(number)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"bench-{contender.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        contender.cancel()
        thread.join(10)
        if thread.is_alive():
            contender.reset()
            raise TimeoutError(f"no answer within {timeout:g} s; cancelled, and it did not stop (abandoned)")
        raise TimeoutError(f"no answer within {timeout:g} s; cancelled")
    if "error" in box:
        raise box["error"]
    return box["value"]


class GatewayContender(Contender):
    """The real Flight SQL server on a free loopback port, queried through the ADBC Flight SQL driver."""

    name = "gateway"

    def __init__(self, args, folder: Path, qualified: dict[int, str]) -> None:
        import adbc_driver_flightsql.dbapi as flightsql

        from flight_server.server import GatewayFlightServer
        from gateway.execution.engine import QueryEngine
        from gateway.settings import settings_from_dict

        lake = folder / "lake"
        settings = settings_from_dict({"sources": [
            {"name": "pg", "kind": "postgresql", "uri": with_database(args.pg, DATABASE)},
            {"name": "maria", "kind": "mysql", "uri": with_database(args.mysql, DATABASE)},
            {"name": "lake", "kind": "parquet", "path": str(lake)},
        ]}, base_dir=lake)
        self.engine = QueryEngine(settings)
        self.server = GatewayFlightServer(self.engine, "grpc://127.0.0.1:0")
        self.thread = threading.Thread(target=self.server.serve, name="bench-flight-sql", daemon=True)
        self.thread.start()
        self.uri = f"grpc://127.0.0.1:{self.server.port}"
        self.conn = flightsql.connect(self.uri, autocommit=True)
        self._cursor = None
        self.qualified = qualified

    def run(self, number: int) -> tuple[pa.Table, dict]:
        sql = self.qualified[number]
        with self.conn.cursor() as cur:
            self._cursor = cur
            cur.execute(sql)
            table = cur.fetch_arrow_table()
            self._cursor = None
        stats = self._stats(sql)
        fetched = {s: {"rows": 0, "bytes": 0} for s in SOURCES}
        for fragment in stats.fragments:
            fetched[fragment.source]["rows"] += fragment.rows
            fetched[fragment.source]["bytes"] += fragment.bytes
        return table, {"fetched": fetched, "server_seconds": stats.seconds, "fragments": len(stats.fragments),
                       "pushed_whole": stats.pushed_whole}

    def _stats(self, sql: str):
        deadline = time.monotonic() + 10
        while True:  # the server finishes its history entry as the stream ends; the client may be a hair ahead
            stats = next((s for s in self.engine.metrics.history(20) if s.sql == sql), None)
            if stats is not None and stats.status != "running":
                if stats.status != "ok":
                    raise RuntimeError(f"gateway history says {stats.status}: {stats.error}")
                return stats
            if time.monotonic() > deadline:
                raise RuntimeError("the query is not finished in the gateway's history")
            time.sleep(0.001)

    def cancel(self) -> None:
        cursor = self._cursor
        if cursor is not None:
            cursor.adbc_cancel()

    def reset(self) -> None:
        import adbc_driver_flightsql.dbapi as flightsql

        self._cursor = None
        self.conn = flightsql.connect(self.uri, autocommit=True)  # the stuck one is left to its thread

    def explain(self, number: int) -> str:
        return self.engine.explain(self.qualified[number])

    def close(self) -> None:
        self.conn.close()
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.engine.close()


class DuckDBContender(Contender):
    """DuckDB with postgres_scanner and mysql_scanner attached, Parquet through views; the same SQL."""

    name = "duckdb"

    def __init__(self, args, folder: Path, qualified: dict[int, str]) -> None:
        import duckdb

        self.con = duckdb.connect()
        for module, extension in (("duckdb_extension_postgres_scanner", "postgres_scanner"),
                                  ("duckdb_extension_mysql_scanner", "mysql_scanner")):
            self.con.execute(f"LOAD '{duckdb_extension_path(module, extension)}'")
        self.con.execute(f"ATTACH '{with_database(args.pg, DATABASE)}' AS pg (TYPE postgres, READ_ONLY)")
        p = mysql_params(args.mysql)
        password = f" password={p['password']}" if p["password"] else ""
        self.con.execute(f"ATTACH 'host={p['host']} port={p['port']} user={p['user']}{password} "
                         f"database={DATABASE}' AS maria (TYPE mysql, READ_ONLY)")
        self.con.execute("ATTACH ':memory:' AS lake")
        lake = folder / "lake"
        for name, location in (("lineitem", lake / "lineitem" / "*.parquet"), ("nation", lake / "nation.parquet"),
                               ("region", lake / "region.parquet")):
            self.con.execute(f"CREATE VIEW lake.main.{name} AS SELECT * FROM read_parquet('{location.as_posix()}')")
        self.qualified = qualified

    def run(self, number: int) -> tuple[pa.Table, dict]:
        return self.con.execute(self.qualified[number]).to_arrow_table(), {}

    def cancel(self) -> None:
        self.con.interrupt()

    def close(self) -> None:
        self.con.close()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a pulled table to the TPC-H schema (PostgreSQL numeric arrives as text, connectorx decimals as
    decimal128(38,10))."""
    columns = []
    for field in schema:
        column = table.column(field.name)
        if isinstance(column.type, pa.ExtensionType) or type(column.type).__name__ == "OpaqueType":
            column = pa.chunked_array([c.storage for c in column.chunks], type=column.type.storage_type)
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


class DataFusionNoPushContender(Contender):
    """Pull every named table whole from its source into a fresh DataFusion session, then run the query."""

    name = "datafusion-nopush"

    def __init__(self, args, folder: Path, queries: dict[int, str]) -> None:
        import adbc_driver_postgresql.dbapi as pg

        self.pg = pg.connect(with_database(args.pg, DATABASE), autocommit=True)
        p = mysql_params(args.mysql)
        self.mysql_uri = urlunsplit(("mysql", f"{p['user']}:{p['password']}@{p['host']}:{p['port']}",
                                     f"/{DATABASE}", "", ""))
        self.lake = folder / "lake"
        self.schemas = {n: pq.read_schema(folder / "local" / f"{n}.parquet") for n in tpch.PLACEMENT}
        self.queries = queries
        self.pool = concurrent.futures.ThreadPoolExecutor(3, thread_name_prefix="bench-pull")

    def _pull(self, source: str, names: list[str]) -> dict[str, pa.Table]:
        out = {}
        for name in names:
            if source == "pg":
                with self.pg.cursor() as cur:
                    cur.execute(f"SELECT * FROM tpch.{name}")
                    table = cur.fetch_arrow_table()
            elif source == "maria":
                import connectorx as cx

                table = cx.read_sql(self.mysql_uri, f"SELECT * FROM {name}", return_type="arrow")
            else:
                location = self.lake / name if (self.lake / name).is_dir() else self.lake / f"{name}.parquet"
                table = pq.read_table(location)
            out[name] = _conform(table, self.schemas[name])
        return out

    def run(self, number: int) -> tuple[pa.Table, dict]:
        from datafusion import SessionContext

        sql = self.queries[number]
        by_source: dict[str, list[str]] = {}
        for name in sorted(referenced_tables(sql)):
            by_source.setdefault(tpch.PLACEMENT[name], []).append(name)
        futures = {s: self.pool.submit(self._pull, s, names) for s, names in by_source.items()}
        ctx = SessionContext()
        fetched = {s: {"rows": 0, "bytes": 0} for s in SOURCES}
        for source, future in futures.items():
            for name, table in future.result().items():
                ctx.register_record_batches(name, [table.to_batches()])
                fetched[source]["rows"] += table.num_rows
                fetched[source]["bytes"] += table.nbytes
        return ctx.sql(sql).to_arrow_table(), {"fetched": fetched}

    def close(self) -> None:
        self.pool.shutdown()
        self.pg.close()


class DataFusionLocalContender(Contender):
    """DataFusion over the eight tables as local Parquet files (registered once)."""

    name = "datafusion-local"

    def __init__(self, args, folder: Path, queries: dict[int, str]) -> None:
        from datafusion import SessionContext

        self.ctx = SessionContext()
        for name in tpch.PLACEMENT:
            self.ctx.register_parquet(name, str(folder / "local" / f"{name}.parquet"))
        self.queries = queries

    def run(self, number: int) -> tuple[pa.Table, dict]:
        return self.ctx.sql(self.queries[number]).to_arrow_table(), {}


# -- the run ---------------------------------------------------------------------------------------------

def _query_line(number: int, entry: dict) -> str:
    parts = []
    for name, record in entry["contenders"].items():
        parts.append(f"{name} {'error' if record['error'] else _s(record['median'])}")
    line = f"Q{number}: " + ", ".join(parts)
    if entry.get("fetched_over_needed") is not None:
        line += f"; gateway fetched {entry['fetched_rows']:,} rows, {_x(entry['fetched_over_needed'])} needed"
    return line


def run_benchmark(args, folder: Path, numbers: list[int], queries: dict[int, str], console,
                  on_query=lambda results: None) -> dict:
    """Run every query on every contender; ``on_query(results so far)`` after each query (writes the JSON)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    names = qualified_names()
    qualified = {n: tpch.qualify_tables(queries[n], names) for n in numbers}
    contenders: list[Contender] = []
    makers = {"gateway": lambda: GatewayContender(args, folder, qualified),
              "duckdb": lambda: DuckDBContender(args, folder, qualified),
              "datafusion-nopush": lambda: DataFusionNoPushContender(args, folder, queries),
              "datafusion-local": lambda: DataFusionLocalContender(args, folder, queries)}
    for name in args.contenders:
        contenders.append(makers[name]())

    console.print("counting the rows each query needs (single-table predicates on the local Parquet copy)")
    needed = rows_needed({n: queries[n] for n in numbers}, folder / "local")

    results: dict[int, dict] = {}
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("TPC-H", total=len(numbers) * len(contenders) * (1 + args.repeat))
        try:
            for number in numbers:
                entry: dict = {"sql": qualified[number], "contenders": {}, "needed": needed[number],
                               "load_average_before": os.getloadavg()[0]}
                reference = None
                for contender in contenders:
                    record: dict = {"seconds": [], "median": None, "rows": None, "error": None, "check": None}
                    for i in range(1 + args.repeat):
                        label = "warm-up" if i == 0 else f"run {i}/{args.repeat}"
                        progress.update(task, description=f"Q{number:<2} {contender.name:<17} {label:<8}")
                        try:
                            t0 = time.perf_counter()
                            table, info = run_with_timeout(contender, number, args.timeout)
                            elapsed = time.perf_counter() - t0
                        except Exception as exc:  # a failing query is reported, the run goes on
                            record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
                            progress.advance(task, 1 + args.repeat - i)
                            break
                        if i == 0:
                            record["rows"] = table.num_rows
                            if contender.name == "datafusion-local":
                                reference = table
                            record["_result"] = table
                        else:
                            record["seconds"].append(elapsed)
                        record.update(info)
                        progress.advance(task)
                    if record["seconds"] and record["error"] is None:
                        record["median"] = median(record["seconds"])
                    entry["contenders"][contender.name] = record
                for record in entry["contenders"].values():
                    result = record.pop("_result", None)
                    if result is not None and reference is not None:
                        difference = same_rows(result, reference)
                        record["check"] = "same as datafusion-local" if difference is None else difference
                if "gateway" in entry["contenders"]:
                    gw = entry["contenders"]["gateway"]
                    gateway = next(c for c in contenders if c.name == "gateway")
                    try:
                        entry["explain"] = gateway.explain(number)
                    except Exception as exc:
                        entry["explain"] = f"EXPLAIN failed: {exc}"
                    entry["ratios"] = {
                        f"gateway/{p}": (gw["median"] / entry["contenders"][p]["median"]
                                         if gw["median"] and entry["contenders"].get(p, {}).get("median") else None)
                        for p in PEERS if p in entry["contenders"]}
                    if "fetched" in gw:
                        total = sum(v["rows"] for v in gw["fetched"].values())
                        entry["fetched_rows"] = total
                        entry["fetched_over_needed"] = (total / needed[number]["total"] if needed[number]["total"]
                                                        else (1.0 if total == 0 else None))
                entry["load_average_after"] = os.getloadavg()[0]
                results[number] = entry
                progress.console.print(_query_line(number, entry), soft_wrap=True)
                on_query(results)
        finally:
            for contender in contenders:
                try:
                    contender.close()
                except Exception:
                    pass
    return results


def summarize(results: dict[int, dict], contenders: list[str]) -> dict:
    ok = [n for n, e in results.items()
          if all(e["contenders"][c]["median"] is not None for c in contenders)]
    summary: dict = {"queries_all_ok": ok,
                     "queries_failed": {n: {c: e["contenders"][c]["error"] for c in contenders
                                            if e["contenders"][c]["error"]}
                                        for n, e in results.items() if n not in ok},
                     "geomean_seconds": {c: geomean([results[n]["contenders"][c]["median"] for n in ok])
                                         for c in contenders}}
    loads = [e[k] for e in results.values() for k in ("load_average_before", "load_average_after") if k in e]
    summary["load_average_1min"] = {"mean": round(sum(loads) / len(loads), 2) if loads else None,
                                    "max": round(max(loads), 2) if loads else None}
    if "gateway" in contenders:
        summary["geomean_ratios"] = {
            f"gateway/{p}": geomean([results[n]["ratios"][f"gateway/{p}"] for n in ok]) for p in PEERS
            if p in contenders}
        fetch = {n: results[n].get("fetched_over_needed") for n in results if results[n].get("fetched_over_needed")}
        summary["fetched_over_needed"] = {
            "geomean": geomean(list(fetch.values())), "max": max(fetch.values(), default=None),
            "worst_query": max(fetch, key=fetch.get) if fetch else None,
            "queries_within_goal": sorted(n for n, r in fetch.items() if r <= GOAL_FETCH_RATIO),
            "queries_over_goal": sorted(n for n, r in fetch.items() if r > GOAL_FETCH_RATIO)}
        duck = summary["geomean_ratios"].get("gateway/duckdb")
        summary["goals"] = {
            "geomean_time_vs_duckdb": {"goal": f"<= {GOAL_TIME_RATIO}", "value": duck,
                                       "met": duck is not None and duck <= GOAL_TIME_RATIO},
            "rows_fetched_vs_needed": {"goal": f"<= {GOAL_FETCH_RATIO} per query",
                                       "max": summary["fetched_over_needed"]["max"],
                                       "met": bool(fetch) and not summary["fetched_over_needed"]["queries_over_goal"]},
        }
    return summary


# -- output ----------------------------------------------------------------------------------------------

def _s(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _x(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}x" if value >= 0.01 or value == 0 else f"{value:.1g}x"


def _n(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def markdown(report: dict) -> str:
    results, summary, contenders = report["queries"], report["summary"], report["contenders"]
    gw = "gateway" in contenders
    title = {"gateway": "gateway s", "duckdb": "DuckDB s", "datafusion-nopush": "DF no-push s",
             "datafusion-local": "DF local s"}
    head = [title[c] for c in contenders]
    if gw:
        head += [f"gw/{title[p][:-2]}" for p in PEERS if p in contenders]
        head += ["rows fetched pg / maria / lake", "rows needed pg / maria / lake", "fetched / needed", "MB fetched"]
    lines = [
        f"TPC-H scale factor **{report['scale_factor']:g}**, {report['repeat']} timed runs per query after one warm-up "
        f"(median, seconds), {report['machine']['cpus']} cores / {report['machine'].get('memory_gib', '?')} GiB, "
        f"{report['finished_at'][:10]}, commit `{report['git_commit']}`. Ratios below 1 mean the gateway is faster. "
        f"\"—\" is a failed query (see `{report['out']}`).",
        "",
        "| Q | " + " | ".join(head) + " |",
        "|---:|" + "---:|" * len(head),
    ]
    for number, e in sorted(results.items(), key=lambda kv: int(kv[0])):
        cells = [_s(e["contenders"][c]["median"]) for c in contenders]
        if gw:
            cells += [_x(e["ratios"].get(f"gateway/{p}")) for p in PEERS if p in contenders]
            fetched = e["contenders"]["gateway"].get("fetched")
            cells.append(" / ".join(_n(fetched[s]["rows"]) for s in SOURCES) if fetched else "—")
            cells.append(" / ".join(_n(e["needed"]["per_source"][s]) for s in SOURCES))
            cells.append(_x(e.get("fetched_over_needed")))
            cells.append(f"{sum(v['bytes'] for v in fetched.values()) / 1e6:.1f}" if fetched else "—")
        lines.append(f"| {number} | " + " | ".join(cells) + " |")
    g = summary["geomean_seconds"]
    cells = [f"**{_s(g[c])}**" for c in contenders]
    if gw:
        cells += [f"**{_x(summary['geomean_ratios'][f'gateway/{p}'])}**" for p in PEERS if p in contenders]
        cells += ["", "", f"**{_x(summary['fetched_over_needed']['geomean'])}**", ""]
    lines.append("| geomean | " + " | ".join(cells) + " |")
    lines.append("")
    n_ok, n_all = len(summary["queries_all_ok"]), len(results)
    load = summary.get("load_average_1min") or {}
    lines.append(f"Geometric means over the {n_ok} of {n_all} queries that every contender answered. "
                 f"1-minute load average between queries: mean {load.get('mean')}, max {load.get('max')} "
                 f"(the benchmark alone keeps it near 1-2 on this machine; more means other work shared the cores).")
    if gw and "goals" in summary:
        goals = summary["goals"]
        t = goals["geomean_time_vs_duckdb"]
        f = goals["rows_fetched_vs_needed"]
        over = summary["fetched_over_needed"]["queries_over_goal"]
        lines.append(
            f"Goals: geomean time ≤ {GOAL_TIME_RATIO}x DuckDB's — {_x(t['value'])}, "
            f"**{'met' if t['met'] else 'not met'}**; rows fetched ≤ {GOAL_FETCH_RATIO}x the rows needed on every "
            f"query — **{'met' if f['met'] else 'not met'}**"
            + (f" (over on Q{', Q'.join(str(n) for n in over)}; worst Q{summary['fetched_over_needed']['worst_query']}"
               f" at {_x(f['max'])})" if over else "") + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--queries", default="1-22", help="e.g. 1,3,5 or 1-22 (default all)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per query after one warm-up")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds one run may take before it is cancelled and the query marked failed")
    parser.add_argument("--skip-load", action="store_true", help="reuse the databases and files already loaded")
    parser.add_argument("--drop", action="store_true", help=f"drop the {DATABASE} databases and the data folder, exit")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URI (a database is created beside)")
    parser.add_argument("--mysql", default=DEFAULT_MYSQL, help="MariaDB/MySQL URI")
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder for the Parquet files")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {', '.join(CONTENDERS)}")
    parser.add_argument("--out", help="JSON results (default bench/results/tpch-sf<SF>.json)")
    parser.add_argument("--write-readme", action="store_true",
                        help="write the table into README.md between <!-- bench:tpch:start/end --> markers")
    parser.add_argument("--table-from", metavar="JSON",
                        help="run nothing: print the table of an earlier results file (and --write-readme it)")
    args = parser.parse_args(argv)

    from rich.console import Console

    console = Console(stderr=True)
    folder = Path(args.data)
    if args.table_from:
        report = json.loads(Path(args.table_from).read_text())
        table = markdown({**report, "queries": {int(n): e for n, e in report["queries"].items()}})
        print(table)
        if args.write_readme:
            write_readme_section(ROOT / "README.md", "tpch", table, heading=README_HEADING, intro=README_INTRO)
            console.print("README.md TPC-H table updated")
        return 0
    if args.drop:
        drop_all(args, folder, console.print)
        return 0
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; expected some of {', '.join(CONTENDERS)}")
    numbers: list[int] = []
    for part in args.queries.split(","):
        lo, _, hi = part.partition("-")
        numbers += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    sf_text = f"{args.scale_factor:g}"
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"tpch-sf{sf_text}.json"

    started = dt.datetime.now(dt.UTC)
    if args.skip_load:
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            parser.error(f"--skip-load: {meta_path} is missing; run once without --skip-load")
        meta = json.loads(meta_path.read_text())
        if meta["scale_factor"] != args.scale_factor:
            parser.error(f"--skip-load: the loaded data is SF {meta['scale_factor']}, not {args.scale_factor}")
        problem = check_loaded(args, meta)
        if problem:
            parser.error(f"--skip-load: {problem}; run once without --skip-load")
        console.print(f"reusing SF {meta['scale_factor']} loaded at {meta['loaded_at']}")
    else:
        meta = load_all(args, folder, console.print)
        console.print(f"loaded in {meta['load_seconds']} s")
    queries = standard_queries()

    out_label = out.relative_to(ROOT).as_posix() if out.is_relative_to(ROOT) else str(out)

    def report_of(results: dict[int, dict]) -> dict:
        report = {
            "benchmark": "tpch", "scale_factor": args.scale_factor, "repeat": args.repeat,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "machine": machine(), "data": meta, "contenders": args.contenders,
            "placement": tpch.PLACEMENT, "out": out_label,
            "rows_needed_method": "per table occurrence, count(*) of the local Parquet copy under the query's "
                                  "single-table predicates (WHERE and inner-join ON conjuncts on that table alone, "
                                  "predicates implied by ORs across tables, ON of a LEFT JOIN for its right side; "
                                  "no sub-query predicates), summed per source",
            "goals": {"geomean_time_vs_duckdb": GOAL_TIME_RATIO, "rows_fetched_vs_needed": GOAL_FETCH_RATIO},
            "queries": {str(n): e for n, e in results.items()},
            "complete": len(results) == len(numbers),
        }
        report["summary"] = summarize(results, args.contenders)
        return report

    def write(results: dict[int, dict]) -> dict:
        report = report_of(results)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=str) + "\n")
        return report

    results = run_benchmark(args, folder, numbers, queries, console, on_query=write)
    report = write(results)
    table = markdown({**report, "queries": results})
    print(table)
    console.print(f"results written to {out}")
    if args.write_readme:
        write_readme_section(ROOT / "README.md", "tpch", table, heading=README_HEADING, intro=README_INTRO)
        console.print("README.md TPC-H table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
