"""``DistributedFeed``: a fragment read as Ray tasks, one per split, handed to the residual plan as a local
fragment feed hands it (``gateway.execution.feeds.FragmentFeed``'s collect mode: ``started``, ``done``,
``kept_batches``, ``register``, ``cancel_source``, ``cleanup``, ``stop``).

The coordinator thread of a feed submits every split and polls the executor (``tasks.TaskPool``: a task lost
with its worker is submitted again, the query fails with an error naming the stage and split when the attempts
run out). Each split's Arrow table arrives through Ray's object store and becomes
one partition of the fragment's DataFusion table.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa
from datafusion import SessionContext

from connectors.arrow.datafusion import plain_schema
from connectors.base import Fragment
from gateway.distributed.descriptors import SourceSpec, SplitResult, SplitTask
from gateway.distributed.executors import Executor
from gateway.distributed.splits import Split
from gateway.distributed.tasks import TaskPool
from gateway.errors import QueryCancelledError
from gateway.metrics import FragmentStats


class DistributedFeed(TaskPool):
    """Reads ``fragment`` as one task per split on ``executor``; counts rows, bytes, tasks, nodes, retries.
    ``preloaded``: rows of the fragment already at hand (partitions served by the partition cache), kept as
    further splits without a task."""

    def __init__(self, fragment: Fragment, splits: tuple[Split, ...] | list[Split], executor: Executor,
                 source: SourceSpec, cancel: threading.Event, max_retries: int = 2, task_timeout_s: float = 0.0,
                 stats: FragmentStats | None = None, preloaded: list[pa.Table] | tuple = ()) -> None:
        super().__init__(executor, cancel, max_retries, task_timeout_s)
        self.fragment = fragment
        self.stats = stats or FragmentStats(fragment.id, fragment.source, fragment.sql)
        self.stats.estimated_rows = fragment.estimated_rows
        self.stats.engine = executor.name
        self._tasks = [
            SplitTask(f"scan {fragment.id}", fragment.id, i, len(splits), source, split.sql, fragment.dialect,
                      fragment.schema, tuple(fragment.tables), split.partition,
                      key_tables=tuple(fragment.key_tables.items()))
            for i, split in enumerate(splits)
        ]
        self._parts: dict[int, pa.Table] = {}
        for i, table in enumerate(preloaded):
            self._parts[len(self._tasks) + i] = table
            self.stats.rows += table.num_rows
            self.stats.bytes += table.nbytes
        self._expected = len(self._tasks) + len(preloaded)
        self._nodes: set[str] = set()
        self.spill_path: str | None = None
        self.started = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"distributed-{fragment.id}", daemon=True)
        self._thread.start()

    # -- the coordinator loop -----------------------------------------------------------------------------

    def _submit(self, task: SplitTask, attempt: int) -> None:
        self._submit_task(task, attempt)
        self.stats.tasks += 1

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            for task in self._tasks:
                self._submit(task, 0)
            while self._pending and not self._cancel.is_set():
                with self._lock:
                    handles = list(self._pending)
                self._poll(handles)
                self._check_time()
            if len(self._parts) < self._expected:  # the loop ended on a cancel, not on the last split
                raise QueryCancelledError("the query was cancelled")
        except BaseException as exc:
            self.error = exc
        finally:
            self.cancel_source()  # tasks still running after an error or a cancel
            self.stats.seconds = time.perf_counter() - t0
            self.stats.nodes = len(self._nodes)
            self.started.set()
            self.done.set()

    def _collect(self, handle: Any, entry: tuple) -> None:
        """Keep a finished task's rows, or submit it again, or raise the error naming its stage."""
        task, attempt, _ = entry

        def retry() -> None:
            self.stats.retries += 1
            self._submit(task, attempt + 1)

        result = self._result(handle, task, attempt, retry)
        if result is not None:
            self._keep(task, result)

    def _keep(self, task: SplitTask, result: SplitResult) -> None:
        table = result.table
        self._parts[task.index] = table
        self._nodes.add(result.node)
        self.stats.rows += table.num_rows
        self.stats.bytes += table.nbytes
        self.stats.shuffled_bytes += table.nbytes
        self.started.set()

    # -- the collect-mode feed interface ------------------------------------------------------------------

    def _wait_done(self) -> None:
        self._await(self.done)
        if self.error is not None:
            raise self.error
        if self._cancel.is_set() and len(self._parts) < self._expected:
            raise QueryCancelledError("the query was cancelled")

    def _batches(self) -> list[pa.RecordBatch]:
        plain = plain_schema(self.fragment.schema)
        out = []
        for index in sorted(self._parts):
            for batch in self._parts[index].to_batches():
                out.append(batch if batch.schema == plain else batch.cast(plain))
        return out

    def kept_batches(self, row_limit: int) -> list[pa.RecordBatch] | None:
        """All batches once every split ended within ``row_limit`` rows, else None (as soon as the rows pass
        the limit). Raises the fragment's error."""
        while not self.done.wait(0.05):
            if self.stats.rows > row_limit or self._cancel.is_set():
                return None
        if self.error is not None:
            raise self.error
        return None if self.stats.rows > row_limit else self._batches()

    def register(self, ctx: SessionContext, target_partitions: int) -> None:
        """Register the fragment in ``ctx`` under its id: the splits' batches in up to ``target_partitions``
        partitions (scanned in parallel). Waits for every split; raises the first error."""
        self._wait_done()
        batches = self._batches()
        if not batches:
            batches = [pa.RecordBatch.from_pylist([], schema=plain_schema(self.fragment.schema))]
        parts = [batches[i::target_partitions] for i in range(target_partitions)]
        ctx.register_record_batches(self.fragment.id, [part for part in parts if part])

    def cancel_source(self) -> None:
        """Cancel every task still running (``ray.cancel``: the worker cancels its source statement)."""
        self.cancel_tasks()

    def stop(self, timeout: float) -> None:
        """Cancel the query's tasks and wait up to ``timeout`` seconds for the coordinator thread."""
        self._cancel.set()
        self.cancel_source()
        self._thread.join(timeout)

    def cleanup(self) -> None:
        """Drop the kept tables (their object-store copies go with them)."""
        self.done.wait(5)
        self._parts = {}

