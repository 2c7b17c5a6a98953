"""The residual plan's inner joins in the order of their estimated sizes (``residual.residual_plan`` applies it
as it writes the residual SQL, after the passes).

DataFusion joins a ``FROM a, b, c WHERE ...`` list left-deep in the order it is written, taking at each step
the first relation connected to what is joined so far (its ``EliminateCrossJoin`` rule); it has no cost-based
join order. So the order written in the query decides which rows flow between joins, and which keys the
first hash joins' builds push into later probe scans (a lake table read in place is pruned by them). This
pass rewrites each scope whose relations are all inner-joined fragments: it starts from the smallest
estimated relation and adds, one at a time, the connected relation whose join with the rows so far is
estimated smallest (a greedy operator ordering). Join conditions written in ``ON`` move to ``WHERE``, which
is the same for inner joins. Scopes with an outer, semi or lateral join, a relation that is not a fragment,
``*`` in the projection (its column order follows the FROM list) or a relation without an estimate are left
as written.

    SELECT ... FROM "__fragment_2" AS l, "__fragment_0" AS o, "__fragment_1" AS c
    WHERE l.k = o.k AND o.c = c.id AND ...            (l 6M rows, o 1.5M, c 30,000 estimated)
    -> FROM "__fragment_1" AS c CROSS JOIN "__fragment_0" AS o CROSS JOIN "__fragment_2" AS l WHERE ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from catalog import Catalog
from connectors.base import Fragment
from planner.costs import join_rows
from planner.dynamic_filters import CONJUNCT_SELECTIVITY, estimated_rows
from planner.federation.sqlast import column_aliases, conjuncts, inner_joins_only
from planner.join_estimates import column_distinct

#: a scope with more relations than this keeps its written order (the greedy search is quadratic)
MAX_RELATIONS = 16


@dataclass
class _Relation:
    node: exp.Expression  # the FROM item (a fragment's table with its alias)
    rows: float
    distinct: dict[str, float] = field(default_factory=dict)  # output column -> distinct values (known only)


def order_joins(ast: exp.Expression, fragments: list[Fragment], catalog: Catalog) -> list[str]:
    """Reorder the inner-joined fragments of every scope of ``ast`` (the residual query, changed in place) by
    estimated size; returns one line per reordered scope for EXPLAIN (``"c, o, l"``: aliases in join order)."""
    by_id = {f.id: f for f in fragments}
    notes = []
    for select in list(ast.find_all(exp.Select)):
        order = _reorder(select, by_id, catalog)
        if order:
            notes.append(", ".join(order))
    return notes


def _reorder(select: exp.Select, fragments: dict[str, Fragment], catalog: Catalog) -> list[str] | None:
    """The scope's relations in greedy order, applied to ``select``; None when it is left as written."""
    relations = _relations(select, fragments, catalog)
    if relations is None:
        return None
    where = select.args.get("where")
    conditions = [c for j in select.args.get("joins") or [] for c in conjuncts(j)]
    conditions += conjuncts(where)
    _restrict(relations, conditions)
    order = _greedy(relations, _edges(conditions, relations))
    written = list(relations)
    if order == written:
        return None
    # the same nodes, moved: later passes know fragment references and conditions by identity
    nodes = [relations[alias].node for alias in order]
    select.set("from_" if "from_" in select.args else "from", exp.From(this=nodes[0]))
    select.set("joins", [exp.Join(this=n, kind="CROSS") for n in nodes[1:]])
    select.set("where", exp.Where(this=exp.and_(*conditions, copy=False)) if conditions else None)
    return order


