"""Asynchronous OpenLineage emission: a bounded queue and one sender thread, so a query never waits for (or
fails because of) the lineage collector.

Events are built on the sender thread from a callable queued by the query (building column lineage costs a
few milliseconds of sqlglot work that a query must not pay). A full queue drops the event;
``gateway_lineage_events{outcome}`` counts ``sent``, ``failed`` (the transport raised: collector down or
refusing) and ``dropped`` (queue full or the emitter closed).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable

from openlineage.client import OpenLineageClient
from prometheus_client import CollectorRegistry, Counter

from gateway.errors import ConfigError
from gateway.settings import LineageConfig

log = logging.getLogger(__name__)


def make_client(config: LineageConfig) -> OpenLineageClient | None:
    """The OpenLineage client of ``config.transport``, else of the environment (``OPENLINEAGE_URL``,
    ``OPENLINEAGE_CONFIG``); None when lineage is off or no transport is configured anywhere. Raises
    ConfigError naming the key when the transport config is not usable."""
    if not config.enabled:
        return None
    try:
        if config.transport:
            return OpenLineageClient(config={"transport": dict(config.transport)})
        if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
            return OpenLineageClient()
    except Exception as exc:  # a bad transport config fails the start, naming the key
        where = "lineage.transport" if config.transport else "OPENLINEAGE_URL / OPENLINEAGE_CONFIG"
        raise ConfigError(f"{where}: not a usable OpenLineage transport: {exc}", key=where) from None
    return None


class Emitter:
    """Sends OpenLineage events on a daemon thread from a queue of at most ``config.queue_size`` events."""

    def __init__(self, config: LineageConfig, registry: CollectorRegistry | None = None,
                 client: OpenLineageClient | None = None) -> None:
        self.client = client or make_client(config)
        self.events = Counter("gateway_lineage_events", "OpenLineage events by outcome (sent, failed, dropped)",
                              ["outcome"], registry=registry)
        for outcome in ("sent", "failed", "dropped"):
            self.events.labels(outcome)
        self._queue: queue.Queue[Callable[[], object] | None] = queue.Queue(config.queue_size)
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        if self.client is not None:
            self._thread = threading.Thread(target=self._run, name="openlineage-emitter", daemon=True)
            self._thread.start()

    @property
    def active(self) -> bool:
        """Whether events are sent at all (a transport is configured and the emitter is open)."""
        return self.client is not None and not self._closed.is_set()

    def submit(self, build: Callable[[], object]) -> bool:
        """Queue ``build`` (it returns the event); never blocks. False (and counted ``dropped``) when full."""
        if not self.active:
            self.events.labels("dropped").inc()
            return False
        try:
            self._queue.put_nowait(build)
            return True
        except queue.Full:
            self.events.labels("dropped").inc()
            return False

    def _run(self) -> None:
        while True:
            build = self._queue.get()
            if build is None:
                return
            try:
                event = build()
                if event is not None:
                    self.client.emit(event)
                    self.events.labels("sent").inc()
            except Exception as exc:  # a collector that is down or refuses: counted, never raised
                self.events.labels("failed").inc()
                log.warning("OpenLineage event not sent", extra={"error": str(exc)[:300]})

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop taking events, send what is queued for up to ``timeout_s`` seconds, stop the thread."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                pass
            self._thread.join(timeout_s)
