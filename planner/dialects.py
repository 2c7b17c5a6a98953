"""The sqlglot dialect of the residual plan: DataFusion's SQL, close to PostgreSQL's.

Dialect differences are class data, as in sqlglot's own dialects.
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres


class DataFusion(Postgres):
    """Generates SQL that DataFusion's parser accepts (registered in sqlglot as ``"datafusion"``)."""

    class Generator(Postgres.Generator):
        TYPE_MAPPING = {
            **Postgres.Generator.TYPE_MAPPING,
            exp.DataType.Type.TINYINT: "TINYINT",
            exp.DataType.Type.DOUBLE: "DOUBLE",
            exp.DataType.Type.FLOAT: "FLOAT",
            exp.DataType.Type.TIMESTAMPTZ: "TIMESTAMP WITH TIME ZONE",
        }

        TRANSFORMS = {
            **Postgres.Generator.TRANSFORMS,
            # lower-case units, as people write them: DataFusion names an unaliased output after the literal
            exp.TimestampTrunc: lambda self, e: self.func(
                "DATE_TRUNC", exp.Literal.string(e.args["unit"].name.lower() if e.args.get("unit") else "day"), e.this),
            # DataFusion's parser binds IS [NOT] DISTINCT FROM looser than AND: `a IS NOT DISTINCT FROM b AND c`
            # reads as `a IS NOT DISTINCT FROM (b AND c)` ("Cannot infer common argument type ... Utf8 AND Boolean")
            exp.NullSafeEQ: lambda self, e: f"({self.binary(e, 'IS NOT DISTINCT FROM')})",
            exp.NullSafeNEQ: lambda self, e: f"({self.binary(e, 'IS DISTINCT FROM')})",
        }


RESIDUAL_DIALECT = "datafusion"


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
