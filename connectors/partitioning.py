"""Range partitions of a database table, declared in the source's config (the unit the cache works on).

    partition_column = "o_orderdate"
    partition_granularity = "month"        # "day", "month", "year" for dates/timestamps; an integer width

Partitions are consecutive ranges between the column's minimum and maximum, read once per table; the first
is open below and the last open above, so rows written later outside the old bounds still belong to one
partition, and one more partition holds the NULLs. Names encode the bounds, so a name alone says what it
covers (after a restart too):

    >>> RangeSpec("d", "month").name(None, "2024-02-01")
    'd:[-inf,2024-02-01)'
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

_NAME = re.compile(r"^(?P<col>.+):\[(?P<lo>[^,]*),(?P<hi>[^)]*)\)$")


@dataclass(frozen=True)
class RangeSpec:
    """``column`` split by ``granularity`` (``day``/``month``/``year``, or an integer width as text)."""

    column: str
    granularity: str

    @classmethod
    def from_options(cls, options: dict) -> RangeSpec | None:
        column = options.get("partition_column")
        if not column:
            return None
        return cls(str(column), str(options.get("partition_granularity", "month")))

    @property
    def null_partition(self) -> str:
        return f"{self.column}:NULL"

    def name(self, lo: str | None, hi: str | None) -> str:
        return f"{self.column}:[{lo or '-inf'},{hi or '+inf'})"

    def bounds(self, low, high) -> list[tuple[str | None, str | None]]:
        """Consecutive ``[lo, hi)`` ranges covering ``low..high`` (values of the column), ends left open."""
        if low is None or high is None:
            return [(None, None)]
        edges: list = []
        if self.granularity.isdigit():
            width = int(self.granularity)
            start = (int(low) // width) * width
            edges = list(range(start + width, int(high) + 1, width)) if int(high) >= start + width else []
            edges = [str(e) for e in edges]
        else:
            day = low.date() if isinstance(low, dt.datetime) else low
            last = high.date() if isinstance(high, dt.datetime) else high
            cursor = _truncate(day, self.granularity)
            while True:
                cursor = _advance(cursor, self.granularity)
                if cursor > last:
                    break
                edges.append(cursor.isoformat())
        points: list[str | None] = [None, *edges, None]
        return list(itertools.pairwise(points))

    def names(self, low, high) -> list[str]:
        return [self.name(lo, hi) for lo, hi in self.bounds(low, high)] + [self.null_partition]

    def predicate(self, partition: str, table_alias: str, arrow_type: pa.DataType) -> exp.Expression:
        """The condition that selects exactly ``partition`` (a name from ``names``)."""
        column = exp.column(self.column, table=table_alias, quoted=True)
        if partition == self.null_partition:
            return exp.Is(this=column, expression=exp.null())
        match = _NAME.match(partition)
        if match is None or match.group("col") != self.column:
            raise ValueError(f"'{partition}' is not a partition of column {self.column}")
        conditions = []
        for bound, op in ((match.group("lo"), exp.GTE), (match.group("hi"), exp.LT)):
            if bound not in ("-inf", "+inf"):
                conditions.append(op(this=column.copy(), expression=_literal(bound, arrow_type)))
        return exp.and_(*conditions) if conditions else exp.Not(this=exp.Is(this=column, expression=exp.null()))

    def overlaps(self, partition: str, low, high) -> bool:
        """Whether ``partition`` can hold values from ``low`` up to ``high`` (None = unbounded; dates as ISO
        text). ``high`` is a value, inclusive, or ``(value, inclusive)``."""
        if partition == self.null_partition:
            return low is None and high is None
        match = _NAME.match(partition)
        if match is None:
            return True
        key = int if self.granularity.isdigit() else str
        lo, hi = match.group("lo"), match.group("hi")
        high, inclusive = high if isinstance(high, tuple) else (high, True)
        if high is not None and lo != "-inf" and (key(high) < key(lo) or (not inclusive and key(high) == key(lo))):
            return False
        return not (low is not None and hi != "+inf" and key(low) >= key(hi))


def _literal(value: str, arrow_type: pa.DataType) -> exp.Expression:
    if pa.types.is_integer(arrow_type):
        return exp.Literal.number(value)
    target = "TIMESTAMP" if pa.types.is_timestamp(arrow_type) else "DATE"
    return exp.cast(exp.Literal.string(value), target)


def _truncate(day: dt.date, granularity: str) -> dt.date:
    if granularity == "year":
        return dt.date(day.year, 1, 1)
    if granularity == "month":
        return dt.date(day.year, day.month, 1)
    return day


def _advance(day: dt.date, granularity: str) -> dt.date:
    if granularity == "year":
        return dt.date(day.year + 1, 1, 1)
    if granularity == "month":
        return dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return day + dt.timedelta(days=1)
