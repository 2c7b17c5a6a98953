"""What the freshness manifest costs a query: the median wall time of small queries with the trust hook on
(fingerprints read before and after each query, the manifest kept) and with it off.

    .venv/bin/python bench/trust_overhead.py [--pg postgresql://postgres@127.0.0.1:5432/test] [-n 200]

Sources: the demo's SQLite and Parquet (a copy made in a temp folder) and, with ``--pg``, a PostgreSQL table
made for the run (``trust_bench``, dropped after). Prints one line per query: off / on / difference in ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.execution.engine import QueryEngine
from gateway.settings import load_settings, prepare
from tests.demo_support import write_demo_config


def _median_ms(engine: QueryEngine, sql: str, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        engine.execute(sql).reader.read_all()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", help="a PostgreSQL URI to include a PostgreSQL table")
    parser.add_argument("-n", type=int, default=200, help="runs per query and mode")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="trust-bench-"))
    settings = prepare(load_settings(write_demo_config(folder)))
    queries = ["SELECT count(*) FROM demo_db.customers WHERE region = 'east'",
               "SELECT count(*) FROM demo_lake.orders WHERE year = 2024",
               "SELECT c.region, count(*) FROM demo_lake.orders o JOIN demo_db.customers c ON c.id = o.customer_id "
               "GROUP BY 1"]
    if args.pg:
        import adbc_driver_postgresql.dbapi as pg

        from gateway.settings import SourceConfig

        with pg.connect(args.pg, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS trust_bench")
            cur.execute("CREATE TABLE trust_bench AS SELECT g AS id, g % 7 AS k FROM generate_series(1, 1000) g")
        settings.sources.append(SourceConfig(name="pg", kind="postgresql", uri=args.pg))
        queries.append("SELECT k, count(*) FROM pg.public.trust_bench GROUP BY k")
    engine = QueryEngine(settings)
    started, finished = engine.trust.started, engine.trust.finished
    try:
        for sql in queries:
            _median_ms(engine, sql, 5)  # warm-up
            engine.trust.started, engine.trust.finished = (lambda *a, **k: None), (lambda *a, **k: None)
            off = _median_ms(engine, sql, args.n)
            engine.trust.started, engine.trust.finished = started, finished
            on = _median_ms(engine, sql, args.n)
            print(f"off {off:7.2f} ms  on {on:7.2f} ms  +{on - off:6.2f} ms  {sql[:70]}")
    finally:
        engine.close()
        if args.pg:
            with pg.connect(args.pg, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS trust_bench")


if __name__ == "__main__":
    main()
