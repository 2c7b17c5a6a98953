"""Pass 4: tables of one source joined by pushable conjuncts (inner joins only) become one join group, a
fragment that runs the join in the source; the residual reads its columns as ``"__g<n>"."alias.column"``.

A join is pushed only when it pays: tables are merged edge by edge, smallest estimated join first, and an
edge is taken only when its estimated output is at most ``JOIN_GROWTH`` times the rows of its two inputs
(Trino's ``join-pushdown.strategy=AUTOMATIC`` rule). A join on a low-distinct key (TPC-H Q5's
``c_nationkey = s_nationkey``: 150,000 x 10,000 rows over 25 nations) multiplies rows and stays in
DataFusion, with the estimate in EXPLAIN. Tables without statistics are joined as before (a foreign-key
join is the common case), and so are sources that compute in this process with DataFusion (files: the join
runs in the same engine either way).

    SELECT c.name, o.qty FROM pg.public.customers c JOIN pg.public.orders o ON o.cid = c.id
                                                     JOIN lake.main.items i ON i.oid = o.id
    -> pg: SELECT c.name AS "c.name", o.qty AS "o.qty", o.id AS "o.id" FROM public.customers AS c
           CROSS JOIN public.orders AS o WHERE o.cid = c.id
       residual: SELECT "__g0"."c.name", ... FROM "__fragment_0" AS "__g0" JOIN "__fragment_1" AS i ON ...
"""

from __future__ import annotations

import math

from sqlglot import exp

from planner.costs import estimate_fragment_rows, join_rows
from planner.federation.sqlast import (
    column_aliases,
    condition_containers,
    conjuncts,
    has_subquery,
    inner_joins_only,
    set_condition,
    union_find,
)
from planner.federation.state import BaseTable, FederationState, JoinGroup

#: (join conjunct, the WHERE or JOIN it is written in, the aliases it joins)
Edge = tuple[exp.Expression, exp.Expression, set[str]]

#: an edge is pushed when its estimated output is at most this many times the rows of its inputs (Trino)
JOIN_GROWTH = 1.25


def group_joins(state: FederationState) -> None:
    """Join tables of one source inside it when they are inner-joined by pushable conjuncts: each member's
    ``BaseTable.group`` is set and the join conjuncts move from the residual into the group."""
    for scoped in state.by_scope():
        select = scoped[0].scope.expression
        if len(scoped) < 2 or not isinstance(select, exp.Select) or not inner_joins_only(select):
            continue  # outer/semi joins keep their order; only inner joins commute
        by_alias = {b.alias: b for b in scoped}
        parent = {b.alias: b.alias for b in scoped}
        find = union_find(parent)
        edges = _pushable_edges(state, select, by_alias)
        edges, estimates = _edges_that_pay(state, edges, by_alias, parent, find)
        for _, _, aliases in edges:
            first, *rest = sorted(aliases)
            for other in rest:
                parent[find(other)] = find(first)
        components: dict[str, list[BaseTable]] = {}
        for b in scoped:
            components.setdefault(find(b.alias), []).append(b)
        for members in components.values():
            if len(members) >= 2:
                _form_group(state, select, members, edges).estimated_rows = estimates.get(members[0].alias)


def join_reason(state: FederationState, conjunct: exp.Expression, source: str) -> str | None:
    """Why the source cannot run the join ``conjunct`` as DataFusion would, or None."""
    connector = state.connector(source)
    reason = None if connector.capabilities.full_query else "the source does not run joins"
    if connector.read_per_table:
        reason = "the source's tables are read per table, for the partition cache"
    return reason or state.unpushable(conjunct, source)


def _pushable_edges(state: FederationState, select: exp.Select, by_alias: dict[str, BaseTable]) -> list[Edge]:
    """Conjuncts joining tables of one source that the source may run; the others are recorded as not
    pushed, with the reason."""
    edges: list[Edge] = []
    for container in condition_containers(select):
        for conjunct in conjuncts(container):
            aliases = column_aliases(conjunct)
            if len(aliases) < 2 or not aliases <= by_alias.keys() or has_subquery(conjunct):
                continue
            sources = {by_alias[a].ref.source for a in aliases}
            if len(sources) != 1:
                continue
            reason = join_reason(state, conjunct, sources.pop())
            if reason:
                state.not_pushed_because(f"join condition {conjunct.sql(state.dialect)}", reason)
                continue
            edges.append((conjunct, container, aliases))
    return edges


def _form_group(state: FederationState, select: exp.Select, members: list[BaseTable],
                edges: list[Edge]) -> JoinGroup:
    """One join group of ``members``: the edges among them move out of the residual into the group."""
    aliases = {m.alias for m in members}
    group = JoinGroup(members=members, conditions=[])
    for conjunct, container, conj_aliases in edges:
        if conj_aliases <= aliases:
            group.conditions.append(conjunct.copy())
            state.moved.update(id(c) for c in conjunct.find_all(exp.Column))
            kept = [c for c in conjuncts(container) if c is not conjunct]
            set_condition(select, container, kept)
    for m in members:
        m.group = group
    return group


