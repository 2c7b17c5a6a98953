"""The partition cache's disk tier (``PartitionCache`` inherits ``DiskTier``): one Arrow IPC file and one JSON
sidecar per entry, written through from the memory tier so the hot set survives a restart.

Disk files: ``<key.id()>.arrow`` (Arrow IPC file format, uncompressed, so reads are one ``read`` plus
zero-copy parsing) and ``<key.id()>.json`` (key fields, fingerprint, fetched_at, nbytes, file_bytes,
checksum). Both are written to temp files and moved in with ``os.replace``, data first, so a sidecar
exists only for a complete data file. The checksum is CRC-32 of the data file: the threat is accidental
damage (torn writes after a crash, truncation, bit rot), not an attacker, since whoever can write the
folder can rewrite the sidecar too; CRC-32 checks at ~7 GB/s against ~2 GB/s for SHA-256, so verifying
stays cheaper than the read itself. No fsync: after a power loss a short or empty file is caught by the
size check at start or the checksum on read, and is a miss, never wrong data.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from gateway.cache.entries import Entry, PartitionKey
from gateway.cache.policy import CachePolicy

log = logging.getLogger("gateway.cache.store")  # the cache's one logger name, as before the tier had a module

_DATA_SUFFIX = ".arrow"
_SIDECAR_SUFFIX = ".json"
_TMP_SUFFIX = ".tmp"
_FORMAT = 1
# same length as a real "crc32:%08x", so the sidecar's size is known before the data file is written
_CHECKSUM_PLACEHOLDER = "crc32:00000000"


class _Crc32Writer:
    """File-like sink for pa.PythonFile that computes the CRC-32 of what it writes (no second read)."""

    closed = False

    def __init__(self, f) -> None:
        self._f = f
        self.crc = 0
        self.size = 0

    def write(self, data) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.size += memoryview(data).nbytes
        return self._f.write(data)

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:  # the real file is closed by its own `with`
        pass


class _CorruptEntry(Exception):
    """A disk entry failed verification (internal: it becomes a miss and a ``corruptions`` count)."""


def _ipc_size(table: pa.Table) -> int:
    # serialising to a mock sink counts bytes without copying buffers; the real write produces the same bytes
    sink = pa.MockOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.size()


def _sidecar_bytes(e: Entry, file_bytes: int, checksum: str) -> bytes:
    doc = {"format": _FORMAT, "id": e.key.id(), **e.key.as_dict(), "fingerprint": e.fingerprint,
           "fetched_at": e.fetched_at, "nbytes": e.nbytes, "file_bytes": file_bytes, "checksum": checksum}
    return json.dumps(doc, sort_keys=True).encode()


def _parse_sidecar(raw: bytes, key_id: str) -> tuple[PartitionKey, dict[str, Any]]:
    """The key and fields of a sidecar; ValueError when it is not a complete sidecar for ``key_id``."""
    doc = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ValueError("not a cache sidecar of a known format")
    try:
        key = PartitionKey(
            doc["source"], doc["schema"], doc["table"], doc["partition"], tuple(doc["columns"])
        )
        strings = [key.source, key.schema, key.table, key.partition, *key.columns, doc["fingerprint"]]
        numbers = [doc["fetched_at"], doc["nbytes"], doc["file_bytes"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"sidecar field missing or of the wrong type: {exc}") from exc
    if not all(isinstance(s, str) for s in strings) or not all(
        isinstance(n, int | float) and not isinstance(n, bool) for n in numbers
    ):
        raise ValueError("sidecar field of the wrong type")
    checksum = doc.get("checksum")
    well_formed = isinstance(checksum, str) and checksum.startswith("crc32:")
    if not well_formed or len(checksum) != len(_CHECKSUM_PLACEHOLDER):
        raise ValueError("sidecar checksum missing or malformed")
    if key.id() != key_id or doc.get("id") != key_id:
        raise ValueError("sidecar describes another key")
    return key, doc


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # a file we cannot delete only wastes space; the index no longer points at it
        log.warning("cache: could not delete %s: %s", path, exc)


class DiskTier(CachePolicy):
    """Writing, verifying, reading and indexing the disk copies of ``PartitionCache`` entries.

    A part of ``PartitionCache``; disk I/O runs without its lock, taking it only to reserve room and commit.
    """

    _lock: threading.Lock
    _seq: int
    _clock: Callable[[], float]

    def _delete_disk_copy(self, e: Entry) -> None:  # caller holds the lock
        if e.checksum is None or self.disk_path is None:
            return
        key_id = e.key.id()
        _unlink(self.disk_path / (key_id + _SIDECAR_SUFFIX))  # sidecar first: no sidecar means no entry
        _unlink(self.disk_path / (key_id + _DATA_SUFFIX))
        self._disk_used -= e.disk_bytes
        e.checksum = None
        e.disk_bytes = 0

    # ------------------------------------------------------------ disk I/O (caller does not hold the lock)

    def _run_spills(self, spills: list[tuple[Entry, pa.Table]]) -> None:
        for v, table in spills:
            with self._lock:
                candidate = self._score(v, self._clock())
            self._write_disk(v, table, candidate)

    def _write_disk(self, e: Entry, table: pa.Table, candidate: float) -> bool:
        """Write ``e`` (already marked ``writing``) to disk if room can be made; True when committed."""
        assert self.disk_path is not None
        key_id = e.key.id()
        reserved = 0
        tmp_data = self.disk_path / f"{key_id}.{secrets.token_hex(4)}{_DATA_SUFFIX}{_TMP_SUFFIX}"
        tmp_meta = self.disk_path / f"{key_id}.{secrets.token_hex(4)}{_SIDECAR_SUFFIX}{_TMP_SUFFIX}"
        try:
            file_bytes = _ipc_size(table)
            total = file_bytes + len(_sidecar_bytes(e, file_bytes, _CHECKSUM_PLACEHOLDER))
            with self._lock:
                current = self._entries.get(e.key) is e
                if not current or not self._reserve_disk(e, total, candidate, self._clock()):
                    return False
                reserved = total
            with open(tmp_data, "wb") as f:
                sink = _Crc32Writer(f)
                with pa.ipc.new_file(pa.PythonFile(sink, mode="w"), table.schema) as writer:
                    writer.write_table(table)
            if sink.size != file_bytes:
                raise OSError(f"wrote {sink.size} bytes, {file_bytes} were reserved")
            checksum = f"crc32:{sink.crc:08x}"
            meta = _sidecar_bytes(e, file_bytes, checksum)
            tmp_meta.write_bytes(meta)
            with self._lock:
                if self._entries.get(e.key) is not e:
                    return False  # replaced or invalidated while writing; the reservation outlives the temps
                final_data = self.disk_path / (key_id + _DATA_SUFFIX)
                os.replace(tmp_data, final_data)
                try:
                    os.replace(tmp_meta, self.disk_path / (key_id + _SIDECAR_SUFFIX))
                except OSError:
                    _unlink(final_data)  # uncounted bytes must not stay behind
                    raise
                self._disk_reserved -= reserved
                reserved = 0
                e.checksum = checksum
                e.disk_bytes = file_bytes + len(meta)
                self._disk_used += e.disk_bytes
                if e.table is None:
                    self.stats.demotions += 1
                return True
        except OSError as exc:
            log.warning("cache: could not write %s to disk: %s", key_id, exc)
            return False
        finally:
            _unlink(tmp_data)  # both are gone after a commit; otherwise delete before releasing the room
            _unlink(tmp_meta)
            with self._lock:
                self._disk_reserved -= reserved
                e.writing = False
                if not e.has_data() and self._entries.get(e.key) is e:
                    del self._entries[e.key]

    def _read_disk(self, e: Entry, checksum: str | None) -> pa.Table | None:
        """The verified table of ``e``'s disk copy, or None (a damaged copy is deleted and counted)."""
        assert self.disk_path is not None
        key_id = e.key.id()
        try:
            try:
                _, doc = _parse_sidecar((self.disk_path / (key_id + _SIDECAR_SUFFIX)).read_bytes(), key_id)
                data = (self.disk_path / (key_id + _DATA_SUFFIX)).read_bytes()
            except OSError as exc:
                raise _CorruptEntry(f"unreadable: {exc}") from exc
            except ValueError as exc:
                raise _CorruptEntry(f"bad sidecar: {exc}") from exc
            if doc["checksum"] != checksum or doc["fingerprint"] != e.fingerprint:
                raise _CorruptEntry("sidecar does not match the index")
            if len(data) != doc["file_bytes"] or f"crc32:{zlib.crc32(data):08x}" != checksum:
                raise _CorruptEntry("data file size or checksum does not match")
            try:
                return pa.ipc.open_file(pa.py_buffer(data)).read_all()
            except (pa.ArrowException, ValueError) as exc:
                raise _CorruptEntry(f"not an Arrow IPC file: {exc}") from exc
        except _CorruptEntry as exc:
            with self._lock:
                # only damage to the copy we looked at counts; a racing eviction or rewrite is a plain miss
                if self._entries.get(e.key) is e and e.checksum == checksum:
                    log.warning("cache: dropping damaged disk entry %s (%s): %s", key_id, e.key, exc)
                    self.stats.corruptions += 1
                    self._delete_disk_copy(e)
                    if e.table is None and not e.writing:
                        del self._entries[e.key]
            return None

    def _load_disk(self) -> None:
        """Index the entries already in ``disk_path``; remove temp files and half-written entries."""
        assert self.disk_path is not None
        now = self._clock()
        sidecars: dict[str, Path] = {}
        data_files: dict[str, Path] = {}
        for p in self.disk_path.iterdir():
            if p.name.endswith(_TMP_SUFFIX):
                _unlink(p)  # a write interrupted by a crash
            elif p.suffix == _SIDECAR_SUFFIX:
                sidecars[p.stem] = p
            elif p.suffix == _DATA_SUFFIX:
                data_files[p.stem] = p
        for key_id, meta_path in sidecars.items():
            data_path = data_files.pop(key_id, None)
            try:
                raw = meta_path.read_bytes()
                key, doc = _parse_sidecar(raw, key_id)
                if data_path is None:
                    raise ValueError("data file missing")
                if data_path.stat().st_size != doc["file_bytes"]:
                    raise ValueError("data file size differs from the sidecar")
            except (OSError, ValueError) as exc:
                log.warning("cache: dropping damaged disk entry %s: %s", key_id, exc)
                self.stats.corruptions += 1
                _unlink(meta_path)
                if data_path is not None:
                    _unlink(data_path)
                continue
            self._seq += 1
            e = Entry(key, doc["fingerprint"], float(doc["fetched_at"]), int(doc["nbytes"]), seq=self._seq,
                       checksum=doc["checksum"], disk_bytes=int(doc["file_bytes"]) + len(raw), freq=1.0,
                       freq_at=now, last_access=float(doc["fetched_at"]))
            self._entries[key] = e
            self._disk_used += e.disk_bytes
        for path in data_files.values():
            _unlink(path)  # moved in, but the crash came before its sidecar
        # the budget may be smaller than when these files were written
        for e in sorted(self._entries.values(), key=lambda x: x.last_access):
            if self._disk_used <= self.disk_budget_bytes:
                break
            self._evict_disk(e)