def _relations(select: exp.Select, fragments: dict[str, Fragment], catalog: Catalog
               ) -> dict[str, _Relation] | None:
    """The scope's FROM items by alias, each a fragment with an estimate, or None when the scope is not a
    plain inner join of three or more such items (two are ordered by DataFusion's own choice of build side)."""
    from_ = select.args.get("from") or select.args.get("from_")
    joins = select.args.get("joins") or []
    if from_ is None or len(joins) < 2 or len(joins) + 1 > MAX_RELATIONS or not inner_joins_only(select):
        return None
    if any(j.args.get("using") or j.args.get("method") for j in joins):
        return None
    if any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
           for p in select.expressions):
        return None
    relations: dict[str, _Relation] = {}
    for node in [from_.this, *(j.this for j in joins)]:
        fragment = fragments.get(node.name) if isinstance(node, exp.Table) and not node.args.get("db") else None
        if fragment is None or node.args.get("laterals") or node.args.get("joins"):
            return None
        rows = estimated_rows(fragment, catalog)
        if rows is None:
            return None
        alias = node.alias_or_name
        if alias in relations:
            return None
        relations[alias] = _Relation(node, rows, _distinct_counts(fragment, catalog))
    return relations


def _distinct_counts(fragment: Fragment, catalog: Catalog) -> dict[str, float]:
    counts = {}
    for name in fragment.schema.names:
        distinct = column_distinct(fragment, name, catalog)
        if distinct is not None:
            counts[name] = distinct
    return counts


def _restrict(relations: dict[str, _Relation], conditions: list[exp.Expression]) -> None:
    """Scale each relation by the residual's own filters on it (``CONJUNCT_SELECTIVITY`` each)."""
    for condition in conditions:
        aliases = column_aliases(condition)
        if len(aliases) == 1 and not condition.find(exp.Subquery, exp.Select):
            relation = relations.get(next(iter(aliases)))
            if relation is not None:
                relation.rows *= CONJUNCT_SELECTIVITY


def _edges(conditions: list[exp.Expression], relations: dict[str, _Relation]
           ) -> dict[frozenset[str], list[tuple[str, str, str, str]]]:
    """Equi-join conditions between two relations: {aliases: [(alias, column, other alias, other column)]}."""
    edges: dict[frozenset[str], list[tuple[str, str, str, str]]] = {}
    for condition in conditions:
        if not isinstance(condition, exp.EQ):
            continue
        left, right = condition.this, condition.expression
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
            continue
        if left.table == right.table or left.table not in relations or right.table not in relations:
            continue
        edges.setdefault(frozenset((left.table, right.table)), []).append(
            (left.table, left.name, right.table, right.name))
    return edges


def _greedy(relations: dict[str, _Relation], edges: dict[frozenset[str], list[tuple[str, str, str, str]]]
            ) -> list[str]:
    """Aliases in join order: the smallest connected relation first, then repeatedly the connected relation
    whose join with the rows so far is estimated smallest (ties: the written order); relations joined to
    nothing keep their place after the others."""
    connected = [a for a in relations if any(a in pair for pair in edges)]
    if len(connected) < 2:
        return list(relations)
    first = min(connected, key=lambda a: relations[a].rows)
    order, rows = [first], relations[first].rows
    while True:
        options = []
        for alias in connected:
            if alias in order:
                continue
            links = [e for pair, es in edges.items() if alias in pair and (pair - {alias}) <= set(order) for e in es]
            if links:
                options.append((_joined_rows(rows, relations, alias, links), alias))
        if not options:
            break
        rows, alias = min(options, key=lambda o: o[0])
        order.append(alias)
    return order + [a for a in relations if a not in order]


def _joined_rows(rows: float, relations: dict[str, _Relation], alias: str,
                 links: list[tuple[str, str, str, str]]) -> float:
    """Estimated rows of joining ``alias`` to the rows so far by ``links``: the most selective equi-join
    (``planner.costs.join_rows``), the joined side's distinct values at most its rows so far."""
    best = None
    new = relations[alias]
    for left, left_column, right, right_column in links:
        own, other, other_alias = (left_column, right_column, right) if left == alias else (
            right_column, left_column, left)
        own_ndv = new.distinct.get(own)
        other_ndv = relations[other_alias].distinct.get(other)
        estimate = join_rows(rows, new.rows, min(other_ndv, rows) if other_ndv else None, own_ndv)
        best = estimate if best is None else min(best, estimate)
    return best if best is not None else rows * new.rows
