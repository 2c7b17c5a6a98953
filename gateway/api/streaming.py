"""Results streamed batch by batch in every format (memory stays bounded whatever the result's size).

Formats (``FORMATS``): ``json``, ``ndjson``, ``csv``, ``arrow`` (Arrow IPC stream) and ``parquet``, chosen by the
request's ``format`` or else its ``Accept`` header (``negotiate``). Results are streamed, not paged: the engine
already produces Arrow batches as the sources send them, a streamed body keeps no result state on the server
(nothing to expire, no page buffers), reaches its first byte as soon as the first batch exists, and a client
that stops reading slows the query down (back-pressure) or, by leaving, cancels it. Trino-style ``nextUri``
pages would hold each result's pages in gateway memory between requests.

The query runs and its first batch is read before the status line is sent, so errors up to the first row keep
their own status. An error after that can only end the stream (status 200 was sent): JSON ends with an
``"error"`` member and is left unterminated (no ``row_count``, no closing brace: a JSON parser fails on it, so a
truncated result is never taken for a whole one); NDJSON ends with an ``{"error": {...}}`` line instead of the
``{"row_count": n}`` line; Arrow, CSV and Parquet streams are cut off (the connection is closed without the end
of the HTTP message; a Parquet file then has no footer and does not open). A client that goes away cancels its
query (its source statements are cancelled within a second).

Memory (``gateway.execution.memory``): a Parquet download's row-group buffer (up to ``PARQUET_ROW_GROUP_BYTES``
and a batch) is charged to the process-wide budget and written sooner when the budget has no room
(``parquet_chunks``). Every format otherwise holds, bounded by construction and not charged, the batch in hand
and its encoding until the chunk is sent: about twice the batch's Arrow bytes more (measured on a 65,536-row,
2.9 MB batch: Arrow IPC 2.0x, CSV 2.1x, JSON 2.1x, NDJSON 1.7x; JSON encodes ``ROWS_PER_CHUNK`` rows at a
time), where a batch is at most DataFusion's 65,536 rows or a source's own batch (PostgreSQL: ~16 MB).
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import logging
from collections.abc import Callable, Iterator

import anyio
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from fastapi.responses import StreamingResponse

from gateway.api.errors import NotAcceptableError
from gateway.api.json_encoding import (  # noqa: F401 - importable here as before
    ROWS_PER_CHUNK,
    json_chunks,
    json_value,
    row_slices,
    unique_names,
)
from gateway.api.running import RunningQuery
from gateway.execution.engine import QueryResult
from gateway.execution.memory import MemoryBudget

ARROW_STREAM = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
#: format name -> media type (the ``Accept`` header's names; ``format`` takes the keys)
FORMATS = {"json": "application/json", "ndjson": NDJSON, "csv": CSV, "arrow": ARROW_STREAM, "parquet": PARQUET}
#: other media types clients send for the same formats
_ALIASES = {"application/jsonl": "ndjson", "application/x-jsonlines": "ndjson", "application/jsonlines": "ndjson",
            "application/x-parquet": "parquet", "application/vnd.apache.arrow.file": None}
#: a Parquet row group is written (and sent) once this many rows or bytes are buffered: they bound the memory a
#: Parquet stream holds
PARQUET_ROW_GROUP_ROWS = 131_072
PARQUET_ROW_GROUP_BYTES = 32 * 1024 * 1024
#: a Parquet download charges the budget this many times the Arrow bytes it buffers: the batches, and their
#: encoded pages held until the row group is sent
PARQUET_CHARGE = 2

log = logging.getLogger(__name__)


def negotiate(format: str | None, accept: str | None) -> str:
    """The result format: ``format`` when given, else the supported media type ``accept`` prefers (by
    ``q``, then by order; ``*/*``, ``application/*`` and ``text/*`` choose json), else json. Raises
    NotAcceptableError (406) when ``accept`` names only media types no format has."""
    if format:
        return format
    if not accept or not accept.strip():
        return "json"
    ranked = []
    for position, item in enumerate(accept.split(",")):
        media, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, media.strip().lower(), quality))
    for _, _, media, quality in sorted(ranked):
        if quality <= 0:
            continue
        found = _format_of(media)
        if found:
            return found
    raise NotAcceptableError(
        f"none of the media types in the Accept header '{accept[:200]}' is available; the result formats are "
        + ", ".join(FORMATS.values()) + " (or choose one with format=json|ndjson|csv|arrow|parquet)")


def _format_of(media: str) -> str | None:
    if media in ("*/*", "application/*", "text/*"):
        return "json" if media != "text/*" else "csv"
    for name, known in FORMATS.items():
        if media == known:
            return name
    return _ALIASES.get(media)


def encode_result(result: QueryResult, first: pa.RecordBatch | None, format: str, query_id: str,
                  rows_as_objects: bool = False, memory: MemoryBudget | None = None) -> Iterator[bytes]:
    """The chunks of the answer in ``format`` (a key of ``FORMATS``); ``first`` is the result's first batch,
    already read. ``rows_as_objects``: JSON/NDJSON rows as ``{"column": value}`` objects (see ``json_chunks``).
    ``memory``: the process-wide budget a Parquet row-group buffer is charged to (``parquet_chunks``)."""
    if format == "arrow":
        return ipc_stream(result.reader, first)
    if format == "csv":
        return csv_chunks(result, first)
    if format == "parquet":
        return parquet_chunks(result, first, memory)
    if format in ("json", "ndjson"):
        return json_chunks(result, first, query_id, ndjson=format == "ndjson", rows_as_objects=rows_as_objects)
    raise ValueError(f"unknown format {format!r}")


def result_response(result: QueryResult, chunks: Iterator[bytes], format: str, running: RunningQuery,
                    watcher: asyncio.Future, on_end: Callable[[RunningQuery], None]) -> StreamingResponse:
    """The streamed answer of a query: ``chunks`` (``encode_result``) sent as ``format``'s media type."""
    media_type = FORMATS[format] + ("; charset=utf-8" if format == "csv" else "")
    response = ResultStream(chunks, result, media_type, running, watcher, on_end,
                            cut_off_on_error=format not in ("json", "ndjson"))
    if format in _FILE_NAMES:  # a browser saves these under a useful name (binary ones rather than showing them)
        disposition = "inline" if format == "csv" else "attachment"
        response.headers["content-disposition"] = f'{disposition}; filename="{running.id}.{_FILE_NAMES[format]}"'
    return response


_FILE_NAMES = {"csv": "csv", "arrow": "arrows", "parquet": "parquet"}


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
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self._chunks.append(data)
        self._written += len(data)
        return len(data)

    def take(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data

    def tell(self) -> int:  # the Parquet writer asks where it is
        return self._written

    def seekable(self) -> bool:
        return False


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


def csv_chunks(result: QueryResult, first: pa.RecordBatch | None) -> Iterator[bytes]:
    """CSV (RFC 4180: a header line, then one line per row, strings quoted), one chunk per record batch.
    Values as Arrow's CSV writer writes them (decimals as written, dates and times ISO-8601, null as an empty
    field); columns it cannot write become text first (``csv_ready``): binary as base64, lists and structs as
    JSON, as in the JSON formats."""
    sink = _Chunks()
    schema = csv_ready(pa.RecordBatch.from_pylist([], schema=result.schema)).schema
    writer = pa_csv.CSVWriter(sink, schema)
    yield sink.take()  # the header
    batches = itertools.chain([first], result.reader) if first is not None else iter(())
    for batch in batches:
        writer.write_batch(csv_ready(batch))
        yield sink.take()
    writer.close()
    yield sink.take()


def csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with the columns Arrow's CSV writer does not take as text: string views cast to strings,
    binary as base64, nested types (list, struct, map) as JSON text."""
    columns, changed = [], False
    for column in batch.columns:
        kind = column.type
        if pa.types.is_string_view(kind):
            column, changed = column.cast(pa.string()), True
        elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind) \
                or pa.types.is_binary_view(kind) or pa.types.is_nested(kind):
            encode = json.JSONEncoder(default=json_value).encode
            texts = [None if v is None else base64.b64encode(v).decode() if isinstance(v, bytes) else encode(v)
                     for v in column.to_pylist()]
            column, changed = pa.array(texts, pa.string()), True
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


def parquet_chunks(result: QueryResult, first: pa.RecordBatch | None, memory: MemoryBudget | None = None
                   ) -> Iterator[bytes]:
    """A Parquet file written row group by row group: batches are buffered up to ``PARQUET_ROW_GROUP_ROWS``
    rows or ``PARQUET_ROW_GROUP_BYTES`` bytes, then written as one row group and sent; the footer comes last
    (a stream cut off by an error has none, so it is never read as a whole file).

    The buffer is charged to the process-wide budget ``memory`` (an account of this download's own, which
    outlives the query's: the last row group is written after the query ended), ``PARQUET_CHARGE`` times the
    buffered Arrow bytes (the batches and their encoded pages), and given back once the row group was sent.
    A batch the budget has no room for is written at once with what is buffered (a smaller row group; the
    refusal counted as ``gateway_memory_refused_total{kind="encoding"}``): many downloads at once never
    buffer more than the budget holds."""
    account = memory.account() if memory is not None else None
    try:
        sink = _Chunks()
        writer = pq.ParquetWriter(sink, result.schema)
        buffered: list[pa.RecordBatch] = []
        rows = size = 0
        batches = itertools.chain([first], result.reader) if first is not None else iter(())
        for batch in batches:
            buffered.append(batch)
            rows, size = rows + batch.num_rows, size + batch.nbytes
            room = account is None or account.grow(PARQUET_CHARGE * batch.nbytes, kind="encoding")
            if rows >= PARQUET_ROW_GROUP_ROWS or size >= PARQUET_ROW_GROUP_BYTES or not room:
                writer.write_table(pa.Table.from_batches(buffered, result.schema), row_group_size=max(rows, 1))
                buffered, rows, size = [], 0, 0
                yield sink.take()
                if account is not None:
                    account.shrink(account.bytes)  # sent
        if rows:
            writer.write_table(pa.Table.from_batches(buffered, result.schema), row_group_size=rows)
        writer.close()
        yield sink.take()
    finally:
        if account is not None:
            account.close()
