"""Pass 7b: a table read only to test existence (the one table of an EXISTS, NOT EXISTS, IN, NOT IN, ANY or ALL
sub-query) returns its distinct rows when its source dedups them into far fewer: a semi or anti join asks only
whether a matching row exists, so duplicates change nothing, and the source sends each key once.

    SELECT c.name FROM pg.public.customers AS c
    WHERE NOT EXISTS (SELECT 1 FROM pg2.public.orders AS o WHERE o.cid = c.id)
    -> pg2: SELECT DISTINCT "o"."cid" AS "cid" FROM "public"."orders" AS "o"
       (TPC-H Q22: 420,579 orders rows of the 42,015 customers -> 28,000 keys)

Only for sources whose DISTINCT is cheap (``Capabilities.cheap_distinct``: PostgreSQL's hash aggregate;
MariaDB's temporary table costs what it saves). Only columns whose equality is the same in the source and in
DataFusion are deduplicated (integers, decimals, dates and times, booleans, text where the source compares
bytes): the source must never merge two values the residual would tell apart. Not for files read inside the
process (DataFusion's own semi join dedups as cheaply), nor for sources read per table for their cache. A
dynamic filter still restricts the fragment (a condition on an output keeps or drops all of its duplicates).
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from planner.federation.sqlast import has_local
from planner.federation.state import BaseTable, FederationState

#: deduplicate when the estimated distinct rows are at most this share of the rows the fragment would return.
#: TPC-H SF1 in PostgreSQL: Q22's orders keys (estimated 6%, 420,579 rows -> 27,929) 25% faster end to end;
#: Q4's lineitem keys (estimated 20%, 3.8M rows -> 1.46M, a hash table past work_mem) neutral
DISTINCT_SHARE = 0.1


def push_distinct_keys(state: FederationState) -> None:
    """Set ``BaseTable.distinct_rows`` of each table read only by an existence test whose source may
    deduplicate it and whose statistics say that pays."""
    for base in state.bases:
        if not _existence_only(state, base):
            continue
        rows = state.grouped_rows(base, base.columns)
        if rows is None:
            continue
        total, distinct = rows
        if distinct <= DISTINCT_SHARE * total:
            base.distinct_rows = distinct


def _existence_only(state: FederationState, base: BaseTable) -> bool:
    """Whether ``base`` is the only table of a plain sub-query whose rows are only tested for existence, read
    by a source that may deduplicate its columns exactly."""
    if base.group is not None or base.partials is not None or base.limit is not None or base.order:
        return False
    if not base.columns or not _tests_existence(base.scope.expression) or not _plain(state, base):
        return False
    connector = state.connector(base.ref.source)
    caps = connector.capabilities
    if not (caps.full_query and caps.cheap_distinct) or caps.local_compute or connector.read_per_table:
        return False
    if not all(_exact_equality(base.schema.field(name)) for name in base.columns):
        return False
    keys = exp.Distinct(expressions=[exp.column(n, table=base.alias, quoted=True) for n in sorted(base.columns)])
    return state.unpushable(keys, base.ref.source) is None


def _plain(state: FederationState, base: BaseTable) -> bool:
    """Whether the sub-query reads ``base`` alone, row by row: no join, grouping, aggregate, window, DISTINCT,
    LIMIT or nested sub-query (an aggregate makes one row of many; nesting is kept simple)."""
    select = base.scope.expression
    if len(base.scope.sources) != 1 or select.args.get("joins"):
        return False
    if any(select.args.get(k) for k in ("group", "having", "distinct", "limit", "offset", "order", "qualify")):
        return False
    return not has_local(select, (exp.AggFunc, exp.Window)) and not any(s.parent is base.scope for s in state.scopes)


def _tests_existence(select: exp.Expression) -> bool:
    """Whether ``select`` is the sub-query of EXISTS, IN, ANY or ALL (sqlglot puts a Subquery node between
    IN/ANY and the SELECT, none under EXISTS and ALL)."""
    if not isinstance(select, exp.Select):
        return False
    parent = select.parent
    if isinstance(parent, exp.Exists | exp.All):
        return True
    if not isinstance(parent, exp.Subquery):
        return False
    holder = parent.parent
    return isinstance(holder, exp.Any | exp.All) or (isinstance(holder, exp.In) and holder.args.get("query") is parent)


def _exact_equality(field: pa.Field) -> bool:
    """Types whose equal values the source and DataFusion agree on (floats: -0.0 and 0.0, NaN do not)."""
    t = field.type
    return (pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_date(t) or pa.types.is_time(t)
            or pa.types.is_timestamp(t) or pa.types.is_boolean(t) or pa.types.is_string(t)
            or pa.types.is_large_string(t))
