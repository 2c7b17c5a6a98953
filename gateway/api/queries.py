"""Queries: ``POST /v1/query`` and ``GET /v1/query?sql=...`` (run and stream), ``DELETE /v1/queries/{query_id}``
(cancel), ``POST /v1/explain``, ``GET /v1/history``.

Results are streamed (``gateway.api.streaming`` says why, not paged) as json, ndjson, csv, arrow or parquet,
chosen by ``format`` or the ``Accept`` header."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import Auth, Engine, User
from gateway.api.errors import error_responses
from gateway.api.running import RunningQueries, cancel_on_disconnect
from gateway.api.streaming import FORMATS, encode_result, first_batch, negotiate, result_response
from gateway.auth import Principal, allowed_sources
from gateway.errors import InvalidRequestError
from gateway.execution.engine import QueryEngine, QueryResult
from gateway.metrics import query_protocol

#: seconds ``DELETE /v1/queries/{id}`` waits for the query to end before answering ``cancelling``
CANCEL_WAIT_S = 2.0
#: a client-chosen query id
QUERY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

router = APIRouter()

Format = Literal["json", "ndjson", "csv", "arrow", "parquet"]
_FORMAT_HELP = (
    "json: one document {\"query_id\", \"columns\", \"rows\": [[...]], \"row_count\"}; ndjson: a {\"query_id\", "
    "\"columns\"} line, one JSON array per row, then a {\"row_count\"} line; csv: a header line and one line per "
    "row; arrow: an Arrow IPC stream; parquet: a Parquet file written row group by row group. Default: the "
    "Accept header's choice (application/json, application/x-ndjson, text/csv, "
    "application/vnd.apache.arrow.stream, application/vnd.apache.parquet), else json. All are streamed; an "
    "error after the first row ends the stream: json with an \"error\" member, the document left unterminated "
    "(it does not parse); ndjson with an {\"error\"} line instead of the row_count line; csv, arrow and parquet "
    "cut off (a Parquet file without its footer)."
)
_ROWS_HELP = ("json/ndjson rows as arrays (default) or as objects: 'objects' answers only the rows, JSON as one "
              "array of {column: value} objects, NDJSON one object per line (what DuckDB's read_json, "
              "pandas.read_json or jq read as a table); a repeated column name gets a _2 suffix.")
_QUERY_ID_HELP = ("An id for this query, unique among the running ones (default: a random one); answered in the "
                  "x-query-id header. DELETE /v1/queries/{query_id} cancels the query, also before its first row.")
_STALENESS_HELP = "Serve cached partitions at most this old (seconds); 0: only ones proven current."
_TIMEOUT_HELP = "Cancel the query after this many seconds (default: limits.query_timeout_s; 0: no limit)."


class QueryRequest(BaseModel):
    """The body of ``POST /v1/query``."""

    sql: str = Field(description="One read-only query (SELECT, WITH, VALUES, set operations, EXPLAIN, SHOW, "
                                 "DESCRIBE).")
    params: list[Any] | None = Field(default=None, description="Values for positional ? placeholders.")
    format: Format | None = Field(default=None, description=_FORMAT_HELP)
    rows: Literal["arrays", "objects"] = Field(default="arrays", description=_ROWS_HELP)
    query_id: str | None = Field(default=None, pattern=QUERY_ID_PATTERN, description=_QUERY_ID_HELP)
    max_staleness_s: float | None = Field(default=None, ge=0, allow_inf_nan=False, description=_STALENESS_HELP)
    timeout_s: float | None = Field(default=None, ge=0, allow_inf_nan=False, description=_TIMEOUT_HELP)


class QueryParameters(BaseModel):
    """The query string of ``GET /v1/query`` (for clients that can only send a URL: curl, a browser, DuckDB's
    ``read_json``/``read_csv``). Unknown parameters are refused (a misspelt ``fromat`` is an error)."""

    model_config = ConfigDict(extra="forbid")
    sql: str = Field(description="One read-only query, URL-encoded.")
    params: str | None = Field(default=None, description='Values for positional ? placeholders as a JSON array, '
                                                         'e.g. [4, "east"].')
    format: Format | None = Field(default=None, description=_FORMAT_HELP)
    rows: Literal["arrays", "objects"] = Field(default="arrays", description=_ROWS_HELP)
    query_id: str | None = Field(default=None, pattern=QUERY_ID_PATTERN, description=_QUERY_ID_HELP)
    max_staleness_s: float | None = Field(default=None, ge=0, allow_inf_nan=False, description=_STALENESS_HELP)
    timeout_s: float | None = Field(default=None, ge=0, allow_inf_nan=False, description=_TIMEOUT_HELP)

    def request(self) -> QueryRequest:
        """The same query as a ``POST`` body; InvalidRequestError (400) when ``params`` is not a JSON array."""
        params = None
        if self.params is not None:
            try:
                params = json.loads(self.params)
            except ValueError:
                params = None
            if not isinstance(params, list):
                error = InvalidRequestError("invalid request: params: must be a JSON array, e.g. [4, \"east\"]",
                                            fields=[{"field": "query.params", "problem": "not a JSON array"}])
                error.phase = "request"
                raise error
        return QueryRequest(sql=self.sql, params=params, format=self.format, rows=self.rows,
                            query_id=self.query_id, max_staleness_s=self.max_staleness_s,
                            timeout_s=self.timeout_s)


class ExplainRequest(BaseModel):
    sql: str
    params: list[Any] | None = None
    max_staleness_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    analyze: bool = False


#: the OpenAPI responses of the query routes: every result format, every error status
RESULT_RESPONSES: dict[int | str, dict] = {
    200: {"description": "the result, streamed in the negotiated format (x-query-id header: the query's id)",
          "content": {media: {} for media in FORMATS.values()}},
    **error_responses(404, 406, 413, 429, 499, 501, 502, 503, 504, 507),
}
_ACCEPT_HELP = "Chooses the result format when format is not given."


@router.post("/v1/query", response_model=None, responses=RESULT_RESPONSES)
async def query(body: QueryRequest, request: Request, user: User, engine: Engine,
                accept: Annotated[str | None, Header(description=_ACCEPT_HELP)] = None) -> Response:
    """Run a query and stream its result. json: ``{"query_id", "columns": [{"name", "type"}], "rows":
    [[...]], "row_count"}`` (decimals as strings, dates ISO-8601, bytes base64); ndjson: the same values,
    a ``{"query_id", "columns"}`` line, one array per row, a ``{"row_count"}`` line; csv: RFC 4180 with a
    header line; arrow: an Arrow IPC stream; parquet: a Parquet file. The format is ``format``, else the
    ``Accept`` header's choice, else json. The ``x-query-id`` header carries the query's id (``query_id`` if
    given). Errors up to the first row answer their own status; an error after it ends the stream (see
    ``gateway.api.streaming``). A client that disconnects cancels the query."""
    return await run_query(body, negotiate(body.format, accept), request, user, engine)


@router.get("/v1/query", response_model=None, responses=RESULT_RESPONSES)
async def query_by_url(parameters: Annotated[QueryParameters, Query()], request: Request, user: User,
                       engine: Engine,
                       accept: Annotated[str | None, Header(description=_ACCEPT_HELP)] = None) -> Response:
    """``POST /v1/query`` for clients that only have a URL: ``GET /v1/query?sql=SELECT+...&format=csv``
    (``params`` as a JSON array). Same formats, headers, errors and cancellation."""
    body = parameters.request()
    return await run_query(body, negotiate(body.format, accept), request, user, engine)


async def run_query(body: QueryRequest, format: str, request: Request, user: Principal | None,
                    engine: QueryEngine) -> Response:
    """Run ``body`` for ``user`` and answer its streamed result in ``format`` (see ``query``)."""
    queries: RunningQueries = request.app.state.running_queries
    running = queries.start(body.query_id, user.name if user else None)
    watcher = asyncio.ensure_future(cancel_on_disconnect(request.receive, running))

    def open_result() -> tuple[QueryResult, Iterator[bytes]]:
        with query_protocol("rest"):
            result = engine.execute(body.sql, body.params, user=running.owner, cancel=running.cancel_event,
                                    max_staleness_s=body.max_staleness_s, timeout_s=body.timeout_s,
                                    query_id=running.id, allowed_sources=allowed_sources(user))
        running.attach(result)
        # the first batch is read before answering, so errors up to it still get their own status
        first = first_batch(result.reader)
        return result, encode_result(result, first, format, running.id, rows_as_objects=body.rows == "objects",
                                     memory=engine.memory)

    try:
        result, chunks = await anyio.to_thread.run_sync(open_result)
    except BaseException:
        watcher.cancel()
        running.cancel()  # a no-op once the engine failed the query; stops it if this request was cancelled
        queries.finish(running)
        raise
    response = result_response(result, chunks, format, running, watcher, queries.finish)
    # the freshness manifest as it stood at the first batch; the whole one at the link once the query ends
    response.headers.update(engine.trust.headers(running.id, f"/v1/queries/{running.id}/manifest"))
    return response


@router.delete("/v1/queries/{query_id}", responses=error_responses(404))
def cancel_query(query_id: str, request: Request, user: User, auth: Auth) -> dict:
    """Cancel a query this REST API runs (its id is the ``x-query-id`` header, or the ``query_id`` the
    client chose): its source statements are cancelled and its client answered ``cancelled`` (499, or the
    stream ends with that error). Waits up to ``CANCEL_WAIT_S`` seconds for it to end: ``{"query_id",
    "status": "cancelled"}``, or ``"cancelling"`` if it still winds down. 404 for an id no running query
    has; with auth on, 403 for another user's query."""
    queries: RunningQueries = request.app.state.running_queries
    ended = queries.cancel(query_id, user, auth.enabled, wait_s=CANCEL_WAIT_S)
    return {"query_id": query_id, "status": "cancelled" if ended else "cancelling"}


@router.post("/v1/explain", responses=error_responses(404, 413, 429, 499, 501, 502, 503, 504, 507))
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
            {"id": f.id, "source": f.source, "sql": f.sql, "tables": f.tables, "pushed": f.pushed,
             "estimated_rows": f.estimated_rows}  # the console's plan graph shows estimates
            for f in plan.fragments
        ],
        "residual_sql": plan.residual_sql,
        "not_pushed": [{"what": n.what, "reason": n.reason} for n in plan.not_pushed],
    }


@router.get("/v1/history", responses=error_responses())
def history(user: User, engine: Engine, limit: int = 100) -> list[dict]:
    """Recent queries; a user whose sources are limited sees only its own."""
    entries = engine.metrics.history(limit)
    if user is not None and user.sources is not None:
        entries = [s for s in entries if s.user == user.name]
    return [s.to_dict() for s in entries]
