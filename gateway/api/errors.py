"""Every REST error answers one body shape, ``{"error": {"code", "message", "phase", ...}}``, mapped here once.

A ``GatewayError`` answers the HTTP status its class carries; a malformed request (FastAPI's validation, a NaN
or Infinity in the JSON body) is 400 ``invalid_request``; an unknown route or method 404/405; any other
exception (a defect) 500 ``internal`` naming an error id, whose traceback goes to the server log, never to the
client.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.errors import GatewayError, InvalidRequestError

log = logging.getLogger(__name__)


class NotAcceptableError(GatewayError):
    """The ``Accept`` header names no media type the gateway can answer in (406); REST only, so it lives with
    the REST app rather than in the protocol-neutral hierarchy of ``connectors.errors``."""

    code = "not_acceptable"
    http_status = 406
    flight_kind = "invalid_argument"
    phase = "request"


class ErrorDetail(BaseModel):
    """The one error shape's inner object; further members (``line``, ``column``, ``nearest``, ``source``,
    ``fields``, ``error_id``...) depend on the code."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(description="stable machine-readable name, e.g. syntax_error, unknown_object")
    message: str = Field(description="what was wrong, naming the source/table/column or the request field")
    phase: str = Field(description="request, parsing, planning, execution, auth or config")


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the REST API: ``{"error": {"code", "message", "phase", ...}}``."""

    error: ErrorDetail


#: what each status means in this API (the OpenAPI description of that response)
STATUS_MEANINGS = {
    400: "invalid request: malformed body or parameters (invalid_request), SQL syntax error, unsupported "
         "(non read-only) statement, input limit, ambiguous name",
    401: "authentication required or failed (auth enabled)",
    403: "permission denied: a source, query or resource this user may not use",
    404: "unknown object (source, schema, table, column, query id), with the nearest existing names",
    406: "the Accept header names no available result format",
    413: "resource limit: the result passes limits.max_result_rows or limits.max_result_bytes",
    429: "resource limit: too many queries waiting (Retry-After)",
    499: "the query was cancelled (DELETE /v1/queries/{id}, or the server shutting down)",
    500: "internal failure (an error id names it in the server log)",
    501: "not implemented by the sources involved",
    502: "a source failed to run its part of the query",
    503: "a source is unavailable",
    504: "the query ran past its time limit",
    507: "resource limit: the gateway's memory budget (limits.process_memory_bytes) or the query's memory "
         "pool is exhausted (Retry-After)",
}
#: the statuses any route may answer: malformed input, authentication, permission, a defect
COMMON_STATUSES = (400, 401, 403, 500)


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` entries (the ``ErrorBody`` schema) for ``statuses``, with ``COMMON_STATUSES``."""
    return {status: {"model": ErrorBody, "description": STATUS_MEANINGS[status]}
            for status in sorted({*COMMON_STATUSES, *statuses})}


async def gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
    """A ``GatewayError``: its own HTTP status and body."""
    headers = {"WWW-Authenticate": 'Basic realm="gateway", Bearer'} if exc.http_status == 401 else {}
    if "retry_after_s" in exc.details:
        headers["Retry-After"] = str(int(exc.details["retry_after_s"]))
    return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers or None)


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


async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """An HTTP-level refusal (unknown route 404, wrong method 405): its status, the gateway's shape."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    body = {"error": {"code": code, "message": str(exc.detail), "phase": "request"}}
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    """Map every error of ``app`` to the one body shape (see the module docstring)."""
    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(UnexpectedErrors)
    _document_validation_as_400(app)


def _document_validation_as_400(app: FastAPI) -> None:
    """FastAPI documents a 422 ``HTTPValidationError`` for every route with inputs; this app answers those
    as 400 ``invalid_request`` (``validation_error``, listed by ``error_responses``), so the OpenAPI document
    drops them."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    if isinstance(operation, dict):
                        operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class UnexpectedErrors:
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
            await JSONResponse(unexpected_error(exc, scope.get("path")), status_code=500)(scope, receive, send)


def unexpected_error(exc: BaseException, path: str | None) -> dict:
    """The body of an unexpected failure (a defect): ``internal``, naming an error id; the traceback goes to
    the server log under that id."""
    error_id = secrets.token_hex(6)
    log.error("REST request failed unexpectedly", exc_info=exc, extra={"error_id": error_id, "path": path})
    return {"error": {"code": "internal", "message": "the server failed (the server log has the details)",
                      "phase": "execution", "error_id": error_id}}
