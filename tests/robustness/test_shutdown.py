"""Stopping ``gateway serve`` (SIGTERM) cancels the queries still running and exits within a few seconds with
code 0. Issue: the shutdown waited for REST clients (~31 s with a slow query: until its time limit), and the
process then died of the SIGTERM uvicorn raised again (exit -15) before its cleanup.

Each test starts a real ``gateway serve`` subprocess on free ports with a config whose PostgreSQL source has
a view that sleeps 60 s (``bi.slow``) or sends rows and then sleeps (``bi.slow_stream``); the source
statements are watched in ``pg_stat_activity``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import httpx
import pytest

from tests.demo_support import free_port, wait_for_health
from tests.flight_support import setup_pg
from tests.robustness.test_rest_streaming import SLOW, SLOW_STREAM, VIEWS, SlowStatements
from tests.test_cli import cli_env, gateway_command

#: seconds from SIGTERM to the process's exit
EXIT_BOUND_S = 5.0


@pytest.fixture(scope="module")
def config(pg_database, tmp_path_factory) -> Path:
    setup_pg(pg_database)
    with pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cur:
        for sql in VIEWS:
            if "slow" in sql or "SCHEMA" in sql:
                cur.execute(sql)
    path = tmp_path_factory.mktemp("shutdown") / "gateway.toml"
    path.write_text(f'[server]\nhost = "127.0.0.1"\n\n[[sources]]\nname = "pg"\nkind = "postgresql"\n'
                    f'uri = "{pg_database}"\n')
    return path


@pytest.fixture
def slow(pg_server, pg_database) -> SlowStatements:
    statements = SlowStatements(pg_server, pg_database.rsplit("/", 1)[1])
    assert statements.gone() is not None, "slow statements of an earlier test still run"
    return statements


@pytest.fixture
def serve(config, tmp_path):
    """A running ``gateway serve``: (process, REST base URL, Flight SQL URI, log file). Killed if still alive."""
    flight_port, http_port = free_port(), free_port()
    while http_port == flight_port:
        http_port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*gateway_command(), "serve", "--config", str(config), "--flight-port", str(flight_port),
             "--http-port", str(http_port)], stdout=subprocess.DEVNULL, stderr=log, env=cli_env())
    try:
        base_url = f"http://127.0.0.1:{http_port}"
        wait_for_health(base_url, 30.0, alive=lambda: process.poll() is None)
        yield process, base_url, f"grpc://127.0.0.1:{flight_port}", log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _terminate(process: subprocess.Popen) -> tuple[int | None, float]:
    """SIGTERM; (exit code or None if still running after 30 s, seconds until the exit)."""
    t0 = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - t0


def _in_thread(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = target()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _log_errors(log_path: Path) -> list[dict]:
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    return [e for e in entries if e["level"] in ("error", "critical")]


def test_sigterm_cancels_a_rest_query_waiting_for_its_first_row(serve, slow):
    process, base_url, _, log_path = serve
    thread, outcome = _in_thread(lambda: httpx.post(f"{base_url}/v1/query", json={"sql": SLOW}, timeout=120))
    slow.running()
    code, seconds = _terminate(process)
    print(f"\nSIGTERM with a REST query waiting for its first row: exit {code} after {seconds:.2f} s")
    assert code == 0
    assert seconds < EXIT_BOUND_S
    assert slow.gone(1.0) is not None  # its statement ended with the process
    thread.join(5)
    response = outcome["value"]
    assert response.status_code == 499 and response.json()["error"]["code"] == "cancelled"
    assert _log_errors(log_path) == []


def test_sigterm_cancels_a_streaming_rest_query(serve, slow):
    """A client in the middle of a streamed result: its stream ends with the cancellation, and the process
    exits promptly."""
    process, base_url, _, _ = serve

    def read() -> str:
        with httpx.stream("POST", f"{base_url}/v1/query", json={"sql": SLOW_STREAM, "format": "ndjson"},
                          timeout=120) as response:
            return "".join(response.iter_text())

    thread, outcome = _in_thread(read)
    slow.running()  # rows were sent; the source sleeps in the middle of them
    code, seconds = _terminate(process)
    print(f"\nSIGTERM with a streaming REST query: exit {code} after {seconds:.2f} s")
    assert code == 0
    assert seconds < EXIT_BOUND_S
    assert slow.gone(1.0) is not None
    thread.join(5)
    assert json.loads(outcome["value"].splitlines()[-1])["error"]["code"] == "cancelled"


def test_sigterm_cancels_a_flight_sql_query(serve, slow):
    """The Flight SQL client runs in its own process (the ADBC driver's cursor, failed by the vanished server,
    complains when collected: noise that is not the gateway's)."""
    process, _, flight_uri, _ = serve
    client = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gateway.client import connect; "
         f"conn = connect({flight_uri!r}); conn.query({SLOW!r}); print('rows')"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        slow.running()
        code, seconds = _terminate(process)
        print(f"\nSIGTERM with a Flight SQL query: exit {code} after {seconds:.2f} s")
        assert code == 0
        assert seconds < EXIT_BOUND_S
        assert slow.gone(1.0) is not None
        out, _ = client.communicate(timeout=10)
        assert client.returncode != 0 and "rows" not in out  # the query failed instead of answering
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(5)


def test_sigterm_when_idle_exits_at_once(serve):
    process, base_url, _, log_path = serve
    assert httpx.post(f"{base_url}/v1/query", json={"sql": "SELECT 1 AS one"}, timeout=30).json()["rows"] == [[1]]
    code, seconds = _terminate(process)
    assert code == 0
    assert seconds < 2.0
    assert _log_errors(log_path) == []
