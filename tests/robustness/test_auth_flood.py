"""A flood of bad logins neither exhausts memory nor stalls the gateway, and is throttled.

Before: every ``Authorization: Basic`` request ran a 64 MiB argon2 verification on the request's own thread,
also for unknown users; 300 bad requests took RSS from 330 MB to 2.7 GB and ``/healthz`` to 10-26 s.
Now checks run on a 2-thread pool with 19 MiB argon2id (OWASP), waiting checks are bounded, failed logins
are limited per user name and per client address (429 / Flight UNAVAILABLE with a retry-after), and Basic
credentials are exchanged for a bearer token once.

Runs against the real FastAPI app over HTTP (``running_app``) and the real Flight SQL server (``serve``),
with real argon2 hashing; the lockout window is 1.5 s so the tests stay fast.
"""

from __future__ import annotations

import base64
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from argon2 import PasswordHasher
from pyarrow import flight

import gateway.auth as auth_module
from flight_server import protocol as pb
from gateway.api import create_app
from gateway.auth import Authenticator, LoginThrottledError, hash_password
from gateway.errors import AuthenticationError
from gateway.execution.engine import QueryEngine
from gateway.settings import AuthConfig, settings_from_dict
from tests.demo_support import running_app
from tests.flight_support import serve

WINDOW_S = 1.5
MAX_FAILURES = 5
BOB_PW = "correct horse battery staple"
FLOOD_REQUESTS = 300
FLOOD_THREADS = 6
FLOOD_NAMES = ["bob", "mallory", "eve"]  # a real user with wrong passwords, and two names that are no user
RSS_GROWTH_LIMIT_MB = 150  # measured: about 45-90 MB (two 19 MiB argon2 workers, request threads); before: 1.7 GB


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def rss_mb() -> float:
    """This process's resident set (the app is served in-process)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def auth_config(**overrides) -> dict:
    return {"enabled": True, "users": [{"name": "bob", "password_hash": hash_password(BOB_PW)}],
            "login_max_failures": MAX_FAILURES, "login_max_failures_per_address": MAX_FAILURES,
            "login_window_s": WINDOW_S, **overrides}


@pytest.fixture
def settings(tmp_path: Path):
    (tmp_path / "lake").mkdir()
    pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "lake" / "numbers.parquet")
    return settings_from_dict({"sources": [{"name": "lake", "kind": "parquet", "path": "lake"}],
                               "auth": auth_config()}, base_dir=tmp_path)


@pytest.fixture
def app(settings):
    """The base URL of the real REST app (served in this process, so its memory is this process's)."""
    gateway = QueryEngine(settings)
    authenticator = Authenticator(settings.auth)
    with running_app(create_app(gateway, authenticator)) as base:
        yield base
    authenticator.close()
    gateway.close()


class Monitor:
    """While running: ``/healthz`` latencies, polled back to back, and the peak RSS, sampled every 10 ms."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self.peak_mb = rss_mb()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._health), threading.Thread(target=self._memory)]

    def _health(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                assert client.get(f"{self.base}/healthz").status_code == 200
                self.latencies.append(time.perf_counter() - start)

    def _memory(self) -> None:
        while not self._stop.wait(0.01):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def __enter__(self) -> Monitor:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def p95(self) -> float:
        """Inclusive, so a short storm's few samples are not extrapolated past their maximum."""
        return statistics.quantiles(self.latencies, n=20, method="inclusive")[-1]


class Flood:
    """``threads`` HTTP clients, made before the flood starts (a client costs milliseconds of CPU under the GIL
    in this process, which would otherwise be counted against ``/healthz``); ``send`` posts one ``/v1/query``
    per Authorization value, one client per thread."""

    def __init__(self, base: str, threads: int) -> None:
        self.base = base
        self.clients = [httpx.Client(timeout=120) for _ in range(threads)]

    def send(self, headers: list[str]) -> list[httpx.Response]:
        free = list(self.clients)
        lock = threading.Lock()
        local = threading.local()

        def one(header: str) -> httpx.Response:
            if not hasattr(local, "client"):
                with lock:
                    local.client = free.pop()
            return local.client.post(f"{self.base}/v1/query", json={"sql": "SELECT 1"},
                                     headers={"authorization": header})

        with ThreadPoolExecutor(len(self.clients)) as pool:
            return list(pool.map(one, headers))

    def close(self) -> None:
        for client in self.clients:
            client.close()


def flood(base: str, headers: list[str], threads: int) -> list[httpx.Response]:
    """Send one ``/v1/query`` per Authorization value from ``threads`` threads, each with its own client."""
    sender = Flood(base, threads)
    try:
        return sender.send(headers)
    finally:
        sender.close()


def test_bad_login_flood_is_throttled_with_bounded_memory_and_fast_healthz(app):
    headers = [basic(FLOOD_NAMES[i % 3], f"guess-{i}") for i in range(FLOOD_REQUESTS)]
    flood(app, headers[:3], 1)  # warm up: the pool's threads exist, as in a server that has had logins
    sender = Flood(app, FLOOD_THREADS)
    before_mb = rss_mb()
    with Monitor(app) as monitor:
        responses = sender.send(headers[3:])
    sender.close()
    growth_mb = monitor.peak_mb - before_mb
    print(f"\nbad-login flood: RSS {before_mb:.0f} MB -> peak {monitor.peak_mb:.0f} MB (+{growth_mb:.0f} MB); "
          f"/healthz p95 {monitor.p95() * 1000:.1f} ms over {len(monitor.latencies)} calls; "
          f"statuses {Counter(r.status_code for r in responses)}")

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {401, 429}
    # each name is checked at most MAX_FAILURES times (plus the attempts already under way when it locked)
    assert statuses[401] <= len(FLOOD_NAMES) * (MAX_FAILURES + FLOOD_THREADS)
    assert statuses[429] >= FLOOD_REQUESTS - 3 - len(FLOOD_NAMES) * (MAX_FAILURES + FLOOD_THREADS)
    throttled = next(r for r in responses if r.status_code == 429).json()["error"]
    assert throttled["code"] == "resource_limit"
    assert 1 <= throttled["retry_after_s"] <= WINDOW_S + 1
    assert "too many failed logins" in throttled["message"]
    assert growth_mb < RSS_GROWTH_LIMIT_MB
    assert len(monitor.latencies) >= 5 and monitor.p95() < 0.5  # was 10-26 s; slack for a loaded 2-core machine


def test_unknown_name_storm_keeps_memory_bounded_and_healthz_fast(app):
    """Many concurrent logins with made-up names (each one needs a full check): at most 2 run and 16 wait;
    the rest are refused at once."""
    headers = [basic(f"nobody-{i}", "x") for i in range(120)]
    flood(app, headers[:2], 1)
    sender = Flood(app, 30)
    before_mb = rss_mb()
    with Monitor(app) as monitor:
        responses = sender.send(headers[2:])
    sender.close()
    growth_mb = monitor.peak_mb - before_mb
    statuses = Counter(r.status_code for r in responses)
    print(f"\nunknown-name storm: RSS {before_mb:.0f} MB -> peak {monitor.peak_mb:.0f} MB (+{growth_mb:.0f} MB); "
          f"/healthz p95 {monitor.p95() * 1000:.1f} ms over {len(monitor.latencies)} calls; statuses {statuses}")
    assert set(statuses) <= {401, 429} and statuses[401] > 0
    assert growth_mb < RSS_GROWTH_LIMIT_MB
    assert len(monitor.latencies) >= 5 and monitor.p95() < 0.5  # was 10-26 s; slack for a loaded 2-core machine


def test_correct_login_works_after_the_lockout_window(app):
    responses = flood(app, [basic("bob", f"guess-{i}") for i in range(MAX_FAILURES + 2)], 1)
    assert [r.status_code for r in responses] == [401] * MAX_FAILURES + [429, 429]
    locked = httpx.post(f"{app}/v1/auth/token", headers={"authorization": basic("bob", BOB_PW)})
    assert locked.status_code == 429  # locked for the name, whatever the password: nothing is checked
    time.sleep(locked.json()["error"]["retry_after_s"])
    token = httpx.post(f"{app}/v1/auth/token", headers={"authorization": basic("bob", BOB_PW)})
    assert token.status_code == 200 and token.json()["user"] == "bob"
    answer = httpx.post(f"{app}/v1/query", json={"sql": "SELECT sum(x) AS s FROM lake.numbers"},
                        headers={"authorization": f"Bearer {token.json()['token']}"})
    assert answer.json()["rows"] == [[6]]


def test_basic_credentials_are_checked_once(app, monkeypatch):
    checks = []
    original = auth_module._check

    def counting(*args):
        checks.append(args[0])
        return original(*args)

    monkeypatch.setattr(auth_module, "_check", counting)
    with httpx.Client(base_url=app, headers={"authorization": basic("bob", BOB_PW)}, timeout=30) as client:
        answers = [client.post("/v1/query", json={"sql": "SELECT sum(x) AS s FROM lake.numbers"}) for _ in range(20)]
        tokens = [client.post("/v1/auth/token").json()["token"] for _ in range(2)]
    assert [a.json()["rows"] for a in answers] == [[[6]]] * 20
    assert len(checks) == 1
    assert tokens[0] == tokens[1]  # the same exchange, its lifetime renewed


def test_flight_login_flood_answers_unavailable_with_retry_after(settings):
    with serve(settings) as (uri, _), flight.connect(uri) as client:
        for i in range(MAX_FAILURES):
            with pytest.raises(flight.FlightUnauthenticatedError):
                client.authenticate_basic_token("mallory", f"guess-{i}")
        with pytest.raises(flight.FlightUnavailableError, match=r"too many failed logins .*; retry after \d+ s"):
            client.authenticate_basic_token("mallory", "guess")
        header = client.authenticate_basic_token("bob", BOB_PW)  # another name is not affected
        catalogs = flight.FlightDescriptor.for_command(pb.pack(pb.CommandGetCatalogs()))
        info = client.get_flight_info(catalogs, flight.FlightCallOptions(headers=[header]))
        assert info.schema.names == ["catalog_name"]


def test_failures_are_limited_per_client_address():
    """Made-up names from one address: locked after MAX_FAILURES, whatever the name; other addresses not."""
    auth = Authenticator(AuthConfig(**auth_config()))
    try:
        for i in range(MAX_FAILURES):
            with pytest.raises(AuthenticationError):
                auth.check_password(f"nobody-{i}", "x", client="203.0.113.7")
        with pytest.raises(LoginThrottledError) as excinfo:
            auth.check_password("someone-new", "x", client="203.0.113.7")
        assert excinfo.value.http_status == 429 and excinfo.value.flight_kind == "unavailable"
        assert 1 <= excinfo.value.details["retry_after_s"] <= WINDOW_S + 1
        assert auth.check_password("bob", BOB_PW, client="198.51.100.1").name == "bob"
    finally:
        auth.close()


def test_unknown_user_costs_what_a_wrong_password_costs():
    auth = Authenticator(AuthConfig(**auth_config(login_max_failures=1000)))

    def median_failure_s(user: str) -> float:
        times = []
        for _ in range(7):
            start = time.perf_counter()
            with pytest.raises(AuthenticationError, match="invalid user name or password"):
                auth.check_password(user, "wrong")
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    try:
        known, unknown = median_failure_s("bob"), median_failure_s("nobody")
    finally:
        auth.close()
    assert known > 0.005  # a real argon2 check
    assert 0.5 < unknown / known < 2.0


def test_waiting_checks_are_bounded():
    """One worker and no queue: of 8 simultaneous logins one is checked, the others are refused at once."""
    auth = Authenticator(AuthConfig(**auth_config(login_workers=1, login_queue=0, login_max_failures=1000)))
    barrier = threading.Barrier(8)

    def attempt(i: int) -> str:
        barrier.wait()
        try:
            auth.check_password(f"user-{i}", "x")
        except LoginThrottledError as exc:
            return exc.message
        except AuthenticationError:
            return "checked"
        return "accepted"

    try:
        with ThreadPoolExecutor(8) as pool:
            outcomes = Counter(pool.map(attempt, range(8)))
    finally:
        auth.close()
    assert outcomes["checked"] >= 1
    assert outcomes["too many logins in progress; retry after 1 s"] >= 1
    assert outcomes["checked"] + outcomes["too many logins in progress; retry after 1 s"] == 8


def test_argon2id_parameters_follow_owasp_and_old_hashes_still_verify():
    assert hash_password("x").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    old = PasswordHasher().hash(BOB_PW)  # argon2-cffi's default: 64 MiB, t=3, p=4
    assert "$m=65536,t=3,p=4$" in old
    auth = Authenticator(AuthConfig(enabled=True, users=[{"name": "bob", "password_hash": old}]))
    try:
        assert auth.check_password("bob", BOB_PW).name == "bob"
        assert auth._users["bob"][0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # re-hashed in memory
        assert auth.check_password("bob", BOB_PW).name == "bob"
    finally:
        auth.close()
