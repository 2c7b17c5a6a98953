"""Whether an expression may be pushed to a source: the same answer there as in DataFusion, or not at all.

Two checks, both giving the reason an expression stays in DataFusion so EXPLAIN can show it (Trino-style:
nothing is dropped silently):

1. Shape: every node must be among the source's pushable operations (``Capabilities.expressions``); casts
   only of literals; sub-queries only where the source runs whole queries.
2. Semantics: ``SEMANTIC_RULES`` below, one row per known trap. A row names the operations it concerns, the
   kind of operand that triggers it, and which sources it applies to (a ``Capabilities`` flag, so each
   connector declares its semantics once):

   =============================  ================================  ==========================  ===============
   trap                           operations                        operand                     sources
   =============================  ================================  ==========================  ===============
   collation order                < <= > >= BETWEEN ORDER BY MIN    text                        PostgreSQL,
                                  MAX                                                           MySQL/MariaDB
   case/accent-insensitive        = <> IN LIKE GROUP BY DISTINCT    text                        MySQL/MariaDB
   equality                       ORDER BY MIN MAX COUNT(...)
   case-insensitive LIKE          LIKE                              any                         SQLite
   temporal values stored as      comparisons, IN, ORDER BY         date, timestamp             SQLite
   text
   float summation order          SUM AVG                           float                       all but
                                                                                                DataFusion
   no MIN/MAX of booleans         MIN MAX                           boolean                     PostgreSQL
   no exact Arrow reading         anything but a plain projection   read-as-text columns        all
   Float64 literals               + - * % of a column and ``0.01``  non-integer literal         all but
                                                                                                DataFusion
   =============================  ================================  ==========================  ===============

   Handled elsewhere: NULL ordering (made explicit in every pushed ORDER BY, see ``planner.federation``);
   integer and decimal division (``/`` is pushed only to DataFusion-backed sources); decimal precision and
   scale and every result type (fragment results are cast to the types DataFusion gives the same SQL);
   time zones (PostgreSQL and MySQL sessions run in UTC). AVG is not a portable operation: DataFusion
   truncates a decimal average at 4 more digits where PostgreSQL rounds at 16 significant ones, so a source
   with ``Capabilities.truncated_decimal_avg`` gets AVG of a decimal column rewritten to DataFusion's
   arithmetic (``with_decimal_averages``), and every other AVG stays in DataFusion.

    >>> from connectors.sqlite import SQLiteConnector
    >>> import sqlglot
    >>> unpushable_reason(sqlglot.parse_one("name LIKE 'a%'"), SQLiteConnector.capabilities, lambda c: None)
    "LIKE ignores case in this source's dialect"
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from connectors.arrow.dialect import DATE_DIFFERENCE, EPOCH_OF_DURATION, INTERVAL_COMPARISON
from connectors.base import READ_AS_TEXT, Capabilities

ColumnType = Callable[[exp.Column], "pa.Field | None"]


def _is_text(field: pa.Field) -> bool:
    return pa.types.is_string(field.type) or pa.types.is_large_string(field.type)


def _is_float(field: pa.Field) -> bool:
    return pa.types.is_floating(field.type)


def _is_boolean(field: pa.Field) -> bool:
    return pa.types.is_boolean(field.type)


def _is_temporal(field: pa.Field) -> bool:
    return pa.types.is_temporal(field.type)


def _read_as_text(field: pa.Field | None) -> bool:
    return bool(field is not None and field.metadata and field.metadata.get(READ_AS_TEXT) == b"1")


def _any(field: pa.Field) -> bool:
    return True


@dataclass(frozen=True)
class SemanticRule:
    """One trap: ``operations`` on an operand for which ``operand`` holds behave differently in sources
    for which ``differs(capabilities)`` holds."""

    name: str
    operations: tuple[type[exp.Expression], ...]
    operand: Callable[[pa.Field], bool]
    differs: Callable[[Capabilities], bool]
    reason: str


_ORDERING = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)
_COMPARING = (exp.EQ, exp.NEQ, exp.In, *_ORDERING)

COLLATION_ORDER = SemanticRule(
    "collation order", (*_ORDERING, exp.Ordered, exp.Min, exp.Max), _is_text,
    lambda caps: not caps.ordered_text,
    "text ordering follows the source's collation, not byte order",
)

SEMANTIC_RULES: tuple[SemanticRule, ...] = (
    COLLATION_ORDER,
    SemanticRule(
        "case/accent-insensitive equality",
        (*_COMPARING, exp.Like, exp.Group, exp.Ordered, exp.Min, exp.Max, exp.Count, exp.Distinct),
        _is_text, lambda caps: not caps.text_equality,
        "text comparison in this source follows its collation (case/accent-insensitive)",
    ),
    SemanticRule(
        "case-insensitive LIKE", (exp.Like,), _any, lambda caps: not caps.case_sensitive_like,
        "LIKE ignores case in this source's dialect",
    ),
    SemanticRule(
        "temporal values stored as text", (*_COMPARING, exp.Ordered), _is_temporal,
        lambda caps: caps.temporal_as_text,
        "dates and timestamps are stored as text in this source",
    ),
    SemanticRule(
        "float summation order", (exp.Sum, exp.Avg), _is_float, lambda caps: not caps.exact_float_sum,
        "floating-point sums depend on summation order",
    ),
    SemanticRule(
        "MIN/MAX of booleans", (exp.Min, exp.Max), _is_boolean, lambda caps: not caps.boolean_min_max,
        "MIN/MAX of booleans do not exist in this source (PostgreSQL has bool_and/bool_or)",
    ),
)


#: ``Expression.meta`` key of a CAST the planner writes to fail on purpose (``Capabilities.failing_casts``)
MUST_FAIL = "must_fail"


def unpushable_reason(node: exp.Expression, caps: Capabilities, column_type: ColumnType) -> str | None:
    """The reason ``node`` must stay in DataFusion, or None when the source computes the same result.

    Args:
        node: a predicate, a projection, or a whole query.
        caps: the source's declared capabilities.
        column_type: the catalog field of a (qualified) column, or None if unknown.
    """
    rules = [r for r in SEMANTIC_RULES if r.differs(caps)]
    for sub in node.walk():
        if isinstance(sub, exp.Column):
            field = column_type(sub)
            if field is None and not isinstance(sub.this, exp.Star):
                return f"the type of column {sub.sql()} is unknown"
            if _read_as_text(field):
                return f"column {sub.sql()} is read as text (its type has no exact Arrow reading in the source)"
            continue
        if isinstance(sub, exp.Avg) and decimal_average_scale(sub, caps, column_type) is not None:
            continue  # pushed as DataFusion's truncated average (``with_decimal_averages``); its column is checked
        if isinstance(sub, exp.Cast) and sub.meta.get(MUST_FAIL) and not caps.failing_casts:
            return "a cast that must fail where it runs gives 0 in this source"
        if isinstance(sub, exp.Tuple) and not caps.local_compute and sub.find_ancestor(exp.AggFunc) is not None:
            # COUNT(DISTINCT (a, b)): MariaDB refuses a row there ("Operand should contain 1 column(s)")
            return "a row value inside an aggregate is computed here, not in the source"
        reason = _shape_reason(sub, caps) or _float_literal_reason(sub, caps) or _temporal_arithmetic_reason(
            sub, caps, column_type)
        if reason:
            return reason
        for rule in rules:
            if isinstance(sub, rule.operations) and _operands_match(sub, rule.operand, column_type):
                if rule is COLLATION_ORDER and caps.binary_collation and _collatable(sub, column_type):
                    continue  # pushed with the byte-order collation made explicit (with_binary_collation)
                return rule.reason
    return None


def with_binary_collation(ast: exp.Expression, caps: Capabilities, column_type: ColumnType) -> exp.Expression:
    """``ast`` (a fragment for a source with ``caps``), changed in place so that its text ordering is byte order:
    one text operand of each ``<``/``BETWEEN``/ORDER BY key/MIN/MAX over text gets ``COLLATE <caps.binary_collation>``.
    Only operations ``unpushable_reason`` let through as collatable are changed; the others do not order text.
    Returns ``ast``.

        >>> import sqlglot
        >>> from connectors.postgresql import PostgreSQLConnector
        >>> import pyarrow as pa
        >>> q = sqlglot.parse_one("SELECT t.a FROM t AS t WHERE t.a < 'b' ORDER BY t.a")
        >>> with_binary_collation(q, PostgreSQLConnector.capabilities, lambda c: pa.field('a', pa.string())).sql()
        'SELECT t.a FROM t AS t WHERE t.a COLLATE "C" < \\'b\\' ORDER BY t.a COLLATE "C"'
    """
    if caps.ordered_text or not caps.binary_collation:
        return ast
    collation = exp.Identifier(this=caps.binary_collation, quoted=True)
    targets = [node for node in ast.walk() if isinstance(node, COLLATION_ORDER.operations)
               and _operands_match(node, _is_text, column_type) and _collatable(node, column_type)]
    for node in targets:
        operands = _ordering_operands(node)
        operand = next((o for o in operands if _text_valued(o, column_type) and not isinstance(o, exp.Literal)),
                       operands[0])
        if isinstance(operand, exp.Column) and not operand.table:  # an output name: order by its expression
            operand = operand.replace(exp.Paren(this=output_projection(operand).copy()))
        operand.replace(exp.Collate(this=operand.copy(), expression=collation.copy()))
    return ast


def _ordering_operands(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Between):
        return [node.this, node.args["low"], node.args["high"]]
    if isinstance(node, exp.Ordered | exp.Min | exp.Max):
        return [node.this]
    return [node.left, node.right]


def _collatable(node: exp.Expression, column_type: ColumnType) -> bool:
    """Whether every operand of an ordering operation that involves text is a plain text value (a text column,
    a string literal, UPPER/LOWER/TRIM/SUBSTRING of one) that ``COLLATE`` can follow, and the operation is not an
    ORDER BY key where only output names are allowed (set operations, SELECT DISTINCT)."""
    if isinstance(node, exp.Ordered):
        order = node.parent
        select = order.parent if isinstance(order, exp.Order) else None
        if not isinstance(select, exp.Select | exp.Window) or select.args.get("distinct"):
            return False
    operands = _ordering_operands(node)
    return all(_text_valued(o, column_type) or not _operands_match(o, _is_text, column_type) for o in operands) \
        and any(_text_valued(o, column_type) for o in operands)


#: AVG's extra digits in DataFusion (``decimal(p, s)`` -> ``decimal(p + 4, s + 4)``, truncated toward zero)
AVG_EXTRA_SCALE = 4
#: digits the pushed division keeps beyond the source's own: with the quotient exact to 10^-(s + 16), truncating
#: it at s + 4 digits equals truncating the exact quotient for any count below 10^10 (a boundary m / 10^(s+4)
#: lies at least 1 / (count * 10^(s+4)) from a quotient that is not on it)
AVG_GUARD_DIGITS = 16
#: the widest decimal whose average is pushed: DataFusion sums in decimal(p + 10, s), within 38 digits
AVG_MAX_PRECISION = 28


def decimal_average_scale(node: exp.Avg, caps: Capabilities, column_type: ColumnType) -> int | None:
    """The scale of the decimal column ``node`` averages when a source with ``caps`` may compute it as DataFusion
    does (``Capabilities.truncated_decimal_avg``: ``with_decimal_averages``), else None: no such capability, an
    argument other than a plain ``decimal128`` column of at most ``AVG_MAX_PRECISION`` digits, AVG(DISTINCT)
    or a window."""
    if not caps.truncated_decimal_avg or isinstance(node.parent, exp.Window) or node.find(exp.Distinct):
        return None
    if not isinstance(node.this, exp.Column):
        return None
    field = column_type(node.this)
    if field is None or _read_as_text(field) or not pa.types.is_decimal128(field.type):
        return None
    return field.type.scale if field.type.precision <= AVG_MAX_PRECISION else None


def with_decimal_averages(ast: exp.Expression, caps: Capabilities, column_type: ColumnType) -> exp.Expression:
    """``ast`` (a fragment for a source with ``caps``), changed in place so that each AVG of a decimal column
    ``decimal_average_scale`` admits computes DataFusion's result: ``TRUNC(SUM(x) * 1.<16 zeros> /
    NULLIF(COUNT(x), 0), s + 4)`` (DataFusion's ``DecimalAverager`` divides the scaled sum by the count in
    integers, truncating toward zero; PostgreSQL's own AVG rounds at 16 significant digits). NULL over no rows,
    as AVG. Returns ``ast``.

        >>> import sqlglot
        >>> from connectors.postgresql import PostgreSQLConnector
        >>> q = sqlglot.parse_one("SELECT AVG(t.x) AS a FROM t AS t")
        >>> field = lambda c: pa.field('x', pa.decimal128(15, 2))
        >>> with_decimal_averages(q, PostgreSQLConnector.capabilities, field).sql('postgres')
        'SELECT TRUNC(SUM(t.x) * 1.0000000000000000 / NULLIF(COUNT(t.x), 0), 6) AS a FROM t AS t'
    """
    for node in list(ast.find_all(exp.Avg)):
        scale = decimal_average_scale(node, caps, column_type)
        if scale is None:
            continue
        column = node.this
        widened = exp.Mul(this=exp.Sum(this=column.copy()),
                          expression=exp.Literal.number("1." + "0" * AVG_GUARD_DIGITS))
        divided = exp.Div(this=widened, typed=True, expression=exp.Nullif(this=exp.Count(this=column.copy()),
                                                              expression=exp.Literal.number(0)))
        node.replace(exp.Anonymous(this="TRUNC", expressions=[divided, exp.Literal.number(scale + AVG_EXTRA_SCALE)]))
    return ast


def output_projection(column: exp.Column) -> exp.Expression | None:
    """The expression an unqualified column names when it refers to an output alias of its SELECT."""
    select = column.find_ancestor(exp.Select)
    if select is None:
        return None
    for projection in select.expressions:
        if isinstance(projection, exp.Alias) and projection.alias == column.name:
            return projection.this
    return None



_TEXT_FUNCTIONS = (exp.Upper, exp.Lower, exp.Trim, exp.Substring)


def _text_valued(node: exp.Expression, column_type: ColumnType) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Literal):
        return node.is_string
    if isinstance(node, exp.Column):
        if isinstance(node.this, exp.Star):
            return False
        if not node.table:
            projection = output_projection(node)
            return projection is not None and not (isinstance(projection, exp.Column) and not projection.table) \
                and _text_valued(projection, column_type)
        field = column_type(node)
        return field is not None and _is_text(field) and not _read_as_text(field)
    if isinstance(node, _TEXT_FUNCTIONS):
        return _text_valued(node.this, column_type)
    return False


def superset_pushable(node: exp.Expression, caps: Capabilities, column_type: ColumnType) -> bool:
    """Whether ``node`` may be pushed to a source with case/accent-insensitive text equality as a *superset*
    filter: ``=``, ``IN`` and ``LIKE`` there keep every row they keep in DataFusion (an exact match is also a
    case-insensitive one) and more, so the fragment may apply them while the residual re-checks them exactly.
    Negations (``<>``, ``NOT``) would drop rows and are never pushed this way; neither are literals with a
    backslash (an escape character in MySQL strings and LIKE patterns)."""
    if caps.text_equality:
        return False
    if isinstance(node, exp.And | exp.Or | exp.Paren):  # AND/OR of wider filters is wider
        children = [node.this] if isinstance(node, exp.Paren) else [node.left, node.right]
        exact = dataclasses.replace(caps, text_equality=True)
        return all(
            superset_pushable(c, caps, column_type)
            or (unpushable_reason(c, caps, column_type) is None and not _negates(c))
            for c in children
        ) and unpushable_reason(node, exact, column_type) is None
    if not isinstance(node, exp.EQ | exp.In | exp.Like):
        return False
    if _negates(node) or node.args.get("query") is not None:
        return False
    if any(isinstance(lit, exp.Literal) and "\\" in lit.name for lit in node.find_all(exp.Literal)):
        return False
    exact = dataclasses.replace(caps, text_equality=True)
    return unpushable_reason(node, exact, column_type) is None


def _negates(node: exp.Expression) -> bool:
    """Whether a negation is inside ``node``: ``NOT``, or sqlglot's ``negate`` flag (``x NOT LIKE p`` is
    ``Like(negate=True)``, not ``Not(Like)``)."""
    return any(isinstance(n, exp.Not) or n.args.get("negate") for n in node.walk())


def _shape_reason(sub: exp.Expression, caps: Capabilities) -> str | None:
    if caps.local_compute:
        return None  # DataFusion itself, in the gateway's session settings and SQL dialect: as the residual plan
    if type(sub) not in caps.expressions:
        return f"{sub.key.upper()} is not among the source's pushable operations"
    if isinstance(sub, exp.Cast) and not isinstance(sub.this, exp.Literal):
        return "casts of computed values may differ between engines"
    if isinstance(sub, exp.Substring) and not all(
        isinstance(a, exp.Literal) and a.is_int and int(a.name) > 0
        for a in (sub.args.get("start"), sub.args.get("length")) if a is not None
    ):
        return "SUBSTRING positions other than positive literals differ between engines"
    if isinstance(sub, exp.Subquery | exp.Exists) and not caps.full_query:
        return "sub-queries are not pushed to this source"
    if isinstance(sub, exp.In | exp.Any | exp.All) and not caps.limit_in_subqueries and _limited_subquery(sub):
        return "a sub-query with LIMIT under IN/ANY/ALL is not supported by this source"
    if isinstance(sub, exp.Join) and (sub.side or "").upper() == "FULL" and not caps.full_join:
        return "FULL OUTER JOIN does not exist in this source's SQL"
    if isinstance(sub, exp.Offset) and not caps.offset_without_limit and not (
            sub.parent is not None and sub.parent.args.get("limit")):
        return "OFFSET without LIMIT is not valid in this source's SQL"
    return None


_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Mod)


def _limited_subquery(node: exp.In | exp.Any | exp.All) -> bool:
    """Whether the sub-query ``node`` tests membership in has a LIMIT (or FETCH) of its own."""
    query = node.args.get("query") if isinstance(node, exp.In) else node.this
    if isinstance(query, exp.Subquery):
        query = query.unnest()
    return isinstance(query, exp.Query) and bool(query.args.get("limit"))


def _float_literal_reason(sub: exp.Expression, caps: Capabilities) -> str | None:
    """Arithmetic of a column with a literal such as ``0.01``: DataFusion computes it in Float64, the
    source exactly (a decimal), and the results differ in the last digits. Literal-only arithmetic
    (``0.06 - 0.01``) is left pushable: it folds to the same comparison bounds in practice."""
    if caps.float_literals or not isinstance(sub, _ARITHMETIC) or not sub.find(exp.Column):
        return None
    for operand in (sub.left, sub.right):
        while isinstance(operand, exp.Paren | exp.Neg):
            operand = operand.this
        if isinstance(operand, exp.Literal) and not operand.is_string and not operand.is_int:
            return "arithmetic with a non-integer literal is Float64 in DataFusion and exact in this source"
    return None


_DATE_TYPES = (exp.DataType.Type.DATE, exp.DataType.Type.DATE32)


def _temporal_kind(node: exp.Expression, column_type: ColumnType) -> str | None:
    """What an arithmetic operand is: "interval", "date", "timestamp" (any other temporal value, or a value
    computed from one whose type is not followed here), or None (no date or time in it)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Interval):
        return "interval"
    if isinstance(node, exp.Column):
        field = column_type(node)
        if field is None or not _is_temporal(field):
            return None
        return "date" if pa.types.is_date(field.type) else "timestamp"
    if isinstance(node, exp.Cast) and node.to.is_type(*exp.DataType.TEMPORAL_TYPES):
        return "date" if node.to.is_type(*_DATE_TYPES) else "timestamp"
    if isinstance(node, exp.CurrentDate):
        return "date"
    if isinstance(node, exp.Extract | exp.Literal):
        return None
    inner = (_temporal_kind(n, column_type) for n in node.iter_expressions())
    return "timestamp" if any(k in ("date", "timestamp") for k in inner) or isinstance(
        node, exp.CurrentTimestamp | exp.CurrentTime) else None


