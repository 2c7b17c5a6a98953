"""What the ``gateway`` command and ``gateway shell`` share: where queries run (in-process or on a server through
``gateway.client``), running one with progress and Ctrl-C, and writing its result in each output format.

- ``LocalBackend(engine)`` / ``RemoteBackend(connection)``: ``execute(sql, cancel)`` returns a running query
  (``schema``, ``reader`` of Arrow record batches, ``cancel()``), ``explain(sql, analyze)`` the plan text,
  ``names()`` the catalog's names for completion.
- ``QueryRun``: one query read on a worker thread, so that the main thread stays free for Ctrl-C (which cancels
  the query: the engine's source statements, or the server's query by Flight SQL CancelFlightInfo) and for a
  spinner with elapsed time, rows and bytes so far (stderr, a terminal only, after one second).
- ``sink(format, ...)`` (from ``gateway.sinks``): the output formats.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa
from rich.console import Console
from sqlglot.errors import TokenError
from sqlglot.tokens import Tokenizer, TokenType

from catalog.catalog import TableRef
from gateway.client import Connection
from gateway.errors import GatewayError
from gateway.execution.engine import QueryEngine
from gateway.sinks import (  # noqa: F401  (the CLI and the shell name formats and sinks from here)
    BINARY_FORMATS,
    DEFAULT_MAX_ROWS,
    FORMATS,
    TEXT_FORMATS,
    Sink,
    sink,
)

SPINNER_AFTER_S = 1.0


class Running(Protocol):
    """A running query: its result ``schema``, a ``reader`` of record batches, and a thread-safe ``cancel()``."""

    schema: pa.Schema
    reader: pa.RecordBatchReader

    def cancel(self) -> None: ...


@dataclass
class CatalogNames:
    """The names a shell completes: sources, ``source.schema``, tables (qualified and bare) and columns."""

    sources: list[str] = field(default_factory=list)
    schemas: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)

    def add_table(self, source: str, schema: str, table: str, columns: list[str]) -> None:
        """Record one table: ``source.schema.table``, ``source.table`` (the short form the gateway resolves when
        a source has one schema), the bare name, and its columns."""
        self.tables.extend((f"{source}.{schema}.{table}", f"{source}.{table}", table))
        self.columns.extend(columns)

    def words(self) -> list[str]:
        """Every name once, in a stable order."""
        return list(dict.fromkeys([*self.sources, *self.schemas, *self.tables, *self.columns]))


class LocalBackend:
    """Queries run in this process by a ``QueryEngine`` over the config's sources."""

    where = "in-process"

    def __init__(self, engine: QueryEngine, timeout_s: float | None = None) -> None:
        self.engine = engine
        self.timeout_s = timeout_s

    def execute(self, sql: str, cancel: threading.Event) -> Running:
        """Start ``sql``; setting ``cancel`` stops it (also before its first rows)."""
        return self.engine.execute(sql, cancel=cancel, timeout_s=self.timeout_s)

    def explain(self, sql: str, analyze: bool = False) -> str:
        """The federated plan as text (``analyze``: run it, rows and bytes per fragment)."""
        return self.engine.explain(sql, analyze=analyze)

    def names(self) -> CatalogNames:
        """The catalog's names (from its in-memory copy; a source that cannot be read is left out)."""
        catalog = self.engine.catalog
        names = CatalogNames(sources=catalog.list_catalogs())
        refs, _ = catalog.available_tables()
        refs += [view.ref for view in catalog.views if view.schema is not None]  # named views complete too
        for ref in refs:
            names.schemas.append(f"{ref.source}.{ref.schema}")
            try:
                columns = catalog.table_schema(TableRef(ref.source, ref.schema, ref.table)).names
            except GatewayError:
                columns = []
            names.add_table(ref.source, ref.schema, ref.table, columns)
        names.schemas = list(dict.fromkeys(names.schemas))
        return names

    def close(self) -> None:
        """Close the engine (its fragment reader threads are stopped and joined)."""
        self.engine.close()


class RemoteBackend:
    """Queries run on a gateway server, through ``gateway.client`` (Flight SQL over ADBC)."""

    def __init__(self, connection: Connection, uri: str) -> None:
        self.connection = connection
        self.where = uri
        self._cancelled = False

    def execute(self, sql: str, cancel: threading.Event) -> Running:
        """Start ``sql`` on the server (``cancel`` is honoured by ``QueryRun``, which calls ``cancel()``)."""
        running = self.connection.execute(sql)
        cancel_query = running.cancel

        def cancel_and_remember() -> None:
            self._cancelled = True
            cancel_query()

        running.cancel = cancel_and_remember
        return running

    def explain(self, sql: str, analyze: bool = False) -> str:
        """The server's plan text (``EXPLAIN`` / ``EXPLAIN ANALYZE`` as a query)."""
        return self.connection.explain(sql) if not analyze else "\n".join(
            self.connection.query(f"EXPLAIN ANALYZE {sql}").column("plan").to_pylist())

    def names(self) -> CatalogNames:
        """The names the server's metadata calls list (ADBC GetObjects down to columns, one call)."""
        names = CatalogNames()
        for (source, schema, table), columns in self.connection.catalog_names().items():
            if source not in names.sources:
                names.sources.append(source)
            names.schemas.append(f"{source}.{schema}")
            names.add_table(source, schema, table, columns)
        names.schemas = list(dict.fromkeys(names.schemas))
        return names

    def close(self) -> None:
        """Close the connection, unless a query of it was cancelled: the ADBC Flight SQL driver (1.13) can abort
        the process (a double free) closing a connection after a cancelled DoGet. Only the CLI's exit follows
        (``gateway.cli.main`` ends the process without finalizers), so nothing is lost by leaving it open."""
        if not self._cancelled:
            self.connection.close()


