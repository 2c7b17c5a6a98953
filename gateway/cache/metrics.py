"""The partition cache in Prometheus: counters and sizes read at scrape time (``PartitionCache.register_metrics``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.cache.entries import DISK, MEMORY


class CacheCollector(Collector):
    """Reads a cache's counters and sizes at scrape time: ``values()`` gives ``(counters, gauges)``, two dicts
    of name -> value (``PartitionCache._metric_values``)."""

    def __init__(self, values: Callable[[], tuple[dict[str, int], dict[str, int]]]) -> None:
        self._values = values

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        counters, gauges = self._values()
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