def mark_duration_epochs(ast: exp.Expression, column_type: ColumnType) -> None:
    """Mark each ``EXTRACT(EPOCH FROM a - b)`` of two timestamps (or a timestamp and a date) in ``ast``
    (``connectors.arrow.dialect.EPOCH_OF_DURATION``), in place, so that the SQL DataFusion runs reads the
    duration's epoch with its fraction of a second (``epochs_of_durations``)."""
    for extract in ast.find_all(exp.Extract):
        operand = extract.expression
        while isinstance(operand, exp.Paren):
            operand = operand.this
        if extract.this.name.upper() != "EPOCH" or not isinstance(operand, exp.Sub):
            continue
        kinds = {_temporal_kind(operand.left, column_type), _temporal_kind(operand.right, column_type)}
        if "timestamp" in kinds and kinds <= {"timestamp", "date"}:
            extract.meta[EPOCH_OF_DURATION] = True


def mark_interval_comparisons(ast: exp.Expression, column_type: ColumnType) -> None:
    """Mark each comparison (or BETWEEN) in ``ast`` whose operands are all durations (``a - b`` of two timestamps, or
    a timestamp and a date) or intervals (``connectors.arrow.dialect.INTERVAL_COMPARISON``), in place, so that the
    SQL DataFusion runs compares their lengths as PostgreSQL does (``linear_interval_comparisons``)."""
    for node in ast.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
                             exp.Between):
        keys = ("this", "low", "high") if isinstance(node, exp.Between) else ("this", "expression")
        if all(_interval_valued(node.args.get(key), column_type) for key in keys):
            node.meta[INTERVAL_COMPARISON] = True


