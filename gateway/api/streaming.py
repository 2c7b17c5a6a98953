"""Results streamed batch by batch in every format (memory stays bounded whatever the result's size).

The query runs and its first batch is read before the status line is sent, so errors up to the first row keep
their own status. An error after that can only end the stream (status 200 was sent): JSON ends with an
``"error"`` member and is left unterminated (no ``row_count``, no closing brace: a JSON parser fails on it, so a
truncated result is never taken for a whole one); NDJSON ends with an ``{"error": {...}}`` line instead of the
``{"row_count": n}`` line; an Arrow stream is cut off (the connection is closed without the end of the HTTP
message). A client that goes away cancels its query (its source statements are cancelled within a second).
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
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pyarrow as pa
from fastapi.responses import StreamingResponse

from gateway.api.errors import unexpected_error
from gateway.api.running import RunningQuery
from gateway.errors import GatewayError
from gateway.execution.engine import QueryResult

ARROW_STREAM = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"
#: rows encoded per JSON/NDJSON chunk (a record batch is sliced: its Python values are built a slice at a time)
ROWS_PER_CHUNK = 8192

log = logging.getLogger(__name__)


def result_response(result: QueryResult, first: pa.RecordBatch | None, format: str, running: RunningQuery,
                    watcher: asyncio.Future, on_end: Callable[[RunningQuery], None]) -> StreamingResponse:
    """The streamed answer of a query in ``format`` (json, ndjson or arrow); ``first`` is its first batch."""
    if format == "arrow":
        chunks, media_type = ipc_stream(result.reader, first), ARROW_STREAM
    else:
        chunks = json_chunks(result, first, running.id, ndjson=format == "ndjson")
        media_type = NDJSON if format == "ndjson" else "application/json"
    return ResultStream(chunks, result, media_type, running, watcher, on_end, cut_off_on_error=format == "arrow")


class ResultStream(StreamingResponse):
    """The streamed answer of ``POST /v1/query``: status 200 and the headers, then each chunk of ``chunks``
    (a blocking iterator, pulled on a worker thread) as it is made. The sender waits for the client (the
    server's write buffer is bounded), so a slow client slows the query down instead of filling memory.

    When the stream ends early (the client left, the query was cancelled, or a chunk failed), the query is
    cancelled and the result's reader closed, which stops the engine and the source statements. An error
    raised by ``chunks`` (Arrow: nothing can follow the last batch) cuts the HTTP message off when
    ``cut_off_on_error``; the JSON formats write their error into the stream instead (``json_chunks``)."""

    def __init__(self, chunks: Iterator[bytes], result: QueryResult, media_type: str, running: RunningQuery,
                 watcher: asyncio.Future, on_end: Callable[[RunningQuery], None], cut_off_on_error: bool) -> None:
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


def first_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


def ipc_stream(reader: pa.RecordBatchReader, first: pa.RecordBatch | None) -> Iterator[bytes]:
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


def json_chunks(result: QueryResult, first: pa.RecordBatch | None, query_id: str, ndjson: bool
                 ) -> Iterator[bytes]:
    """The JSON (or NDJSON) encoding of a result, a chunk per at most ``ROWS_PER_CHUNK`` rows; ``first`` is
    the reader's first batch (already read). Rows are arrays by position (a dict would merge columns of one
    name, as in ``SELECT *`` over a join); values as ``json_value`` encodes them.

    JSON: ``{"query_id", "columns", "rows": [...], "row_count"}``, byte for byte what ``json.dumps`` gives
    for the whole document. NDJSON: ``{"query_id", "columns"}``, one line per row, ``{"row_count"}``. An error
    while streaming ends JSON with ``], "error": {...}`` left unterminated, NDJSON with an ``{"error": {...}}``
    line (``GatewayError.to_dict``'s shape; an unexpected failure is ``internal`` with an error id)."""
    encode = json.JSONEncoder(default=json_value).encode
    head = encode({"query_id": query_id, "columns": [{"name": f.name, "type": str(f.type)} for f in result.schema]})
    pending = head + "\n" if ndjson else head[:-1] + ', "rows": ['
    count = 0
    batches = itertools.chain([first], result.reader) if first is not None else iter(())
    try:
        for batch in batches:
            for rows in row_slices(batch):
                if ndjson:
                    text = "".join([encode(row) + "\n" for row in rows])
                else:
                    text = (", " if count else "") + encode(rows)[1:-1]
                count += len(rows)
                yield (pending + text).encode()
                pending = ""
    except Exception as exc:
        error = exc.to_dict() if isinstance(exc, GatewayError) else unexpected_error(exc, "/v1/query")
        tail = encode(error) + "\n" if ndjson else '], "error": ' + encode(error["error"])
        yield (pending + tail).encode()
        return
    yield (pending + (encode({"row_count": count}) + "\n" if ndjson else f'], "row_count": {count}}}')).encode()


def row_slices(batch: pa.RecordBatch) -> Iterator[list[tuple]]:
    """The batch's rows as tuples, ``ROWS_PER_CHUNK`` at a time (nothing for an empty batch)."""
    for offset in range(0, batch.num_rows, ROWS_PER_CHUNK):
        part = batch.slice(offset, ROWS_PER_CHUNK)
        if part.num_columns:
            yield list(zip(*(column.to_pylist() for column in part.columns), strict=True))
        else:
            yield [()] * part.num_rows


def json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


