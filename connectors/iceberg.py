"""Apache Iceberg tables through a catalog, read with pyiceberg's scan planning.

The source names a catalog as pyiceberg names its properties: ``uri`` (``sqlite:///...`` or
``postgresql://...`` for a SQL catalog, ``http(s)://...`` for a REST catalog) and ``warehouse`` (a folder,
``file://``, ``s3://`` or ``az://`` URL where new tables' files go; the tables' own metadata says where theirs are).
Namespaces are the schemas; the current snapshot id is the fingerprint; the cache's partitions of a partitioned
table are the data-file sets of its partition values (``connectors.iceberg_partitions``); a fragment is run as:

1. for each table it reads, an Iceberg scan with the fragment's columns and a row filter built from its
   single-table conditions (``column <op> literal``, ``IN``, ``IS [NOT] NULL``): Iceberg's planning prunes data
   files by partition transforms and manifest statistics, and pyarrow reads only the kept files, by field id
   (so renamed and added columns are followed: schema evolution);
2. the fragment's SQL in a DataFusion session of its own over those streams (joins, aggregates), so the
   semantics are DataFusion's as for file sources.

Time travel: ``FOR VERSION AS OF <snapshot id>`` / ``FOR TIMESTAMP AS OF '<ISO time>'``.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from datafusion import SessionContext
from sqlglot import exp

from connectors.base import Fragment, TableStatistics
from connectors.errors import InvalidRequestError, SourceUnavailableError, UnknownObjectError
from connectors.iceberg_partitions import PARTITION_META, PartitionPlans, partition_tasks, read_tasks
from connectors.lake import LakeConnector, first_line, session_table, utc_instant
from connectors.objectstore import ObjectStore, is_object_store


class IcebergConnector(LakeConnector):
    """An Iceberg catalog; schemas are its namespaces (nested ones joined with ``.``).

    Options: ``uri`` (the catalog), ``warehouse``, ``catalog_name`` (the name the catalog's tables were
    registered under: a SQL catalog keeps several apart by it; default the source's name), and for ``s3://``
    warehouses ``endpoint``, ``region``, ``access_key_id``, ``secret_access_key`` (else ``AWS_*`` variables), for
    ``az://container/prefix`` warehouses ``endpoint``, ``account_name``, ``account_key``, ``sas_token``,
    ``client_id``/``client_secret``/``tenant_id`` (else ``AZURE_*`` variables; the files are read as
    ``abfs://container/...`` by pyiceberg's pyarrow FileIO: tables whose metadata names
    ``abfss://container@account.dfs.core.windows.net/...`` locations are not read by it).
    """

    kind = "iceberg"

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self._catalog: Any = None
        self._plans = PartitionPlans()  # the cache's partitions of each table, per snapshot

    def _properties(self) -> dict[str, str]:
        """pyiceberg's catalog properties from the source's options."""
        uri = str(self.options["uri"])
        if uri.startswith(("http://", "https://")):
            props = {"type": "rest", "uri": uri}
        else:  # SQLAlchemy URLs: PostgreSQL through psycopg2, the driver pyiceberg[sql-postgres] installs
            props = {"type": "sql", "uri": "postgresql+psycopg2://" + uri.split("://", 1)[1]
                     if uri.startswith(("postgresql://", "postgres://")) else uri}
        warehouse = self.options.get("warehouse")
        if warehouse:
            props["warehouse"] = str(warehouse) if "://" in str(warehouse) else f"file://{os.path.abspath(warehouse)}"
            if is_object_store(str(warehouse)):
                store = ObjectStore.from_options(str(warehouse), self.options)
                props.update(warehouse=store.iceberg_warehouse(), **store.iceberg_properties())
        return props

    def catalog(self):
        """The pyiceberg catalog (created on first use). Raises SourceUnavailableError naming the source."""
        from pyiceberg.catalog import load_catalog  # optional: the [lake] extra

        with self._lock:
            if self._catalog is None:
                try:
                    name = str(self.options.get("catalog_name") or self.name)
                    self._catalog = load_catalog(name, **self._properties())
                except Exception as exc:
                    raise SourceUnavailableError(self.name, f"its catalog cannot be opened: {first_line(exc)}"
                                                 ) from exc
            return self._catalog

    def refresh(self) -> None:
        """Open the catalog anew on next use."""
        self.close()

    def close(self) -> None:
        """Release the catalog's pooled connections (a SQL catalog keeps a SQLAlchemy pool)."""
        with self._lock:
            catalog, self._catalog = self._catalog, None
        engine = getattr(catalog, "engine", None)
        if engine is not None:
            engine.dispose()

    def _call(self, what: str, fn, *args):
        try:
            return fn(*args)
        except (SourceUnavailableError, UnknownObjectError):
            raise
        except Exception as exc:
            if type(exc).__name__ in ("NoSuchTableError", "NoSuchNamespaceError"):
                raise UnknownObjectError(what, ".".join(map(str, args[0])) if args and isinstance(args[0], tuple)
                                         else str(args[0]), context=f"source '{self.name}'") from exc
            raise SourceUnavailableError(self.name, f"its catalog failed ({what}): {first_line(exc)}") from exc

    # -- metadata ------------------------------------------------------------------------------------------

    def list_schemas(self) -> list[str]:
        return sorted(".".join(ns) for ns in self._call("namespace", self.catalog().list_namespaces))

    def list_tables(self, schema: str) -> list[str]:
        return sorted(ident[-1] for ident in self._call("namespace", self.catalog().list_tables, schema))

    def table(self, schema: str, table: str):
        """The table as of its current snapshot (loaded anew: a commit since is seen)."""
        return self._call("table", self.catalog().load_table, (*schema.split("."), table))

    def table_schema(self, schema: str, table: str) -> pa.Schema:
        """The current schema by name (renamed and added columns as they are now), with plain types."""
        return _plain(self.table(schema, table).schema().as_arrow())

    def column_ids(self, schema: str, table: str) -> dict[str, str] | None:
        """``"<table uuid>:<field id>"`` per top-level column: Iceberg keeps a field's id across renames
        (``update_schema().rename_column``) and never reuses one in a table."""
        loaded = self.table(schema, table)
        return {f.name: f"{loaded.metadata.table_uuid}:{f.field_id}" for f in loaded.schema().fields}

    def statistics(self, schema: str, table: str) -> TableStatistics:
        """Rows and bytes from the current snapshot's summary (``total-records``, ``total-files-size``)."""
        snapshot = self.table(schema, table).current_snapshot()
        if snapshot is None:
            return TableStatistics(rows=0, bytes=0)
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        rows, size = summary.get("total-records"), summary.get("total-files-size")
        return TableStatistics(rows=int(rows) if rows is not None else None,
                               bytes=int(size) if size is not None else None)

    def fingerprint(self, schema: str, table: str) -> str:
        """``snapshot <id>`` of the current snapshot (every append, overwrite, delete or schema change with data
        makes a new one); ``snapshot none`` for a table without data."""
        snapshot = self.table(schema, table).current_snapshot()
        return f"snapshot {snapshot.snapshot_id if snapshot else 'none'}"

    def partitions(self, schema: str, table: str) -> list[str]:
        """The data-file set of each partition value of the current snapshot (``region=north``; see
        ``connectors.iceberg_partitions``); ``["*"]`` for an unpartitioned table or one without data."""
        loaded = self.table(schema, table)
        if loaded.spec().is_unpartitioned():
            return ["*"]
        return list(self._plans.fingerprints(loaded)) or ["*"]

    def partition_fingerprint(self, schema: str, table: str, partition: str) -> str:
        """A digest of the partition's data files (paths, sizes, record counts) and their delete files in the
        current snapshot: a commit touching only other partitions leaves it unchanged; ``""`` (no files) for a
        partition the snapshot no longer has. ``"*"``: the table's snapshot."""
        if partition == "*":
            return self.fingerprint(schema, table)
        return self._plans.fingerprints(self.table(schema, table)).get(partition, "")

    def partition_fragment(self, select: exp.Select, schema: str, table: str, partition: str, alias: str
                           ) -> exp.Select:
        """The select reading only the partition's planned data files (whatever its transform: the table node
        carries the partition, ``register_tables`` keeps that file set)."""
        if partition == "*":
            return select
        select = select.copy()
        select.find(exp.From).this.meta[PARTITION_META] = partition
        return select

    def table_expression(self, schema: str, table: str) -> exp.Table:
        return exp.table_(table, db=schema, quoted=True)

    # -- scans ---------------------------------------------------------------------------------------------

    def _snapshot_id(self, loaded, node: exp.Table) -> int | None:
        """The snapshot a table node reads: its ``FOR VERSION/TIMESTAMP AS OF``, else the current one."""
        version = node.args.get("version")
        if version is None:
            return None
        value = version.args["expression"]
        text = value.name if isinstance(value, exp.Literal) else value.sql()
        try:
            if str(version.this).upper() == "VERSION":
                snapshot = loaded.snapshot_by_id(int(text))
            else:
                when = utc_instant(text)
                snapshot = loaded.snapshot_as_of_timestamp(int(when.timestamp() * 1000))
        except ValueError as exc:
            raise InvalidRequestError(f"source '{self.name}', table '{node.name}': bad time-travel value {text}: "
                                      f"{exc}") from exc
        if snapshot is None:
            raise InvalidRequestError(f"source '{self.name}', table '{node.name}' has no snapshot "
                                      f"{str(version.this).lower()} {text}")
        return snapshot.snapshot_id

    def plan_scan(self, node: exp.Table, query: exp.Expression):
        """The Iceberg scan of one table node of ``query``: its snapshot, the columns the query uses and the row
        filter of its single-table conditions. Returns ``(scan, snapshot id, filter text)``."""
        loaded = self.table(node.db, node.name)
        snapshot_id = self._snapshot_id(loaded, node)
        schema = loaded.schema() if snapshot_id is None else loaded.scan(snapshot_id=snapshot_id).projection()
        names = [f.name for f in schema.fields]
        alias = node.alias_or_name
        single = len([t for t in query.find_all(exp.Table)]) == 1
        unqualified = not single and any(not c.table for c in query.find_all(exp.Column))
        if query.find(exp.Star) or unqualified:  # (an unqualified column of a join may be this table's)
            columns = names
        else:
            used = {c.name for c in query.find_all(exp.Column) if c.table == alias or (single and not c.table)}
            columns = [n for n in names if n in used] or names[:1]
        row_filter = _row_filter(query, node, alias, set(names), single)
        kwargs = {"selected_fields": tuple(columns), "snapshot_id": snapshot_id}
        scan = loaded.scan(row_filter=row_filter, **kwargs) if row_filter is not None else loaded.scan(**kwargs)
        current = snapshot_id or (loaded.current_snapshot().snapshot_id if loaded.current_snapshot() else None)
        return scan, current, str(row_filter) if row_filter is not None else ""

    def files_kept(self, schema: str, table: str, where: str | None = None) -> tuple[int, int]:
        """(data files the scan plans, data files of the current snapshot) under the SQL condition ``where``
        over the table's columns: what Iceberg's planning prunes by partitions and manifest statistics."""
        query = exp.select("*").from_(exp.table_(table, db=schema))
        if where:
            query = query.where(where)
        node = query.find(exp.Table)
        scan, _, _ = self.plan_scan(node, query)
        return len(list(scan.plan_files())), len(list(self.table(schema, table).scan().plan_files()))

    def describe(self, fragment: Fragment) -> list[str]:
        """For EXPLAIN, per table read: the snapshot, the row filter sent to Iceberg's planning and the data
        files it keeps, e.g. ``orders: snapshot 42, row filter EqualTo(...), 2 of 4 data files planned``."""
        lines = []
        query = fragment.ast
        for node in (query.find_all(exp.Table) if query is not None else []):
            try:
                scan, snapshot, row_filter = self.plan_scan(node, query)
                kept = len(list(scan.plan_files()))
                total = len(list(self.table(node.db, node.name).scan(snapshot_id=snapshot).plan_files()))
                lines.append(f"{node.name}: snapshot {snapshot}, row filter {row_filter or 'none'}, {kept} of "
                             f"{total} data files planned ({total - kept} pruned by partitions and manifest "
                             "statistics)")
            except Exception as exc:
                lines.append(f"{node.name}: (snapshot and files unknown: {first_line(exc)})")
        return lines

    def register_tables(self, query: exp.Expression, ctx: SessionContext, prefix: str) -> None:
        """Each table ``query`` reads as a pruned Iceberg scan streamed into ``ctx`` (which runs the fragment's
        SQL: ``LakeConnector.scan``), under a name of its own that the query's table nodes then point at."""
        ctes = {cte.alias for cte in query.find_all(exp.CTE)}
        nodes = [t for t in query.find_all(exp.Table) if t.name not in ctes and not session_table(t, ctx)]
        for node in nodes:
            scan, snapshot, _ = self.plan_scan(node, query)
            name = prefix + hashlib.sha1(f"{node.db}\0{node.name}\0{snapshot}\0{id(node)}".encode()).hexdigest()[:16]
            partition = node.meta.get(PARTITION_META)
            if partition is None:
                reader = scan.to_arrow_batch_reader()
                reader = _cast_reader(reader, _plain(reader.schema))
            else:  # one partition's data-file set (a partition fragment of the cache)
                from pyiceberg.io.pyarrow import schema_to_pyarrow  # optional: the [lake] extra

                tasks = partition_tasks(scan.table_metadata, scan.plan_files(), partition)
                reader = read_tasks(scan, tasks, _plain(schema_to_pyarrow(scan.projection())))
            ctx.register_dataset(name, ds.dataset(reader))
            node.set("version", None)
            node.set("db", None)
            node.set("this", exp.to_identifier(name, quoted=True))


def _plain_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    return t


def _plain(schema: pa.Schema) -> pa.Schema:
    """``schema`` with plain utf8/binary (what every client reads) and without Iceberg's field-id metadata."""
    return pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable) for f in schema])


