"""``TaskPool``: the coordinator's bookkeeping of one query's running tasks on an executor, shared by
``DistributedFeed`` (one task per split) and ``JoinRun`` (a join stage's split and join tasks).

It submits tasks and remembers each as pending (``handle -> (task, attempt, since, *extra)``), polls the
executor every ``POLL_S`` seconds (so a cancelled or timed-out query is seen within that time, never a blocking
wait), takes a finished task's result or submits it again when its worker or node was lost or its source was
unavailable (up to ``max_retries`` times), fails the query with an error naming the stage and task when the
attempts run out or ``task_timeout_s`` passes, and cancels every task still running. A split task is tagged anew
at each attempt (a comment in its SQL): when its worker or node dies, the coordinator cancels its statement at
the source by that tag (``cancel_lost_statement``).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from connectors.arrow import workers
from gateway.distributed.descriptors import JoinTask, SplitResult, SplitTask
from gateway.distributed.executors import Executor, TaskCancelled, TaskFailed, TaskLost
from gateway.errors import (
    ERRORS_BY_CODE,
    ExecutionError,
    GatewayError,
    QueryCancelledError,
    QueryTimeoutError,
    SourceQueryError,
    SourceUnavailableError,
)

log = logging.getLogger(__name__)

#: seconds between polls of the executor (the longest a cancel or time limit waits to be seen)
POLL_S = 0.1


class TaskPool:
    """One query's tasks on ``executor``; ``cancel`` is the query's cancel event. A subclass submits with
    ``_submit_task``, handles each finished task in ``_collect(handle, entry)`` (called by ``_poll``) and takes
    its result with ``_result``."""

    def __init__(self, executor: Executor, cancel: threading.Event, max_retries: int, task_timeout_s: float) -> None:
        self._executor = executor
        self._cancel = cancel
        self._max_retries = max_retries
        self._task_timeout_s = task_timeout_s
        self._pending: dict[Any, tuple] = {}  # handle -> (task, attempt, monotonic time submitted, *extra)
        self._lock = threading.Lock()

    def _submit_task(self, task: Any, attempt: int, inputs: tuple = (), *extra: Any) -> None:
        """Submit ``task`` (with ``inputs``, Ray object references) and keep it pending with ``extra``. A split
        task gets a new ``tag`` for this attempt (a comment in its SQL, see ``cancel_lost_statement``)."""
        if isinstance(task, SplitTask):
            task = dataclasses.replace(task, tag=f"gw-task-{secrets.token_hex(8)}")
        handle = self._executor.submit(task, *inputs)
        with self._lock:
            self._pending[handle] = (task, attempt, time.monotonic(), *extra)

    def _collect(self, handle: Any, entry: tuple) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _poll(self, handles: list) -> None:
        """Wait up to ``POLL_S`` for ``handles``; ``_collect`` each one that finished and is still pending."""
        for handle in self._executor.ready(handles, POLL_S):
            with self._lock:
                entry = self._pending.pop(handle, None)
            if entry is not None:  # None: cancel_tasks took it meanwhile
                self._collect(handle, entry)

    def _result(self, handle: Any, task: Any, attempt: int, retry: Callable[[], None]) -> SplitResult | None:
        """A finished task's result; None when ``retry`` submitted it again (its worker or node was lost, or its
        source was unavailable, and attempts are left). Raises the error naming its stage and task."""
        try:
            result = self._executor.result(handle)
        except TaskCancelled:
            raise QueryCancelledError("the query was cancelled") from None
        except TaskLost as lost:
            if isinstance(task, SplitTask):  # its statement may still run at the source, for nobody
                workers.start(lambda: cancel_lost_statement(task), "cancel-lost-statement")
            if attempt < self._max_retries:
                log.warning("task lost, submitting it again", extra={"task": task.name, "error": str(lost)})
                retry()
                return None
            raise ExecutionError(f"stage '{task.stage}' failed: {task.name} was lost {attempt + 1} time(s), "
                                 f"no retries left (max_retries {self._max_retries}): {lost}") from None
        except TaskFailed as failed:
            raise ExecutionError(f"stage '{task.stage}' failed: {task.name}: {failed}") from None
        if result.error_code is not None:
            if result.error_code == SourceUnavailableError.code and attempt < self._max_retries:
                retry()
                return None
            if isinstance(task, JoinTask):
                raise ExecutionError(f"stage '{task.stage}' failed: {task.name}: {result.error}")
            raise _source_error(result, task)
        return result

    def _check_time(self) -> None:
        """Raise QueryTimeoutError naming a task that has run longer than ``task_timeout_s`` (0: no limit)."""
        if not self._task_timeout_s:
            return
        now = time.monotonic()
        with self._lock:
            late = [entry[0] for entry in self._pending.values() if now - entry[2] > self._task_timeout_s]
        if late:
            raise QueryTimeoutError(f"stage '{late[0].stage}': {late[0].name} ran longer than task_timeout_s "
                                    f"({self._task_timeout_s:g} s)")

    def _await(self, done: threading.Event) -> None:
        """Until ``done`` is set; once the query is cancelled, cancels every task and raises QueryCancelledError."""
        while not done.wait(POLL_S):
            if self._cancel.is_set():
                self.cancel_tasks()
                raise QueryCancelledError("the query was cancelled")

    def cancel_tasks(self) -> None:
        """Cancel every task still running (``ray.cancel``: the worker cancels its source statement)."""
        with self._lock:
            pending, self._pending = list(self._pending), {}
        for handle in pending:
            self._executor.cancel(handle)


def cancel_lost_statement(task: SplitTask) -> int:
    """Cancel the source statement of ``task`` whose worker or node died (the source would otherwise run it to
    its end, for nobody): this process's connector for the task's source finds it by the task's tag
    (``Connector.cancel_tagged``). Returns how many statements were cancelled; never raises (logged)."""
    from gateway.distributed.worker import connector_for  # the coordinator's own instance of the source

    try:
        cancelled = connector_for(task.source).cancel_tagged(task.tag) if task.tag else 0
    except Exception as exc:
        log.warning("could not cancel a lost task's statement", extra={"task": task.name, "error": str(exc)})
        return 0
    if cancelled:
        log.info("cancelled a lost task's statement", extra={"task": task.name, "statements": cancelled})
    return cancelled


def _source_error(result: SplitResult, task: SplitTask) -> GatewayError:
    """A worker's failure (code and message) as the GatewayError it was, naming the task."""
    message = f"{result.error} [{task.name}]"
    cls = ERRORS_BY_CODE.get(result.error_code or "", ExecutionError)
    if cls in (SourceQueryError, SourceUnavailableError):
        error = cls.__new__(cls)
        GatewayError.__init__(error, message, source=task.source.name)
        error.source = task.source.name
        return error
    try:
        return cls(message)
    except TypeError:
        return ExecutionError(message)
