"""Pass 2: a CTE, derived table or uncorrelated IN/EXISTS/scalar sub-query whose tables all live in one source
that runs it whole becomes a fragment in its place (outermost first: the largest sub-tree is pushed).

    WITH r AS (SELECT k, sum(v) AS s FROM lake.t GROUP BY k) SELECT ... FROM r JOIN pg.u ...
    -> WITH r AS (SELECT * FROM "__fragment_0") SELECT ... FROM r JOIN pg.u ...
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from planner.federation.sqlast import within
from planner.federation.state import FederationState
from planner.federation.whole_query import correlated, subtree_fragment


def push_subqueries(state: FederationState) -> None:
    """Replace each pushable sub-query by a reference to its fragment; its tables leave ``state.bases``."""
    pushed_scopes: list[Scope] = []
    for scope in reversed(state.scopes):  # outermost first: push the largest sub-tree
        if scope.is_root or not isinstance(scope.expression, exp.Select):
            continue
        if any(within(scope, done) for done in pushed_scopes):
            continue
        inside = [b for b in state.bases if within(b.scope, scope)]
        if not inside or correlated(state, scope):
            continue
        fragment = subtree_fragment(state, scope.expression, inside, "whole sub-query")
        if fragment is None:
            continue
        reference = exp.Table(this=exp.to_identifier(fragment.id, quoted=True))
        parent = scope.expression.parent
        if isinstance(parent, exp.Subquery) and scope.is_derived_table:
            reference.set("alias", parent.args.get("alias"))
            parent.replace(reference)
        else:  # CTE body, IN/scalar sub-query, EXISTS
            scope.expression.replace(exp.select("*").from_(reference))
        pushed_scopes.append(scope)
        state.bases = [b for b in state.bases if b not in inside]
