"""Estimated rows of every join of a residual plan, for EXPLAIN and the estimate-error metric.

The residual plan is DataFusion's optimized logical plan over the fragments (``__fragment_N`` tables). Its
rows are estimated bottom-up with the textbook rules of ``planner.costs``: a fragment scan has the planner's
estimate of the fragment, each column the distinct count of the table column behind it (catalog
statistics); a filter keeps ``CONJUNCT_SELECTIVITY`` per conjunct; an inner equi-join returns
``|L| x |R| / max(NDV(l), NDV(r))``, where a side's NDV over several keys is the product of theirs (keys
independent) but never more than that side's rows (a composite primary key such as TPC-H partsupp's
``(ps_partkey, ps_suppkey)`` has as many values as rows); an outer join at least its preserved side; a
semi-join its probe side scaled by the share of keys found; GROUP BY ``planner.costs.group_rows``; LIMIT its
fetch. An input without an estimate makes every join above it unknown (None), never a guess. A fragment
that the dynamic filters the schedule would choose (``planner.dynamic_filters.choose``) restrict enters with
its rows after them (``filtered_estimates``): the probe keeps the share of its key's distinct values that the
build holds, as a semi-join would.

    >>> key_values([200_000.0, 10_000.0], 800_000.0), key_values([10_000.0, 25.0], 2e6)
    (800000.0, 250000.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlglot import exp

from catalog import Catalog, TableRef
from connectors.base import Fragment
from planner.costs import group_rows
from planner.dynamic_filters import CONJUNCT_SELECTIVITY, DynamicFilter, estimated_rows, scan_column, table_of

#: a semi-join whose key statistics are unknown keeps this share of its probe side
SEMI_JOIN_SHARE = 0.5


@dataclass(frozen=True)
class JoinEstimate:
    """One join of the residual plan: its type (DataFusion's: ``Inner``, ``Left``, ``LeftSemi``...), its key
    pairs as field names (``frozenset`` of ``frozenset({"o_custkey", "c_custkey"})``: side and order free, so
    the physical join that ran can be matched whichever side it built), and its estimated output rows (None
    when an input has no estimate)."""

    join_type: str
    on: frozenset[frozenset[str]]
    estimated_rows: int | None


@dataclass(frozen=True)
class FilteredEstimate:
    """A probe fragment's estimated rows once its dynamic filters restrict it, and the distinct values its
    filtered key columns keep (output column name -> values)."""

    rows: float
    ndv: dict[str, float]


def filtered_estimates(fragments: list[Fragment], filters: list[DynamicFilter], catalog: Catalog
                       ) -> dict[str, FilteredEstimate]:
    """Per probe fragment id, its rows after ``filters`` (``planner.dynamic_filters.choose``; builds first, a
    build that is itself a probe counted after its own filters). A filter keeps the share
    ``min(1, keys / domain)`` of its probe: ``keys`` the build column's distinct values (at most the build's
    rows), ``domain`` the larger of the two table columns' distinct counts (the probe's values and the build's
    taken as drawn independently from it; for a foreign key into a primary key it is the key's). A filter whose
    probe or build has no estimate keeps every row.

        orders (1.5M rows, o_custkey 100,000 values) probed by 6,000 of 150,000 customers -> 60,000 rows
    """
    by_id = {f.id: f for f in fragments}
    rows: dict[str, float | None] = {f.id: _fragment_rows(f, catalog) for f in fragments}
    keys: dict[str, dict[str, float]] = {}
    pending = list(filters)
    out: dict[str, FilteredEstimate] = {}
    while pending:  # builds before their probes (choose() makes no cycles)
        ready = [d for d in pending if not any(p.probe == d.build for p in pending)] or pending[:1]
        for dynamic in ready:
            pending.remove(dynamic)
            build, probe = by_id.get(dynamic.build), by_id.get(dynamic.probe)
            if build is None or probe is None or rows[build.id] is None or rows[probe.id] is None:
                continue
            build_rows = max(rows[build.id], 1.0)
            build_domain = _column_ndv(build, dynamic.build_column, catalog)
            values = min(keys.get(build.id, {}).get(dynamic.build_column) or build_domain or build_rows, build_rows)
            probe_domain = _column_ndv(probe, dynamic.probe_column, catalog)
            if not probe_domain:
                continue
            share = min(1.0, values / max(probe_domain, build_domain or 0.0))
            rows[probe.id] = rows[probe.id] * share
            probe_ndv = keys.get(probe.id, {}).get(dynamic.probe_column) or probe_domain
            keys.setdefault(probe.id, {})[dynamic.probe_column] = max(1.0, probe_ndv * share)
            out[probe.id] = FilteredEstimate(rows[probe.id], dict(keys[probe.id]))
    return out


def filtered_pairs(filters: list[DynamicFilter]) -> frozenset[frozenset[str]]:
    """The key pairs of ``filters`` (``{build column, probe column}``): a join on one compares a probe's keys
    with the very keys that restricted them, so its shares are taken by containment, not independence."""
    return frozenset(frozenset((d.build_column, d.probe_column)) for d in filters)


def _fragment_rows(fragment: Fragment, catalog: Catalog) -> float | None:
    """The rows a fragment scan enters the residual with: the planner's estimate; else, for an aggregating
    fragment (a sub-query or partial aggregation pushed whole), one row without GROUP BY and
    ``planner.costs.group_rows`` of its input with it; else the rows ``planner.dynamic_filters`` costs it at."""
    if fragment.estimated_rows is not None:
        return float(fragment.estimated_rows)
    rows = estimated_rows(fragment, catalog)
    select = fragment.ast
    if not isinstance(select, exp.Select) or select.args.get("distinct") is not None:
        return rows
    group = select.args.get("group")
    if group is None:
        aggregates = any(agg.parent_select is select for p in select.expressions for agg in p.find_all(exp.AggFunc))
        return 1.0 if aggregates else rows
    if rows is None:
        return None
    ndvs = []
    for key in group.expressions:
        alias = next((p.alias for p in select.expressions if isinstance(p, exp.Alias) and p.this == key), None)
        ndvs.append(_column_ndv(fragment, alias, catalog) if alias else None)
    return group_rows(rows, ndvs)


@dataclass
class _Relation:
    rows: float | None
    ndv: dict[str, float]  # field name -> distinct values (known columns only)
    # field name -> distinct values of the table column behind it, before any filter: the key domain a
    # semi-join's share is taken of
    domain: dict[str, float] = field(default_factory=dict)


def key_values(ndvs: list[float], rows: float) -> float:
    """Distinct values of a combination of join keys on one side: the product of the keys' distinct counts,
    at most the side's ``rows`` (and at least one)."""
    product = 1.0
    for ndv in ndvs:
        product *= max(ndv, 1.0)
    return max(1.0, min(product, rows))


