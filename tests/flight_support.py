"""Shared by the Flight SQL tests: a real GatewayFlightServer on a free loopback port, a PostgreSQL database
with keys and a slow view, and pg_stat_activity probes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import adbc_driver_postgresql.dbapi as pg

from flight_server.server import GatewayFlightServer
from gateway.auth import Authenticator
from gateway.execution.engine import QueryEngine

# PostgreSQL objects the BI tests add to the session's test database (schema bi)
PG_SETUP = [
    "CREATE SCHEMA IF NOT EXISTS bi",
    "CREATE TABLE IF NOT EXISTS bi.parent (a int, b int, label text, PRIMARY KEY (a, b))",
    "CREATE TABLE IF NOT EXISTS bi.child (id int PRIMARY KEY, pa int, pb int, note text, "
    "CONSTRAINT child_parent_fk FOREIGN KEY (pa, pb) REFERENCES bi.parent (a, b) ON DELETE CASCADE)",
    "CREATE TABLE IF NOT EXISTS bi.grandchild (id int PRIMARY KEY, child_id int "
    "CONSTRAINT grandchild_child_fk REFERENCES bi.child (id) ON UPDATE SET NULL)",
    # a query on this view keeps its backend busy for 60 s unless cancelled
    "CREATE OR REPLACE VIEW bi.slow AS SELECT 1 AS s FROM pg_sleep(60)",
]


def setup_pg(uri: str) -> None:
    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        for sql in PG_SETUP:
            cur.execute(sql)


def slow_backends(admin_uri: str, database: str) -> list[tuple]:
    """(pid, state, query) of backends of ``database`` whose query reads a slow view, as a fragment names it
    (``"bi"."slow"``, ``"bi"."slow_stream"``). The catalog's statistics query about the view (``relname =
    'slow'``) is no read of it, and it may sit idle on a pooled connection."""
    with pg.connect(admin_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT pid, state, query FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%"bi"."slow%' """
            "AND pid <> pg_backend_pid()", parameters=(database,))
        return cur.fetchall()


@contextlib.contextmanager
def serve(settings, **server_kwargs) -> Iterator[tuple[str, GatewayFlightServer]]:
    """(uri, server) of a real Flight SQL server over ``settings`` on a free loopback port."""
    engine = QueryEngine(settings)
    tls = bool(server_kwargs.get("tls_certificates"))
    server = GatewayFlightServer(engine, f"grpc{'+tls' if tls else ''}://127.0.0.1:0",
                                 Authenticator(settings.auth), **server_kwargs)
    thread = threading.Thread(target=server.serve, name="flight-sql-test", daemon=True)
    thread.start()
    try:
        yield f"grpc{'+tls' if tls else ''}://127.0.0.1:{server.port}", server
    finally:
        server.shutdown()
        thread.join(timeout=10)
        engine.close()
