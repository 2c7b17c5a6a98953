"""The one explicit state the federation passes read and change: the query, its scopes and base tables, the
join groups, the fragments built so far and what was not pushed (with the reason)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from catalog import Catalog, TableRef
from connectors.arrow.datafusion import plan_over_empty
from connectors.base import READ_AS_TEXT, Connector, Fragment, TableStatistics
from planner.costs import column_lookup, estimate_fragment_rows, group_rows
from planner.dialects import RESIDUAL_DIALECT
from planner.parse import substitute_parameters
from planner.plan import NotPushed
from planner.pushdown import (
    ColumnType,
    output_projection,
    unpushable_reason,
    with_binary_collation,
    with_decimal_averages,
)


@dataclass(eq=False)
class BaseTable:
    """One occurrence of a source table in the query, in the scope that selects from it."""

    node: exp.Table
    ref: TableRef
    alias: str
    scope: Scope
    schema: pa.Schema
    columns: set[str] = field(default_factory=set)
    filters: list[exp.Expression] = field(default_factory=list)
    limit: int | None = None
    order: list[exp.Ordered] | None = None
    group: JoinGroup | None = None
    partials: list[tuple[str, exp.Expression]] | None = None  # (output name, partial aggregate) when grouped
    local: list[exp.Expression] = field(default_factory=list)  # its conjuncts that stay in DataFusion
    fragment_id: str | None = None  # the fragment that reads it (set when fragments are built)
    top_n_note: str | None = None  # why its LIMIT holds below a join (EXPLAIN's "pushed:" line), if it does
    distinct_rows: float | None = None  # read only by an existence test: its distinct rows (estimated), if deduplicated


@dataclass(eq=False)
class JoinGroup:
    """Tables of one source joined inside the source; ``conditions`` are the join conjuncts moved there."""

    members: list[BaseTable]
    conditions: list[exp.Expression]
    alias: str = ""
    estimated_rows: float | None = None  # the join's output, from the catalog's statistics


@dataclass(eq=False)
class FederationState:
    """What the passes share. ``ast`` is the query being cut (changed in place: pushed parts are replaced by
    fragment references); ``moved`` holds the ids of column nodes that moved into fragments (they no longer
    count as columns the residual reads); ``whole`` is set when the whole query went to one source."""

    catalog: Catalog
    dialect: str
    sql: str
    ast: exp.Expression
    schemas: dict[TableRef, pa.Schema]
    params: list[object] = field(default_factory=list)
    scopes: list[Scope] = field(default_factory=list)
    bases: list[BaseTable] = field(default_factory=list)
    fragments: list[Fragment] = field(default_factory=list)
    not_pushed: list[NotPushed] = field(default_factory=list)
    moved: set[int] = field(default_factory=set)
    whole: Fragment | None = None
    column_type: ColumnType = field(default=lambda column: None)
    # top-N below inner joins (pass ``top_n``): allowed (False when planning the fallback plan), and the one
    # table it was pushed into with (LIMIT + OFFSET, LIMIT): the result is checked at run time
    top_n_below_inner_joins: bool = True
    top_n_check: tuple[BaseTable, int, int] | None = None
    join_orders: list[str] = field(default_factory=list)  # FROM lists reordered by pass ``join_order``, for EXPLAIN
    _primary_keys: dict[TableRef, list[str]] = field(default_factory=dict)
    _derived_schemas: dict[int, pa.Schema | None] = field(default_factory=dict)

    @classmethod
    def of(cls, catalog: Catalog, dialect: str, sql: str, ast: exp.Expression,
           schemas: dict[TableRef, pa.Schema], params: Sequence[object] | None) -> FederationState:
        """The state of a qualified query before any pass ran (``ast`` is changed by the passes)."""
        state = cls(catalog, dialect, sql, ast, schemas, list(params or []), traverse_scope(ast))
        state.bases = base_tables(state.scopes, schemas)
        state.column_type = column_type_lookup(state.bases, derived_selects(state.scopes), state.derived_field)
        return state

    def derived_field(self, select: exp.Select, position: int) -> pa.Field | None:
        """The field DataFusion gives output ``position`` of ``select`` (a derived table's or CTE's body) over
        the catalog's schemas, typed once per state; None when it reads anything but catalog tables (a CTE, a
        fragment once a pass replaced its tables, an outer column) or DataFusion cannot plan it."""
        key = id(select)
        if key not in self._derived_schemas:
            self._derived_schemas[key] = self.oracle_schema(select)
        schema = self._derived_schemas[key]
        return schema.field(position) if schema is not None and 0 <= position < len(schema) else None

    def oracle_schema(self, expression: exp.Expression) -> pa.Schema | None:
        """The schema DataFusion gives ``expression`` over empty tables of the catalog's schemas (its tables
        renamed ``__table_<n>``), or None when it reads anything but catalog tables (a CTE defined outside, a
        fragment) or DataFusion cannot plan it."""
        oracle = self.bound(expression.copy())
        names: dict[TableRef, str] = {}
        for table in list(oracle.find_all(exp.Table)):
            if not (table.args.get("catalog") and table.args.get("db")):
                return None
            ref = TableRef(table.catalog, table.db, table.name)
            if ref not in self.schemas:
                return None
            name = names.setdefault(ref, f"__table_{len(names)}")
            table.replace(exp.Table(this=exp.to_identifier(name, quoted=True), alias=table.args.get("alias")))
        try:
            tables = {n: self.schemas[r] for r, n in names.items()}
            _, frame = plan_over_empty(oracle.sql(dialect=RESIDUAL_DIALECT), tables)
            return frame.schema()
        except Exception:  # typing is a hint for the pushdown rules: unknown stays unknown (not pushed)
            return None

    def next_id(self) -> str:
        """The id of the next fragment: ``__fragment_<n>``."""
        return f"__fragment_{len(self.fragments)}"

    def connector(self, source: str) -> Connector:
        return self.catalog.connector(source)

    def statistics(self, ref: TableRef) -> TableStatistics | None:
        """The catalog's statistics of ``ref`` (None when the source cannot give them: estimates unknown)."""
        try:
            return self.catalog.statistics(ref)
        except Exception:  # statistics only steer costs; a source that fails them plans without
            return None

    def grouped_rows(self, base: BaseTable, columns: Collection[str]) -> tuple[float, float] | None:
        """(rows the table's fragment returns after its filters, its distinct rows over ``columns``) by the
        catalog's statistics, or None without a row count and a distinct count for every column. Used by the
        passes that group or deduplicate a table in its source (``partial_aggregates``, ``distinct_keys``)."""
        statistics = self.statistics(base.ref)
        if statistics is None:
            return None
        rows = estimate_fragment_rows(statistics, exp.and_(*base.filters) if base.filters else None)
        lookup = column_lookup(statistics)
        known = [lookup(exp.column(name)) for name in columns]
        if not rows or any(c is None or c.distinct is None for c in known):
            return None
        return rows, group_rows(rows, [c.distinct for c in known])

    def primary_key(self, ref: TableRef) -> list[str]:
        """The primary-key columns of ``ref`` as its source declares them, in key order; [] when it has none or
        the source cannot tell (asked once per state)."""
        if ref not in self._primary_keys:
            try:
                self._primary_keys[ref] = list(self.connector(ref.source).primary_key(ref.schema, ref.table))
            except Exception:  # a hint for the planner: a source that cannot tell has no known key
                self._primary_keys[ref] = []
        return self._primary_keys[ref]

    def source_sql(self, ast: exp.Expression, connector: Connector) -> str:
        """``ast`` (a fragment's query) in ``connector``'s dialect, its text ordering made byte order where the
        source needs an explicit collation for that (``with_binary_collation``), its decimal averages computed as
        DataFusion does (``with_decimal_averages``); ``ast`` is changed in place."""
        with_binary_collation(ast, connector.capabilities, self.column_type)
        return with_decimal_averages(ast, connector.capabilities, self.column_type).sql(dialect=connector.dialect)

    def bound(self, expression: exp.Expression) -> exp.Expression:
        """``expression`` with its ``$n`` parameters as typed literals (for DataFusion to type it)."""
        return substitute_parameters(expression, self.params) if self.params else expression

    def unpushable(self, node: exp.Expression, source: str) -> str | None:
        """Why ``node`` cannot run in ``source`` as in DataFusion, or None."""
        return unpushable_reason(node, self.connector(source).capabilities, self.column_type)

    def not_pushed_because(self, what: str, reason: str) -> None:
        self.not_pushed.append(NotPushed(what, reason))

    def owner(self, scope: Scope | None, alias: str) -> tuple[Scope | None, BaseTable | None]:
        """The scope that defines ``alias`` as seen from ``scope``, and the base table it names (if any)."""
        while scope is not None and alias:
            if alias in scope.sources:
                for b in self.bases:
                    if b.scope is scope and b.alias == alias:
                        return scope, b
                return scope, None
            scope = scope.parent
        return None, None

    def by_scope(self) -> list[list[BaseTable]]:
        """The base tables grouped by the scope that selects from them."""
        grouped: dict[int, list[BaseTable]] = {}
        for b in self.bases:
            grouped.setdefault(id(b.scope), []).append(b)
        return list(grouped.values())


