"""Fixtures of the lakehouse tests: an S3-compatible server (moto's stand-alone server, a child process on a free
loopback port) with IAM authentication enforced, a bucket, and the credentials of a user allowed to use it (and of
one allowed to read ``public/`` only); Azurite (the Azure Storage emulator, from npm) with a container; a GCS
emulator (gcp-storage-emulator, from PyPI) with a bucket."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.demo_support import free_port


@dataclass(frozen=True)
class S3:
    """A running S3 server: ``endpoint`` (``http://127.0.0.1:port``), a ``bucket``, valid credentials."""

    endpoint: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    #: a second IAM user's key: may list the bucket and read objects under ``public/`` only
    limited_access_key_id: str = ""
    limited_secret_access_key: str = ""

    def options(self, **overrides) -> dict:
        """A source's object-store options."""
        return {"endpoint": self.endpoint, "region": "us-east-1", "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key, **overrides}

    def filesystem(self):
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(access_key=self.access_key_id, secret_key=self.secret_access_key,
                                 endpoint_override=self.endpoint.removeprefix("http://"), scheme="http",
                                 region="us-east-1")

    def storage_options(self) -> dict:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key, "AWS_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}


def wait_until_up(server: subprocess.Popen, url: str, log: Path, what: str, status: bool = False) -> None:
    """Wait (at most 30 s) until ``url`` answers an HTTP request (``status``: with a 2xx status), else raise
    RuntimeError with the end of the server's ``log``; a server that exited fails at once."""
    import httpx

    deadline = time.monotonic() + 30
    while True:
        try:
            response = httpx.get(url, timeout=1.0)
            if status:
                response.raise_for_status()
            return
        except (httpx.TransportError, httpx.HTTPStatusError):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)


def stop(server: subprocess.Popen, grace_s: float) -> None:
    """Stop a test-owned server process: SIGTERM, then SIGKILL after ``grace_s`` seconds."""
    server.terminate()
    try:
        server.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=5)


@pytest.fixture(scope="session")
def s3(tmp_path_factory) -> Iterator[S3]:
    """moto's stand-alone server (its own process: an S3 server inside the test process would share the GIL
    with the scans reading from it) with one bucket; requests must then be signed by the IAM user's key
    (moto's ``/moto-api/reset-auth``), so wrong credentials are refused as by a real store."""
    import boto3
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, f"{endpoint}/moto-api/", log, "moto's server")
        admin = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "admin",
                 "aws_secret_access_key": "admin"}
        bucket = f"lake-{secrets.token_hex(4)}"
        boto3.client("s3", **admin).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="gateway")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="gateway", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="gateway")["AccessKey"]
        iam.create_user(UserName="limited")
        limited = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/public/*"}]}
        iam.put_user_policy(UserName="limited", PolicyName="public", PolicyDocument=json.dumps(limited))
        limited_key = iam.create_access_key(UserName="limited")["AccessKey"]
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0", timeout=10).raise_for_status()
        yield S3(endpoint, bucket, key["AccessKeyId"], key["SecretAccessKey"], limited_key["AccessKeyId"],
                 limited_key["SecretAccessKey"])
    finally:
        stop(server, 10)


#: Azurite (Microsoft's Azure Storage emulator, from npm), installed once per machine here by the ``azurite``
#: fixture or by .ci/run (the same command)
AZURITE_VERSION = "3.37.0"
AZURITE_DIR = Path(tempfile.gettempdir()) / f"gateway-azurite-{AZURITE_VERSION}"
#: Azurite's well-known development account (published by Microsoft; it guards nothing)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class Azure:
    """A running Azurite Blob service: ``endpoint`` (``http://127.0.0.1:port/devstoreaccount1``), a
    ``container``, the account and its key."""

    endpoint: str
    container: str
    account_name: str = AZURITE_ACCOUNT
    account_key: str = AZURITE_KEY

    def options(self, **overrides) -> dict:
        """A source's Azure options."""
        return {"endpoint": self.endpoint, "account_name": self.account_name, "account_key": self.account_key,
                **overrides}

    def filesystem(self):
        import pyarrow.fs as pafs

        authority = self.endpoint.removeprefix("http://").split("/", 1)[0]
        return pafs.AzureFileSystem(self.account_name, account_key=self.account_key,
                                    blob_storage_authority=authority, blob_storage_scheme="http",
                                    dfs_storage_authority=authority, dfs_storage_scheme="http")


def _azurite_binary() -> Path:
    """Azurite's Blob service script, installed with npm into ``AZURITE_DIR`` unless it is there."""
    binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install Azurite (the Azure emulator) for tests/lakehouse")
        AZURITE_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix",
                               str(AZURITE_DIR), f"azurite@{AZURITE_VERSION}"], capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0 or not binary.exists():
            pytest.fail(f"npm could not install azurite@{AZURITE_VERSION}: {done.stderr[-2000:]}")
    return binary


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[Azure]:
    """Azurite's Blob service (a child process on a free loopback port, data in memory) with one container."""

    binary = _azurite_binary()
    port = free_port()
    log = tmp_path_factory.mktemp("azurite") / "azurite.log"
    with log.open("w") as out:
        server = subprocess.Popen([str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                   "--inMemoryPersistence", "--extentMemoryLimit", "256", "--skipApiVersionCheck",
                                   "--disableProductStyleUrl", "--silent"], stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, base, log, "Azurite")
        azure = Azure(f"{base}/{AZURITE_ACCOUNT}", f"lake-{secrets.token_hex(4)}")
        azure.filesystem().create_dir(azure.container)
        yield azure
    finally:
        stop(server, 2)  # Azurite waits for idle keep-alive connections (pyarrow's, DataFusion's) before it exits


@dataclass(frozen=True)
class Gcs:
    """A running GCS emulator (gcp-storage-emulator, JSON API): ``endpoint`` (``http://127.0.0.1:port``) and a
    ``bucket``; no credentials (``anonymous``)."""

    endpoint: str
    bucket: str

    def options(self, **overrides) -> dict:
        """A source's GCS options."""
        return {"endpoint": self.endpoint, "anonymous": True, **overrides}

    def filesystem(self):
        import datetime as dt

        import pyarrow.fs as pafs

        return pafs.GcsFileSystem(anonymous=True, endpoint_override=self.endpoint.removeprefix("http://"),
                                  scheme="http", retry_time_limit=dt.timedelta(seconds=5))


@pytest.fixture(scope="session")
def gcs(tmp_path_factory) -> Iterator[Gcs]:
    """gcp-storage-emulator (the ``lake-test`` extra; a child process on a free loopback port, data in memory)
    with one bucket."""

    port = free_port()
    bucket = f"lake-{secrets.token_hex(4)}"
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                                   "--port", str(port), "--in-memory", "--default-bucket", bucket],
                                  stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, endpoint, log, "the GCS emulator", status=True)
        yield Gcs(endpoint, bucket)
    finally:
        stop(server, 5)
