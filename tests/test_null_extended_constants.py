"""DataFusion 55 takes a column that an outer join null-extends for the constant it is on the other side (a literal
of a derived table, a column an ON fixes) and drops sorts on it. Every SQL text DataFusion runs reads a derived
table's column through its input's join key and writes an ON conjunct that fixes a column it reads as ``(..) IS
TRUE`` (``connectors.arrow.null_extended.anchor_null_extended_columns``): over Parquet, the whole query run by the file source and a residual plan over two sources give SQLite's rows, in
SQLite's order, for each shape."""

from __future__ import annotations

import sqlite3

import pyarrow as pa
import pytest
import sqlglot

from connectors.arrow.null_extended import anchor_null_extended_columns
from tests.parquet_sources import datafusion_over, parquet_engine

A = {"id": list(range(1, 41)), "v": list("abcdefgh") * 5}  # larger than b: DataFusion builds on b
B = {"id": [1, 2, 3, 4, 5], "s": list("xxxxy")}
SHAPES = {  # every ORDER BY is total, so SQLite's order is the one answer
    "derived literal": "SELECT a.id, d.k FROM {a} AS a LEFT JOIN (SELECT b.id, 1 AS k FROM {b} AS b) AS d "
                       "ON a.id = d.id ORDER BY d.k DESC NULLS FIRST, a.id LIMIT 3",
    "ON fixes the column": "SELECT a.id, b.s FROM {a} AS a LEFT JOIN {b} AS b ON a.id = b.id AND b.s = 'x' "
                           "ORDER BY b.s DESC NULLS FIRST, a.id LIMIT 3",
    "window ordering": "SELECT q.id, q.rn FROM (SELECT a.id, ROW_NUMBER() OVER (ORDER BY d.k DESC NULLS FIRST, a.id) "
                       "AS rn FROM {a} AS a LEFT JOIN (SELECT b.id, 'x' AS k FROM {b} AS b) AS d ON a.id = d.id) AS q "
                       "ORDER BY q.rn LIMIT 3",
    "read by a query above": "SELECT q.id, q.k FROM (SELECT a.id, d.k FROM {a} AS a LEFT JOIN "
                             "(SELECT b.id, 1 AS k FROM {b} AS b) AS d ON a.id = d.id) AS q "
                             "ORDER BY q.k DESC NULLS FIRST, q.id LIMIT 3",
    "distinct": "SELECT DISTINCT a.id, d.k FROM {a} AS a LEFT JOIN (SELECT b.id, 1 AS k FROM {b} AS b) AS d "
                "ON a.id = d.id ORDER BY d.k DESC NULLS FIRST, a.id LIMIT 3",
    "right join": "SELECT a.id, d.k FROM (SELECT b.id, 1 AS k FROM {b} AS b) AS d RIGHT JOIN {a} AS a "
                  "ON a.id = d.id ORDER BY d.k DESC NULLS FIRST, a.id LIMIT 3",
    "derived filter": "SELECT a.id, d.id AS did FROM {a} AS a LEFT JOIN (SELECT b.id, b.s FROM {b} AS b "
                      "WHERE b.s = 'y') AS d ON a.id = d.id ORDER BY d.s NULLS FIRST, a.id DESC LIMIT 3",
    "ON fixes the join key": "SELECT a.id, b.id AS bid FROM {a} AS a LEFT JOIN {b} AS b ON b.id = a.id AND b.id = 3 "
                             "ORDER BY b.id NULLS LAST, a.id LIMIT 3",
    "grouped by a literal": "SELECT d.k, COUNT(*) AS c FROM {a} AS a LEFT JOIN (SELECT b.id, 'hit' AS k FROM {b} AS b) "
                            "AS d ON a.id = d.id GROUP BY d.k ORDER BY d.k NULLS FIRST",
    "one-row aggregate without a key": "SELECT a.id, x.m FROM {a} AS a LEFT JOIN (SELECT MAX(b.id) AS m FROM {b} AS b) "
                                       "AS x ON a.v = 'c' ORDER BY x.m NULLS FIRST, a.id LIMIT 3",
    "CTE literal": "WITH e AS (SELECT b.id, 1 AS k FROM {b} AS b) SELECT a.id, e.k FROM {a} AS a LEFT JOIN e "
                   "ON a.id = e.id ORDER BY e.k DESC NULLS FIRST, a.id LIMIT 3",
    "grouped by a fixed column": "SELECT b.s, COUNT(a.id) AS c FROM {a} AS a LEFT JOIN {b} AS b ON a.id = b.id "
                                 "AND b.s IN ('x') GROUP BY b.s ORDER BY b.s NULLS FIRST",
}


