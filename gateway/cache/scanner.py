"""Cache-aware scans: a fragment over a cached source is split into its table's partitions.

For a single-table fragment (projection and filters; no LIMIT/ORDER BY) of a source with a freshness rule
(``cache_ttl_s`` and/or ``cache_fingerprint``), each partition the fragment's filter can touch is:

- **cached**: served from ``gateway.cache.PartitionCache`` when fresh: only the zones of rows its zone map
  (``gateway.cache.pruning``: min/max per ``ZONE_ROWS`` rows) cannot rule out for the fragment's WHERE, dynamic
  filters included, filtered locally in DataFusion with that WHERE;
- **admitted**: read often enough (``cache.admit_after`` uses) -> fetched whole (the fragment's columns,
  no filter but the partition's), stored, then filtered locally; concurrent queries share one fetch;
- **fetched**: otherwise pushed down to the source as the fragment restricted to that partition.

When no partition is cached or admitted the fragment runs unchanged (one statement, as without a cache).
``native_view`` gives a residual plan a fragment whose partitions are all cached as a view over the kept zones in
its own session (read in place: no copy, no spill, the filter planned with the rest of the query).
Freshness per query: ``max_staleness_s`` (a client's bound) overrides the source's ``cache_ttl_s``;
``max_staleness_s = 0`` serves a partition only when the source's fingerprint proves nothing changed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from datafusion import DataFrame, SessionContext
from sqlglot import exp

from catalog import Catalog, TableRef
from connectors.arrow.datafusion import TARGET_PARTITIONS, plain_schema, session
from connectors.arrow.streams import conformed_reader
from connectors.base import READ_AS_TEXT, Fragment
from connectors.files_sessions import conformed_view
from gateway.cache.pruning import ZONE_ROWS, ZoneMap
from gateway.cache.store import CachedPartition, PartitionCache, PartitionKey
from gateway.errors import InvalidRequestError
from gateway.settings import Settings
from planner.dialects import RESIDUAL_DIALECT

log = logging.getLogger(__name__)


@dataclass
class PartitionUse:
    """How one partition of a fragment was served: ``cached`` (with its age in seconds), ``admitted``
    (fetched whole and cached now) or ``fetched`` (pushed down with the fragment's filter). ``rows``: the
    partition's rows; ``zones``: for a cached one, ``"kept K of N zones"`` (the zones of ``ZONE_ROWS`` rows whose
    min/max the fragment's filter, dynamic filters included, could not rule out; only those are filtered);
    ``fetched_at``: for a cached one, when its fetch began (epoch seconds, the cache entry's own stamp: the same
    for every answer it serves, where ``age_s`` moves with the clock)."""

    partition: str
    status: str
    age_s: float | None = None
    rows: int | None = None
    zones: str | None = None
    fetched_at: float | None = None


@dataclass
class _Scan:
    """What a cacheable fragment reads: one table; it returns ``outputs``, filtered by ``where``; the cache
    keeps ``cached`` (the outputs and the filter's columns, as the catalog types them)."""

    schema: str
    table: str
    alias: str
    outputs: list[str]
    cached: pa.Schema
    where: exp.Expression | None
    select: exp.Select
    uses: list[PartitionUse] = field(default_factory=list)


class CachedScanner:
    """Scans fragments through the partition cache (or straight from the source when not cacheable)."""

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        cfg = settings.cache
        self.cache = PartitionCache(
            cfg.memory_bytes, cfg.disk_path, cfg.disk_bytes if cfg.disk_path else 0,
            admit_after=cfg.admit_after, admission_window_s=cfg.admission_window_s,
        )
        self._sources = {s.name: s for s in settings.sources}
        # (source, schema, table, partition) -> column sets stored, so a query needing fewer columns
        # can be served by an entry holding more (e.g. one warmed with all columns)
        self._stored: dict[tuple, set[tuple[str, ...]]] = {}
        # zone maps of cached tables, by the key of the entry that holds the table (checked by identity: a new
        # version of the entry is a new table and gets a new map)
        self._zones: dict[PartitionKey, tuple[weakref.ref, ZoneMap]] = {}
        self.zone_rows = ZONE_ROWS  # rows per zone of the maps made from now on
        self._zones_lock = threading.Lock()
        for entry in self.cache.status()["entries"]:
            self._remember(PartitionKey(entry["source"], entry["schema"], entry["table"], entry["partition"],
                                        tuple(entry["columns"])))

    def cached_source(self, source: str) -> bool:
        """Whether the source's partitions may be cached (``Connector.read_per_table``: a freshness rule)."""
        return source in self._sources and self.catalog.connector(source).read_per_table

    def _freshness(self, source: str, max_staleness_s: float | None):
        config = self._sources[source]
        bound = max_staleness_s if max_staleness_s is not None else config.cache_ttl_s
        check = config.cache_fingerprint or bound == 0
        return bound, check

    def _cacheable(self, fragment: Fragment, force: bool = False, semi_joins: bool = False) -> _Scan | None:
        """What a single-table fragment of a cached source reads, or None. ``semi_joins``: a dynamic filter's
        ``c IN (SELECT k FROM <keys table>)`` is allowed (read in place, where the keys table is registered)."""
        select = fragment.ast
        if not isinstance(select, exp.Select) or len(fragment.tables) != 1:
            return None
        if not (force or self.cached_source(fragment.source)):
            return None
        if any(select.args.get(k) for k in ("joins", "group", "having", "order", "limit", "offset", "distinct")):
            return None
        table = select.find(exp.From).this
        if not isinstance(table, exp.Table) or table.args.get("version") or select.find(exp.AggFunc, exp.Window):
            return None
        if any(not (semi_joins and _keys_semi_join(s)) for s in select.find_all(exp.Subquery)):
            return None
        source, schema, name = fragment.tables[0].split(".", 2)
        where = select.args.get("where")
        where = where.this if where else None
        needed = set(fragment.schema.names) | {c.name for c in (where.find_all(exp.Column) if where else [])
                                               if c.find_ancestor(exp.Subquery) is None}
        table_schema = self.catalog.table_schema(TableRef(source, schema, name))
        cached = pa.schema([f for f in table_schema if f.name in needed])
        return _Scan(schema, name, table.alias_or_name, fragment.schema.names, cached, where, select)

    def partitions_of(self, fragment: Fragment) -> list[str] | None:
        """The partitions a cacheable fragment reads (pruned by its filter), or None when not cacheable."""
        scan = self._cacheable(fragment)
        if scan is None:
            return None
        return self._pruned(fragment.source, scan)

    def _pruned(self, source: str, scan: _Scan) -> list[str]:
        from connectors.partitioning import RangeSpec  # partitioned sources only

        connector = self.catalog.connector(source)
        names = connector.partitions(scan.schema, scan.table)
        spec = RangeSpec.from_options(connector.options)
        if spec is None or scan.where is None:
            return names
        low, high, nulls_possible = _bounds(scan.where, spec.column)
        return [n for n in names if (n != spec.null_partition or nulls_possible) and spec.overlaps(n, low, high)]

    def describe(self, fragment: Fragment, max_staleness_s: float | None = None) -> list[str]:
        """For EXPLAIN: each partition of a cacheable fragment marked ``cached (age s)`` or ``fetched``."""
        scan = self._cacheable(fragment)
        if scan is None:
            return []
        bound, _ = self._freshness(fragment.source, max_staleness_s)
        marks = []
        for partition in self._pruned(fragment.source, scan):
            key = self._key(fragment.source, scan, partition)
            hit = self._lookup(key, bound, None)[0] if bound != 0 else None
            marks.append(f"{partition}: cached ({hit.age_s():.1f}s old)" if hit else f"{partition}: fetched")
        return marks

    @staticmethod
    def _key(source: str, scan: _Scan, partition: str) -> PartitionKey:
        return PartitionKey(source, scan.schema, scan.table, partition, tuple(scan.cached.names))

    def _remember(self, key: PartitionKey) -> None:
        self._stored.setdefault((key.source, key.schema, key.table, key.partition), set()).add(key.columns)

    def _lookup(self, key: PartitionKey, bound, fingerprint):
        """A fresh entry for ``key``, or for the same partition with more columns (projected)."""
        hit = self.cache.lookup(key, max_staleness_s=bound, current_fingerprint=fingerprint)
        if hit is not None:
            return hit, hit.table
        needed = set(key.columns)
        for columns in sorted(self._stored.get((key.source, key.schema, key.table, key.partition), ()), key=len):
            if columns != key.columns and needed <= set(columns):
                wider = PartitionKey(key.source, key.schema, key.table, key.partition, columns)
                hit = self.cache.lookup(wider, max_staleness_s=bound, current_fingerprint=fingerprint)
                if hit is not None:
                    return hit, hit.table.select(list(key.columns))
        return None, None

    def zone_map(self, hit: CachedPartition) -> ZoneMap:
        """The zone map of a cached partition's table (made once per stored table; statistics per column on
        first use). It also describes any projection of that table (same rows)."""
        with self._zones_lock:
            known = self._zones.get(hit.key)
            if known is not None and known[0]() is hit.table:
                return known[1]
            zones = ZoneMap(hit.table, self.zone_rows)
            for key in [k for k, (ref, _) in self._zones.items() if ref() is None]:
                del self._zones[key]  # maps of tables no longer cached
            self._zones[hit.key] = (weakref.ref(hit.table), zones)
            return zones

    def _kept(self, hit: CachedPartition, table: pa.Table, scan: _Scan) -> tuple[list[pa.Table], str]:
        """The zones of ``table`` (``hit``'s table or a projection of it) that the fragment's filter may keep,
        as zero-copy slices, and ``"kept K of N zones"``."""
        zones = self.zone_map(hit)
        keep = zones.keep(scan.where, scan.alias)
        return list(zones.slices(table, keep)), f"kept {sum(keep)} of {zones.zones} zones"

    def warm(self, fragment: Fragment) -> list[PartitionUse]:
        """Fetch and store every partition a cacheable fragment reads (``gateway cache warm``)."""
        scan = self._cacheable(fragment, force=True)
        if scan is None:
            raise InvalidRequestError(f"'{', '.join(fragment.tables)}' cannot be cached (not a single-table read)")
        connector = self.catalog.connector(fragment.source)
        uses = []
        for partition in self._pruned(fragment.source, scan):
            key = self._key(fragment.source, scan, partition)

            def current(partition=partition) -> str:
                return connector.partition_fingerprint(scan.schema, scan.table, partition)

            table, _ = self.cache.get_or_fetch(
                key, lambda p=partition, fp=current: self._fetch_whole(fragment, scan, p, fp),
                max_staleness_s=0, current_fingerprint=current, force_admit=True,
            )
            self._remember(key)
            uses.append(PartitionUse(partition, "warmed", 0.0, table.num_rows))
        return uses

    def scan(self, fragment: Fragment, max_staleness_s: float | None = None,
             uses: list[PartitionUse] | None = None) -> pa.RecordBatchReader:
        """Stream ``fragment``, conformed to its schema, using cached partitions where fresh.

        ``uses`` (if given) receives one PartitionUse per partition read. Raises what the connector raises.
        """
        connector = self.catalog.connector(fragment.source)
        scan = self._cacheable(fragment)
        if scan is None:
            return connector.scan(fragment)
        bound, check = self._freshness(fragment.source, max_staleness_s)
        local: list[pa.Table] = []
        remote: list[str] = []
        plan: list[PartitionUse] = []
        for partition in self._pruned(fragment.source, scan):
            key = self._key(fragment.source, scan, partition)

            def current(partition=partition) -> str:
                return connector.partition_fingerprint(scan.schema, scan.table, partition)

            fingerprint = current if check else None
            hit, table = self._lookup(key, bound, fingerprint)
            if hit is not None:
                kept, zones = self._kept(hit, table, scan)
                local.extend(kept)
                plan.append(PartitionUse(partition, "cached", hit.age_s(), table.num_rows, zones, hit.fetched_at))
                continue
            if self.cache.record_access(key):
                table, served = self.cache.get_or_fetch(
                    key, lambda p=partition, fp=current: self._fetch_whole(fragment, scan, p, fp),
                    max_staleness_s=bound, current_fingerprint=fingerprint,
                )
                self._remember(key)
                local.append(table)
                plan.append(PartitionUse(partition, "cached" if served else "admitted", None, table.num_rows))
                continue
            remote.append(partition)
            plan.append(PartitionUse(partition, "fetched"))
        if uses is not None:
            uses.extend(plan)
        if len(remote) == len(plan):
            return connector.scan(fragment)  # nothing from the cache: the fragment as planned
        readers = [self._filter_locally(fragment, scan, local)]
        for partition in remote:
            restricted = connector.partition_fragment(
                scan.select.copy(), scan.schema, scan.table, partition, scan.alias
            )
            readers.append(connector.scan(dataclasses.replace(
                fragment, ast=restricted, sql=restricted.sql(dialect=fragment.dialect)
            )))
        return pa.RecordBatchReader.from_batches(fragment.schema, _chain(readers))

    def cached_partition(self, fragment: Fragment, partition: str, max_staleness_s: float | None = None
                         ) -> tuple[pa.Table | None, PartitionUse]:
        """One partition of a cacheable fragment as the cache serves it when fresh (freshness as ``scan``): its
        rows after the fragment's own filter, in the fragment's schema, and ``PartitionUse`` ``cached``; else
        ``(None, fetched)``. Never fetches nor admits (``gateway.distributed`` reads the others as Ray tasks)."""
        scan = self._cacheable(fragment)
        if scan is None:
            return None, PartitionUse(partition, "fetched")
        connector = self.catalog.connector(fragment.source)
        bound, check = self._freshness(fragment.source, max_staleness_s)

        def current() -> str:
            return connector.partition_fingerprint(scan.schema, scan.table, partition)

        hit, table = self._lookup(self._key(fragment.source, scan, partition), bound, current if check else None)
        if hit is None:
            return None, PartitionUse(partition, "fetched")
        kept, zones = self._kept(hit, table, scan)
        rows = self._filter_locally(fragment, scan, kept).read_all()
        return rows, PartitionUse(partition, "cached", hit.age_s(), table.num_rows, zones, hit.fetched_at)

    def native_view(self, fragment: Fragment, ctx: SessionContext, max_staleness_s: float | None = None,
                    uses: list[PartitionUse] | None = None) -> DataFrame | None:
        """The fragment read in place by the residual session ``ctx`` when every partition it reads is cached
        and fresh (freshness as ``scan``): the kept zones of the cached partitions (pruned by the fragment's
        filter, its dynamic filters included, even a semi-join against a keys table already registered in
        ``ctx``) registered there as an in-memory table of ``TARGET_PARTITIONS`` partitions, and the fragment's
        projection and filter over it as a DataFrame with ``fragment.schema``'s names and types. Nothing is
        copied: DataFusion plans the filter with the rest of the query. None (nothing registered, ``uses``
        untouched) when the fragment is not cacheable or a partition is not served from the cache; the caller
        then fetches it (``scan``). ``uses`` receives one ``cached`` PartitionUse per partition."""
        scan = self._cacheable(fragment, semi_joins=True)
        if scan is None:
            return None
        connector = self.catalog.connector(fragment.source)
        bound, check = self._freshness(fragment.source, max_staleness_s)
        tables = _key_tables(ctx, scan.where)
        kept: list[pa.Table] = []
        plan: list[PartitionUse] = []
        for partition in self._pruned(fragment.source, scan):

            def current(partition=partition) -> str:
                return connector.partition_fingerprint(scan.schema, scan.table, partition)

            hit, table = self._lookup(self._key(fragment.source, scan, partition), bound, current if check else None)
            if hit is None:
                return None
            zones = self.zone_map(hit)
            keep = zones.keep(scan.where, scan.alias, tables)
            kept.extend(zones.slices(table, keep))
            plan.append(PartitionUse(partition, "cached", hit.age_s(), table.num_rows,
                                     f"kept {sum(keep)} of {zones.zones} zones", hit.fetched_at))
        if not plan:
            return None
        name = f"__cached_{fragment.id}"
        _register(ctx, name, kept, plain_schema(scan.cached))
        df = ctx.sql(self._local_select(scan, name).sql(dialect=RESIDUAL_DIALECT))
        if df.schema().names != fragment.schema.names:
            return None
        if uses is not None:
            uses.extend(plan)
        return conformed_view(df, df.schema(), plain_schema(fragment.schema))

    def _fetch_whole(self, fragment: Fragment, scan: _Scan, partition: str, fingerprint) -> tuple[pa.Table, str]:
        """The partition's rows of the fragment's columns, no other filter; fingerprint read first."""
        connector = self.catalog.connector(fragment.source)
        token = fingerprint()
        projections = []
        for f in scan.cached:
            column: exp.Expression = exp.column(f.name, table=scan.alias, quoted=True)
            if f.metadata and f.metadata.get(READ_AS_TEXT) == b"1":
                column = exp.cast(column, "TEXT")
            projections.append(exp.alias_(column, f.name, quoted=True))
        whole = exp.select(*projections).from_(scan.select.find(exp.From).this.copy())
        restricted = connector.partition_fragment(whole, scan.schema, scan.table, partition, scan.alias)
        reader = connector.scan(dataclasses.replace(
            fragment, ast=restricted, sql=restricted.sql(dialect=fragment.dialect), schema=scan.cached,
        ))
        return reader.read_all(), token

    def _filter_locally(self, fragment: Fragment, scan: _Scan, tables: list[pa.Table]) -> pa.RecordBatchReader:
        """The fragment's filter applied by DataFusion to cached partitions (in parallel partitions)."""
        schema = fragment.schema
        cached = plain_schema(scan.cached)
        if scan.where is None and scan.outputs == cached.names:  # nothing to filter: stream the partitions
            return pa.RecordBatchReader.from_batches(schema, (b for t in tables for b in t.cast(schema).to_batches()))
        ctx = session()
        _register(ctx, "__cached", tables, cached)
        df = ctx.sql(self._local_select(scan, "__cached").sql(dialect=RESIDUAL_DIALECT))
        return conformed_reader(schema, (batch.to_pyarrow() for batch in df.execute_stream()))

    @staticmethod
    def _local_select(scan: _Scan, name: str) -> exp.Select:
        """``SELECT <outputs> FROM "<name>" AS <alias> [WHERE <the fragment's filter>]``."""
        local = exp.select(*(exp.column(c, table=scan.alias, quoted=True) for c in scan.outputs)).from_(
            exp.Table(this=exp.to_identifier(name, quoted=True),
                      alias=exp.TableAlias(this=exp.to_identifier(scan.alias, quoted=True)))
        )
        return local.where(scan.where.copy()) if scan.where is not None else local


def _register(ctx: SessionContext, name: str, tables: list[pa.Table], schema: pa.Schema) -> None:
    """``tables`` (cast to ``schema``) as the in-memory table ``name`` of ``ctx``: their batches dealt over
    ``TARGET_PARTITIONS`` partitions, so that DataFusion scans them in parallel."""
    batches = [b for t in tables for b in t.cast(schema).to_batches() if b.num_rows]
    parts = [batches[i::TARGET_PARTITIONS] for i in range(TARGET_PARTITIONS)]
    ctx.register_record_batches(name, [p for p in parts if p] or [[_empty_batch(schema)]])


def _keys_semi_join(subquery: exp.Subquery) -> bool:
    """Whether ``subquery`` is the right side of a dynamic filter's ``c IN (SELECT k FROM <keys table>)``."""
    select = subquery.this
    parent = subquery.parent
    return (isinstance(parent, exp.In) and parent.args.get("query") is subquery and isinstance(select, exp.Select)
            and len(select.expressions) == 1 and isinstance(select.expressions[0], exp.Column)
            and not any(select.args.get(k) for k in ("where", "joins", "group", "having", "limit"))
            and isinstance(select.args.get("from_") and select.args["from_"].this, exp.Table))


def _key_tables(ctx: SessionContext, where: exp.Expression | None) -> dict[str, pa.Array]:
    """The keys of each semi-join restriction (``x IN (SELECT k FROM __keys_...)``) in ``where`` whose table is
    registered in ``ctx`` (``gateway.execution.runtime_filters.keys_batch``), by table name."""
    found: dict[str, pa.Array] = {}
    for node in where.find_all(exp.In) if where is not None else ():
        query = node.args.get("query")
        table = query.find(exp.Table) if query is not None else None
        if table is not None and table.name not in found and ctx.table_exist(table.name):
            keys = ctx.table(table.name).to_arrow_table()
            if keys.num_columns == 1:
                found[table.name] = keys.column(0).combine_chunks()
    return found


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


def _chain(readers: list[pa.RecordBatchReader]) -> Iterator[pa.RecordBatch]:
    for reader in readers:
        yield from reader


def _bounds(where: exp.Expression, column: str):
    """(low, high, nulls_possible) the conjuncts of ``where`` put on ``column`` (ISO text or ints); ``high``
    is inclusive (a ``< x`` bound becomes ``(x, False)`` and is compared as such by the caller)."""
    low = high = None
    high_inclusive = True
    nulls_possible = True
    conjuncts = list(where.flatten()) if isinstance(where, exp.And) else [where]
    for c in conjuncts:
        if isinstance(c, exp.GT | exp.GTE | exp.LT | exp.LTE | exp.EQ) and isinstance(c.this, exp.Column) \
                and c.this.name == column:
            value = _value(c.expression)
            if value is None:
                continue
            nulls_possible = False
            low, high, high_inclusive = _tightened(c, value, low, high, high_inclusive)
        elif isinstance(c, exp.Between) and isinstance(c.this, exp.Column) and c.this.name == column:
            lo, hi = _value(c.args.get("low")), _value(c.args.get("high"))
            if lo is not None and hi is not None:
                nulls_possible = False
                low, high, high_inclusive = lo, hi, True
    return low, (high, high_inclusive) if high is not None else None, nulls_possible



def _tightened(comparison: exp.Expression, value, low, high, high_inclusive: bool) -> tuple:
    """(low, high, high_inclusive) of ``_bounds`` after one comparison of the column with ``value``."""
    if isinstance(comparison, exp.GT | exp.GTE | exp.EQ):
        low = value if low is None or value > low else low
    if isinstance(comparison, exp.LT | exp.LTE | exp.EQ) and (high is None or value <= high):
        high_inclusive = not isinstance(comparison, exp.LT) if high is None or value < high else (
            high_inclusive and not isinstance(comparison, exp.LT))
        high = value
    return low, high, high_inclusive

def _value(node: exp.Expression | None):
    """A literal's value as comparable ISO text (dates) or int; None when not a plain literal."""
    if isinstance(node, exp.Cast):
        node = node.this
    if not isinstance(node, exp.Literal):
        return None
    if node.is_string:
        try:
            return dt.date.fromisoformat(node.name[:10]).isoformat() + node.name[10:]
        except ValueError:
            return None
    try:
        return int(node.name)
    except ValueError:
        return None
