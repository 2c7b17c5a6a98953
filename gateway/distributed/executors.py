"""Executors run ``SplitTask``s: on a Ray cluster (``RayExecutor``), or on local threads (``LocalExecutor``,
the same interface without Ray: tests, and a coordinator that wants the split reads without a cluster).

The coordinator never blocks on one task: it polls ``ready`` with a short timeout, so cancellation and time
limits are seen within that time. A task whose worker or node died raises ``TaskLost`` from ``result``; the
caller decides whether to submit it again (``gateway.distributed.feed``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
from abc import ABC, abstractmethod
from typing import Any

from gateway.distributed.descriptors import JoinTask, SplitResult, SplitTask
from gateway.distributed.worker import run_task
from gateway.errors import ExecutionError

log = logging.getLogger(__name__)


class TaskLost(Exception):
    """The worker process or node running a task died (or its result was lost): the task may be submitted
    again."""


class TaskFailed(Exception):
    """The task raised inside the worker (not a source error, which comes back as data): not retried."""


class TaskCancelled(Exception):
    """The task was cancelled before it returned."""


#: Ray's own retries of a hash-partitioning split task: also what lets Ray rebuild its partitions when the
#: node holding them dies before stage two read them (lineage reconstruction needs retries)
RECONSTRUCT_RETRIES = 2


class Executor(ABC):
    """Runs split and join tasks somewhere; handles are opaque. ``name`` is how EXPLAIN names the engine.
    A task returning hash partitions (``SplitTask.partitioning``) gives, from ``result``, a ``SplitResult``
    whose ``parts`` are handles this executor accepts as ``inputs`` of a ``JoinTask``."""

    name = "executor"

    @abstractmethod
    def submit(self, task: SplitTask | JoinTask, *inputs: Any) -> Any:
        """Start ``task`` (``inputs``: a join task's partitions, handles from earlier results); returns its
        handle."""

    def cpus(self) -> int:
        """How many tasks can run at once (a join stage's default number of partitions)."""
        return 1

    @abstractmethod
    def ready(self, handles: list[Any], timeout_s: float) -> list[Any]:
        """Those of ``handles`` that finished, waiting at most ``timeout_s`` seconds for at least one."""

    @abstractmethod
    def result(self, handle: Any) -> SplitResult:
        """A finished task's result; raises TaskLost (worker or node died), TaskFailed or TaskCancelled."""

    @abstractmethod
    def cancel(self, handle: Any) -> None:
        """Cancel a task (its source statement is cancelled by the worker); never blocks, never raises."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the executor holds."""


class LocalExecutor(Executor):
    """Tasks on a pool of ``workers`` threads of this process (``worker.run_task`` with a cancel event)."""

    name = "local"

    def __init__(self, workers: int = 2) -> None:
        self._workers = workers
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="split")

    def cpus(self) -> int:
        return self._workers

    def submit(self, task: SplitTask | JoinTask, *inputs: Any) -> Any:
        cancel = threading.Event()
        return self._pool.submit(self.run, task, cancel, inputs), cancel

    def run(self, task: SplitTask | JoinTask, cancel: threading.Event, inputs: tuple = ()) -> Any:
        """One task on a pool thread (a subclass may fail it on purpose: tests of retries)."""
        return run_task(task, *inputs, cancel=cancel)

    def ready(self, handles: list[Any], timeout_s: float) -> list[Any]:
        by_future = {h[0]: h for h in handles}
        done, _ = concurrent.futures.wait(list(by_future), timeout_s, concurrent.futures.FIRST_COMPLETED)
        return [by_future[f] for f in done]

    def result(self, handle: Any) -> SplitResult:
        future = handle[0]
        try:
            out = future.result(0)
        except (KeyboardInterrupt, concurrent.futures.CancelledError):
            raise TaskCancelled() from None
        if isinstance(out, tuple):  # (SplitResult, *partitions): the partitions are their own handles
            return dataclasses.replace(out[0], parts=tuple(out[1:]))
        return out

    def cancel(self, handle: Any) -> None:
        future, cancel = handle
        cancel.set()
        future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


#: Ray exceptions meaning the task's worker, node or result is gone (worth another attempt elsewhere)
_LOST = ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OwnerDiedError", "LocalRayletDiedError",
         "RaySystemError", "ObjectFetchTimedOutError", "ObjectReconstructionFailedError")


class RayExecutor(Executor):
    """Tasks as Ray remote functions (one CPU each, ``max_retries=0``: a lost task is submitted again by the
    coordinator, which counts it and bounds the attempts; see ``gateway.distributed.feed``). Joins the
    cluster at ``address`` (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``) or, without one, starts a
    local runtime (``num_cpus``); a process already connected to Ray (``ray.is_initialized()``) is used as it
    is. ``close`` shuts down only a runtime this executor started."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        import ray  # optional dependency: the `ray` extra

        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            try:
                # "local": a new runtime even when another cluster runs on this machine (plain ray.init() would
                # join the one /tmp/ray/ray_current_cluster names)
                ray.init(address=address or "local", num_cpus=num_cpus if address is None else None,
                         include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            except Exception as exc:  # a wrong address, a cluster that is down
                where = f"the Ray cluster at {address!r}" if address else "a local Ray runtime"
                raise ExecutionError(f"cannot start or join {where}: {str(exc).strip().splitlines()[0][:300]}"
                                     ) from None
            self._started = True
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        self._lost = tuple(getattr(ray.exceptions, n) for n in _LOST if hasattr(ray.exceptions, n))
        self._parts: dict[Any, tuple] = {}  # a partitioning task's handle -> the refs of its partitions
        self._parts_lock = threading.Lock()

    def cpus(self) -> int:
        try:
            return max(1, int(self._ray.cluster_resources().get("CPU", 1)))
        except Exception:  # a cluster that cannot answer: one partition per task slot is only a default
            return 1

    def submit(self, task: SplitTask | JoinTask, *inputs: Any) -> Any:
        if isinstance(task, JoinTask):  # partition i on its own worker: spread over the nodes, not packed
            return self._remote.options(scheduling_strategy="SPREAD").remote(task, *inputs)
        if task.returns == 1:
            return self._remote.remote(task, *inputs)
        # the partitions stay in the object store; stage two's tasks get them as arguments (node to node)
        refs = self._remote.options(num_returns=task.returns, max_retries=RECONSTRUCT_RETRIES).remote(task, *inputs)
        with self._parts_lock:
            self._parts[refs[0]] = tuple(refs[1:])
        return refs[0]

    def ready(self, handles: list[Any], timeout_s: float) -> list[Any]:
        done, _ = self._ray.wait(handles, num_returns=len(handles), timeout=timeout_s, fetch_local=False)
        if not done:  # num_returns=len waits for all: take whatever finished within the timeout
            return []
        return done

    def result(self, handle: Any) -> SplitResult:
        ray = self._ray
        with self._parts_lock:
            parts = self._parts.pop(handle, None)
        try:
            result = ray.get(handle, timeout=60)
            return result if parts is None else dataclasses.replace(result, parts=parts)
        except ray.exceptions.TaskCancelledError:
            raise TaskCancelled() from None
        except self._lost as exc:
            raise TaskLost(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}") from None
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, KeyboardInterrupt):
                raise TaskCancelled() from None
            raise TaskFailed(str(exc.cause or exc).strip().splitlines()[-1][:300]) from None

    def cancel(self, handle: Any) -> None:
        with self._parts_lock:
            self._parts.pop(handle, None)
        try:
            self._ray.cancel(handle, force=False)
        except Exception as exc:  # a finished or unknown task
            log.debug("ray.cancel failed: %s", exc)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False