def sqlite_rows(sql: str) -> list[tuple]:
    db = sqlite3.connect(":memory:")
    for name, columns in {"a": A, "b": B}.items():
        db.execute(f"CREATE TABLE {name} ({', '.join(columns)})")
        db.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(columns))})", list(zip(*columns.values(), strict=True)))
    return [tuple(r) for r in db.execute(sql.format(a="a", b="b"))]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """Sources ``lake`` (tables ``a`` and ``b``) and ``other`` (table ``b``), Parquet folders."""
    a = pa.table({"id": pa.array(A["id"], pa.int64()), "v": pa.array(A["v"])})
    b = pa.table({"id": pa.array(B["id"], pa.int64()), "s": pa.array(B["s"])})
    engine = parquet_engine(tmp_path_factory, {"lake": {"a": a, "b": b}, "other": {"b": b}})
    yield engine
    engine.close()


def test_datafusion_itself_drops_a_sort_on_a_null_extended_literal():
    """The defect the rewrite works around; when this fails, DataFusion fixed it and the rewrite may go."""
    sql = SHAPES["derived literal"].format(a="a", b="b")
    assert datafusion_over({"a": A, "b": B}).sql(sql).to_pydict()["id"] == [1, 2, 3]
    assert [r[0] for r in sqlite_rows(sql)] == [6, 7, 8]  # the rows b does not match, by id


@pytest.mark.parametrize("sources", [("lake.main.a", "lake.main.b"), ("lake.main.a", "other.main.b")],
                         ids=["whole query in the file source", "residual plan over two sources"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_sort_on_a_null_extended_constant_keeps_sqls_order(engine, sources, shape):
    sql = SHAPES[shape]
    table = engine.execute(sql.format(a=sources[0], b=sources[1])).reader.read_all()
    assert [tuple(r.values()) for r in table.to_pylist()] == sqlite_rows(sql)


@pytest.mark.parametrize("sql", [
    "SELECT a.id, b.s FROM a JOIN b ON a.id = b.id ORDER BY b.s",  # no outer join
    "SELECT a.id, b.s FROM a LEFT JOIN b ON a.id = b.id ORDER BY b.s",  # nothing fixes b.s
    "SELECT a.id FROM a LEFT JOIN b ON a.id = b.id AND b.s = 'x' ORDER BY a.id",  # b.s not read above the join
    "SELECT a.id, d.k FROM a LEFT JOIN (SELECT 1 AS k) AS d ON TRUE ORDER BY d.k",  # no join key to read through
    "SELECT a.id, d.k FROM a LEFT JOIN (SELECT b.id, 1 AS k FROM b) AS d USING (id) ORDER BY d.k",
], ids=["inner", "not fixed", "not read", "no key", "using"])
def test_other_joins_are_left_as_written(sql):
    tree = sqlglot.parse_one(sql, read="postgres")
    assert anchor_null_extended_columns(tree.copy()) == tree


def test_the_preserved_inputs_key_is_not_read_through():
    """A LEFT join's left input keeps rows whose key is NULL: its key says nothing about null extension by a
    later RIGHT join, so the column is read through the right input's own key of that join."""
    sql = ("SELECT b.s FROM b LEFT JOIN (SELECT c.id, 1 AS k FROM c) AS d ON b.id = d.id RIGHT JOIN a "
           "ON a.id = b.id ORDER BY b.s, d.k")
    written = anchor_null_extended_columns(sqlglot.parse_one(sql, read="postgres")).sql()
    assert "CASE WHEN d.id IS NULL THEN NULL ELSE d.k END" in written
    assert "ELSE b.s" not in written  # b.s is a column of b itself, which nothing fixes
