"""Estimated rows of the residual plan's joins (``planner.join_estimates``), planned against declared TPC-H SF1
statistics (no source read), and the estimate-error metric that counts a residual join off by more than 10x."""

from __future__ import annotations

import doctest
import re

import pyarrow as pa

from gateway.metrics import FragmentStats, Metrics, QueryStats
from planner import join_estimates
from planner.join_estimates import match
from tests.planner.test_join_costs import tpch_planner


def _joins(plan) -> list[tuple[str, int | None]]:
    return [(j.join_type, j.estimated_rows) for j in plan.join_estimates]


def test_doctests_of_join_estimates():
    failures, tried = doctest.testmod(join_estimates)
    assert tried and not failures


def test_a_foreign_key_join_is_estimated_at_its_referencing_side():
    """lineitem (6M rows) joined to supplier (10,000) on the supplier key (10,000 values each): 6M rows, on
    the join's line of the plan text."""
    _, plan = tpch_planner().plan(
        "SELECT l.l_price FROM lake.main.lineitem l JOIN pg.tpch.supplier s ON s.s_suppkey = l.l_suppkey")
    assert _joins(plan) == [("Inner", 6_000_000)]
    assert re.search(r"Inner Join: .*s_suppkey \(estimated 6,000,000 rows\)", plan.residual_plan)


def test_a_join_group_column_is_estimated_by_its_own_table():
    """customer joined with nation in PostgreSQL (one fragment) to lineitem on ``l_orderkey = c_custkey``
    (1.5M and 150,000 values): 6M x 150,000 / 1.5M = 600,000 rows."""
    _, plan = tpch_planner().plan(
        "SELECT l.l_price FROM lake.main.lineitem l JOIN pg.tpch.customer c ON c.c_custkey = l.l_orderkey "
        "JOIN pg.tpch.nation n ON n.n_nationkey = c.c_nationkey")
    assert [f.tables for f in plan.fragments][1] == ["pg.tpch.customer", "pg.tpch.nation"]
    assert _joins(plan) == [("Inner", 600_000)]


def test_a_join_on_a_low_distinct_key_is_estimated_large():
    """Q5's customer x supplier on the nation key alone: 150,000 x 10,000 / 25 = 60M rows."""
    _, plan = tpch_planner().plan(
        "SELECT c.c_name, s.s_name FROM pg.tpch.customer c JOIN lake.main.orders o ON o.o_custkey = c.c_custkey "
        "JOIN pg.tpch.supplier s ON s.s_nationkey = c.c_nationkey")
    nation_join = [j for j in plan.join_estimates if frozenset({"c_nationkey", "s_nationkey"}) in j.on]
    assert nation_join, plan.residual_plan
    assert nation_join[0].estimated_rows >= 10_000_000


def test_a_composite_key_counts_at_most_its_sides_rows():
    """A side's distinct values over several keys never exceed its rows (a composite primary key)."""
    assert join_estimates.key_values([200_000.0, 10_000.0], 800_000.0) == 800_000.0
    assert join_estimates.key_values([10_000.0, 25.0], 2_000_000.0) == 250_000.0


def test_a_join_that_ran_is_matched_to_its_estimate_whichever_side_was_built():
    _, plan = tpch_planner().plan(
        "SELECT l.l_price FROM lake.main.lineitem l JOIN pg.tpch.supplier s ON s.s_suppkey = l.l_suppkey")
    planned = plan.join_estimates[0]
    assert match(plan.join_estimates, "Inner", "s_suppkey = l_suppkey") is planned
    assert match(plan.join_estimates, "Inner", "l_suppkey = s_suppkey") is planned
    assert match(plan.join_estimates, "RightSemi", "k = l_suppkey") is None  # a dynamic filter's semi-join


def test_a_query_whose_residual_join_was_off_by_more_than_10x_is_counted():
    metrics = Metrics()
    fragment = FragmentStats("f0", "pg", "SELECT 1", rows=100, estimated_rows=100)
    off = QueryStats("q1", "SELECT 1", status="ok", fragments=[fragment],
                     joins=[{"type": "Inner", "on": "a = b", "rows": 50_000, "estimated_rows": 1_000}])
    close = QueryStats("q2", "SELECT 1", status="ok", fragments=[fragment],
                       joins=[{"type": "Inner", "on": "a = b", "rows": 5_000, "estimated_rows": 1_000}])
    unknown = QueryStats("q3", "SELECT 1", status="ok", fragments=[fragment],
                         joins=[{"type": "Inner", "on": "a = b", "rows": 5_000_000, "estimated_rows": None}])
    for stats in (off, close, unknown):
        metrics.finished(stats)
    assert metrics.misestimated._value.get() == 1


