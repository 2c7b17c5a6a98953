"""Pass 3a: conditions repeated in every branch of an OR are taken out of it, in each WHERE clause, so a join
or filter condition written in every branch (TPC-H Q19's ``p_partkey = l_partkey``) is seen as one.

    WHERE (p.k = l.k AND p.brand = 'A') OR (p.k = l.k AND p.size < 5)
    -> WHERE p.k = l.k AND (p.brand = 'A' OR p.size < 5)
"""

from __future__ import annotations

from sqlglot import exp

from planner.federation.sqlast import conjuncts, factor_or, has_subquery
from planner.federation.state import FederationState


def factor_ors(state: FederationState) -> None:
    """``(a AND x) OR (a AND y)`` -> ``a AND (x OR y)`` in every WHERE clause, in place. An OR holding a
    sub-query is left alone (its scope would be left with the node the copy replaced). A scope whose WHERE
    changed forgets the columns it had collected: the later passes find and rename the copies' columns
    (TPC-H Q19 over one MariaDB, whose factored ``l_shipmode IN (..)`` stays in DataFusion, failed to plan when
    the residual read it by its table's name instead of its join group's)."""
    for scope in state.scopes:
        select = scope.expression
        where = select.args.get("where") if isinstance(select, exp.Select) else None
        if where is None:
            continue
        factored, changed = [], False
        for conjunct in conjuncts(where):
            if isinstance(conjunct, exp.Or) and not has_subquery(conjunct):
                parts = factor_or(conjunct)
                changed = changed or parts != [conjunct]
                factored.extend(parts)
            else:
                factored.append(conjunct)
        if changed:
            where.set("this", exp.and_(*factored, copy=False))
            scope.clear_cache()
