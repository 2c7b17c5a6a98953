"""The process-wide memory budget (``gateway.execution.memory``): fragment buffers spill when the budget is
tight, a residual plan that cannot get its pool fails with ResourceLimitError (HTTP 507, Flight
RESOURCE_EXHAUSTED), a result past ``limits.max_result_rows``/``max_result_bytes`` fails (HTTP 413), and the
process serves the next query every time. Issue: ``limits.memory_bytes`` covered only one residual plan's
pool; fetched fragments were outside it and there was no process-wide budget (8 clients took RSS from 0.7 to
2.9 GB).

Real servers: PostgreSQL (``crm.customers``, 3,000 rows), a Parquet folder (``orders``, 6,000 rows), the REST
app over HTTP and the Flight SQL server through the ADBC client. Cost: about 5 s.
"""

from __future__ import annotations

import gc
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.api import create_app
from gateway.client import connect
from gateway.errors import InvalidQueryError, ResourceLimitError
from tests.demo_support import running_app
from tests.flight_support import serve
from tests.robustness.conftest import engine

#: a residual plan: PostgreSQL's customers joined with the Parquet orders (the PostgreSQL fragment is collected)
JOIN = ("SELECT c.region, count(*) AS n, sum(o.amount) AS amount FROM pg.crm.customers c "
        "JOIN lake.orders o ON o.customer_id = c.id GROUP BY c.region ORDER BY c.region")
#: light and pushed whole: no residual plan, no pool
LOOKUP = "SELECT name FROM pg.crm.customers WHERE id = 7"
MIB = 1 << 20


@pytest.fixture(scope="module")
def expected(make_settings):
    with engine(make_settings()) as gateway:
        return gateway.execute(JOIN).reader.read_all()


def test_budget_is_given_back_after_every_query(make_settings, expected):
    with engine(make_settings(process_memory_bytes=512 * MIB, memory_bytes=128 * MIB)) as gateway:
        assert gateway.execute(JOIN).reader.read_all().equals(expected)
        with pytest.raises(InvalidQueryError):  # division by zero in the residual plan
            gateway.execute("SELECT c.id / (o.order_id - o.order_id) AS q FROM pg.crm.customers c "
                            "JOIN lake.orders o ON o.customer_id = c.id").reader.read_all()
        result = gateway.execute(JOIN)  # dropped after its first batch
        next(iter(result.reader))
        del result
        gc.collect()
        assert gateway.memory.snapshot()["reserved"] == 0


def test_residual_plan_without_room_fails_with_507_and_the_process_goes_on(make_settings, expected):
    settings = make_settings(process_memory_bytes=256 * MIB, memory_bytes=128 * MIB, min_query_memory_bytes=64 * MIB,
                             queue_timeout_s=0.5)
    with serve(settings) as (uri, server):
        gateway = server.gateway
        held = gateway.memory.account()  # other queries hold all but 32 MiB of the budget
        assert held.reserve_pool(224 * MIB, floor=224 * MIB) == 224 * MIB
        with pytest.raises(ResourceLimitError, match=r"limits\.process_memory_bytes") as refused:
            gateway.execute(JOIN).reader.read_all()
        assert refused.value.http_status == 507
        with connect(uri) as conn:
            with pytest.raises(ResourceLimitError, match=r"limits\.min_query_memory_bytes"):
                conn.query(JOIN)
            assert conn.query(LOOKUP).num_rows == 1  # a pushed-whole query needs no pool
        with running_app(create_app(gateway)) as url, httpx.Client(base_url=url, timeout=30) as client:
            response = client.post("/v1/query", json={"sql": JOIN})
            assert response.status_code == 507
            assert response.json()["error"]["code"] == "resource_limit"
            assert response.headers["retry-after"] == "1"
            metrics = {s.name: s.value for f in text_string_to_metric_families(client.get("/metrics").text)
                       for s in f.samples if s.name.startswith("gateway_memory")}
            assert metrics["gateway_memory_budget_bytes"] == 256 * MIB
            assert metrics["gateway_memory_reserved_bytes"] == 224 * MIB
            held.close()  # the other queries ended: the same query runs
            response = client.post("/v1/query", json={"sql": JOIN, "format": "arrow"})
            assert response.status_code == 200
        assert gateway.execute(JOIN).reader.read_all().equals(expected)
        assert gateway.memory.snapshot()["reserved"] == 0
        failed = [h for h in gateway.metrics.history() if h.error_code == "resource_limit"]
        assert len(failed) == 3  # engine, Flight SQL, REST: each in the history


