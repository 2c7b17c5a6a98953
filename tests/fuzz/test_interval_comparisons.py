"""Comparisons of durations and intervals answer as PostgreSQL does wherever DataFusion computes them
(``planner.pushdown.mark_interval_comparisons``, ``connectors.arrow.dialect.linear_interval_comparisons``).
DataFusion 55 compares a duration (``ts - ts``) with an interval, and two intervals, field by field (months, days,
nanoseconds), so ``(ts - TIMESTAMP '2021-01-01') > INTERVAL '100 days'`` was FALSE for 378 days and
``INTERVAL '1 day' = INTERVAL '24 hours'`` FALSE; PostgreSQL compares lengths (a month as 30 days). Found by a
sweep against PostgreSQL; each query runs on every source alone and on two mixes, compared with PostgreSQL's
answer.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot

from connectors.arrow.dialect import INTERVAL_COMPARISON
from planner.pushdown import mark_interval_comparisons
from tests.fuzz.postgres_reference import placement_failures

QUERIES = {
    "duration_above_days": "SELECT a.id, (a.ts - TIMESTAMP '2021-01-01') > INTERVAL '100 days' AS late FROM t1 AS a",
    "join_window_in_days_and_a_month": "SELECT a.id FROM t1 AS a JOIN t2 AS b ON b.k1 = a.id "
                                       "WHERE a.ts - b.ts < INTERVAL '30 days' AND b.ts - a.ts < INTERVAL '1 month'",
    "between_intervals": "SELECT a.id FROM t1 AS a WHERE a.ts - TIMESTAMP '2021-01-01' "
                         "BETWEEN INTERVAL '10 days' AND INTERVAL '1 year'",
    "equal_lengths": "SELECT a.id, a.ts - a.dt = INTERVAL '0 seconds' AS midnight, "
                     "INTERVAL '1 day' = INTERVAL '24 hours' AS d FROM t1 AS a",
    "spread_of_a_group": "SELECT a.g, MAX(a.ts) - MIN(a.ts) > INTERVAL '400 days 12:00:00' AS wide FROM t1 AS a "
                         "GROUP BY a.g",
    "join_condition": "SELECT a.id, b.id AS bid FROM t1 AS a JOIN t2 AS b ON b.k1 = a.id "
                      "AND a.ts - b.ts <= INTERVAL '200 days' AND a.ts > b.ts",
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_interval_comparison_answers_as_postgresql_on_every_placement(fuzz_session, name):
    want, failures = placement_failures(fuzz_session, QUERIES[name], shifts=(0, 2))
    assert want.num_rows > 0
    assert not failures, "\n".join(failures)


def test_only_comparisons_of_durations_and_intervals_are_marked():
    ast = sqlglot.parse_one("SELECT ts - TIMESTAMP '2021-01-01' > INTERVAL '1 day' AS a, ts > TIMESTAMP '2021-01-01' "
                            "AS b, ts - INTERVAL '1 day' < ts AS c, INTERVAL '1 day' * 2 = INTERVAL '48 hours' AS d, "
                            "dt - dt > 3 AS e FROM t", read="postgres")
    kinds = {"ts": "timestamp", "dt": "date"}

    def column_type(column):
        return pa.field(column.name, pa.timestamp("us") if kinds.get(column.name) == "timestamp" else pa.date32())

    mark_interval_comparisons(ast, column_type)
    marked = {e.alias: bool(e.this.meta.get(INTERVAL_COMPARISON)) for e in ast.expressions}
    assert marked == {"a": True, "b": False, "c": False, "d": True, "e": False}
