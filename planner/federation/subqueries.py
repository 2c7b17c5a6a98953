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
        if (scope.is_derived_table or scope.is_cte) and drop_unused_outputs(state, scope.expression):
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
    """Remove the projections of the derived table or CTE ``select`` that no column outside it names (by the
    alias it is read under), nor its own GROUP BY, ORDER BY, HAVING or QUALIFY by output name; at least one is
    kept, and so is every output holding a sub-query (fuzz seed 192837: its table stayed a base table to fetch).
    Left whole: a DISTINCT (its rows depend on every output), a set operation, a column list on the alias, a
    recursive CTE, a star or USING/NATURAL join where it is read (they read outputs by position or by bare name).
    Returns whether an output was dropped (fuzz seeds 173205 and 662607: a fragment of two differently ordered
    STRING_AGGs, one unread, failed in DataFusion, which drops the unread one when it plans the query itself)."""
    used = _read_outputs(state, select)
    if used is None:
        return False
    # an output holding a sub-query stays: its tables are already scopes and base tables of the state
    kept = [p for p in select.expressions if p.alias_or_name.lower() in used or p.find(exp.Select)]
    if len(kept) == len(select.expressions):
        return False
    select.set("expressions", kept or select.expressions[:1])
    return True


def _readers(state: FederationState, select: exp.Expression) -> list[exp.Expression] | None:
    """Where the derived table or CTE ``select`` is read: its Subquery node, or each table reference naming the
    CTE; None for anything else (a column list on the alias, a recursive CTE, a sub-query in an expression)."""
    parent = select.parent
    if isinstance(parent, exp.Subquery):
        alias = parent.args.get("alias")
        return [parent] if alias is not None and not alias.args.get("columns") else None
    if not isinstance(parent, exp.CTE) or parent.args.get("alias") is None or parent.args["alias"].args.get(
            "columns") or (parent.parent is not None and parent.parent.args.get("recursive")):
        return None
    name = parent.alias_or_name
    return [t for t in state.ast.find_all(exp.Table) if not t.args.get("db") and t.name == name]


def _read_outputs(state: FederationState, select: exp.Expression) -> set[str] | None:
    """The output names of the derived table or CTE ``select`` that are read (lower case), or None when they
    cannot all be known (see ``drop_unused_outputs``)."""
    readers = _readers(state, select) if isinstance(select, exp.Select) and not select.args.get("distinct") else None
    if readers is None:
        return None
    inside = {id(node) for node in select.walk()}
    used: set[str] = set()
    for reader in readers:
        outer = reader.parent.parent if isinstance(reader.parent, exp.From | exp.Join) else None
        if not isinstance(outer, exp.Select) or any(isinstance(p, exp.Star) for p in outer.expressions) or any(
                j.args.get("using") or j.args.get("method") for j in outer.args.get("joins") or []):
            return None  # outputs read by position or by bare name
        for node in state.ast.find_all(exp.Column):
            if id(node) not in inside and node.table == reader.alias_or_name:
                if isinstance(node.this, exp.Star):
                    return None
                used.add(node.name.lower())
    for clause in ("group", "order", "having", "qualify"):
        for column in (select.args.get(clause) or exp.Null()).find_all(exp.Column):
            if not column.table:
                used.add(column.name.lower())
    return used
