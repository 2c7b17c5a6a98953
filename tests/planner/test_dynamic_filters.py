"""Dynamic filters without sources: the planner's choice over declared statistics, each connector's rendering
of the key condition (``Connector.key_filter``), and the restriction execution applies to a probe fragment."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest
from sqlglot import exp

from connectors import base
from connectors.files import ParquetConnector
from connectors.postgresql import PostgreSQLConnector
from gateway.execution.runtime_filters import restrict
from planner.dynamic_filters import (
    DynamicFilter,
    carried_joins,
    choose,
    estimated_rows,
    keeps_nearly_every_row,
    late_materialization,
)
from tests.planner.catalog import COLUMNS, PlanningConnector, planner

COLUMN = exp.column("k", table="o", quoted=True)


def _default() -> PlanningConnector:
    """A connector with the default ``key_filter``."""
    return PlanningConnector("x", ParquetConnector, {})


def _postgresql() -> PostgreSQLConnector:
    """A PostgreSQL connector that is never connected (connections are made on first use)."""
    return PostgreSQLConnector("pg", {"uri": "postgresql://nobody@127.0.0.1:1/none"})


def test_default_key_filter_is_an_in_list():
    condition = _default().key_filter(COLUMN, pa.array([3, 17]))
    assert condition.sql() == '"o"."k" IN (3, 17)'


def test_default_key_filter_is_a_range_past_the_in_list_limit(monkeypatch):
    monkeypatch.setattr(base, "IN_LIST_LIMIT", 2)
    condition = _default().key_filter(COLUMN, pa.array([5, 1, 9]))
    assert condition.sql() == '"o"."k" BETWEEN 1 AND 9'


def test_no_text_range(monkeypatch):
    """A source may order text by another collation: a range could drop rows."""
    monkeypatch.setattr(base, "IN_LIST_LIMIT", 2)
    assert _default().key_filter(COLUMN, pa.array(["a", "b", "c"])) is None


def test_postgresql_takes_many_integer_keys_as_one_array():
    keys = pa.array(range(200), pa.int64())
    condition = _postgresql().key_filter(COLUMN, keys)
    assert condition.sql(dialect="postgres").startswith('"o"."k" = ANY(CAST(\'{0,1,2,')
    few = _postgresql().key_filter(COLUMN, pa.array([1, 2], pa.int64()))
    assert isinstance(few, exp.In)


@pytest.mark.parametrize("keys, description, condition", [
    (pa.array([], pa.int64()), "order_id: no keys (build side empty)", "FALSE"),
    (pa.array([3, 3, None, 7], pa.int64()), "order_id IN (2 values)", '"i"."order_id" IN (3, 7)'),
])
def test_restrict_a_probe_fragment(keys, description, condition):
    planning = planner()
    _, plan = planning.plan("SELECT c.name, i.qty FROM pg.public.customers AS c JOIN lake.main.items AS i "
                            "ON i.order_id = c.id WHERE c.region = 'north' AND c.tier = 2")
    assert choose(plan, planning.catalog) == [DynamicFilter("__fragment_0", "id", "__fragment_1", "order_id")]
    probe = plan.fragments[1]
    restricted, note = restrict(probe, "order_id", keys, planning.catalog.connector("lake"))
    assert note == description
    assert restricted.sql.endswith(f'FROM "items" AS "i" WHERE {condition}')


def test_semi_join_on_a_join_group_restricts_the_members_scan():
    """A semi-join of keys on a member of an inner-joined group read in place restricts that member's scan, so
    the group's join builds and probes only the kept rows (DataFusion would plan it from the WHERE above the
    join); a literal IN list stays in the WHERE, where DataFusion pushes it to the scan itself."""
    planning = planner()
    _, plan = planning.plan("SELECT c.name, i.qty, e.kind FROM pg.public.customers AS c JOIN lake.main.items AS i "
                            "ON i.order_id = c.id JOIN lake.main.events AS e ON e.id = i.store_id "
                            "WHERE c.region = 'north'")
    group = plan.fragments[1]
    assert group.sql.endswith('FROM "items" AS "i" CROSS JOIN "events" AS "e" WHERE "e"."id" = "i"."store_id"')
    keys = pa.array(range(1, 1_001), pa.int64())
    lake = planning.catalog.connector("lake")
    semi, note = restrict(group, "i.order_id", keys, lake, keys_table="__keys_1")
    assert note == "i.order_id IN (1000 values, a semi-join in the residual plan)"
    assert semi.sql.endswith('FROM (SELECT * FROM "items" AS "i" WHERE "i"."order_id" IN (SELECT "k" FROM "__keys_1")) '
                             'AS "i" CROSS JOIN "events" AS "e" WHERE "e"."id" = "i"."store_id"')
    literal, _ = restrict(group, "i.order_id", pa.array([3, 7], pa.int64()), lake, keys_table="__keys_1")
    assert literal.sql.endswith('WHERE "e"."id" = "i"."store_id" AND "i"."order_id" IN (3, 7)')


def test_late_materialization_for_few_keys_on_a_fragment_without_conditions(monkeypatch):
    """Keys at most 1% of the column's distinct values, on a file fragment with no condition of its own: its
    other columns are decoded only for the rows kept; more keys, a condition of its own, or no statistics: not."""
    join = ("SELECT e.kind, c.name FROM pg.public.customers AS c JOIN lake.main.events AS e "
            "ON e.customer_id = c.id WHERE c.tier = 2")
    few, many = pa.array(range(100), pa.int64()), pa.array(range(101), pa.int64())
    _, plan = planner().plan(join)
    assert not late_materialization(plan.fragments[1], "customer_id", few, planner().catalog)  # no statistics
    monkeypatch.setitem(COLUMNS, ("lake", "main", "events"), {"customer_id": base.ColumnStatistics(distinct=10_000)})
    planning = planner()
    _, plan = planning.plan(join)
    probe = plan.fragments[1]
    assert probe.ast.args.get("where") is None
    assert late_materialization(probe, "customer_id", few, planning.catalog)
    assert not late_materialization(probe, "customer_id", many, planning.catalog)
    _, plan = planning.plan(join + " AND e.kind = 'click'")
    assert not late_materialization(plan.fragments[1], "customer_id", few, planning.catalog)


def test_late_materialization_turns_on_parquet_filter_pushdown():
    from datafusion import SessionContext

    from connectors.arrow.datafusion import session

    def pushdown_filters(ctx) -> list[str]:
        shown = SessionContext(ctx.copied_config().with_information_schema(True))
        return shown.sql("SELECT value FROM information_schema.df_settings "
                         "WHERE name = 'datafusion.execution.parquet.pushdown_filters'").to_pydict()["value"]

    assert pushdown_filters(session()) == ["false"]
    assert pushdown_filters(session(late_materialization=True)) == ["true"]


def test_estimated_rows_are_the_planners_estimates():
    """Fragments carry the planner's estimate (statistics and PostgreSQL's default selectivities: 0.005 per
    equality on a column without statistics, at least one row); the dynamic-filter choice uses it."""
    planning = planner()
    _, plan = planning.plan("SELECT c.name, i.qty FROM pg.public.customers AS c JOIN lake.main.items AS i "
                            "ON i.order_id = c.id WHERE c.region = 'north' AND c.tier = 2")
    assert plan.fragments[0].estimated_rows == 1  # 10,000 x 0.005 x 0.005 = 0.25
    assert estimated_rows(plan.fragments[0], planning.catalog) == 1
    assert estimated_rows(plan.fragments[1], planning.catalog) == 5_000_000


def test_estimated_rows_take_a_quarter_per_conjunct_without_a_planner_estimate():
    planning = planner()
    _, plan = planning.plan("SELECT c.name, i.qty FROM pg.public.customers AS c JOIN lake.main.items AS i "
                            "ON i.order_id = c.id WHERE c.region = 'north' AND c.tier = 2")
    unestimated = dataclasses.replace(plan.fragments[0], estimated_rows=None)
    assert estimated_rows(unestimated, planning.catalog) == 10_000 * 0.25 ** 2


def _fragment_of(plan, table: str) -> str:
    return next(f.id for f in plan.fragments if any(t.endswith(f".{table}") for t in f.tables))


def test_keys_are_carried_across_equal_join_columns():
    """``i.product_id = p.id`` and ``o.id = i.product_id`` imply ``o.id = p.id``: the filtered products restrict
    orders too, not only items (TPC-H Q9: part's keys cut partsupp through lineitem)."""
    planning = planner()
    _, plan = planning.plan(
        "SELECT o.amount, i.qty FROM my.shop.products AS p JOIN lake.main.items AS i ON i.product_id = p.id "
        "JOIN pg.public.orders AS o ON o.id = i.product_id WHERE p.category = 'tools'")
    products, items, orders = (_fragment_of(plan, t) for t in ("products", "items", "orders"))
    carried = carried_joins(plan.joins)
    assert [(j.left, j.left_column, j.right, j.right_column) for j in carried] == [
        tuple(x for pair in sorted([(products, "id"), (orders, "id")]) for x in pair)]
    filters = choose(plan, planning.catalog)
    assert DynamicFilter(products, "id", items, "product_id") in filters
    assert DynamicFilter(products, "id", orders, "id") in filters


def test_keys_are_not_carried_through_an_outer_join():
    """Rows of a LEFT JOIN's right side that match nothing still count: equalities through it imply nothing."""
    planning = planner()
    _, plan = planning.plan(
        "SELECT o.amount, i.qty FROM my.shop.products AS p JOIN lake.main.items AS i ON i.product_id = p.id "
        "LEFT JOIN pg.public.orders AS o ON o.id = i.product_id WHERE p.category = 'tools'")
    products, orders = _fragment_of(plan, "products"), _fragment_of(plan, "orders")
    assert not any({j.left, j.right} == {products, orders} for j in carried_joins(plan.joins))


class _StatisticsOnly:
    """The one catalog call ``keeps_nearly_every_row`` makes: declared statistics of the probe's table."""

    def __init__(self, distinct: float) -> None:
        self.distinct = distinct

    def statistics(self, ref):
        return base.TableStatistics(rows=5_000_000, bytes=None,
                                    columns={"order_id": base.ColumnStatistics(distinct=self.distinct),
                                             "id": base.ColumnStatistics(distinct=self.distinct)})


def _items_probe():
    planning = planner()
    _, plan = planning.plan("SELECT c.name, i.qty FROM pg.public.customers AS c JOIN lake.main.items AS i "
                            "ON i.order_id = c.id WHERE c.region = 'north'")
    return plan.fragments[1]


def test_filter_with_as_many_keys_as_distinct_values_is_not_sent():
    keys = pa.array(range(950), pa.int64())
    assert keeps_nearly_every_row(_items_probe(), "order_id", keys, _StatisticsOnly(1_000)) == (
        "950 keys of about 1,000 distinct values")


def test_more_keys_than_the_estimated_distinct_values_prove_the_estimate_wrong():
    """147,126 keys against an estimate of 2,617 distinct values (a sample of a sorted column): the filter is
    sent, not dropped as keeping every row."""
    keys = pa.array(range(147_126), pa.int64())
    assert keeps_nearly_every_row(_items_probe(), "order_id", keys, _StatisticsOnly(2_617)) is None


def test_filter_on_a_join_group_is_judged_by_the_statistics_of_its_columns_table():
    """TPC-H Q9 with lineitem and orders joined in one source: 9,866 supplier keys of about 10,000 were sent
    to lineitem because a fragment of two tables was never judged."""
    planning = planner()
    _, plan = planning.plan("SELECT s.name, o.qty, c.name FROM my.shop.suppliers AS s JOIN pg.public.orders AS o "
                            "ON o.id = s.id JOIN pg.public.customers AS c ON c.id = o.customer_id "
                            "WHERE s.nation_id = 3")
    group = plan.fragments[1]
    assert group.tables == ["pg.public.orders", "pg.public.customers"]
    keys = pa.array(range(950), pa.int64())
    assert keeps_nearly_every_row(group, "o.id", keys, _StatisticsOnly(1_000)) == (
        "950 keys of about 1,000 distinct values")
    assert keeps_nearly_every_row(group, "o.id", keys, _StatisticsOnly(100_000)) is None

