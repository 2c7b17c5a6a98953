"""The engine: plan a query, fetch its fragments in parallel as Arrow streams, run the residual in DataFusion.

Each fragment is read by its own thread into a bounded queue (backpressure: a slow consumer stops the
source reads instead of filling memory). Fragments are registered in a fresh DataFusion session as one-shot
streaming datasets; the residual plan pulls from them. When the whole query was pushed to one source, the
fragment's stream is passed through without DataFusion.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import re
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from datafusion import SessionContext
from sqlglot import exp

from catalog import Catalog
from connectors.arrow import datafusion as df_boundary
from connectors.arrow.datafusion import TARGET_PARTITIONS, StreamCancelled
from connectors.base import Connector, Fragment, conform_batch
from gateway import dynamic_filters
from gateway.cache.scanner import CachedScanner
from gateway.errors import (
    ExecutionError,
    GatewayError,
    InvalidQueryError,
    InvalidRequestError,
    PermissionDeniedError,
    QueryCancelledError,
    QueryTimeoutError,
    ResourceLimitError,
    SourceQueryError,
)
from gateway.execution.admission import Admission
from gateway.metrics import FragmentStats, Metrics, QueryStats
from gateway.settings import Settings
from planner import FederatedPlan, Planner

log = logging.getLogger(__name__)

_END = object()


@dataclass
class QueryResult:
    """A running query: its result ``schema``, a ``reader`` that streams the rows, and live ``stats``."""

    schema: pa.Schema
    reader: pa.RecordBatchReader
    stats: QueryStats
    plan: FederatedPlan
    feeds: list[_FragmentFeed] = field(default_factory=list)
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Stop the query: source statements are cancelled (their backends stop), the reader raises
        QueryCancelledError. Safe from any thread, and a no-op once the query has finished."""
        self.cancel_event.set()
        for feed in self.feeds:
            feed.cancel_source()


