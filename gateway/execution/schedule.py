"""The schedule of one plan: which fragments are fetched, which the residual plan reads in place, which wait
for a dynamic filter's build side. Decided once per run by ``decide`` and used both to start the feeds
(``start_feeds``) and by EXPLAIN, so what EXPLAIN shows is what a run does.

    plan:      f1 = customers (PostgreSQL, 212 rows after filters)   f2 = orders (Parquet, 15M rows)
    schedule:  f1 fetched (build of a dynamic filter on f2.customer_id); f2 read in place once f1 was read
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from catalog import Catalog
from connectors import base as connectors_base
from connectors.base import Connector, Fragment
from gateway.cache.scanner import CachedScanner
from gateway.execution import runtime_filters
from gateway.execution.feeds import Feed, FragmentFeed, InPlaceFeed
from gateway.metrics import FragmentStats
from gateway.settings import LimitsConfig
from planner import FederatedPlan, dynamic_filters

#: starts a fetching feed for a fragment (with the stats object it reports into, or a new one)
Fetch = Callable[[Fragment, FragmentStats | None], FragmentFeed]


@dataclass(frozen=True)
class Schedule:
    """What a run of one plan does with each fragment.

    ``collect``: the fragments are collected for a residual plan (False: the query was pushed whole and its
    one fragment is passed through). ``filters``: the dynamic filters chosen (a probe starts once its builds
    were read). ``in_place``: ids of fragments the residual plan scans itself; every other one is fetched.
    ``memory_bytes``: the memory a fragment holds before spilling (``limits.fragment_memory_bytes``), the bound
    of the builds a probe waits for (``dynamic_filters.build_row_limit``); None: unbounded.
    """

    collect: bool
    filters: tuple[dynamic_filters.DynamicFilter, ...] = ()
    in_place: frozenset[str] = frozenset()
    memory_bytes: int | None = None

    @property
    def probes(self) -> dict[str, list[dynamic_filters.DynamicFilter]]:
        """The dynamic filters restricting each probe fragment, by its id."""
        probes: dict[str, list[dynamic_filters.DynamicFilter]] = {}
        for dynamic in self.filters:
            probes.setdefault(dynamic.probe, []).append(dynamic)
        return probes


def decide(plan: FederatedPlan, catalog: Catalog, limits: LimitsConfig, cached_source: Callable[[str], bool]
           ) -> Schedule:
    """The schedule of ``plan`` under ``limits``; ``cached_source(source)`` tells whether a source has a cache
    rule (its fragments are then read in place from the partition cache when every partition is cached)."""
    if plan.pushed_whole:
        return Schedule(collect=False)
    filters = tuple(dynamic_filters.choose(plan, catalog)) if limits.dynamic_filters else ()

    def reads_in_place(source: str) -> bool:
        """Whether the residual plan scans the source's data itself: the files of a file source without a cache
        rule; the cached partitions of a source with one (``CachedScanner.native_view``; fetched, through the
        cache, when a partition is not cached)."""
        if not limits.read_files_in_place:
            return False
        return cached_source(source) or type(catalog.connector(source)).native_view is not Connector.native_view

    fetched = _fetched_anyway(plan, filters, catalog, limits, reads_in_place)
    in_place = frozenset(f.id for f in plan.fragments if f.id not in fetched and reads_in_place(f.source))
    return Schedule(collect=True, filters=filters, in_place=in_place, memory_bytes=limits.fragment_memory_bytes)


def _fetched_anyway(plan: FederatedPlan, filters: tuple, catalog: Catalog, limits: LimitsConfig,
                    reads_in_place: Callable[[str], bool]) -> set[str]:
    """Fragments of in-place sources that are fetched all the same: dynamic-filter builds (their keys are
    needed first), fragments read twice, and small ones (estimated below ``limits.in_place_min_rows``:
    fetching them overlaps with the other sources' reads, scanning in place waits for them; measured on TPC-H
    SF1 with bench/tpch_bench.py)."""
    fetched = {dynamic.build for dynamic in filters} | _read_twice(plan)
    many_keys = _probes_of_many_keys(plan, filters, catalog)
    for fragment in plan.fragments:
        if fragment.id in fetched or fragment.id in many_keys or not reads_in_place(fragment.source):
            continue
        rows = dynamic_filters.estimated_rows(fragment, catalog)
        if rows is not None and rows < limits.in_place_min_rows:
            fetched.add(fragment.id)
    return fetched


def _probes_of_many_keys(plan: FederatedPlan, filters: tuple, catalog: Catalog) -> set[str]:
    """Probes of a dynamic filter whose build is estimated past ``IN_LIST_LIMIT`` rows: fetched, such a probe
    would get a key range (which keeps nearly every row when the keys are spread) and wait for its build all the
    same; read in place, it takes a semi-join of any number of keys. TPC-H Q3 with orders and lineitem as
    Parquet: 30,142 customer keys, orders cut to a fifth before their join with lineitem."""
    builds = {f.id: f for f in plan.fragments}
    many = set()
    for dynamic in filters:
        rows = dynamic_filters.estimated_rows(builds[dynamic.build], catalog)
        if rows is not None and rows > connectors_base.IN_LIST_LIMIT:
            many.add(dynamic.probe)
    return many


def _read_twice(plan: FederatedPlan) -> set[str]:
    """Fragments the residual plan reads more than once (directly, or through a CTE it reads twice):
    fetched once rather than scanned in place twice."""
    if plan.residual_ast is None:
        return set()
    references = plan.references()
    twice = {fid for fid, count in references.items() if count > 1}
    names = [t.name for t in plan.residual_ast.find_all(exp.Table)]
    for cte in plan.residual_ast.find_all(exp.CTE):
        if names.count(cte.alias) > 1:
            twice |= {t.name for t in cte.this.find_all(exp.Table) if t.name in references}
    return twice


def start_feeds(plan: FederatedPlan, schedule: Schedule, catalog: Catalog, fetch: Fetch,
                scanner: CachedScanner | None = None, max_staleness_s: float | None = None) -> list[Feed]:
    """Start every fragment of ``plan`` as ``schedule`` says, in plan order; a probe side of a dynamic filter
    starts once its build side was read, restricted to the build's keys. ``scanner``: in-place fragments of
    sources with a cache rule read its cached partitions (under ``max_staleness_s``)."""

    def start(fragment: Fragment, keys: dict[str, pa.Array] | None = None,
              literal: Callable[[], Fragment] | None = None) -> Feed:
        if fragment.id in schedule.in_place:
            return InPlaceFeed(fragment, catalog, fetch, keys, literal, scanner, max_staleness_s)
        return fetch(fragment, None)

    probes = schedule.probes
    feeds = {f.id: start(f) for f in plan.fragments if f.id not in probes}
    waiting = [f for f in plan.fragments if f.id in probes]
    while waiting:  # a probe starts once its build (perhaps itself a restricted probe) has been read
        ready = [f for f in waiting if all(d.build in feeds for d in probes[f.id])]
        if not ready:  # cannot happen (choose() makes no cycles); start the rest unfiltered
            ready, probes = waiting, {}
        for fragment in ready:
            waiting.remove(fragment)
            in_place = fragment.id in schedule.in_place
            # a fetched fragment of a source computing in this process takes semi-joins too, in its own session
            keys: dict[str, pa.Array] | None = {} if in_place or _runs_here(catalog, fragment, scanner) else None
            waits = functools.partial(dynamic_filters.build_row_limit, catalog=catalog,
                                      memory_bytes=schedule.memory_bytes, in_place=in_place)
            restricted, notes = _restricted(plan, fragment, probes.get(fragment.id, []), feeds, catalog, waits, keys,
                                            "the residual plan" if in_place else f"{fragment.source}'s session")
            literal = None
            if keys and in_place:  # should the source decline to be read in place (rare), it is fetched with
                # literal key conditions, made then: rendering thousands of literals is what the semi-join saves
                literal = functools.partial(_literal_restriction, plan, fragment, probes.get(fragment.id, []),
                                            dict(feeds), catalog, waits)
            elif keys:
                restricted = dataclasses.replace(restricted, key_tables=keys)
            feed = feeds[fragment.id] = start(restricted, keys if in_place else None, literal)
            feed.stats.dynamic_filter = "; ".join(notes) or None
            if restricted is not fragment and fragment.id in plan.filtered_estimates and not in_place:
                # a filter was sent to a fetched fragment: judged by what the planner expected of its filters
                # (one read in place reports the rows its scan read, before the semi-join)
                feed.stats.estimated_rows = plan.filtered_estimates[fragment.id]
    return [feeds[f.id] for f in plan.fragments]


def _runs_here(catalog: Catalog, fragment: Fragment, scanner: CachedScanner | None) -> bool:
    """Whether ``fragment``'s source computes in this process (``Capabilities.local_compute``) and has no cache
    rule: fetched, it can still take many keys as a semi-join against a table of them (``Fragment.key_tables``),
    which costs the same at any count, where a literal IN list of 30,142 keys took 0.4 s to render and 0.37 s to
    plan (TPC-H Q3's customer keys on orders as Parquet, against 0.06 s as a semi-join). A fetched fragment of a
    cached source keeps literal keys, which its cached partitions can serve (a semi-join is served by the
    cache only in place)."""
    if scanner is not None and scanner.cached_source(fragment.source):
        return False
    try:
        return catalog.connector(fragment.source).capabilities.local_compute
    except Exception:  # an unknown source fails where the fragment is fetched, with its own error
        return False


#: ``(build fragment, probe fragment) -> (rows, reason)``: how many build rows a probe waits for
#: (``dynamic_filters.build_row_limit``)
Waits = Callable[[Fragment, Fragment], tuple[int, str]]


def _literal_restriction(plan: FederatedPlan, fragment: Fragment, filters: list, feeds: dict[str, Feed],
                         catalog: Catalog, waits: Waits) -> Fragment:
    """``fragment`` restricted with literal key conditions only (``_restricted`` without semi-joins)."""
    return _restricted(plan, fragment, filters, feeds, catalog, waits)[0]


def _restricted(plan: FederatedPlan, fragment: Fragment, filters: list, feeds: dict[str, Feed],
                catalog: Catalog, waits: Waits, keys_tables: dict[str, pa.Array] | None = None,
                runs_in: str = "the residual plan") -> tuple[Fragment, list[str]]:
    """``fragment`` restricted by each of its dynamic ``filters`` whose build side ended within the rows it is
    waited for (``waits``), and a note per filter saying what was done and why (EXPLAIN ANALYZE shows them).
    ``keys_tables`` (a fragment read in place, or fetched from a source computing in this process): many keys
    become a semi-join against a table of them, added to it by name for the session that runs the fragment
    (``runs_in`` names it in the notes)."""
    notes = []
    for dynamic in filters:
        fragment, note = _restriction(plan, fragment, dynamic, feeds[dynamic.build], catalog, waits, keys_tables,
                                      runs_in)
        notes.append(note)
    return fragment, notes


def _restriction(plan: FederatedPlan, fragment: Fragment, dynamic: dynamic_filters.DynamicFilter, build: Feed,
                 catalog: Catalog, waits: Waits, keys_tables: dict[str, pa.Array] | None,
                 runs_in: str = "the residual plan") -> tuple[Fragment, str]:
    """``fragment`` restricted by one dynamic filter (or as it was), and the note saying what was done: the
    build waited for within its row limit, keys that keep nearly every row or that the source cannot write
    exactly are not sent."""
    limit, why = waits(build.fragment, fragment)
    batches = build.kept_batches(limit)
    column = dynamic.probe_column
    if batches is None:
        if build.stats.rows > limit:
            return fragment, f"{column}: not sent, {dynamic.build} passed {limit:,} rows ({why})"
        return fragment, f"{column}: not sent, {dynamic.build}'s rows were not kept in memory"
    keys = runtime_filters.build_keys(batches, build.fragment.schema, dynamic.build_column,
                                      plan.local_filters.get(dynamic.build))
    keys = pc.unique(keys.drop_null()) if len(keys) else keys
    useless = dynamic_filters.keeps_nearly_every_row(fragment, column, keys, catalog)
    if useless:
        return fragment, f"{column}: not sent, it keeps nearly every row ({useless})"
    table = f"__keys_{fragment.id}_{len(keys_tables)}" if keys_tables is not None else None
    connector = catalog.connector(fragment.source)
    condition = runtime_filters.key_condition(fragment, column, keys, connector, table)
    if condition is None:
        return fragment, (f"{column}: not sent, no condition {fragment.source} runs keeps every row of these "
                          f"{len(keys):,} keys (a text range, their type, or a column the fragment does not filter)")
    if isinstance(condition, exp.Between):
        useless = dynamic_filters.keeps_nearly_every_row(fragment, column, keys, catalog, ranged=True)
        if useless:
            return fragment, f"{column}: not sent, its range keeps nearly every row ({useless})"
    if table is not None and any(t.name == table for t in condition.find_all(exp.Table)):
        keys_tables[table] = keys
    note = runtime_filters.describe(condition, column, keys, runs_in)
    waited = f"{build.stats.rows:,} build rows of {dynamic.build} within {limit:,}: {why}"
    restricted = runtime_filters.restricted(fragment, condition)
    planned = next(f for f in plan.fragments if f.id == fragment.id)
    if connector.capabilities.local_compute and dynamic_filters.late_materialization(planned, column, keys, catalog):
        restricted = dataclasses.replace(restricted, late_materialization=True)
        note += ", other columns decoded only for the rows kept"
    return restricted, f"{note} ({waited})"
