"""Distinct keys for existence tests (``planner.federation.distinct_keys``) against the real sources: the fuzz
tables (``fz`` of tests/world.py) in PostgreSQL, MariaDB and Parquet. ``t1.g`` holds 5 values in 200 rows,
``t1.dk`` 13 and NULLs, ``t1.c`` 'x', 'y', 'X' and NULLs, ``t1.id`` is unique, ``t1.f`` is a float. An
uncorrelated IN or EXISTS sub-query is pushed whole (``planner.federation.subqueries``), so every case here
correlates.

Every answer is compared with DataFusion's over the same tables loaded locally (the unpushed answer).
"""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot

from connectors.base import Fragment
from planner.dynamic_filters import scan_column


def _same_rows(got: pa.Table, want: pa.Table) -> None:
    assert got.column_names == want.column_names
    key = lambda row: tuple((v is None, str(v)) for v in row.values())  # noqa: E731
    assert sorted(got.to_pylist(), key=key) == sorted(want.cast(got.schema).to_pylist(), key=key)


def _fragment_sql(fz, sql: str, source: str) -> list[str]:
    return [f.sql for f in fz.engine.plan(fz.sql(sql)).fragments if f.source == source]


EXISTS_G = "SELECT a.id, a.g FROM {maria}t1 a WHERE EXISTS (SELECT 1 FROM {pg}t1 b WHERE b.g = a.g AND b.amt > 0)"


def test_exists_sub_query_reads_distinct_keys_from_postgresql(fz):
    (pg,) = _fragment_sql(fz, EXISTS_G, "pg")
    assert pg.startswith('SELECT DISTINCT "b"."g" AS "g" FROM')
    assert "only tested for existence" in fz.engine.explain(fz.sql(EXISTS_G))
    got, want = fz(EXISTS_G)
    _same_rows(got, want)
    assert got.num_rows > 0


@pytest.mark.parametrize("sql", [
    "SELECT a.id FROM {maria}t1 a WHERE NOT EXISTS (SELECT 1 FROM {pg}t1 b WHERE b.dk = a.dk)",
    "SELECT a.id FROM {pq}t2 a WHERE a.g IN (SELECT b.g FROM {pg}t1 b WHERE b.g <= a.id % 4)",
    "SELECT a.id, a.s FROM {pq}t1 a WHERE EXISTS (SELECT 1 FROM {pg}t1 b WHERE b.c = a.s)",
    "SELECT a.id FROM {maria}t1 a WHERE EXISTS (SELECT 1 FROM {pg}t1 b WHERE b.g = a.g AND b.s <> 'abc')",
    "SELECT a.id FROM {maria}t1 a WHERE a.n = ANY (SELECT b.n FROM {pg}t1 b WHERE b.n < a.g + 5)",
    "SELECT a.id FROM {maria}t2 a WHERE a.g > ALL (SELECT b.g FROM {pg}t1 b WHERE b.g < a.id % 3)",
], ids=["not-exists", "in-correlated", "text-case", "pushed-filter", "any", "all"])
def test_existence_tests_over_distinct_keys_answer_as_datafusion(fz, sql):
    plan = fz.engine.plan(fz.sql(sql))
    assert any(f.source == "pg" and f.sql.startswith("SELECT DISTINCT") for f in plan.fragments), plan.fragments
    got, want = fz(sql)
    _same_rows(got, want)


@pytest.mark.parametrize("sql", [
    # MariaDB's DISTINCT costs what it saves (Capabilities.cheap_distinct)
    "SELECT a.id FROM {pg}t1 a WHERE EXISTS (SELECT 1 FROM {maria}t1 b WHERE b.g = a.g)",
    # a unique key: nothing to remove
    "SELECT a.id FROM {maria}t1 a WHERE EXISTS (SELECT 1 FROM {pg}t1 b WHERE b.id = a.dk)",
    # floats: -0.0 and 0.0 are one value in PostgreSQL's DISTINCT
    "SELECT a.id FROM {maria}t1 a WHERE EXISTS (SELECT 1 FROM {pg}t1 b WHERE b.f = a.f AND b.g = a.g)",
    # an aggregate makes one row of many
    "SELECT a.id FROM {maria}t1 a WHERE a.g IN (SELECT max(b.g) FROM {pg}t1 b WHERE b.dk = a.dk)",
    # read by a join, not an existence test
    "SELECT a.id, b.id FROM {maria}t1 a JOIN {pg}t1 b ON b.g = a.g",
], ids=["mariadb", "unique-key", "float", "aggregate", "join"])
def test_no_distinct_where_it_would_change_or_save_nothing(fz, sql):
    assert not any(f.sql.startswith("SELECT DISTINCT") for f in fz.engine.plan(fz.sql(sql)).fragments)
    got, want = fz(sql)
    _same_rows(got, want)


def test_dynamic_filter_may_restrict_a_distinct_fragment():
    schema = pa.schema([pa.field("g", pa.int32())])
    distinct = sqlglot.parse_one('SELECT DISTINCT "b"."g" AS "g" FROM "fz"."t1" AS "b"', read="postgres")
    on = sqlglot.parse_one('SELECT DISTINCT ON ("b"."id") "b"."g" AS "g" FROM "fz"."t1" AS "b"', read="postgres")
    fragment = Fragment(id="__fragment_0", source="pg", sql=distinct.sql("postgres"), schema=schema,
                        tables=["pg.fz.t1"], ast=distinct, dialect="postgres")
    assert scan_column(fragment, "g").sql() == '"b"."g"'
    assert scan_column(Fragment(id="__fragment_0", source="pg", sql=on.sql("postgres"), schema=schema,
                                tables=["pg.fz.t1"], ast=on, dialect="postgres"), "g") is None
