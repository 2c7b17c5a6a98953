"""DataFusion 55 keeps every row of ``WHERE NOT <constant> IN (<sub-query holding a NULL>)`` (fuzz seed 9869604
#1596). Every SQL text DataFusion runs writes such a test as the NULL-aware NOT EXISTS it means
(``connectors.arrow.not_in.null_aware_not_in``): over Parquet, the whole query run by the file source and a
residual plan over two sources give SQLite's rows (SQL's three-valued logic) for each case."""

from __future__ import annotations

import sqlite3

import pyarrow as pa
import pytest
import sqlglot

from connectors.arrow.not_in import null_aware_not_in
from tests.parquet_sources import datafusion_over, parquet_engine

T = {"id": [1, 2, 3, 4]}
U = {"x": [1.5, None, 12.5, 7.0]}
CASES = {  # condition on t -> the ids SQL keeps
    "NOT 12.5 IN (SELECT u.x FROM {u} AS u WHERE u.x < 10 OR u.x IS NULL)": [],  # a NULL, no match
    "NOT 12.5 IN (SELECT u.x FROM {u} AS u WHERE u.x < 10)": [1, 2, 3, 4],  # no NULL, no match
    "NOT 12.5 IN (SELECT u.x FROM {u} AS u)": [],  # a match
    "NOT 12.5 IN (SELECT u.x FROM {u} AS u WHERE u.x > 100)": [1, 2, 3, 4],  # empty
    "t.id > 2 OR NOT 3.0 IN (SELECT u.x FROM {u} AS u WHERE u.x IS NOT NULL)": [1, 2, 3, 4],
    "t.id > 2 AND NOT 3.0 IN (SELECT u.x FROM {u} AS u)": [],
}


def sqlite_ids(condition: str) -> list[int]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id)")
    db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in T["id"]])
    db.execute("CREATE TABLE u (x)")
    db.executemany("INSERT INTO u VALUES (?)", [(x,) for x in U["x"]])
    return sorted(r[0] for r in db.execute(f"SELECT t.id FROM t AS t WHERE {condition.format(u='u')}"))


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """Sources ``lake`` (tables ``t`` and ``u``) and ``other`` (table ``u``), Parquet folders."""
    t, u = pa.table({"id": pa.array(T["id"], pa.int64())}), pa.table({"x": pa.array(U["x"], pa.float64())})
    engine = parquet_engine(tmp_path_factory, {"lake": {"t": t, "u": u}, "other": {"u": u}})
    yield engine
    engine.close()


def test_datafusion_itself_keeps_every_row_of_a_constant_not_in_a_sub_query_holding_null():
    """The defect the rewrite works around; when this fails, DataFusion fixed it and the rewrite may go."""
    sql = "SELECT t.id FROM t WHERE NOT 12.5 IN (SELECT u.x FROM u AS u WHERE u.x < 10 OR u.x IS NULL)"
    assert sorted(datafusion_over({"t": T, "u": U}).sql(sql).to_pydict()["id"]) == [1, 2, 3, 4]
    assert sqlite_ids("NOT 12.5 IN (SELECT u.x FROM {u} AS u WHERE u.x < 10 OR u.x IS NULL)") == []


@pytest.mark.parametrize("sources", [("lake.main.t", "lake.main.u"), ("lake.main.t", "other.main.u")],
                         ids=["whole query in the file source", "residual plan over two sources"])
@pytest.mark.parametrize("condition", list(CASES))
def test_a_constant_not_in_a_sub_query_keeps_sqls_rows(engine, sources, condition):
    sql = f"SELECT t.id FROM {sources[0]} AS t WHERE {condition.format(u=sources[1])}"
    got = sorted(engine.execute(sql).reader.read_all().column("id").to_pylist())
    assert got == CASES[condition] == sqlite_ids(condition)


@pytest.mark.parametrize("sql", [
    "SELECT t.id FROM t WHERE NOT t.id IN (SELECT u.x FROM u)",  # a column: DataFusion answers right
    "SELECT t.id FROM t WHERE NOT 1 IN (SELECT DISTINCT u.x FROM u WHERE u.y = t.id)",  # correlated, not plain
    "SELECT t.id FROM t WHERE NOT (t.id > 1 AND NOT 1 IN (SELECT u.x FROM u))",  # under another NOT
    "SELECT t.id FROM t WHERE NOT 1 IN (1, 2)",  # a list
], ids=["column", "correlated", "under NOT", "list"])
def test_other_not_in_tests_are_left_as_written(sql):
    tree = sqlglot.parse_one(sql, read="postgres")
    assert null_aware_not_in(tree.copy()) == tree
