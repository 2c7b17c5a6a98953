"""Semi-join reduction of correlated aggregate sub-queries ("magic sets"): the rows a correlated sub-query
aggregates are restricted to the correlation keys the outer query can produce at all.

DataFusion (like most engines) decorrelates ``x < (SELECT avg(..) FROM t2 WHERE t2.k = t.k)`` into a join
with the sub-query grouped by ``t2.k`` over *every* key; when the outer query keeps few rows of ``t`` by its
own filters, almost all of that aggregation is thrown away. TPC-H Q17 aggregates all 6M lineitem rows by
part to use 204 parts. On the qualified query, in place:

    SELECT sum(l.price) FROM lineitem AS l, part AS p
    WHERE p.partkey = l.partkey AND p.brand = 'Brand#23'
      AND l.qty < (SELECT 0.2 * avg(l2.qty) FROM lineitem AS l2 WHERE l2.partkey = p.partkey)
    -> ... AND l.qty < (SELECT 0.2 * avg(l2.qty) FROM lineitem AS l2 WHERE l2.partkey = p.partkey
                        AND l2.partkey IN (SELECT "__keys_0".partkey FROM part AS "__keys_0"
                                           WHERE "__keys_0".brand = 'Brand#23'))

Why the answer cannot change: the outer WHERE is a conjunction, so a row whose ``p`` fails ``p.brand =
'Brand#23'`` is dropped whatever the sub-query returns; for a row whose ``p`` passes, its key ``v`` is in
the key set, so the sub-query's rows ``l2.partkey = v`` all pass the added IN and it returns what it did.
Conditions checked: the outer SELECT has inner joins only; ``p`` is a base table of it; the copied
conditions are WHERE conjuncts over ``p``'s columns alone, deterministic, without aggregates, windows or
correlated sub-queries (an uncorrelated IN sub-query is kept: TPC-H Q20's part filter); the sub-query is a
plain SELECT that aggregates (there the decorrelated plan groups every key) and compares the key with
``=`` in a top-level conjunct of its own WHERE.

The planner applies it only to a query one file source runs whole (``planner.planner``): there DataFusion
decorrelates. Measured in-process over TPC-H SF1 Parquet (CPU seconds, same run): Q17 0.92-1.00 -> 0.66-0.68,
Q20 0.14 -> 0.09, Q2 unchanged (0.09).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, build_scope

from planner.federation.sqlast import conjuncts, inner_joins_only

#: functions whose value differs per call: a condition with one is never copied
_VOLATILE = tuple(t for t in (getattr(exp, n, None) for n in ("Rand", "Randn", "Uuid")) if t is not None)


def reduce_correlated_subqueries(ast: exp.Expression) -> int:
    """Add the key restriction of the module docstring to every correlated aggregate sub-query it applies to,
    in place. Returns how many were added (0 leaves ``ast`` untouched). Never raises on a query shape it does
    not handle: it leaves it alone."""
    root = build_scope(ast)
    if root is None:
        return 0
    scopes = {id(s.expression): s for s in root.traverse()}
    added = 0
    for scope in list(scopes.values()):
        select = scope.expression
        if not isinstance(select, exp.Select) or not inner_joins_only(select):
            continue
        where = select.args.get("where")
        if where is None:
            continue
        tables = {alias: source for alias, (_, source) in scope.selected_sources.items()
                  if isinstance(source, exp.Table)}
        if not tables:
            continue
        filters = _local_filters(conjuncts(where), set(tables), scopes)
        for subquery_scope in scope.subquery_scopes:
            inner = subquery_scope.expression
            if not _aggregates(inner) or not _in_where(inner, where):
                continue
            for inner_column, alias, column in _correlations(inner, subquery_scope, set(tables)):
                if filters.get(alias):
                    keys = _key_set(tables[alias], alias, column, filters[alias], added)
                    inner.where(exp.In(this=inner_column.copy(), query=exp.Subquery(this=keys)), copy=False)
                    added += 1
                    break  # one restriction per sub-query: the first correlated key with filters
    return added


def _local_filters(conds: list[exp.Expression], aliases: set[str],
                   scopes: dict[int, Scope]) -> dict[str, list[exp.Expression]]:
    """Per base-table alias, the WHERE conjuncts that read only that table's columns (module docstring)."""
    found: dict[str, list[exp.Expression]] = {}
    for cond in conds:
        if cond.find(exp.AggFunc, exp.Window, exp.Exists, *_VOLATILE) is not None:
            continue
        nested = list(cond.find_all(exp.Select))
        if any(_correlated(s, scopes) for s in nested):
            continue
        own = [c for c in cond.find_all(exp.Column) if not any(s is c.find_ancestor(exp.Select) for s in nested)]
        tables = {c.table for c in own}
        if len(tables) == 1 and own and tables <= aliases:
            found.setdefault(tables.pop(), []).append(cond)
    return found