def residual_join_estimates(plan, fragments: list[Fragment], catalog: Catalog,
                             filtered: dict[str, FilteredEstimate] | None = None,
                             pairs: frozenset[frozenset[str]] = frozenset()) -> list[JoinEstimate]:
    """The joins of ``plan`` (a ``datafusion.LogicalPlan`` over the fragments) in display order (pre-order,
    outermost first, as ``display_indent`` prints them), each with its estimated rows; ``filtered``
    (``filtered_estimates``): the fragments dynamic filters restrict, with their rows after them; ``pairs``
    (``filtered_pairs``): their key pairs. Never raises: a node it cannot read makes the estimates above it
    None."""
    by_id = {f.id: f for f in fragments}
    filtered = filtered or {}
    found: list[JoinEstimate | None] = []

    def visit(node) -> _Relation:
        try:
            variant = node.to_variant()
            kind = type(variant).__name__
        except Exception:  # a node the Python API cannot show: unknown above it
            return _Relation(None, {})
        slot = None
        if kind == "Join":
            slot = len(found)
            found.append(None)
        inputs = [visit(child) for child in node.inputs()]
        try:
            relation = _estimate(kind, variant, inputs, by_id, catalog, filtered, pairs)
        except Exception:  # estimates are a hint: never fail EXPLAIN or planning over one
            relation = _Relation(None, {})
        if slot is not None:
            found[slot] = JoinEstimate(str(variant.join_type()), _key_names(variant),
                                       None if relation.rows is None else max(0, round(relation.rows)))
        return relation

    try:
        visit(plan)
    except Exception:  # pragma: no cover - defensive: the walk itself only reads the plan
        return []
    return [j for j in found if j is not None]