def _interval_valued(node: exp.Expression | None, column_type: ColumnType) -> bool:
    """Whether ``node`` is a duration or an interval: an INTERVAL, a CAST to one, a column of either type, the
    difference of two timestamps (or a timestamp and a date), their sums, differences, negations and multiples."""
    while isinstance(node, exp.Paren | exp.Neg):
        node = node.this
    if node is None:
        return False
    if isinstance(node, exp.Interval):
        return True
    if isinstance(node, exp.Cast):
        return node.to.is_type(exp.DataType.Type.INTERVAL)
    if isinstance(node, exp.Column):
        field = column_type(node)
        return field is not None and (pa.types.is_duration(field.type) or pa.types.is_interval(field.type))
    if isinstance(node, exp.Add | exp.Sub):
        left, right = _interval_valued(node.left, column_type), _interval_valued(node.right, column_type)
        if left and right:
            return True
        kinds = {_temporal_kind(node.left, column_type), _temporal_kind(node.right, column_type)}
        return (isinstance(node, exp.Sub) and not left and not right and "timestamp" in kinds
                and kinds <= {"timestamp", "date"})
    if isinstance(node, exp.Mul | exp.Div):  # an interval times or divided by a number
        left, right = _interval_valued(node.left, column_type), _interval_valued(node.right, column_type)
        return left != right and (left or isinstance(node, exp.Mul))
    return False


