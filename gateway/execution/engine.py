"""The engine facade: plan a query, run its schedule of fragment feeds, stream the result.

``QueryEngine`` is what every protocol calls: ``plan``/``schema``/``explain``/``execute`` and the partition
cache's ``cache_*`` operations. A run decides its plan's ``Schedule`` once (``gateway.execution.schedule``:
fetched, read in place, probed by dynamic filters), starts the fragment feeds (``gateway.execution.feeds``),
and either passes the one fragment of a query pushed whole through or runs the residual plan in DataFusion
(``gateway.execution.residual``), under admission control and a time limit. EXPLAIN text is assembled in
``gateway.execution.explain``; memory pools of whole queries pushed to file sources in ``gateway.execution.pooling``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from catalog import Catalog
from connectors.base import Fragment
from gateway.cache.scanner import CachedScanner
from gateway.distributed import Distribution, Distributor
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
    QueryCancelledError,
    UnknownObjectError,
)
from gateway.execution.admission import Admission
from gateway.execution.explain import EXPLAIN_SCHEMA, explain_analyzed, explain_planned
from gateway.execution.feeds import Feed, FragmentFeed, wait_until_answered
from gateway.execution.memory import MemoryAccount, MemoryBudget, ResultCap
from gateway.execution.pooling import holds_rows, pooled  # noqa: F401 - holds_rows: importable here as before
from gateway.execution.residual import Deadline, as_gateway_error, run_residual
from gateway.execution.schedule import Schedule, decide, start_feeds
from gateway.metrics import FragmentStats, Metrics, QueryStats
from gateway.settings import Settings, build_connectors, view_definitions
from gateway.trust import Trust
from planner import FederatedPlan, Planner
from planner.metadata_statements import rewrite_statement
from planner.params import parameter_schema
from planner.parse import parse, referenced_sources
from planner.views import ViewTyping

log = logging.getLogger(__name__)


@dataclass
class FallbackRun:
    """How a plan with a ``TopNFallback`` ran: ``note`` says whether its fallback plan ran and why; when it ran,
    ``fragments`` and ``joins`` are the fallback plan's (EXPLAIN ANALYZE shows them under it)."""

    note: str
    fragments: list[FragmentStats] = field(default_factory=list)
    joins: list[dict] = field(default_factory=list)


@dataclass
class QueryResult:
    """A running query: its result ``schema``, a ``reader`` that streams the rows, and live ``stats``;
    ``fallback``: for a plan with a top-N below an inner join, whether its fallback plan ran."""

    schema: pa.Schema
    reader: pa.RecordBatchReader
    stats: QueryStats
    plan: FederatedPlan
    feeds: list[Feed] = field(default_factory=list)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    fallback: FallbackRun | None = None

    def cancel(self) -> None:
        """Stop the query: source statements are cancelled (their backends stop), the reader raises
        QueryCancelledError. Safe from any thread, and a no-op once the query has finished."""
        self.cancel_event.set()
        for feed in self.feeds:
            feed.cancel_source()


_NO_PARAMETERS = pa.schema([])


