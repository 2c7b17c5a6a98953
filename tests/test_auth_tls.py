"""Authentication, authorization and TLS on Flight SQL and REST, against the real servers.

Users have argon2 password hashes (or a clear password from the environment, hashed at start); API tokens
come from the environment. ``carol`` may use only ``demo_db``: the metadata she sees lists only it, and a
query naming ``vault`` is refused before the gateway contacts it (``vault`` is a PostgreSQL source on a
closed port: had it been contacted, the error would say it is unavailable). TLS uses a certificate this
test makes with ``cryptography``.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import threading
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import httpx
import pyarrow as pa
import pytest
import uvicorn
from pyarrow import flight

from flight_server import protocol as pb
from gateway import client as gw_client
from gateway.api import create_app
from gateway.auth import Authenticator, hash_password
from gateway.errors import (
    AuthenticationError,
    ConfigError,
    PermissionDeniedError,
    SourceUnavailableError,
    UnknownObjectError,
)
from gateway.execution.engine import QueryEngine
from gateway.server import tls_certificates
from gateway.settings import settings_from_dict
from tests.demo_support import free_port, wait_for_health
from tests.flight_support import serve

ALICE_PW, BOB_PW, CAROL_PW = "alice-pw-1", "bob-pw-22", "carol-pw-333"
API_TOKEN = "tok_" + "9" * 40


@pytest.fixture(scope="module")
def folder(demo_folder) -> Path:
    return demo_folder


def auth_settings(folder: Path, monkeypatch=None, ttl_s: float = 60.0, **server):
    raw = {
        "sources": [
            {"name": "demo_db", "kind": "sqlite", "path": "demo_data/demo.db"},
            {"name": "demo_lake", "kind": "parquet", "path": "demo_data/lake"},
            {"name": "vault", "kind": "postgresql", "uri": "postgresql://postgres@127.0.0.1:1/vault"},
        ],
        "server": server,
        "auth": {
            "enabled": True, "token_ttl_s": ttl_s,
            "users": [
                {"name": "alice", "password_hash": hash_password(ALICE_PW)},
                {"name": "bob", "password": "${GW_TEST_BOB_PASSWORD}", "sources": ["demo_db", "demo_lake"]},
                {"name": "carol", "password_hash": hash_password(CAROL_PW), "sources": ["demo_db"]},
            ],
            "api_tokens": [{"name": "etl", "token": "${GW_TEST_API_TOKEN}", "sources": ["demo_lake"]}],
        },
    }
    return settings_from_dict(raw, base_dir=folder)


@pytest.fixture(scope="module")
def settings(folder):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GW_TEST_BOB_PASSWORD", BOB_PW)
        env.setenv("GW_TEST_API_TOKEN", API_TOKEN)
        return auth_settings(folder)


@pytest.fixture(scope="module")
def flight_settings(settings):
    """What ``served`` (tests/conftest.py) serves: the auth-enabled demo."""
    return settings


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---- config ---------------------------------------------------------------------------------------------------


def test_clear_passwords_are_not_kept(settings):
    auth = Authenticator(settings.auth)
    stored = {name: entry[0] for name, entry in auth._users.items()}
    assert all(h.startswith("$argon2id$") for h in stored.values())
    assert BOB_PW not in repr(stored)


@pytest.mark.parametrize(("auth", "key", "reason"), [
    ({"enabled": True, "users": [{"name": "x", "password_hash": "5f4dcc3b5aa765d61d8327deb882cf99"}]},
     "auth.users[0]", "argon2"),
    ({"enabled": True, "users": [{"name": "x", "password_hash": hash_password("p"), "sources": ["nope"]}]},
     "auth.users[0].sources", "unknown source 'nope'"),
    ({"enabled": True, "api_tokens": [{"name": "t", "token": "short"}]}, "auth.api_tokens.0.token", "16"),
    ({"enabled": True}, "auth", "no users"),
])
def test_bad_auth_config_names_the_key(folder, auth, key, reason):
    raw = {"sources": [{"name": "demo_db", "kind": "sqlite", "path": "demo_data/demo.db"}], "auth": auth}
    with pytest.raises(ConfigError) as excinfo:
        settings_from_dict(raw, base_dir=folder)
    assert excinfo.value.details["key"].replace("[", ".").replace("]", "") == key.replace("[", ".").replace("]", "")
    assert reason in str(excinfo.value)


def test_tls_files_must_exist(folder):
    with pytest.raises(ConfigError, match=r"server.tls_cert: file .* does not exist"):
        settings_from_dict({"server": {"tls_cert": "nope.pem", "tls_key": "nope.key"}}, base_dir=folder)
    with pytest.raises(ConfigError, match="together"):
        settings_from_dict({"server": {"tls_cert": "nope.pem"}}, base_dir=folder)


# ---- Flight: authentication ---------------------------------------------------------------------------------


def test_hashed_and_env_passwords_log_in(uri):
    for user, password in (("alice", ALICE_PW), ("bob", BOB_PW)):
        with gw_client.connect(uri, user=user, password=password) as conn:
            assert conn.query("SELECT count(*) AS n FROM demo_db.main.products").column("n")[0].as_py() > 0


def test_wrong_password_is_refused(uri):
    with pytest.raises(AuthenticationError, match="invalid user name or password"):
        gw_client.connect(uri, user="alice", password="wrong")
    with pytest.raises(AuthenticationError):
        gw_client.connect(uri, user="mallory", password=ALICE_PW)


def test_api_token_from_the_environment(uri):
    with gw_client.connect(uri, token=API_TOKEN) as conn:
        assert conn.sources() == ["demo_lake"]
        assert conn.query("SELECT count(*) AS n FROM demo_lake.main.regions").num_rows == 1
    with pytest.raises(AuthenticationError, match="invalid or expired bearer token"):
        gw_client.connect(uri, token="tok_" + "8" * 40)


def test_expired_token_is_refused(folder, monkeypatch):
    monkeypatch.setenv("GW_TEST_BOB_PASSWORD", BOB_PW)
    monkeypatch.setenv("GW_TEST_API_TOKEN", API_TOKEN)
    with serve(auth_settings(folder, ttl_s=0.5)) as (address, _), flight.connect(address) as client:
        header = client.authenticate_basic_token("alice", ALICE_PW)
        options = flight.FlightCallOptions(headers=[header])
        descriptor = flight.FlightDescriptor.for_command(pb.pack(pb.CommandGetCatalogs()))
        assert client.get_flight_info(descriptor, options).schema.names == ["catalog_name"]
        time.sleep(0.7)
        with pytest.raises(flight.FlightUnauthenticatedError, match="expired"):
            client.get_flight_info(descriptor, options)


def test_tickets_are_bound_to_the_user_who_asked(uri):
    with flight.connect(uri) as client:
        alice = flight.FlightCallOptions(headers=[client.authenticate_basic_token("alice", ALICE_PW)])
        bob = flight.FlightCallOptions(headers=[client.authenticate_basic_token("bob", BOB_PW)])
        descriptor = flight.FlightDescriptor.for_command(
            pb.pack(pb.CommandStatementQuery(query="SELECT count(*) AS n FROM demo_db.main.customers")))
        info = client.get_flight_info(descriptor, alice)
        with pytest.raises(pa.ArrowInvalid, match="unknown or expired statement handle"):
            client.do_get(info.endpoints[0].ticket, bob).read_all()
        assert client.do_get(info.endpoints[0].ticket, alice).read_all().column("n")[0].as_py() > 0


# ---- Flight: authorization ----------------------------------------------------------------------------------


def test_metadata_lists_only_allowed_sources(uri):
    with gw_client.connect(uri, user="carol", password=CAROL_PW) as conn:
        assert conn.sources() == ["demo_db"]
        tables = conn.adbc.adbc_get_objects(depth="tables").read_all().to_pylist()
        assert [c["catalog_name"] for c in tables] == ["demo_db"]
        assert conn.tables("demo_db") == [("main", "customers"), ("main", "products")]
        assert conn.tables("demo_lake") == []
    with gw_client.connect(uri, user="alice", password=ALICE_PW) as conn:
        assert conn.sources() == ["demo_db", "demo_lake", "vault"]


def test_query_on_a_forbidden_source_is_refused_before_contacting_it(uri):
    with gw_client.connect(uri, user="carol", password=CAROL_PW) as conn:
        with pytest.raises(PermissionDeniedError, match="source 'vault'") as excinfo:
            conn.query("SELECT * FROM vault.public.secrets")
        assert excinfo.value.source == "vault"
        with pytest.raises(PermissionDeniedError, match="demo_lake"):
            conn.query("SELECT c.id FROM demo_db.main.customers c JOIN demo_lake.main.orders o "
                       "ON o.customer_id = c.id")
        with pytest.raises(UnknownObjectError):  # unqualified: only carol's sources are searched
            conn.query("SELECT * FROM orders")
        assert conn.query("SELECT count(*) AS n FROM customers").column("n")[0].as_py() > 0
    with (gw_client.connect(uri, user="alice", password=ALICE_PW) as conn,
          pytest.raises(SourceUnavailableError, match="vault")):  # alice may: so vault is contacted
        conn.query("SELECT * FROM vault.public.secrets")


def test_prepared_statement_on_forbidden_source_refused(uri):
    with flight.connect(uri) as client:
        carol = flight.FlightCallOptions(headers=[client.authenticate_basic_token("carol", CAROL_PW)])
        request = pb.ActionCreatePreparedStatementRequest(query="SELECT * FROM demo_lake.main.orders WHERE year = ?")
        with pytest.raises(flight.FlightUnauthorizedError, match=r"\[permission_denied\]"):
            list(client.do_action(flight.Action(pb.ACTION_CREATE_PREPARED_STATEMENT, pb.pack(request)), carol))


# ---- REST with the same principals ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rest(served):
    """The REST app sharing the Flight server's gateway and authenticator, as ``gateway serve`` runs them."""
    server = served[1]
    app = create_app(server.gateway, server.authenticator)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_health(f"http://127.0.0.1:{port}", 15, alive=thread.is_alive)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(15)


