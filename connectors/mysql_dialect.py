"""The sqlglot dialect of every SQL text a MySQL or MariaDB source runs: MySQL's, with the result columns that
connectorx cannot read written so that it can. Registered in sqlglot as ``"mysqlsource"`` (``MYSQL_SOURCE_DIALECT``).

connectorx types each result column from the server's column metadata and trusts it:

- A bare ``NULL`` output has type ``MYSQL_TYPE_NULL``, which it does not implement ("not implemented:
  MYSQL_TYPE_NULL": ``SELECT b.id, NULL AS z FROM t2`` failed on MariaDB alone). Written ``CAST(NULL AS CHAR)``: a
  text column of NULLs, which the scan conforms to the planned type (``connectors.arrow.streams.conform_batch``).
  Only the statement's own outputs: inside a set operation or a derived table MariaDB types the NULL from the
  other branches or the use.
- MariaDB marks a literal output of a derived table or CTE NOT NULL (``(SELECT id, 1 AS k FROM dim) AS e``) and
  keeps the mark when an outer join null-extends it, so the NULLs that join adds fail the read ("Could not
  retrieve `i32`: Couldn't convert the value `Null`"). Written ``NULLIF(1, NULL)`` (the same value, which MariaDB
  marks nullable) in every derived table and CTE of a statement that has an outer join.

Found by a sweep of everyday SQL against PostgreSQL (``tests/fuzz/test_everyday.py`` keeps the queries).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.mysql import MySQL


class MySQLSource(MySQL):
    """MySQL's SQL, with outputs connectorx can read (above)."""

    class Generator(MySQL.Generator):
        def preprocess(self, expression: exp.Expression) -> exp.Expression:
            """MySQL's preprocessing, then ``readable_outputs`` (on the generator's copy of the tree)."""
            return readable_outputs(super().preprocess(expression))


MYSQL_SOURCE_DIALECT = "mysqlsource"


def readable_outputs(expression: exp.Expression) -> exp.Expression:
    """``expression`` with a bare NULL output of its own SELECT written ``CAST(NULL AS CHAR)`` and, when it has
    an outer join, each aliased constant output of its derived tables and CTEs written ``NULLIF(c, NULL)``.
    Changes ``expression`` in place and returns it.

        >>> import sqlglot
        >>> readable_outputs(sqlglot.parse_one("SELECT b.id, NULL AS z FROM t2 AS b")).sql("mysql")
        'SELECT b.id, CAST(NULL AS CHAR) AS z FROM t2 AS b'
        >>> q = "SELECT a.id, e.k FROM t1 AS a LEFT JOIN (SELECT m.id, 1 AS k FROM dim AS m) AS e ON a.dk = e.id"
        >>> readable_outputs(sqlglot.parse_one(q)).sql("mysql").split(" LEFT JOIN ")[1]
        '(SELECT m.id, NULLIF(1, NULL) AS k FROM dim AS m) AS e ON a.dk = e.id'
    """
    if isinstance(expression, exp.Select):
        expression.set("expressions", [_typed_null(o) for o in expression.expressions])
    if any(j.side in ("LEFT", "RIGHT", "FULL") for j in expression.find_all(exp.Join)):
        for node in list(expression.find_all(exp.Subquery, exp.CTE)):
            inner = node.this
            if isinstance(inner, exp.Select):
                inner.set("expressions", [_nullable(o) for o in inner.expressions])
    return expression


def _typed_null(output: exp.Expression) -> exp.Expression:
    if isinstance(output.unalias(), exp.Null):
        value = exp.cast(exp.Null(), exp.DataType.build("CHAR", dialect="mysql"))
        return exp.alias_(value, output.args["alias"].copy()) if isinstance(output, exp.Alias) else value
    return output


def _nullable(output: exp.Expression) -> exp.Expression:
    value = output.unalias()
    if not isinstance(output, exp.Alias) or isinstance(value, exp.Null | exp.Star):
        return output
    if value.find(exp.Column, exp.Select, exp.AggFunc, exp.Window, exp.Star) is not None:
        return output
    return exp.alias_(exp.Nullif(this=value.copy(), expression=exp.Null()), output.args["alias"].copy())
