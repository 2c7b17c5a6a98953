"""The process-wide memory budget: what every query may hold in memory, in all, at once.

``limits.process_memory_bytes`` (default: half the machine's physical memory) bounds the bytes all running queries
reserve together. Each query gets an account (``MemoryBudget.account``) that reserves from the one budget:

- **fragment buffers**: a fragment collected for a residual plan keeps a batch in memory only if its account
  can grow by the batch's bytes and leave ``limits.min_query_memory_bytes`` of the budget free (for a residual
  plan's pool); otherwise the fragment spills to an Arrow IPC file (``FragmentFeed``), as it does past
  ``limits.fragment_memory_bytes``;
- **residual plans**: DataFusion's memory pool of a residual plan is reserved before its session is built:
  ``limits.memory_bytes``, or what is left of the budget when less (its operators spill beyond the pool); a
  query waits up to ``limits.queue_timeout_s`` for at least ``limits.min_query_memory_bytes`` to be free;
- **whole queries pushed to a file source**: when the query holds rows (joins, aggregates, sorts), the file
  connector runs it in a DataFusion session of its own whose pool is reserved as a residual plan's is
  (``gateway.execution.pooling.pooled``); DataFusion's "Resources exhausted" there is a 507 too;
- **pushed-whole streams**: the batches read ahead into a whole query's channel (up to
  ``limits.prefetch_batches``) are charged while they wait; with no room, a batch waits until the client took
  the previous ones (no read-ahead) instead;
- **result encoding**: a result is capped at ``limits.max_result_rows`` rows and ``limits.max_result_bytes``
  Arrow bytes (0: no cap); the encoders stream batch by batch. A REST Parquet download charges its row-group
  buffer to an account of its own (twice the buffered Arrow bytes: the batches and their encoding) and writes
  a smaller row group when the budget has no room; what no encoder charges is the batch in hand and its
  encoding (``gateway.api.streaming`` gives the bound).

A query that cannot have what it needs fails with ``ResourceLimitError`` (HTTP 507 for memory, 413 for a
result over its cap; Flight RESOURCE_EXHAUSTED) and the process goes on. Its account is closed when the query
ends, giving back all it reserved.

    >>> budget = MemoryBudget(100, headroom=20)
    >>> account = budget.account()
    >>> account.grow(60), account.grow(30), budget.reserved
    (True, False, 60)
    >>> account.reserve_pool(50, floor=10), budget.reserved
    (40, 100)
    >>> account.close(); budget.reserved
    0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from gateway.errors import ResourceLimitError

#: what a refused reservation was for: a fragment buffer (spilled instead), a pushed-whole stream's read-ahead
#: (none instead), a REST encoder's buffer (written out sooner instead), a residual plan's pool (the query failed)
REFUSAL_KINDS = ("fragment", "stream", "encoding", "residual")

#: HTTP statuses of the two kinds of ResourceLimitError raised here (the class's own 429 is for queues)
INSUFFICIENT_STORAGE = 507
CONTENT_TOO_LARGE = 413


def memory_error(message: str, **details: object) -> ResourceLimitError:
    """A ResourceLimitError for memory (HTTP 507 Insufficient Storage; code ``resource_limit``)."""
    error = ResourceLimitError(message, **details)
    error.http_status = INSUFFICIENT_STORAGE
    return error


def result_too_large(message: str, **details: object) -> ResourceLimitError:
    """A ResourceLimitError for a result over its row/byte cap (HTTP 413; code ``resource_limit``)."""
    error = ResourceLimitError(message, **details)
    error.http_status = CONTENT_TOO_LARGE
    return error


class MemoryBudget:
    """The bytes all queries of one gateway may reserve together; buffers that can spill (``grow``) leave
    ``headroom`` bytes free for residual plans' pools. Thread-safe."""

    def __init__(self, total_bytes: int, headroom: int = 0) -> None:
        self.total_bytes = total_bytes
        self.headroom = min(headroom, total_bytes)
        self.reserved = 0
        self.peak = 0
        self.refused: dict[str, int] = dict.fromkeys(REFUSAL_KINDS, 0)
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)  # notified whenever bytes are given back

    def account(self) -> MemoryAccount:
        """A new query's account (empty)."""
        return MemoryAccount(self)

    def _take(self, nbytes: int) -> bool:
        with self._lock:
            if self.reserved + nbytes > self.total_bytes - self.headroom:
                return False
            self.reserved += nbytes
            self.peak = max(self.peak, self.reserved)
            return True

    def _take_up_to(self, want: int, floor: int) -> int:
        """Reserve ``want`` bytes, or what is left when at least ``floor``; 0 when less than ``floor`` is left."""
        with self._lock:
            granted = min(want, self.total_bytes - self.reserved)
            if granted < floor:
                return 0
            self.reserved += granted
            self.peak = max(self.peak, self.reserved)
            return granted

    def _give(self, nbytes: int) -> None:
        with self._released:
            self.reserved -= nbytes
            self._released.notify_all()

    def _wait_for_release(self, timeout: float) -> None:
        with self._released:
            self._released.wait(timeout)

    def _refused(self, what: str) -> None:
        with self._lock:
            self.refused[what] += 1

    def snapshot(self) -> dict[str, int]:
        """``total_bytes``, ``reserved`` (now), ``peak`` and the refusals by kind."""
        with self._lock:
            return {"total_bytes": self.total_bytes, "reserved": self.reserved, "peak": self.peak,
                    **{f"refused_{k}": v for k, v in self.refused.items()}}

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Expose the budget in ``registry``: gauges ``gateway_memory_budget_bytes``,
        ``gateway_memory_reserved_bytes``; counter ``gateway_memory_refused_total{kind=...}`` (the
        ``REFUSAL_KINDS``)."""
        registry.register(_BudgetCollector(self))


class MemoryAccount:
    """What one query holds of the budget. ``grow`` for buffers that may spill instead, ``reserve_pool`` for
    a residual plan's DataFusion pool; ``close`` gives everything back (idempotent)."""

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget = budget
        self.bytes = 0
        self._lock = threading.Lock()
        self._closed = False

    def grow(self, nbytes: int, kind: str = "fragment") -> bool:
        """Reserve ``nbytes`` more for a buffer of ``kind`` (one of ``REFUSAL_KINDS`` but ``residual``); False
        (nothing reserved, the refusal counted under ``kind``) when the budget has not that much left or the
        account is closed: the caller spills (or buffers less) instead."""
        with self._lock:
            if self._closed or not self.budget._take(nbytes):
                self.budget._refused(kind)
                return False
            self.bytes += nbytes
            return True

    def shrink(self, nbytes: int) -> None:
        """Give back ``nbytes`` of what this account holds (buffers that went to disk)."""
        with self._lock:
            nbytes = min(nbytes, self.bytes)
            self.bytes -= nbytes
        if nbytes:
            self.budget._give(nbytes)

    def reserve_pool(self, want: int, floor: int, wait_s: float = 0.0, cancel: threading.Event | None = None
                     ) -> int:
        """Reserve a residual plan's memory pool: ``want`` bytes, or what is left of the budget when at least
        ``floor``, waiting up to ``wait_s`` seconds for running queries to give enough back. Returns the bytes
        granted (0 once ``cancel`` is set while waiting: the caller stops).

        Raises:
            ResourceLimitError: less than ``floor`` bytes were left for ``wait_s`` seconds (HTTP 507, Flight
                RESOURCE_EXHAUSTED).
        """
        deadline = time.monotonic() + wait_s
        while True:
            with self._lock:
                granted = 0 if self._closed else self.budget._take_up_to(want, floor)
                if granted:
                    self.bytes += granted
                    return granted
            if cancel is not None and cancel.is_set():
                return 0
            if time.monotonic() >= deadline:
                break
            self.budget._wait_for_release(min(0.1, max(0.0, deadline - time.monotonic())))
        self.budget._refused("residual")
        snapshot = self.budget.snapshot()
        raise memory_error(
            f"not enough memory for the query's residual plan: {_mib(snapshot['reserved'])} of the gateway's "
            f"{_mib(snapshot['total_bytes'])} (limits.process_memory_bytes) are held by running queries, and "
            f"a plan needs at least {_mib(floor)} (limits.min_query_memory_bytes); waited {wait_s:g} s "
            "(limits.queue_timeout_s); retry later", limit="process_memory_bytes", retry_after_s=1)

    def close(self) -> None:
        """Give back everything this account holds."""
        with self._lock:
            held, self.bytes, self._closed = self.bytes, 0, True
        if held:
            self.budget._give(held)


