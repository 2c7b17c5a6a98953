"""TPC-H from a warm partition cache, through Flight SQL, vs DataFusion over the same data as local Parquet files.

Every source (PostgreSQL, MariaDB, the Parquet lake) gets a cache rule (``cache_ttl_s``). For each placement of
the eight tables (bench/placements.py: ``all-pg``, ``all-maria``, ``all-lake``, ``split``, ``issue``,
``random:SEED``) the cache is emptied and every table the placement reads is warmed (``gateway cache warm``);
then each query runs through the gateway's real Flight SQL server (``GatewayFlightServer`` in this process on a
free loopback port, queried with the ADBC Flight SQL driver, ``fetch_arrow_table``) and through a plain DataFusion
``SessionContext`` over the local Parquet copies of all eight tables. The sources' statement counters are read
before and after the timed queries of a placement: a warm cache must send them nothing.

The data is bench/tpch_bench.py's (PostgreSQL schema ``tpch`` and MariaDB database ``gw_bench_tpch``, Parquet
under /tmp/gw_bench_tpch); load it with ``bench/tpch_bench.py --scale-factor SF --queries 1 --contenders
datafusion-local`` first.

    .venv/bin/python bench/cache_bench.py [--scale-factor 1] [--placement NAME|random:SEED ...] [--queries 1-22]
                                          [--repeat 3] [--timeout 300] [--out FILE]

Answers are checked against DataFusion's (``bench.common.same_rows``: any order, numbers within 1e-6 relative;
with a top-level ORDER BY the sequence of the ordering columns must match too). Writes
``bench/results/cache-sf<sf>.json``. Goal (issue 11): every placement's geomean at most 1.0x local DataFusion.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import math
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import sqlglot  # noqa: E402
from sqlglot import exp  # noqa: E402

from bench import placements as pl  # noqa: E402
from bench.common import geomean, git_commit, machine, median, same_rows  # noqa: E402
from bench.tpch_bench import (  # noqa: E402
    DATABASE,
    DEFAULT_DATA,
    DEFAULT_MYSQL,
    DEFAULT_PG,
    call_with_timeout,
    loaded_meta,
    parse_queries,
    standard_queries,
    with_database,
)
from tests import tpch  # noqa: E402

GOAL = 1.0  # per placement: geomean(gateway from the warm cache / local DataFusion)
RULE = {"cache_ttl_s": 3600}


class CachedGateway:
    """The gateway over the three sources, each with a cache rule, served by its Flight SQL server on a free
    loopback port and queried through the ADBC Flight SQL driver. A context manager (stops the server)."""

    def __init__(self, args, folder: Path) -> None:
        import adbc_driver_flightsql.dbapi as flightsql

        from flight_server.server import GatewayFlightServer
        from gateway.execution.engine import QueryEngine
        from gateway.settings import settings_from_dict

        lake = folder / "lake"
        settings = settings_from_dict({
            "sources": [
                {"name": "pg", "kind": "postgresql", "uri": with_database(args.pg, args.database), **RULE},
                {"name": "maria", "kind": "mysql", "uri": with_database(args.mysql, args.database), **RULE},
                {"name": "lake", "kind": "parquet", "path": str(lake), **RULE},
            ],
            "cache": {"memory_bytes": args.cache_bytes},
        }, base_dir=lake)
        self.engine = QueryEngine(settings)
        self.server = GatewayFlightServer(self.engine, "grpc://127.0.0.1:0")
        self.thread = threading.Thread(target=self.server.serve, name="bench-flight-sql", daemon=True)
        self.thread.start()
        self.conn = flightsql.connect(f"grpc://127.0.0.1:{self.server.port}", autocommit=True)
        self._cursor = None

    def __enter__(self) -> CachedGateway:
        return self

    def __exit__(self, *exc) -> None:
        self.conn.close()
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.engine.close()

    def statements(self) -> dict[str, int]:
        """``{source: statements sent so far}`` (the connectors' ``scans`` counters)."""
        return {s: self.engine.catalog.connector(s).scans for s in pl.SOURCES}

    def warm(self, tables: list[str]) -> float:
        """Empty the cache, then fetch and cache every partition of ``tables`` (qualified names); seconds."""
        t0 = time.perf_counter()
        self.engine.cache_clear()
        for table in tables:
            self.engine.cache_warm(table)
        return time.perf_counter() - t0

    def run(self, sql: str) -> pa.Table:
        """The answer of ``sql`` through Flight SQL."""
        with self.conn.cursor() as cur:
            self._cursor = cur
            cur.execute(sql)
            table = cur.fetch_arrow_table()
            self._cursor = None
        return table

    def cancel(self) -> None:
        """Best effort, from another thread: cancel the statement under way."""
        cursor = self._cursor
        if cursor is not None:
            cursor.adbc_cancel()


def local_session(folder: Path):
    """A default DataFusion SessionContext with the eight tables of ``folder/local`` registered."""
    from datafusion import SessionContext

    ctx = SessionContext()
    for name in pl.TABLES:
        ctx.register_parquet(name, str(folder / "local" / f"{name}.parquet"))
    return ctx


def order_columns(sql: str, columns: list[str]) -> list[str]:
    """The output columns a query's top-level ORDER BY sorts on (plain columns and aliases only)."""
    order = sqlglot.parse_one(sql, read="postgres").args.get("order")
    keys = [o.this for o in order.expressions] if order else []
    return [k.name for k in keys if isinstance(k, exp.Column) and k.name in columns]


def check(got: pa.Table, want: pa.Table, sql: str) -> str:
    """``same`` when both answers hold the same rows (any order) and, under a top-level ORDER BY, the ordering
    columns hold the same values in the same sequence (numbers within 1e-6 relative); else what differs."""
    difference = same_rows(got, want)
    if difference is not None:
        return difference
    for index, name in enumerate(want.column_names):
        if name not in order_columns(sql, want.column_names):
            continue
        pairs = zip(got.column(index).to_pylist(), want.column(index).to_pylist(), strict=True)
        if any(not _same_value(a, b) for a, b in pairs):
            return f"rows in another order (by {name})"
    return "same"


def _same_value(a, b) -> bool:
    if isinstance(a, int | float | decimal.Decimal) and isinstance(b, int | float | decimal.Decimal):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)
    return str(a) == str(b)


