"""The engine: plan a query, fetch its fragments in parallel as Arrow streams, run the residual in DataFusion.

Each fragment is read by its own thread into a bounded queue (backpressure: a slow consumer stops the
source reads instead of filling memory). Fragments are registered in a fresh DataFusion session as one-shot
streaming datasets; the residual plan pulls from them. When the whole query was pushed to one source, the
fragment's stream is passed through without DataFusion.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds
from datafusion import RuntimeEnvBuilder, SessionConfig, SessionContext

from catalog import Catalog
from connectors.base import Fragment
from gateway.errors import ExecutionError, GatewayError, QueryTimeoutError
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


class _FragmentFeed:
    """Reads one fragment on a background thread into a bounded queue; counts rows and bytes."""

    def __init__(self, fragment: Fragment, catalog: Catalog, depth: int, cancel: threading.Event) -> None:
        self.fragment = fragment
        self.stats = FragmentStats(fragment.id, fragment.source, fragment.sql)
        self._catalog = catalog
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._cancel = cancel
        self.started = threading.Event()  # set once the source answered (first batch, end, or error)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"fragment-{fragment.id}", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._cancel.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        t0 = time.perf_counter()
        reader = None
        try:
            reader = self._catalog.connector(self.fragment.source).scan(self.fragment)
            for batch in reader:
                self.stats.rows += batch.num_rows
                self.stats.bytes += batch.nbytes
                self.started.set()
                if not self._put(batch):
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
            self.started.set()
            self._put(_END)

    def batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.fragment.schema, self.batches())


class Gateway:
    """The gateway's entry point for every protocol: plan, explain and execute SQL over the catalog.

    ``execute`` returns a ``QueryResult`` whose reader streams Arrow record batches. Errors are
    ``GatewayError`` subclasses; a failing source raises SourceUnavailableError/SourceQueryError naming it
    and never affects other queries.
    """

    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or Catalog.from_settings(settings)
        self.planner = Planner(self.catalog)
        self.metrics = Metrics()

    # -- planning --------------------------------------------------------------------------------------

    def plan(self, sql: str, params: Sequence[object] | None = None) -> FederatedPlan:
        """The federated plan of ``sql`` (no source data is read)."""
        return self.planner.plan(sql, params)[1]

    def schema(self, sql: str, params: Sequence[object] | None = None) -> pa.Schema:
        """The Arrow schema the query returns; for EXPLAIN, one ``plan`` utf8 column."""
        statement, plan = self.planner.plan(sql, params)
        return _EXPLAIN_SCHEMA if statement.explain else plan.schema

    def explain(self, sql: str, params: Sequence[object] | None = None, analyze: bool = False) -> str:
        """The text plan; with ``analyze`` the query is run and each fragment's rows and bytes are shown."""
        plan = self.plan(sql, params)
        if not analyze:
            return plan.explain()
        result = self._run(sql, plan, None)
        for _ in result.reader:
            pass
        return plan.explain({f.id: {"rows": f.rows, "bytes": f.bytes} for f in result.stats.fragments})

    # -- execution -------------------------------------------------------------------------------------

    def execute(
        self, sql: str, params: Sequence[object] | None = None, user: str | None = None
    ) -> QueryResult:
        """Run ``sql`` and return its streaming result. ``EXPLAIN [ANALYZE] q`` returns the plan as rows."""
        try:
            statement, plan = self.planner.plan(sql, params)
        except GatewayError as exc:
            # refused and unplannable queries are part of the history too
            stats = QueryStats(uuid.uuid4().hex, sql, user=user)
            self.metrics.started(stats)
            self._finish(stats, time.perf_counter(), exc)
            raise
        if statement.explain:
            text = self.explain(statement.sql, params, analyze=statement.analyze)
            table = pa.table({"plan": text.splitlines()}, schema=_EXPLAIN_SCHEMA)
            stats = QueryStats(uuid.uuid4().hex, sql, user=user, status="ok", rows=table.num_rows)
            return QueryResult(table.schema, table.to_reader(), stats, plan)
        return self._run(sql, plan, user)

    def _run(self, sql: str, plan: FederatedPlan, user: str | None) -> QueryResult:
        stats = QueryStats(uuid.uuid4().hex, sql, user=user, pushed_whole=plan.pushed_whole)
        self.metrics.started(stats)
        cancel = threading.Event()
        t0 = time.perf_counter()
        feeds = [
            _FragmentFeed(f, self.catalog, self.settings.limits.prefetch_batches, cancel) for f in plan.fragments
        ]
        stats.fragments = [feed.stats for feed in feeds]
        try:
            # Wait until every source has answered, so a failing source is reported before streaming.
            for feed in feeds:
                feed.started.wait()
                if feed.error is not None:
                    raise feed.error
            if plan.pushed_whole:
                stream: Iterator[pa.RecordBatch] = feeds[0].batches()
            else:
                ctx = self._session()
                for feed in feeds:
                    ctx.register_dataset(feed.fragment.id, ds.dataset(feed.reader()))
                df = ctx.sql(plan.residual_sql)
                stream = iter(pa.RecordBatchReader.from_stream(df, schema=plan.schema))
        except BaseException as exc:
            cancel.set()
            self._finish(stats, t0, exc)
            raise _as_gateway_error(exc, feeds) from exc

        def results() -> Iterator[pa.RecordBatch]:
            error: BaseException | None = None
            try:
                for batch in stream:
                    stats.rows += batch.num_rows
                    yield batch
            except GeneratorExit:
                stats.status = "cancelled"
                raise
            except BaseException as exc:
                error = _as_gateway_error(exc, feeds)
                raise error from exc
            finally:
                cancel.set()
                self._finish(stats, t0, error)

        return QueryResult(plan.schema, pa.RecordBatchReader.from_batches(plan.schema, results()), stats, plan)

    def _session(self) -> SessionContext:
        limits = self.settings.limits
        runtime = RuntimeEnvBuilder().with_fair_spill_pool(limits.memory_bytes)
        if limits.spill_path:
            runtime = runtime.with_temp_file_path(limits.spill_path)
        else:
            runtime = runtime.with_disk_manager_os()
        return SessionContext(SessionConfig().with_target_partitions(2), runtime)

    def _finish(self, stats: QueryStats, t0: float, error: BaseException | None) -> None:
        stats.seconds = time.perf_counter() - t0
        if error is not None:
            stats.status = "error"
            stats.error = str(error)
        elif stats.status == "running":
            stats.status = "ok"
        self.metrics.finished(stats)
        log.info(
            "query finished",
            extra={"query_id": stats.query_id, "status": stats.status, "rows": stats.rows,
                   "seconds": round(stats.seconds, 4)},
        )

    def close(self) -> None:
        for connector in self.catalog.connectors.values():
            connector.close()


_EXPLAIN_SCHEMA = pa.schema([pa.field("plan", pa.string(), nullable=False)])


def _as_gateway_error(exc: BaseException, feeds: list[_FragmentFeed]) -> BaseException:
    """The error to show: a source's own error wins over DataFusion's wrapping of it."""
    for feed in feeds:
        if isinstance(feed.error, GatewayError):
            return feed.error
    if isinstance(exc, GatewayError | GeneratorExit | KeyboardInterrupt):
        return exc
    if isinstance(exc, TimeoutError):
        return QueryTimeoutError(str(exc))
    return ExecutionError(f"the residual plan failed in DataFusion: {str(exc).splitlines()[0] if str(exc) else exc!r}")
