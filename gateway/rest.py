"""The REST API (FastAPI). This module only wires routes, auth, result streaming and the error handlers.

Routes: ``POST /v1/query``, ``DELETE /v1/queries/{query_id}``, ``POST /v1/explain``, ``GET /v1/sources``,
``GET /v1/sources/{source}/tables``, ``GET /v1/history``, ``GET /healthz`` (liveness), ``GET /readyz`` (every
source answers), ``GET /metrics``; OpenAPI at ``/docs``.

Every error answers one body shape, ``{"error": {"code", "message", "phase", ...}}``, with the status its
``GatewayError`` class carries; a malformed request (FastAPI's validation, a NaN or Infinity in the JSON body)
is 400 ``invalid_request``, never a traceback.

Results are streamed batch by batch in every format (memory stays bounded whatever the result's size). The
query runs and its first batch is read before the status line is sent, so errors up to the first row keep their
own status. An error after that can only end the stream (status 200 was sent): JSON ends with an ``"error"``
member and is left unterminated (no ``row_count``, no closing brace: a JSON parser fails on it, so a truncated
result is never taken for a whole one); NDJSON ends with an ``{"error": {...}}`` line instead of the
``{"row_count": n}`` line; an Arrow stream is cut off (the connection is closed without the end of the HTTP
message). A client that goes away cancels its query (its source statements are cancelled within a second);
so does ``DELETE /v1/queries/{query_id}``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import io
import itertools
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import anyio
import pyarrow as pa
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.auth import Authenticator, Principal, allowed_sources
from gateway.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
    QueryCancelledError,
    UnknownObjectError,
)
from gateway.execution.engine import QueryEngine, QueryResult
from gateway.metrics import query_protocol

ARROW_STREAM = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"
#: rows encoded per JSON/NDJSON chunk (a record batch is sliced: its Python values are built a slice at a time)
ROWS_PER_CHUNK = 8192
#: seconds ``DELETE /v1/queries/{id}`` waits for the query to end before answering ``cancelling``
CANCEL_WAIT_S = 2.0
#: a client-chosen query id
QUERY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
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
    format: Literal["json", "ndjson", "arrow"] = Field(
        default="json",
        description='json: one document {"query_id", "columns", "rows": [[...]], "row_count"}; ndjson: a '
                    '{"query_id", "columns"} line, one JSON array per row, then a {"row_count"} line; arrow: an '
                    "Arrow IPC stream. All are streamed; an error after the first row ends the stream: json with an "
                    '"error" member, the document left unterminated (it does not parse); ndjson with an {"error"} '
                    "line instead of the row_count line; arrow cut off.",
    )
    query_id: str | None = Field(
        default=None, pattern=QUERY_ID_PATTERN,
        description="An id for this query, unique among the running ones (default: a random one); answered in "
                    "the x-query-id header. DELETE /v1/queries/{query_id} cancels the query, also before its "
                    "first row.",
    )
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


def create_app(gateway: QueryEngine, authenticator: Authenticator | None = None) -> FastAPI:
    """The REST app over ``gateway``. Errors answer ``{"error": {code, message, phase, ...}}`` with the
    status each ``GatewayError`` class carries (see the handlers below)."""
    auth = authenticator or Authenticator(gateway.settings.auth)
    app = FastAPI(title="Federated SQL gateway", version="0.1.0")
    app.state.authenticator = auth
    queries = RunningQueries()
    app.state.running_queries = queries  # the composition root cancels them all at shutdown (close())
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
    async def query(body: QueryRequest, request: Request, user: User) -> Response:
        """Run a query and stream its result. json: ``{"query_id", "columns": [{"name", "type"}], "rows":
        [[...]], "row_count"}`` (decimals as strings, dates ISO-8601, bytes base64); ndjson: the same values,
        a ``{"query_id", "columns"}`` line, one array per row, a ``{"row_count"}`` line; arrow: an Arrow IPC
        stream. The ``x-query-id`` header carries the query's id (``query_id`` if given). Errors up to the
        first row answer their own status; an error after it ends the stream (see the module docstring). A
        client that disconnects cancels the query."""
        running = queries.start(body.query_id, user.name if user else None)
        watcher = asyncio.ensure_future(_cancel_on_disconnect(request.receive, running))

        def open_result() -> tuple[QueryResult, pa.RecordBatch | None]:
            with query_protocol("rest"):
                result = gateway.execute(body.sql, body.params, user=running.owner, cancel=running.cancel_event,
                                         max_staleness_s=body.max_staleness_s, timeout_s=body.timeout_s,
                                         query_id=running.id, allowed_sources=allowed_sources(user))
            running.attach(result)
            # the first batch is read before answering, so errors up to it still get their own status
            return result, _first_batch(result.reader)

        try:
            result, first = await anyio.to_thread.run_sync(open_result)
        except BaseException:
            watcher.cancel()
            running.cancel()  # a no-op once the engine failed the query; stops it if this request was cancelled
            queries.finish(running)
            raise
        if body.format == "arrow":
            chunks, media_type = _ipc_stream(result.reader, first), ARROW_STREAM
        else:
            chunks = _json_chunks(result, first, running.id, ndjson=body.format == "ndjson")
            media_type = NDJSON if body.format == "ndjson" else "application/json"
        return _ResultStream(chunks, result, media_type, running, watcher, queries.finish,
                             cut_off_on_error=body.format == "arrow")

    @app.delete("/v1/queries/{query_id}")
    def cancel_query(query_id: str, user: User) -> dict:
        """Cancel a query this REST API runs (its id is the ``x-query-id`` header, or the ``query_id`` the
        client chose): its source statements are cancelled and its client answered ``cancelled`` (499, or the
        stream ends with that error). Waits up to ``CANCEL_WAIT_S`` seconds for it to end: ``{"query_id",
        "status": "cancelled"}``, or ``"cancelling"`` if it still winds down. 404 for an id no running query
        has; with auth on, 403 for another user's query."""
        ended = queries.cancel(query_id, user, auth.enabled, wait_s=CANCEL_WAIT_S)
        return {"query_id": query_id, "status": "cancelled" if ended else "cancelling"}

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
            await JSONResponse(_unexpected_error(exc, scope.get("path")), status_code=500)(scope, receive, send)


