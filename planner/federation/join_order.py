"""Pass 0: the order of a scope's inner joins, chosen by estimated rows when the written one costs far more.

DataFusion joins a FROM list in the order written: it starts from the first table and adds, each time, the
first table left in the list that an equality joins to what it has joined so far, else the first one (its
``EliminateCrossJoin`` rule; it has no cost-based join order). So does the residual plan, and so does a file
source's own session when the whole query runs there. A written order that meets a low-distinct key early
pays for it: TPC-H Q5 listed as ``region, nation, customer, orders, lineitem, supplier`` joins supplier to
customer on nationkey (about 12M rows at SF1) and runs in 0.8 s over Parquet where TPC-H's own order takes
0.2 s (``bench/join_order_bench.py``).

This pass estimates the rows of each join DataFusion would make of the written list (the catalog's statistics,
``planner.costs``: a table's rows after its own filters, ``|L| |R| / max(NDV)`` per join, a join on several keys
by its most selective one), sums them (the textbook C_out cost: the rows every join produces), and does the same
for the greedy orders that start from each table and add, each time, the joined
table whose join is estimated smallest. When the cheapest is at most ``1 / REORDER_GAIN`` of the written
order's cost, the FROM list is rewritten in that order, the inner joins' ON conditions moved into WHERE (for
inner joins the same query), and EXPLAIN says so with both estimates. Estimates are rough, so a written order
within that factor stays as the user wrote it.

Left as written: a scope whose tables all live in one database (PostgreSQL, MariaDB, SQLite: it orders its
joins itself, and the tables of a database keep their written order among themselves in any scope), a scope
with outer, semi, NATURAL or USING joins, a FROM item that is not a base table (a
derived table, a CTE, UNNEST), ``SELECT *`` (its column order follows the FROM list), a LIMIT without ORDER BY,
more than ``MAX_RELATIONS`` tables, or a table without a row count.

    SELECT ... FROM region r JOIN nation n ON n.rk = r.rk JOIN customer c ON ... , orders o, ... WHERE ...
    -> SELECT ... FROM customer c, orders o, lineitem l, supplier s, nation n, region r
       WHERE <the WHERE> AND n.rk = r.rk AND ...
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from planner.costs import column_lookup, estimate_fragment_rows
from planner.dynamic_filters import CONJUNCT_SELECTIVITY
from planner.federation.sqlast import column_aliases, condition_containers, conjuncts, has_subquery, inner_joins_only
from planner.federation.state import BaseTable, FederationState

#: reorder only when the written order's estimated cost is at least this many times the best one's
REORDER_GAIN = 2.0
#: scopes with more tables keep their order (the greedy search is quadratic per start)
MAX_RELATIONS = 12


@dataclass(frozen=True)
class _Edge:
    """An equality between one column of each of two tables: ``left.left_column = right.right_column``."""

    left: str
    left_column: str
    right: str
    right_column: str


@dataclass
class _Scope:
    """What the cost of an order needs: rows per alias (after its own filters), equi-join edges, the alias
    sets of the other multi-table conjuncts, and the distinct values of each join column."""

    rows: dict[str, float]
    edges: list[_Edge]
    others: list[frozenset[str]]
    ndv: dict[tuple[str, str], float | None]


def order_joins(state: FederationState) -> None:
    """Rewrite each eligible scope's FROM list in the order its estimated cost favours (see the module)."""
    for scoped in state.by_scope():
        select = scoped[0].scope.expression
        if isinstance(select, exp.Select):
            _order_scope(state, select, scoped)


