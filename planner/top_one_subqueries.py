"""Correlated top-1 scalar sub-queries ("the latest order of each customer") as a LEFT JOIN of the first row per
key. DataFusion 55 cannot run ``(SELECT .. ORDER BY .. LIMIT 1)`` correlated with the outer query ("Physical plan
does not support logical expression ScalarSubquery"), so such a query failed wherever DataFusion ran it and
answered only where a source took it whole. On the qualified query, in place:

    SELECT c.id, (SELECT o.total FROM orders AS o WHERE o.cid = c.id AND o.total > 0
                  ORDER BY o.day DESC LIMIT 1) AS last_total FROM customers AS c
    -> SELECT c.id, "__top_0"."__v" AS last_total FROM customers AS c
       LEFT JOIN (SELECT "__ranked"."__k0", "__ranked"."__v" FROM (SELECT o.cid AS "__k0", o.total AS "__v",
                  ROW_NUMBER() OVER (PARTITION BY o.cid ORDER BY o.day DESC) AS "__rn" FROM orders AS o
                  WHERE o.total > 0) AS "__ranked" WHERE "__ranked"."__rn" = 1) AS "__top_0"
       ON "__top_0"."__k0" = c.id

Why the answer cannot change: for an outer row with key v, the sub-query's rows are those of ``o`` with
``o.cid = v`` that pass its own conditions, in its order; the first of them is the row numbered 1 in the
partition of v (ties are broken arbitrarily by both, as LIMIT 1 does), and there is at most one such row, so the
LEFT JOIN keeps every outer row once, with NULL where the sub-query returns no row (also for a NULL key, which
``=`` matches with nothing in either form). Conditions checked: a plain SELECT of one output from one table,
``LIMIT 1`` without OFFSET, no GROUP BY, aggregate, window, DISTINCT or nested sub-query; it reads the outer query
only in ``inner column = outer column`` conjuncts of its WHERE, whose outer columns belong to the enclosing
SELECT's own tables; that SELECT has no GROUP BY, aggregate or window (the joined value would have to be grouped),
and the sub-query stands in its outputs, WHERE or ORDER BY (a join condition before the new join could not read it).
"""

from __future__ import annotations

from sqlglot import exp

from planner.federation.sqlast import conjuncts

_BLOCKING = (exp.AggFunc, exp.Window, exp.Subquery, exp.Select)
_NOT_PLAIN = ("offset", "group", "having", "qualify", "distinct", "joins", "with", "laterals")


def decorrelate_top_one_subqueries(ast: exp.Expression) -> int:
    """Rewrite every correlated top-1 scalar sub-query the module docstring admits, in place; how many."""
    rewritten = 0
    for subquery in list(ast.find_all(exp.Subquery)):
        if _rewrite(subquery, rewritten):
            rewritten += 1
    return rewritten


def _rewrite(subquery: exp.Subquery, index: int) -> bool:
    inner = subquery.this
    outer = subquery.parent.find_ancestor(exp.Select) if subquery.parent is not None else None
    if not isinstance(inner, exp.Select) or outer is None or not _top_one(inner) or not _placed_in_outputs(
            subquery, outer):
        return False
    table = from_clause(inner).this
    alias = table.alias_or_name
    sources = [from_clause(outer).this, *(j.this for j in outer.args.get("joins") or [])]
    outer_aliases = {s.alias_or_name for s in sources}
    keys, local = split_correlation(inner.args.get("where"), alias, outer_aliases)
    if not keys or any(reads_outside(node, alias) for node in [*local, inner.expressions[0], inner.args.get("order")]
                       if node is not None):
        return False
    name = f"__top_{index}"
    partition = [inner_key.copy() for inner_key, _ in keys]
    window = exp.Window(this=exp.RowNumber(), partition_by=partition,
                        order=inner.args["order"].copy() if inner.args.get("order") else None)
    ranked = exp.select(*[exp.alias_(k.copy(), f"__k{i}", quoted=True) for i, (k, _) in enumerate(keys)],
                        exp.alias_(_output_value(inner.expressions[0]).copy(), "__v", quoted=True),
                        exp.alias_(window, "__rn", quoted=True)).from_(table.copy())
    if local:
        ranked = ranked.where(exp.and_(*[c.copy() for c in local]))
    columns = [exp.column(f"__k{i}", "__ranked", quoted=True) for i in range(len(keys))]
    first = exp.select(*columns, exp.column("__v", "__ranked", quoted=True)).from_(
        exp.alias_(exp.Subquery(this=ranked), "__ranked", quoted=True, table=True)).where(
        exp.EQ(this=exp.column("__rn", "__ranked", quoted=True), expression=exp.Literal.number(1)))
    on = exp.and_(*[exp.EQ(this=exp.column(f"__k{i}", name, quoted=True), expression=outer_key.copy())
                    for i, (_, outer_key) in enumerate(keys)])
    outer.append("joins", exp.Join(this=exp.alias_(exp.Subquery(this=first), name, quoted=True, table=True),
                                   side="LEFT", on=on))
    subquery.replace(exp.column("__v", name, quoted=True))
    return True


