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
- Eviction is LFU with exponential aging (``gateway.cache.policy``).
- A damaged disk entry is detected on read, deleted and counted; it is a miss, never served.

One process owns a disk folder; several gateways must not share one. Modules: ``entries`` (keys, entries,
counters), ``policy`` (admission and eviction), ``disk`` (the disk tier's files), ``single_flight`` (shared
fetches), ``metrics`` (Prometheus), ``store`` (this API).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from prometheus_client.registry import CollectorRegistry

from gateway.cache.disk import DiskTier
from gateway.cache.entries import DISK, MEMORY, CachedPartition, CacheStats, Entry, Flight, PartitionKey
from gateway.cache.metrics import CacheCollector
from gateway.cache.single_flight import SingleFlight

__all__ = ["DISK", "MEMORY", "CacheStats", "CachedPartition", "PartitionCache", "PartitionKey"]

_MAX_STALE_KEYS = 4096  # keys remembered as rejected-stale, only to count refreshes


class PartitionCache(SingleFlight, DiskTier):
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

    Eviction: ``gateway.cache.policy``; disk files and their verification: ``gateway.cache.disk``.

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
        self._entries: dict[PartitionKey, Entry] = {}
        self._memory_used = 0
        self._disk_used = 0
        self._disk_reserved = 0  # bytes of disk writes under way
        self._seq = 0
        # last accesses per key, least recently used key first; a few more than admit_after to rank newcomers
        self._accesses: OrderedDict[PartitionKey, deque[float]] = OrderedDict()
        self._window_count = max(admit_after, 16)
        self._stale_keys: OrderedDict[PartitionKey, None] = OrderedDict()
        self._flights: dict[PartitionKey, Flight] = {}
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
        spills: list[tuple[Entry, pa.Table]] = []
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

    def _served(self, e: Entry, table: pa.Table, tier: str) -> CachedPartition:
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
        flight: Flight | None,
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
            e = Entry(key, fingerprint, now if fetched_at is None else fetched_at, nbytes, seq=self._seq,
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
        registry.register(CacheCollector(self._metric_values))

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
