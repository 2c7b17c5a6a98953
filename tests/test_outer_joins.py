"""Outer joins whose WHERE rejects their null-extended rows are planned and run as the inner joins they are
(``connectors.arrow.outer_joins.inner_null_rejected_joins``). DataFusion 55 keeps ``a RIGHT JOIN b ON .. WHERE
UPPER(a.s) > 'M'`` an outer join and moves the WHERE onto b's column of the same name (fuzz seed 577215 #61):
over Parquet, the whole query run by the file source and a residual plan over two sources give the rows SQL
gives; the rewrite's rule is checked on its own."""

from __future__ import annotations

import pytest
import sqlglot

from connectors.arrow.outer_joins import inner_null_rejected_joins
from tests.parquet_sources import SHARED_NAMES_A, SHARED_NAMES_B, datafusion_over

A, B = SHARED_NAMES_A, SHARED_NAMES_B
QUERY = "SELECT b.amt FROM {a} AS a RIGHT JOIN {b} AS b ON b.s = a.s AND a.amt IS NULL WHERE UPPER(a.s) > 'M'"
#: the b rows matched by an `a` row whose amt is NULL and whose s is above 'M' in upper case: 'X' thrice, 'zed'
#: twice ('q' has no match in `a`, so its null-extended row fails the WHERE)
WANT = [2.0, 2.0, 2.0, 3.0, 3.0]


def test_datafusion_itself_moves_the_filter_to_the_other_input():
    """The defect the rewrite works around; when this fails, DataFusion fixed it and the rewrite may go."""
    assert sorted(datafusion_over({"a": A, "b": B}).sql(QUERY.format(a="a", b="b")).to_pydict()["amt"]) != WANT


@pytest.mark.parametrize("tables", [("lake.main.a", "lake.main.b"), ("lake.main.a", "other.main.b")],
                         ids=["whole query in the file source", "residual plan over two sources"])
def test_an_outer_join_filtered_on_its_null_supplying_side_keeps_only_matched_rows(shared_names_engine, tables):
    result = shared_names_engine.execute(QUERY.format(a=tables[0], b=tables[1]))
    got = result.reader.read_all().column("amt").to_pylist()
    assert sorted(got) == WANT


@pytest.mark.parametrize("where, joins", [
    ("UPPER(a.s) > 'M'", "JOIN"),
    ("NOT REVERSE(a.s) BETWEEN 'x' AND 'z'", "JOIN"),
    ("a.s IS NOT NULL", "JOIN"),
    ("a.n + 1 > 2 OR LENGTH(a.s) = 3", "JOIN"),
    ("a.s IN ('x', NULL)", "JOIN"),
    ("b.s = 'x' AND CAST(a.n AS TEXT) = '1'", "JOIN"),
    ("COALESCE(a.s, 'z') > 'M'", "RIGHT JOIN"),
    ("a.s IS NULL", "RIGHT JOIN"),
    ("NOT a.s IS NOT NULL", "RIGHT JOIN"),
    ("NOT (a.s IS NULL)", "JOIN"),
    ("a.s IS NOT TRUE", "RIGHT JOIN"),
    ("a.s IS NOT NULL = FALSE", "RIGHT JOIN"),
    ("NOT (a.s IS NOT NULL AND b.s = 'x')", "RIGHT JOIN"),
    ("NOT (a.s = 'x')", "JOIN"),
    ("UPPER(a.s) > 'M' OR b.s = 'x'", "RIGHT JOIN"),
    ("'x' IN (a.s, b.s)", "RIGHT JOIN"),
    ("a.n > (SELECT MAX(a.n) FROM c AS a)", "RIGHT JOIN"),
    ("NOT a.n IN (SELECT c.k FROM c WHERE NULL)", "RIGHT JOIN"),
    ("a.n > ALL (SELECT c.k FROM c)", "RIGHT JOIN"),
    ("UPPER(a.s) > 'M' AND a.n IN (SELECT c.k FROM c)", "JOIN"),
    ("EXISTS (SELECT 1 FROM c WHERE c.k = a.n)", "RIGHT JOIN"),
], ids=lambda v: v)
def test_a_right_join_becomes_inner_exactly_when_the_where_rejects_its_nulls(where, joins):
    sql = f"SELECT b.y FROM a RIGHT JOIN b ON a.k = b.k WHERE {where}"
    rewritten = inner_null_rejected_joins(sqlglot.parse_one(sql, read="postgres"))
    assert rewritten.args["joins"][0].sql().startswith(joins + " b"), rewritten.sql()


@pytest.mark.parametrize("where, joins", [
    ("a.s = 'x'", "LEFT OUTER JOIN"),
    ("b.s = 'x'", "RIGHT OUTER JOIN"),
    ("a.s = b.s", "JOIN"),
    ("a.s = 'x' OR b.s IS NULL", "FULL JOIN"),
])
def test_a_full_join_keeps_the_side_the_where_does_not_reject(where, joins):
    sql = f"SELECT b.y FROM a FULL JOIN b ON a.k = b.k WHERE {where}"
    rewritten = inner_null_rejected_joins(sqlglot.parse_one(sql, read="postgres"))
    assert rewritten.args["joins"][0].sql().startswith(joins + " b"), rewritten.sql()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM a RIGHT JOIN b USING (k) WHERE UPPER(a.s) > 'M'",
    "SELECT * FROM a NATURAL RIGHT JOIN b WHERE UPPER(a.s) > 'M'",
    "SELECT * FROM (a JOIN c ON a.k = c.k) RIGHT JOIN b ON a.k = b.k WHERE UPPER(a.s) > 'M'",
    "SELECT * FROM a RIGHT JOIN b ON a.k = b.k WHERE UPPER(s) > 'M'",
])
def test_joins_it_cannot_read_whole_are_left_as_written(sql):
    tree = sqlglot.parse_one(sql, read="postgres")
    assert inner_null_rejected_joins(tree.copy()) == tree


def test_a_left_join_chain_becomes_inner_up_to_the_rejected_table():
    sql = ("SELECT * FROM a LEFT JOIN b ON a.k = b.k LEFT JOIN c ON b.k = c.k RIGHT JOIN d ON d.k = a.k "
           "WHERE UPPER(b.s) > 'M'")
    joins = inner_null_rejected_joins(sqlglot.parse_one(sql, read="postgres")).args["joins"]
    assert [j.side or "INNER" for j in joins] == ["INNER", "LEFT", "INNER"]
