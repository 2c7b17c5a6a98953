"""Object-store locations of file and lakehouse sources: ``path = "s3://bucket/prefix"``.

One ``ObjectStore`` holds a source's bucket, prefix, endpoint, region and credentials (from the source's
options, else the standard ``AWS_*`` environment variables) and hands each library its own view of them:

- ``filesystem()``: a ``pyarrow.fs.S3FileSystem`` for listing objects (size and last-modified time, the
  partition fingerprint) and for Delta tables read as pyarrow datasets;
- ``datafusion_store()``: DataFusion's own ``AmazonS3`` object store, registered in a session so that
  ``register_parquet``/``register_csv`` read ``s3://`` URLs natively (projection, filters, Hive pruning);
- ``storage_options()``: the same settings under delta-rs's names.

Only ``s3://`` (AWS S3 and S3-compatible servers: MinIO, moto, Ceph) is served; ``gs://`` and ``az://`` are
refused with a clear message. Errors are mapped once (``unavailable``) to ``SourceUnavailableError`` naming
the source and the cause (no such bucket, credentials refused, endpoint unreachable), never a secret.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs

from connectors.errors import SourceUnavailableError

#: options a source with an object-store ``path`` may set (besides ``path``); each falls back to the standard
#: environment variable named beside it
OBJECT_STORE_OPTIONS: dict[str, str] = {
    "endpoint": "AWS_ENDPOINT_URL",
    "region": "AWS_REGION",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
}

_CAUSES = (
    (re.compile(r"NoSuchBucket|NO_SUCH_BUCKET|bucket does not exist", re.I), "the bucket '{bucket}' does not exist"),
    (re.compile(r"Invalid_?Access_?Key_?Id|Signature_?Does_?Not_?Match|Access_?Denied|\b403\b|Forbidden"
                r"|Invalid_?Token|Expired_?Token", re.I),
     "the object store refused the credentials (authentication failed for bucket '{bucket}')"),
    (re.compile(r"connect|Connection refused|timed out|Couldn't|dns|resolve", re.I),
     "the object store endpoint cannot be reached"),
)


def is_object_store(path: str | os.PathLike) -> bool:
    """Whether a source ``path`` names an object-store location (``scheme://...``) rather than a local one."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


@dataclass(frozen=True)
class ObjectStore:
    """An ``s3://bucket/prefix`` location with the settings to reach it.

    Attributes:
        bucket: the bucket name.
        prefix: the key prefix below the bucket, without leading or trailing ``/`` (may be empty).
        endpoint: ``http(s)://host:port`` of an S3-compatible server; None for AWS itself.
        region: the bucket's region (``us-east-1`` when unknown).
        access_key_id, secret_access_key, session_token: credentials; None to use the default chain.
    """

    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, path: str, options: dict[str, Any]) -> ObjectStore:
        """The location of ``path`` (``s3://bucket[/prefix]``) with the source's options or the environment.
        Raises ValueError for another scheme or a missing bucket."""
        parsed = urlparse(path)
        if parsed.scheme not in ("s3", "s3a"):
            raise ValueError(f"object-store scheme '{parsed.scheme}://' is not supported; use s3:// (AWS S3 or an "
                             "S3-compatible server given as endpoint)")
        if not parsed.netloc:
            raise ValueError(f"'{path}' names no bucket; write s3://bucket/prefix")
        settings = {key: options.get(key) or os.environ.get(env) for key, env in OBJECT_STORE_OPTIONS.items()}
        if not settings["region"]:
            settings["region"] = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return cls(bucket=parsed.netloc, prefix=parsed.path.strip("/"), **settings)

    def uri(self, *parts: str) -> str:
        """``s3://bucket/prefix/part/...`` (DataFusion's and delta-rs's form)."""
        return "s3://" + self.key(*parts)

    def key(self, *parts: str) -> str:
        """``bucket/prefix/part/...`` (pyarrow.fs's form)."""
        return "/".join(p.strip("/") for p in (self.bucket, self.prefix, *parts) if p.strip("/"))

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
        """DataFusion's ``AmazonS3`` object store for this bucket (register it with
        ``ctx.register_object_store("s3://", store, bucket)``)."""
        from datafusion.object_store import AmazonS3

        return AmazonS3(bucket_name=self.bucket, region=self.region, access_key_id=self.access_key_id,
                        secret_access_key=self.secret_access_key, session_token=self.session_token,
                        endpoint=self.endpoint, allow_http=bool(self.endpoint and self.endpoint.startswith("http:")))

    def register(self, ctx: Any) -> None:
        """Make ``s3://bucket/...`` URLs readable in the DataFusion session ``ctx``."""
        ctx.register_object_store("s3://", self.datafusion_store(), self.bucket)

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

    def list(self, *parts: str, recursive: bool = True) -> list[pafs.FileInfo]:
        """Objects and (implied) folders below ``prefix/parts``, sorted by path; empty when there are none.
        Raises OSError from the object store (map it with ``unavailable``)."""
        selector = pafs.FileSelector(self.key(*parts), recursive=recursive, allow_not_found=True)
        infos = sorted(self.filesystem.get_file_info(selector), key=lambda info: info.path)
        if not infos and self.filesystem.get_file_info(self.bucket).type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"NoSuchBucket: the bucket '{self.bucket}' does not exist")
        return infos

    def relative(self, path: str) -> str:
        """``path`` (``bucket/prefix/x/y`` or ``s3://bucket/prefix/x/y``) relative to this location: ``x/y``."""
        base = self.key()
        text = path.removeprefix("s3://").removeprefix("s3a://")
        return text[len(base):].lstrip("/") if text.startswith(base) else text

    def unavailable(self, source: str, exc: BaseException) -> SourceUnavailableError:
        """``exc`` from an object-store call as SourceUnavailableError naming the source and the cause."""
        text = str(exc)
        for pattern, reason in _CAUSES:
            if pattern.search(text):
                return SourceUnavailableError(source, reason.format(bucket=self.bucket))
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        return SourceUnavailableError(source, f"object store error on bucket '{self.bucket}': {first[:300]}")


