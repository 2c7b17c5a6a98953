"""Shared fresh reads: concurrent callers of one cheap read share a call that started after each of them asked.

A source fingerprint (PostgreSQL's WAL position, MariaDB's InnoDB LSN) proves freshness only when it was read
after the moment it vouches for. Thirty-two clients each reading it for their own query cost thirty-two round
trips; with ``FreshRead`` a caller joins the read that has not started yet (everyone arriving while a read runs
shares the next one), so the answers stay exactly as fresh as a read of one's own and the source sees at most
one read in flight plus one waiting per key (the "group commit" pattern).

    >>> reads = FreshReads()
    >>> reads.get(("pg", "public", "t"), lambda: "lsn:0/1")
    'lsn:0/1'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class _Read:
    """One call of the read function, shared by the callers that arrived before it started."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class FreshRead:
    """``get(fn)``: ``fn()``'s value from a call that started after this ``get`` was called (shared with the
    other callers waiting for the same call). ``fn``'s exception is raised to every caller that shared it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _pending
        self._running = threading.Lock()  # one call at a time: later arrivals share the next one
        self._pending: _Read | None = None

    def get(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._pending is None:
                self._pending = _Read()
            read = self._pending
        with self._running:
            with self._lock:
                lead = self._pending is read  # not started yet: this caller starts it, later ones wait for the next
                if lead:
                    self._pending = None
            if lead:
                try:
                    read.value = fn()
                except BaseException as exc:  # handed to every caller of this read
                    read.error = exc
                finally:
                    read.done.set()
        read.done.wait()
        if read.error is not None:
            raise read.error
        return read.value


class FreshReads:
    """A ``FreshRead`` per key (e.g. ``(source, schema, table)``), made on first use; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: dict[Hashable, FreshRead] = {}

    def get(self, key: Hashable, fn: Callable[[], Any]) -> Any:
        """``fn()``'s value from a call that started after this call (``FreshRead.get``), shared per ``key``."""
        with self._lock:
            read = self._reads.get(key)
            if read is None:
                read = self._reads[key] = FreshRead()
        return read.get(fn)
