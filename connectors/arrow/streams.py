"""Arrow stream plumbing: one cancel-aware batch channel, type conformance, merged readers.

``BatchChannel`` is the one bounded hand-off of record batches between a producing thread (a source read, a
query pump) and a consumer: backpressure (a slow consumer stops the producer instead of filling memory),
cancellation (a set ``cancel`` event stops both sides), errors (the producer's error is raised to the
consumer) and early close (a consumer that goes away unblocks the producer).

>>> import threading
>>> channel = BatchChannel(depth=2)
>>> def produce():
...     for i in range(3):
...         if not channel.put(pa.record_batch({"x": [i]})):
...             return
...     channel.finish()
>>> threading.Thread(target=produce).start()
>>> [batch.column(0)[0].as_py() for batch in channel]
[0, 1, 2]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc


class _End:
    """The mark a producer leaves when it finished, with its error if it failed."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


_EMPTY = object()


class BatchChannel:
    """A bounded, cancel-aware queue of record batches from ``producers`` threads to one consumer.

    Producer side: ``put(batch)`` blocks while ``depth`` items wait and returns False once the consumer
    closed the channel or ``cancel`` is set (the producer then stops); ``finish(error)`` once at the end (each
    producer). Consumer side: iterate (``batches()`` with an ``idle`` hook) to get the batches in arrival
    order; the first producer error is raised, iteration stops when every producer finished or ``cancel`` is
    set (``finished`` tells which); ``close()`` when the consumer goes away early.

    ``put`` carries any object, so a producer can hand over a schema or a mark before its batches.
    """

    def __init__(self, depth: int, cancel: threading.Event | None = None, *, producers: int = 1,
                 poll_s: float = 0.1) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._cancel = cancel if cancel is not None else threading.Event()
        self._closed = threading.Event()
        self._producers = producers
        self._poll_s = poll_s
        self.finished = False  # every producer finished and the consumer saw it

    @property
    def closed(self) -> bool:
        """The consumer closed the channel or the query was cancelled: producers should stop."""
        return self._closed.is_set() or self._cancel.is_set()

    def put(self, batch) -> bool:
        """Hand ``batch`` to the consumer, waiting while the channel is full; False (not delivered) once the
        consumer closed it or ``cancel`` is set."""
        while not self.closed:
            try:
                self._queue.put(batch, timeout=self._poll_s)
                return True
            except queue.Full:
                continue
        return False

    def finish(self, error: BaseException | None = None) -> None:
        """This producer ended: normally (``error`` None) or with ``error``, raised to the consumer."""
        self.put(_End(error))

    def close(self) -> None:
        """The consumer is gone: waiting and later ``put`` calls return False."""
        self._closed.set()

    def __iter__(self) -> Iterator:
        return self.batches()

    def batches(self, idle: Callable[[], None] | None = None) -> Iterator:
        """The items as they arrive. ``idle`` is called each time nothing arrived within the poll interval
        (it may raise, e.g. when a client went away); iteration stops when ``cancel`` is set while waiting.
        Raises the first error a producer finished with."""
        running = self._producers
        while running:
            try:
                item = self._queue.get(timeout=self._poll_s)
            except queue.Empty:
                item = _EMPTY
            if item is _EMPTY:  # outside the except clause: an error ``idle`` raises has no queue.Empty context
                if idle is not None:
                    idle()
                if self._cancel.is_set():
                    return
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    self.close()
                    raise item.error
                running -= 1
                continue
            yield item
        self.finished = True


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast ``batch`` column by column (by position) to ``schema``, renaming to its field names.

    Extension types (PostgreSQL numeric arrives as ``arrow.opaque`` over strings) are cast from their
    storage. Raises ``pyarrow.ArrowInvalid`` when a value does not fit the target type.
    """
    if batch.num_columns != len(schema):
        raise ValueError(f"fragment returned {batch.num_columns} columns, expected {len(schema)}")
    columns = []
    for column, target in zip(batch.columns, schema, strict=True):
        if isinstance(column.type, pa.ExtensionType):
            column = column.storage
        if column.type != target.type:
            if pa.types.is_null(column.type):
                column = pa.nulls(len(column), target.type)
            elif pa.types.is_null(target.type) and column.null_count == len(column):
                column = pa.nulls(len(column))  # a NULL output the source typed (PostgreSQL: text)
            else:
                column = pc.cast(column, target.type)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def conformed_reader(
    schema: pa.Schema, batches: Iterator[pa.RecordBatch], skip_rows: int = 0
) -> pa.RecordBatchReader:
    """A reader that conforms each batch of ``batches`` to ``schema``, dropping the first ``skip_rows``."""

    def generate() -> Iterator[pa.RecordBatch]:
        to_skip = skip_rows
        for batch in batches:
            if to_skip:
                dropped = min(to_skip, batch.num_rows)
                batch = batch.slice(dropped)
                to_skip -= dropped
            if batch.num_rows:
                yield conform_batch(batch, schema)

    return pa.RecordBatchReader.from_batches(schema, generate())


def merge_readers(openers: list[Callable[[], pa.RecordBatchReader]], schema: pa.Schema) -> pa.RecordBatchReader:
    """``merged_batches`` as a reader of ``schema``."""
    return pa.RecordBatchReader.from_batches(schema, merged_batches(openers))


def merged_batches(openers: list[Callable[[], Iterable[pa.RecordBatch]]]) -> Iterator[pa.RecordBatch]:
    """The batches of several readers (a source read in splits over several connections): each ``opener`` is
    called on its own thread, which drains the reader it returns into one ``BatchChannel``; batches come out
    as they arrive. The first error (opening or reading) is raised to the consumer; stopping early stops the
    threads."""
    channel = BatchChannel(16, producers=len(openers))

    def drain(opener) -> None:
        try:
            for batch in opener():
                if not channel.put(batch):
                    return
        except BaseException as exc:  # handed to the consumer
            channel.finish(exc)
        else:
            channel.finish()

    threads = [threading.Thread(target=drain, args=(o,), daemon=True) for o in openers]
    for t in threads:
        t.start()

    def batches():
        try:
            yield from channel
        finally:
            channel.close()

    return batches()
