"""The catalog: registered sources and an in-memory copy of their schemas, tables and columns.

Names are ``source.schema.table`` (Flight SQL: catalog = source, db_schema = schema). Introspection is lazy
and cached per table; ``refresh()`` forgets the copy. A source that cannot be reached only affects the
objects of that source: each source has its own lock, so a slow source never holds up another.

``start_background_refresh(interval)`` loads every source's whole copy (schemas, tables, table types,
columns) on a daemon thread at once and again every ``interval`` seconds. A new copy is built outside the
locks and swapped in whole, so listings keep answering from the last known copy while a source is slow
or down. ``version`` changes on every swap (callers cache derived answers by it).

``view(sources, default_source, default_schema)`` is the catalog as one principal sees it: only the
sources it may use, and unqualified names looked up first in its session's default catalog/schema.

Named views (``catalog.views``, set by ``set_views``) live in view catalogs of their own: ``list_catalogs``,
``list_schemas``, ``list_tables``, ``table_schema`` and ``table_type`` (``VIEW``) answer for them as for
tables, each view listed only where every source it reads may be used; ``list_sources`` stays the sources.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence

import pyarrow as pa

from catalog.drift import DriftStore, SchemaChange
from catalog.names import NameResolution, TableRef, pick
from catalog.statistics import StatisticsCache
from catalog.views import ViewCatalog, ViewDefinition, Views
from connectors import Connector, TableStatistics
from connectors.errors import (
    ConfigError,
    GatewayError,
    PermissionDeniedError,
    SourceQueryError,
    SourceUnavailableError,
    UnknownObjectError,
)

log = logging.getLogger(__name__)


class Catalog(NameResolution):
    """All registered sources and what they contain.

    ``connectors`` maps a source name to its connector. Listing methods return sorted names; ``table_schema``
    returns the connector's Arrow schema. Errors: UnknownObjectError (with the nearest names),
    AmbiguousNameError (with every candidate), SourceUnavailableError (naming the source).
    """

    def __init__(self, connectors: dict[str, Connector]) -> None:
        self.connectors = dict(connectors)
        self._lock = threading.RLock()  # guards the dicts below (held only for dict operations)
        self._source_locks: dict[str, threading.RLock] = {name: threading.RLock() for name in self.connectors}
        # the copy: these dicts are only ever changed in place, so views share them
        self._schemas: dict[str, list[str]] = {}
        self._tables: dict[tuple[str, str], list[str]] = {}
        self._columns: dict[TableRef, pa.Schema] = {}
        self._types: dict[TableRef, str] = {}
        self._foreign_keys: dict[TableRef, list] = {}
        self._statistics: dict[TableRef, object] = {}
        self.statistics_cache = StatisticsCache(self._statistics)  # ttl_s, timeout_s may be set after start
        self._versions = [0]
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()
        self.drift: DriftStore | None = None  # schema versions; set by track_drift
        self._drift_listeners: list[Callable[[list[SchemaChange]], None]] = []
        self.views = Views()  # named views (catalog.views); shared with every CatalogView
        self._every_source = frozenset(self.connectors)

    # -- named views ---------------------------------------------------------------------------------

    def set_views(self, definitions: Iterable[ViewDefinition]) -> None:
        """Register the named views (untyped: ``planner.views.prepare_views`` types them). Raises ConfigError
        when a view catalog is also a source's name (case-insensitively)."""
        definitions = list(definitions)
        sources = {s.lower(): s for s in self.connectors}
        for definition in definitions:
            clash = sources.get(definition.ref.source.lower())
            if clash is not None:
                raise ConfigError(f"view '{definition.ref}': its catalog '{definition.ref.source}' is the name of "
                                  f"source '{clash}'; give views a catalog of their own", key="views")
        self.views.load(definitions)
        with self._lock:
            self._versions[0] += 1

    def view_definition(self, ref: TableRef) -> ViewDefinition | None:
        """The view ``ref`` names (None for a table). Raises PermissionDeniedError naming the first source the
        view reads that this catalog (a principal's view of it) may not use, as a query on that source is
        refused; SourceUnavailableError when the view could not be typed yet (a source it reads was
        unavailable: ``ViewDefinition.error``)."""
        view = self.views.get(ref)
        if view is None:
            return None
        if view.query is None:
            raise SourceUnavailableError(view.ref.source, f"view '{view.ref}' is not available: {view.error}")
        for source in sorted(view.sources - set(self.connectors)):
            raise PermissionDeniedError(f"access to source '{source}' is not allowed", source=source)
        return view

    def list_catalogs(self) -> list[str]:
        """The sources and the view catalogs holding a view this catalog lists, sorted."""
        return sorted(set(self.list_sources()) | {v.ref.source for v in self._listed_views()})

    def _listed_views(self, catalog: str | None = None, schema: str | None = None) -> list[ViewDefinition]:
        return [v for v in self.views.visible(self.connectors, self._every_source)
                if catalog in (None, v.ref.source) and schema in (None, v.ref.schema)]

    def _is_view_catalog(self, name: str) -> bool:
        return name not in self.connectors and name in self.views.catalogs()

    # -- listing -------------------------------------------------------------------------------------

    def list_sources(self) -> list[str]:
        return sorted(self.connectors)

    def connector(self, source: str) -> Connector:
        """The connector of ``source``; for a view catalog a ``ViewCatalog`` (kind ``view``, no keys, reads
        nothing). Raises UnknownObjectError."""
        try:
            return self.connectors[source]
        except KeyError:
            if self._is_view_catalog(source):
                return ViewCatalog(source)  # type: ignore[return-value]  (what listings ask of a connector)
            raise UnknownObjectError("source", source, self.connectors) from None

    def _source_lock(self, source: str) -> threading.RLock:
        self.connector(source)  # UnknownObjectError for an unknown source
        return self._source_locks[source]

    def list_schemas(self, source: str) -> list[str]:
        if self._is_view_catalog(source):
            return sorted({v.ref.schema for v in self._listed_views(source)})
        cached = self._schemas.get(source)
        if cached is not None:
            return cached
        with self._source_lock(source):
            if source not in self._schemas:
                schemas = sorted(self.connector(source).list_schemas())
                with self._lock:
                    self._schemas[source] = schemas
            return self._schemas[source]

    def list_tables(self, source: str, schema: str) -> list[str]:
        if self._is_view_catalog(source):
            names = sorted(v.ref.table for v in self._listed_views(source, schema))
            if not names:
                raise UnknownObjectError("schema", schema, self.list_schemas(source), context=f"catalog '{source}'")
            return names
        key = (source, schema)
        cached = self._tables.get(key)
        if cached is not None:
            return cached
        with self._source_lock(source):
            if key not in self._tables:
                if schema not in self.list_schemas(source):
                    raise UnknownObjectError(
                        "schema", schema, self.list_schemas(source), context=f"source '{source}'"
                    )
                tables = sorted(self.connector(source).list_tables(schema))
                with self._lock:
                    self._tables[key] = tables
            return self._tables[key]

    def table_schema(self, ref: TableRef) -> pa.Schema:
        """The table's (or view's) columns. Raises UnknownObjectError when the table does not exist, and for a
        view as ``view_definition`` does."""
        if self._is_view_catalog(ref.source):
            view = self.view_definition(ref)
            if view is None:
                raise UnknownObjectError("view", ref.table, self.list_tables(ref.source, ref.schema),
                                         context=f"{ref.source}.{ref.schema}")
            return view.schema
        cached = self._columns.get(ref)
        if cached is not None:
            return cached
        with self._source_lock(ref.source):
            if ref not in self._columns:
                tables = self.list_tables(ref.source, ref.schema)
                if ref.table not in tables:
                    raise UnknownObjectError(
                        "table", ref.table, tables, context=f"{ref.source}.{ref.schema}"
                    )
                columns = self.connector(ref.source).table_schema(ref.schema, ref.table)
                with self._lock:
                    self._columns[ref] = columns
            return self._columns[ref]

    def table_type(self, ref: TableRef) -> str:
        """``TABLE`` or ``VIEW`` (a source's view or a named view), cached with the rest of the copy."""
        if self._is_view_catalog(ref.source):
            return "VIEW"
        cached = self._types.get(ref)
        if cached is None:
            cached = self.connector(ref.source).table_type(ref.schema, ref.table)
            with self._lock:
                self._types[ref] = cached
        return cached

    def foreign_keys(self, ref: TableRef) -> list:
        """The table's foreign keys (``connectors.base.ForeignKey``), cached with the rest of the copy."""
        cached = [] if self._is_view_catalog(ref.source) else self._foreign_keys.get(ref)
        if cached is None:
            cached = self.connector(ref.source).foreign_keys(ref.schema, ref.table)
            with self._lock:
                self._foreign_keys[ref] = cached
        return cached

    def statistics(self, ref: TableRef) -> TableStatistics:
        """The table's ``TableStatistics`` (rows, bytes, per-column distinct, nulls, min/max, common values),
        from ``catalog.statistics.StatisticsCache``: the planner and dynamic filters read them on every
        query; the source is asked once per TTL (``statistics_cache.ttl_s`` seconds) and after a refresh of
        the source. A source that fails or does not answer within ``statistics_cache.timeout_s`` seconds
        gives unknown statistics (``TableStatistics(None, None)``) and a logged warning, never an error.
        Raises UnknownObjectError for an unknown source. A named view's are unknown."""
        if self._is_view_catalog(ref.source):
            return TableStatistics(None, None)
        return self.statistics_cache.get(ref, self.connector(ref.source))

    def refresh(self, source: str | None = None) -> None:
        """Forget the cached copy (of one source, or of all)."""
        with self._lock:
            for name in [source] if source is not None else self.list_sources():
                self._forget(name)
            self._versions[0] += 1
            for name, conn in self.connectors.items():
                if (source is None or name == source) and hasattr(conn, "refresh"):
                    conn.refresh()

    # -- background refresh ----------------------------------------------------------------------------

    def reload(self, source: str) -> bool:
        """Build a fresh whole copy of one source and swap it in. On failure the last copy stays (False)."""
        conn = self.connector(source)
        try:
            if hasattr(conn, "refresh"):
                conn.refresh()
            schemas = sorted(conn.list_schemas())
            tables = {s: sorted(conn.list_tables(s)) for s in schemas}
            refs = [TableRef(source, s, t) for s, names in tables.items() for t in names]
            columns, types = {}, {}
            for ref in refs:
                try:
                    columns[ref] = conn.table_schema(ref.schema, ref.table)
                    types[ref] = conn.table_type(ref.schema, ref.table)
                except SourceQueryError as exc:  # this table only (a file source's unreadable file)
                    log.warning("catalog: table cannot be read", extra={"source": source, "table": str(ref),
                                                                         "error": exc.message})
        except GatewayError as exc:
            log.warning("catalog refresh failed; serving the last copy", extra={"source": source,
                                                                                "error": exc.message})
            return False
        with self._source_lock(source), self._lock:
            self._forget(source)
            self._schemas[source] = schemas
            self._tables.update({(source, s): names for s, names in tables.items()})
            self._columns.update(columns)
            self._types.update(types)
            self._versions[0] += 1
        self._observe_drift(source, refs, columns)
        return True

    # -- schema drift (catalog.drift) ----------------------------------------------------------------------

    def track_drift(self, store: DriftStore, listener: Callable[[list[SchemaChange]], None] | None = None) -> None:
        """Version every table's columns in ``store`` on each ``reload``; ``listener`` (called on the
        refreshing thread) receives the changes a reload found, so that upper layers invalidate what they
        derived from the old columns (cached partitions, plans)."""
        self.drift = store
        if listener is not None:
            self._drift_listeners.append(listener)

    def _observe_drift(self, source: str, refs: list[TableRef], columns: dict) -> None:
        if self.drift is None:
            return
        tables = {(r.schema, r.table): columns[r] for r in refs if r in columns}
        unreadable = {(r.schema, r.table) for r in refs if r not in columns}
        conn = self.connector(source)

        def column_ids(key: tuple[str, str]) -> dict[str, str] | None:  # asked only for changed tables
            try:
                return conn.column_ids(*key)
            except GatewayError as exc:  # no identities this time: a rename would show as a drop and an add
                log.warning("catalog: column identities cannot be read", extra={
                    "source": source, "table": ".".join((source, *key)), "error": exc.message})
                return None

        changes = self.drift.observe(source, tables, unreadable, column_ids=column_ids)
        for change in changes:
            log.warning("schema drift", extra={"event": "schema_change", **change.to_dict()})
        if changes:
            for listener in self._drift_listeners:
                try:
                    listener(changes)
                except Exception:  # a listener's failure must not stop the refresh
                    log.exception("schema drift listener failed", extra={"source": source})

    def table_errors(self, source: str) -> dict[TableRef, str]:
        """Tables of ``source`` that are listed but cannot be read, each with the reason (a file source's
        unparseable file, a symbolic link out of its folder). Other tables of the source are not affected:
        a query reading one of these fails with SourceQueryError naming the source, the table and the
        reason. Sources without such tables (every database kind) answer ``{}``."""
        conn = self.connector(source)
        table_errors = getattr(conn, "table_errors", None)
        if table_errors is None:
            return {}
        out: dict[TableRef, str] = {}
        for schema in self.list_schemas(source):
            out.update({TableRef(source, schema, t): reason for t, reason in table_errors(schema).items()})
        return out

    def _forget(self, source: str) -> None:
        self._schemas.pop(source, None)
        for cache in (self._tables, self._columns, self._types, self._foreign_keys, self._statistics):
            for key in [k for k in cache if (k.source if isinstance(k, TableRef) else k[0]) == source]:
                del cache[key]

    @property
    def version(self) -> int:
        """Changes whenever the in-memory copy is refreshed or forgotten."""
        return self._versions[0]

    def start_background_refresh(self, interval_s: float) -> None:
        """Load every source now and every ``interval_s`` seconds on a daemon thread (0: load once)."""
        if self._refresher is not None:
            return

        def loop() -> None:
            while True:
                for source in self.list_sources():
                    if self._stop.is_set():
                        return
                    self.reload(source)
                if not interval_s or self._stop.wait(interval_s):
                    return

        self._refresher = threading.Thread(target=loop, name="catalog-refresh", daemon=True)
        self._refresher.start()

    def stop_background_refresh(self) -> None:
        self._stop.set()

    def view(self, sources: Iterable[str] | None = None, default_source: str | None = None,
             default_schema: str | None = None) -> Catalog:
        """This catalog as one principal sees it (see the module docstring). Shares the in-memory copy."""
        if sources is None and default_source is None and default_schema is None:
            return self
        return CatalogView(self, sources, default_source, default_schema)

    def available_tables(self, sources: Iterable[str] | None = None) -> tuple[list[TableRef], list[str]]:
        """Every table of the given (default: all) sources, and the sources that could not be listed."""
        refs: list[TableRef] = []
        unavailable: list[str] = []
        for source in sources if sources is not None else self.list_sources():
            try:
                for schema in self.list_schemas(source):
                    refs.extend(TableRef(source, schema, t) for t in self.list_tables(source, schema))
            except GatewayError as exc:
                log.warning("source listing failed", extra={"source": source, "error": exc.message})
                unavailable.append(source)
        return refs, unavailable


