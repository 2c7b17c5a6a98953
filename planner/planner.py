"""SQL text -> FederatedPlan, in passes over one sqlglot expression.

    parse (read-only check) -> bind parameters -> resolve table names in the catalog -> canonicalize column
    spellings -> qualify (sqlglot: expand stars, qualify columns) -> federate: push the whole query to one
    source when it can run all of it, else cut one fragment per table occurrence (projection, single-table
    filters from WHERE and JOIN ... ON, LIMIT where safe) and leave the residual SQL to DataFusion.

The planner reads the catalog only; it does no I/O on sources' data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.dataset as ds
import sqlglot
from datafusion import SessionContext
from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import MappingSchema

import planner.dialects  # noqa: F401  (registers the "datafusion" sqlglot dialect)
from catalog import Catalog, TableRef
from connectors.base import Fragment
from gateway.errors import GatewayError, InvalidRequestError, UnknownObjectError
from planner.dialects import RESIDUAL_DIALECT, sqlglot_type
from planner.parse import Statement, bind_parameters, parse
from planner.plan import FederatedPlan, NotPushed
from planner.pushdown import unpushable_reason

_READ_AS_TEXT = b"gateway.read_as_text"


@dataclass
class _BaseTable:
    """One occurrence of a source table in the query, in the scope that selects from it."""

    node: exp.Table
    ref: TableRef
    alias: str
    scope: Scope
    schema: pa.Schema
    columns: set[str] = field(default_factory=set)
    filters: list[exp.Expression] = field(default_factory=list)
    limit: int | None = None


class Planner:
    """Plans queries over a ``Catalog``. ``dialect`` is the sqlglot dialect clients write in."""

    def __init__(self, catalog: Catalog, dialect: str = "postgres") -> None:
        self.catalog = catalog
        self.dialect = dialect

    def plan(self, sql: str, params: Sequence[object] | None = None) -> tuple[Statement, FederatedPlan]:
        """Plan ``sql`` with positional ``params``.

        Raises SqlSyntaxError, UnsupportedStatementError, UnknownObjectError, AmbiguousNameError,
        InvalidRequestError (bad parameters; a residual DataFusion cannot plan), SourceUnavailableError
        (a source named by the query cannot be introspected).
        """
        statement = parse(sql, self.dialect)
        ast = bind_parameters(statement.expression, params)
        refs = self._resolve_tables(ast)
        schemas = {ref: self.catalog.table_schema(ref) for ref in set(refs)}
        self._canonicalize_columns(ast, schemas)
        unnamed = self._unnamed_outputs(ast)
        ast = self._qualify(ast, schemas)
        self._drop_generated_aliases(ast, unnamed)
        return statement, self._federate(sql, ast, schemas)

    # -- names ---------------------------------------------------------------------------------------

    def _resolve_tables(self, ast: exp.Expression) -> list[TableRef]:
        cte_names = {cte.alias_or_name.lower() for cte in ast.find_all(exp.CTE)}
        refs = []
        for table in list(ast.find_all(exp.Table)):
            if not isinstance(table.this, exp.Identifier):
                continue  # table functions, UNNEST
            parts = [p.name for p in table.parts]
            if len(parts) == 1 and parts[0].lower() in cte_names:
                continue
            ref = self.catalog.resolve(parts)
            if not table.alias:
                table.set("alias", exp.TableAlias(this=table.this.copy()))
            table.set("this", exp.to_identifier(ref.table, quoted=True))
            table.set("db", exp.to_identifier(ref.schema, quoted=True))
            table.set("catalog", exp.to_identifier(ref.source, quoted=True))
            refs.append(ref)
        return refs

    @staticmethod
    def _canonicalize_columns(ast: exp.Expression, schemas: dict[TableRef, pa.Schema]) -> None:
        """Rewrite unquoted column names to the catalog's spelling, quoted (sources differ in case rules)."""
        spellings: dict[str, set[str]] = {}
        for schema in schemas.values():
            for name in schema.names:
                spellings.setdefault(name.lower(), set()).add(name)
        for column in ast.find_all(exp.Column):
            ident = column.this
            if not isinstance(ident, exp.Identifier) or ident.quoted:
                continue
            found = spellings.get(ident.name.lower(), set())
            chosen = ident.name if ident.name in found else (next(iter(found)) if len(found) == 1 else None)
            if chosen is not None:
                column.set("this", exp.to_identifier(chosen, quoted=True))

    @staticmethod
    def _unnamed_outputs(ast: exp.Expression) -> list[int]:
        """Positions of computed outputs the user did not name (DataFusion names them, as locally)."""
        select = _leftmost_select(ast)
        if select is None:
            return []
        return [i for i, e in enumerate(select.expressions) if not isinstance(e, exp.Alias | exp.Column | exp.Star)]

    @staticmethod
    def _drop_generated_aliases(ast: exp.Expression, positions: list[int]) -> None:
        """Undo the ``_col_N`` aliases sqlglot's qualify gave unnamed outputs."""
        select = _leftmost_select(ast)
        for i in positions:
            projection = select.expressions[i]
            if isinstance(projection, exp.Alias) and projection.alias.startswith("_col_"):
                projection.replace(projection.this)

    def _qualify(self, ast: exp.Expression, schemas: dict[TableRef, pa.Schema]) -> exp.Expression:
        mapping: dict = {}
        for ref, schema in schemas.items():
            mapping.setdefault(ref.source, {}).setdefault(ref.schema, {})[ref.table] = {
                f.name: sqlglot_type(f.type) for f in schema
            }
        try:
            return qualify(
                ast, schema=MappingSchema(mapping, dialect=self.dialect, normalize=False),
                dialect=self.dialect, quote_identifiers=True, validate_qualify_columns=True,
            )
        except OptimizeError as exc:
            raise _qualify_error(str(exc), schemas) from exc

    # -- federation ----------------------------------------------------------------------------------

    def _federate(self, sql: str, ast: exp.Expression, schemas: dict[TableRef, pa.Schema]) -> FederatedPlan:
        scopes = traverse_scope(ast)
        bases = self._base_tables(scopes, schemas)
        if not bases:
            schema, plan_text = residual_schema(ast.sql(dialect=RESIDUAL_DIALECT), {})
            return FederatedPlan(sql, [], ast.sql(dialect=RESIDUAL_DIALECT), schema, residual_plan=plan_text)
        whole = self._push_whole(sql, ast, bases)
        if whole is not None:
            return whole
        not_pushed: list[NotPushed] = []
        pushed_columns = self._push_filters(bases, not_pushed)
        self._collect_columns(pushed_columns, bases, scopes)
        self._push_limits(bases, not_pushed)
        fragments = []
        for i, base in enumerate(bases):
            fragment = self._fragment(f"__fragment_{i}", base)
            fragments.append(fragment)
            base.node.replace(exp.Table(
                this=exp.to_identifier(fragment.id, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(base.alias, quoted=True)),
            ))
        residual = ast.sql(dialect=RESIDUAL_DIALECT)
        schema, plan_text = residual_schema(residual, {f.id: f.schema for f in fragments})
        return FederatedPlan(sql, fragments, residual, schema, not_pushed, plan_text)

    def _base_tables(self, scopes: list[Scope], schemas: dict[TableRef, pa.Schema]) -> list[_BaseTable]:
        bases = []
        for scope in scopes:
            for alias, source in scope.selected_sources.items():
                node = source[1] if isinstance(source, tuple) else source
                if isinstance(node, exp.Table) and node.args.get("catalog") and node.args.get("db"):
                    ref = TableRef(node.catalog, node.db, node.name)
                    bases.append(_BaseTable(node, ref, alias, scope, schemas[ref]))
        return bases

    def _column_type(self, bases: list[_BaseTable]):
        """A lookup column -> catalog field, valid when every alias names one table across scopes."""
        by_alias: dict[str, set[TableRef]] = {}
        for b in bases:
            by_alias.setdefault(b.alias, set()).add(b.ref)
        schema_of = {b.ref: b.schema for b in bases}

        def column_type(column: exp.Column) -> pa.Field | None:
            refs = by_alias.get(column.table, set())
            if len(refs) != 1:
                return None
            schema = schema_of[next(iter(refs))]
            index = schema.get_field_index(column.name)
            return schema.field(index) if index >= 0 else None

        return column_type

    def _push_whole(self, sql: str, ast: exp.Expression, bases: list[_BaseTable]) -> FederatedPlan | None:
        sources = {b.ref.source for b in bases}
        if len(sources) != 1:
            return None
        source = sources.pop()
        connector = self.catalog.connector(source)
        if not connector.capabilities.full_query:
            return None
        if unpushable_reason(ast, connector.capabilities, self._column_type(bases), connector.dialect):
            return None
        pushed, oracle = ast.copy(), ast.copy()
        for table in _source_tables(pushed):
            ref = TableRef(table.catalog, table.db, table.name)
            target = connector.table_expression(ref.schema, ref.table)
            target.set("alias", table.args.get("alias"))
            table.replace(target)
        oracle_names = {b.ref: f"__table_{i}" for i, b in enumerate({b.ref: b for b in bases}.values())}
        oracle_tables = {oracle_names[b.ref]: _plain_schema(b.schema) for b in bases}
        for table in _source_tables(oracle):
            name = oracle_names[TableRef(table.catalog, table.db, table.name)]
            table.replace(exp.Table(this=exp.to_identifier(name, quoted=True), alias=table.args.get("alias")))
        try:
            schema, _ = residual_schema(oracle.sql(dialect=RESIDUAL_DIALECT), oracle_tables)
        except GatewayError:
            return None  # DataFusion cannot type it; the per-table plan will report why
        fragment = Fragment(
            id="__fragment_0", source=source, sql=pushed.sql(dialect=connector.dialect), schema=schema,
            tables=sorted({str(b.ref) for b in bases}), pushed=["whole query"],
        )
        return FederatedPlan(sql, [fragment], None, schema)

    def _collect_columns(self, pushed: set[int], bases: list[_BaseTable], scopes: list[Scope]) -> None:
        """Columns each fragment must return: those the residual still uses (pushed filters are gone)."""
        owners = {(id(b.scope), b.alias): b for b in bases}
        for scope in scopes:
            for column in scope.columns:
                if id(column) in pushed:
                    continue  # inside a conjunct pushed into a fragment
                owner = _owner(scope, column.table, owners)
                if owner is not None:
                    owner.columns.add(column.name)

    def _push_filters(self, bases: list[_BaseTable], not_pushed: list[NotPushed]) -> set[int]:
        """Move single-table conjuncts into fragments; returns the ids of the column nodes moved."""
        moved: set[int] = set()
        by_scope: dict[int, list[_BaseTable]] = {}
        for b in bases:
            by_scope.setdefault(id(b.scope), []).append(b)
        column_type = self._column_type(bases)
        for scoped in by_scope.values():
            select = scoped[0].scope.expression
            if not isinstance(select, exp.Select):
                continue
            by_alias = {b.alias: b for b in scoped}
            null_supplying, containers = _join_structure(select)
            for container, targets in containers:
                condition = container.args.get("on") if isinstance(container, exp.Join) else container.this
                if condition is None:
                    continue
                kept = []
                for conjunct in condition.flatten() if isinstance(condition, exp.And) else [condition]:
                    base = _single_alias(conjunct, by_alias)
                    if base is None or base.alias not in targets or (
                        base.alias in null_supplying and not isinstance(container, exp.Join)
                    ):
                        kept.append(conjunct)
                        continue
                    connector = self.catalog.connector(base.ref.source)
                    reason = None if connector.capabilities.filter else "the source does not filter"
                    reason = reason or unpushable_reason(
                        conjunct, connector.capabilities, column_type, connector.dialect
                    )
                    if reason:
                        not_pushed.append(NotPushed(f"filter {conjunct.sql(self.dialect)} on {base.ref}", reason))
                        kept.append(conjunct)
                    else:
                        base.filters.append(conjunct.copy())
                        moved.update(id(c) for c in conjunct.find_all(exp.Column))
                _set_condition(select, container, kept)
        return moved

    def _push_limits(self, bases: list[_BaseTable], not_pushed: list[NotPushed]) -> None:
        per_scope: dict[int, list[_BaseTable]] = {}
        for b in bases:
            per_scope.setdefault(id(b.scope), []).append(b)
        for scoped in per_scope.values():
            select = scoped[0].scope.expression
            if not isinstance(select, exp.Select) or not isinstance(select.args.get("limit"), exp.Limit):
                continue
            limit = _int_literal(select.args["limit"].expression)
            offset = _int_literal(select.args["offset"].expression) if select.args.get("offset") else 0
            base = scoped[0]
            blockers = {
                "a join": len(scoped) > 1 or bool(select.args.get("joins")),
                "a filter that stays in DataFusion": select.args.get("where") is not None,
                "GROUP BY / aggregates": bool(select.args.get("group") or select.args.get("having"))
                or any(_has_local(e, (exp.AggFunc,)) for e in select.expressions),
                "DISTINCT": bool(select.args.get("distinct")),
                "ORDER BY": bool(select.args.get("order")),
                "a window function": any(_has_local(e, (exp.Window,)) for e in select.expressions),
                "a non-constant LIMIT/OFFSET": limit is None or offset is None,
            }
            blocked = [what for what, present in blockers.items() if present]
            if blocked:
                not_pushed.append(NotPushed(f"LIMIT on {base.ref}", f"the query has {', '.join(blocked)}"))
            elif not self.catalog.connector(base.ref.source).capabilities.limit:
                not_pushed.append(NotPushed(f"LIMIT on {base.ref}", "the source does not apply LIMIT"))
            else:
                base.limit = limit + offset

    def _fragment(self, fragment_id: str, base: _BaseTable) -> Fragment:
        connector = self.catalog.connector(base.ref.source)
        names = [n for n in base.schema.names if n in base.columns] or base.schema.names[:1]
        fields = [base.schema.field(n) for n in names]
        projections = []
        for f in fields:
            column: exp.Expression = exp.column(f.name, table=base.alias, quoted=True)
            if f.metadata and f.metadata.get(_READ_AS_TEXT) == b"1":
                column = exp.cast(column, "TEXT")
            projections.append(exp.alias_(column, f.name, quoted=True))
        table = connector.table_expression(base.ref.schema, base.ref.table)
        table.set("alias", exp.TableAlias(this=exp.to_identifier(base.alias, quoted=True)))
        select = exp.select(*projections).from_(table)
        pushed = [f"projection ({len(names)} of {len(base.schema)} columns)"]
        if base.filters:
            select = select.where(exp.and_(*base.filters))
            pushed.append(f"filter {exp.and_(*base.filters).sql(self.dialect)}")
        if base.limit is not None:
            select = select.limit(base.limit)
            pushed.append(f"limit {base.limit}")
        return Fragment(
            id=fragment_id, source=base.ref.source, sql=select.sql(dialect=connector.dialect),
            schema=pa.schema(fields), tables=[str(base.ref)], pushed=pushed,
        )


