"""Queries: ``POST /v1/query`` (run and stream), ``DELETE /v1/queries/{query_id}`` (cancel), ``POST
/v1/explain``, ``GET /v1/history``."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import anyio
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gateway.api.deps import Auth, Engine, User
from gateway.api.running import RunningQueries, cancel_on_disconnect
from gateway.api.streaming import first_batch, result_response
from gateway.auth import allowed_sources
from gateway.execution.engine import QueryResult
from gateway.metrics import query_protocol

#: seconds ``DELETE /v1/queries/{id}`` waits for the query to end before answering ``cancelling``
CANCEL_WAIT_S = 2.0
#: a client-chosen query id
QUERY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

router = APIRouter()


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



class ExplainRequest(BaseModel):
    sql: str
    params: list[Any] | None = None
    max_staleness_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    analyze: bool = False




@router.post("/v1/query", response_model=None)
async def query(body: QueryRequest, request: Request, user: User, engine: Engine) -> Response:
    """Run a query and stream its result. json: ``{"query_id", "columns": [{"name", "type"}], "rows":
    [[...]], "row_count"}`` (decimals as strings, dates ISO-8601, bytes base64); ndjson: the same values,
    a ``{"query_id", "columns"}`` line, one array per row, a ``{"row_count"}`` line; arrow: an Arrow IPC
    stream. The ``x-query-id`` header carries the query's id (``query_id`` if given). Errors up to the
    first row answer their own status; an error after it ends the stream (see ``gateway.api.streaming``). A
    client that disconnects cancels the query."""
    queries: RunningQueries = request.app.state.running_queries
    running = queries.start(body.query_id, user.name if user else None)
    watcher = asyncio.ensure_future(cancel_on_disconnect(request.receive, running))

    def open_result() -> tuple[QueryResult, pa.RecordBatch | None]:
        with query_protocol("rest"):
            result = engine.execute(body.sql, body.params, user=running.owner, cancel=running.cancel_event,
                                    max_staleness_s=body.max_staleness_s, timeout_s=body.timeout_s,
                                    query_id=running.id, allowed_sources=allowed_sources(user))
        running.attach(result)
        # the first batch is read before answering, so errors up to it still get their own status
        return result, first_batch(result.reader)

    try:
        result, first = await anyio.to_thread.run_sync(open_result)
    except BaseException:
        watcher.cancel()
        running.cancel()  # a no-op once the engine failed the query; stops it if this request was cancelled
        queries.finish(running)
        raise
    return result_response(result, first, body.format, running, watcher, queries.finish)


@router.delete("/v1/queries/{query_id}")
def cancel_query(query_id: str, request: Request, user: User, auth: Auth) -> dict:
    """Cancel a query this REST API runs (its id is the ``x-query-id`` header, or the ``query_id`` the
    client chose): its source statements are cancelled and its client answered ``cancelled`` (499, or the
    stream ends with that error). Waits up to ``CANCEL_WAIT_S`` seconds for it to end: ``{"query_id",
    "status": "cancelled"}``, or ``"cancelling"`` if it still winds down. 404 for an id no running query
    has; with auth on, 403 for another user's query."""
    queries: RunningQueries = request.app.state.running_queries
    ended = queries.cancel(query_id, user, auth.enabled, wait_s=CANCEL_WAIT_S)
    return {"query_id": query_id, "status": "cancelled" if ended else "cancelling"}


@router.post("/v1/explain")
def explain(body: ExplainRequest, user: User, engine: Engine) -> dict:
    scope = {"allowed_sources": allowed_sources(user)}
    plan = engine.plan(body.sql, body.params, **scope)
    with query_protocol("rest"):
        text = engine.explain(body.sql, body.params, analyze=body.analyze,
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


@router.get("/v1/history")
def history(user: User, engine: Engine, limit: int = 100) -> list[dict]:
    """Recent queries; a user whose sources are limited sees only its own."""
    entries = engine.metrics.history(limit)
    if user is not None and user.sources is not None:
        entries = [s for s in entries if s.user == user.name]
    return [s.to_dict() for s in entries]