class QueryEngine:
    """The gateway's entry point for every protocol: plan, explain and execute SQL over the catalog.

    ``execute`` returns a ``QueryResult`` whose reader streams Arrow record batches. Errors are
    ``GatewayError`` subclasses; a failing source raises SourceUnavailableError/SourceQueryError naming it
    and never affects other queries.
    """

    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or Catalog(build_connectors(settings))
        self.planner = Planner(self.catalog, limits=settings.limits.input_limits())
        self.views = ViewTyping(self.planner, view_definitions(settings.views))  # ConfigError names a bad view
        self._scoped_planners: dict[tuple, Planner] = {}  # per (allowed sources, default catalog/schema)
        self.metrics = Metrics()
        self.scanner = CachedScanner(self.catalog, settings)
        self.scanner.cache.register_metrics(self.metrics.registry)
        self.admission = Admission(settings.limits, self.catalog)  # light and heavy lanes (gateway.execution.admission)
        self.admission.register_metrics(self.metrics.registry)
        self.memory = MemoryBudget(settings.limits.process_memory_bytes,  # one budget (gateway.execution.memory)
                                   headroom=settings.limits.min_query_memory_bytes)
        self.memory.register_metrics(self.metrics.registry)
        self._feeds: weakref.WeakSet[FragmentFeed] = weakref.WeakSet()  # reader threads, stopped by close()
        self.distributor = Distributor(settings.execution, settings.sources)  # Ray execution (gateway.distributed)
        self.trust = Trust(settings, self.catalog, self.metrics, self.scanner.cache)  # manifests, lineage, drift

    # -- planning --------------------------------------------------------------------------------------

    def _planner(self, sql: str, allowed_sources: Iterable[str] | None, default_catalog: str | None,
                 default_schema: str | None) -> Planner:
        """The planner as one caller sees the catalog: a view of ``allowed_sources`` only (a name in another
        source does not resolve there; ``_plan`` turns that into PermissionDeniedError)."""
        if allowed_sources is None and default_catalog is None and default_schema is None:
            return self.planner
        key = (frozenset(allowed_sources) if allowed_sources is not None else None, default_catalog, default_schema)
        planner = self._scoped_planners.get(key)
        if planner is None:
            view = self.catalog.view(allowed_sources, default_catalog, default_schema)
            planner = self._scoped_planners.setdefault(
                key, Planner(view, self.planner.dialect, limits=self.planner.limits))
        return planner

    def _plan(self, sql: str, params: Sequence[object] | None, allowed_sources: Iterable[str] | None = None,
              default_catalog: str | None = None, default_schema: str | None = None) -> tuple:
        """``(statement, plan)`` as the caller's scope sees the catalog, parsed once. A query naming a source
        outside ``allowed_sources`` is refused with PermissionDeniedError before any source is contacted: the
        view does not resolve it, and only then is the SQL read again to name the source."""
        planner = self._planner(sql, allowed_sources, default_catalog, default_schema)
        self.views.retry()  # views whose source was down at start
        try:
            return planner.plan(sql, params)
        except UnknownObjectError as exc:
            self.trust.explain_missing(exc)  # a column a schema change dropped says so
            self._refuse_other_sources(sql, allowed_sources)
            raise

    def _refuse_other_sources(self, sql: str, allowed_sources: Iterable[str] | None) -> None:
        """PermissionDeniedError naming the first source ``sql`` names outside ``allowed_sources`` (SELECT and
        SHOW/DESCRIBE alike, ``planner.parse.referenced_sources``); called once a name did not resolve in the
        caller's view, so that a source it may not use answers 403, not 404."""
        if allowed_sources is not None:
            allowed = set(allowed_sources)
            for source in referenced_sources(sql, self.catalog.list_sources(), self.planner.limits):
                if source not in allowed:
                    raise PermissionDeniedError(f"access to source '{source}' is not allowed",
                                                source=source) from None

    def plan(self, sql: str, params: Sequence[object] | None = None, *,
             allowed_sources: Iterable[str] | None = None, default_catalog: str | None = None,
             default_schema: str | None = None) -> FederatedPlan:
        """The federated plan of ``sql`` (no source data is read). ``allowed_sources`` (None = all) limits
        the sources the query may touch (PermissionDeniedError otherwise); ``default_catalog`` /
        ``default_schema`` are where unqualified table names are looked up first."""
        return self._plan(sql, params, allowed_sources, default_catalog, default_schema)[1]

    def schema(self, sql: str, params: Sequence[object] | None = None, **scope) -> pa.Schema:
        """The Arrow schema the query returns; for EXPLAIN, one ``plan`` utf8 column. ``scope``: as ``plan``."""
        return self.result_schema(*self.plan_statement(sql, params, **scope))

    def plan_statement(self, sql: str, params: Sequence[object] | None = None, **scope) -> tuple:
        """``(statement, plan)``: the parsed statement (``planner.parse.Statement``) and its federated plan, as
        ``execute_plan`` runs them: a protocol that answers the schema first plans once. ``scope``: as ``plan``."""
        return self._plan(sql, params, **_scope(scope))

    @staticmethod
    def result_schema(statement, plan: FederatedPlan) -> pa.Schema:
        """The schema a run of ``(statement, plan)`` returns; for EXPLAIN, one ``plan`` utf8 column."""
        return EXPLAIN_SCHEMA if statement.explain else plan.schema

    def parameter_schema(self, sql: str, **scope) -> pa.Schema:
        """Fields ``$1``..``$n`` typed from their context in ``sql`` (see ``planner.params``); empty at once for a
        text that holds neither ``?`` nor ``$`` (no parse: a BI tool prepares every statement it runs)."""
        if "?" not in sql and "$" not in sql:
            return _NO_PARAMETERS
        catalog = self._planner(sql, **_scope(scope)).catalog

        def table_schema(parts: tuple[str, ...]) -> pa.Schema | None:
            try:
                return catalog.table_schema(catalog.resolve(list(parts)))
            except GatewayError:
                return None

        try:
            rewritten = rewrite_statement(sql, catalog)  # SHOW/DESCRIBE: their query over information_schema
        except UnknownObjectError:
            self._refuse_other_sources(sql, _scope(scope)["allowed_sources"])
            raise
        sql = rewritten
        return parameter_schema(parse(sql, self.planner.dialect, self.planner.limits).expression, table_schema)

    def explain(self, sql: str, params: Sequence[object] | None = None, analyze: bool = False,
                max_staleness_s: float | None = None, **scope) -> str:
        """The text plan; with ``analyze`` the query is run and each fragment's rows and bytes are shown.
        Partitions of cached sources are marked ``cached (age)`` or ``fetched``."""
        plan = self.plan(sql, params, **scope)
        if not analyze:
            return explain_planned(plan, self.catalog, self.scanner, self._schedule(plan).in_place,
                                   self._distribution(plan), max_staleness_s)
        result = self._run(sql, plan, None, max_staleness_s=max_staleness_s)
        for _ in result.reader:
            pass
        return explain_analyzed(plan, result.stats, self.catalog, self.distributor.enabled, result.fallback)

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
            statement, plan = self._plan(sql, params, **_scope(scope))
        except GatewayError as exc:
            # refused and unplannable queries are part of the history too
            stats = QueryStats(query_id or uuid.uuid4().hex, sql, user=user)
            self.metrics.started(stats)
            self._finish(stats, time.perf_counter(), exc)
            raise
        return self.execute_plan(sql, statement, plan, params, user, cancel, max_staleness_s, timeout_s, query_id,
                                 **scope)

    def execute_plan(
        self, sql: str, statement, plan: FederatedPlan, params: Sequence[object] | None = None,
        user: str | None = None, cancel: threading.Event | None = None, max_staleness_s: float | None = None,
        timeout_s: float | None = None, query_id: str | None = None, manifest=None, **scope,
    ) -> QueryResult:
        """``execute`` of a ``(statement, plan)`` that ``plan_statement`` made for ``sql``, ``params`` and
        ``scope``: nothing is parsed or planned again. The plan's sources are checked against
        ``allowed_sources`` (PermissionDeniedError), from the plan itself. ``manifest``: the freshness manifest
        ``trust.preview`` began for this plan (Flight SQL's GetFlightInfo), which the run starts from while it
        is recent (its fingerprints are not read again)."""
        allowed = _scope(scope)["allowed_sources"]
        if allowed is not None:
            for source in sorted({f.source for f in plan.fragments} - set(allowed)):
                raise PermissionDeniedError(f"access to source '{source}' is not allowed", source=source)
        if statement.explain:
            text = self.explain(statement.sql, params, analyze=statement.analyze, **scope)
            table = pa.table({"plan": text.splitlines()}, schema=EXPLAIN_SCHEMA)
            stats = QueryStats(query_id or uuid.uuid4().hex, sql, user=user, status="ok", rows=table.num_rows)
            return QueryResult(table.schema, table.to_reader(), stats, plan)
        return self._run(sql, plan, user, cancel, max_staleness_s, timeout_s, query_id, params, manifest)

    def _run(self, sql: str, plan: FederatedPlan, user: str | None,
             cancel: threading.Event | None = None, max_staleness_s: float | None = None,
             timeout_s: float | None = None, query_id: str | None = None,
             params: Sequence[object] | None = None, manifest=None) -> QueryResult:
        stats = QueryStats(query_id or uuid.uuid4().hex, sql, user=user, pushed_whole=plan.pushed_whole)
        self.metrics.started(stats)
        # fingerprints read before any fragment (or taken from the statement's recent preview)
        self.trust.started(stats, plan, params, max_staleness_s, manifest)
        cancel = cancel or threading.Event()
        deadline = Deadline(self.settings.limits.query_timeout_s if timeout_s is None else timeout_s, cancel)
        t0 = time.perf_counter()
        memory = self.memory.account()  # what the query holds of the process-wide budget; closed in _finish
        try:
            self.admission.admit(plan, stats, cancel)  # a heavy query waits for a slot; released in _finish
            feeds = self._start(plan, cancel, max_staleness_s, memory)
        except BaseException as exc:
            deadline.stop()
            error = deadline.error() if cancel.is_set() else as_gateway_error(exc, [])
            cancel.set()  # what started before the failure stops (fragment reads, a Ray join stage's run)
            self._finish(stats, t0, error, memory)
            raise error from exc
        deadline.feeds = feeds
        stats.fragments = [feed.stats for feed in feeds]
        fallback = None
        try:
            # Wait until every source has answered, so a failing source is reported before streaming.
            wait_until_answered(feeds, cancel, deadline.error)
            if plan.pushed_whole:
                stream: Iterator[pa.RecordBatch] = feeds[0].batches()
            else:
                # a hash join stage's residual reads its output in place of its two fragments
                stream = run_residual(self.distributor.residual(plan, feeds), feeds, self.settings.limits, cancel,
                                      memory, stats.joins)
                if plan.top_n_fallback is not None:
                    stream, memory, fallback = self._checked(plan, stream, feeds, cancel, deadline, max_staleness_s,
                                                             memory)
        except BaseException as exc:
            cancelled = cancel.is_set()
            cancel.set()
            deadline.stop()
            for feed in feeds:
                feed.cleanup()
            error = deadline.error() if cancelled else as_gateway_error(exc, feeds)
            self._finish(stats, t0, error, memory)
            raise error from exc
        results = self._results(stream, stats, feeds, cancel, deadline, t0, memory)
        return QueryResult(plan.schema, pa.RecordBatchReader.from_batches(plan.schema, results), stats, plan,
                           feeds, cancel, fallback)

    def _checked(self, plan: FederatedPlan, stream: Iterator[pa.RecordBatch], feeds: list[Feed],
                 cancel: threading.Event, deadline: Deadline, max_staleness_s: float | None,
                 memory: MemoryAccount | None) -> tuple[Iterator[pa.RecordBatch], MemoryAccount | None, FallbackRun]:
        """The result of a plan with a top-N below an inner join (``planner.plan.TopNFallback``): held whole (at
        most LIMIT rows) so that no row reaches the client before it is checked; when it came out short while
        the pushed fragment returned all its rows, it is discarded and the fallback plan runs instead (``feeds``
        then become its feeds, in place, and the first plan's memory is given back). Returns (the stream to
        send, the memory account the query holds now, what was done)."""
        check = plan.top_n_fallback
        held = list(stream)
        rows = sum(batch.num_rows for batch in held)
        pushed = next((f for f in feeds if getattr(f, "fragment", None) is not None
                       and f.fragment.id == check.fragment), None)
        fetched = pushed.stats.rows if pushed is not None and not pushed.stats.read_in_place else None
        if not check.needed(rows, fetched):
            return iter(held), memory, FallbackRun(f"not run: the result has all {rows:,} rows")
        held.clear()
        returned = "an unknown number of" if fetched is None else f"{fetched:,}"
        run = FallbackRun(f"ran: the result had {rows:,} of {check.rows:,} rows while {check.fragment} returned "
                          f"{returned} rows (the join dropped some); the fallback plan's result was sent")
        for feed in feeds:
            feed.cleanup()
        if memory is not None:  # the first plan's fragments and pool: the fallback plan reserves its own
            memory.close()
            memory = self.memory.account()
        fallback = check.plan
        try:
            feeds[:] = self._start(fallback, cancel, max_staleness_s, memory)
            run.fragments = [feed.stats for feed in feeds]
            wait_until_answered(feeds, cancel, deadline.error)
            if fallback.pushed_whole:
                return feeds[0].batches(), memory, run
            return run_residual(self.distributor.residual(fallback, feeds), feeds, self.settings.limits, cancel,
                                memory, run.joins), memory, run
        except BaseException:
            if memory is not None:
                memory.close()  # the caller finishes the query with the account it gave (closed above)
            raise

    def _results(self, stream: Iterator[pa.RecordBatch], stats: QueryStats, feeds: list[Feed],
                 cancel: threading.Event, deadline: Deadline, t0: float,
                 memory: MemoryAccount | None = None) -> Iterator[pa.RecordBatch]:
        """``stream`` counted into ``stats`` and against the result caps (``limits.max_result_rows``/``_bytes``);
        the query's end (last batch, error, or the reader dropped early) stops its feeds and its deadline, gives
        back its memory and records it."""
        error: BaseException | None = None
        cap = ResultCap(self.settings.limits.max_result_rows, self.settings.limits.max_result_bytes)
        try:
            for batch in stream:
                cap.check(batch.num_rows, batch.nbytes)  # ResourceLimitError (413) past a cap
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
                error = as_gateway_error(exc, feeds)
            raise error from exc
        finally:
            deadline.stop()
            cancel.set()
            for feed in feeds:
                feed.cleanup()
            self._finish(stats, t0, error, memory)

    def _schedule(self, plan: FederatedPlan) -> Schedule:
        """The one decision of what a run of ``plan`` fetches, reads in place and probes (used by EXPLAIN too)."""
        return decide(plan, self.catalog, self.settings.limits, self.scanner.cached_source)

    def _start(self, plan: FederatedPlan, cancel: threading.Event, max_staleness_s: float | None,
               memory: MemoryAccount | None = None) -> list[Feed]:
        """Start every fragment as the plan's schedule says (``schedule.start_feeds``); collected fragments keep
        in memory what ``memory`` lets them (spilled beyond)."""
        limits = self.settings.limits
        schedule = self._schedule(plan)
        distribution = self._distribution(plan)
        if distribution.ray_ids:  # fragments read by Ray tasks are fetched, never scanned in place
            schedule = dataclasses.replace(schedule, in_place=schedule.in_place - distribution.ray_ids)

        join = self.distributor.join_run(distribution, cancel)  # a hash join stage's run, if it has one

        def fetch(fragment: Fragment, stats: FragmentStats | None = None) -> FragmentFeed:
            if fragment.id in distribution.ray_ids:
                feed = self.distributor.feed(fragment, distribution.stages[fragment.id], self.catalog, cancel, stats,
                                             join, self.scanner, max_staleness_s)
                self._feeds.add(feed)
                return feed
            if not schedule.collect:  # pushed whole: a source computing in this process gets a bounded pool
                fragment = pooled(fragment, memory, cancel, self.catalog, self.settings)
            feed = FragmentFeed(fragment, self.catalog, limits.prefetch_batches, cancel, self.scanner,
                                max_staleness_s, collect=schedule.collect, spill_dir=limits.spill_path,
                                spill_bytes=limits.fragment_memory_bytes, stats=stats, memory=memory)
            self._feeds.add(feed)
            return feed

        return start_feeds(plan, schedule, self.catalog, fetch, self.scanner, max_staleness_s)

    def _distribution(self, plan: FederatedPlan) -> Distribution:
        """Which fragments Ray tasks read (``[execution] engine = "ray"``, above the thresholds), and why."""
        return self.distributor.decide(plan, self.catalog, self.scanner.cached_source, self.scanner)

    def _finish(self, stats: QueryStats, t0: float, error: BaseException | None,
                memory: MemoryAccount | None = None) -> None:
        stats.seconds = time.perf_counter() - t0
        if memory is not None:
            memory.close()  # every byte it reserved goes back to the budget
        if error is not None:
            stats.failed(error)  # status cancelled / timeout / error, with the error's code
        elif stats.status == "running":
            stats.status = "ok"
        self.admission.release(stats)  # its admission slot, if it holds one
        self.metrics.finished(stats)  # counted, and its one log line (gateway.logs.log_query)
        self.trust.finished(stats)  # the manifest completed; OpenLineage COMPLETE/FAIL queued

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the fragment readers still running (their queries are cancelled) and wait up to ``timeout_s``
        seconds for each thread, then close the connectors' pooled connections. Call before the process exits:
        a reader thread still inside native code while the interpreter finalizes aborts the process."""
        for feed in list(self._feeds):
            feed.stop(timeout_s)
        self.distributor.close()  # a Ray runtime this engine started is shut down
        self.trust.close()
        for connector in self.catalog.connectors.values():
            connector.close()


def _scope(scope: dict) -> dict:
    unknown = set(scope) - {"allowed_sources", "default_catalog", "default_schema"}
    if unknown:
        raise TypeError(f"unexpected arguments {sorted(unknown)}")
    return {"allowed_sources": scope.get("allowed_sources"), "default_catalog": scope.get("default_catalog"),
            "default_schema": scope.get("default_schema")}

