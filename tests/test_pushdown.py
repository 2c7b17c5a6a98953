"""Each pushdown pass (sub-queries, join groups, top-N, the plan cache) checked twice: on the fragment SQL it
produces, and on the result against DataFusion over the same data loaded locally."""

from __future__ import annotations

import pytest

from tests.test_federation import assert_same
from tests.world import GATEWAY_NAMES


def _run(gateway, reference, sql: str, ordered: bool = False, params=None):
    result = gateway.execute(sql.format(**GATEWAY_NAMES), params)
    got = result.reader.read_all()
    assert_same(got, reference(sql), ordered)
    return result


def test_same_source_join_runs_in_the_source(gateway, reference):
    sql = ("SELECT c.id, c2.name AS next_name, o.order_id FROM {customers} c "
           "JOIN {customers} c2 ON c2.id = c.id + 1 JOIN {orders} o ON o.customer_id = c.id "
           "WHERE c.tier < 20 AND c2.active")
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    pg = next(f for f in plan.fragments if f.source == "pg")
    assert pg.tables == ["pg.crm.customers", "pg.crm.customers"] and "CROSS JOIN" in pg.sql
    assert '"c2"."id" = ("c"."id" + 1)' in pg.sql and '"c"."tier" < 20' in pg.sql
    result = _run(gateway, reference, sql)
    # the join ran in PostgreSQL: it returned no more rows than the reference join of the two tables
    joined = reference("SELECT count(*) AS n FROM {customers} c JOIN {customers} c2 ON c2.id = c.id + 1 "
                       "WHERE c.tier < 20 AND c2.active").column("n")[0].as_py()
    assert next(f for f in result.stats.fragments if f.source == "pg").rows == joined


def test_uncorrelated_subquery_pushed_whole(gateway, reference):
    sql = ("SELECT o.order_id, o.amount FROM {orders} o WHERE o.customer_id IN "
           "(SELECT id FROM {customers} WHERE tier = 7 AND credit > 1000)")
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    pg = next(f for f in plan.fragments if f.source == "pg")
    assert pg.pushed == ["whole sub-query"] and "WHERE" in pg.sql
    _run(gateway, reference, sql)


def test_cte_aggregate_pushed_to_its_source(gateway, reference):
    sql = ("WITH spend AS (SELECT customer_id, sum(amount) AS total, count(*) AS n FROM {orders} "
           "WHERE status = 'shipped' GROUP BY customer_id) "
           "SELECT c.region, sum(s.total) AS total, sum(s.n) AS n FROM spend s JOIN {customers} c ON c.id = s.customer_id "
           "GROUP BY c.region")
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    lake = next(f for f in plan.fragments if f.source == "lake")
    assert lake.pushed == ["whole sub-query"] and "GROUP BY" in lake.sql
    result = _run(gateway, reference, sql)
    groups = reference("SELECT count(DISTINCT customer_id) AS n FROM {orders} WHERE status = 'shipped'")
    assert next(f for f in result.stats.fragments if f.source == "lake").rows == groups.column("n")[0].as_py()


def test_correlated_subquery_is_not_pushed_alone(gateway, reference):
    sql = ("SELECT p.product_id FROM {products} p WHERE EXISTS "
           "(SELECT 1 FROM {orders} o WHERE o.product_id = p.product_id AND o.qty = 48)")
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    assert all(f.pushed != ["whole sub-query"] for f in plan.fragments)
    _run(gateway, reference, sql)


def test_top_n_in_sqlite_keeps_datafusion_null_order(gateway, reference):
    sql = "SELECT product_id, weight FROM {products} ORDER BY weight DESC, product_id LIMIT 12"
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    fragment = plan.fragments[0]
    assert "ORDER BY" in fragment.sql and "NULLS FIRST" in fragment.sql and "LIMIT 12" in fragment.sql
    result = _run(gateway, reference, sql, ordered=True)
    assert result.stats.fragments[0].rows == 12
    assert result.reader is not None


def test_maria_order_by_nullable_column(gateway, reference):
    sql = "SELECT shipment_id, cost FROM {shipments} WHERE boxes > 100 ORDER BY cost DESC, shipment_id LIMIT 9"
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    assert plan.pushed_whole and "IS NULL" in plan.fragments[0].sql  # NULLs-first emulated in MySQL's dialect
    _run(gateway, reference, sql, ordered=True)


def test_plan_cache_reuses_plans_across_parameter_values(gateway, reference):
    sql = "SELECT count(*) AS n FROM pg.crm.customers c JOIN lake.orders o ON o.customer_id = c.id WHERE c.tier > ?"
    hits = gateway.planner.cache_hits
    for tier in (10, 100, 250):
        got = gateway.execute(sql, [tier]).reader.read_all().column("n")[0].as_py()
        want = reference(f"SELECT count(*) AS n FROM customers c JOIN orders o ON o.customer_id = c.id "
                         f"WHERE c.tier > {tier}").column("n")[0].as_py()
        assert got == want
    assert gateway.planner.cache_hits == hits + 2
    # another parameter type is another plan
    gateway.execute(sql, [10.5]).reader.read_all()
    assert gateway.planner.cache_hits == hits + 2


def test_unpushable_order_or_filter_stays_local(gateway, reference):
    # MariaDB's '=' on text ignores case: the filter is re-checked in DataFusion, and so the LIMIT stays there
    sql = "SELECT carrier FROM {shipments} WHERE carrier = 'dhl' ORDER BY shipment_id LIMIT 5"
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    assert not plan.pushed_whole
    [fragment] = plan.fragments
    assert "LIMIT" not in fragment.sql and "ORDER BY" not in fragment.sql
    assert [n.what.split(" on ")[0] for n in plan.not_pushed] == [
        "whole query to maria", """filter "shipments"."carrier" = 'dhl'""", "LIMIT"]
    assert "collation" in plan.not_pushed[0].reason and "re-checked" in plan.not_pushed[1].reason
    assert "LIMIT 5" in plan.explain().split("Residual plan")[1]
    _run(gateway, reference, sql, ordered=True)


