"""``connectors.fresh_reads``: concurrent callers share one read, and every caller's value comes from a read that
started after it asked (what a fingerprint needs to vouch for the data read after it)."""

from __future__ import annotations

import doctest
import threading
import time

import pytest

from connectors import fresh_reads
from connectors.fresh_reads import FreshRead


def test_doctests():
    failures, tried = doctest.testmod(fresh_reads)
    assert tried and not failures


def test_callers_waiting_together_share_one_read_that_started_after_each_asked():
    read, calls, asked = FreshRead(), [], {}
    gate = threading.Event()

    def slow() -> int:
        calls.append(time.monotonic())
        gate.wait(5)
        return len(calls)

    results = {}

    def caller(i: int) -> None:
        asked[i] = time.monotonic()
        results[i] = read.get(slow)

    first = threading.Thread(target=caller, args=(0,))
    first.start()
    while not calls:  # the first read is running
        time.sleep(0.001)
    later = [threading.Thread(target=caller, args=(i,)) for i in range(1, 9)]
    for t in later:
        t.start()
    time.sleep(0.1)  # all eight wait behind the running read
    gate.set()
    for t in [first, *later]:
        t.join(5)
    assert len(calls) == 2  # the running one, and one shared by the eight that came while it ran
    assert results[0] == 1 and {results[i] for i in range(1, 9)} == {2}
    assert all(calls[1] >= asked[i] for i in range(1, 9))  # their read started after each of them asked


def test_an_error_reaches_every_caller_of_that_read_and_the_next_read_runs_afresh():
    read = FreshRead()

    def broken() -> str:
        raise OSError("source gone")

    with pytest.raises(OSError, match="source gone"):
        read.get(broken)
    assert read.get(lambda: "lsn:0/2") == "lsn:0/2"
