"""PostgreSQL spellings DataFusion 55 lacks or reads otherwise answer as PostgreSQL does wherever DataFusion
computes them (``connectors.arrow.dialect.DataFusion``): ``SIGN`` (DataFusion's ``signum``), ``EVERY`` (its
``bool_and``) and ``LIKE .. ESCAPE`` with another escape character than the backslash (DataFusion refuses it: "LIKE
does not support escape_char other than the backslash"). Found by a sweep against PostgreSQL; each query runs on
every source alone and on two mixes, compared with PostgreSQL's answer.
"""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from tests.fuzz.compare import OK, compare
from tests.fuzz.data import SOURCES
from tests.fuzz.generator import FuzzQuery, render
from tests.fuzz.test_subqueries_as_values import postgres_answer

QUERIES = {
    "sign": "SELECT a.id, SIGN(a.k2 - 50) AS s, SIGN(a.amt) AS d FROM t1 AS a",
    "every": "SELECT a.g, EVERY(a.b) AS e, EVERY(a.k2 > 5) AS f FROM t1 AS a GROUP BY a.g",
    "like_escape": "SELECT a.id FROM t1 AS a WHERE a.s LIKE 'a!_%' ESCAPE '!' OR a.s LIKE '%!%%' ESCAPE '!'",
    "not_ilike_escape": "SELECT a.id, b.id AS bid FROM t1 AS a JOIN t2 AS b ON b.k1 = a.id "
                        "WHERE b.s NOT ILIKE 'A#_%' ESCAPE '#'",
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_postgresql_spelling_answers_as_postgresql_on_every_placement(fuzz_session, name):
    sql = QUERIES[name]
    want = postgres_answer(fuzz_session.sources.world, sql)
    ast = sqlglot.parse_one(sql, read="postgres")
    aliases = sorted({t.alias_or_name for t in ast.find_all(exp.Table)})
    mixes = [{a: SOURCES[(i + shift) % len(SOURCES)] for i, a in enumerate(aliases)} for shift in (0, 2)]
    # the CSV source reads '' as NULL: text tests keep to the others
    sources = [s for s in SOURCES if s != "csv" or "LIKE" not in sql]
    failures = []
    for placement in [{a: s for a in aliases} for s in sources] + mixes:
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