def timed(fn, repeat: int, timeout: float, cancel=lambda: None) -> tuple[pa.Table, list[float]]:
    """One warm-up call of ``fn`` (its answer is returned) and ``repeat`` timed ones (seconds each)."""
    answer = call_with_timeout(fn, timeout, cancel)
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call_with_timeout(fn, timeout, cancel)
        seconds.append(time.perf_counter() - t0)
    return answer, seconds


def run_placement(gateway: CachedGateway, local, name: str, queries: dict[int, str], numbers: list[int],
                  args, say) -> dict:
    """Warm the placement's tables, run its queries on both sides; the placement's entry of the report."""
    where = pl.placement(name)
    names = pl.qualified_names(where, args.database)
    warm_s = gateway.warm([names[t] for t in pl.TABLES])
    say(f"placement {name} ({pl.describe(name, where)}): warmed in {warm_s:.1f} s")
    before = gateway.statements()
    rows: dict[str, dict] = {}
    for n in numbers:
        sql = tpch.qualify_tables(queries[n], names)
        entry: dict = {}
        try:
            got, cached = timed(lambda sql=sql: gateway.run(sql), args.repeat, args.timeout, gateway.cancel)
            want, plain = timed(lambda n=n: local.sql(queries[n]).to_arrow_table(), args.repeat, args.timeout)
        except Exception as exc:  # a failing query is reported, the run goes on
            entry["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            entry = {"cached_s": round(median(cached), 4), "local_s": round(median(plain), 4), "rows": got.num_rows,
                     "check": check(got, want, queries[n])}
            entry["ratio"] = round(entry["cached_s"] / entry["local_s"], 3)
        rows[str(n)] = entry
        say(f"  {name} Q{n}: " + (f"{entry['cached_s']:.3f} s vs {entry['local_s']:.3f} s = {entry['ratio']:.2f}x"
                                 f" ({entry['check']})" if "ratio" in entry else entry["error"]))
    after = gateway.statements()
    ratios = {n: r["ratio"] for n, r in rows.items() if "ratio" in r}
    ratio = geomean(list(ratios.values())) if ratios else None
    return {
        "placement": where, "description": pl.DESCRIPTIONS.get(name, f"seeded: {pl.describe(name, where)}"),
        "tables": names, "warm_seconds": round(warm_s, 2),
        "source_statements_during_queries": {s: after[s] - before[s] for s in pl.SOURCES},
        "geomean_ratio": round(ratio, 3) if ratio is not None else None, "goal": GOAL,
        "goal_met": ratio is not None and ratio <= GOAL and len(ratios) == len(numbers),
        "answers_checked": all(r.get("check") == "same" for r in rows.values()),
        "worst": [f"Q{n} {r}x" for n, r in sorted(ratios.items(), key=lambda kv: -kv[1])[:5]],
        "queries": rows,
    }


