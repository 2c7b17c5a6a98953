"""Admission and eviction policy of the partition cache (``PartitionCache`` inherits ``CachePolicy``).

Admission by use: a partition is stored only once it has been used ``admit_after`` times within
``admission_window_s`` seconds, so a one-off scan does not push hot partitions out.

Eviction is LFU with exponential aging: each entry has a use count that halves every
``frequency_half_life_s`` and grows by one per hit; the entry with the lowest decayed count goes first,
ties to the least recently used. Frequency, not recency, because queries over a hot dimension or the last
day's partition repeat all day while a large ad-hoc scan touches many partitions once; aging lets
yesterday's hot set fade. As in TinyLFU, a newcomer (scored by its uses within the admission window) may
only evict entries whose decayed count is not above its own; otherwise it is not stored in that tier.
Choosing a victim is a scan over the entries (O(n log n)); caches hold thousands of partitions, not
millions.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from gateway.cache.entries import CacheStats, Entry, PartitionKey

MAX_TRACKED_KEYS = 100_000  # admission history bound (keys), oldest dropped first


class CachePolicy:
    """The admission history and the tiers' budgets, victims and evictions of ``PartitionCache``.

    A part of ``PartitionCache`` (which sets the attributes below); every method runs with its lock held.
    """

    admit_after: int
    admission_window_s: float
    frequency_half_life_s: float
    memory_budget_bytes: int
    disk_budget_bytes: int
    disk_path: Path | None
    stats: CacheStats
    _entries: dict[PartitionKey, Entry]
    _accesses: OrderedDict[PartitionKey, deque[float]]
    _window_count: int
    _memory_used: int
    _disk_used: int
    _disk_reserved: int

    # ---------------------------------------------------------------- admission

    def _record_access(self, key: PartitionKey, now: float) -> bool:
        times = self._accesses.get(key)
        if times is None:
            times = self._accesses[key] = deque(maxlen=self._window_count)
        else:
            self._accesses.move_to_end(key)
        times.append(now)
        while self._accesses:  # keys unused for a whole window, or beyond the bound, are forgotten
            oldest = next(iter(self._accesses.values()))
            if len(self._accesses) <= MAX_TRACKED_KEYS and now - oldest[-1] <= self.admission_window_s:
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

    # ---------------------------------------------------------------- eviction

    def _score(self, e: Entry, now: float) -> float:
        return e.freq * 0.5 ** (max(0.0, now - e.freq_at) / self.frequency_half_life_s)

    def _touch(self, e: Entry, now: float) -> None:
        e.freq = self._score(e, now) + 1.0
        e.freq_at = now
        e.hits += 1
        e.last_access = now

    def _victims(self, pool: Iterator[Entry], need: int, free: int, size: Callable[[Entry], int],
                 candidate: float, now: float) -> list[Entry] | None:
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
        self, e: Entry, table: pa.Table, now: float, candidate: float
    ) -> tuple[bool, list[tuple[Entry, pa.Table]]]:
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

    def _reserve_disk(self, e: Entry, size: int, candidate: float, now: float) -> bool:
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

    def _evict_disk(self, v: Entry) -> None:
        self._delete_disk_copy(v)
        self.stats.evictions += 1
        if v.table is None and not v.writing:
            del self._entries[v.key]

    def _drop(self, e: Entry) -> None:
        """Remove ``e`` from both tiers and the index (a write under way will see it is gone)."""
        if e.table is not None:
            self._memory_used -= e.nbytes
            e.table = None
        self._delete_disk_copy(e)
        if self._entries.get(e.key) is e:
            del self._entries[e.key]

    def _delete_disk_copy(self, e: Entry) -> None:  # the disk tier's (gateway.cache.disk.DiskTier)
        raise NotImplementedError
