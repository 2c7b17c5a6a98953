"""Estimated rows of every join of a residual plan, for EXPLAIN and the estimate-error metric.

The residual plan is DataFusion's optimized logical plan over the fragments (``__fragment_N`` tables). Its
rows are estimated bottom-up with the textbook rules of ``planner.costs``: a fragment scan has the planner's
estimate of the fragment, each column the distinct count of the table column behind it (catalog
statistics); a filter keeps ``CONJUNCT_SELECTIVITY`` per conjunct; an inner equi-join returns
``|L| x |R| / max(NDV(l), NDV(r))``, where a side's NDV over several keys is the product of theirs (keys
independent) but never more than that side's rows (a composite primary key such as TPC-H partsupp's
``(ps_partkey, ps_suppkey)`` has as many values as rows); an outer join at least its preserved side; a
semi-join its probe side scaled by the share of keys found; GROUP BY ``planner.costs.group_rows``; LIMIT its
fetch. An input without an estimate makes every join above it unknown (None), never a guess. Estimates are
of each join alone: a dynamic filter from another join may shrink its inputs below them at run time.

    >>> key_values([200_000.0, 10_000.0], 800_000.0), key_values([10_000.0, 25.0], 2e6)
    (800000.0, 250000.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from catalog import Catalog, TableRef
from connectors.base import Fragment
from planner.costs import group_rows
from planner.dynamic_filters import CONJUNCT_SELECTIVITY, estimated_rows, scan_column, table_of

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


@dataclass
class _Relation:
    rows: float | None
    ndv: dict[str, float]  # field name -> distinct values (known columns only)


def key_values(ndvs: list[float], rows: float) -> float:
    """Distinct values of a combination of join keys on one side: the product of the keys' distinct counts,
    at most the side's ``rows`` (and at least one)."""
    product = 1.0
    for ndv in ndvs:
        product *= max(ndv, 1.0)
    return max(1.0, min(product, rows))


def residual_join_estimates(plan, fragments: list[Fragment], catalog: Catalog) -> list[JoinEstimate]:
    """The joins of ``plan`` (a ``datafusion.LogicalPlan`` over the fragments) in display order (pre-order,
    outermost first, as ``display_indent`` prints them), each with its estimated rows. Never raises: a node
    it cannot read makes the estimates above it None."""
    by_id = {f.id: f for f in fragments}
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
            relation = _estimate(kind, variant, inputs, by_id, catalog)
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
              catalog: Catalog) -> _Relation:
    if kind == "TableScan":
        return _scan(node, fragments, catalog)
    if not inputs:
        return _Relation(None, {})
    if kind in _PASS_THROUGH:
        return inputs[0]
    rule = _RULES.get(kind)
    return rule(node, inputs) if rule is not None else _Relation(None, {})


def _aggregate(node, inputs: list[_Relation]) -> _Relation:
    first = inputs[0]
    names = [_column_name(e) for e in node.group_by_exprs()]
    if first.rows is None:
        return _Relation(None, {})
    rows = group_rows(first.rows, [first.ndv.get(n) if n else None for n in names])
    return _Relation(rows, {n: min(first.ndv[n], rows) for n in names if n and n in first.ndv})


def _limit(node, inputs: list[_Relation]) -> _Relation:
    first, fetch = inputs[0], _literal_int(node.fetch())
    return first if fetch is None or first.rows is None else _Relation(min(first.rows, fetch), first.ndv)


def _union(node, inputs: list[_Relation]) -> _Relation:
    return _Relation(None if any(i.rows is None for i in inputs) else sum(i.rows for i in inputs), {})


def _distinct(node, inputs: list[_Relation]) -> _Relation:
    first = inputs[0]
    rows = None if first.rows is None else group_rows(first.rows, list(first.ndv.values()) or [None])
    return _Relation(rows, first.ndv)


#: nodes that keep their input's rows
_PASS_THROUGH = frozenset({"SubqueryAlias", "Sort", "Window", "Repartition", "Explain", "Analyze"})
#: the rule of each other logical node (``_estimate``; an unknown node: no estimate)
_RULES = {
    "Filter": lambda node, inputs: _scaled(inputs[0], CONJUNCT_SELECTIVITY ** _conjuncts(str(node.predicate()))),
    "Join": lambda node, inputs: _join(str(node.join_type()), node, inputs[0], inputs[1]),
    "Aggregate": _aggregate,
    "Projection": lambda node, inputs: _Relation(inputs[0].rows, _projected(node.projections(), inputs[0].ndv)),
    "Limit": _limit,
    "Union": _union,
    "Distinct": _distinct,
}


def _scan(node, fragments: dict[str, Fragment], catalog: Catalog) -> _Relation:
    fragment = fragments.get(node.table_name())
    if fragment is None:
        return _Relation(None, {})
    rows = fragment.estimated_rows if fragment.estimated_rows is not None else estimated_rows(fragment, catalog)
    if rows is None:
        return _Relation(None, {})
    rows = float(rows) * CONJUNCT_SELECTIVITY ** sum(_conjuncts(str(f)) for f in node.filters())
    ndv = {}
    for _, name in node.projection():
        distinct = _column_ndv(fragment, name, catalog)
        if distinct is not None:
            ndv[name] = min(distinct, max(rows, 1.0))
    return _Relation(rows, ndv)


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


def _join(join_type: str, node, left: _Relation, right: _Relation) -> _Relation:
    if left.rows is None or right.rows is None:
        return _Relation(None, {})
    left_ndvs, right_ndvs, shares = _key_statistics(node, left, right)
    if not list(node.on()):
        inner = left.rows * right.rows * (CONJUNCT_SELECTIVITY if node.filter() is not None else 1.0)
    elif left_ndvs:
        inner = left.rows * right.rows / max(key_values(left_ndvs, left.rows), key_values(right_ndvs, right.rows))
    else:
        inner = max(left.rows, right.rows)  # keys without statistics: a foreign-key join, the larger side
    rows = _join_rows(join_type, inner, left.rows, right.rows, shares)
    if rows is None:
        return _Relation(None, {})
    semi = join_type not in ("Left", "Right") and join_type[:4] in ("Left", "Righ")
    kept = (left.ndv if join_type.startswith("Left") else right.ndv) if semi else {**left.ndv, **right.ndv}
    return _Relation(rows, {k: min(v, max(rows, 1.0)) for k, v in kept.items()})


def _key_statistics(node, left: _Relation, right: _Relation) -> tuple[list[float], list[float], list[tuple]]:
    """Per equi-join key: the distinct values on each side (a side without statistics as distinct as the
    other), and for keys known on both sides the share of each side's values the other holds."""
    left_ndvs, right_ndvs, shares = [], [], []
    for l_expr, r_expr in node.on():
        l_ndv = left.ndv.get(_column_name(l_expr) or "")
        r_ndv = right.ndv.get(_column_name(r_expr) or "")
        if l_ndv or r_ndv:
            left_ndvs.append(l_ndv or r_ndv)
            right_ndvs.append(r_ndv or l_ndv)
        if l_ndv and r_ndv:
            shares.append((min(1.0, r_ndv / l_ndv), min(1.0, l_ndv / r_ndv)))
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
    return _Relation(rows, {k: min(v, max(rows, 1.0)) for k, v in relation.ndv.items()})


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