def _cast_reader(reader: pa.RecordBatchReader, schema: pa.Schema) -> pa.RecordBatchReader:
    def batches():
        for batch in reader:
            yield batch.cast(schema) if batch.schema != schema else batch

    return pa.RecordBatchReader.from_batches(schema, batches())


def _row_filter(query: exp.Expression, node: exp.Table, alias: str, names: set[str], single: bool):
    """pyiceberg's row filter from the conjuncts of the WHERE of the SELECT that reads ``node`` directly which
    compare one of its columns with literals; None when there are none. Conditions kept are a superset of
    the rows the query needs (the query's own WHERE still runs). ``IS NULL`` is used only without joins (a
    row of an outer join's other side may need this table's NULLs)."""
    from pyiceberg import expressions as ice  # optional: the [lake] extra

    select = node.find_ancestor(exp.Select)
    where = select.args.get("where") if select is not None else None
    if where is None or (select.find_ancestor(exp.Select) is not None):
        return None

    def own(column) -> str | None:
        if isinstance(column, exp.Column) and (column.table == alias or (single and not column.table)) \
                and column.name in names:
            return column.name
        return None

    joined = bool(select.args.get("joins"))
    conjuncts = where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
    parts = [p for p in (_conjunct_filter(c, own, joined) for c in conjuncts) if p is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else ice.And(*parts)


def _conjunct_filter(conjunct: exp.Expression, own, joined: bool):
    """One conjunct as a pyiceberg expression, or None when it is not ``own column <op> literal(s)``."""
    from pyiceberg import expressions as ice  # optional: the [lake] extra

    kind = type(conjunct)
    if kind in _COMPARISONS:
        return _comparison_filter(conjunct, own)
    if kind is exp.In and own(conjunct.this) and not conjunct.args.get("query"):
        values = [_value(v) for v in conjunct.expressions]
        return ice.In(own(conjunct.this), values) if values and all(v is not None for v in values) else None
    if kind is exp.Is and own(conjunct.this) and isinstance(conjunct.expression, exp.Null) and not joined:
        return ice.IsNull(own(conjunct.this))
    if kind is exp.Not and isinstance(conjunct.this, exp.Is) and own(conjunct.this.this) \
            and isinstance(conjunct.this.expression, exp.Null):
        return ice.NotNull(own(conjunct.this.this))
    return None


#: the comparisons a row filter takes (``_comparison_filter``)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)


def _comparison_filter(conjunct: exp.Expression, own):
    """``own column <op> literal`` (either way round) as a pyiceberg comparison, or None."""
    from pyiceberg import expressions as ice  # optional: the [lake] extra

    comparisons = {exp.EQ: ice.EqualTo, exp.NEQ: ice.NotEqualTo, exp.LT: ice.LessThan, exp.LTE: ice.LessThanOrEqual,
                   exp.GT: ice.GreaterThan, exp.GTE: ice.GreaterThanOrEqual}
    flipped = {exp.LT: ice.GreaterThan, exp.LTE: ice.GreaterThanOrEqual, exp.GT: ice.LessThan,
               exp.GTE: ice.LessThanOrEqual, exp.EQ: ice.EqualTo, exp.NEQ: ice.NotEqualTo}
    kind = type(conjunct)
    left, right = conjunct.this, conjunct.expression
    if own(left) and _value(right) is not None:
        return comparisons[kind](own(left), _value(right))
    if own(right) and _value(left) is not None:
        return flipped[kind](own(right), _value(left))
    return None


def _value(node: exp.Expression):
    """A literal's Python value (numbers, strings, booleans); None for anything else."""
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        value = _value(node.this)
        return -value if value is not None else None
    if not isinstance(node, exp.Literal):
        return None
    if node.is_string:
        return node.this
    try:
        return int(node.this)
    except ValueError:
        return float(node.this)
