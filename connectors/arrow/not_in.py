"""A constant NOT IN a sub-query, written as the NULL-aware NOT EXISTS it means, in every SQL text DataFusion runs.

DataFusion 55 keeps every row of ``WHERE NOT 12.5 IN (SELECT amt FROM t2)`` when the sub-query holds a NULL and no
12.5, where SQL keeps none (the IN is NULL there, so the NOT is NULL too); with a column on the left it answers
right (fuzz seed 9869604 #1596: 150 rows, want 0; PostgreSQL and DuckDB keep none; ``tests/test_not_in.py`` keeps
the defect's own check). In a WHERE, reached through AND and OR only, a NULL rejects the row as FALSE does, so

    NOT c IN (SELECT x ...)  ->  NOT EXISTS (SELECT 1 FROM (SELECT x ...) AS "__not_in"("v")
                                             WHERE "__not_in"."v" = c OR "__not_in"."v" IS NULL OR c IS NULL)

keeps the same rows: a match or a NULL in the sub-query (or a NULL c against a sub-query with rows) rejects, an
empty sub-query keeps. Only a constant c and an uncorrelated sub-query are rewritten so (its columns all qualified
by relations of its own).

A correlated ``NOT x IN (SELECT v FROM t WHERE t.k = outer.k ...)`` fails to plan in DataFusion 55 ("null_aware
anti join only supports single column join key, got 2 columns"); a plain one (no grouping, DISTINCT, LIMIT or
ORDER BY) is written the same way with the match merged into its own WHERE, ``NOT EXISTS (SELECT 1 FROM t WHERE
t.k = outer.k ... AND (v = x OR v IS NULL OR x IS NULL))``: DataFusion runs a correlation only in the sub-query's
own WHERE, not inside a derived table.
"""

from __future__ import annotations

from sqlglot import exp

from connectors.arrow.outer_joins import nodes

ALIAS, COLUMN = "__not_in", "v"


def null_aware_not_in(expression: exp.Expression) -> exp.Expression:
    """``expression`` with each constant ``NOT c IN (<uncorrelated sub-query>)``, and each ``NOT x IN (<plain
    correlated sub-query>)``, reached from a WHERE through AND/OR written as the NULL-aware NOT EXISTS above.
    Changes ``expression`` in place (the generator's copy).

        >>> import sqlglot
        >>> q = "SELECT a.id FROM a WHERE a.k > 1 AND NOT 12.5 IN (SELECT b.x FROM b)"
        >>> null_aware_not_in(sqlglot.parse_one(q)).sql().split(" AND ")[1][:58]
        'NOT EXISTS(SELECT 1 FROM (SELECT b.x FROM b) AS "__not_in"'
    """
    for select in [n for n in nodes(expression) if isinstance(n, exp.Select)]:
        where = select.args.get("where")
        if where is not None:
            _rewrite(where.this)
    return expression


def _rewrite(node: exp.Expression) -> None:
    if isinstance(node, exp.And | exp.Or):
        _rewrite(node.left)
        _rewrite(node.right)
    elif isinstance(node, exp.Paren):
        _rewrite(node.this)
    elif isinstance(node, exp.Not) and isinstance(inner := node.this.unnest(), exp.In):
        if _constant_not_in(inner):
            node.replace(_not_exists(inner.this, inner.args["query"]))
        elif (body := _correlated_plain(inner)) is not None:
            node.replace(_merged_not_exists(inner.this, body))


#: what a correlated sub-query must not have for its WHERE to take the NULL-aware match (``_merged_not_exists``)
_NOT_PLAIN = ("group", "having", "qualify", "distinct", "limit", "offset", "with", "with_", "laterals", "order")


def _correlated_plain(test: exp.In) -> exp.Select | None:
    """The sub-query of ``NOT x IN (<sub-query>)`` when it is a plain one-output SELECT that reads the outer query
    (DataFusion 55 plans a NULL-aware anti join on one key only: "null_aware anti join only supports single
    column join key, got 2 columns")."""
    query = test.args.get("query")
    body = query.this if isinstance(query, exp.Subquery) else query
    if test.args.get("negate") or not isinstance(body, exp.Select) or len(body.expressions) != 1:
        return None
    output = body.expressions[0].unalias()
    if isinstance(output, exp.Star) or output.find(exp.AggFunc, exp.Window, exp.Select) or any(
            body.args.get(k) for k in _NOT_PLAIN) or (body.args.get("from") or body.args.get("from_")) is None:
        return None
    if body.args.get("where") is not None and body.args["where"].find(exp.Select):
        return None
    own = {r.alias_or_name for r in body.find_all(exp.Table, exp.Subquery) if r.alias_or_name}
    columns, tested = list(body.find_all(exp.Column)), list(test.this.find_all(exp.Column))
    if any(not c.table for c in columns + tested) or any(c.table in own for c in tested):
        return None  # moved into the sub-query, an unqualified or shadowed column would read the wrong table
    return body if any(c.table not in own for c in columns) else None


def _merged_not_exists(value: exp.Expression, body: exp.Select) -> exp.Expression:
    """``NOT EXISTS (SELECT 1 FROM <its tables> WHERE <its WHERE> AND (v = x OR v IS NULL OR x IS NULL))``."""
    probe = body.copy()
    item = probe.expressions[0].unalias()
    match = exp.Paren(this=exp.or_(exp.EQ(this=item.copy(), expression=value.copy()),
                                   exp.Is(this=item.copy(), expression=exp.Null()),
                                   exp.Is(this=value.copy(), expression=exp.Null())))
    where = probe.args.get("where")
    probe.set("where", exp.Where(this=exp.and_(*([where.this] if where is not None else []), match)))
    probe.set("expressions", [exp.Literal.number(1)])
    return exp.Not(this=exp.Exists(this=probe))


def _constant_not_in(test: exp.In) -> bool:
    query = test.args.get("query")
    if query is None or test.args.get("negate") or test.this.find(exp.Column, exp.Select, exp.Placeholder):
        return False
    body = query.this if isinstance(query, exp.Subquery) else query
    if not isinstance(body, exp.Select) or len(body.expressions) != 1:
        return False
    own = {r.alias_or_name for r in body.find_all(exp.Table, exp.Subquery) if r.alias_or_name}
    return all(c.table in own for c in body.find_all(exp.Column))  # uncorrelated, every column qualified


def _not_exists(value: exp.Expression, query: exp.Expression) -> exp.Expression:
    body = query.this if isinstance(query, exp.Subquery) else query
    item = exp.column(COLUMN, table=ALIAS, quoted=True)
    source = exp.Subquery(this=body.copy(), alias=exp.TableAlias(
        this=exp.to_identifier(ALIAS, quoted=True), columns=[exp.to_identifier(COLUMN, quoted=True)]))
    match = exp.or_(exp.EQ(this=item, expression=value.copy()), exp.Is(this=item.copy(), expression=exp.Null()),
                    exp.Is(this=value.copy(), expression=exp.Null()))
    return exp.Not(this=exp.Exists(this=exp.select("1").from_(source).where(match)))