# -- helpers ---------------------------------------------------------------------------------------------

def residual_schema(sql: str, tables: dict[str, pa.Schema]) -> tuple[pa.Schema, str]:
    """Plan ``sql`` in DataFusion over empty tables of the given schemas: (output schema, optimized plan).

    No data is read. Raises InvalidRequestError with DataFusion's message when it cannot plan the query.
    """
    ctx = SessionContext()
    for name, schema in tables.items():
        ctx.register_dataset(name, ds.dataset(_plain_schema(schema).empty_table()))
    try:
        df = ctx.sql(sql)
        return df.schema(), str(df.optimized_logical_plan().display_indent())
    except Exception as exc:
        message = str(exc).splitlines()[0]
        raise InvalidRequestError(f"the query cannot be planned: {message}") from exc


def _leftmost_select(ast: exp.Expression) -> exp.Select | None:
    """The SELECT whose outputs name the result's columns (the left branch of set operations)."""
    while isinstance(ast, exp.SetOperation | exp.Subquery):
        ast = ast.this if isinstance(ast, exp.Subquery) else ast.left
    return ast if isinstance(ast, exp.Select) else None


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])


def _source_tables(ast: exp.Expression) -> list[exp.Table]:
    """Base-table nodes (resolved to ``source.schema.table``) of a qualified AST."""
    return [t for t in ast.find_all(exp.Table) if t.args.get("catalog") and t.args.get("db")]


