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

A correlated lookup without LIMIT (``(SELECT d.name FROM dim AS d WHERE d.id = a.dk)``, "the name of each row's
key") fails in DataFusion 55 too ("Correlated scalar subquery must be aggregated to return at most one row"). Under
the same conditions, without ORDER BY, it becomes a LEFT JOIN of its rows on the keys when they cover the key its
table's source declares (at most one row per outer row: exact). Otherwise SQL's answer is an error wherever an
outer row meets several rows, so it joins the first row per key with the key's row count (``COUNT(*) OVER
(PARTITION BY ..)``), and the value is ``CASE WHEN n > 1 THEN <a cast that fails, naming the count> ELSE v END``:
the cast runs only on the rows that meet several (a CASE branch runs on the rows it selects), and is never pushed
where such a cast gives 0 (``Capabilities.failing_casts``).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from planner.federation.sqlast import conjuncts
from planner.pushdown import MUST_FAIL

#: what a plain sub-query's outputs, WHERE and ORDER BY may not hold
BLOCKING = (exp.AggFunc, exp.Window, exp.Subquery, exp.Select)
_NOT_PLAIN = ("offset", "group", "having", "qualify", "distinct", "joins", "with", "with_", "laterals")


#: ``unique(table, columns)``: whether ``columns`` of the (resolved) table node cover a key its source declares
UniqueKey = Callable[[exp.Table, set[str]], bool]

#: the message a lookup that matches several rows fails with, as SQL requires (PostgreSQL: "more than one row
#: returned by a subquery used as an expression"), raised by a cast that cannot succeed
TOO_MANY_ROWS = "more than one row returned by a sub-query used as an expression, rows: "


def decorrelate_top_one_subqueries(ast: exp.Expression, unique: UniqueKey = lambda table, columns: False) -> int:
    """Rewrite every correlated top-1 scalar sub-query, and every correlated lookup, that the module docstring
    admits, in place; how many. ``unique`` tells when a lookup's keys cover a key of its table."""
    rewritten = 0
    for subquery in list(ast.find_all(exp.Subquery)):
        if _rewrite(subquery, rewritten, unique):
            rewritten += 1
    return rewritten


def _rewrite(subquery: exp.Subquery, index: int, unique: UniqueKey) -> bool:
    inner = subquery.this
    outer = subquery.parent.find_ancestor(exp.Select) if subquery.parent is not None else None
    if not isinstance(inner, exp.Select) or outer is None or not _placed_in_outputs(subquery, outer):
        return False
    if isinstance(subquery.parent, exp.In | exp.Any | exp.All | exp.Exists):
        return False  # a set of rows, not a scalar value
    if not _top_one(inner):
        return _lookup(subquery, inner, outer, index, unique)
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


