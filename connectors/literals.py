"""Python values as sqlglot literals that every dialect reads alike: query parameters and dynamic filters' keys.

``literal`` is re-exported by ``connectors.base`` (where ``Connector.key_filter`` renders keys with it).
"""

from __future__ import annotations

import datetime
import decimal

from sqlglot import exp

from connectors.errors import InvalidRequestError


def _decimal_literal(value: decimal.Decimal) -> exp.Expression:
    """``CAST('12.50' AS DECIMAL(4, 2))``: a bare ``12.50`` is a float in DataFusion, which compares decimals
    with it lossily (``amt IN (39383.85, ...)`` missed rows: a dynamic filter's keys the fuzzer caught)."""
    text = format(value, "f")
    whole, _, fraction = text.lstrip("-").partition(".")
    scale = len(fraction)
    precision = max(len(whole.lstrip("0")) + scale, scale + 1, 1)
    if precision > 38:
        return exp.Literal.number(value)
    return exp.cast(exp.Literal.string(text), exp.DataType.build(f"DECIMAL({precision}, {scale})"))


def literal(value: object) -> exp.Expression:
    """A sqlglot literal for a Python value, typed so every dialect reads it the same way (query parameters,
    dynamic filters' keys).

    NaN and ±Infinity (float or Decimal) are refused with InvalidRequestError: as a number they would render
    as a column name (``= -Infinity`` compared with a column ``infinity``), and as ``CAST('Infinity' AS
    DOUBLE)`` SQLite and MySQL would read 0.0 where DataFusion and PostgreSQL read infinity."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | decimal.Decimal):
        if isinstance(value, decimal.Decimal):
            nan, infinite = value.is_nan(), value.is_infinite()
        else:
            nan, infinite = value != value, isinstance(value, float) and abs(value) == float("inf")
        if nan or infinite:
            shown = "NaN" if nan else "-Infinity" if value < 0 else "Infinity"
            raise InvalidRequestError(f"{shown} is not accepted as a parameter (not every source can compare "
                                      "with it); pass a finite number or NULL")
        if isinstance(value, decimal.Decimal):
            return _decimal_literal(value)
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, datetime.datetime):
        target = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), target)
    if isinstance(value, datetime.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, bytes):
        return exp.HexString(this=value.hex())
    raise InvalidRequestError(f"parameter of type {type(value).__name__} is not supported")