def _owner(scope: Scope | None, alias: str, owners: dict) -> _BaseTable | None:
    while scope is not None and alias:
        if alias in scope.sources:
            return owners.get((id(scope), alias))
        scope = scope.parent
    return None


def _join_structure(select: exp.Select):
    """(null-supplying aliases, [(condition container, aliases a conjunct may be pushed into)])."""
    from_expr = select.args.get("from") or select.args.get("from_")
    seen = [from_expr.this.alias_or_name] if from_expr is not None else []
    null_supplying: set[str] = set()
    containers: list[tuple[exp.Expression, set[str]]] = []
    inner_ons = []
    for join in select.args.get("joins") or []:
        alias = join.this.alias_or_name
        side, kind = (join.side or "").upper(), (join.kind or "").upper()
        if kind in ("SEMI", "ANTI", "ASOF"):
            null_supplying.update([*seen, alias])
        elif side == "LEFT":
            null_supplying.add(alias)
            containers.append((join, {alias}))
        elif side == "RIGHT":
            null_supplying.update(seen)
        elif side == "FULL":
            null_supplying.update([*seen, alias])
        else:
            inner_ons.append(join)
        seen.append(alias)
    preserved = {a for a in seen if a not in null_supplying}
    containers.extend((join, preserved) for join in inner_ons)
    if select.args.get("where") is not None:
        containers.append((select.args["where"], preserved))
    return null_supplying, containers


