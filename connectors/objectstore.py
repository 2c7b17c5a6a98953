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
import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar
from urllib.parse import urlparse

import pyarrow.fs as pafs

from connectors.errors import SourceUnavailableError
from connectors.objectpath import ObjectPath, ObjectStat  # noqa: F401 - importable here as before

#: S3 options a source with an ``s3://`` path may set (besides ``path``); each falls back to the standard
#: environment variable named beside it
OBJECT_STORE_OPTIONS: dict[str, str] = {
    "endpoint": "AWS_ENDPOINT_URL",
    "region": "AWS_REGION",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
}
#: URL schemes of each store (``abfs``/``abfss`` name the account in the host: ``container@account.dfs...``)
S3_SCHEMES = ("s3", "s3a")
AZURE_SCHEMES = ("az", "azure", "abfs", "abfss")
GCS_SCHEMES = ("gs",)
#: the schemes the Delta and Iceberg kinds read; the Parquet and CSV kinds read ``FILE_SCHEMES``
LAKE_SCHEMES = S3_SCHEMES + AZURE_SCHEMES
FILE_SCHEMES = LAKE_SCHEMES + GCS_SCHEMES

_TAG_KEY = secrets.token_bytes(16)  # keys the store-URL tags of this process: they reveal nothing of a secret

_CAUSES = (
    (re.compile(r"NoSuchBucket|NO_SUCH_BUCKET|bucket does not exist|ContainerNotFound"
                r"|container does not exist", re.I), "the {noun} '{bucket}' does not exist"),
    (re.compile(r"Invalid_?Access_?Key_?Id|Signature_?Does_?Not_?Match|Access_?Denied|\b403\b|Forbidden"
                r"|Invalid_?Token|Expired_?Token|AuthenticationFailed|AuthorizationFailure"
                r"|AuthorizationPermissionMismatch|lacked the necessary privileges|OAuth2 access token|UNAUTHENTICATED"
                r"|PERMISSION_DENIED", re.I),
     "the object store refused the credentials (authentication failed for {noun} '{bucket}')"),
    (re.compile(r"connect|Connection refused|timed out|Couldn't|dns|resolve", re.I),
     "the object store endpoint cannot be reached"),
)


def is_object_store(path: str | os.PathLike) -> bool:
    """Whether a source ``path`` names an object-store location (``scheme://...``) rather than a local one."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def setting(options: dict[str, Any], key: str, *env: str) -> str | None:
    """The source's option ``key``, else the first of the environment variables ``env`` that is set."""
    value = options.get(key)
    if value:
        return str(value)
    return next((os.environ[name] for name in env if os.environ.get(name)), None)


