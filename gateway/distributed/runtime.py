"""``Distributor``: the engine's one handle on Ray execution: the decision per plan and the feeds of the
fragments that run as tasks. The executor (a Ray runtime or cluster connection) is made on the first query
that is distributed, never at start: a gateway whose queries all stay local never starts Ray."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
from collections.abc import Callable

import pyarrow as pa

from catalog import Catalog
from connectors.base import Fragment
from gateway.cache.scanner import CachedScanner
from gateway.distributed.decide import Distribution, Stage, decide
from gateway.distributed.descriptors import SourceSpec
from gateway.distributed.executors import Executor, RayExecutor
from gateway.distributed.feed import DistributedFeed
from gateway.distributed.join_feed import JoinRun, JoinSideFeed
from gateway.distributed.splits import Split, plan_splits
from gateway.errors import ConfigError
from gateway.metrics import FragmentStats
from gateway.settings import ExecutionConfig, SourceConfig


class Distributor:
    """Ray execution for one engine: ``config`` (``[execution]``), the ``sources`` workers build connectors
    from, and an ``executor`` (default: a ``RayExecutor`` made on first use from ``ray_address``)."""

    def __init__(self, config: ExecutionConfig, sources: list[SourceConfig], executor: Executor | None = None
                 ) -> None:
        if config.engine == "ray" and executor is None and importlib.util.find_spec("ray") is None:
            raise ConfigError("execution.engine: 'ray' needs the ray package (pip install "
                              "'federated-sql-gateway[ray]')", key="execution.engine")
        self.config = config
        self._specs = {s.name: SourceSpec(s.name, s.kind, s.options()) for s in sources}
        self._executor = executor
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.config.engine == "ray"

    @property
    def executor(self) -> Executor:
        """The executor, made on first use (starting or joining Ray)."""
        with self._lock:
            if self._executor is None:
                self._executor = RayExecutor(self.config.ray_address, self.config.num_cpus)
            return self._executor

    def partitions(self) -> int:
        """A join stage's partitions: ``join_partitions``, else the CPUs of the executor in use, else of the
        runtime it would start (deciding never starts Ray)."""
        if self.config.join_partitions:
            return self.config.join_partitions
        with self._lock:
            executor = self._executor
        if executor is not None:
            return executor.cpus()
        return self.config.num_cpus or os.cpu_count() or 1

    def decide(self, plan, catalog: Catalog, cached_source: Callable[[str], bool],
               scanner: CachedScanner | None = None) -> Distribution:
        """The plan's stages (``gateway.distributed.decide.decide``); with the engine's ``scanner``, fragments
        of cached sources are split by cache partition."""
        if self.config.engine != "ray":
            return Distribution()
        return decide(plan, self.config, catalog, cached_source, self.partitions(),
                      scanner.partitions_of if scanner is not None else None)

    def join_run(self, distribution: Distribution, cancel: threading.Event) -> JoinRun | None:
        """The run of the distribution's join stage, if it has one (its sides start with ``feed``)."""
        if distribution.join is None:
            return None
        return JoinRun(distribution.join, self.executor, cancel, self.config.max_retries,
                       self.config.task_timeout_s)

    def feed(self, fragment: Fragment, stage: Stage, catalog: Catalog, cancel: threading.Event,
             stats: FragmentStats | None = None, join: JoinRun | None = None, scanner: CachedScanner | None = None,
             max_staleness_s: float | None = None) -> DistributedFeed | JoinSideFeed:
        """Start reading ``fragment`` as tasks (a side of ``join``: stage one of the join stage). A fragment
        restricted since the decision (a dynamic filter's probe) is split again from its own SQL. A fragment of
        a cached source (``stage.cached``) reads the partitions ``scanner`` serves fresh (``max_staleness_s``)
        from the cache, and only the others as tasks."""
        stats = stats or FragmentStats(fragment.id, fragment.source, fragment.sql)
        preloaded: list[pa.Table] = []
        splits = stage.splits
        if stage.cached and scanner is not None:
            splits, preloaded = self._from_cache(fragment, catalog, scanner, max_staleness_s, stats)
        elif fragment.sql != stage.sql or not splits:
            splits = tuple(plan_splits(fragment, catalog.connector(fragment.source), max(len(stage.splits), 1))[0])
        if join is not None and fragment.id in (join.join.left, join.join.right):
            return join.side(fragment, splits, self._specs[fragment.source], stats, preloaded)
        return DistributedFeed(fragment, splits, self.executor, self._specs[fragment.source], cancel,
                               self.config.max_retries, self.config.task_timeout_s, stats, preloaded)

    def _from_cache(self, fragment: Fragment, catalog: Catalog, scanner: CachedScanner,
                    max_staleness_s: float | None, stats: FragmentStats) -> tuple[list[Split], list[pa.Table]]:
        """``(splits to read as tasks, rows served by the cache)`` for a fragment of a cached source; each
        partition's use is added to ``stats.partitions`` (EXPLAIN ANALYZE, the freshness manifest). A whole
        table that is not cached (``*``) is cut as any fragment."""
        connector = catalog.connector(fragment.source)
        names = scanner.partitions_of(fragment)
        if names is None:
            return plan_splits(fragment, connector, self.config.max_splits)[0], []
        schema, table = fragment.tables[0].split(".", 2)[1:]
        splits: list[Split] = []
        served: list[pa.Table] = []
        for name in names:
            rows, use = scanner.cached_partition(fragment, name, max_staleness_s)
            stats.partitions.append(use)
            if rows is not None:
                served.append(rows)
            elif name == "*":
                splits.extend(plan_splits(fragment, connector, self.config.max_splits)[0])
            else:
                splits.append(Split(fragment.sql, (schema, table, name)))
        return splits, served

    @staticmethod
    def residual(plan, feeds: list) -> object:
        """``plan`` as the residual plan runs it: with a join stage among ``feeds``, its residual SQL reads
        the stage's output (``join_stage.JOIN_TABLE``) in place of the two fragments."""
        for feed in feeds:
            if isinstance(feed, JoinSideFeed):
                join = feed.run.join
                return dataclasses.replace(
                    plan, residual_sql=join.residual_sql,
                    fragments=[f for f in plan.fragments if f.id not in (join.left, join.right)])
        return plan

    def close(self) -> None:
        """Close the executor (a Ray runtime this process started is shut down)."""
        with self._lock:
            if self._executor is not None:
                self._executor.close()
                self._executor = None