def annotate(plan_text: str, estimates: list[JoinEstimate]) -> str:
    """``plan_text`` (``display_indent``) with ``(estimated N rows)`` after each join line, in order."""
    queue = list(estimates)
    lines = []
    for line in plan_text.splitlines():
        if _JOIN_LINE.match(line) and queue:
            estimate = queue.pop(0)
            if estimate.estimated_rows is not None:
                line += f" (estimated {estimate.estimated_rows:,} rows)"
        lines.append(line)
    return "\n".join(lines)


def match(estimates: list[JoinEstimate], join_type: str, on: str) -> JoinEstimate | None:
    """The estimate of a join that ran (``join_type`` and ``on`` as ``gateway.execution.residual.join_metrics``
    reports them: ``"Inner"``, ``"a.x = y, z = w"``), by its key names; None when no planned join has them
    (a semi-join a dynamic filter added, a key DataFusion rewrote)."""
    keys = frozenset(frozenset(p.strip() for p in pair.split(" = ")) for pair in on.split(", ") if " = " in pair)
    for estimate in estimates:
        if estimate.on == keys and estimate.join_type == join_type:
            return estimate
    for estimate in estimates:  # DataFusion may run a planned join with its sides swapped (Left <-> Right)
        if estimate.on == keys:
            return estimate
    return None


_JOIN_LINE = re.compile(r"^\s*(Inner|Left|Right|Full|LeftSemi|RightSemi|LeftAnti|RightAnti|LeftMark|RightMark)"
                        r" Join:")


def _key_names(join) -> frozenset[frozenset[str]]:
    pairs = set()
    for left, right in join.on():
        names = [_column_name(left), _column_name(right)]
        if all(names):
            pairs.add(frozenset(names))
    return frozenset(pairs)


def _column_name(expr) -> str | None:
    if expr.variant_name() == "Column":
        return expr.to_variant().name()
    return None


def _estimate(kind: str, node, inputs: list[_Relation], fragments: dict[str, Fragment],
              catalog: Catalog, filtered: dict[str, FilteredEstimate], pairs: frozenset[frozenset[str]]
              ) -> _Relation:
    if kind == "TableScan":
        return _scan(node, fragments, catalog, filtered.get(node.table_name()))
    if not inputs:
        return _Relation(None, {})
    if kind in _PASS_THROUGH:
        return inputs[0]
    if kind == "Join":
        return _join(str(node.join_type()), node, inputs[0], inputs[1], pairs)
    rule = _RULES.get(kind)
    return rule(node, inputs) if rule is not None else _Relation(None, {})


def _aggregate(node, inputs: list[_Relation]) -> _Relation:
    first = inputs[0]
    names = [_column_name(e) for e in node.group_by_exprs()]
    if first.rows is None:
        return _Relation(None, {})
    rows = group_rows(first.rows, [first.ndv.get(n) if n else None for n in names])
    ndv = {n: min(first.ndv[n], rows) for n in names if n and n in first.ndv}
    for aggregate in node.aggregate_exprs():  # an aggregate's values taken as all distinct (sums, averages)
        ndv[aggregate.schema_name()] = max(rows, 1.0)
    return _Relation(rows, ndv, {n: first.domain[n] for n in names if n and n in first.domain})


def _limit(node, inputs: list[_Relation]) -> _Relation:
    first, fetch = inputs[0], _literal_int(node.fetch())
    return first if fetch is None or first.rows is None else _Relation(min(first.rows, fetch), first.ndv,
                                                                        first.domain)


def _union(node, inputs: list[_Relation]) -> _Relation:
    return _Relation(None if any(i.rows is None for i in inputs) else sum(i.rows for i in inputs), {})


def _distinct(node, inputs: list[_Relation]) -> _Relation:
    first = inputs[0]
    rows = None if first.rows is None else group_rows(first.rows, list(first.ndv.values()) or [None])
    return _Relation(rows, first.ndv, first.domain)


