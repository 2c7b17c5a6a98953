"""Helpers the connectors share to build ``ColumnStatistics`` cheaply: statistics of a bounded sample (scaled to
the table), values from a source's text form, and the limits that keep collection bounded in time.

A sample's distinct count is scaled with the Haas-Stokes ``Duj1`` estimator that PostgreSQL's ANALYZE uses
(``n*d / (n - f1 + f1*n/N)``, f1 = values seen exactly once): a sample where every value is unique scales to
the table's rows, one where every value repeats stays at the sample's count.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import ColumnStatistics

#: rows read when a source has no statistics of its own (a LIMIT or TABLESAMPLE; never the whole table)
SAMPLE_ROWS = 10_000
#: seconds a statistics statement may run at the source before it is cancelled (statement timeout)
STATEMENT_TIMEOUT_S = 2.0
#: most-common values kept per column
MOST_COMMON = 10


def scale_distinct(sample_distinct: float, sample_rows: float, f1: float, total_rows: float | None) -> float:
    """Distinct values of a table estimated from a sample (Haas and Stokes' Duj1, as PostgreSQL's ANALYZE).

    Args:
        sample_distinct: distinct non-null values in the sample (d).
        sample_rows: non-null values in the sample (n).
        f1: values that occur exactly once in the sample.
        total_rows: non-null values in the table (N); None or <= n when the sample is the whole table.

    Returns the estimate (a count), between d and N.

        >>> scale_distinct(100, 10_000, 0, 200_000)    # every value repeats: all were seen
        100.0
        >>> scale_distinct(10_000, 10_000, 10_000, 200_000)  # all unique: a key, scaled to the table
        200000.0
    """
    d, n = float(sample_distinct), float(sample_rows)
    if total_rows is None or total_rows <= n or n <= 0 or d <= 0:
        return d
    big_n = float(total_rows)
    estimate = n * d / ((n - f1) + f1 * n / big_n)
    return float(min(max(estimate, d), big_n))


#: a sorted column is scaled linearly only when its values change at least this often within a block (a year per
#: block of a date-sorted table has no basis to be extrapolated)
CLUSTERED_MIN_RATIO = 0.01


def clustered_distinct(column: pa.ChunkedArray | pa.Array, blocks: list[int] | None, sample_distinct: float,
                       sample_rows: float, total_rows: float | None) -> float | None:
    """Distinct values of a column the table stores in sorted order, from a sample of contiguous ``blocks`` (row
    counts, in sample order): when every block is sorted by the column (also files partitioned by another
    column, each sorted by this one), each stretch of the table holds its own values, and the distinct count
    grows with the rows read: ``d / n * N``. None when a block is not sorted (then ``scale_distinct`` applies;
    blocks that merely share no value are not enough: partitions by year hold disjoint ship dates), for no
    blocks, or without ``total_rows``.

    Why: Duj1 sees every value of a sorted key repeated inside its block (TPC-H ``l_orderkey``: four lines per
    order) and keeps the sample's count (2,617 for 1.5M orders); the dynamic filter then thought 147,126 keys
    kept every row.

        >>> import pyarrow as pa
        >>> keys = pa.array([k // 4 for k in range(0, 400)] + [k // 4 for k in range(40_000, 40_400)])
        >>> clustered_distinct(keys, [400, 400], 200, 800, 1_000_000)
        250000.0
        >>> clustered_distinct(pa.array([1, 2, 3, 1] * 100), [200, 200], 3, 400, 1_000_000) is None
        True
    """
    if not blocks or total_rows is None or total_rows <= sample_rows or sample_rows <= 0:
        return None
    if sample_distinct / sample_rows < CLUSTERED_MIN_RATIO:
        return None
    offset = 0
    for size in blocks:
        if not _ordered(column.slice(offset, size)):
            return None
        offset += size
    return float(min(sample_distinct / sample_rows * total_rows, total_rows))


def _ordered(block: pa.ChunkedArray | pa.Array) -> bool:
    """Whether the block's values never decrease (or never increase): a stretch of a table sorted by them."""
    if len(block) < 2:
        return True
    try:
        earlier, later = block.slice(0, len(block) - 1), block.slice(1)
        return bool(pc.all(pc.greater_equal(later, earlier)).as_py() or pc.all(pc.less_equal(later, earlier)).as_py())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return False


def sample_column_statistics(sample: pa.Table, total_rows: float | None, origin: str = "",
                             blocks: list[int] | None = None) -> dict[str, ColumnStatistics]:
    """Per-column statistics of a sample of a table: distinct (scaled to ``total_rows`` with
    ``scale_distinct``, or ``clustered_distinct`` for a column stored in sorted order), null fraction, min/max
    of the sample, and the most common values (those at least 25% more frequent than average, as PostgreSQL
    keeps them).

    Args:
        sample: rows of the table (a bounded sample, or all of a small table).
        total_rows: rows of the whole table; None when unknown (then nothing is scaled).
        origin: the label stored on each column; default ``sample <n> of ~<total_rows> rows``.
        blocks: row counts of the sample's contiguous stretches of the table, in order (None: rows drawn
            at random, or unknown).

    Columns of nested or binary types get only their null fraction.
    """
    n = sample.num_rows
    label = origin or (f"sample {n} of ~{int(total_rows)} rows" if total_rows else f"sample {n} rows")
    out: dict[str, ColumnStatistics] = {}
    if n == 0:
        return out
    scale = (total_rows / n) if total_rows and total_rows > n else 1.0
    for name, column in zip(sample.column_names, sample.columns, strict=True):
        out[name] = _column_statistics(column, n, scale, label, blocks)
    return out


def _column_statistics(column: pa.ChunkedArray, n: int, scale: float, label: str, blocks: list[int] | None
                       ) -> ColumnStatistics:
    """One column of ``sample_column_statistics``: ``n`` sampled rows standing for ``scale`` times as many."""
    if isinstance(column.type, pa.ExtensionType):
        column = pa.chunked_array([c.storage for c in column.chunks], type=column.type.storage_type)
    nulls = column.null_count
    null_fraction = nulls / n
    kind = column.type
    if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or (
        pa.types.is_null(kind)
    ):
        return ColumnStatistics(null_fraction=null_fraction, distinct=0.0 if nulls == n else None, origin=label)
    non_null = n - nulls
    if non_null == 0:
        return ColumnStatistics(distinct=0.0, null_fraction=1.0, origin=label)
    counts = pc.value_counts(column.drop_null() if hasattr(column, "drop_null") else pc.drop_null(column))
    values, freqs = counts.field("values"), counts.field("counts").to_numpy()
    d = len(freqs)
    f1 = int((freqs == 1).sum())
    distinct = scale_distinct(d, non_null, f1, non_null * scale)
    if blocks and nulls == 0:  # block sizes count rows: only a column without NULLs slices by them
        distinct = max(distinct, clustered_distinct(column, blocks, d, non_null, non_null * scale) or 0.0)
    lo, hi = _min_max(column)
    average = non_null / d
    order = sorted(range(d), key=lambda i: -int(freqs[i]))
    common = tuple(
        (values[i].as_py(), float(freqs[i]) / n) for i in order[:MOST_COMMON]
        if freqs[i] > 1 and freqs[i] >= 1.25 * average
    )
    return ColumnStatistics(distinct=distinct, null_fraction=null_fraction, min=lo, max=hi, most_common=common,
                            origin=label)


def _min_max(column: pa.ChunkedArray) -> tuple[object, object]:
    try:
        result = pc.min_max(column)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return None, None
    return result["min"].as_py(), result["max"].as_py()


def value_from_text(text: str | None, arrow_type: pa.DataType) -> object | None:
    """A source's text form of a value (PostgreSQL's output, MariaDB's ``column_stats``) as a Python value of
    ``arrow_type``; None when it is NULL or cannot be read (infinity dates, a format not understood).

        >>> value_from_text("42", pa.int32()), value_from_text("2024-02-29", pa.date32())
        (42, datetime.date(2024, 2, 29))
        >>> value_from_text("2024-01-01 10:00:00+00", pa.timestamp("us", tz="UTC"))
        datetime.datetime(2024, 1, 1, 10, 0, tzinfo=datetime.timezone.utc)
    """
    if text is None:
        return None
    try:
        if pa.types.is_integer(arrow_type):
            return int(text)
        if pa.types.is_floating(arrow_type):
            value = float(text)
            return value if math.isfinite(value) else None
        if pa.types.is_decimal(arrow_type):
            value = decimal.Decimal(text)
            return value if value.is_finite() else None
        if pa.types.is_boolean(arrow_type):
            return text.strip().lower() in ("t", "true", "1", "yes", "on")
        if pa.types.is_date(arrow_type):
            return dt.date.fromisoformat(text.strip()[:10])
        if pa.types.is_timestamp(arrow_type):
            value = dt.datetime.fromisoformat(text.strip())
            if arrow_type.tz is None:
                return value.replace(tzinfo=None)
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
            return None
    except (ValueError, ArithmeticError):
        return None
    return text


def smallest(values: Iterable[object]) -> object | None:
    """The least of ``values`` ignoring None (and values not comparable with the first); None when empty."""
    return _extreme(values, lambda a, b: a < b)


def largest(values: Iterable[object]) -> object | None:
    """The greatest of ``values`` ignoring None (and values not comparable with the first); None when empty."""
    return _extreme(values, lambda a, b: a > b)


def _extreme(values: Iterable[object], better) -> object | None:
    best = None
    for value in values:
        if value is None:
            continue
        try:
            if best is None or better(value, best):
                best = value
        except TypeError:
            continue
    return best


def typed_sample(data: pa.Table, fields: pa.Schema) -> pa.Table:
    """``data`` (statistics samples: decimals and text-read types as text) cast to ``fields``' types where
    the cast succeeds."""
    converted = []
    for f in fields:
        column = data.column(f.name)
        if column.type != f.type:
            try:
                column = pc.cast(column, f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        converted.append(column)
    return pa.table(converted, names=fields.names)
