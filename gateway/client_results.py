"""What a client's statements return besides whole tables: a DB-API ``Cursor``, a ``RemoteQuery`` still running
(its reader and ``cancel()``), and an ``Answer`` (a result with its freshness manifest), each raising the gateway's
own errors (``gateway.client``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from gateway.client_errors import rebuild_error


class Cursor:
    """A DB-API 2.0 cursor (the ADBC driver's), whose errors are the gateway's exception classes."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def __getattr__(self, name: str):
        attribute = getattr(self._cursor, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            try:
                return attribute(*args, **kwargs)
            except Exception as exc:
                raise rebuild_error(exc) from exc

        return call

    def __iter__(self):
        return iter(self._cursor)

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc) -> None:
        self._cursor.close()



@dataclass
class Answer:
    """A whole result (``table``) with its freshness ``manifest`` (None from a gateway that sends none)."""

    table: pa.Table
    manifest: dict | None


class RemoteQuery:
    """A query running on a gateway (``Connection.execute``): ``schema``, ``reader`` (a
    ``pyarrow.RecordBatchReader`` whose errors are the gateway's classes) and ``cancel()``."""

    def __init__(self, cursor, reader: pa.RecordBatchReader) -> None:
        self._cursor = cursor
        self.schema: pa.Schema = reader.schema
        self.reader = pa.RecordBatchReader.from_batches(reader.schema, self._batches(reader))

    def _batches(self, reader) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except Exception as exc:
                raise rebuild_error(exc) from exc
            yield batch

    def cancel(self) -> None:
        """Ask the gateway to cancel the query (Flight SQL CancelFlightInfo through ADBC); the reader then
        raises QueryCancelledError or ends. Safe from another thread; a no-op once the query has finished."""
        with contextlib.suppress(Exception):
            self._cursor.adbc_cancel()

    def close(self) -> None:
        """Release the statement (its stream is dropped on the gateway)."""
        with contextlib.suppress(Exception):
            self._cursor.close()

    def __enter__(self) -> RemoteQuery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


