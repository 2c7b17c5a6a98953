"""Aggregate scalar sub-queries correlated by more than ``=``, as a LEFT JOIN of their values per distinct outer
values.

DataFusion 55 decorrelates ``(SELECT agg(..) FROM t WHERE t.k = outer.k)`` but not a correlation by another
comparison: ``SELECT c.id, (SELECT COUNT(*) FROM orders AS o WHERE o.cid = c.id AND o.day < c.since) FROM customers
AS c`` fails wherever DataFusion runs it ("Physical plan does not support logical expression ScalarSubquery"), on
every placement but MariaDB alone (a sweep against PostgreSQL found it). On the qualified query, in place:

    (SELECT COUNT(*) FROM orders AS o WHERE o.cid = c.id AND o.day < c.since)
    -> CASE WHEN "__agg_0"."__found" IS NULL THEN 0 ELSE "__agg_0"."__v" END
       .. LEFT JOIN (SELECT "__outer"."__c0", "__outer"."__c1", COUNT(*) AS "__v", 1 AS "__found"
                     FROM (SELECT DISTINCT c.id AS "__c0", c.since AS "__c1" FROM customers AS c) AS "__outer",
                          orders AS o
                     WHERE o.cid = "__outer"."__c0" AND o.day < "__outer"."__c1"
                     GROUP BY "__outer"."__c0", "__outer"."__c1") AS "__agg_0"
          ON "__agg_0"."__c0" IS NOT DISTINCT FROM c.id AND "__agg_0"."__c1" IS NOT DISTINCT FROM c.since

Why the answer cannot change: each combination of the outer values the sub-query reads is one group, holding
exactly the inner rows the sub-query would read for an outer row with those values (NULLs compare as in the
sub-query, since they are substituted as values), so the group's aggregate is the sub-query's value; the join keys
are unique per group, so every outer row is kept once. An outer row whose values select no inner row has no group:
its value is the output evaluated over no rows (``COUNT`` 0, every other aggregate NULL), as SQL's is.

Conditions: the sub-query is a plain SELECT (no GROUP BY, HAVING, DISTINCT, LIMIT, window or nested sub-query) of
one output holding an aggregate, over its own tables, reading the outer query only in its WHERE (columns of the
enclosing SELECT's tables; the distinct values come from that table, or from the enclosing FROM and its joins when
they are several tables), with a correlating conjunct other than ``inner column = outer column`` (those
DataFusion decorrelates itself); it stands in the enclosing SELECT's outputs, WHERE or ORDER BY, and that SELECT
neither groups nor ranks. Anything else is left as written.
"""

from __future__ import annotations

from sqlglot import exp

from planner.federation.sqlast import conjuncts
from planner.top_one_subqueries import from_clause

#: clauses that make a sub-query more than a plain aggregate over its tables
_NOT_PLAIN = ("group", "having", "qualify", "distinct", "limit", "offset", "order", "with", "with_", "laterals",
              "windows")


def decorrelate_comparison_aggregates(ast: exp.Expression) -> int:
    """Rewrite every aggregate scalar sub-query that the module docstring admits, in place; how many."""
    rewritten = 0
    for subquery in list(ast.find_all(exp.Subquery)):
        if _rewrite(subquery, f"__agg_{rewritten}"):
            rewritten += 1
    return rewritten


def _own_aliases(inner: exp.Select) -> set[str] | None:
    """The aliases of the sub-query's tables, or None when its FROM holds anything but tables."""
    items = [from_clause(inner).this, *(j.this for j in inner.args.get("joins") or [])]
    if not all(isinstance(i, exp.Table) for i in items):
        return None
    return {i.alias_or_name for i in items}


def _equality_correlation(conjunct: exp.Expression, own: set[str]) -> bool:
    """``inner column = outer column`` (DataFusion decorrelates those)."""
    while isinstance(conjunct, exp.Paren):
        conjunct = conjunct.this
    if not isinstance(conjunct, exp.EQ) or not all(isinstance(s, exp.Column) for s in (conjunct.left,
                                                                                         conjunct.right)):
        return False
    return (conjunct.left.table in own) != (conjunct.right.table in own)


def _joinable(outer: exp.Select) -> bool:
    """``top_one_subqueries.joinable_outer``, not counting the aggregates inside the SELECT's sub-queries."""
    if any(outer.args.get(k) for k in ("group", "having", "qualify")) or not isinstance(from_clause(outer), exp.From):
        return False
    return not any(n.find_ancestor(exp.Select) is outer
                   for output in outer.expressions for n in output.find_all(exp.AggFunc, exp.Window))


