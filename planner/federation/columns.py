"""Pass 5: each fragment returns only the columns the residual still uses (pushed conjuncts are gone).

    SELECT c.name FROM pg.public.customers c WHERE c.region = 'north' AND <something kept in DataFusion>
    -> pg: SELECT c.name AS name, c.<its columns> ... (not region: its condition moved into the fragment)
"""

from __future__ import annotations

from planner.federation.state import FederationState


def collect_columns(state: FederationState) -> None:
    """``BaseTable.columns``: the columns of each table the residual reads (column nodes in ``state.moved``
    went into fragments and do not count)."""
    for scope in state.scopes:
        for column in scope.columns:
            if id(column) in state.moved:
                continue
            _, base = state.owner(scope, column.table)
            if base is not None and base in state.bases:
                base.columns.add(column.name)