def _unexpected_error(exc: BaseException, path: str | None) -> dict:
    """The body of an unexpected failure (a defect): ``internal``, naming an error id; the traceback goes to
    the server log under that id."""
    error_id = secrets.token_hex(6)
    log.error("REST request failed unexpectedly", exc_info=exc, extra={"error_id": error_id, "path": path})
    return {"error": {"code": "internal", "message": "the server failed (the server log has the details)",
                      "phase": "execution", "error_id": error_id}}


class _RunningQuery:
    """One query of ``POST /v1/query`` while it runs: its id, its owner (the user name; None with auth off),
    the cancel event handed to the engine, and its ``QueryResult`` once the engine returned it."""

    def __init__(self, query_id: str, owner: str | None) -> None:
        self.id = query_id
        self.owner = owner
        self.cancel_event = threading.Event()  # the engine's; the engine also sets it when the query ends
        self.cancelled = False
        self.completed = False  # the stream was sent to its end (all rows, or the error that ended them)
        self.ended = threading.Event()  # the request is over (answered, streamed, or failed)
        self._result: QueryResult | None = None
        self._lock = threading.Lock()

    def attach(self, result: QueryResult) -> None:
        """The engine's result; cancelled at once if the query was cancelled while the engine started it."""
        with self._lock:
            self._result = result
            cancelled = self.cancelled
        if cancelled:
            result.cancel()

    def cancel(self) -> None:
        """Stop the query (safe from any thread, a no-op once it ended): the engine's cancel event is set and
        the source statements still running are cancelled. Never blocks."""
        with self._lock:
            self.cancelled = True
            result = self._result
        self.cancel_event.set()
        if result is not None:
            result.cancel()


class RunningQueries:
    """The queries the REST API runs now, by id; thread-safe. ``cancel`` stops one for its owner (``DELETE
    /v1/queries/{id}``); ``close`` stops them all and refuses new ones (the server is shutting down)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queries: dict[str, _RunningQuery] = {}
        self._closed = False

    def start(self, query_id: str | None, owner: str | None) -> _RunningQuery:
        """Register a new query under ``query_id`` (default: a random hex id). InvalidRequestError if a
        running query has that id; QueryCancelledError once ``close`` was called."""
        running = _RunningQuery(query_id or uuid.uuid4().hex, owner)
        with self._lock:
            if self._closed:
                raise QueryCancelledError("the server is shutting down: the query was not started")
            if running.id in self._queries:
                error = InvalidRequestError(f"query_id '{running.id}' is in use by a running query",
                                            query_id=running.id)
                error.phase = "request"
                raise error
            self._queries[running.id] = running
        return running

    def finish(self, running: _RunningQuery) -> None:
        """The request of ``running`` is over: forget it."""
        with self._lock:
            if self._queries.get(running.id) is running:
                del self._queries[running.id]
        running.ended.set()

    def cancel(self, query_id: str, user: Principal | None, check_owner: bool, wait_s: float = 0.0) -> bool:
        """Cancel the running query ``query_id`` and wait up to ``wait_s`` seconds for its request to end;
        True if it did. UnknownObjectError (404) when no running query has the id; with ``check_owner`` (auth
        on), PermissionDeniedError (403) when ``user`` does not own it."""
        with self._lock:
            running = self._queries.get(query_id)
        if running is None:
            error = UnknownObjectError("query", query_id)
            error.phase = "request"
            raise error
        name = user.name if user is not None else None
        if check_owner and running.owner != name:
            raise PermissionDeniedError(f"query '{query_id}' belongs to another user", query_id=query_id)
        running.cancel()
        return running.ended.wait(wait_s)

    def close(self) -> int:
        """Cancel every running query and refuse new ones; returns how many were cancelled."""
        with self._lock:
            self._closed = True
            running = list(self._queries.values())
        for query in running:
            query.cancel()
        return len(running)


async def _cancel_on_disconnect(receive: Callable, running: _RunningQuery) -> None:
    """Wait for the client to go away (``http.disconnect``; the request body was read already), then cancel
    its query unless the whole result was sent."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not running.completed:
                running.cancel()
            return


