"""Object-store locations of file and lakehouse sources: ``path = "s3://bucket/prefix"`` (every kind) and, for the
Parquet and CSV kinds, ``az://container/prefix`` (Azure Blob Storage; also ``azure://`` and
``abfs[s]://container@account.dfs.core.windows.net/prefix``).

One ``ObjectStore`` (``S3Store``, ``AzureStore``) holds a source's bucket or container, prefix, endpoint and
credentials (from the source's options, else the standard environment variables) and hands each library its own
view of them:

- ``filesystem``: a ``pyarrow.fs`` filesystem (``S3FileSystem``, ``AzureFileSystem``) for listing objects (size
  and last-modified time, the partition fingerprint), Parquet footers, and Delta tables read as pyarrow datasets.
  pyarrow is already a dependency and lists both clouds, so no cloud SDK is added;
- ``datafusion_store()``: DataFusion's own object store (``AmazonS3``, ``MicrosoftAzure``), registered in a
  session so that ``register_parquet``/``register_csv`` read the objects natively (projection, filters, Hive
  pruning);
- ``storage_options()`` (S3 only): the same settings under delta-rs's names.

**One bucket, two credentials.** DataFusion keys a session's object stores by URL scheme and host, and the
residual session holds the stores of every source a query reads in place. Two sources on one bucket with
different credentials would then share one registration, the later one replacing the first. So DataFusion never
sees the bucket's own URL: it reads ``s3://<bucket>.<tag>/...`` where the tag is a keyed hash (a per-process key;
nothing of a secret can be read from it) of every setting of the store, credentials included
(``datafusion_uri``). Stores with the same settings share a registration; any other difference gets its own.

``gs://`` is refused: DataFusion's GCS store (object_store) lists through GCS's XML API (``GET
/bucket?list-type=2``), which neither emulator on the registries (gcp-storage-emulator, fake-gcs-server)
serves, so it could not be tested here. Errors are mapped once (``unavailable``) to ``SourceUnavailableError``
naming the source and the cause (no such bucket or container, credentials refused, endpoint unreachable), never
a secret.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import threading
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlparse

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
#: Azure options a source with an ``az://`` path may set; each falls back to the first environment variable set
#: among those named beside it (object_store's names first, then the Azure CLI's)
AZURE_OPTIONS: dict[str, tuple[str, ...]] = {
    "endpoint": ("AZURE_STORAGE_ENDPOINT",),
    "account_name": ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"),
    "account_key": ("AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_KEY"),
    "sas_token": ("AZURE_STORAGE_SAS_TOKEN",),
    "client_id": ("AZURE_CLIENT_ID",),
    "client_secret": ("AZURE_CLIENT_SECRET",),
    "tenant_id": ("AZURE_TENANT_ID",),
}
#: URL schemes of each store (``abfs``/``abfss`` name the account in the host: ``container@account.dfs...``)
S3_SCHEMES = ("s3", "s3a")
AZURE_SCHEMES = ("az", "azure", "abfs", "abfss")
#: the schemes the Parquet and CSV kinds read (Delta and Iceberg: ``S3_SCHEMES``)
FILE_SCHEMES = S3_SCHEMES + AZURE_SCHEMES

_TAG_KEY = secrets.token_bytes(16)  # keys the store-URL tags of this process: they reveal nothing of a secret
_ENV_LOCK = threading.Lock()  # DataFusion's Azure store takes a custom endpoint from the environment only

_CAUSES = (
    (re.compile(r"NoSuchBucket|NO_SUCH_BUCKET|bucket does not exist|ContainerNotFound"
                r"|container does not exist", re.I), "the {noun} '{bucket}' does not exist"),
    (re.compile(r"Invalid_?Access_?Key_?Id|Signature_?Does_?Not_?Match|Access_?Denied|\b403\b|Forbidden"
                r"|Invalid_?Token|Expired_?Token|AuthenticationFailed|AuthorizationFailure"
                r"|AuthorizationPermissionMismatch|lacked the necessary privileges", re.I),
     "the object store refused the credentials (authentication failed for {noun} '{bucket}')"),
    (re.compile(r"connect|Connection refused|timed out|Couldn't|dns|resolve", re.I),
     "the object store endpoint cannot be reached"),
)


def is_object_store(path: str | os.PathLike) -> bool:
    """Whether a source ``path`` names an object-store location (``scheme://...``) rather than a local one."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def _setting(options: dict[str, Any], key: str, *env: str) -> str | None:
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

    @classmethod
    def from_options(cls, path: str, options: dict[str, Any], schemes: tuple[str, ...] = S3_SCHEMES
                     ) -> ObjectStore:
        """The location of ``path`` with the source's options or the environment: an ``S3Store`` for
        ``s3://bucket[/prefix]``, an ``AzureStore`` for ``az://container[/prefix]`` (when ``schemes`` allows it).
        Raises ValueError for a scheme outside ``schemes`` or a missing bucket."""
        parsed = urlparse(path)
        if parsed.scheme not in schemes:
            served = ", ".join(f"{s}://" for s in schemes if s in ("s3", "az"))
            raise ValueError(f"object-store scheme '{parsed.scheme}://' is not supported here; use {served} "
                             "(an S3-compatible server or Azure emulator is given as endpoint)")
        if not parsed.netloc:
            raise ValueError(f"'{path}' names no bucket; write {parsed.scheme}://bucket/prefix")
        if parsed.scheme in AZURE_SCHEMES:
            return AzureStore.from_url(parsed, options)
        settings = {key: _setting(options, key, env) for key, env in OBJECT_STORE_OPTIONS.items()}
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


@dataclass(frozen=True)
class AzureStore(ObjectStore):
    """An ``az://container/prefix`` location in an Azure storage account (or an emulator such as Azurite).

    Attributes (besides ``ObjectStore``'s; ``bucket`` is the container):
        account_name: the storage account (required: from the option, the ``abfs://`` URL's host or
            ``AZURE_STORAGE_ACCOUNT_NAME``).
        account_key, sas_token: a shared key or a SAS token (``sv=...&sig=...``); at most one.
        client_id, client_secret, tenant_id: a service principal (all three); with none of these the default
            credential chain (managed identity, environment) is used.
        endpoint: the Blob service URL, path-style, as in a connection string's ``BlobEndpoint``
            (``http://127.0.0.1:10000/devstoreaccount1``; ``/<account>`` is added when the URL has no path);
            None for ``https://<account>.blob.core.windows.net``.
    """

    account_name: str = ""
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    tenant_id: str | None = None

    scheme: ClassVar[str] = "az"
    noun: ClassVar[str] = "container"

    @classmethod
    def from_url(cls, parsed: Any, options: dict[str, Any]) -> AzureStore:
        """The location of a parsed ``az://container/prefix`` or ``abfs[s]://container@account.dfs.../prefix``
        URL. Raises ValueError when no account is named or both a key and a SAS token are given."""
        settings = {key: _setting(options, key, *env) for key, env in AZURE_OPTIONS.items()}
        container, _, host = parsed.netloc.partition("@")
        if host and not options.get("account_name"):
            settings["account_name"] = host.split(".", 1)[0]
        if not settings["account_name"]:
            raise ValueError("an az:// path needs the storage account: set account_name (or "
                             "AZURE_STORAGE_ACCOUNT_NAME)")
        if settings["account_key"] and settings["sas_token"]:
            raise ValueError("account_key and sas_token are exclusive; set one")
        endpoint = settings["endpoint"]
        if endpoint and not urlparse(endpoint).path.strip("/"):
            settings["endpoint"] = endpoint.rstrip("/") + "/" + settings["account_name"]
        return cls(bucket=container, prefix=parsed.path.strip("/"), **settings)

    @functools.cached_property
    def filesystem(self) -> pafs.AzureFileSystem:
        """A pyarrow Azure filesystem over this account (its Blob endpoint when one is set)."""
        kwargs: dict[str, Any] = {}
        if self.endpoint:
            endpoint = urlparse(self.endpoint)
            kwargs.update(blob_storage_authority=endpoint.netloc, blob_storage_scheme=endpoint.scheme,
                          dfs_storage_authority=endpoint.netloc, dfs_storage_scheme=endpoint.scheme)
        if self.account_key:
            kwargs["account_key"] = self.account_key
        elif self.sas_token:
            kwargs["sas_token"] = self.sas_token.lstrip("?")
        elif self.client_id and self.client_secret and self.tenant_id:
            kwargs.update(client_id=self.client_id, client_secret=self.client_secret, tenant_id=self.tenant_id)
        return pafs.AzureFileSystem(self.account_name, **kwargs)

    def datafusion_store(self) -> Any:
        """DataFusion's ``MicrosoftAzure`` object store for this container. The binding takes no endpoint,
        but reads ``AZURE_STORAGE_ENDPOINT`` from the environment when it builds the store (object_store's
        ``from_env``), so a custom endpoint is set there for that moment, under a lock."""
        from datafusion.object_store import MicrosoftAzure  # only object-store sources load the bindings

        kwargs: dict[str, Any] = {"account": self.account_name, "access_key": self.account_key}
        if self.sas_token:
            kwargs["sas_query_pairs"] = parse_qsl(self.sas_token.lstrip("?"), keep_blank_values=True)
        if self.client_id and self.client_secret and self.tenant_id:
            kwargs.update(client_id=self.client_id, client_secret=self.client_secret, tenant_id=self.tenant_id)
        if self.endpoint:
            kwargs["allow_http"] = self.endpoint.startswith("http:")
        with _ENV_LOCK:
            saved = os.environ.get("AZURE_STORAGE_ENDPOINT")
            try:
                if self.endpoint:
                    os.environ["AZURE_STORAGE_ENDPOINT"] = self.endpoint
                return MicrosoftAzure(container_name=self.bucket, **kwargs)
            finally:
                if saved is None:
                    os.environ.pop("AZURE_STORAGE_ENDPOINT", None)
                else:
                    os.environ["AZURE_STORAGE_ENDPOINT"] = saved
