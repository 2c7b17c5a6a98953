"""Whether an expression may be pushed to a source: the same answer there as in DataFusion, or not at all.

Each rule gives the reason an expression stays in DataFusion, so EXPLAIN can show it (Trino-style: nothing
is dropped silently). A rule reads the source's ``Capabilities`` and the Arrow types of the columns.

    >>> from connectors.sqlite import SQLiteConnector
    >>> import sqlglot
    >>> unpushable_reason(sqlglot.parse_one("name LIKE 'a%'"), SQLiteConnector.capabilities, lambda c: None)
    "LIKE ignores case in this source's dialect"
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from sqlglot import exp

from connectors.base import Capabilities

ColumnType = Callable[[exp.Column], "pa.Field | None"]

_ORDERING = exp.GT | exp.GTE | exp.LT | exp.LTE | exp.Between
_TEMPORAL_TEXT_SOURCES = ("sqlite",)
# nodes whose result depends on text equality (a case-insensitive collation merges 'a' and 'A')
_TEXT_EQUALITY_USERS = (
    exp.EQ, exp.NEQ, exp.In, exp.Like, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.Group, exp.Ordered,
    exp.Min, exp.Max, exp.Count, exp.Select,
)


def _is_text(field: pa.Field | None) -> bool:
    return field is not None and (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))


def _is_float(field: pa.Field | None) -> bool:
    return field is not None and pa.types.is_floating(field.type)


def _read_as_text(field: pa.Field | None) -> bool:
    return bool(field is not None and field.metadata and field.metadata.get(b"gateway.read_as_text") == b"1")


def _has_text(node: exp.Expression, column_type: ColumnType) -> bool:
    return any(_is_text(f) for f in _column_fields(node, column_type))


def _column_fields(node: exp.Expression, column_type: ColumnType) -> list[pa.Field | None]:
    return [column_type(c) for c in node.find_all(exp.Column)]


def unpushable_reason(
    node: exp.Expression, caps: Capabilities, column_type: ColumnType, dialect: str = ""
) -> str | None:
    """The reason ``node`` must stay in DataFusion, or None when the source computes the same result.

    Args:
        node: a predicate, a projection, or a whole query.
        caps: the source's declared capabilities.
        column_type: the catalog field of a (qualified) column, or None if unknown.
        dialect: the source's sqlglot dialect (for storage rules such as SQLite's text dates).
    """
    for sub in node.walk():
        if isinstance(sub, exp.Column):
            field = column_type(sub)
            if field is None and not isinstance(sub.this, exp.Star):
                return f"the type of column {sub.sql()} is unknown"
            if _read_as_text(field):
                return f"column {sub.sql()} is read as text (its type has no exact Arrow reading in the source)"
            continue
        if type(sub) not in caps.expressions:
            return f"{sub.key.upper()} is not among the source's pushable operations"
        if isinstance(sub, exp.Like) and not caps.case_sensitive_like:
            return "LIKE ignores case in this source's dialect"
        if isinstance(sub, _ORDERING) and not caps.ordered_text and _has_text(sub, column_type):
            return "text ordering follows the source's collation, not byte order"
        if isinstance(sub, _ORDERING | exp.EQ | exp.NEQ | exp.In) and dialect in _TEMPORAL_TEXT_SOURCES:
            fields = _column_fields(sub, column_type)
            if any(f is not None and (pa.types.is_temporal(f.type)) for f in fields):
                return "dates and timestamps are stored as text in this source"
        if not caps.text_equality and isinstance(sub, _TEXT_EQUALITY_USERS):
            nodes = sub.expressions if isinstance(sub, exp.Select) and sub.args.get("distinct") else (
                [] if isinstance(sub, exp.Select) else [sub])
            if any(_is_text(f) for n in nodes for f in _column_fields(n, column_type)):
                return "text comparison in this source follows its collation (case/accent-insensitive)"
        if isinstance(sub, exp.Ordered | exp.Min | exp.Max) and not caps.ordered_text and _has_text(sub, column_type):
            return "text ordering follows the source's collation, not byte order"
        if isinstance(sub, exp.Sum | exp.Avg) and not caps.exact_float_sum and any(
            _is_float(f) for f in _column_fields(sub, column_type)
        ):
            return "floating-point sums depend on summation order"
        if isinstance(sub, exp.Cast) and not isinstance(sub.this, exp.Literal):
            return "casts of computed values may differ between engines"
        if isinstance(sub, exp.Subquery | exp.Exists) and not caps.full_query:
            return "sub-queries are not pushed to this source"
    return None
