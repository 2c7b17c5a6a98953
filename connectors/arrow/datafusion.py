"""The one DataFusion boundary: every ``SessionContext`` the gateway builds comes from ``session()``.

Residual plans (the engine), file sources (the file connector), planning-time typing (the planner), cached
partitions filtered locally and dynamic-filter keys all run here, so target partitions, batch size, the memory
pool and the type settings are decided in one place. DataFusion's Python API (``datafusion`` 52):
https://datafusion.apache.org/python/.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from datafusion import RuntimeEnvBuilder, SessionConfig, SessionContext, udf

from connectors.arrow import workers

#: partitions of every DataFusion plan the gateway runs (file sources, residual plans): twice the cores, so a
#: few large files balance over smaller units (TPC-H SF1 on 2 cores: joins over lineitem 6-10% faster at 4
#: partitions than at 2)
TARGET_PARTITIONS = 2 * (os.cpu_count() or 1)

#: rows per batch of scans and residual plans: in-place file scans and joins over millions of rows pay per
#: batch (TPC-H SF1: Q3, Q5, Q18 10-20% faster than at DataFusion's default 8192 rows)
BATCH_SIZE = 65536


#: settings every session takes for right answers. DataFusion 55 runs an uncorrelated scalar sub-query as a
#: physical ScalarSubqueryExec, and its FilterPushdown then moves a filter comparing with it below a join when the
#: join's inputs share a column name, reading both names from one input: ``a2.amt + a1.amt > (SELECT SUM(f) ...)
#: AND a2.dt IS NULL`` over fuzz tables gave 12 rows where DuckDB and the logical rewrite give 9 (fuzz seed
#: 8080808 #520). Off, the sub-query is joined as in DataFusion 54.
CORRECTNESS_SETTINGS = {"datafusion.optimizer.enable_physical_uncorrelated_scalar_subquery": "false"}


def session(*, memory_bytes: int | None = None, spill_path: str | None = None, plain_types: bool = False,
            broadcast_builds: bool = False, target_partitions: int = TARGET_PARTITIONS,
            late_materialization: bool = False) -> SessionContext:
    """A DataFusion session with the gateway's settings.

    Args:
        memory_bytes: a fair spill pool of this many bytes (operators spill to disk beyond it); None: unbounded
            (planning-time and small local sessions that hold no user data beyond their inputs).
        spill_path: the directory for spill files (None: the OS temporary directory).
        plain_types: Parquet strings and binaries read as plain ``utf8``/``binary``, not the ``*_view`` types
            every client (ADBC, JDBC, pandas) would have to convert.
        broadcast_builds: hash joins build one shared table (CollectLeft) up to 64 MiB / 4M rows instead of
            hash-repartitioning the (often larger, in-place) probe side: 5-10% on TPC-H Q3, Q4, Q8, Q10, Q21.
        target_partitions: parallel partitions of each plan.
        late_materialization: Parquet scans evaluate their filters while decoding, and decode the other columns
            only for the rows kept (``Fragment.late_materialization`` says when that pays). DataFusion's own hash
            join dynamic filters stay on: the rows they dropped there (fuzz regression r50) were their columns
            found by name in the wrong input, which ``join_names.distinct_join_names`` prevents.
    """
    config = SessionConfig().with_target_partitions(target_partitions).with_batch_size(BATCH_SIZE)
    for key, value in CORRECTNESS_SETTINGS.items():
        config = config.set(key, value)
    if plain_types:
        config = config.set("datafusion.execution.parquet.schema_force_view_types", "false")
    if late_materialization:
        config = config.set("datafusion.execution.parquet.pushdown_filters", "true")
    if broadcast_builds:
        config = config.set("datafusion.optimizer.hash_join_single_partition_threshold", str(64 << 20))
        config = config.set("datafusion.optimizer.hash_join_single_partition_threshold_rows", "4000000")
    if memory_bytes is None:
        return SessionContext(config)
    runtime = RuntimeEnvBuilder().with_fair_spill_pool(memory_bytes)
    runtime = runtime.with_temp_file_path(spill_path) if spill_path else runtime.with_disk_manager_os()
    return SessionContext(config, runtime)


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` without field metadata (DataFusion keeps metadata into plans, where it never belongs)."""
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])


def plan_over_empty(sql: str, tables: Mapping[str, pa.Schema]):
    """DataFusion's optimized logical plan of ``sql`` over empty tables of these schemas, and the DataFrame
    over it: ``(plan, dataframe)``. Reads no data. Raises DataFusion's own exception when it cannot plan."""
    ctx = session(target_partitions=1)
    for name, schema in tables.items():
        ctx.register_dataset(name, ds.dataset(plain_schema(schema).empty_table()))
    optimized = ctx.sql(sql).optimized_logical_plan()
    return optimized, ctx.create_dataframe_from_logical_plan(optimized)


def run_local(sql: str, tables: Mapping[str, pa.Table | Sequence[pa.RecordBatch]],
              schemas: Mapping[str, pa.Schema] | None = None) -> pa.Table:
    """Run ``sql`` over small in-memory tables (cached partitions, a build side's keys) and return the result.

    ``tables`` maps a name to a table or to batches; ``schemas`` gives the schema of a name whose batches may
    be empty. Raises DataFusion's own exception on a bad query."""
    ctx = session(target_partitions=1)
    for name, data in tables.items():
        if isinstance(data, pa.Table):
            schema, batches = plain_schema(data.schema), data.cast(plain_schema(data.schema)).to_batches()
        else:
            schema, batches = plain_schema((schemas or {}).get(name) or data[0].schema), list(data)
        ctx.register_record_batches(name, [batches or [pa.RecordBatch.from_pylist([], schema=schema)]])
    return ctx.sql(sql).to_arrow_table()