@dataclass(frozen=True)
class ObjectStat:
    """What a listing says of one object: ``st_size`` in bytes and ``st_mtime_ns`` (its last-modified time in
    nanoseconds), named as ``os.stat_result`` names them so file sources fingerprint both kinds alike."""

    st_size: int
    st_mtime_ns: int


class ObjectPath:
    """A key below an ``ObjectStore`` location with the part of ``pathlib.Path``'s interface the file sources
    use (``/``, ``name``, ``stem``, ``suffix``, ``parent``, ``parts``, ``relative_to``, ``is_dir``, ``is_file``,
    ``iterdir``, ``rglob``, ``stat``, ``walk``). Folders are implied by keys, as S3 has none. Every question
    lists the store anew (one LIST request), so a fingerprint always sees the objects of now; ``str()`` is the
    ``s3://`` URL DataFusion reads. Methods raise OSError from the store."""

    def __init__(self, store: ObjectStore, key: str = "", stat: ObjectStat | None = None) -> None:
        self.store = store
        self.key = key.strip("/")
        self._stat = stat

    def __str__(self) -> str:
        return self.store.uri(self.key) + ("" if self._stat else "/")

    def __repr__(self) -> str:
        return f"ObjectPath({self.store.uri(self.key)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and (other.store, other.key) == (self.store, self.key)

    def __hash__(self) -> int:
        return hash((self.store.bucket, self.store.prefix, self.key))

    def __lt__(self, other: ObjectPath) -> bool:
        return self.key < other.key

    def __truediv__(self, part: str | os.PathLike) -> ObjectPath:
        return ObjectPath(self.store, f"{self.key}/{part}" if self.key else str(part))

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return "." + self.name.rsplit(".", 1)[1] if "." in self.name.lstrip(".") else ""

    @property
    def stem(self) -> str:
        return self.name[: len(self.name) - len(self.suffix)] if self.suffix else self.name

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(p for p in self.key.split("/") if p)

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.store, self.key.rsplit("/", 1)[0] if "/" in self.key else "")

    def relative_to(self, other: ObjectPath) -> Path:
        if other.key and not (self.key == other.key or self.key.startswith(other.key + "/")):
            raise ValueError(f"{self.key!r} is not below {other.key!r}")
        return Path(self.key[len(other.key):].lstrip("/") or ".")

    def is_relative_to(self, other: ObjectPath) -> bool:
        return not other.key or self.key == other.key or self.key.startswith(other.key + "/")

    def is_symlink(self) -> bool:
        return False  # object stores have no links

    def _listing(self) -> list[ObjectPath]:
        """Every object below this key (not the implied folders), with its size and last-modified time."""
        out = []
        for info in self.store.list(self.key):
            if info.type == pafs.FileType.File:
                stat = ObjectStat(int(info.size or 0), int(info.mtime_ns or 0))
                out.append(ObjectPath(self.store, self.store.relative(info.path), stat))
        return out

    def stat(self) -> ObjectStat:
        if self._stat is None:
            info = self.store.filesystem.get_file_info(self.store.key(self.key))
            if info.type != pafs.FileType.File:
                raise FileNotFoundError(self.store.uri(self.key))
            self._stat = ObjectStat(int(info.size or 0), int(info.mtime_ns or 0))
        return self._stat

    def is_file(self) -> bool:
        if self._stat is not None:
            return True
        return self.store.filesystem.get_file_info(self.store.key(self.key)).type == pafs.FileType.File

    def is_dir(self) -> bool:
        if self._stat is not None:
            return False
        return bool(self.store.list(self.key, recursive=False))

    def iterdir(self) -> list[ObjectPath]:
        """Objects and implied folders directly below this key."""
        out = []
        for info in self.store.list(self.key, recursive=False):
            stat = ObjectStat(int(info.size or 0), int(info.mtime_ns or 0)) if info.type == pafs.FileType.File \
                else None
            out.append(ObjectPath(self.store, self.store.relative(info.path), stat))
        return out

    def rglob(self, pattern: str) -> list[ObjectPath]:
        """Objects below this key whose name matches ``pattern`` (``*.parquet``)."""
        import fnmatch

        return [p for p in self._listing() if fnmatch.fnmatch(p.name, pattern)]

    def walk(self):
        """``os.walk``'s triples ``(folder key, folder names, object names)`` over the implied folders."""
        folders: dict[str, tuple[set[str], list[str]]] = {self.key: (set(), [])}
        for obj in self._listing():
            parts = obj.relative_to(self).parts
            current = self.key
            for part in parts[:-1]:
                folders.setdefault(current, (set(), []))[0].add(part)
                current = f"{current}/{part}" if current else part
            folders.setdefault(current, (set(), []))[1].append(parts[-1])
        for key, (dirnames, filenames) in sorted(folders.items()):
            yield key, sorted(dirnames), filenames

    def open(self):
        """The object opened for random access (a ``pyarrow.NativeFile``, e.g. for Parquet footers)."""
        return self.store.filesystem.open_input_file(self.store.key(self.key))
