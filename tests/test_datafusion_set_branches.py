"""DataFusion 55 fails to plan a set operation whose first branch it finds empty when a later branch removes
duplicates (``SELECT DISTINCT`` or a nested UNION): the result keeps that branch's output names, and the
projection above asks for the first branch's (fuzz seed 7071068 #539). Every SQL text DataFusion runs reads
such a branch through a derived table (``connectors.arrow.set_branches.read_distinct_branches``): over Parquet,
the whole query run by the file source and a residual plan over two sources answer with the first branch's
names."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot

from connectors.arrow.set_branches import read_distinct_branches
from tests.parquet_sources import datafusion_over, parquet_engine

ROWS = {"s": ["x", "y", "y"], "k": [1, 2, 2]}
EMPTY_FIRST = "SELECT t.s AS s, 1 AS c FROM t WHERE t.k > NULL UNION ALL SELECT DISTINCT t.s AS d, 2 AS e FROM t"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """Sources ``lake`` (tables ``t`` and ``u``) and ``other`` (table ``u``), Parquet folders, the same rows each."""
    table = pa.table({"s": pa.array(ROWS["s"]), "k": pa.array(ROWS["k"], pa.int64())})
    engine = parquet_engine(tmp_path_factory, {"lake": {"t": table, "u": table}, "other": {"u": table}})
    yield engine
    engine.close()


def test_datafusion_itself_fails_to_plan_the_shape():
    """The defect the rewrite works around; when this fails, DataFusion fixed it and the rewrite may go."""
    with pytest.raises(Exception, match="optimize_projections"):
        datafusion_over({"t": ROWS}).sql(EMPTY_FIRST).to_pylist()


def test_the_rewritten_shape_keeps_the_first_branch_names_in_datafusion():
    rewritten = read_distinct_branches(sqlglot.parse_one(EMPTY_FIRST, read="postgres")).sql("postgres")
    rows = datafusion_over({"t": ROWS}).sql(rewritten).to_pylist()
    assert sorted(rows, key=lambda r: r["s"]) == [{"s": "x", "c": 2}, {"s": "y", "c": 2}]


def test_only_later_branches_that_remove_duplicates_are_rewritten():
    def rewritten(sql: str) -> str:
        return read_distinct_branches(sqlglot.parse_one(sql, read="postgres")).sql("postgres")

    assert rewritten("SELECT DISTINCT a FROM t UNION ALL SELECT b FROM u") == \
        "SELECT DISTINCT a FROM t UNION ALL SELECT b FROM u"
    assert rewritten("SELECT a FROM t UNION ALL (SELECT b FROM u UNION SELECT c FROM v)") == \
        "SELECT a FROM t UNION ALL SELECT * FROM ((SELECT b FROM u UNION SELECT c FROM v)) AS __branch"


#: the first branch's WHERE stays where both tables are (a sum of their columns) and DataFusion folds it to empty
WHOLE = ("SELECT t.s AS s, 1 AS c FROM lake.main.t AS t JOIN lake.main.u AS u ON u.k = t.k WHERE t.k + u.k > NULL "
         "UNION ALL SELECT DISTINCT t.s AS d, 2 AS e FROM lake.main.t AS t JOIN lake.main.u AS u ON u.k = t.k")
RESIDUAL = WHOLE.replace("lake.main.u", "other.main.u").replace("UNION ALL", "UNION")


def test_a_whole_query_with_an_empty_first_branch_is_pushed_and_answers_with_its_names(engine):
    assert engine.plan(WHOLE).pushed_whole  # without the rewrite the file source cannot plan it and it is split
    table = engine.execute(WHOLE).reader.read_all()
    assert table.column_names == ["s", "c"]
    assert sorted(table.column("s").to_pylist()) == ["x", "y"]


def test_a_residual_plan_with_an_empty_first_branch_answers_with_its_names(engine):
    assert engine.plan(RESIDUAL).residual_sql is not None
    table = engine.execute(RESIDUAL).reader.read_all()
    assert table.column_names == ["s", "c"]
    assert sorted(table.column("s").to_pylist()) == ["x", "y"]
