"""``Distributor``: the engine's one handle on Ray execution: the decision per plan and the feeds of the
fragments that run as tasks. The executor (a Ray runtime or cluster connection) is made on the first query
that is distributed, never at start: a gateway whose queries all stay local never starts Ray."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable

from catalog import Catalog
from connectors.base import Fragment
from gateway.distributed.decide import Distribution, Stage, decide
from gateway.distributed.descriptors import SourceSpec
from gateway.distributed.executors import Executor, RayExecutor
from gateway.distributed.feed import DistributedFeed
from gateway.distributed.splits import plan_splits
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

    def decide(self, plan, catalog: Catalog, cached_source: Callable[[str], bool]) -> Distribution:
        """The plan's stages (``gateway.distributed.decide.decide``)."""
        return decide(plan, self.config, catalog, cached_source)

    def feed(self, fragment: Fragment, stage: Stage, catalog: Catalog, cancel: threading.Event,
             stats: FragmentStats | None = None) -> DistributedFeed:
        """Start reading ``fragment`` as tasks. A fragment restricted since the decision (a dynamic filter's
        probe) is split again from its own SQL."""
        splits = stage.splits
        if fragment.sql != stage.sql or not splits:
            splits = tuple(plan_splits(fragment, catalog.connector(fragment.source), max(len(stage.splits), 1))[0])
        return DistributedFeed(fragment, splits, self.executor, self._specs[fragment.source], cancel,
                               self.config.max_retries, self.config.task_timeout_s, stats)

    def close(self) -> None:
        """Close the executor (a Ray runtime this process started is shut down)."""
        with self._lock:
            if self._executor is not None:
                self._executor.close()
                self._executor = None
