"""DoGet of a statement: the query runs on a pump thread while the call's thread streams its batches.

The pump starts the query (``QueryEngine.execute_plan`` of the plan GetFlightInfo made, else ``execute`` of the
SQL text) and hands the schema and the first batch over a ``BatchChannel``; meanwhile the call's thread
watches for the client going away (``context.is_cancelled()``, only ever asked on the call's own thread) and
for CancelFlightInfo (``Statement.cancel``): either cancels the query, whose sources then stop their
statements. Once the first batch is there, the call's thread reads the rest itself (no second hand-off per
batch), checking between batches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyarrow import flight

from connectors.arrow import workers
from connectors.arrow.streams import BatchChannel
from flight_server.errors import unexpected_error
from flight_server.handles import Statement
from gateway.errors import QueryCancelledError
from gateway.execution.engine import QueryEngine, QueryResult
from gateway.metrics import query_protocol

#: items the pump may hand over ahead of the call's thread (the schema, the first batch, the hand-off mark)
PUMP_DEPTH = 8
#: the pump's mark: the first batch was handed over, the call's thread reads the rest from the result itself
_HANDOFF = object()


def run(engine: QueryEngine, statement: Statement, cancel: threading.Event) -> QueryResult:
    """Start ``statement``: its plan from GetFlightInfo when it still holds (nothing is planned again), else
    its SQL text, planned now (a plan given up, or made over an older catalog version)."""
    options = {"user": statement.owner, "cancel": cancel, "max_staleness_s": statement.max_staleness_s,
               "timeout_s": statement.timeout_s, **statement.scope}
    planned = statement.plan_for(engine.catalog.version)
    with query_protocol("flight_sql"):
        if planned is not None:
            return engine.execute_plan(statement.sql, *planned, statement.params, manifest=statement.manifest,
                                       **options)
        return engine.execute(statement.sql, statement.params, **options)


class _Pump:
    """The query of one DoGet, started on its own thread; ``cancel()`` stops it from any thread."""

    def __init__(self, engine: QueryEngine, statement: Statement) -> None:
        self.statement = statement
        self.channel = BatchChannel(PUMP_DEPTH, statement.cancel)
        self.result: QueryResult | None = None
        self._engine = engine
        self._engine_cancel = threading.Event()  # the engine's own; it also sets it when the query ends
        workers.start(self._run, "flight-doget")

    def _run(self) -> None:
        try:
            self.result = run(self._engine, self.statement, self._engine_cancel)
            self.channel.put(self.result.schema)
            try:
                first = self.result.reader.read_next_batch()
            except StopIteration:
                self.channel.finish()
                return
            if self.channel.put(first):
                self.channel.put(_HANDOFF)
        except BaseException as exc:
            self.channel.finish(exc)

    def cancel(self) -> None:
        self.statement.cancel.set()
        self._engine_cancel.set()
        if self.result is not None:
            self.result.cancel()

    def watcher(self, context) -> Callable[[], None]:
        """Called while the call's thread waits for the pump: raises once the client went away or
        CancelFlightInfo cancelled the statement (the query is cancelled first)."""

        def check() -> None:
            if context.is_cancelled():
                self.cancel()
                raise QueryCancelledError("the client went away")
            if self.statement.cancel.is_set():
                self.cancel()
                raise QueryCancelledError("the query was cancelled (CancelFlightInfo)")

        return check


def stream(engine: QueryEngine, context, statement: Statement, on_end: Callable[[], None]) -> flight.FlightDataStream:
    """The DoGet answer of ``statement`` (see the module docstring). Errors up to the schema are raised here,
    as the call's error; ``on_end`` is called once the stream ended, however it ended."""
    pump = _Pump(engine, statement)
    check = pump.watcher(context)
    items = pump.channel.batches(idle=check)
    try:
        schema = next(items, None)
        if schema is None:  # cancelled while waiting
            check()
            raise QueryCancelledError("the query was cancelled")
    except BaseException:
        on_end()
        raise
    return flight.GeneratorStream(schema, _batches(pump, items, context, check, on_end))


def _batches(pump: _Pump, items: Iterator, context, check: Callable[[], None], on_end: Callable[[], None]
             ) -> Iterator[pa.RecordBatch]:
    completed = False
    try:
        for item in items:
            if item is _HANDOFF:
                break
            yield item
        else:
            if not pump.channel.finished:  # the channel's cancel was set while it waited
                check()
                raise QueryCancelledError("the query was cancelled")
            completed = True
            return
        for batch in pump.result.reader:
            if context.is_cancelled() or pump.statement.cancel.is_set():
                pump.cancel()
                raise QueryCancelledError("the query was cancelled")
            yield batch
        completed = True
    except Exception as exc:
        raise unexpected_error(exc, "DoGet") from None
    finally:
        if not completed:  # the client went away or the stream was closed early: stop the sources
            pump.cancel()
            if pump.result is not None:
                pump.result.reader.close()  # ends the engine's generators now, which release the sources
        on_end()
