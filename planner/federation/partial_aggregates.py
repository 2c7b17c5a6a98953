"""Pass 4b: aggregate one table's rows in its source before a cross-source join, when every aggregate reads
only that table: the fragment groups by the table's columns the rest of the query still uses and returns
partial SUM/COUNT/MIN/MAX; the residual combines them. Rows with equal keys join with the same rows, so SUM of
partial sums (COUNT: of partial counts) equals the SUM over the joined rows.

    SELECT c.region, sum(o.amount) FROM pg.c JOIN lake.o ON o.cid = c.id GROUP BY c.region
    -> lake: SELECT o.cid, SUM(o.amount) AS __partial_0 FROM o GROUP BY o.cid
       residual: ... CAST(SUM("o"."__partial_0") AS DECIMAL(22, 2)) ... GROUP BY c.region
"""

from __future__ import annotations

from sqlglot import exp

from connectors.arrow.datafusion import plain_schema
from connectors.errors import GatewayError
from planner.dialects import RESIDUAL_DIALECT, sqlglot_type
from planner.federation.residual import residual_schema
from planner.federation.sqlast import aliased_table, has_local, has_subquery, inner_joins_only, within
from planner.federation.state import BaseTable, FederationState

#: per aggregate: (name, partial aggregate), its replacement in the residual, the output name it keeps
Partials = tuple[list[tuple[str, exp.Expression]], list[exp.Expression], list[str]]


def push_partial_aggregates(state: FederationState) -> None:
    """Set ``BaseTable.partials`` of the one table each grouped scope aggregates over, when that pays, and
    replace its aggregates in the residual by their combinations."""
    for scoped in state.by_scope():
        select = scoped[0].scope.expression
        aggregates = _aggregates(scoped, select)
        target = _target(state, scoped, aggregates) if aggregates else None
        if target is None:
            continue
        keys = partial_keys(state, target, aggregates)
        primary_key = connector_primary_key(state, target)
        if not keys:  # an aggregate over all rows makes a row of NULL even from none: the join would keep it
            state.not_pushed_because(f"partial aggregation of {target.ref}",
                                     "without grouping keys it returns a row even when no row is kept")
            continue
        if len(keys) > 1 or (len(primary_key) == 1 and keys == set(primary_key)):
            # several keys, or the table's key: (nearly) one group per row, nothing saved
            state.not_pushed_because(f"partial aggregation of {target.ref}",
                                     f"grouping by {', '.join(sorted(keys))} would hardly reduce the rows")
            continue
        if not state.connector(target.ref.source).capabilities.cheap_grouping:
            state.not_pushed_because(f"partial aggregation of {target.ref}",
                                     "grouping in this source costs what sending its rows does")
            continue
        shrink = _estimated_shrink(state, target, keys)
        if shrink is not None and shrink > PARTIAL_SHARE:
            state.not_pushed_because(f"partial aggregation of {target.ref}",
                                     f"grouping by {', '.join(sorted(keys))} keeps about {shrink:.0%} of the rows "
                                     f"(pushed at most {PARTIAL_SHARE:.0%})")
            continue
        grouping = exp.Group(expressions=[exp.column(k, table=target.alias, quoted=True) for k in sorted(keys)])
        reason = state.unpushable(grouping, target.ref.source)
        if reason:  # MariaDB's GROUP BY on text merges 'a' and 'A': the partial groups would not match the join
            state.not_pushed_because(f"partial aggregation of {target.ref} by {', '.join(sorted(keys))}", reason)
            continue
        plan = partial_plan(state, target, aggregates)
        if plan is None:
            continue
        partials, replacements, names = plan
        for aggregate, replacement, name in zip(aggregates, replacements, names, strict=True):
            state.moved.update(id(c) for c in aggregate.find_all(exp.Column))
            if aggregate.parent is select:  # an unnamed output keeps the name DataFusion gives the original
                replacement = exp.alias_(replacement, name, quoted=True)
            aggregate.replace(replacement)
        target.partials = partials


#: push a partial aggregation only when its groups are estimated at most this share of the rows it reads. TPC-H
#: SF1, lineitem in PostgreSQL grouped by l_orderkey after Q3's date filter (estimated 13%, in fact 26%: 830,000
#: groups of 3.2M rows): 1.8 s end to end against 1.2 s reading the rows; grouped by Q18 (7%): even
PARTIAL_SHARE = 0.1
#: below this many rows read the share is not asked: grouping or sending them costs milliseconds either way, and
#: fewer rows reach the residual
PARTIAL_MIN_ROWS = 100_000


def _estimated_shrink(state: FederationState, target: BaseTable, keys: set[str]) -> float | None:
    """Estimated groups over estimated rows of the partial aggregation, or None (then it is pushed) without
    statistics of the rows and of every key's distinct values, or for fewer than ``PARTIAL_MIN_ROWS`` rows."""
    estimate = state.grouped_rows(target, keys)
    if estimate is None or estimate[0] < PARTIAL_MIN_ROWS:
        return None
    rows, groups = estimate
    return groups / rows