class _FragmentFeed:
    """Reads one fragment on its own thread; counts rows and bytes.

    Two modes. *stream* (a whole query pushed to one source): batches pass through a bounded queue, so a slow
    client stops the source reads instead of filling memory. *collect* (fragments of a residual plan):
    DataFusion can only read a finished dataset from Python, so each fragment is gathered by its own thread
    (all in parallel), in memory up to ``spill_bytes`` and in an Arrow IPC file beyond, which DataFusion then
    scans from disk.
    """

    def __init__(self, fragment: Fragment, catalog: Catalog, depth: int, cancel: threading.Event,
                 scanner: CachedScanner | None = None, max_staleness_s: float | None = None,
                 collect: bool = False, spill_dir: str | None = None, spill_bytes: int = 256 << 20,
                 stats: FragmentStats | None = None) -> None:
        self.fragment = fragment
        self._scanner = scanner
        self._max_staleness_s = max_staleness_s
        self.stats = stats or FragmentStats(fragment.id, fragment.source, fragment.sql)
        self._catalog = catalog
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._cancel = cancel
        self._collect = collect
        self._spill_dir = spill_dir
        self._spill_bytes = spill_bytes
        self._kept: list[pa.RecordBatch] = []
        self._kept_bytes = 0
        self.spill_path: str | None = None
        self._writer = None
        self.started = threading.Event()  # set once the source answered (first batch, end, or error)
        self._cancel_requested = threading.Event()  # cancel_source() sends one request per fragment
        self.done = threading.Event()  # collect mode: every batch is kept
        self.error: BaseException | None = None
        # the source is read on its own thread even when passed through: on two cores, decoding there
        # overlaps with sending (measured: reading on the consumer's thread was 2x slower)
        self._thread = threading.Thread(target=self._run, name=f"fragment-{fragment.id}", daemon=True)
        self._thread.start()

    def _open(self) -> pa.RecordBatchReader:
        if self._scanner is not None:
            return self._scanner.scan(self.fragment, self._max_staleness_s, self.stats.partitions)
        return self._catalog.connector(self.fragment.source).scan(self.fragment)

    def _put(self, item) -> bool:
        while not self._cancel.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _keep(self, batch: pa.RecordBatch) -> None:
        if self._writer is None and self._kept_bytes + batch.nbytes > self._spill_bytes:
            fd, self.spill_path = tempfile.mkstemp(prefix=f"gateway-{self.fragment.id}-", suffix=".arrow",
                                                   dir=self._spill_dir)
            os.close(fd)
            self._writer = pa.ipc.new_file(self.spill_path, self.fragment.schema)
            for kept in self._kept:
                self._writer.write_batch(kept)
            self._kept, self._kept_bytes = [], 0
        if self._writer is not None:
            self._writer.write_batch(batch)
        else:
            self._kept.append(batch)
            self._kept_bytes += batch.nbytes

    def _run(self) -> None:
        t0 = time.perf_counter()
        reader = None
        try:
            reader = self._open()
            for batch in reader:
                self.stats.rows += batch.num_rows
                self.stats.bytes += batch.nbytes
                self.started.set()
                if self._cancel.is_set():
                    break
                if self._collect:
                    self._keep(batch)
                elif not self._put(batch):
                    break
        except BaseException as exc:
            self.error = exc
        finally:
            self.stats.seconds = time.perf_counter() - t0
            if reader is not None and self._cancel.is_set():
                try:
                    reader.close()
                except Exception:
                    pass
            if self._writer is not None:
                self._writer.close()
            # destroy the native reader here, before the consumer can see the end: a daemon thread still
            # inside pyarrow's reader destructor when the interpreter exits aborts the process (std::terminate)
            reader = None
            self.started.set()
            self.done.set()
            if not self._collect:
                self._put(_END)

    def stop(self, timeout: float) -> None:
        """Cancel the read (its query's cancel event and source statement) and wait up to ``timeout`` seconds
        for the reading thread to end."""
        self._cancel.set()
        self.cancel_source()
        self._thread.join(timeout)

    def cancel_source(self) -> None:
        """Ask the connector to cancel the source statement if it still runs (a no-op once it ended or was
        asked). Never blocks: the request is sent from its own thread, since sending it may wait on a stalled
        server (PostgreSQL's cancel request opens a connection to the postmaster)."""
        if self._thread.is_alive() and not self._cancel_requested.is_set():
            self._cancel_requested.set()
            threading.Thread(target=self._send_cancel, name=f"cancel-{self.fragment.id}", daemon=True).start()

    def _send_cancel(self) -> None:
        try:
            self._catalog.connector(self.fragment.source).cancel(self.fragment)
        except Exception as exc:  # cancelling is best effort; the statement ends with its connection
            log.warning("source cancel failed", extra={"source": self.fragment.source, "error": str(exc)})

    def _wait_done(self) -> None:
        while not self.done.wait(0.1):
            if self._cancel.is_set():
                self.cancel_source()
                raise QueryCancelledError("the query was cancelled")
        if self.error is not None:
            raise self.error

    def kept_batches(self, row_limit: int) -> list[pa.RecordBatch] | None:
        """Collect mode: all batches once the fragment ended within ``row_limit`` rows, else None (as soon as
        it passes the limit). Raises the fragment's error."""
        while not self.done.wait(0.05):
            if self.stats.rows > row_limit or self._cancel.is_set():
                return None
        if self.error is not None:
            raise self.error
        return None if self.spill_path is not None or self.stats.rows > row_limit else list(self._kept)

    def register(self, ctx: SessionContext, partitions: int) -> None:
        """Collect mode: register the fragment in ``ctx`` under its id as a native DataFusion table: record
        batches in ``partitions`` partitions (scanned in parallel), or the spilled Arrow IPC file."""
        self._wait_done()
        if self.spill_path is not None:
            ctx.register_arrow(self.fragment.id, self.spill_path)
            return
        schema = self.fragment.schema
        plain = pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])
        batches = [b if b.schema == plain else b.cast(plain) for b in self._kept] or [_empty_batch(plain)]
        split = [batches[i::partitions] for i in range(partitions)]
        ctx.register_record_batches(self.fragment.id, [part for part in split if part])

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Stream mode: the fragment's batches as they arrive."""
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._cancel.is_set():
                    self.cancel_source()
                    raise QueryCancelledError("the query was cancelled") from None
                continue
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def cleanup(self) -> None:
        """Remove the spill file, if any."""
        if self.spill_path is not None:
            self.done.wait(5)
            try:
                os.unlink(self.spill_path)
            except OSError:
                pass


