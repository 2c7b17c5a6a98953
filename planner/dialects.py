"""The sqlglot dialect of the residual plan: DataFusion's SQL (``connectors.arrow.dialect``, where file sources
use it too), and the planner's SQL type of an Arrow type.
"""

from __future__ import annotations

import pyarrow as pa

from connectors.arrow.dialect import DATAFUSION_DIALECT, NAMING_DIALECT, DataFusion  # noqa: F401  (registers them)

RESIDUAL_DIALECT = DATAFUSION_DIALECT


def sqlglot_type(arrow_type: pa.DataType) -> str:
    """The SQL type name used in the planner's schema for an Arrow type (for qualification and typing)."""
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_int8(arrow_type) or pa.types.is_int16(arrow_type):
        return "SMALLINT"
    if pa.types.is_int32(arrow_type):
        return "INT"
    if pa.types.is_integer(arrow_type):
        return "BIGINT"
    if pa.types.is_float32(arrow_type):
        return "REAL"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision}, {arrow_type.scale})"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_time(arrow_type):
        return "TIME"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "BLOB"
    if pa.types.is_dictionary(arrow_type):
        return sqlglot_type(arrow_type.value_type)
    return "TEXT"
