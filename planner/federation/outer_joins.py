"""Pass 0a: outer joins whose WHERE rejects their null-extended rows, written as the inner joins they are.

    SELECT i.order_id FROM lake.main.items AS i LEFT JOIN pg.public.products AS p ON i.product_id = p.id
    WHERE p.category = 'x'
    -- p.category = 'x' is never TRUE on a row the LEFT JOIN null-extends: the same rows as
    SELECT i.order_id FROM lake.main.items AS i JOIN pg.public.products AS p ON i.product_id = p.id
    WHERE p.category = 'x'

The rule is ``connectors.arrow.outer_joins.inner_null_rejected_joins`` (which tables a conjunct rejects the
nulls of, and what each join becomes). Run first, so that every later pass sees the joins as they are: the
filter on the formerly null-supplying table goes into its fragment (the source sends only its matching rows,
not every row for DataFusion to filter after the join), join groups and the join order see an inner join, and
the residual plan never holds the outer join DataFusion 55 can answer wrong (``tests/test_outer_joins.py``).
The differential fuzzer checks the rewrite against the SQL as written (``tests/fuzz/compare.py``).
"""

from __future__ import annotations

from connectors.arrow.outer_joins import inner_null_rejected_joins
from planner.federation.state import FederationState


def simplify_outer_joins(state: FederationState) -> None:
    """Rewrite, in every SELECT of ``state.ast``, the outer joins its WHERE makes inner (see the module)."""
    inner_null_rejected_joins(state.ast)
