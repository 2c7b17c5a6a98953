"""REST results are streamed and their queries end with their clients.

Issues: ``POST /v1/query`` built the whole JSON document before sending a byte (1M rows: 6.5 s to the first
byte and +626 MB; 20M rows took the process to 7.5 GB), and a REST client that disconnected left its
PostgreSQL statements running for ~100 s. Now JSON and NDJSON are streamed batch by batch (an error after the
first byte ends the stream with an error member), a disconnect cancels the query and its source statements
within a second, and ``DELETE /v1/queries/{id}`` cancels a running query (404 unknown id, 403 another user's).

The real app runs in uvicorn (``running_app``) over a PostgreSQL database of the session (``pg_database``);
expected values are computed in Python from the views' definitions, never through the gateway. Source
statements are watched in ``pg_stat_activity`` (``slow_backends``: queries whose text holds "slow").
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from decimal import Decimal
from urllib.parse import urlsplit

import adbc_driver_postgresql.dbapi as pg
import httpx
import pyarrow as pa
import pytest

from gateway.api import create_app
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.demo_support import running_app, serving_rest
from tests.flight_support import setup_pg, slow_backends

BIG_ROWS = 5_000_000
SAMPLE_ROWS = 20_000
#: RSS growth allowed while 5M rows stream as JSON (the whole document is ~150 MB; built whole it took GBs)
RSS_BOUND = 300 << 20
#: seconds from a disconnect or a DELETE until the source statement has ended
CANCEL_BOUND_S = 1.0

VIEWS = [
    "CREATE SCHEMA IF NOT EXISTS stream",
    f"CREATE OR REPLACE VIEW stream.rows_5m AS SELECT g::bigint AS id, 'row ' || g AS label "
    f"FROM generate_series(1, {BIG_ROWS}) g",
    # every JSON encoding at once: decimals, dates, NULLs, booleans
    "CREATE OR REPLACE VIEW stream.sample AS SELECT g AS id, 'row ' || g AS label, "
    "(g / 100.0)::numeric(12, 2) AS amount, DATE '2024-01-01' + g AS day, "
    f"CASE WHEN g % 7 = 0 THEN NULL ELSE g % 3 = 0 END AS flag FROM generate_series(1, {SAMPLE_ROWS}) g",
    # ~60 MB of rows, then division by zero at row 60,000: the source fails after its first batches were sent
    "CREATE OR REPLACE VIEW stream.fails_late AS SELECT g AS id, repeat('x', 1000) AS pad, 1 / (60000 - g) AS q "
    "FROM generate_series(1, 70000) g",
    # ~40 MB of rows at once, then the statement sleeps 60 s unless cancelled ("slow": slow_backends sees it)
    "CREATE OR REPLACE VIEW bi.slow_stream AS SELECT g + CASE WHEN g = 40000 THEN (SELECT 0 FROM pg_sleep(60)) "
    "ELSE 0 END AS id, repeat('x', 1000) AS pad FROM generate_series(1, 50000) g",
]
SLOW = "SELECT s FROM pg.bi.slow"  # no row for 60 s unless cancelled
SLOW_STREAM = "SELECT id, pad FROM pg.bi.slow_stream"  # rows at once, then 60 s without any


@pytest.fixture(scope="module")
def settings(pg_database, tmp_path_factory):
    setup_pg(pg_database)
    with pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cur:
        for sql in VIEWS:
            cur.execute(sql)
    return settings_from_dict({
        "sources": [{"name": "pg", "kind": "postgresql", "uri": pg_database}],
        "limits": {"query_timeout_s": 120},
    }, base_dir=tmp_path_factory.mktemp("rest-streaming"))


@pytest.fixture(scope="module")
def base_url(settings):
    with serving_rest(settings) as url:
        yield url


@pytest.fixture
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=120.0) as c:
        yield c


class SlowStatements:
    """The PostgreSQL statements reading a slow view (``slow_backends``) that are active."""

    def __init__(self, admin_uri: str, database: str) -> None:
        self._admin_uri = admin_uri
        self._database = database

    def active(self) -> list:
        return [b for b in slow_backends(self._admin_uri, self._database) if b[1] == "active"]

    def running(self, limit_s: float = 20.0) -> None:
        """Wait until one runs."""
        deadline = time.monotonic() + limit_s
        while not self.active():
            assert time.monotonic() < deadline, "the slow statement did not start"
            time.sleep(0.05)

    def gone(self, limit_s: float = 5.0) -> float | None:
        """Seconds until none runs (polled every 20 ms), None if some still run after ``limit_s``."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit_s:
            if not self.active():
                return time.monotonic() - t0
            time.sleep(0.02)
        return None


