"""Single-flight fetching for ``PartitionCache`` (which inherits ``SingleFlight``): concurrent callers for one
missing partition share one source read, unless freshness forbids it (a strict caller shares only a fetch that
read the fingerprint it read itself).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pyarrow as pa

from gateway.cache.entries import CacheStats, Entry, Flight, PartitionKey


class SingleFlight:
    """``get_or_fetch``: a part of ``PartitionCache``, using its lock, index, lookup and store."""

    _lock: threading.Lock
    _seq: int
    _clock: Callable[[], float]
    _flights: dict[PartitionKey, Flight]
    _entries: dict[PartitionKey, Entry]
    stats: CacheStats

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
                    flight = self._flights[key] = Flight()
            break
        if leader:
            return self._lead(key, flight, fetch, force_admit), False
        shared = self._follow(flight, max_staleness_s == 0, fp_now, current_fingerprint)
        if shared is not None:
            return shared, False
        table = self._fetch_and_store(key, fetch, force_admit, None)
        return table, False

    def _lead(self, key: PartitionKey, flight: Flight, fetch: Callable, force_admit: bool) -> pa.Table:
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
        self, key: PartitionKey, fetch: Callable, force: bool, flight: Flight | None
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
        flight: Flight,
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
