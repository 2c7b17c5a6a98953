"""Each ``ROUND`` of a decimal marked with the type DataFusion 55 runs it in, so that the SQL DataFusion runs can
state that type (``connectors.arrow.dialect.typed_decimal_rounds``, which says why).

The planner knows the argument's type where the dialect does not: DataFusion itself types it over empty tables of
the catalog's schemas (``FederationState.oracle_schema``), one plan per SELECT that holds such a ROUND. A ROUND
whose argument cannot be typed so (it reads an outer query's column, a CTE, an output alias) stays as written.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from sqlglot import exp

from connectors.arrow.dialect import DECIMAL_ROUND

#: the schema DataFusion gives a SELECT over the catalog's tables, or None (``FederationState.oracle_schema``)
Oracle = Callable[[exp.Expression], "pa.Schema | None"]


def _literal_scale(node: exp.Round) -> int | None:
    """The integer ROUND rounds to (0 without one), or None when it is not an integer literal."""
    decimals = node.args.get("decimals")
    if decimals is None:
        return 0
    negative = isinstance(decimals, exp.Neg)
    literal = decimals.this if negative else decimals
    if not (isinstance(literal, exp.Literal) and not literal.is_string and literal.this.isdigit()):
        return None
    return -int(literal.this) if negative else int(literal.this)


def rounded_type(argument: pa.DataType, scale: int) -> tuple[int, int] | None:
    """(precision, scale) of ``ROUND(x, scale)`` for ``x`` of type ``argument`` as DataFusion 55 computes it once
    the scale is a literal: the precision kept, the scale lowered to ``scale`` (0 at most down to); None for
    anything but a decimal128.

        >>> rounded_type(pa.decimal128(12, 2), 0), rounded_type(pa.decimal128(12, 2), 5), rounded_type(pa.float64(), 1)
        ((12, 0), (12, 2), None)
    """
    if not pa.types.is_decimal128(argument):
        return None
    return argument.precision, min(argument.scale, max(scale, 0))


def _probe(select: exp.Select, arguments: list[exp.Expression], grouped: bool) -> exp.Select:
    """``select`` reduced to outputs ``arguments``: with its grouping (``grouped``) for arguments of its outputs,
    HAVING and ORDER BY; without, for arguments of its WHERE and joins (which read rows before grouping)."""
    probe = select.copy()
    for clause in ("order", "limit", "offset", "distinct", "qualify", "with", "with_"):
        probe.set(clause, None)
    if not grouped:
        for clause in ("group", "having", "windows"):
            probe.set(clause, None)
    probe.set("expressions", [exp.alias_(a.copy(), f"_round_{i}") for i, a in enumerate(arguments)])
    return probe


def _over_groups(node: exp.Round, select: exp.Select) -> bool:
    """Whether ``node``'s argument reads ``select``'s groups (an aggregate or window in it, or standing after
    grouping: outputs, HAVING, ORDER BY) rather than its rows; a plain argument after grouping reads grouped
    columns, whose types are the rows' types."""
    if node.this.find(exp.AggFunc, exp.Window) is None:
        return False
    while node.parent is not None and node.parent is not select:
        node = node.parent
    return node.arg_key not in ("where", "joins", "group")


def mark_decimal_rounds(ast: exp.Expression, oracle: Oracle) -> int:
    """Mark each ``ROUND(x, n)`` of ``ast`` with a decimal ``x`` and an integer literal ``n`` (or none) with
    ``DECIMAL_ROUND``: the (precision, scale) of ``rounded_type``. In place; returns how many were marked."""
    marked = 0
    selects: dict[int, tuple[exp.Select, list[exp.Round]]] = {}
    for node in ast.find_all(exp.Round):
        select = node.parent_select
        if select is not None and _literal_scale(node) is not None:
            selects.setdefault(id(select), (select, []))[1].append(node)
    for select, rounds in selects.values():
        for grouped in (True, False):
            # an argument without aggregates or windows is typed over the rows, wherever it stands: a ROUND in
            # the outputs and its copy in GROUP BY (an ordinal written out) are then marked alike
            group = [r for r in rounds if _over_groups(r, select) == grouped]
            if not group:
                continue
            schema = oracle(_probe(select, [r.this for r in group], grouped))
            if schema is None and len(group) > 1:  # one argument it cannot type hides the others' types
                schemas = [oracle(_probe(select, [r.this], grouped)) for r in group]
                fields = [s.field(0) if s is not None else None for s in schemas]
            else:
                fields = list(schema) if schema is not None else [None] * len(group)
            for node, field in zip(group, fields, strict=True):
                typed = None if field is None else rounded_type(field.type, _literal_scale(node))
                if typed is not None:
                    node.meta[DECIMAL_ROUND] = typed
                    marked += 1
        marked += _marked_alike(rounds)
    return marked


def _marked_alike(rounds: list[exp.Round]) -> int:
    """Mark each unmarked ROUND equal to a marked one as that one is (DataFusion matches a SELECT's outputs to
    its GROUP BY by their text); returns how many."""
    types = {r: r.meta[DECIMAL_ROUND] for r in rounds if DECIMAL_ROUND in r.meta}  # sqlglot: equal by structure
    alike = [r for r in rounds if DECIMAL_ROUND not in r.meta and r in types]
    for node in alike:
        node.meta[DECIMAL_ROUND] = types[node]
    return len(alike)