# ---- statements ---------------------------------------------------------------------------------------------------


def _tokens(text: str) -> list | None:
    try:
        return Tokenizer().tokenize(text)
    except TokenError:  # an unterminated string or comment
        return None


def split_statements(text: str) -> list[str]:
    r"""The statements of ``text``, split at the ``;`` that end them (not those inside strings or comments);
    blank or comment-only pieces are dropped, each statement keeps its own comments.

        >>> split_statements("-- the count\nSELECT 1; SELECT ';' AS s;\n")
        ['-- the count\nSELECT 1', "SELECT ';' AS s"]
    """
    tokens = _tokens(text)
    if tokens is None:
        return [text.strip()] if text.strip() else []
    statements, start, seen = [], 0, False
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if seen:
                statements.append(text[start:token.start].strip())
            start, seen = token.end + 1, False
        else:
            seen = True
    if seen:
        statements.append(text[start:].strip())
    return statements


def is_complete(text: str) -> bool:
    """Whether ``text`` ends a statement: its last token is a ``;`` (outside strings and comments)."""
    tokens = _tokens(text)
    return bool(tokens) and tokens[-1].token_type == TokenType.SEMICOLON


# ---- one query, with progress and Ctrl-C -------------------------------------------------------------------------


def human_bytes(n: float) -> str:
    """``1.5 MB``-style size (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class QueryRun:
    """One query executed and read into a ``Sink`` on a worker thread.

    ``wait(progress)`` blocks the calling (main) thread until the query ends and re-raises its error; a
    KeyboardInterrupt (Ctrl-C) while waiting cancels the query (``cancel``) and is raised again once the worker
    has stopped (at most ``cancel_wait_s`` later). ``rows`` and ``bytes`` (Arrow buffer sizes)
    count what has been read so far; ``elapsed_s`` the wall time since ``start``.
    """

    cancel_wait_s = 10.0

    def __init__(self, backend, sql: str, out: Sink) -> None:
        self.backend, self.sql, self.sink = backend, sql, out
        self.rows = self.bytes = 0
        self.error: BaseException | None = None
        self.cancelled = threading.Event()
        self._running: Running | None = None
        self._thread = threading.Thread(target=self._work, name="gateway-cli-query", daemon=True)
        self.started = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def start(self) -> QueryRun:
        """Start the worker thread; returns self."""
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            running = self.backend.execute(self.sql, self.cancelled)
            self._running = running
            if self.cancelled.is_set():
                running.cancel()
            self.sink.begin(running.schema)
            for batch in running.reader:
                self.sink.write(batch)
                self.rows += batch.num_rows
                self.bytes += batch.nbytes
            self.sink.end()
        except BaseException as exc:  # handed to the waiting thread
            self.error = exc
        finally:
            close = getattr(self._running, "close", None)
            if close is not None:
                close()

    def cancel(self) -> None:
        """Cancel the query (from any thread)."""
        self.cancelled.set()
        if self._running is not None:
            self._running.cancel()

    def wait(self, progress: Callable[[QueryRun], None] | None = None) -> None:
        """Wait for the end; ``progress(self)`` is called about ten times a second meanwhile."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.1)
                if progress is not None:
                    progress(self)
        except KeyboardInterrupt:
            self.cancel()
            self._thread.join(self.cancel_wait_s)
            raise
        if self.error is not None:
            raise self.error


class Spinner:
    """A transient status line on ``console`` (stderr) shown once a query has run ``after_s`` seconds: elapsed
    time, rows and bytes so far. Only on a terminal; nothing is drawn otherwise."""

    def __init__(self, console: Console, after_s: float = SPINNER_AFTER_S) -> None:
        self.console, self.after_s = console, after_s
        self.status = None

    def __call__(self, run: QueryRun) -> None:
        if not self.console.is_terminal or run.elapsed_s < self.after_s:
            return
        text = (f"running {run.elapsed_s:.1f} s · {run.rows:,} rows · {human_bytes(run.bytes)}"
                "  [dim](Ctrl-C cancels)[/]")
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def stop(self) -> None:
        """Remove the status line (if one was shown)."""
        if self.status is not None:
            self.status.stop()
            self.status = None


def run_query(backend, sql: str, out: Sink, stderr: Console, spinner: bool = True) -> QueryRun:
    """Run ``sql`` on ``backend`` into ``out`` with a spinner on ``stderr``; returns the finished run.
    Raises the query's GatewayError, or KeyboardInterrupt after Ctrl-C (the query cancelled)."""
    run = QueryRun(backend, sql, out).start()
    progress = Spinner(stderr) if spinner else None
    try:
        run.wait(progress)
    finally:
        if progress is not None:
            progress.stop()
    out.finish()
    return run