def _lookup(subquery: exp.Subquery, inner: exp.Select, outer: exp.Select, index: int, unique: UniqueKey) -> bool:
    """A lookup ``(SELECT o.v FROM t AS o WHERE o.k = outer.k AND <local>)``, without LIMIT or ORDER BY, as a LEFT
    JOIN of its rows on the keys: exact when the keys cover a key of ``t``. Otherwise it joins the first row per
    key with the key's row count, and the value fails as SQL's does where an outer row meets several rows."""
    if inner.args.get("limit") or inner.args.get("order") or not _plain_one_output(inner):
        return False
    table = from_clause(inner).this
    alias = table.alias_or_name
    sources = [from_clause(outer).this, *(j.this for j in outer.args.get("joins") or [])]
    keys, local = split_correlation(inner.args.get("where"), alias, {s.alias_or_name for s in sources})
    if not keys or any(reads_outside(node, alias) for node in [*local, inner.expressions[0]]):
        return False
    name = f"__lookup_{index}"
    key_outputs = [exp.alias_(k.copy(), f"__k{i}", quoted=True) for i, (k, _) in enumerate(keys)]
    value = exp.alias_(_output_value(inner.expressions[0]).copy(), "__v", quoted=True)
    checked = not unique(table, {k.name for k, _ in keys})
    if checked:
        partition = [k.copy() for k, _ in keys]
        ranked = exp.select(*key_outputs, value, exp.alias_(exp.Window(this=exp.RowNumber(), partition_by=partition),
                                                            "__rn", quoted=True),
                            exp.alias_(exp.Window(this=exp.Count(this=exp.Star()), partition_by=[
                                k.copy() for k in partition]), "__n", quoted=True)).from_(table.copy())
        rows = _where(ranked, local)
        columns = [exp.column(c, "__ranked", quoted=True) for c in [*(f"__k{i}" for i in range(len(keys))), "__v",
                                                                     "__n"]]
        rows = exp.select(*columns).from_(exp.alias_(exp.Subquery(this=rows), "__ranked", quoted=True,
                                                     table=True)).where(
            exp.EQ(this=exp.column("__rn", "__ranked", quoted=True), expression=exp.Literal.number(1)))
    else:
        rows = _where(exp.select(*key_outputs, value).from_(table.copy()), local)
    on = exp.and_(*[exp.EQ(this=exp.column(f"__k{i}", name, quoted=True), expression=outer_key.copy())
                    for i, (_, outer_key) in enumerate(keys)])
    outer.append("joins", exp.Join(this=exp.alias_(exp.Subquery(this=rows), name, quoted=True, table=True),
                                   side="LEFT", on=on))
    found = exp.column("__v", name, quoted=True)
    subquery.replace(_one_row_or_fail(found, exp.column("__n", name, quoted=True)) if checked else found)
    return True


def _where(select: exp.Select, local: list[exp.Expression]) -> exp.Select:
    return select.where(exp.and_(*[c.copy() for c in local])) if local else select


def _one_row_or_fail(value: exp.Expression, rows: exp.Expression) -> exp.Expression:
    """``value`` where the key had one row; where it had several, a cast that fails naming the count (evaluated
    only there: a CASE branch runs on the rows it selects)."""
    message = exp.Concat(expressions=[exp.Literal.string(TOO_MANY_ROWS),
                                      exp.cast(rows.copy(), exp.DataType.build("TEXT"))])
    cast = exp.cast(message, exp.DataType.build("BIGINT"))
    cast.meta[MUST_FAIL] = True  # not pushed where such a cast gives 0
    failure = exp.Case(ifs=[exp.If(this=exp.EQ(this=cast, expression=exp.Literal.number(0)), true=exp.Null())])
    return exp.Paren(this=exp.Case(ifs=[exp.If(this=exp.GT(this=rows, expression=exp.Literal.number(1)),
                                               true=failure)], default=value))


def plain_single_table(select: exp.Select) -> bool:
    """A SELECT from one table that neither groups, removes duplicates, skips rows nor nests a sub-query, window
    or aggregate in its WHERE or ORDER BY (its outputs are the caller's to check)."""
    if any(select.args.get(k) for k in _NOT_PLAIN) or not isinstance(from_clause(select), exp.From):
        return False
    if not isinstance(from_clause(select).this, exp.Table):
        return False
    return not any(node.find(*BLOCKING) for node in (select.args.get("where"), select.args.get("order"))
                   if node is not None)


def _plain_one_output(select: exp.Select) -> bool:
    """One output from one table, nothing that groups, ranks or nests."""
    return plain_single_table(select) and len(select.expressions) == 1 and not isinstance(
        select.expressions[0], exp.Star) and not select.expressions[0].find(*BLOCKING)


def _top_one(select: exp.Select) -> bool:
    """A plain one-output, one-table SELECT with ``LIMIT 1`` and nothing that groups, ranks or nests."""
    limit = select.args.get("limit")
    one = isinstance(limit, exp.Limit) and isinstance(limit.expression, exp.Literal) and limit.expression.name == "1"
    return one and _plain_one_output(select)


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
