"""Users, API tokens and bearer tokens, shared by the Flight SQL server and the REST app.

A user proves a password once (Flight: Basic credentials on Handshake or on any call; REST: Basic on
``/v1/auth/token`` or any call) and gets a random bearer token that expires after ``auth.token_ttl_s``
seconds. Passwords are kept only as argon2id hashes (``argon2-cffi``); API tokens from the config act as a
fixed bearer token of their own principal and are kept only as SHA-256 digests. Session tokens live in
memory only.

Logins cannot exhaust the process:

- Basic credentials are exchanged for a bearer token once: the same ``Authorization`` value sent again (REST
  clients that send Basic on every call; Flight calls) is recognised by its keyed digest and answered with
  that token (its lifetime renewed) without checking the password again.
- Password checks run on a small pool (``auth.login_workers`` threads, argon2id with ``ARGON2_MEMORY_KIB``
  each), so their memory is bounded; at most ``auth.login_queue`` checks wait, more are refused at once.
- After ``auth.login_max_failures`` failed logins for one user name, or ``auth.login_max_failures_per_address``
  from one client address, within ``auth.login_window_s`` seconds, further attempts are refused without a
  check (``LoginThrottledError``: HTTP 429, Flight UNAVAILABLE, with ``retry_after_s``) until the window has
  passed. A success clears its user name's count (not its address's: one valid account must not reset a
  guessing address). Credentials already exchanged (above) keep working while their user name is locked.
- An unknown user name is checked against a dummy hash in the same pool, so it takes as long as a wrong
  password and is throttled the same way: neither timing nor answers reveal which names exist.

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
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import AuthenticationError, PermissionDeniedError, ResourceLimitError
from gateway.settings import AuthConfig

#: argon2id parameters: OWASP Password Storage Cheat Sheet, first of its equivalent settings ("m=19456 (19 MiB),
#: t=2, p=1"). argon2-cffi's default (RFC 9106 low-memory: 64 MiB, t=3, p=4) made every login, also a failed
#: one, hold 64 MiB. Hashes made with other parameters still verify and are re-hashed in memory on success.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
_HASHER = PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM)

#: distinct Basic credentials remembered (their keyed digest -> the bearer token issued for them)
_BASIC_CACHE_SIZE = 10_000
#: client addresses / user names whose failures are tracked, at most (the oldest are forgotten beyond)
_TRACKED_KEYS = 100_000


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (``ARGON2_*`` parameters), for ``password_hash`` in the config."""
    return _HASHER.hash(password)


