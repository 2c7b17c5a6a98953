"""The REST app: ``create_app`` wires the routers, the lifespan and the error handlers; nothing else.

Every error answers one body shape (``gateway.api.errors``); results stream in every format
(``gateway.api.streaming``); OpenAPI at ``/docs``.
"""

from __future__ import annotations

import contextlib

from fastapi import FastAPI

from gateway.api import cache, catalog, console, errors, health, queries, tokens, trust
from gateway.api.running import RunningQueries
from gateway.auth import Authenticator
from gateway.execution.engine import QueryEngine

ROUTERS = (tokens.router, health.router, queries.router, cache.router, catalog.router, console.router,
           trust.router)


def create_app(gateway: QueryEngine, authenticator: Authenticator | None = None) -> FastAPI:
    """The REST app over ``gateway``. Errors answer ``{"error": {code, message, phase, ...}}`` with the
    status each ``GatewayError`` class carries (``gateway.api.errors``). ``app.state.running_queries`` are
    the queries it runs: the composition root cancels them all as the server shuts down, as does the
    lifespan's end."""
    running = RunningQueries()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        running.close()

    # /docs and /redoc come from gateway.api.console, from local assets (FastAPI's own load them from a CDN)
    app = FastAPI(title="Federated SQL gateway", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine = gateway
    app.state.authenticator = authenticator or Authenticator(gateway.settings.auth)
    app.state.running_queries = running
    app.state.readiness = health.Readiness(gateway, health.READINESS_TIMEOUT_S)
    errors.install(app)
    for router in ROUTERS:
        # every route documents the error statuses any request may get; routers add their own
        app.include_router(router, responses=errors.error_responses())
    return app
