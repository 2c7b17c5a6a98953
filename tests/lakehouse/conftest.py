"""Fixtures of the lakehouse tests: an S3-compatible server (moto's stand-alone server, a child process on a free
loopback port) with IAM authentication enforced, a bucket, and the credentials of a user allowed to use it."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.demo_support import free_port


@dataclass(frozen=True)
class S3:
    """A running S3 server: ``endpoint`` (``http://127.0.0.1:port``), a ``bucket``, valid credentials."""

    endpoint: str
    bucket: str
    access_key_id: str
    secret_access_key: str

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
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1.0)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        admin = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "admin",
                 "aws_secret_access_key": "admin"}
        bucket = f"lake-{secrets.token_hex(4)}"
        boto3.client("s3", **admin).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="gateway")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="gateway", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="gateway")["AccessKey"]
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0", timeout=10).raise_for_status()
        yield S3(endpoint, bucket, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
