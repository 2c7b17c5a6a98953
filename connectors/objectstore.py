"""Object-store locations of file and lakehouse sources: ``path = "s3://bucket/prefix"`` and
``az://container/prefix`` (Azure Blob Storage; also ``azure://`` and ``abfs[s]://container@account.dfs.core.windows.net/
prefix``) for every kind, and ``gs://bucket/prefix`` (Google Cloud Storage) for the Parquet and CSV kinds.

One ``ObjectStore`` (``S3Store`` here, ``AzureStore`` in ``connectors.objectstore_azure``, ``GcsStore`` in
``connectors.objectstore_gcs``) holds a source's bucket or container, prefix, endpoint and credentials (from the
source's options, else the standard environment variables) and hands each library its own view of them:

- ``filesystem``: a ``pyarrow.fs`` filesystem (``S3FileSystem``, ``AzureFileSystem``, ``GcsFileSystem``) for
  listing objects (size and last-modified time, the partition fingerprint), Parquet footers, Delta tables read as
  pyarrow datasets, and Iceberg data files. pyarrow is already a dependency and lists all three clouds, so no
  cloud SDK is added;
- ``datafusion_store()``: DataFusion's own object store (``AmazonS3``, ``MicrosoftAzure``), registered in a
  session so that ``register_parquet``/``register_csv`` read the objects natively (projection, filters, Hive
  pruning). GCS has none that can be used (``native_reads`` is false: see ``connectors.objectstore_gcs``);
- ``storage_options()``: the same settings under delta-rs's names; ``iceberg_properties()``: under pyiceberg's.

**One bucket, two credentials.** DataFusion keys a session's object stores by URL scheme and host, and the
residual session holds the stores of every source a query reads in place. Two sources on one bucket with
different credentials would then share one registration, the later one replacing the first. So DataFusion never
sees the bucket's own URL: it reads ``s3://<bucket>.<tag>/...`` where the tag is a keyed hash (a per-process key;
nothing of a secret can be read from it) of every setting of the store, credentials included
(``datafusion_uri``). Stores with the same settings share a registration; any other difference gets its own.

Errors are mapped once (``unavailable``) to ``SourceUnavailableError`` naming the source and the cause (no such
bucket or container, credentials refused, endpoint unreachable), never a secret.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import ParseResult, urlparse

import pyarrow.fs as pafs

from connectors.objectpath import ObjectPath, ObjectStat  # noqa: F401 - importable here as before
from connectors.objectstore_azure import AzureStore  # noqa: F401 - registers az://; importable here
from connectors.objectstore_base import (  # noqa: F401 - importable here as before
    AZURE_SCHEMES,
    FILE_SCHEMES,
    GCS_SCHEMES,
    LAKE_SCHEMES,
    S3_SCHEMES,
    ObjectStore,
    setting,
)
from connectors.objectstore_gcs import GcsStore  # noqa: F401 - registers gs://; importable here

#: S3 options a source with an ``s3://`` path may set (besides ``path``); each falls back to the standard
#: environment variable named beside it
OBJECT_STORE_OPTIONS: dict[str, str] = {
    "endpoint": "AWS_ENDPOINT_URL",
    "region": "AWS_REGION",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
}
def is_object_store(path: str | os.PathLike) -> bool:
    """Whether a source ``path`` names an object-store location (``scheme://...``) rather than a local one."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


@dataclass(frozen=True)
class S3Store(ObjectStore):
    """An ``s3://bucket/prefix`` location (AWS S3 and S3-compatible servers: MinIO, moto, Ceph).

    Attributes (besides ``ObjectStore``'s):
        region: the bucket's region (``us-east-1`` when unknown).
        access_key_id, secret_access_key, session_token: credentials; None to use the default chain.
    """

    url_schemes: ClassVar[tuple[str, ...]] = S3_SCHEMES

    region: str = "us-east-1"
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, parsed: ParseResult, options: dict[str, Any]) -> S3Store:
        """The store of ``s3://bucket[/prefix]`` (``parsed``) with the source's options, else the standard
        ``AWS_*`` environment variables (``OBJECT_STORE_OPTIONS``)."""
        settings = {key: setting(options, key, env) for key, env in OBJECT_STORE_OPTIONS.items()}
        settings["region"] = settings["region"] or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return cls(bucket=parsed.netloc, prefix=parsed.path.strip("/"), **settings)

    @functools.cached_property
    def filesystem(self) -> pafs.S3FileSystem:
        """A pyarrow S3 filesystem over this location's endpoint (bounded connect and request times, so an
        unreachable endpoint fails a query within seconds rather than hanging it)."""
        kwargs: dict[str, Any] = {"region": self.region, "connect_timeout": 5, "request_timeout": 30,
                                  "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=2)}
        if self.endpoint:
            endpoint = urlparse(self.endpoint)
            kwargs.update(endpoint_override=endpoint.netloc or endpoint.path, scheme=endpoint.scheme or "https")
        if self.access_key_id:
            kwargs.update(access_key=self.access_key_id, secret_key=self.secret_access_key,
                          session_token=self.session_token)
        return pafs.S3FileSystem(**kwargs)

    def datafusion_store(self) -> Any:
        """DataFusion's ``AmazonS3`` object store for this bucket (``register`` registers it)."""
        from datafusion.object_store import AmazonS3  # only object-store sources load the store bindings

        return AmazonS3(bucket_name=self.bucket, region=self.region, access_key_id=self.access_key_id,
                        secret_access_key=self.secret_access_key, session_token=self.session_token,
                        endpoint=self.endpoint, allow_http=bool(self.endpoint and self.endpoint.startswith("http:")))

    def storage_options(self) -> dict[str, str]:
        """The settings under delta-rs's (object_store crate's) names."""
        options = {"AWS_REGION": self.region, "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
        if self.endpoint:
            options["AWS_ENDPOINT_URL"] = self.endpoint
            options["AWS_ALLOW_HTTP"] = "true" if self.endpoint.startswith("http:") else "false"
        for name, value in (("AWS_ACCESS_KEY_ID", self.access_key_id), ("AWS_SECRET_ACCESS_KEY",
                            self.secret_access_key), ("AWS_SESSION_TOKEN", self.session_token)):
            if value:
                options[name] = value
        return options

    def iceberg_warehouse(self) -> str:
        """``s3://bucket/prefix``: the warehouse URL pyiceberg reads."""
        return self.uri()

    def iceberg_properties(self) -> dict[str, str]:
        """The settings under pyiceberg's names (``s3.*``)."""
        props = {"s3.region": self.region}
        if self.endpoint:
            props["s3.endpoint"] = self.endpoint
        if self.access_key_id:
            props.update({"s3.access-key-id": self.access_key_id, "s3.secret-access-key": self.secret_access_key or ""})
            if self.session_token:
                props["s3.session-token"] = self.session_token
        return props
