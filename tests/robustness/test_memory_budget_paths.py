"""The process-wide memory budget over the three paths that were outside it (issue 12, "a budget that covers
fragment buffers, residual plans and result encoding"):

1. a whole query pushed to a file source ran in the file connector's own DataFusion session, without a memory
   pool: a join, aggregate or sort pushed whole there was unbounded. It now runs in a pool reserved from the
   query's account: operators spill beyond it, what cannot spill fails with ResourceLimitError (HTTP 507,
   Flight RESOURCE_EXHAUSTED), and no room in the budget is a 507 before it starts;
2. the batches a pushed-whole query reads ahead into its channel were not charged: they are now, and with no
   room the stream goes on without read-ahead;
3. a REST Parquet download buffered up to a 32 MiB row group (and its encoding) outside the budget: the buffer
   is now charged, and with no room smaller row groups are written.

Every test checks that the budget is back to zero (or to what the test itself holds) and that the gateway
serves the next query. Real servers: PostgreSQL, Parquet folders (the lake's ``orders``, 6,000 rows, and
``wide.t``, 400,000 rows written here), the REST app over HTTP, the Flight SQL server through the ADBC client.
"""

from __future__ import annotations

import concurrent.futures
import gc
import io
import os
import threading
import time

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.arrow.datafusion import TARGET_PARTITIONS
from gateway.api import create_app
from gateway.api.streaming import PARQUET_ROW_GROUP_ROWS
from gateway.client import connect
from gateway.errors import ResourceLimitError
from gateway.execution.engine import QueryEngine
from tests.demo_support import running_app
from tests.flight_support import serve
from tests.robustness.conftest import engine

MIB = 1 << 20
#: pushed whole to the Parquet source: a hash join and an aggregation (they hold rows)
WHOLE_JOIN = ("SELECT a.customer_id, count(*) AS n FROM lake.orders a JOIN lake.orders b "
              "ON a.customer_id = b.customer_id GROUP BY a.customer_id ORDER BY n DESC, a.customer_id LIMIT 5")
#: pushed whole, an aggregation over 400,000 distinct strings
WHOLE_GROUP = "SELECT s, count(*) AS n FROM wide.t GROUP BY s"
#: pushed whole, an aggregation over 6,000 rows: the shared session (its memory is bounded by that input)
SMALL_GROUP = "SELECT customer_id, count(*) AS n FROM lake.orders GROUP BY customer_id"
#: pushed whole, a plain scan: streams in the source's shared session, needs no pool
SCAN = "SELECT id, s FROM wide.t"
LOOKUP = "SELECT name FROM pg.crm.customers WHERE id = 7"
WIDE_ROWS = 400_000


@pytest.fixture(scope="module")
def memory_sources(memory_sources, tmp_path_factory) -> list[dict]:
    """The shared sources and ``wide``: one Parquet table ``t`` of ``WIDE_ROWS`` rows (id, a 20-character
    string, a key), many DataFusion batches of 65,536 rows."""
    folder = tmp_path_factory.mktemp("wide")
    ids = pa.array(range(WIDE_ROWS), pa.int64())
    strings = pc.binary_join_element_wise("row-", pc.utf8_lpad(pc.cast(ids, pa.string()), 16, "0"), "")
    pq.write_table(pa.table({"id": ids, "s": strings, "k": pc.cast(pc.bit_wise_and(ids, 1023), pa.int32())}),
                   folder / "t.parquet", row_group_size=65_536)
    return [*memory_sources, {"name": "wide", "kind": "parquet", "path": str(folder)}]


def tight(gateway: QueryEngine, free: int = 64 * 1024):
    """An account that holds all of ``gateway``'s budget but ``free`` bytes above the pools' headroom (other
    queries' buffers): no batch can be charged."""
    held = gateway.memory.account()
    snapshot = gateway.memory.snapshot()
    assert held.grow(snapshot["total_bytes"] - gateway.memory.headroom - free)
    return held


def refused(gateway: QueryEngine) -> dict[str, int]:
    return {k.removeprefix("refused_"): v for k, v in gateway.memory.snapshot().items() if k.startswith("refused_")}


# -- 1. a whole query pushed to a file source -------------------------------------------------------------

