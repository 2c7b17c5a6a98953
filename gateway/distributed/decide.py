"""Which fragments of a plan run as Ray tasks, into how many splits, and why (one decision, used by runs and
EXPLAIN alike).

    [execution] engine = "ray", min_rows = 1000000
    q: 6,001,215 estimated rows over 3 fragments    -> f0 ray, 8 tasks (ctid page ranges of tpch.orders)
                                                       f1 ray, 4 tasks (one split per partition of lineitem)
    q: 212 estimated rows                           -> local (estimated 212 rows < min_rows 1,000,000 ...)
    f0 JOIN f1, both estimated >= join_min_rows     -> hash join stage: 4 tasks join partition i of f0 and f1
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from catalog import Catalog
from connectors.base import Fragment
from gateway.distributed.join_stage import JoinPlan, plan_join
from gateway.distributed.splits import Split, plan_splits
from gateway.settings import ExecutionConfig
from planner import FederatedPlan, dynamic_filters

#: the partitions a cacheable fragment reads (``CachedScanner.partitions_of``), None when it is not cacheable
PartitionsOf = Callable[[Fragment], "list[str] | None"]

#: bytes per value of a variable-width column in byte estimates (text, binary)
VARIABLE_WIDTH_BYTES = 32


@dataclass(frozen=True)
class Stage:
    """How one fragment runs: ``engine`` ``"ray"`` (``splits`` as tasks) or ``"local"``, and why."""

    fragment_id: str
    engine: str
    reason: str
    splits: tuple[Split, ...] = ()
    sql: str = ""  # the fragment's SQL the splits were cut from (a dynamic filter's probe is cut again)
    cached: bool = False  # one split per partition of a cached source: cached ones are read from the cache

    def describe(self) -> str:
        """EXPLAIN's line: ``ray, 4 tasks: ctid page ranges of tpch.orders`` or ``local: ...``."""
        if self.engine == "ray":
            return f"ray, {len(self.splits)} task{'s' if len(self.splits) != 1 else ''}: {self.reason}"
        return f"local: {self.reason}"


@dataclass(frozen=True)
class Distribution:
    """Every fragment's ``Stage`` (by fragment id); ``rows``/``bytes``: the query's estimate; ``join``: the
    hash join stage of two of its fragments (``join_stage.JoinPlan``), or None."""

    stages: dict[str, Stage] = field(default_factory=dict)
    rows: float | None = None
    bytes: float | None = None
    join: JoinPlan | None = None

    @property
    def ray_ids(self) -> frozenset[str]:
        """Ids of the fragments read by Ray tasks."""
        return frozenset(fid for fid, s in self.stages.items() if s.engine == "ray")

    def describe(self) -> dict[str, str]:
        """EXPLAIN's engine line per fragment id (a join stage's sides say so)."""
        lines = {fid: stage.describe() for fid, stage in self.stages.items()}
        if self.join is not None:
            for fid in (self.join.left, self.join.right):
                lines[fid] += f"; {self.join.describe()}"
        return lines