def report(args, meta: dict, started: dt.datetime, placements: dict[str, dict]) -> dict:
    """The JSON document: run details, each placement's entry, and the overall geomean and goal."""
    ratios = [q["ratio"] for p in placements.values() for q in p["queries"].values() if "ratio" in q]
    overall = geomean(ratios) if ratios else None
    return {
        "benchmark": "TPC-H from the gateway's warm partition cache through Flight SQL (ADBC) vs DataFusion over "
                     "local Parquet (same run), per placement",
        "scale_factor": args.scale_factor, "repeat": args.repeat, "data": meta,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(), "machine": machine(),
        "warm_seconds": round(sum(p["warm_seconds"] for p in placements.values()), 2),
        "source_statements_during_queries": {
            s: sum(p["source_statements_during_queries"][s] for p in placements.values()) for s in pl.SOURCES},
        "geomean_ratio": round(overall, 3) if overall is not None else None, "goal": GOAL,
        "goal_met": bool(placements) and all(p["goal_met"] for p in placements.values()),
        "placements": placements,
    }


def markdown(results: dict) -> str:
    """One line per placement: geomean, worst queries, statements sent during the queries."""
    lines = ["| placement | geomean (cache / local) | worst | statements during queries |", "|---|---|---|---|"]
    for name, p in results["placements"].items():
        sent = sum(p["source_statements_during_queries"].values())
        lines.append(f"| {name} | {p['geomean_ratio']} | {', '.join(p['worst'][:3])} | {sent} |")
    lines.append(f"| all | **{results['geomean_ratio']}** | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--placement", action="append", metavar="NAME|random:SEED",
                        help=f"repeatable; default all of: {', '.join(pl.DEFAULT)}")
    parser.add_argument("--queries", default="1-22", help="e.g. 1,3,5 or 1-22 (default all)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per query after one warm-up")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one run may take")
    parser.add_argument("--cache-bytes", type=int, default=8 << 30, help="the cache's memory budget")
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--mysql", default=DEFAULT_MYSQL)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    names = list(dict.fromkeys(args.placement or pl.DEFAULT))
    for name in names:
        try:
            pl.placement(name)
        except ValueError as exc:
            parser.error(str(exc))
    numbers = parse_queries(args.queries)
    out = Path(args.out or ROOT / "bench" / "results" / f"cache-sf{args.scale_factor:g}.json")
    folder = Path(args.data)
    meta, why = loaded_meta(args, folder)
    if meta is None:
        parser.error(f"{why}; load with bench/tpch_bench.py --scale-factor {args.scale_factor:g} first")
    queries = standard_queries()
    started = dt.datetime.now(dt.UTC)
    local = local_session(folder)
    placements: dict[str, dict] = {}

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with CachedGateway(args, folder) as gateway:
        for name in names:
            placements[name] = run_placement(gateway, local, name, queries, numbers, args, say)
            results = report(args, meta, started, placements)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2, default=str) + "\n")
            say(f"placement {name}: geomean {placements[name]['geomean_ratio']}, worst "
                f"{', '.join(placements[name]['worst'][:3])}")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