class _InPlaceFeed:
    """A fragment the residual plan reads in place (``Connector.native_view``: files DataFusion scans
    itself). Nothing is fetched ahead: DataFusion decodes only what the whole query needs and its hash joins
    prune the files' row groups by the build side's keys. Rows and bytes are read off the residual plan's
    scan metrics once it ran (``record_scan_metrics``). Same interface as ``_FragmentFeed``'s collect mode."""

    def __init__(self, fragment: Fragment, catalog: Catalog, fallback) -> None:
        self.fragment = fragment
        self.stats = FragmentStats(fragment.id, fragment.source, fragment.sql, read_in_place=True)
        self._catalog = catalog
        self._fallback = fallback  # starts a fetching feed when the source declines (rare shapes)
        self.started = threading.Event()
        self.started.set()
        self.done = self.started
        self.error: BaseException | None = None
        self.spill_path: str | None = None

    def register(self, ctx: SessionContext, partitions: int) -> None:
        view = self._catalog.connector(self.fragment.source).native_view(self.fragment, ctx)
        if view is None:
            self.stats.read_in_place = False
            feed = self._fallback(self.fragment, self.stats)
            feed.register(ctx, partitions)
            return
        ctx.register_view(self.fragment.id, view)

    def cancel_source(self) -> None:
        """Nothing runs outside the residual plan."""

    def cleanup(self) -> None:
        """Nothing to remove."""


def record_scan_metrics(plan, feeds: list) -> None:
    """Give each in-place fragment of an executed residual ``plan`` (a ``datafusion.ExecutionPlan``) the
    rows its file scans yielded after the filters applied at the scan (the FilterExec right above a
    DataSourceExec, else the scan's own output) and their Arrow bytes. A scan is matched to a fragment by the
    table named in its file paths; several fragments over one table take its scans in plan order."""
    in_place = [feed for feed in feeds if feed.stats.read_in_place]
    if not in_place:
        return
    for feed in in_place:
        feed.stats.rows = feed.stats.bytes = 0
    taken: set[tuple[int, str]] = set()

    def visit(node, above: list) -> None:
        text = node.display()
        if text.startswith("DataSourceExec"):
            counted = node
            for ancestor in reversed(above):  # through repartitions to a filter, if any
                if ancestor.display().startswith("FilterExec"):
                    counted = ancestor
                if not ancestor.display().startswith(("RepartitionExec", "CoalesceBatchesExec")):
                    break
            metrics = counted.metrics()
            matches = [(feed, table) for feed in in_place
                       for table in (t.rsplit(".", 1)[-1] for t in feed.fragment.tables)
                       if f"/{table}/" in text or f"/{table}." in text]
            if matches and metrics is not None:
                feed, table = next((m for m in matches if (id(m[0]), m[1]) not in taken), matches[0])
                taken.add((id(feed), table))
                feed.stats.rows += metrics.output_rows or 0
                feed.stats.bytes += sum(m.value or 0 for m in metrics.metrics() if m.name == "output_bytes")
        for child in node.children():
            visit(child, [*above, node])

    visit(plan, [])