def base_tables(scopes: list[Scope], schemas: dict[TableRef, pa.Schema]) -> list[BaseTable]:
    """Every occurrence of a catalog table (``source.schema.table``) in the scopes, in scope order."""
    bases = []
    for scope in scopes:
        for alias, source in scope.selected_sources.items():
            node = source[1] if isinstance(source, tuple) else source
            if isinstance(node, exp.Table) and node.args.get("catalog") and node.args.get("db"):
                ref = TableRef(node.catalog, node.db, node.name)
                bases.append(BaseTable(node, ref, alias, scope, schemas[ref]))
    return bases


def _output_position(select: exp.Select, name: str) -> int | None:
    """The position of output ``name`` of a derived table's SELECT: by the alias's column list when it has one
    (``AS c_orders (c_custkey, c_count)``), else by the outputs' names; None when absent or ambiguous."""
    subquery = select.parent
    alias = subquery.args.get("alias") if isinstance(subquery, exp.Subquery | exp.CTE) else None
    listed = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) and alias.columns else None
    names = listed if listed else [p.alias_or_name for p in select.expressions]
    return names.index(name) if names.count(name) == 1 else None


def read_as_text(f: pa.Field | None) -> bool:
    """Whether the connector reads the column as text (its type has no exact Arrow reading)."""
    return bool(f is not None and f.metadata and f.metadata.get(READ_AS_TEXT) == b"1")


