"""A later branch of a set operation that removes duplicates, read through ``SELECT *``, in every SQL text
DataFusion runs.

DataFusion 55 fails to plan ``SELECT s, 1 AS c FROM t WHERE FALSE UNION ALL SELECT DISTINCT s, 2 AS d FROM u``
("Optimizer rule 'optimize_projections' failed ... No field named c"): once the empty first branch is dropped, the
set operation is replaced by its other input, and when that input removes duplicates (``SELECT DISTINCT``, or a
nested ``UNION``/``INTERSECT``/``EXCEPT`` without ALL) the outputs keep that branch's names instead of the first
branch's. A branch may become empty through any condition DataFusion folds to FALSE (``x > NULL`` in fuzz seed
7071068 #539: a residual plan over SQLite and CSV). Read through a derived table, the branch keeps the first
branch's names::

    A UNION ALL SELECT DISTINCT ...  ->  A UNION ALL SELECT * FROM (SELECT DISTINCT ...) AS "__branch"

which removes the same duplicates and returns the same rows (DataFusion drops the added projection). The first
branch is never rewritten: its names are the result's. ``tests/test_datafusion_set_branches.py`` keeps the
defect's own check.
"""

from __future__ import annotations

from sqlglot import exp

ALIAS = "__branch"


def read_distinct_branches(expression: exp.Expression) -> exp.Expression:
    """``expression`` with every branch after the first of a set operation that removes duplicates (a
    ``SELECT DISTINCT``, or a set operation without ALL, parenthesized or not) wrapped as ``SELECT * FROM
    (<branch>) AS "__branch"``. Changes ``expression`` in place (the generator's copy) and returns it.

        >>> import sqlglot
        >>> q = "SELECT a FROM t WHERE FALSE UNION ALL SELECT DISTINCT b FROM u"
        >>> read_distinct_branches(sqlglot.parse_one(q)).sql()
        'SELECT a FROM t WHERE FALSE UNION ALL SELECT * FROM (SELECT DISTINCT b FROM u) AS __branch'
    """
    for operation in list(expression.find_all(exp.SetOperation)):
        branch = operation.args.get("expression")
        inner = branch
        while isinstance(inner, exp.Subquery) and not inner.args.get("alias"):
            inner = inner.this
        if _removes_duplicates(inner):  # the branch node itself moves (a nested operation found later stays live)
            derived = exp.Subquery(this=branch, alias=exp.TableAlias(this=exp.to_identifier(ALIAS)))
            operation.set("expression", exp.Select(expressions=[exp.Star()], from_=exp.From(this=derived)))
    return expression


def _removes_duplicates(node: exp.Expression | None) -> bool:
    if isinstance(node, exp.Select):
        return node.args.get("distinct") is not None
    return isinstance(node, exp.SetOperation) and bool(node.args.get("distinct"))
