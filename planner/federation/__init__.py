"""Federation: cut a qualified query into fragments, one per source-sized piece, and the residual plan.

``PASSES`` run in order over one ``FederationState`` (sqlglot's optimizer ``RULES`` are the model: each pass a
module-level function of its own module, its docstring showing the SQL before and after). Each one only moves
work into fragments that the source computes exactly as DataFusion would; everything else stays in the
residual and EXPLAIN says why.

0. ``outer_joins``: an outer join whose WHERE rejects the rows it null-extends written as the inner join it
   is (so filters reach the formerly null-supplying table's fragment).
   ``join_order``: a scope's inner joins listed in the order their estimated rows favour, when the written
   order is estimated to cost at least twice as much (DataFusion joins a FROM list in the order written).
1. ``whole_query``: every table in one source that can run all of it -> one fragment, no residual.
2. ``subqueries``: a CTE, derived table or uncorrelated IN/EXISTS/scalar sub-query whose tables all live in
   one source -> a fragment in its place.
3. ``factor_ors`` then ``filters``: single-table conjuncts go into the table's fragment.
4. ``join_groups``: tables of one source joined by pushable conjuncts (inner joins) -> one fragment.
5. ``partial_aggregates``: one table's aggregates computed partially in its source below a join.
6. ``columns``: each fragment returns only the columns the residual still uses.
7. ``top_n``: LIMIT and ORDER BY + LIMIT on a single-table scope whose filters were all pushed, or on the FROM
   table of joins matching each of its rows with at most one row (a primary key); below an inner join the
   plan carries a fallback plan without it, run when the result comes out short.
   ``distinct_keys``: the one table of an EXISTS/IN sub-query returns its distinct rows when statistics say
   that leaves far fewer (a semi or anti join only tests existence).
8. ``fragments`` builds them, ``sharing`` merges fragments that read the same rows; ``residual`` plans the
   rest in DataFusion.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import pyarrow as pa
from sqlglot import exp

from catalog import Catalog, TableRef
from connectors.errors import GatewayError, InvalidRequestError
from planner.decimal_rounds import mark_decimal_rounds
from planner.federation.columns import collect_columns
from planner.federation.distinct_keys import push_distinct_keys
from planner.federation.factor_ors import factor_ors
from planner.federation.filters import push_filters
from planner.federation.fragments import build_fragments
from planner.federation.join_groups import group_joins
from planner.federation.join_order import order_joins
from planner.federation.outer_joins import simplify_outer_joins
from planner.federation.partial_aggregates import push_partial_aggregates
from planner.federation.residual import residual_plan, residual_schema
from planner.federation.sharing import share_fragments
from planner.federation.state import FederationState
from planner.federation.subqueries import push_subqueries
from planner.federation.top_n import push_limits, with_top_n_fallback
from planner.federation.whole_query import push_whole_query
from planner.plan import FederatedPlan
from planner.pushdown import mark_date_differences, mark_duration_epochs, mark_interval_comparisons

__all__ = ["PASSES", "PER_TABLE_PASSES", "FederationState", "federate", "residual_schema", "run_passes"]

log = logging.getLogger(__name__)

Pass = Callable[[FederationState], None]

#: the federation passes, in order
PASSES: tuple[Pass, ...] = (
    simplify_outer_joins,
    order_joins,
    push_whole_query,
    push_subqueries,
    factor_ors,
    push_filters,
    group_joins,
    push_partial_aggregates,
    collect_columns,
    push_limits,
    push_distinct_keys,
    build_fragments,
    share_fragments,
)

#: the fallback plan: a fragment per table with the columns it needs, nothing else
PER_TABLE_PASSES: tuple[Pass, ...] = (collect_columns, build_fragments)


def federate(catalog: Catalog, dialect: str, sql: str, ast: exp.Expression,
             schemas: dict[TableRef, pa.Schema], params: Sequence[object] | None) -> FederatedPlan:
    """The federated plan of a qualified query: ``PASSES``, or, when one of them fails on this query shape,
    the fallback plan (``PER_TABLE_PASSES``: every table read by its own fragment, the whole query run by
    DataFusion), with the reason in ``FederatedPlan.fallback``. ``ast`` is not modified. ``params`` type
    ``$n`` parameters for DataFusion.

    Raises InvalidRequestError (DataFusion's message) only when the fallback plan cannot be planned either:
    then the SQL itself is what DataFusion refuses.
    """
    try:
        state = FederationState.of(catalog, dialect, sql, ast.copy(), schemas, params)
        plan = run_passes(state, PASSES)
        if state.top_n_check is not None:  # a top-N below an inner join: the plan to run if its result is short
            without = FederationState.of(catalog, dialect, sql, ast.copy(), schemas, params)
            without.top_n_below_inner_joins = False
            plan = with_top_n_fallback(plan, state, run_passes(without, PASSES))
        return plan
    except GatewayError as exc:
        if not isinstance(exc, InvalidRequestError):
            raise  # a source that cannot be introspected fails the fallback too
        reason = exc.message
    except Exception as exc:  # a pass's own defect must not fail a query DataFusion can run
        log.warning("federation pass failed; falling back", exc_info=True)
        reason = f"{type(exc).__name__}: {exc}"
    state = FederationState.of(catalog, dialect, sql, ast.copy(), schemas, params)
    plan = run_passes(state, PER_TABLE_PASSES)
    return dataclasses.replace(plan, fallback=reason)


def run_passes(state: FederationState, passes: Sequence[Pass]) -> FederatedPlan:
    """Run ``passes`` in order over ``state`` (none when the query reads no source table; the rest are
    skipped once the whole query went to one source), then plan the residual."""
    mark_date_differences(state.ast, state.column_type)
    mark_duration_epochs(state.ast, state.column_type)
    mark_interval_comparisons(state.ast, state.column_type)
    mark_decimal_rounds(state.ast, state.oracle_schema)
    if state.bases:
        for rule in passes:
            rule(state)
            if state.whole is not None:
                break
    return residual_plan(state)
