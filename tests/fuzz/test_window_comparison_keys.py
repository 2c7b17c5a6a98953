"""A window ordered by a key holding an ordering comparison of computed values runs and answers as PostgreSQL
does (``connectors.arrow.dialect.numbered_comparison_window_keys``).

DataFusion 55 fails its SanityCheckPlan on ``MAX(g) OVER (ORDER BY ABS(n) <= g)`` and on any window key holding
such a comparison ("does not satisfy order requirements", the sort below being the one required), on one table
as well as over joins (fuzz seed 2468024, where the null-extended rewrite's CASE made the comparison computed).
"""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot

from connectors.arrow.datafusion import run_local
from tests.fuzz.postgres_reference import placement_failures

QUERIES = {
    "computed_comparison": "SELECT a.id, MAX(a.g) OVER (ORDER BY ABS(a.k2 - 50) <= a.k3, a.id) AS m FROM t1 AS a",
    "coalesce_comparison": "SELECT a.id, COUNT(*) OVER (ORDER BY COALESCE(a.n, 0) > 4) AS m FROM t1 AS a",
    "comparison_in_a_case": "SELECT a.id, SUM(a.k2) OVER (PARTITION BY a.g ORDER BY CASE WHEN a.k2 * 2 > a.k3 "
                            "THEN a.k2 ELSE a.k3 END, a.id) AS m FROM t1 AS a",
    "over_a_left_join": "SELECT a.id, b.id AS bid, MAX(a.g) OVER (ORDER BY CASE WHEN b.qty <= a.n THEN a.n "
                        "ELSE b.g END, a.id, b.id) AS m FROM t1 AS a LEFT JOIN t2 AS b ON b.k1 = a.id",
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_window_keyed_by_a_comparison_answers_as_postgresql_on_every_placement(fuzz_session, name):
    want, failures = placement_failures(fuzz_session, QUERIES[name])
    assert want.num_rows > 0
    assert not failures, "\n".join(failures)


def test_datafusion_itself_still_fails_such_a_window_as_written():
    """The defect's own check: when a DataFusion upgrade plans it, the rewrite can go."""
    tables = {"t": pa.table({"n": [1, 2, 3, None], "g": [1, 1, 2, 2]})}
    with pytest.raises(Exception, match="SanityCheckPlan"):
        run_local("SELECT MAX(g) OVER (ORDER BY ABS(n) <= g) AS m FROM t", tables)
    rewritten = sqlglot.parse_one("SELECT MAX(g) OVER (ORDER BY ABS(n) <= g) AS m FROM t").sql(dialect="datafusion")
    assert run_local(rewritten, tables).column("m").to_pylist() == [2, 2, 2, 2]