def sql_type(type_sql: str) -> pa.DataType:
    """The Arrow type DataFusion gives a SQL type name (``DECIMAL(10, 2)`` -> ``decimal128(10, 2)``).
    Raises DataFusion's exception for a type it does not know."""
    return session(target_partitions=1).sql(f"SELECT CAST(NULL AS {type_sql}) AS x").schema().field("x").type


class StreamCancelled(Exception):
    """``batches`` stopped because its ``cancel`` event was set."""


#: the name of the kill switch a residual session registers (``register_kill_switch``)
KILL_SWITCH = "__gateway_alive"


def register_kill_switch(ctx: SessionContext, cancel: threading.Event) -> None:
    """Register ``__gateway_alive(a boolean, b boolean) -> boolean`` in ``ctx``: true for every row while
    ``cancel`` is clear, StreamCancelled (failing the plan) once it is set.

    Why: DataFusion runs a plan as Tokio tasks, and dropping its stream aborts them only at their next yield
    point; a join that explodes under an aggregate yields none (apache/datafusion#19358, open in 55), so a
    cancelled cross join went on burning every core for minutes and starved the next query. A volatile
    predicate over columns of both join inputs stays in the join's own filter (not pushed to a scan), is
    evaluated once per batch of candidate pairs, and ends the plan from inside that loop within a batch.
    ``gateway.execution.residual.guarded_sql`` adds it to the residual plan's joins.
    """

    def alive(left: pa.Array, right: pa.Array) -> pa.Array:
        if cancel.is_set():
            raise StreamCancelled("the query was cancelled")
        return pc.or_kleene(left, pc.invert(left))  # all true: ``left`` is ``x IS NULL``, never null

    ctx.register_udf(udf(alive, [pa.bool_(), pa.bool_()], pa.bool_(), "volatile", name=KILL_SWITCH))


def batches(df, cancel: threading.Event) -> Iterator[pa.RecordBatch]:
    """The batches of a DataFusion DataFrame as pyarrow batches, stoppable from another thread.

    The first batch, behind which the long work of a plan hides (hash-join builds, aggregations, sorts), is
    awaited on a private event loop that checks ``cancel`` every 0.1 s; once it is set, the pending batch and
    the stream are dropped, which stops DataFusion's work (a blocking ``next()`` cannot be interrupted: a
    runaway join went on burning CPU after its client left). Later batches are read with plain ``next()``
    (cheaper per batch; no DataFusion thread calls into Python, which raced interpreter exit) and ``cancel`` is
    checked between them. Dropping the stream stops only work that yields to Tokio; a plan guarded by
    ``register_kill_switch`` also stops inside a join. Raises StreamCancelled once ``cancel`` is set (also
    when the plan failed because of it), and DataFusion's own errors.
    """
    try:
        stream = _started_stream(df, cancel)
        loop = asyncio.new_event_loop()
        try:
            first = loop.run_until_complete(_next_batch(stream, cancel))
        finally:
            loop.close()
        if first is None:
            return
        yield first.to_pyarrow()
        for batch in stream:
            if cancel.is_set():
                raise StreamCancelled("the stream was cancelled")
            yield batch.to_pyarrow()
    except Exception:
        # Neither the stream nor the DataFrame (it caches its physical plan, whose repartitions own running
        # tasks) may outlive the query in a traceback that keeps this frame: dropped, their tasks are aborted.
        stream = df = None
        if cancel.is_set():  # the kill switch, or DataFusion's error after the stream was dropped
            raise StreamCancelled("the stream was cancelled") from None
        raise


def _started_stream(df, cancel: threading.Event):
    """``df.execute_stream()`` on a worker thread (``workers``), waited for while checking ``cancel`` every 0.1 s:
    starting a plan can block for as long as its first operators run (measured: a residual of four self-joins on a
    low-cardinality key never returned from ``execute_stream`` on the caller's thread), and a time limit must
    still end the query. Raises StreamCancelled once ``cancel`` is set (the stream, if it comes, is dropped)."""
    box: dict = {}
    done = threading.Event()

    def start() -> None:
        try:
            box["stream"] = df.execute_stream()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        finally:
            done.set()

    workers.start(start, "datafusion-start")
    while not done.wait(0.1):
        if cancel.is_set():
            raise StreamCancelled("the stream was cancelled")
    if "error" in box:
        raise box["error"]
    return box.pop("stream")


async def _next_batch(stream, cancel: threading.Event):
    """The stream's next batch, None at its end; StreamCancelled once ``cancel`` is set."""
    pending = asyncio.ensure_future(stream.__anext__())
    del stream  # a traceback that keeps this frame must not keep the native stream (and its work) alive
    while True:
        done, _ = await asyncio.wait({pending}, timeout=0.1)
        if done:
            try:
                return pending.result()
            except StopAsyncIteration:
                return None
        if cancel.is_set():
            pending.cancel()
            await asyncio.wait({pending}, timeout=1.0)  # let the cancellation reach the native future
            pending = None  # nor may the traceback keep the pending batch (it holds the stream)
            raise StreamCancelled("the stream was cancelled")
