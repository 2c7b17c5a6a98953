"""Dynamic filters, the choice: when one side of a cross-source equi-join is small, read it first and push its
join keys into the other side's fragment. Execution takes the keys and applies them
(``gateway.execution.runtime_filters``); each connector renders the condition (``Connector.key_filter``).

The pushed condition only has to keep every row that can join (the residual join still decides), so it is
safe wherever the source evaluates it as a superset.

    build: SELECT c.id ... FROM customers c WHERE c.region = 'north'          -> 212 ids
    probe: SELECT o.* FROM orders o WHERE o.customer_id IN (3, 17, ...)       (was: all orders)
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from catalog import Catalog, TableRef
from connectors.base import ColumnStatistics, Fragment
from planner.federation.sqlast import inner_joins_only
from planner.plan import FederatedPlan, FragmentJoin
from planner.values import numeric_axis

#: a build side of up to this many rows is always waited for (``build_row_limit``)
BUILD_ROW_LIMIT = 200_000
#: a fetched probe waits for a build of up to this share of its own estimated rows: a key set that keeps half the
#: probe then saves five probe rows per build row waited for (TPC-H SF10 Q9: ~60M lineitem rows, 1.5M-row build)
BUILD_SHARE_OF_PROBE = 0.1
#: bytes a variable-width value (text, binary) is assumed to take in memory, to count a build's rows in memory
VARIABLE_WIDTH_BYTES = 32
#: a probe is chosen only when its table looks at least this many times larger than the build's
SIZE_RATIO = 4.0
#: the estimated fraction of rows one filter conjunct keeps
CONJUNCT_SELECTIVITY = 0.25

#: (build, build column, probe, probe column)
Direction = tuple[str, str, str, str]


@dataclass(frozen=True)
class DynamicFilter:
    """Read ``build`` first; restrict ``probe`` to the values of ``build_column`` on ``probe_column``."""

    build: str
    build_column: str
    probe: str
    probe_column: str


@dataclass(frozen=True)
class _Candidate:
    """A direction of a fragment join, ranked: directed (sub-query) joins first, then by how restricted the
    build is (``selectivity``, smaller first), then by the build's estimated size."""

    directed: bool
    selectivity: float
    build_size: float | None
    filter: DynamicFilter

    def rank(self) -> tuple[bool, float, float]:
        return (not self.directed, self.selectivity,
                self.build_size if self.build_size is not None else float("inf"))


def choose(plan: FederatedPlan, catalog: Catalog) -> list[DynamicFilter]:
    """Dynamic filters from the plan's fragment equi-joins and the sources' table statistics (rows; bytes
    when rows are unknown). A probe may take several (each one that pays: its keys may not all fit an IN
    list). A build must be restricted somehow (its own conditions, or being a probe itself: chains are
    allowed, cycles are not)."""
    fragments = {f.id: f for f in plan.fragments}
    sizes = {fid: estimated_rows(f, catalog) for fid, f in fragments.items()}
    joins = [*plan.joins, *carried_joins(plan.joins)]
    covered = _covered(joins)
    uses = plan.references()
    chosen: dict[str, list[DynamicFilter]] = {}
    for _ in range(len(fragments)):  # rounds: a probe chosen in one round may be a build in the next
        candidates = _candidates(plan, joins, fragments, sizes, chosen, covered, uses)
        added = False
        for candidate in sorted(candidates, key=_Candidate.rank):
            if _pays(candidate, fragments, sizes, chosen, catalog):
                chosen.setdefault(candidate.filter.probe, []).append(candidate.filter)
                added = True
        if not added:
            break
    return [f for filters in chosen.values() for f in filters]


def _covered(joins: list[FragmentJoin]) -> dict[Direction, set[int]]:
    """Per direction, the references of the probe fragment it joins. A fragment the residual reads more than
    once (shared) is restricted only by a build joined with every one of its references on the same columns:
    rows another reference needs must not be dropped."""
    covered: dict[Direction, set[int]] = {}
    for j in joins:
        covered.setdefault((j.left, j.left_column, j.right, j.right_column), set()).add(j.right_use)
        if j.either_way:
            covered.setdefault((j.right, j.right_column, j.left, j.left_column), set()).add(j.left_use)
    return covered


def _directions(join: FragmentJoin) -> tuple[Direction, ...]:
    forward = (join.left, join.left_column, join.right, join.right_column)
    if not join.either_way:
        return (forward,)
    return forward, (join.right, join.right_column, join.left, join.left_column)


