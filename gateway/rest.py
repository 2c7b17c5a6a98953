"""The REST API (FastAPI). This module only wires routes, auth and the one error handler.

Routes: ``POST /v1/query``, ``POST /v1/explain``, ``GET /v1/sources``, ``GET /v1/sources/{source}/tables``,
``GET /v1/history``, ``GET /healthz``, ``GET /metrics``; OpenAPI at ``/docs``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from gateway.auth import Authenticator, Principal, allowed_sources
from gateway.engine import Gateway
from gateway.errors import AuthenticationError, GatewayError, UnknownObjectError

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _current_user(request: Request) -> Principal | None:
    """The caller (Basic credentials, a bearer token or an API token); None when auth is off."""
    auth: Authenticator = request.app.state.authenticator
    return auth.user_for_header(request.headers.get("authorization"), issue_token=False)[0]


User = Annotated[Principal | None, Depends(_current_user)]


class QueryRequest(BaseModel):
    sql: str = Field(description="One read-only query (SELECT, WITH, VALUES, set operations, EXPLAIN).")
    params: list[Any] | None = Field(default=None, description="Values for positional ? placeholders.")
    format: Literal["json", "arrow"] = "json"
    max_staleness_s: float | None = Field(
        default=None, ge=0,
        description="Serve cached partitions at most this old (seconds); 0: only ones proven current.",
    )
    timeout_s: float | None = Field(
        default=None, ge=0,
        description="Cancel the query after this many seconds (default: limits.query_timeout_s; 0: no limit).",
    )


class CacheWarmRequest(BaseModel):
    table: str = Field(description="source.schema.table (or any name the catalog resolves)")
    where: str | None = Field(default=None, description="SQL condition selecting the partitions to warm")


class ExplainRequest(BaseModel):
    sql: str
    params: list[Any] | None = None
    max_staleness_s: float | None = Field(default=None, ge=0)
    analyze: bool = False


def create_app(gateway: Gateway, authenticator: Authenticator | None = None) -> FastAPI:
    """The REST app over ``gateway``. Errors answer ``{"error": {code, message, phase, ...}}`` with the
    status each ``GatewayError`` class carries."""
    auth = authenticator or Authenticator(gateway.settings.auth)
    app = FastAPI(title="Federated SQL gateway", version="0.1.0")
    app.state.authenticator = auth

    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Basic realm="gateway", Bearer'} if exc.http_status == 401 else None
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)

    def visible_sources(principal: Principal | None) -> list[str]:
        return [s for s in gateway.catalog.list_sources() if principal is None or principal.may_use(s)]

    @app.post("/v1/auth/token")
    def token(request: Request) -> dict:
        """Exchange Basic credentials for a bearer token (valid ``auth.token_ttl_s`` seconds)."""
        if not auth.enabled:
            return {"token": None, "expires_in_s": None, "auth": "disabled"}
        principal, issued = auth.user_for_header(request.headers.get("authorization"), issue_token=True)
        if issued is None:
            raise AuthenticationError("send Basic credentials to obtain a token")
        return {"token": issued, "token_type": "Bearer", "expires_in_s": auth.ttl_s, "user": principal.name}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "sources": gateway.catalog.list_sources()}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/query", response_model=None)
    def query(body: QueryRequest, user: User) -> Response:
        """Run a query. JSON: ``{"columns": [{"name", "type"}], "rows": [[...]], "row_count", "query_id"}``
        (decimals as strings, dates ISO-8601, bytes base64). arrow: an Arrow IPC stream."""
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
            "rows": [list(row.values()) for row in table.to_pylist()],
            "row_count": table.num_rows,
        }
        return Response(json.dumps(payload, default=_json_value), media_type="application/json")

    @app.post("/v1/explain")
    def explain(body: ExplainRequest, user: User) -> dict:
        scope = {"allowed_sources": allowed_sources(user)}
        plan = gateway.plan(body.sql, body.params, **scope)
        return {
            "plan": gateway.explain(body.sql, body.params, analyze=body.analyze,
                                    max_staleness_s=body.max_staleness_s, **scope),
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