def _edges_that_pay(state: FederationState, edges: list[Edge], by_alias: dict[str, BaseTable],
                    parent: dict[str, str], find) -> tuple[list[Edge], dict[str, float | None]]:
    """The edges worth pushing, merged greedily smallest estimated output first (``parent``/``find``, the
    union-find over aliases, is used as scratch and reset), and each alias's estimated rows once joined with
    its group (None: unknown). An edge between tables already joined is kept (it only narrows the group); an
    edge whose estimate exceeds ``JOIN_GROWTH`` x its inputs is recorded as not pushed with the estimate, also
    between files read in place: a join group is computed first, as written (TPC-H Q5 with customer, orders and
    supplier as Parquet: grouped on nationkey, 18M rows before lineitem, 5.2-8.5 s; left to the residual 1.1 s).
    Without statistics on either side an edge is kept."""
    rows = {b.alias: _filtered_rows(state, b) for b in by_alias.values()}
    component_rows = dict(rows)  # root alias -> estimated rows of the joined component
    kept: list[Edge] = []
    pending = list(edges)
    while pending:
        scored = [(_estimate(state, e, by_alias, component_rows, find), i, e) for i, e in enumerate(pending)]
        estimate, index, edge = min(scored, key=lambda t: (math.inf if t[0][0] is None else t[0][0], t[1]))
        pending.pop(index)
        output, inputs, roots = estimate
        if output is not None and len(roots) > 1 and output > JOIN_GROWTH * inputs:
            state.not_pushed_because(
                f"join condition {edge[0].sql(state.dialect)}",
                f"its estimated output ({output:,.0f} rows) exceeds {JOIN_GROWTH}x its inputs ({inputs:,.0f} rows):"
                " joined in DataFusion")
            continue
        kept.append(edge)
        first, *rest = sorted(roots)
        for other in rest:
            parent[other] = first
        if output is not None or len(roots) > 1:
            component_rows[find(first)] = output
    estimates = {alias: component_rows.get(find(alias)) for alias in parent}
    for alias in parent:
        parent[alias] = alias
    return kept, estimates


def _estimate(state: FederationState, edge: Edge, by_alias: dict[str, BaseTable],
              component_rows: dict[str, float | None], find) -> tuple[float | None, float, set[str]]:
    """(estimated output rows of pushing ``edge``, the rows of its inputs, the components it joins); the
    output is None when a side's rows are unknown."""
    conjunct, _, aliases = edge
    roots = {find(a) for a in aliases}
    sides = [component_rows.get(r) for r in roots]
    if any(r is None for r in sides):
        return None, 0.0, roots
    inputs = float(sum(sides))
    if len(roots) < 2:
        return sides[0], inputs, roots
    keys = _equi_keys(conjunct) if len(roots) == 2 else None
    if keys is None:
        return math.prod(sides) / 3.0, inputs, roots  # a non-equi join: a third of the cross product
    left, right = keys
    left_rows, right_rows = component_rows[find(left.table)], component_rows[find(right.table)]
    return join_rows(left_rows, right_rows, _distinct(state, by_alias[left.table], left.name),
                     _distinct(state, by_alias[right.table], right.name)), inputs, roots


def _equi_keys(conjunct: exp.Expression) -> tuple[exp.Column, exp.Column] | None:
    """The key columns of ``a = b`` where each side reads one column of one table (``c2.id = c.id + 1``: the
    distinct values of ``c.id + 1`` are those of ``c.id``); None for other conditions."""
    if not isinstance(conjunct, exp.EQ):
        return None
    sides = [list(side.find_all(exp.Column)) for side in (conjunct.left, conjunct.right)]
    if any(len(columns) != 1 for columns in sides) or sides[0][0].table == sides[1][0].table:
        return None
    return sides[0][0], sides[1][0]


def _filtered_rows(state: FederationState, table: BaseTable) -> float | None:
    """Rows of ``table`` after the filters pushed into it, from the catalog's statistics (None: unknown)."""
    statistics = state.statistics(table.ref)
    if statistics is None:
        return None
    where = exp.and_(*(f.copy() for f in table.filters)) if table.filters else None
    return estimate_fragment_rows(statistics, where)


def _distinct(state: FederationState, table: BaseTable, column: str) -> float | None:
    """Distinct values of ``table.column`` from the catalog's statistics (None: unknown)."""
    statistics = state.statistics(table.ref)
    if statistics is None:
        return None
    found = statistics.columns.get(column) or next(
        (c for name, c in statistics.columns.items() if name.lower() == column.lower()), None)
    return found.distinct if found is not None else None
