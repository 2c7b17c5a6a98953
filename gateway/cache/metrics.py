"""The partition cache in Prometheus: counters and sizes read at scrape time (``PartitionCache.register_metrics``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.cache.entries import DISK, MEMORY

if TYPE_CHECKING:
    from gateway.cache.store import PartitionCache


class CacheCollector(Collector):
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
