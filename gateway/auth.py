"""Users and bearer tokens, shared by the Flight SQL server and the REST app.

A user proves a password once (Flight: Basic credentials on Handshake; REST: Basic on any call) and gets a
random bearer token that expires after ``auth.token_ttl_s`` seconds. Tokens live in memory only.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import threading
import time

from gateway.errors import AuthenticationError
from gateway.settings import AuthConfig


class Authenticator:
    """Checks passwords and issues/validates bearer tokens. Thread-safe.

    When ``config.enabled`` is false every call is let through as user ``None``.
    """

    def __init__(self, config: AuthConfig) -> None:
        self.enabled = config.enabled
        self.ttl_s = config.token_ttl_s
        self._passwords = {u.name: u.password.encode() for u in config.users}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def check_password(self, user: str, password: str) -> None:
        """Raises AuthenticationError (never saying which part was wrong) unless the password matches."""
        expected = self._passwords.get(user)
        # compare even for unknown users, so timing does not reveal which names exist
        ok = hmac.compare_digest(expected or b"\0" * 32, password.encode())
        if expected is None or not ok:
            raise AuthenticationError("invalid user name or password")

    def issue_token(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (user, now + self.ttl_s)
        return token

    def login(self, user: str, password: str) -> str:
        """Check a password and return a new bearer token."""
        self.check_password(user, password)
        return self.issue_token(user)

    def user_for_token(self, token: str) -> str:
        """The user a bearer token belongs to. Raises AuthenticationError when unknown or expired."""
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None:
            raise AuthenticationError("invalid or expired bearer token")
        user, expires = entry
        if expires <= time.monotonic():
            with self._lock:
                self._tokens.pop(token, None)
            raise AuthenticationError("the bearer token has expired; authenticate again")
        return user

    def user_for_header(
        self, authorization: str | None, issue_token: bool = True
    ) -> tuple[str | None, str | None]:
        """Authenticate an ``Authorization`` header value (``Bearer t`` or ``Basic b64``).

        Returns (user, a new token for Basic credentials when ``issue_token``, else None). Raises
        AuthenticationError.
        """
        if not self.enabled:
            return None, None
        if not authorization:
            raise AuthenticationError("authentication required: send Basic credentials or a Bearer token")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return self.user_for_token(value.strip()), None
        if scheme.lower() == "basic":
            try:
                encoded = value.strip()
                # some clients (the Go Flight SQL driver) send unpadded base64
                encoded += "=" * (-len(encoded) % 4)
                user, _, password = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise AuthenticationError("malformed Basic credentials") from exc
            if not issue_token:
                self.check_password(user, password)
                return user, None
            return user, self.login(user, password)
        raise AuthenticationError(f"unsupported authorization scheme '{scheme}'")
