"""Pass 2: a CTE, derived table or uncorrelated IN/EXISTS/scalar sub-query whose tables all live in one source
that runs it whole becomes a fragment in its place (outermost first: the largest sub-tree is pushed).

    WITH r AS (SELECT k, sum(v) AS s FROM lake.t GROUP BY k) SELECT ... FROM r JOIN pg.u ...
    -> WITH r AS (SELECT * FROM "__fragment_0") SELECT ... FROM r JOIN pg.u ...

A derived table's outputs that nothing outside it reads are dropped first, as DataFusion's own optimizer drops
them: the source neither computes nor sends them (and an aggregate DataFusion cannot plan beside another, such as
two ``STRING_AGG`` ordered differently, is not asked of a file source when the query never reads it: fuzz seed
173205).

    SELECT d.k FROM (SELECT k, sum(v) AS s, max(w) AS m FROM lake.t GROUP BY k) AS d JOIN pg.u ...
    -> SELECT d.k FROM "__fragment_0" AS d JOIN pg.u ...     __fragment_0: SELECT k FROM t GROUP BY k
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
        if scope.is_derived_table and drop_unused_outputs(state, scope.expression):
            scope.clear_cache()  # its columns were read before; the dropped outputs' columns are no longer read
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


def drop_unused_outputs(state: FederationState, select: exp.Expression) -> bool:
    """Remove the projections of the derived table ``select`` that no column outside it names (by its alias),
    nor its own GROUP BY, ORDER BY, HAVING or QUALIFY by output name; at least one is kept, and so is every output
    holding a sub-query (fuzz seed 192837: its table stayed a base table to fetch). Left whole: a DISTINCT (its rows
    depend on every output), a set operation, a column list on the alias, a star or USING/NATURAL join outside
    (they read outputs by position or by bare name). Returns whether an output was dropped."""
    used = _read_outputs(state, select)
    if used is None:
        return False
    # an output holding a sub-query stays: its tables are already scopes and base tables of the state
    kept = [p for p in select.expressions if p.alias_or_name.lower() in used or p.find(exp.Select)]
    if len(kept) == len(select.expressions):
        return False
    select.set("expressions", kept or select.expressions[:1])
    return True


def _read_outputs(state: FederationState, select: exp.Expression) -> set[str] | None:
    """The output names of the derived table ``select`` that are read (lower case), or None when they cannot all
    be known (see ``drop_unused_outputs``)."""
    parent = select.parent
    alias = parent.args.get("alias") if isinstance(parent, exp.Subquery) else None
    if not isinstance(select, exp.Select) or alias is None or alias.args.get("columns") or select.args.get("distinct"):
        return None
    outer = parent.parent.parent if isinstance(parent.parent, exp.From | exp.Join) else None
    if not isinstance(outer, exp.Select) or any(isinstance(p, exp.Star) for p in outer.expressions) or any(
            j.args.get("using") or j.args.get("method") for j in outer.args.get("joins") or []):
        return None  # outputs read by position or by bare name
    inside = {id(node) for node in select.walk()}
    used: set[str] = set()
    for node in state.ast.find_all(exp.Column):
        if id(node) not in inside and node.table == alias.name:
            if isinstance(node.this, exp.Star):
                return None
            used.add(node.name.lower())
    for clause in ("group", "order", "having", "qualify"):
        for column in (select.args.get(clause) or exp.Null()).find_all(exp.Column):
            if not column.table:
                used.add(column.name.lower())
    return used
