"""Keys below an object-store location seen as paths: ``ObjectPath`` answers the part of ``pathlib.Path``'s
interface the file sources use, so that a folder of Parquet or CSV files reads alike on disk and in a bucket.

It asks its store (``connectors.objectstore.ObjectStore``, through the ``Store`` protocol) for listings and
object details; ``connectors.objectstore`` re-exports ``ObjectPath`` and ``ObjectStat``.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow.fs as pafs


class Store(Protocol):
    """What an ``ObjectPath`` asks of its location (``connectors.objectstore.ObjectStore`` answers it)."""

    bucket: str
    prefix: str

    @property
    def filesystem(self) -> pafs.FileSystem: ...

    def uri(self, *parts: str) -> str: ...

    def key(self, *parts: str) -> str: ...

    def datafusion_uri(self, *parts: str) -> str: ...

    def relative(self, path: str) -> str: ...

    def list(self, *parts: str, recursive: bool = True) -> list[pafs.FileInfo]: ...


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
    URL DataFusion reads (``ObjectStore.datafusion_uri``). Methods raise OSError from the store."""

    def __init__(self, store: Store, key: str = "", stat: ObjectStat | None = None) -> None:
        self.store = store
        self.key = key.strip("/")
        self._stat = stat

    def __str__(self) -> str:
        return self.store.datafusion_uri(self.key) + ("" if self._stat else "/")

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
