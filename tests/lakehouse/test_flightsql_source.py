"""A remote Flight SQL source (``kind = "flightsql"``): a second gateway process serving the demo, federated by
this one with a join against PostgreSQL; the SQL sent shows in EXPLAIN; when the remote goes down its queries
fail with ``source_unavailable`` naming it, and queries on the other sources still run."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from gateway.errors import SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.demo_support import free_port, orders_dataset, wait_for_health


def _gateway_command() -> list[str]:
    script = Path(sys.executable).with_name("gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


def _start(demo_config, folder: Path) -> tuple[subprocess.Popen, int, Path]:
    """``gateway serve`` on free ports, answering /healthz: (process, Flight port, log). A second try on other
    ports when the first dies (another process may take a port between free_port() and the bind)."""
    for attempt in range(2):
        flight_port, http_port = free_port(), free_port()
        while http_port == flight_port:
            http_port = free_port()
        log_path = folder / f"serve-{attempt}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen([*_gateway_command(), "serve", "--config", str(demo_config), "--flight-port",
                                        str(flight_port), "--http-port", str(http_port)], stdout=subprocess.DEVNULL,
                                       stderr=log)
        try:
            wait_for_health(f"http://127.0.0.1:{http_port}", 60.0, alive=lambda p=process: p.poll() is None)
            return process, flight_port, log_path
        except RuntimeError as exc:
            if attempt:
                raise RuntimeError(f"{exc}; its log ends: {log_path.read_text()[-2000:]}") from exc
        except TimeoutError:
            _stop(process)
            raise
    raise AssertionError("unreachable")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def remote(demo_config, tmp_path_factory):
    """A second gateway process serving the demo; yields its grpc:// URI and the process."""
    process, flight_port, _ = _start(demo_config, tmp_path_factory.mktemp("remote"))
    try:
        yield f"grpc://127.0.0.1:{flight_port}", process
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def regions(pg_database):
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS remote_years (year int PRIMARY KEY, label text)")
        cur.execute("INSERT INTO remote_years VALUES (2022, 'old'), (2023, 'recent') ON CONFLICT DO NOTHING")
    return pg_database


def test_federates_another_gateway(remote, regions, demo_config, tmp_path):
    uri, process = remote
    raw = {"sources": [{"name": "up", "kind": "flightsql", "uri": uri},
                       {"name": "pg", "kind": "postgresql", "uri": regions}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    try:
        _federate(engine, process, demo_config)
    finally:
        engine.close()


def _federate(engine: QueryEngine, process: subprocess.Popen, demo_config: Path) -> None:
    conn = engine.catalog.connector("up")
    assert {"demo_lake.main", "demo_db.main"} <= set(conn.list_schemas())
    assert "orders" in conn.list_tables("demo_lake.main")

    sql = ('SELECT y.label, COUNT(*) AS n FROM up."demo_lake.main".orders o JOIN pg.public.remote_years y '
           "ON o.year = y.year WHERE o.year >= 2022 GROUP BY y.label ORDER BY 1")
    explain = engine.explain(sql)
    assert "source 'up'" in explain and 'FROM "demo_lake"."main"."orders"' in explain
    assert '"year" >= 2022' in explain.split("source 'up'")[1].split("Fragment")[0]  # the filter is sent
    orders = orders_dataset(demo_config)
    expected = [{"label": "old", "n": orders.count_rows(filter=ds.field("year") == 2022)},
                {"label": "recent", "n": orders.count_rows(filter=ds.field("year") == 2023)}]
    assert engine.execute(sql).reader.read_all().to_pylist() == expected

    # the remote goes down: its queries are source_unavailable, the others still run
    process.send_signal(signal.SIGINT)
    process.wait(timeout=15)
    conn.close()
    with pytest.raises(SourceUnavailableError, match="source 'up' is unavailable: the Flight SQL server cannot"):
        engine.execute('SELECT COUNT(*) AS n FROM up."demo_lake.main".orders').reader.read_all()
    assert engine.execute("SELECT COUNT(*) AS n FROM pg.public.remote_years").reader.read_all().to_pylist() == [
        {"n": 2}]
