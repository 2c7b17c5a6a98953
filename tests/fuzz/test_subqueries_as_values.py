"""Sub-queries used as values that DataFusion 55 cannot run answer on every placement what PostgreSQL answers for
the query as written: a correlated top-1 scalar sub-query (``(SELECT .. WHERE inner.k = outer.k ORDER BY .. LIMIT
1)``, "the latest order of each customer"; ``planner.top_one_subqueries``) and EXISTS as an output or sort key
and ``x IN (<sub-query>)`` as a value, correlated or not, and a row-value ``(a, b) IN (<sub-query>)`` in a WHERE
(``planner.exists_outputs``), and LATERAL joins of a correlated sub-query (``planner.lateral_joins``). DataFusion fails both ("Physical plan does not support logical expression
ScalarSubquery" / "Exists"), so before those rewrites such queries failed wherever DataFusion ran them, and the
fuzzer's reference (DataFusion) cannot check them: the reference here is PostgreSQL itself over its copy of the fuzz
tables. Each ORDER BY is a total order, so LIMIT 1 picks one row.
"""

from __future__ import annotations

import psycopg2
import pytest
import sqlglot

from tests.fuzz.data import SOURCES
from tests.fuzz.generator import FuzzQuery, render
from tests.fuzz.postgres_reference import placement_failures, postgres_answer