def carried_joins(joins: list[FragmentJoin]) -> list[FragmentJoin]:
    """The equi-joins the inner joins imply and do not state: ``a.x = b.y`` and ``b.y = c.z`` give ``a.x = c.z``
    (TPC-H Q9: part's keys restrict partsupp too, through lineitem). Only inner joins of one scope
    (``either_way``) are followed: every row the residual keeps satisfies all of them at once. A column is a
    fragment's output in one of its references (``*_use``), so a shared fragment's references stay apart."""
    parent: dict[tuple[str, str, int], tuple[str, str, int]] = {}

    def root(node: tuple[str, str, int]) -> tuple[str, str, int]:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    stated = set()
    for j in joins:
        if j.either_way:
            left, right = (j.left, j.left_column, j.left_use), (j.right, j.right_column, j.right_use)
            parent[root(left)] = root(right)
            stated |= {(left, right), (right, left)}
    classes: dict[tuple[str, str, int], list[tuple[str, str, int]]] = {}
    for node in list(parent):
        classes.setdefault(root(node), []).append(node)
    carried = []
    for members in classes.values():
        for i, left in enumerate(sorted(members)):
            for right in sorted(members)[i + 1:]:
                if left[0] != right[0] and (left, right) not in stated:
                    carried.append(FragmentJoin(left[0], left[1], right[0], right[1], True, left[2], right[2]))
    return carried


def _candidates(plan: FederatedPlan, joins: list[FragmentJoin], fragments: dict[str, Fragment],
                sizes: dict[str, float | None], chosen: dict[str, list[DynamicFilter]],
                covered: dict[Direction, set[int]], uses: dict[str, int]) -> list[_Candidate]:
    """The directions of ``joins`` (the plan's and those they imply) whose build restricts something and that
    cover every reference of the probe."""
    candidates = []
    for join in joins:
        for build, build_col, probe, probe_col in _directions(join):
            if len(covered[(build, build_col, probe, probe_col)]) < uses.get(probe, 1):
                continue
            conditions = _conditions(fragments[build], plan) + (build in chosen)
            if join.either_way and conditions == 0:
                continue  # a build that nothing restricts passes every key: it would restrict nothing
            size = 0.0 if not join.either_way else sizes[build]
            candidates.append(_Candidate(not join.either_way, CONJUNCT_SELECTIVITY ** conditions, size,
                                         DynamicFilter(build, build_col, probe, probe_col)))
    return candidates


def _pays(candidate: _Candidate, fragments: dict[str, Fragment], sizes: dict[str, float | None],
          chosen: dict[str, list[DynamicFilter]], catalog: Catalog) -> bool:
    """Whether the candidate may be added to ``chosen``: no repeat or cycle, a probe column the fragment
    scans, a probe source read without a cache rule, and a probe large enough next to the build (a directed
    join always pays: the probe is a sub-query's rows)."""
    build, probe = candidate.filter.build, candidate.filter.probe
    if any(f.build == build for f in chosen.get(probe, [])) or _reaches(chosen, build, probe):
        return False
    if not scan_column(fragments[probe], candidate.filter.probe_column):
        return False
    if catalog.connector(fragments[probe].source).read_per_table:
        return False  # its partitions may be cached: a changing filter would defeat the cache
    if candidate.directed:
        return True
    probe_size = sizes[probe]
    return candidate.build_size is not None and (
        probe_size is None or probe_size >= SIZE_RATIO * max(candidate.build_size, 1))


def _conjunct_count(condition: exp.Expression | None) -> int:
    if condition is None:
        return 0
    return len(list(condition.flatten())) if isinstance(condition, exp.And) else 1


def _where(fragment: Fragment) -> exp.Expression | None:
    where = fragment.ast.args.get("where") if isinstance(fragment.ast, exp.Select) else None
    return where.this if where is not None else None


def _conditions(fragment: Fragment, plan: FederatedPlan) -> int:
    """How many conditions restrict the fragment's rows: its own filter conjuncts (a join group's join
    conditions excepted), a LIMIT (a top-N pushed below a join: its few keys restrict the joined table), and
    those DataFusion applies to it before taking keys."""
    count = 0
    where = _where(fragment)
    if where is not None:
        count = _conjunct_count(where) - (len(fragment.tables) - 1)
    if isinstance(fragment.ast, exp.Select) and fragment.ast.args.get("limit") is not None:
        count += 1
    local = plan.local_filters.get(fragment.id)
    if local is not None:
        count += _conjunct_count(local.condition)
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
    """Estimated rows the fragment returns (``_estimated_rows``), at most its LIMIT when it has a constant one
    (a top-N pushed below a join returns that many rows, whatever its table holds)."""
    rows = _estimated_rows(fragment, catalog)
    limit = fragment.ast.args.get("limit") if isinstance(fragment.ast, exp.Select) else None
    count = limit.expression if isinstance(limit, exp.Limit) else None
    if rows is not None and isinstance(count, exp.Literal) and count.is_int:
        return min(rows, float(count.to_py()))
    return rows


