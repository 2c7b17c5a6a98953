"""Zone maps of cached partitions: min/max per run of rows, so that filters and dynamic filters skip the runs
no row of which can match, as Parquet row-group statistics do for files.

A cached partition (a ``pa.Table``) is cut into zones of ``ZONE_ROWS`` consecutive rows (zero-copy slices).
Per zone and column the map keeps the minimum, the maximum and whether the zone has nulls, computed the first
time a filter names the column. ``ZoneMap.keep(where, alias)`` evaluates a fragment's WHERE against them and
says, per zone, whether some row may match. It errs only towards keeping: whatever it does not understand
(functions, other columns' arithmetic, floating-point columns, literals of another type) keeps every zone,
so the filter run afterwards over the kept zones returns exactly what it returns over the whole partition.

    >>> import pyarrow as pa, sqlglot
    >>> table = pa.table({"k": list(range(200_000))})
    >>> zones = ZoneMap(table)
    >>> zones.keep(sqlglot.parse_one("SELECT 1 FROM t WHERE t.k = 70000").args["where"].this, "t")
    [False, True, False, False]
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

#: rows per zone: small enough that a one-row lookup reads 1/N of a big partition, large enough that the
#: statistics of a 6M-row partition are ~90 zones (computed in a few ms per column)
ZONE_ROWS = 65_536

_COMPARISONS = {exp.EQ: "=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_FLIPPED = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_UNKNOWN = object()  # a literal the zone map cannot compare: keep every zone


class ZoneMap:
    """Per-zone statistics of one cached table, computed per column on first use (thread-safe). The map holds
    the table weakly: a column first asked for once the table is gone gets no statistics (every zone kept).

    ``zones`` is the number of zones (``ceil(num_rows / zone_rows)``, at least 1); zone ``i`` holds rows
    ``[i * zone_rows, (i + 1) * zone_rows)`` of the table.
    """

    def __init__(self, table: pa.Table, zone_rows: int = ZONE_ROWS) -> None:
        if zone_rows < 1:
            raise ValueError("zone_rows must be >= 1")
        self.zone_rows = zone_rows
        self.num_rows = table.num_rows
        self.zones = max(1, -(-table.num_rows // zone_rows))
        self._schema = table.schema
        # weak: the scanner keeps maps beside the cache, and an evicted partition must not stay in memory
        # through its map; statistics of a column first needed after the table is gone keep every zone
        self._table = weakref.ref(table)
        self._stats: dict[str, list[tuple[object, object, bool]] | None] = {}
        self._lock = threading.Lock()

    def slices(self, table: pa.Table, keep: list[bool]) -> Iterator[pa.Table]:
        """The kept zones of ``table`` (the table this map was made of), as zero-copy slices, runs of adjacent
        kept zones merged."""
        start = None
        for i, kept in enumerate([*keep, False]):
            if kept and start is None:
                start = i
            elif not kept and start is not None:
                yield table.slice(start * self.zone_rows, (i - start) * self.zone_rows)
                start = None

    def stats(self, column: str) -> list[tuple[object, object, bool]] | None:
        """``[(min, max, has_nulls)]`` per zone of ``column`` as Python values (min/max None when the zone has
        only nulls), or None when the column is unknown or of a type not pruned (floating point: NaN ordering;
        nested types)."""
        with self._lock:
            if column not in self._stats:
                self._stats[column] = self._compute(column)
            return self._stats[column]

    def _compute(self, column: str) -> list[tuple[object, object, bool]] | None:
        index = self._schema.get_field_index(column)
        table = self._table()
        if index < 0 or table is None or not _prunable(self._schema.field(index).type):
            return None
        values = table.column(index)
        out = []
        for i in range(self.zones):
            zone = values.slice(i * self.zone_rows, self.zone_rows)
            bounds = pc.min_max(zone)
            out.append((bounds["min"].as_py(), bounds["max"].as_py(), zone.null_count > 0))
        return out

    def keep(self, where: exp.Expression | None, alias: str, tables: Mapping[str, pa.Array] | None = None
             ) -> list[bool]:
        """Per zone, whether some row may satisfy ``where`` (a condition over columns of ``alias``, or
        unqualified ones); every zone when ``where`` is None. ``tables``: one-column tables a semi-join
        condition ``c IN (SELECT k FROM name)`` reads (a dynamic filter's keys), by name."""
        if where is None:
            return [True] * self.zones
        return self._may(where, alias, tables or {})

    def _may(self, node: exp.Expression, alias: str, tables: Mapping[str, pa.Array]) -> list[bool]:
        node = node.unnest()
        if isinstance(node, exp.And | exp.Or):
            left, right = self._may(node.left, alias, tables), self._may(node.right, alias, tables)
            both = isinstance(node, exp.And)
            return [(a and b) if both else (a or b) for a, b in zip(left, right, strict=True)]
        test = _semi_join_test(node, alias, tables) if tables else None
        test = test or _zone_test(node, alias)
        if test is None:
            return [True] * self.zones
        column, accepts = test
        stats = self.stats(column)
        if stats is None:
            return [True] * self.zones
        return [_safe(accepts, low, high, nulls) for low, high, nulls in stats]


def _prunable(t: pa.DataType) -> bool:
    return (pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_date(t) or pa.types.is_timestamp(t)
            or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t))


def _safe(accepts: Callable[[object, object, bool], bool], low, high, nulls: bool) -> bool:
    if low is None or high is None:
        return nulls and accepts is _accepts_null
    try:
        return bool(accepts(low, high, nulls))
    except TypeError:  # a literal of another kind than the column (date against text...): keep the zone
        return True