@pytest.fixture
def slow(pg_server, pg_database) -> SlowStatements:
    """The slow statements, once those of earlier tests have ended."""
    statements = SlowStatements(pg_server, pg_database.rsplit("/", 1)[1])
    assert statements.gone() is not None, "slow statements of an earlier test still run"
    return statements


# -- helpers ------------------------------------------------------------------------------------------------

def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class _PeakRss:
    """The highest RSS of this process (server and client) sampled every 10 ms while running."""

    def __init__(self) -> None:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _json_bytes_of_rows(n: int) -> int:
    """The size of ``[1, "row 1"], [2, "row 2"], ...`` (n rows) as json.dumps writes it."""
    total, digits, low = 0, 1, 1
    while low <= n:
        high = min(n, 10 ** digits - 1)
        total += (high - low + 1) * (2 * digits + 10)  # [d, "row d"]
        low, digits = high + 1, digits + 1
    return total + 2 * (n - 1)  # ", " between rows


def _sample_rows() -> list[list]:
    """``stream.sample`` computed from its definition, as the REST JSON encodes it."""
    rows = []
    for g in range(1, SAMPLE_ROWS + 1):
        amount = (Decimal(g) / 100).quantize(Decimal("0.01"))
        flag = None if g % 7 == 0 else g % 3 == 0
        rows.append([g, f"row {g}", str(amount), (dt.date(2024, 1, 1) + dt.timedelta(days=g)).isoformat(), flag])
    return rows


