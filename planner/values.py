"""Constants in SQL and on one numeric axis, for estimates and dynamic filters: the value of a literal
expression (typed literals and casts included), equality across Python types, a number/date/timestamp as a
float (dates in days, timestamps in seconds), and a string literal read as the type of the column it meets.
"""

from __future__ import annotations

import datetime as dt
import decimal

from sqlglot import exp


def literal_value(node: exp.Expression | None) -> tuple[bool, object]:
    """(known, value) of a constant: numbers, strings, booleans, NULL, typed literals (``DATE '2024-01-01'``,
    casts of a literal), negation. (False, None) for anything else (a parameter, a column, a function)."""
    if node is None:
        return False, None
    if isinstance(node, exp.Paren):
        return literal_value(node.this)
    if isinstance(node, exp.Null):
        return True, None
    if isinstance(node, exp.Boolean):
        return True, bool(node.this)
    if isinstance(node, exp.Neg):
        known, value = literal_value(node.this)
        return (True, -value) if known and isinstance(value, int | float | decimal.Decimal) else (False, None)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return True, node.this
        text = node.this
        try:
            return True, int(text)
        except ValueError:
            try:
                return True, decimal.Decimal(text)
            except decimal.InvalidOperation:
                return False, None
    if isinstance(node, exp.Cast | exp.TryCast):
        known, value = literal_value(node.this)
        if not known or value is None:
            return known, value
        target = node.to
        if target.is_type(*exp.DataType.TEMPORAL_TYPES) and isinstance(value, str):
            try:
                if target.is_type("date"):
                    return True, dt.date.fromisoformat(value.strip()[:10])
                return True, dt.datetime.fromisoformat(value.strip())
            except ValueError:
                return False, None
        return True, value
    return False, None


def same_value(a: object, b: object) -> bool:
    """Whether two constants are equal as SQL compares them here (naive and aware timestamps alike; a boolean
    never equals a number)."""
    try:
        if isinstance(a, dt.datetime) and isinstance(b, dt.datetime) and (a.tzinfo is None) != (b.tzinfo is None):
            a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
        return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)
    except TypeError:
        return False


def numeric_axis(value: object) -> float | None:
    """A value on one numeric axis: numbers as floats, dates as days, timestamps as seconds (naive as UTC)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, dt.date):
        return float(value.toordinal())
    return None


def coerce_literal(value: object, like: object) -> object:
    """A string literal compared with a date or timestamp column, read as one (``d < '2024-01-01'``)."""
    if isinstance(value, str):
        try:
            if isinstance(like, dt.datetime):
                return dt.datetime.fromisoformat(value.strip())
            if isinstance(like, dt.date):
                return dt.date.fromisoformat(value.strip()[:10])
            if isinstance(like, int | float | decimal.Decimal) and not isinstance(like, bool):
                return decimal.Decimal(value)
        except (ValueError, decimal.InvalidOperation):
            return value
    return value