def test_query_waits_for_memory_a_running_query_gives_back(make_settings, expected):
    settings = make_settings(process_memory_bytes=256 * MIB, memory_bytes=128 * MIB, min_query_memory_bytes=64 * MIB,
                             queue_timeout_s=10)
    with engine(settings) as gateway:
        held = gateway.memory.account()
        held.reserve_pool(224 * MIB, floor=224 * MIB)
        threading.Timer(1.0, held.close).start()  # the other query ends after 1 s
        t0 = time.perf_counter()
        assert gateway.execute(JOIN).reader.read_all().equals(expected)
        assert 0.9 <= time.perf_counter() - t0 < 8.0


def test_pool_shrinks_to_what_is_left(make_settings, expected):
    settings = make_settings(process_memory_bytes=256 * MIB, memory_bytes=200 * MIB, min_query_memory_bytes=16 * MIB)
    with engine(settings) as gateway:
        held = gateway.memory.account()
        held.reserve_pool(192 * MIB, floor=192 * MIB)  # 64 MiB left: the plan runs in a 64 MiB pool
        assert gateway.execute(JOIN).reader.read_all().equals(expected)
        assert gateway.memory.snapshot()["peak"] == 256 * MIB
        held.close()


def test_fragments_spill_when_the_budget_is_tight(make_settings, expected):
    """The PostgreSQL fragment (~0.5 MB) finds no room above the pool's headroom: it goes to an Arrow IPC file
    and the answer is the same."""
    settings = make_settings(process_memory_bytes=256 * MIB, memory_bytes=64 * MIB, min_query_memory_bytes=64 * MIB)
    with engine(settings) as gateway:
        held = gateway.memory.account()
        assert held.grow(192 * MIB - 64 * 1024)  # 64 KiB above the headroom is free for buffers
        result = gateway.execute(JOIN)
        assert result.reader.read_all().equals(expected)
        assert gateway.memory.snapshot()["refused_fragment"] >= 1
        held.close()
        assert gateway.memory.snapshot()["reserved"] == 0


def test_datafusion_pool_exhausted_is_507(make_settings):
    """A hash join whose build side does not fit the residual plan's pool (and cannot spill)."""
    settings = make_settings(memory_bytes=64 * 1024, min_query_memory_bytes=64 * 1024)
    with engine(settings) as gateway:
        with pytest.raises(ResourceLimitError, match=r"limits\.memory_bytes") as exhausted:
            gateway.execute("SELECT c.name, o.order_id FROM pg.crm.customers c JOIN lake.orders o "
                            "ON o.customer_id = c.id").reader.read_all()
        assert exhausted.value.http_status == 507
        assert gateway.execute(LOOKUP).reader.read_all().num_rows == 1


def test_result_caps(make_settings):
    settings = make_settings(max_result_rows=100, max_result_bytes=64 * 1024)
    with serve(settings) as (uri, server):
        with pytest.raises(ResourceLimitError, match=r"more than 100 rows \(limits\.max_result_rows\)"):
            server.gateway.execute("SELECT order_id FROM lake.orders").reader.read_all()
        assert server.gateway.execute("SELECT order_id FROM lake.orders LIMIT 100").reader.read_all().num_rows == 100
        with connect(uri) as conn:
            with pytest.raises(ResourceLimitError, match=r"limits\.max_result_rows"):
                conn.query("SELECT order_id FROM lake.orders")
            with pytest.raises(ResourceLimitError, match=r"limits\.max_result_bytes"):
                conn.query("SELECT repeat('x', 1000) AS s FROM lake.orders LIMIT 90")
            assert conn.query(LOOKUP).num_rows == 1
        with running_app(create_app(server.gateway)) as url, httpx.Client(base_url=url, timeout=30) as client:
            response = client.post("/v1/query", json={"sql": "SELECT order_id FROM lake.orders"})
            assert response.status_code == 413
            assert response.json()["error"]["code"] == "resource_limit"
