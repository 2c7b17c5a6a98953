"""SQL text -> FederatedPlan, in passes over one sqlglot expression.

    parse (read-only check) -> expand named views (``planner.views``) -> resolve table names in the catalog ->
    canonicalize column spellings -> qualify (sqlglot: expand stars, qualify columns) -> filters into derived
    tables (``planner.derived_filters``) -> federate (``planner.federation``: whole query,
    sub-queries, filters, join groups, columns, LIMIT/top-N) -> bind parameters.

The planner reads the catalog only; it does no I/O on sources' data. Plans are cached as templates keyed by
the SQL text and the parameters' types.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.eliminate_ctes import eliminate_ctes
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

import planner.dialects  # noqa: F401  (registers the "datafusion" sqlglot dialect)
from catalog import Catalog, TableRef
from connectors.errors import GatewayError, InvalidRequestError, UnknownObjectError
from planner.correlated_aggregates import decorrelate_comparison_aggregates
from planner.derived_filters import push_into_derived_tables
from planner.dialects import NAMING_DIALECT, sqlglot_type
from planner.exists_outputs import exists_as_values, tuple_in_as_exists
from planner.federation import federate, residual_schema
from planner.federation.sqlast import join_structure
from planner.lateral_joins import decorrelate_lateral_joins
from planner.limits import InputLimits
from planner.metadata_statements import expand_metadata, rewrite_statement
from planner.parse import (
    DEFAULT_LIMITS,
    Statement,
    check_parameter_count,
    parenthesize_operands,
    parse,
    substitute_parameters,
)
from planner.plan import FederatedPlan, bind
from planner.semi_join_reduction import reduce_correlated_subqueries
from planner.set_operations import count_duplicates_in_set_operations
from planner.top_one_subqueries import decorrelate_top_one_subqueries
from planner.views import expand_views

__all__ = ["Planner", "residual_schema"]


class Planner:
    """Plans queries over a ``Catalog``. ``dialect`` is the sqlglot dialect clients write in."""

    def __init__(self, catalog: Catalog, dialect: str = "postgres", cache_size: int = 512,
                 limits: InputLimits = DEFAULT_LIMITS) -> None:
        self.catalog = catalog
        self.limits = limits
        self.dialect = dialect
        self.cache_size = cache_size
        self.cache_hits = 0
        self._cache: OrderedDict[tuple, tuple[Statement, FederatedPlan]] = OrderedDict()
        self._lock = threading.Lock()

    def plan(self, sql: str, params: Sequence[object] | None = None) -> tuple[Statement, FederatedPlan]:
        """Plan ``sql`` with positional ``params``; a repeated query is served from the plan cache.

        The cache is keyed by the SQL text, the parameters' types and the catalog's version; its plans hold
        ``$n`` parameters that ``planner.plan.bind`` replaces by this call's values.

        Raises SqlSyntaxError, UnsupportedStatementError, UnknownObjectError, AmbiguousNameError,
        InputLimitError (``limits``), InvalidRequestError (bad parameters; a residual DataFusion cannot plan),
        SourceUnavailableError (a source named by the query cannot be introspected), PermissionDeniedError (a
        named view reads a source this catalog view may not use).
        """
        key = (sql, tuple(type(p).__name__ for p in params or ()), self.catalog.version)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
        if cached is None:
            cached = self._plan_template(sql, params)
            with self._lock:
                self._cache[key] = cached
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        statement, template = cached
        return statement, bind(template, params)

    def _plan_template(self, sql: str, params: Sequence[object] | None) -> tuple[Statement, FederatedPlan]:
        # SHOW/DESCRIBE become queries over information_schema, whose tables become VALUES from the catalog
        statement = parse(rewrite_statement(sql, self.catalog), self.dialect, self.limits)
        check_parameter_count(statement.expression, params)
        ast = statement.expression.copy()
        expand_views(ast, self.catalog)  # a view is a derived table of its query, planned as if written inline
        ast = expand_metadata(ast, self.catalog)
        for select in list(ast.find_all(exp.Select)):
            _expand_group_by_all(select)
        for fetch in list(ast.find_all(exp.Fetch)):
            fetching = fetch.parent
            replaced = _fetch_as_limit(fetch)
            ast = replaced if replaced is not None and fetching is ast else ast
        for between in list(ast.find_all(exp.Between)):
            _symmetric_between_as_or(between)
        for exists in list(ast.find_all(exp.Exists)):
            sub = exists.this
            if not isinstance(sub, exp.Select):
                continue
            if _aggregates(sub) and not sub.args.get("group"):
                if _one_row(sub):  # EXISTS over exactly one row; DataFusion 55 answers as if it were SELECT 1
                    exists.replace(exp.true())
                continue  # its HAVING, LIMIT or OFFSET decides whether it returns its one row: kept as written
            # EXISTS never reads its sub-query's outputs: SELECT * would fetch every column of the table
            if not sub.args.get("distinct"):
                sub.set("expressions", [exp.Literal.number(1)])
        refs = self._resolve_tables(ast)
        schemas = {ref: self.catalog.table_schema(ref) for ref in set(refs)}
        self._canonicalize_columns(ast, schemas)
        unqualified = ast.copy()
        for case in list(ast.find_all(exp.Case)):  # after the copy that names the outputs as written
            _simple_case_as_searched(case)
        _name_subquery_outputs(ast)
        ast = parenthesize_operands(self._qualify(ast, schemas))
        decorrelate_top_one_subqueries(ast, self._unique_key)  # DataFusion cannot run a correlated (.. LIMIT 1)
        # or a correlated lookup
        decorrelate_comparison_aggregates(ast)  # nor an aggregate one correlated by more than `=`
        decorrelate_lateral_joins(ast)  # nor a correlated LATERAL sub-query
        exists_as_values(ast)  # nor an EXISTS that is a value rather than a filter
        tuple_in_as_exists(ast)  # nor a row-value IN sub-query
        ast = count_duplicates_in_set_operations(ast)  # and it answers INTERSECT ALL and EXCEPT ALL wrong
        ast = eliminate_ctes(ast)  # an unused CTE is never planned by DataFusion: never sent to a source either
        push_into_derived_tables(ast)  # filters on a derived table's (a view's) outputs reach its source
        if _file_source_only(refs, self.catalog):
            reduce_correlated_subqueries(ast)  # correlated aggregates over the outer keys only (semi_join_reduction)
        _drop_constant_order_keys(ast)
        rename = _has_unnamed_outputs(unqualified) or _has_generated_names(ast)
        names = _output_names(unqualified, schemas, params) if rename else None
        if names:
            _generated_aliases_as_positions(unqualified, ast)
        plan = federate(self.catalog, self.dialect, sql, ast, schemas, params)
        return statement, plan.with_output_names(names) if names else plan

    # -- names ---------------------------------------------------------------------------------------

    def _unique_key(self, table: exp.Table, columns: set[str]) -> bool:
        """Whether ``columns`` of a resolved table node cover the primary key its source declares (False when it
        declares none or cannot tell)."""
        try:
            key = self.catalog.connector(table.catalog).primary_key(table.db, table.name)
        except Exception:  # a hint: a source that cannot tell has no known key
            return False
        return bool(key) and set(key) <= columns

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
        except (AssertionError, ValueError, KeyError, TypeError, AttributeError) as exc:  # sqlglot's own defects
            raise InvalidRequestError(f"the query cannot be resolved: {exc}") from exc


def _file_source_only(refs: list[TableRef], catalog: Catalog) -> bool:
    """Whether every table is in one source that computes in this process (files: DataFusion decorrelates
    its sub-queries). Not for a database that runs the whole query (PostgreSQL runs a correlated sub-query
    per outer row by index, where a key set adds work), nor for federated plans, whose dynamic filters already
    restrict a sub-query's fragment by the outer keys (TPC-H Q2 over MariaDB and Parquet: 0.13 -> 0.80 s
    with the key set, its partsupp fragment read whole)."""
    sources = {ref.source for ref in refs}
    if len(sources) != 1:
        return False
    try:
        return catalog.connector(sources.pop()).capabilities.local_compute
    except Exception:  # an unknown source fails name resolution elsewhere, with its own message
        return False


def _drop_constant_order_keys(ast: exp.Expression) -> None:
    """Remove constant keys from each query's ORDER BY (``ORDER BY 1`` naming a literal output becomes
    ``ORDER BY FALSE`` after qualification): they order nothing, and MySQL, PostgreSQL and SQLite would read a
    number there as a position. Window ORDER BYs are left alone (they define frames)."""
    constant = (exp.Literal, exp.Boolean, exp.Null)
    for order in list(ast.find_all(exp.Order)):
        if not isinstance(order.parent, exp.Select | exp.SetOperation):
            continue
        # outputs of a set operation are not its first branch's: only a SELECT's own aliases are resolved
        select = order.parent if isinstance(order.parent, exp.Select) else None
        group = select.args.get("group") if select is not None else None
        if group is not None and any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets")):
            continue  # a constant grouping key is NULL in the subtotal rows: it orders them
        outputs = {p.alias: p.this for p in (select.expressions if select else []) if isinstance(p, exp.Alias)}

        # an unqualified column naming an output alias is qualify's reading of an ordinal
        resolved = [outputs.get(o.this.name, o.this) if isinstance(o.this, exp.Column) and not o.this.table
                    else o.this for o in order.expressions]
        if select is not None:
            _resolve_ordinals(select, order, resolved)
        keys = [o for o, key in zip(order.expressions, resolved, strict=True)
                if not _is_constant(key, constant) and not _constant_derived_output(select, key)]
        if len(keys) == len(order.expressions):
            continue
        if keys:
            order.set("expressions", keys)
        else:
            order.pop()


def _resolve_ordinals(select: exp.Select, order: exp.Order, resolved: list[exp.Expression]) -> None:
    """Replace the ordinals qualify leaves in place (it does when the output's name is ambiguous:
    ``SELECT a.ts, b.ts ... ORDER BY 2``) by the output's expression, so that no later pass reads them as
    constants and renamed duplicate outputs (``ts_2``) keep their order. Outputs with a window function
    stay ordinals."""
    for i, ordered in enumerate(order.expressions):
        key = ordered.this  # a literal as written, not an output's value (``3 AS c1 .. ORDER BY c1``)
        if not (isinstance(key, exp.Literal) and key.is_int):
            continue
        position = int(key.name)
        if not 1 <= position <= len(select.expressions):
            continue
        projection = select.expressions[position - 1]
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if inner.find(exp.Window) or isinstance(inner, exp.Star):
            continue
        ordered.set("this", inner.copy())
        resolved[i] = inner


#: the nodes of an expression that is the same on every row: literals under operators and casts (not a function:
#: ``RANDOM()`` orders)
_CONSTANT_PARTS = (exp.Neg, exp.Paren, exp.Not, exp.Connector, exp.Binary, exp.Cast, exp.DataType,
                   exp.DataTypeParam, exp.Var)


def _constant_derived_output(select: exp.Select | None, key: exp.Expression) -> bool:
    """Whether ``key`` is a column of a derived table of ``select`` whose output is a literal, on a side no outer
    join of ``select`` null-extends: the same value in every row (DataFusion 55 fails a sort on such a column
    above an inner join filtered on both sides with ``SanityCheckPlan``: fuzz seed 5551212 #432)."""
    if select is None or not isinstance(key, exp.Column) or not key.table:
        return False
    if key.table in join_structure(select)[0]:
        return False  # a null-extended side: NULL in some rows
    from_ = select.args.get("from") or select.args.get("from_")
    for source in [from_.this if from_ is not None else None, *(j.this for j in select.args.get("joins") or [])]:
        if not isinstance(source, exp.Subquery) or source.alias_or_name != key.table:
            continue
        inner = source.unnest()
        if not isinstance(inner, exp.Select):
            return False
        output = next((p for p in inner.expressions if p.alias_or_name == key.name), None)
        value = output.this if isinstance(output, exp.Alias) else output
        return value is not None and isinstance(value, exp.Literal | exp.Boolean)
    return False


def _is_constant(key: exp.Expression, constant: tuple) -> bool:
    """A literal, possibly negated, parenthesized or computed from literals (``-1``, ``(2)``, ``NOT TRUE``: fuzz
    seed 3141592 #768, MariaDB folds ``ORDER BY (NOT TRUE)`` to a position 0 it then does not find)."""
    while isinstance(key, exp.Neg | exp.Paren):
        key = key.this
    if isinstance(key, constant):
        return True
    return any(isinstance(n, constant) for n in key.walk()) and all(
        isinstance(n, constant + _CONSTANT_PARTS) for n in key.walk())


def _name_subquery_outputs(ast: exp.Expression) -> None:
    """Alias unnamed scalar sub-query outputs ``_col_N`` as qualify would: its positional ORDER BY expansion
    asserts that a sub-query output is aliased (``SELECT a, (SELECT count(*) FROM t) FROM u ORDER BY 2``)."""
    for select in list(ast.find_all(exp.Select)):
        for i, projection in enumerate(select.expressions):
            if isinstance(projection, exp.Subquery) and not projection.alias:
                # an Alias node: alias_() would set the sub-query's own alias, which qualify does not accept
                projection.replace(exp.Alias(this=projection.copy(), alias=exp.to_identifier(f"_col_{i}")))


def _has_unnamed_outputs(ast: exp.Expression) -> bool:
    """Whether the query has an output computed without an alias (qualify names some after a column they
    read, e.g. ``CAST(a.g AS TEXT)`` as ``g``, where DataFusion says ``a.g``)."""
    select = _leftmost_select(ast)
    return select is not None and any(
        not isinstance(p, exp.Alias | exp.Column | exp.Star) for p in select.expressions)


def _generated_aliases_as_positions(unqualified: exp.Expression, ast: exp.Expression) -> None:
    """Rename the aliases qualify gave the top-level SELECT's unnamed computed outputs to ``_col_<i>``
    (references in its ORDER BY follow), in place. Qualify names ``CAST(a1.dt AS TIMESTAMP)`` ``dt``, and
    DataFusion then finds ``ORDER BY a2.dt`` ambiguous next to an output ``dt``; the final names are
    DataFusion's own anyway (``FederatedPlan.with_output_names``)."""
    written, select = _leftmost_select(unqualified), ast if isinstance(ast, exp.Select) else None
    if written is None or select is None or len(written.expressions) != len(select.expressions):
        return
    names = [p.alias_or_name for p in select.expressions]
    taken = set(names)
    renamed: dict[str, str] = {}
    for i, (as_written, projection) in enumerate(zip(written.expressions, select.expressions, strict=True)):
        if isinstance(as_written, exp.Alias | exp.Column | exp.Star) or not isinstance(projection, exp.Alias):
            continue
        old, new = projection.alias, f"_col_{i}"
        if old == new or new in taken or names.count(old) > 1:  # a shared name: references stay as qualify read them
            continue
        projection.set("alias", exp.to_identifier(new, quoted=True))
        renamed[old] = new
    order = select.args.get("order")
    for column in list(order.find_all(exp.Column)) if order else []:
        if not column.table and column.name in renamed:
            column.set("this", exp.to_identifier(renamed[column.name], quoted=True))


def _has_generated_names(ast: exp.Expression) -> bool:
    """Whether an output of the query is named ``_col_N``: sqlglot's qualify names unnamed outputs so, and
    makes ORDER BY ordinals and repeated expressions refer to them (kept inside the plan, renamed at the end)."""
    select = _leftmost_select(ast)
    return select is not None and any(p.alias_or_name.startswith("_col_") for p in select.expressions)


def _output_names(ast: exp.Expression, schemas: dict[TableRef, pa.Schema],
                  params: Sequence[object] | None) -> list[str] | None:
    """The names DataFusion gives the query's outputs, planned as written (before qualification) over empty
    tables of the catalog's schemas: ``SELECT upper(region), count(*) FROM t GROUP BY 1`` ->
    ``["upper(t.region)", "count(*)"]``. None when DataFusion cannot plan the query as written."""
    probe = ast.copy()
    names: dict[TableRef, str] = {}
    for table in probe.find_all(exp.Table):
        if table.args.get("catalog") and table.args.get("db"):
            ref = TableRef(table.catalog, table.db, table.name)
            if ref not in schemas:
                return None
            name = names.setdefault(ref, f"__table_{len(names)}")
            table.replace(exp.Table(this=exp.to_identifier(name, quoted=True), alias=table.args.get("alias")))
    if params:
        probe = substitute_parameters(probe, params)
    try:
        # as written, unguarded: DataFusion names unaliased outputs after their text; nothing runs here
        schema, _ = residual_schema(probe.sql(dialect=NAMING_DIALECT), {n: schemas[r] for r, n in names.items()})
    except GatewayError:
        return None
    return schema.names


def _leftmost_select(ast: exp.Expression) -> exp.Select | None:
    """The SELECT whose outputs name the result's columns (the left branch of set operations)."""
    while isinstance(ast, exp.SetOperation | exp.Subquery):
        ast = ast.this if isinstance(ast, exp.Subquery) else ast.left
    return ast if isinstance(ast, exp.Select) else None


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


def _aggregates(select: exp.Select) -> bool:
    """Whether ``select``'s outputs aggregate its rows (an aggregate outside windows and nested sub-queries)."""
    return any(isinstance(node, exp.AggFunc) for output in select.expressions
               for node in output.walk(prune=lambda n: isinstance(n, exp.Subquery | exp.Select | exp.Window)))


def _expand_group_by_all(select: exp.Select) -> None:
    """``GROUP BY ALL`` (DataFusion's and DuckDB's: every output without an aggregate or a window) as the
    ordinals of those outputs, in place: PostgreSQL and MariaDB have no such clause, so it must never reach a
    source as written. No such output: no GROUP BY (the outputs aggregate every row into one)."""
    group = select.args.get("group")
    if group is None or not group.args.get("all") or group.expressions:
        return
    plain = [exp.Literal.number(position) for position, output in enumerate(select.expressions, 1)
             if not any(isinstance(node, exp.AggFunc | exp.Window)
                        for node in output.walk(prune=lambda n: isinstance(n, exp.Subquery | exp.Select)))]
    if plain:
        select.set("group", exp.Group(expressions=plain))
    else:
        select.set("group", None)


def _fetch_as_limit(fetch: exp.Fetch) -> exp.Select | None:
    """SQL:2008's ``FETCH FIRST|NEXT [n] ROW[S] ONLY`` as the ``LIMIT n`` it means (1 without n), in place:
    DataFusion has no FETCH clause; ``WITH TIES`` as ``_with_ties``. Raises InvalidRequestError for ``PERCENT``,
    which has no LIMIT equivalent, and for a ``WITH TIES`` outside ``_with_ties``' conditions. Returns the SELECT
    that replaced the fetching one (``WITH TIES``), else None."""
    options = fetch.args.get("limit_options")
    count = fetch.args.get("count")
    count = count.copy() if count is not None else exp.Literal.number(1)
    if options is not None and options.args.get("with_ties") and not options.args.get("percent"):
        return _with_ties(fetch, count)
    if options is not None and options.args.get("percent"):
        raise InvalidRequestError("FETCH FIRST ... PERCENT is not supported; FETCH FIRST n ROWS [ONLY | WITH TIES] "
                                  "and LIMIT n are")
    fetch.replace(exp.Limit(expression=count))
    return None


def _with_ties(fetch: exp.Fetch, count: exp.Expression) -> exp.Select:
    """``SELECT <outputs> .. ORDER BY k FETCH FIRST n ROWS WITH TIES`` as ``SELECT <outputs> FROM (SELECT <outputs>,
    k AS __k0, RANK() OVER (ORDER BY k) AS __rank ..) AS __ties WHERE __rank <= n ORDER BY __k0``, in place: a row
    is among the first n or ties with the n-th exactly when fewer than n rows come strictly before it. Raises
    InvalidRequestError without ORDER BY, with OFFSET, or with an output that is not a named column or alias (the
    outer SELECT must name the inner one's outputs)."""
    select = fetch.parent
    order = select.args.get("order") if isinstance(select, exp.Select) else None
    names = [o.alias_or_name for o in select.expressions] if isinstance(select, exp.Select) else []
    if order is None or select.args.get("offset") is not None or not all(
            n and n != "*" and isinstance(o, exp.Column | exp.Alias) for o, n in zip(select.expressions, names,
                                                                              strict=True)) \
            or len(set(names)) != len(names):
        raise InvalidRequestError("FETCH FIRST ... WITH TIES needs an ORDER BY, no OFFSET, and outputs that are "
                                  "named columns or aliases")
    keys = [_order_key(o.this, select) for o in order.expressions]
    inner = select.copy()
    for clause in ("order", "limit"):
        inner.set(clause, None)
    rank = exp.Window(this=exp.Anonymous(this="RANK"), order=exp.Order(expressions=[
        exp.Ordered(this=k.copy(), desc=o.args.get("desc"), nulls_first=o.args.get("nulls_first"))
        for k, o in zip(keys, order.expressions, strict=True)]))
    inner.set("expressions", [*inner.expressions, *(exp.alias_(k.copy(), f"__k{i}", quoted=True)
                                                    for i, k in enumerate(keys)),
                              exp.alias_(rank, "__rank", quoted=True)])
    outer_order = exp.Order(expressions=[exp.Ordered(this=exp.column(f"__k{i}", "__ties", quoted=True),
                                                     desc=o.args.get("desc"), nulls_first=o.args.get("nulls_first"))
                                         for i, o in enumerate(order.expressions)])
    outer = exp.select(*[exp.column(n, "__ties", quoted=True) for n in names]).from_(
        exp.alias_(exp.Subquery(this=inner), "__ties", quoted=True, table=True)).where(
        exp.LTE(this=exp.column("__rank", "__ties", quoted=True), expression=count))
    outer.set("order", outer_order)
    select.replace(outer)
    return outer


def _order_key(key: exp.Expression, select: exp.Select) -> exp.Expression:
    """An ORDER BY key as an expression over ``select``'s tables: an ordinal or an output's alias as that output."""
    outputs = select.expressions
    if isinstance(key, exp.Literal) and not key.is_string and key.this.isdigit() and 0 < int(key.this) <= len(outputs):
        return outputs[int(key.this) - 1].unalias()
    if isinstance(key, exp.Column) and not key.table:
        named = next((o for o in outputs if isinstance(o, exp.Alias) and o.alias == key.name), None)
        if named is not None:
            return named.this
    return key


def _simple_case_as_searched(case: exp.Case) -> None:
    """``CASE x WHEN v THEN r .. END`` as the ``CASE WHEN x = v THEN r .. END`` it means, in place, so that the
    pushdown rules see its comparisons: MariaDB compared ``CASE c WHEN 'x' ..`` ignoring case (23 of 200 rows
    wrong). Left as written when ``x`` is volatile (it would be evaluated once per WHEN)."""
    operand = case.args.get("this")
    if operand is None or operand.find(exp.Rand) is not None or any(
            isinstance(f, exp.Anonymous) and f.name.lower() in ("random", "uuid") for f in operand.find_all(
                exp.Anonymous)):
        return
    for branch in case.args.get("ifs") or []:
        branch.set("this", exp.EQ(this=operand.copy(), expression=branch.this.copy()))
    case.set("this", None)


def _symmetric_between_as_or(between: exp.Between) -> None:
    """``x BETWEEN SYMMETRIC a AND b`` as ``(x BETWEEN a AND b OR x BETWEEN b AND a)``, in place: what PostgreSQL
    itself rewrites it to (``transformAExprBetween``), which DataFusion's parser and MariaDB do not accept."""
    if not between.args.get("symmetric"):
        return
    this, low, high = between.this, between.args["low"], between.args["high"]
    between.replace(exp.Paren(this=exp.Or(
        this=exp.Between(this=this.copy(), low=low.copy(), high=high.copy()),
        expression=exp.Between(this=this.copy(), low=high.copy(), high=low.copy()))))


def _one_row(select: exp.Select) -> bool:
    """Whether an aggregating ``select`` without GROUP BY returns exactly one row whatever its tables hold (no
    HAVING, QUALIFY, LIMIT or OFFSET to drop it): ``EXISTS (SELECT count(*) FROM t WHERE ...)`` is TRUE even
    where no row of t matches (SQL; PostgreSQL and DuckDB agree, DataFusion 55 answers FALSE there)."""
    return not any(select.args.get(k) for k in ("group", "having", "qualify", "limit", "offset"))
