"""The hot-partition cache: Arrow data of source partitions in a memory tier and a disk tier.

What is cached is one partition of one source table, projected to some columns (``PartitionKey``), with the
source's fingerprint read when the data was fetched. The storage rules:

- Admission by use: a partition is stored only once it has been used ``admit_after`` times within
  ``admission_window_s`` seconds, so a one-off scan does not push hot partitions out. ``cache warm``
  bypasses it (``put(..., force=True)``).
- Freshness is checked on every lookup: an age limit (``max_staleness_s``), a fingerprint comparison, or both.
  ``max_staleness_s == 0`` (strict) serves only what a fingerprint proves unchanged.
- Tiers: memory holds ``pa.Table`` objects charged at ``table.nbytes``; disk (optional) holds one Arrow IPC
  file per entry plus a JSON sidecar. The disk tier is inclusive (write-through): every stored entry is also
  written to disk when there is room, so the hot set survives a restart. A memory eviction keeps the disk copy
  (a demotion); a disk hit is copied back to memory when it fits (a promotion).
- Budgets are never exceeded: space is reserved (evicting first) before anything is written or inserted.
- Eviction is LFU with exponential aging (see ``PartitionCache``).
- A damaged disk entry is detected on read, deleted and counted; it is a miss, never served.

One process owns a disk folder; several gateways must not share one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)

MEMORY = "memory"
DISK = "disk"

_DATA_SUFFIX = ".arrow"
_SIDECAR_SUFFIX = ".json"
_TMP_SUFFIX = ".tmp"
_FORMAT = 1
# same length as a real "crc32:%08x", so the sidecar's size is known before the data file is written
_CHECKSUM_PLACEHOLDER = "crc32:00000000"
_MAX_TRACKED_KEYS = 100_000  # admission history bound (keys), oldest dropped first
_MAX_STALE_KEYS = 4096  # keys remembered as rejected-stale, only to count refreshes


@dataclass(frozen=True)
class PartitionKey:
    """What is cached: ``columns`` (in the order the table has them) of one ``partition`` of a source table.

    ``partition`` is the connector's name for the unit fetched and invalidated on its own: a file or
    Hive-style directory, a value range of a partition column, or the whole table. A list given as
    ``columns`` is stored as a tuple, so keys stay hashable.
    """

    source: str
    schema: str
    table: str
    partition: str
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))

    def id(self) -> str:
        """Stable 32-character hex digest of all fields (the disk file names); equal keys give equal ids."""
        payload = json.dumps(
            [self.source, self.schema, self.table, self.partition, list(self.columns)], separators=(",", ":")
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def as_dict(self) -> dict[str, Any]:
        """The key as a JSON-ready dict: source, schema, table, partition, columns (a list)."""
        return {"source": self.source, "schema": self.schema, "table": self.table,
                "partition": self.partition, "columns": list(self.columns)}


@dataclass
class CachedPartition:
    """One cached partition as served by ``PartitionCache.lookup``.

    ``fetched_at`` is a clock reading in seconds (``time.time()`` unless the cache was given another clock),
    taken when the fetch began; ``nbytes`` is ``table.nbytes``; ``tier`` is where it was served from:
    ``"memory"`` or ``"disk"``.
    """

    key: PartitionKey
    table: pa.Table
    fingerprint: str
    fetched_at: float
    nbytes: int
    tier: str
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def age_s(self) -> float:
        """Seconds since the fetch began (never negative)."""
        return max(0.0, self.clock() - self.fetched_at)


@dataclass
class CacheStats:
    """Counters since the cache was made; bytes are Arrow buffer bytes (``pa.Table.nbytes``).

    - ``hits`` / ``misses``: lookups served / not served (a stale or damaged entry is a miss).
    - ``bytes_served``: bytes of tables served from the cache; ``bytes_fetched``: bytes ``get_or_fetch`` read
      from sources.
    - ``evictions``: copies removed from a tier to stay within its budget (a memory eviction that keeps a disk
      copy also counts as a demotion). ``demotions`` / ``promotions``: memory -> disk / disk -> memory.
    - ``refreshes``: entries rejected as stale and then replaced by a newer ``put``.
    - ``stale_rejections``: entries not served for freshness (age, changed fingerprint, or strict without
      a fingerprint).
    - ``corruptions``: disk entries found damaged (checksum, Arrow parse, sidecar, missing file) and deleted.
    - ``coalesced``: ``get_or_fetch`` callers that were given another caller's fetch (single-flight).
    """

    hits: int = 0
    misses: int = 0
    bytes_served: int = 0
    bytes_fetched: int = 0
    evictions: int = 0
    demotions: int = 0
    promotions: int = 0
    refreshes: int = 0
    stale_rejections: int = 0
    corruptions: int = 0
    coalesced: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(eq=False)
class _Entry:
    key: PartitionKey
    fingerprint: str
    fetched_at: float
    nbytes: int  # table.nbytes: the memory-tier charge
    seq: int = 0  # store order, lets get_or_fetch see a put that raced its lookup
    table: pa.Table | None = None  # set while in the memory tier
    checksum: str | None = None  # set while a committed disk copy exists
    disk_bytes: int = 0  # data file + sidecar, while on disk
    writing: bool = False  # a disk write of this entry is under way
    hits: int = 0
    freq: float = 0.0  # decayed use count as of freq_at
    freq_at: float = 0.0
    last_access: float = 0.0

    def has_data(self) -> bool:
        return self.table is not None or self.checksum is not None


@dataclass(eq=False)
class _Flight:
    """One fetch under way in get_or_fetch; followers wait on ``future`` for ``(table, fingerprint)``."""

    future: Future = field(default_factory=Future)
    invalidated: bool = False  # an invalidate matched the key while fetching: the result must not be stored


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


def _sidecar_bytes(e: _Entry, file_bytes: int, checksum: str) -> bytes:
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


class PartitionCache:
    """Byte-budgeted two-tier store of Arrow partitions, with admission by use and freshness checks.

    Args:
        memory_budget_bytes: most ``table.nbytes`` held in memory (0 disables the memory tier).
        disk_path: folder of the disk tier (created if missing), or None for no disk tier. One process per
            folder. Entries found there at start are served when fresh; leftover temp files are removed.
        disk_budget_bytes: most bytes of files (Arrow IPC data + JSON sidecars) kept in ``disk_path``.
        admit_after: uses (``record_access``) within ``admission_window_s`` before a key is stored.
        admission_window_s: width in seconds of the sliding admission window.
        clock: seconds since the epoch; injectable for tests.
        frequency_half_life_s: seconds for an entry's use count to decay to half (eviction aging).

    Raises:
        ValueError: a negative budget, ``admit_after < 1`` or a non-positive window or half-life.
        OSError: ``disk_path`` cannot be created or listed.

    Eviction is LFU with exponential aging: each entry has a use count that halves every
    ``frequency_half_life_s`` and grows by one per hit; the entry with the lowest decayed count goes first,
    ties to the least recently used. Frequency, not recency, because queries over a hot dimension or the last
    day's partition repeat all day while a large ad-hoc scan touches many partitions once; aging lets
    yesterday's hot set fade. As in TinyLFU, a newcomer (scored by its uses within the admission window) may
    only evict entries whose decayed count is not above its own; otherwise it is not stored in that tier.
    Choosing a victim is a scan over the entries (O(n log n)); caches hold thousands of partitions, not
    millions.

    Disk files: ``<key.id()>.arrow`` (Arrow IPC file format, uncompressed, so reads are one ``read`` plus
    zero-copy parsing) and ``<key.id()>.json`` (key fields, fingerprint, fetched_at, nbytes, file_bytes,
    checksum). Both are written to temp files and moved in with ``os.replace``, data first, so a sidecar
    exists only for a complete data file. The checksum is CRC-32 of the data file: the threat is accidental
    damage (torn writes after a crash, truncation, bit rot), not an attacker, since whoever can write the
    folder can rewrite the sidecar too; CRC-32 checks at ~7 GB/s against ~2 GB/s for SHA-256, so verifying
    stays cheaper than the read itself. No fsync: after a power loss a short or empty file is caught by the
    size check at start or the checksum on read, and is a miss, never wrong data.

    Thread-safe: one lock guards the index and counters; fetches, fingerprint calls and file writes and reads
    run outside it, with identity checks on commit so a racing put, eviction or invalidation wins cleanly.
    """

    def __init__(
        self,
        memory_budget_bytes: int,
        disk_path: str | Path | None = None,
        disk_budget_bytes: int = 0,
        admit_after: int = 2,
        admission_window_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        *,
        frequency_half_life_s: float = 600.0,
    ) -> None:
        if memory_budget_bytes < 0 or disk_budget_bytes < 0:
            raise ValueError("cache budgets must be >= 0 bytes")
        if admit_after < 1:
            raise ValueError("admit_after must be >= 1")
        if admission_window_s <= 0 or frequency_half_life_s <= 0:
            raise ValueError("admission_window_s and frequency_half_life_s must be > 0 seconds")
        self.memory_budget_bytes = memory_budget_bytes
        self.disk_path = Path(disk_path) if disk_path is not None else None
        self.disk_budget_bytes = disk_budget_bytes if self.disk_path is not None else 0
        self.admit_after = admit_after
        self.admission_window_s = admission_window_s
        self.frequency_half_life_s = frequency_half_life_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[PartitionKey, _Entry] = {}
        self._memory_used = 0
        self._disk_used = 0
        self._disk_reserved = 0  # bytes of disk writes under way
        self._seq = 0
        # last accesses per key, least recently used key first; a few more than admit_after to rank newcomers
        self._accesses: OrderedDict[PartitionKey, deque[float]] = OrderedDict()
        self._window_count = max(admit_after, 16)
        self._stale_keys: OrderedDict[PartitionKey, None] = OrderedDict()
        self._flights: dict[PartitionKey, _Flight] = {}
        self.stats = CacheStats()
        if self.disk_path is not None:
            self.disk_path.mkdir(parents=True, exist_ok=True)
            self._load_disk()

    # ---------------------------------------------------------------- sizes

    @property
    def memory_used_bytes(self) -> int:
        """``table.nbytes`` summed over the memory tier."""
        return self._memory_used

    @property
    def disk_used_bytes(self) -> int:
        """Bytes of committed disk files plus those reserved for writes under way."""
        return self._disk_used + self._disk_reserved

    # ---------------------------------------------------------------- admission

    def record_access(self, key: PartitionKey) -> bool:
        """Count one use of ``key`` now; True when it is admitted (``admit_after`` uses within the window)."""
        with self._lock:
            return self._record_access(key, self._clock())

    def _record_access(self, key: PartitionKey, now: float) -> bool:
        times = self._accesses.get(key)
        if times is None:
            times = self._accesses[key] = deque(maxlen=self._window_count)
        else:
            self._accesses.move_to_end(key)
        times.append(now)
        while self._accesses:  # keys unused for a whole window, or beyond the bound, are forgotten
            oldest = next(iter(self._accesses.values()))
            if len(self._accesses) <= _MAX_TRACKED_KEYS and now - oldest[-1] <= self.admission_window_s:
                break
            self._accesses.popitem(last=False)
        return self._recent_uses(key, now) >= self.admit_after

    def _recent_uses(self, key: PartitionKey, now: float) -> int:
        n = 0
        for t in reversed(self._accesses.get(key, ())):
            if now - t > self.admission_window_s:
                break
            n += 1
        return n

    # ---------------------------------------------------------------- lookup

    def lookup(
        self,
        key: PartitionKey,
        *,
        max_staleness_s: float | None,
        current_fingerprint: Callable[[], str] | None,
    ) -> CachedPartition | None:
        """The cached partition when it is fresh, else None (a miss). Does not count a use for admission.

        Freshness, checked in this order:

        - ``max_staleness_s > 0``: stale when older than that many seconds (kept for laxer readers).
        - ``max_staleness_s == 0`` (strict): the answer must reflect every write committed before the query
          started, which only a fingerprint can show; without ``current_fingerprint`` the entry is never
          served. Age is not checked: a matching fingerprint proves the data current.
        - ``current_fingerprint`` given: it is called (outside the lock; it may do I/O) and compared with the
          fingerprint stored at fetch time; a different value means the source changed, and the entry is
          dropped from both tiers.
        - ``max_staleness_s is None`` and no fingerprint: any stored entry is served.

        A disk entry is verified (sidecar, size, CRC-32, Arrow parse) before it is served; a damaged one is
        deleted and is a miss. Served from disk, the entry is promoted to memory when it fits.

        Raises:
            ValueError: ``max_staleness_s < 0``.
            Whatever ``current_fingerprint`` raises (the source could not be asked).
        """
        return self._lookup(key, max_staleness_s, current_fingerprint)[0]

    def _lookup(
        self, key: PartitionKey, max_staleness_s: float | None, current_fingerprint: Callable[[], str] | None
    ) -> tuple[CachedPartition | None, str | None]:
        """(hit or None, the current fingerprint when it was read)."""
        if max_staleness_s is not None and max_staleness_s < 0:
            raise ValueError("max_staleness_s must be >= 0 seconds or None")
        strict = max_staleness_s == 0
        with self._lock:
            e = self._entries.get(key)
            if e is None or not e.has_data():
                self.stats.misses += 1
                return None, None
            too_old = max_staleness_s is not None and not strict and (
                self._clock() - e.fetched_at > max_staleness_s
            )
            if too_old or (strict and current_fingerprint is None):
                self._reject_stale(key)
                return None, None
            seen = e
        fp_now = None
        if current_fingerprint is not None:
            fp_now = current_fingerprint()
            if fp_now != seen.fingerprint:
                with self._lock:
                    if self._entries.get(key) is seen:
                        self._drop(seen)
                    self._reject_stale(key)
                return None, fp_now
        spills: list[tuple[_Entry, pa.Table]] = []
        with self._lock:
            now = self._clock()
            e = self._entries.get(key)
            if e is not seen or not e.has_data():  # replaced, evicted or invalidated meanwhile
                self.stats.misses += 1
                return None, fp_now
            if e.table is not None:
                self._touch(e, now)
                self.stats.hits += 1
                self.stats.bytes_served += e.nbytes
                return self._served(e, e.table, MEMORY), fp_now
            checksum = e.checksum
        table = self._read_disk(seen, checksum)
        with self._lock:
            if table is None:
                self.stats.misses += 1
                return None, fp_now
            now = self._clock()
            if self._entries.get(key) is seen and seen.table is None:
                self._touch(seen, now)
                promoted, spills = self._admit_memory(seen, table, now, self._score(seen, now))
                self.stats.promotions += promoted
            self.stats.hits += 1
            self.stats.bytes_served += table.nbytes
            hit = self._served(seen, table, DISK)
        self._run_spills(spills)
        return hit, fp_now

    def _served(self, e: _Entry, table: pa.Table, tier: str) -> CachedPartition:
        return CachedPartition(e.key, table, e.fingerprint, e.fetched_at, table.nbytes, tier, self._clock)

    def _reject_stale(self, key: PartitionKey) -> None:
        self.stats.misses += 1
        self.stats.stale_rejections += 1
        self._stale_keys[key] = None
        self._stale_keys.move_to_end(key)
        if len(self._stale_keys) > _MAX_STALE_KEYS:
            self._stale_keys.popitem(last=False)

    # ---------------------------------------------------------------- put

    def put(
        self,
        key: PartitionKey,
        table: pa.Table,
        fingerprint: str,
        *,
        force: bool = False,
        fetched_at: float | None = None,
    ) -> bool:
        """Store ``table`` for ``key`` if the key is admitted (or ``force``, for ``cache warm``).

        ``fingerprint`` is the source's fingerprint read before the fetch began, so that a write during the
        fetch makes the entry look stale rather than fresh. ``fetched_at`` (clock seconds) is when the fetch
        began; default now. An existing entry for the key is replaced. The entry goes to memory when it fits
        (``table.nbytes`` within the budget, after evicting entries used less) and, when there is a disk tier,
        to disk as well; the disk write happens in the caller's thread before this returns. Budgets are never
        exceeded; what cannot get room is not stored.

        Returns:
            True when the entry was stored in at least one tier.
        """
        return self._put(key, table, fingerprint, force, fetched_at, None)

    def _put(
        self,
        key: PartitionKey,
        table: pa.Table,
        fingerprint: str,
        force: bool,
        fetched_at: float | None,
        flight: _Flight | None,
    ) -> bool:
        nbytes = table.nbytes
        with self._lock:
            now = self._clock()
            if flight is not None and flight.invalidated:
                return False
            uses = self._recent_uses(key, now)
            if uses < self.admit_after and not force:
                return False
            freq = float(max(uses, self.admit_after if force else 0))
            old = self._entries.get(key)
            if old is not None:
                freq = max(freq, self._score(old, now))  # a new version of a popular partition stays popular
                self._drop(old)
            self._seq += 1
            e = _Entry(key, fingerprint, now if fetched_at is None else fetched_at, nbytes, seq=self._seq,
                       freq=freq, freq_at=now, last_access=now)
            candidate = math.inf if force else freq
            in_memory, spills = self._admit_memory(e, table, now, candidate)
            to_disk = self.disk_path is not None and nbytes <= self.disk_budget_bytes
            if not in_memory and not to_disk:
                return False
            if key in self._stale_keys:
                del self._stale_keys[key]
                self.stats.refreshes += 1
            self._entries[key] = e
            e.writing = to_disk
        on_disk = to_disk and self._write_disk(e, table, candidate)
        self._run_spills(spills)
        return in_memory or on_disk

    # ---------------------------------------------------------------- get_or_fetch

    def get_or_fetch(
        self,
        key: PartitionKey,
        fetch: Callable[[], tuple[pa.Table, str]],
        *,
        max_staleness_s: float | None,
        current_fingerprint: Callable[[], str] | None,
        force_admit: bool = False,
    ) -> tuple[pa.Table, bool]:
        """The partition from the cache when fresh (see ``lookup``), else from ``fetch``, stored if admitted.

        Counts one use of ``key``. ``fetch()`` returns ``(table, fingerprint)`` and should read the
        fingerprint before it starts scanning (see ``put``). Concurrent callers for the same missing key share
        one ``fetch`` (single-flight): the first runs it outside the lock, the others wait and get its table.
        A strict caller (``max_staleness_s == 0``) shares only a fetch whose fingerprint equals the one it
        read itself, which proves no write committed in between; without ``current_fingerprint`` it fetches
        alone. Any caller that read the current fingerprint refuses a shared fetch with another one. A fetch
        overlapping an ``invalidate`` of its key is returned but not stored.

        Returns:
            ``(table, served_from_cache)``; False also for callers given another caller's fetch.

        Raises:
            ValueError: ``max_staleness_s < 0``.
            Whatever ``fetch`` or ``current_fingerprint`` raises; a failed shared fetch raises in every caller
            waiting on it.
        """
        self.record_access(key)
        while True:
            with self._lock:
                seq_before = self._seq
            hit, fp_now = self._lookup(key, max_staleness_s, current_fingerprint)
            if hit is not None:
                return hit.table, True
            with self._lock:
                flight = self._flights.get(key)
                stored = self._entries.get(key)
                if flight is None and stored is not None and stored.seq > seq_before:
                    continue  # someone stored it while we looked: look again rather than fetch again
                leader = flight is None
                if leader:
                    flight = self._flights[key] = _Flight()
            break
        if leader:
            return self._lead(key, flight, fetch, force_admit), False
        shared = self._follow(flight, max_staleness_s == 0, fp_now, current_fingerprint)
        if shared is not None:
            return shared, False
        table = self._fetch_and_store(key, fetch, force_admit, None)
        return table, False

    def _lead(self, key: PartitionKey, flight: _Flight, fetch: Callable, force_admit: bool) -> pa.Table:
        try:
            return self._fetch_and_store(key, fetch, force_admit, flight)
        except BaseException as exc:
            if not flight.future.done():
                flight.future.set_exception(exc)
            raise
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]

    def _fetch_and_store(
        self, key: PartitionKey, fetch: Callable, force: bool, flight: _Flight | None
    ) -> pa.Table:
        started = self._clock()
        table, fingerprint = fetch()
        with self._lock:
            self.stats.bytes_fetched += table.nbytes
        if flight is not None:
            # followers go on now; the flight stays registered until stored, so late callers still join it
            flight.future.set_result((table, fingerprint))
        self._put(key, table, fingerprint, force, started, flight)
        return table

    def _follow(
        self,
        flight: _Flight,
        strict: bool,
        fp_now: str | None,
        current_fingerprint: Callable[[], str] | None,
    ) -> pa.Table | None:
        if strict:
            if current_fingerprint is None:
                return None  # nothing proves the shared fetch saw every write before our start
            if fp_now is None:
                fp_now = current_fingerprint()
        table, fingerprint = flight.future.result()
        if fp_now is not None and fingerprint != fp_now:
            return None  # the source changed since that fetch read its fingerprint
        with self._lock:
            self.stats.coalesced += 1
        return table

    # ---------------------------------------------------------------- invalidation

    def invalidate(
        self,
        source: str | None = None,
        table: str | None = None,
        partition: str | None = None,
        *,
        schema: str | None = None,
    ) -> int:
        """Drop the entries (both tiers, files deleted) matching every filter given; none given drops all.

        Fetches under way for matching keys are returned to their callers but not stored.

        Returns:
            The number of entries dropped.
        """

        def matches(k: PartitionKey) -> bool:
            wanted = ((source, k.source), (schema, k.schema), (table, k.table), (partition, k.partition))
            return all(want is None or want == have for want, have in wanted)

        with self._lock:
            for k, flight in self._flights.items():
                if matches(k):
                    flight.invalidated = True
            dropped = [e for e in self._entries.values() if matches(e.key)]
            for e in dropped:
                self._drop(e)
            return len(dropped)

    def clear(self) -> int:
        """Drop every entry (both tiers). Admission history is kept. Returns the number dropped."""
        return self.invalidate()

    # ---------------------------------------------------------------- status and metrics

    def status(self) -> dict[str, Any]:
        """A JSON-ready picture of the cache.

        Shape: ``{"entries": [{source, schema, table, partition, columns, id, tier, in_memory, on_disk, bytes,
        disk_bytes, age_s, fingerprint, hits, score}], "memory": {used_bytes, budget_bytes, entries},
        "disk": {path, used_bytes, budget_bytes, entries}, "admission": {admit_after, window_s, tracked_keys},
        "stats": CacheStats.as_dict()}``. ``tier`` is ``memory`` (possibly also on disk), ``disk`` or
        ``writing`` (being demoted); ``bytes`` is ``table.nbytes``, ``disk_bytes`` the files' size; entries
        are sorted hottest first.
        """
        with self._lock:
            now = self._clock()
            rows = []
            for e in self._entries.values():
                tier = MEMORY if e.table is not None else DISK if e.checksum is not None else "writing"
                rows.append({
                    **e.key.as_dict(), "id": e.key.id(), "tier": tier, "in_memory": e.table is not None,
                    "on_disk": e.checksum is not None, "bytes": e.nbytes, "disk_bytes": e.disk_bytes,
                    "age_s": max(0.0, now - e.fetched_at), "fingerprint": e.fingerprint, "hits": e.hits,
                    "score": round(self._score(e, now), 3),
                })
            rows.sort(key=lambda r: -r["score"])
            return {
                "entries": rows,
                "memory": {"used_bytes": self._memory_used, "budget_bytes": self.memory_budget_bytes,
                           "entries": sum(r["in_memory"] for r in rows)},
                "disk": {"path": str(self.disk_path) if self.disk_path else None,
                         "used_bytes": self._disk_used + self._disk_reserved,
                         "budget_bytes": self.disk_budget_bytes, "entries": sum(r["on_disk"] for r in rows)},
                "admission": {"admit_after": self.admit_after, "window_s": self.admission_window_s,
                              "tracked_keys": len(self._accesses)},
                "stats": self.stats.as_dict(),
            }

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Expose this cache in ``registry``, read at scrape time.

        Counters ``gateway_cache_{hits,misses,bytes_served,bytes_fetched,evictions,demotions,promotions,
        refreshes,stale_rejections,corruptions,coalesced}_total``; gauges ``gateway_cache_memory_used_bytes``,
        ``gateway_cache_disk_used_bytes``, ``gateway_cache_memory_budget_bytes``,
        ``gateway_cache_disk_budget_bytes`` and ``gateway_cache_entries{tier="memory"|"disk"}``.

        Raises:
            ValueError: the registry already has these names (one cache per registry).
        """
        registry.register(_CacheCollector(self))

    def _metric_values(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            gauges = {
                "memory_used_bytes": self._memory_used,
                "disk_used_bytes": self._disk_used + self._disk_reserved,
                "memory_budget_bytes": self.memory_budget_bytes,
                "disk_budget_bytes": self.disk_budget_bytes,
                "memory_entries": sum(e.table is not None for e in self._entries.values()),
                "disk_entries": sum(e.checksum is not None for e in self._entries.values()),
            }
            return self.stats.as_dict(), gauges

    # ---------------------------------------------------------------- internals (caller holds the lock)

    def _score(self, e: _Entry, now: float) -> float:
        return e.freq * 0.5 ** (max(0.0, now - e.freq_at) / self.frequency_half_life_s)

    def _touch(self, e: _Entry, now: float) -> None:
        e.freq = self._score(e, now) + 1.0
        e.freq_at = now
        e.hits += 1
        e.last_access = now

    def _victims(self, pool: Iterator[_Entry], need: int, free: int, size: Callable[[_Entry], int],
                 candidate: float, now: float) -> list[_Entry] | None:
        """Entries to evict so ``need`` bytes fit in ``free``, coldest first; None when not allowed."""
        if need <= free:
            return []
        chosen = []
        for v in sorted(pool, key=lambda x: (self._score(x, now), x.last_access)):
            if self._score(v, now) > candidate:
                return None  # every remaining entry is used more than the newcomer
            chosen.append(v)
            free += size(v)
            if need <= free:
                return chosen
        return None

    def _admit_memory(
        self, e: _Entry, table: pa.Table, now: float, candidate: float
    ) -> tuple[bool, list[tuple[_Entry, pa.Table]]]:
        """Put ``e`` in the memory tier if it can get room; returns (stored, demotions still to write)."""
        if e.nbytes > self.memory_budget_bytes:
            return False, []
        pool = (x for x in self._entries.values() if x.table is not None and x is not e)
        victims = self._victims(pool, e.nbytes, self.memory_budget_bytes - self._memory_used,
                                lambda x: x.nbytes, candidate, now)
        if victims is None:
            return False, []
        spills = []
        for v in victims:
            spilled = v.table
            self._memory_used -= v.nbytes
            v.table = None
            self.stats.evictions += 1
            if v.checksum is not None:
                self.stats.demotions += 1
            elif v.writing:
                pass  # its write-through is under way; the commit counts the demotion
            elif self.disk_path is not None:
                v.writing = True
                spills.append((v, spilled))
            else:
                del self._entries[v.key]
        e.table = table
        self._memory_used += e.nbytes
        return True, spills

    def _reserve_disk(self, e: _Entry, size: int, candidate: float, now: float) -> bool:
        if size > self.disk_budget_bytes:
            return False
        pool = (x for x in self._entries.values() if x.checksum is not None and x is not e)
        free = self.disk_budget_bytes - self._disk_used - self._disk_reserved
        victims = self._victims(pool, size, free, lambda x: x.disk_bytes, candidate, now)
        if victims is None:
            return False
        for v in victims:
            self._evict_disk(v)
        self._disk_reserved += size
        return True

    def _evict_disk(self, v: _Entry) -> None:
        self._delete_disk_copy(v)
        self.stats.evictions += 1
        if v.table is None and not v.writing:
            del self._entries[v.key]

    def _delete_disk_copy(self, e: _Entry) -> None:
        if e.checksum is None or self.disk_path is None:
            return
        key_id = e.key.id()
        _unlink(self.disk_path / (key_id + _SIDECAR_SUFFIX))  # sidecar first: no sidecar means no entry
        _unlink(self.disk_path / (key_id + _DATA_SUFFIX))
        self._disk_used -= e.disk_bytes
        e.checksum = None
        e.disk_bytes = 0

    def _drop(self, e: _Entry) -> None:
        """Remove ``e`` from both tiers and the index (a write under way will see it is gone)."""
        if e.table is not None:
            self._memory_used -= e.nbytes
            e.table = None
        self._delete_disk_copy(e)
        if self._entries.get(e.key) is e:
            del self._entries[e.key]

    # ------------------------------------------------------------ disk I/O (caller does not hold the lock)

    def _run_spills(self, spills: list[tuple[_Entry, pa.Table]]) -> None:
        for v, table in spills:
            with self._lock:
                candidate = self._score(v, self._clock())
            self._write_disk(v, table, candidate)

    def _write_disk(self, e: _Entry, table: pa.Table, candidate: float) -> bool:
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

    def _read_disk(self, e: _Entry, checksum: str | None) -> pa.Table | None:
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
            e = _Entry(key, doc["fingerprint"], float(doc["fetched_at"]), int(doc["nbytes"]), seq=self._seq,
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


class _CacheCollector(Collector):
    """Reads a cache's counters and sizes at scrape time."""

    def __init__(self, cache: PartitionCache) -> None:
        self._cache = cache

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        counters, gauges = self._cache._metric_values()
        for name, value in counters.items():
            help_text = f"Hot-partition cache {name.replace('_', ' ')}"
            yield CounterMetricFamily(f"gateway_cache_{name}", help_text, value=value)
        for name in ("memory_used_bytes", "disk_used_bytes", "memory_budget_bytes", "disk_budget_bytes"):
            yield GaugeMetricFamily(f"gateway_cache_{name}", f"Hot-partition cache {name.replace('_', ' ')}",
                                    value=gauges[name])
        entries = GaugeMetricFamily("gateway_cache_entries", "Hot-partition cache entries per tier",
                                    labels=["tier"])
        entries.add_metric([MEMORY], gauges["memory_entries"])
        entries.add_metric([DISK], gauges["disk_entries"])
        yield entries
