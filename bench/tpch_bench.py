"""TPC-H over placements of its eight tables across PostgreSQL, MariaDB and Parquet: the gateway end to end over
Flight SQL beside DuckDB (and optionally DataFusion), in one run. See bench/README.md.

    python bench/tpch_bench.py [--scale-factor 1] [--placement NAME|random:SEED ...] [--queries 1,3,5]
                               [--repeat 3] [--timeout 120] [--contenders gateway,duckdb] [--reload] [--drop]
                               [--pg URI] [--mysql URI] [--data DIR] [--out FILE] [--write-readme]

Every table is loaded once per scale factor into each source: PostgreSQL (schema ``tpch`` of the database
``gw_bench_tpch``), MariaDB (database ``gw_bench_tpch``) and a Parquet folder (lineitem one file per ship year).
A placement (bench/placements.py: ``all-pg``, ``all-maria``, ``all-lake``, ``split`` (tests/tpch.py's),
``issue``, ``random:SEED``) says which copy of each table the queries read: the query text names it
(``pg.tpch.lineitem``, ``maria.gw_bench_tpch.lineitem``, ``lake.main.lineitem``), so the gateway and DuckDB
attach the three sources once and every placement runs against them. A copy of all eight tables as local
Parquet files sits beside it for the reference answers and for counting the rows each query needs.

Contenders, each with one warm-up run and ``--repeat`` timed runs per query (the median is reported):
- ``gateway``: the real Flight SQL server (GatewayFlightServer on a free loopback port) over a QueryEngine with the
  three sources, queried through the ADBC Flight SQL driver (``fetch_arrow_table``); rows and bytes fetched
  per source come from the gateway's query history.
- ``duckdb``: DuckDB with postgres_scanner and mysql_scanner (loaded from the duckdb-extension-* wheels of the
  same version, by path: nothing is downloaded) attached as ``pg`` and ``maria``, and Parquet views in an
  attached in-memory database ``lake``, so the same source-qualified SQL runs unchanged.
- ``datafusion-nopush`` (optional): every table the query names is pulled whole from the placement's source
  (PostgreSQL through ADBC, MariaDB through connectorx, Parquet read whole, the three sources in parallel) into a
  fresh DataFusion session, then the query runs there; the time includes the pulls.
- ``datafusion-local`` (optional): DataFusion over the eight tables as local Parquet files (no placement).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
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
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import placements as pl  # noqa: E402
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
DEFAULT_OUT = "bench/results/tpch_placements.json"
LAYOUT = "every table in every source"  # meta.json: what a load put where (older loads held the split only)
CONTENDERS = ("gateway", "duckdb", "datafusion-nopush", "datafusion-local")
DEFAULT_CONTENDERS = ("gateway", "duckdb")
PEERS = ("duckdb", "datafusion-nopush", "datafusion-local")
SOURCES = pl.SOURCES
README_HEADING = "## TPC-H benchmark"
README_INTRO = ("`bench/tpch_bench.py` (see [bench/README.md](bench/README.md)): TPC-H over PostgreSQL, MariaDB and "
                "Parquet through the Flight SQL server, beside DuckDB and DataFusion.")
README_KEY_PLACEMENTS = "tpch-placements"
README_KEY_SINGLE = "tpch"
GOAL_TIME_RATIO = 0.8      # gateway geomean / DuckDB geomean
GOAL_FETCH_RATIO = 1.1     # rows fetched / rows needed, per query


# -- locations -------------------------------------------------------------------------------------------

def with_database(uri: str, database: str) -> str:
    return urlunsplit(urlsplit(uri)._replace(path=f"/{database}"))


def mysql_params(uri: str) -> dict:
    parts = urlsplit(uri)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or "root"), "password": unquote(parts.password or "")}


# -- loading ---------------------------------------------------------------------------------------------

def load_all(args, folder: Path, say) -> dict:
    """Generate the data and put all eight tables in PostgreSQL, MariaDB and the lake folder (and the local
    copy); ``meta.json`` in ``folder`` says what was loaded."""
    import adbc_driver_postgresql.dbapi as pg

    timings = {}
    t0 = time.perf_counter()
    say(f"generating TPC-H SF {args.scale_factor} with DuckDB's tpch extension")
    tables, _ = tpch.generate(args.scale_factor)
    timings["generate"] = time.perf_counter() - t0
    (folder / "meta.json").unlink(missing_ok=True)
    t0 = time.perf_counter()
    say(f"writing Parquet under {folder} (lake/ and local/)")
    pl.write_lake(folder / "lake", tables)
    pl.write_local(folder / "local", tables)
    timings["parquet"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say(f"loading PostgreSQL database {args.database}, schema tpch (all eight tables)")
    with pg.connect(args.pg, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {args.database}")
    pl.load_postgres(with_database(args.pg, args.database), tables, say)
    timings["postgresql"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say(f"loading MariaDB database {args.database} (all eight tables)")
    with tempfile.TemporaryDirectory(prefix="gw_bench_csv_") as scratch:
        pl.load_mysql(mysql_params(args.mysql), args.database, tables, Path(scratch), say)
    timings["mariadb"] = time.perf_counter() - t0
    meta = {"scale_factor": args.scale_factor, "layout": LAYOUT,
            "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "rows": {n: tables[n].num_rows for n in pl.TABLES},
            "load_seconds": {k: round(v, 1) for k, v in timings.items()}}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def loaded_meta(args, folder: Path, placements: list[str] | None = None) -> tuple[dict | None, str | None]:
    """(meta.json, None) when the databases and files hold this scale factor's data in every source (or, for a
    load of some tables per source by ``bench/tpch_large_load.py``, every table ``placements`` read there),
    else (None, why not)."""
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        return None, f"{meta_path} is missing"
    meta = json.loads(meta_path.read_text())
    tables = meta.get("tables_by_source") if meta.get("layout") != LAYOUT else None
    why = _layout_lacks(meta, folder, placements) if meta.get("layout") != LAYOUT else None
    if why:
        return None, why
    if meta["scale_factor"] != args.scale_factor:
        return None, f"the loaded data is SF {meta['scale_factor']:g}, not {args.scale_factor:g}"
    missing = [n for n in pl.TABLES if not pl.lake_location(folder / "lake", n).exists()
               or not (folder / "local" / f"{n}.parquet").exists()]
    if missing:
        return None, f"Parquet files are missing under {folder} ({', '.join(missing)})"
    try:
        counts = pl.count_rows(with_database(args.pg, args.database), mysql_params(args.mysql), args.database,
                               tables)
    except Exception as exc:
        return None, f"the {args.database} databases cannot be read ({type(exc).__name__}: {exc})"
    wrong = {f"{s}.{n}": c for s, per in counts.items() for n, c in per.items() if c != meta["rows"][n]}
    if wrong:
        return None, f"the databases hold other data than {meta_path} describes ({wrong} rows, want {meta['rows']})"
    return meta, None


def _layout_lacks(meta: dict, folder: Path, placements: list[str] | None) -> str | None:
    """Why a load of some tables per source (``tables_by_source``) cannot serve ``placements``, or None."""
    tables = meta.get("tables_by_source")
    if tables is None:
        return f"{folder} was loaded by an older version of the benchmark (the split only)"
    needed = {(where, t) for p in placements or [] for t, where in pl.placement(p).items() if where != "lake"}
    lacking = sorted(f"{s}.{t}" for s, t in needed if t not in tables.get(s, []))
    if not placements or lacking:
        return (f"{folder} holds only the tables of placements {meta.get('placements')} in the databases"
                + (f" ({', '.join(lacking)} missing)" if lacking else ""))
    return None


def drop_all(args, folder: Path, say) -> None:
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    with pg.connect(args.pg, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
    conn = pymysql.connect(autocommit=True, **mysql_params(args.mysql))
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {args.database}")
    conn.close()
    shutil.rmtree(folder, ignore_errors=True)
    say(f"dropped PostgreSQL and MariaDB databases {args.database} and removed {folder}")


def standard_queries() -> dict[int, str]:
    con = tpch._duckdb()
    try:
        return dict(con.execute("SELECT query_nr, query FROM tpch_queries()").fetchall())
    finally:
        con.close()


def referenced_tables(sql: str) -> set[str]:
    return {t.name for t in sqlglot.parse_one(sql, read="postgres").find_all(exp.Table) if t.name in pl.TABLES}


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
            if not isinstance(source, exp.Table) or source.name not in pl.TABLES:
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


def rows_needed(queries: dict[int, str], local: Path) -> dict[int, list[dict]]:
    """Per query: each table occurrence with its single-table predicates and how many rows of the local
    Parquet copy satisfy them (DuckDB counts). The same for every placement; ``needed_for`` sums per source."""
    import duckdb

    con = duckdb.connect()
    schema = {}
    for name in pl.TABLES:
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
            occurrences.append({"table": occ["table"], "alias": occ["alias"],
                                "predicate": occ["predicate"].sql("postgres") if occ["predicate"] is not None
                                else None, "rows": rows})
        out[number] = occurrences
    con.close()
    return out


def needed_for(occurrences: list[dict], where: dict[str, str]) -> dict:
    """The rows a query needs under a placement: its occurrences with their source, and the sums per source."""
    occurrences = [{**o, "source": where[o["table"]]} for o in occurrences]
    per_source = {s: sum(o["rows"] for o in occurrences if o["source"] == s) for s in SOURCES}
    return {"occurrences": occurrences, "per_source": per_source, "total": sum(per_source.values())}


# -- contenders ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    """One query under one placement: the standard text and the text naming the placement's copies."""

    number: int
    placement: str
    where: dict[str, str]
    sql: str        # source-qualified (gateway, DuckDB)
    standard: str   # unqualified (DataFusion contenders, reference)


