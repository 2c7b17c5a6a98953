"""Pass 6: LIMIT, and ORDER BY + LIMIT (top-N), on a single-table scope whose filters were all pushed go into
the table's fragment (the residual applies them again; NULL ordering is made explicit for every dialect).

    SELECT o.id FROM lake.main.orders o WHERE o.qty > 3 ORDER BY o.id DESC LIMIT 10 OFFSET 5
    -> lake: SELECT o.id AS id FROM main.orders AS o WHERE o.qty > 3 ORDER BY o.id DESC NULLS FIRST LIMIT 15
       residual: SELECT o.id AS id FROM "__fragment_0" AS o ORDER BY o.id DESC LIMIT 10 OFFSET 5
"""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from connectors.base import Capabilities
from planner.federation.sqlast import explicit_nulls, has_local, int_literal, order_over_columns
from planner.federation.state import BaseTable, FederationState
from planner.pushdown import unpushable_reason


def push_limits(state: FederationState) -> None:
    """``BaseTable.limit`` (LIMIT + OFFSET) and ``BaseTable.order`` of single-table scopes that may take
    them; otherwise the reason, unless the scope joins (the LIMIT applies to the join's result)."""
    for scoped in state.by_scope():
        select = scoped[0].scope.expression
        if not isinstance(select, exp.Select) or not isinstance(select.args.get("limit"), exp.Limit):
            continue
        limit = int_literal(select.args["limit"].expression)
        offset = int_literal(select.args["offset"].expression) if select.args.get("offset") else 0
        if len(scoped) > 1 or select.args.get("joins"):
            continue  # the LIMIT applies to the join's result; nothing to say per table
        base = scoped[0]
        capabilities = state.connector(base.ref.source).capabilities
        order, order_reason = _pushable_order(state, select, base, capabilities)
        blocked = _blockers(select, order_reason, limit is None or offset is None)
        if blocked:
            state.not_pushed_because(f"LIMIT on {base.ref}", f"the query has {', '.join(blocked)}")
        elif not capabilities.limit:
            state.not_pushed_because(f"LIMIT on {base.ref}", "the source does not apply LIMIT")
        else:
            base.limit = limit + offset
            if order is not None:
                base.order = [explicit_nulls(o.copy()) for o in order.expressions]


def _pushable_order(state: FederationState, select: exp.Select, base: BaseTable, capabilities: Capabilities
                    ) -> tuple[exp.Order | None, str | None]:
    """(the scope's ORDER BY over the table's own columns, why it cannot be pushed or None)."""
    order = select.args.get("order")
    if order is None:
        return None, None
    order = order_over_columns(order, base.alias)
    if not capabilities.top_n:
        return order, "the source does not sort"
    if order is None:
        return None, "ORDER BY is not over the table's own columns"
    with_order = dataclasses.replace(
        capabilities, expressions=capabilities.expressions | {exp.Order, exp.Ordered})
    return order, unpushable_reason(order, with_order, state.column_type)


def _blockers(select: exp.Select, order_reason: str | None, not_constant: bool) -> list[str]:
    """What in a single-table scope keeps its LIMIT out of the fragment."""
    blockers = {
        "a filter that stays in DataFusion": select.args.get("where") is not None,
        "GROUP BY / aggregates": bool(select.args.get("group") or select.args.get("having"))
        or any(has_local(e, (exp.AggFunc,)) for e in select.expressions),
        "DISTINCT": bool(select.args.get("distinct")),
        f"ORDER BY that cannot be pushed ({order_reason})": order_reason is not None,
        "a window function": any(has_local(e, (exp.Window,)) for e in select.expressions),
        "a non-constant LIMIT/OFFSET": not_constant,
    }
    return [what for what, present in blockers.items() if present]
