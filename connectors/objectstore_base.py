"""The base of the object-store locations (``connectors.objectstore``): ``ObjectStore`` with what every cloud's
store shares (URLs, the DataFusion registration under a keyed host, listing, error mapping) and ``setting``.
The clouds' stores subclass it in ``connectors.objectstore`` (S3), ``objectstore_azure`` and ``objectstore_gcs``,
which this module never imports: ``from_options`` dispatches on the schemes they register."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
from dataclasses import dataclass, fields
from typing import Any, ClassVar
from urllib.parse import urlparse

import pyarrow.fs as pafs

from connectors.errors import SourceUnavailableError

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

    #: the URL schemes a subclass reads (``from_options`` dispatches on them)
    url_schemes: ClassVar[tuple[str, ...]] = ()
    _by_scheme: ClassVar[dict[str, type]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for url_scheme in cls.__dict__.get("url_schemes", ()):
            ObjectStore._by_scheme[url_scheme] = cls

    @classmethod
    def from_options(cls, path: str, options: dict[str, Any], schemes: tuple[str, ...] = LAKE_SCHEMES
                     ) -> ObjectStore:
        """The location of ``path`` with the source's options or the environment: an ``S3Store`` for
        ``s3://bucket[/prefix]``, an ``AzureStore`` for ``az://container[/prefix]``, a ``GcsStore`` for
        ``gs://bucket[/prefix]`` (each when ``schemes`` allows it; the subclasses register their schemes, all
        three once ``connectors.objectstore`` is imported). Raises ValueError for a scheme outside ``schemes``,
        a missing bucket or settings that do not go together."""
        parsed = urlparse(path)
        if parsed.scheme not in schemes:
            served = ", ".join(f"{s}://" for s in schemes if s in ("s3", "az", "gs"))
            raise ValueError(f"object-store scheme '{parsed.scheme}://' is not supported here; use {served} "
                             "(an S3-compatible server or a cloud's emulator is given as endpoint)")
        if not parsed.netloc:
            raise ValueError(f"'{path}' names no bucket; write {parsed.scheme}://bucket/prefix")
        store = ObjectStore._by_scheme.get(parsed.scheme)
        if store is None:  # pragma: no cover - every scheme of FILE_SCHEMES has a store
            raise ValueError(f"no object store reads '{parsed.scheme}://'")
        return store.from_url(parsed, options)

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
