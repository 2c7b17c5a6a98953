"""Dynamic filters: when one side of a cross-source equi-join is small, read it first and push its join keys
into the other side's fragment (``key IN (...)``, or ``key BETWEEN min AND max`` past ``IN_LIST_LIMIT``).

The pushed condition only has to keep every row that can join (the residual join still decides), so it is
safe wherever the source evaluates it as a superset: IN lists always (a case-insensitive collation only
keeps more rows), ranges only for numbers and dates (a collation may order text differently).

    build: SELECT c.id ... FROM customers c WHERE c.region = 'north'          -> 212 ids
    probe: SELECT o.* FROM orders o WHERE o.customer_id IN (3, 17, ...)       (was: all orders)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from catalog import Catalog, TableRef
from connectors.arrow.datafusion import run_local
from connectors.base import Fragment
from planner.federate import _read_per_table
from planner.parse import literal
from planner.plan import FederatedPlan

#: a build side with more rows than this is not worth waiting for; the probe then runs unfiltered
BUILD_ROW_LIMIT = 200_000
#: past this many distinct keys the probe gets a min/max range instead of an IN list (sources hash long IN
#: lists; keys scattered over their range make a range filter useless)
IN_LIST_LIMIT = 20_000
#: from this many keys on, a source with ``key_arrays`` gets one array literal instead of an IN list
ARRAY_MIN_KEYS = 100
#: a probe is chosen only when its table looks at least this many times larger than the build's
SIZE_RATIO = 4.0


@dataclass(frozen=True)
class DynamicFilter:
    """Read ``build`` first; restrict ``probe`` to the values of ``build_column`` on ``probe_column``."""

    build: str
    build_column: str
    probe: str
    probe_column: str


def choose(plan: FederatedPlan, catalog: Catalog) -> list[DynamicFilter]:
    """Dynamic filters from the plan's fragment equi-joins and the sources' table statistics (rows; bytes
    when rows are unknown). A probe may take several (each one that pays: its keys may not all fit an IN
    list). A build must be restricted somehow (its own conditions, or being a probe itself: chains are
    allowed, cycles are not)."""
    fragments = {f.id: f for f in plan.fragments}
    sizes = {fid: estimated_rows(f, catalog) for fid, f in fragments.items()}
    chosen: dict[str, list[DynamicFilter]] = {}
    # a fragment the residual reads more than once (shared) is restricted only by a build joined with every
    # one of its references on the same columns: rows another reference needs must not be dropped
    uses = plan.references()
    covered: dict[tuple[str, str, str, str], set[int]] = {}
    for a, col_a, b, col_b, either_way, use_a, use_b in plan.joins:
        covered.setdefault((a, col_a, b, col_b), set()).add(use_b)
        if either_way:
            covered.setdefault((b, col_b, a, col_a), set()).add(use_a)
    for _ in range(len(fragments)):  # rounds: a probe chosen in one round may be a build in the next
        candidates = []
        for a, col_a, b, col_b, either_way, _, _ in plan.joins:
            directions = ((a, col_a, b, col_b), (b, col_b, a, col_a)) if either_way else ((a, col_a, b, col_b),)
            for build, build_col, probe, probe_col in directions:
                if len(covered[(build, build_col, probe, probe_col)]) < uses.get(probe, 1):
                    continue
                conditions = _conditions(fragments[build], plan) + (build in chosen)
                if either_way and conditions == 0:
                    continue  # a build that nothing restricts passes every key: it would restrict nothing
                size = 0.0 if not either_way else sizes[build]
                candidates.append((not either_way, 0.25 ** conditions, size, build, build_col, probe, probe_col))
        candidates.sort(key=lambda c: (not c[0], c[1], c[2] if c[2] is not None else float("inf")))
        added = False
        for directed, _, build_size, build, build_col, probe, probe_col in candidates:
            if any(f.build == build for f in chosen.get(probe, [])) or _reaches(chosen, build, probe):
                continue
            if not _scan_column(fragments[probe], probe_col):
                continue
            if _read_per_table(catalog.connector(fragments[probe].source)):
                continue  # its partitions may be cached: a changing filter would defeat the cache
            probe_size = sizes[probe]
            if directed or (build_size is not None and (probe_size is None
                                                        or probe_size >= SIZE_RATIO * max(build_size, 1))):
                chosen.setdefault(probe, []).append(DynamicFilter(build, build_col, probe, probe_col))
                added = True
        if not added:
            break
    return [f for filters in chosen.values() for f in filters]


def _conditions(fragment: Fragment, plan: FederatedPlan) -> int:
    """How many conditions restrict the fragment's rows: its own filter conjuncts (a join group's join
    conditions excepted) and those DataFusion applies to it before taking keys."""
    where = fragment.ast.args.get("where") if isinstance(fragment.ast, exp.Select) else None
    count = 0
    if where is not None:
        count = len(list(where.this.flatten())) if isinstance(where.this, exp.And) else 1
        count -= len(fragment.tables) - 1
    local = plan.local_filters.get(fragment.id)
    if local is not None:
        count += len(list(local[1].flatten())) if isinstance(local[1], exp.And) else 1
    return max(count, 0)


def _reaches(chosen: dict[str, list[DynamicFilter]], start: str, target: str) -> bool:
    """Whether following build links from ``start`` leads to ``target`` (adding target -> start would loop)."""
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == target:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(f.build for f in chosen.get(node, []))
    return False


def estimated_rows(fragment: Fragment, catalog: Catalog) -> float | None:
    """Estimated rows the fragment returns: its (largest) table's rows, a quarter of that per filter conjunct
    (a join group's join conditions excepted). A join group is costed by its largest table: its joins are
    mostly foreign key to primary key, whose output has as many rows as the referencing, larger side (TPC-H
    Q5's customer ⋈ orders is orders-sized; costed customer-sized it looked too small to restrict)."""
    counts = []
    for name in fragment.tables:
        try:
            stats = catalog.statistics(TableRef(*name.split(".", 2)))
        except Exception:  # statistics are a hint; a source that cannot give them gets no dynamic filter
            return None
        rows = stats.rows if stats.rows is not None else (stats.bytes / 100 if stats.bytes else None)
        if rows is None:
            return None
        counts.append(rows)
    if not counts:
        return None
    where = fragment.ast.args.get("where") if isinstance(fragment.ast, exp.Select) else None
    conjuncts = len(list(where.this.flatten())) if where is not None and isinstance(where.this, exp.And) else (
        1 if where is not None else 0)
    return max(counts) * (0.25 ** max(conjuncts - (len(counts) - 1), 0))


def _scan_column(fragment: Fragment, column: str) -> exp.Expression | None:
    """The table column behind output ``column`` of a plain single-table scan fragment, else None."""
    select = fragment.ast
    if not isinstance(select, exp.Select):
        return None
    if any(select.args.get(k) for k in ("having", "limit", "offset", "distinct")):
        return None
    if any(j.side or (j.kind or "").upper() not in ("", "INNER", "CROSS") for j in select.args.get("joins") or []):
        return None  # a join group's members are inner-joined: a condition on a member column is valid
    group = select.args.get("group")
    for projection in select.expressions:
        if isinstance(projection, exp.Alias) and projection.alias == column and isinstance(projection.this, exp.Column):
            # a grouped (partial-aggregate) fragment: only a grouping column may be filtered before grouping
            if group is not None and not any(projection.this == g for g in group.expressions):
                return None
            return projection.this
    return None


def build_keys(batches: list[pa.RecordBatch], schema: pa.Schema, column: str,
               local_filter: tuple[str, exp.Expression] | None) -> pa.Array:
    """The build side's join keys: ``column`` of its rows that pass the conditions DataFusion will apply to
    that table anyway (``local_filter``: table alias, condition), so the keys are as selective as the query."""
    table = pa.Table.from_batches(batches, schema=schema)
    if local_filter is None or table.num_rows == 0:
        return table.column(column).combine_chunks()
    from planner.dialects import RESIDUAL_DIALECT

    alias, condition = local_filter
    select = exp.select(exp.column(column, table=alias, quoted=True)).from_(exp.Table(
        this=exp.to_identifier("__build", quoted=True), alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))
    )).where(condition.copy())
    return run_local(select.sql(dialect=RESIDUAL_DIALECT), {"__build": table}).column(0).combine_chunks()