def test_pushed_whole_file_plan_runs_in_a_pool_reserved_from_the_budget(make_settings):
    with engine(make_settings()) as gateway:  # the default pool (limits.memory_bytes, 2 GiB)
        expected = gateway.execute(WHOLE_JOIN).reader.read_all()
    settings = make_settings(process_memory_bytes=512 * MIB, memory_bytes=96 * MIB, min_query_memory_bytes=32 * MIB)
    with engine(settings) as gateway:
        assert gateway.plan(WHOLE_JOIN).pushed_whole
        assert gateway.execute(WHOLE_JOIN).reader.read_all().equals(expected)
        assert gateway.memory.snapshot()["peak"] >= 96 * MIB  # its pool was reserved from the budget
        assert gateway.memory.snapshot()["reserved"] == 0
        gateway.memory.peak = 0
        assert gateway.execute(SCAN + " WHERE id < 10").reader.read_all().num_rows == 10
        assert gateway.execute(SMALL_GROUP).reader.read_all().num_rows > 1
        assert gateway.memory.snapshot()["peak"] < MIB  # a plain scan, and a small input, run without a pool


def test_pushed_whole_aggregation_spills_in_a_small_pool(make_settings, tmp_path):
    """14 MiB of pool per DataFusion partition: the aggregation's hash table (80 MiB on 4 partitions) spills
    (measured on 4 partitions: none below 40 MiB, which fails; 4-19 spill files from 40 to 64 MiB)."""
    pool = 14 * MIB * TARGET_PARTITIONS
    settings = make_settings(memory_bytes=pool, min_query_memory_bytes=pool, spill_path=str(tmp_path))
    spilled: set[str] = set()
    done = threading.Event()

    def watch() -> None:  # DataFusion removes its spill files when the query ends
        while not done.is_set():
            spilled.update(name for _, _, names in os.walk(tmp_path) for name in names)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with engine(settings) as gateway:
        try:
            result = gateway.execute(WHOLE_GROUP).reader.read_all()
        finally:
            done.set()
            watcher.join()
        assert result.num_rows == WIDE_ROWS
        assert pc.all(pc.equal(result.column("n"), 1)).as_py()
        assert spilled
        assert gateway.memory.snapshot()["reserved"] == 0


def test_pushed_whole_join_over_its_pool_is_507_and_the_process_goes_on(make_settings):
    settings = make_settings(memory_bytes=64 * 1024, min_query_memory_bytes=64 * 1024)
    with serve(settings) as (uri, server):
        gateway = server.gateway
        with pytest.raises(ResourceLimitError, match=r"limits\.memory_bytes.*source 'lake'") as exhausted:
            gateway.execute(WHOLE_JOIN).reader.read_all()
        assert exhausted.value.http_status == 507
        with connect(uri) as conn:  # Flight RESOURCE_EXHAUSTED, rebuilt by the client
            with pytest.raises(ResourceLimitError, match=r"Resources exhausted"):
                conn.query(WHOLE_JOIN)
            assert conn.query(LOOKUP).num_rows == 1
        with running_app(create_app(gateway)) as url, httpx.Client(base_url=url, timeout=30) as client:
            response = client.post("/v1/query", json={"sql": WHOLE_JOIN})
            assert response.status_code == 507
            assert response.json()["error"]["code"] == "resource_limit"
            assert client.post("/v1/query", json={"sql": LOOKUP}).status_code == 200
        assert gateway.memory.snapshot()["reserved"] == 0


def test_pushed_whole_file_plan_without_room_in_the_budget_is_507(make_settings):
    settings = make_settings(process_memory_bytes=256 * MIB, memory_bytes=128 * MIB, min_query_memory_bytes=64 * MIB,
                             queue_timeout_s=0.5)
    with engine(settings) as gateway:
        held = gateway.memory.account()
        assert held.reserve_pool(224 * MIB, floor=224 * MIB)
        with pytest.raises(ResourceLimitError, match=r"limits\.process_memory_bytes") as refused_:
            gateway.execute(WHOLE_JOIN).reader.read_all()
        assert refused_.value.http_status == 507
        assert gateway.execute(SCAN + " LIMIT 3").reader.read_all().num_rows == 3  # a scan needs no pool
        held.close()
        assert gateway.execute(WHOLE_JOIN).reader.read_all().num_rows == 5
        assert gateway.memory.snapshot()["reserved"] == 0


# -- 2. the pushed-whole channel ---------------------------------------------------------------------------

