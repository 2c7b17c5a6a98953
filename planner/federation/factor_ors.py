"""Pass 3a: conditions repeated in every branch of an OR are taken out of it, in each WHERE clause, so a join
or filter condition written in every branch (TPC-H Q19's ``p_partkey = l_partkey``) is seen as one.

    WHERE (p.k = l.k AND p.brand = 'A') OR (p.k = l.k AND p.size < 5)
    -> WHERE p.k = l.k AND (p.brand = 'A' OR p.size < 5)
"""

from __future__ import annotations

from sqlglot import exp

from planner.federation.sqlast import conjuncts, factor_or
from planner.federation.state import FederationState


def factor_ors(state: FederationState) -> None:
    """``(a AND x) OR (a AND y)`` -> ``a AND (x OR y)`` in every WHERE clause, in place."""
    for scope in state.scopes:
        select = scope.expression
        where = select.args.get("where") if isinstance(select, exp.Select) else None
        if where is None:
            continue
        factored = []
        for conjunct in conjuncts(where):
            factored.extend(factor_or(conjunct) if isinstance(conjunct, exp.Or) else [conjunct])
        where.set("this", exp.and_(*factored, copy=False))