class QueryEngine:
    """The gateway's entry point for every protocol: plan, explain and execute SQL over the catalog.

    ``execute`` returns a ``QueryResult`` whose reader streams Arrow record batches. Errors are
    ``GatewayError`` subclasses; a failing source raises SourceUnavailableError/SourceQueryError naming it
    and never affects other queries.
    """

    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or Catalog.from_settings(settings)
        self.planner = Planner(self.catalog, limits=settings.limits.input_limits())
        self._scoped_planners: dict[tuple, Planner] = {}  # per (allowed sources, default catalog/schema)
        self.metrics = Metrics()
        self.scanner = CachedScanner(self.catalog, settings)
        self.scanner.cache.register_metrics(self.metrics.registry)
        self.admission = Admission(settings.limits, self.catalog)  # light and heavy lanes (gateway.execution.admission)
        self.admission.register_metrics(self.metrics.registry)
        self._feeds: weakref.WeakSet[_FragmentFeed] = weakref.WeakSet()  # reader threads, stopped by close()

    # -- planning --------------------------------------------------------------------------------------

    def _planner(self, sql: str, allowed_sources: Iterable[str] | None, default_catalog: str | None,
                 default_schema: str | None) -> Planner:
        """The planner as one caller sees the catalog. A query naming a source outside ``allowed_sources``
        is refused here, before any source is contacted."""
        if allowed_sources is None and default_catalog is None and default_schema is None:
            return self.planner
        if allowed_sources is not None:
            allowed = set(allowed_sources)
            for source in referenced_sources(sql, self.catalog.list_sources(), self.planner.limits):
                if source not in allowed:
                    raise PermissionDeniedError(f"access to source '{source}' is not allowed", source=source)
        key = (frozenset(allowed_sources) if allowed_sources is not None else None, default_catalog, default_schema)
        planner = self._scoped_planners.get(key)
        if planner is None:
            view = self.catalog.view(allowed_sources, default_catalog, default_schema)
            planner = self._scoped_planners.setdefault(
                key, Planner(view, self.planner.dialect, limits=self.planner.limits))
        return planner

    def plan(self, sql: str, params: Sequence[object] | None = None, *,
             allowed_sources: Iterable[str] | None = None, default_catalog: str | None = None,
             default_schema: str | None = None) -> FederatedPlan:
        """The federated plan of ``sql`` (no source data is read). ``allowed_sources`` (None = all) limits
        the sources the query may touch (PermissionDeniedError otherwise); ``default_catalog`` /
        ``default_schema`` are where unqualified table names are looked up first."""
        return self._planner(sql, allowed_sources, default_catalog, default_schema).plan(sql, params)[1]

    def schema(self, sql: str, params: Sequence[object] | None = None, **scope) -> pa.Schema:
        """The Arrow schema the query returns; for EXPLAIN, one ``plan`` utf8 column. ``scope``: as ``plan``."""
        statement, plan = self._planner(sql, **_scope(scope)).plan(sql, params)
        return _EXPLAIN_SCHEMA if statement.explain else plan.schema

    def parameter_schema(self, sql: str, **scope) -> pa.Schema:
        """Fields ``$1``..``$n`` typed from their context in ``sql`` (see ``planner.params``)."""
        from planner.params import parameter_schema
        from planner.parse import parse

        catalog = self._planner(sql, **_scope(scope)).catalog

        def table_schema(parts: tuple[str, ...]) -> pa.Schema | None:
            try:
                return catalog.table_schema(catalog.resolve(list(parts)))
            except GatewayError:
                return None

        return parameter_schema(parse(sql, self.planner.dialect, self.planner.limits).expression, table_schema)

    def explain(self, sql: str, params: Sequence[object] | None = None, analyze: bool = False,
                max_staleness_s: float | None = None, **scope) -> str:
        """The text plan; with ``analyze`` the query is run and each fragment's rows and bytes are shown.
        Partitions of cached sources are marked ``cached (age)`` or ``fetched``."""
        plan = self.plan(sql, params, **scope)
        if not analyze:
            marks = {f.id: self.scanner.describe(f, max_staleness_s) for f in plan.fragments}
            return plan.explain(partitions={k: v for k, v in marks.items() if v}, in_place=self._in_place(plan))
        result = self._run(sql, plan, None, max_staleness_s=max_staleness_s)
        for _ in result.reader:
            pass
        stats = {f.id: {"rows": f.rows, "bytes": f.bytes, "dynamic_filter": f.dynamic_filter}
                 for f in result.stats.fragments}
        in_place = {f.id for f in result.stats.fragments if f.read_in_place}
        marks = {
            f.id: [f"{u.partition}: {u.status}" + (f" ({u.age_s:.1f}s old)" if u.age_s is not None else "")
                   for u in f.partitions]
            for f in result.stats.fragments if f.partitions
        }
        return plan.explain(stats, partitions=marks, in_place=in_place)

    # -- the partition cache -----------------------------------------------------------------------------

    def cache_warm(self, table: str, where: str | None = None, **scope) -> list[dict]:
        """Fetch and cache every partition of ``table`` (optionally only those ``where`` selects), with all
        its columns. Returns one ``{partition, status, rows}`` per partition. Raises GatewayError."""
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "")
        plan = self.plan(sql, **scope)
        if len(plan.fragments) != 1:
            raise InvalidRequestError(f"'{table}' is not one source table")
        return [dataclasses.asdict(u) for u in self.scanner.warm(plan.fragments[0])]

    def cache_status(self) -> dict:
        """The cache's entries, budgets and counters (``gateway.cache.store.PartitionCache.status``)."""
        return self.scanner.cache.status()

    def cache_clear(self, source: str | None = None, table: str | None = None) -> int:
        """Drop cached partitions (all, of one source, or of one table); returns how many were dropped."""
        return self.scanner.cache.invalidate(source=source, table=table) if source or table else \
            self.scanner.cache.clear()

    # -- execution -------------------------------------------------------------------------------------

    def execute(
        self, sql: str, params: Sequence[object] | None = None, user: str | None = None,
        cancel: threading.Event | None = None, max_staleness_s: float | None = None,
        timeout_s: float | None = None, query_id: str | None = None, **scope,
    ) -> QueryResult:
        """Run ``sql`` and return its streaming result. ``EXPLAIN [ANALYZE] q`` returns the plan as rows.

        ``scope``: ``allowed_sources``, ``default_catalog``, ``default_schema`` as for ``plan``. Setting
        ``cancel`` (or calling ``QueryResult.cancel()``) stops the query, also while it waits for the
        sources' first rows: their statements are cancelled and QueryCancelledError is raised. The engine
        sets ``cancel`` itself when the query ends (it stops the fragment readers). ``max_staleness_s``
        bounds the age of cached partitions served (0: only those the source's fingerprint proves current).
        ``timeout_s`` (default ``limits.query_timeout_s``; 0 = none) bounds the run in seconds, from the start
        of execution to the last batch: past it every source statement is cancelled, the residual plan is
        dropped, and the reader raises QueryTimeoutError. ``query_id`` (default: a new random hex id) names the
        query in its stats and history: a protocol may choose it so that its client can cancel the query
        before the first row arrives.
        """
        try:
            statement, plan = self._planner(sql, **_scope(scope)).plan(sql, params)
        except GatewayError as exc:
            # refused and unplannable queries are part of the history too
            stats = QueryStats(query_id or uuid.uuid4().hex, sql, user=user)
            self.metrics.started(stats)
            self._finish(stats, time.perf_counter(), exc)
            raise
        if statement.explain:
            text = self.explain(statement.sql, params, analyze=statement.analyze, **scope)
            table = pa.table({"plan": text.splitlines()}, schema=_EXPLAIN_SCHEMA)
            stats = QueryStats(query_id or uuid.uuid4().hex, sql, user=user, status="ok", rows=table.num_rows)
            return QueryResult(table.schema, table.to_reader(), stats, plan)
        return self._run(sql, plan, user, cancel, max_staleness_s, timeout_s, query_id)

    def _run(self, sql: str, plan: FederatedPlan, user: str | None,
             cancel: threading.Event | None = None, max_staleness_s: float | None = None,
             timeout_s: float | None = None, query_id: str | None = None) -> QueryResult:
        stats = QueryStats(query_id or uuid.uuid4().hex, sql, user=user, pushed_whole=plan.pushed_whole)
        self.metrics.started(stats)
        cancel = cancel or threading.Event()
        deadline = _Deadline(self.settings.limits.query_timeout_s if timeout_s is None else timeout_s, cancel)
        t0 = time.perf_counter()
        try:
            self.admission.admit(plan, stats, cancel)  # a heavy query waits for a slot; released in _finish
            feeds = self._start_feeds(plan, cancel, max_staleness_s)
        except BaseException as exc:
            deadline.stop()
            error = deadline.error() if cancel.is_set() else _as_gateway_error(exc, [])
            self._finish(stats, t0, error)
            raise error from exc
        deadline.feeds = feeds
        stats.fragments = [feed.stats for feed in feeds]
        try:
            # Wait until every source has answered, so a failing source is reported before streaming.
            for feed in feeds:
                while not feed.started.wait(0.1):
                    if cancel.is_set():
                        for other in feeds:
                            other.cancel_source()
                        raise deadline.error()
                if feed.error is not None:
                    raise feed.error
            if plan.pushed_whole:
                stream: Iterator[pa.RecordBatch] = feeds[0].batches()
            else:
                ctx = self._session()
                for feed in feeds:
                    feed.register(ctx, partitions=TARGET_PARTITIONS)
                df = ctx.sql(plan.residual_sql)
                stream = _residual_batches(df, plan.schema, feeds, cancel)
        except BaseException as exc:
            cancelled = cancel.is_set()
            cancel.set()
            deadline.stop()
            for feed in feeds:
                feed.cleanup()
            error = deadline.error() if cancelled else _as_gateway_error(exc, feeds)
            self._finish(stats, t0, error)
            raise error from exc

        def results() -> Iterator[pa.RecordBatch]:
            error: BaseException | None = None
            try:
                for batch in stream:
                    stats.rows += batch.num_rows
                    yield batch
            except GeneratorExit:
                stats.status = "cancelled"
                for feed in feeds:
                    feed.cancel_source()
                raise
            except BaseException as exc:
                if cancel.is_set():
                    error = deadline.error()
                    stats.status = "cancelled" if isinstance(error, QueryCancelledError) else "timeout"
                else:
                    error = _as_gateway_error(exc, feeds)
                raise error from exc
            finally:
                deadline.stop()
                cancel.set()
                for feed in feeds:
                    feed.cleanup()
                self._finish(stats, t0, error)

        return QueryResult(plan.schema, pa.RecordBatchReader.from_batches(plan.schema, results()), stats, plan,
                           feeds, cancel)

    def _start_feeds(self, plan: FederatedPlan, cancel: threading.Event, max_staleness_s: float | None
                     ) -> list[_FragmentFeed]:
        """Start every fragment; a probe side of a dynamic filter starts once its build side was read."""
        limits = self.settings.limits
        collect = not plan.pushed_whole
        filters = dynamic_filters.choose(plan, self.catalog) if limits.dynamic_filters and collect else []
        probes: dict[str, list] = {}
        for dynamic in filters:
            probes.setdefault(dynamic.probe, []).append(dynamic)

        fetched = self._fetched_not_in_place(plan, filters)

        def fetch(fragment: Fragment, stats: FragmentStats | None = None) -> _FragmentFeed:
            feed = _FragmentFeed(fragment, self.catalog, limits.prefetch_batches, cancel, self.scanner,
                                 max_staleness_s, collect=collect, spill_dir=limits.spill_path,
                                 spill_bytes=limits.fragment_memory_bytes, stats=stats)
            self._feeds.add(feed)
            return feed

        def start(fragment: Fragment) -> _FragmentFeed | _InPlaceFeed:
            if collect and fragment.id not in fetched and self._reads_in_place(fragment.source):
                return _InPlaceFeed(fragment, self.catalog, fetch)
            return fetch(fragment)

        feeds = {f.id: start(f) for f in plan.fragments if f.id not in probes}
        waiting = [f for f in plan.fragments if f.id in probes]
        while waiting:  # a probe starts once its build (perhaps itself a restricted probe) has been read
            ready = [f for f in waiting if all(d.build in feeds for d in probes[f.id])]
            if not ready:  # cannot happen (choose() makes no cycles); start the rest unfiltered
                ready, probes = waiting, {}
            for fragment in ready:
                waiting.remove(fragment)
                notes = []
                for dynamic in probes.get(fragment.id, []):
                    build = feeds[dynamic.build]
                    batches = build.kept_batches(dynamic_filters.BUILD_ROW_LIMIT)
                    if batches is not None:
                        keys = dynamic_filters.build_keys(batches, build.fragment.schema, dynamic.build_column,
                                                          plan.local_filters.get(dynamic.build))
                        restricted = dynamic_filters.restrict(
                            fragment, dynamic.probe_column, keys,
                            self.catalog.connector(fragment.source).capabilities.key_arrays)
                        if restricted is not None:
                            fragment, note = restricted
                            notes.append(note)
                feeds[fragment.id] = start(fragment)
                feeds[fragment.id].stats.dynamic_filter = "; ".join(notes) or None
        return [feeds[f.id] for f in plan.fragments]

    def _in_place(self, plan: FederatedPlan) -> set[str]:
        """The fragments a run of ``plan`` would let the residual plan scan itself (see ``_start_feeds``)."""
        if plan.pushed_whole:
            return set()
        filters = dynamic_filters.choose(plan, self.catalog) if self.settings.limits.dynamic_filters else []
        fetched = self._fetched_not_in_place(plan, filters)
        return {f.id for f in plan.fragments if f.id not in fetched and self._reads_in_place(f.source)}

    def _fetched_not_in_place(self, plan: FederatedPlan, filters: list) -> set[str]:
        """Fragments of in-place sources that are fetched all the same: dynamic-filter builds (their keys
        are needed first), fragments read twice, and small ones (estimated below ``limits.in_place_min_rows``:
        fetching them overlaps with the other sources' reads, scanning in place waits for them; measured on
        TPC-H SF1 with bench/tpch_bench.py)."""
        fetched = {dynamic.build for dynamic in filters} | _read_twice(plan)
        for fragment in plan.fragments:
            if fragment.id in fetched or not self._reads_in_place(fragment.source):
                continue
            rows = dynamic_filters.estimated_rows(fragment, self.catalog)
            if rows is not None and rows < self.settings.limits.in_place_min_rows:
                fetched.add(fragment.id)
        return fetched

    def _reads_in_place(self, source: str) -> bool:
        """Whether the residual plan scans the source's tables itself: file sources without a cache rule."""
        connector = self.catalog.connector(source)
        return (self.settings.limits.read_files_in_place and not self.scanner.cached_source(source)
                and type(connector).native_view is not Connector.native_view)

    def _session(self) -> SessionContext:
        limits = self.settings.limits
        # fragments are build sides of up to a few million rows: one shared hash table per join
        return df_boundary.session(memory_bytes=limits.memory_bytes, spill_path=limits.spill_path or None,
                                   broadcast_builds=True)

    def _finish(self, stats: QueryStats, t0: float, error: BaseException | None) -> None:
        stats.seconds = time.perf_counter() - t0
        if error is not None:
            stats.failed(error)  # status cancelled / timeout / error, with the error's code
        elif stats.status == "running":
            stats.status = "ok"
        self.admission.release(stats)  # its admission slot, if it holds one
        self.metrics.finished(stats)  # counted, and its one log line (gateway.logs.log_query)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the fragment readers still running (their queries are cancelled) and wait up to ``timeout_s``
        seconds for each thread, then close the connectors' pooled connections. Call before the process exits:
        a reader thread still inside native code while the interpreter finalizes aborts the process."""
        for feed in list(self._feeds):
            feed.stop(timeout_s)
        for connector in self.catalog.connectors.values():
            connector.close()


_EXPLAIN_SCHEMA = pa.schema([pa.field("plan", pa.string(), nullable=False)])


def _scope(scope: dict) -> dict:
    unknown = set(scope) - {"allowed_sources", "default_catalog", "default_schema"}
    if unknown:
        raise TypeError(f"unexpected arguments {sorted(unknown)}")
    return {"allowed_sources": scope.get("allowed_sources"), "default_catalog": scope.get("default_catalog"),
            "default_schema": scope.get("default_schema")}


def referenced_sources(sql: str, sources: Sequence[str], limits=None) -> set[str]:
    """Sources named explicitly by the query's table names (``src.schema.t``, ``src.t``); case-insensitive.

    Parsing only: no catalog lookup, no source contacted. Unparsable SQL yields nothing here (the planner
    reports the syntax error).
    """
    from sqlglot import exp

    from planner.parse import DEFAULT_LIMITS, parse

    try:
        expression = parse(sql, limits=limits or DEFAULT_LIMITS).expression
    except GatewayError:
        return set()
    by_lower = {s.lower(): s for s in sources}
    named = set()
    for table in expression.find_all(exp.Table):
        parts = [p.name for p in table.parts]
        if len(parts) >= 2 and parts[0].lower() in by_lower:
            named.add(by_lower[parts[0].lower()])
    return named


#: DataFusion errors that come from reading files (an in-place fragment's source), not from the plan itself
_FILE_ERROR = re.compile(r"Parquet|IO error|Object ?Store|CSV error|No such file", re.IGNORECASE)
#: DataFusion errors caused by the query's own values (InvalidQueryError, 400): division by zero, a value that
#: does not cast, overflow, a string that does not parse as a date/time, a function's argument out of range
_QUERY_ERROR = re.compile(r"Divide by zero|Cast error|overflow|Parser error|Compute error|out of range|"
                          r"not allowed|regex parse error|Invalid regex", re.IGNORECASE)
#: a source's own report that the query's values failed (a file source runs DataFusion too): the client's error
_SOURCE_VALUE_ERROR = re.compile(r"Divide by zero|division by zero|Arithmetic overflow", re.IGNORECASE)
#: DataFusion's memory pool (limits.memory_bytes) refused an allocation
_RESOURCES_ERROR = re.compile(r"Resources exhausted", re.IGNORECASE)
#: DataFusion's wrappings in front of the reason
_DATAFUSION_PREFIX = re.compile(r"^(?:DataFusion error|Arrow error|External error|Execution error|Compute error)"
                                r":\s*")
_DATAFUSION_WRAPPING = re.compile(r"(?:DataFusion|Arrow|External) error:\s*")


def _datafusion_reason(exc: BaseException) -> str:
    """DataFusion's innermost reason (the last ``caused by`` line), without its ``DataFusion error:`` /
    ``Arrow error:`` wrappings: ``Divide by zero error``, ``Cast error: Cannot cast string 'x' to ...``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and line.strip() != "caused by"]
    reason = lines[-1] if lines else repr(exc)
    while (shorter := _DATAFUSION_PREFIX.sub("", reason, count=1)) != reason:
        reason = shorter
    return reason


