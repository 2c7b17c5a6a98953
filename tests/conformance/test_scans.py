"""Each source returns the loaded rows, typed as its connector declares: the ground the semantic cases stand
on (their reference is DataFusion over these very scans)."""

from __future__ import annotations

import pyarrow as pa

from tests.fuzz.data import scan_difference

#: source -> column -> the Arrow type the source gives instead of the canonical one
TYPES = {
    # SQLite's INTEGER is 64-bit whatever the declared width
    "lite": {"id": pa.int64(), "grp": pa.int64(), "n": pa.int64(), "item_id": pa.int64()},
    # CSV has no types: DataFusion infers them; integers as Int64 and (a gap) decimals as Float64
    "csv": {"id": pa.int64(), "grp": pa.int64(), "n": pa.int64(), "item_id": pa.int64(), "amount": pa.float64(),
            "weight": pa.float64()},
    # Iceberg has no 16-bit integer: pyiceberg stores an int16 column as int (32-bit)
    "ice": {"grp": pa.int32()},
}

#: (source, table) -> how its rows differ from the loaded ones (known gaps: findings)
VALUES = {
    # CSV cannot tell '' from NULL: the two rows named '' read as NULL
    ("csv", "items"): "name (string): 2 rows differ, e.g. id 13: None, want ''",
}


def test_scan_types(source, world):
    for table, canonical in world.group("cf").items():
        want = {f.name: TYPES.get(source.name, {}).get(f.name, f.type) for f in canonical.schema}
        got = {f.name: f.type for f in source.scans[table].schema}
        assert got == want, f"{source.name}.{table}"


def test_scan_values(source, world):
    for table, canonical in world.group("cf").items():
        assert scan_difference(canonical, source.scans[table]) == VALUES.get((source.name, table)), \
            f"{source.name}.{table}"