def _accepts_null(low, high, nulls: bool) -> bool:
    return nulls


def _column_of(node: exp.Expression, alias: str) -> str | None:
    node = node.unnest()
    if isinstance(node, exp.Column) and node.table in ("", alias):
        return node.name
    return None


def _zone_test(node: exp.Expression, alias: str) -> tuple[str, Callable[[object, object, bool], bool]] | None:
    """``(column, accepts(min, max, has_nulls))`` for a condition on one column the map understands, else None."""
    if isinstance(node, exp.EQ) and isinstance(node.expression.unnest(), exp.Any):
        return _in_test(_column_of(node.this, alias), _array_literal(node.expression.unnest().this))
    if type(node) in _COMPARISONS:
        op = _COMPARISONS[type(node)]
        column, value = _column_of(node.this, alias), _literal(node.expression)
        if column is None:
            column, value, op = _column_of(node.expression, alias), _literal(node.this), _FLIPPED[op]
        if column is None or value is _UNKNOWN:
            return None
        return column, _range_test(op, value)
    if isinstance(node, exp.Between) and not node.args.get("symmetric"):
        column = _column_of(node.this, alias)
        low, high = _literal(node.args.get("low")), _literal(node.args.get("high"))
        if column is None or low is _UNKNOWN or high is _UNKNOWN:
            return None
        return column, lambda lo, hi, nulls: lo <= high and hi >= low
    if isinstance(node, exp.In) and not node.args.get("query") and not node.args.get("unnest"):
        return _in_test(_column_of(node.this, alias), [_literal(v) for v in node.expressions])
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        column = _column_of(node.this, alias)
        return (column, _accepts_null) if column is not None else None
    return None


def _semi_join_test(node: exp.Expression, alias: str, tables: Mapping[str, pa.Array]
                    ) -> tuple[str, Callable] | None:
    """``c IN (SELECT k FROM name)`` with ``name`` in ``tables``: the IN test over its keys."""
    query = node.args.get("query") if isinstance(node, exp.In) else None
    select = query.this if isinstance(query, exp.Subquery) else query
    if not isinstance(select, exp.Select) or select.args.get("where") or len(select.expressions) != 1:
        return None
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or table.name not in tables:
        return None
    return _in_test(_column_of(node.this, alias), tables[table.name].to_pylist())


def _in_test(column: str | None, values: list) -> tuple[str, Callable] | None:
    if column is None or not values or any(v is _UNKNOWN for v in values):
        return None
    try:
        ordered = sorted(v for v in values if v is not None)
    except TypeError:
        return None
    if not ordered:
        return None

    def accepts(lo, hi, nulls) -> bool:
        i = bisect.bisect_left(ordered, lo)
        return i < len(ordered) and ordered[i] <= hi

    return column, accepts


def _range_test(op: str, value) -> Callable[[object, object, bool], bool]:
    if op == "=":
        return lambda lo, hi, nulls: lo <= value <= hi
    if op == "<":
        return lambda lo, hi, nulls: lo < value
    if op == "<=":
        return lambda lo, hi, nulls: lo <= value
    if op == ">":
        return lambda lo, hi, nulls: hi > value
    return lambda lo, hi, nulls: hi >= value


def _literal(node: exp.Expression | None):
    """A literal's Python value (int, Decimal, str, date, datetime, bool), or ``_UNKNOWN``. NULL is None."""
    if node is None:
        return _UNKNOWN
    node = node.unnest()
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Neg):
        inner = _literal(node.this)
        return -inner if isinstance(inner, int | decimal.Decimal) and not isinstance(inner, bool) else _UNKNOWN
    if isinstance(node, exp.Cast):
        return _cast_literal(node)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.name
        try:
            return int(node.name)
        except ValueError:
            try:
                return decimal.Decimal(node.name)
            except decimal.InvalidOperation:
                return _UNKNOWN
    return _UNKNOWN


def _array_literal(node: exp.Expression) -> list:
    """The values of PostgreSQL's ``CAST('{1,2,3}' AS BIGINT[])`` (``PostgreSQLConnector.key_filter``) as ints;
    ``[_UNKNOWN]`` for anything else."""
    node = node.unnest()
    inner = node.this.unnest() if isinstance(node, exp.Cast) else None
    if not isinstance(inner, exp.Literal) or not inner.is_string or not node.to.is_type(exp.DataType.Type.ARRAY):
        return [_UNKNOWN]
    text = inner.name.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return [_UNKNOWN]
    try:
        return [int(v) for v in text[1:-1].split(",") if v.strip()]
    except ValueError:
        return [_UNKNOWN]


def _cast_literal(node: exp.Cast):
    """A literal under a cast to a date, timestamp or text type; ``_UNKNOWN`` for other casts (a cast to a
    decimal of fewer digits rounds, and the rounded value is what the filter compares)."""
    inner = node.this.unnest()
    if not isinstance(inner, exp.Literal) or not inner.is_string:
        return _UNKNOWN
    text = inner.name
    try:
        if node.to.this == exp.DataType.Type.DATE:
            return dt.date.fromisoformat(text)
        if node.to.this in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.DATETIME):
            return dt.datetime.fromisoformat(text)
    except ValueError:
        return _UNKNOWN
    if node.to.this in exp.DataType.TEXT_TYPES:
        return text
    return _UNKNOWN
