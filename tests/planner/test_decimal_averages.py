"""AVG of a decimal column pushed to PostgreSQL as DataFusion computes it (``planner.pushdown
.with_decimal_averages``: the scaled sum divided by the count, truncated toward zero at 4 more digits), against
the real PostgreSQL: the fuzz tables (``fz`` of tests/world.py; ``amt`` is ``decimal(12, 2)`` with negative
values and NULLs, ``g`` has 5 groups), answers compared with DataFusion's over the same tables loaded locally.
"""

from __future__ import annotations

import pytest

from tests.planner.test_distinct_keys import _same_rows


def _pushed_whole(fz, sql: str) -> str:
    plan = fz.engine.plan(fz.sql(sql))
    assert plan.pushed_whole, plan.fragments
    return plan.fragments[0].sql


@pytest.mark.parametrize("sql", [
    "SELECT a.g, AVG(a.amt) AS m FROM {pg}t1 a GROUP BY a.g",
    "SELECT AVG(a.amt) FROM {pg}t1 a WHERE a.amt < 0",
    "SELECT a.g, AVG(a.amt) AS m FROM {pg}t1 a WHERE a.id < 0 GROUP BY a.g",
    "SELECT AVG(a.amt) AS m FROM {pg}t1 a WHERE a.id < 0",
    "SELECT a.dk, AVG(a.amt) AS m, COUNT(*) AS n FROM {pg}t1 a GROUP BY a.dk HAVING AVG(a.amt) > 10000 ORDER BY m",
    "SELECT a.id FROM {pg}t1 a WHERE a.amt > (SELECT AVG(b.amt) FROM {pg}t1 b WHERE b.g = 2)",
], ids=["grouped", "negative", "no-rows-grouped", "no-rows", "having-order", "scalar-sub-query"])
def test_decimal_average_pushed_to_postgresql_answers_as_datafusion(fz, sql):
    assert "TRUNC(SUM(" in _pushed_whole(fz, sql)
    got, want = fz(sql)
    assert got.schema.field(got.num_columns - 1).type == want.schema.field(want.num_columns - 1).type
    _same_rows(got, want)


def test_average_of_each_group_keeps_datafusion_digits(fz):
    """Six digits after the point, truncated: 1/3 is 0.333333, never rounded up to ...334 (PostgreSQL's own AVG
    prints 16 significant digits and rounds)."""
    sql = "SELECT a.id % 3 AS k, AVG(a.amt) AS m FROM {pg}t1 a GROUP BY a.id % 3"
    got, want = fz(sql)
    _same_rows(got, want)
    assert all(v is None or -v.as_tuple().exponent == 6 for v in got.column("m").to_pylist())


@pytest.mark.parametrize("sql", [
    "SELECT AVG(a.f) FROM {pg}t1 a",  # float: summation order changes the last digits
    "SELECT AVG(a.k2) FROM {pg}t1 a",  # integer: DataFusion averages in Float64
    "SELECT AVG(a.amt * 2) FROM {pg}t1 a",  # an expression: its scale is DataFusion's to decide
    "SELECT AVG(DISTINCT a.amt) FROM {pg}t1 a",
], ids=["float", "integer", "expression", "distinct"])
def test_other_averages_stay_in_datafusion(fz, sql):
    plan = fz.engine.plan(fz.sql(sql))
    assert not any("AVG" in f.sql.upper() or "TRUNC" in f.sql.upper() for f in plan.fragments)
    got, want = fz(sql)
    _same_rows(got, want)
