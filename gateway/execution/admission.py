"""Admission control: short queries keep short latencies while heavy ones queue.

Every query is classified from its plan, before any source is read, into one of two lanes:

- **light**: a query the gateway passes through from one source (pushed whole) whose fragment is estimated
  at no more than ``limits.light_query_max_rows`` rows, or a query that reads no source (``SELECT 1``). A
  fragment with an equality on every column of its table's primary key counts as one row (a point lookup);
  any other counts as ``planner.dynamic_filters.estimated_rows`` (the catalog's statistics).
- **heavy**: everything else: a large scan, a fragment without statistics (the unknown is assumed large),
  and any residual plan DataFusion runs. A residual plan, however small its fragments, costs the gateway a
  DataFusion session, a thread per fragment and the planning of the residual: measured with
  ``bench/load_bench.py``, a small federated join (a key lookup joined with a 64-row Parquet table) took
  2.5x a point lookup alone, and with such joins in the light lane lookups under load were as slow as
  without admission control. ``limits.light_residual_plans = true`` puts residual plans whose fragments are
  estimated within ``light_query_max_rows`` in all in the light lane.

Each lane is a bounded pool of slots with a FIFO queue: ``limits.max_heavy_queries`` heavy queries run at
once (default: the number of cores), ``limits.max_light_queries`` light ones, so light queries never wait
behind heavy work. A query that finds its lane full waits in line, at most ``limits.queue_timeout_s`` seconds
(then ``ResourceLimitError``: HTTP 429, Flight RESOURCE_EXHAUSTED) and with at most
``limits.max_queued_queries`` others (beyond that it is refused at once). Cancelling a waiting query, or its
time limit passing, takes it out of the line.

    >>> admission = Admission(LimitsConfig(max_heavy_queries=2), catalog)           # doctest: +SKIP
    >>> admission.admit(plan, stats, cancel)  # returns once a slot is held          # doctest: +SKIP
    >>> admission.release(stats)              # when the query ends; idempotent     # doctest: +SKIP

The engine admits a query right before it starts its fragments and releases it when the query is finished
(``QueryEngine._finish``: last batch, error, cancel, time limit, or the reader closed early). Two cases never get
there, and their slots are taken back when their lane is full and a query waits: a query whose cancel event
has been set for a second (the engine sets it whenever a query ends, is cancelled or times out: a client that
stopped reading but keeps its stream open gives its slot back when its time limit passes) and one whose
result was dropped unread (its cancel event was garbage collected).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlglot import exp

from catalog import Catalog
from connectors.base import Fragment
from gateway.errors import QueryCancelledError, ResourceLimitError
from gateway.settings import LimitsConfig
from planner import FederatedPlan
from planner.dynamic_filters import estimated_rows

LIGHT = "light"
HEAVY = "heavy"
LANES = (LIGHT, HEAVY)
#: how often a waiting query looks at its cancel event and at leaked slots, in seconds (a freed slot wakes
#: the first in line at once)
_POLL_S = 0.1
#: a slot whose query's cancel event is set is taken back only after this many seconds: the engine gives it
#: back itself as the query winds down, and ``reclaimed`` counts only slots it never gave back
_RECLAIM_GRACE_S = 1.0
#: upper bounds of the queue-wait histogram, in seconds
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Classification:
    """A plan's lane (``light`` or ``heavy``), the rows its fragments are estimated to return in all (None:
    some fragment has no estimate), and why."""

    lane: str
    estimated_rows: float | None
    reason: str


def classify(plan: FederatedPlan, catalog: Catalog, light_max_rows: int, primary_key=None,
             light_residual_plans: bool = False) -> Classification:
    """The lane of ``plan`` (see the module docstring): light when it reads no source, or when it is pushed
    whole (or, with ``light_residual_plans``, has any shape) and its fragments are estimated at
    ``light_max_rows`` rows or fewer in all; heavy otherwise, or when a fragment has no estimate.
    ``primary_key(source, schema, table)`` gives a table's key columns (default: asks the source's
    connector); a fragment with an equality on all of them counts as one row.

        SELECT * FROM pg.app.accounts WHERE id = 42               -> light (primary-key lookup, 1 row)
        SELECT region, sum(amount) FROM lake.sales GROUP BY 1      -> heavy (4,000,000 rows > 10,000)
        SELECT ... FROM pg.app.accounts a JOIN lake.regions r ...  -> heavy (a residual plan)
    """
    if not plan.fragments:
        return Classification(LIGHT, 0.0, "no source is read")
    if not plan.pushed_whole and not light_residual_plans:
        return Classification(HEAVY, None, "DataFusion runs a residual plan")
    primary_key = primary_key or (lambda source, schema, table: catalog.connector(source).primary_key(schema, table))
    total = 0.0
    for fragment in plan.fragments:
        rows = 1.0 if is_key_lookup(fragment, primary_key) else estimated_rows(fragment, catalog)
        if rows is None:
            return Classification(HEAVY, None, f"no row estimate for {', '.join(fragment.tables)}")
        total += rows
    if total <= light_max_rows:
        return Classification(LIGHT, total, f"estimated {total:,.0f} rows <= {light_max_rows:,}")
    return Classification(HEAVY, total, f"estimated {total:,.0f} rows > {light_max_rows:,}")


def is_key_lookup(fragment: Fragment, primary_key) -> bool:
    """Whether ``fragment`` reads one table, without sub-queries or joins, with ``column = value`` on every
    column of the table's primary key among the conjuncts of its WHERE (so it returns at most one row).
    ``primary_key(source, schema, table)`` -> key column names ([] when the table has none)."""
    select = fragment.ast
    if not isinstance(select, exp.Select) or len(fragment.tables) != 1 or select.args.get("joins"):
        return False
    if any(inner is not select for inner in select.find_all(exp.Select)):
        return False  # a sub-query (or CTE) may read anything
    where = select.args.get("where")
    if where is None:
        return False
    try:
        _, schema, table = fragment.tables[0].split(".", 2)
        key = [c.lower() for c in primary_key(fragment.source, schema, table)]
    except Exception:  # a key is a hint: a source that cannot tell gets the statistics' estimate
        return False
    if not key:
        return False
    equal = set()
    for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        conjunct = conjunct.unnest()
        if not isinstance(conjunct, exp.EQ):
            continue
        for column, value in ((conjunct.this, conjunct.expression), (conjunct.expression, conjunct.this)):
            if isinstance(column, exp.Column) and not value.find(exp.Column) and not isinstance(value, exp.Null):
                equal.add(column.name.lower())
    return all(k in equal for k in key)


class _Ticket:
    """A held slot: its lane, the query holding it (kept, so that its ``id`` stays its own) and a weak
    reference to the query's cancel event (collected, or set for ``_RECLAIM_GRACE_S``: the query is over)."""

    __slots__ = ("cancel", "cancelled_at", "lane", "query")

    def __init__(self, lane: str, query: object, cancel: threading.Event) -> None:
        self.lane = lane
        self.query = query
        self.cancel = weakref.ref(cancel)
        self.cancelled_at: float | None = None

    def over(self, now: float) -> bool:
        cancel = self.cancel()
        if cancel is None:
            return True
        if not cancel.is_set():
            return False
        if self.cancelled_at is None:
            self.cancelled_at = now
        return now - self.cancelled_at >= _RECLAIM_GRACE_S


