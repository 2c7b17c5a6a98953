"""Pass 7: the fragments themselves, one per table (with its columns, filters, top-N or partial aggregates) and
one per join group; the residual's table references are replaced by fragment references.

    SELECT c.name FROM pg.public.customers AS c WHERE <pushed: c.region = 'north'>
    -> pg: SELECT "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE "c"."region" = 'north'
       residual: SELECT "c"."name" FROM "__fragment_0" AS "c"
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from connectors.base import Connector, Fragment
from planner.costs import estimate_fragment_rows
from planner.dialects import RESIDUAL_DIALECT
from planner.federation.residual import residual_schema
from planner.federation.sqlast import aliased_table, conjuncts, position
from planner.federation.state import BaseTable, FederationState, JoinGroup, read_as_text


def build_fragments(state: FederationState) -> None:
    """A fragment for each table outside a join group, then one for each join group, in that order."""
    groups: list[JoinGroup] = []
    for base in list(state.bases):
        if base.group is not None:
            if base.group not in groups:
                groups.append(base.group)
            continue
        fragment = table_fragment(state, base)
        base.fragment_id = fragment.id
        base.node.replace(aliased_table(fragment.id, base.alias))
    for group in groups:
        group_fragment(state, group)


def projections(base: BaseTable, prefix: bool) -> tuple[list[exp.Expression], list[pa.Field]]:
    """The table's needed columns as fragment outputs (``"alias.column"`` when ``prefix``: a join group's);
    read-as-text columns are cast to text in the source."""
    names = [n for n in base.schema.names if n in base.columns]
    if not names and not prefix:
        names = base.schema.names[:1]  # a row count still needs one column
    outputs, fields = [], []
    for f in (base.schema.field(n) for n in names):
        column: exp.Expression = exp.column(f.name, table=base.alias, quoted=True)
        if read_as_text(f):
            column = exp.cast(column, "TEXT")
        name = f"{base.alias}.{f.name}" if prefix else f.name
        outputs.append(exp.alias_(column, name, quoted=True))
        fields.append(pa.field(name, f.type, f.nullable, metadata=f.metadata))
    return outputs, fields


def table_expression(state: FederationState, base: BaseTable) -> exp.Table:
    """How the table's source names it, under the query's alias."""
    table = state.connector(base.ref.source).table_expression(base.ref.schema, base.ref.table)
    table.set("alias", exp.TableAlias(this=exp.to_identifier(base.alias, quoted=True)))
    table.set("version", base.node.args.get("version"))  # time travel (FOR VERSION AS OF n), for lake sources
    return table


def table_fragment(state: FederationState, base: BaseTable) -> Fragment:
    """The fragment reading one table: its columns, filters, ORDER BY and LIMIT (or its partial aggregates)."""
    connector = state.connector(base.ref.source)
    if base.partials is not None:
        return partial_fragment(state, base, connector)
    outputs, fields = projections(base, prefix=False)
    select = exp.select(*outputs).from_(table_expression(state, base))
    pushed = [f"projection ({len(fields)} of {len(base.schema)} columns)"]
    if base.filters:
        select = select.where(exp.and_(*base.filters))
        pushed.append(f"filter {exp.and_(*base.filters).sql(state.dialect)}")
    if base.order:
        select = select.order_by(*base.order)
        pushed.append("order by " + ", ".join(o.sql(state.dialect) for o in base.order))
    if base.limit is not None:
        select = select.limit(base.limit)
        pushed.append(f"limit {base.limit}" + (f" ({base.top_n_note})" if base.top_n_note else ""))
    estimate = _table_estimate(state, base)
    if base.distinct_rows is not None:
        select = select.distinct()
        pushed.append(f"distinct (only tested for existence: about {base.distinct_rows:,.0f} distinct of "
                      f"{estimate or 0:,} rows)")
        estimate = max(1, round(base.distinct_rows))
    return _add(state, Fragment(
        id=state.next_id(), source=base.ref.source, sql=state.source_sql(select, connector),
        schema=pa.schema(fields), tables=[str(base.ref)], pushed=pushed, ast=select, dialect=connector.dialect,
        estimated_rows=estimate,
    ))


def _table_estimate(state: FederationState, base: BaseTable) -> int | None:
    """The rows a table's fragment returns by the catalog's statistics (its filters and LIMIT), or None."""
    statistics = state.statistics(base.ref)
    if statistics is None:
        return None
    rows = estimate_fragment_rows(statistics, exp.and_(*base.filters) if base.filters else None, base.limit)
    return None if rows is None else max(1, round(rows))  # at least one row, as PostgreSQL clamps


def partial_fragment(state: FederationState, base: BaseTable, connector: Connector) -> Fragment:
    """The table grouped by the columns the residual uses, with the partial aggregates."""
    keys = [n for n in base.schema.names if n in base.columns]
    select = exp.select(
        *(exp.column(k, table=base.alias, quoted=True).as_(k, quoted=True) for k in keys),
        *(aggregate.as_(name, quoted=True) for name, aggregate in base.partials),
    ).from_(table_expression(state, base))
    if base.filters:
        select = select.where(exp.and_(*base.filters))
    if keys:
        select = select.group_by(*(exp.column(k, table=base.alias, quoted=True) for k in keys))
    oracle = select.copy()
    oracle.find(exp.From).this.replace(aliased_table("__t", base.alias))
    schema, _ = residual_schema(state.bound(oracle).sql(dialect=RESIDUAL_DIALECT), {"__t": base.schema})
    pushed = [f"partial aggregation: {', '.join(a.sql(state.dialect) for _, a in base.partials)}"
              + (f" by {', '.join(keys)}" if keys else "")]
    if base.filters:
        pushed.append(f"filter {exp.and_(*base.filters).sql(state.dialect)}")
    return _add(state, Fragment(
        id=state.next_id(), source=base.ref.source, sql=state.source_sql(select, connector), schema=schema,
        tables=[str(base.ref)], pushed=pushed, ast=select, dialect=connector.dialect,
    ))


def group_fragment(state: FederationState, group: JoinGroup) -> Fragment:
    """The fragment running a join group in its source; the residual then reads the group as one table."""
    members = sorted(group.members, key=lambda m: position(m.node))
    connector = state.connector(members[0].ref.source)
    outputs, fields = [], []
    for m in members:
        p, f = projections(m, prefix=True)
        outputs += p
        fields += f
    if not outputs:
        outputs, fields = projections(members[0], prefix=False)
    select = exp.select(*outputs).from_(table_expression(state, members[0]))
    for m in members[1:]:
        select = select.join(table_expression(state, m), join_type="cross")
    conditions = group.conditions + [f for m in members for f in m.filters]
    select = select.where(exp.and_(*conditions))
    fragment = _add(state, Fragment(
        id=state.next_id(), source=members[0].ref.source, sql=state.source_sql(select, connector),
        schema=pa.schema(fields), tables=[str(m.ref) for m in members],
        pushed=[f"join of {', '.join(m.alias for m in members)}",
                f"filter {exp.and_(*conditions).sql(state.dialect)}"],
        ast=select, dialect=connector.dialect,
        estimated_rows=None if group.estimated_rows is None else max(1, round(group.estimated_rows)),
    ))
    group.alias = f"__g{len(state.fragments) - 1}"
    _read_group_columns(state, group)
    _replace_members(members, fragment, group.alias)
    return fragment


def _add(state: FederationState, fragment: Fragment) -> Fragment:
    state.fragments.append(fragment)
    return fragment


def _read_group_columns(state: FederationState, group: JoinGroup) -> None:
    """The residual reads the group's columns as ``"__gN"."alias.column"``."""
    member_aliases = {m.alias for m in group.members}
    for scope in state.scopes:
        for column in scope.columns:
            _, base = state.owner(scope, column.table)
            if base is not None and base.alias in member_aliases and base.group is group:
                column.set("this", exp.to_identifier(f"{column.table}.{column.name}", quoted=True))
                column.set("table", exp.to_identifier(group.alias, quoted=True))


def _replace_members(members: list[BaseTable], fragment: Fragment, alias: str) -> None:
    """The first member (in text order) becomes the fragment reference; the others' joins go, their leftover
    conditions moving to the WHERE clause."""
    select_node = members[0].scope.expression
    members[0].node.replace(aliased_table(fragment.id, alias))
    leftover: list[exp.Expression] = []
    for m in members[1:]:
        join = m.node.parent
        if isinstance(join, exp.Join):
            if join.args.get("on") is not None:
                leftover += [c for c in conjuncts(join) if not isinstance(c, exp.Boolean)]
            join.pop()
    if leftover:
        where = select_node.args.get("where")
        existing = conjuncts(where) if where is not None else []
        select_node.set("where", exp.Where(this=exp.and_(*existing, *leftover, copy=False)))
