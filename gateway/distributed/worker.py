"""What runs inside a Ray worker (or a local executor's thread): one split, read by the worker's own connector.

Connectors are built once per worker process from the task's ``SourceSpec`` (their pools then serve every task
of that source on this worker). A cancelled task (``ray.cancel`` raises KeyboardInterrupt in the task's
thread; a local executor sets ``cancel``) cancels its source statement before it ends, so the source's
backend stops too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time

import pyarrow as pa
import sqlglot

from connectors import connector_class
from connectors.arrow.datafusion import plain_schema, run_local
from connectors.base import Connector, Fragment
from gateway.distributed import hashing
from gateway.distributed.descriptors import JoinTask, SourceSpec, SplitResult, SplitTask

_connectors: dict[str, Connector] = {}
_lock = threading.Lock()

#: per-kind option overrides on workers: a task is one reader (the coordinator already split the fragment)
_ONE_READER = {"postgresql": {"parallel_readers": 1}, "mysql": {"parallel_readers": 1}}


def connector_for(spec: SourceSpec) -> Connector:
    """This process's connector for ``spec`` (built on first use; a changed config builds a new one)."""
    key = json.dumps([spec.name, spec.kind, spec.options], sort_keys=True, default=str)
    with _lock:
        connector = _connectors.get(key)
        if connector is None:
            options = {**spec.options, **_ONE_READER.get(spec.kind, {})}
            connector = _connectors[key] = connector_class(spec.kind)(spec.name, options)
        return connector


def split_fragment(task: SplitTask, connector: Connector) -> Fragment:
    """The ``Fragment`` a task reads: its SQL parsed again in the source's dialect (connectors rewrite the
    AST, e.g. PostgreSQL's numerics as text), restricted to its partition when it has one, with the task's key
    tables (``Fragment.key_tables``)."""
    ast = sqlglot.parse_one(task.sql, read=task.dialect or None)
    if task.partition is not None:
        schema, table, partition = task.partition
        alias = ast.find(sqlglot.exp.From).this.alias_or_name
        ast = connector.partition_fragment(ast, schema, table, partition, alias)
    if task.tag:  # what the coordinator finds the statement by, should this worker die (Connector.cancel_tagged)
        ast.add_comments([task.tag], prepend=True)
    return Fragment(id=f"{task.fragment_id}_s{task.index}", source=task.source.name,
                    sql=ast.sql(dialect=task.dialect or None), schema=task.schema, tables=list(task.tables),
                    ast=ast, dialect=task.dialect, key_tables=dict(task.key_tables))


def _node() -> str:
    try:
        import ray  # optional: the [ray] extra

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:
        pass
    return "local"


def run_task(task: SplitTask | JoinTask, *inputs: pa.Table, cancel: threading.Event | None = None):
    """Run one task: a split (``run_split``; with hash partitioning, ``(SplitResult, *partitions)``: as many
    objects as ``task.returns``) or a join stage's partition (``run_join`` over ``inputs``)."""
    if isinstance(task, JoinTask):
        return run_join(task, inputs, cancel)
    result = run_split(task, cancel)
    if task.partitioning is None:
        return result
    return partitioned(task, result)


def partitioned(task: SplitTask, result: SplitResult) -> tuple:
    """``(SplitResult with counts, *tables)``: a split's rows (as the residual plan would see them: the
    fragment's plain schema) cut by ``task.partitioning``; a failed split returns its error and empty tables."""
    spec = task.partitioning
    if result.table is None:
        empty = plain_schema(task.schema).empty_table()
        return (result, *([empty] * spec.count))
    table = result.table
    plain = plain_schema(task.schema)
    if table.schema != plain:
        table = table.cast(plain)
    parts = hashing.partition(table, spec.keys, spec.count)
    meta = dataclasses.replace(result, table=None, rows=table.num_rows, bytes=table.nbytes,
                               part_rows=tuple(p.num_rows for p in parts), part_bytes=tuple(p.nbytes for p in parts))
    return (meta, *parts)


def run_join(task: JoinTask, inputs: tuple[pa.Table, ...], cancel: threading.Event | None = None) -> SplitResult:
    """Join partition ``task.index`` of both sides (``inputs``: each side's parts in ``task.inputs`` order)
    with ``task.sql`` in DataFusion; the rows come back as one table of ``task.schema``. A failure comes back
    as data; the join runs on a helper thread so that a cancel (``ray.cancel``, ``cancel``) is seen."""
    t0 = time.perf_counter()
    node, pid = _node(), os.getpid()
    tables, schemas, at = {}, {}, 0
    for name, schema, count in task.inputs:
        tables[name] = [batch for part in inputs[at:at + count] if part is not None for batch in part.to_batches()]
        schemas[name] = plain_schema(schema)
        at += count
    box: dict = {}
    done = threading.Event()

    def join() -> None:
        try:
            table = run_local(task.sql, tables, schemas)
            box["table"] = table if table.schema == task.schema else table.cast(task.schema)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=join, name=f"join-{task.index}", daemon=True).start()
    while not done.wait(0.05):
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
    error = box.get("error")
    if error is not None:
        return SplitResult(None, node, pid, time.perf_counter() - t0, getattr(error, "code", "internal"),
                           str(error).strip().splitlines()[0][:500] if str(error) else type(error).__name__)
    return SplitResult(box["table"], node, pid, time.perf_counter() - t0)


def run_split(task: SplitTask, cancel: threading.Event | None = None) -> SplitResult:
    """Read one split and return its rows as one Arrow table (``SplitResult``); a source failure comes back
    as data (its ``GatewayError.code`` and message). The read runs on a helper thread so that this one stays
    interruptible: on KeyboardInterrupt (``ray.cancel``) or ``cancel`` the source statement is cancelled and
    the interrupt re-raised."""
    t0 = time.perf_counter()
    node, pid = _node(), os.getpid()
    box: dict = {}
    done = threading.Event()
    try:
        connector = connector_for(task.source)
        fragment = split_fragment(task, connector)
    except Exception as exc:
        return SplitResult(None, node, pid, time.perf_counter() - t0, getattr(exc, "code", "internal"), str(exc))

    def read() -> None:
        try:
            box["table"] = connector.scan(fragment).read_all()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    reader = threading.Thread(target=read, name=f"split-{fragment.id}", daemon=True)
    reader.start()
    try:
        while not done.wait(0.05):
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        connector.cancel(fragment)  # the source's backend stops; the read then fails and ends
        done.wait(5.0)
        raise
    seconds = time.perf_counter() - t0
    error = box.get("error")
    if error is not None:
        return SplitResult(None, node, pid, seconds, getattr(error, "code", "internal"),
                           str(error) or type(error).__name__)
    return SplitResult(box["table"], node, pid, seconds)