def _correlated(select: exp.Select, scopes: dict[int, Scope]) -> bool:
    scope = scopes.get(id(select))
    return scope is None or bool(scope.external_columns) or any(
        bool(s.external_columns) for s in scope.traverse() if s is not scope)


def _aggregates(select: exp.Expression) -> bool:
    """A plain SELECT (no set operation) that aggregates or groups."""
    if not isinstance(select, exp.Select):
        return False
    if select.args.get("group"):
        return True
    return any(p.find(exp.AggFunc) is not None and p.find(exp.Window) is None for p in select.expressions)


def _in_where(inner: exp.Select, where: exp.Where) -> bool:
    """Whether the sub-query sits in the outer WHERE (not in its SELECT list, GROUP BY or ORDER BY)."""
    node = inner.parent
    while node is not None and node is not where:
        node = node.parent
    return node is where


def _correlations(inner: exp.Select, scope: Scope, aliases: set[str]):
    """``(inner column, outer alias, outer column name)`` for each top-level ``inner = outer`` conjunct of the
    sub-query's WHERE whose outer side is a column of one of the outer base tables ``aliases``."""
    own = set(scope.selected_sources)
    for cond in conjuncts(inner.args.get("where")):
        if not isinstance(cond, exp.EQ):
            continue
        left, right = cond.this, cond.expression
        for a, b in ((left, right), (right, left)):
            if (isinstance(a, exp.Column) and isinstance(b, exp.Column) and a.table in own
                    and b.table in aliases and b.table not in own):
                yield a, b.table, b.name


def _key_set(table: exp.Table, alias: str, column: str, filters: list[exp.Expression], n: int) -> exp.Select:
    """``SELECT "__keys_n".column FROM table AS "__keys_n" WHERE filters`` (the filters re-aliased)."""
    fresh = f"__keys_{n}"
    source = table.copy()
    source.set("alias", exp.TableAlias(this=exp.to_identifier(fresh, quoted=True)))
    conditions = []
    for cond in filters:
        copy = cond.copy()
        for col in copy.find_all(exp.Column):
            if col.table == alias and col.find_ancestor(exp.Select) is None:
                col.set("table", exp.to_identifier(fresh, quoted=True))
        conditions.append(copy)
    key = exp.column(column, table=fresh, quoted=True)
    return exp.select(key).from_(source).where(exp.and_(*conditions))


def undo_reductions(ast: exp.Expression) -> int:
    """Remove the key restrictions ``reduce_correlated_subqueries`` added (``IN (SELECT "__keys_n".k ...)``
    conjuncts), in place; how many. For a query run with late materialization (``Fragment
    .late_materialization``): DataFusion's own join dynamic filter then restricts the sub-query's scan while it
    decodes, and the added semi join only costs (TPC-H Q17 over Parquet, median of 20 in one session: 231 ms
    with it, 186 ms without; 310 ms with it and no late materialization)."""
    removed = 0
    for node in list(ast.find_all(exp.In)):
        query = node.args.get("query")
        select = query.this if isinstance(query, exp.Subquery) else None
        source = (select.args.get("from") or select.args.get("from_")) if isinstance(select, exp.Select) else None
        table = source.this if source is not None else None
        if isinstance(table, exp.Table) and table.alias.startswith("__keys_") and isinstance(node.parent, exp.And):
            node.parent.replace(node.parent.left if node.parent.right is node else node.parent.right)
            removed += 1
    return removed
