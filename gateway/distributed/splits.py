"""Cutting one fragment into parallel splits whose rows together are exactly the fragment's rows.

- PostgreSQL: ranges of ``ctid`` pages of the fragment's first table (PostgreSQL 14+ scans a TID range
  directly), from ``pg_class.relpages``; the first range is open below, the last open above.
- MySQL/MariaDB: ranges of the first table's integer primary key, from its MIN/MAX; ends open.
- Files (Parquet, CSV): one split per partition of the FROM table (a file, or a Hive ``key=value`` folder),
  restricted on the worker by its own connector (``Connector.partition_fragment``).

Only a scan, filter, projection or inner-join group is split: each of its rows belongs to exactly one row of
the first table, so ranges of that table partition the result. A fragment with GROUP BY, DISTINCT, ORDER BY,
LIMIT, an aggregate, window or sub-query runs as one task.

    >>> from sqlglot import parse_one
    >>> unsplittable(parse_one("SELECT k, COUNT(*) FROM t GROUP BY k"))
    'GROUP BY'
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

import pyarrow as pa
import sqlglot
from sqlglot import exp

from connectors.base import Connector, Fragment

#: seconds a table's page count or key range is remembered (stale numbers only move the split points)
SIZE_TTL_S = 60.0
_sizes: dict[tuple, tuple[float, object]] = {}
_sizes_lock = threading.Lock()


@dataclass(frozen=True)
class Split:
    """One split: the SQL (with its range predicate), or the partition the worker restricts the FROM table
    to (``(schema, table, partition)``, file sources; ``sql`` is then the whole fragment's)."""

    sql: str
    partition: tuple[str, str, str] | None = None


def unsplittable(select: exp.Expression | None, partial: bool = False) -> str | None:
    """Why a fragment cannot be cut into row ranges (a clause whose result needs all rows), or None.
    ``partial``: the fragment computes partial aggregates that the residual plan combines (the planner's
    ``partial_aggregates`` pass): each split then aggregates its own rows on its worker, and the residual's
    SUM of partial sums (COUNT: of counts; MIN, MAX) is the same over more partial rows; GROUP BY and the
    aggregates are allowed.

        >>> from sqlglot import parse_one
        >>> unsplittable(parse_one("SELECT k, SUM(v) AS p FROM t GROUP BY k"), partial=True) is None
        True
    """
    if not isinstance(select, exp.Select):
        return "not a single SELECT"
    checks = (("group", "GROUP BY"),) if not partial else ()
    for key, what in (*checks, ("having", "HAVING"), ("order", "ORDER BY"), ("limit", "LIMIT"),
                      ("offset", "OFFSET"), ("distinct", "DISTINCT"), ("with", "WITH"),
                      ("with_", "WITH")):
        if select.args.get(key):
            return what
    if select.find(exp.AggFunc) and not partial:
        return "an aggregate"
    if select.find(exp.Window):
        return "a window function"
    if select.find(exp.Subquery):
        return "a sub-query"
    for join in select.args.get("joins") or []:
        if join.side or (join.kind or "").upper() not in ("", "INNER", "CROSS"):
            return "an outer join"
    if not isinstance(select.find(exp.From).this, exp.Table):
        return "a derived table"
    return None


def plan_splits(fragment: Fragment, connector: Connector, wanted: int) -> tuple[list[Split], str]:
    """Up to ``wanted`` splits of ``fragment`` (files: one per partition) and how they were cut; one split
    (the whole fragment) with the reason when it cannot be split. Reads table sizes from the source (page
    counts, key bounds), remembered ``SIZE_TTL_S``; a source that cannot answer leaves the fragment whole."""
    whole = [Split(fragment.sql)]
    select = _ast(fragment)
    partial = any(p.startswith("partial aggregation:") for p in fragment.pushed)
    reason = unsplittable(select, partial)
    if reason is not None:
        return whole, f"not split: {reason}"
    if wanted < 2:
        return whole, "one split wanted"
    cut = _CUTTERS.get(connector.kind)
    if cut is None:
        return whole, f"not split: no split method for {connector.kind} sources"
    try:
        splits, how = cut(select, fragment, connector, wanted)
        return splits, how + ("; partial aggregates per split, combined by the residual plan"
                              if partial and len(splits) > 1 else "")
    except Exception as exc:  # sizes are a hint: the fragment still runs, as one task
        return whole, f"not split: {type(exc).__name__}: {str(exc)[:200]}"


def _ast(fragment: Fragment) -> exp.Expression | None:
    if fragment.ast is not None:
        return fragment.ast
    try:
        return sqlglot.parse_one(fragment.sql, read=fragment.dialect or None)
    except Exception:
        return None


def _remembered(key: tuple, compute):
    now = time.monotonic()
    with _sizes_lock:
        seen = _sizes.get(key)
    if seen is not None and now - seen[0] < SIZE_TTL_S:
        return seen[1]
    value = compute()
    with _sizes_lock:
        _sizes[key] = (now, value)
    return value


def _ranges(column: exp.Column, cuts: list, literal) -> list[exp.Expression | None]:
    """Conditions ``column < c1``, ``c1 <= column < c2``, ..., ``column >= cn``: every value in exactly one."""
    conditions: list[exp.Expression | None] = []
    for low, high in itertools.pairwise([None, *cuts, None]):
        parts = []
        if low is not None:
            parts.append(exp.GTE(this=column.copy(), expression=literal(low)))
        if high is not None:
            parts.append(exp.LT(this=column.copy(), expression=literal(high)))
        conditions.append(exp.and_(*parts) if parts else None)
    return conditions


def _postgres(select: exp.Select, fragment: Fragment, connector: Connector, wanted: int) -> tuple[list[Split], str]:
    first = select.find(exp.From).this
    schema, table = first.args["db"].name if first.args.get("db") else "public", first.name

    def pages() -> int:
        rows = connector.fetch_table(
            "SELECT c.relpages::bigint AS pages FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE n.nspname = {exp.Literal.string(schema).sql()} "
            f"AND c.relname = {exp.Literal.string(table).sql()} AND c.relkind = 'r'").to_pylist()
        return int(rows[0]["pages"] or 0) if rows else 0

    count = _remembered((connector.name, schema, table, "pages"), pages)
    splits = min(wanted, count)
    if splits < 2:
        return [Split(fragment.sql)], f"not split: {schema}.{table} has {count} pages"
    cuts = [count * i // splits for i in range(1, splits)]
    tid = exp.DataType.build("tid", udt=True)
    ctid = exp.column("ctid", table=first.alias_or_name, quoted=True)
    conditions = _ranges(ctid, cuts, lambda page: exp.cast(exp.Literal.string(f"({page},0)"), tid))
    sqls = [select.copy().where(c).sql(dialect="postgres") for c in conditions]
    return [Split(s) for s in sqls], f"ctid page ranges of {schema}.{table} ({count} pages)"


def _mysql(select: exp.Select, fragment: Fragment, connector: Connector, wanted: int) -> tuple[list[Split], str]:
    first = select.find(exp.From).this
    if not first.args.get("db"):
        return [Split(fragment.sql)], "not split: the table's database is not named"
    schema, table = first.args["db"].name, first.name

    def key_range():
        if connector.table_type(schema, table) == "VIEW":
            return None  # each split would compute the whole view again
        column, keyed = _range_column(connector, schema, table)
        if column is None:
            return None
        quoted = exp.column(column, quoted=True).sql(dialect=connector.dialect)
        name = exp.table_(table, db=schema, quoted=True).sql(dialect=connector.dialect)
        bounds = connector.fetch_table(f"SELECT MIN({quoted}) AS lo, MAX({quoted}) AS hi FROM {name}").to_pylist()[0]
        if bounds["lo"] is None:
            return None
        return column, keyed, int(bounds["lo"]), int(bounds["hi"])

    found = _remembered((connector.name, schema, table, "key"), key_range)
    if found is None:
        return [Split(fragment.sql)], (f"not split: {schema}.{table} is a view or has no integer key or NOT NULL "
                                       "integer column")
    column, keyed, low, high = found
    splits = min(wanted, high - low + 1)
    if splits < 2:
        return [Split(fragment.sql)], f"not split: {schema}.{table} has one key"
    step = (high - low + 1) / splits
    cuts = [low + round(step * i) for i in range(1, splits)]
    key = exp.column(column, table=first.alias_or_name, quoted=True)
    conditions = _ranges(key, cuts, exp.Literal.number)
    sqls = [select.copy().where(c).sql(dialect=connector.dialect) for c in conditions]
    how = "primary-key ranges" if keyed else "value ranges (no integer primary key: each split scans the table)"
    return [Split(s) for s in sqls], f"{how} of {schema}.{table}.{column}"


def _range_column(connector: Connector, schema: str, table: str) -> tuple[str | None, bool]:
    """(column to cut into ranges, whether it is the primary key's first column): the primary key when it
    starts with an integer column, else the first NOT NULL integer column (ranges of any column without NULLs
    partition the rows; without an index each split reads the whole table), else None."""
    fields = connector.table_schema(schema, table)
    key = connector.primary_key(schema, table)
    if key and pa.types.is_integer(fields.field(key[0]).type):
        return key[0], True
    for f in fields:
        if pa.types.is_integer(f.type) and not f.nullable:
            return f.name, False
    return None, False


def _files(select: exp.Select, fragment: Fragment, connector: Connector, wanted: int) -> tuple[list[Split], str]:
    first = select.find(exp.From).this
    schema = fragment.tables[0].split(".")[1] if fragment.tables and fragment.tables[0].count(".") >= 2 else "main"
    partitions = connector.partitions(schema, first.name)
    if len(partitions) < 2:
        return [Split(fragment.sql)], f"not split: table {first.name} is one file"
    return ([Split(fragment.sql, (schema, first.name, p)) for p in partitions],
            f"one split per partition of {first.name} ({len(partitions)} files or folders)")


_CUTTERS = {"postgresql": _postgres, "mysql": _mysql, "parquet": _files, "csv": _files}
