"""EXPLAIN and EXPLAIN ANALYZE text: a plan's fragments marked with what a run does or did with them.

``explain_planned`` marks each fragment before any data is read (its partitions' cache state, the source's
own notes, read in place, the Ray engine); ``explain_analyzed`` marks it from a finished run's ``QueryStats``
(rows, bytes, dynamic filters, partitions served or fetched, where it ran). ``QueryEngine.explain`` calls both;
the text itself is ``planner.plan.FederatedPlan.explain``.
"""

from __future__ import annotations

import pyarrow as pa

from catalog import Catalog
from connectors.base import Fragment
from gateway.cache.scanner import CachedScanner
from gateway.distributed import Distribution
from gateway.metrics import FragmentStats, QueryStats
from planner import FederatedPlan

#: the one column an EXPLAIN statement returns: one row per line of the plan
EXPLAIN_SCHEMA = pa.schema([pa.field("plan", pa.string(), nullable=False)])


def source_notes(catalog: Catalog, fragment: Fragment) -> list[str]:
    """``Connector.describe``: the source's own lines about the fragment (never fails EXPLAIN)."""
    try:
        return catalog.connector(fragment.source).describe(fragment)
    except Exception as exc:
        return [f"(the source could not describe its read: {type(exc).__name__})"]


def explain_planned(plan: FederatedPlan, catalog: Catalog, scanner: CachedScanner, in_place: set[str],
            distribution: Distribution, max_staleness_s: float | None) -> str:
    """EXPLAIN: ``plan`` with each fragment's partitions marked ``cached (age)`` or ``fetched`` and the
    source's notes, the fragments the schedule reads ``in_place`` (less those Ray tasks read) and the
    engines of a distributed run."""
    marks = {f.id: scanner.describe(f, max_staleness_s) + source_notes(catalog, f) for f in plan.fragments}
    return plan.explain(partitions={k: v for k, v in marks.items() if v},
                        in_place=in_place - distribution.ray_ids, engines=distribution.describe() or None)


def explain_analyzed(plan: FederatedPlan, stats: QueryStats, catalog: Catalog, distributed: bool,
                     fallback=None) -> str:
    """EXPLAIN ANALYZE: ``plan`` with each fragment's rows and bytes from a finished run's ``stats``, its
    partitions' cache use, the source's notes and (``distributed``: a Ray engine is configured) where it ran.
    ``fallback`` (``engine.FallbackRun``, for a plan with a top-N below an inner join): whether its fallback
    plan ran; when it did, that plan follows with its own fragments' rows and joins."""
    text = _analyzed(plan, stats.fragments, stats.joins, catalog, distributed, fallback.note if fallback else None)
    if fallback is None or not fallback.fragments or plan.top_n_fallback is None:
        return text
    ran = _analyzed(plan.top_n_fallback.plan, fallback.fragments, fallback.joins, catalog, distributed, None)
    return text + "\n  Fallback plan (run):\n" + "\n".join(f"  {line}" for line in ran.splitlines()[1:])


def _analyzed(plan: FederatedPlan, stats: list[FragmentStats], joins: list[dict], catalog: Catalog,
              distributed: bool, fallback_note: str | None) -> str:
    """``explain_analyzed`` of one plan from its fragments' stats and its joins' actual rows."""
    rows = {f.id: {"rows": f.rows, "bytes": f.bytes, "dynamic_filter": f.dynamic_filter,
                   "estimated_rows": f.estimated_rows} for f in stats}
    in_place = {f.id for f in stats if f.read_in_place}
    marks = {
        f.id: [f"{u.partition}: {u.status}" + (f" ({u.age_s:.1f}s old)" if u.age_s is not None else "")
               for u in f.partitions]
        for f in stats if f.partitions
    }
    for f in plan.fragments:  # what lake sources read: version or snapshot, files kept (Connector.describe)
        notes = source_notes(catalog, f)
        if notes:
            marks[f.id] = marks.get(f.id, []) + notes
    engines = {f.id: f"{f.engine}, {f.tasks} tasks on {f.nodes} node(s), {f.retries} retried, "
                     + (f.join_stage or f"{f.shuffled_bytes:,} bytes moved to the coordinator")
               for f in stats if f.engine} if distributed else {}
    return plan.explain(rows, partitions=marks, in_place=in_place, engines=engines or None, joins=joins,
                        fallback_run=fallback_note)
