"""Health and metrics: ``GET /healthz`` (liveness), ``GET /readyz`` (every source answers), ``GET /metrics``
(Prometheus)."""

from __future__ import annotations

import logging
import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.deps import Auth, Engine, current_user
from gateway.api.errors import error_responses
from gateway.errors import GatewayError, PermissionDeniedError
from gateway.execution.engine import QueryEngine

#: seconds each source has to answer ``GET /readyz`` (all are probed at once)
READINESS_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)
router = APIRouter()


class NotReadyError(GatewayError):
    """``GET /readyz``: a source did not answer its probe (503); REST only, like ``NotAcceptableError``."""

    code = "not_ready"
    http_status = 503
    flight_kind = "unavailable"
    phase = "execution"


@router.get("/healthz")
def healthz() -> dict:
    """Liveness: the process answers. Contacts no source and names none (see ``/readyz``)."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503))
def readyz(request: Request, auth: Auth) -> JSONResponse:
    """Readiness: every source answers a metadata query within ``READINESS_TIMEOUT_S`` seconds (probed in
    parallel). 200 ``{"status": "ready"}``, or 503 in the gateway's error shape ``{"error": {"code":
    "not_ready", "message", "phase"}}``. Both carry ``sources`` (per source ``ok`` / ``unavailable`` /
    ``timeout`` and seconds; the 503 in its ``error``, its message naming the sources that failed) when auth is
    off, or for an authenticated caller (only the sources it may use). Without valid credentials no source is
    named."""
    try:
        principal, known = current_user(request), True
    except GatewayError:
        principal, known = None, False
    results = request.app.state.readiness.check()
    shown = None
    if not auth.enabled or known:
        shown = {name: r for name, r in results.items() if principal is None or principal.may_use(name)}
    if all(r["status"] == "ok" for r in results.values()):
        return JSONResponse({"status": "ready", **({"sources": shown} if shown is not None else {})})
    failed = [f"'{name}' ({r['status']})" for name, r in (shown or {}).items() if r["status"] != "ok"]
    raise NotReadyError("not ready; " + (f"sources not answering: {', '.join(failed)}" if failed
                                         else "a source does not answer"), sources=shown)


@router.get("/metrics")
def metrics(request: Request, auth: Auth, engine: Engine) -> Response:
    """Prometheus metrics. With auth on, only for a caller who may use every source (the label values
    name sources), unless ``[auth] public_metrics`` opens it."""
    if auth.enabled and not engine.settings.auth.public_metrics:
        principal = current_user(request)  # AuthenticationError (401) without valid credentials
        if principal is not None and principal.sources is not None:
            raise PermissionDeniedError(f"user '{principal.name}' may not read the metrics: they cover "
                                        "every source", user=principal.name)
    return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)


class Readiness:
    """Probes every source at once, each on its own daemon thread (a metadata query: its schemas, and the
    tables of the first), waiting at most ``timeout_s`` seconds in all. A source whose previous probe still
    runs is reported ``timeout`` without a new probe, so a hung source never piles up threads. Errors are
    logged with the source's name; the answer says only ``unavailable`` (their text may hold paths)."""

    def __init__(self, gateway: QueryEngine, timeout_s: float) -> None:
        self._gateway = gateway
        self.timeout_s = timeout_s
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def check(self) -> dict[str, dict]:
        """``{source: {"status": "ok" | "unavailable" | "timeout", "seconds": float}}`` for every source."""
        sources = self._gateway.catalog.list_sources()
        results: dict[str, dict] = {}
        started: list[threading.Thread] = []
        t0 = time.perf_counter()
        for source in sources:
            with self._lock:
                previous = self._running.get(source)
                if previous is not None and previous.is_alive():
                    continue
                thread = threading.Thread(target=self._probe, args=(source, results), daemon=True,
                                          name=f"readyz-{source}")
                self._running[source] = thread
            thread.start()
            started.append(thread)
        deadline = time.monotonic() + self.timeout_s
        for thread in started:
            thread.join(max(0.0, deadline - time.monotonic()))
        waited = round(time.perf_counter() - t0, 3)
        return {source: dict(results.get(source) or {"status": "timeout", "seconds": waited}) for source in sources}

    def _probe(self, source: str, results: dict[str, dict]) -> None:
        t0 = time.perf_counter()
        try:
            connector = self._gateway.catalog.connector(source)
            for schema in connector.list_schemas()[:1]:
                connector.list_tables(schema)
            status = "ok"
        except Exception as exc:
            log.warning("readiness probe failed", extra={"source": source, "error": str(exc)})
            status = "unavailable"
        results[source] = {"status": status, "seconds": round(time.perf_counter() - t0, 3)}
