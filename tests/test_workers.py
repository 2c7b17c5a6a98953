"""connectors.arrow.workers: reused daemon threads with a thread's join/is_alive."""

from __future__ import annotations

import threading
import time

from connectors.arrow import workers


def test_an_idle_worker_is_reused():
    seen = []
    first = workers.start(lambda: seen.append(threading.get_ident()), "first")
    first.join(5)
    time.sleep(0.05)  # the worker puts itself back on the idle list after setting the task done
    second = workers.start(lambda: seen.append(threading.get_ident()), "second")
    second.join(5)
    assert not first.is_alive() and not second.is_alive()
    assert seen[0] == seen[1]


def test_tasks_that_wait_on_each_other_run_at_once():
    """No bound: a task blocked on another (a probe on its build) gets its own thread."""
    gate = threading.Event()
    waiter = workers.start(lambda: gate.wait(5), "waiter")
    opener = workers.start(gate.set, "opener")
    opener.join(5)
    waiter.join(5)
    assert gate.is_set() and not waiter.is_alive()


def test_a_failing_task_is_logged_and_the_worker_lives_on(caplog):
    def boom():
        raise RuntimeError("boom")

    failed = workers.start(boom, "boom")
    failed.join(5)
    assert not failed.is_alive()
    assert any("worker task failed" in r.message for r in caplog.records)
    done = []
    workers.start(lambda: done.append(threading.current_thread().name), "after").join(5)
    assert done == ["after"]


def test_workers_are_daemon_threads():
    flags = []
    workers.start(lambda: flags.append(threading.current_thread().daemon), "daemon").join(5)
    assert flags == [True]


def test_call_later_calls_once_after_the_delay_unless_cancelled():
    called = threading.Event()
    t0 = time.monotonic()
    workers.call_later(0.2, called.set)
    cancelled = threading.Event()
    workers.call_later(0.1, cancelled.set).cancel()
    assert called.wait(5)
    assert time.monotonic() - t0 >= 0.2
    time.sleep(0.1)
    assert not cancelled.is_set()


def test_later_timers_wait_for_earlier_ones_in_due_order():
    order = []
    done = threading.Event()
    workers.call_later(0.3, lambda: (order.append("late"), done.set()))
    workers.call_later(0.1, lambda: order.append("early"))
    assert done.wait(5)
    assert order == ["early", "late"]
