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
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.errors import GatewayError, InvalidRequestError

log = logging.getLogger(__name__)


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