class Contender:
    name = ""

    def run(self, job: Job) -> tuple[pa.Table, dict]:
        raise NotImplementedError

    def cancel(self) -> None:
        """Best effort: stop the run in progress (called from another thread on a timeout)."""

    def reset(self) -> None:
        """Get ready for the next run after one that did not stop when cancelled."""

    def close(self) -> None:
        pass


class QueryTimeout(TimeoutError):
    pass


def call_with_timeout(fn, timeout: float, cancel=lambda: None, reset=lambda: None, name: str = "bench"):
    """``fn()`` in a worker thread; past ``timeout`` seconds ``cancel()`` is called (and ``reset()`` when it
    does not stop within 10 s: the thread is abandoned) and QueryTimeout is raised, so one stuck query does not
    stop the benchmark."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        cancel()
        thread.join(10)
        if thread.is_alive():
            reset()
            raise QueryTimeout(f"no answer within {timeout:g} s; cancelled, and it did not stop (abandoned)")
        raise QueryTimeout(f"no answer within {timeout:g} s; cancelled")
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_with_timeout(contender: Contender, job: Job, timeout: float) -> tuple[pa.Table, dict]:
    return call_with_timeout(lambda: contender.run(job), timeout, contender.cancel, contender.reset,
                             name=f"bench-{contender.name}")


class GatewayContender(Contender):
    """The real Flight SQL server on a free loopback port, queried through the ADBC Flight SQL driver; one
    server for the whole run, its catalog holding the three sources (each with every table)."""

    name = "gateway"

    def __init__(self, args, folder: Path) -> None:
        import adbc_driver_flightsql.dbapi as flightsql

        from flight_server.server import GatewayFlightServer
        from gateway.execution.engine import QueryEngine
        from gateway.settings import settings_from_dict

        lake = folder / "lake"
        settings = settings_from_dict({"sources": [
            {"name": "pg", "kind": "postgresql", "uri": with_database(args.pg, args.database)},
            {"name": "maria", "kind": "mysql", "uri": with_database(args.mysql, args.database)},
            {"name": "lake", "kind": "parquet", "path": str(lake)},
        ]}, base_dir=lake)
        self.engine = QueryEngine(settings)
        self.server = GatewayFlightServer(self.engine, "grpc://127.0.0.1:0")
        self.thread = threading.Thread(target=self.server.serve, name="bench-flight-sql", daemon=True)
        self.thread.start()
        self.uri = f"grpc://127.0.0.1:{self.server.port}"
        self.conn = flightsql.connect(self.uri, autocommit=True)
        self._cursor = None

    def run(self, job: Job) -> tuple[pa.Table, dict]:
        with self.conn.cursor() as cur:
            self._cursor = cur
            cur.execute(job.sql)
            table = cur.fetch_arrow_table()
            self._cursor = None
        stats = self._stats(job.sql)
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

    def explain(self, job: Job) -> str:
        return self.engine.explain(job.sql)

    def close(self) -> None:
        self.conn.close()
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.engine.close()


class DuckDBContender(Contender):
    """DuckDB with postgres_scanner and mysql_scanner attached, Parquet through views; the same SQL."""

    name = "duckdb"

    def __init__(self, args, folder: Path) -> None:
        self.args, self.folder = args, folder
        self.con = self._connect()

    def _connect(self):
        import duckdb

        con = duckdb.connect()
        for module, extension in (("duckdb_extension_postgres_scanner", "postgres_scanner"),
                                  ("duckdb_extension_mysql_scanner", "mysql_scanner")):
            con.execute(f"LOAD '{duckdb_extension_path(module, extension)}'")
        con.execute(f"ATTACH '{with_database(self.args.pg, self.args.database)}' AS pg (TYPE postgres, READ_ONLY)")
        p = mysql_params(self.args.mysql)
        password = f" password={p['password']}" if p["password"] else ""
        con.execute(f"ATTACH 'host={p['host']} port={p['port']} user={p['user']}{password} "
                    f"database={self.args.database}' AS maria (TYPE mysql, READ_ONLY)")
        con.execute("ATTACH ':memory:' AS lake")
        for name in pl.TABLES:
            location = pl.lake_location(self.folder / "lake", name)
            pattern = location / "*.parquet" if location.is_dir() else location
            con.execute(f"CREATE VIEW lake.main.{name} AS SELECT * FROM read_parquet('{pattern.as_posix()}')")
        return con

    def run(self, job: Job) -> tuple[pa.Table, dict]:
        return self.con.execute(job.sql).to_arrow_table(), {}

    def cancel(self) -> None:
        self.con.interrupt()

    def reset(self) -> None:
        self.con = self._connect()  # the stuck one is left to its thread

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
    """Pull every named table whole from the placement's source into a fresh DataFusion session, then run the
    query."""

    name = "datafusion-nopush"

    def __init__(self, args, folder: Path) -> None:
        import adbc_driver_postgresql.dbapi as pg

        self.pg = pg.connect(with_database(args.pg, args.database), autocommit=True)
        p = mysql_params(args.mysql)
        self.mysql_uri = urlunsplit(("mysql", f"{p['user']}:{p['password']}@{p['host']}:{p['port']}",
                                     f"/{args.database}", "", ""))
        self.lake = folder / "lake"
        self.schemas = {n: pq.read_schema(folder / "local" / f"{n}.parquet") for n in pl.TABLES}
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
                table = pq.read_table(pl.lake_location(self.lake, name))
            out[name] = _conform(table, self.schemas[name])
        return out

    def run(self, job: Job) -> tuple[pa.Table, dict]:
        from datafusion import SessionContext

        by_source: dict[str, list[str]] = {}
        for name in sorted(referenced_tables(job.standard)):
            by_source.setdefault(job.where[name], []).append(name)
        futures = {s: self.pool.submit(self._pull, s, names) for s, names in by_source.items()}
        ctx = SessionContext()
        fetched = {s: {"rows": 0, "bytes": 0} for s in SOURCES}
        for source, future in futures.items():
            for name, table in future.result().items():
                ctx.register_record_batches(name, [table.to_batches()])
                fetched[source]["rows"] += table.num_rows
                fetched[source]["bytes"] += table.nbytes
        return ctx.sql(job.standard).to_arrow_table(), {"fetched": fetched}

    def close(self) -> None:
        self.pool.shutdown()
        self.pg.close()


class DataFusionLocalContender(Contender):
    """DataFusion over the eight tables as local Parquet files (registered once; no placement)."""

    name = "datafusion-local"

    def __init__(self, args, folder: Path) -> None:
        from datafusion import SessionContext

        self.ctx = SessionContext()
        for name in pl.TABLES:
            self.ctx.register_parquet(name, str(folder / "local" / f"{name}.parquet"))

    def run(self, job: Job) -> tuple[pa.Table, dict]:
        return self.ctx.sql(job.standard).to_arrow_table(), {}


class Reference:
    """The right answers: DuckDB over the local Parquet copy, the standard query (untimed, once per query)."""

    def __init__(self, folder: Path) -> None:
        import duckdb

        self.con = duckdb.connect()
        for name in pl.TABLES:
            self.con.execute(f"CREATE VIEW {name} AS SELECT * FROM "
                             f"read_parquet('{(folder / 'local' / f'{name}.parquet').as_posix()}')")
        self.answers: dict[int, pa.Table] = {}

    def answer(self, number: int, standard: str) -> pa.Table:
        if number not in self.answers:
            self.answers[number] = self.con.execute(standard).to_arrow_table()
        return self.answers[number]

    def close(self) -> None:
        self.con.close()


# -- the run ---------------------------------------------------------------------------------------------

def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _query_line(job: Job, position: str, entry: dict, since_start: float) -> str:
    parts = []
    for name, record in entry["contenders"].items():
        if record["status"] in ("error", "timeout"):
            parts.append(f"{name} {record['status'].upper()}")
        else:
            parts.append(f"{name} {_s(record['median'])}" + (" WRONG" if record["status"] == "wrong" else ""))
    line = f"[{position} {job.placement}] Q{job.number} in {entry['seconds']:.1f} s (run {_clock(since_start)}): "
    line += ", ".join(parts)
    ratio = entry.get("ratios", {}).get("gateway/duckdb")
    if ratio is not None:
        line += f"; gw/duckdb {_x(ratio)}"
    if entry.get("fetched_over_needed") is not None:
        line += f"; gateway fetched {entry['fetched_rows']:,} rows, {_x(entry['fetched_over_needed'])} needed"
    if entry.get("gateway_vs_duckdb") not in (None, "same"):
        line += f"; gateway and duckdb differ: {entry['gateway_vs_duckdb'][:200]}"
    return line


def run_query(job: Job, contenders: list[Contender], reference: Reference, needed: dict, args, progress,
              task) -> dict:
    """Every contender's warm-up and timed runs of one query under one placement."""
    t_query = time.perf_counter()
    entry: dict = {"sql": job.sql, "contenders": {}, "needed": needed, "load_average_before": os.getloadavg()[0]}
    try:
        want = reference.answer(job.number, job.standard)
    except Exception as exc:
        want, entry["reference_error"] = None, f"{type(exc).__name__}: {exc}"[:2000]
    answers: dict[str, pa.Table] = {}
    for contender in contenders:
        record: dict = {"status": None, "seconds": [], "median": None, "rows": None, "error": None, "check": None}
        for i in range(1 + args.repeat):
            label = "warm-up" if i == 0 else f"run {i}/{args.repeat}"
            progress.update(task, description=f"{job.placement:<9} Q{job.number:<2} {contender.name:<17} {label:<8}")
            try:
                t0 = time.perf_counter()
                table, info = run_with_timeout(contender, job, args.timeout)
                elapsed = time.perf_counter() - t0
            except Exception as exc:  # a failing query is reported, the run goes on
                record["status"] = "timeout" if isinstance(exc, QueryTimeout) else "error"
                record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
                progress.advance(task, 1 + args.repeat - i)
                break
            if i == 0:
                record["rows"] = table.num_rows
                answers[contender.name] = table
            else:
                record["seconds"].append(elapsed)
            record.update(info)
            progress.advance(task)
        if record["status"] is None:
            if record["seconds"]:
                record["median"] = median(record["seconds"])
            difference = same_rows(answers[contender.name], want) if want is not None else "no reference answer"
            record["check"] = "same as reference" if difference is None else difference
            record["status"] = "ok" if difference is None else "wrong"
        entry["contenders"][contender.name] = record
    if "gateway" in answers and "duckdb" in answers:
        difference = same_rows(answers["gateway"], answers["duckdb"])
        entry["gateway_vs_duckdb"] = "same" if difference is None else difference
    if "gateway" in entry["contenders"]:
        gw = entry["contenders"]["gateway"]
        gateway = next(c for c in contenders if c.name == "gateway")
        try:
            entry["explain"] = call_with_timeout(lambda: gateway.explain(job), args.timeout, name="bench-explain")
        except Exception as exc:
            entry["explain"] = f"EXPLAIN failed: {type(exc).__name__}: {exc}"
        entry["ratios"] = {
            f"gateway/{p}": (gw["median"] / entry["contenders"][p]["median"]
                             if gw["median"] and entry["contenders"].get(p, {}).get("median") else None)
            for p in PEERS if p in entry["contenders"]}
        if "fetched" in gw:
            total = sum(v["rows"] for v in gw["fetched"].values())
            entry["fetched_rows"] = total
            entry["fetched_over_needed"] = (total / needed["total"] if needed["total"]
                                            else (1.0 if total == 0 else None))
    entry["load_average_after"] = os.getloadavg()[0]
    entry["seconds"] = round(time.perf_counter() - t_query, 3)
    return entry


