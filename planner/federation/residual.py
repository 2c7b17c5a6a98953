"""The residual plan: what DataFusion runs over the fragments once the passes are done, and its schema."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from connectors.arrow.datafusion import plan_over_empty
from connectors.errors import InvalidRequestError
from planner import dynamic_filters
from planner.dialects import RESIDUAL_DIALECT
from planner.federation.fragment_joins import fragment_joins, local_filters
from planner.federation.sqlast import distinct_output_names
from planner.federation.state import FederationState
from planner.join_estimates import annotate, filtered_estimates, filtered_pairs, residual_join_estimates
from planner.plan import FederatedPlan

#: clauses that make a residual do more than pass one fragment's rows through
_WORK = ("joins", "where", "group", "having", "order", "limit", "offset", "distinct", "with", "with_", "qualify",
         "windows")


def residual_schema(sql: str, tables: dict[str, pa.Schema]) -> tuple[pa.Schema, str]:
    """Plan ``sql`` in DataFusion over empty tables of the given schemas: (output schema, optimized plan).

    No data is read. Raises InvalidRequestError with DataFusion's message when it cannot plan the query.
    """
    schema, optimized = residual_typed(sql, tables)
    return schema, str(optimized.display_indent())


def residual_typed(sql: str, tables: dict[str, pa.Schema]):
    """``residual_schema`` with DataFusion's optimized ``LogicalPlan`` itself in place of its text."""
    try:
        # the analyzed plan's schema: DataFrame.schema() is taken before type coercion (CASE WHEN .. THEN 1
        # ELSE <decimal> END says int64 there, and the batches are decimal128(22, 2))
        optimized, frame = plan_over_empty(sql, tables)
        return frame.schema(), optimized
    except Exception as exc:
        message = str(exc).splitlines()[0]
        raise InvalidRequestError(f"the query cannot be planned: {message}") from exc


def residual_plan(state: FederationState) -> FederatedPlan:
    """The plan of the state: the whole query's fragment when one source runs it all; the only fragment
    streamed as is when the residual would merely pass it through; else the residual SQL over the fragments,
    typed by DataFusion, with the joins between fragments, the filters DataFusion applies to them and the
    estimated rows of each join DataFusion plans (``planner.join_estimates``)."""
    if state.whole is not None:
        return FederatedPlan(state.sql, [state.whole], None, state.whole.schema, join_orders=state.join_orders)
    if passes_through(state.ast, state.fragments):
        # the residual only renames nothing and filters nothing: stream the one fragment as is
        return FederatedPlan(state.sql, state.fragments, None, state.fragments[0].schema, state.not_pushed,
                             join_orders=state.join_orders)
    names = distinct_output_names(state.ast)
    residual = state.ast.sql(dialect=RESIDUAL_DIALECT)
    typed = state.bound(state.ast).sql(dialect=RESIDUAL_DIALECT)
    schema, optimized = residual_typed(typed, {f.id: f.schema for f in state.fragments})
    plan = FederatedPlan(
        state.sql, state.fragments, residual, schema, state.not_pushed, residual_ast=state.ast,
        joins=fragment_joins(state), local_filters=local_filters(state), join_orders=state.join_orders,
    )
    # estimated as the default schedule runs it: with the dynamic filters it would choose
    filters = dynamic_filters.choose(plan, state.catalog)
    filtered = filtered_estimates(state.fragments, filters, state.catalog)
    estimates = residual_join_estimates(optimized, state.fragments, state.catalog, filtered, filtered_pairs(filters))
    plan.residual_plan = annotate(str(optimized.display_indent()), estimates)
    plan.join_estimates = estimates
    plan.filtered_estimates = {fid: max(1, round(f.rows)) for fid, f in filtered.items()}
    return plan.with_output_names(names) if names else plan


def passes_through(ast: exp.Expression, fragments: list) -> bool:
    """Whether the residual is ``SELECT a.c1 AS c1, ... FROM "__fragment_0" AS a`` over every column of
    the only fragment, in order: then DataFusion has nothing to do."""
    if len(fragments) != 1 or not isinstance(ast, exp.Select):
        return False
    if any(ast.args.get(k) for k in _WORK):
        return False
    source = ast.find(exp.From).this
    if not isinstance(source, exp.Table) or source.name != fragments[0].id:
        return False
    outputs = []
    for projection in ast.expressions:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if not isinstance(inner, exp.Column) or inner.name != projection.alias_or_name:
            return False
        outputs.append(inner.name)
    return outputs == fragments[0].schema.names
