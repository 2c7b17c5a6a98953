"""The partition cache's keys and entries: what is cached (``PartitionKey``), what a lookup serves
(``CachedPartition``), the counters (``CacheStats``) and the index records the store, the policy and the disk
tier share (``Entry``, ``Flight``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

MEMORY = "memory"
DISK = "disk"


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
class Entry:
    """One cached partition in the index: its data in memory and/or its committed disk copy, and its use."""

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
class Flight:
    """One fetch under way in get_or_fetch; followers wait on ``future`` for ``(table, fingerprint)``."""

    future: Future = field(default_factory=Future)
    invalidated: bool = False  # an invalidate matched the key while fetching: the result must not be stored