class _Waiter:
    __slots__ = ("granted",)

    def __init__(self) -> None:
        self.granted = threading.Event()


@dataclass
class _LaneState:
    slots: int | None  # None: unbounded (admission control off)
    in_flight: int = 0
    admitted: int = 0
    rejected_timeout: int = 0
    rejected_full: int = 0
    reclaimed: int = 0
    wait_sum: float = 0.0

    def __post_init__(self) -> None:
        self.waiters: deque[_Waiter] = deque()
        self.wait_counts = [0] * len(_WAIT_BUCKETS)

    def free(self) -> bool:
        return self.slots is None or self.in_flight < self.slots


class Admission:
    """The light and heavy lanes of one gateway (see the module docstring). Thread-safe."""

    def __init__(self, limits: LimitsConfig, catalog: Catalog) -> None:
        self.limits = limits
        self.catalog = catalog
        enabled = limits.admission_control
        self._lanes = {
            LIGHT: _LaneState(limits.max_light_queries if enabled else None),
            HEAVY: _LaneState(limits.max_heavy_queries if enabled else None),
        }
        self._tickets: dict[int, _Ticket] = {}  # by id() of the query holding the slot
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str, str], list[str]] = {}
        self._keys_version = catalog.version

    # -- classifying -------------------------------------------------------------------------------------

    def classify(self, plan: FederatedPlan) -> Classification:
        """The plan's lane (``classify`` with this gateway's threshold and cached primary keys)."""
        return classify(plan, self.catalog, self.limits.light_query_max_rows, self._primary_key,
                        self.limits.light_residual_plans)

    def _primary_key(self, source: str, schema: str, table: str) -> list[str]:
        """A table's primary key, asked of its source once per catalog version."""
        if self._keys_version != self.catalog.version:
            self._keys, self._keys_version = {}, self.catalog.version
        key = (source, schema, table)
        found = self._keys.get(key)
        if found is None:
            found = self._keys[key] = list(self.catalog.connector(source).primary_key(schema, table))
        return found

    # -- admitting and releasing -------------------------------------------------------------------------

    def admit(self, plan: FederatedPlan, query: object, cancel: threading.Event) -> Classification:
        """Wait until the plan's lane has a free slot and hold it for ``query`` (any object that stands for
        the query, by identity: the engine passes its ``QueryStats``); returns the plan's classification.
        Waits in FIFO order behind queries that found the lane full before.

        Raises:
            ResourceLimitError: the lane stayed full for ``limits.queue_timeout_s`` seconds, or
                ``limits.max_queued_queries`` queries are already waiting in it.
            QueryCancelledError: ``cancel`` was set while waiting (a client's cancel or the query's time
                limit; the engine tells which).
        """
        classification = self.classify(plan)
        lane_name = classification.lane
        lane = self._lanes[lane_name]
        t0 = time.perf_counter()
        with self._lock:
            if not lane.free() or lane.waiters:
                self._reclaim(lane_name)
            if lane.free() and not lane.waiters:
                lane.in_flight += 1
                self._admitted(query, lane_name, cancel, 0.0)
                return classification
            if len(lane.waiters) >= self.limits.max_queued_queries:
                lane.rejected_full += 1
                raise ResourceLimitError(
                    f"too many {lane_name} queries: {lane.in_flight} running and {len(lane.waiters)} waiting "
                    f"(limits.max_queued_queries = {self.limits.max_queued_queries}); retry later",
                    limit="max_queued_queries", lane=lane_name, retry_after_s=1)
            waiter = _Waiter()
            lane.waiters.append(waiter)
        deadline = t0 + self.limits.queue_timeout_s
        while not waiter.granted.wait(max(0.0, min(_POLL_S, deadline - time.perf_counter()))):
            now = time.perf_counter()
            if cancel.is_set() or now >= deadline:
                with self._lock:
                    if not waiter.granted.is_set():
                        lane.waiters.remove(waiter)
                        if cancel.is_set():
                            raise QueryCancelledError("the query was cancelled while it waited for a slot")
                        lane.rejected_timeout += 1
                        raise ResourceLimitError(
                            f"the query waited {self.limits.queue_timeout_s:g} s for one of the "
                            f"{lane.slots} {lane_name}-query slots (limits.queue_timeout_s, "
                            f"limits.max_{lane_name}_queries); retry later",
                            limit="queue_timeout_s", lane=lane_name, retry_after_s=1)
                break  # granted while giving up: take it
            if lane.waiters and lane.waiters[0] is waiter:  # the first in line looks for leaked slots
                with self._lock:
                    self._reclaim(lane_name)
        with self._lock:
            self._admitted(query, lane_name, cancel, time.perf_counter() - t0)
        return classification

    def release(self, query: object) -> None:
        """Give back the slot ``query`` holds, to the first query waiting in its lane (a no-op when it holds
        none: never admitted, or released already)."""
        with self._lock:
            ticket = self._tickets.pop(id(query), None)
            if ticket is not None:
                self._give_back(ticket.lane)

    def _admitted(self, query: object, lane_name: str, cancel: threading.Event, waited: float) -> None:
        # caller holds the lock and the lane's slot
        lane = self._lanes[lane_name]
        self._tickets[id(query)] = _Ticket(lane_name, query, cancel)
        lane.admitted += 1
        lane.wait_sum += waited
        for i, bound in enumerate(_WAIT_BUCKETS):
            if waited <= bound:
                lane.wait_counts[i] += 1
                break

    def _give_back(self, lane_name: str) -> None:
        # caller holds the lock: the slot passes to the first waiter, else it is free
        lane = self._lanes[lane_name]
        if lane.waiters:
            lane.waiters.popleft().granted.set()
        else:
            lane.in_flight -= 1

    def _reclaim(self, lane_name: str) -> None:
        """Take back the slots of the lane's queries that are over without having been released (see the
        module docstring). Caller holds the lock; called only when the lane is full."""
        now = time.monotonic()
        for key, ticket in list(self._tickets.items()):
            if ticket.lane == lane_name and ticket.over(now):
                del self._tickets[key]
                self._lanes[ticket.lane].reclaimed += 1
                self._give_back(ticket.lane)

    # -- observing ----------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, dict[str, int | None]]:
        """Per lane: ``slots`` (None: unbounded), ``in_flight``, ``queued``, ``admitted``, ``rejected``,
        ``reclaimed`` (slots taken back from queries that were over without giving them back)."""
        with self._lock:
            return {name: {"slots": lane.slots, "in_flight": lane.in_flight, "queued": len(lane.waiters),
                           "admitted": lane.admitted, "rejected": lane.rejected_timeout + lane.rejected_full,
                           "reclaimed": lane.reclaimed}
                    for name, lane in self._lanes.items()}

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Expose the lanes in ``registry``, read at scrape time: gauges
        ``gateway_admission_in_flight{lane}``, ``gateway_admission_queued{lane}``,
        ``gateway_admission_slots{lane}`` (-1: unbounded); counters ``gateway_admission_admitted_total{lane}``,
        ``gateway_admission_rejected_total{lane,reason="queue_timeout"|"queue_full"}``; histogram
        ``gateway_admission_wait_seconds{lane}`` (time admitted queries waited for their slot).

        Raises:
            ValueError: the registry already has these names (one admission controller per registry).
        """
        registry.register(_AdmissionCollector(self))

    def _metric_values(self) -> dict[str, dict]:
        with self._lock:
            return {name: {"slots": lane.slots, "in_flight": lane.in_flight, "queued": len(lane.waiters),
                           "admitted": lane.admitted, "rejected_timeout": lane.rejected_timeout,
                           "rejected_full": lane.rejected_full, "wait_counts": list(lane.wait_counts),
                           "wait_sum": lane.wait_sum}
                    for name, lane in self._lanes.items()}


class _AdmissionCollector(Collector):
    """The admission lanes as Prometheus metrics, read at scrape time."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def collect(self) -> Iterator:
        values = self._admission._metric_values()
        in_flight = GaugeMetricFamily("gateway_admission_in_flight", "Queries holding a slot, by lane",
                                      labels=["lane"])
        queued = GaugeMetricFamily("gateway_admission_queued", "Queries waiting for a slot, by lane",
                                   labels=["lane"])
        slots = GaugeMetricFamily("gateway_admission_slots", "Slots per lane (-1: unbounded, admission off)",
                                  labels=["lane"])
        admitted = CounterMetricFamily("gateway_admission_admitted", "Queries admitted, by lane", labels=["lane"])
        rejected = CounterMetricFamily("gateway_admission_rejected", "Queries refused a slot, by lane and reason",
                                       labels=["lane", "reason"])
        wait = HistogramMetricFamily("gateway_admission_wait_seconds", "Time admitted queries waited for a slot",
                                     labels=["lane"])
        for lane, v in values.items():
            in_flight.add_metric([lane], v["in_flight"])
            queued.add_metric([lane], v["queued"])
            slots.add_metric([lane], -1 if v["slots"] is None else v["slots"])
            admitted.add_metric([lane], v["admitted"])
            rejected.add_metric([lane, "queue_timeout"], v["rejected_timeout"])
            rejected.add_metric([lane, "queue_full"], v["rejected_full"])
            cumulative, buckets = 0, []
            for bound, count in zip(_WAIT_BUCKETS, v["wait_counts"], strict=True):
                cumulative += count
                buckets.append((str(bound), cumulative))
            buckets.append(("+Inf", v["admitted"]))
            wait.add_metric([lane], buckets, v["wait_sum"])
        yield from (in_flight, queued, slots, admitted, rejected, wait)
