"""EXISTS used as a value (in the outputs or the ORDER BY, ``SELECT c.id, EXISTS (SELECT 1 FROM orders o WHERE
o.cid = c.id) AS has_orders``) as a LEFT JOIN of the distinct keys. DataFusion 55 runs EXISTS only as a filter
(a semi or anti join, also under OR); as a value it fails ("Physical plan does not support logical expression
Exists"), so such a query failed wherever DataFusion ran it. On the qualified query, in place:

    SELECT c.id, EXISTS (SELECT 1 FROM orders AS o WHERE o.cid = c.id AND o.total > 0) AS has FROM customers AS c
    -> SELECT c.id, ("__exists_0"."__k0" IS NOT NULL) AS has FROM customers AS c
       LEFT JOIN (SELECT DISTINCT o.cid AS "__k0" FROM orders AS o WHERE o.total > 0) AS "__exists_0"
       ON "__exists_0"."__k0" = c.id

Why the answer cannot change: an outer row with key v matches the distinct key v at most once (so the join keeps
every outer row once), and does so exactly when some row of ``o`` with ``o.cid = v`` passes the sub-query's own
conditions: when EXISTS is TRUE. A NULL key matches nothing in either form (FALSE, never NULL, as EXISTS). An
uncorrelated EXISTS becomes ``((SELECT count(*) FROM (<its query> LIMIT 1)) > 0)``, a scalar sub-query DataFusion
runs. Conditions for a correlated one: a plain SELECT from one table (no GROUP BY, aggregate, window, DISTINCT,
LIMIT or nested sub-query) that reads the outer query only in ``inner column = outer column`` conjuncts of its
WHERE, over the enclosing SELECT's own tables; that SELECT does not group. Under WHERE, EXISTS stays as written.

An uncorrelated ``x IN (q)`` used as a value fails the same way ("InSubquery") and gets SQL's three values from a
LEFT JOIN of q's distinct non-NULL values and a CROSS JOIN of its row and non-NULL counts (``_in_as_join``); a
correlated one, under EXISTS's conditions, from LEFT JOINs of the distinct (key, value) pairs and of each key's
counts (``_correlated_in_as_join``).

A row-value ``(a, b) IN (SELECT x, y ...)`` fails to plan in DataFusion 55 ("Too many columns! The subquery should
only return one column"). In a WHERE, reached through AND and OR only (where a NULL rejects the row as FALSE
does), it becomes the EXISTS it means (``tuple_in_as_exists``): ``EXISTS (SELECT 1 FROM .. WHERE <its WHERE> AND
x = a AND y = b)`` for a plain sub-query, correlated or not; ``EXISTS (SELECT 1 FROM (<sub-query>) AS t WHERE
t.__c0 = a AND t.__c1 = b)`` for an uncorrelated one that groups, removes duplicates or limits. ``(a, b) NOT IN
(..)`` there becomes ``NOT EXISTS`` of the rows that do not differ from it: ``(x = a OR x IS NULL OR a IS NULL) AND
(y = b OR ..)`` (SQL: ``(a, b) <> (x, y)`` is TRUE exactly when one of ``a <> x``, ``b <> y`` is; NOT IN is TRUE
exactly when that holds for every row). One used as a value keeps SQL's NULL answers only as written and is left so.
"""

from __future__ import annotations

from sqlglot import exp

from planner.top_one_subqueries import from_clause, joinable_outer, reads_outside, split_correlation

_NOT_PLAIN = ("group", "having", "qualify", "distinct", "joins", "with", "with_", "laterals", "limit", "offset")


def exists_as_values(ast: exp.Expression) -> int:
    """Rewrite every EXISTS and every ``x IN (<sub-query>)`` in outputs or ORDER BY that the module docstring
    admits, in place; how many."""
    rewritten = 0
    for membership in list(ast.find_all(exp.In)):
        outer = membership.find_ancestor(exp.Select)
        if outer is not None and _as_value(membership, outer) and _in_as_join(membership, outer, rewritten):
            rewritten += 1
    for exists in list(ast.find_all(exp.Exists)):
        outer = exists.find_ancestor(exp.Select)
        inner = exists.this
        if outer is None or not isinstance(inner, exp.Select) or not _as_value(exists, outer):
            continue
        if _uncorrelated(inner):
            _as_count(exists, inner)
            rewritten += 1
        elif _as_join(exists, inner, outer, f"__exists_{rewritten}"):
            rewritten += 1
    return rewritten


