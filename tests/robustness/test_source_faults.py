"""A source that restarts, stops or stalls: the gateway heals its pooled connections, reports the source as
unavailable (503 / UNAVAILABLE, which clients retry), bounds a stalled source by the query's time limit, and
keeps serving the other sources. Each test owns a throwaway PostgreSQL server (never the shared one)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import pytest

from gateway.errors import QueryTimeoutError, SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.conftest import IN_CI, _throwaway_postgres


@pytest.fixture
def own_postgres():
    """(uri, pg_ctl runner, data dir) of a throwaway PostgreSQL with table ``t`` (1,000 rows). Its folder is
    directly under the system temp dir: the server runs as user postgres, who cannot enter pytest's folders."""
    tmp_path = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
    started = _throwaway_postgres(tmp_path)
    if started is None:
        if IN_CI:
            pytest.fail("no PostgreSQL server binaries to start a throwaway server", pytrace=False)
        pytest.skip("no PostgreSQL server binaries")
    uri, stop = started
    for _ in range(50):
        try:
            with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE t AS SELECT g AS id, g % 7 AS k FROM generate_series(1, 1000) g")
                # the start options into the server's own config, so that pg_ctl start/restart keep them
                for setting in ("port", "listen_addresses", "unix_socket_directories"):
                    cur.execute(f"SELECT current_setting('{setting}')")
                    value = cur.fetchone()[0]
                    cur.execute(f"ALTER SYSTEM SET {setting} = '{value}'")
            break
        except Exception:
            time.sleep(0.2)
    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]).parent
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = tmp_path / "pgdata"

    def pg_ctl(*args: str) -> None:
        # the server's output to a file: a server started here must not hold this call's pipes open
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(tmp_path / "pg.log"),
                        *args], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)

    yield uri, pg_ctl, data
    try:
        os.kill(_postmaster_pid(data), signal.SIGCONT)
    except (OSError, ValueError):
        pass
    stop()
    shutil.rmtree(tmp_path, ignore_errors=True)


def _postmaster_pid(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().splitlines()[0])


def _gateway(uri: str, files) -> QueryEngine:
    return QueryEngine(settings_from_dict({"sources": [
        {"name": "own", "kind": "postgresql", "uri": uri, "pool_size": 4},
        {"name": "lake", "kind": "parquet", "path": str(files["lake"])},
    ]}, base_dir=files["root"]))


COUNT = "SELECT count(*) AS n FROM own.public.t"


def _count(gateway: QueryEngine, sql: str = COUNT, **kwargs) -> int:
    return gateway.execute(sql, **kwargs).reader.read_all().column(0)[0].as_py()


def test_restart_heals_pooled_connections(own_postgres, files):
    uri, pg_ctl, _ = own_postgres
    gateway = _gateway(uri, files)
    try:
        # fill the pool with several idle connections
        results = [gateway.execute(f"SELECT id FROM own.public.t WHERE k = {k}") for k in range(4)]
        assert sum(r.reader.read_all().num_rows for r in results) > 0
        pg_ctl("-m", "fast", "restart")
        # every pooled connection is dead now; each query still succeeds (retried once on a new connection)
        for _ in range(6):
            assert _count(gateway) == 1000
    finally:
        gateway.close()


def test_stopped_server_is_unavailable_and_other_sources_answer(own_postgres, files):
    uri, pg_ctl, _ = own_postgres
    gateway = _gateway(uri, files)
    try:
        assert _count(gateway) == 1000
        pg_ctl("-m", "fast", "stop")
        with pytest.raises(SourceUnavailableError) as info:
            _count(gateway)
        assert info.value.http_status == 503 and info.value.source == "own"
        assert _count(gateway, "SELECT count(*) FROM lake.orders") > 0
        pg_ctl("start")
        assert _count(gateway) == 1000
    finally:
        gateway.close()


def test_stalled_server_is_bounded_by_the_time_limit(own_postgres, files):
    uri, _, data = own_postgres
    gateway = _gateway(uri, files)
    try:
        assert _count(gateway) == 1000
        os.kill(_postmaster_pid(data), signal.SIGSTOP)  # the postmaster stops answering new connections
        # backends too: stop every process of the cluster
        backends = subprocess.run(["pgrep", "-P", str(_postmaster_pid(data))], capture_output=True, text=True)
        pids = [int(p) for p in backends.stdout.split()]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.perf_counter()
            with pytest.raises((QueryTimeoutError, SourceUnavailableError)):
                _count(gateway, timeout_s=2)
            assert time.perf_counter() - t0 < 8.0
            # other sources answer meanwhile
            assert _count(gateway, "SELECT count(*) FROM lake.orders", timeout_s=10) > 0
        finally:
            for pid in [_postmaster_pid(data), *pids]:
                os.kill(pid, signal.SIGCONT)
        assert _count(gateway, timeout_s=20) == 1000
    finally:
        gateway.close()