def derived_selects(scopes: list[Scope]) -> dict[str, exp.Select | None]:
    """Alias -> the SELECT of the derived table or CTE it names (None when it names several)."""
    found: dict[str, exp.Select | None] = {}
    for scope in scopes:
        for alias, source in scope.sources.items():
            if isinstance(source, Scope) and isinstance(source.expression, exp.Select):
                seen = found.setdefault(alias, source.expression)
                if seen is not source.expression:
                    found[alias] = None
    return found


def column_type_lookup(bases: list[BaseTable], derived: dict[str, exp.Select | None] | None = None,
                       derived_field: Callable[[exp.Select, int], pa.Field | None] | None = None) -> ColumnType:
    """A lookup column -> catalog field, valid when every alias names one table across scopes. A column of a
    derived table or CTE (``derived``: alias -> its SELECT) is typed by ``derived_field(select, position)``
    (DataFusion's type of that output); an alias that names both a table and a derived table is unknown."""
    by_alias: dict[str, set[TableRef]] = {}
    for b in bases:
        by_alias.setdefault(b.alias, set()).add(b.ref)
    schema_of = {b.ref: b.schema for b in bases}
    derived = derived or {}

    def column_type(column: exp.Column) -> pa.Field | None:
        if not column.table:
            return output_type(column)
        refs = by_alias.get(column.table, set())
        if column.table in derived:
            select = derived[column.table]
            if refs or select is None or derived_field is None:
                return None
            position = _output_position(select, column.name)
            return None if position is None else derived_field(select, position)
        if len(refs) != 1:
            return None
        schema = schema_of[next(iter(refs))]
        index = schema.get_field_index(column.name)
        return schema.field(index) if index >= 0 else None

    def output_type(column: exp.Column) -> pa.Field | None:
        """An ORDER BY/HAVING reference to an output: typed by the columns its projection computes on
        (text wins, then read-as-text, then float: the kinds the pushdown rules care about)."""
        projection = output_projection(column)
        if projection is None:
            return None
        fields = [column_type(c) for c in projection.find_all(exp.Column)]
        if any(f is None for f in fields):
            return None
        for kind in (pa.types.is_string, lambda t: False, pa.types.is_floating):
            for f in fields:
                if kind(f.type) or read_as_text(f):
                    return f
        return fields[0] if fields else pa.field(column.name, pa.int64())

    return column_type