def row_bytes(schema: pa.Schema) -> int:
    """Estimated Arrow bytes of one row: fixed widths, ``VARIABLE_WIDTH_BYTES`` per variable-width value.

        >>> row_bytes(pa.schema([("k", pa.int64()), ("name", pa.string())]))
        40
    """
    total = 0
    for f in schema:
        try:
            total += max(f.type.bit_width // 8, 1)
        except ValueError:
            total += VARIABLE_WIDTH_BYTES
    return total


def decide(plan: FederatedPlan, config: ExecutionConfig, catalog: Catalog, cached_source: Callable[[str], bool],
           partitions: int = 1, partitions_of: PartitionsOf | None = None) -> Distribution:
    """The stages of ``plan`` under ``config``: with ``engine = "ray"``, a query estimated at ``min_rows`` rows
    or ``min_bytes`` bytes or more reads its fragments as Ray tasks, each cut by ``splits.plan_splits`` into
    up to ``max_splits`` splits of about ``split_min_rows`` rows or more. Stays local: a local engine, a query
    below both thresholds or without estimates, a whole query pushed to one source (streamed through), and
    fragments of sources with a cache rule when ``partitions_of`` is not given (the cache lives in this
    process); given, a fragment the cache can serve (``CachedScanner.partitions_of``: the partitions it reads)
    gets one split per partition, and at run time the cached ones are read from the cache, the others by Ray
    tasks (``runtime.Distributor.feed``); one it cannot is split as any other. An inner equi-join of two
    fragments read by Ray tasks, both estimated at ``join_min_rows`` rows or more, runs as a hash join stage
    of ``partitions`` tasks when ``join_stage.plan_join`` can rewrite the residual for it."""
    if config.engine != "ray":
        return Distribution()
    estimates = {f.id: dynamic_filters.estimated_rows(f, catalog) for f in plan.fragments}
    known = [(estimates[f.id], f) for f in plan.fragments if estimates[f.id] is not None]
    rows = sum(r for r, _ in known) if known else None
    size = sum(r * row_bytes(f.schema) for r, f in known) if known else None
    big = (config.min_rows == 0 or config.min_bytes == 0
           or (rows is not None and (rows >= config.min_rows or size >= config.min_bytes)))
    if not big:
        why = ("no row estimate" if rows is None else
               f"estimated {rows:,.0f} rows < min_rows {config.min_rows:,} and {size:,.0f} bytes < min_bytes "
               f"{config.min_bytes:,}")
        return Distribution({f.id: Stage(f.id, "local", why) for f in plan.fragments}, rows, size)
    stages = {}
    for fragment in plan.fragments:
        stages[fragment.id] = stage(fragment, estimates[fragment.id], plan, config, catalog, cached_source,
                                    partitions_of)
    return Distribution(stages, rows, size, join_stage(plan, stages, estimates, config, partitions))


def join_stage(plan: FederatedPlan, stages: dict[str, Stage], estimates: dict[str, float | None],
               config: ExecutionConfig, partitions: int) -> JoinPlan | None:
    """The plan's hash join stage (``join_stage.plan_join``) among the fragments read by Ray tasks and
    estimated at ``join_min_rows`` rows or more (0: all of them), or None."""
    large = {fid for fid, s in stages.items() if s.engine == "ray"
             and (config.join_min_rows == 0 or (estimates[fid] or 0) >= config.join_min_rows)}
    if len(large) < 2 or not plan.joins:
        return None
    return plan_join(plan, large, partitions, estimates)[0]


def stage(fragment: Fragment, rows: float | None, plan: FederatedPlan, config: ExecutionConfig, catalog: Catalog,
          cached_source: Callable[[str], bool], partitions_of: PartitionsOf | None = None) -> Stage:
    """One fragment's stage in a query that is distributed (see ``decide``)."""
    if plan.pushed_whole:
        return Stage(fragment.id, "local", "the whole query is pushed to one source and streamed through")
    if cached_source(fragment.source):
        names = partitions_of(fragment) if partitions_of is not None else None
        if partitions_of is None:
            return Stage(fragment.id, "local", f"source '{fragment.source}' is read through the partition cache")
        if names is not None:
            return cached_stage(fragment, names)
    wanted = config.max_splits
    if rows is not None and config.split_min_rows > 0:
        wanted = max(1, min(wanted, math.floor(rows / config.split_min_rows)))
    splits, how = plan_splits(fragment, catalog.connector(fragment.source), wanted)
    return Stage(fragment.id, "ray", how, tuple(splits), fragment.sql)


def cached_stage(fragment: Fragment, partitions: list[str]) -> Stage:
    """A fragment of a cached source: one split per cache partition it reads (``(schema, table, partition)``;
    the worker restricts the fragment to it). Which of them the cache serves is seen at run time."""
    schema, table = fragment.tables[0].split(".", 2)[1:]
    splits = tuple(Split(fragment.sql, (schema, table, p)) for p in partitions)
    return Stage(fragment.id, "ray", f"one split per cache partition of {schema}.{table} ({len(partitions)}): cached "
                 "ones read from the partition cache, the others by Ray tasks (a whole table by its own splits)",
                 splits, fragment.sql, cached=True)
