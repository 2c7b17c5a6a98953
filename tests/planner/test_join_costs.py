"""Same-source joins are pushed only when their estimated output does not outgrow their inputs (Trino's
AUTOMATIC join-pushdown rule; ``planner.federation.join_groups``): planned against declared statistics, no
source read."""

from __future__ import annotations

import pyarrow as pa

from catalog import Catalog
from connectors.base import ColumnStatistics, TableStatistics
from connectors.files import ParquetConnector
from connectors.postgresql import PostgreSQLConnector
from planner import Planner
from tests.planner.catalog import PlanningConnector

CUSTOMER = pa.schema([("c_custkey", pa.int64()), ("c_nationkey", pa.int32()), ("c_name", pa.string())])
SUPPLIER = pa.schema([("s_suppkey", pa.int64()), ("s_nationkey", pa.int32()), ("s_name", pa.string())])
NATION = pa.schema([("n_nationkey", pa.int32()), ("n_regionkey", pa.int32()), ("n_name", pa.string())])
REGION = pa.schema([("r_regionkey", pa.int32()), ("r_name", pa.string())])
ORDERS = pa.schema([("o_orderkey", pa.int64()), ("o_custkey", pa.int64())])
LINEITEM = pa.schema([("l_orderkey", pa.int64()), ("l_suppkey", pa.int64()), ("l_price", pa.float64())])

DISTINCT = {  # column -> distinct values (TPC-H SF1)
    "c_custkey": 150_000, "c_nationkey": 25, "s_suppkey": 10_000, "s_nationkey": 25, "n_nationkey": 25,
    "n_regionkey": 5, "n_name": 25, "r_regionkey": 5, "r_name": 5, "o_orderkey": 1_500_000,
    "o_custkey": 100_000, "l_orderkey": 1_500_000, "l_suppkey": 10_000,
}


class WithColumnStatistics(PlanningConnector):
    """Declared tables whose statistics include each column's distinct count."""

    def statistics(self, schema: str, table: str) -> TableStatistics:
        table_schema, _, rows = self.tables[(schema, table)]
        columns = {n: ColumnStatistics(distinct=DISTINCT[n]) for n in table_schema.names if n in DISTINCT}
        return TableStatistics(rows=rows, bytes=rows * 100, columns=columns)


def tpch_planner() -> Planner:
    """TPC-H SF1's Q5 placement from the cost-based federation issue: customer, supplier, nation and region
    in PostgreSQL; orders and lineitem as Parquet."""
    return Planner(Catalog({
        "pg": WithColumnStatistics("pg", PostgreSQLConnector, {
            ("tpch", "customer"): (CUSTOMER, ["c_custkey"], 150_000),
            ("tpch", "supplier"): (SUPPLIER, ["s_suppkey"], 10_000),
            ("tpch", "nation"): (NATION, ["n_nationkey"], 25),
            ("tpch", "region"): (REGION, ["r_regionkey"], 5),
        }),
        "lake": WithColumnStatistics("lake", ParquetConnector, {
            ("main", "orders"): (ORDERS, ["o_orderkey"], 1_500_000),
            ("main", "lineitem"): (LINEITEM, [], 6_000_000),
        }, qualified=False),
    }), "postgres")


Q5 = """SELECT n.n_name, SUM(l.l_price) FROM pg.tpch.customer c, lake.main.orders o, lake.main.lineitem l,
        pg.tpch.supplier s, pg.tpch.nation n, pg.tpch.region r
        WHERE c.c_custkey = o.o_custkey AND l.l_orderkey = o.o_orderkey AND l.l_suppkey = s.s_suppkey
          AND c.c_nationkey = s.s_nationkey AND s.s_nationkey = n.n_nationkey AND n.n_regionkey = r.r_regionkey
          AND r.r_name = 'ASIA' GROUP BY n.n_name"""


def test_a_join_on_a_low_distinct_key_stays_in_datafusion():
    """Q5's customer x supplier on the nation key (150,000 x 2,000 rows over 25 values) is not pushed; the
    foreign-key joins supplier -> nation -> region are, and EXPLAIN gives the estimate."""
    _, plan = tpch_planner().plan(Q5)
    pg = [f for f in plan.fragments if f.source == "pg"]
    assert sorted(tuple(sorted(f.tables)) for f in pg) == [
        ("pg.tpch.customer",), ("pg.tpch.nation", "pg.tpch.region", "pg.tpch.supplier")]
    reasons = [n for n in plan.not_pushed if "c_nationkey" in n.what]
    assert reasons and "estimated output" in reasons[0].reason and "joined in DataFusion" in reasons[0].reason


def test_a_foreign_key_join_is_pushed():
    """customer -> nation on the nation's key keeps customer's rows: pushed as one fragment beside orders."""
    _, plan = tpch_planner().plan("SELECT c.c_name, n.n_name FROM pg.tpch.customer c JOIN pg.tpch.nation n "
                                  "ON n.n_nationkey = c.c_nationkey JOIN lake.main.orders o ON o.o_custkey = c.c_custkey")
    assert sorted(sorted(f.tables) for f in plan.fragments) == [
        ["lake.main.orders"], ["pg.tpch.customer", "pg.tpch.nation"]]
    assert not plan.not_pushed or all("estimated output" not in n.reason for n in plan.not_pushed)


def test_a_growing_join_is_still_pushed_when_the_whole_query_runs_in_the_source():
    """The cost test is the join-group pass's; a query reading one source only is pushed whole as before."""
    _, plan = tpch_planner().plan("SELECT COUNT(*) FROM pg.tpch.customer c JOIN pg.tpch.supplier s "
                                  "ON s.s_nationkey = c.c_nationkey")
    assert len(plan.fragments) == 1 and plan.pushed_whole


def test_file_tables_of_a_scope_without_other_sources_are_still_joined_together():
    """A sub-query over two Parquet tables alone keeps its join group (one fragment)."""
    _, plan = tpch_planner().plan(
        "SELECT c.c_name FROM pg.tpch.customer c WHERE c.c_custkey IN (SELECT o.o_custkey FROM lake.main.orders o "
        "JOIN lake.main.lineitem l ON l.l_orderkey = o.o_orderkey WHERE l.l_price > 100)")
    assert ["lake.main.lineitem", "lake.main.orders"] in [f.tables for f in plan.fragments]
