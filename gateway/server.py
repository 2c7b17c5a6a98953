"""The composition root: settings -> connectors -> catalog -> engine -> REST app + Flight SQL server.

``build_engine(settings)`` makes the engine over a catalog of the configured sources; ``run(settings)`` serves
it: the Flight SQL server on a thread, the REST app (uvicorn) on the main thread. This is the only module that
imports both servers.

Stopping (SIGTERM or SIGINT): the REST queries still running are cancelled first (their clients are answered
``cancelled``, their source statements end), uvicorn then closes its connections (waiting at most
``GRACEFUL_SHUTDOWN_S`` seconds), every query still running in the engine (Flight SQL ones) is stopped, the
Flight SQL server is shut down (waiting at most ``FLIGHT_SHUTDOWN_S`` seconds) and ``run`` returns: the process
exits with code 0 within a few seconds, whatever its clients were doing.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator

import uvicorn

from catalog import Catalog
from flight_server.server import GatewayFlightServer, location_uri
from gateway.api import create_app
from gateway.auth import Authenticator
from gateway.execution.engine import QueryEngine
from gateway.settings import Settings, build_connectors

log = logging.getLogger("gateway.server")

#: seconds uvicorn waits for REST responses to end at shutdown (cancelled queries end well within it)
GRACEFUL_SHUTDOWN_S = 3.0
#: seconds to wait for the Flight SQL server's calls to end at shutdown (their queries were stopped)
FLIGHT_SHUTDOWN_S = 2.0
#: seconds to wait for each fragment reader thread still running at shutdown
READER_STOP_S = 1.0
#: the exit code when the REST server could not start (uvicorn's own: its port is taken, say)
STARTUP_FAILURE = 3


def build_catalog(settings: Settings) -> Catalog:
    """The catalog of the configured sources (a connector per ``[[sources]]`` entry; nothing is contacted)."""
    return Catalog(build_connectors(settings))


def build_engine(settings: Settings) -> QueryEngine:
    """settings -> connectors -> catalog -> engine."""
    return QueryEngine(settings, build_catalog(settings))


def tls_certificates(settings: Settings) -> list[tuple[bytes, bytes]]:
    """``[(cert_pem, key_pem)]`` from ``[server] tls_cert`` / ``tls_key``, or ``[]`` without TLS."""
    cfg = settings.server
    if not cfg.tls:
        return []
    with open(cfg.tls_cert, "rb") as cert, open(cfg.tls_key, "rb") as key:
        return [(cert.read(), key.read())]


def start_flight(gateway: QueryEngine, authenticator: Authenticator, host: str, port: int):
    """Start the Flight SQL server (it listens once constructed; TLS per the config) on a daemon thread."""
    certificates = tls_certificates(gateway.settings)
    server = GatewayFlightServer(gateway, location_uri(host, port, tls=bool(certificates)), authenticator,
                                 tls_certificates=certificates)
    threading.Thread(target=server.serve, name="flight-sql", daemon=True).start()
    return server


class RestServer(uvicorn.Server):
    """uvicorn's server with the gateway's stop: ``on_shutdown`` (cancel the running queries) is called as
    the shutdown begins, before uvicorn waits for the connections' responses to end; and a stop signal is
    not raised again once serving ended (uvicorn's default, which made SIGTERM kill the process before its
    cleanup and exit with -15)."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], object]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets=None) -> None:
        """Cancel the running queries, then uvicorn's own shutdown."""
        try:
            self._on_shutdown()
        except Exception as exc:  # the shutdown goes on regardless
            log.error("cancelling the running queries failed", exc_info=exc)
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM ask the server to stop (``handle_exit``) while it serves; the previous handlers
        are restored afterwards and the signal is not raised again."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT (see the module docstring). Logs the addresses both servers listen on."""
    gateway = build_engine(settings)
    authenticator = Authenticator(settings.auth)
    cfg = settings.server
    flight = start_flight(gateway, authenticator, cfg.host, cfg.flight_port)
    scheme = ("grpc+tls", "https") if cfg.tls else ("grpc", "http")
    log.info("Flight SQL server listening", extra={"uri": f"{scheme[0]}://{cfg.host}:{flight.port}"})
    log.info("REST API listening", extra={"url": f"{scheme[1]}://{cfg.host}:{cfg.http_port}", "docs": "/docs"})
    log.info("sources registered", extra={"sources": gateway.catalog.list_sources()})
    # the in-memory metadata copy: loaded now, refreshed in the background (a slow source never blocks)
    gateway.catalog.start_background_refresh(settings.catalog.refresh_interval_s)
    app = create_app(gateway, authenticator)
    queries = app.state.running_queries
    config = uvicorn.Config(app, host=cfg.host, port=cfg.http_port, log_config=None, access_log=False,
                            ssl_certfile=cfg.tls_cert, ssl_keyfile=cfg.tls_key,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    server = RestServer(config, on_shutdown=queries.close)
    try:
        server.run()
    except KeyboardInterrupt:  # a SIGINT before the server took the signals over
        pass
    finally:
        queries.close()
        gateway.catalog.stop_background_refresh()
        # the Flight SQL server stops taking calls and waits for the running ones, whose queries are stopped
        # meanwhile: gateway.close() stops the fragment readers of every query still running, then closes the
        # pooled connections
        stopper = threading.Thread(target=flight.shutdown, name="flight-sql-shutdown", daemon=True)
        stopper.start()
        gateway.close(timeout_s=READER_STOP_S)
        stopper.join(FLIGHT_SHUTDOWN_S)
        if stopper.is_alive():
            log.warning("Flight SQL calls still running at exit", extra={"waited_s": FLIGHT_SHUTDOWN_S})
    if not server.started:
        sys.exit(STARTUP_FAILURE)