def _raw_post(base_url: str, body: dict) -> socket.socket:
    """Send ``POST /v1/query`` on a plain socket (the test decides when the client goes away)."""
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port))
    payload = json.dumps(body).encode()
    sock.sendall(b"POST /v1/query HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
    return sock


def _history_status(client: httpx.Client, query_id: str, limit_s: float = 5.0) -> str:
    deadline = time.monotonic() + limit_s
    while True:
        entries = [e for e in client.get("/v1/history").json() if e["query_id"] == query_id]
        assert len(entries) == 1, entries
        if entries[0]["status"] != "running" or time.monotonic() > deadline:
            return entries[0]["status"]
        time.sleep(0.05)


# -- streaming ----------------------------------------------------------------------------------------------

def test_json_streams_5m_rows_with_bounded_memory(client):
    """5M rows as one JSON document: the first byte comes at once, the process grows by a bounded amount, and
    the document is whole (exact size, first and last rows, row_count)."""
    client.post("/v1/query", json={"sql": "SELECT id, label FROM pg.stream.rows_5m WHERE id <= 10"})  # warm up
    before = _rss()
    head, tail, size, first_byte = b"", b"", 0, None
    with _PeakRss() as rss:
        t0 = time.perf_counter()
        with client.stream("POST", "/v1/query", json={"sql": "SELECT id, label FROM pg.stream.rows_5m",
                                                      "query_id": "big-json"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.headers["x-query-id"] == "big-json"
            for chunk in response.iter_raw():
                if first_byte is None:
                    first_byte = time.perf_counter() - t0
                head = head if len(head) >= 200 else (head + chunk)[:200]
                tail = (tail + chunk)[-200:]
                size += len(chunk)
        seconds = time.perf_counter() - t0
    growth = rss.peak - before
    print(f"\n5M rows REST JSON: first byte {first_byte:.2f} s, all {seconds:.1f} s, {size / 1e6:.0f} MB, "
          f"RSS growth {growth / 2**20:.0f} MiB")
    prefix = b'{"query_id": "big-json", "columns": [{"name": "id", "type": "int64"}, ' \
             b'{"name": "label", "type": "string"}], "rows": ['
    suffix = f'], "row_count": {BIG_ROWS}}}'.encode()
    assert head.startswith(prefix + b'[1, "row 1"], [2, "row 2"]')
    assert tail.endswith(f'[{BIG_ROWS}, "row {BIG_ROWS}"]'.encode() + suffix)
    assert size == len(prefix) + _json_bytes_of_rows(BIG_ROWS) + len(suffix)
    assert growth < RSS_BOUND, f"RSS grew by {growth / 2**20:.0f} MiB"
    assert first_byte < 10.0  # built whole, 5M rows took ~30 s to the first byte


def test_json_document_is_json_dumps_of_the_whole_result(client):
    """Streamed in several chunks, the document is byte for byte ``json.dumps`` of the whole document, with
    every value encoded as before (decimals as strings, dates ISO-8601, NULLs, booleans)."""
    response = client.post("/v1/query", json={"sql": "SELECT * FROM pg.stream.sample ORDER BY id",
                                              "query_id": "sample-json"})
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    document = response.json()
    assert list(document) == ["query_id", "columns", "rows", "row_count"]
    assert document["query_id"] == response.headers["x-query-id"] == "sample-json"
    assert [c["name"] for c in document["columns"]] == ["id", "label", "amount", "day", "flag"]
    assert document["rows"] == _sample_rows()
    assert document["row_count"] == SAMPLE_ROWS
    assert response.content == json.dumps(document).encode()


def test_ndjson_is_a_header_line_a_line_per_row_and_a_row_count_line(client):
    response = client.post("/v1/query", json={"sql": "SELECT * FROM pg.stream.sample ORDER BY id",
                                              "format": "ndjson", "query_id": "sample-ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text.endswith("\n")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert list(lines[0]) == ["query_id", "columns"] and lines[0]["query_id"] == "sample-ndjson"
    assert [c["name"] for c in lines[0]["columns"]] == ["id", "label", "amount", "day", "flag"]
    assert lines[1:-1] == _sample_rows()
    assert lines[-1] == {"row_count": SAMPLE_ROWS}


def test_empty_result_in_every_format(client):
    sql = "SELECT id, label FROM pg.stream.sample WHERE id < 0"
    document = client.post("/v1/query", json={"sql": sql, "query_id": "empty"}).json()
    assert document == {"query_id": "empty", "columns": [{"name": "id", "type": "int32"},
                                                          {"name": "label", "type": "string"}],
                        "rows": [], "row_count": 0}
    lines = client.post("/v1/query", json={"sql": sql, "format": "ndjson"}).text.splitlines()
    assert [json.loads(line) for line in lines][1:] == [{"row_count": 0}]
    arrow = client.post("/v1/query", json={"sql": sql, "format": "arrow"})
    assert pa.ipc.open_stream(arrow.content).read_all().num_rows == 0


@pytest.mark.parametrize("fmt", ["json", "ndjson", "arrow"])
def test_error_before_the_first_row_keeps_its_status(client, fmt):
    """A source failing on the query's values before any row: 400 invalid_query in the one error shape."""
    response = client.post("/v1/query", json={"sql": "SELECT 1 / (id - 1) AS q FROM pg.stream.sample",
                                              "format": fmt})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "invalid_query"


@pytest.mark.parametrize("fmt", ["json", "ndjson", "arrow"])
def test_error_after_the_first_row_ends_the_stream(client, fmt):
    """The source fails after rows were sent (status 200 is out): JSON ends with an error member and does not
    parse; NDJSON's last line is the error instead of the row count; an Arrow stream is cut off."""
    body = {"sql": "SELECT id, pad, q FROM pg.stream.fails_late", "format": fmt}
    if fmt == "arrow":
        with client.stream("POST", "/v1/query", json=body) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                response.read()
        return
    response = client.post("/v1/query", json=body)
    assert response.status_code == 200
    text = response.text
    if fmt == "json":
        assert text.startswith('{"query_id": ')
        head, error = text.rsplit('], "error": ', 1)
        assert json.loads(error)["code"] == "invalid_query"
        rows = json.loads(head + "]}")["rows"]  # the rows sent before the error are whole
        assert len(rows) >= 1 and [r[0] for r in rows] == list(range(1, len(rows) + 1))
        assert '"row_count"' not in text
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
    else:
        lines = text.splitlines()
        assert json.loads(lines[-1])["error"]["code"] == "invalid_query"
        rows = [json.loads(line) for line in lines[1:-1]]
        assert len(rows) >= 1 and [r[0] for r in rows] == list(range(1, len(rows) + 1))
        assert all("row_count" not in line for line in lines)


# -- a client that goes away ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "arrow"])
def test_disconnect_before_the_first_row_cancels_the_source_statement(base_url, client, slow, fmt):
    query_id = f"gone-early-{fmt}"
    sock = _raw_post(base_url, {"sql": SLOW, "format": fmt, "query_id": query_id})
    slow.running()
    sock.close()
    latency = slow.gone()
    print(f"\ndisconnect before the first row ({fmt}): source statement ended after {latency} s")
    assert latency is not None and latency < CANCEL_BOUND_S
    assert _history_status(client, query_id) == "cancelled"


@pytest.mark.parametrize("fmt", ["json", "ndjson", "arrow"])
def test_disconnect_while_streaming_cancels_the_source_statement(base_url, client, slow, fmt):
    query_id = f"gone-streaming-{fmt}"
    sock = _raw_post(base_url, {"sql": SLOW_STREAM, "format": fmt, "query_id": query_id})
    received = b""
    while len(received) < 1 << 20:  # rows are streaming
        data = sock.recv(1 << 16)
        assert data, "the server closed the connection"
        received += data
    assert received.startswith(b"HTTP/1.1 200 OK")
    slow.running()  # the source sleeps in the middle of its rows
    sock.close()
    latency = slow.gone()
    print(f"\ndisconnect while streaming ({fmt}): source statement ended after {latency} s")
    assert latency is not None and latency < CANCEL_BOUND_S
    assert _history_status(client, query_id) == "cancelled"


# -- DELETE /v1/queries/{id} ------------------------------------------------------------------------------

def test_delete_cancels_a_query_waiting_for_its_first_row(base_url, client, slow):
    answer: dict = {}

    def run() -> None:
        with httpx.Client(base_url=base_url, timeout=120) as own:
            answer["response"] = own.post("/v1/query", json={"sql": SLOW, "query_id": "wait-then-delete"})

    thread = threading.Thread(target=run)
    thread.start()
    slow.running()
    t0 = time.monotonic()
    deleted = client.delete("/v1/queries/wait-then-delete")
    latency = None if slow.gone() is None else time.monotonic() - t0
    thread.join(10)
    print(f"\nDELETE before the first row: source statement ended {latency} s after the DELETE was sent")
    assert deleted.status_code == 200
    assert deleted.json() == {"query_id": "wait-then-delete", "status": "cancelled"}
    assert latency is not None and latency < CANCEL_BOUND_S
    response = answer["response"]
    assert response.status_code == 499
    assert response.json()["error"]["code"] == "cancelled"
    assert _history_status(client, "wait-then-delete") == "cancelled"
    assert client.delete("/v1/queries/wait-then-delete").status_code == 404  # it ended


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_delete_while_streaming_ends_the_stream_with_the_error(client, slow, fmt):
    query_id = f"streaming-then-delete-{fmt}"
    with client.stream("POST", "/v1/query", json={"sql": SLOW_STREAM, "format": fmt,
                                                  "query_id": query_id}) as response:
        assert response.status_code == 200
        assert response.headers["x-query-id"] == query_id
        chunks = response.iter_raw()
        received = next(chunks)
        slow.running()
        deleted = client.delete(f"/v1/queries/{query_id}")
        # "cancelling" when the stream cannot end yet: this client has not read the rows sent before
        assert deleted.status_code == 200 and deleted.json()["status"] in ("cancelled", "cancelling")
        assert slow.gone(CANCEL_BOUND_S) is not None  # the source statement ended all the same
        for chunk in chunks:
            received += chunk
    text = received.decode()
    if fmt == "json":
        error = json.loads(text.rsplit('], "error": ', 1)[1])
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
    else:
        error = json.loads(text.splitlines()[-1])["error"]
    assert error["code"] == "cancelled"
    assert _history_status(client, query_id) == "cancelled"


def test_delete_unknown_query_is_404(client):
    response = client.delete("/v1/queries/no-such-query")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_object" and error["name"] == "no-such-query"
    assert error["message"] == "unknown query 'no-such-query'"


def test_query_id_of_a_running_query_is_refused(base_url, client, slow):
    answer: dict = {}

    def run() -> None:
        with httpx.Client(base_url=base_url, timeout=120) as own:
            answer["response"] = own.post("/v1/query", json={"sql": SLOW, "query_id": "taken"})

    thread = threading.Thread(target=run)
    thread.start()
    slow.running()
    again = client.post("/v1/query", json={"sql": "SELECT 1 AS one", "query_id": "taken"})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invalid_request"
    assert client.delete("/v1/queries/taken").status_code == 200
    thread.join(10)
    assert answer["response"].status_code == 499
    bad = client.post("/v1/query", json={"sql": "SELECT 1 AS one", "query_id": "no spaces/or slashes"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"


def test_delete_another_users_query_is_403(pg_database, tmp_path, slow):
    gateway = QueryEngine(settings_from_dict({
        "sources": [{"name": "pg", "kind": "postgresql", "uri": pg_database}],
        "auth": {"enabled": True, "users": [{"name": "alice", "password": "alice-secret-pw"},
                                            {"name": "bob", "password": "bob-secret-pw"}]},
    }, base_dir=tmp_path))
    alice, bob = ("alice", "alice-secret-pw"), ("bob", "bob-secret-pw")
    try:
        with running_app(create_app(gateway)) as url, httpx.Client(base_url=url, timeout=120) as client:
            answer: dict = {}

            def run() -> None:
                with httpx.Client(base_url=url, timeout=120, auth=alice) as own:
                    answer["response"] = own.post("/v1/query", json={"sql": SLOW, "query_id": "alices"})

            thread = threading.Thread(target=run)
            thread.start()
            slow.running()
            refused = client.delete("/v1/queries/alices", auth=bob)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "permission_denied"
            assert client.delete("/v1/queries/alices").status_code == 401  # no credentials
            assert client.delete("/v1/queries/alices", auth=alice).json()["status"] == "cancelled"
            thread.join(10)
            assert answer["response"].status_code == 499
            assert slow.gone() is not None
    finally:
        gateway.close()