def mark_date_differences(ast: exp.Expression, column_type: ColumnType) -> None:
    """Mark each ``-`` of two dates in ``ast`` (``connectors.arrow.dialect.DATE_DIFFERENCE``), in place, so that the
    SQL DataFusion runs writes it as DataFusion 55 can analyse over Parquet statistics (``days_between_dates``)."""
    for sub in ast.find_all(exp.Sub):
        if _temporal_kind(sub.left, column_type) == "date" and _temporal_kind(sub.right, column_type) == "date":
            sub.meta[DATE_DIFFERENCE] = True


def _temporal_arithmetic_reason(sub: exp.Expression, caps: Capabilities, column_type: ColumnType) -> str | None:
    """``+``/``-`` of dates or timestamps without an INTERVAL operand where the source computes it otherwise
    than DataFusion (``Capabilities.date_arithmetic``, ``timestamp_arithmetic``)."""
    if caps.local_compute or not isinstance(sub, exp.Add | exp.Sub):
        return None
    kinds = {_temporal_kind(sub.left, column_type), _temporal_kind(sub.right, column_type)} - {None}
    if not kinds or "interval" in kinds:
        return None  # no date or time, or calendar arithmetic with an INTERVAL: the same everywhere
    if kinds == {"date"}:
        return None if caps.date_arithmetic else \
            "date arithmetic gives numbers or text in this source, days in DataFusion"
    return None if caps.timestamp_arithmetic else \
        "timestamp arithmetic gives another type in this source than DataFusion's duration"


