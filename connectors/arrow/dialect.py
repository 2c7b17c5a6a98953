"""The sqlglot dialect of every SQL text DataFusion runs: residual plans, fragments of file and table-format
sources (whole queries pushed to them included), cached partitions filtered locally, dynamic-filter keys.
Registered in sqlglot as ``"datafusion"`` (``DATAFUSION_DIALECT``); ``NAMING_DIALECT`` writes the same SQL without
the guard below, for planning a query as written only (DataFusion names unaliased outputs after their text).

DataFusion's SQL is close to PostgreSQL's; the differences are class data, as in sqlglot's own dialects, and one
rewrite before generating: ``null_sets.guard_in_sets`` (DataFusion 55 combines IN lists ignoring NULLs).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres

from connectors.arrow.null_sets import guard_in_sets


class DataFusion(Postgres):
    """Generates SQL that DataFusion's parser accepts and its optimizer answers as SQL does."""

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

        def preprocess(self, expression: exp.Expression) -> exp.Expression:
            """Postgres's preprocessing, then the IN lists DataFusion 55 would combine wrongly guarded (on the
            generator's copy of the tree: ``.sql()`` leaves the caller's tree as it was)."""
            return guard_in_sets(super().preprocess(expression))


class DataFusionNaming(DataFusion):
    """DataFusion's SQL as the user wrote it, IN lists unguarded: only for planning a query whose output names
    DataFusion derives from the expressions' text (``SELECT g NOT IN (1) OR g NOT IN (2)`` keeps that name).
    Never for SQL that runs: its answers may be wrong (``null_sets``)."""

    class Generator(DataFusion.Generator):
        def preprocess(self, expression: exp.Expression) -> exp.Expression:
            return Postgres.Generator.preprocess(self, expression)


DATAFUSION_DIALECT = "datafusion"
NAMING_DIALECT = "datafusionnaming"