def _top_one(select: exp.Select) -> bool:
    """A plain one-output, one-table SELECT with ``LIMIT 1`` and nothing that groups, ranks or nests."""
    limit = select.args.get("limit")
    if not isinstance(limit, exp.Limit) or not isinstance(limit.expression, exp.Literal) \
            or limit.expression.name != "1":
        return False
    if any(select.args.get(k) for k in _NOT_PLAIN):
        return False
    if len(select.expressions) != 1 or not isinstance(from_clause(select), exp.From):
        return False
    if not isinstance(from_clause(select).this, exp.Table) or isinstance(select.expressions[0], exp.Star):
        return False
    return not any(node.find(*_BLOCKING) for node in (select.expressions[0], select.args.get("order"),
                                                      select.args.get("where")) if node is not None)


def joinable_outer(outer: exp.Select) -> bool:
    """Whether a LEFT JOIN may be added to ``outer`` for a value it computes per row: it has a FROM, and neither
    groups nor ranks (a joined value would have to be grouped)."""
    if any(outer.args.get(k) for k in ("group", "having", "qualify")) or not isinstance(from_clause(outer), exp.From):
        return False
    return not any(node.find(exp.AggFunc, exp.Window) for node in outer.expressions)


def _placed_in_outputs(subquery: exp.Subquery, outer: exp.Select) -> bool:
    """The sub-query stands in ``outer``'s outputs, WHERE or ORDER BY, and ``outer`` neither groups nor ranks."""
    if not joinable_outer(outer):
        return False
    child = subquery
    while child.parent is not outer:
        child = child.parent
    return child.arg_key in ("expressions", "where", "order")


def split_correlation(where: exp.Expression | None, alias: str, outer_aliases: set[str]
                       ) -> tuple[list[tuple[exp.Column, exp.Column]], list[exp.Expression]]:
    """(inner column, outer column) pairs of the ``=`` conjuncts that correlate, and the other conjuncts."""
    keys, local = [], []
    for conjunct in conjuncts(where):
        pair = _correlation(conjunct, alias, outer_aliases)
        if pair:
            keys.append(pair)
        else:
            local.append(conjunct)
    return keys, local


def _correlation(conjunct: exp.Expression, alias: str, outer_aliases: set[str]
                 ) -> tuple[exp.Column, exp.Column] | None:
    while isinstance(conjunct, exp.Paren):
        conjunct = conjunct.this
    if not isinstance(conjunct, exp.EQ) or not all(isinstance(s, exp.Column) for s in (conjunct.left, conjunct.right)):
        return None
    for inner_key, outer_key in ((conjunct.left, conjunct.right), (conjunct.right, conjunct.left)):
        if inner_key.table == alias and outer_key.table != alias and outer_key.table in outer_aliases:
            return inner_key, outer_key
    return None


def reads_outside(node: exp.Expression, alias: str) -> bool:
    """Whether ``node`` reads a column of another table than the sub-query's own (the outer query)."""
    return any(column.table != alias for column in node.find_all(exp.Column))


def from_clause(select: exp.Select) -> exp.From | None:
    """The FROM clause (its key is ``from`` or ``from_`` depending on sqlglot's version)."""
    return select.args.get("from") or select.args.get("from_")


def _output_value(output: exp.Expression) -> exp.Expression:
    return output.this if isinstance(output, exp.Alias) else output
