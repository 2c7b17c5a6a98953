"""The REST API (FastAPI): ``app.create_app`` wires the routers of this package, the lifespan and the error
handlers.

Routers by area: ``queries`` (``POST /v1/query``, ``DELETE /v1/queries/{query_id}``, ``POST /v1/explain``,
``GET /v1/history``), ``catalog`` (``GET /v1/sources``, ``GET /v1/sources/{source}/tables``), ``cache``
(``GET``/``DELETE /v1/cache``, ``POST /v1/cache/warm``), ``health`` (``GET /healthz``, ``GET /readyz``, ``GET
/metrics``), ``tokens`` (``POST /v1/auth/token``). ``streaming`` encodes results (JSON, NDJSON, Arrow IPC) as
they stream; ``errors`` maps every error to the one body shape; ``deps`` holds the request dependencies (the
caller, the engine).
"""

from gateway.api.app import create_app

__all__ = ["create_app"]