def test_rest_api_token_and_authorization(rest):
    bearer = {"authorization": f"Bearer {API_TOKEN}"}
    assert [s["name"] for s in rest.get("/v1/sources", headers=bearer).json()] == ["demo_lake"]
    refused = rest.post("/v1/query", json={"sql": "SELECT * FROM demo_db.main.customers"}, headers=bearer)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    ok = rest.post("/v1/query", json={"sql": "SELECT count(*) AS n FROM demo_lake.main.regions"}, headers=bearer)
    assert ok.status_code == 200 and ok.json()["row_count"] == 1
    assert rest.get("/v1/sources/demo_db/tables", headers=bearer).status_code == 403  # as the query above


def test_rest_takes_the_flight_bearer_token(rest, uri):
    with flight.connect(uri) as client:
        _, value = client.authenticate_basic_token("carol", CAROL_PW)
    headers = {"authorization": value.decode()}
    assert [s["name"] for s in rest.get("/v1/sources", headers=headers).json()] == ["demo_db"]
    wrong = rest.get("/v1/sources", headers={"authorization": _basic("carol", "nope")})
    assert wrong.status_code == 401


# ---- TLS ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return folder / "server.pem", folder / "server.key"


def test_flight_over_tls(folder, certificate, monkeypatch):
    monkeypatch.setenv("GW_TEST_BOB_PASSWORD", BOB_PW)
    monkeypatch.setenv("GW_TEST_API_TOKEN", API_TOKEN)
    cert, key = certificate
    settings = auth_settings(folder, tls_cert=str(cert), tls_key=str(key))
    with serve(settings, tls_certificates=tls_certificates(settings)) as (address, _):
        assert address.startswith("grpc+tls://")
        with gw_client.connect(address, user="alice", password=ALICE_PW, tls=cert) as conn:
            assert conn.query("SELECT count(*) AS n FROM demo_db.main.products").column("n")[0].as_py() > 0
        with (pytest.raises(flightsql.Error),  # without trusting the certificate
              flightsql.connect(address, db_kwargs={"username": "alice", "password": ALICE_PW}) as c,
              c.cursor() as cur):
            cur.execute("SELECT 1 AS x")
        plain = address.replace("grpc+tls://", "grpc://")
        with pytest.raises((AuthenticationError, flightsql.Error, Exception)):
            gw_client.connect(plain, user="alice", password=ALICE_PW)


def test_rest_over_tls(settings, certificate):
    cert, key = certificate
    gateway = QueryEngine(settings)
    app = create_app(gateway, Authenticator(settings.auth))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           ssl_certfile=str(cert), ssl_keyfile=str(key)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trusted, timeout=30) as client:
            for _ in range(100):
                try:
                    response = client.get("/healthz")
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert response.status_code == 200
            token = client.post("/v1/auth/token", headers={"authorization": _basic("alice", ALICE_PW)}).json()
            answer = client.post("/v1/query", json={"sql": "SELECT 1 AS one"},
                                 headers={"authorization": f"Bearer {token['token']}"})
            assert answer.json()["rows"] == [[1]]
        with pytest.raises(httpx.ConnectError):  # the certificate is not trusted by default
            httpx.get(f"https://127.0.0.1:{port}/healthz")
    finally:
        server.should_exit = True
        thread.join(15)
        gateway.close()
