"""The connector SPI: what every source kind offers the catalog, the planner and the engine.

A connector knows one source: how to list and describe its tables, which pushdowns it runs with the same
semantics as DataFusion (``Capabilities``, declared once as class data), and how to run a ``Fragment``
(SQL in the source's dialect) as a stream of Arrow record batches conformed to the fragment's schema.
It knows nothing about other sources or about DataFusion's residual plan.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

# Expression classes whose meaning is the same in every SQL engine we federate (and in DataFusion), given
# operands of the same types. Per-source sets add to or remove from this (see each connector).
PORTABLE_EXPRESSIONS: frozenset[type[exp.Expression]] = frozenset({
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Alias, exp.Star,
    exp.And, exp.Or, exp.Not,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between,
    exp.Add, exp.Sub, exp.Mul, exp.Neg, exp.Like, exp.Case, exp.If, exp.Coalesce,
    exp.Cast, exp.DataType, exp.Tuple,
    exp.Parameter,  # bound to a typed literal before the fragment runs
})

# Query-shape nodes that a source must accept to run a whole query (not only a scan with filters).
QUERY_SHAPE_EXPRESSIONS: frozenset[type[exp.Expression]] = frozenset({
    exp.Select, exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit,
    exp.Offset, exp.Table, exp.TableAlias, exp.Subquery, exp.Distinct, exp.Exists,
    exp.Count, exp.Sum, exp.Min, exp.Max,
})


@dataclass(frozen=True)
class Capabilities:
    """Which pushdowns a source runs exactly as the local plan would (Trino-style opt-in, per operation).

    Attributes:
        projection: can select a subset of columns.
        filter: can evaluate single-table predicates built from ``expressions``.
        limit: can apply LIMIT to a scan.
        full_query: can run a whole single-source query (joins, GROUP BY, ORDER BY) built from
            ``expressions`` plus the query-shape nodes.
        expressions: sqlglot expression classes the source evaluates with DataFusion's semantics.
        ordered_text: text ordering (``<``, ORDER BY, MIN/MAX on strings) is byte order, as in DataFusion.
            False where a collation can differ (PostgreSQL's database collation).
        case_sensitive_like: LIKE is case-sensitive, as in DataFusion (SQLite's LIKE is not).
        exact_float_sum: floating-point SUM/AVG may be pushed (summation order changes the result).
        text_equality: text equality, grouping and DISTINCT are byte-wise, as in DataFusion. False where the
            default collation ignores case, accents or trailing spaces (MySQL/MariaDB ``*_ci``).
        top_n: ORDER BY + LIMIT on one table may be pushed (NULL ordering is made explicit).
        key_arrays: a dynamic filter's integer keys may be sent as one array literal,
            ``col = ANY(CAST('{1,2,...}' AS BIGINT[]))`` (PostgreSQL: parsed as one constant and probed by
            hash or index; measured 2x faster than the same keys as an IN list at 29,000 keys).
        offset_without_limit: OFFSET may stand without LIMIT (MySQL/MariaDB's grammar requires a LIMIT).
        float_literals: a numeric literal with a decimal point is a Float64, as in DataFusion (elsewhere it is
            an exact decimal: ``amt + 0.01`` over a decimal column differs in the last digits).
        boolean_min_max: MIN and MAX take booleans (PostgreSQL has no such aggregates).
        full_join: FULL OUTER JOIN runs natively (MySQL/MariaDB have none; sqlglot's emulation as a UNION of
            LEFT and RIGHT joins breaks an ORDER BY over it).
    """

    projection: bool = True
    filter: bool = True
    limit: bool = True
    full_query: bool = False
    expressions: frozenset[type[exp.Expression]] = PORTABLE_EXPRESSIONS
    ordered_text: bool = True
    case_sensitive_like: bool = True
    exact_float_sum: bool = False
    text_equality: bool = True
    top_n: bool = True
    key_arrays: bool = False
    offset_without_limit: bool = True
    boolean_min_max: bool = True
    float_literals: bool = False
    full_join: bool = True


@dataclass
class Fragment:
    """A pushed-down sub-query for one source.

    Attributes:
        id: name of the fragment in the residual plan (``f0``, ``f1``, ...).
        source: the source's name in the catalog.
        sql: the SQL text in the source's dialect.
        schema: the Arrow schema of the fragment's output; the connector conforms (casts) the source's
            batches to it, so the residual plan sees the catalog's types.
        tables: ``source.schema.table`` names read by the fragment.
        partitions: partitions read (``["*"]`` for the whole table).
        pushed: human-readable list of what was pushed (projection, filter, limit, whole query).
        estimated_rows: rows the planner expects, when the catalog has statistics.
        ast: the fragment as a sqlglot expression (``sql`` is its rendering in ``dialect``); it may hold
            ``$n`` parameters until the plan is bound (``planner.plan.bind``).
        dialect: the sqlglot dialect ``sql`` is written in.
    """

    id: str
    source: str
    sql: str
    schema: pa.Schema
    tables: list[str]
    partitions: list[str] = field(default_factory=lambda: ["*"])
    pushed: list[str] = field(default_factory=list)
    estimated_rows: int | None = None
    ast: exp.Expression | None = None
    dialect: str = ""


@dataclass(frozen=True)
class TableStatistics:
    """Row count and size in bytes of one table, as far as the source knows cheaply (may be estimates)."""

    rows: int | None
    bytes: int | None


class Connector(ABC):
    """One source. Subclasses set ``kind``, ``dialect`` (a sqlglot dialect name) and ``capabilities``.

    Methods raise ``connectors.errors.SourceUnavailableError`` when the source cannot be reached and
    ``SourceQueryError`` when it fails a statement; both name the source.
    """

    kind: ClassVar[str]
    dialect: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.options = options
        self.scans = 0  # fragments run against the source (tests and metrics read it)

    @abstractmethod
    def list_schemas(self) -> list[str]:
        """Schema names, sorted."""

    @abstractmethod
    def list_tables(self, schema: str) -> list[str]:
        """Table (and view) names of one schema, sorted."""

    @abstractmethod
    def table_schema(self, schema: str, table: str) -> pa.Schema:
        """The table's columns as an Arrow schema, with the connector's explicit type mapping."""

    def table_type(self, schema: str, table: str) -> str:
        """``TABLE`` or ``VIEW`` (Flight SQL table_type)."""
        return "TABLE"

    def primary_key(self, schema: str, table: str) -> list[str]:
        """Primary-key column names in key order; empty when none or unknown."""
        return []

    def statistics(self, schema: str, table: str) -> TableStatistics:
        return TableStatistics(rows=None, bytes=None)

    def partitions(self, schema: str, table: str) -> list[str]:
        """Partition names of a table: ranges of the configured ``partition_column`` (see
        ``connectors.partitioning``), else ``["*"]``, the whole table. Reads the column's bounds once."""
        from connectors.partitioning import RangeSpec

        spec = RangeSpec.from_options(self.options)
        if spec is None:
            return ["*"]
        known = self.__dict__.setdefault("_partition_names", {})
        if (schema, table) not in known:
            column = exp.column(spec.column, quoted=True)
            probe = exp.select(exp.Min(this=column).as_("lo"), exp.Max(this=column.copy()).as_("hi")).from_(
                self.table_expression(schema, table)
            )
            bounds = self.fetch_table(probe.sql(dialect=self.dialect)).to_pylist()[0]
            known[(schema, table)] = spec.names(bounds["lo"], bounds["hi"])
        return known[(schema, table)]

    def partition_fragment(self, select: exp.Select, schema: str, table: str, partition: str, alias: str
                           ) -> exp.Select:
        """``select`` (a scan of this one table, aliased ``alias``) restricted to ``partition``."""
        if partition == "*":
            return select
        from connectors.partitioning import RangeSpec

        spec = RangeSpec.from_options(self.options)
        arrow_type = self.table_schema(schema, table).field(spec.column).type
        return select.where(spec.predicate(partition, alias, arrow_type))

    def fingerprint(self, schema: str, table: str) -> str:
        """A cheap token that changes when the table's data changes; empty when unknown."""
        return ""

    def partition_fingerprint(self, schema: str, table: str, partition: str) -> str:
        """The fingerprint of one partition; by default the table's."""
        return self.fingerprint(schema, table)

    def fetch_table(self, sql: str) -> pa.Table:
        """Run a small metadata query in the source's dialect and return all its rows."""
        raise NotImplementedError(f"{type(self).__name__} runs no metadata queries")

    @abstractmethod
    def table_expression(self, schema: str, table: str) -> exp.Table:
        """How a fragment's SQL names the table in this source (e.g. ``"public"."orders"``)."""

    @abstractmethod
    def scan(self, fragment: Fragment) -> pa.RecordBatchReader:
        """Run ``fragment.sql`` and stream its rows, conformed to ``fragment.schema``."""

    def native_view(self, fragment: Fragment, ctx: Any) -> Any | None:
        """For sources DataFusion reads in place (files): register the fragment's tables in the residual
        session ``ctx`` and return the fragment as a ``datafusion.DataFrame`` (a view the residual plan
        optimises together with its own operators: projection, filters, join-driven pruning). None (the
        default): the fragment is fetched by ``scan``. Raises SourceQueryError naming the source."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook; most connectors hold nothing to release
        """Release pooled connections."""

    # -- foreign keys and cancellation (Flight SQL GetImportedKeys/ExportedKeys, CancelFlightInfo) ----------

    def foreign_keys(self, schema: str, table: str) -> list[ForeignKey]:
        """The table's foreign keys (the keys it imports), each with its columns in key order."""
        return []

    def cancel(self, fragment: Fragment) -> None:  # noqa: B027 - optional hook
        """Cancel ``fragment``'s statement if it is running (from another thread); a no-op by default."""


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of one table: ``columns`` reference ``ref_columns`` of ``ref_schema.ref_table`` (same
    source), pairwise in key order. Rules are SQL words: CASCADE, RESTRICT, SET NULL, NO ACTION, SET DEFAULT."""

    name: str | None
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    update_rule: str = "NO ACTION"
    delete_rule: str = "NO ACTION"


def foreign_keys_from_rows(rows: list[dict]) -> list[ForeignKey]:
    """Group one-row-per-column rows (``name, seq, col, ref_schema, ref_table, ref_col, upd, del``), ordered
    by key and ``seq``, into ForeignKeys. Rows of one key share ``name`` (or, unnamed, an ``id``)."""
    keys: dict[object, dict] = {}
    for r in rows:
        key = keys.setdefault(r.get("id", r["name"]), {
            "name": r["name"], "columns": [], "ref_schema": r["ref_schema"], "ref_table": r["ref_table"],
            "ref_columns": [], "update_rule": (r.get("upd") or "NO ACTION").upper(),
            "delete_rule": (r.get("del") or "NO ACTION").upper(),
        })
        key["columns"].append(r["col"])
        key["ref_columns"].append(r["ref_col"])
    return [ForeignKey(**{**k, "columns": tuple(k["columns"]), "ref_columns": tuple(k["ref_columns"])})
            for k in keys.values()]


class ConnectionPool:
    """A small thread-safe pool of DB-API connections made by ``factory``; at most ``size`` kept idle."""

    def __init__(self, factory, size: int = 4) -> None:
        self._factory = factory
        self._size = size
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def acquire(self):
        """A connection: an idle one when there is one, else a new one (``factory`` errors propagate)."""
        return self.acquire_reporting()[0]

    def acquire_reporting(self) -> tuple[Any, bool]:
        """(connection, whether it was idle in the pool): a pooled connection may have died while idle (the
        server restarted), which a caller may retry once on a new one (``acquire_new``)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._factory(), False

    def acquire_new(self):
        """A new connection, never an idle one."""
        return self._factory()

    def release(self, conn, broken: bool = False) -> None:
        with self._lock:
            if not broken and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        _close_quietly(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:
        pass


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast ``batch`` column by column (by position) to ``schema``, renaming to its field names.

    Extension types (PostgreSQL numeric arrives as ``arrow.opaque`` over strings) are cast from their
    storage. Raises ``pyarrow.ArrowInvalid`` when a value does not fit the target type.
    """
    if batch.num_columns != len(schema):
        raise ValueError(f"fragment returned {batch.num_columns} columns, expected {len(schema)}")
    columns = []
    for column, target in zip(batch.columns, schema, strict=True):
        if isinstance(column.type, pa.ExtensionType):
            column = column.storage
        if column.type != target.type:
            if pa.types.is_null(column.type):
                column = pa.nulls(len(column), target.type)
            elif pa.types.is_null(target.type) and column.null_count == len(column):
                column = pa.nulls(len(column))  # a NULL output the source typed (PostgreSQL: text)
            else:
                column = pc.cast(column, target.type)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def conformed_reader(
    schema: pa.Schema, batches: Iterator[pa.RecordBatch], skip_rows: int = 0
) -> pa.RecordBatchReader:
    """A reader that conforms each batch of ``batches`` to ``schema``, dropping the first ``skip_rows``."""

    def generate() -> Iterator[pa.RecordBatch]:
        to_skip = skip_rows
        for batch in batches:
            if to_skip:
                dropped = min(to_skip, batch.num_rows)
                batch = batch.slice(dropped)
                to_skip -= dropped
            if batch.num_rows:
                yield conform_batch(batch, schema)

    return pa.RecordBatchReader.from_batches(schema, generate())


def merge_readers(openers: list[Callable[[], pa.RecordBatchReader]], schema: pa.Schema) -> pa.RecordBatchReader:
    """``merged_batches`` as a reader of ``schema``."""
    return pa.RecordBatchReader.from_batches(schema, merged_batches(openers))


def merged_batches(openers: list[Callable[[], Iterable[pa.RecordBatch]]]) -> Iterator[pa.RecordBatch]:
    """The batches of several readers (a source read in ranges over several connections): each ``opener`` is
    called on its own thread, which drains the reader it returns into a bounded queue; batches come out as
    they arrive. The first error (opening or reading) is raised to the consumer; stopping early stops the
    threads."""
    import queue

    done = object()
    out: queue.Queue = queue.Queue(maxsize=16)
    stop = threading.Event()

    def drain(opener) -> None:
        try:
            for batch in opener():
                while not stop.is_set():
                    try:
                        out.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(done)
        except BaseException as exc:  # handed to the consumer
            out.put(exc)

    threads = [threading.Thread(target=drain, args=(o,), daemon=True) for o in openers]
    for t in threads:
        t.start()

    def batches():
        finished = 0
        try:
            while finished < len(openers):
                item = out.get()
                if item is done:
                    finished += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()

    return batches()