QUERIES = {
    "in_outputs": "SELECT a.id, (SELECT b.amt FROM t2 AS b WHERE b.k1 = a.id AND b.qty > 2 "
                  "ORDER BY b.dt DESC NULLS LAST, b.id LIMIT 1) AS last_amt FROM t1 AS a WHERE a.g < 3",
    "in_where": "SELECT a.id, a.amt FROM t1 AS a WHERE a.amt > (SELECT b.amt FROM t2 AS b WHERE b.k1 = a.id "
                "ORDER BY b.id DESC LIMIT 1)",
    "in_order_by": "SELECT a.id FROM t1 AS a ORDER BY (SELECT b.qty FROM t2 AS b WHERE a.id = b.k1 "
                   "ORDER BY b.id LIMIT 1) DESC NULLS LAST, a.id LIMIT 25",
    "two_keys_two_subqueries": "SELECT a.id, (SELECT t.s FROM t3 AS t WHERE t.k2 = a.k2 AND t.id = a.id "
                               "ORDER BY t.id LIMIT 1) AS s3, (SELECT upper(b.s) FROM t2 AS b WHERE b.k1 = a.k2 "
                               "ORDER BY b.amt NULLS FIRST, b.id LIMIT 1) AS s2 FROM t1 AS a",
    "over_a_join": "SELECT a.id, d.name, (SELECT b.id FROM t2 AS b WHERE b.g = d.g ORDER BY b.id LIMIT 1) AS first "
                   "FROM t1 AS a JOIN dim AS d ON d.id = a.dk",
    "exists_output": "SELECT a.id, EXISTS (SELECT 1 FROM t2 AS b WHERE b.k1 = a.id AND b.qty > 3) AS has_b, "
                     "NOT EXISTS (SELECT 1 FROM t3 AS t WHERE t.k2 = a.k2 AND t.id = a.id) AS no_t FROM t1 AS a",
    "exists_in_case_and_order": "SELECT a.id, CASE WHEN EXISTS (SELECT 1 FROM t2 AS b WHERE a.id = b.k1) THEN a.amt "
                                "END AS amt FROM t1 AS a ORDER BY EXISTS (SELECT 1 FROM t2 AS b WHERE b.k1 = a.id), a.id",
    "exists_uncorrelated": "SELECT a.id, EXISTS (SELECT 1 FROM t2 AS b WHERE b.qty > 1000) AS none, "
                           "EXISTS (SELECT 1 FROM dim AS d WHERE d.g = 1) AS some FROM t1 AS a",
    # IN as a value is three-valued: NULL where x is NULL or the sub-query holds a NULL and nothing matches
    "in_output": "SELECT a.id, a.k2 IN (SELECT b.k1 FROM t2 AS b) AS in_b, NOT (a.g IN (SELECT b.g FROM t2 AS b "
                 "WHERE b.qty > 3)) AS g_out FROM t1 AS a",
    "in_output_empty_and_order": "SELECT a.id, a.k2 IN (SELECT b.k1 FROM t2 AS b WHERE b.qty > 1000) AS never "
                                 "FROM t1 AS a ORDER BY a.k2 IN (SELECT t.k2 FROM t3 AS t WHERE t.k2 IS NOT NULL) "
                                 "NULLS FIRST, a.id",
    # correlated: per key, the same three values (t2.k1 holds NULLs)
    "in_correlated_output": "SELECT a.id, a.k2 IN (SELECT b.id FROM t2 AS b WHERE b.g = a.g AND b.qty > 3) AS in_g, "
                            "NOT (a.id IN (SELECT b.k1 FROM t2 AS b WHERE b.g = a.g)) AS not_in FROM t1 AS a",
    "in_correlated_order": "SELECT a.id, a.n IN (SELECT d.id FROM dim AS d WHERE d.g = a.g) AS hit FROM t1 AS a "
                           "ORDER BY a.k3 IN (SELECT t.id FROM t3 AS t WHERE t.k2 = a.k2) NULLS FIRST, a.id",
    # correlated lookups without LIMIT (planner.top_one_subqueries._lookup): by a declared key, by a column
    # that happens to be unique, in a WHERE
    "lookup_by_key": "SELECT a.id, (SELECT d.name FROM dim AS d WHERE d.id = a.dk) AS dn FROM t1 AS a",
    "lookup_filtered": "SELECT a.id, (SELECT b.qty FROM t2 AS b WHERE b.id = a.k2 AND b.g = 1) AS q, "
                       "(SELECT t.dt FROM t3 AS t WHERE t.id = a.k3) AS d3 FROM t1 AS a",
    "lookup_in_where": "SELECT a.id FROM t1 AS a WHERE a.amt > (SELECT b.amt FROM t2 AS b WHERE b.id = a.k2)",
    # a correlated NOT IN in a WHERE, NULL-aware (connectors.arrow.not_in): keys, a sub-query holding NULLs, x NULL
    "not_in_correlated": "SELECT a.id FROM t1 AS a WHERE a.dk NOT IN (SELECT d.id FROM dim AS d WHERE d.g = a.g)",
    "not_in_correlated_nulls": "SELECT a.id FROM t1 AS a WHERE a.id NOT IN (SELECT b.k1 FROM t2 AS b WHERE b.g = a.g) "
                               "OR a.id < 5",
    "not_in_correlated_null_value": "SELECT a.id, a.n FROM t1 AS a WHERE a.n NOT IN (SELECT b.qty FROM t2 AS b "
                                    "WHERE b.k1 = a.id) AND a.id < 150",
    # LATERAL joins of a correlated sub-query (planner.lateral_joins): the first n rows per key, every row
    "lateral_top_n": "SELECT a.id, b.id AS bid, b.qty FROM t1 AS a LEFT JOIN LATERAL (SELECT b2.id, b2.qty FROM t2 AS b2 "
                     "WHERE b2.k1 = a.id AND b2.g > 0 ORDER BY b2.id DESC LIMIT 2) AS b ON TRUE WHERE a.id < 80",
    "lateral_cross": "SELECT a.id, x.q FROM t1 AS a CROSS JOIN LATERAL (SELECT b.qty AS q FROM t2 AS b "
                     "WHERE b.k1 = a.id AND b.g > 0) AS x",
    # a row-value IN sub-query in a WHERE, as the EXISTS it means (planner.exists_outputs.tuple_in_as_exists)
    "tuple_in": "SELECT a.id FROM t1 AS a WHERE (a.g, a.n) IN (SELECT b.g, b.qty FROM t2 AS b)",
    "tuple_in_correlated": "SELECT a.id FROM t1 AS a WHERE (g, n) IN (SELECT b.g, b.qty FROM t2 AS b "
                           "WHERE b.k1 >= a.id)",
    "tuple_in_under_or": "SELECT a.id FROM t1 AS a WHERE (a.dk, a.g) IN (SELECT d.id, d.g FROM dim AS d) OR a.id < 3",
    "tuple_in_distinct": "SELECT a.id FROM t1 AS a WHERE (a.g, a.n) IN (SELECT DISTINCT b.g, b.qty FROM t2 AS b "
                         "WHERE b.id < 100)",
    "tuple_in_join": "SELECT a.id FROM t1 AS a JOIN dim AS d ON d.id = a.dk WHERE (d.g, a.g) IN (SELECT b.g, b.g "
                     "FROM t2 AS b JOIN t3 AS t ON t.k2 = b.id)",
    # a row-value NOT IN in a WHERE, as the NULL-aware NOT EXISTS it means: NULLs on both sides, under OR, grouped,
    # correlated, over no rows
    "tuple_not_in": "SELECT a.id FROM t1 AS a WHERE (a.g, a.n) NOT IN (SELECT b.g, b.qty FROM t2 AS b)",
    "tuple_not_in_no_nulls": "SELECT a.id FROM t1 AS a WHERE (a.g, a.n) NOT IN (SELECT b.g, b.qty FROM t2 AS b "
                             "WHERE b.qty IS NOT NULL AND b.g IS NOT NULL)",
    "tuple_not_in_under_or": "SELECT a.id FROM t1 AS a WHERE (a.g, a.dk) NOT IN (SELECT d.g, d.id FROM dim AS d) "
                             "OR a.id < 10",
    "tuple_not_in_grouped": "SELECT a.id FROM t1 AS a WHERE (a.g, a.dk) NOT IN (SELECT d.g, MAX(d.id) FROM dim AS d "
                            "GROUP BY d.g) AND a.id > 5",
    "tuple_not_in_correlated": "SELECT a.id FROM t1 AS a WHERE (a.g, a.dk) NOT IN (SELECT d.g, d.id FROM dim AS d "
                               "WHERE d.id < a.k3)",
    # aggregates correlated by more than `=`, as a LEFT JOIN per distinct outer values
    # (planner.correlated_aggregates): COUNT over no rows, an expression of aggregates, several outer tables
    "agg_by_comparison": "SELECT a.id, (SELECT COUNT(*) FROM t2 AS b WHERE b.g = a.g AND b.amt > a.amt) AS n "
                         "FROM t1 AS a",
    "agg_by_comparison_expression": "SELECT a.id, (SELECT COALESCE(SUM(b.qty), -1) + COUNT(b.qty) FROM t2 AS b "
                                    "WHERE b.k1 < a.id AND b.g IS NOT DISTINCT FROM a.g) AS n FROM t1 AS a",
    "agg_by_comparison_in_where": "SELECT a.id FROM t1 AS a WHERE a.amt > (SELECT AVG(b.amt) FROM t2 AS b "
                                  "WHERE b.g = a.g AND b.id < a.id)",
    "agg_by_comparison_joined": "SELECT a.id, (SELECT MAX(b.dt) FROM t2 AS b JOIN t3 AS c ON c.k2 = b.id "
                                "WHERE b.dt < a.dt) AS prev FROM t1 AS a",
    "agg_by_comparison_two_outer_tables": "SELECT a.id, d.name, (SELECT COUNT(*) FROM t2 AS b WHERE b.g = d.g AND "
                                          "b.qty > a.n) AS n FROM t1 AS a JOIN dim AS d ON d.id = a.dk",
    "agg_by_null_test": "SELECT a.id, (SELECT COUNT(*) FROM t2 AS b WHERE a.n IS NULL OR b.qty < a.n) AS n "
                        "FROM t1 AS a",
    # FETCH FIRST n ROWS WITH TIES, as a RANK() <= n filter (planner.planner._with_ties): aliases and ordinals as
    # keys, NULLs first, grouped, in a derived table, over a join
    "with_ties": "SELECT a.id, a.g FROM t1 AS a ORDER BY a.g FETCH FIRST 3 ROWS WITH TIES",
    "with_ties_alias_nulls": "SELECT a.id, a.n AS x FROM t1 AS a WHERE a.id < 150 ORDER BY x DESC NULLS LAST "
                             "FETCH FIRST 5 ROWS WITH TIES",
    "with_ties_grouped_ordinal": "SELECT a.g, COUNT(*) AS n FROM t1 AS a GROUP BY a.g ORDER BY 2 DESC "
                                 "FETCH FIRST 2 ROWS WITH TIES",
    "with_ties_derived": "SELECT x.id FROM (SELECT a.id, a.dk FROM t1 AS a ORDER BY a.dk NULLS FIRST "
                         "FETCH FIRST 1 ROW WITH TIES) AS x",
    "with_ties_joined": "SELECT a.id, d.g FROM t1 AS a JOIN dim AS d ON d.id = a.dk ORDER BY d.g, a.dk "
                        "FETCH NEXT 4 ROWS WITH TIES",
    "tuple_not_in_empty": "SELECT a.id FROM t1 AS a WHERE (a.g, a.dk) NOT IN (SELECT d.g, d.id FROM dim AS d "
                          "WHERE d.id > 100)",
}
ORDERED = {"in_order_by", "exists_in_case_and_order", "in_output_empty_and_order", "in_correlated_order"}