def _as_gateway_error(exc: BaseException, feeds: list[_FragmentFeed]) -> BaseException:
    """The error to show: a source's own error wins over DataFusion's wrapping of it; a failure inside the
    files an in-place fragment scans is that source's. The query's values failing (division by zero, a failed
    cast, overflow; in DataFusion, or a division by zero or overflow a source reports) is InvalidQueryError
    (400); DataFusion's memory limit ResourceLimitError; anything else of DataFusion's ExecutionError (500).
    Messages never carry a traceback or a path."""
    for feed in feeds:
        if isinstance(feed.error, SourceQueryError) and _SOURCE_VALUE_ERROR.search(feed.error.message):
            reason = feed.error.message.split("failed the query: ", 1)[-1]
            return InvalidQueryError(f"the query failed on its values in source '{feed.error.source}': "
                                     f"{_DATAFUSION_WRAPPING.sub('', reason)}", source=feed.error.source)
        if isinstance(feed.error, GatewayError):
            return feed.error
    in_place = [f for f in feeds if isinstance(f, _InPlaceFeed) and f.stats.read_in_place]
    if len({f.fragment.source for f in in_place}) == 1 and _FILE_ERROR.search(str(exc)):
        feed = in_place[0]  # DataFusion's file errors do not name the file; one file source is in play
        return SourceQueryError(feed.fragment.source, str(exc).splitlines()[0], feed.fragment.sql)
    if isinstance(exc, GatewayError | GeneratorExit | KeyboardInterrupt):
        return exc
    if isinstance(exc, TimeoutError):
        return QueryTimeoutError(str(exc))
    if not isinstance(exc, pa.ArrowException):  # pyarrow's are the gateway's conformance of a fragment's batches
        if _RESOURCES_ERROR.search(str(exc)):
            return ResourceLimitError(f"the query needs more memory than limits.memory_bytes allows: "
                                      f"{_datafusion_reason(exc)}")
        if _QUERY_ERROR.search(str(exc)):
            return InvalidQueryError(f"the query failed on its values: {_datafusion_reason(exc)}")
    return ExecutionError(f"the residual plan failed in DataFusion: {str(exc).splitlines()[0] if str(exc) else exc!r}")


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


