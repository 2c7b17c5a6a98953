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


def sample_column_statistics(sample: pa.Table, total_rows: float | None, origin: str = ""
                             ) -> dict[str, ColumnStatistics]:
    """Per-column statistics of a sample of a table: distinct (scaled to ``total_rows`` with
    ``scale_distinct``), null fraction, min/max of the sample, and the most common values (those at least
    25% more frequent than average, as PostgreSQL keeps them).

    Args:
        sample: rows of the table (a bounded sample, or all of a small table).
        total_rows: rows of the whole table; None when unknown (then nothing is scaled).
        origin: the label stored on each column; default ``sample <n> of ~<total_rows> rows``.

    Columns of nested or binary types get only their null fraction.
    """
    n = sample.num_rows
    label = origin or (f"sample {n} of ~{int(total_rows)} rows" if total_rows else f"sample {n} rows")
    out: dict[str, ColumnStatistics] = {}
    if n == 0:
        return out
    scale = (total_rows / n) if total_rows and total_rows > n else 1.0
    for name, column in zip(sample.column_names, sample.columns, strict=True):
        if isinstance(column.type, pa.ExtensionType):
            column = pa.chunked_array([c.storage for c in column.chunks], type=column.type.storage_type)
        nulls = column.null_count
        null_fraction = nulls / n
        kind = column.type
        if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or (
            pa.types.is_null(kind)
        ):
            out[name] = ColumnStatistics(null_fraction=null_fraction, distinct=0.0 if nulls == n else None,
                                         origin=label)
            continue
        non_null = n - nulls
        if non_null == 0:
            out[name] = ColumnStatistics(distinct=0.0, null_fraction=1.0, origin=label)
            continue
        counts = pc.value_counts(column.drop_null() if hasattr(column, "drop_null") else pc.drop_null(column))
        values, freqs = counts.field("values"), counts.field("counts").to_numpy()
        d = len(freqs)
        f1 = int((freqs == 1).sum())
        distinct = scale_distinct(d, non_null, f1, non_null * scale)
        lo, hi = _min_max(column)
        average = non_null / d
        order = sorted(range(d), key=lambda i: -int(freqs[i]))
        common = tuple(
            (values[i].as_py(), float(freqs[i]) / n) for i in order[:MOST_COMMON]
            if freqs[i] > 1 and freqs[i] >= 1.25 * average
        )
        out[name] = ColumnStatistics(distinct=distinct, null_fraction=null_fraction, min=lo, max=hi,
                                     most_common=common, origin=label)
    return out


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