def _estimated_rows(fragment: Fragment, catalog: Catalog) -> float | None:
    """Estimated rows the fragment returns: its (largest) table's rows, a quarter of that per filter conjunct
    (a join group's join conditions excepted). A join group is costed by its largest table: its joins are
    mostly foreign key to primary key, whose output has as many rows as the referencing, larger side (TPC-H
    Q5's customer ⋈ orders is orders-sized; costed customer-sized it looked too small to restrict). The
    planner's own estimate (``Fragment.estimated_rows``, from column statistics) wins for a single table; a
    join group keeps its largest table's size here, since what is decided from it (read in place, build or
    probe) is about the rows scanned, and a group pushed only because its source computes in this process
    (files) may estimate far more output than it scans."""
    if fragment.estimated_rows is not None and len(fragment.tables) == 1:
        return float(fragment.estimated_rows)
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
    conjuncts = _conjunct_count(_where(fragment))
    return max(counts) * (CONJUNCT_SELECTIVITY ** max(conjuncts - (len(counts) - 1), 0))


def scan_column(fragment: Fragment, column: str) -> exp.Expression | None:
    """The table column behind output ``column`` of a plain scan fragment (a single table or an inner-joined
    join group; a partial aggregate's grouping column), else None: a condition on it may restrict the
    fragment (before a plain DISTINCT too: a condition on an output keeps or drops all of its duplicates)."""
    select = fragment.ast
    if not isinstance(select, exp.Select):
        return None
    if any(select.args.get(k) for k in ("having", "limit", "offset")):
        return None
    distinct = select.args.get("distinct")
    if distinct is not None and distinct.args.get("on") is not None:
        return None
    if not inner_joins_only(select):
        return None  # a join group's members are inner-joined: a condition on a member column is valid
    group = select.args.get("group")
    for projection in select.expressions:
        if isinstance(projection, exp.Alias) and projection.alias == column and isinstance(projection.this, exp.Column):
            # a grouped (partial-aggregate) fragment: only a grouping column may be filtered before grouping
            if group is not None and not any(projection.this == g for g in group.expressions):
                return None
            return projection.this
    return None


#: a dynamic filter expected to keep at least this share of the probe's rows is not sent: it costs the source
#: a long condition and saves nothing (TPC-H Q3's ``BETWEEN 1 AND 149998`` over 150,000 keys)
KEEPS_NEARLY_ALL = 0.9
#: a build with this many times more distinct keys than the probe column's estimated distinct count proves the
#: estimate wrong: the filter is judged as if the column had no statistics
INCONSISTENT_KEYS = 1.5


#: a key condition expected to keep at most this share of a file fragment's rows, on a fragment with no condition
#: of its own, has the fragment's columns decoded only for the rows kept (``Fragment.late_materialization``):
#: TPC-H lineitem cut to 204 part keys (0.1%) 294 -> 187 ms, to 747 (0.4%) 308 -> 243 ms, to 20,000 (10%) no gain
LATE_MATERIALIZATION_SHARE = 0.01


def late_materialization(fragment: Fragment, column: str, keys: pa.Array, catalog: Catalog) -> bool:
    """Whether ``fragment`` (as planned, before key conditions), restricted to ``keys`` (distinct, not null) on
    ``column``, should decode its other columns only for the rows kept: it has no condition of its own (the
    Parquet reader's row filters lose on ranges and comparisons: TPC-H Q6 62 -> 110 ms) and the keys are at
    most ``LATE_MATERIALIZATION_SHARE`` of the column's distinct values (catalog statistics; False without)."""
    if fragment.ast is None or fragment.ast.args.get("where") is not None:
        return False
    stats = column_statistics(fragment, column, catalog)
    return bool(stats and stats.distinct) and len(keys) <= LATE_MATERIALIZATION_SHARE * stats.distinct


def column_statistics(fragment: Fragment, column: str, catalog: Catalog) -> ColumnStatistics | None:
    """The catalog's statistics of the table column behind ``fragment``'s output ``column`` (``scan_column``),
    or None when the fragment cannot be restricted on it or the catalog has none."""
    target = scan_column(fragment, column)
    table = table_of(fragment, target) if isinstance(target, exp.Column) else None
    if table is None:
        return None
    try:
        return catalog.statistics(TableRef(*table.split(".", 2))).columns.get(target.name)
    except Exception:  # statistics only steer costs
        return None