def _order_scope(state: FederationState, select: exp.Select, scoped: list[BaseTable]) -> None:
    bases = _eligible(select, scoped)
    if bases is None:
        return
    scope = _costing(state, select, bases)
    if scope is None:
        return
    written = [b.alias for b in bases]
    planned_by_source = {b.alias: b.ref.source for b in bases
                         if not state.connector(b.ref.source).capabilities.local_compute}
    if len({b.ref.source for b in bases}) == 1 and planned_by_source:
        return  # the whole scope runs in one database, which orders its joins itself
    written_cost = _cost(written, scope)
    best_cost, best = written_cost, written
    for start in written:
        candidate = _in_source_order(_greedy(start, written, scope), written, planned_by_source)
        cost = _cost(candidate, scope)
        if cost < best_cost:
            best_cost, best = cost, candidate
    if best == written or best_cost * REORDER_GAIN > written_cost:
        return
    _rewrite(select, {b.alias: b.node for b in bases}, best)
    state.join_orders.append(
        f"{', '.join(best)} (written {', '.join(written)}): an estimated {best_cost:,.0f} rows through its joins"
        f" against {written_cost:,.0f}")


def _eligible(select: exp.Select, scoped: list[BaseTable]) -> list[BaseTable] | None:
    """The base tables of ``select``'s FROM list in written order, when the list may be reordered; else None."""
    if not inner_joins_only(select) or any(isinstance(p, exp.Star) or (isinstance(p, exp.Column)
                                                                        and isinstance(p.this, exp.Star))
                                          for p in select.expressions):
        return None
    if select.args.get("limit") is not None and select.args.get("order") is None:
        return None
    from_ = select.args.get("from") or select.args.get("from_")
    joins = select.args.get("joins") or []
    if from_ is None or any(j.args.get("using") or j.args.get("method") for j in joins):
        return None
    items = [from_.this, *(j.this for j in joins)]
    if not 3 <= len(items) <= MAX_RELATIONS or not all(isinstance(i, exp.Table) for i in items):
        return None
    by_node = {id(b.node): b for b in scoped}
    bases = [by_node.get(id(item)) for item in items]
    if any(b is None for b in bases) or len({b.alias for b in bases}) != len(bases):
        return None
    return bases


def _costing(state: FederationState, select: exp.Select, bases: list[BaseTable]) -> _Scope | None:
    """The estimates of the scope (None when a table has no row count: no statistics, no decision)."""
    aliases = {b.alias for b in bases}
    own: dict[str, list[exp.Expression]] = {a: [] for a in aliases}
    edges: list[_Edge] = []
    others: list[frozenset[str]] = []
    for container in condition_containers(select):
        for conjunct in conjuncts(container):
            used = column_aliases(conjunct)
            if not used <= aliases:
                continue  # an outer scope's column: a correlation, evaluated wherever DataFusion puts it
            if len(used) == 1 and not has_subquery(conjunct):
                own[next(iter(used))].append(conjunct)
            elif len(used) >= 2:
                edge = _edge(conjunct)
                if edge is not None:
                    edges.append(edge)
                else:
                    others.append(frozenset(used))
    rows: dict[str, float] = {}
    ndv: dict[tuple[str, str], float | None] = {}
    for b in bases:
        statistics = state.statistics(b.ref)
        if statistics is None or statistics.rows is None:
            return None
        where = exp.and_(*(c.copy() for c in own[b.alias])) if own[b.alias] else None
        rows[b.alias] = max(1.0, float(estimate_fragment_rows(statistics, where)))
        lookup = column_lookup(statistics)
        for edge in edges:
            for alias, column in ((edge.left, edge.left_column), (edge.right, edge.right_column)):
                if alias == b.alias:
                    found = lookup(exp.column(column))
                    ndv[(alias, column)] = found.distinct if found is not None else None
    return _Scope(rows, edges, others, ndv)


def _edge(conjunct: exp.Expression) -> _Edge | None:
    """``a.x = b.y`` (one column of each of two tables, nothing else on either side) as an edge; else None."""
    if not isinstance(conjunct, exp.EQ):
        return None
    left, right = conjunct.left, conjunct.right
    if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)) or left.table == right.table:
        return None
    return _Edge(left.table, left.name, right.table, right.name)


def _cost(order: list[str], scope: _Scope) -> float:
    """Estimated rows summed over the joins DataFusion makes of the FROM list ``order``: it takes the first
    table left that an edge joins to those joined so far, else the first."""
    joined = {order[0]}
    current = scope.rows[order[0]]
    remaining = list(order[1:])
    total = 0.0
    while remaining:
        table = next((t for t in remaining if _edges_to(joined, t, scope)), remaining[0])
        remaining.remove(table)
        current = _join_rows(joined, current, table, scope)
        joined.add(table)
        total += current
    return total


