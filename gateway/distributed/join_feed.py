"""A join stage's run (``JoinRun``) and the two feeds through which the residual plan sees it (``JoinSideFeed``).

The engine starts the plan's fragments as usual; the two fragments of the join stage (``JoinPlan``) each get
a ``JoinSideFeed`` of one ``JoinRun``. Stage one: once a side is started (a dynamic filter may restrict it
first), its split tasks are submitted with hash partitioning (``SplitTask.partitioning``); their partitions
stay in Ray's object store. Stage two: once every split of both sides ended, task i is submitted with
partition i of every split as its inputs (Ray moves them node to node; the coordinator never sees them) and
returns the joined rows. The left side's feed registers the N outputs as one DataFusion table
(``join_stage.JOIN_TABLE``, one partition each), which the rewritten residual reads; the right side's
registers nothing. Lost tasks are submitted again (``max_retries``), errors name the stage and task, and a
cancel cancels every task still running, as in ``DistributedFeed``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from datafusion import SessionContext

from connectors.arrow.datafusion import plain_schema
from connectors.base import Fragment
from gateway.distributed import hashing
from gateway.distributed.descriptors import HashPartitioning, JoinTask, SourceSpec, SplitResult, SplitTask
from gateway.distributed.executors import Executor
from gateway.distributed.join_stage import JOIN_TABLE, JoinPlan
from gateway.distributed.splits import Split
from gateway.distributed.tasks import POLL_S, TaskPool
from gateway.errors import QueryCancelledError
from gateway.metrics import FragmentStats


class JoinRun(TaskPool):
    """One query's join stage on ``executor``: stage one's split tasks of both sides, stage two's
    ``join.partitions`` join tasks, and their outputs (``outputs``, Arrow tables of ``join.schema``)."""

    def __init__(self, join: JoinPlan, executor: Executor, cancel: threading.Event, max_retries: int = 2,
                 task_timeout_s: float = 0.0) -> None:
        super().__init__(executor, cancel, max_retries, task_timeout_s)
        self.join = join
        self._sides: dict[str, tuple[Fragment, list[SplitTask], FragmentStats]] = {}
        self._parts: dict[str, dict[int, tuple]] = {}  # side -> split index -> its partitions' handles
        self._expected: dict[str, int] = {}  # side -> its splits (tasks and preloaded tables)
        self._nodes: dict[str, set[str]] = {}
        self._join_nodes: set[str] = set()
        self._join_started = False
        self.outputs: dict[int, pa.Table] = {}
        self.error: BaseException | None = None
        self.started = threading.Event()
        self.done = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"join-{join.left}-{join.right}", daemon=True)
        self._thread.start()

    # -- the sides -----------------------------------------------------------------------------------------

    def side(self, fragment: Fragment, splits: tuple[Split, ...] | list[Split], source: SourceSpec,
             stats: FragmentStats | None = None, preloaded: list[pa.Table] | tuple = ()) -> JoinSideFeed:
        """Start stage one of one side (``fragment`` is ``join.left`` or ``join.right``, maybe restricted by a
        dynamic filter since the plan was made) and return its feed. ``preloaded``: rows already at hand
        (partitions served by the partition cache), hash-partitioned here and joined like a split's."""
        keys = self.join.left_keys if fragment.id == self.join.left else self.join.right_keys
        stats = stats or FragmentStats(fragment.id, fragment.source, fragment.sql)
        stats.estimated_rows = fragment.estimated_rows
        stats.engine = self._executor.name
        partitioning = HashPartitioning(keys, self.join.partitions)
        tasks = [SplitTask(f"scan {fragment.id}", fragment.id, i, len(splits), source, split.sql, fragment.dialect,
                           fragment.schema, tuple(fragment.tables), split.partition, partitioning,
                           key_tables=tuple(fragment.key_tables.items()))
                 for i, split in enumerate(splits)]
        parts = {}
        plain = plain_schema(fragment.schema)
        for i, table in enumerate(preloaded):
            parts[len(tasks) + i] = tuple(hashing.partition(table.cast(plain), keys, self.join.partitions))
            stats.rows += table.num_rows
            stats.bytes += table.nbytes
        with self._lock:
            self._expected[fragment.id] = len(tasks) + len(preloaded)
            self._sides[fragment.id] = (fragment, tasks, stats)
            self._parts[fragment.id] = parts
            self._nodes[fragment.id] = set()
        self._wake.set()
        return JoinSideFeed(self, fragment, stats)

    # -- the coordinator loop ------------------------------------------------------------------------------

    def _submit(self, task: Any, inputs: tuple, attempt: int, on_done: Callable) -> None:
        """Submit a task (every attempt counts as a task run, as in ``DistributedFeed``)."""
        stats = self._side_stats(task)
        if isinstance(task, JoinTask):
            stats.join_tasks += 1
        else:
            stats.tasks += 1
        self._submit_task(task, attempt, inputs, inputs, on_done)

    def _run(self) -> None:
        submitted: set[str] = set()
        try:
            while not self._cancel.is_set():
                with self._lock:
                    new = [fid for fid in self._sides if fid not in submitted]
                for fid in new:
                    submitted.add(fid)
                    _, tasks, _ = self._sides[fid]
                    for task in tasks:
                        self._submit(task, (), 0, self._scanned)
                if self._stage_one_done() and not self._join_started:
                    self._start_joins()
                if self._join_started and len(self.outputs) == self.join.partitions:
                    break
                with self._lock:
                    handles = list(self._pending)
                if not handles:
                    self._wake.wait(POLL_S)
                    self._wake.clear()
                    continue
                self._poll(handles)
                self._check_time()
            if len(self.outputs) < self.join.partitions:
                raise QueryCancelledError("the query was cancelled")
        except BaseException as exc:
            self.error = exc
        finally:
            self.cancel_tasks()
            self._finish_stats()
            self.started.set()
            self.done.set()

    def _stage_one_done(self) -> bool:
        with self._lock:
            return len(self._sides) == 2 and all(len(self._parts[fid]) == self._expected[fid] for fid in self._sides)

    def _start_joins(self) -> None:
        """Stage two: task i joins partition i of every split of both sides."""
        self._join_started = True
        inputs_of = [(fid, [self._parts[fid][i] for i in sorted(self._parts[fid])])
                     for fid in (self.join.left, self.join.right)]
        described = tuple((fid, self._sides[fid][0].schema, len(parts)) for fid, parts in inputs_of)
        stage = f"join {self.join.left} x {self.join.right}"
        for i in range(self.join.partitions):
            task = JoinTask(stage, i, self.join.partitions, self.join.stage_sql, described, self.join.schema)
            inputs = tuple(parts[i] for _, split_parts in inputs_of for parts in split_parts)
            self._submit(task, inputs, 0, self._joined)

    def _collect(self, handle: Any, entry: tuple) -> None:
        """Keep a finished task's result (``on_done``), or submit it again, or raise the error naming it."""
        task, attempt, _, inputs, on_done = entry

        def retry() -> None:
            self._side_stats(task).retries += 1
            self._submit(task, inputs, attempt + 1, on_done)

        result = self._result(handle, task, attempt, retry)
        if result is not None:
            on_done(task, result)

    def _side_stats(self, task: Any) -> FragmentStats:
        return self._sides[task.fragment_id if isinstance(task, SplitTask) else self.join.left][2]

    def _scanned(self, task: SplitTask, result: SplitResult) -> None:
        stats = self._sides[task.fragment_id][2]
        with self._lock:
            self._parts[task.fragment_id][task.index] = result.parts
            self._nodes[task.fragment_id].add(result.node)
        stats.rows += result.rows
        stats.bytes += result.bytes
        stats.shuffled_bytes += sum(result.part_bytes)  # into the object store, read by stage two's tasks
        self.started.set()

    def _joined(self, task: JoinTask, result: SplitResult) -> None:
        self.outputs[task.index] = result.table
        self._join_nodes.add(result.node)

    def _finish_stats(self) -> None:
        """EXPLAIN ANALYZE's lines: each side's bytes hash-partitioned into the object store; on the left side,
        the join stage's tasks, nodes, rows and bytes (shuffled: both sides' partitions; returned: the joined
        rows moved to the coordinator)."""
        for fid, (_, _, stats) in self._sides.items():
            stats.nodes = len(self._nodes.get(fid, ()))
            stats.join_stage = f"{stats.shuffled_bytes:,} bytes hash-partitioned into the object store"
        left = self._sides.get(self.join.left)
        if left is None:
            return
        stats = left[2]
        rows = sum(t.num_rows for t in self.outputs.values())
        returned = sum(t.nbytes for t in self.outputs.values())
        shuffled = sum(s.shuffled_bytes for _, _, s in self._sides.values())
        stats.shuffled_bytes += returned
        stats.join_stage += (f"; hash join stage: {stats.join_tasks} tasks on {len(self._join_nodes)} node(s), "
                             f"{self.join.partitions} partitions on {self.join.condition}, {shuffled:,} bytes "
                             f"shuffled, {rows:,} rows ({'partial aggregates, ' if self.join.partial else ''}"
                             f"{returned:,} bytes) moved to the coordinator")

    # -- control -------------------------------------------------------------------------------------------

    def wait(self) -> None:
        """Until both stages ended; raises the run's error, or QueryCancelledError once the query is cancelled."""
        self._await(self.done)
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float) -> None:
        """Cancel the query's tasks and wait up to ``timeout`` seconds for the coordinator thread."""
        self._cancel.set()
        self._wake.set()
        self.cancel_tasks()
        self._thread.join(timeout)

    def cleanup(self) -> None:
        """Drop the outputs and the partitions' handles (their object-store copies go with them)."""
        self.done.wait(5)
        self.outputs = {}
        self._parts = {fid: {} for fid in self._parts}


