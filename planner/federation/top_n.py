"""Pass 6: LIMIT, and ORDER BY + LIMIT (top-N), on a single-table scope whose filters were all pushed go into
the table's fragment (the residual applies them again; NULL ordering is made explicit for every dialect).

    SELECT o.id FROM lake.main.orders o WHERE o.qty > 3 ORDER BY o.id DESC LIMIT 10 OFFSET 5
    -> lake: SELECT o.id AS id FROM main.orders AS o WHERE o.qty > 3 ORDER BY o.id DESC NULLS FIRST LIMIT 15
       residual: SELECT o.id AS id FROM "__fragment_0" AS o ORDER BY o.id DESC LIMIT 10 OFFSET 5

Below joins that keep every row of the FROM table once (top-N below a foreign-key -> primary-key join): each
joined table is matched on columns covering its primary key, so a row of the FROM table meets at most one of
its rows. Through LEFT JOINs every row of the FROM table gives exactly one output row, and its top-N rows
give the query's top-N: exact. Through an inner join a row may find no partner (no referential integrity
across sources), so the top-N is pushed only into the outermost query, for at most ``INNER_JOIN_CAP`` rows,
and the plan carries a fallback plan without it (``planner.plan.TopNFallback``) that execution runs when the
result came out short.

    SELECT o.id, c.name FROM pg.public.orders o LEFT JOIN maria.db.customers c ON o.cid = c.id
    ORDER BY o.total DESC LIMIT 20
    -> pg: SELECT o.id AS id, o.cid AS cid, o.total AS total FROM public.orders AS o
           ORDER BY o.total DESC NULLS FIRST LIMIT 20
       residual: SELECT o.id, c.name FROM "__fragment_0" AS o LEFT JOIN "__fragment_1" AS c ON o.cid = c.id
                 ORDER BY o.total DESC LIMIT 20
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
from sqlglot import exp

from connectors.base import Capabilities
from planner.federation.sqlast import conjuncts, explicit_nulls, has_local, int_literal, order_over_columns
from planner.federation.state import BaseTable, FederationState, read_as_text
from planner.plan import FederatedPlan, TopNFallback
from planner.pushdown import unpushable_reason

#: the most rows (LIMIT + OFFSET) pushed below an inner join: the result is held until checked, and a short one
#: is replaced by the fallback plan's
INNER_JOIN_CAP = 10_000


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
            if limit is not None and offset is not None:
                _push_below_joins(state, select, scoped, limit, offset)
            continue  # otherwise the LIMIT applies to the join's result; nothing to say per table
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


def with_top_n_fallback(plan: FederatedPlan, state: FederationState, fallback: FederatedPlan) -> FederatedPlan:
    """``plan`` (planned from ``state``, where ``push_limits`` set ``state.top_n_check``) carrying ``fallback``
    (the query planned without top-N below inner joins) as its ``TopNFallback``; ``fallback`` itself when
    the pushed table's fragment is not read exactly once by a residual plan (nothing to check it against)."""
    base, fetched, rows = state.top_n_check
    if plan.pushed_whole or base.fragment_id is None or plan.references().get(base.fragment_id) != 1:
        return fallback
    return dataclasses.replace(plan, top_n_fallback=TopNFallback(base.fragment_id, fetched, rows, fallback))


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


def _push_below_joins(state: FederationState, select: exp.Select, scoped: list[BaseTable], limit: int,
                      offset: int) -> None:
    """Top-N into the FROM table of a scope whose joins each match it with at most one row (``_row_keeping``):
    exact below LEFT JOINs; below an inner join only in the outermost query, up to ``INNER_JOIN_CAP`` rows, with
    ``state.top_n_check`` set so that the plan gets a fallback plan. Other join shapes are left as they are."""
    kind, base, why = _row_keeping(state, select, scoped)
    if kind is None:
        if base is not None:
            state.not_pushed_because(f"LIMIT on {base.ref} below the join", why)
        return
    what = f"LIMIT on {base.ref} below the join"
    capabilities = state.connector(base.ref.source).capabilities
    order, order_reason = _pushable_order(state, select, base, capabilities)
    blocked = _blockers(select, order_reason, False) + _inner_blockers(state, select, kind, limit + offset)
    if any(has_local(e, (exp.Explode, exp.Unnest, exp.UDTF)) for e in select.expressions):
        blocked.append("a set-returning function")
    if select.args.get("qualify") is not None:
        blocked.append("QUALIFY")
    if blocked:
        state.not_pushed_because(what, f"the query has {', '.join(blocked)}")
    elif not capabilities.limit:
        state.not_pushed_because(what, "the source does not apply LIMIT")
    else:
        base.limit = limit + offset
        if order is not None:
            base.order = [explicit_nulls(o.copy()) for o in order.expressions]
        base.top_n_note = why
        if kind == "inner":
            state.top_n_check = (base, limit + offset, limit)