@pytest.mark.parametrize("name", list(QUERIES))
def test_subquery_as_value_answers_as_postgresql_on_every_placement(fuzz_session, name):
    want, failures = placement_failures(fuzz_session, QUERIES[name], ordered=name in ORDERED, shifts=(0,))
    assert want.num_rows > 0
    assert not failures, "\n".join(failures)


def test_a_lookup_by_a_declared_key_joins_its_rows_and_others_count_them():
    """Keys that cover the table's key: a plain LEFT JOIN of its rows. Otherwise the first row per key and the
    key's row count, and a value that fails where the count is over one."""
    from planner.top_one_subqueries import TOO_MANY_ROWS, decorrelate_top_one_subqueries

    sql = 'SELECT "a"."id", (SELECT "d"."name" FROM "dim" AS "d" WHERE "d"."id" = "a"."dk") AS "n" FROM "t1" AS "a"'
    keyed = sqlglot.parse_one(sql, read="postgres")
    assert decorrelate_top_one_subqueries(keyed, lambda table, columns: columns == {"id"}) == 1
    assert 'LEFT JOIN (SELECT "d"."id" AS "__k0", "d"."name" AS "__v" FROM "dim" AS "d")' in keyed.sql("postgres")
    counted = sqlglot.parse_one(sql, read="postgres")
    assert decorrelate_top_one_subqueries(counted) == 1
    assert "COUNT(*) OVER (PARTITION BY" in counted.sql("postgres") and TOO_MANY_ROWS in counted.sql("postgres")


