"""The join order pass (``planner.federation.join_order``): each query with the pass against the same query planned
without it, in one process, runs alternated, over TPC-H SF1 data that ``bench/tpch_bench.py`` loaded.

Two sets of queries:
- the TPC-H queries whose FROM list the pass reorders on a placement (found by planning all 22 on each placement
  asked for), timed with and without it: does following the estimates pay on queries written in a good order?
- TPC-H Q5, Q3 and Q10 with their FROM lists written in a poor order (a low-distinct key or the fact table first),
  on the placements asked for: what a user's order costs without the pass, and what the pass gives back. The same
  queries in TPC-H's own order are timed too (the pass leaves those as written).

Every answer is compared with the one planned without the pass (same rows). Medians in seconds; ratio = with the
pass / without.

    .venv/bin/python bench/join_order_bench.py [--placement all-lake --placement split ...] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import sqlglot
from sqlglot import exp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import placements as pl
from bench.common import git_commit, machine, same_rows, write_results
from bench.tpch_bench import DATABASE, DEFAULT_DATA, standard_queries
from tests import tpch

#: (TPC-H query, its FROM list written badly) for the second set
POOR_ORDERS = [
    (5, ["region", "nation", "customer", "orders", "lineitem", "supplier"]),
    (3, ["lineitem", "orders", "customer"]),
    (10, ["lineitem", "nation", "customer", "orders"]),
]


def reordered(sql: str, order: list[str]) -> str:
    """``sql`` with the FROM list of its select with the most joins written as ``order`` (aliases)."""
    ast = sqlglot.parse_one(sql)
    select = max(ast.find_all(exp.Select), key=lambda s: len(s.args.get("joins") or []))
    key = "from_" if "from_" in select.args else "from"
    items = [select.args[key].this, *(j.this for j in select.args.get("joins") or [])]
    by_alias = {i.alias_or_name: i for i in items}
    select.set(key, exp.From(this=by_alias[order[0]].copy()))
    select.set("joins", [exp.Join(this=by_alias[a].copy()) for a in order[1:]])
    return ast.sql()


def engines(args):
    """Two engines over the TPC-H data: planning with every pass, and without ``order_joins``."""
    from gateway.execution.engine import QueryEngine
    from gateway.settings import settings_from_dict

    lake = Path(args.data) / "lake"
    settings = {"sources": [
        {"name": "pg", "kind": "postgresql", "uri": f"{args.pg.rstrip('/')}/{DATABASE}"},
        {"name": "maria", "kind": "mysql", "uri": f"{args.mysql.rstrip('/')}/{DATABASE}"},
        {"name": "lake", "kind": "parquet", "path": str(lake)},
    ]}
    return (QueryEngine(settings_from_dict(settings, base_dir=lake)),
            QueryEngine(settings_from_dict(settings, base_dir=lake)))


def timed(on, off, sql: str, repeat: int) -> dict:
    """Plan ``sql`` on ``on`` with every pass and on ``off`` without the join order pass (plans are cached per
    engine), check the answers agree, then time both alternately."""
    import planner.federation as federation

    every = federation.PASSES
    try:
        with_pass = on.execute(sql).reader.read_all()
        explained = on.explain(sql)
        federation.PASSES = tuple(p for p in every if p.__name__ != "order_joins")
        without = off.execute(sql).reader.read_all()
    finally:
        federation.PASSES = every
    problem = same_rows(with_pass, without)
    times: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(repeat):
        for name, engine in (("on", on), ("off", off)):
            started = time.perf_counter()
            engine.execute(sql).reader.read_all()
            times[name].append(time.perf_counter() - started)
    on_s, off_s = statistics.median(times["on"]), statistics.median(times["off"])
    orders = [line.strip()[len("join order: "):] for line in explained.splitlines()
              if line.strip().startswith("join order: ")]
    return {"with_pass_s": round(on_s, 4), "without_pass_s": round(off_s, 4), "ratio": round(on_s / off_s, 3),
            "join_orders": orders, "same_answer": problem is None, "difference": problem}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--placement", action="append", help="repeatable; default all-lake, split, issue, random:1")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--data", default=f"{DEFAULT_DATA}")
    parser.add_argument("--out", default="bench/results/join_order.json")
    args = parser.parse_args(argv)
    names = args.placement or ["all-lake", "split", "issue", "random:1"]
    queries = standard_queries()
    on, off = engines(args)
    results: dict = {"benchmark": "join order pass: with it vs without it, same process, alternated",
                     "repeat": args.repeat, "placements": {}, "machine": machine(), "git_commit": git_commit()}
    try:
        for name in names:
            qualified = pl.qualified_names(pl.placement(name), DATABASE)
            entry: dict = {"reordered_tpch": {}, "poor_orders": {}}
            for number, sql in queries.items():
                sql = tpch.qualify_tables(sql, qualified)
                if "join order: " in on.explain(sql):
                    entry["reordered_tpch"][f"Q{number}"] = row = timed(on, off, sql, args.repeat)
                    print(f"{name} Q{number} (TPC-H order): {row['with_pass_s']:.3f} s with the pass, "
                          f"{row['without_pass_s']:.3f} s without ({row['ratio']:.2f}x)", flush=True)
            for number, order in POOR_ORDERS:
                sql = tpch.qualify_tables(reordered(queries[number], order), qualified)
                row = timed(on, off, sql, args.repeat)
                row["written"] = ", ".join(order)
                written_well = tpch.qualify_tables(queries[number], qualified)
                row["tpch_order_s"] = timed(on, off, written_well, args.repeat)["with_pass_s"]
                entry["poor_orders"][f"Q{number}"] = row
                print(f"{name} Q{number} written {row['written']}: {row['with_pass_s']:.3f} s with the pass, "
                      f"{row['without_pass_s']:.3f} s without ({row['ratio']:.2f}x); "
                      f"TPC-H's order {row['tpch_order_s']:.3f} s", flush=True)
            results["placements"][name] = entry
            write_results(args.out, results)
    finally:
        on.close()
        off.close()
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
