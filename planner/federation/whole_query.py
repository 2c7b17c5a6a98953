"""Pass 1: the whole query to one source, when every table lives there and the source runs all of it.

    SELECT c.region, count(*) FROM pg.public.customers c JOIN pg.public.orders o ON o.cid = c.id GROUP BY 1
    -> fragment (pg): SELECT c.region, COUNT(*) FROM public.customers AS c JOIN public.orders AS o ON ...
       no residual: the fragment's stream is the result
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from connectors.base import Connector, Fragment
from planner.costs import estimate_fragment_rows
from planner.dynamic_filters import LATE_MATERIALIZATION_SHARE
from planner.federation.sqlast import (
    condition_containers,
    conjuncts,
    factor_or,
    has_subquery,
    order_by_computed_outputs,
    source_tables,
    within,
)
from planner.federation.state import BaseTable, FederationState
from planner.semi_join_reduction import undo_reductions

#: estimated input rows above which a DISTINCT aggregate runs in DataFusion rather than in a source that sorts
#: for it (``Capabilities.sorted_distinct_aggregates``). PostgreSQL 15, ``COUNT(DISTINCT o_custkey)`` by
#: priority over part of TPC-H SF1 orders, pushed whole against aggregated in DataFusion: 10,000 rows 11 vs 15 ms,
#: 50,000 rows 47 vs 47 ms, 200,000 rows 180 vs 142-156 ms, 750,000 rows 618 vs 500 ms; TPC-H Q16 (118,274 rows
#: into its aggregate) 504-535 vs 296-341 ms.
SORTED_DISTINCT_MAX_ROWS = 100_000


def push_whole_query(state: FederationState) -> None:
    """Set ``state.whole`` to one fragment running the whole query when its single source can; the other
    passes then do nothing."""
    if state.bases:
        state.whole = subtree_fragment(state, state.ast, state.bases, "whole query")


def subtree_fragment(state: FederationState, expression: exp.Expression, bases: list[BaseTable], what: str
                     ) -> Fragment | None:
    """A fragment running ``expression`` whole in its single source (added to ``state.fragments``), or None
    when it cannot: tables of several sources, a source that runs no whole queries or is read per table, a
    CTE defined outside, an expression the source would compute differently, or one DataFusion cannot type."""
    sources = {b.ref.source for b in bases}
    if len(sources) != 1:
        return None
    source = sources.pop()
    connector = state.connector(source)
    if not connector.capabilities.full_query or connector.read_per_table:
        return None
    if any(not (t.args.get("catalog") and t.args.get("db")) for t in expression.find_all(exp.Table)):
        return None  # reads a CTE defined outside
    reason = state.unpushable(expression, source)
    if reason:
        if expression is state.ast:  # EXPLAIN says why a single-source query runs as fragments
            state.not_pushed_because(f"{what} to {source}", reason)
        return None
    if not connector.capabilities.decorrelates_subqueries and _correlated_scalar_subquery(state, expression):
        state.not_pushed_because(f"{what} to {source}", CORRELATED_SCALAR_REASON)
        return None
    reason = sorted_distinct_reason(state, expression, connector)
    if reason:
        if expression is state.ast:
            state.not_pushed_because(f"{what} to {source}", reason)
        return None
    pushed = expression.copy()
    order_by_computed_outputs(pushed)
    for table in source_tables(pushed):
        target = connector.table_expression(table.db, table.name)
        target.set("alias", table.args.get("alias"))
        target.set("version", table.args.get("version"))  # time travel, for lake sources
        table.replace(target)
    refs = sorted({b.ref for b in bases})
    schema = state.oracle_schema(expression)
    if schema is None:
        return None  # DataFusion cannot type it on its own; the per-table plan says why
    if expression is not state.ast and len(set(schema.names)) != len(schema.names):
        return None  # the residual reads a sub-query's fragment as a table: two outputs of one name are ambiguous
    selective = selective_join(state, expression) if connector.capabilities.local_compute else None
    if selective:
        undo_reductions(pushed)
    fragment = Fragment(
        id=state.next_id(), source=source, sql=state.source_sql(pushed, connector), schema=schema,
        tables=[str(r) for r in refs], pushed=[what, *([f"late materialization: {selective}"] if selective else [])],
        ast=pushed, dialect=connector.dialect, late_materialization=selective is not None,
    )
    state.fragments.append(fragment)
    return fragment


def selective_join(state: FederationState, expression: exp.Expression) -> str | None:
    """Why ``expression``, run whole in a DataFusion session over files, should decode the columns of its Parquet
    scans only for the rows their filters keep (``Fragment.late_materialization``), or None: a SELECT of it
    joins a table on ``a.x = b.y`` where ``b``, after the conditions that read it alone, is estimated at most
    ``LATE_MATERIALIZATION_SHARE`` of ``a.x``'s distinct values (catalog statistics), so DataFusion's hash-join
    dynamic filter keeps few of ``a``'s rows. Measured over TPC-H SF1 as Parquet, each query in one session with
    and without (median of 3): Q17 446 -> 159 ms, Q8 236 -> 204 ms, Q2 144 -> 131 ms, the queries this picks;
    the others lose up to 1.6x (Q6's ranges 43 -> 70 ms, Q4, Q7 1.5x) and are not picked."""
    for select in expression.find_all(exp.Select):
        rows, conditions = _own_rows(state, select)
        bases = {b.alias: b for b in state.bases if b.alias in rows}
        for condition in conditions:
            if not (isinstance(condition, exp.EQ) and isinstance(condition.left, exp.Column)
                    and isinstance(condition.right, exp.Column)):
                continue
            left, right = condition.left, condition.right
            for probe, build in ((left, right), (right, left)):
                if probe.table not in bases or build.table not in bases or probe.table == build.table:
                    continue
                statistics = state.statistics(bases[probe.table].ref)
                column = statistics.columns.get(probe.name) if statistics else None
                distinct = column.distinct if column else None
                if rows[build.table] is not None and distinct and \
                        rows[build.table] <= LATE_MATERIALIZATION_SHARE * distinct:
                    return (f"{condition.sql()} keeps about {rows[build.table]:,.0f} of the {distinct:,.0f} values "
                            f"of {probe.sql()} (at most {LATE_MATERIALIZATION_SHARE:.0%})")
    return None


def _own_rows(state: FederationState, select: exp.Select) -> tuple[dict[str, float | None], list[exp.Expression]]:
    """Each base table of ``select``'s own scope (alias -> its estimated rows after the conditions that read it
    alone, None without statistics) and the inner conditions (WHERE, inner join ON; a condition repeated in every
    branch of an OR taken out of it) without sub-queries."""
    scope = next((s for s in state.scopes if s.expression is select), None)
    bases = [b for b in state.bases if scope is not None and b.scope is scope]
    inner = [c for c in condition_containers(select) if not (isinstance(c, exp.Join) and c.side)]
    conditions = []
    for condition in (c for container in inner for c in conjuncts(container) if not has_subquery(c)):
        conditions.extend(factor_or(condition) if isinstance(condition, exp.Or) else [condition])
    rows: dict[str, float | None] = {}
    for base in bases:
        statistics = state.statistics(base.ref)
        own = [c for c in conditions if {col.table for col in c.find_all(exp.Column)} == {base.alias}]
        rows[base.alias] = estimate_fragment_rows(statistics, exp.and_(*own) if own else None) if statistics else None
    return rows, conditions


CORRELATED_SCALAR_REASON = ("a correlated scalar sub-query runs once per outer row in this source; DataFusion "
                            "decorrelates it into one grouped join")


def sorted_distinct_reason(state: FederationState, expression: exp.Expression, connector: Connector) -> str | None:
    """Why ``expression`` should not run whole in ``connector``'s source: a SELECT of it computes a DISTINCT
    aggregate, the source sorts for that (``Capabilities.sorted_distinct_aggregates``), and the rows into the
    aggregate are estimated above ``SORTED_DISTINCT_MAX_ROWS``; None otherwise, also when they have no estimate.
    The estimate is the largest of the SELECT's own tables after the conditions that read that table alone (a
    join along foreign keys returns about as many rows as its largest side)."""
    if not connector.capabilities.sorted_distinct_aggregates:
        return None
    for select in expression.find_all(exp.Select):
        if not any(isinstance(a.this, exp.Distinct) and a.find_ancestor(exp.Select) is select
                   for a in select.find_all(exp.AggFunc)):
            continue
        rows = _input_rows(state, select)
        if rows is not None and rows > SORTED_DISTINCT_MAX_ROWS:
            return (f"its DISTINCT aggregate would be computed by sorting about {rows:,.0f} rows in this source "
                    f"(more than {SORTED_DISTINCT_MAX_ROWS:,}); DataFusion hashes it")
    return None


def _input_rows(state: FederationState, select: exp.Select) -> float | None:
    """The estimated rows into ``select``'s aggregates: the largest of its own tables, each after the conditions
    (WHERE, inner join ON) that read it alone; None when a table has no estimate or the SELECT reads none."""
    rows, _ = _own_rows(state, select)
    if not rows or any(r is None for r in rows.values()):
        return None
    return max(rows.values())


def _correlated_scalar_subquery(state: FederationState, expression: exp.Expression) -> bool:
    """Whether ``expression`` holds a scalar sub-query (not EXISTS/IN/ANY) that reads a column of an enclosing
    query: PostgreSQL executes such a sub-query as a SubPlan per outer row (TPC-H Q2 pushed whole: 0.97 s, as
    fragments with the sub-query decorrelated by DataFusion: 0.19 s)."""
    for scope in state.scopes:
        node = scope.expression
        parent = node.parent
        if not isinstance(parent, exp.Subquery) or isinstance(parent.parent, exp.Exists | exp.In | exp.Any | exp.All):
            continue
        if not _inside(node, expression) or node is expression:
            continue
        if correlated(state, scope):
            return True
    return False


def _inside(node: exp.Expression, root: exp.Expression) -> bool:
    while node is not None:
        if node is root:
            return True
        node = node.parent
    return False


def correlated(state: FederationState, scope: Scope) -> bool:
    """Whether a column inside ``scope`` (or its sub-scopes) names a table of an enclosing scope."""
    for sub in state.scopes:
        if not within(sub, scope):
            continue
        for column in sub.columns:
            owner, _ = state.owner(sub, column.table)
            if column.table and owner is not None and not within(owner, scope):
                return True
    return False
