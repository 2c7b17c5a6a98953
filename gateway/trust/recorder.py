"""The engine's trust hook: one ``Trust`` per ``QueryEngine`` records a manifest and lineage for every query.

``started`` runs as a query starts executing (after planning, before any fragment is read): it reads the
fingerprints of the tables the plan reads (one cheap statement per database table, a ``stat`` per file: the
only cost on the query's path, ~1 ms per PostgreSQL table measured by ``bench/trust_overhead.py``), keeps the
manifest (``ManifestStore``) and queues an OpenLineage START event. ``finished`` runs once as the query ends
(last batch, error, cancel): it fills in cache use, rows and bytes per table; a background thread then reads
the fingerprints after the read (``changed_during_read``) and queues COMPLETE or FAIL. Nothing here raises
into the query: a failure is logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Sequence

from prometheus_client import Counter

from catalog import Catalog
from catalog.drift import DriftStore, SchemaChange
from gateway.cache.store import PartitionCache
from gateway.errors import SourceUnavailableError, UnknownObjectError
from gateway.metrics import Metrics, QueryStats
from gateway.settings import Settings
from gateway.trust import manifest as mf
from gateway.trust.emitter import Emitter
from gateway.trust.lineage import LineageBuilder
from planner import FederatedPlan

log = logging.getLogger(__name__)

#: seconds a statement's manifest begun at GetFlightInfo (its fingerprints read then) stands for the run its DoGet
#: starts: the fingerprints still precede every read, and only the client's round trip lies between
PREVIEW_REUSE_S = 1.0


class Trust:
    """Manifests and OpenLineage events of the queries one engine runs.

    ``manifests`` keeps the last ``lineage.manifests_kept`` manifests by query id; ``emitter`` sends events on
    its own thread from a bounded queue (``gateway_lineage_events{outcome}`` counts sent, failed and dropped).
    """

    def __init__(self, settings: Settings, catalog: Catalog, metrics: Metrics,
                 cache: PartitionCache | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.manifests = mf.ManifestStore(settings.lineage.manifests_kept)
        self.emitter = Emitter(settings.lineage, metrics.registry)
        self.lineage = LineageBuilder(settings.lineage.namespace, settings.lineage.job_prefix, catalog)
        self.cache = cache
        self.schema_changes = Counter("gateway_schema_changes", "Schema changes found by catalog refreshes",
                                      ["source", "kind"], registry=metrics.registry)
        catalog.track_drift(catalog.drift or DriftStore(settings.catalog.state_path), self.drifted)
        # finished manifests waiting for their fingerprints after the read (one thread, bounded)
        self._after: queue.Queue = queue.Queue(settings.lineage.queue_size)
        self._verifier = threading.Thread(target=self._verify_loop, name="trust-verify", daemon=True)
        self._verifier.start()
        self._running: dict[str, tuple[mf.Manifest, FederatedPlan, QueryStats]] = {}
        self._lock = threading.Lock()

    def _bounds(self, plan: FederatedPlan, max_staleness_s: float | None) -> dict[str, float | None]:
        """Per cached source, the staleness bound its partitions are served under (0: fingerprint-proven)."""
        out = {}
        configs = {s.name: s for s in self.settings.sources}
        for source in {f.source for f in plan.fragments}:
            config = configs.get(source)
            if config is None or not self.catalog.connector(source).read_per_table:
                continue
            bound = max_staleness_s if max_staleness_s is not None else config.cache_ttl_s
            out[source] = 0.0 if (config.cache_fingerprint or bound == 0) else bound
        return out

    def started(self, stats: QueryStats, plan: FederatedPlan, params: Sequence[object] | None,
                max_staleness_s: float | None, preview: mf.Manifest | None = None) -> None:
        """A query begins to read ``plan``: its manifest is started (fingerprints read now, or taken from
        ``preview``, the manifest ``preview()`` made for the same plan at most ``PREVIEW_REUSE_S`` seconds ago)
        and START queued."""
        try:
            manifest = _reused(preview, stats.query_id) or mf.begin(
                self.catalog, stats.query_id, stats.sql, params, plan, self._bounds(plan, max_staleness_s))
            self.manifests.put(manifest)
            with self._lock:
                self._running[stats.query_id] = (manifest, plan, stats)
            if self.emitter.active:
                # the event is built later on the emitter's thread: from a copy of the manifest as it is now
                tables = [dataclasses.replace(t) for t in manifest.tables]
                snapshot = dataclasses.replace(manifest, tables=tables)
                self.emitter.submit(lambda: self.lineage.start_event(stats, plan, snapshot))
        except Exception:  # the trust record never fails a query
            log.exception("trust: could not start the manifest", extra={"query_id": stats.query_id})

    def finished(self, stats: QueryStats) -> None:
        """A query ended (``stats.status`` set): its manifest is completed and COMPLETE/FAIL queued."""
        with self._lock:
            entry = self._running.pop(stats.query_id, None)
        if entry is None:
            return  # refused before it ran: nothing was read
        manifest, plan, _ = entry
        try:
            mf.settle(manifest, plan, stats)
            manifest.status = stats.status
            manifest.finished_at = time.time()
        except Exception:
            log.exception("trust: could not finish the manifest", extra={"query_id": stats.query_id})
            return
        try:  # off the query's path: the fingerprints after the read, then COMPLETE/FAIL
            self._after.put_nowait((stats, plan, manifest))
        except queue.Full:  # not verified (fingerprint_after stays null) rather than a slower query
            self._end_event(stats, plan, manifest)

    def _verify_loop(self) -> None:
        while (item := self._after.get()) is not None:
            stats, plan, manifest = item
            try:
                if stats.status == "ok":
                    after = mf.read_fingerprints(self.catalog, [t.table for t in manifest.tables])
                    for read in manifest.tables:
                        read.fingerprint_after = after.get(read.table, "")
            except Exception:
                log.exception("trust: fingerprints after the read failed", extra={"query_id": stats.query_id})
            self._end_event(stats, plan, manifest)

    def _end_event(self, stats: QueryStats, plan: FederatedPlan, manifest: mf.Manifest) -> None:
        if self.emitter.active:
            self.emitter.submit(lambda: self.lineage.end_event(stats, plan, manifest))

    def current(self, query_id: str) -> mf.Manifest:
        """The manifest of ``query_id`` as it stands (a running query's is settled with what its fragments
        did so far). Raises UnknownObjectError for an id no kept manifest has."""
        with self._lock:
            entry = self._running.get(query_id)
        if entry is not None:
            mf.settle(*entry)
            return entry[0]
        return self.manifests.get(query_id)

    def headers(self, query_id: str, link: str) -> dict[str, str]:
        """The compact manifest headers of a REST answer (``Manifest.summary_headers``); empty when the
        query kept no manifest (EXPLAIN)."""
        try:
            return self.current(query_id).summary_headers(link)
        except Exception:
            return {}

    def preview(self, sql: str, params: Sequence[object] | None, plan: FederatedPlan,
                max_staleness_s: float | None = None) -> mf.Manifest | None:
        """The manifest ``plan`` has if run now, its fingerprints read now (GetFlightInfo, before DoGet); the
        run may start from it (``started(preview=...)``). None on any failure."""
        try:
            return mf.begin(self.catalog, "", sql, params, plan, self._bounds(plan, max_staleness_s))
        except Exception:
            log.exception("trust: no manifest for a FlightInfo")
            return None

    @staticmethod
    def flight_metadata(preview: mf.Manifest | None) -> bytes:
        """``FlightInfo.app_metadata`` of a statement: ``{"gateway_manifest": {...}}``, UTF-8 JSON of its
        ``preview()`` with status ``planned`` and no query id (its ``content_hash`` equals the run's, which
        starts from it); empty bytes without one."""
        if preview is None:
            return b""
        doc = preview.to_dict()
        doc.pop("query_id")
        doc["status"] = "planned"
        return json.dumps({"gateway_manifest": doc}, separators=(",", ":")).encode()

    # -- schema drift ------------------------------------------------------------------------------------

    def drifted(self, changes: list[SchemaChange]) -> None:
        """Heal what a refresh found changed: cached partitions of each changed table are dropped (plans are
        keyed by the catalog's version, which the refresh changed); each change is counted and, when lineage
        is sent, announced as an OpenLineage dataset event with the table's new schema facet."""
        for table in sorted({(c.source, c.schema, c.table) for c in changes}):
            if self.cache is not None:
                self.cache.invalidate(source=table[0], schema=table[1], table=table[2])
        for change in changes:
            self.schema_changes.labels(change.source, change.kind).inc()
            if self.emitter.active:
                self.emitter.submit(lambda change=change: self.lineage.dataset_event(change))

    def explain_missing(self, exc: UnknownObjectError) -> None:
        """Reword an unknown-column error when a refresh saw that column dropped (or renamed): "column total of
        pg.public.orders was dropped at 2026-...; the query references it" (the nearest names follow)."""
        drift = self.catalog.drift
        name = str(exc.details.get("name") or "")
        if exc.details.get("kind") != "column" or drift is None or not name:
            return
        dropped = drift.dropped_column(name.rsplit(".", 1)[-1])
        if dropped is None or dropped["table"] not in exc.message:  # a drop in a table this query reads
            return
        how = f"renamed to {dropped['renamed_to']}" if dropped.get("renamed_to") else "dropped"
        exc.message = (f"column {dropped['column']} of {dropped['table']} was {how} at {dropped['at']}; the query "
                       f"references it ({exc.message})")
        exc.args = (exc.message,)
        exc.details["dropped_at"] = dropped["at"]

    def refresh(self, source: str | None = None) -> list[dict]:
        """Reload the catalog copy of one source (or all) now and return the schema changes that found
        (``catalog.drift.SchemaChange.to_dict`` each, with its ``id``). A source that cannot be reached keeps
        its last copy: SourceUnavailableError when it was the one named, else it is skipped (logged)."""
        drift = self.catalog.drift
        last = drift.last_id() if drift else 0
        for name in [source] if source is not None else self.catalog.list_sources():
            self.catalog.connector(name)  # UnknownObjectError for an unknown source
            if not self.catalog.reload(name) and source is not None:
                raise SourceUnavailableError(name, "the catalog refresh failed; the last copy is kept")
        return drift.changes(since_id=last) if drift else []

    def close(self, timeout_s: float = 2.0) -> None:
        """Finish the queued manifests and send what is queued (each up to ``timeout_s`` seconds); stop the
        threads. Call before the connectors are closed."""
        try:
            self._after.put(None, timeout=timeout_s)
        except queue.Full:
            pass
        self._verifier.join(timeout_s)
        self.emitter.close(timeout_s)


def _reused(preview: mf.Manifest | None, query_id: str) -> mf.Manifest | None:
    """A copy of ``preview`` for the run ``query_id`` when it is recent enough (``PREVIEW_REUSE_S``), else None."""
    if preview is None or time.time() - preview.started_at > PREVIEW_REUSE_S:
        return None
    return dataclasses.replace(preview, query_id=query_id, tables=[dataclasses.replace(t) for t in preview.tables])