def _in_as_join(membership: exp.In, outer: exp.Select, index: int) -> bool:
    """``x IN (q)`` -> SQL's three values from a LEFT JOIN of q's distinct non-NULL values and a CROSS JOIN of its
    counts: TRUE on a match; else FALSE when q is empty; else NULL when x is NULL or q holds a NULL; else FALSE."""
    query = membership.args.get("query")
    inner = query.unnest() if isinstance(query, exp.Subquery) else query
    if not isinstance(inner, exp.Select) or len(inner.expressions) != 1 or isinstance(inner.expressions[0], exp.Star):
        return False
    if membership.this.find(exp.Rand, exp.Subquery, exp.Select, exp.AggFunc, exp.Window) or not joinable_outer(outer):
        return False
    if not _uncorrelated(inner):
        return _correlated_in_as_join(membership, inner, outer, index)
    values = inner.copy()
    output = values.expressions[0]
    bare = output.this if isinstance(output, exp.Alias) else output
    values.set("expressions", [exp.alias_(bare, "__v", quoted=True)])
    value = exp.column("__v", "__q", quoted=True)
    source = exp.alias_(exp.Subquery(this=values), "__q", quoted=True, table=True)
    keys = exp.select(exp.alias_(value.copy(), "__k", quoted=True)).from_(source.copy()).where(
        exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))).distinct()
    counts = exp.select(exp.alias_(exp.Count(this=exp.Star()), "__n", quoted=True),
                        exp.alias_(exp.Count(this=value.copy()), "__nn", quoted=True)).from_(source.copy())
    matched, counted = f"__in_{index}", f"__in_counts_{index}"
    x = membership.this
    outer.append("joins", exp.Join(this=exp.alias_(exp.Subquery(this=keys), matched, quoted=True, table=True),
                                   side="LEFT", on=exp.EQ(this=exp.column("__k", matched, quoted=True),
                                                          expression=x.copy())))
    outer.append("joins", exp.Join(this=exp.alias_(exp.Subquery(this=counts), counted, quoted=True, table=True),
                                   kind="CROSS"))
    empty = exp.EQ(this=exp.column("__n", counted, quoted=True), expression=exp.Literal.number(0))
    membership.replace(exp.Paren(this=_three_values(x, exp.column("__k", matched, quoted=True), counted, empty)))
    return True


def _correlated_in_as_join(membership: exp.In, inner: exp.Select, outer: exp.Select, index: int) -> bool:
    """``x IN (SELECT v FROM t WHERE t.k = outer.k AND <local>)`` -> the same three values per key: a LEFT JOIN
    of the distinct non-NULL (key, value) pairs on key and x, and a LEFT JOIN of each key's row and non-NULL
    counts on key (no counts row: an empty sub-query, FALSE). The sub-query must be plain and read the outer
    query only in ``=`` correlations, as for EXISTS."""
    output = inner.expressions[0].unalias()
    correlated = _correlated_single_table(inner, outer)
    if correlated is None or output.find(exp.AggFunc, exp.Window, exp.Select, exp.Rand):
        return False
    table, keys, local = correlated
    if reads_outside(output, table.alias_or_name):
        return False
    key_outputs = [exp.alias_(k.copy(), f"__k{i}", quoted=True) for i, (k, _) in enumerate(keys)]
    present = exp.Not(this=exp.Is(this=output.copy(), expression=exp.Null()))
    pairs = exp.select(*key_outputs, exp.alias_(output.copy(), "__v", quoted=True)).from_(table.copy()).where(
        exp.and_(*[c.copy() for c in local], present)).distinct()
    counts = exp.select(*[k.copy() for k in key_outputs], exp.alias_(exp.Count(this=exp.Star()), "__n", quoted=True),
                        exp.alias_(exp.Count(this=output.copy()), "__nn", quoted=True)).from_(table.copy()).group_by(
        *[k.copy() for k, _ in keys])
    if local:
        counts = counts.where(exp.and_(*[c.copy() for c in local]))
    matched, counted = f"__in_{index}", f"__in_counts_{index}"

    def on(name: str) -> list[exp.Expression]:
        return [exp.EQ(this=exp.column(f"__k{i}", name, quoted=True), expression=outer_key.copy())
                for i, (_, outer_key) in enumerate(keys)]

    x = membership.this
    outer.append("joins", exp.Join(this=exp.alias_(exp.Subquery(this=pairs), matched, quoted=True, table=True),
                                   side="LEFT", on=exp.and_(*on(matched), exp.EQ(
                                       this=exp.column("__v", matched, quoted=True), expression=x.copy()))))
    outer.append("joins", exp.Join(this=exp.alias_(exp.Subquery(this=counts), counted, quoted=True, table=True),
                                   side="LEFT", on=exp.and_(*on(counted))))
    membership.replace(exp.Paren(this=_three_values(x, exp.column("__k0", matched, quoted=True), counted, empty=exp.Is(
        this=exp.column("__n", counted, quoted=True), expression=exp.Null()))))
    return True


