"""The catalog's statistics cache, and statistics as JSON-ready dicts (CLI, REST).

``StatisticsCache.get(ref, connector)`` answers a table's ``TableStatistics`` from memory; the source is
asked once per ``ttl_s`` seconds (and again after the catalog's refresh forgets the source). Collection is
bounded in time per call: a source that has not answered within ``timeout_s`` seconds gives unknown
statistics to this caller (its answer is still cached when it comes), and a source that fails gives unknown
statistics, remembered for ``failure_ttl_s`` seconds, and a logged warning. Statistics never fail a query.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import logging
import math
import threading
import time
from dataclasses import dataclass

from connectors.base import Connector, TableStatistics

log = logging.getLogger(__name__)

#: seconds a table's statistics are kept before the source is asked again
STATISTICS_TTL_S = 600.0
#: seconds unknown statistics of a failed or slow collection are kept (a down source is not asked per query)
FAILURE_TTL_S = 30.0
#: seconds a caller waits for a source's statistics before going on with unknown ones
COLLECTION_TIMEOUT_S = 5.0

UNKNOWN = TableStatistics(rows=None, bytes=None)


@dataclass
class _Entry:
    statistics: TableStatistics | None  # None while the first collection runs
    expires: float  # time.monotonic() after which the source is asked again
    done: threading.Event


class StatisticsCache:
    """Table statistics per ``TableRef``, kept in ``entries`` (a dict the catalog owns and clears per source
    on refresh). Thread-safe; one collection per table at a time (concurrent callers wait for the same one).

    Args:
        entries: the dict to keep entries in (``TableRef`` -> entry).
        ttl_s: seconds statistics are kept (``STATISTICS_TTL_S``).
        timeout_s: seconds a caller waits for a collection (``COLLECTION_TIMEOUT_S``).
        failure_ttl_s: seconds unknown statistics of a failed collection are kept (``FAILURE_TTL_S``).
    """

    def __init__(self, entries: dict, ttl_s: float = STATISTICS_TTL_S, timeout_s: float = COLLECTION_TIMEOUT_S,
                 failure_ttl_s: float = FAILURE_TTL_S) -> None:
        if ttl_s < 0 or timeout_s <= 0 or failure_ttl_s < 0:
            raise ValueError("statistics ttl_s and failure_ttl_s must be >= 0 seconds and timeout_s > 0 seconds")
        self.entries = entries
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.failure_ttl_s = failure_ttl_s
        self._lock = threading.Lock()

    def get(self, ref, connector: Connector) -> TableStatistics:
        """The statistics of ``ref`` (a ``TableRef``) from ``connector``: cached, or collected now on a
        background thread and waited for up to ``timeout_s`` seconds (expired ones are answered at once while
        they are collected again). Never raises for a source's failure or
        slowness: the answer is then ``TableStatistics(None, None)`` (unknown)."""
        now = time.monotonic()
        with self._lock:
            entry = self.entries.get(ref)
            if entry is not None and entry.statistics is not None and now < entry.expires:
                return entry.statistics
            if entry is None or entry.done.is_set():  # nothing running: start a collection
                stale = entry.statistics if entry is not None else None
                entry = _Entry(statistics=stale, expires=now + self.failure_ttl_s, done=threading.Event())
                self.entries[ref] = entry
                threading.Thread(target=self._collect, args=(ref, connector, entry), daemon=True,
                                 name=f"statistics {ref}").start()
        if entry.statistics is not None:  # expired: answered at once while the new collection runs
            return entry.statistics
        if entry.done.wait(self.timeout_s):
            return entry.statistics if entry.statistics is not None else UNKNOWN
        log.warning("statistics: the source did not answer in time; planning with unknown statistics",
                    extra={"source": ref.source, "table": str(ref), "timeout_s": self.timeout_s})
        return UNKNOWN

    def _collect(self, ref, connector: Connector, entry: _Entry) -> None:
        try:
            stats = connector.statistics(ref.schema, ref.table)
            expires = time.monotonic() + self.ttl_s
        except Exception as exc:  # a hint only: the query goes on without statistics
            log.warning("statistics: the source failed; planning with unknown statistics",
                        extra={"source": ref.source, "table": str(ref), "error": str(exc).splitlines()[0][:300]})
            stats, expires = UNKNOWN, time.monotonic() + self.failure_ttl_s
        with self._lock:  # a refresh that forgot the source meanwhile dropped the entry: it stays dropped
            entry.statistics, entry.expires = stats, expires
        entry.done.set()


def statistics_as_dict(stats: TableStatistics) -> dict:
    """``stats`` as a JSON-ready dict: ``{"rows", "bytes", "columns": {name: {"distinct", "null_fraction",
    "min", "max", "most_common": [[value, frequency], ...], "origin"}}}``. Values become JSON types: dates
    and times ISO-8601 text, decimals text (no digit lost), bytes base64 text, non-finite floats null.

        >>> from connectors.base import ColumnStatistics
        >>> statistics_as_dict(TableStatistics(10, 8192, {"d": ColumnStatistics(
        ...     distinct=3.0, null_fraction=0.1, min=dt.date(2024, 1, 1), max=dt.date(2024, 1, 3))}))
        ... # doctest: +NORMALIZE_WHITESPACE
        {'rows': 10, 'bytes': 8192, 'columns': {'d': {'distinct': 3.0, 'null_fraction': 0.1, 'min': '2024-01-01',
        'max': '2024-01-03', 'most_common': [], 'origin': ''}}}
    """
    return {
        "rows": stats.rows,
        "bytes": stats.bytes,
        "columns": {
            name: {
                "distinct": _json_value(c.distinct),
                "null_fraction": _json_value(c.null_fraction),
                "min": _json_value(c.min),
                "max": _json_value(c.max),
                "most_common": [[_json_value(v), _json_value(f)] for v, f in c.most_common],
                "origin": c.origin,
            }
            for name, c in stats.columns.items()
        },
    }


def _json_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)