class _Deadline:
    """A query's time limit: past ``timeout_s`` seconds it sets ``cancel`` and cancels the source statements
    of ``feeds``; ``error()`` then says which of timeout or cancellation stopped the query."""

    def __init__(self, timeout_s: float, cancel: threading.Event) -> None:
        self.timeout_s = timeout_s
        self.feeds: list = []
        self._cancel = cancel
        self._expired = threading.Event()
        self._timer = threading.Timer(timeout_s, self._expire) if timeout_s and timeout_s > 0 else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        self._expired.set()
        self._cancel.set()
        for feed in self.feeds:
            feed.cancel_source()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def error(self) -> GatewayError:
        if self._expired.is_set():
            return QueryTimeoutError(f"the query ran longer than its time limit of {self.timeout_s:g} s "
                                     "(limits.query_timeout_s or the query's timeout)", timeout_s=self.timeout_s)
        return QueryCancelledError("the query was cancelled")


def _residual_batches(df, schema: pa.Schema, feeds: list, cancel: threading.Event) -> Iterator[pa.RecordBatch]:
    """The residual plan's batches conformed to ``schema``; once it ran to the end, the in-place fragments'
    rows and bytes are read off its executed plan. Stops DataFusion's work when ``cancel`` is set
    (``connectors.arrow.datafusion.batches``) and raises QueryCancelledError."""
    try:
        for batch in df_boundary.batches(df, cancel):
            yield batch if batch.schema == schema else conform_batch(batch, schema)
    except StreamCancelled:
        raise QueryCancelledError("the query was cancelled") from None
    record_scan_metrics(df.execution_plan(), feeds)


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)