#: nodes that keep their input's rows
_PASS_THROUGH = frozenset({"SubqueryAlias", "Sort", "Window", "Repartition", "Explain", "Analyze"})
#: the rule of each other logical node (``_estimate``; an unknown node: no estimate)
_RULES = {
    "Filter": lambda node, inputs: _scaled(inputs[0], CONJUNCT_SELECTIVITY ** _conjuncts(str(node.predicate()))),
    "Aggregate": _aggregate,
    "Projection": lambda node, inputs: _Relation(inputs[0].rows, _projected(node.projections(), inputs[0].ndv),
                                                 _projected(node.projections(), inputs[0].domain)),
    "Limit": _limit,
    "Union": _union,
    "Distinct": _distinct,
}


def _scan(node, fragments: dict[str, Fragment], catalog: Catalog, filtered: FilteredEstimate | None) -> _Relation:
    fragment = fragments.get(node.table_name())
    if fragment is None:
        return _Relation(None, {})
    rows = filtered.rows if filtered is not None else _fragment_rows(fragment, catalog)
    if rows is None:
        return _Relation(None, {})
    rows = float(rows) * CONJUNCT_SELECTIVITY ** sum(_conjuncts(str(f)) for f in node.filters()
                                                     if str(f) != _TRUE)
    ndv, domain = {}, {}
    computed = _aggregate_outputs(fragment)
    for _, name in node.projection():
        if name in computed:  # an aggregate the fragment computed: its values taken as all distinct
            ndv[name] = max(rows, 1.0)
            continue
        column = _column_ndv(fragment, name, catalog)
        distinct = (filtered.ndv.get(name) if filtered is not None else None) or column
        if distinct is not None:
            ndv[name] = min(distinct, max(rows, 1.0))
        if column is not None:
            domain[name] = column
    return _Relation(rows, ndv, domain)


def _aggregate_outputs(fragment: Fragment) -> set[str]:
    """Output names of the aggregates an aggregating fragment computes (not its grouping columns)."""
    select = fragment.ast
    if not isinstance(select, exp.Select):
        return set()
    return {p.alias for p in select.expressions if isinstance(p, exp.Alias)
            and any(agg.parent_select is select for agg in p.find_all(exp.AggFunc))}


def _column_ndv(fragment: Fragment, name: str, catalog: Catalog) -> float | None:
    column = scan_column(fragment, name)
    if column is None:
        return None
    table = table_of(fragment, column)
    if table is None:
        return None
    try:
        stats = catalog.statistics(TableRef(*table.split(".", 2)))
    except Exception:  # statistics are a hint
        return None
    found = stats.columns.get(column.name) or {k.lower(): v for k, v in stats.columns.items()}.get(column.name.lower())
    return float(found.distinct) if found is not None and found.distinct else None


def _join(join_type: str, node, left: _Relation, right: _Relation,
          pairs: frozenset[frozenset[str]] = frozenset()) -> _Relation:
    if left.rows is None or right.rows is None:
        return _Relation(None, {})
    left_ndvs, right_ndvs, shares = _key_statistics(node, left, right, pairs)
    if not list(node.on()):
        inner = left.rows * right.rows * (CONJUNCT_SELECTIVITY if node.filter() is not None else 1.0)
    elif left_ndvs:
        inner = left.rows * right.rows / max(key_values(left_ndvs, left.rows), key_values(right_ndvs, right.rows))
    else:
        inner = max(left.rows, right.rows)  # keys without statistics: a foreign-key join, the larger side
    if node.filter() is not None and list(node.on()):
        # a condition besides the keys rejects every match of some keys: CONJUNCT_SELECTIVITY of those found
        shares = [(a * (1.0 - CONJUNCT_SELECTIVITY), b * (1.0 - CONJUNCT_SELECTIVITY)) for a, b in shares]
    rows = _join_rows(join_type, inner, left.rows, right.rows, shares)
    if rows is None:
        return _Relation(None, {})
    semi = join_type not in ("Left", "Right") and join_type[:4] in ("Left", "Righ")
    side = left if join_type.startswith("Left") else right
    kept = side.ndv if semi else {**left.ndv, **right.ndv}
    domain = side.domain if semi else {**left.domain, **right.domain}
    return _Relation(rows, {k: min(v, max(rows, 1.0)) for k, v in kept.items()}, domain)


