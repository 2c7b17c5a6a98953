"""A decimal ``ROUND`` wherever DataFusion runs it answers as PostgreSQL does (``planner.decimal_rounds``,
``connectors.arrow.dialect.typed_decimal_rounds``).

DataFusion 55 types ``ROUND(x, n)`` of a decimal two ways: ``decimal(p, n)`` as it runs, ``decimal(p + 1, s)``
where type coercion takes a common type with another value. Found by fuzz seed 9876543 (a CASE of the column and
its ROUND failed over Parquet); a sweep against PostgreSQL then found comparisons and GREATEST/NULLIF failing on
every placement, and an INTERSECT answered wrong (1 row where 10 are right). Each query below runs on every
source alone and on two mixes, and is compared with PostgreSQL's answer over its copy of the tables. The mixes
keep the CSV source (whose ``amt`` is a double) away from the decimal ones: DataFusion compares a double with a
decimal as ``decimal(30, 15)``, where PostgreSQL compares them as doubles.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from connectors.arrow.dialect import DECIMAL_ROUND
from planner.decimal_rounds import mark_decimal_rounds, rounded_type
from tests.fuzz.postgres_reference import placement_failures

QUERIES = {
    "case_of_column_and_round": "SELECT a.id, CASE WHEN a.amt > 500 THEN a.amt ELSE ROUND(a.amt, 0) END AS x "
                                "FROM t1 AS a",
    "union_with_integers": "SELECT 0 AS x, a.c FROM t1 AS a UNION SELECT CASE WHEN b.amt IN (50000) THEN b.amt "
                           "ELSE ROUND(b.amt, 0) END, b.c FROM t1 AS b",
    "compared_with_column": "SELECT a.id FROM t1 AS a WHERE ROUND(a.amt, 1) > a.amt",
    "equal_to_column": "SELECT a.id FROM t1 AS a WHERE ROUND(a.amt, 1) = a.amt",
    "intersect": "SELECT ROUND(a.amt, 1) AS x FROM t1 AS a INTERSECT SELECT b.amt FROM t1 AS b",
    "greatest": "SELECT a.id, GREATEST(ROUND(a.amt, 0), a.amt) AS x FROM t1 AS a",
    "nullif": "SELECT a.id, NULLIF(ROUND(a.amt, 1), a.amt) AS x FROM t1 AS a",
    "grouped_case": "SELECT a.g, CASE WHEN a.g > 1 THEN ROUND(SUM(a.amt), 1) ELSE SUM(a.amt) END AS x "
                    "FROM t1 AS a GROUP BY a.g",
    "negative_scale_union": "SELECT ROUND(a.amt, -1) AS x FROM t1 AS a UNION SELECT b.amt FROM t1 AS b",
    "grouped_by_its_ordinal": "SELECT ROUND(a.amt, -3) AS r, a.g, COUNT(*) AS n FROM t1 AS a GROUP BY 1, 2 "
                              "UNION SELECT b.amt, b.g, 0 FROM t2 AS b WHERE b.id < 5",
    "join_on_round": "SELECT a.id, b.id AS bid FROM t1 AS a JOIN t2 AS b ON ROUND(a.amt, -3) = ROUND(b.amt, -3) AND a.g = b.g",
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_decimal_round_answers_as_postgresql_on_every_placement(fuzz_session, name):
    want, failures = placement_failures(fuzz_session, QUERIES[name], shifts=(0, 2))
    assert want.num_rows > 0
    assert not failures, "\n".join(failures)


def test_only_decimal_rounds_with_literal_scales_are_marked_with_the_type_datafusion_runs():
    schemas = {"t": pa.schema([("amt", pa.decimal128(12, 2)), ("f", pa.float64()), ("k", pa.int32())])}

    def oracle(select):
        from connectors.arrow.datafusion import plan_over_empty

        return plan_over_empty(select.sql(dialect="datafusion"), schemas)[1].schema()

    sql = ("SELECT ROUND(amt, 0) AS a, ROUND(amt, -1) AS b, ROUND(amt) AS c, ROUND(f, 1) AS d, ROUND(amt, k) AS e, "
           "ROUND(SUM(amt) OVER (), 1) AS w FROM t WHERE ROUND(amt, 1) > 2 GROUP BY amt, f, k")
    ast = sqlglot.parse_one(sql, read="postgres")
    assert mark_decimal_rounds(ast, oracle) == 5
    marks = {r.parent.alias if isinstance(r.parent, exp.Alias) else "where": r.meta.get(DECIMAL_ROUND)
             for r in ast.find_all(exp.Round)}
    assert marks == {"a": (12, 0), "b": (12, 0), "c": (12, 0), "d": None, "e": None, "w": (22, 1), "where": (12, 1)}
    written = ast.sql(dialect="datafusion")
    assert "CAST(ROUND(amt, 0) AS DECIMAL(12, 0)) AS a" in written
    assert "ROUND(f, 1) AS d" in written and "ROUND(amt, k) AS e" in written
    assert "WHERE CAST(ROUND(amt, 1) AS DECIMAL(12, 1)) > 2" in written
    assert rounded_type(pa.decimal128(12, 2), 3) == (12, 2)
