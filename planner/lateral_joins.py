"""LATERAL joins of a correlated sub-query ("the first n orders of each customer") as joins of a derived table on
the correlation keys. DataFusion 55 plans no correlated LATERAL sub-query ("Physical plan does not support logical
expression OuterReferenceColumn"), so such a query failed wherever DataFusion ran it, PostgreSQL's own idiom for a
top-n per group included. On the qualified query, in place:

    SELECT c.id, o.total FROM customers AS c LEFT JOIN LATERAL (SELECT o.total FROM orders AS o
        WHERE o.cid = c.id AND o.total > 0 ORDER BY o.day DESC LIMIT 2) AS o ON TRUE
    -> SELECT c.id, o.total FROM customers AS c LEFT JOIN (SELECT "__ranked".total, "__ranked"."__k0" FROM
        (SELECT o.total AS total, o.cid AS "__k0", ROW_NUMBER() OVER (PARTITION BY o.cid ORDER BY o.day DESC)
         AS "__rn" FROM orders AS o WHERE o.total > 0) AS "__ranked" WHERE "__ranked"."__rn" <= 2) AS o
       ON o."__k0" = c.id AND TRUE

Why the answer cannot change: for an outer row with key v, the sub-query's rows are those of ``o`` with
``o.cid = v`` that pass its own conditions, in its order, the first n of them; those are the rows numbered up to n
in the partition of v (ties broken arbitrarily by both, as LIMIT does). The join on the key pairs each outer row
with exactly those rows (none for a NULL key, which ``=`` matches with nothing in either form); a LEFT JOIN keeps
an outer row without any, as LEFT JOIN LATERAL does, and a CROSS or inner one drops it. Conditions: a plain SELECT
from one table (no GROUP BY, aggregate, window, DISTINCT, OFFSET or nested sub-query) whose outputs are named and
read only its own table, correlated only by ``inner column = outer column`` conjuncts of its WHERE over the
inputs before it. Without a LIMIT it is a derived table of its rows with the keys.
"""

from __future__ import annotations

from sqlglot import exp

from planner.top_one_subqueries import BLOCKING, from_clause, plain_single_table, reads_outside, split_correlation


def decorrelate_lateral_joins(ast: exp.Expression) -> int:
    """Rewrite every LATERAL join the module docstring admits, in place; how many."""
    rewritten = 0
    for select in list(ast.find_all(exp.Select)):
        for index, join in enumerate(select.args.get("joins") or []):
            if isinstance(join.this, exp.Lateral) and _rewrite(select, index, join):
                rewritten += 1
    return rewritten


def _rewrite(outer: exp.Select, index: int, join: exp.Join) -> bool:
    lateral = join.this
    query = lateral.this
    inner = query.this if isinstance(query, exp.Subquery) else query
    alias = lateral.args.get("alias") or (query.args.get("alias") if isinstance(query, exp.Subquery) else None)
    if not isinstance(inner, exp.Select) or alias is None or alias.columns or not _plain(inner):
        return False
    if join.side not in ("", "LEFT") or join.args.get("using"):
        return False
    table = from_clause(inner).this
    own = table.alias_or_name
    before = [from_clause(outer).this, *(j.this for j in (outer.args.get("joins") or [])[:index])]
    keys, local = split_correlation(inner.args.get("where"), own, {s.alias_or_name for s in before})
    if not keys or any(reads_outside(node, own) for node in [*local, *inner.expressions, inner.args.get("order")]
                       if node is not None):
        return False
    outputs = [exp.alias_(o.unalias().copy(), o.alias_or_name, quoted=True) for o in inner.expressions]
    key_outputs = [exp.alias_(k.copy(), f"__k{i}", quoted=True) for i, (k, _) in enumerate(keys)]
    rows = exp.select(*outputs, *key_outputs).from_(table.copy())
    if local:
        rows = rows.where(exp.and_(*[c.copy() for c in local]))
    limit = inner.args.get("limit")
    if limit is not None:
        rows = _first_rows(rows, keys, inner.args.get("order"), limit.expression, len(outputs))
    name = alias.this.copy()
    on = [exp.EQ(this=exp.Column(this=exp.to_identifier(f"__k{i}", quoted=True), table=name.copy()),
                 expression=outer_key.copy()) for i, (_, outer_key) in enumerate(keys)]
    join.set("this", exp.Subquery(this=rows, alias=exp.TableAlias(this=name)))
    join.set("on", exp.and_(*on, *([join.args["on"]] if join.args.get("on") is not None else [])))
    join.set("kind", None if join.side == "LEFT" else "INNER")
    return True


def _plain(inner: exp.Select) -> bool:
    """One table, named outputs that group, rank or nest nothing, a literal LIMIT if any."""
    if not plain_single_table(inner):
        return False
    if any(isinstance(o, exp.Star) or not o.alias_or_name or o.find(*BLOCKING) for o in inner.expressions):
        return False
    limit = inner.args.get("limit")
    return limit is None or (isinstance(limit.expression, exp.Literal) and limit.expression.is_int)


def _first_rows(rows: exp.Select, keys: list, order: exp.Order | None, count: exp.Expression,
                width: int) -> exp.Select:
    """``rows`` numbered per key in ``order`` and kept up to ``count`` (the numbering not among the outputs)."""
    window = exp.Window(this=exp.RowNumber(), partition_by=[k.copy() for k, _ in keys],
                        order=order.copy() if order is not None else None)
    ranked = rows.select(exp.alias_(window, "__rn", quoted=True), copy=False)
    names = [e.alias_or_name for e in ranked.expressions[: width + len(keys)]]
    return exp.select(*[exp.column(n, "__ranked", quoted=True) for n in names]).from_(
        exp.alias_(exp.Subquery(this=ranked), "__ranked", quoted=True, table=True)).where(
        exp.LTE(this=exp.column("__rn", "__ranked", quoted=True), expression=count.copy()))
