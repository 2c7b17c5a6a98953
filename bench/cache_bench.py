"""TPC-H from a warm partition cache vs DataFusion over the same data as local Parquet files.

The eight tables are split as in the correctness suite (orders, customer in PostgreSQL; part, partsupp,
supplier in MariaDB; lineitem by year, nation, region as Parquet), every source configured with a cache rule
(``cache_ttl_s``), and every table warmed first (``gateway cache warm``). Then, in the same run, each of the
22 queries runs through the gateway (in-process engine: planning, cached partitions, residual in
DataFusion) and through a plain DataFusion session over local Parquet copies of all eight tables. The
sources' statement counters are read before and after: a warm cache must send them nothing.

    .venv/bin/python bench/cache_bench.py [--scale-factor 0.1] [--repeat 3] [--queries 1,3,5]

Writes ``bench/results/cache-sf<sf>.json``. Goal (issue 5): geometric mean within 1.3x of local DataFusion.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq
from datafusion import SessionConfig, SessionContext
from rich.progress import Progress

from bench.common import geomean, median, write_results
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests import tpch

PG = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", default=",".join(str(i) for i in range(1, 23)))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    numbers = [int(q) for q in args.queries.split(",")]
    out = Path(args.out or Path(__file__).parent / "results" / f"cache-sf{args.scale_factor:g}.json")

    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    name = f"gw_bench_cache_{secrets.token_hex(3)}"
    tables, queries = tpch.generate(args.scale_factor)
    with pg.connect(PG, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    admin = pymysql.connect(autocommit=True, **MYSQL)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    tmp = Path(tempfile.mkdtemp(prefix="gw_cache_bench_"))
    try:
        pg_uri = PG.rsplit("/", 1)[0] + f"/{name}"
        tpch.load_postgres(pg_uri, tables)
        tpch.load_mysql(MYSQL, name, tables)
        lake = tpch.write_parquet(tmp / "lake", tables)
        local = tmp / "local"
        local.mkdir()
        for table_name, table in tables.items():
            pq.write_table(table, local / f"{table_name}.parquet")
        rule = {"cache_ttl_s": 3600}
        gateway = QueryEngine(settings_from_dict({
            "sources": [
                {"name": "pg", "kind": "postgresql", "uri": pg_uri, **rule},
                {"name": "maria", "kind": "mysql", "uri": f"mysql://root@127.0.0.1:3306/{name}", **rule},
                {"name": "lake", "kind": "parquet", "path": str(lake), **rule},
            ],
            "cache": {"memory_bytes": 8 << 30},
        }, base_dir=tmp))
        names = {t: {"pg": f"pg.tpch.{t}", "maria": f"maria.{name}.{t}", "lake": f"lake.main.{t}"}[s]
                 for t, s in tpch.PLACEMENT.items()}
        reference = SessionContext(SessionConfig().with_target_partitions(2))
        for table_name in tables:
            reference.register_parquet(table_name, str(local / f"{table_name}.parquet"))
        results = run(gateway, reference, queries, names, numbers, args.repeat)
    finally:
        with pg.connect(PG, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()
    results["scale_factor"] = args.scale_factor
    write_results(out, results)
    print(markdown(results))


def run(gateway: QueryEngine, reference: SessionContext, queries, names, numbers, repeat) -> dict:
    connectors = {s: gateway.catalog.connector(s) for s in ("pg", "maria", "lake")}
    t0 = time.perf_counter()
    for table_name in tpch.PLACEMENT:
        gateway.cache_warm(names[table_name])
    warm_s = time.perf_counter() - t0
    scans_before = {s: c.scans for s, c in connectors.items()}
    rows = {}
    with Progress() as bar:
        task = bar.add_task("TPC-H from the warm cache", total=len(numbers))
        for n in numbers:
            sql = tpch.qualify_tables(queries[n], names)
            gateway.execute(sql).reader.read_all()  # warm-up
            reference.sql(queries[n]).to_arrow_table()
            cached, local = [], []
            for _ in range(repeat):
                t = time.perf_counter()
                got = gateway.execute(sql).reader.read_all()
                cached.append(time.perf_counter() - t)
                t = time.perf_counter()
                want = reference.sql(queries[n]).to_arrow_table()
                local.append(time.perf_counter() - t)
            assert got.num_rows == want.num_rows, (n, got.num_rows, want.num_rows)
            rows[n] = {"cached_s": round(median(cached), 4), "local_s": round(median(local), 4)}
            rows[n]["ratio"] = round(rows[n]["cached_s"] / rows[n]["local_s"], 3)
            bar.advance(task)
    scans_after = {s: c.scans for s, c in connectors.items()}
    ratio = geomean([r["ratio"] for r in rows.values()])
    return {
        "benchmark": "TPC-H from the gateway's warm partition cache vs DataFusion over local Parquet (same run)",
        "warm_seconds": round(warm_s, 2),
        "source_statements_during_queries": {s: scans_after[s] - scans_before[s] for s in connectors},
        "geomean_ratio": round(ratio, 3), "goal": 1.3, "goal_met": ratio <= 1.3,
        "queries": rows,
    }


def markdown(results: dict) -> str:
    lines = ["| query | warm cache (s) | local DataFusion (s) | ratio |", "|---|---|---|---|"]
    for n, r in results["queries"].items():
        lines.append(f"| Q{n} | {r['cached_s']} | {r['local_s']} | {r['ratio']} |")
    lines.append(f"| geomean | | | **{results['geomean_ratio']}** |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
