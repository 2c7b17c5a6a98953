"""Users, API tokens and bearer tokens, shared by the Flight SQL server and the REST app.

A user proves a password once (Flight: Basic credentials on Handshake or on any call; REST: Basic on
``/v1/auth/token`` or any call) and gets a random bearer token that expires after ``auth.token_ttl_s``
seconds. Passwords are kept only as argon2 hashes (``argon2-cffi``); API tokens from the config act as a
fixed bearer token of their own principal and are kept only as SHA-256 digests. Session tokens live in
memory only.

Each principal may see a set of sources (``sources`` in the config; absent = all). The servers pass
``Principal.sources`` to the engine and to the metadata listing, so a user never sees, nor reaches, a
source outside that set.

    >>> from gateway.settings import AuthConfig
    >>> auth = Authenticator(AuthConfig(enabled=True, users=[{"name": "ann", "password": "pw"}]))
    >>> principal, token = auth.user_for_header("Basic YW5uOnB3")       # ann:pw
    >>> principal.name, auth.user_for_header(f"Bearer {token}")[0].name
    ('ann', 'ann')
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import AuthenticationError, PermissionDeniedError
from gateway.settings import AuthConfig

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``, for ``password_hash`` in the config."""
    return _HASHER.hash(password)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user or an API token's name, and the sources it may use (None = every source)."""

    name: str
    sources: frozenset[str] | None = None

    def may_use(self, source: str) -> bool:
        return self.sources is None or source in self.sources

    def check_sources(self, sources) -> None:
        """Raise PermissionDeniedError naming the first source of ``sources`` this principal may not use."""
        for source in sources:
            if not self.may_use(source):
                raise PermissionDeniedError(f"user '{self.name}' may not use source '{source}'",
                                            source=source, user=self.name)


def allowed_sources(principal: Principal | None) -> frozenset[str] | None:
    """The engine's ``allowed_sources`` for a principal (None = no restriction, also when auth is off)."""
    return None if principal is None else principal.sources


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Authenticator:
    """Checks passwords and API tokens; issues and validates bearer tokens. Thread-safe.

    When ``config.enabled`` is false every call is let through as principal ``None``.
    """

    def __init__(self, config: AuthConfig) -> None:
        self.enabled = config.enabled
        self.ttl_s = config.token_ttl_s
        self._users: dict[str, tuple[str, Principal]] = {}
        for user in config.users:
            encoded = user.password_hash or hash_password(user.password or "")
            sources = frozenset(user.sources) if user.sources is not None else None
            self._users[user.name] = (encoded, Principal(user.name, sources))
        self._api_tokens = {
            _digest(t.token): Principal(t.name, frozenset(t.sources) if t.sources is not None else None)
            for t in config.api_tokens
        }
        self._tokens: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()
        self._dummy_hash: str | None = None

    def check_password(self, user: str, password: str) -> Principal:
        """The user's principal. Raises AuthenticationError (never saying which part was wrong)."""
        entry = self._users.get(user)
        if entry is None:
            # verify against a dummy hash anyway, so timing does not reveal which names exist
            self._dummy_hash = self._dummy_hash or hash_password(secrets.token_hex(8))
            try:
                _HASHER.verify(self._dummy_hash, password)
            except VerificationError:
                pass
            raise AuthenticationError("invalid user name or password")
        encoded, principal = entry
        try:
            _HASHER.verify(encoded, password)
        except (VerificationError, InvalidHashError):
            raise AuthenticationError("invalid user name or password") from None
        return principal

    def issue_token(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (principal, now + self.ttl_s)
        return token

    def login(self, user: str, password: str) -> str:
        """Check a password and return a new bearer token."""
        return self.issue_token(self.check_password(user, password))

    def principal_for_token(self, token: str) -> Principal:
        """The principal of an API token or of an issued bearer token. Raises AuthenticationError."""
        api = self._api_tokens.get(_digest(token))
        if api is not None:
            return api
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None:
            raise AuthenticationError("invalid or expired bearer token")
        principal, expires = entry
        if expires <= time.monotonic():
            with self._lock:
                self._tokens.pop(token, None)
            raise AuthenticationError("the bearer token has expired; authenticate again")
        return principal

    def user_for_header(
        self, authorization: str | None, issue_token: bool = True
    ) -> tuple[Principal | None, str | None]:
        """Authenticate an ``Authorization`` header value (``Bearer t`` or ``Basic b64``).

        Returns (principal, a new token for Basic credentials when ``issue_token``, else None); (None, None)
        when auth is off. Raises AuthenticationError.
        """
        if not self.enabled:
            return None, None
        if not authorization:
            raise AuthenticationError("authentication required: send Basic credentials or a Bearer token")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return self.principal_for_token(value.strip()), None
        if scheme.lower() == "basic":
            try:
                encoded = value.strip()
                # some clients (the Go Flight SQL driver) send unpadded base64
                encoded += "=" * (-len(encoded) % 4)
                user, _, password = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise AuthenticationError("malformed Basic credentials") from exc
            principal = self.check_password(user, password)
            return principal, self.issue_token(principal) if issue_token else None
        raise AuthenticationError(f"unsupported authorization scheme '{scheme}'")