class CatalogView(Catalog):
    """A ``Catalog`` restricted to some sources, with a default source/schema for unqualified names.

    It shares the base catalog's copy and locks; only the set of sources and name resolution differ.
    """

    def __init__(self, base: Catalog, sources: Iterable[str] | None, default_source: str | None,
                 default_schema: str | None) -> None:
        self.__dict__.update(base.__dict__)
        if sources is not None:
            allowed = set(sources)
            self.connectors = {name: c for name, c in base.connectors.items() if name in allowed}
        self.default_source = default_source if default_source in self.connectors else None
        self.default_schema = default_schema

    def resolve(self, parts: Sequence[str]) -> TableRef:
        parts = [p for p in parts if p]
        if self.default_source is not None and len(parts) in (1, 2):
            schemas = self.list_schemas(self.default_source)
            if len(parts) == 2 and pick(parts[0], self.list_sources()) is None:
                schema = pick(parts[0], schemas)
                candidates = [schema] if schema else []
            elif len(parts) == 1:
                preferred = pick(self.default_schema or "", schemas)
                candidates = [preferred] if preferred else (schemas if len(schemas) == 1 else [])
            else:
                candidates = []
            for schema in candidates:
                table = pick(parts[-1], self.list_tables(self.default_source, schema))
                if table is not None:
                    return TableRef(self.default_source, schema, table)
        return super().resolve(parts)
