"""``ConnectionPool``: a small thread-safe pool of DB-API connections, held by the ADBC kinds
(``connectors.adbc_base.AdbcConnector``: PostgreSQL, SQLite); ``connectors.base`` re-exports it."""

from __future__ import annotations

import threading
from typing import Any


class ConnectionPool:
    """A small thread-safe pool of DB-API connections made by ``factory``; at most ``size`` kept idle."""

    def __init__(self, factory, size: int = 4) -> None:
        self._factory = factory
        self._size = size
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def acquire(self):
        """A connection: an idle one when there is one, else a new one (``factory`` errors propagate)."""
        return self.acquire_reporting()[0]

    def acquire_reporting(self) -> tuple[Any, bool]:
        """(connection, whether it was idle in the pool): a pooled connection may have died while idle (the
        server restarted), which a caller may retry once on a new one (``acquire_new``)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._factory(), False

    def acquire_new(self):
        """A new connection, never an idle one."""
        return self._factory()

    def release(self, conn, broken: bool = False) -> None:
        with self._lock:
            if not broken and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        _close_quietly(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:
        pass
