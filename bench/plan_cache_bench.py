"""Planning time of a repeated query: the plan cache (keyed by SQL text and parameter types) vs planning anew.

Runs over the embedded demo catalog (no server needed): a federated join with filters, GROUP BY, ORDER BY and
LIMIT, and a parameterized single-source query, each planned ``--repeat`` times with changing parameter
values. Reports the first (cold) planning time and the median of the cached ones.

    .venv/bin/python bench/plan_cache_bench.py [--repeat 2000]

Writes ``bench/results/plan_cache.json``. Goal (issue 3): a repeated query plans in < 1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.progress import track

from bench.common import write_results
from gateway.execution.engine import QueryEngine
from gateway.settings import load_settings, prepare

QUERIES = {
    "federated_join": (
        "SELECT c.name, sum(o.total) AS spent FROM demo_db.main.customers c JOIN demo_lake.main.orders o "
        "ON o.customer_id = c.id WHERE c.region = ? AND o.status = 'shipped' GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
        lambda i: [["north", "south", "east", "west"][i % 4]],
    ),
    "single_source": (
        "SELECT count(*) AS n FROM demo_lake.orders WHERE year = ? AND quantity > ?",
        lambda i: [2022 + i % 3, i % 9],
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "plan_cache.json"))
    args = parser.parse_args()
    gateway = QueryEngine(prepare(load_settings()))
    results = {}
    for name, (sql, params) in QUERIES.items():
        t0 = time.perf_counter()
        gateway.plan(sql, params(0))
        cold_ms = (time.perf_counter() - t0) * 1000
        times = []
        for i in track(range(1, args.repeat + 1), description=f"planning {name}"):
            t0 = time.perf_counter()
            gateway.plan(sql, params(i))
            times.append((time.perf_counter() - t0) * 1000)
        results[name] = {"cold_ms": round(cold_ms, 2), "cached_median_ms": round(statistics.median(times), 4),
                         "cached_p95_ms": round(sorted(times)[int(len(times) * 0.95)], 4)}
    out = {"benchmark": "planning time of repeated queries (plan cache) vs the first planning", "repeat": args.repeat,
           "results": results, "goal_ms": 1.0,
           "goal_met": all(r["cached_median_ms"] < 1.0 for r in results.values())}
    write_results(args.out, out)


if __name__ == "__main__":
    main()