class JoinSideFeed:
    """One side of a join stage, as the engine sees a fragment feed in collect mode (``started``, ``done``,
    ``error``, ``kept_batches``, ``register``, ``cancel_source``, ``stop``, ``cleanup``). ``register`` of the
    left side registers the stage's output as ``join_stage.JOIN_TABLE``; the right side's registers nothing
    (the rewritten residual reads neither fragment)."""

    def __init__(self, run: JoinRun, fragment: Fragment, stats: FragmentStats) -> None:
        self.run = run
        self.fragment = fragment
        self.stats = stats
        self.spill_path: str | None = None

    @property
    def started(self) -> threading.Event:
        """Set once a split of the stage returned (or the run ended)."""
        return self.run.started

    @property
    def done(self) -> threading.Event:
        """Set once both stages ended (or failed, or were cancelled)."""
        return self.run.done

    @property
    def error(self) -> BaseException | None:
        """The run's error, naming its stage and task; None while it runs or once it succeeded."""
        return self.run.error

    def kept_batches(self, row_limit: int) -> list[pa.RecordBatch] | None:
        """None: a side's rows never come to the coordinator (a dynamic filter is not built from it)."""
        return None

    def register(self, ctx: SessionContext, target_partitions: int) -> None:
        """Wait for both stages; the left side registers the N outputs as one table of N partitions."""
        self.run.wait()
        if self.fragment.id != self.run.join.left:
            return
        parts = [t.to_batches() for _, t in sorted(self.run.outputs.items()) if t.num_rows]
        ctx.register_record_batches(JOIN_TABLE, parts or [[pa.RecordBatch.from_pylist([], self.run.join.schema)]])

    def cancel_source(self) -> None:
        """Cancel the stage's running tasks (both sides share them)."""
        self.run.cancel_tasks()

    def stop(self, timeout: float) -> None:
        """Cancel the run and wait up to ``timeout`` seconds for its coordinator thread."""
        self.run.stop(timeout)

    def cleanup(self) -> None:
        """Drop the run's outputs and partitions."""
        self.run.cleanup()
