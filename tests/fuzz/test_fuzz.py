"""Differential fuzzing: random queries over five sources give what DataFusion gives over the same data.

``test_fuzz_queries`` runs a fixed seed's queries (each with its own random placement of tables on sources)
and fails listing every shrunk failing query: a wrong answer, or a gateway error where DataFusion answers.
``test_regression`` replays each query of ``regressions.json`` (failures found earlier, shrunk, placement in
the table names: ``pq.t1`` is table t1 in source pq).
"""

from __future__ import annotations

import pytest
from sqlglot import exp

from tests.fuzz.compare import ERROR, INVALID, WRONG
from tests.fuzz.generator import parse_placed
from tests.fuzz.runner import load_regressions

SEED, QUERIES = 20240601, 300


def test_scans_match_the_data_set(fuzz_session):
    """Each source returns the loaded rows (CSV cannot tell '' from NULL: that one difference is expected)."""
    unexpected = [f for f in fuzz_session.reference.scan_findings
                  if not (f[0] == "csv" and f[2].startswith("s (string)") and "want ''" in f[2] and ";" not in f[2])]
    assert not unexpected, unexpected


def test_fuzz_queries(fuzz_session):
    """No wrong answer and no gateway error where DataFusion answers, over a fixed seed's queries."""
    report = fuzz_session.run(SEED, QUERIES, max_shrinks=8, shrink_seconds=8.0)
    counts = dict(report.counts)
    assert report.counts["invalid"] < QUERIES // 3, f"too many queries DataFusion cannot answer: {counts}"
    failures = [f for f in report.failures if f.outcome.category in (WRONG, ERROR)]
    if failures:
        pytest.fail(f"{len(failures)} failing queries of {QUERIES} (seed {SEED}; {counts}):\n\n"
                    + "\n\n".join(f.describe() for f in failures), pytrace=False)


REGRESSIONS = load_regressions()


@pytest.mark.parametrize("entry", REGRESSIONS, ids=[f"r{i}" for i in range(len(REGRESSIONS))])
def test_regression(fuzz_session, entry):
    """A query that failed once (as shrunk then) gives the reference's answer."""
    outcome = fuzz_session.check(parse_placed(entry["sql"]), entry.get("gateway", "default"))
    if outcome.category == INVALID:
        pytest.fail(f"DataFusion no longer answers the regression query: {outcome.detail}", pytrace=False)
    if outcome.category in (WRONG, ERROR):
        pytest.fail(f"[{outcome.category}] {entry['sql']}\n{outcome.detail}", pytrace=False)


@pytest.mark.parametrize("keep", ["LIMIT 3", "OFFSET 1", "LIMIT 3 OFFSET 1"])
def test_shrinking_keeps_the_order_of_a_sub_query_that_keeps_part_of_its_rows(keep):
    """Without its ORDER BY, a sub-query's LIMIT or OFFSET keeps arbitrary rows: a shrunk query must not lose it."""
    import sqlglot

    from tests.fuzz.shrink import _apply, _edits

    tree = sqlglot.parse_one(f"WITH q AS (SELECT a1.k1 AS v FROM t1 AS a1 ORDER BY 1 {keep}) SELECT MAX(q.v) FROM q",
                             read="postgres")
    for edit in _edits(tree):
        shrunk = _apply(tree, edit)
        if shrunk is None:
            continue
        for query in shrunk.find_all(exp.Select):
            if query.parent is not None and (query.args.get("limit") or query.args.get("offset")):
                assert query.args.get("order") is not None, f"{edit}: {shrunk.sql()}"
