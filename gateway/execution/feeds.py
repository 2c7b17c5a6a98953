"""Fragment feeds: how one fragment's rows reach the residual plan or, pushed whole, the client.

A ``FragmentFeed`` reads its fragment (from the partition cache or the connector) on its own thread. Passed
through (a whole query pushed to one source) its batches go through a ``BatchChannel``: a slow client stops
the source reads instead of filling memory. Under a residual plan the fragment is collected (DataFusion can
only read a finished dataset from Python), in memory up to ``spill_bytes`` and in an Arrow IPC file beyond,
and registered as a native DataFusion table. An ``InPlaceFeed`` fetches nothing: the residual plan scans the
fragment's files itself.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import pyarrow as pa
from datafusion import SessionContext
from sqlglot import exp

from catalog import Catalog
from connectors.arrow import workers
from connectors.arrow.datafusion import plain_schema
from connectors.arrow.streams import BatchChannel
from connectors.base import Fragment
from gateway.cache.scanner import CachedScanner
from gateway.errors import QueryCancelledError
from gateway.execution.kill_switch import guard_tree
from gateway.execution.memory import MemoryAccount
from gateway.execution.runtime_filters import keys_batch
from gateway.metrics import FragmentStats

log = logging.getLogger(__name__)


class FragmentFeed:
    """Reads one fragment on its own thread; counts rows and bytes.

    Two modes. *stream* (a whole query pushed to one source): batches pass through a bounded
    ``BatchChannel``, so a slow client stops the source reads instead of filling memory; the batches waiting
    there are charged to the query's ``memory`` account (none wait when the budget is full). *collect* (fragments
    of a residual plan): DataFusion can only read a finished dataset from Python, so each fragment is gathered
    by its own thread (all in parallel), in memory up to ``spill_bytes`` (and while the query's ``memory``
    account of the process-wide budget can grow) and in an Arrow IPC file beyond, which DataFusion then scans
    from disk.
    """

    def __init__(self, fragment: Fragment, catalog: Catalog, depth: int, cancel: threading.Event,
                 scanner: CachedScanner | None = None, max_staleness_s: float | None = None,
                 collect: bool = False, spill_dir: str | None = None, spill_bytes: int = 256 << 20,
                 stats: FragmentStats | None = None, memory: MemoryAccount | None = None) -> None:
        self.fragment = fragment
        self._scanner = scanner
        self._max_staleness_s = max_staleness_s
        self.stats = stats or FragmentStats(fragment.id, fragment.source, fragment.sql)
        self.stats.estimated_rows = fragment.estimated_rows
        self._catalog = catalog
        self._channel = BatchChannel(depth, cancel)
        self._cancel = cancel
        self._collect = collect
        self._spill_dir = spill_dir
        self._spill_bytes = spill_bytes
        self._memory = memory  # the query's share of the process-wide budget: kept batches reserve from it
        self._kept: list[pa.RecordBatch] = []
        self._kept_bytes = 0
        self._queued: collections.deque[int] = collections.deque()  # stream mode: bytes charged per queued batch
        self._taken = threading.Condition()  # stream mode: notified whenever the consumer takes a batch
        self.spill_path: str | None = None
        self._writer = None
        self.started = threading.Event()  # set once the source answered (first batch, end, or error)
        self._cancel_requested = threading.Event()  # cancel_source() sends one request per fragment
        self.done = threading.Event()  # collect mode: every batch is kept
        self.error: BaseException | None = None
        # the source is read on its own (reused) thread even when passed through: on two cores, decoding there
        # overlaps with sending (measured: reading on the consumer's thread was 2x slower)
        self._thread = workers.start(self._run, f"fragment-{fragment.id}")

    def _open(self) -> pa.RecordBatchReader:
        if self._scanner is not None:
            return self._scanner.scan(self.fragment, self._max_staleness_s, self.stats.partitions)
        return self._catalog.connector(self.fragment.source).scan(self.fragment)

    def _keep(self, batch: pa.RecordBatch) -> None:
        # spilled past this fragment's own limit, or once the process-wide budget has no room for the batch
        if self._writer is None and (self._kept_bytes + batch.nbytes > self._spill_bytes or (
                self._memory is not None and not self._memory.grow(batch.nbytes))):
            fd, self.spill_path = tempfile.mkstemp(prefix=f"gateway-{self.fragment.id}-", suffix=".arrow",
                                                   dir=self._spill_dir)
            os.close(fd)
            self._writer = pa.ipc.new_file(self.spill_path, self.fragment.schema)
            for kept in self._kept:
                self._writer.write_batch(kept)
            if self._memory is not None:
                self._memory.shrink(self._kept_bytes)  # on disk now
            self._kept, self._kept_bytes = [], 0
        if self._writer is not None:
            self._writer.write_batch(batch)
        else:
            self._kept.append(batch)
            self._kept_bytes += batch.nbytes

    def _pass(self, batch: pa.RecordBatch) -> bool:
        """Stream mode: hand ``batch`` to the consumer through the channel; False once it is closed. A batch
        waiting in the channel is charged to the query's ``memory`` account (given back when the consumer takes
        it); when the budget has no room for it, it waits until the consumer took every earlier batch and is
        then handed over alone, uncharged (the stream goes on without read-ahead instead of failing)."""
        charged = 0
        if self._memory is not None:
            if self._memory.grow(batch.nbytes, kind="stream"):
                charged = batch.nbytes
            else:
                with self._taken:
                    while self._queued and not self._channel.closed:
                        self._taken.wait(0.1)
        with self._taken:
            self._queued.append(charged)
        return self._channel.put(batch)

    def _taken_one(self) -> None:
        """Stream mode: the consumer took the oldest queued batch: give back what it was charged."""
        with self._taken:
            charged = self._queued.popleft() if self._queued else 0
            self._taken.notify_all()
        if charged and self._memory is not None:
            self._memory.shrink(charged)

    def _run(self) -> None:
        t0 = time.perf_counter()
        reader = None
        try:
            reader = self._open()
            for batch in reader:
                self.stats.rows += batch.num_rows
                self.stats.bytes += batch.nbytes
                self.started.set()
                if self._cancel.is_set():
                    break
                if self._collect:
                    self._keep(batch)
                elif not self._pass(batch):
                    break
        except BaseException as exc:
            self.error = exc
        finally:
            self.stats.seconds = time.perf_counter() - t0
            if reader is not None and self._cancel.is_set():
                try:
                    reader.close()
                except Exception:
                    pass
            if self._writer is not None:
                self._writer.close()
            # destroy the native reader here, before the consumer can see the end: a daemon thread still
            # inside pyarrow's reader destructor when the interpreter exits aborts the process (std::terminate)
            reader = None
            self.started.set()
            self.done.set()
            if not self._collect:
                self._channel.finish(self.error)

    def stop(self, timeout: float) -> None:
        """Cancel the read (its query's cancel event and source statement) and wait up to ``timeout`` seconds
        for the reading thread to end."""
        self._cancel.set()
        self.cancel_source()
        self._thread.join(timeout)

    def cancel_source(self) -> None:
        """Ask the connector to cancel the source statement if it still runs (a no-op once it ended or was
        asked). Never blocks: the request is sent from its own thread, since sending it may wait on a stalled
        server (PostgreSQL's cancel request opens a connection to the postmaster)."""
        if self._thread.is_alive() and not self._cancel_requested.is_set():
            self._cancel_requested.set()
            workers.start(self._send_cancel, f"cancel-{self.fragment.id}")

    def _send_cancel(self) -> None:
        try:
            self._catalog.connector(self.fragment.source).cancel(self.fragment)
        except Exception as exc:  # cancelling is best effort; the statement ends with its connection
            log.warning("source cancel failed", extra={"source": self.fragment.source, "error": str(exc)})

    def _raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            self.cancel_source()
            raise QueryCancelledError("the query was cancelled")

    def _wait_done(self) -> None:
        while not self.done.wait(0.1):
            self._raise_if_cancelled()
        if self.error is not None:
            raise self.error

    def kept_batches(self, row_limit: int) -> list[pa.RecordBatch] | None:
        """Collect mode: all batches once the fragment ended within ``row_limit`` rows, else None (as soon as
        it passes the limit). Raises the fragment's error."""
        while not self.done.wait(0.05):
            if self.stats.rows > row_limit or self._cancel.is_set():
                return None
        if self.error is not None:
            raise self.error
        return None if self.spill_path is not None or self.stats.rows > row_limit else list(self._kept)

    def register(self, ctx: SessionContext, target_partitions: int) -> None:
        """Collect mode: register the fragment in ``ctx`` under its id as a native DataFusion table: record
        batches in ``target_partitions`` partitions (scanned in parallel), or the spilled Arrow IPC file."""
        self._wait_done()
        if self.spill_path is not None:
            ctx.register_arrow(self.fragment.id, self.spill_path)
            return
        plain = plain_schema(self.fragment.schema)
        batches = [b if b.schema == plain else b.cast(plain) for b in self._kept] or [_empty_batch(plain)]
        parts = [batches[i::target_partitions] for i in range(target_partitions)]
        ctx.register_record_batches(self.fragment.id, [part for part in parts if part])

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Stream mode: the fragment's batches as they arrive; QueryCancelledError once the query is cancelled
        while waiting (the source statement is cancelled too)."""
        for batch in self._channel.batches(idle=self._raise_if_cancelled):
            self._taken_one()
            yield batch

    def cleanup(self) -> None:
        """Remove the spill file, if any."""
        if self.spill_path is not None:
            self.done.wait(5)
            try:
                os.unlink(self.spill_path)
            except OSError:
                pass


class InPlaceFeed:
    """A fragment the residual plan reads in place (``Connector.native_view``: files DataFusion scans
    itself). Nothing is fetched ahead: DataFusion decodes only what the whole query needs and its hash joins
    prune the files' row groups by the build side's keys. Rows and bytes are read off the residual plan's
    scan metrics once it ran (``residual.record_scan_metrics``). Same interface as ``FragmentFeed``'s collect
    mode."""

    def __init__(self, fragment: Fragment, catalog: Catalog,
                 fallback: Callable[[Fragment, FragmentStats], FragmentFeed],
                 keys: dict[str, pa.Array] | None = None, literal: Callable[[], Fragment] | None = None,
                 scanner: CachedScanner | None = None, max_staleness_s: float | None = None) -> None:
        self.fragment = fragment
        self._scanner = scanner  # a source with a cache rule is read from its cached partitions
        self._max_staleness_s = max_staleness_s
        self.stats = FragmentStats(fragment.id, fragment.source, fragment.sql, read_in_place=True)
        self._catalog = catalog
        self._fallback = fallback  # starts a fetching feed when the source declines (rare shapes)
        self._keys = keys or {}  # tables of keys its semi-join restrictions read (runtime_filters.restrict)
        self._literal = literal  # makes the fragment with literal key conditions, fetched should the source decline
        self.started = threading.Event()
        self.started.set()
        self.done = self.started
        self.error: BaseException | None = None
        self.spill_path: str | None = None

    def register(self, ctx: SessionContext, target_partitions: int) -> None:
        for name, keys in self._keys.items():
            ctx.register_record_batches(name, [[keys_batch(keys)]])
        if self._scanner is not None and self._scanner.cached_source(self.fragment.source):
            view = self._scanner.native_view(self.fragment, ctx, self._max_staleness_s, self.stats.partitions)
        else:
            view = self._native_view(ctx)
        if view is None:
            self.stats.read_in_place = False
            feed = self._fallback(self._literal() if self._literal is not None else self.fragment, self.stats)
            feed.register(ctx, target_partitions)
            return
        ctx.register_view(self.fragment.id, view)

    def _native_view(self, ctx: SessionContext):
        """The connector's view of the fragment in ``ctx`` (its joins guarded by the kill switch), or None."""
        connector = self._catalog.connector(self.fragment.source)
        guarded = _guarded(self.fragment)
        try:  # the fragment's own joins (a join group of files) carry the residual session's kill switch
            view = connector.native_view(guarded, ctx) if guarded is not None else None
        except Exception:  # never expected: the view as it was
            log.warning("in-place fragment runs without its kill switch", extra={"fragment": self.fragment.id})
            view = None
        return view if view is not None else connector.native_view(self.fragment, ctx)

    def cancel_source(self) -> None:
        """Nothing runs outside the residual plan."""

    def cleanup(self) -> None:
        """Nothing to remove."""


Feed = FragmentFeed | InPlaceFeed


def _guarded(fragment: Fragment) -> Fragment | None:
    """The fragment with the kill switch in its joins (``guard_tree`` on a copy of its tree; its SQL text, shown
    by EXPLAIN, stays as it was), or None when it has none to guard."""
    if not isinstance(fragment.ast, exp.Select) or not fragment.ast.args.get("joins"):
        return None
    tree = fragment.ast.copy()
    return dataclasses.replace(fragment, ast=tree) if guard_tree(tree) else None


def wait_until_answered(feeds: list[Feed], cancel: threading.Event, error: Callable[[], BaseException]) -> None:
    """Wait until every feed's source has answered (first batch, end, or error) and raise the first error of
    one that failed; once ``cancel`` is set, cancel every source statement and raise ``error()``."""
    for feed in feeds:
        while not feed.started.wait(0.1):
            if cancel.is_set():
                for other in feeds:
                    other.cancel_source()
                raise error()
        if feed.error is not None:
            raise feed.error


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)
