"""Semi-join reduction of correlated aggregate sub-queries (``planner.semi_join_reduction``): where it applies
(the outer table's own filters restrict the sub-query's keys), where it must not, and that the planner uses it
only for a query a file source runs whole. Answers are checked against DataFusion over the same data by the
differential fuzzer and the TPC-H suite; here the rewritten SQL itself is checked."""

from __future__ import annotations

import sqlglot
from sqlglot.optimizer.qualify import qualify

from planner.semi_join_reduction import reduce_correlated_subqueries, undo_reductions
from tests.planner.catalog import planner

SCHEMA = {
    "lineitem": {"l_partkey": "int", "l_quantity": "int", "l_price": "double"},
    "part": {"p_partkey": "int", "p_brand": "text", "p_size": "int"},
    "supplier": {"s_suppkey": "int", "s_nationkey": "int"},
}

Q17 = ("SELECT sum(l.l_price) FROM lineitem l, part p WHERE p.p_partkey = l.l_partkey AND p.p_brand = 'B#23' "
       "AND l.l_quantity < (SELECT 0.2 * avg(l2.l_quantity) FROM lineitem l2 WHERE l2.l_partkey = p.p_partkey)")


def _rewrite(sql: str) -> tuple[int, str]:
    ast = qualify(sqlglot.parse_one(sql, read="postgres"), schema=SCHEMA, quote_identifiers=True)
    added = reduce_correlated_subqueries(ast)
    return added, ast.sql(dialect="postgres")


def test_a_correlated_aggregate_reads_only_the_keys_the_outer_filters_keep():
    added, sql = _rewrite(Q17)
    assert added == 1
    assert ('"l2"."l_partkey" IN (SELECT "__keys_0"."p_partkey" FROM "part" AS "__keys_0" '
            "WHERE \"__keys_0\".\"p_brand\" = 'B#23')") in sql


def test_undoing_the_reduction_gives_the_query_back():
    """For a query run with late materialization the added key restriction is removed again, and only it."""
    ast = qualify(sqlglot.parse_one(Q17, read="postgres"), schema=SCHEMA, quote_identifiers=True)
    before = ast.sql(dialect="postgres")
    assert reduce_correlated_subqueries(ast) == 1
    assert undo_reductions(ast) == 1
    assert ast.sql(dialect="postgres") == before
    assert undo_reductions(ast) == 0


def test_no_outer_filter_on_the_correlated_table_no_rewrite():
    added, _ = _rewrite(Q17.replace(" AND p.p_brand = 'B#23'", ""))
    assert added == 0


def test_a_filter_over_two_tables_is_not_copied():
    added, sql = _rewrite(Q17.replace("p.p_brand = 'B#23'", "p.p_size > l.l_quantity"))
    assert added == 0, sql


def test_an_outer_join_in_the_outer_query_is_left_alone():
    sql = ("SELECT sum(l.l_price) FROM lineitem l LEFT JOIN part p ON p.p_partkey = l.l_partkey "
           "WHERE p.p_brand = 'B#23' AND l.l_quantity < "
           "(SELECT avg(l2.l_quantity) FROM lineitem l2 WHERE l2.l_partkey = p.p_partkey)")
    assert _rewrite(sql)[0] == 0


def test_a_sub_query_that_does_not_aggregate_is_left_alone():
    sql = ("SELECT l.l_price FROM lineitem l, part p WHERE p.p_partkey = l.l_partkey AND p.p_brand = 'B#23' "
           "AND EXISTS (SELECT 1 FROM lineitem l2 WHERE l2.l_partkey = p.p_partkey)")
    assert _rewrite(sql)[0] == 0


def test_a_sub_query_in_the_select_list_is_left_alone():
    """Outside WHERE its value is shown for every row, also those the filters would not have kept."""
    sql = ("SELECT (SELECT avg(l2.l_quantity) FROM lineitem l2 WHERE l2.l_partkey = p.p_partkey) AS a "
           "FROM part p WHERE p.p_brand = 'B#23'")
    assert _rewrite(sql)[0] == 0


def test_a_volatile_filter_is_not_copied():
    added, _ = _rewrite(Q17.replace("p.p_brand = 'B#23'", "p.p_size > random()"))
    assert added == 0


def test_an_uncorrelated_in_filter_is_copied_with_its_sub_query():
    """TPC-H Q20's shape: the outer table's filter is itself an IN sub-query."""
    sql = Q17.replace("p.p_brand = 'B#23'", "p.p_partkey IN (SELECT s.s_suppkey FROM supplier s WHERE s.s_nationkey = 3)")
    added, text = _rewrite(sql)
    assert added == 1
    assert '"__keys_0"."p_partkey" IN (SELECT "s"."s_suppkey"' in text


def test_the_planner_reduces_only_for_a_file_source_that_runs_the_whole_query():
    sql = ("SELECT e.kind, count(*) FROM lake.main.events e WHERE e.kind = 'click' AND e.customer_id > "
           "(SELECT avg(i.qty) FROM lake.main.items i WHERE i.order_id = e.id) GROUP BY e.kind")
    _, plan = planner().plan(sql)
    assert plan.pushed_whole and "__keys_0" in plan.fragments[0].sql
    pg = ("SELECT c.name FROM pg.public.customers c WHERE c.region = 'north' AND c.tier > "
          "(SELECT avg(o.qty) FROM pg.public.orders o WHERE o.customer_id = c.id)")
    _, plan = planner().plan(pg)
    assert "__keys_" not in plan.explain()