def _three_values(x: exp.Expression, match: exp.Column, counted: str, empty: exp.Expression) -> exp.Case:
    """TRUE where ``match`` (a column of the joined values) is set; else FALSE where the sub-query is ``empty``;
    else NULL where x is NULL or the sub-query holds a NULL (fewer non-NULL values than rows); else FALSE."""
    n, nn = exp.column("__n", counted, quoted=True), exp.column("__nn", counted, quoted=True)
    unknown = exp.or_(exp.Is(this=x.copy(), expression=exp.Null()), exp.LT(this=nn, expression=n))
    return exp.Case(ifs=[
        exp.If(this=exp.Not(this=exp.Is(this=match, expression=exp.Null())), true=exp.true()),
        exp.If(this=empty, true=exp.false()),
        exp.If(this=unknown, true=exp.cast(exp.Null(), exp.DataType.build("BOOLEAN"))),
    ], default=exp.false())


def _correlated_single_table(inner: exp.Select, outer: exp.Select
                             ) -> tuple[exp.Table, list[tuple[exp.Column, exp.Column]], list[exp.Expression]] | None:
    """(table, correlation key pairs, local conjuncts) of a plain one-table sub-query whose WHERE reads the outer
    query only in ``inner column = outer column`` conjuncts over ``outer``'s own tables; None otherwise."""
    if any(inner.args.get(k) for k in _NOT_PLAIN) or not isinstance(from_clause(inner), exp.From):
        return None
    table = from_clause(inner).this
    where = inner.args.get("where")
    if not isinstance(table, exp.Table) or (
            where is not None and where.find(exp.Subquery, exp.Select, exp.AggFunc, exp.Window)):
        return None
    sources = [from_clause(outer).this, *(j.this for j in outer.args.get("joins") or [])]
    keys, local = split_correlation(where, table.alias_or_name, {s.alias_or_name for s in sources})
    if not keys or any(reads_outside(c, table.alias_or_name) for c in local):
        return None
    return table, keys, local


def _as_value(exists: exp.Exists | exp.In, outer: exp.Select) -> bool:
    """The EXISTS stands in ``outer``'s outputs or ORDER BY (not a filter), and ``outer`` does not group."""
    child = exists
    while child.parent is not outer:
        if isinstance(child.parent, exp.Select | exp.Subquery):
            return False
        child = child.parent
    return child.arg_key in ("expressions", "order")


def _uncorrelated(inner: exp.Select) -> bool:
    """Whether ``inner`` reads only its own tables (every column's table is one of its FROM/JOIN aliases)."""
    aliases = {s.alias_or_name for s in inner.find_all(exp.Table)}
    return all(c.table in aliases for c in inner.find_all(exp.Column))


def _as_count(exists: exp.Exists, inner: exp.Select) -> None:
    """``EXISTS (q)`` -> ``((SELECT COUNT(*) FROM (q LIMIT 1) AS "__exists") > 0)``."""
    query = inner.copy()
    if not query.args.get("limit"):
        query = query.limit(1)
    count = exp.select(exp.Count(this=exp.Star())).from_(exp.alias_(exp.Subquery(this=query), "__exists",
                                                                   quoted=True, table=True))
    exists.replace(exp.Paren(this=exp.GT(this=exp.Subquery(this=count), expression=exp.Literal.number(0))))


