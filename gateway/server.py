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


def tls_certificates(settings: Settings) -> list[tuple[bytes, bytes]]:
    """``[(cert_pem, key_pem)]`` from ``[server] tls_cert`` / ``tls_key``, or ``[]`` without TLS."""
    cfg = settings.server
    if not cfg.tls:
        return []
    with open(cfg.tls_cert, "rb") as cert, open(cfg.tls_key, "rb") as key:
        return [(cert.read(), key.read())]


def start_flight(gateway: Gateway, authenticator: Authenticator, host: str, port: int):
    """Start the Flight SQL server (it listens once constructed; TLS per the config) on a daemon thread."""
    from flight_server.server import GatewayFlightServer, location_uri

    certificates = tls_certificates(gateway.settings)
    server = GatewayFlightServer(gateway, location_uri(host, port, tls=bool(certificates)), authenticator,
                                 tls_certificates=certificates)
    threading.Thread(target=server.serve, name="flight-sql", daemon=True).start()
    return server


def run(settings: Settings) -> None:
    """Serve until interrupted. Logs the addresses both servers listen on."""
    gateway = Gateway(settings)
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
    try:
        uvicorn.run(app, host=cfg.host, port=cfg.http_port, log_config=None, access_log=False,
                    ssl_certfile=cfg.tls_cert, ssl_keyfile=cfg.tls_key)
    finally:
        gateway.catalog.stop_background_refresh()
        flight.shutdown()
        gateway.close()