def test_text_order_is_pushed_in_byte_order(gateway, reference):
    # PostgreSQL's database sorts text by a language's rules; DataFusion by bytes: the ORDER BY is pushed with
    # COLLATE "C", so the top-N runs in the source and answers as DataFusion would
    sql = "SELECT name FROM {customers} WHERE name LIKE 'Bob%' ORDER BY name LIMIT 3"
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    assert plan.pushed_whole and 'COLLATE "C" LIMIT 3' in plan.fragments[0].sql
    _run(gateway, reference, sql, ordered=True)


def test_dynamic_filter_with_an_empty_build_side(gateway, reference):
    sql = ("SELECT c.id, o.order_id FROM {customers} c JOIN {orders} o ON o.customer_id = c.id "
           "WHERE c.tier = -999")
    result = _run(gateway, reference, sql)
    lake = next(f for f in result.stats.fragments if f.source == "lake")
    assert lake.rows == 0 and "no keys" in lake.dynamic_filter


def test_dynamic_filter_falls_back_to_a_range(gateway, reference, monkeypatch):
    from connectors import base

    monkeypatch.setattr(base, "IN_LIST_LIMIT", 5)
    sql = ("SELECT c.name, o.amount FROM {customers} c JOIN {orders} o ON o.customer_id = c.id "
           "WHERE c.id BETWEEN 100 AND 160 AND c.active")
    result = _run(gateway, reference, sql)
    lake = next(f for f in result.stats.fragments if f.source == "lake")
    assert "BETWEEN" in lake.dynamic_filter
    in_range = reference("SELECT count(*) AS n FROM {orders} WHERE customer_id BETWEEN 100 AND 160")
    assert lake.rows <= in_range.column("n")[0].as_py()


@pytest.mark.parametrize("sql", [
    "SELECT c.region, count(*) AS n, sum(o.amount) AS s, min(o.ordered_at) AS first, max(o.qty) AS most "
    "FROM {customers} c JOIN {orders} o ON o.customer_id = c.id WHERE o.status = 'open' GROUP BY c.region "
    "HAVING count(*) > 3",
    "SELECT c.tier, sum(o.amount * o.qty), count(o.ship_date) FROM {orders} o, {customers} c "
    "WHERE c.id = o.customer_id AND c.active GROUP BY c.tier",
    # a global aggregate over an empty join: COUNT must be 0, SUM NULL, as without partial aggregation
    "SELECT count(*) AS n, sum(o.amount) AS s FROM {customers} c JOIN {orders} o ON o.customer_id = c.id "
    "WHERE c.tier = -999",
])
def test_partial_aggregation_below_a_cross_source_join(gateway, reference, sql):
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    lake = next(f for f in plan.fragments if f.source == "lake")
    assert lake.pushed[0].startswith("partial aggregation") and "GROUP BY" in lake.sql
    result = _run(gateway, reference, sql)
    orders = next(f for f in result.stats.fragments if f.source == "lake")
    assert orders.rows <= len({r["customer_id"] for r in reference("SELECT DISTINCT customer_id FROM {orders}").to_pylist()})


def test_float_sums_are_not_partially_aggregated_in_postgresql(gateway, reference):
    sql = "SELECT o.status, sum(c.score) AS s FROM {orders} o JOIN {customers} c ON c.id = o.customer_id GROUP BY o.status"
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    assert all("partial aggregation" not in " ".join(f.pushed) for f in plan.fragments)
    _run(gateway, reference, sql)


def test_distinct_aggregate_over_many_rows_is_not_pushed_to_a_source_that_sorts_for_it(gateway, reference,
                                                                                        monkeypatch):
    from planner.federation import whole_query

    small = "SELECT region, count(DISTINCT tier) AS tiers, count(*) AS n FROM {customers} WHERE active GROUP BY region"
    plan = gateway.plan(small.format(**GATEWAY_NAMES))
    assert plan.pushed_whole  # about 2,000 rows into the aggregate: PostgreSQL sorts them quickly
    _run(gateway, reference, small)

    # the world's customers stand in for a large table: the threshold is lowered below their rows
    monkeypatch.setattr(whole_query, "SORTED_DISTINCT_MAX_ROWS", 100)
    large = "SELECT region, count(DISTINCT tier) AS tiers, count(*) AS n FROM {customers} WHERE tier > 0 GROUP BY region"
    plan = gateway.plan(large.format(**GATEWAY_NAMES))
    assert not plan.pushed_whole
    reason = next(n.reason for n in plan.not_pushed if n.what == "whole query to pg")
    assert "DISTINCT aggregate would be computed by sorting about" in reason and "DataFusion hashes it" in reason
    assert "count(distinct" not in plan.fragments[0].sql.lower()  # the rows come, DataFusion aggregates them
    _run(gateway, reference, large)


def test_partial_aggregation_is_not_pushed_to_mariadb(gateway, reference):
    # MariaDB groups through a temporary table: the partial aggregate costs what sending the rows does
    sql = ("SELECT o.status, sum(s.boxes) AS boxes, count(*) AS n FROM {orders} o "
           "JOIN {shipments} s ON s.order_id = o.order_id GROUP BY o.status")
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    maria = next(f for f in plan.fragments if f.source == "maria")
    assert "GROUP BY" not in maria.sql
    assert any(n.what.startswith("partial aggregation of maria.") and "grouping in this source costs" in n.reason
               for n in plan.not_pushed)
    _run(gateway, reference, sql)
