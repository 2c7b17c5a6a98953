"""Run the gateway process: the Flight SQL server on a thread, the REST app (uvicorn) on the main thread."""

from __future__ import annotations

import logging
import threading

import uvicorn

from gateway.auth import Authenticator
from gateway.engine import Gateway
from gateway.rest import create_app
from gateway.settings import Settings

log = logging.getLogger("gateway.server")


def start_flight(gateway: Gateway, authenticator: Authenticator, host: str, port: int):
    """Start the Flight SQL server (it listens once constructed) and serve it on a daemon thread."""
    from flight_server.server import GatewayFlightServer, location_uri

    server = GatewayFlightServer(gateway, location_uri(host, port), authenticator)
    threading.Thread(target=server.serve, name="flight-sql", daemon=True).start()
    return server


def _probe_sources(gateway: Gateway) -> None:
    """Log, once at start, which sources answer; an unreachable one is served as unavailable, not fatal."""
    from gateway.errors import GatewayError

    for source in gateway.catalog.list_sources():
        try:
            schemas = gateway.catalog.list_schemas(source)
            log.info("source ready", extra={"source": source, "schemas": len(schemas)})
        except GatewayError as exc:
            log.warning("source unavailable at start", extra={"source": source, "error": exc.message})


def run(settings: Settings) -> None:
    """Serve until interrupted. Logs the addresses both servers listen on."""
    gateway = Gateway(settings)
    authenticator = Authenticator(settings.auth)
    cfg = settings.server
    flight = start_flight(gateway, authenticator, cfg.host, cfg.flight_port)
    log.info("Flight SQL server listening", extra={"uri": f"grpc://{cfg.host}:{flight.port}"})
    log.info("REST API listening", extra={"url": f"http://{cfg.host}:{cfg.http_port}", "docs": "/docs"})
    log.info("sources registered", extra={"sources": gateway.catalog.list_sources()})
    threading.Thread(target=_probe_sources, args=(gateway,), name="source-probe", daemon=True).start()
    app = create_app(gateway, authenticator)
    try:
        uvicorn.run(app, host=cfg.host, port=cfg.http_port, log_config=None, access_log=False)
    finally:
        flight.shutdown()
        gateway.close()
