"""Hash partitioning of Arrow tables on join keys, the same on every node: rows whose keys are equal under
DataFusion's join comparison land in the same partition whichever side, split or worker they come from.

The hash is computed here (numpy over Arrow buffers), never by DataFusion's repartitioning, whose hash is
seeded per build and may differ between CPUs. Each key pair of a join has one ``KeyKind``, chosen from the
two sides' Arrow types so that equal values have one canonical form:

    int64 = int32                   -> "int"         (the integer value)
    decimal(15,2) = decimal(12,1)   -> "decimal:2"   (the 128-bit value at scale 2: 1.5 and 1.50 agree)
    int = decimal(10,2)             -> "decimal:2"
    utf8 = large_utf8               -> "text"        (the UTF-8 bytes)
    date32 = date64                 -> "date"        (days since 1970-01-01)
    timestamp[us] = timestamp[ns]   -> "timestamp"   (whole seconds: equal instants agree; others may share)

    >>> import pyarrow as pa
    >>> key_kind(pa.int32(), pa.int64()), key_kind(pa.decimal128(15, 2), pa.decimal128(12, 1))
    ('int', 'decimal:2')
    >>> t = pa.table({"k": [1, 2, None, 2]})
    >>> [p.num_rows for p in partition(t, (("k", "int"),), 2)]  # the NULL key matches nothing: dropped
    [2, 1]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: (column, KeyKind) per join key, in the join's key order (both sides list their keys in the same order)
Keys = tuple[tuple[str, str], ...]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_STRING_BASE = np.uint64(0x100000001B3)


def key_kind(left: pa.DataType, right: pa.DataType) -> str | None:
    """The canonical form two join-key types are hashed in (see the module's table), or None when the pair
    is not one of them (floats, binaries, nested types, text against numbers: such joins stay local)."""
    def family(t: pa.DataType) -> str | None:
        if pa.types.is_integer(t) or pa.types.is_boolean(t):
            return "int"
        if pa.types.is_decimal128(t):
            return "decimal"
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return "text"
        if pa.types.is_date(t):
            return "date"
        if pa.types.is_timestamp(t):
            return "timestamp"
        return None

    a, b = family(left), family(right)
    if a is None or b is None:
        return None
    if {a, b} <= {"int", "decimal"} and "decimal" in (a, b):
        return f"decimal:{max(getattr(left, 'scale', 0), getattr(right, 'scale', 0))}"
    if a != b:
        return None
    if a == "timestamp" and left.tz != right.tz:
        return None
    return a


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer over uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _ints(values: pa.Array) -> np.ndarray:
    return values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64)


def _hash_text(values: pa.Array) -> np.ndarray:
    """A polynomial hash of each value's UTF-8 bytes (base ``_STRING_BASE``, mod 2**64), mixed with its length."""
    values = values.fill_null("").cast(pa.large_string())
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset:values.offset + n + 1]
    data = values.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    raw = raw[offsets[0]:offsets[-1]]
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    out = np.zeros(n, dtype=np.uint64)
    if len(raw):
        position = np.arange(len(raw), dtype=np.int64) - np.repeat(starts, lengths)
        powers = np.cumprod(np.full(int(lengths.max()), _STRING_BASE, dtype=np.uint64))
        contributions = (raw.astype(np.uint64) + np.uint64(1)) * powers[position]
        filled = lengths > 0
        out[filled] = np.add.reduceat(contributions, starts[filled])
    return out ^ (lengths.astype(np.uint64) * _GOLDEN)


def _hash_decimal(values: pa.Array, scale: int) -> np.ndarray:
    """The 128-bit value at ``scale`` (precision 38): both 64-bit halves, mixed."""
    # unchecked: a value that overflows at ``scale`` equals no value of the other side (which holds it exactly)
    values = pc.cast(values, pa.decimal128(38, scale), safe=False).fill_null(0)
    words = np.frombuffer(values.buffers()[1], dtype=np.uint64)[2 * values.offset:2 * (values.offset + len(values))]
    low, high = words[0::2], words[1::2]
    return _mix(low) ^ (_mix(high) * _GOLDEN)


def column_hash(values: pa.Array, kind: str) -> np.ndarray:
    """uint64 hashes of one key column in its ``kind``'s canonical form (NULL slots hash to an arbitrary value:
    callers drop those rows)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if kind == "int":
        if pa.types.is_boolean(values.type):
            values = values.cast(pa.int8())
        return _mix(_ints(values))
    if kind == "date":
        return _mix(_ints(values.cast(pa.date32()).cast(pa.int32())))
    if kind == "timestamp":
        seconds = pc.floor_temporal(values, unit="second").cast(pa.timestamp("s", values.type.tz))
        return _mix(_ints(seconds.cast(pa.int64())))
    if kind == "text":
        return _mix(_hash_text(values))
    if kind.startswith("decimal:"):
        return _hash_decimal(values, int(kind.split(":", 1)[1]))
    raise ValueError(f"unknown join key kind {kind!r}")


def partition_ids(table: pa.Table, keys: Keys, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, partition)``: the indices of the rows whose keys are all non-NULL (a NULL key never equals
    anything, so an inner join drops that row anyway) and each one's partition in ``[0, count)``."""
    valid = np.ones(table.num_rows, dtype=bool)
    combined = np.zeros(table.num_rows, dtype=np.uint64)
    for name, kind in keys:
        column = table.column(name)
        if column.null_count:
            valid &= ~column.is_null().to_numpy(zero_copy_only=False)
        combined = _mix(combined * _GOLDEN + column_hash(column, kind))
    rows = np.flatnonzero(valid)
    return rows, (combined[rows] % np.uint64(count)).astype(np.int64)


def partition(table: pa.Table, keys: Keys, count: int) -> list[pa.Table]:
    """``table`` cut into ``count`` tables by the hash of ``keys`` (``partition_ids``); rows with a NULL key
    are dropped. Each output has ``table``'s schema; rows keep their relative order."""
    if count < 1:
        raise ValueError("count must be at least 1")
    rows, ids = partition_ids(table, keys, count)
    order = rows[np.argsort(ids, kind="stable")]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=count))])
    # a take per partition: each output owns its buffers (a slice would ship the whole table to every reader)
    return [table.take(pa.array(order[bounds[i]:bounds[i + 1]], type=pa.int64())) for i in range(count)]
