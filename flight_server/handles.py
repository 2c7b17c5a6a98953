"""Handles this server hands out: statement tickets, prepared statements, and the statements running now.

A ticket (``TicketStatementQuery.statement_handle``) and a prepared-statement handle are 16 random bytes
naming an entry kept here, bound to the principal that made it and dropped after ``limits.statement_ttl_s``
idle. A statement entry carries the plan GetFlightInfo made (``planned``), so that DoGet runs that plan instead
of planning the SQL text again; at most ``max_planned`` entries keep their plan (the oldest give it up first)
and a plan made over an older catalog version is not used: DoGet then plans the SQL text, as it always may.

    >>> handles = Handles(ttl_s=60)
    >>> handle = handles.add(Statement("SELECT 1", None, owner="ann", scope={}))
    >>> handles.get(handle, "ann", "statement").sql
    'SELECT 1'
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa

from gateway.errors import InvalidRequestError

#: statement entries that keep their plan at most (a plan is small: its fragments' SQL and the residual's AST)
MAX_PLANNED = 1024


class _Planned:
    """An entry that may keep the ``(statement, plan)`` made for it over catalog version ``catalog_version``."""

    planned: tuple | None
    catalog_version: int | None

    def plan_for(self, catalog_version: int) -> tuple | None:
        """The plan to run, if it was made over ``catalog_version`` (else it is planned again)."""
        return self.planned if self.catalog_version == catalog_version else None


@dataclass
class Prepared(_Planned):
    """A prepared statement: its SQL, bound parameters (one row) and schemas; owned by a principal.

    Without parameters, ``planned`` is the plan CreatePreparedStatement made under ``scope``: GetFlightInfo
    runs it when the caller's scope is the same.
    """

    sql: str
    owner: str | None
    dataset_schema: pa.Schema
    parameter_schema: pa.Schema
    params: list | None = None
    expires: float = 0.0
    scope: dict | None = None
    planned: tuple | None = None
    catalog_version: int | None = None


@dataclass
class Statement(_Planned):
    """A ticketed statement awaiting DoGet; ``cancel`` is set by CancelFlightInfo.

    ``planned``: the ``(statement, plan)`` GetFlightInfo made (``QueryEngine.plan_statement``) over catalog
    version ``catalog_version``; None once given up (``MAX_PLANNED``). ``manifest``: the freshness manifest
    GetFlightInfo began for that plan (``Trust.preview``), which the run reuses while it is recent.
    """

    sql: str
    params: list | None
    owner: str | None
    scope: dict
    cancel: threading.Event = field(default_factory=threading.Event)
    expires: float = 0.0
    max_staleness_s: float | None = None
    timeout_s: float | None = None
    planned: tuple | None = None
    catalog_version: int | None = None
    manifest: object | None = None  # the freshness manifest GetFlightInfo began (gateway.trust), for the run


class Handles:
    """Handle -> entry with an idle expiry, thread-safe. Entries are bound to the principal that made them.

    At most ``max_planned`` entries keep a ``planned`` attribute set; adding one more clears it on the oldest.
    """

    def __init__(self, ttl_s: float, max_planned: int = MAX_PLANNED) -> None:
        self.ttl_s = ttl_s
        self.max_planned = max_planned
        self._entries: dict[bytes, object] = {}
        self._lock = threading.Lock()

    def add(self, entry) -> bytes:
        handle = secrets.token_bytes(16)
        with self._lock:
            now = time.monotonic()
            self._entries = {h: e for h, e in self._entries.items() if e.expires > now}
            entry.expires = now + self.ttl_s
            self._entries[handle] = entry
            if getattr(entry, "planned", None) is not None:
                self._bound_plans()
        return handle

    def _bound_plans(self) -> None:
        planned = [e for e in self._entries.values() if getattr(e, "planned", None) is not None]
        for entry in planned[: max(0, len(planned) - self.max_planned)]:
            entry.planned = None

    def get(self, handle: bytes, owner: str | None, kind: str):
        with self._lock:
            entry = self._entries.get(handle)
            if entry is None or entry.expires <= time.monotonic() or entry.owner != owner:
                raise InvalidRequestError(f"unknown or expired {kind} handle")
            entry.expires = time.monotonic() + self.ttl_s
            return entry

    def pop(self, handle: bytes, owner: str | None = None):
        with self._lock:
            entry = self._entries.get(handle)
            if entry is not None and (owner is None or entry.owner == owner):
                return self._entries.pop(handle)
        return None

    def __len__(self) -> int:
        with self._lock:
            now = time.monotonic()
            return sum(1 for e in self._entries.values() if e.expires > now)


class Running:
    """The statements DoGet streams now, by ticket handle (CancelFlightInfo finds them here)."""

    def __init__(self) -> None:
        self._statements: dict[bytes, Statement] = {}
        self._lock = threading.Lock()

    def add(self, handle: bytes, statement: Statement) -> None:
        with self._lock:
            self._statements[handle] = statement

    def get(self, handle: bytes) -> Statement | None:
        with self._lock:
            return self._statements.get(handle)

    def remove(self, handle: bytes) -> None:
        with self._lock:
            self._statements.pop(handle, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._statements)
