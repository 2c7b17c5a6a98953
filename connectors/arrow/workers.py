"""Reused daemon threads for short-lived work that must not block the caller: fragment readers, a DoGet's
pump, the start of a DataFusion stream, fingerprint reads; and ``call_later`` for time limits.

``start(fn, name)`` runs ``fn()`` on an idle worker, or on a new one when none is idle, and returns a ``Task``
with ``join(timeout)`` and ``is_alive()`` as a ``threading.Thread`` has. Why not a thread per task: a new
thread's ``start()`` waits until the thread runs, which on a busy 2-core machine is a scheduler round trip per
thread, four per one-row query over Flight SQL (16% of the server's samples under load); a hand-off to a
waiting worker is one queue put. Why not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined at
interpreter exit, so one worker blocked in a stalled source read would hold the process forever; these are
daemon threads. There is no bound on the number of workers (a bound would let tasks that wait on each other,
a probe on its build, wait forever); a worker idle for ``IDLE_S`` seconds ends.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: seconds a worker waits for its next task before it ends
IDLE_S = 30.0


class Task:
    """One ``fn`` handed to a worker: ``join(timeout)`` waits for it to end, ``is_alive()`` says it has not."""

    __slots__ = ("_done", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        return not self._done.is_set()


class _Worker:
    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue[tuple[Callable[[], object], Task]] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="gateway-worker", daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                fn, task = self.tasks.get(timeout=IDLE_S)
            except queue.Empty:
                with _lock:
                    if self in _idle:
                        _idle.remove(self)
                        return
                continue  # taken from the idle list just now: its task is on the way
            threading.current_thread().name = task.name
            try:
                fn()
            except BaseException:  # a task reports its own errors; one that escapes must not end the worker
                log.exception("worker task failed", extra={"task": task.name})
            finally:
                threading.current_thread().name = "gateway-worker"
                task._done.set()
                del fn, task  # nothing of a finished task stays reachable from an idle worker
                with _lock:
                    _idle.append(self)


_lock = threading.Lock()
_idle: list[_Worker] = []  # last idle first: a warm worker is reused before a cold one


def start(fn: Callable[[], object], name: str = "task") -> Task:
    """Run ``fn()`` on a daemon worker thread (an idle one when there is one) and return its ``Task``.
    ``fn``'s exceptions are logged, never raised here: a task that has an outcome hands it over itself."""
    task = Task(name)
    with _lock:
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = _Worker()
    worker.tasks.put((fn, task))
    return task


class Timer:
    """A call ``call_later`` will make, unless ``cancel()`` comes first."""

    __slots__ = ("cancelled", "due", "fn")

    def __init__(self, due: float, fn: Callable[[], object]) -> None:
        self.due, self.fn, self.cancelled = due, fn, False

    def cancel(self) -> None:
        self.cancelled = True
        self.fn = None  # nothing of a finished query stays reachable from the timer thread


_timers: list[tuple[float, int, Timer]] = []
_timers_changed = threading.Condition()
_timer_thread: threading.Thread | None = None
_timer_seq = 0


def call_later(delay_s: float, fn: Callable[[], object]) -> Timer:
    """Call ``fn()`` on a worker (``start``) after ``delay_s`` seconds, unless the returned ``Timer`` is cancelled
    first. One daemon thread keeps every pending call in a heap: a query's time limit costs no thread of its own
    (``threading.Timer`` starts one per call)."""
    global _timer_thread, _timer_seq
    timer = Timer(time.monotonic() + delay_s, fn)
    with _timers_changed:
        _timer_seq += 1
        heapq.heappush(_timers, (timer.due, _timer_seq, timer))
        if _timer_thread is None:
            _timer_thread = threading.Thread(target=_run_timers, name="gateway-timers", daemon=True)
            _timer_thread.start()
        _timers_changed.notify()
    return timer


def _run_timers() -> None:
    while True:
        with _timers_changed:
            while not _timers or _timers[0][0] > time.monotonic():
                _timers_changed.wait(None if not _timers else max(0.0, _timers[0][0] - time.monotonic()))
            _, _, timer = heapq.heappop(_timers)
        fn = timer.fn
        if not timer.cancelled and fn is not None:
            start(fn, "timer")