def run_benchmark(args, folder: Path, names: list[str], numbers: list[int], queries: dict[int, str], console,
                  on_query=lambda results: None) -> dict[str, dict[int, dict]]:
    """Every query under every placement on every contender (placement by placement, then query by query);
    ``on_query({placement: {query: entry}})`` after each query (writes the JSON)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console.print("counting the rows each query needs (single-table predicates on the local Parquet copy)")
    occurrences = rows_needed({n: queries[n] for n in numbers}, folder / "local")
    makers = {"gateway": GatewayContender, "duckdb": DuckDBContender,
              "datafusion-nopush": DataFusionNoPushContender, "datafusion-local": DataFusionLocalContender}
    contenders: list[Contender] = []
    reference = Reference(folder)
    results: dict[str, dict[int, dict]] = {name: {} for name in names}
    started = time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    try:
        for name in args.contenders:
            contenders.append(makers[name](args, folder))
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("TPC-H", total=len(names) * len(numbers) * len(contenders) * (1 + args.repeat))
            for index, name in enumerate(names, 1):
                where = pl.placement(name)
                qualified = pl.qualified_names(where, args.database)
                position = f"{index}/{len(names)}"
                progress.console.print(f"placement {position} {name}: {pl.describe(name, where)}")
                t_placement = time.perf_counter()
                for number in numbers:
                    job = Job(number, name, where, tpch.qualify_tables(queries[number], qualified), queries[number])
                    entry = run_query(job, contenders, reference, needed_for(occurrences[number], where), args,
                                      progress, task)
                    results[name][number] = entry
                    progress.console.print(_query_line(job, position, entry, time.perf_counter() - started),
                                           soft_wrap=True, highlight=False)
                    on_query(results)
                summary = summarize(results[name], args.contenders)
                progress.console.print(
                    f"placement {position} {name} done in {time.perf_counter() - t_placement:.0f} s: "
                    + _overview_line(summary), highlight=False)
    finally:
        for contender in contenders:
            try:
                contender.close()
            except Exception:
                pass
        reference.close()
    return results


def summarize(results: dict[int, dict], contenders: list[str]) -> dict:
    ok = [n for n, e in results.items()
          if all(e["contenders"][c]["median"] is not None for c in contenders)]
    summary: dict = {"queries_all_ok": ok,
                     "queries_failed": {n: {c: e["contenders"][c]["error"] for c in contenders
                                            if e["contenders"][c]["error"]}
                                        for n, e in results.items() if n not in ok},
                     "timeouts": {n: [c for c in contenders if e["contenders"][c]["status"] == "timeout"]
                                  for n, e in results.items()
                                  if any(e["contenders"][c]["status"] == "timeout" for c in contenders)},
                     "errors": {n: [c for c in contenders if e["contenders"][c]["status"] == "error"]
                                for n, e in results.items()
                                if any(e["contenders"][c]["status"] == "error" for c in contenders)},
                     "wrong": {n: {c: e["contenders"][c]["check"] for c in contenders
                                   if e["contenders"][c]["status"] == "wrong"}
                               for n, e in results.items()
                               if any(e["contenders"][c]["status"] == "wrong" for c in contenders)},
                     "gateway_differs_from_duckdb": sorted(n for n, e in results.items()
                                                           if e.get("gateway_vs_duckdb") not in (None, "same")),
                     "geomean_seconds": {c: geomean([results[n]["contenders"][c]["median"] for n in ok])
                                         for c in contenders}}
    loads = [e[k] for e in results.values() for k in ("load_average_before", "load_average_after") if k in e]
    summary["load_average_1min"] = {"mean": round(sum(loads) / len(loads), 2) if loads else None,
                                    "max": round(max(loads), 2) if loads else None}
    if "gateway" in contenders:
        summary["geomean_ratios"] = {
            f"gateway/{p}": geomean([results[n]["ratios"][f"gateway/{p}"] for n in ok]) for p in PEERS
            if p in contenders}
        if "duckdb" in contenders:
            ratios = {n: results[n]["ratios"]["gateway/duckdb"] for n in ok}
            worst = max(ratios, key=ratios.get) if ratios else None
            summary["worst_query"] = None if worst is None else {
                "query": worst, "gateway/duckdb": ratios[worst],
                "gateway": results[worst]["contenders"]["gateway"]["median"],
                "duckdb": results[worst]["contenders"]["duckdb"]["median"]}
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


def markdown_single(report: dict) -> str:
    """The per-query table of one placement (the format of the single-placement benchmark)."""
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


def _overview_line(summary: dict) -> str:
    ratio = (summary.get("geomean_ratios") or {}).get("gateway/duckdb")
    worst = summary.get("worst_query")
    text = f"gw/duckdb geomean {_x(ratio)}"
    if worst:
        text += f", worst Q{worst['query']} {_x(worst['gateway/duckdb'])}"
    for key in ("timeouts", "errors", "wrong"):
        if summary.get(key):
            text += f"; {key} " + ", ".join(f"Q{n} ({', '.join(v)})" for n, v in summary[key].items())
    if summary.get("gateway_differs_from_duckdb"):
        text += "; gateway differs from duckdb on " + ", ".join(f"Q{n}" for n in summary["gateway_differs_from_duckdb"])
    return text


def _problems(entry: dict, contenders: list[str]) -> str:
    bad = [f"{entry['contenders'][c]['status']} ({c})" for c in contenders
           if entry["contenders"][c]["status"] not in ("ok", None)]
    return "; ".join(bad) if bad else "ok"


def markdown_placements(report: dict) -> str:
    """An overview table (one row per placement: geomeans, worst query) and, per placement, its per-query table
    (folded)."""
    contenders = report["contenders"]
    gw, duck = "gateway" in contenders, "duckdb" in contenders
    title = {"gateway": "gateway s", "duckdb": "DuckDB s", "datafusion-nopush": "DF no-push s",
             "datafusion-local": "DF local s"}
    peers = [p for p in PEERS if p in contenders] if gw else []
    lines = [
        f"TPC-H scale factor **{report['scale_factor']:g}** over {len(report['placements'])} placements of the eight "
        f"tables, {report['repeat']} timed run(s) per query after one warm-up (median, seconds), timeout "
        f"{report['timeout']:g} s, {report['machine']['cpus']} cores / {report['machine'].get('memory_gib', '?')} GiB, "
        f"{report['finished_at'][:10]}, commit `{report['git_commit']}`. Geometric means over the queries every "
        f"contender answered; ratios below 1 mean the gateway is faster. Answers are checked against DuckDB over "
        f"local Parquet files. Details in `{report['out']}`.",
        "",
    ]
    head = ["placement", "PostgreSQL", "MariaDB", "Parquet"] + [title[c] for c in contenders]
    head += [f"gw/{title[p][:-2]}" for p in peers]
    if gw and duck:
        head.append("worst query (gw/DuckDB)")
    head.append("not answered or wrong")
    lines += ["| " + " | ".join(head) + " |", "|---|---|---|---|" + "---:|" * (len(head) - 5) + "---|"]
    for name, block in report["placements"].items():
        s, where = block["summary"], block["placement"]
        cells = [f"`{name}`"] + [", ".join(t for t in pl.TABLES if where[t] == src) or "—" for src in SOURCES]
        cells += [_s(s["geomean_seconds"][c]) for c in contenders]
        cells += [f"**{_x(s['geomean_ratios'][f'gateway/{p}'])}**" if p == "duckdb"
                  else _x(s["geomean_ratios"][f"gateway/{p}"]) for p in peers]
        if gw and duck:
            w = s.get("worst_query")
            cells.append(f"Q{w['query']} {_x(w['gateway/duckdb'])} ({_s(w['gateway'])} / {_s(w['duckdb'])} s)"
                         if w else "—")
        bad = []
        for key in ("timeouts", "errors"):
            bad += [f"Q{n} {key[:-1]} ({', '.join(v)})" for n, v in s[key].items()]
        bad += [f"Q{n} wrong ({', '.join(v)})" for n, v in s["wrong"].items()]
        n_all = len(block["queries"])
        if not block.get("complete", True):
            bad.append(f"incomplete ({n_all} queries run)")
        cells.append("; ".join(bad) if bad else "—")
        lines.append("| " + " | ".join(cells) + " |")
    for name, block in report["placements"].items():
        s = block["summary"]
        lines += ["", f"<details><summary><code>{name}</code>: {pl.describe(name, block['placement'])} — "
                  f"{_overview_line(s)}</summary>", ""]
        head = ["Q"] + [title[c] for c in contenders] + [f"gw/{title[p][:-2]}" for p in peers]
        if gw:
            head += ["rows fetched pg / maria / lake", "fetched / needed"]
        head.append("answer")
        lines += ["| " + " | ".join(head) + " |", "|---:|" + "---:|" * (len(head) - 2) + "---|"]
        for number, e in sorted(block["queries"].items(), key=lambda kv: int(kv[0])):
            cells = [_s(e["contenders"][c]["median"]) if e["contenders"][c]["status"] != "timeout" else "timeout"
                     for c in contenders]
            cells += [_x(e["ratios"].get(f"gateway/{p}")) for p in peers]
            if gw:
                fetched = e["contenders"]["gateway"].get("fetched")
                cells.append(" / ".join(_n(fetched[src]["rows"]) for src in SOURCES) if fetched else "—")
                cells.append(_x(e.get("fetched_over_needed")))
            cells.append(_problems(e, contenders))
            lines.append(f"| {number} | " + " | ".join(cells) + " |")
        g = s["geomean_seconds"]
        cells = [f"**{_s(g[c])}**" for c in contenders] + [f"**{_x(s['geomean_ratios'][f'gateway/{p}'])}**"
                                                           for p in peers]
        if gw:
            cells += ["", f"**{_x(s['fetched_over_needed']['geomean'])}**"]
        cells.append("")
        lines += ["| geomean | " + " | ".join(cells) + " |", "", "</details>"]
    return "\n".join(lines)


def _single_report(report: dict, name: str) -> dict:
    """One placement of a placements report in the shape markdown_single reads."""
    block = report["placements"][name]
    return {**report, "queries": {int(n): e for n, e in block["queries"].items()}, "summary": block["summary"]}


def parse_queries(text: str) -> list[int]:
    numbers: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        numbers += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--placement", action="append", metavar="NAME|random:SEED",
                        help=f"repeatable; default all of: {', '.join(pl.DEFAULT)}")
    parser.add_argument("--queries", default="1-22", help="e.g. 1,3,5 or 1-22 (default all)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per query after one warm-up")
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds one run may take before it is cancelled and the query marked timeout")
    parser.add_argument("--reload", action="store_true",
                        help="generate and load again even when the data of this scale factor is loaded")
    parser.add_argument("--skip-load", action="store_true",
                        help="fail rather than load when the data of this scale factor is not loaded")
    parser.add_argument("--drop", action="store_true", help=f"drop the {DATABASE} databases and the data folder, exit")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URI (a database is created beside)")
    parser.add_argument("--mysql", default=DEFAULT_MYSQL, help="MariaDB/MySQL URI")
    parser.add_argument("--database", default=DATABASE,
                        help="the PostgreSQL and MariaDB database of the data (one per scale factor kept)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder for the Parquet files")
    parser.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS),
                        help=f"comma-separated subset of {', '.join(CONTENDERS)} (default gateway,duckdb)")
    parser.add_argument("--out", help=f"JSON results (default {DEFAULT_OUT})")
    parser.add_argument("--write-readme", action="store_true",
                        help=f"write the tables into the README between <!-- bench:{README_KEY_PLACEMENTS}:start/end "
                             "--> markers")
    parser.add_argument("--readme", default=str(ROOT / "README.md"), help="the README --write-readme writes")
    parser.add_argument("--table-from", metavar="JSON",
                        help="run nothing: print the tables of an earlier results file (and --write-readme them); "
                             "with one --placement, that placement's per-query table into the bench:tpch section")
    args = parser.parse_args(argv)

    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)
    folder = Path(args.data)
    readme = Path(args.readme)
    names = list(dict.fromkeys(args.placement or pl.DEFAULT))
    for name in names:
        try:
            pl.placement(name)
        except ValueError as exc:
            parser.error(str(exc))

    if args.table_from:
        report = json.loads(Path(args.table_from).read_text())
        if "placements" not in report:  # a single-placement run of the earlier benchmark
            table, key = markdown_single({**report, "queries": {int(n): e for n, e in report["queries"].items()}}), \
                README_KEY_SINGLE
        elif args.placement and len(names) == 1:
            if names[0] not in report["placements"]:
                parser.error(f"{args.table_from} has no placement {names[0]}")
            table, key = markdown_single(_single_report(report, names[0])), README_KEY_SINGLE
        else:
            if args.placement:
                report["placements"] = {n: b for n, b in report["placements"].items() if n in names}
            table, key = markdown_placements(report), README_KEY_PLACEMENTS
        print(table)
        if args.write_readme:
            write_readme_section(readme, key, table, heading=README_HEADING, intro=README_INTRO)
            console.print(f"{readme} section bench:{key} updated")
        return 0
    if args.drop:
        drop_all(args, folder, console.print)
        return 0
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; expected some of {', '.join(CONTENDERS)}")
    numbers = parse_queries(args.queries)
    out = Path(args.out) if args.out else ROOT / DEFAULT_OUT

    started = dt.datetime.now(dt.UTC)
    meta, why = (None, "--reload") if args.reload else loaded_meta(args, folder, names)
    if meta is not None:
        console.print(f"reusing SF {meta['scale_factor']:g} loaded at {meta['loaded_at']} (every table in "
                      f"PostgreSQL, MariaDB and {folder / 'lake'})")
    elif args.skip_load:
        parser.error(f"--skip-load: {why}; run once without --skip-load")
    else:
        console.print(f"loading: {why}")
        meta = load_all(args, folder, console.print)
        console.print(f"loaded in {meta['load_seconds']} s")
    queries = standard_queries()
    out_label = out.relative_to(ROOT).as_posix() if out.is_relative_to(ROOT) else str(out)

    def report_of(results: dict[str, dict[int, dict]]) -> dict:
        report = {
            "benchmark": "tpch-placements", "scale_factor": args.scale_factor, "repeat": args.repeat,
            "timeout": args.timeout, "queries_run": numbers,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "machine": machine(), "data": meta, "contenders": args.contenders,
            "out": out_label,
            "reference": "DuckDB over the local Parquet copy, the standard query; each contender's check compares "
                         "its warm-up answer with it (bench.common.same_rows: any order, numbers within 1e-6 "
                         "relative); gateway_vs_duckdb compares the gateway's answer with DuckDB's",
            "rows_needed_method": "per table occurrence, count(*) of the local Parquet copy under the query's "
                                  "single-table predicates (WHERE and inner-join ON conjuncts on that table alone, "
                                  "predicates implied by ORs across tables, ON of a LEFT JOIN for its right side; "
                                  "no sub-query predicates), summed per source of the placement",
            "goals": {"geomean_time_vs_duckdb": GOAL_TIME_RATIO, "rows_fetched_vs_needed": GOAL_FETCH_RATIO},
            "placements": {},
        }
        for name in names:
            if not results.get(name):
                continue
            where = pl.placement(name)
            report["placements"][name] = {
                "placement": where, "description": pl.DESCRIPTIONS.get(name, f"seeded: {pl.describe(name, where)}"),
                "tables": pl.qualified_names(where, args.database),
                "complete": len(results[name]) == len(numbers),
                "summary": summarize(results[name], args.contenders),
                "queries": {str(n): e for n, e in results[name].items()},
            }
        report["complete"] = (len(report["placements"]) == len(names)
                              and all(b["complete"] for b in report["placements"].values()))
        return report

    def write(results: dict[str, dict[int, dict]]) -> dict:
        report = report_of(results)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=1, default=str) + "\n")
        tmp.replace(out)
        return report

    results = run_benchmark(args, folder, names, numbers, queries, console, on_query=write)
    report = write(results)
    table = markdown_placements(report)
    print(table)
    console.print(f"results written to {out}")
    if args.write_readme:
        write_readme_section(readme, README_KEY_PLACEMENTS, table, heading=README_HEADING, intro=README_INTRO)
        console.print(f"{readme} section bench:{README_KEY_PLACEMENTS} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
