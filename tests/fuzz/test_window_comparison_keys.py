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
from sqlglot import exp

from connectors.arrow.datafusion import run_local
from tests.fuzz.compare import OK, compare
from tests.fuzz.data import SOURCES
from tests.fuzz.generator import FuzzQuery, render
from tests.fuzz.test_subqueries_as_values import postgres_answer

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
    sql = QUERIES[name]
    want = postgres_answer(fuzz_session.sources.world, sql)
    ast = sqlglot.parse_one(sql, read="postgres")
    aliases = sorted({t.alias_or_name for t in ast.find_all(exp.Table)})
    mixes = [{a: SOURCES[(i + shift) % len(SOURCES)] for i, a in enumerate(aliases)} for shift in (0, 3)]
    failures = []
    for placement in [{a: s for a in aliases} for s in SOURCES] + mixes:
        text = render(FuzzQuery(ast, placement).ast, placement, fuzz_session.sources.names)
        try:
            got = fuzz_session.gateway.execute(text).reader.read_all()
        except Exception as exc:
            failures.append(f"{placement}: {type(exc).__name__}: {exc}")
            continue
        category, detail = compare(got, want, False)
        if category != OK:
            failures.append(f"{placement}: {detail}")
    assert want.num_rows > 0
    assert not failures, "\n".join(failures)


def test_datafusion_itself_still_fails_such_a_window_as_written():
    """The defect's own check: when a DataFusion upgrade plans it, the rewrite can go."""
    tables = {"t": pa.table({"n": [1, 2, 3, None], "g": [1, 1, 2, 2]})}
    with pytest.raises(Exception, match="SanityCheckPlan"):
        run_local("SELECT MAX(g) OVER (ORDER BY ABS(n) <= g) AS m FROM t", tables)
    rewritten = sqlglot.parse_one("SELECT MAX(g) OVER (ORDER BY ABS(n) <= g) AS m FROM t").sql(dialect="datafusion")
    assert run_local(rewritten, tables).column("m").to_pylist() == [2, 2, 2, 2]
