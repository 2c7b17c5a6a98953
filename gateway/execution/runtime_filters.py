"""Dynamic filters at run time: the keys of a build side that was read, and the probe's fragment restricted to
them. The planner chose the pairs (``planner.dynamic_filters.choose``); the probe's connector renders the
condition (``Connector.key_filter``: an IN list, a range, PostgreSQL's array literal).

    build: SELECT c.id ... FROM customers c WHERE c.region = 'north'          -> 212 ids
    probe: SELECT o.* FROM orders o WHERE o.customer_id IN (3, 17, ...)       (was: all orders)
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from connectors.arrow.datafusion import run_local
from connectors.base import Connector, Fragment
from planner.dialects import RESIDUAL_DIALECT
from planner.dynamic_filters import scan_column
from planner.plan import LocalFilter


def build_keys(batches: list[pa.RecordBatch], schema: pa.Schema, column: str,
               local_filter: LocalFilter | None) -> pa.Array:
    """The build side's join keys: ``column`` of its rows that pass the conditions DataFusion will apply to
    that table anyway (``local_filter``), so the keys are as selective as the query."""
    table = pa.Table.from_batches(batches, schema=schema)
    if local_filter is None or table.num_rows == 0:
        return table.column(column).combine_chunks()
    alias = local_filter.alias
    select = exp.select(exp.column(column, table=alias, quoted=True)).from_(exp.Table(
        this=exp.to_identifier("__build", quoted=True), alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))
    )).where(local_filter.condition.copy())
    return run_local(select.sql(dialect=RESIDUAL_DIALECT), {"__build": table}).column(0).combine_chunks()


#: an in-place fragment restricted by at least this many keys gets a semi-join against a table of them
#: instead of a literal list: rendering, parsing and planning 12,008 literals cost 0.2 s of TPC-H Q7's 0.5 s,
#: a semi-join costs the same at any count, and DataFusion prunes the scan by the keys' hash table and bounds
SEMI_JOIN_MIN_KEYS = 1_000


def key_condition(fragment: Fragment, column: str, keys: pa.Array, connector: Connector,
                  keys_table: str | None = None) -> exp.Expression | None:
    """The condition restricting ``fragment``'s ``column`` to ``keys`` (as ``connector`` renders it: an IN list,
    an array, a range), or None when it could not be made exact-or-wider (text range, unsupported key type, a
    column the fragment does not scan). ``keys_table``: for a fragment the residual plan reads in place, past
    ``SEMI_JOIN_MIN_KEYS`` keys the condition is ``column IN (SELECT k FROM keys_table)``, a table the caller
    registers (``keys_batch``) in the residual session."""
    target = scan_column(fragment, column)
    if target is None or _negated_in(fragment, target):
        return None
    keys = pc.unique(keys.drop_null()) if len(keys) else keys
    if len(keys) == 0:
        return exp.false()
    if keys_table is not None and len(keys) >= SEMI_JOIN_MIN_KEYS:
        keys_query = exp.select(exp.column("k", quoted=True)).from_(
            exp.Table(this=exp.to_identifier(keys_table, quoted=True)))
        return exp.In(this=target.copy(), query=exp.Subquery(this=keys_query))
    return connector.key_filter(target, keys)


def restricted(fragment: Fragment, condition: exp.Expression) -> Fragment:
    """``fragment`` with ``condition`` added to its WHERE clause (``key_condition``), re-rendered; a semi-join
    on a member of an inner-joined join group restricts that member's scan instead (``_at_member``)."""
    select = fragment.ast.copy()
    if not _at_member(select, condition):
        select = select.where(condition)
    return dataclasses.replace(fragment, ast=select, sql=select.sql(dialect=fragment.dialect))


def _at_member(select: exp.Select, condition: exp.Expression) -> bool:
    """Put a semi-join restriction (``column IN (SELECT k FROM keys)``) of a join group read in place onto the
    scan of the member that owns the column, ``(SELECT * FROM t AS m WHERE m.c IN (...)) AS m``; True when done.
    DataFusion 55 plans it from the WHERE as a semi-join above the group's inner joins, so every row of the
    member was built or probed first: TPC-H Q7 with lineitem and orders in place built all 1,500,000 orders
    and kept the 12,008 customers' ones only after the join. Exact: the group's joins are inner
    (``scan_column`` restricts no other) and the condition reads that member alone."""
    joins = select.args.get("joins")
    if not joins or not isinstance(condition, exp.In) or condition.args.get("query") is None:
        return False
    member = condition.this.table if isinstance(condition.this, exp.Column) else ""
    from_ = select.args.get("from") or select.args.get("from_")
    scans = [from_.this, *(join.this for join in joins)]
    owners = [t for t in scans if isinstance(t, exp.Table) and t.alias_or_name == member]
    if not member or len(owners) != 1:
        return False
    scan = owners[0]
    alias = exp.TableAlias(this=exp.to_identifier(member, quoted=True))
    scan.replace(exp.Subquery(this=exp.select("*").from_(scan.copy()).where(condition), alias=alias))
    return True


def restrict(fragment: Fragment, column: str, keys: pa.Array, connector: Connector,
             keys_table: str | None = None) -> tuple[Fragment, str] | None:
    """``fragment`` keeping only rows whose ``column`` is among ``keys`` (``key_condition``), and a
    description; None when no condition could be made."""
    condition = key_condition(fragment, column, keys, connector, keys_table)
    if condition is None:
        return None
    keys = pc.unique(keys.drop_null()) if len(keys) else keys
    return restricted(fragment, condition), describe(condition, column, keys)


def keys_batch(keys: pa.Array) -> pa.RecordBatch:
    """The one-column table (``k``) of a semi-join restriction (``restrict`` with ``keys_table``)."""
    return pa.record_batch([keys], names=["k"])


def describe(condition: exp.Expression, column: str, keys: pa.Array, runs_in: str = "the residual plan") -> str:
    """What a key condition does, for EXPLAIN ANALYZE and the fragment's statistics; ``runs_in``: where a
    semi-join restriction runs (the residual plan for a fragment read in place, else the source's session)."""
    if len(keys) == 0:
        return f"{column}: no keys (build side empty)"
    if isinstance(condition, exp.EQ) and isinstance(condition.expression, exp.Any):
        return f"{column} = ANY(array of {len(keys)} values)"
    if isinstance(condition, exp.Between):
        bounds = pc.min_max(keys)
        return f"{column} BETWEEN {bounds['min'].as_py()} AND {bounds['max'].as_py()} ({len(keys)} values)"
    if isinstance(condition, exp.In) and condition.args.get("query") is not None:
        return f"{column} IN ({len(keys)} values, a semi-join in {runs_in})"
    if isinstance(condition, exp.In):
        return f"{column} IN ({len(keys)} values)"
    return f"{column}: {condition.sql(dialect='postgres')} ({len(keys)} values)"


def _negated_in(fragment: Fragment, target: exp.Expression) -> bool:
    """DataFusion 55 merges ``NOT (k IN (NULL)) AND k IN (1, 2)`` into ``k IN (1, 2)`` (NOT IN with a NULL keeps
    no row): no IN list next to a negated one on the same column (the fuzzer's wrong answer)."""
    where = fragment.ast.args.get("where") if fragment.ast is not None else None
    return where is not None and any(
        ((isinstance(node, exp.Not) and isinstance(node.this.unnest(), exp.In)) or node.args.get("negate"))
        and node.find(exp.Column) == target for node in where.find_all(exp.Not, exp.In))