def _key_statistics(node, left: _Relation, right: _Relation, pairs: frozenset[frozenset[str]] = frozenset()
                    ) -> tuple[list[float], list[float], list[tuple]]:
    """Per equi-join key: the distinct values on each side (a side without statistics as distinct as the
    other), and for keys known on both sides the share of each side's values the other holds: each side's
    values taken as drawn independently from the key's domain (the larger of the two table columns' distinct
    counts before any filter), so that a left value is found on the right with probability
    ``NDV(right) / domain``. TPC-H Q22's customers of a few countries without orders: orders hold 99,996 of
    150,000 customer keys, so a third of any customers are kept, not none. A key pair of a dynamic filter
    (``pairs``), or one whose side is a computed value without a table column's domain (an aggregate's output:
    TPC-H Q2's ``ps_supplycost = MIN(ps_supplycost)``), is taken by containment instead: one side's values are
    those of the other that it holds."""
    left_ndvs, right_ndvs, shares = [], [], []
    for l_expr, r_expr in node.on():
        l_name, r_name = _column_name(l_expr) or "", _column_name(r_expr) or ""
        l_ndv, r_ndv = left.ndv.get(l_name), right.ndv.get(r_name)
        if l_ndv or r_ndv:
            left_ndvs.append(l_ndv or r_ndv)
            right_ndvs.append(r_ndv or l_ndv)
        if l_ndv and r_ndv:
            contained = (frozenset((l_name, r_name)) in pairs
                         or not left.domain.get(l_name) or not right.domain.get(r_name))
            domain = max(l_ndv, r_ndv) if contained else max(
                l_ndv, r_ndv, left.domain.get(l_name, 0.0), right.domain.get(r_name, 0.0))
            shares.append((min(1.0, r_ndv / domain), min(1.0, l_ndv / domain)))
    return left_ndvs, right_ndvs, shares


def _join_rows(join_type: str, inner: float, left: float, right: float, shares: list[tuple]) -> float | None:
    """Rows of a join of ``join_type`` whose inner equi-join gives ``inner`` rows (None: a type not known)."""
    left_share = min((s[0] for s in shares), default=SEMI_JOIN_SHARE)
    right_share = min((s[1] for s in shares), default=SEMI_JOIN_SHARE)
    return {
        "Inner": inner,
        "Left": max(inner, left),
        "Right": max(inner, right),
        "Full": max(inner, left, right),
        "LeftSemi": left * left_share,
        "LeftAnti": left * (1.0 - left_share) if shares else left * SEMI_JOIN_SHARE,
        "RightSemi": right * right_share,
        "RightAnti": right * (1.0 - right_share) if shares else right * SEMI_JOIN_SHARE,
        "LeftMark": left,
        "RightMark": right,
    }.get(join_type)


def _projected(projections, ndv: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for expr in projections:
        name = _column_name(expr)
        if name is not None and name in ndv:
            out[name] = ndv[name]
        elif expr.variant_name() == "Alias":
            alias = expr.to_variant()
            inner = _column_name(alias.expr())
            if inner is not None and inner in ndv:
                out[alias.alias()] = ndv[inner]
    return out


def _scaled(relation: _Relation, share: float) -> _Relation:
    if relation.rows is None:
        return relation
    rows = relation.rows * share
    return _Relation(rows, {k: min(v, max(rows, 1.0)) for k, v in relation.ndv.items()}, relation.domain)


#: a scan's filter that keeps every row (DataFusion writes ``full_filters=[Boolean(true)]``)
_TRUE = "Expr(Boolean(true))"


def _conjuncts(predicate: str) -> int:
    """Top-level AND-ed conditions of a predicate's display text (parentheses respected)."""
    depth, count = 0, 1
    for token in re.finditer(r"\(|\)|\bAND\b", predicate):
        text = token.group(0)
        depth += 1 if text == "(" else -1 if text == ")" else 0
        count += 1 if text == "AND" and depth == 0 else 0
    return count


def _literal_int(expr) -> int | None:
    if expr is None:
        return None
    match_ = re.fullmatch(r"Expr\((?:Int64|UInt64)\((\d+)\)\)", str(expr))
    return int(match_.group(1)) if match_ else None

