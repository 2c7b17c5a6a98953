"""Admission control (``gateway.execution.admission``): heavy queries take one of ``limits.max_heavy_queries`` slots or
wait in a FIFO queue up to ``limits.queue_timeout_s`` (then ResourceLimitError: HTTP 429, Flight
``[resource_limit]``); light queries have their own lane and never wait behind heavy ones; a slot is given back
however its query ends. Issue: with 32 clients every query was admitted at once and a 7.6 ms point lookup took
1,060 ms while others ran joins and aggregates.

Real servers: PostgreSQL (its ``bi.slow`` view keeps a heavy query running until it is cancelled) and a
Parquet lake, the Flight SQL server on a free loopback port, the ADBC client, the REST app."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pyarrow import flight

from flight_server import protocol
from gateway.api import create_app
from gateway.auth import Authenticator
from gateway.client import connect
from gateway.errors import ConfigError, QueryCancelledError, QueryTimeoutError, ResourceLimitError
from gateway.execution.engine import QueryEngine
from gateway.settings import Settings
from tests.demo_support import running_app
from tests.flight_support import serve, setup_pg
from tests.robustness.conftest import engine

SLOW = "SELECT s FROM pg.bi.slow"  # heavy (a view: no statistics); its backend sleeps 60 s unless cancelled
LOOKUP = "SELECT name, region FROM pg.crm.customers WHERE id = 7"  # light: pushed whole, primary-key equality
HEAVY = ("SELECT c.region, count(*) AS n FROM pg.crm.customers c JOIN lake.orders o ON o.customer_id = c.id "
         "GROUP BY c.region")  # heavy: a residual plan in DataFusion
FAILING = ("SELECT c.id / (o.order_id - o.order_id) AS q FROM pg.crm.customers c JOIN lake.orders o "
           "ON o.customer_id = c.id")  # heavy; division by zero in DataFusion
BIG = "SELECT c.id, o.order_id FROM pg.crm.customers c CROSS JOIN lake.orders o"  # heavy; 18 M rows


@pytest.fixture(scope="module")
def make_settings(make_settings, pg_database) -> Callable[..., Settings]:
    """The shared ``make_settings`` (PostgreSQL with ``bi.slow``, and the lake) with one heavy slot and a 1 s
    queue timeout under any other ``[limits]`` given."""
    setup_pg(pg_database)
    shared = make_settings

    def make(**limits) -> Settings:
        return shared(**{"max_heavy_queries": 1, "queue_timeout_s": 1.0, "query_timeout_s": 30, **limits})

    return make


def lanes(gateway: QueryEngine) -> dict:
    return gateway.admission.snapshot()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@contextlib.contextmanager
def heavy_slots_taken(gateway: QueryEngine, count: int = 1) -> Iterator[None]:
    """``count`` slow heavy queries hold heavy slots until the block ends (then they are cancelled)."""
    cancels = [threading.Event() for _ in range(count)]

    def run(cancel: threading.Event) -> None:
        with contextlib.suppress(QueryCancelledError):
            gateway.execute(SLOW, cancel=cancel).reader.read_all()

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in cancels]
    for t in threads:
        t.start()
    wait_until(lambda: lanes(gateway)["heavy"]["in_flight"] == count)
    try:
        yield
    finally:
        for cancel in cancels:
            cancel.set()
        for t in threads:
            t.join(10)


@contextlib.contextmanager
def started(gateway: QueryEngine, sql: str, cancel: threading.Event | None = None, **kwargs) -> Iterator[dict]:
    """``sql`` run on a thread; yields its outcome box (``result`` or ``error``, and ``ended``, a monotonic
    time). Cancelled at the end of the block if it still runs."""
    box: dict = {}
    cancel = cancel or threading.Event()

    def run() -> None:
        try:
            box["result"] = gateway.execute(sql, cancel=cancel, **kwargs).reader.read_all()
        except Exception as exc:
            box["error"] = exc
        box["ended"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        cancel.set()
        thread.join(15)


# -- classification --------------------------------------------------------------------------------------

def test_queries_are_classified_light_or_heavy_from_their_plans(make_settings):
    with engine(make_settings(light_query_max_rows=1000)) as gateway:
        def lane(sql: str, params=None) -> str:
            return gateway.admission.classify(gateway.plan(sql, params)).lane

        assert lane(LOOKUP) == "light"  # primary-key equality: one row
        assert lane("SELECT name FROM pg.crm.customers WHERE ? = id", [7]) == "light"
        assert lane("SELECT 1 AS one") == "light"  # no source read
        # 3,000 rows, a quarter per filter conjunct: 750 <= 1,000; an OR of keys is no key lookup
        assert lane("SELECT name FROM pg.crm.customers WHERE region = 'north'") == "light"
        assert lane("SELECT name FROM pg.crm.customers") == "heavy"
        assert lane("SELECT count(*) AS n FROM lake.orders") == "heavy"  # a 6,000-row file scan
        assert lane(HEAVY) == "heavy"  # a residual plan
        slow = gateway.admission.classify(gateway.plan(SLOW))
        assert (slow.lane, slow.estimated_rows) == ("heavy", None)  # a view has no statistics
    with engine(make_settings(light_residual_plans=True)) as gateway:
        join = "SELECT c.name, o.amount FROM pg.crm.customers c JOIN lake.orders o ON o.customer_id = c.id " \
               "WHERE c.id = 7"
        assert gateway.admission.classify(gateway.plan(join)).lane == "light"  # 1 + 6,000 rows <= 10,000
        assert gateway.admission.classify(gateway.plan(BIG)).lane == "light"  # 3,000 + 6,000 rows
    with engine(make_settings(light_residual_plans=True, light_query_max_rows=5000)) as gateway:
        assert gateway.admission.classify(gateway.plan(BIG)).lane == "heavy"  # 9,000 > 5,000


# -- queueing --------------------------------------------------------------------------------------------

def test_full_heavy_queue_answers_resource_limit_error_after_the_queue_timeout(make_settings):
    """Over Flight SQL (the ADBC client rebuilds ResourceLimitError from ``[resource_limit]``) and REST (429)."""
    with serve(make_settings()) as (uri, server), heavy_slots_taken(server.gateway):
        with connect(uri) as conn:
            t0 = time.perf_counter()
            with pytest.raises(ResourceLimitError, match=r"waited 1 s .*limits\.queue_timeout_s"):
                conn.query(HEAVY)
            assert 1.0 <= time.perf_counter() - t0 < 4.0
            assert conn.query(LOOKUP).num_rows == 1  # the connection is fine
        with running_app(create_app(server.gateway, Authenticator(server.gateway.settings.auth))) as url:
            response = httpx.post(f"{url}/v1/query", json={"sql": HEAVY}, timeout=30)
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "resource_limit"
        assert response.headers["retry-after"] == "1"
        assert lanes(server.gateway)["heavy"]["rejected"] == 2
        failed = [h for h in server.gateway.metrics.history() if h.error_code == "resource_limit"]
        assert len(failed) == 2  # in the history, counted and logged like any failed query


def test_light_query_is_admitted_while_the_heavy_slots_are_all_taken(make_settings):
    with serve(make_settings(max_heavy_queries=2, queue_timeout_s=10)) as (uri, server), \
            heavy_slots_taken(server.gateway, count=2), started(server.gateway, HEAVY) as waiting:
        wait_until(lambda: lanes(server.gateway)["heavy"]["queued"] == 1)
        with connect(uri) as conn:
            t0 = time.perf_counter()
            assert conn.query(LOOKUP).num_rows == 1
            assert time.perf_counter() - t0 < 2.0  # not behind the heavy queue (10 s)
        state = lanes(server.gateway)
        assert (state["heavy"]["in_flight"], state["heavy"]["queued"]) == (2, 1)
        assert state["light"]["admitted"] >= 1 and state["light"]["queued"] == 0
        assert "ended" not in waiting


def test_heavy_queue_is_first_in_first_out(make_settings):
    with engine(make_settings(queue_timeout_s=20)) as gateway, contextlib.ExitStack() as waiting:
        with heavy_slots_taken(gateway):
            first = waiting.enter_context(started(gateway, HEAVY))
            wait_until(lambda: lanes(gateway)["heavy"]["queued"] == 1)
            second = waiting.enter_context(started(gateway, HEAVY.replace("count(*)", "count(o.order_id)")))
            wait_until(lambda: lanes(gateway)["heavy"]["queued"] == 2)
        # the slow query was cancelled: its slot goes to the first in line, then to the second (one slot)
        wait_until(lambda: "ended" in first and "ended" in second)
        assert "error" not in first and "error" not in second
        assert first["ended"] < second["ended"]


def test_queue_longer_than_max_queued_queries_is_refused_at_once(make_settings):
    with engine(make_settings(max_queued_queries=1, queue_timeout_s=10)) as gateway, heavy_slots_taken(gateway), \
            started(gateway, HEAVY):
        wait_until(lambda: lanes(gateway)["heavy"]["queued"] == 1)
        t0 = time.perf_counter()
        with pytest.raises(ResourceLimitError, match=r"limits\.max_queued_queries = 1"):
            gateway.execute(HEAVY)
        assert time.perf_counter() - t0 < 1.0


def test_query_cancelled_or_timed_out_while_queued_leaves_the_queue(make_settings):
    with engine(make_settings(queue_timeout_s=20)) as gateway, heavy_slots_taken(gateway):
        cancel = threading.Event()
        with started(gateway, HEAVY, cancel=cancel) as box:
            wait_until(lambda: lanes(gateway)["heavy"]["queued"] == 1)
            cancel.set()
            wait_until(lambda: "ended" in box, timeout=2)
        assert isinstance(box["error"], QueryCancelledError)
        with started(gateway, HEAVY, timeout_s=1) as box:
            wait_until(lambda: "ended" in box, timeout=4)
        assert isinstance(box["error"], QueryTimeoutError)  # its own time limit counts the wait
        assert lanes(gateway)["heavy"]["queued"] == 0
        assert [h.status for h in gateway.metrics.history(3)][:2] == ["timeout", "cancelled"]


def test_admission_control_off_admits_every_query_at_once(make_settings):
    with engine(make_settings(admission_control=False)) as gateway, heavy_slots_taken(gateway, count=2):
        assert gateway.execute(HEAVY).reader.read_all().num_rows > 0
        assert lanes(gateway)["heavy"]["slots"] is None


# -- releasing -------------------------------------------------------------------------------------------

def test_slot_is_released_after_success(make_settings):
    with engine(make_settings()) as gateway:
        assert gateway.execute(HEAVY).reader.read_all().num_rows > 0
        assert gateway.execute(HEAVY).reader.read_all().num_rows > 0  # one slot: the first gave it back
        assert lanes(gateway)["heavy"]["in_flight"] == 0


def test_slot_is_released_after_an_error(make_settings):
    with engine(make_settings()) as gateway:
        with pytest.raises(Exception, match=r"[Dd]ivide by zero"):
            gateway.execute(FAILING).reader.read_all()
        assert lanes(gateway)["heavy"]["in_flight"] == 0
        assert gateway.execute(HEAVY).reader.read_all().num_rows > 0


def test_slot_is_released_after_cancel(make_settings):
    with serve(make_settings()) as (uri, server):
        gateway = server.gateway
        with heavy_slots_taken(gateway):
            pass  # cancelled at the end of the block, while its source statement still runs
        wait_until(lambda: lanes(gateway)["heavy"]["in_flight"] == 0, timeout=3)
        with connect(uri) as conn:  # over Flight SQL: a stream closed after one batch cancels the query
            stream = conn.stream(BIG)
            next(stream)
            assert lanes(gateway)["heavy"]["in_flight"] == 1
            stream.close()
            wait_until(lambda: lanes(gateway)["heavy"]["in_flight"] == 0, timeout=5)
            assert conn.query(HEAVY).num_rows > 0
        assert lanes(gateway)["heavy"]["reclaimed"] == 0  # each given back by the engine itself


def _read_one_batch(uri: str, sql: str) -> tuple[flight.FlightClient, flight.FlightStreamReader]:
    """A raw Flight SQL client that ran ``sql`` and read its first batch only."""
    client = flight.connect(uri)
    descriptor = flight.FlightDescriptor.for_command(protocol.pack(protocol.CommandStatementQuery(query=sql)))
    reader = client.do_get(client.get_flight_info(descriptor).endpoints[0].ticket)
    reader.read_chunk()
    return client, reader


def test_slot_is_released_after_an_abandoned_stream(make_settings):
    """A Flight client that read one batch of a large result and went away: its stream and connection close
    without the rest being read."""
    with serve(make_settings()) as (uri, server):
        client, reader = _read_one_batch(uri, BIG)
        assert lanes(server.gateway)["heavy"]["in_flight"] == 1
        del reader
        client.close()
        wait_until(lambda: lanes(server.gateway)["heavy"]["in_flight"] == 0, timeout=10)
        assert lanes(server.gateway)["heavy"]["reclaimed"] == 0  # given back by the engine as the stream ended
        with connect(uri) as conn:
            assert conn.query(HEAVY).num_rows > 0


def test_slot_of_a_client_that_never_reads_is_released_at_its_time_limit(make_settings):
    """A Flight client that stops reading a large result but keeps its stream open: the server's stream waits
    on the client, and the slot comes back once the query's time limit has cancelled it, for the next query
    that needs it."""
    with serve(make_settings(query_timeout_s=1, queue_timeout_s=8)) as (uri, server):
        client, reader = _read_one_batch(uri, BIG)
        try:
            assert lanes(server.gateway)["heavy"]["in_flight"] == 1
            t0 = time.perf_counter()
            with connect(uri, timeout_s=10) as conn:  # this one's own time limit: 10 s
                assert conn.query(HEAVY).num_rows > 0
            # waited for the time limit (1 s) and the grace given to a cancelled query to end (1 s)
            assert 1.0 < time.perf_counter() - t0 < 6.0
            assert lanes(server.gateway)["heavy"]["reclaimed"] == 1
        finally:
            del reader  # the client goes, so the server's stream can end
            client.close()


def test_slot_of_a_result_dropped_unread_is_released(make_settings):
    """Without a time limit: once the dropped result is collected."""
    with engine(make_settings(query_timeout_s=0)) as gateway:
        result = gateway.execute(HEAVY)
        assert lanes(gateway)["heavy"]["in_flight"] == 1
        del result
        gc.collect()
        assert gateway.execute(HEAVY).reader.read_all().num_rows > 0
        assert lanes(gateway)["heavy"]["in_flight"] == 0


# -- metrics and settings ----------------------------------------------------------------------------------

def _gauges(text: str) -> dict[tuple[str, str], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("gateway_admission_in_flight", "gateway_admission_queued", "gateway_admission_slots"):
            for sample in family.samples:
                values[(sample.name, sample.labels["lane"])] = sample.value
    return values


def test_metrics_have_in_flight_and_queued_gauges_per_lane(make_settings):
    with engine(make_settings(queue_timeout_s=10)) as gateway, \
            running_app(create_app(gateway, Authenticator(gateway.settings.auth))) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        with contextlib.ExitStack() as waiting:
            with heavy_slots_taken(gateway):
                box = waiting.enter_context(started(gateway, HEAVY))
                wait_until(lambda: lanes(gateway)["heavy"]["queued"] == 1)
                busy = _gauges(client.get("/metrics").text)
            wait_until(lambda: "ended" in box)  # admitted once the slow query was cancelled
        idle = client.get("/metrics").text
    assert busy[("gateway_admission_in_flight", "heavy")] == 1
    assert busy[("gateway_admission_queued", "heavy")] == 1
    assert busy[("gateway_admission_in_flight", "light")] == 0
    assert busy[("gateway_admission_queued", "light")] == 0
    assert busy[("gateway_admission_slots", "heavy")] == 1
    assert busy[("gateway_admission_slots", "light")] == 64
    assert _gauges(idle)[("gateway_admission_in_flight", "heavy")] == 0
    assert 'gateway_admission_admitted_total{lane="heavy"} 2.0' in idle
    assert 'gateway_admission_wait_seconds_count{lane="heavy"} 2.0' in idle


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("max_heavy_queries", 0, "greater than or equal to 1"),
    ("queue_timeout_s", 0, "greater than 0"),
    ("max_light_queries", -1, "greater than or equal to 1"),
    ("light_query_max_rows", -5, "greater than or equal to 0"),
])
def test_admission_settings_are_validated(make_settings, key, value, reason):
    with pytest.raises(ConfigError, match=rf"limits\.{key}: .*{reason}"):
        make_settings(**{key: value})
