"""Authentication and the caller of each Flight SQL call, as a ``pyarrow.flight`` server middleware.

Every call is authenticated here, before its RPC method runs: Basic credentials (on Handshake or on any
call) yield a bearer token sent back in the ``authorization`` header; other calls need a bearer token or an
API token. The RPC methods then read the caller through ``Caller.of(context, sessions)``: its ``Principal``
(whose sources bound what it sees and queries), and its session (the ``arrow_flight_session_id`` cookie)
with the ``catalog`` / ``schema`` / ``max_staleness_s`` / ``timeout_s`` options.
"""

from __future__ import annotations

from pyarrow import flight

from flight_server.errors import unexpected_error
from flight_server.sessions import SESSION_COOKIE, Session, Sessions
from gateway.auth import Authenticator, Principal


class CallMiddleware(flight.ServerMiddleware):
    """One call's principal (None with auth off), its cookies, and the bearer token to send back."""

    def __init__(self, principal: Principal | None, token: str | None, cookies: dict[str, str]) -> None:
        self.principal = principal
        self.cookies = cookies
        self._token = token

    def sending_headers(self):
        return {"authorization": f"Bearer {self._token}"} if self._token else {}


class HandshakeAccepted(flight.ServerAuthHandler):
    """Lets the Handshake RPC through; the credentials travel in its headers and the middleware checks them
    (Basic in, ``authorization: Bearer <token>`` out), as Flight SQL clients expect."""

    def authenticate(self, outgoing, incoming):
        pass

    def is_valid(self, token):
        return ""


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):
    """Authenticates every call: Basic credentials yield a bearer token; other calls need a bearer token."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def start_call(self, info, headers):
        cookies = parse_cookies(headers.get("cookie") or headers.get("Cookie") or [])
        if not self.authenticator.enabled:
            return CallMiddleware(None, None, cookies)
        values = headers.get("authorization") or headers.get("Authorization") or []
        try:
            principal, token = self.authenticator.user_for_header(values[0] if values else None)
        except Exception as exc:
            raise unexpected_error(exc, "authentication") from None
        return CallMiddleware(principal, token, cookies)


def parse_cookies(values: list[str]) -> dict[str, str]:
    """``{name: value}`` of ``cookie`` header values.

    >>> parse_cookies(["a=1; arrow_flight_session_id=xyz"])
    {'a': '1', 'arrow_flight_session_id': 'xyz'}
    """
    out: dict[str, str] = {}
    for value in values:
        for part in value.split(";"):
            name, _, content = part.strip().partition("=")
            if name:
                out[name] = content
    return out


class Caller:
    """Who makes a call: the principal (None with auth off), its name, the session cookie and the session
    (looked up on first use: a lookup renews the session's idle expiry)."""

    def __init__(self, principal: Principal | None, cookie: str | None, sessions: Sessions) -> None:
        self.principal = principal
        self.cookie = cookie
        self._sessions = sessions
        self._session: Session | None = None
        self._looked_up = False

    @classmethod
    def of(cls, context, sessions: Sessions) -> Caller:
        middleware: CallMiddleware | None = context.get_middleware("call")
        principal = middleware.principal if middleware else None
        return cls(principal, middleware.cookies.get(SESSION_COOKIE) if middleware else None, sessions)

    @property
    def session(self) -> Session | None:
        if not self._looked_up:
            self._session, self._looked_up = self._sessions.get(self.cookie, self.owner), True
        return self._session

    @property
    def owner(self) -> str | None:
        """The name handles and sessions are bound to."""
        return self.principal.name if self.principal else None

    def option(self, name: str):
        """The session's option ``name``, or None."""
        return self.session.options.get(name) if self.session else None

    def scope(self) -> dict:
        """The engine's scope for this caller: allowed sources and the session's default catalog/schema."""
        return {"allowed_sources": self.principal.sources if self.principal else None,
                "default_catalog": self.option("catalog"), "default_schema": self.option("schema")}
