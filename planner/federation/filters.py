"""Pass 3: single-table conjuncts of WHERE and inner JOIN ... ON (and a LEFT JOIN's ON, for its right side)
go into the table's fragment; a conjunct the source would compute differently stays in DataFusion (and may
still be pushed as a wider filter, re-checked in the residual). From an OR across tables, each table gets the
OR of its own parts as a wider filter.

    SELECT c.name FROM pg.public.customers c JOIN lake.main.orders o ON o.cid = c.id
    WHERE c.region = 'north' AND o.qty > 3
    -> pg:   SELECT ... FROM public.customers AS c WHERE c.region = 'north'
       lake: SELECT ... FROM main.orders AS o WHERE o.qty > 3
       residual: SELECT c.name FROM "__fragment_0" AS c JOIN "__fragment_1" AS o ON o.cid = c.id
"""

from __future__ import annotations

from sqlglot import exp

from planner.federation.sqlast import (
    column_aliases,
    conjuncts,
    fold_date_arithmetic,
    has_subquery,
    join_structure,
    set_condition,
)
from planner.federation.state import BaseTable, FederationState
from planner.pushdown import superset_pushable


def push_filters(state: FederationState) -> None:
    """Move single-table conjuncts into their tables' fragments (``BaseTable.filters``); the ids of the
    column nodes moved go to ``state.moved``."""
    for scoped in state.by_scope():
        select = scoped[0].scope.expression
        if not isinstance(select, exp.Select):
            continue
        by_alias = {b.alias: b for b in scoped}
        null_supplying, containers = join_structure(select)
        for container, targets in containers:
            _push_container(state, select, container, targets, by_alias, null_supplying)


def single_alias(conjunct: exp.Expression, by_alias: dict[str, BaseTable]) -> BaseTable | None:
    """The one base table ``conjunct`` reads, or None (several tables, none, or a sub-query)."""
    if has_subquery(conjunct):
        return None
    aliases = column_aliases(conjunct)
    if len(aliases) != 1:
        return None
    return by_alias.get(aliases.pop())


def filter_reason(state: FederationState, conjunct: exp.Expression, source: str) -> str | None:
    """Why ``conjunct`` cannot filter ``source``'s rows as DataFusion would, or None."""
    if not state.connector(source).capabilities.filter:
        return "the source does not filter"
    return state.unpushable(conjunct, source)


def _push_container(state: FederationState, select: exp.Select, container: exp.Expression, targets: set[str],
                    by_alias: dict[str, BaseTable], null_supplying: set[str]) -> None:
    """Push the conjuncts of one WHERE or JOIN ... ON into the tables ``targets`` names."""
    kept = []
    for conjunct in conjuncts(container):
        base = single_alias(conjunct, by_alias)
        if base is None and isinstance(conjunct, exp.Or) and not has_subquery(conjunct):
            push_implied_filters(state, conjunct, by_alias, targets - null_supplying)
        stays = base is None or base.alias not in targets or (
            base.alias in null_supplying and not isinstance(container, exp.Join))
        if stays or not _push_conjunct(state, conjunct, base, container):
            kept.append(conjunct)
    removed = [c for c in conjuncts(container) if not any(c is k for k in kept)]
    if not kept and removed and isinstance(container, exp.Join) and container.side:
        # an outer join needs a condition: keep one pushed conjunct (redundant, still correct)
        kept = [removed[0]]
        state.moved.difference_update(id(c) for c in removed[0].find_all(exp.Column))
    set_condition(select, container, kept)


def _push_conjunct(state: FederationState, conjunct: exp.Expression, base: BaseTable,
                   container: exp.Expression) -> bool:
    """Move ``conjunct`` into ``base``'s fragment; False when it must stay in the residual (perhaps pushed
    as a wider filter too), with the reason recorded."""
    # not sqlglot's simplify: it rewrote `x IS NULL IS NULL` to `x IS TRUE` (wrong)
    candidate = fold_date_arithmetic(conjunct.copy())
    reason = filter_reason(state, candidate, base.ref.source)
    if not reason:
        base.filters.append(candidate)
        state.moved.update(id(c) for c in conjunct.find_all(exp.Column))
        return True
    capabilities = state.connector(base.ref.source).capabilities
    if superset_pushable(candidate, capabilities, state.column_type):
        base.filters.append(candidate)  # a superset there; re-checked exactly here
        reason = f"{reason}; pushed as a wider filter and re-checked"
    state.not_pushed_because(f"filter {conjunct.sql(state.dialect)} on {base.ref}", reason)
    if not isinstance(container, exp.Join) or not container.side:
        base.local.append(conjunct.copy())
    return False


def push_implied_filters(state: FederationState, conjunct: exp.Or, by_alias: dict[str, BaseTable],
                         targets: set[str]) -> None:
    """From an OR across tables, each table's own part: if every branch constrains table T, then
    ``branch1_T OR branch2_T ...`` holds for every row that can pass, so T's fragment may apply it (a
    superset filter; the OR itself stays in the residual)."""
    branches = list(conjunct.flatten()) if isinstance(conjunct, exp.Or) else [conjunct]
    for alias, base in by_alias.items():
        if alias not in targets:
            continue
        implied = _implied_filter(branches, base, by_alias)
        if implied is None:
            continue
        capabilities = state.connector(base.ref.source).capabilities
        if filter_reason(state, implied, base.ref.source) is None or (
            capabilities.filter and superset_pushable(implied, capabilities, state.column_type)
        ):
            base.filters.append(implied)


def _implied_filter(branches: list[exp.Expression], base: BaseTable, by_alias: dict[str, BaseTable]
                    ) -> exp.Expression | None:
    """The OR over ``branches`` of each branch's conjuncts on ``base`` alone; None when a branch has none."""
    parts = []
    for branch in branches:
        own = [c for c in (branch.flatten() if isinstance(branch, exp.And) else [branch])
               if single_alias(c, by_alias) is base]
        if not own:
            return None
        parts.append(exp.and_(*(c.copy() for c in own)))
    return exp.or_(*parts)
