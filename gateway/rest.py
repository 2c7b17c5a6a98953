"""The REST API (FastAPI). This module only wires routes, auth and the error handlers.

Routes: ``POST /v1/query``, ``POST /v1/explain``, ``GET /v1/sources``, ``GET /v1/sources/{source}/tables``,
``GET /v1/history``, ``GET /healthz`` (liveness), ``GET /readyz`` (every source answers), ``GET /metrics``;
OpenAPI at ``/docs``.

Every error answers one body shape, ``{"error": {"code", "message", "phase", ...}}``, with the status its
``GatewayError`` class carries; a malformed request (FastAPI's validation, a NaN or Infinity in the JSON body)
is 400 ``invalid_request``, never a traceback.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.auth import Authenticator, Principal, allowed_sources
from gateway.engine import Gateway
from gateway.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
    UnknownObjectError,
)
from gateway.metrics import query_protocol

ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: seconds each source has to answer ``GET /readyz`` (all are probed at once)
READINESS_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)


def _current_user(request: Request) -> Principal | None:
    """The caller (Basic credentials, a bearer token or an API token); None when auth is off."""
    auth: Authenticator = request.app.state.authenticator
    return auth.user_for_header(request.headers.get("authorization"), issue_token=False,
                                client=request.client.host if request.client else None)[0]


User = Annotated[Principal | None, Depends(_current_user)]


class QueryRequest(BaseModel):
    sql: str = Field(description="One read-only query (SELECT, WITH, VALUES, set operations, EXPLAIN).")
    params: list[Any] | None = Field(default=None, description="Values for positional ? placeholders.")
    format: Literal["json", "arrow"] = "json"
    max_staleness_s: float | None = Field(
        default=None, ge=0, allow_inf_nan=False,
        description="Serve cached partitions at most this old (seconds); 0: only ones proven current.",
    )
    timeout_s: float | None = Field(
        default=None, ge=0, allow_inf_nan=False,
        description="Cancel the query after this many seconds (default: limits.query_timeout_s; 0: no limit).",
    )


class CacheWarmRequest(BaseModel):
    table: str = Field(description="source.schema.table (or any name the catalog resolves)")
    where: str | None = Field(default=None, description="SQL condition selecting the partitions to warm")


class ExplainRequest(BaseModel):
    sql: str
    params: list[Any] | None = None
    max_staleness_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    analyze: bool = False


def create_app(gateway: Gateway, authenticator: Authenticator | None = None) -> FastAPI:
    """The REST app over ``gateway``. Errors answer ``{"error": {code, message, phase, ...}}`` with the
    status each ``GatewayError`` class carries (see the handlers below)."""
    auth = authenticator or Authenticator(gateway.settings.auth)
    app = FastAPI(title="Federated SQL gateway", version="0.1.0")
    app.state.authenticator = auth
    public_metrics = gateway.settings.auth.public_metrics
    readiness = _Readiness(gateway, READINESS_TIMEOUT_S)

    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        """A ``GatewayError``: its own HTTP status and body."""
        headers = {"WWW-Authenticate": 'Basic realm="gateway", Bearer'} if exc.http_status == 401 else {}
        if "retry_after_s" in exc.details:
            headers["Retry-After"] = str(int(exc.details["retry_after_s"]))
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        """A request FastAPI could not read (bad JSON, a missing or mistyped field, NaN or Infinity where a
        number is expected): 400 ``invalid_request``, phase ``request``, in the gateway's one error shape
        (not FastAPI's 422 ``{"detail": [...]}``). ``fields`` lists each problem as ``{"field", "problem"}``;
        the offending input is not echoed (it may be large, or not JSON at all, like NaN)."""
        fields = [{"field": ".".join(str(part) for part in problem.get("loc", ())),
                   "problem": str(problem.get("msg", "invalid"))} for problem in exc.errors()]
        summary = "; ".join(f"{f['field']}: {f['problem']}" for f in fields[:5]) or "the request is malformed"
        error = InvalidRequestError(f"invalid request: {summary}", fields=fields)
        error.phase = "request"
        return JSONResponse(error.to_dict(), status_code=error.http_status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """An HTTP-level refusal (unknown route 404, wrong method 405): its status, the gateway's shape."""
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail), "phase": "request"}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    app.add_middleware(_UnexpectedErrors)

    def visible_sources(principal: Principal | None) -> list[str]:
        return [s for s in gateway.catalog.list_sources() if principal is None or principal.may_use(s)]

    @app.post("/v1/auth/token")
    def token(request: Request) -> dict:
        """Exchange Basic credentials for a bearer token (valid ``auth.token_ttl_s`` seconds)."""
        if not auth.enabled:
            return {"token": None, "expires_in_s": None, "auth": "disabled"}
        principal, issued = auth.user_for_header(request.headers.get("authorization"), issue_token=True,
                                                 client=request.client.host if request.client else None)
        if issued is None:
            raise AuthenticationError("send Basic credentials to obtain a token")
        return {"token": issued, "token_type": "Bearer", "expires_in_s": auth.ttl_s, "user": principal.name}

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness: the process answers. Contacts no source and names none (see ``/readyz``)."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        """Readiness: every source answers a metadata query within ``READINESS_TIMEOUT_S`` seconds (probed in
        parallel). 200 ``{"status": "ready"}`` or 503 ``{"status": "not_ready"}``; with ``sources`` (per
        source ``ok`` / ``unavailable`` / ``timeout`` and seconds) when auth is off, or for an authenticated
        caller (only the sources it may use). Without valid credentials no source is named."""
        try:
            principal, known = _current_user(request), True
        except GatewayError:
            principal, known = None, False
        results = readiness.check()
        ready = all(r["status"] == "ok" for r in results.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready"}
        if not auth.enabled or known:
            body["sources"] = {name: r for name, r in results.items()
                               if principal is None or principal.may_use(name)}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        """Prometheus metrics. With auth on, only for a caller who may use every source (the label values
        name sources), unless ``[auth] public_metrics`` opens it."""
        if auth.enabled and not public_metrics:
            principal = _current_user(request)  # AuthenticationError (401) without valid credentials
            if principal is not None and principal.sources is not None:
                raise PermissionDeniedError(f"user '{principal.name}' may not read the metrics: they cover "
                                            "every source", user=principal.name)
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/query", response_model=None)
    def query(body: QueryRequest, user: User) -> Response:
        """Run a query. JSON: ``{"columns": [{"name", "type"}], "rows": [[...]], "row_count", "query_id"}``
        (decimals as strings, dates ISO-8601, bytes base64). arrow: an Arrow IPC stream."""
        with query_protocol("rest"):
            result = gateway.execute(body.sql, body.params, user=user.name if user else None,
                                     max_staleness_s=body.max_staleness_s, timeout_s=body.timeout_s,
                                     allowed_sources=allowed_sources(user))
        if body.format == "arrow":
            # the first batch is read before answering, so errors up to it still get their own status
            first = _first_batch(result.reader)
            return StreamingResponse(_ipc_stream(result.reader, first), media_type=ARROW_STREAM,
                                     headers={"x-query-id": result.stats.query_id})
        table = result.reader.read_all()
        payload = {
            "query_id": result.stats.query_id,
            "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
            # by position: to_pylist's dicts would merge columns of one name (SELECT * over a join)
            "rows": [list(row) for row in zip(*(column.to_pylist() for column in table.columns), strict=True)]
            if table.num_columns else [[] for _ in range(table.num_rows)],
            "row_count": table.num_rows,
        }
        return Response(json.dumps(payload, default=_json_value), media_type="application/json")

    @app.post("/v1/explain")
    def explain(body: ExplainRequest, user: User) -> dict:
        scope = {"allowed_sources": allowed_sources(user)}
        plan = gateway.plan(body.sql, body.params, **scope)
        with query_protocol("rest"):
            text = gateway.explain(body.sql, body.params, analyze=body.analyze,
                                   max_staleness_s=body.max_staleness_s, **scope)
        return {
            "plan": text,
            "pushed_whole": plan.pushed_whole,
            "fragments": [
                {"id": f.id, "source": f.source, "sql": f.sql, "tables": f.tables, "pushed": f.pushed}
                for f in plan.fragments
            ],
            "residual_sql": plan.residual_sql,
            "not_pushed": [{"what": n.what, "reason": n.reason} for n in plan.not_pushed],
        }

    @app.get("/v1/cache")
    def cache_status(user: User) -> dict:
        """Cached partitions (source, table, partition, columns, tier, bytes, age), budgets and counters."""
        status = gateway.cache_status()
        visible = set(visible_sources(user))
        status["entries"] = [e for e in status["entries"] if e["source"] in visible]
        return status

    @app.post("/v1/cache/warm")
    def cache_warm(body: CacheWarmRequest, user: User) -> dict:
        """Fetch and cache every partition of ``table`` (``source.schema.table``), or those ``where`` selects."""
        partitions = gateway.cache_warm(body.table, body.where, allowed_sources=allowed_sources(user))
        return {"table": body.table, "partitions": partitions}

    @app.delete("/v1/cache")
    def cache_clear(user: User, source: str | None = None, table: str | None = None) -> dict:
        """Drop cached partitions: all, those of ``source``, or of ``table`` (with ``source``)."""
        limited = allowed_sources(user)
        if limited is not None and (source is None or source not in limited):
            raise UnknownObjectError("source", source or "(all)", limited)
        return {"dropped": gateway.cache_clear(source, table)}

    @app.get("/v1/sources")
    def sources(user: User) -> list[dict]:
        return [{"name": name, "kind": gateway.catalog.connector(name).kind} for name in visible_sources(user)]

    @app.get("/v1/sources/{source}/tables")
    def tables(source: str, user: User) -> list[dict]:
        if source not in visible_sources(user):
            raise UnknownObjectError("source", source, visible_sources(user))
        out = []
        for schema in gateway.catalog.list_schemas(source):
            out.extend(
                {"source": source, "schema": schema, "table": t}
                for t in gateway.catalog.list_tables(source, schema)
            )
        return out

    @app.get("/v1/history")
    def history(user: User, limit: int = 100) -> list[dict]:
        """Recent queries; a user whose sources are limited sees only its own."""
        entries = gateway.metrics.history(limit)
        if user is not None and user.sources is not None:
            entries = [s for s in entries if s.user == user.name]
        return [s.to_dict() for s in entries]

    return app


class _UnexpectedErrors:
    """ASGI middleware: any exception no handler took (a defect) answers 500 ``internal`` naming an error id,
    in the gateway's error shape; the traceback goes to the server log under that id, never to the client.
    (Starlette's own 500 handler would re-raise, and the server would then drop the keep-alive connection.)
    Once a response has started (a streamed result) the exception propagates: the stream can only end."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            error_id = secrets.token_hex(6)
            log.error("REST request failed unexpectedly", exc_info=exc,
                      extra={"error_id": error_id, "path": scope.get("path")})
            body = {"error": {"code": "internal", "message": "the server failed (the server log has the details)",
                              "phase": "execution", "error_id": error_id}}
            await JSONResponse(body, status_code=500)(scope, receive, send)


class _Chunks(io.RawIOBase):
    """A write-only file that hands out what was written since the last ``take()``."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


def _first_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


def _ipc_stream(reader: pa.RecordBatchReader, first: pa.RecordBatch | None) -> Iterator[bytes]:
    """Arrow IPC stream bytes, one chunk per record batch (the result is never collected whole).

    An error after the first batch can only end the stream early: the status line is already sent.
    """
    sink = _Chunks()
    with pa.ipc.new_stream(sink, reader.schema) as writer:
        if first is not None:
            writer.write_batch(first)
            yield sink.take()
            for batch in reader:
                writer.write_batch(batch)
                yield sink.take()
    yield sink.take()


def _json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


class _Readiness:
    """Probes every source at once, each on its own daemon thread (a metadata query: its schemas, and the
    tables of the first), waiting at most ``timeout_s`` seconds in all. A source whose previous probe still
    runs is reported ``timeout`` without a new probe, so a hung source never piles up threads. Errors are
    logged with the source's name; the answer says only ``unavailable`` (their text may hold paths)."""

    def __init__(self, gateway: Gateway, timeout_s: float) -> None:
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
