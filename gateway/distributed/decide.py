"""Which fragments of a plan run as Ray tasks, into how many splits, and why (one decision, used by runs and
EXPLAIN alike).

    [execution] engine = "ray", min_rows = 1000000
    q: 6,001,215 estimated rows over 3 fragments    -> f0 ray, 8 tasks (ctid page ranges of tpch.orders)
                                                       f1 ray, 4 tasks (one split per partition of lineitem)
    q: 212 estimated rows                           -> local (estimated 212 rows < min_rows 1,000,000 ...)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from catalog import Catalog
from connectors.base import Fragment
from gateway.distributed.splits import Split, plan_splits
from gateway.settings import ExecutionConfig
from planner import FederatedPlan, dynamic_filters

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

    def describe(self) -> str:
        """EXPLAIN's line: ``ray, 4 tasks: ctid page ranges of tpch.orders`` or ``local: ...``."""
        if self.engine == "ray":
            return f"ray, {len(self.splits)} task{'s' if len(self.splits) != 1 else ''}: {self.reason}"
        return f"local: {self.reason}"


@dataclass(frozen=True)
class Distribution:
    """Every fragment's ``Stage`` (by fragment id); ``rows``/``bytes``: the query's estimate."""

    stages: dict[str, Stage] = field(default_factory=dict)
    rows: float | None = None
    bytes: float | None = None

    @property
    def ray_ids(self) -> frozenset[str]:
        """Ids of the fragments read by Ray tasks."""
        return frozenset(fid for fid, s in self.stages.items() if s.engine == "ray")

    def describe(self) -> dict[str, str]:
        """EXPLAIN's engine line per fragment id."""
        return {fid: stage.describe() for fid, stage in self.stages.items()}


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
           ) -> Distribution:
    """The stages of ``plan`` under ``config``: with ``engine = "ray"``, a query estimated at ``min_rows`` rows
    or ``min_bytes`` bytes or more reads its fragments as Ray tasks, each cut by ``splits.plan_splits`` into
    up to ``max_splits`` splits of about ``split_min_rows`` rows or more. Stays local: a local engine, a query
    below both thresholds or without estimates, a whole query pushed to one source (streamed through), and
    fragments of sources with a cache rule (the cache lives in this process)."""
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
        stages[fragment.id] = stage(fragment, estimates[fragment.id], plan, config, catalog, cached_source)
    return Distribution(stages, rows, size)


def stage(fragment: Fragment, rows: float | None, plan: FederatedPlan, config: ExecutionConfig, catalog: Catalog,
          cached_source: Callable[[str], bool]) -> Stage:
    """One fragment's stage in a query that is distributed (see ``decide``)."""
    if plan.pushed_whole:
        return Stage(fragment.id, "local", "the whole query is pushed to one source and streamed through")
    if cached_source(fragment.source):
        return Stage(fragment.id, "local", f"source '{fragment.source}' is read through the partition cache")
    wanted = config.max_splits
    if rows is not None and config.split_min_rows > 0:
        wanted = max(1, min(wanted, math.floor(rows / config.split_min_rows)))
    splits, how = plan_splits(fragment, catalog.connector(fragment.source), wanted)
    return Stage(fragment.id, "ray", how, tuple(splits), fragment.sql)