class LoginThrottledError(ResourceLimitError):
    """Too many failed logins (from a client address or for a user name), or too many password checks
    waiting: refused without checking the password. HTTP 429; Flight UNAVAILABLE (clients back off and
    retry); ``retry_after_s`` in the details says when to try again."""

    flight_kind = "unavailable"
    phase = "auth"

    def __init__(self, message: str, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(f"{message}; retry after {seconds} s", retry_after_s=seconds)
        self.retry_after_s = seconds


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


class FailedLogins:
    """Failed logins per key (a client address, a user name) in a sliding window. Thread-safe.

    A key with ``max_failures`` failures in the last ``window_s`` seconds is locked until the oldest of them
    is ``window_s`` old. At most ``max_keys`` keys are tracked (the least recently failed are forgotten), each
    as a 16-byte digest, so a flood of made-up (or huge) names cannot grow it without bound.
    """

    def __init__(self, max_failures: int, window_s: float, max_keys: int = _TRACKED_KEYS) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: OrderedDict[bytes, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it is not locked."""
        now, digest = time.monotonic(), _key_digest(key)
        with self._lock:
            times = self._failures.get(digest)
            if times is None:
                return 0.0
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if not times:
                del self._failures[digest]
                return 0.0
            return times[0] + self.window_s - now if len(times) >= self.max_failures else 0.0

    def record(self, key: str) -> None:
        """Count one failed login for ``key``."""
        digest = _key_digest(key)
        with self._lock:
            times = self._failures.pop(digest, None) or deque(maxlen=self.max_failures)
            times.append(time.monotonic())
            self._failures[digest] = times  # most recent last
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        """Forget ``key``'s failures (after a successful login)."""
        with self._lock:
            self._failures.pop(_key_digest(key), None)


def _key_digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(errors="surrogatepass"), digest_size=16).digest()


def _check(encoded: str, password: str, rehash: bool) -> tuple[bool, str | None]:
    """(whether ``password`` matches ``encoded``, a new hash when it matched but used other parameters)."""
    try:
        _HASHER.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False, None
    return True, _HASHER.hash(password) if rehash and _HASHER.check_needs_rehash(encoded) else None


class Authenticator:
    """Checks passwords and API tokens; issues and validates bearer tokens. Thread-safe.

    When ``config.enabled`` is false every call is let through as principal ``None``. See the module
    docstring for how password checks are bounded and throttled.
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
        # a name that is not a user is checked against this, so it costs what a wrong password costs
        self._dummy_hash = hash_password(secrets.token_hex(16)) if self.enabled and self._users else ""
        self._pool = ThreadPoolExecutor(max_workers=config.login_workers, thread_name_prefix="password-check")
        self._slots = threading.BoundedSemaphore(config.login_workers + config.login_queue)
        self._by_address = FailedLogins(config.login_max_failures_per_address, config.login_window_s)
        self._by_user = FailedLogins(config.login_max_failures, config.login_window_s)
        self._basic_key = secrets.token_bytes(32)
        self._basic: OrderedDict[bytes, str] = OrderedDict()

    def close(self) -> None:
        """Stop the password-check threads (idle ones; a check under way finishes)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def check_password(self, user: str, password: str, client: str | None = None) -> Principal:
        """The user's principal. ``client``: the caller's address, for throttling per address.

        Raises AuthenticationError (never saying which part was wrong), or LoginThrottledError when this
        address or user name failed too often lately or too many checks are waiting (no check is run then).
        """
        retry = max(self._by_user.retry_after(user), self._by_address.retry_after(client) if client else 0.0)
        if retry > 0:
            raise LoginThrottledError("too many failed logins from this address or for this user name", retry)
        entry = self._users.get(user)
        encoded = entry[0] if entry is not None else self._dummy_hash
        ok, rehashed = self._verify(encoded, password, rehash=entry is not None)
        if not ok or entry is None:
            self._by_user.record(user)
            if client:
                self._by_address.record(client)
            raise AuthenticationError("invalid user name or password")
        principal = entry[1]
        self._by_user.clear(user)
        if rehashed is not None:
            self._users[user] = (rehashed, principal)
        return principal

    def _verify(self, encoded: str, password: str, rehash: bool) -> tuple[bool, str | None]:
        """``_check`` on the password-check pool; refused at once when ``login_queue`` checks already wait."""
        if not encoded:
            return False, None
        if not self._slots.acquire(blocking=False):
            raise LoginThrottledError("too many logins in progress", 1.0)
        try:
            return self._pool.submit(_check, encoded, password, rehash).result()
        finally:
            self._slots.release()

    def issue_token(self, principal: Principal) -> str:
        """A new bearer token for ``principal``, valid ``token_ttl_s`` seconds."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (principal, now + self.ttl_s)
        return token

    def login(self, user: str, password: str, client: str | None = None) -> str:
        """Check a password and return a new bearer token."""
        return self.issue_token(self.check_password(user, password, client))

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
        self, authorization: str | None, issue_token: bool = True, client: str | None = None
    ) -> tuple[Principal | None, str | None]:
        """Authenticate an ``Authorization`` header value (``Bearer t`` or ``Basic b64``).

        Returns (principal, the bearer token for Basic credentials when ``issue_token``, else None); (None,
        None) when auth is off. Basic credentials already exchanged get the same token back, renewed.
        ``client``: the caller's address (REST: ``request.client.host``), for throttling per address.
        Raises AuthenticationError, or LoginThrottledError (see ``check_password``).
        """
        if not self.enabled:
            return None, None
        if not authorization:
            raise AuthenticationError("authentication required: send Basic credentials or a Bearer token")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return self.principal_for_token(value.strip()), None
        if scheme.lower() == "basic":
            key = hmac.new(self._basic_key, value.strip().encode(), hashlib.sha256).digest()
            known = self._known_basic(key)
            if known is not None:
                return known[0], known[1] if issue_token else None
            try:
                encoded = value.strip()
                # some clients (the Go Flight SQL driver) send unpadded base64
                encoded += "=" * (-len(encoded) % 4)
                user, _, password = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise AuthenticationError("malformed Basic credentials") from exc
            principal = self.check_password(user, password, client)
            token = self.issue_token(principal)
            with self._lock:
                self._basic[key] = token
                while len(self._basic) > _BASIC_CACHE_SIZE:
                    self._basic.popitem(last=False)
            return principal, token if issue_token else None
        raise AuthenticationError(f"unsupported authorization scheme '{scheme}'")

    def _known_basic(self, key: bytes) -> tuple[Principal, str] | None:
        """(principal, token) for Basic credentials exchanged before whose token is still valid; the
        token's lifetime starts again (the credentials were just proven again)."""
        with self._lock:
            token = self._basic.get(key)
            entry = self._tokens.get(token) if token is not None else None
            if entry is None or entry[1] <= time.monotonic():
                if token is not None:
                    del self._basic[key]
                return None
            self._basic.move_to_end(key)
            self._tokens[token] = (entry[0], time.monotonic() + self.ttl_s)
            return entry[0], token
