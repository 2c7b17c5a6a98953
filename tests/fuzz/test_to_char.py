"""PostgreSQL's ``TO_CHAR`` and ``TO_DATE`` templates give PostgreSQL's text wherever DataFusion computes them
(``connectors.arrow.time_formats``), and a template DataFusion cannot follow is refused by name.

DataFusion 55's ``to_char`` reads a chrono format and copies other characters: ``TO_CHAR(dt, 'YYYY-MM')`` answered
``YYYY-MM`` for every row on every placement (a sweep against PostgreSQL found it), and ``TO_DATE(s, 'YYYY-MM-DD')``
failed. Each query runs on every source alone and on two mixes, compared with PostgreSQL's answer.
"""

from __future__ import annotations

import pytest

from connectors.arrow.time_formats import chrono_format
from connectors.errors import InvalidRequestError
from tests.fuzz.postgres_reference import placement_failures

QUERIES = {
    "year_month": "SELECT a.id, TO_CHAR(a.dt, 'YYYY-MM') AS x FROM t1 AS a",
    "time_of_day": "SELECT a.id, TO_CHAR(a.ts, 'YYYY-MM-DD HH24:MI:SS') AS x, TO_CHAR(a.ts, 'HH12:MI AM') AS y "
                   "FROM t1 AS a",
    "names_and_fill_mode": "SELECT a.id, TO_CHAR(a.dt, 'Mon DD, YYYY') AS x, TO_CHAR(a.dt, 'FMMonth FMDD') AS y, "
                           "TO_CHAR(a.dt, 'Dy FMDay') AS z FROM t1 AS a",
    "quoted_text_and_iso_weeks": "SELECT a.id, TO_CHAR(a.ts, 'YYYYMMDD\"T\"HH24MISS.US') AS x, "
                                 "TO_CHAR(a.ts, 'IYYY-IW-ID DDD') AS y FROM t1 AS a",
    "grouped_by_month": "SELECT TO_CHAR(a.dt, 'YYYY-MM') AS m, COUNT(*) AS n FROM t1 AS a GROUP BY 1",
    "filtered_joined": "SELECT a.id, b.id AS bid FROM t1 AS a JOIN t2 AS b ON TO_CHAR(a.dt, 'YYYY-MM') = "
                       "TO_CHAR(b.dt, 'YYYY-MM') WHERE TO_CHAR(a.dt, 'YYYY') = '2021' AND a.g = b.g",
    "to_date": "SELECT a.id FROM t1 AS a WHERE a.dt > TO_DATE('30/06/2022', 'DD/MM/YYYY')",
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_template_answers_as_postgresql_on_every_placement(fuzz_session, name):
    want, failures = placement_failures(fuzz_session, QUERIES[name])
    assert want.num_rows > 0
    assert not failures, "\n".join(failures)


def test_a_template_without_a_chrono_equivalent_is_refused_by_name(fuzz_session):
    table = f"{fuzz_session.sources.names['pq']}.t1"
    with pytest.raises(InvalidRequestError, match="TO_CHAR template 'YYYY-Q': the pattern at 'Q'"):
        fuzz_session.gateway.execute(f"SELECT TO_CHAR(a.dt, 'YYYY-Q') FROM {table} AS a").reader.read_all()


@pytest.mark.parametrize(("template", "chrono"), [
    ("YYYY-MM-DD HH24:MI:SS", "%Y-%m-%d %H:%M:%S"), ('FMDD Mon YYYY "at" HH12 AM', "%-d %b %Y at %I %p"),
    ("HH24:MI:SS.MS", "%H:%M:%S.%3f"), ("IYYY-IW", "%G-%V"), ("100%", "100%%"), ("FMDay, FMMonth", "%A, %B"),
])
def test_templates_with_a_chrono_equivalent_are_translated(template, chrono):
    assert chrono_format(template) == chrono


@pytest.mark.parametrize("template", ["Day", "Month", "MON", "Q", "SSSS", "DDTH", "YYY", "D", "TZ", "WW"])
def test_templates_that_pad_or_have_no_chrono_equivalent_are_refused(template):
    with pytest.raises(InvalidRequestError, match="cannot be computed here"):
        chrono_format(template)
