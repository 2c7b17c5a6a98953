"""Shared fixtures, one definition each: the real PostgreSQL (a database created and dropped per session), the
real MariaDB, SQLite and Parquet files, the demo world (``demo_config``: one copy of the demo config and data
per session, read by every test that serves the demo; ``base_url``/``client``: it behind the REST app) and a real Flight SQL server (``served``/``uri``/``raw``
over the ``flight_settings`` a module defines).

PostgreSQL: ``GATEWAY_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``). When it does not
answer and CI is not set, a throwaway server is started from the local PostgreSQL binaries if they exist;
otherwise the run stops with one message saying what to install. With ``CI=true`` a missing server fails.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pyarrow import flight

from gateway.settings import load_settings
from tests import dataset
from tests.demo_support import free_port, serving_rest, write_demo_config
from tests.flight_support import serve
from tests.sources import PG_DATABASE_OPTIONS, fresh_pg_database
from tests.sources import mysql_params as _mysql_params
from tests.sources import with_database as _with_database

PG_URI = os.environ.get("GATEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URI = os.environ.get("GATEWAY_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_answers(uri: str) -> bool:
    import adbc_driver_postgresql.dbapi as pg

    try:
        with pg.connect(uri) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone()[0] == 1
    except Exception:
        return False


def _throwaway_postgres(tmp: Path):
    """Start a PostgreSQL from local binaries on a free port; returns (uri, stop) or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    initdb = next((c for c in candidates if c and os.path.exists(c)), None)
    if initdb is None:
        return None
    bindir = Path(initdb).parent
    data = tmp / "pgdata"
    port = free_port()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(tmp, "postgres")
    subprocess.run([*as_user, str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust"], check=True,
                   capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(tmp / "pg.log"), "-o",
                    f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory) -> str:
    """A PostgreSQL admin URI that answers (see module docstring)."""
    if _pg_answers(PG_URI):
        yield PG_URI
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL does not answer at {PG_URI} (CI=true: .ci/run must start it)", pytrace=False)
    started = _throwaway_postgres(tmp_path_factory.mktemp("pg"))
    if started is None:
        pytest.exit(
            f"PostgreSQL does not answer at {PG_URI} and no local server binaries were found: install "
            "PostgreSQL (e.g. `apt-get install postgresql`) or set GATEWAY_TEST_PG to a server's URI",
            returncode=3,
        )
    uri, stop = started
    for _ in range(50):
        if _pg_answers(uri):
            break
        time.sleep(0.2)
    yield uri
    stop()


@pytest.fixture(scope="session")
def pg_database(pg_server) -> str:
    """A fresh database loaded with ``dataset.customers`` (schema crm); dropped at the end of the session."""
    with fresh_pg_database(pg_server, "gw_test_", PG_DATABASE_OPTIONS) as uri:
        dataset.load_postgres(uri)
        yield uri


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """A MariaDB/MySQL admin URI that answers: ``GATEWAY_TEST_MYSQL`` (default
    ``mysql://root@127.0.0.1:3306/test``). With CI=true a missing server fails the run, otherwise the run stops
    with one message saying what to install."""
    import pymysql

    try:
        pymysql.connect(**_mysql_params(MYSQL_URI)).close()
    except pymysql.Error as exc:
        message = f"MariaDB/MySQL does not answer at {MYSQL_URI}: {exc}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: .ci/run must start it)", pytrace=False)
        pytest.exit(f"{message}; install MariaDB (e.g. `apt-get install mariadb-server`) or set "
                    "GATEWAY_TEST_MYSQL", returncode=3)
    return MYSQL_URI


@pytest.fixture(scope="session")
def mysql_database(mysql_server) -> str:
    """A fresh MariaDB/MySQL database loaded with ``dataset.shipments``; dropped at the end of the session."""
    import pymysql

    params = _mysql_params(mysql_server)
    admin = pymysql.connect(autocommit=True, **params)
    name = f"gw_test_{secrets.token_hex(4)}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        dataset.load_mysql(database=name, **params)
        yield _with_database(MYSQL_URI, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> dict[str, Path]:
    """The Parquet lake and the SQLite database of the data set."""
    root = tmp_path_factory.mktemp("sources")
    lake = dataset.write_parquet(root / "lake")
    db = dataset.write_sqlite(root / "shop.db")
    return {"lake": lake, "sqlite": db, "root": root}


@pytest.fixture(scope="session")
def federated_settings(pg_database, mysql_database, files):
    from gateway.settings import settings_from_dict

    return settings_from_dict(
        {"sources": [
            {"name": "pg", "kind": "postgresql", "uri": pg_database},
            {"name": "lake", "kind": "parquet", "path": str(files["lake"])},
            {"name": "shop", "kind": "sqlite", "path": str(files["sqlite"])},
            {"name": "maria", "kind": "mysql", "uri": mysql_database},
        ]},
        base_dir=files["root"],
    )


@pytest.fixture(scope="session")
def reference():
    """Runs SQL (with ``{table}`` placeholders) in DataFusion over the data set loaded locally."""
    import pyarrow as pa
    from datafusion import SessionContext

    ctx = SessionContext()
    for name, table in dataset.reference_tables().items():
        ctx.register_record_batches(name, [table.to_batches()])

    def run(sql: str) -> pa.Table:
        return ctx.sql(sql.format(**dataset.LOCAL_NAMES)).to_arrow_table()

    return run


@pytest.fixture(scope="session")
def gateway(federated_settings, mysql_database):
    from gateway.execution.engine import QueryEngine

    # MariaDB's schema is the test database, whose name is made per run
    dataset.GATEWAY_NAMES["shipments"] = f"maria.{mysql_database.rsplit('/', 1)[1]}.shipments"
    gw = QueryEngine(federated_settings)
    yield gw
    gw.close()


# -- the demo world ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def demo_config(tmp_path_factory) -> Path:
    """``gateway.toml`` of a temp copy of the demo config, its data generated once (``demo_data/`` beside it).
    Shared by every test of the session: tests read it and never write into ``demo_data/``."""
    return write_demo_config(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def demo_folder(demo_config) -> Path:
    """The folder of ``demo_config``: ``base_dir`` for settings whose sources are ``demo_data/...``."""
    return demo_config.parent


@pytest.fixture(scope="module")
def base_url(demo_config) -> Iterator[str]:
    """The demo gateway (auth off) behind the REST app on a free port, one per module that uses it (a module
    serving other settings defines its own ``base_url``)."""
    with serving_rest(load_settings(demo_config)) as url:
        yield url


@pytest.fixture
def client(base_url) -> Iterator[httpx.Client]:
    """An HTTP client of ``base_url`` (30 s timeout)."""
    with httpx.Client(base_url=base_url, timeout=30.0) as c:
        yield c


# -- a real Flight SQL server --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(flight_settings):
    """(uri, server) of a real Flight SQL server on a free loopback port over the module's ``flight_settings``."""
    with serve(flight_settings) as pair:
        yield pair


@pytest.fixture(scope="module")
def uri(served) -> str:
    """The ``grpc://`` (or ``grpc+tls://``) URI of ``served``."""
    return served[0]


@pytest.fixture(scope="module")
def raw(uri) -> Iterator:
    """A plain ``pyarrow.flight.FlightClient`` connected to ``uri``."""
    with flight.connect(uri) as client:
        yield client
