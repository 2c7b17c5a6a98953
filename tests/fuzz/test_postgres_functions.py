"""PostgreSQL spellings DataFusion 55 lacks or reads otherwise answer as PostgreSQL does wherever DataFusion computes
them (``connectors.arrow.dialect.DataFusion``): ``SIGN`` (DataFusion's ``signum``), ``EVERY`` (its ``bool_and``),
``EXTRACT(EPOCH FROM ts - ts)`` (DataFusion drops the fraction of a second from a duration's epoch),
``PERCENTILE_DISC`` (the value at position ``ceil(f * n)`` of the ordered non-NULL values) and ``LIKE .. ESCAPE``
with another escape character than the backslash (DataFusion refuses it: "LIKE does not support escape_char other
than the backslash"). Found by a sweep against PostgreSQL; each query runs on every source alone and on two mixes,
compared with PostgreSQL's answer.
"""

from __future__ import annotations

import pytest

from tests.fuzz.data import SOURCES
from tests.fuzz.postgres_reference import placement_failures

QUERIES = {
    "sign": "SELECT a.id, SIGN(a.k2 - 50) AS s, SIGN(a.amt) AS d FROM t1 AS a",
    "every": "SELECT a.g, EVERY(a.b) AS e, EVERY(a.k2 > 5) AS f FROM t1 AS a GROUP BY a.g",
    "percentile_disc": "SELECT a.g, PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY a.k2) AS p50, PERCENTILE_DISC(0.9) "
                       "WITHIN GROUP (ORDER BY a.n DESC) AS p, PERCENTILE_DISC(0) WITHIN GROUP (ORDER BY a.dt) AS d0 "
                       "FROM t1 AS a GROUP BY a.g",
    "percentile_disc_of_no_rows": "SELECT d.g, PERCENTILE_DISC(0.25) WITHIN GROUP (ORDER BY b.qty) AS q FROM dim AS d "
                                  "LEFT JOIN t2 AS b ON b.id = d.id + 1000 GROUP BY d.g",
    "similar_to": "SELECT a.id, a.s SIMILAR TO '[a-z]%' AS x, a.s SIMILAR TO '%(b|c)%' AS y, a.s SIMILAR TO '_' AS z, "
                  "a.s SIMILAR TO '%.%' AS dot FROM t1 AS a",
    "not_similar_to_escape": "SELECT a.id FROM t1 AS a WHERE a.s NOT SIMILAR TO '(abc|x)%' AND a.s NOT SIMILAR TO "
                             "'a!%b' ESCAPE '!'",
    "epoch_of_a_duration": "SELECT a.id, EXTRACT(EPOCH FROM (a.ts - TIMESTAMP '2021-01-01')) AS e, EXTRACT(EPOCH FROM "
                           "a.ts - b.ts) AS f FROM t1 AS a JOIN t2 AS b ON b.k1 = a.id",
    "like_escape": "SELECT a.id FROM t1 AS a WHERE a.s LIKE 'a!_%' ESCAPE '!' OR a.s LIKE '%!%%' ESCAPE '!'",
    "not_ilike_escape": "SELECT a.id, b.id AS bid FROM t1 AS a JOIN t2 AS b ON b.k1 = a.id "
                        "WHERE b.s NOT ILIKE 'A#_%' ESCAPE '#'",
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_postgresql_spelling_answers_as_postgresql_on_every_placement(fuzz_session, name):
    sql = QUERIES[name]
    # the CSV source reads '' as NULL: text tests keep to the others
    sources = tuple(s for s in SOURCES if s != "csv" or not ("LIKE" in sql or "SIMILAR" in sql))
    want, failures = placement_failures(fuzz_session, sql, shifts=(0, 2), sources=sources)
    assert want.num_rows > 0
    assert not failures, "\n".join(failures)
