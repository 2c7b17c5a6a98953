"""Query history and Prometheus metrics (one registry per QueryEngine, so several can live in one process).

Every query that ends, answered or failed at any step (refused, unplannable, failed in a source or in
DataFusion, cancelled, timed out), is finished once through ``Metrics.finished``: it is counted, stays in the
history, and gets its one structured log line (``gateway.logs.log_query``). The protocol it came by is read
from the context (``query_protocol``) when its ``QueryStats`` is made.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from connectors.errors import shortened_sql
from gateway.logs import log_query

#: the protocol of the queries started in this context: "rest", "flight_sql", or "embedded" (in-process)
_PROTOCOL: ContextVar[str] = ContextVar("gateway_query_protocol", default="embedded")


@contextlib.contextmanager
def query_protocol(name: str) -> Iterator[None]:
    """Within this block, queries started on this thread (or task) are recorded as coming by ``name``."""
    token = _PROTOCOL.set(name)
    try:
        yield
    finally:
        _PROTOCOL.reset(token)


def current_protocol() -> str:
    """The protocol ``query_protocol`` set for this context ("embedded" when none was)."""
    return _PROTOCOL.get()


@dataclass
class FragmentStats:
    """What one fragment moved: rows and bytes (Arrow buffer sizes) returned by its source, seconds open."""

    id: str
    source: str
    sql: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    partitions: list = field(default_factory=list)  # gateway.cache.scanner.PartitionUse, when cached
    dynamic_filter: str | None = None  # the condition a dynamic filter added, e.g. "id IN (212 values)"
    estimated_rows: int | None = None  # the planner's estimate of ``rows`` (catalog statistics)
    read_in_place: bool = False  # scanned by the residual plan itself (files); rows/bytes from its scan metrics
    # Ray execution (gateway.distributed): "ray" or None (local); its tasks, the nodes they ran on, resubmitted
    # tasks, and the Arrow bytes moved from the workers to the coordinator through Ray's object store
    engine: str | None = None
    tasks: int = 0
    nodes: int = 0
    retries: int = 0
    shuffled_bytes: int = 0
    # a hash join stage this fragment is the left side of: its join tasks and EXPLAIN ANALYZE's line about it
    join_tasks: int = 0
    join_stage: str | None = None

    def __post_init__(self) -> None:
        self.sql = shortened_sql(self.sql)  # a history of 1,000 queries must not keep megabytes of keys each


@dataclass
class QueryStats:
    """One query in the history. ``status`` is ``running``, ``ok``, ``error``, ``cancelled`` or ``timeout``;
    a failed query has its ``error`` message and ``error_code`` (the ``GatewayError.code``). ``protocol``:
    ``rest``, ``flight_sql`` or ``embedded``."""

    query_id: str
    sql: str
    user: str | None = None
    started_at: float = field(default_factory=time.time)
    seconds: float = 0.0
    rows: int = 0
    status: str = "running"
    error: str | None = None
    pushed_whole: bool = False
    fragments: list[FragmentStats] = field(default_factory=list)
    error_code: str | None = None
    protocol: str = field(default_factory=current_protocol)
    joins: list[dict] = field(default_factory=list)  # the residual plan's joins with actual rows, once it ended

    def failed(self, error: BaseException) -> None:
        """Mark the query failed with ``error`` (a ``GatewayError``; anything else counts as ``internal``)."""
        self.error_code = getattr(error, "code", None) or "internal"
        self.status = {"cancelled": "cancelled", "timeout": "timeout"}.get(self.error_code, "error")
        self.error = str(error)

    def to_dict(self) -> dict:
        """The history entry: every field, fragments as dicts."""
        return asdict(self)


#: a fragment whose actual rows differ from the estimate by more than this factor counts as misestimated
MISESTIMATE_FACTOR = 10.0


def _misestimated(fragment: FragmentStats) -> bool:
    """Whether a fetched fragment's rows were more than ``MISESTIMATE_FACTOR`` off its estimate (each side at
    least one row; a probe of dynamic filters is estimated after them, ``FederatedPlan.filtered_estimates``;
    fragments read in place or without an estimate do not count)."""
    if fragment.estimated_rows is None or fragment.read_in_place:
        return False
    low, high = sorted((max(fragment.estimated_rows, 1), max(fragment.rows, 1)))
    return high / low > MISESTIMATE_FACTOR


def _misestimated_join(join: dict) -> bool:
    """Whether a residual join's actual rows were more than ``MISESTIMATE_FACTOR`` off the planner's estimate
    (``{"rows", "estimated_rows"}`` as ``gateway.execution.residual`` records them; unknown ones do not count)."""
    if join.get("estimated_rows") is None or join.get("rows") is None:
        return False
    low, high = sorted((max(join["estimated_rows"], 1), max(join["rows"], 1)))
    return high / low > MISESTIMATE_FACTOR


class Metrics:
    """Prometheus counters of queries and of rows/bytes fetched per source, plus a bounded query history."""

    def __init__(self, history_size: int = 1000) -> None:
        self.registry = CollectorRegistry()
        self.queries = Counter("gateway_queries", "Queries finished, by status", ["status"], registry=self.registry)
        self.source_rows = Counter(
            "gateway_source_rows", "Rows returned by sources for fragments", ["source"], registry=self.registry
        )
        self.source_bytes = Counter(
            "gateway_source_bytes", "Arrow bytes returned by sources for fragments", ["source"],
            registry=self.registry,
        )
        self.query_seconds = Histogram(
            "gateway_query_seconds", "Wall time of queries, planning to last batch", registry=self.registry
        )
        self.query_errors = Counter(
            "gateway_query_errors", "Queries failed (also refused before planning), by error code and protocol",
            ["code", "protocol"], registry=self.registry,
        )
        self.misestimated = Counter(
            "gateway_misestimated_queries",
            f"Queries with a fragment or a residual join whose rows were more than {MISESTIMATE_FACTOR:g}x off the "
            "planner's estimate",
            registry=self.registry,
        )
        self.distributed_tasks = Counter(
            "gateway_distributed_tasks", "Ray tasks run for fragment splits", registry=self.registry)
        self.distributed_retries = Counter(
            "gateway_distributed_retries", "Ray tasks submitted again after their worker or node was lost",
            registry=self.registry)
        self.shuffled_bytes = Counter(
            "gateway_distributed_shuffled_bytes", "Arrow bytes moved between Ray workers and the coordinator",
            registry=self.registry)
        self._history: deque[QueryStats] = deque(maxlen=history_size)
        self._lock = threading.Lock()

    def started(self, stats: QueryStats) -> None:
        """Add a query to the history (as ``running``)."""
        with self._lock:
            self._history.append(stats)

    def finished(self, stats: QueryStats) -> None:
        """Count a query that ended (its ``status`` and ``error_code`` set) and write its log line."""
        self.queries.labels(stats.status).inc()
        if stats.error_code is not None:
            self.query_errors.labels(stats.error_code, stats.protocol).inc()
        self.query_seconds.observe(stats.seconds)
        for f in stats.fragments:
            self.source_rows.labels(f.source).inc(f.rows)
            self.source_bytes.labels(f.source).inc(f.bytes)
            if f.tasks:
                self.distributed_tasks.inc(f.tasks + f.join_tasks)
                self.distributed_retries.inc(f.retries)
                self.shuffled_bytes.inc(f.shuffled_bytes)
        # join estimates take the planned dynamic filters into account (planner.join_estimates)
        if stats.status == "ok" and (any(_misestimated(f) for f in stats.fragments)
                                     or any(_misestimated_join(j) for j in stats.joins)):
            self.misestimated.inc()
        log_query(stats)

    def record_failure(self, sql: str, error: BaseException, user: str | None = None,
                       protocol: str | None = None, seconds: float = 0.0) -> QueryStats:
        """Record a statement that failed before the engine ran it (a Flight SQL statement refused while it
        was prepared or planned): in the history, counted and logged like any query."""
        stats = QueryStats(uuid.uuid4().hex, sql, user=user, protocol=protocol or current_protocol())
        self.started(stats)
        stats.seconds = seconds
        stats.failed(error)
        self.finished(stats)
        return stats

    def history(self, limit: int = 100) -> list[QueryStats]:
        """The most recent queries, newest first."""
        with self._lock:
            return list(self._history)[-limit:][::-1]
