"""The connector SPI: what every source kind offers the catalog, the planner and the engine.

A connector knows one source: how to list and describe its tables, which pushdowns it runs with the same
semantics as DataFusion (``Capabilities``, declared once as class data), and how to run a ``Fragment``
(SQL in the source's dialect) as a stream of Arrow record batches conformed to the fragment's schema.
It knows nothing about other sources or about DataFusion's residual plan.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from connectors.literals import literal
from connectors.pool import ConnectionPool  # noqa: F401 - importable here as before

#: field metadata key marking a column the connector reads as text (its type has no exact Arrow reading in the
#: source: PostgreSQL ranges, MySQL's unsigned 64-bit decimals...); value ``b"1"``
READ_AS_TEXT = b"gateway.read_as_text"
#: past this many distinct keys, ``Connector.key_filter``'s default IN list (a sqlglot literal per key, which
#: DataFusion and SQLite parse and plan one by one) becomes a min/max range; PostgreSQL and MariaDB/MySQL render
#: key lists as text and bound them in bytes instead (``KEY_TEXT_SHARE``)
IN_LIST_LIMIT = 20_000
#: the share of the longest statement a source accepts that a dynamic filter's key list may take (the rest is
#: the fragment's own SQL): MariaDB's default max_allowed_packet of 16 MiB takes a 4 MiB list, ~500,000 keys
KEY_TEXT_SHARE = 0.25

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
        offset_without_limit: OFFSET may stand without LIMIT (MySQL/MariaDB's grammar requires a LIMIT).
        local_compute: the source computes inside this process with DataFusion (file sources): a join pushed
            there moves no rows over a network, so the planner's join-growth rule does not apply; and every
            expression is pushable (``expressions`` is not consulted): the source's session has the residual
            plan's settings and SQL dialect, so it computes what the residual plan would (TPC-H Q22 over Parquet:
            ``SUBSTRING`` kept it in three fragments, now one). Such a source's ``scan`` registers a fragment's
            ``key_tables`` (many keys of a dynamic filter, read as a semi-join) in the session it runs it in.
        float_literals: a numeric literal with a decimal point is a Float64, as in DataFusion (elsewhere it is
            an exact decimal: ``amt + 0.01`` over a decimal column differs in the last digits).
        boolean_min_max: MIN and MAX take booleans (PostgreSQL has no such aggregates).
        full_join: FULL OUTER JOIN runs natively (MySQL/MariaDB have none; sqlglot's emulation as a UNION of
            LEFT and RIGHT joins breaks an ORDER BY over it).
        temporal_as_text: dates and timestamps are stored as text (SQLite): comparing or ordering them there
            compares strings, not instants.
        binary_collation: where ``ordered_text`` is False, a collation whose order is byte order (PostgreSQL's
            ``"C"``: ``memcmp`` of UTF-8, which is code-point order, as DataFusion compares strings). Text
            ordering of plain text operands is then pushed with ``COLLATE`` that collation made explicit
            (``planner.pushdown.with_binary_collation``).
        decorrelates_subqueries: a correlated scalar sub-query runs as one grouped join, as in DataFusion.
            False where it runs once per outer row (PostgreSQL's SubPlan): a query holding one is not pushed
            whole there.
        truncated_decimal_avg: AVG of a decimal column may be pushed rewritten as DataFusion computes it, the
            scaled sum divided by the count and truncated at 4 more digits (``planner.pushdown
            .with_decimal_averages``): the source's numeric division must be exact to the digits asked for
            (PostgreSQL's numeric).
        cheap_distinct: DISTINCT over many duplicate rows costs the source less than sending them (PostgreSQL's
            hash aggregate: TPC-H Q22's 420,579 orders rows as 27,929 keys, 244 -> 169 ms). False where it costs
            what it saves (MariaDB's temporary table: 542 -> 618 ms) or rows cost nothing to send (in-process).
        cheap_grouping: GROUP BY over many rows costs the source less than sending them, so a partial aggregation
            below a cross-source join may be pushed there (``planner.federation.partial_aggregates``). False for
            MariaDB: a GROUP BY builds a temporary table, and its scans are read over parallel connections (TPC-H
            SF1 partsupp, 800,000 rows: 0.93 s sent; grouped by ps_suppkey into 10,000 groups 1.20 s, by the
            key's ps_partkey 0.91 s).
        sorted_distinct_aggregates: a DISTINCT aggregate (``COUNT(DISTINCT x)``) is computed by sorting its
            input (PostgreSQL has no hash aggregation for DISTINCT aggregates), where DataFusion hashes it on
            every core: a query holding one is pushed whole only when its input is estimated small
            (``planner.federation.whole_query.SORTED_DISTINCT_MAX_ROWS``).
        date_arithmetic: ``date - date`` is a number of days and ``date + integer`` a date, as in DataFusion.
            False where dates in arithmetic become numbers (MariaDB: ``DATE '2021-12-16' - DATE '2020-01-01'``
            is 11115, from 20211216 - 20200101) or text (SQLite).
        timestamp_arithmetic: ``timestamp - timestamp`` is the duration DataFusion computes. False where it is an
            interval that the fragment's Arrow type cannot hold (PostgreSQL) or a number (MariaDB, SQLite).
            Arithmetic with an ``INTERVAL`` operand is calendar arithmetic everywhere and is not concerned.
        limit_in_subqueries: a sub-query under IN/ANY/ALL may have a LIMIT. False for MariaDB ("This version of
            MariaDB doesn't yet support 'LIMIT & IN/ALL/ANY/SOME subquery'", error 1235).
        failing_casts: a CAST of text that is not a number to an integer fails, as in DataFusion and PostgreSQL.
            False where it gives 0 (MariaDB, SQLite): the failure the planner writes on purpose (a lookup that
            meets several rows, ``planner.top_one_subqueries``) is not pushed there.
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
    offset_without_limit: bool = True
    boolean_min_max: bool = True
    float_literals: bool = False
    local_compute: bool = False
    full_join: bool = True
    temporal_as_text: bool = False
    binary_collation: str | None = None
    decorrelates_subqueries: bool = True
    cheap_distinct: bool = False
    cheap_grouping: bool = True
    truncated_decimal_avg: bool = False
    sorted_distinct_aggregates: bool = False
    date_arithmetic: bool = True
    timestamp_arithmetic: bool = True
    limit_in_subqueries: bool = True
    failing_casts: bool = True


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
        memory_bytes: for a source that computes in this process (``Capabilities.local_compute``: DataFusion
            over files), the memory pool in bytes to run this fragment in (its operators spill to
            ``spill_path`` beyond it; what cannot spill fails); None: the source's shared session, unbounded.
            Set per run by the engine, which reserves it from the query's share of the process-wide budget.
        spill_path: the folder for that pool's spill files (None: the OS temporary folder).
        late_materialization: set per run by the engine when a key condition (a dynamic filter) keeps a small
            share of the fragment's rows and the fragment has no condition of its own: a source computing in
            this process then evaluates the condition while it decodes and decodes the other columns only for
            the rows kept (DataFusion's Parquet filter pushdown). TPC-H Q17's lineitem scan cut to 204 part keys:
            294 -> 187 ms; over conditions of its own or a wide share it loses (Q6's three ranges: 62 -> 110 ms).
        key_tables: set per run by the engine for a fetched fragment of a source that computes in this process:
            the one-column tables (``k``, keys of a dynamic filter) its semi-join restrictions
            ``c IN (SELECT "k" FROM "__keys_...")`` read, by name; such a connector registers them in the
            session it runs the fragment in (``gateway.execution.runtime_filters.key_condition``).
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
    memory_bytes: int | None = None
    spill_path: str | None = None
    late_materialization: bool = False
    key_tables: dict[str, pa.Array] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnStatistics:
    """What a source knows cheaply about one column; every number may be an estimate (see ``origin``).

    Attributes:
        distinct: estimated number of distinct non-null values (a count, not a fraction); None when unknown.
        null_fraction: fraction of rows (0..1) that are NULL; None when unknown.
        min, max: the smallest and largest non-null value as a Python value of the column's type (int,
            float, Decimal, str, date, datetime, bool); None when unknown. From a sample they bound the
            sample only.
        most_common: ``(value, frequency)`` pairs, most frequent first; frequency is a fraction of all rows.
        origin: where the numbers come from, e.g. ``pg_stats``, ``mysql.column_stats``, ``index``,
            ``parquet footer``, ``sample 10000 of ~200000 rows`` (a sample's distinct count is scaled to the
            table, an estimate).
    """

    distinct: float | None = None
    null_fraction: float | None = None
    min: object | None = None
    max: object | None = None
    most_common: tuple[tuple[object, float], ...] = ()
    origin: str = ""


@dataclass(frozen=True)
class TableStatistics:
    """Row count and size in bytes of one table, and per-column statistics, as far as the source knows
    cheaply (may be estimates). ``TableStatistics(None, None)`` means unknown.

    Attributes:
        rows: number of rows (an estimate for most sources); None when unknown.
        bytes: size on disk in bytes (table and indexes for databases, files for file sources); None when
            unknown.
        columns: column name -> ``ColumnStatistics``; columns the source knows nothing about are absent.
    """

    rows: int | None
    bytes: int | None
    columns: dict[str, ColumnStatistics] = field(default_factory=dict, hash=False, compare=True)


class Connector(ABC):
    """One source. Subclasses set ``kind``, ``dialect`` (a sqlglot dialect name) and ``capabilities``.

    ``read_per_table``: a cache freshness rule is configured for the source (``cache_ttl_s`` and/or
    ``cache_fingerprint``): its tables are read table by table, never joined or aggregated in the source and
    never restricted by dynamic filters, so that cached partitions can serve them.

    Methods raise ``connectors.errors.SourceUnavailableError`` when the source cannot be reached and
    ``SourceQueryError`` when it fails a statement; both name the source.
    """

    kind: ClassVar[str]
    dialect: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.options = options
        self.read_per_table = options.get("cache_ttl_s") is not None or bool(options.get("cache_fingerprint"))
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

    def column_ids(self, schema: str, table: str) -> dict[str, str] | None:
        """The source's own identity of each column, ``{column name: id}``, kept by the source across a
        rename of the column and never given to another column of the table (PostgreSQL: table oid and
        ``attnum``; Iceberg: table uuid and field id). Schema drift uses it to report a rename instead of a
        drop and an add (``catalog.drift``). None (the default): the source keeps no such identity."""
        return None

    def statistics(self, schema: str, table: str) -> TableStatistics:
        return TableStatistics(rows=None, bytes=None)

    def partitions(self, schema: str, table: str) -> list[str]:
        """Partition names of a table: ranges of the configured ``partition_column`` (see
        ``connectors.partitioning``), else ``["*"]``, the whole table. Reads the column's bounds once."""
        from connectors.partitioning import RangeSpec  # partitioning imports this module

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
        from connectors.partitioning import RangeSpec  # partitioning imports this module

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

    def key_filter(self, column: exp.Expression, keys: pa.Array) -> exp.Expression | None:
        """How this source wants a dynamic filter: ``column`` among ``keys`` (distinct, not null, at least one),
        as a condition in the source's SQL that keeps every row the keys match (it may keep more: the residual
        join still decides). By default ``column IN (...)``, or ``column BETWEEN min AND max`` past
        ``IN_LIST_LIMIT`` keys (``key_range``). None when no such condition can be written: a text range (the
        source may order text by another collation, which could drop rows), or a key type without a portable
        literal.

            >>> import pyarrow as pa
            >>> Connector.key_filter(None, exp.column("k", "o"), pa.array([3, 17])).sql()
            'o.k IN (3, 17)'
        """
        if len(keys) <= IN_LIST_LIMIT:
            try:
                values = [literal(v) for v in keys.to_pylist()]
            except Exception:
                return None
            return exp.In(this=column.copy(), expressions=values)
        return key_range(column, keys)

    def describe(self, fragment: Fragment) -> list[str]:
        """Lines EXPLAIN shows under the fragment about how the source will read it (lake sources: the table
        version or snapshot read, data files kept and pruned by the fragment's filter). Empty by default.
        Reads only metadata; never raises (a line says when it could not tell)."""
        return []

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

    def cancel_tagged(self, tag: str) -> int:
        """Cancel the statements running at this source whose SQL text holds ``tag`` (a comment another process
        put there: a Ray task whose worker died, ``gateway.distributed``), from this process; the number
        cancelled. 0 by default (a source without a statement to cancel). May raise the source's errors."""
        return 0


def key_range(column: exp.Expression, keys: pa.Array) -> exp.Expression | None:
    """``column BETWEEN min AND max`` of ``keys`` (not empty), a condition that keeps every row the keys match;
    None for text and binary keys (the source may order them by another collation, which could drop rows) and
    for key types without a portable literal. Whether a range prunes anything is the caller's question
    (``planner.dynamic_filters.keeps_nearly_every_row``).

        >>> import pyarrow as pa
        >>> key_range(exp.column("k"), pa.array([17, 3, 9])).sql()
        'k BETWEEN 3 AND 17'
    """
    if is_text(keys.type) or pa.types.is_binary(keys.type) or pa.types.is_large_binary(keys.type):
        return None
    bounds = pc.min_max(keys)
    try:
        low, high = literal(bounds["min"].as_py()), literal(bounds["max"].as_py())
    except Exception:
        return None
    return exp.Between(this=column.copy(), low=low, high=high)


def is_text(kind: pa.DataType) -> bool:
    """Whether an Arrow type holds text (utf8, large utf8, utf8 view)."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


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