@dataclass(frozen=True)
class ObjectStore:
    """A ``scheme://bucket/prefix`` location with the settings to reach it (built by ``from_options``; see
    ``S3Store`` and ``AzureStore`` for each cloud's settings).

    Attributes:
        bucket: the bucket (S3) or container (Azure) name.
        prefix: the key prefix below the bucket, without leading or trailing ``/`` (may be empty).
        endpoint: ``http(s)://host:port`` of a compatible server or emulator; None for the cloud itself.
    """

    bucket: str
    prefix: str
    endpoint: str | None = None

    scheme: ClassVar[str] = "s3"  # the scheme of ``uri`` (DataFusion's and delta-rs's)
    noun: ClassVar[str] = "bucket"  # what the cloud calls a bucket, for messages
    native_reads: ClassVar[bool] = True  # DataFusion reads the objects with its own store (``register``)

    @classmethod
    def from_options(cls, path: str, options: dict[str, Any], schemes: tuple[str, ...] = LAKE_SCHEMES
                     ) -> ObjectStore:
        """The location of ``path`` with the source's options or the environment: an ``S3Store`` for
        ``s3://bucket[/prefix]``, an ``AzureStore`` for ``az://container[/prefix]``, a ``GcsStore`` for
        ``gs://bucket[/prefix]`` (each when ``schemes`` allows it). Raises ValueError for a scheme outside
        ``schemes``, a missing bucket or settings that do not go together."""
        # the other clouds' stores subclass this one, so their modules are imported here (a cycle otherwise)
        from connectors.objectstore_azure import AzureStore
        from connectors.objectstore_gcs import GcsStore

        parsed = urlparse(path)
        if parsed.scheme not in schemes:
            served = ", ".join(f"{s}://" for s in schemes if s in ("s3", "az", "gs"))
            raise ValueError(f"object-store scheme '{parsed.scheme}://' is not supported here; use {served} "
                             "(an S3-compatible server or a cloud's emulator is given as endpoint)")
        if not parsed.netloc:
            raise ValueError(f"'{path}' names no bucket; write {parsed.scheme}://bucket/prefix")
        if parsed.scheme in AZURE_SCHEMES:
            return AzureStore.from_url(parsed, options)
        if parsed.scheme in GCS_SCHEMES:
            return GcsStore.from_url(parsed, options)
        settings = {key: setting(options, key, env) for key, env in OBJECT_STORE_OPTIONS.items()}
        settings["region"] = settings["region"] or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return S3Store(bucket=parsed.netloc, prefix=parsed.path.strip("/"), **settings)

    def uri(self, *parts: str) -> str:
        """``s3://bucket/prefix/part/...``: the location's own URL (delta-rs reads it; messages show it)."""
        return f"{self.scheme}://" + self.key(*parts)

    def key(self, *parts: str) -> str:
        """``bucket/prefix/part/...`` (pyarrow.fs's form)."""
        return "/".join(p.strip("/") for p in (self.bucket, self.prefix, *parts) if p.strip("/"))

    @functools.cached_property
    def store_host(self) -> str:
        """``<bucket>.<tag>``: the host under which this store is registered in DataFusion sessions; the tag is
        a keyed hash of every setting but the prefix (credentials included), so only stores with equal settings
        share it."""
        material = repr(tuple((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "prefix"))
        tag = hashlib.blake2b(material.encode(), key=_TAG_KEY, digest_size=6).hexdigest()
        return f"{self.bucket}.{tag}"

    def datafusion_uri(self, *parts: str) -> str:
        """``s3://<store_host>/prefix/part/...``: the URL DataFusion reads (see ``register``)."""
        rest = "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))
        return f"{self.scheme}://{self.store_host}" + (f"/{rest}" if rest else "")

    def register(self, ctx: Any) -> None:
        """Make this store's ``datafusion_uri`` URLs readable in the DataFusion session ``ctx`` (another
        source's store on the same bucket keeps its own registration). Raises OSError when DataFusion cannot
        build the store (its message, e.g. a malformed endpoint)."""
        try:
            store = self.datafusion_store()
        except BaseException as exc:  # the bindings panic (PanicException) on a setting they cannot use
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise OSError(f"DataFusion cannot build the object store: {self.redact(str(exc))}") from exc
        ctx.register_object_store(f"{self.scheme}://", store, self.store_host)

    def datafusion_store(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @functools.cached_property
    def filesystem(self) -> pafs.FileSystem:  # pragma: no cover - abstract
        raise NotImplementedError

    def list(self, *parts: str, recursive: bool = True) -> list[pafs.FileInfo]:
        """Objects and (implied) folders below ``prefix/parts``, sorted by path; empty when there are none.
        Raises OSError from the object store (map it with ``unavailable``)."""
        selector = pafs.FileSelector(self.key(*parts), recursive=recursive, allow_not_found=True)
        infos = sorted(self.filesystem.get_file_info(selector), key=lambda info: info.path)
        if not infos and self.filesystem.get_file_info(self.bucket).type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"NoSuchBucket: the {self.noun} '{self.bucket}' does not exist")
        return infos

    def relative(self, path: str) -> str:
        """``path`` (``bucket/prefix/x/y``, ``s3://bucket/prefix/x/y`` or a ``datafusion_uri``) relative to this
        location: ``x/y``."""
        text = re.sub(r"^[a-z0-9]+://", "", path)
        if text.startswith(self.store_host + "/") or text == self.store_host:
            text = self.bucket + text[len(self.store_host):]
        base = self.key()
        return text[len(base):].lstrip("/") if text.startswith(base) else text

    def redact(self, text: str) -> str:
        """``text`` (a library's message) with this location's URLs cut to paths relative to it."""
        for prefix in (self.datafusion_uri(), self.uri(), self.key()):
            text = text.replace(prefix + "/", "")
        return text.replace(self.store_host, self.bucket)

    def unavailable(self, source: str, exc: BaseException) -> SourceUnavailableError:
        """``exc`` from an object-store call as SourceUnavailableError naming the source and the cause."""
        text = str(exc)
        for pattern, reason in _CAUSES:
            if pattern.search(text):
                return SourceUnavailableError(source, reason.format(bucket=self.bucket, noun=self.noun))
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        return SourceUnavailableError(source, f"object store error on {self.noun} '{self.bucket}': "
                                              f"{self.redact(first)[:300]}")


@dataclass(frozen=True)
class S3Store(ObjectStore):
    """An ``s3://bucket/prefix`` location (AWS S3 and S3-compatible servers: MinIO, moto, Ceph).

    Attributes (besides ``ObjectStore``'s):
        region: the bucket's region (``us-east-1`` when unknown).
        access_key_id, secret_access_key, session_token: credentials; None to use the default chain.
    """

    region: str = "us-east-1"
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

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
