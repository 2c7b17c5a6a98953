"""The types of a query's ``?`` parameters, for a prepared statement's ``parameter_schema``.

A parameter takes the type of what it is compared with: ``col = ?``, ``col IN (?, ?)``,
``col BETWEEN ? AND ?``, ``col LIKE ?`` give the column's Arrow type (from the catalog), ``CAST(? AS t)``
gives ``t``, ``LIMIT ?`` / ``OFFSET ?`` give int64. A parameter with no such context (``SELECT ? AS x``)
is ``null``: any value is accepted and keeps its own type. JDBC/ODBC drivers pick their binding from
these types, so a typed field matters more than a guessed one.

    >>> from planner.parse import parse
    >>> schemas = {"t": pa.schema([("id", pa.int32()), ("name", pa.string())])}
    >>> parameter_schema(parse("SELECT * FROM t WHERE id = ? AND name LIKE ?").expression, schemas.get).types
    [DataType(int32), DataType(string)]
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from sqlglot import exp

from connectors.arrow.datafusion import sql_type
from planner.dialects import RESIDUAL_DIALECT
from planner.parse import placeholders

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.Is)


def parameter_schema(expression: exp.Expression,
                     table_schema: Callable[[tuple[str, ...]], pa.Schema | None]) -> pa.Schema:
    """Fields ``$1``.. ``$n`` typed from context; ``table_schema(parts)`` gives a table name's schema."""
    tables: dict[str, pa.Schema] = {}
    for table in expression.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        schema = table_schema(tuple(p.name for p in table.parts))
        if schema is not None:
            tables[(table.alias_or_name).lower()] = schema
    params = placeholders(expression)
    count = max((int(p.this.name) for p in params), default=0)
    types: dict[int, pa.DataType] = {}
    for param in params:
        number = int(param.this.name)
        found = _context_type(param, tables)
        if found is not None and number not in types:
            types[number] = found
    return pa.schema([pa.field(f"${i}", types.get(i, pa.null())) for i in range(1, count + 1)])


def _column_type(column: exp.Column, tables: dict[str, pa.Schema]) -> pa.DataType | None:
    name = column.name
    if column.table:
        schema = tables.get(column.table.lower())
        candidates = [schema] if schema is not None else []
    else:
        candidates = list(tables.values())
    found = [s.field(name).type for s in candidates if name in s.names]
    if not found:
        lowered = [f.type for s in candidates for f in s if f.name.lower() == name.lower()]
        found = lowered
    return found[0] if len(found) == 1 or (found and all(t == found[0] for t in found)) else None


def _typed(node: exp.Expression, tables: dict[str, pa.Schema]) -> pa.DataType | None:
    if isinstance(node, exp.Column):
        return _column_type(node, tables)
    if isinstance(node, exp.Cast):
        return _cast_type(node)
    return None


def _cast_type(cast: exp.Cast) -> pa.DataType | None:
    try:
        return sql_type(cast.to.sql(dialect=RESIDUAL_DIALECT))
    except Exception:
        return None


def _context_type(param: exp.Parameter, tables: dict[str, pa.Schema]) -> pa.DataType | None:
    node: exp.Expression = param
    parent = node.parent
    while isinstance(parent, exp.Paren):
        node, parent = parent, parent.parent
    if isinstance(parent, exp.Cast):
        return _cast_type(parent)
    if isinstance(parent, exp.Limit | exp.Offset | exp.Fetch):
        return pa.int64()
    if isinstance(parent, _COMPARISONS):
        other = parent.expression if parent.this is node else parent.this
        return _typed(other, tables)
    if isinstance(parent, exp.In):
        return _typed(parent.this, tables)
    if isinstance(parent, exp.Between):
        return _typed(parent.this, tables)
    return None
