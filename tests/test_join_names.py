"""DataFusion 55 finds a pushed filter's columns in a join's inputs by name, so with ``amt`` in both inputs a filter
on one lands on the other (apache/datafusion#25296; fuzz seeds 577215 #61 and 3141592). Every SQL text DataFusion
runs renames such shared names apart (``connectors.arrow.join_names.distinct_join_names``): over Parquet, the
whole query run by the file source and a residual plan over two sources give the rows SQL gives."""

from __future__ import annotations

import pytest
import sqlglot

from connectors.arrow.join_names import distinct_join_names, plain_join_names
from tests.parquet_sources import SHARED_NAMES_A, SHARED_NAMES_B, datafusion_over

A, B = SHARED_NAMES_A, SHARED_NAMES_B
#: (query, the b.amt values SQL answers: DuckDB and PostgreSQL agree); DataFusion 55 applies ``a.amt IS NULL``
#: and ``COALESCE(a.k, 0) < b.k`` to b's columns of the same name, below the join, and answers no row
CASES = [
    ("SELECT b.amt FROM {a} AS a RIGHT JOIN {b} AS b ON b.s = a.s WHERE a.amt IS NULL AND b.amt > 1",
     [2.0, 2.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0, 6.0, 6.0]),
    ("SELECT b.amt FROM {a} AS a RIGHT JOIN {b} AS b ON b.s = a.s WHERE COALESCE(a.k, 0) < b.k AND b.amt > 1",
     [2.0, 3.0, 4.0, 5.0, 6.0]),
]


@pytest.mark.parametrize("sql, want", CASES, ids=["IS NULL", "COALESCE"])
def test_datafusion_itself_pushes_the_filter_to_the_column_of_the_same_name(sql, want):
    """The defect the rewrite works around; when this fails, DataFusion fixed it and the rewrite may go."""
    assert sorted(datafusion_over({"a": A, "b": B}).sql(sql.format(a="a", b="b")).to_pydict()["amt"]) != want


@pytest.mark.parametrize("tables", [("lake.main.a", "lake.main.b"), ("lake.main.a", "other.main.b")],
                         ids=["whole query in the file source", "residual plan over two sources"])
@pytest.mark.parametrize("sql, want", CASES, ids=["IS NULL", "COALESCE"])
def test_a_filter_above_a_join_reads_its_own_input_s_column(shared_names_engine, tables, sql, want):
    result = shared_names_engine.execute(sql.format(a=tables[0], b=tables[1]))
    got = result.reader.read_all().column("amt").to_pylist()
    assert sorted(got) == want


def _rename(sql: str) -> str:
    return distinct_join_names(sqlglot.parse_one(sql, read="postgres")).sql(dialect="postgres")


def test_only_names_two_inputs_both_read_are_renamed_and_outputs_keep_their_names():
    sql = _rename("SELECT a.s, b.v, COUNT(*) AS n FROM a LEFT JOIN b ON a.s = b.s GROUP BY a.s, b.v")
    assert sql == ('SELECT a."a.s" AS "s", b.v, COUNT(*) AS n FROM (SELECT "a"."s" AS "a.s" FROM a) AS "a" '
                   'LEFT JOIN (SELECT "b"."s" AS "b.s", "b"."v" AS "v" FROM b) AS "b" ON a."a.s" = b."b.s" '
                   'GROUP BY a."a.s", b.v')


def test_inner_joins_are_renamed_apart_too_and_plain_join_names_undoes_it():
    """A hash join's dynamic filter travels by name as well (fuzz regression r50); the Ray join stage reads the
    residual SQL with the renaming undone."""
    written = "SELECT a.v, b.v AS w FROM a JOIN b ON a.k = b.k WHERE a.v > 1"
    renamed = _rename(written)
    assert 'ON a."a.k" = b."b.k"' in renamed
    plain = plain_join_names(sqlglot.parse_one(renamed, read="postgres")).sql(dialect="postgres")
    assert plain == 'SELECT a."v" AS "v", b."v" AS w FROM a JOIN b ON a."k" = b."k" WHERE a."v" > 1'


def test_an_order_by_naming_an_output_is_no_unqualified_input_column():
    """The planner's residual ends ``ORDER BY "id"`` (the output): fuzz seed 1732050 #911, the r50 shape."""
    assert 'a."a.id" AS "id"' in _rename("SELECT a.id FROM a, b WHERE a.id = b.id ORDER BY id")


def test_the_value_an_in_list_of_literals_tests_is_renamed_too():
    """The walk skips a literal list's items (up to 20,000 dynamic-filter keys), not the value it tests."""
    assert 'WHERE a."a.k" IN (1, 2)' in _rename("SELECT a.v FROM a JOIN b ON a.k = b.k WHERE a.k IN (1, 2)")


def test_a_correlated_sub_query_reads_the_renamed_column():
    sql = _rename("SELECT a.v FROM a RIGHT JOIN b ON a.k = b.k WHERE EXISTS (SELECT 1 FROM c WHERE c.x = b.k)")
    assert 'WHERE c.x = b."b.k"' in sql


@pytest.mark.parametrize("sql", [
    "SELECT * FROM a LEFT JOIN b ON a.k = b.k",
    "SELECT a.* FROM a LEFT JOIN b ON a.k = b.k",
    "SELECT a.k FROM a LEFT JOIN b USING (k)",
    "SELECT a.v FROM a LEFT JOIN b ON a.k = b.k WHERE v > 1",
    "SELECT a.k + 1 FROM a LEFT JOIN b ON a.k = b.k",
    "SELECT a.v FROM a LEFT JOIN b ON a.k = b.k JOIN (SELECT a.k FROM c AS a) AS d ON d.k = a.k",
    "SELECT a.v FROM a LEFT JOIN b ON a.v = b.w",
], ids=["star", "table star", "USING", "unqualified column", "unaliased computed output", "alias used twice",
        "no shared name"])
def test_a_select_it_cannot_read_whole_or_need_not_change_is_left_as_written(sql):
    tree = sqlglot.parse_one(sql, read="postgres")
    assert distinct_join_names(tree.copy()) == tree
