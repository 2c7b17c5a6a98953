"""What the residual tells execution about its fragments: the equi-joins between them (candidates for dynamic
filters, ``FragmentJoin``) and the conditions DataFusion applies to each one's rows (``LocalFilter``).

    SELECT ... FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "o" ON "o"."customer_id" = "c"."id"
    -> FragmentJoin("__fragment_1", "customer_id", "__fragment_0", "id", either_way=True)
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from planner.federation.sqlast import condition_containers, conjuncts, inner_joins_only
from planner.federation.state import FederationState
from planner.plan import FragmentJoin, LocalFilter

#: (fragment id or None, whether the alias belongs to an enclosing scope, which reference of the fragment)
Resolved = tuple[str | None, bool, int]
Resolve = Callable[[Scope, str], Resolved]


def fragment_joins(state: FederationState) -> list[FragmentJoin]:
    """Equi-joins between fragments in the residual, candidates for dynamic filters; ``*_use`` tells which
    reference of a fragment the residual reads more than once (a shared fragment) the join is on.

    An inner-join condition of one scope works either way. A correlation ``inner.k = outer.k`` of an
    EXISTS/IN/scalar sub-query only restricts the inner side (its rows with other keys never meet an outer
    row), so it is recorded outer -> inner, ``either_way`` False.
    """
    resolve = _resolver(state)
    joins = []
    for scope in state.scopes:
        select = scope.expression
        if not isinstance(select, exp.Select) or not inner_joins_only(select):
            continue
        for container in condition_containers(select):
            for conjunct in conjuncts(container):
                join = _semi_join(state, scope, conjunct, resolve) or _equi_join(scope, conjunct, resolve)
                if join is not None:
                    joins.append(join)
    return joins


def local_filters(state: FederationState) -> dict[str, LocalFilter]:
    """fragment id -> the conjuncts of its table that DataFusion applies: a dynamic filter built from that
    fragment applies them first, so its keys are as selective as the query."""
    filters: dict[str, LocalFilter | None] = {}
    for b in state.bases:
        if b.fragment_id is None or b.partials is not None:
            continue
        local = LocalFilter(b.alias, exp.and_(*b.local)) if b.local else None
        if b.fragment_id in filters and filters[b.fragment_id] != local:
            local = None  # a shared fragment: only conditions every reader applies may narrow its keys
        filters[b.fragment_id] = local
    return {fid: local for fid, local in filters.items() if local is not None}


def _resolver(state: FederationState) -> Resolve:
    """``resolve(scope, alias)``: the fragment a column's table alias reads, as seen from ``scope``."""
    occurrences: dict[int, int] = {}  # table node -> its number among the references to its fragment
    counts: dict[str, int] = {}
    for table in state.ast.find_all(exp.Table):
        if table.name.startswith("__fragment_"):
            occurrences[id(table)] = counts.get(table.name, 0)
            counts[table.name] = occurrences[id(table)] + 1

    def own_fragments(select: exp.Select) -> dict[str, tuple[str, int]]:
        tables = {}
        from_ = select.find(exp.From)
        items = ([from_.this] if from_ is not None else []) + [j.this for j in select.args.get("joins") or []]
        for item in items:
            if isinstance(item, exp.Table) and item.name.startswith("__fragment_"):
                tables[item.alias_or_name] = (item.name, occurrences.get(id(item), 0))
        return tables

    owned = {id(s): own_fragments(s.expression) for s in state.scopes if isinstance(s.expression, exp.Select)}

    def resolve(scope: Scope, alias: str) -> Resolved:
        outer = False
        while scope is not None:
            if alias in owned.get(id(scope), {}):
                fragment, occurrence = owned[id(scope)][alias]
                return fragment, outer, occurrence
            if alias in scope.sources:
                return None, outer, 0
            scope, outer = scope.parent, True
        return None, outer, 0

    return resolve


def _equi_join(scope: Scope, conjunct: exp.Expression, resolve: Resolve) -> FragmentJoin | None:
    """``a.x = b.y`` between two fragments: either way within one scope, outer -> inner for a correlation."""
    if not (isinstance(conjunct, exp.EQ) and isinstance(conjunct.this, exp.Column)
            and isinstance(conjunct.expression, exp.Column)):
        return None
    (a, a_outer, a_use), (b, b_outer, b_use) = (resolve(scope, c.table) for c in (conjunct.this, conjunct.expression))
    if a is None or b is None or a == b:
        return None
    left, right = conjunct.this.name, conjunct.expression.name
    if not a_outer and not b_outer:
        return FragmentJoin(a, left, b, right, True, a_use, b_use)
    if a_outer != b_outer and scope.is_subquery:
        return (FragmentJoin(a, left, b, right, False, a_use, b_use) if a_outer
                else FragmentJoin(b, right, a, left, False, b_use, a_use))
    return None


def _semi_join(state: FederationState, scope: Scope, conjunct: exp.Expression, resolve: Resolve
               ) -> FragmentJoin | None:
    """``t.k IN (SELECT n.c FROM "__fragment_n" AS n [WHERE ...] [GROUP BY ...])``: n's values of ``c`` restrict
    t's fragment (rows of t with other keys fail the IN). The sub-query may filter, group or correlate: its
    answer is a subset of the fragment's column whatever it does, so every key of the fragment (after the
    conditions DataFusion applies to it, ``LocalFilter``) keeps every row that can pass. TPC-H Q20 with part in
    MariaDB: ``p_name LIKE 'forest%'`` is re-checked in the residual, and the IN's 2,127 part keys then cut
    partsupp from 800,000 rows to 8,508. Returns the directed join, or None."""
    if not isinstance(conjunct, exp.In) or not isinstance(conjunct.this, exp.Column):
        return None
    query = conjunct.args.get("query")
    inner = query.this if isinstance(query, exp.Subquery) else None
    if not isinstance(inner, exp.Select) or inner.args.get("joins"):
        return None
    from_ = inner.args.get("from") or inner.args.get("from_")
    table = from_.this if from_ is not None else None
    build = next((f for f in state.fragments if isinstance(table, exp.Table) and f.id == table.name), None)
    column = _output_column(inner, build, table.alias_or_name) if build is not None else None
    if column is None:
        return None
    probe, outer, use = resolve(scope, conjunct.this.table)
    if probe is None or outer:
        return None
    return FragmentJoin(build.id, column, probe, conjunct.this.name, False, 0, use)


def _output_column(select: exp.Select, build, alias: str) -> str | None:
    """The fragment column the sub-query's one output is, itself (``*`` of a one-column fragment, or the column,
    maybe aliased), not an expression over it: ``IN (SELECT CAST('2023-03-15' AS DATE) FROM f)`` compares with
    the constant, not with f's column (the fuzzer's ``date = integer`` from PostgreSQL). None otherwise."""
    if len(select.expressions) != 1:
        return None
    output = select.expressions[0]
    output = output.this if isinstance(output, exp.Alias) else output
    if isinstance(output, exp.Star):
        return build.schema.names[0] if len(build.schema) == 1 else None
    if isinstance(output, exp.Column) and output.table in ("", alias) and output.name in build.schema.names:
        return output.name
    return None
