"""The residual plan's inner joins are written smallest first (``planner.federation.join_order``): DataFusion
joins a FROM list in the order it is written."""

from __future__ import annotations

import re

from planner import Planner
from planner.dynamic_filters import choose
from planner.federation import residual
from tests.planner.catalog import planner, planning_catalog

THREE_WAY = ("SELECT i.qty, o.amount, p.name FROM lake.main.items AS i JOIN pg.public.orders AS o ON o.id = i.order_id "
             "JOIN my.shop.products AS p ON p.id = i.product_id")


def _from_order(sql: str) -> list[str]:
    """The aliases of the residual's FROM list, in order."""
    return re.findall(r'"__fragment_\d+" AS "(\w+)"', sql)


def test_the_smallest_relation_comes_first_then_the_smallest_join():
    """products (2,000 rows) first, then items (joined on the product key: 5M rows), then orders."""
    _, plan = planner().plan(THREE_WAY)
    assert _from_order(plan.residual_sql) == ["p", "i", "o"]
    assert "join order (smallest estimated first; DataFusion joins in written order): p, i, o" in plan.explain()
    first_scan = re.findall(r"TableScan: (__fragment_\d+)", plan.residual_plan)[0]
    assert first_scan == next(f.id for f in plan.fragments if f.tables == ["my.shop.products"])


def test_the_reordered_query_keeps_every_join_condition():
    """ON conditions move into WHERE (the same for inner joins); nothing is lost."""
    _, plan = planner().plan(THREE_WAY)
    where = plan.residual_sql.split(" WHERE ", 1)[1]
    assert '"o"."id" = "i"."order_id"' in where and '"p"."id" = "i"."product_id"' in where


def test_a_scope_with_an_outer_join_keeps_its_written_order():
    _, plan = planner().plan(THREE_WAY.replace("JOIN my.shop.products", "LEFT JOIN my.shop.products"))
    assert _from_order(plan.residual_sql) == ["i", "o", "p"]


def test_select_star_keeps_the_written_column_order():
    """``*`` lists columns in the written FROM order, also when the joins are reordered (the planner expands
    it before the residual is written)."""
    _, plan = planner().plan(THREE_WAY.replace("SELECT i.qty, o.amount, p.name", "SELECT *"))
    assert _from_order(plan.residual_sql) == ["p", "i", "o"]
    assert plan.schema.names[:5] == ["order_id", "product_id", "store_id", "price", "qty"]


def test_a_shared_fragment_keeps_its_references_and_dynamic_filters(monkeypatch):
    """TPC-H Q2's shape: orders read by the outer query and by a correlated sub-query (one fragment read
    twice). The reordered plan has the joins and dynamic filters of the written order: reordering moves the
    FROM nodes themselves, since later passes know fragment references and conditions by identity (with copies,
    TPC-H Q2 on a random placement lost both dynamic filters on its shared partsupp fragment)."""
    sql = ("SELECT p.name FROM lake.main.events AS e, pg.public.orders AS o, my.shop.products AS p "
           "WHERE p.id = o.id AND e.customer_id = o.customer_id AND p.category = 'x' AND e.kind = 'k' "
           "AND o.amount = (SELECT MIN(o.amount) FROM pg.public.orders AS o WHERE o.id = p.id)")
    catalog = planning_catalog()
    _, ordered = Planner(catalog, "postgres").plan(sql)
    monkeypatch.setattr(residual, "order_joins", lambda *args: [])
    _, written = Planner(catalog, "postgres").plan(sql)
    assert _from_order(ordered.residual_sql) != _from_order(written.residual_sql)
    assert max(ordered.references().values()) == 2
    assert sorted(ordered.joins, key=repr) == sorted(written.joins, key=repr)
    assert sorted(choose(ordered, catalog), key=repr) == sorted(choose(written, catalog), key=repr)
    assert choose(ordered, catalog)