def restrict(fragment: Fragment, column: str, keys: pa.Array, key_arrays: bool = False
             ) -> tuple[Fragment, str] | None:
    """``fragment`` keeping only rows whose ``column`` is among ``keys``, and a description; None when the
    condition could not be made exact-or-wider (text range, unsupported key type). ``key_arrays``: the
    source takes integer keys as one array literal (``Capabilities.key_arrays``), at any count."""
    target = _scan_column(fragment, column)
    if target is None:
        return None
    where = fragment.ast.args.get("where") if fragment.ast is not None else None
    if where is not None and any(
            ((isinstance(node, exp.Not) and isinstance(node.this.unnest(), exp.In)) or node.args.get("negate"))
            and node.find(exp.Column) == target for node in where.find_all(exp.Not, exp.In)):
        # DataFusion 55 merges `NOT (k IN (NULL)) AND k IN (1, 2)` into `k IN (1, 2)` (NOT IN with a NULL keeps no
        # row): no IN list next to a negated one on the same column (the fuzzer's wrong answer)
        return None
    keys = pc.unique(keys.drop_null()) if len(keys) else keys
    if len(keys) == 0:
        condition: exp.Expression = exp.false()
        description = f"{column}: no keys (build side empty)"
    elif key_arrays and len(keys) > ARRAY_MIN_KEYS and pa.types.is_integer(keys.type) \
            and pc.max(keys).as_py() <= 2**63 - 1:  # a BIGINT[] literal (unsigned keys may not fit)
        array = "{" + ",".join(str(k) for k in keys.to_pylist()) + "}"
        condition = exp.EQ(this=target.copy(), expression=exp.Any(this=exp.Paren(
            this=exp.cast(exp.Literal.string(array), exp.DataType.build("BIGINT[]", dialect="postgres")))))
        description = f"{column} = ANY(array of {len(keys)} values)"
    elif len(keys) <= IN_LIST_LIMIT:
        try:
            values = [literal(v) for v in keys.to_pylist()]
        except Exception:
            return None
        condition = exp.In(this=target.copy(), expressions=values)
        description = f"{column} IN ({len(keys)} values)"
    else:
        if pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type) or pa.types.is_binary(keys.type):
            return None  # the source may order text by another collation: a range could drop rows
        bounds = pc.min_max(keys)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        condition = exp.Between(this=target.copy(), low=literal(low), high=literal(high))
        description = f"{column} BETWEEN {low} AND {high} ({len(keys)} values)"
    select = fragment.ast.copy().where(condition)
    return dataclasses.replace(fragment, ast=select, sql=select.sql(dialect=fragment.dialect)), description



