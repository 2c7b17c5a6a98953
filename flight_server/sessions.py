"""Flight SQL sessions: the ``catalog`` and ``schema`` session options, kept per session cookie.

A client's first SetSessionOptions / GetSessionOptions opens a session and answers with
``set-cookie: arrow_flight_session_id=<id>``; clients with a cookie middleware (ADBC's
``adbc.flight.sql.rpc.with_cookie_middleware``, the JDBC driver) send it back on every call. A session
belongs to the principal that opened it and is forgotten after ``ttl_s`` idle or on CloseSession.

Options (string values, as the spec recommends for JDBC/ODBC connection strings):

- ``catalog``: a source name; unqualified table names are looked up in it first.
- ``schema``: a schema of that source; one-part table names are looked up in it first.

Unknown names answer ``INVALID_NAME``, a catalog the principal may not use ``INVALID_VALUE``. An option
sent with no value is erased.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from flight_server import protocol as pb

SESSION_COOKIE = "arrow_flight_session_id"
OPTIONS = ("catalog", "schema", "max_staleness_s", "timeout_s")


@dataclass
class Session:
    id: str
    owner: str | None
    options: dict[str, str] = field(default_factory=dict)
    expires: float = 0.0


class Sessions:
    """Session id -> Session, thread-safe, with an idle expiry."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str | None, owner: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            now = time.monotonic()
            if session is None or session.owner != owner or session.expires <= now:
                return None
            session.expires = now + self.ttl_s
            return session

    def get_or_create(self, session_id: str | None, owner: str | None) -> tuple[Session, bool]:
        session = self.get(session_id, owner)
        if session is not None:
            return session, False
        with self._lock:
            now = time.monotonic()
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            session = Session(secrets.token_urlsafe(24), owner, expires=now + self.ttl_s)
            self._sessions[session.id] = session
        return session, True

    def close(self, session_id: str | None, owner: str | None) -> None:
        with self._lock:
            session = self._sessions.get(session_id or "")
            if session is not None and session.owner == owner:
                del self._sessions[session.id]

    @staticmethod
    def options_result(session: Session):
        result = pb.GetSessionOptionsResult()
        for name, value in session.options.items():
            if isinstance(value, float):
                result.session_options[name].double_value = value
            else:
                result.session_options[name].string_value = value
        return result

    @staticmethod
    def set_options(session: Session, request, allowed_sources: list[str]):
        """Apply a SetSessionOptionsRequest; returns the SetSessionOptionsResult (errors per option)."""
        result = pb.SetSessionOptionsResult()
        errors = pb.SetSessionOptionsResult.ErrorValue
        for name, value in request.session_options.items():
            kind = value.WhichOneof("option_value")
            if name not in OPTIONS:
                result.errors[name].value = errors.Value("INVALID_NAME")
                continue
            if kind is None:
                session.options.pop(name, None)
                continue
            if name in ("max_staleness_s", "timeout_s"):  # seconds: cache age bound; query time limit (0: none)
                if kind == "string_value" and value.string_value == "":
                    session.options.pop(name, None)  # "" unsets it (drivers can only send text)
                    continue
                seconds = _seconds(value, kind)
                if seconds is None:
                    result.errors[name].value = errors.Value("INVALID_VALUE")
                else:
                    session.options[name] = seconds
                continue
            if kind != "string_value":
                result.errors[name].value = errors.Value("INVALID_VALUE")
                continue
            text = value.string_value
            if name == "catalog" and text not in allowed_sources:
                result.errors[name].value = errors.Value("INVALID_VALUE")
                continue
            session.options[name] = text
        return result


def _seconds(value, kind: str) -> float | None:
    """A non-negative number of seconds from a double, an int64 or numeric text; None when it is not one."""
    try:
        raw = {"double_value": value.double_value, "int64_value": value.int64_value}.get(kind)
        seconds = float(raw if raw is not None else value.string_value)
    except (ValueError, AttributeError):
        return None
    return seconds if seconds >= 0 else None
