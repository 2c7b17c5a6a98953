"""The fuzzer's grammar writes two set tests of one expression (the shapes DataFusion 55 combines ignoring NULLs,
apache/datafusion#24246), and its reference keeps DataFusion from combining them (``generator.wrap_set_tests``).
No database: the generator and the reference's rendering only."""

from __future__ import annotations

import sqlglot

from tests.fuzz import expressions
from tests.fuzz.generator import QueryGenerator, parse_placed, render

SEED, QUERIES = 4455661, 300


def _queries(seed: int = SEED, n: int = QUERIES):
    generator = QueryGenerator(seed)
    return [generator.generate() for _ in range(n)]


def test_grammar_writes_two_set_tests_of_one_expression_with_nulls_under_or_and_and():
    texts = [q.ast.sql(dialect="postgres") for q in _queries() if "in_sets" in q.shapes]
    assert len(texts) >= 10
    assert any(" OR " in t and "IN (NULL)" in t for t in texts)
    assert any(" AND " in t and "NOT " in t for t in texts)


def test_set_pairs_leave_the_other_queries_of_a_seed_as_they_were(monkeypatch):
    """``set_pair`` draws from a generator of its own: a query it did not touch is the one the seed gave before."""
    with_pairs = _queries()
    monkeypatch.setattr(expressions, "SET_PAIR_CHANCE", 0.0)
    without = _queries()
    untouched = [(a, b) for a, b in zip(with_pairs, without, strict=True) if "in_sets" not in a.shapes]
    assert len(untouched) > QUERIES // 2
    assert all(a.ast == b.ast and a.placement == b.placement for a, b in untouched)


def test_reference_wraps_every_set_test_when_two_test_one_expression():
    query = parse_placed("SELECT a1.g FROM maria.dim AS a1 WHERE NOT a1.g IN (1) OR NOT a1.g IN (NULL) AND a1.id = 3")
    sql = render(query.ast, query.placement, None)
    tree = sqlglot.parse_one(sql, read="postgres")
    wrapped = [case.this.unnest().sql() for case in tree.find_all(sqlglot.exp.Case)]
    assert sorted(wrapped) == ["a1.g IN (1)", "a1.g IN (NULL)", "a1.id = 3"]  # all of them, bluntly


def test_reference_leaves_single_set_tests_alone():
    query = parse_placed("SELECT a1.g FROM maria.dim AS a1 WHERE a1.g IN (1, NULL) AND a1.id <> 3")
    assert "CASE" not in render(query.ast, query.placement, None)


def test_reference_as_written_has_no_wrapping_for_the_output_names():
    query = parse_placed("SELECT NOT a1.g IN (1) OR NOT a1.g IN (NULL) FROM maria.dim AS a1")
    assert "CASE" in render(query.ast, query.placement, None)
    assert "CASE" not in render(query.ast, query.placement, None, as_written=True)


def test_reference_leaves_tests_of_one_expression_in_different_trees_alone():
    """Two IN lists on a1.ts, in a CASE condition each (no AND/OR between them): DataFusion combines nothing, and
    the reference meets what the gateway meets (here DataFusion 55 cannot plan the query at all)."""
    condition = "CASE WHEN NOT a1.ts IN (CAST('2021-07-01' AS TIMESTAMP)) THEN a1.dt ELSE a1.dt END"
    query = parse_placed(f"SELECT {condition} FROM lite.t2 AS a1 GROUP BY ROLLUP ({condition})")
    assert "CASE (" not in render(query.ast, query.placement, None)
