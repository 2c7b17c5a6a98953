"""Federation: cut a qualified query into fragments, one per source-sized piece, and the residual plan.

Passes, in order (each one only moves work into fragments that the source computes exactly as DataFusion
would; everything else stays in the residual and EXPLAIN says why):

1. whole query: every table in one source that can run all of it -> one fragment, no residual.
2. sub-queries: a CTE, derived table or uncorrelated IN/EXISTS/scalar sub-query whose tables all live in
   one source -> a fragment in its place.
       ``WITH r AS (SELECT k, sum(v) AS s FROM lake.t GROUP BY k) SELECT ... FROM r JOIN pg.u ...``
       -> ``WITH r AS (SELECT * FROM "__fragment_0") ...``
3. filters: single-table conjuncts of WHERE and inner JOIN ... ON (and a LEFT JOIN's ON, for its right
   side) go into the table's fragment.
4. join groups: tables of one source joined by pushable conjuncts (inner joins) become one fragment that
   runs the join; the residual reads its columns as ``"__g0"."alias.column"``.
5. columns: each fragment returns only the columns the residual still uses.
6. LIMIT and ORDER BY + LIMIT (top-N) on a single-table scope whose filters were all pushed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.optimizer.simplify import simplify

from catalog import Catalog, TableRef
from connectors.arrow.datafusion import plain_schema, plan_over_empty
from connectors.base import Fragment
from connectors.errors import GatewayError, InvalidRequestError
from planner.dialects import RESIDUAL_DIALECT, sqlglot_type
from planner.parse import substitute_parameters
from planner.plan import FederatedPlan, NotPushed
from planner.pushdown import superset_pushable, unpushable_reason

_READ_AS_TEXT = b"gateway.read_as_text"

log = logging.getLogger(__name__)


@dataclass(eq=False)
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
    order: list[exp.Ordered] | None = None
    group: _JoinGroup | None = None
    partials: list[tuple[str, exp.Expression]] | None = None  # (output name, partial aggregate) when grouped
    local: list[exp.Expression] = field(default_factory=list)  # its conjuncts that stay in DataFusion
    fragment_id: str | None = None  # the fragment that reads it (set when fragments are built)


@dataclass(eq=False)
class _JoinGroup:
    """Tables of one source joined inside the source; ``conditions`` are the join conjuncts moved there."""

    members: list[_BaseTable]
    conditions: list[exp.Expression]
    alias: str = ""


def federate(catalog: Catalog, dialect: str, sql: str, ast: exp.Expression,
             schemas: dict[TableRef, pa.Schema], params: Sequence[object] | None) -> FederatedPlan:
    """The federated plan of a qualified query: the passes above, or, when one of them fails on this query
    shape, the fallback plan (every table read by its own fragment, the whole query run by DataFusion), with
    the reason in ``FederatedPlan.fallback``. ``ast`` is not modified.

    Raises InvalidRequestError (DataFusion's message) only when the fallback plan cannot be planned either:
    then the SQL itself is what DataFusion refuses.
    """
    try:
        return Federator(catalog, dialect, sql, ast.copy(), schemas, params).run()
    except GatewayError as exc:
        if not isinstance(exc, InvalidRequestError):
            raise  # a source that cannot be introspected fails the fallback too
        reason = exc.message
    except Exception as exc:  # a pass's own defect must not fail a query DataFusion can run
        log.warning("federation pass failed; falling back", exc_info=True)
        reason = f"{type(exc).__name__}: {exc}"
    plan = Federator(catalog, dialect, sql, ast.copy(), schemas, params, per_table=True).run()
    return dataclasses.replace(plan, fallback=reason)


class Federator:
    """Runs the passes above over one qualified query. ``params`` type ``$n`` parameters for DataFusion.
    ``per_table``: only the fallback plan (a fragment per table with the columns it needs, nothing else)."""

    def __init__(self, catalog: Catalog, dialect: str, sql: str, ast: exp.Expression,
                 schemas: dict[TableRef, pa.Schema], params: Sequence[object] | None, per_table: bool = False) -> None:
        self.per_table = per_table
        self.catalog = catalog
        self.dialect = dialect
        self.sql = sql
        self.ast = ast
        self.schemas = schemas
        self.params = list(params or [])
        self.fragments: list[Fragment] = []
        self.not_pushed: list[NotPushed] = []
        self.scopes = traverse_scope(ast)
        self.bases = self._base_tables()
        self.column_type = _column_type_lookup(self.bases)

    # -- driver ------------------------------------------------------------------------------------------

    def run(self) -> FederatedPlan:
        if not self.bases:
            return self._residual_plan()
        if self.per_table:
            self._collect_columns(set())
            self._build_fragments()
            return self._residual_plan()
        whole = self._subtree_fragment(self.ast, self.bases, "whole query")
        if whole is not None:
            return FederatedPlan(self.sql, [whole], None, whole.schema)
        self._push_subqueries()
        self._factor_ors()
        moved = self._push_filters()
        moved |= self._group_joins()
        moved |= self._push_partial_aggregates(moved)
        self._collect_columns(moved)
        self._push_limits()
        self._build_fragments()
        self._share_fragments()
        return self._residual_plan()

    def _next_id(self) -> str:
        return f"__fragment_{len(self.fragments)}"

    def _residual_plan(self) -> FederatedPlan:
        if self._passes_through():
            # the residual only renames nothing and filters nothing: stream the one fragment as is
            return FederatedPlan(self.sql, self.fragments, None, self.fragments[0].schema, self.not_pushed)
        names = _distinct_output_names(self.ast)
        residual = self.ast.sql(dialect=RESIDUAL_DIALECT)
        typed = self._bound(self.ast).sql(dialect=RESIDUAL_DIALECT)
        schema, plan_text = residual_schema(typed, {f.id: f.schema for f in self.fragments})
        plan = FederatedPlan(
            self.sql, self.fragments, residual, schema, self.not_pushed, plan_text, residual_ast=self.ast,
            joins=self._fragment_joins(), local_filters=self._local_filters(),
        )
        return plan.with_output_names(names) if names else plan

    def _semi_join(self, scope: Scope, conjunct: exp.Expression, resolve):
        """``t.k IN (SELECT * FROM "__fragment_n")`` over a one-column fragment: n's values restrict t's
        fragment (rows of t with other keys fail the IN). Returns the directed join, or None."""
        if not isinstance(conjunct, exp.In) or not isinstance(conjunct.this, exp.Column):
            return None
        query = conjunct.args.get("query")
        inner = query.this if isinstance(query, exp.Subquery) else None
        if not isinstance(inner, exp.Select) or inner.args.get("where") or inner.args.get("joins"):
            return None
        table = inner.find(exp.From).this if inner.find(exp.From) else None
        build = next((f for f in self.fragments if isinstance(table, exp.Table) and f.id == table.name), None)
        if build is None or len(build.schema) != 1:
            return None
        probe, outer, use = resolve(scope, conjunct.this.table)
        if probe is None or outer:
            return None
        return (build.id, build.schema.names[0], probe, conjunct.this.name, False, 0, use)

    def _local_filters(self) -> dict[str, tuple[str, exp.Expression]]:
        """fragment id -> (alias, conjuncts of its table that DataFusion applies): a dynamic filter built from
        that fragment applies them first, so its keys are as selective as the query."""
        filters: dict[str, tuple[str, exp.Expression] | None] = {}
        for b in self.bases:
            if b.fragment_id is None or b.partials is not None:
                continue
            local = (b.alias, exp.and_(*b.local)) if b.local else None
            if b.fragment_id in filters and filters[b.fragment_id] != local:
                local = None  # a shared fragment: only conditions every reader applies may narrow its keys
            filters[b.fragment_id] = local
        return {fid: local for fid, local in filters.items() if local is not None}

    def _passes_through(self) -> bool:
        """Whether the residual is ``SELECT a.c1 AS c1, ... FROM "__fragment_0" AS a`` over every column of
        the only fragment, in order: then DataFusion has nothing to do."""
        if len(self.fragments) != 1 or not isinstance(self.ast, exp.Select):
            return False
        select = self.ast
        if any(select.args.get(k) for k in ("joins", "where", "group", "having", "order", "limit", "offset",
                                             "distinct", "with", "qualify", "windows")):
            return False
        source = select.find(exp.From).this
        if not isinstance(source, exp.Table) or source.name != self.fragments[0].id:
            return False
        outputs = []
        for projection in select.expressions:
            inner = projection.this if isinstance(projection, exp.Alias) else projection
            if not isinstance(inner, exp.Column) or inner.name != projection.alias_or_name:
                return False
            outputs.append(inner.name)
        return outputs == self.fragments[0].schema.names

    def _bound(self, expression: exp.Expression) -> exp.Expression:
        return substitute_parameters(expression, self.params) if self.params else expression

    # -- tables and scopes ---------------------------------------------------------------------------------

    def _base_tables(self) -> list[_BaseTable]:
        bases = []
        for scope in self.scopes:
            for alias, source in scope.selected_sources.items():
                node = source[1] if isinstance(source, tuple) else source
                if isinstance(node, exp.Table) and node.args.get("catalog") and node.args.get("db"):
                    ref = TableRef(node.catalog, node.db, node.name)
                    bases.append(_BaseTable(node, ref, alias, scope, self.schemas[ref]))
        return bases

    def _owner(self, scope: Scope | None, alias: str) -> tuple[Scope | None, _BaseTable | None]:
        """The scope that defines ``alias`` as seen from ``scope``, and the base table it names (if any)."""
        while scope is not None and alias:
            if alias in scope.sources:
                for b in self.bases:
                    if b.scope is scope and b.alias == alias:
                        return scope, b
                return scope, None
            scope = scope.parent
        return None, None

    # -- pass 1/2: whole query and sub-queries -------------------------------------------------------------

    def _subtree_fragment(self, expression: exp.Expression, bases: list[_BaseTable], what: str) -> Fragment | None:
        """A fragment running ``expression`` whole in its single source, or None when it cannot."""
        sources = {b.ref.source for b in bases}
        if len(sources) != 1:
            return None
        source = sources.pop()
        connector = self.catalog.connector(source)
        if not connector.capabilities.full_query or _read_per_table(connector):
            return None
        if any(not (t.args.get("catalog") and t.args.get("db")) for t in expression.find_all(exp.Table)):
            return None  # reads a CTE defined outside
        if unpushable_reason(expression, connector.capabilities, self.column_type, connector.dialect):
            return None
        pushed, oracle = expression.copy(), self._bound(expression.copy())
        _order_by_computed_outputs(pushed)
        for table in _source_tables(pushed):
            target = connector.table_expression(table.db, table.name)
            target.set("alias", table.args.get("alias"))
            table.replace(target)
        refs = sorted({b.ref for b in bases})
        oracle_names = {ref: f"__table_{i}" for i, ref in enumerate(refs)}
        for table in _source_tables(oracle):
            name = oracle_names[TableRef(table.catalog, table.db, table.name)]
            table.replace(exp.Table(this=exp.to_identifier(name, quoted=True), alias=table.args.get("alias")))
        try:
            schema, _ = residual_schema(
                oracle.sql(dialect=RESIDUAL_DIALECT), {oracle_names[r]: self.schemas[r] for r in refs}
            )
        except GatewayError:
            return None  # DataFusion cannot type it on its own; the per-table plan says why
        fragment = Fragment(
            id=self._next_id(), source=source, sql=pushed.sql(dialect=connector.dialect), schema=schema,
            tables=[str(r) for r in refs], pushed=[what], ast=pushed, dialect=connector.dialect,
        )
        self.fragments.append(fragment)
        return fragment

    def _push_subqueries(self) -> None:
        pushed_scopes: list[Scope] = []
        for scope in reversed(self.scopes):  # outermost first: push the largest sub-tree
            if scope.is_root or not isinstance(scope.expression, exp.Select):
                continue
            if any(_within(scope, done) for done in pushed_scopes):
                continue
            inside = [b for b in self.bases if _within(b.scope, scope)]
            if not inside or self._correlated(scope):
                continue
            fragment = self._subtree_fragment(scope.expression, inside, "whole sub-query")
            if fragment is None:
                continue
            reference = exp.Table(this=exp.to_identifier(fragment.id, quoted=True))
            parent = scope.expression.parent
            if isinstance(parent, exp.Subquery) and scope.is_derived_table:
                reference.set("alias", parent.args.get("alias"))
                parent.replace(reference)
            else:  # CTE body, IN/scalar sub-query, EXISTS
                scope.expression.replace(exp.select("*").from_(reference))
            pushed_scopes.append(scope)
            self.bases = [b for b in self.bases if b not in inside]

    def _correlated(self, scope: Scope) -> bool:
        for sub in self.scopes:
            if not _within(sub, scope):
                continue
            for column in sub.columns:
                owner, _ = self._owner(sub, column.table)
                if column.table and owner is not None and not _within(owner, scope):
                    return True
        return False

    # -- pass 3: filters -----------------------------------------------------------------------------------

    def _by_scope(self) -> list[list[_BaseTable]]:
        grouped: dict[int, list[_BaseTable]] = {}
        for b in self.bases:
            grouped.setdefault(id(b.scope), []).append(b)
        return list(grouped.values())

    def _reason(self, conjunct: exp.Expression, source: str) -> str | None:
        connector = self.catalog.connector(source)
        if not connector.capabilities.filter:
            return "the source does not filter"
        return unpushable_reason(conjunct, connector.capabilities, self.column_type, connector.dialect)

    def _factor_ors(self) -> None:
        """``(a AND x) OR (a AND y)`` -> ``a AND (x OR y)`` in WHERE clauses, so a join or filter condition
        repeated in every branch (TPC-H Q19's ``p_partkey = l_partkey``) is seen as one."""
        for scope in self.scopes:
            select = scope.expression
            where = select.args.get("where") if isinstance(select, exp.Select) else None
            if where is None:
                continue
            conjuncts = []
            for conjunct in _conjuncts(where):
                conjuncts.extend(_factor_or(conjunct) if isinstance(conjunct, exp.Or) else [conjunct])
            where.set("this", exp.and_(*conjuncts, copy=False))

    def _push_implied_filters(self, conjunct: exp.Or, by_alias: dict[str, _BaseTable], targets: set[str]) -> None:
        """From an OR across tables, each table's own part: if every branch constrains table T, then
        ``branch1_T OR branch2_T ...`` holds for every row that can pass, so T's fragment may apply it (a
        superset filter; the OR itself stays in the residual)."""
        branches = list(conjunct.flatten()) if isinstance(conjunct, exp.Or) else [conjunct]
        for alias, base in by_alias.items():
            if alias not in targets:
                continue
            parts = []
            for branch in branches:
                own = [c for c in (branch.flatten() if isinstance(branch, exp.And) else [branch])
                       if _single_alias(c, by_alias) is base]
                if not own:
                    break
                parts.append(exp.and_(*(c.copy() for c in own)))
            else:
                implied = exp.or_(*parts)
                connector = self.catalog.connector(base.ref.source)
                if self._reason(implied, base.ref.source) is None or (
                    connector.capabilities.filter
                    and superset_pushable(implied, connector.capabilities, self.column_type, connector.dialect)
                ):
                    base.filters.append(implied)

    def _push_filters(self) -> set[int]:
        """Move single-table conjuncts into fragments; returns the ids of the column nodes moved."""
        moved: set[int] = set()
        for scoped in self._by_scope():
            select = scoped[0].scope.expression
            if not isinstance(select, exp.Select):
                continue
            by_alias = {b.alias: b for b in scoped}
            null_supplying, containers = _join_structure(select)
            for container, targets in containers:
                kept = []
                for conjunct in _conjuncts(container):
                    base = _single_alias(conjunct, by_alias)
                    if base is None and isinstance(conjunct, exp.Or) and not _has_subquery(conjunct):
                        self._push_implied_filters(conjunct, by_alias, targets - null_supplying)
                    if base is None or base.alias not in targets or (
                        base.alias in null_supplying and not isinstance(container, exp.Join)
                    ):
                        kept.append(conjunct)
                        continue
                    # not sqlglot's simplify: it rewrote `x IS NULL IS NULL` to `x IS TRUE` (wrong)
                    candidate = _fold_date_arithmetic(conjunct.copy())
                    reason = self._reason(candidate, base.ref.source)
                    if reason:
                        connector = self.catalog.connector(base.ref.source)
                        if superset_pushable(candidate, connector.capabilities, self.column_type, connector.dialect):
                            base.filters.append(candidate)  # a superset there; re-checked exactly here
                            reason = f"{reason}; pushed as a wider filter and re-checked"
                        self.not_pushed.append(NotPushed(f"filter {conjunct.sql(self.dialect)} on {base.ref}", reason))
                        kept.append(conjunct)
                        if not isinstance(container, exp.Join) or not container.side:
                            base.local.append(conjunct.copy())
                    else:
                        base.filters.append(candidate)
                        moved.update(id(c) for c in conjunct.find_all(exp.Column))
                removed = [c for c in _conjuncts(container) if not any(c is k for k in kept)]
                if not kept and removed and isinstance(container, exp.Join) and container.side:
                    # an outer join needs a condition: keep one pushed conjunct (redundant, still correct)
                    kept = [removed[0]]
                    moved.difference_update(id(c) for c in removed[0].find_all(exp.Column))
                _set_condition(select, container, kept)
        return moved

    # -- pass 4: join groups ---------------------------------------------------------------------------------

    def _group_joins(self) -> set[int]:
        """Join tables of one source inside it when they are inner-joined by pushable conjuncts."""
        moved: set[int] = set()
        for scoped in self._by_scope():
            select = scoped[0].scope.expression
            if len(scoped) < 2 or not isinstance(select, exp.Select):
                continue
            joins = select.args.get("joins") or []
            if any(j.side or (j.kind or "").upper() not in ("", "INNER", "CROSS") for j in joins):
                continue  # outer/semi joins keep their order; only inner joins commute
            by_alias = {b.alias: b for b in scoped}
            parent = {b.alias: b.alias for b in scoped}
            find = _union_find(parent)

            edges: list[tuple[exp.Expression, exp.Expression, set[str]]] = []
            for container in [select.args.get("where"), *joins]:
                if container is None:
                    continue
                for conjunct in _conjuncts(container):
                    aliases = {c.table for c in conjunct.find_all(exp.Column)}
                    if len(aliases) < 2 or not aliases <= by_alias.keys() or _has_subquery(conjunct):
                        continue
                    sources = {by_alias[a].ref.source for a in aliases}
                    if len(sources) != 1:
                        continue
                    source = sources.pop()
                    connector = self.catalog.connector(source)
                    reason = None if connector.capabilities.full_query else "the source does not run joins"
                    if _read_per_table(connector):
                        reason = "the source's tables are read per table, for the partition cache"
                    reason = reason or unpushable_reason(
                        conjunct, connector.capabilities, self.column_type, connector.dialect
                    )
                    if reason:
                        self.not_pushed.append(NotPushed(f"join condition {conjunct.sql(self.dialect)}", reason))
                        continue
                    edges.append((conjunct, container, aliases))
                    first, *rest = sorted(aliases)
                    for other in rest:
                        parent[find(other)] = find(first)
            components: dict[str, list[_BaseTable]] = {}
            for b in scoped:
                components.setdefault(find(b.alias), []).append(b)
            for members in components.values():
                if len(members) < 2:
                    continue
                aliases = {m.alias for m in members}
                group = _JoinGroup(members=members, conditions=[])
                for conjunct, container, conj_aliases in edges:
                    if conj_aliases <= aliases:
                        group.conditions.append(conjunct.copy())
                        moved.update(id(c) for c in conjunct.find_all(exp.Column))
                        kept = [c for c in _conjuncts(container) if c is not conjunct]
                        _set_condition(select, container, kept)
                for m in members:
                    m.group = group
        return moved

    # -- pass 4b: partial aggregation below a cross-source join ----------------------------------------------

    def _push_partial_aggregates(self, pushed: set[int]) -> set[int]:
        """Aggregate one table's rows in its source before a cross-source join, when every aggregate reads
        only that table: the fragment groups by the table's columns the rest of the query still uses and
        returns partial SUM/COUNT/MIN/MAX; the residual combines them. Rows with equal keys join with the
        same rows, so SUM of partial sums (COUNT: of partial counts) equals the SUM over the joined rows.

            SELECT c.region, sum(o.amount) FROM pg.c JOIN lake.o ON o.cid = c.id GROUP BY c.region
            -> lake: SELECT o.cid, SUM(o.amount) AS __partial_0 FROM o GROUP BY o.cid
               residual: ... CAST(SUM("o"."__partial_0") AS DECIMAL(22, 2)) ... GROUP BY c.region
        """
        moved: set[int] = set()
        for scoped in self._by_scope():
            select = scoped[0].scope.expression
            if len(scoped) < 2 or not isinstance(select, exp.Select):
                continue
            if select.args.get("distinct") or any(
                j.side or (j.kind or "").upper() not in ("", "INNER", "CROSS") for j in select.args.get("joins") or []
            ):
                continue
            aggregates = [a for a in select.find_all(exp.AggFunc) if a.find_ancestor(exp.Select) is select]
            if not aggregates or any(_has_local(e, (exp.Window,)) for e in select.expressions):
                continue
            owners = {c.table for a in aggregates for c in a.find_all(exp.Column)}
            target = next((b for b in scoped if {b.alias} == owners), None)
            if target is None and not owners:
                continue
            if target is None or target.group is not None or target.limit is not None:
                continue
            connector = self.catalog.connector(target.ref.source)
            if not connector.capabilities.full_query or _read_per_table(connector):
                continue
            if not all(isinstance(a, exp.Sum | exp.Count | exp.Min | exp.Max) and not a.find(exp.Distinct)
                       and not _has_subquery(a.this if a.this is not None else exp.Star()) for a in aggregates):
                continue
            if any(self._owner(sub, c.table)[1] is target for sub in self.scopes
                   if sub is not target.scope and _within(sub, target.scope) for c in sub.columns):
                continue  # referenced from a sub-query: keep the table's rows
            keys = self._partial_keys(target, aggregates, pushed)
            primary_key = connector_primary_key(connector, target.ref)
            if len(keys) > 1 or (len(primary_key) == 1 and keys == set(primary_key)):
                # several keys, or the table's key: (nearly) one group per row, nothing saved
                self.not_pushed.append(NotPushed(
                    f"partial aggregation of {target.ref}",
                    f"grouping by {', '.join(sorted(keys))} would hardly reduce the rows"))
                continue
            plan = self._partial_plan(target, aggregates, connector)
            if plan is None:
                continue
            partials, replacements, names = plan
            for aggregate, replacement, name in zip(aggregates, replacements, names, strict=True):
                moved.update(id(c) for c in aggregate.find_all(exp.Column))
                if aggregate.parent is select:  # an unnamed output keeps the name DataFusion gives the original
                    replacement = exp.alias_(replacement, name, quoted=True)
                aggregate.replace(replacement)
            target.partials = partials
        return moved

    def _partial_keys(self, target: _BaseTable, aggregates: list[exp.AggFunc], pushed: set[int]) -> set[str]:
        """The table's columns the residual uses outside its aggregates (the partial aggregation's group
        keys); columns of conditions already moved into fragments (``pushed``) do not count."""
        inside = {id(c) for a in aggregates for c in a.find_all(exp.Column)} | pushed
        keys = set()
        for scope in self.scopes:
            for column in scope.columns:
                if id(column) not in inside and self._owner(scope, column.table)[1] is target:
                    keys.add(column.name)
        return keys

    def _partial_plan(self, target: _BaseTable, aggregates: list[exp.AggFunc], connector):
        """((name, partial aggregate) per aggregate, residual replacement per aggregate), or None when a
        partial aggregate cannot be pushed to the table's source or typed by DataFusion."""
        partials: list[tuple[str, exp.Expression]] = []
        replacements: list[exp.Expression] = []
        names: list[str] = []
        plain = plain_schema(target.schema)
        for i, aggregate in enumerate(aggregates):
            name = f"__partial_{i}"
            partial = aggregate.copy()
            reason = unpushable_reason(partial, connector.capabilities, self.column_type, connector.dialect)
            if reason:
                self.not_pushed.append(NotPushed(f"partial aggregate {aggregate.sql(self.dialect)}", reason))
                return None
            # DataFusion types and names the original aggregate over the table alone
            probe = exp.select(aggregate.copy()).from_(exp.Table(
                this=exp.to_identifier("__t", quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(target.alias, quoted=True))))
            try:
                schema, _ = residual_schema(self._bound(probe).sql(dialect=RESIDUAL_DIALECT), {"__t": plain})
            except GatewayError:
                return None
            column = exp.column(name, table=target.alias, quoted=True)
            if isinstance(aggregate, exp.Count):
                combined: exp.Expression = exp.func("COALESCE", exp.Sum(this=column), exp.Literal.number(0))
            elif isinstance(aggregate, exp.Sum):
                combined = exp.Cast(this=exp.Sum(this=column), to=exp.DataType.build(
                    sqlglot_type(schema.field(0).type), dialect=RESIDUAL_DIALECT))
            else:
                combined = type(aggregate)(this=column)
            partials.append((name, partial))
            replacements.append(combined)
            names.append(schema.field(0).name)
        return partials, replacements, names

    # -- pass 5: columns ---------------------------------------------------------------------------------------

    def _collect_columns(self, moved: set[int]) -> None:
        """Columns each fragment must return: those the residual still uses (pushed conjuncts are gone)."""
        for scope in self.scopes:
            for column in scope.columns:
                if id(column) in moved:
                    continue
                _, base = self._owner(scope, column.table)
                if base is not None and base in self.bases:
                    base.columns.add(column.name)

    # -- pass 6: LIMIT and top-N ---------------------------------------------------------------------------

    def _push_limits(self) -> None:
        for scoped in self._by_scope():
            select = scoped[0].scope.expression
            if not isinstance(select, exp.Select) or not isinstance(select.args.get("limit"), exp.Limit):
                continue
            limit = _int_literal(select.args["limit"].expression)
            offset = _int_literal(select.args["offset"].expression) if select.args.get("offset") else 0
            base = scoped[0]
            connector = self.catalog.connector(base.ref.source)
            order = select.args.get("order")
            order_reason = None
            if order is not None:
                caps = connector.capabilities
                order = _order_over_columns(order, base.alias)
                if not caps.top_n:
                    order_reason = "the source does not sort"
                elif order is None:
                    order_reason = "ORDER BY is not over the table's own columns"
                else:
                    order_reason = unpushable_reason(
                        order, _with_order(caps), self.column_type, connector.dialect
                    )
            blockers = {
                "a join": len(scoped) > 1 or bool(select.args.get("joins")),
                "a filter that stays in DataFusion": select.args.get("where") is not None,
                "GROUP BY / aggregates": bool(select.args.get("group") or select.args.get("having"))
                or any(_has_local(e, (exp.AggFunc,)) for e in select.expressions),
                "DISTINCT": bool(select.args.get("distinct")),
                f"ORDER BY that cannot be pushed ({order_reason})": order_reason is not None,
                "a window function": any(_has_local(e, (exp.Window,)) for e in select.expressions),
                "a non-constant LIMIT/OFFSET": limit is None or offset is None,
            }
            blocked = [what for what, present in blockers.items() if present]
            if blockers["a join"]:
                continue  # the LIMIT applies to the join's result; nothing to say per table
            if blocked:
                self.not_pushed.append(NotPushed(f"LIMIT on {base.ref}", f"the query has {', '.join(blocked)}"))
            elif not connector.capabilities.limit:
                self.not_pushed.append(NotPushed(f"LIMIT on {base.ref}", "the source does not apply LIMIT"))
            else:
                base.limit = limit + offset
                if order is not None:
                    base.order = [_explicit_nulls(o.copy()) for o in order.expressions]

    # -- fragments and the residual -------------------------------------------------------------------------

    def _build_fragments(self) -> None:
        groups: list[_JoinGroup] = []
        for base in list(self.bases):
            if base.group is not None:
                if base.group not in groups:
                    groups.append(base.group)
                continue
            fragment = self._table_fragment(base)
            base.fragment_id = fragment.id
            base.node.replace(exp.Table(
                this=exp.to_identifier(fragment.id, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(base.alias, quoted=True)),
            ))
        for group in groups:
            self._group_fragment(group)

    def _share_fragments(self) -> None:
        """Fragments that read the same rows of one source (same tables, joins, filters, grouping: they differ
        only in their columns) become one, with the union of their columns: the source is read once (TPC-H
        Q11, Q17 read one table twice). DISTINCT fragments stay apart (more columns, other rows), and so do
        fragments the residual reads with ``SELECT *`` (whole sub-queries). A dynamic filter restricts a shared
        fragment only when it joins every reference (``gateway.dynamic_filters.choose``)."""
        starred = {t.name for t in self.ast.find_all(exp.Table)
                   if isinstance(t.parent_select, exp.Select) and any(
                       isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
                       for p in t.parent_select.expressions)}

        def shape(fragment: Fragment) -> exp.Expression | None:
            if not isinstance(fragment.ast, exp.Select) or fragment.ast.args.get("distinct"):
                return None
            if fragment.id in starred:  # read as SELECT *: more columns would change the residual
                return None
            bare = fragment.ast.copy()
            bare.set("expressions", [])
            return bare

        shapes = {f.id: shape(f) for f in self.fragments}  # a merge changes columns only, not the shape
        kept: list[Fragment] = []
        renamed: dict[str, str] = {}
        for fragment in self.fragments:
            bare = shapes[fragment.id]
            target = next((i for i, k in enumerate(kept) if bare is not None and k.source == fragment.source
                           and shapes[k.id] == bare), None)
            if target is None:
                kept.append(fragment)
                continue
            into = kept[target]
            have = {p.alias_or_name: p for p in into.ast.expressions}
            extra = [(p, fragment.schema.field(p.alias_or_name)) for p in fragment.ast.expressions
                     if p.alias_or_name not in have]
            if any(have[p.alias_or_name] != p for p in fragment.ast.expressions if p.alias_or_name in have):
                kept.append(fragment)  # one name, two expressions: cannot share
                continue
            select = into.ast.copy()
            select.set("expressions", [*select.expressions, *(p.copy() for p, _ in extra)])
            schema = pa.schema([*into.schema, *(f for _, f in extra)])
            kept[target] = dataclasses.replace(into, ast=select, sql=select.sql(dialect=into.dialect), schema=schema,
                                               pushed=[*into.pushed, f"shared with {fragment.id}"])
            renamed[fragment.id] = into.id
        if not renamed:
            return
        self.fragments = kept
        for table in self.ast.find_all(exp.Table):
            if table.name in renamed:
                table.set("this", exp.to_identifier(renamed[table.name], quoted=True))
        for base in self.bases:
            if base.fragment_id in renamed:
                base.fragment_id = renamed[base.fragment_id]

    def _projections(self, base: _BaseTable, prefix: bool) -> tuple[list[exp.Expression], list[pa.Field]]:
        names = [n for n in base.schema.names if n in base.columns]
        if not names and not prefix:
            names = base.schema.names[:1]  # a row count still needs one column
        projections, fields = [], []
        for f in (base.schema.field(n) for n in names):
            column: exp.Expression = exp.column(f.name, table=base.alias, quoted=True)
            if f.metadata and f.metadata.get(_READ_AS_TEXT) == b"1":
                column = exp.cast(column, "TEXT")
            name = f"{base.alias}.{f.name}" if prefix else f.name
            projections.append(exp.alias_(column, name, quoted=True))
            fields.append(pa.field(name, f.type, f.nullable, metadata=f.metadata))
        return projections, fields

    def _table_expression(self, base: _BaseTable) -> exp.Table:
        table = self.catalog.connector(base.ref.source).table_expression(base.ref.schema, base.ref.table)
        table.set("alias", exp.TableAlias(this=exp.to_identifier(base.alias, quoted=True)))
        return table

    def _table_fragment(self, base: _BaseTable) -> Fragment:
        connector = self.catalog.connector(base.ref.source)
        if base.partials is not None:
            return self._partial_fragment(base, connector)
        projections, fields = self._projections(base, prefix=False)
        select = exp.select(*projections).from_(self._table_expression(base))
        pushed = [f"projection ({len(fields)} of {len(base.schema)} columns)"]
        if base.filters:
            select = select.where(exp.and_(*base.filters))
            pushed.append(f"filter {exp.and_(*base.filters).sql(self.dialect)}")
        if base.order:
            select = select.order_by(*base.order)
            pushed.append("order by " + ", ".join(o.sql(self.dialect) for o in base.order))
        if base.limit is not None:
            select = select.limit(base.limit)
            pushed.append(f"limit {base.limit}")
        fragment = Fragment(
            id=self._next_id(), source=base.ref.source, sql=select.sql(dialect=connector.dialect),
            schema=pa.schema(fields), tables=[str(base.ref)], pushed=pushed, ast=select,
            dialect=connector.dialect,
        )
        self.fragments.append(fragment)
        return fragment

    def _partial_fragment(self, base: _BaseTable, connector) -> Fragment:
        """The table grouped by the columns the residual uses, with the partial aggregates."""
        keys = [n for n in base.schema.names if n in base.columns]
        select = exp.select(
            *(exp.column(k, table=base.alias, quoted=True).as_(k, quoted=True) for k in keys),
            *(aggregate.as_(name, quoted=True) for name, aggregate in base.partials),
        ).from_(self._table_expression(base))
        if base.filters:
            select = select.where(exp.and_(*base.filters))
        if keys:
            select = select.group_by(*(exp.column(k, table=base.alias, quoted=True) for k in keys))
        oracle = select.copy()
        oracle.find(exp.From).this.replace(exp.Table(
            this=exp.to_identifier("__t", quoted=True),
            alias=exp.TableAlias(this=exp.to_identifier(base.alias, quoted=True))))
        schema, _ = residual_schema(self._bound(oracle).sql(dialect=RESIDUAL_DIALECT), {"__t": base.schema})
        pushed = [f"partial aggregation: {', '.join(a.sql(self.dialect) for _, a in base.partials)}"
                  + (f" by {', '.join(keys)}" if keys else "")]
        if base.filters:
            pushed.append(f"filter {exp.and_(*base.filters).sql(self.dialect)}")
        fragment = Fragment(
            id=self._next_id(), source=base.ref.source, sql=select.sql(dialect=connector.dialect), schema=schema,
            tables=[str(base.ref)], pushed=pushed, ast=select, dialect=connector.dialect,
        )
        self.fragments.append(fragment)
        return fragment

    def _group_fragment(self, group: _JoinGroup) -> Fragment:
        members = sorted(group.members, key=lambda m: _position(m.node))
        source = members[0].ref.source
        connector = self.catalog.connector(source)
        projections, fields = [], []
        for m in members:
            p, f = self._projections(m, prefix=True)
            projections += p
            fields += f
        if not projections:
            p, f = self._projections(members[0], prefix=False)
            projections, fields = p, f
        select = exp.select(*projections).from_(self._table_expression(members[0]))
        for m in members[1:]:
            select = select.join(self._table_expression(m), join_type="cross")
        conditions = group.conditions + [f for m in members for f in m.filters]
        select = select.where(exp.and_(*conditions))
        fragment = Fragment(
            id=self._next_id(), source=source, sql=select.sql(dialect=connector.dialect),
            schema=pa.schema(fields), tables=[str(m.ref) for m in members],
            pushed=[f"join of {', '.join(m.alias for m in members)}",
                    f"filter {exp.and_(*conditions).sql(self.dialect)}"],
            ast=select, dialect=connector.dialect,
        )
        self.fragments.append(fragment)
        group.alias = f"__g{len(self.fragments) - 1}"
        # the residual reads the group's columns as "__gN"."alias.column"
        member_aliases = {m.alias: m for m in members}
        for scope in self.scopes:
            for column in scope.columns:
                _, base = self._owner(scope, column.table)
                if base is not None and base.alias in member_aliases and base.group is group:
                    column.set("this", exp.to_identifier(f"{column.table}.{column.name}", quoted=True))
                    column.set("table", exp.to_identifier(group.alias, quoted=True))
        select_node = members[0].scope.expression
        first, others = members[0], members[1:]
        first.node.replace(exp.Table(
            this=exp.to_identifier(fragment.id, quoted=True),
            alias=exp.TableAlias(this=exp.to_identifier(group.alias, quoted=True)),
        ))
        leftover: list[exp.Expression] = []
        for m in others:
            join = m.node.parent
            if isinstance(join, exp.Join):
                if join.args.get("on") is not None:
                    leftover += [c for c in _conjuncts(join) if not isinstance(c, exp.Boolean)]
                join.pop()
        if leftover:
            where = select_node.args.get("where")
            existing = _conjuncts(where) if where is not None else []
            select_node.set("where", exp.Where(this=exp.and_(*existing, *leftover, copy=False)))
        return fragment

    def _fragment_joins(self) -> list[tuple[str, str, str, str, bool, int, int]]:
        """Equi-joins between fragments in the residual, candidates for dynamic filters:
        ``(fragment_a, column_a, fragment_b, column_b, either_way, use_a, use_b)``; ``use_*`` tells which
        reference of a fragment the residual reads more than once (a shared fragment) the join is on.

        An inner-join condition of one scope works either way. A correlation ``inner.k = outer.k`` of an
        EXISTS/IN/scalar sub-query only restricts the inner side (its rows with other keys never meet an outer
        row), so it is recorded outer -> inner, ``either_way`` False.
        """

        occurrences: dict[int, int] = {}  # table node -> its number among the references to its fragment
        counts: dict[str, int] = {}
        for table in self.ast.find_all(exp.Table):
            if table.name.startswith("__fragment_"):
                occurrences[id(table)] = counts.get(table.name, 0)
                counts[table.name] = occurrences[id(table)] + 1

        def own_fragments(select: exp.Select) -> dict[str, tuple[str, int]]:
            tables = {}
            from_ = select.find(exp.From)
            items = ([from_.this] if from_ is not None else []) + [j.this for j in select.args.get("joins") or []]
            for item in items:
                if isinstance(item, exp.Table) and item.name.startswith("__fragment_"):
                    tables[item.alias_or_name] = (item.name, occurrences.get(id(item), 0))
            return tables

        owned = {id(s): own_fragments(s.expression) for s in self.scopes if isinstance(s.expression, exp.Select)}

        def resolve(scope: Scope, alias: str) -> tuple[str | None, bool, int]:
            """(fragment id, whether it belongs to an enclosing scope, which reference of the fragment it is)
            of a column's table alias."""
            outer = False
            while scope is not None:
                if alias in owned.get(id(scope), {}):
                    fragment, occurrence = owned[id(scope)][alias]
                    return fragment, outer, occurrence
                if alias in scope.sources:
                    return None, outer, 0
                scope, outer = scope.parent, True
            return None, outer, 0

        joins = []
        for scope in self.scopes:
            select = scope.expression
            if not isinstance(select, exp.Select) or any(
                j.side or (j.kind or "").upper() not in ("", "INNER", "CROSS") for j in select.args.get("joins") or []
            ):
                continue
            for container in [select.args.get("where"), *(select.args.get("joins") or [])]:
                if container is None:
                    continue
                for conjunct in _conjuncts(container):
                    semi = self._semi_join(scope, conjunct, resolve)
                    if semi is not None:
                        joins.append(semi)
                        continue
                    if not (isinstance(conjunct, exp.EQ) and isinstance(conjunct.this, exp.Column)
                            and isinstance(conjunct.expression, exp.Column)):
                        continue
                    (a, a_outer, a_use), (b, b_outer, b_use) = (
                        resolve(scope, c.table) for c in (conjunct.this, conjunct.expression))
                    if a is None or b is None or a == b:
                        continue
                    left, right = conjunct.this.name, conjunct.expression.name
                    if not a_outer and not b_outer:
                        joins.append((a, left, b, right, True, a_use, b_use))
                    elif a_outer != b_outer and scope.is_subquery:
                        joins.append((a, left, b, right, False, a_use, b_use) if a_outer
                                     else (b, right, a, left, False, b_use, a_use))
        return joins


# -- helpers -----------------------------------------------------------------------------------------------

def connector_primary_key(connector, ref: TableRef) -> list[str]:
    """The table's primary key, or [] when the source cannot tell (a hint for the planner)."""
    try:
        return connector.primary_key(ref.schema, ref.table)
    except Exception:
        return []


def _read_per_table(connector) -> bool:
    """Sources with a cache freshness rule are read table by table, so cached partitions can serve them."""
    options = connector.options
    return options.get("cache_ttl_s") is not None or bool(options.get("cache_fingerprint"))


def residual_schema(sql: str, tables: dict[str, pa.Schema]) -> tuple[pa.Schema, str]:
    """Plan ``sql`` in DataFusion over empty tables of the given schemas: (output schema, optimized plan).

    No data is read. Raises InvalidRequestError with DataFusion's message when it cannot plan the query.
    """
    try:
        # the analyzed plan's schema: DataFrame.schema() is taken before type coercion (CASE WHEN .. THEN 1
        # ELSE <decimal> END says int64 there, and the batches are decimal128(22, 2))
        optimized, frame = plan_over_empty(sql, tables)
        return frame.schema(), str(optimized.display_indent())
    except Exception as exc:
        message = str(exc).splitlines()[0]
        raise InvalidRequestError(f"the query cannot be planned: {message}") from exc


def _distinct_output_names(ast: exp.Expression) -> list[str] | None:
    """Give the residual's top-level outputs that share a name distinct aliases (``id``, ``id_2``): DataFusion
    refuses two aliased projections of one name (a star over a join pushed as one fragment reads
    ``"__g0"."c.id" AS "id", "__g0"."t.id" AS "id"``). Returns the names the outputs must carry in the end,
    or None when they were distinct already."""
    if not isinstance(ast, exp.Select):
        return None
    names = [p.alias_or_name for p in ast.expressions]
    if len(set(names)) == len(names):
        return None
    taken, seen = set(names), set()
    for projection in ast.expressions:
        name = projection.alias_or_name
        if name in seen:
            suffix = 2
            while f"{name}_{suffix}" in taken:
                suffix += 1
            taken.add(f"{name}_{suffix}")
            inner = projection.this if isinstance(projection, exp.Alias) else projection
            projection.replace(exp.alias_(inner.copy(), f"{name}_{suffix}", quoted=True))
        seen.add(name)
    return names


def _source_tables(ast: exp.Expression) -> list[exp.Table]:
    """Base-table nodes (resolved to ``source.schema.table``) of a qualified AST."""
    return [t for t in ast.find_all(exp.Table) if t.args.get("catalog") and t.args.get("db")]


def _within(scope: Scope | None, ancestor: Scope) -> bool:
    while scope is not None:
        if scope is ancestor:
            return True
        scope = scope.parent
    return False


def _column_type_lookup(bases: list[_BaseTable]):
    """A lookup column -> catalog field, valid when every alias names one table across scopes."""
    by_alias: dict[str, set[TableRef]] = {}
    for b in bases:
        by_alias.setdefault(b.alias, set()).add(b.ref)
    schema_of = {b.ref: b.schema for b in bases}

    def column_type(column: exp.Column) -> pa.Field | None:
        if not column.table:
            return output_type(column)
        refs = by_alias.get(column.table, set())
        if len(refs) != 1:
            return None
        schema = schema_of[next(iter(refs))]
        index = schema.get_field_index(column.name)
        return schema.field(index) if index >= 0 else None

    def output_type(column: exp.Column) -> pa.Field | None:
        """An ORDER BY/HAVING reference to an output: typed by the columns its projection computes on
        (text wins, then read-as-text, then float: the kinds the pushdown rules care about)."""
        projection = _output_projection(column)
        if projection is None:
            return None
        fields = [column_type(c) for c in projection.find_all(exp.Column)]
        if any(f is None for f in fields):
            return None
        for kind in (pa.types.is_string, lambda t: False, pa.types.is_floating):
            for f in fields:
                if kind(f.type) or (f.metadata and f.metadata.get(_READ_AS_TEXT) == b"1"):
                    return f
        return fields[0] if fields else pa.field(column.name, pa.int64())

    return column_type


def _output_projection(column: exp.Column) -> exp.Expression | None:
    """The expression an unqualified column names when it refers to an output alias of its SELECT."""
    select = column.find_ancestor(exp.Select)
    if select is None:
        return None
    for projection in select.expressions:
        if isinstance(projection, exp.Alias) and projection.alias == column.name:
            return projection.this
    return None


def _conjuncts(container: exp.Expression) -> list[exp.Expression]:
    condition = container.args.get("on") if isinstance(container, exp.Join) else container.this
    if condition is None:
        return []
    return list(condition.flatten()) if isinstance(condition, exp.And) else [condition]


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


def _factor_or(disjunction: exp.Or) -> list[exp.Expression]:
    """Conjuncts common to every branch of ``disjunction``, then the disjunction of what is left (dropped
    when a branch is left empty, since that branch is then true whenever the common part is)."""
    branches = [list(b.flatten()) if isinstance(b, exp.And) else [b] for b in disjunction.flatten()]
    common = [c for c in branches[0] if all(any(c == d for d in branch) for branch in branches[1:])]
    if not common:
        return [disjunction]
    rests = [[c for c in branch if not any(c == d for d in common)] for branch in branches]
    if any(not rest for rest in rests):
        return [c.copy() for c in common]
    return [c.copy() for c in common] + [exp.or_(*(exp.and_(*(c.copy() for c in rest)) for rest in rests))]


def _order_by_computed_outputs(query: exp.Expression) -> None:
    """ORDER BY keys naming a computed output (``ORDER BY "_col_2"``, an ordinal's reading) become the output's
    expression in parentheses, in place. Sources rewrite ORDER BY keys (MySQL's NULL-ordering emulation writes
    ``CASE WHEN <key> IS NULL``, and reads ``NOT (x IN (1)) IS NULL`` as ``NOT (... IS NULL)``): in
    parentheses the key stays one operand whatever the dialect does with it."""
    simple = (exp.Column, exp.Literal, exp.Paren, exp.Func, exp.AggFunc, exp.Window)
    for select in list(query.find_all(exp.Select)):
        order = select.args.get("order")
        if order is None:
            continue
        # SELECT DISTINCT orders by its outputs only: names stay names there
        distinct = bool(select.args.get("distinct"))
        outputs = {p.alias: p.this for p in select.expressions if isinstance(p, exp.Alias)}
        for ordered in order.expressions:
            key = ordered.this
            if isinstance(key, exp.Column) and not key.table and key.name in outputs:
                target = outputs[key.name]
                if isinstance(target, simple):
                    continue
                if distinct:  # the output itself in parentheses: MySQL's emulation copies it into the CASE
                    target.replace(exp.Paren(this=target.copy()))
                else:
                    key.replace(exp.Paren(this=target.copy()))
            elif not isinstance(key, simple):  # an expression key: the same expression, as one operand
                key.replace(exp.Paren(this=key.copy()))


def _fold_date_arithmetic(expression: exp.Expression) -> exp.Expression:
    """``DATE '1998-12-01' - INTERVAL '90' DAY`` -> ``CAST('1998-09-02' AS DATE)`` (and timestamps), in place:
    sources differ in interval syntax, a date literal is portable. Only constant date +/- interval is folded.

        >>> import sqlglot
        >>> _fold_date_arithmetic(sqlglot.parse_one("d <= DATE '1998-12-01' - INTERVAL '90' DAY")).sql()
        "d <= CAST('1998-09-02' AS DATE)"
    """
    for node in list(expression.find_all(exp.Add, exp.Sub)):
        operands = [node.this, node.expression]
        if not any(isinstance(o, exp.Interval) for o in operands) or any(
                o.find(exp.Column, exp.Subquery, exp.Parameter, exp.Placeholder) for o in operands):
            continue
        folded = simplify(node.copy())
        if isinstance(folded, exp.Cast) and isinstance(folded.this, exp.Literal):
            node.replace(folded)
    return expression


def _has_subquery(node: exp.Expression) -> bool:
    return bool(node.find(exp.Subquery, exp.Exists, exp.Select, exp.AggFunc, exp.Window))


def _single_alias(conjunct: exp.Expression, by_alias: dict[str, _BaseTable]) -> _BaseTable | None:
    if _has_subquery(conjunct):
        return None
    aliases = {c.table for c in conjunct.find_all(exp.Column)}
    if len(aliases) != 1:
        return None
    return by_alias.get(aliases.pop())


def _set_condition(select: exp.Select, container: exp.Expression, kept: list[exp.Expression]) -> None:
    """Keep only ``kept`` conjuncts in a WHERE or JOIN ... ON.

    Never leaves a literal ``ON TRUE``: DataFusion pushes it into the fragments' dataset scans, which
    cannot take a literal filter. An emptied inner join becomes a CROSS JOIN (outer joins keep a
    conjunct, see ``_push_filters``).
    """
    if isinstance(container, exp.Join):
        if kept:
            container.set("on", exp.and_(*kept, copy=False))
        elif container.args.get("on") is not None:
            container.set("on", None)
            container.set("kind", "CROSS")
    elif kept:
        container.set("this", exp.and_(*kept, copy=False))
    elif select.args.get("where") is container:
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


def _union_find(parent: dict[str, str]):
    """``find`` over a parent map (path halving); union by ``parent[find(a)] = find(b)``."""

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    return find


def _order_over_columns(order: exp.Order, alias: str) -> exp.Order | None:
    """``order`` with output-alias references replaced by the table columns they name, or None when a key
    is not a column of ``alias``."""
    targets = []
    for column in order.find_all(exp.Column):  # resolved on the original nodes, which know their SELECT
        projection = _output_projection(column) if not column.table else column
        if not isinstance(projection, exp.Column):
            return None
        targets.append(projection)
    order = order.copy()
    for column, target in zip(list(order.find_all(exp.Column)), targets, strict=True):
        column.replace(target.copy())
    columns = list(order.find_all(exp.Column))
    if not columns or any(c.table != alias for c in columns):
        return None
    return order


def _with_order(caps):
    import dataclasses

    return dataclasses.replace(caps, expressions=caps.expressions | {exp.Order, exp.Ordered})


def _explicit_nulls(ordered: exp.Ordered) -> exp.Ordered:
    """DataFusion puts NULLs last ascending and first descending; say so, so every dialect does the same."""
    ordered.set("nulls_first", bool(ordered.args.get("desc")) if ordered.args.get("nulls_first") is None
                else ordered.args["nulls_first"])
    return ordered


def _position(node: exp.Expression) -> int:
    """Text order of a table in its SELECT: FROM first, then joins in order."""
    parent = node.parent
    if isinstance(parent, exp.From):
        return -1
    if isinstance(parent, exp.Join) and parent.parent is not None:
        joins = parent.parent.args.get("joins") or []
        return next((i for i, j in enumerate(joins) if j is parent), 10_000)
    return 10_000