def test_the_rewrite_reads_the_first_row_per_key():
    """The plan of a file-source query holds the ranked derived table, and no scalar sub-query is left."""
    from planner.top_one_subqueries import decorrelate_top_one_subqueries

    ast = sqlglot.parse_one('SELECT "a"."id" AS "id", (SELECT "b"."v" AS "v" FROM "t2" AS "b" WHERE ("b"."k" = "a"."id")'
                            ' AND ("b"."q" > 2) ORDER BY "b"."d" DESC LIMIT 1) AS "x" FROM "t1" AS "a"', read="postgres")
    assert decorrelate_top_one_subqueries(ast) == 1
    sql = ast.sql(dialect="postgres")
    assert "ROW_NUMBER() OVER (PARTITION BY \"b\".\"k\" ORDER BY \"b\".\"d\" DESC)" in sql
    assert 'WHERE "b"."q" > 2' in sql and '"__ranked"."__rn" = 1' in sql
    assert 'LEFT JOIN' in sql and '"__top_0"."__k0" = "a"."id"' in sql


@pytest.mark.parametrize("sql", [
    # a correlation that is not an equality, an OFFSET, an aggregating outer query: left as written
    'SELECT "a"."id", (SELECT "b"."v" FROM "t2" AS "b" WHERE "b"."k" > "a"."id" ORDER BY "b"."v" LIMIT 1) FROM "t1" AS "a"',
    'SELECT "a"."id", (SELECT "b"."v" FROM "t2" AS "b" WHERE "b"."k" = "a"."id" ORDER BY "b"."v" LIMIT 1 OFFSET 1) '
    'FROM "t1" AS "a"',
    'SELECT "a"."g", count(*), (SELECT "b"."v" FROM "t2" AS "b" WHERE "b"."k" = "a"."g" ORDER BY "b"."v" LIMIT 1) '
    'FROM "t1" AS "a" GROUP BY "a"."g"',
    'SELECT "a"."id", (SELECT max("b"."v") FROM "t2" AS "b" WHERE "b"."k" = "a"."id" LIMIT 1) FROM "t1" AS "a"',
    # a set of rows under IN, not a scalar value
    'SELECT "a"."id" FROM "t1" AS "a" WHERE "a"."k" IN (SELECT "b"."v" FROM "t2" AS "b" WHERE "b"."k" = "a"."id" '
    'ORDER BY "b"."v" LIMIT 1)',
    'SELECT "a"."id", "a"."k" IN (SELECT "b"."v" FROM "t2" AS "b" WHERE "b"."k" = "a"."id") FROM "t1" AS "a"',
    # LATERAL: an aggregate (one row per outer row, also where no row matches), an OFFSET, a correlation not `=`
    'SELECT "a"."id", "x"."c" FROM "t1" AS "a" CROSS JOIN LATERAL (SELECT COUNT(*) AS "c" FROM "t2" AS "b" '
    'WHERE "b"."k1" = "a"."id") AS "x"',
    'SELECT "a"."id", "x"."v" FROM "t1" AS "a" LEFT JOIN LATERAL (SELECT "b"."v" AS "v" FROM "t2" AS "b" '
    'WHERE "b"."k1" = "a"."id" ORDER BY "b"."v" LIMIT 1 OFFSET 1) AS "x" ON TRUE',
    'SELECT "a"."id", "x"."v" FROM "t1" AS "a" LEFT JOIN LATERAL (SELECT "b"."v" AS "v" FROM "t2" AS "b" '
    'WHERE "b"."k1" > "a"."id" LIMIT 1) AS "x" ON TRUE',
])
def test_shapes_outside_the_rules_are_left_as_written(sql):
    """Neither the top-1 and lookup rewrite nor the LATERAL one touches these."""
    from planner.lateral_joins import decorrelate_lateral_joins
    from planner.top_one_subqueries import decorrelate_top_one_subqueries

    ast = sqlglot.parse_one(sql, read="postgres")
    before = ast.sql()
    assert decorrelate_top_one_subqueries(ast) == 0 and decorrelate_lateral_joins(ast) == 0
    assert ast.sql() == before


