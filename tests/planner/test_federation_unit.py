"""The federation package's own contracts, without sources: the pass order, the fallback plan, the pure
sqlglot helpers (their docstring examples), the capabilities that replace dialect checks."""

from __future__ import annotations

import doctest

import pyarrow as pa
import pytest
import sqlglot

from connectors.base import READ_AS_TEXT, Capabilities
from connectors.sqlite import SQLiteConnector
from planner import federation
from planner.federation import sqlast
from planner.pushdown import unpushable_reason
from tests.planner.catalog import planner


def test_passes_run_in_the_documented_order():
    assert [p.__name__ for p in federation.PASSES] == [
        "simplify_outer_joins", "order_joins", "push_whole_query", "push_subqueries", "factor_ors", "push_filters",
        "group_joins",
        "push_partial_aggregates", "collect_columns", "push_limits", "push_distinct_keys", "build_fragments",
        "share_fragments"]


def test_a_failing_pass_falls_back_to_one_fragment_per_table(monkeypatch):
    """A defect in a pass costs speed, never the answer: each table is read by its own fragment, columns only."""

    def failing(state):
        raise RuntimeError("a pass failed on purpose")

    monkeypatch.setattr(federation, "PASSES", (failing,))
    _, plan = planner().plan("SELECT c.name FROM pg.public.customers AS c JOIN lake.main.events AS e "
                             "ON e.customer_id = c.id WHERE c.tier = 2")
    assert plan.fallback == "RuntimeError: a pass failed on purpose"
    assert [f.sql for f in plan.fragments] == [
        'SELECT "c"."id" AS "id", "c"."name" AS "name", "c"."tier" AS "tier" FROM "public"."customers" AS "c"',
        'SELECT "e"."customer_id" AS "customer_id" FROM "events" AS "e"',
    ]


@pytest.mark.parametrize("sql, inner", [
    ("SELECT * FROM a JOIN b ON a.k = b.k, c", True),
    ("SELECT * FROM a CROSS JOIN b INNER JOIN c ON TRUE", True),
    ("SELECT * FROM a LEFT JOIN b ON a.k = b.k", False),
    ("SELECT * FROM a FULL JOIN b ON a.k = b.k", False),
    ("SELECT * FROM a SEMI JOIN b ON a.k = b.k", False),
])
def test_inner_joins_only(sql, inner):
    assert sqlast.inner_joins_only(sqlglot.parse_one(sql)) is inner


def test_sqlast_examples():
    """The docstring examples of planner.federation.sqlast hold."""
    failures, tried = doctest.testmod(sqlast)
    assert tried and not failures


def test_join_structure_names_the_null_supplying_sides():
    select = sqlglot.parse_one("SELECT * FROM a LEFT JOIN b ON a.k = b.k AND b.x = 1 JOIN c ON c.k = a.k WHERE a.y = 2")
    null_supplying, containers = sqlast.join_structure(select)
    assert null_supplying == {"b"}
    assert [(c.key, sorted(targets)) for c, targets in containers] == [
        ("join", ["b"]), ("join", ["a", "c"]), ("where", ["a", "c"])]


def test_temporal_values_as_text_are_a_capability_not_a_dialect():
    """SQLite declares ``temporal_as_text``; any source declaring it gets the same answer."""
    date = sqlglot.parse_one("d > DATE '2020-01-01'")
    field = pa.field("d", pa.date32())
    assert unpushable_reason(date, SQLiteConnector.capabilities, lambda c: field) == (
        "dates and timestamps are stored as text in this source")
    assert unpushable_reason(date, Capabilities(temporal_as_text=True), lambda c: field) is not None
    assert unpushable_reason(date, Capabilities(), lambda c: field) is None


def test_read_per_table_is_declared_once_from_the_options():
    catalog = planner().catalog
    assert catalog.connector("cached").read_per_table
    assert not catalog.connector("pg").read_per_table
    assert READ_AS_TEXT == b"gateway.read_as_text"
