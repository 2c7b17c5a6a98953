"""The JSON and NDJSON encodings of a streamed result (``json_chunks``), and the JSON values of Arrow's Python
values (``json_value``: decimals as strings, dates and times ISO-8601, binary as base64), which the CSV format
uses too. ``gateway.api.streaming`` chooses the format and re-exports these names.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from gateway.api.errors import unexpected_error
from gateway.errors import GatewayError
from gateway.execution.engine import QueryResult

#: rows encoded per JSON/NDJSON chunk (a record batch is sliced: its Python values are built a slice at a time)
ROWS_PER_CHUNK = 8192


def json_chunks(result: QueryResult, first: pa.RecordBatch | None, query_id: str, ndjson: bool,
                rows_as_objects: bool = False) -> Iterator[bytes]:
    """The JSON (or NDJSON) encoding of a result, a chunk per at most ``ROWS_PER_CHUNK`` rows; ``first`` is
    the reader's first batch (already read). Rows are arrays by position (a dict would merge columns of one
    name, as in ``SELECT *`` over a join); values as ``json_value`` encodes them.

    JSON: ``{"query_id", "columns", "rows": [...], "row_count"}``, byte for byte what ``json.dumps`` gives
    for the whole document. NDJSON: ``{"query_id", "columns"}``, one line per row, ``{"row_count"}``. An error
    while streaming ends JSON with ``], "error": {...}`` left unterminated, NDJSON with an ``{"error": {...}}``
    line (``GatewayError.to_dict``'s shape; an unexpected failure is ``internal`` with an error id).

    ``rows_as_objects``: records only, the shape DuckDB's ``read_json``, ``pandas.read_json`` and ``jq`` read
    as a table: JSON is one array of ``{"column": value}`` objects, NDJSON one object per line, with no
    header or ``row_count`` (the ``x-query-id`` header names the query); a repeated column name gets a ``_2``,
    ``_3``... suffix. An error while streaming adds an ``{"error": {...}}`` element (JSON: and no closing
    bracket) or line."""
    encode = json.JSONEncoder(default=json_value).encode
    if rows_as_objects:
        names = unique_names(result.schema.names)
        pending, to_rows = ("" if ndjson else "["), lambda rows: [dict(zip(names, r, strict=True)) for r in rows]
    else:
        head = encode({"query_id": query_id,
                       "columns": [{"name": f.name, "type": str(f.type)} for f in result.schema]})
        pending, to_rows = (head + "\n" if ndjson else head[:-1] + ', "rows": ['), None
    count = 0
    batches = itertools.chain([first], result.reader) if first is not None else iter(())
    try:
        for batch in batches:
            for rows in row_slices(batch):
                rows = to_rows(rows) if to_rows else rows
                if ndjson:
                    text = "".join([encode(row) + "\n" for row in rows])
                else:
                    text = (", " if count else "") + encode(rows)[1:-1]
                count += len(rows)
                yield (pending + text).encode()
                pending = ""
    except Exception as exc:
        error = exc.to_dict() if isinstance(exc, GatewayError) else unexpected_error(exc, "/v1/query")
        yield (pending + _error_tail(encode, error, ndjson, rows_as_objects, count)).encode()
        return
    yield (pending + _end(encode, ndjson, rows_as_objects, count)).encode()


def _error_tail(encode: Callable[[Any], str], error: dict, ndjson: bool, rows_as_objects: bool, count: int) -> str:
    """What ends a JSON/NDJSON stream that failed after ``count`` rows (see ``json_chunks``)."""
    if ndjson:
        return encode(error) + "\n"
    if rows_as_objects:
        return (", " if count else "") + encode(error)
    return '], "error": ' + encode(error["error"])


def _end(encode: Callable[[Any], str], ndjson: bool, rows_as_objects: bool, count: int) -> str:
    """What ends a whole JSON/NDJSON stream of ``count`` rows."""
    if rows_as_objects:
        return "" if ndjson else "]"
    return encode({"row_count": count}) + "\n" if ndjson else f'], "row_count": {count}}}'


def unique_names(names: list[str]) -> list[str]:
    """``names`` with repeats suffixed ``_2``, ``_3``... (``["id", "id"]`` -> ``["id", "id_2"]``)."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


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