def _inner_blockers(state: FederationState, select: exp.Select, kind: str, rows: int) -> list[str]:
    """What keeps a top-N out of the FROM table of an inner join (``_push_below_joins``)."""
    if kind != "inner":
        return []
    blockers = {
        "an inner join planned without top-N below it (the fallback plan)": not state.top_n_below_inner_joins,
        "an inner join inside a sub-query (only the outermost result is checked)": select is not state.ast,
        f"an inner join and LIMIT + OFFSET above {INNER_JOIN_CAP:,}": rows > INNER_JOIN_CAP,
        "an inner join and LIMIT 0": rows == 0,
    }
    return [what for what, present in blockers.items() if present]


def _row_keeping(state: FederationState, select: exp.Select, scoped: list[BaseTable]
                 ) -> tuple[str | None, BaseTable | None, str]:
    """(``"exact"`` when the scope's joins are LEFT JOINs giving each row of its FROM table exactly one output
    row, ``"inner"`` when some are inner joins giving it at most one, else None; the FROM table (None when the
    scope's shape does not apply at all); the note for EXPLAIN or the reason it is None).

    Each joined table must be a base table of the scope, joined ON equalities of plain columns that cover its
    primary key with columns of the tables before it (``_covers_key``); no join group or partial aggregate.
    """
    base = _from_table(select, scoped)
    if base is None:
        return None, None, ""
    by_alias = {b.alias: b for b in scoped}
    seen, kinds = [base.alias], []
    for join in select.args.get("joins") or []:
        kind = _join_kind(join)
        table = by_alias.get(join.this.alias_or_name) if isinstance(join.this, exp.Table) else None
        if kind is None or table is None:
            return None, None, ""
        reason = _covers_key(state, join, table, seen)
        if reason:
            return None, base, reason
        seen.append(table.alias)
        kinds.append(kind)
    if not kinds:
        return None, None, ""
    tables = ", ".join(seen[1:])
    if "inner" in kinds:
        return "inner", base, (f"top-N below the inner join of {tables} on its primary key; a fallback plan runs "
                               "if the join drops one of these rows")
    return "exact", base, f"top-N below the left join of {tables} on its primary key: exact"


def _from_table(select: exp.Select, scoped: list[BaseTable]) -> BaseTable | None:
    """The base table of the scope's FROM, when every source of the scope is a base table read by its own
    fragment (no derived table; no join group or partial aggregate: the LIMIT would be the join's)."""
    by_alias = {b.alias: b for b in scoped}
    from_ = select.args.get("from") or select.args.get("from_")
    first = from_.this if from_ is not None else None
    if not isinstance(first, exp.Table) or first.alias_or_name not in by_alias:
        return None
    if set(scoped[0].scope.selected_sources) != by_alias.keys():
        return None
    if any(b.group is not None or b.partials is not None for b in scoped):
        return None
    return by_alias[first.alias_or_name]


def _join_kind(join: exp.Join) -> str | None:
    """``"left"`` for ``LEFT [OUTER] JOIN ... ON``, ``"inner"`` for ``[INNER] JOIN ... ON``, else None (USING,
    cross, right, full, semi and anti joins)."""
    if join.args.get("using") or join.args.get("on") is None:
        return None
    side, kind = (join.side or "").upper(), (join.kind or "").upper()
    if side == "LEFT" and kind in ("", "OUTER"):
        return "left"
    if side == "" and kind in ("", "INNER"):
        return "inner"
    return None


def _covers_key(state: FederationState, join: exp.Join, table: BaseTable, seen: list[str]) -> str | None:
    """Why ``join`` may match a row of the tables ``seen`` before it with more than one row of ``table``, or
    None: its ON has ``seen_alias.x = table.k`` for every primary-key column ``k`` of ``table`` (plain
    columns of one kind of type, so DataFusion's equality is the source's: distinct keys stay distinct)."""
    key = state.primary_key(table.ref)
    if not key:
        return f"{table.ref} has no primary key the source declares"
    matched = set()
    for conjunct in conjuncts(join):
        if not isinstance(conjunct, exp.EQ):
            continue
        for mine, other in ((conjunct.this, conjunct.expression), (conjunct.expression, conjunct.this)):
            if isinstance(mine, exp.Column) and isinstance(other, exp.Column) and mine.table == table.alias \
                    and other.table in seen and _same_kind(state.column_type(mine), state.column_type(other)):
                matched.add(mine.name)
    missing = [k for k in key if k not in matched]
    if missing:
        return f"the join does not match {table.ref}'s primary key ({', '.join(key)}) column for column"
    return None


def _same_kind(a: pa.Field | None, b: pa.Field | None) -> bool:
    """Whether two join columns compare as the source compares them: both signed integers, both unsigned, both
    text, or one type (a widening cast keeps distinct keys distinct); never a column read as text (its Arrow
    value is a rendering of the source's)."""
    if a is None or b is None or read_as_text(a) or read_as_text(b):
        return False
    kinds = (pa.types.is_signed_integer, pa.types.is_unsigned_integer,
             lambda t: pa.types.is_string(t) or pa.types.is_large_string(t))
    return a.type == b.type or any(kind(a.type) and kind(b.type) for kind in kinds)