def _greedy(start: str, written: list[str], scope: _Scope) -> list[str]:
    """The order from ``start`` that adds, each time, the table joined by an edge whose join is estimated
    smallest (ties: written order); a table no edge reaches comes last, in written order."""
    joined = {start}
    order = [start]
    current = scope.rows[start]
    remaining = [t for t in written if t != start]
    while remaining:
        reachable = [t for t in remaining if _edges_to(joined, t, scope)]
        if not reachable:
            order.extend(remaining)
            break
        current, _, table = min((_join_rows(joined, current, t, scope), remaining.index(t), t) for t in reachable)
        remaining.remove(table)
        joined.add(table)
        order.append(table)
    return order


def _in_source_order(order: list[str], written: list[str], planned_by_source: dict[str, str]) -> list[str]:
    """``order`` with the tables of each database source (``planned_by_source``: alias -> source) back in their
    written order among themselves, in the places ``order`` gives that source: a join group pushed to
    PostgreSQL or MariaDB keeps the SQL the user wrote (MariaDB ran TPC-H Q11's partsupp x supplier 11-13%
    slower listed the other way round), while the residual's order and the file sources' follow the
    estimates."""
    queues: dict[str, list[str]] = {}
    for alias in written:
        if alias in planned_by_source:
            queues.setdefault(planned_by_source[alias], []).append(alias)
    return [queues[planned_by_source[a]].pop(0) if a in planned_by_source else a for a in order]


def _edges_to(joined: set[str], table: str, scope: _Scope) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """The edges between the joined tables and ``table``: ((joined alias, column), (table, column)) each."""
    found = []
    for e in scope.edges:
        if e.left in joined and e.right == table:
            found.append(((e.left, e.left_column), (e.right, e.right_column)))
        elif e.right in joined and e.left == table:
            found.append(((e.right, e.right_column), (e.left, e.left_column)))
    return found


def _join_rows(joined: set[str], current: float, table: str, scope: _Scope) -> float:
    """Estimated rows of (the ``current`` rows of the ``joined`` tables) joined with ``table``: ``|L| |R| /
    max(NDV(l), NDV(r))`` for its most selective key pair (a side's distinct values at most its rows; unknown:
    a key), the cross product without edges, and ``CONJUNCT_SELECTIVITY`` per other condition it completes.
    Further key pairs are not taken as narrowing it: correlated keys (a composite foreign key) would make that
    an underestimate, and an order is only changed on estimates that say it is far better."""
    right = scope.rows[table]
    pairs = _edges_to(joined, table, scope)
    if pairs:
        # the most selective key pair alone: keys combined as independent would take TPC-H's lineitem x
        # partsupp on (partkey, suppkey) for 800,000 rows where every one of 6,000,000 finds its partner
        rows = min(current * right / max(min(scope.ndv.get(lc) or current, current),
                                         min(scope.ndv.get(rc) or right, right), 1.0) for lc, rc in pairs)
    else:
        rows = current * right
    after = joined | {table}
    for used in scope.others:
        if table in used and used <= after:
            rows *= CONJUNCT_SELECTIVITY
    return max(1.0, rows)


def _rewrite(select: exp.Select, nodes: dict[str, exp.Table], order: list[str]) -> None:
    """``select``'s FROM list as ``order`` (comma joins), its joins' ON conditions AND-ed into WHERE."""
    key = "from_" if "from_" in select.args else "from"
    moved = [j.args["on"] for j in select.args.get("joins") or [] if j.args.get("on") is not None]
    where = select.args.get("where")
    conditions = ([where.this] if where is not None else []) + moved
    select.set(key, exp.From(this=nodes[order[0]]))
    select.set("joins", [exp.Join(this=nodes[alias]) for alias in order[1:]])
    if conditions:
        select.set("where", exp.Where(this=exp.and_(*conditions, copy=False)))