def _as_join(exists: exp.Exists, inner: exp.Select, outer: exp.Select, name: str) -> bool:
    if not joinable_outer(outer) or any(o.find(exp.AggFunc, exp.Window) for o in inner.expressions):
        return False
    correlated = _correlated_single_table(inner, outer)
    if correlated is None:
        return False
    table, keys, local = correlated
    distinct = exp.select(*[exp.alias_(k.copy(), f"__k{i}", quoted=True) for i, (k, _) in enumerate(keys)]).from_(
        table.copy()).distinct()
    if local:
        distinct = distinct.where(exp.and_(*[c.copy() for c in local]))
    on = exp.and_(*[exp.EQ(this=exp.column(f"__k{i}", name, quoted=True), expression=outer_key.copy())
                    for i, (_, outer_key) in enumerate(keys)])
    outer.append("joins", exp.Join(this=exp.alias_(exp.Subquery(this=distinct), name, quoted=True, table=True),
                                   side="LEFT", on=on))
    exists.replace(exp.Paren(this=exp.Not(this=exp.Is(this=exp.column("__k0", name, quoted=True),
                                                      expression=exp.Null()))))
    return True


def tuple_in_as_exists(ast: exp.Expression) -> int:
    """Rewrite every row-value IN sub-query that the module docstring admits as its EXISTS, in place; how many."""
    rewritten = 0
    for membership in list(ast.find_all(exp.In)):
        query, row = membership.args.get("query"), membership.this
        inner = query.unnest() if isinstance(query, exp.Subquery) else query
        above = membership.parent
        while isinstance(above, exp.Paren):
            above = above.parent
        negated = isinstance(above, exp.Not)  # NOT (a, b) IN (..), the IN perhaps parenthesized
        test = above if negated else membership
        if not isinstance(row, exp.Tuple) or not isinstance(inner, exp.Select) or not _filtering(test):
            continue
        if len(inner.expressions) != len(row.expressions) or any(o.find(exp.Star) for o in inner.expressions):
            continue
        probe = _merged_probe(inner, row, negated) if _plain(inner) else None
        if probe is None and _uncorrelated(inner):
            probe = _derived_probe(inner, row, f"__tuple_in_{rewritten}", negated)
        if probe is not None:
            test.replace(exp.Not(this=exp.Exists(this=probe)) if negated else exp.Exists(this=probe))
            rewritten += 1
    return rewritten


def _match(value: exp.Expression, item: exp.Expression, null_aware: bool) -> exp.Expression:
    """``value = item``; ``null_aware``: ``(value = item OR value IS NULL OR item IS NULL)``, the pairs NOT IN
    cannot tell apart."""
    equal = exp.EQ(this=value, expression=item)
    if not null_aware:
        return equal
    return exp.Paren(this=exp.or_(equal, exp.Is(this=value.copy(), expression=exp.null()),
                                  exp.Is(this=item.copy(), expression=exp.null())))


def _filtering(node: exp.Expression) -> bool:
    """Whether ``node`` stands in a WHERE reached through AND, OR and parentheses only."""
    while isinstance(node.parent, exp.And | exp.Or | exp.Paren):
        node = node.parent
    return isinstance(node.parent, exp.Where)


def _plain(inner: exp.Select) -> bool:
    return not any(inner.args.get(k) for k in _NOT_PLAIN if k != "joins") and isinstance(
        from_clause(inner), exp.From) and not any(o.find(exp.AggFunc, exp.Window) for o in inner.expressions)


def _merged_probe(inner: exp.Select, row: exp.Tuple, null_aware: bool = False) -> exp.Select:
    """``SELECT 1 FROM <inner's tables> WHERE <inner's WHERE> AND x = a AND y = b`` (``_match``)."""
    probe = inner.copy()
    matches = [_match(o.unalias().copy(), v.copy(), null_aware)
               for o, v in zip(inner.expressions, row.expressions, strict=True)]
    where = probe.args.get("where")
    probe.set("where", exp.Where(this=exp.and_(*([where.this] if where is not None else []), *matches)))
    probe.set("expressions", [exp.Literal.number(1)])
    return probe


def _derived_probe(inner: exp.Select, row: exp.Tuple, alias: str, null_aware: bool = False) -> exp.Select:
    """``SELECT 1 FROM (SELECT x AS __c0, y AS __c1 ...) AS alias WHERE alias.__c0 = a AND alias.__c1 = b``
    (``_match``)."""
    values = inner.copy()
    values.set("expressions", [exp.alias_(o.unalias().copy(), f"__c{i}", quoted=True)
                               for i, o in enumerate(values.expressions)])
    matches = exp.and_(*[_match(exp.column(f"__c{i}", alias, quoted=True), v.copy(), null_aware)
                         for i, v in enumerate(row.expressions)])
    return exp.select(exp.Literal.number(1)).from_(
        exp.alias_(exp.Subquery(this=values), alias, quoted=True, table=True)).where(matches)
