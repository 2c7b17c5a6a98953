"""Differential SQL fuzzing of the gateway against DataFusion over the same data held locally.

Loads the fuzzer's tables of the tests' data world (group fz of tests/world.py) into a fresh PostgreSQL
database, a fresh MariaDB database, a SQLite file, a Parquet folder and a CSV folder (all dropped at the end),
generates ``--queries`` random queries (each with its own placement of tables on sources), and counts per
category and shape: ok, wrong answer,
planning error (the gateway fails where DataFusion answers), invalid (DataFusion cannot answer), names (output
column names differ), fallback (the plan says it fell back), types (Arrow types differ beyond integer width).
Failures are shrunk; ``--write-regressions`` appends the shrunk ones to tests/fuzz/regressions.json.

    .venv/bin/python bench/fuzz_bench.py --queries 2000 --seed 1 [--write-regressions]

Writes ``bench/results/fuzz.json`` and prints the table by shape and the shrunk failures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_results  # noqa: E402
from tests.fuzz.compare import error_class  # noqa: E402
from tests.fuzz.runner import CATEGORIES, FuzzSession, append_regression  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-regressions", action="store_true",
                        help="append each shrunk failure to tests/fuzz/regressions.json")
    parser.add_argument("--max-shrinks", type=int, default=40, help="failures to shrink (one per class first)")
    parser.add_argument("--shrink-seconds", type=float, default=20.0, help="time budget per shrunk failure")
    parser.add_argument("--progress-every", type=int, default=250)
    parser.add_argument("--pg", default=os.environ.get("GATEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL user that may create databases")
    parser.add_argument("--mysql", default=os.environ.get("GATEWAY_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
                        help="a MariaDB/MySQL user that may create databases")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fuzz.json"))
    args = parser.parse_args()

    t0 = time.perf_counter()
    session = FuzzSession(args.pg, args.mysql)
    setup_s = time.perf_counter() - t0

    def progress(done: int, report) -> None:
        counts = ", ".join(f"{c} {report.counts[c]}" for c in CATEGORIES if report.counts[c])
        print(f"[{time.perf_counter() - t0:7.1f}s] {done}/{args.queries} queries: {counts}", flush=True)

    try:
        report = session.run(args.seed, args.queries, args.max_shrinks, args.shrink_seconds, progress,
                             args.progress_every)
        scan_findings = session.reference.scan_findings
    finally:
        session.close()

    shrunk = [f for f in report.failures if f.shrunk]
    distinct, seen = [], set()
    for failure in shrunk:
        if failure.query.placed_sql() not in seen:
            seen.add(failure.query.placed_sql())
            distinct.append(failure)
    added = sum(append_regression(f) for f in distinct) if args.write_regressions else 0
    names = Counter(o.detail for o in report.names)
    result = {
        "benchmark": "differential fuzzing: gateway vs DataFusion over the same data",
        "seed": args.seed, "queries": report.queries, "setup_s": round(setup_s, 2),
        "run_s": round(report.seconds, 2),
        "counts": {c: report.counts[c] for c in CATEGORIES},
        "by_shape": {tag: {c: counts[c] for c in CATEGORIES} for tag, counts in sorted(report.by_shape.items())},
        "failure_classes": dict(Counter(error_class(f.outcome) for f in report.failures).most_common()),
        "shrunk_failures": [f.as_json() for f in distinct],
        "unshrunk_failures": len(report.failures) - len(shrunk),
        "names": {"count": len(report.names), "examples": [
            {"detail": o.detail, "sql": o.gateway_sql} for o in report.names[:15]], "distinct": len(names)},
        "types": {"count": len(report.types), "examples": [
            {"types": o.types, "sql": o.gateway_sql} for o in report.types[:15]]},
        "unstable": [{"detail": o.detail, "sql": o.reference_sql} for o in report.unstable[:15]],
        "fallbacks": {"reasons": dict(Counter(o.fallback for o in report.fallbacks).most_common()),
                      "examples": [{"reason": o.fallback, "sql": o.gateway_sql} for o in report.fallbacks[:15]]},
        "invalid_reasons": dict(report.invalid_reasons.most_common(15)),
        "scan_findings": [{"source": s, "table": t, "difference": d} for s, t, d in scan_findings],
        "regressions_added": added,
    }
    write_results(args.out, result)
    print()
    print(report.table())
    print(f"\n{report.queries} queries in {report.seconds:.1f}s (+{setup_s:.1f}s setup); "
          f"{len(report.failures)} failures, {len(distinct)} distinct shrunk:\n")
    for failure in distinct:
        print(failure.describe(), "\n")
    if args.write_regressions:
        print(f"{added} new regression queries written to tests/fuzz/regressions.json")


if __name__ == "__main__":
    main()
