"""``INTERSECT ALL`` and ``EXCEPT ALL`` keep SQL's duplicates on every placement (``planner.set_operations``).

DataFusion 55 answers ``INTERSECT ALL`` as a semi join and ``EXCEPT ALL`` as an anti join; a sweep against
PostgreSQL found it (140 rows where 89 are right). Each query runs on every source alone and on two mixes, and is
compared with PostgreSQL's answer over its copy of the tables (columns without text, which the CSV source reads
with '' as NULL).
"""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot

from connectors.arrow.datafusion import run_local
from planner.set_operations import count_duplicates_in_set_operations
from tests.fuzz.postgres_reference import placement_failures

QUERIES = {
    "intersect_all": "SELECT a.g, a.n FROM t1 AS a INTERSECT ALL SELECT b.g, b.qty FROM t2 AS b",
    "except_all": "SELECT a.g, a.n FROM t1 AS a EXCEPT ALL SELECT b.g, b.qty FROM t2 AS b",
    "ordered_and_limited": "SELECT a.g AS x FROM t1 AS a EXCEPT ALL SELECT b.g FROM t2 AS b ORDER BY x DESC LIMIT 30",
    "chained": "SELECT a.g FROM t1 AS a INTERSECT ALL SELECT b.g FROM t2 AS b EXCEPT ALL SELECT d.g FROM dim AS d",
    "in_a_derived_table": "SELECT x.g, COUNT(*) AS n FROM (SELECT a.g FROM t1 AS a INTERSECT ALL "
                          "SELECT b.g FROM t2 AS b) AS x GROUP BY x.g",
    "over_a_cte": "WITH q AS (SELECT a.g, a.dt FROM t1 AS a WHERE a.id < 150) SELECT q.g, q.dt FROM q "
                  "INTERSECT ALL SELECT b.g, b.dt FROM t2 AS b",
    "unnamed_outputs": "SELECT a.g + 1 AS x FROM t1 AS a EXCEPT ALL SELECT b.g FROM t2 AS b",
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_set_operation_all_answers_as_postgresql_on_every_placement(fuzz_session, name):
    sql = QUERIES[name]
    want, failures = placement_failures(fuzz_session, sql, ordered=" ORDER BY " in sql and " LIMIT " not in sql)
    assert want.num_rows > 0
    assert not failures, "\n".join(failures)


def test_counted_duplicates_give_sql_bags_with_nulls_where_datafusion_gives_semi_and_anti_joins():
    tables = {"l": pa.table({"x": [1, 1, 1, 2, 2, 3, None, None]}), "r": pa.table({"x": [1, 2, 2, 2, 4, None]})}

    def bag(sql: str, rewrite: bool) -> list:
        ast = sqlglot.parse_one(sql, read="postgres")
        text = (count_duplicates_in_set_operations(ast) if rewrite else ast).sql(dialect="datafusion")
        return sorted(run_local(text, tables).column(0).to_pylist(), key=lambda v: (v is None, v))

    intersect, except_ = "SELECT x FROM l INTERSECT ALL SELECT x FROM r", "SELECT x FROM l EXCEPT ALL SELECT x FROM r"
    assert bag(intersect, True) == [1, 2, 2, None]
    assert bag(except_, True) == [1, 1, 3, None]
    assert bag(intersect, False) == [1, 1, 1, 2, 2, None, None]  # DataFusion 55 as written: a semi join
    assert bag(except_, False) == [3]  # and an anti join