def keeps_nearly_every_row(fragment: Fragment, column: str, keys: pa.Array, catalog: Catalog,
                           ranged: bool = False) -> str | None:
    """Why restricting ``fragment``'s ``column`` to ``keys`` (distinct, not null) would keep nearly every row
    of its table by the catalog's column statistics, or None (also when statistics are missing): as many
    keys as the column has distinct values, or, when the condition sent is a key range (``ranged``: the
    source's ``key_filter`` gave ``BETWEEN``), a range spanning nearly all of the column's min..max."""
    stats = column_statistics(fragment, column, catalog)
    if stats is None:
        return None
    # more keys than the column is thought to hold: the estimate is wrong (a sample of a sorted column), not the keys
    if stats.distinct and KEEPS_NEARLY_ALL * stats.distinct <= len(keys) <= INCONSISTENT_KEYS * stats.distinct:
        return f"{len(keys):,} keys of about {stats.distinct:,.0f} distinct values"
    if ranged and stats.min is not None and stats.max is not None:
        bounds = pc.min_max(keys)
        share = _span_share(bounds["min"].as_py(), bounds["max"].as_py(), stats.min, stats.max)
        if share is not None and share >= KEEPS_NEARLY_ALL:
            return f"the keys' range covers {share:.0%} of the column's ({stats.min}..{stats.max})"
    return None


def build_row_limit(build: Fragment, probe: Fragment, catalog: Catalog, memory_bytes: int | None,
                    in_place: bool) -> tuple[int, str]:
    """How many rows of ``build`` a dynamic filter on ``probe`` waits for, and why (shown by EXPLAIN ANALYZE).

    A probe the residual plan reads in place (``in_place``) waits for nothing it would not wait for anyway (the
    residual plan starts once every fetched fragment was read): the limit is what ``memory_bytes`` (the
    per-fragment memory, ``limits.fragment_memory_bytes``; None: no bound) holds of the build's rows (a
    spilled build gives no keys). A fetched probe starts only once its build was read: up to
    ``BUILD_ROW_LIMIT`` rows, or ``BUILD_SHARE_OF_PROBE`` of the probe's estimated rows (``estimated_rows``)
    when that is more, within the same memory bound.

        customers -> orders (fetched, ~15M rows):  (1500000, "0.1 of the probe's estimated 15,000,000 rows")
    """
    width = _row_bytes(build.schema)
    memory_rows = memory_bytes // width if memory_bytes else None
    held = (f"what {memory_bytes / (1 << 20):,.0f} MiB of fragment memory hold at ~{width} bytes a row"
            if memory_rows is not None else "")
    if in_place:
        if memory_rows is None:
            return 2**62, "the probe is read in place after every fetched fragment: no wait"
        return memory_rows, f"the probe is read in place after every fetched fragment: {held}"
    probe_rows = estimated_rows(probe, catalog)
    limit, reason = BUILD_ROW_LIMIT, f"at least {BUILD_ROW_LIMIT:,} rows"
    if probe_rows is not None and probe_rows * BUILD_SHARE_OF_PROBE > limit:
        limit = int(probe_rows * BUILD_SHARE_OF_PROBE)
        reason = f"{BUILD_SHARE_OF_PROBE:g} of the probe's estimated {probe_rows:,.0f} rows"
    if memory_rows is not None and memory_rows < limit:
        return memory_rows, held
    return limit, reason


def _row_bytes(schema: pa.Schema) -> int:
    """Estimated bytes of one row of ``schema`` in Arrow memory (``VARIABLE_WIDTH_BYTES`` per text or binary
    value), at least 1."""
    total = 0
    for field in schema:
        try:
            total += max(field.type.bit_width // 8, 1)
        except ValueError:  # variable width
            total += VARIABLE_WIDTH_BYTES
    return max(total, 1)


def table_of(fragment: Fragment, column: exp.Column) -> str | None:
    """The catalog name (``source.schema.table``) of the table ``column`` reads in a scan fragment or join group
    (TPC-H Q9 with lineitem joined to orders in place: 9,866 of 10,000 supplier keys were sent), or None."""
    if len(fragment.tables) == 1:
        return fragment.tables[0]
    names = {t.alias_or_name: t.name for t in fragment.ast.find_all(exp.Table)} if fragment.ast is not None else {}
    name = names.get(column.table)
    matches = {t for t in fragment.tables if name is not None and t.rsplit(".", 1)[-1] == name}
    return matches.pop() if len(matches) == 1 else None


def _span_share(low: object, high: object, column_min: object, column_max: object) -> float | None:
    """The share of ``column_min..column_max`` that ``low..high`` covers (numbers, dates, timestamps), or None."""
    values = [numeric_axis(v) for v in (low, high, column_min, column_max)]
    if any(v is None for v in values):
        return None
    width = values[3] - values[2]
    if width <= 0:
        return None
    return max(0.0, min(values[1], values[3]) - max(values[0], values[2])) / width