@pytest.mark.parametrize("source", SOURCES)
def test_a_lookup_that_meets_several_rows_fails_as_sql_does(fuzz_session, source):
    """t2.k1 repeats: PostgreSQL refuses the query as written; the gateway fails wherever it runs the lookup
    (MariaDB and SQLite would cast the failure's text to 0, so the lookup runs in DataFusion there)."""
    sql = "SELECT a.id, (SELECT b.qty FROM t2 AS b WHERE b.k1 = a.id) AS q FROM t1 AS a"
    with pytest.raises(psycopg2.Error, match="more than one row"):
        postgres_answer(fuzz_session.sources.world, sql)
    placement = {"a": source, "b": source}
    text = render(FuzzQuery(sqlglot.parse_one(sql, read="postgres"), placement).ast, placement,
                  fuzz_session.sources.names)
    with pytest.raises(Exception, match="more than one row returned by a sub-query"):
        fuzz_session.gateway.execute(text).reader.read_all()



@pytest.mark.parametrize("sql", [
    # correlated by `=` only: DataFusion decorrelates it itself
    'SELECT "a"."id", (SELECT COUNT(*) FROM "t2" AS "b" WHERE "b"."g" = "a"."g") FROM "t1" AS "a"',
    # the sub-query groups; the enclosing SELECT groups; the outer query read outside the WHERE
    'SELECT "a"."id", (SELECT COUNT(*) FROM "t2" AS "b" WHERE "b"."amt" > "a"."amt" GROUP BY "b"."g") '
    'FROM "t1" AS "a"',
    'SELECT "a"."g", (SELECT COUNT(*) FROM "t2" AS "b" WHERE "b"."amt" > MAX("a"."amt")) FROM "t1" AS "a" '
    'GROUP BY "a"."g"',
    'SELECT "a"."id", (SELECT SUM("b"."qty" * "a"."n") FROM "t2" AS "b" WHERE "b"."amt" > "a"."amt") '
    'FROM "t1" AS "a"',
    # no aggregate: a lookup (top_one_subqueries' domain)
    'SELECT "a"."id", (SELECT "b"."qty" FROM "t2" AS "b" WHERE "b"."amt" > "a"."amt") FROM "t1" AS "a"',
])
def test_aggregates_outside_the_comparison_rule_are_left_as_written(sql):
    from planner.correlated_aggregates import decorrelate_comparison_aggregates

    ast = sqlglot.parse_one(sql, read="postgres")
    before = ast.sql()
    assert decorrelate_comparison_aggregates(ast) == 0
    assert ast.sql() == before
