"""Input limits, checked before a statement is planned, so that no client input can crash or stall the
process: sqlglot and DataFusion recurse over the expression tree (a 6,000-branch UNION overflowed
DataFusion's native stack and killed the process), and planning time grows with IN lists and OR chains.

    >>> check_text("SELECT " + "(" * 60 + "1" + ")" * 60, InputLimits())
    Traceback (most recent call last):
    connectors.errors.InputLimitError: the statement nests parentheses 60 deep; the limit (nesting_depth) is 40

``check_text`` runs on the raw text (milliseconds even for megabytes: regular expressions, no parsing);
``check_tree`` on the parsed expression (one walk). Both raise ``InputLimitError`` naming the limit, its
value and what the statement has.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from sqlglot import exp

from connectors.errors import InputLimitError

# Parsing and qualifying recurse about 20 Python frames per nesting level; the default limit of 1,000
# frames failed at 50 levels. Python 3.11+ keeps pure-Python frames off the C stack, so this is safe.
_RECURSION_FRAMES = 20_000
if sys.getrecursionlimit() < _RECURSION_FRAMES:
    sys.setrecursionlimit(_RECURSION_FRAMES)

# string literals, quoted identifiers and comments: their contents are not SQL structure
_OPAQUE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|--[^\n]*|/\*.*?\*/", re.DOTALL)
_SET_OPERATION = re.compile(r"\b(?:UNION|INTERSECT|EXCEPT)\b", re.IGNORECASE)
_PAREN = re.compile(r"[()]")
_IN_LIST = re.compile(r"\bIN\s*\(", re.IGNORECASE)
_PARAMETER = re.compile(r"\?|\$\d+")


@dataclass(frozen=True)
class InputLimits:
    """Bounds on one statement. Defaults admit every TPC-H and TPC-DS query with a wide margin.

    Attributes:
        statement_bytes: UTF-8 size of the SQL text (bytes).
        nesting_depth: parentheses nested in one another (sub-queries, calls, grouping); DataFusion's own
            SQL parser refuses more than 50 levels, so deeper statements could never run.
        set_operations: UNION / INTERSECT / EXCEPT operators in the statement.
        boolean_terms: operands of one AND/OR chain (``a = 1 OR a = 2 OR ...``; an IN list is cheaper).
        in_list: values in one ``IN (...)`` list.
        parameters: ``?`` / ``$n`` parameters.
        tables: table references (each FROM/JOIN item, sub-queries included).
    """

    statement_bytes: int = 1 << 20
    nesting_depth: int = 40
    set_operations: int = 256
    boolean_terms: int = 2_000
    in_list: int = 20_000
    parameters: int = 10_000
    tables: int = 256


def check_text(sql: str, limits: InputLimits) -> None:
    """Refuse a statement whose text exceeds ``statement_bytes``, ``nesting_depth``, ``set_operations`` or
    ``parameters``, before it is parsed. Raises InputLimitError."""
    size = len(sql.encode("utf-8", "surrogatepass"))
    if size > limits.statement_bytes:
        _refuse("statement_bytes", limits.statement_bytes, f"the statement is {size:,} bytes")
    structure = _OPAQUE.sub(" ", sql)
    depth = deepest = 0
    for paren in _PAREN.finditer(structure):
        depth += 1 if paren.group() == "(" else -1
        deepest = max(deepest, depth)
    if deepest > limits.nesting_depth:
        _refuse("nesting_depth", limits.nesting_depth, f"the statement nests parentheses {deepest} deep")
    operations = sum(1 for _ in _SET_OPERATION.finditer(structure))
    if operations > limits.set_operations:
        _refuse("set_operations", limits.set_operations, f"the statement has {operations} UNION/INTERSECT/EXCEPT")
    parameters = sum(1 for _ in _PARAMETER.finditer(structure))
    if parameters > limits.parameters:
        _refuse("parameters", limits.parameters, f"the statement has {parameters:,} parameters")
    for match in _IN_LIST.finditer(structure):  # before parsing: sqlglot takes seconds over 30,000 values
        values = _list_length(structure, match.end())
        if values > limits.in_list:
            _refuse("in_list", limits.in_list, f"an IN list has {values:,} values")


def _list_length(text: str, start: int) -> int:
    """Items of the parenthesized list opening just before ``start``: commas at its own depth, plus one."""
    depth, items = 1, 1
    for position in range(start, len(text)):
        char = text[position]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                break
        elif char == "," and depth == 1:
            items += 1
    return items


def check_tree(expression: exp.Expression, limits: InputLimits) -> None:
    """Refuse a parsed statement with a longer IN list or AND/OR chain, or more table references, than
    ``limits`` allow. One walk over the tree. Raises InputLimitError."""
    tables = 0
    for node in expression.walk():
        if isinstance(node, exp.Table):
            tables += 1
        elif isinstance(node, exp.In):
            values = len(node.expressions)
            if values > limits.in_list:
                _refuse("in_list", limits.in_list, f"an IN list has {values:,} values")
        elif isinstance(node, exp.Connector) and type(node.parent) is not type(node):
            terms = _chain_length(node)
            if terms > limits.boolean_terms:
                _refuse("boolean_terms", limits.boolean_terms, f"an AND/OR chain has {terms:,} terms")
    if tables > limits.tables:
        _refuse("tables", limits.tables, f"the statement references {tables:,} tables")


def _chain_length(node: exp.Connector) -> int:
    """Operands of a chain of one connector kind (iterative: chains are left-deep and may be long)."""
    kind, count, stack = type(node), 0, [node]
    while stack:
        current = stack.pop()
        if type(current) is kind:
            stack.extend((current.this, current.expression))
        else:
            count += 1
    return count


def _refuse(name: str, limit: int, found: str) -> None:
    raise InputLimitError(f"{found}; the limit ({name}) is {limit:,}", limit=name, value=limit)