def _operands_match(node: exp.Expression, operand: Callable[[pa.Field], bool], column_type: ColumnType) -> bool:
    """Whether a column the operation works on (not inside a nested sub-query) satisfies ``operand``."""
    if isinstance(node, exp.Select):
        return False
    scope = node
    if isinstance(node, exp.Distinct) and isinstance(node.parent, exp.Select) and not node.expressions:
        scope = exp.Tuple(expressions=[e.copy() for e in node.parent.expressions])  # SELECT DISTINCT: the outputs
    values = list(_operand_values(scope))
    for column in (v for v in values if isinstance(v, exp.Column)):
        field = column_type(column)
        if field is not None and operand(field):
            return True
    # string literals are text too: `'trail ' <= 'Åsa'` follows the source's collation as a column would
    # (an INTERVAL's quantity is not: ``INTERVAL '2 hours'``)
    if any(isinstance(v, exp.Literal) and v.is_string
           and not isinstance(v.parent, exp.Cast | exp.Func | exp.DataType | exp.Interval)
           and not _coerced_literal(v, column_type)
           for v in values) and operand(_TEXT_LITERAL):
        return True
    # predicates are booleans: MIN(x IN (2)) is a MIN of booleans
    return isinstance(node, exp.Min | exp.Max) and isinstance(node.this, _PREDICATES) and operand(_BOOLEAN_VALUE)


