"""Query history and Prometheus metrics (one registry per Gateway, so several can live in one process)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class FragmentStats:
    """What one fragment moved: rows and bytes (Arrow buffer sizes) returned by its source, seconds open."""

    id: str
    source: str
    sql: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    partitions: list = field(default_factory=list)  # gateway.partitions.PartitionUse, when cached
    dynamic_filter: str | None = None  # the condition a dynamic filter added, e.g. "id IN (212 values)"
    read_in_place: bool = False  # scanned by the residual plan itself (files); rows/bytes from its scan metrics


@dataclass
class QueryStats:
    """One query in the history. ``status`` is ``running``, ``ok``, ``error`` or ``cancelled``."""

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

    def to_dict(self) -> dict:
        return asdict(self)


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
        self._history: deque[QueryStats] = deque(maxlen=history_size)
        self._lock = threading.Lock()

    def started(self, stats: QueryStats) -> None:
        with self._lock:
            self._history.append(stats)

    def finished(self, stats: QueryStats) -> None:
        self.queries.labels(stats.status).inc()
        self.query_seconds.observe(stats.seconds)
        for f in stats.fragments:
            self.source_rows.labels(f.source).inc(f.rows)
            self.source_bytes.labels(f.source).inc(f.bytes)

    def history(self, limit: int = 100) -> list[QueryStats]:
        """The most recent queries, newest first."""
        with self._lock:
            return list(self._history)[-limit:][::-1]