class ResultCap:
    """Counts a result's rows and Arrow bytes against ``limits.max_result_rows`` / ``max_result_bytes`` (0: no
    cap). ``check(batch)`` before a batch goes out."""

    def __init__(self, max_rows: int, max_bytes: int) -> None:
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.rows = 0
        self.bytes = 0

    def check(self, rows: int, nbytes: int) -> None:
        """Count one batch of ``rows`` rows and ``nbytes`` bytes.

        Raises:
            ResourceLimitError: the result passes a cap (HTTP 413 when no row was sent yet; Flight
                RESOURCE_EXHAUSTED).
        """
        self.rows += rows
        self.bytes += nbytes
        if self.max_rows and self.rows > self.max_rows:
            raise result_too_large(f"the result has more than {self.max_rows:,} rows (limits.max_result_rows); "
                                   "add a LIMIT or a filter", limit="max_result_rows")
        if self.max_bytes and self.bytes > self.max_bytes:
            raise result_too_large(f"the result is larger than {_mib(self.max_bytes)} "
                                   "(limits.max_result_bytes); select fewer rows or columns",
                                   limit="max_result_bytes")


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):,.0f} MiB"


class _BudgetCollector(Collector):
    def __init__(self, budget: MemoryBudget) -> None:
        self._budget = budget

    def collect(self) -> Iterator:
        snapshot = self._budget.snapshot()
        total = GaugeMetricFamily("gateway_memory_budget_bytes", "The process-wide memory budget of queries")
        total.add_metric([], snapshot["total_bytes"])
        reserved = GaugeMetricFamily("gateway_memory_reserved_bytes", "Bytes of the budget running queries hold")
        reserved.add_metric([], snapshot["reserved"])
        refused = CounterMetricFamily("gateway_memory_refused", "Reservations refused (fragment: spilled instead; "
                                      "stream: no read-ahead instead; encoding: a smaller Parquet row group "
                                      "instead; residual: query failed)", labels=["kind"])
        for kind in REFUSAL_KINDS:
            refused.add_metric([kind], snapshot[f"refused_{kind}"])
        yield from (total, reserved, refused)