def test_a_probe_is_estimated_after_its_dynamic_filter_and_its_join_too():
    """Suppliers of one nation (10,000 / 25 = 400 rows) restrict lineitem's l_suppkey (10,000 values) by a
    dynamic filter: lineitem is estimated at 6M x 400 / 10,000 = 240,000 rows after it, and so is the join,
    which EXPLAIN shows beside the unfiltered estimate."""
    _, plan = tpch_planner().plan(
        "SELECT l.l_price FROM lake.main.lineitem l JOIN pg.tpch.supplier s ON s.s_suppkey = l.l_suppkey "
        "WHERE s.s_nationkey = 3")
    lineitem = next(f for f in plan.fragments if f.tables == ["lake.main.lineitem"])
    assert plan.filtered_estimates == {lineitem.id: 240_000}
    assert _joins(plan) == [("Inner", 240_000)]
    text = plan.explain({lineitem.id: {"rows": 241_000, "bytes": 1, "dynamic_filter": "l_suppkey IN (400 values)"}})
    assert "estimated: 6,000,000 rows, 240,000 after its dynamic filters" in text
    assert "returned: 241000 rows, 1 bytes\n" in text + "\n"  # judged by the filtered estimate: not off


def test_an_anti_join_keeps_the_keys_the_other_side_lacks():
    """Customers without orders: orders hold 100,000 of the 150,000 customer keys, so a third of the
    customers are kept (not none, as when the key shares were taken of the filtered sides alone)."""
    _, plan = tpch_planner().plan(
        "SELECT c.c_name FROM pg.tpch.customer c WHERE c.c_nationkey = 3 AND NOT EXISTS "
        "(SELECT 1 FROM lake.main.orders o WHERE o.o_custkey = c.c_custkey)")
    anti = [rows for kind, rows in _joins(plan) if kind == "LeftAnti"]
    assert anti == [2_000]  # 150,000 / 25 = 6,000 customers of nation 3, a third of them


def test_a_scalar_aggregate_fragment_is_one_row():
    """A sub-query pushed whole that aggregates without GROUP BY returns one row: compared with it, 150,000
    customers keep a quarter (a comparison), not 150,000 x its input."""
    _, plan = tpch_planner().plan(
        "SELECT c.c_name FROM pg.tpch.customer c WHERE c.c_custkey > (SELECT max(o.o_custkey) FROM lake.main.orders o)")
    assert _joins(plan) == [("Inner", 37_500)]


def test_a_dynamic_filter_probe_off_by_more_than_10x_is_counted():
    """A probe is judged by its estimate after its dynamic filters (``FragmentStats.estimated_rows``), its
    joins by estimates that take them into account: both count."""
    metrics = Metrics()
    probe = QueryStats("q1", "SELECT 1", status="ok",
                       fragments=[FragmentStats("f0", "pg", "SELECT 1", rows=100_000, estimated_rows=100,
                                                dynamic_filter="id IN (12 values)")])
    join = QueryStats("q2", "SELECT 1", status="ok",
                      fragments=[FragmentStats("f0", "pg", "SELECT 1", rows=100, estimated_rows=100,
                                               dynamic_filter="id IN (12 values)")],
                      joins=[{"type": "Inner", "on": "a = b", "rows": 10, "estimated_rows": 100_000}])
    metrics.finished(probe)
    metrics.finished(join)
    assert metrics.misestimated._value.get() == 2


def test_a_key_compared_with_an_aggregate_of_its_own_column_is_contained(monkeypatch):
    """TPC-H Q2's shape: the partsupp rows of 4,000 parts (16,000) whose cost is the minimum of their part's
    costs keep one row per part, 4,000. The minimum is one of the costs it compares with (containment), not a
    value drawn from the column's 99,865 (independence gave 641)."""
    from catalog import Catalog
    from connectors.files import ParquetConnector
    from connectors.postgresql import PostgreSQLConnector
    from planner import Planner
    from tests.planner import test_join_costs as declared

    for column, distinct in {"ps_partkey": 200_000, "ps_supplycost": 99_865, "p_partkey": 200_000,
                             "p_size": 50}.items():
        monkeypatch.setitem(declared.DISTINCT, column, distinct)
    partsupp = pa.schema([("ps_partkey", pa.int64()), ("ps_suppkey", pa.int64()), ("ps_supplycost", pa.float64())])
    part = pa.schema([("p_partkey", pa.int64()), ("p_size", pa.int32())])
    planner = Planner(Catalog({
        "pg": declared.WithColumnStatistics("pg", PostgreSQLConnector, {("tpch", "partsupp"): (partsupp, [], 800_000)}),
        "lake": declared.WithColumnStatistics("lake", ParquetConnector, {("main", "part"): (part, ["p_partkey"], 200_000)},
                                              qualified=False),
    }), "postgres")
    _, plan = planner.plan(
        "SELECT p.p_partkey FROM lake.main.part p JOIN pg.tpch.partsupp ps ON ps.ps_partkey = p.p_partkey "
        "WHERE p.p_size = 15 AND ps.ps_supplycost = "
        "(SELECT min(q.ps_supplycost) FROM pg.tpch.partsupp q WHERE q.ps_partkey = p.p_partkey)")
    assert _joins(plan) == [("LeftSemi", 4_000), ("Inner", 16_000)]