def _admitted(subquery: exp.Subquery, inner: exp.Select, outer: exp.Select) -> set[str] | None:
    """The sub-query's own aliases when the module's conditions hold, else None."""
    if isinstance(subquery.parent, exp.In | exp.Any | exp.All | exp.Exists) or not _joinable(outer):
        return None
    child = subquery
    while child.parent is not outer:
        child = child.parent
    if child.arg_key not in ("expressions", "where", "order"):
        return None
    if any(inner.args.get(k) for k in _NOT_PLAIN) or not isinstance(from_clause(inner), exp.From):
        return None
    if len(inner.expressions) != 1 or inner.expressions[0].find(exp.AggFunc) is None:
        return None
    if inner.find(exp.Subquery, exp.Window) is not None:
        return None
    return _own_aliases(inner)


def _outer_columns(inner: exp.Select, own: set[str]) -> list[exp.Column] | None:
    """The outer query's columns the sub-query reads, when only in its WHERE and not only by ``=``; else None."""
    where = inner.args.get("where")
    outside = [c for c in inner.find_all(exp.Column) if c.table not in own]
    if not outside or any(c.find_ancestor(exp.Where) is not where for c in outside):
        return None  # uncorrelated, or reading the outer query elsewhere than in its WHERE
    if all(_equality_correlation(c, own) for c in conjuncts(where) if any(
            col.table not in own for col in c.find_all(exp.Column))):
        return None  # DataFusion decorrelates `=` itself
    return outside


def _rewrite(subquery: exp.Subquery, name: str) -> bool:
    inner = subquery.this
    outer = subquery.parent.find_ancestor(exp.Select) if subquery.parent is not None else None
    if not isinstance(inner, exp.Select) or outer is None:
        return False
    own = _admitted(subquery, inner, outer)
    outside = _outer_columns(inner, own) if own is not None else None
    if outside is None:
        return False
    joins = outer.args.get("joins") or []
    sources = {s.alias_or_name: s for s in [from_clause(outer).this, *(j.this for j in joins)]}
    if not {c.table for c in outside} <= set(sources):
        return False
    columns = sorted({(c.table, c.name) for c in outside})
    values = {key: exp.column(f"__c{i}", "__outer", quoted=True) for i, key in enumerate(columns)}
    distinct = exp.select(*[exp.alias_(exp.column(n, t, quoted=True), f"__c{i}", quoted=True)
                            for i, (t, n) in enumerate(columns)]).distinct()
    if len({t for t, _ in columns}) == 1:  # the values of one table: that table's
        distinct = distinct.from_(sources[columns[0][0]].copy())
    else:  # of several: the rows of the enclosing FROM (a superset of those its WHERE keeps)
        distinct = distinct.from_(from_clause(outer).this.copy())
        distinct.set("joins", [j.copy() for j in joins])
    grouped = inner.copy()
    for column in list(grouped.find_all(exp.Column)):
        if column.table not in own:
            column.replace(values[column.table, column.name].copy())
    output = inner.expressions[0].unalias()
    keys = [values[key].copy() for key in columns]
    grouped.set("expressions", [*keys, exp.alias_(output.copy(), "__v", quoted=True),
                                exp.alias_(exp.Literal.number(1), "__found", quoted=True)])
    grouped.from_(exp.alias_(exp.Subquery(this=distinct), "__outer", quoted=True, table=True), copy=False)
    grouped.set("joins", [exp.Join(this=from_clause(inner).this.copy(), kind="CROSS"),
                          *[j.copy() for j in inner.args.get("joins") or []]])
    grouped.set("group", exp.Group(expressions=[k.copy() for k in keys]))
    on = exp.and_(*[exp.NullSafeEQ(this=exp.column(f"__c{i}", name, quoted=True),
                                   expression=exp.column(n, t, quoted=True))
                    for i, (t, n) in enumerate(columns)])
    outer.append("joins", exp.Join(this=exp.alias_(exp.Subquery(this=grouped), name, quoted=True, table=True),
                                   side="LEFT", on=on))
    subquery.replace(exp.Case(ifs=[exp.If(this=exp.Is(this=exp.column("__found", name, quoted=True),
                                                      expression=exp.null()), true=_over_no_rows(output))],
                              default=exp.column("__v", name, quoted=True)))
    return True


def _over_no_rows(output: exp.Expression) -> exp.Expression:
    """``output`` as SQL evaluates it over no rows: each COUNT 0, each other aggregate NULL."""
    def empty(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Count):
            return exp.Literal.number(0)
        if isinstance(node, exp.AggFunc):
            return exp.null()
        return node
    return output.copy().transform(empty)
