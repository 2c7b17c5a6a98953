"""Shared machinery for sources reached through an ADBC driver (PostgreSQL, SQLite)."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from adbc_driver_manager import NotSupportedError
from sqlglot import exp

from connectors.arrow.streams import conformed_reader
from connectors.base import Connector, Fragment
from connectors.errors import SourceQueryError, SourceUnavailableError
from connectors.pool import ConnectionPool

log = logging.getLogger(__name__)


def sql_literal(value: str) -> str:
    """A safely quoted SQL string literal (used for introspection queries; no user SQL is built this way)."""
    return exp.Literal.string(value).sql()


class AdbcConnector(Connector):
    """A connector whose source speaks SQL through an ADBC DB-API driver.

    Subclasses implement ``_connect()`` (a new DB-API connection; raise on failure) and the introspection
    methods. ``scan`` streams a fragment's result through ``cursor.fetch_record_batch()`` and returns the
    pooled connection when the stream ends or fails.
    """

    #: rows of a typed witness row prepended to each fragment, dropped before conforming (SQLite only)
    witness_rows: int = 0

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self._pool = ConnectionPool(self._checked_connect, size=int(options.get("pool_size", 4)))

    def _connect(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _checked_connect(self):
        try:
            return self._connect()
        except SourceUnavailableError:
            raise
        except Exception as exc:
            raise SourceUnavailableError(self.name, _first_line(exc)) from exc

    def fetch_table(self, sql: str) -> pa.Table:
        """Run a small metadata query and return all its rows. Raises SourceQueryError/Unavailable."""
        conn, reused = self._pool.acquire_reporting()
        while True:
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    table = cur.fetch_arrow_table()
            except Exception as exc:
                self._pool.release(conn, broken=True)
                if reused and connection_lost(exc):  # died while pooled (a server restart): once more, anew
                    conn, reused = self._pool.acquire_new(), False
                    continue
                raise self._error(exc, sql) from exc
            self._pool.release(conn)
            return table

    def _error(self, exc: BaseException, sql: str) -> SourceQueryError | SourceUnavailableError:
        """The source's error for a failed statement: unavailable when the connection is gone (clients retry
        on 503 / UNAVAILABLE), else the statement's failure."""
        if isinstance(exc, SourceUnavailableError | SourceQueryError):
            return exc
        if connection_lost(exc):
            return SourceUnavailableError(self.name, _first_line(exc))
        return SourceQueryError(self.name, _first_line(exc), sql)

    def fragment_sql(self, fragment: Fragment) -> str:
        """The SQL actually sent for a fragment (subclasses may wrap it)."""
        return fragment.sql

    def scan(self, fragment: Fragment, cancel_key: int | None = None) -> pa.RecordBatchReader:
        """Stream ``fragment`` from the source, conformed to ``fragment.schema``.

        The statement starts here (so its errors surface at once); rows are read as the returned reader is
        consumed. ``cancel_key``: the ``id`` of the fragment ``cancel`` will be called with, when a subclass
        scans a rewritten fragment (or several) in its place. Raises SourceUnavailableError, SourceQueryError.
        """
        self.scans += 1
        sql = self.fragment_sql(fragment)
        key = id(fragment) if cancel_key is None else cancel_key
        conn, reused = self._pool.acquire_reporting()
        while True:
            try:
                cur = conn.cursor()
                self._running.setdefault(key, []).append(cur)  # for cancel(), from another thread
                cur.execute(sql)
                reader = cur.fetch_record_batch()
                break
            except Exception as exc:
                self._forget(key, cur)
                self._pool.release(conn, broken=True)
                if reused and connection_lost(exc):  # died while pooled (a server restart): once more, anew
                    conn, reused = self._pool.acquire_new(), False
                    continue
                raise self._error(exc, sql) from exc

        def batches() -> Iterator[pa.RecordBatch]:
            broken = True
            try:
                yield from reader
                if id(cur) in self._cancelled:
                    # a cancelled stream may just end: never let that pass as a complete result
                    raise SourceQueryError(self.name, "the statement was cancelled", sql)
                broken = False
            except GeneratorExit:
                raise
            except Exception as exc:
                raise self._error(exc, sql) from exc
            finally:
                self._forget(key, cur)
                self._cancelled.discard(id(cur))
                try:
                    cur.close()
                except Exception:
                    broken = True
                self._pool.release(conn, broken=broken)

        # Start the stream now: a generator that never started does not run its ``finally`` when dropped, so
        # a query cancelled before reading would leave the connection neither closed nor pooled.
        stream = batches()
        try:
            first = [next(stream)]
        except StopIteration:
            first = []
        return conformed_reader(fragment.schema, itertools.chain(first, stream), skip_rows=self.witness_rows)

    def close(self) -> None:
        self._pool.close()

    def table_expression(self, schema: str, table: str) -> exp.Table:
        return exp.table_(table, db=schema, quoted=True)

    @property
    def _cancelled(self) -> set[int]:
        """id(cursor) of statements cancelled while running (not id(fragment): a cached plan reruns its fragments)."""
        return self.__dict__.setdefault("_cancelled_fragments", set())

    @property
    def _running(self) -> dict[int, list[Any]]:
        """id(fragment) -> the cursors running its statements (see ``cancel``)."""
        running = self.__dict__.get("_running_cursors")
        if running is None:
            running = self.__dict__.setdefault("_running_cursors", {})
        return running

    def _forget(self, key: int, cur: Any) -> None:
        cursors = self._running.get(key)
        if cursors is not None and cur in cursors:
            cursors.remove(cur)
            if not cursors:
                self._running.pop(key, None)

    def cancel(self, fragment: Fragment) -> None:
        """Cancel the fragment's running statements (ADBC ``AdbcStatementCancel``: PostgreSQL gets a cancel
        request, so the backend stops); their streams then fail and the connections are discarded. A driver
        without cancel (SQLite) is not an error: the engine stops reading at the next batch, which closes the
        cursor."""
        for cur in list(self._running.get(id(fragment), ())):
            self._cancelled.add(id(cur))  # by cursor: a cached plan runs the same fragment object again
            try:
                cur.adbc_cancel()
            except NotSupportedError:
                pass


#: errors that mean the connection or the server is gone, not that the statement failed (PostgreSQL: libpq's
#: messages; SQLite: the file)
_CONNECTION_LOST = re.compile(
    r"server closed the connection|terminating connection|connection (?:to server .* failed|refused|reset)"
    r"|could not connect|no connection to the server|PQgetCopyData|PQgetResult|SSL SYSCALL|broken pipe"
    r"|EOF detected|the database system is (?:shutting down|starting up|in recovery)|IO error|unable to open",
    re.IGNORECASE)


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection or server is gone (reported as SourceUnavailableError, and a
    statement on a pooled connection is retried once on a new one)."""
    return bool(_CONNECTION_LOST.search(str(exc)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
