"""Each federation pass on golden files (``golden/<pass>.sql``): the query in, the fragments' SQL, the residual
SQL, what was not pushed, the joins between fragments and the dynamic filters chosen out. No source is read:
the catalog's sources declare dialect, capabilities, tables and statistics only (``tests.planner.catalog``)."""

from __future__ import annotations

import pytest

from tests.planner.catalog import planner
from tests.planner.golden import GOLDEN, cases, render

CASES = cases()
PLANNER = planner()


def test_every_pass_has_a_golden_file():
    """Every module of planner/federation that holds a pass has its golden file."""
    from planner import federation

    passes = {p.__module__.rpartition(".")[2] for p in federation.PASSES}
    assert passes <= {path.stem for path in GOLDEN.glob("*.sql")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case):
    """The plan of the case's query renders as the golden lines (``python -m tests.planner.golden`` rewrites
    them; review the diff)."""
    _, plan = PLANNER.plan(case.sql)
    assert render(plan, PLANNER.catalog) == case.expected
