"""Shared fixtures, one definition each: the servers (``pg_server``, ``mysql_server``), the one data world of
``tests/world.py`` loaded by ``tests/sources.py`` into one PostgreSQL database, one MariaDB database, one SQLite
file, one Parquet and one CSV folder per session (``world_root``, each kind on first use: ``pg_database``,
``mysql_database``, ``files``; ``world`` with all of them), the federation tests' view of it
(``federated_settings``, ``reference``, ``gateway``), TPC-H in the same databases (``tpch_world``), the demo world
(``demo_config``: one copy of the demo config and data per session, read by every test that serves the demo;
``base_url``/``client``: it behind the REST app) and a real Flight SQL server (``served``/``uri``/``raw`` over
the ``flight_settings`` a module defines).

PostgreSQL: ``GATEWAY_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``). When it does not
answer and CI is not set, a throwaway server is started from the local PostgreSQL binaries if they exist;
otherwise the run stops with one message saying what to install. With ``CI=true`` a missing server fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pyarrow import flight

from gateway.settings import load_settings
from tests import tpch
from tests.demo_support import free_port, serving_rest, write_demo_config
from tests.flight_support import serve
from tests.sources import World
from tests.sources import mysql_params as _mysql_params
from tests.sources import with_database as _with_database  # noqa: F401  (bench/ and tests import it from here)
from tests.world import GATEWAY_NAMES, LOCAL_NAMES, reference_tables

PG_URI = os.environ.get("GATEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URI = os.environ.get("GATEWAY_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TPCH_SCALE_FACTOR = 0.01


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
def world_root(tmp_path_factory) -> Iterator[World]:
    """The session's one data world (``tests/world.py``), each source kind loaded on first use: the databases
    by ``pg_database`` and ``mysql_database``, the files by ``files``. Its databases are dropped at the end."""
    placed = World(root=tmp_path_factory.mktemp("world"))
    yield placed
    placed.close()


@pytest.fixture(scope="session")
def pg_database(pg_server, world_root) -> str:
    """The world's PostgreSQL database (a fresh one per session; schemas ``crm``, ``cf``, ``fz``)."""
    return world_root.postgres(pg_server)


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
def mysql_database(mysql_server, world_root) -> str:
    """The world's MariaDB/MySQL database (a fresh one per session, named as the PostgreSQL one)."""
    return world_root.mysql(mysql_server)


@pytest.fixture(scope="session")
def files(world_root) -> dict[str, Path]:
    """The world's files: ``lake`` (the Parquet folder), ``sqlite`` (the SQLite file), ``csv`` and ``root``."""
    placed = world_root.files()
    return {"lake": placed["parquet"], "sqlite": placed["sqlite"], "csv": placed["csv"], "root": placed["root"]}


@pytest.fixture(scope="session")
def world(world_root, pg_database, mysql_database, files) -> World:
    """The world with every database and file source loaded (``world.settings()``: the five sources)."""
    return world_root


@pytest.fixture(scope="session")
def federated_settings(pg_database, mysql_database, files):
    """The federation tests' four sources: ``pg``, ``lake`` (the Parquet folder), ``shop`` (the SQLite file) and
    ``maria``."""
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
    """Runs SQL (with ``{table}`` placeholders) in DataFusion over the federation tables loaded locally."""
    import pyarrow as pa
    from datafusion import SessionContext

    ctx = SessionContext()
    for name, table in reference_tables().items():
        ctx.register_record_batches(name, [table.to_batches()])

    def run(sql: str) -> pa.Table:
        return ctx.sql(sql.format(**LOCAL_NAMES)).to_arrow_table()

    return run


@pytest.fixture(scope="session")
def gateway(federated_settings, mysql_database):
    from gateway.execution.engine import QueryEngine

    # MariaDB's schema is the test database, whose name is made per run
    GATEWAY_NAMES["shipments"] = f"maria.{mysql_database.rsplit('/', 1)[1]}.shipments"
    gw = QueryEngine(federated_settings)
    yield gw
    gw.close()


@pytest.fixture(scope="session")
def tpch_world(world_root, pg_database, mysql_database):
    """TPC-H (``tests/tpch.py``, scale factor 0.01, its own data) in the world's databases and a Parquet
    folder of its own: ``{"settings", "reference", "queries", "names", "pg_uri", "maria_database"}``: the three
    sources' settings (``pg``, ``maria``, ``lake``), a DataFusion context over the same tables loaded locally,
    the 22 query texts, ``{table: qualified gateway name}``, and where the two databases are."""
    from datafusion import SessionContext

    from gateway.settings import settings_from_dict

    tables, queries = tpch.generate(TPCH_SCALE_FACTOR)
    tpch.load_postgres(pg_database, tables)
    tpch.load_mysql(_mysql_params(mysql_database), world_root.database, tables)
    lake = tpch.write_parquet(world_root.root / "tpch_lake", tables)
    settings = settings_from_dict({"sources": [
        {"name": "pg", "kind": "postgresql", "uri": pg_database},
        {"name": "maria", "kind": "mysql", "uri": mysql_database},
        {"name": "lake", "kind": "parquet", "path": str(lake)},
    ]}, base_dir=lake)
    names = {t: {"pg": f"pg.tpch.{t}", "maria": f"maria.{world_root.database}.{t}", "lake": f"lake.main.{t}"}[s]
             for t, s in tpch.PLACEMENT.items()}
    reference = SessionContext()
    for name, table in tables.items():
        reference.register_record_batches(name, [table.to_batches()])
    return {"settings": settings, "reference": reference, "queries": queries, "names": names,
            "pg_uri": pg_database, "maria_database": world_root.database}


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


# -- two small Parquet sources whose tables share column names ----------------------------------------------------

@pytest.fixture(scope="module")
def shared_names_engine(tmp_path_factory):
    """An engine over sources ``lake`` (tables ``a`` and ``b``) and ``other`` (table ``b``), Parquet folders of
    ``tests.parquet_sources.SHARED_NAMES_A``/``_B``: a query over ``lake`` alone runs whole in the file source,
    one over both sources as a residual plan."""
    import pyarrow as pa

    from tests.parquet_sources import SHARED_NAMES_A, SHARED_NAMES_B, parquet_engine

    a, b = pa.table(SHARED_NAMES_A), pa.table(SHARED_NAMES_B)
    engine = parquet_engine(tmp_path_factory, {"lake": {"a": a, "b": b}, "other": {"b": b}})
    yield engine
    engine.close()