def test_pushed_whole_read_ahead_is_charged_while_it_waits(make_settings):
    settings = make_settings(prefetch_batches=4)
    with engine(settings) as gateway:
        result = gateway.execute(SCAN)
        reader = iter(result.reader)
        first = next(reader)
        deadline = time.monotonic() + 10
        while gateway.memory.snapshot()["reserved"] < 4 * first.nbytes and time.monotonic() < deadline:
            time.sleep(0.05)  # the reader thread fills the channel while the client does not read
        reserved = gateway.memory.snapshot()["reserved"]
        assert 4 * first.nbytes <= reserved <= 6 * first.nbytes  # the 4 waiting batches (and one in hand)
        rows = first.num_rows + sum(batch.num_rows for batch in reader)
        assert rows == WIDE_ROWS
        assert gateway.memory.snapshot()["reserved"] == 0
        result = gateway.execute(SCAN)  # dropped after its first batch, with batches waiting
        next(iter(result.reader))
        time.sleep(0.2)
        assert gateway.memory.snapshot()["reserved"] > 0
        del result, reader
        gc.collect()
        assert gateway.memory.snapshot()["reserved"] == 0


def test_pushed_whole_stream_without_room_reads_no_further_ahead(make_settings):
    with engine(make_settings()) as gateway:
        expected = gateway.execute(SCAN).reader.read_all().sort_by("id")  # the batches come in any order
        held = tight(gateway)
        holding = gateway.memory.snapshot()["reserved"]
        result = gateway.execute(SCAN)
        reader = iter(result.reader)
        batches = [next(reader)]
        time.sleep(0.5)  # a reader that could read ahead has done so by now
        assert gateway.memory.snapshot()["reserved"] == holding
        batches.extend(reader)
        assert pa.Table.from_batches(batches).sort_by("id").equals(expected)
        assert refused(gateway)["stream"] >= 1
        held.close()
        assert gateway.memory.snapshot()["reserved"] == 0


# -- 3. REST result encoding ---------------------------------------------------------------------------------

def _parquet(client: httpx.Client, sql: str) -> pq.ParquetFile:
    response = client.post("/v1/query", json={"sql": sql, "format": "parquet"})
    assert response.status_code == 200, response.text
    return pq.ParquetFile(io.BytesIO(response.content))


def test_rest_parquet_row_group_buffer_is_charged(make_settings):
    with engine(make_settings(prefetch_batches=1)) as gateway, running_app(create_app(gateway)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        batch_bytes = next(iter(gateway.execute(SCAN).reader)).nbytes
        gc.collect()
        gateway.memory.peak = 0
        parquet = _parquet(client, SCAN)
        assert parquet.metadata.num_rows == WIDE_ROWS
        # the batches that first reach PARQUET_ROW_GROUP_ROWS: two of 65,536 rows, or one of them with the
        # file's last 6,784 rows when DataFusion coalesced those into a batch (arrival order varies: 137,856 once)
        assert PARQUET_ROW_GROUP_ROWS <= parquet.metadata.row_group(0).num_rows < PARQUET_ROW_GROUP_ROWS + 65_536
        # the buffered row group and its encoding: 2 x 2 batches (the channel holds at most 2 batches)
        assert gateway.memory.snapshot()["peak"] >= 4 * batch_bytes
        assert gateway.memory.snapshot()["reserved"] == 0
        assert refused(gateway)["encoding"] == 0


def test_rest_parquet_downloads_without_room_write_smaller_row_groups(make_settings):
    with engine(make_settings()) as gateway, running_app(create_app(gateway)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        expected = _parquet(client, SCAN).read().sort_by("id")  # the batches come in any order
        held = tight(gateway)
        holding = gateway.memory.snapshot()["reserved"]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # four downloads at once
            files = list(pool.map(lambda _: _parquet(client, SCAN), range(4)))
        for parquet in files:
            assert parquet.read().sort_by("id").equals(expected)
            assert max(parquet.metadata.row_group(i).num_rows
                       for i in range(parquet.metadata.num_row_groups)) < PARQUET_ROW_GROUP_ROWS
        assert gateway.memory.snapshot()["peak"] <= gateway.memory.total_bytes
        assert gateway.memory.snapshot()["reserved"] == holding
        metrics = {(s.name, s.labels.get("kind")): s.value
                   for f in text_string_to_metric_families(client.get("/metrics").text) for s in f.samples}
        assert metrics[("gateway_memory_refused_total", "encoding")] >= 4
        held.close()
        assert gateway.memory.snapshot()["reserved"] == 0
        assert client.post("/v1/query", json={"sql": LOOKUP}).status_code == 200