def connector_primary_key(state: FederationState, target: BaseTable) -> list[str]:
    """The table's primary key, or [] when the source cannot tell (a hint for the planner)."""
    try:
        return state.connector(target.ref.source).primary_key(target.ref.schema, target.ref.table)
    except Exception:
        return []


def _aggregates(scoped: list[BaseTable], select: exp.Expression) -> list[exp.AggFunc]:
    """The aggregates of a grouped SELECT over an inner join of several tables (no DISTINCT, no window, no
    aggregate FILTER), or [] when the scope has another shape."""
    if len(scoped) < 2 or not isinstance(select, exp.Select):
        return []
    if select.args.get("distinct") or not inner_joins_only(select):
        return []
    aggregates = [a for a in select.find_all(exp.AggFunc) if a.find_ancestor(exp.Select) is select]
    if any(has_local(e, (exp.Window,)) for e in select.expressions):
        return []
    if any(isinstance(a.parent, exp.Filter) for a in aggregates):
        # the FILTER would stay on the residual's combination, not on the rows the partial aggregate counted
        # (fuzz seed 7071068 #4664: COUNT(*) FILTER (WHERE NULL) over a join answered 1068, not 0)
        return []
    return aggregates


def _target(state: FederationState, scoped: list[BaseTable], aggregates: list[exp.AggFunc]) -> BaseTable | None:
    """The one table every aggregate reads, when its source may aggregate it ahead of the join."""
    owners = {c.table for a in aggregates for c in a.find_all(exp.Column)}
    target = next((b for b in scoped if {b.alias} == owners), None)
    if target is None or target.group is not None or target.limit is not None:
        return None
    connector = state.connector(target.ref.source)
    if not connector.capabilities.full_query or connector.read_per_table:
        return None
    if not all(_splittable(a) for a in aggregates):
        return None
    if any(state.owner(sub, c.table)[1] is target for sub in state.scopes
           if sub is not target.scope and within(sub, target.scope) for c in sub.columns):
        return None  # referenced from a sub-query: keep the table's rows
    return target


def _splittable(aggregate: exp.AggFunc) -> bool:
    """SUM, COUNT, MIN or MAX without DISTINCT or a sub-query: partial results combine into the whole one."""
    return (isinstance(aggregate, exp.Sum | exp.Count | exp.Min | exp.Max) and not aggregate.find(exp.Distinct)
            and not has_subquery(aggregate.this if aggregate.this is not None else exp.Star()))


def partial_keys(state: FederationState, target: BaseTable, aggregates: list[exp.AggFunc]) -> set[str]:
    """The table's columns the residual uses outside its aggregates (the partial aggregation's group
    keys); columns of conditions already moved into fragments (``state.moved``) do not count."""
    inside = {id(c) for a in aggregates for c in a.find_all(exp.Column)} | state.moved
    keys = set()
    for scope in state.scopes:
        for column in scope.columns:
            if id(column) not in inside and state.owner(scope, column.table)[1] is target:
                keys.add(column.name)
    return keys


def partial_plan(state: FederationState, target: BaseTable, aggregates: list[exp.AggFunc]) -> Partials | None:
    """((name, partial aggregate) per aggregate, residual replacement per aggregate, output name per
    aggregate), or None when a partial aggregate cannot be pushed to the table's source or typed by
    DataFusion."""
    partials: list[tuple[str, exp.Expression]] = []
    replacements: list[exp.Expression] = []
    names: list[str] = []
    plain = plain_schema(target.schema)
    for i, aggregate in enumerate(aggregates):
        name = f"__partial_{i}"
        partial = aggregate.copy()
        reason = state.unpushable(partial, target.ref.source)
        if reason:
            state.not_pushed_because(f"partial aggregate {aggregate.sql(state.dialect)}", reason)
            return None
        # DataFusion types and names the original aggregate over the table alone
        probe = exp.select(aggregate.copy()).from_(aliased_table("__t", target.alias))
        try:
            schema, _ = residual_schema(state.bound(probe).sql(dialect=RESIDUAL_DIALECT), {"__t": plain})
        except GatewayError:
            return None
        partials.append((name, partial))
        replacements.append(_combined(aggregate, exp.column(name, table=target.alias, quoted=True), schema))
        names.append(schema.field(0).name)
    return partials, replacements, names


def _combined(aggregate: exp.AggFunc, column: exp.Column, schema) -> exp.Expression:
    """The residual's combination of the partial aggregates in ``column``, typed as the original."""
    if isinstance(aggregate, exp.Count):
        return exp.func("COALESCE", exp.Sum(this=column), exp.Literal.number(0))
    if isinstance(aggregate, exp.Sum):
        return exp.Cast(this=exp.Sum(this=column), to=exp.DataType.build(
            sqlglot_type(schema.field(0).type), dialect=RESIDUAL_DIALECT))
    return type(aggregate)(this=column)