class _ResultStream(StreamingResponse):
    """The streamed answer of ``POST /v1/query``: status 200 and the headers, then each chunk of ``chunks``
    (a blocking iterator, pulled on a worker thread) as it is made. The sender waits for the client (the
    server's write buffer is bounded), so a slow client slows the query down instead of filling memory.

    When the stream ends early (the client left, the query was cancelled, or a chunk failed), the query is
    cancelled and the result's reader closed, which stops the engine and the source statements. An error
    raised by ``chunks`` (Arrow: nothing can follow the last batch) cuts the HTTP message off when
    ``cut_off_on_error``; the JSON formats write their error into the stream instead (``_json_chunks``)."""

    def __init__(self, chunks: Iterator[bytes], result: QueryResult, media_type: str, running: _RunningQuery,
                 watcher: asyncio.Future, on_end: Callable[[_RunningQuery], None], cut_off_on_error: bool) -> None:
        # StreamingResponse for its headers (no content-length); its body iterator is unused: __call__ pulls
        # ``chunks`` itself
        super().__init__(iter(()), media_type=media_type, headers={"x-query-id": running.id})
        self._chunks = chunks
        self._result = result
        self._running = running
        self._watcher = watcher
        self._on_end = on_end
        self._cut_off_on_error = cut_off_on_error

    async def __call__(self, scope, receive, send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            while True:
                try:
                    chunk = await anyio.to_thread.run_sync(next, self._chunks, None)
                except Exception as exc:
                    if not self._cut_off_on_error:
                        raise
                    log.warning("REST result stream cut off by an error", extra={
                        "query_id": self._running.id, "error": getattr(exc, "code", type(exc).__name__)})
                    return  # without the end of the message: the server closes the connection
                if chunk is None:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self._running.completed = not self._running.cancelled
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._watcher.cancel()
            try:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._close)
            finally:
                self._on_end(self._running)

    def _close(self) -> None:
        if not self._running.completed:
            self._running.cancel()
        try:
            self._chunks.close()  # type: ignore[attr-defined]
            self._result.reader.close()  # ends the engine's generators now, which release the sources
        except Exception as exc:  # the query was cancelled above; closing is best effort
            log.warning("closing a REST result stream failed", extra={"query_id": self._running.id,
                                                                      "error": str(exc)})


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


def _json_chunks(result: QueryResult, first: pa.RecordBatch | None, query_id: str, ndjson: bool
                 ) -> Iterator[bytes]:
    """The JSON (or NDJSON) encoding of a result, a chunk per at most ``ROWS_PER_CHUNK`` rows; ``first`` is
    the reader's first batch (already read). Rows are arrays by position (a dict would merge columns of one
    name, as in ``SELECT *`` over a join); values as ``_json_value`` encodes them.

    JSON: ``{"query_id", "columns", "rows": [...], "row_count"}``, byte for byte what ``json.dumps`` gives
    for the whole document. NDJSON: ``{"query_id", "columns"}``, one line per row, ``{"row_count"}``. An error
    while streaming ends JSON with ``], "error": {...}`` left unterminated, NDJSON with an ``{"error": {...}}``
    line (``GatewayError.to_dict``'s shape; an unexpected failure is ``internal`` with an error id)."""
    encode = json.JSONEncoder(default=_json_value).encode
    head = encode({"query_id": query_id, "columns": [{"name": f.name, "type": str(f.type)} for f in result.schema]})
    pending = head + "\n" if ndjson else head[:-1] + ', "rows": ['
    count = 0
    batches = itertools.chain([first], result.reader) if first is not None else iter(())
    try:
        for batch in batches:
            for rows in _row_slices(batch):
                if ndjson:
                    text = "".join([encode(row) + "\n" for row in rows])
                else:
                    text = (", " if count else "") + encode(rows)[1:-1]
                count += len(rows)
                yield (pending + text).encode()
                pending = ""
    except Exception as exc:
        error = exc.to_dict() if isinstance(exc, GatewayError) else _unexpected_error(exc, "/v1/query")
        tail = encode(error) + "\n" if ndjson else '], "error": ' + encode(error["error"])
        yield (pending + tail).encode()
        return
    yield (pending + (encode({"row_count": count}) + "\n" if ndjson else f'], "row_count": {count}}}')).encode()


def _row_slices(batch: pa.RecordBatch) -> Iterator[list[tuple]]:
    """The batch's rows as tuples, ``ROWS_PER_CHUNK`` at a time (nothing for an empty batch)."""
    for offset in range(0, batch.num_rows, ROWS_PER_CHUNK):
        part = batch.slice(offset, ROWS_PER_CHUNK)
        if part.num_columns:
            yield list(zip(*(column.to_pylist() for column in part.columns), strict=True))
        else:
            yield [()] * part.num_rows


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