def _coerced_literal(literal: exp.Literal, column_type: ColumnType) -> bool:
    """Whether a string literal is compared with a column of another type than text (``dt > '2022-06-30'``): it
    is read as a value of that type, not compared as text (and COLLATE on the column fails in PostgreSQL)."""
    parent = literal.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    if isinstance(parent, exp.In | exp.Between):
        others = [parent.this]
    elif isinstance(parent, _COMPARING):
        others = [parent.left, parent.right]
    else:
        return False
    fields = [column_type(o) for o in others if isinstance(o, exp.Column)]
    return any(f is not None and not _is_text(f) for f in fields)


def _operand_values(node: exp.Expression):
    """The columns and literals ``node`` computes on: its own, and of a nested sub-query only its outputs (a
    scalar sub-query's WHERE is another operation, checked on its own)."""
    for sub in node.walk(prune=lambda n: n is not node and isinstance(n, exp.Subquery | exp.Select)):
        if sub is not node and isinstance(sub, exp.Subquery | exp.Select):
            select = sub.unnest() if isinstance(sub, exp.Subquery) else sub
            outputs = select.expressions if isinstance(select, exp.Select) else [select]
            for output in outputs:
                yield from _operand_values(output)
        elif isinstance(sub, exp.Column | exp.Literal):
            yield sub


_TEXT_LITERAL = pa.field("literal", pa.string())
_BOOLEAN_VALUE = pa.field("predicate", pa.bool_())
_PREDICATES = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.In, exp.Between, exp.Is, exp.Like)