def _single_alias(conjunct: exp.Expression, by_alias: dict[str, _BaseTable]) -> _BaseTable | None:
    if conjunct.find(exp.Subquery, exp.Exists, exp.Select, exp.AggFunc, exp.Window, exp.Parameter):
        return None
    aliases = {c.table for c in conjunct.find_all(exp.Column)}
    if len(aliases) != 1:
        return None
    return by_alias.get(aliases.pop())


def _set_condition(select: exp.Select, container: exp.Expression, kept: list[exp.Expression]) -> None:
    if isinstance(container, exp.Join):
        container.set("on", exp.and_(*kept, copy=False) if kept else exp.true())
    elif kept:
        container.set("this", exp.and_(*kept, copy=False))
    else:
        select.set("where", None)


def _has_local(expression: exp.Expression, kinds: tuple) -> bool:
    """Whether ``expression`` contains ``kinds`` outside nested sub-queries."""
    for node in expression.walk(prune=lambda n: isinstance(n, exp.Subquery | exp.Select) and n is not expression):
        if isinstance(node, kinds):
            return True
    return False


def _int_literal(expression: exp.Expression | None) -> int | None:
    if isinstance(expression, exp.Literal) and not expression.is_string and expression.name.isdigit():
        return int(expression.name)
    return None


def _qualify_error(message: str, schemas: dict[TableRef, pa.Schema]) -> GatewayError:
    column = re.search(r"Column '\"?([^'\"]+)\"?' could not be resolved", message) or re.search(
        r"Unknown column: \"?([^\s\"']+)", message
    )
    if column:
        candidates = [name for schema in schemas.values() for name in schema.names]
        context = ", ".join(str(r) for r in sorted(schemas))
        return UnknownObjectError("column", column.group(1), candidates, context=context)
    table = re.search(r"Unknown table: '?\"?([^'\"]+)", message)
    if table:
        return UnknownObjectError("table or alias", table.group(1), (r.table for r in schemas))
    return InvalidRequestError(f"the query cannot be resolved: {message.split('. Line')[0]}")


def transpile(sql: str, read: str, write: str) -> str:
    """Transpile one statement between sqlglot dialects (used by tests and EXPLAIN tooling)."""
    return sqlglot.transpile(sql, read=read, write=write)[0]
