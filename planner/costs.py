"""Cardinality estimates over sqlglot expressions and catalog statistics (textbook Selinger / PostgreSQL
``selfuncs.c`` style). Pure functions: no I/O, no catalog; the caller passes the statistics.

- ``selectivity(predicate, columns, rows)``: the fraction of rows (0..1) a predicate keeps.
- ``join_rows(left_rows, right_rows, left_ndv, right_ndv)``: rows of an equi-join, |R||S| / max(NDV).
- ``group_rows(input_rows, ndvs)``: rows of a GROUP BY, the product of the keys' NDVs, at most the input.
- ``estimate_fragment_rows(statistics, where, limit)``: rows a single-table fragment returns.

Predicates combine under independence (AND multiplies, OR adds minus the overlap, NOT complements). Where
statistics are missing the defaults are PostgreSQL's: equality 1/200 (0.005), one-sided range 1/3, a range
with both bounds 0.005, IS NULL 0.005, pattern match without a usable prefix 0.1 (see the constants).

    >>> import sqlglot
    >>> stats = {"k": ColumnStatistics(distinct=100, null_fraction=0.0, min=0, max=99)}
    >>> lookup = lambda column: stats.get(column.name)
    >>> round(selectivity(sqlglot.parse_one("k = 7 AND k < 50"), lookup, 10_000), 4)  # 1/100 * 50/99
    0.0051
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlglot import exp

from connectors.base import ColumnStatistics, TableStatistics
from planner.values import coerce_literal, literal_value, numeric_axis, same_value

#: equality against a column without statistics (PostgreSQL: 1 / DEFAULT_NUM_DISTINCT = 1/200)
DEFAULT_EQ_SEL = 0.005
#: one-sided range (``<``, ``>=``) without usable statistics (PostgreSQL DEFAULT_INEQ_SEL)
DEFAULT_INEQ_SEL = 1 / 3
#: range with both bounds (BETWEEN) without usable statistics (PostgreSQL DEFAULT_RANGE_INEQ_SEL)
DEFAULT_RANGE_SEL = 0.005
#: IS NULL without statistics (PostgreSQL DEFAULT_UNK_SEL)
DEFAULT_NULL_SEL = 0.005
#: LIKE whose pattern has no leading literal prefix, or any pattern without statistics
DEFAULT_LIKE_SEL = 0.1
#: each literal character of a LIKE prefix keeps this fraction (PostgreSQL FIXED_CHAR_SEL)
FIXED_CHAR_SEL = 0.2
#: a predicate of a shape not modelled (a function call, a subquery, a comparison of two expressions)
DEFAULT_UNKNOWN_SEL = 0.25
#: distinct values assumed for a column without statistics (PostgreSQL DEFAULT_NUM_DISTINCT)
DEFAULT_NUM_DISTINCT = 200

#: ``ColumnStatistics.origin`` prefixes whose min/max are the column's true bounds
EXACT_BOUNDS = ("parquet footer", "mysql.column_stats", "all ")

ColumnLookup = Callable[[exp.Column], "ColumnStatistics | None"]

_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE)
_FLIPPED = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE, exp.EQ: exp.EQ, exp.NEQ: exp.NEQ}


def selectivity(predicate: exp.Expression, columns: ColumnLookup, rows: float) -> float:
    """The fraction of ``rows`` (0..1) that satisfy ``predicate``.

    Args:
        predicate: a boolean sqlglot expression over one table's columns (a WHERE condition).
        columns: the statistics of a column of the predicate, or None when unknown.
        rows: rows of the table (bounds the distinct values assumed for a column without statistics).

    Equality: the most-common-value frequency when the literal is one, else the rest spread evenly over
    the other distinct values (1/NDV without common values). Ranges: linear interpolation between min and max
    (numbers, decimals, dates, timestamps). IN: the sum of its equalities. LIKE: an equality without
    wildcards, ``FIXED_CHAR_SEL`` per character of a literal prefix, else ``DEFAULT_LIKE_SEL``. IS NULL:
    the null fraction. AND: the product (independence), except a lower and an upper bound on one column,
    which are one range. Raises TypeError when ``predicate`` is not a sqlglot expression.

        >>> import sqlglot
        >>> s = {"k": ColumnStatistics(distinct=100, null_fraction=0.2, min=0, max=100,
        ...                            most_common=((1, 0.3),))}
        >>> f = lambda c: s.get(c.name)
        >>> selectivity(sqlglot.parse_one("k = 1"), f, 1000)      # a most-common value: its frequency
        0.3
        >>> round(selectivity(sqlglot.parse_one("k = 2"), f, 1000), 4)  # (1 - 0.3 - 0.2) / 99 others
        0.0051
        >>> selectivity(sqlglot.parse_one("k < 25"), f, 1000)     # a quarter of the non-null rows
        0.2
        >>> round(selectivity(sqlglot.parse_one("k >= 20 AND k < 30"), f, 1000), 4)  # one range, not 0.64 x 0.24
        0.08
        >>> selectivity(sqlglot.parse_one("k IS NULL"), f, 1000)
        0.2
        >>> selectivity(sqlglot.parse_one("x = 1"), f, 1000)      # no statistics: PostgreSQL's default
        0.005
    """
    if not isinstance(predicate, exp.Expression):
        raise TypeError(f"selectivity() takes a sqlglot expression, not {type(predicate).__name__}")
    return _clamp(_selectivity(predicate, columns, max(float(rows or 0), 0.0)))


def join_rows(left_rows: float, right_rows: float, left_ndv: float | None, right_ndv: float | None) -> float:
    """Rows of an equi-join ``L.a = R.b``: |L| |R| / max(NDV(a), NDV(b)) (each NDV at most its side's rows).

    A side whose NDV is unknown is taken as a key (NDV = its rows); with both unknown the estimate is the
    larger side's rows, as a foreign key joined to its primary key gives. Raises ValueError for negative
    rows.

        >>> join_rows(1_000_000, 10_000, 10_000, 10_000)   # orders x customers on the customer key
        1000000.0
        >>> join_rows(1000, 1000, 10, 100)
        10000.0
        >>> join_rows(0, 500, None, None)
        0.0
    """
    if left_rows < 0 or right_rows < 0:
        raise ValueError(f"join_rows() needs rows >= 0, got {left_rows} and {right_rows}")
    if not left_rows or not right_rows:
        return 0.0
    left = min(left_ndv, left_rows) if left_ndv else float(left_rows)
    right = min(right_ndv, right_rows) if right_ndv else float(right_rows)
    if not left_ndv and not right_ndv:
        return float(max(left_rows, right_rows))
    return float(left_rows) * float(right_rows) / max(left, right, 1.0)


def group_rows(input_rows: float, ndvs: Iterable[float | None]) -> float:
    """Rows of ``GROUP BY`` over keys with the given distinct counts: their product, at most ``input_rows``
    (a key without statistics counts ``DEFAULT_NUM_DISTINCT``); 1 group without keys (an aggregate over
    all rows), 0 for no input. Raises ValueError for negative rows.

        >>> group_rows(1_000_000, [10, 12])
        120.0
        >>> group_rows(50, [100, None])
        50.0
        >>> group_rows(1000, [])
        1.0
    """
    if input_rows < 0:
        raise ValueError(f"group_rows() needs input_rows >= 0, got {input_rows}")
    if not input_rows:
        return 0.0
    groups = 1.0
    for ndv in ndvs:
        groups *= max(float(ndv), 1.0) if ndv is not None else DEFAULT_NUM_DISTINCT
    return float(min(groups, input_rows))


def estimate_fragment_rows(statistics: TableStatistics, where: exp.Expression | None = None,
                           limit: int | None = None) -> float | None:
    """Rows a single-table fragment returns: the table's rows times the selectivity of its WHERE (an
    ``exp.Where`` or its condition; columns looked up by name, case-insensitively, whatever their table
    qualifier), at most ``limit``; None when the table's rows are unknown.

        >>> import sqlglot
        >>> t = TableStatistics(rows=10_000, bytes=None, columns={"k": ColumnStatistics(distinct=50)})
        >>> estimate_fragment_rows(t, sqlglot.parse_one("SELECT * FROM t WHERE t.k = 3").args["where"])
        200.0
        >>> estimate_fragment_rows(t, None, limit=10)
        10.0
        >>> estimate_fragment_rows(TableStatistics(None, None), None) is None
        True
    """
    if statistics.rows is None:
        return None
    rows = float(statistics.rows)
    if isinstance(where, exp.Where):
        where = where.this
    if where is not None:
        rows *= selectivity(where, column_lookup(statistics), rows)
    if limit is not None:
        rows = min(rows, float(limit))
    return rows


def column_lookup(statistics: TableStatistics) -> ColumnLookup:
    """A ``columns`` function for ``selectivity`` over one table's statistics: by column name, exactly or
    else case-insensitively, ignoring the qualifier."""
    folded = {name.lower(): c for name, c in statistics.columns.items()}

    def lookup(column: exp.Column) -> ColumnStatistics | None:
        found = statistics.columns.get(column.name)
        return found if found is not None else folded.get(column.name.lower())

    return lookup


# -- the rules ---------------------------------------------------------------------------------------------


def _clamp(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


def _selectivity(node: exp.Expression, columns: ColumnLookup, rows: float) -> float:
    if isinstance(node, exp.Paren):
        return _selectivity(node.this, columns, rows)
    if isinstance(node, exp.And):
        return _and(node, columns, rows)
    if isinstance(node, exp.Or):
        a, b = _clamp(_selectivity(node.left, columns, rows)), _clamp(_selectivity(node.right, columns, rows))
        return a + b - a * b
    if isinstance(node, exp.Not):
        inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
        if isinstance(inner, exp.Is):  # IS NOT NULL: the non-null rows exactly
            return 1.0 - _null_sel(inner, columns)
        return 1.0 - _clamp(_selectivity(inner, columns, rows))
    if isinstance(node, exp.Boolean):
        return 1.0 if node.this else 0.0
    if isinstance(node, exp.Is):
        return _null_sel(node, columns)
    if isinstance(node, exp.EQ | exp.NEQ | exp.NullSafeEQ | exp.NullSafeNEQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
        return _comparison(node, columns, rows)
    if isinstance(node, exp.Between):
        return _between(node, columns)
    if isinstance(node, exp.In):
        return _in(node, columns, rows)
    if isinstance(node, exp.Like | exp.ILike):
        # sqlglot writes ``x NOT LIKE p`` as Like(negate=True), not Not(Like): without this, TPC-H Q16's
        # ``p_type NOT LIKE 'MEDIUM POLISHED%'`` kept 0.7% of part, its join with partsupp 833 rows of 118,274
        like = _like(node, columns, rows)
        return 1.0 - _clamp(like) if node.args.get("negate") else like
    if isinstance(node, exp.Column):  # a boolean column on its own
        return _eq(columns(node), True, rows)
    return DEFAULT_UNKNOWN_SEL


def _and(node: exp.And, columns: ColumnLookup, rows: float) -> float:
    """Conjuncts multiply (independence), except a lower and an upper bound on one column, which are one range
    (PostgreSQL ``clauselist_selectivity``): ``P(x > lo) + P(x < hi) - 1`` (nulls counted once), the
    tightest bound of each side taken. TPC-H Q14's month of ``l_shipdate`` keeps 1.2% of lineitem, where its two
    halves multiplied keep 25%."""
    ranges: dict[tuple[str, str], list[tuple[bool, float, float]]] = {}
    total = 1.0
    for conjunct in _conjuncts(node):
        bound = _range_bound(conjunct, columns)
        if bound is None:
            total *= _clamp(_selectivity(conjunct, columns, rows))
        else:
            ranges.setdefault(bound[0], []).append(bound[1:])
    for bounds in ranges.values():
        lows = [sel for lower, sel, _ in bounds if lower]
        highs = [sel for lower, sel, _ in bounds if not lower]
        if lows and highs:
            total *= _clamp(min(lows) + min(highs) - 1.0 + bounds[0][2])
        else:
            total *= min(lows or highs)
    return total


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    """The operands of nested ANDs (through parentheses)."""
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.And):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _range_bound(node: exp.Expression, columns: ColumnLookup) -> tuple[tuple[str, str], bool, float, float] | None:
    """``(column key, is a lower bound, selectivity, null fraction)`` of ``column <op> literal`` (either side,
    ``<``, ``<=``, ``>``, ``>=``) when the column's bounds place the literal; else None."""
    if not isinstance(node, exp.GT | exp.GTE | exp.LT | exp.LTE):
        return None
    column, other, kind = node.this, node.expression, type(node)
    if not isinstance(column, exp.Column) and isinstance(other, exp.Column):
        column, other, kind = other, column, _FLIPPED.get(kind, kind)
    if not isinstance(column, exp.Column) or isinstance(other, exp.Column):
        return None
    known, value = literal_value(other)
    if not known or value is None:
        return None
    stats = columns(column)
    below = _fraction_below(stats, value, inclusive=kind in (exp.LTE, exp.GT))
    if below is None:
        return None
    nulls = stats.null_fraction or 0.0
    lower = kind in (exp.GT, exp.GTE)
    key = (column.table.lower(), column.name.lower())
    return key, lower, ((1.0 - below) if lower else below) * (1.0 - nulls), nulls


def _null_sel(node: exp.Is, columns: ColumnLookup) -> float:
    if not isinstance(node.expression, exp.Null) or not isinstance(node.this, exp.Column):
        return DEFAULT_UNKNOWN_SEL
    stats = columns(node.this)
    return stats.null_fraction if stats is not None and stats.null_fraction is not None else DEFAULT_NULL_SEL


def _comparison(node: exp.Expression, columns: ColumnLookup, rows: float) -> float:
    column, other, kind = node.this, node.expression, type(node)
    if not isinstance(column, exp.Column) and isinstance(other, exp.Column):
        column, other, kind = other, column, _FLIPPED.get(kind, kind)
    if not isinstance(column, exp.Column):
        return DEFAULT_UNKNOWN_SEL
    stats = columns(column)
    if isinstance(other, exp.Column):  # two columns of one table
        theirs = columns(other)
        if kind in (exp.EQ, exp.NullSafeEQ):
            return 1.0 / max(_ndv(stats, rows), _ndv(theirs, rows), 1.0)
        if kind in (exp.NEQ, exp.NullSafeNEQ):
            return 1.0 - 1.0 / max(_ndv(stats, rows), _ndv(theirs, rows), 1.0)
        return DEFAULT_INEQ_SEL
    known, value = literal_value(other)
    if known and value is None:  # = NULL, < NULL: never true
        return 0.0
    if kind in (exp.EQ, exp.NullSafeEQ):
        return _eq(stats, value if known else _UNKNOWN_VALUE, rows)
    if kind in (exp.NEQ, exp.NullSafeNEQ):
        nulls = stats.null_fraction or 0.0 if stats is not None else 0.0
        return 1.0 - _eq(stats, value if known else _UNKNOWN_VALUE, rows) - nulls
    if not known:
        return DEFAULT_INEQ_SEL
    below = _fraction_below(stats, value, inclusive=kind in (exp.LTE, exp.GT))
    if below is None:
        return DEFAULT_INEQ_SEL
    nulls = stats.null_fraction or 0.0
    return (below if kind in (exp.LT, exp.LTE) else 1.0 - below) * (1.0 - nulls)


_UNKNOWN_VALUE = object()  # a parameter or an expression: equal to some value, which one unknown


def _ndv(stats: ColumnStatistics | None, rows: float) -> float:
    """Distinct values of a column; PostgreSQL's default (200, at most the rows) when unknown."""
    if stats is not None and stats.distinct is not None and stats.distinct > 0:
        return min(stats.distinct, rows) if rows else stats.distinct
    return min(float(DEFAULT_NUM_DISTINCT), rows) if rows else float(DEFAULT_NUM_DISTINCT)


def _eq(stats: ColumnStatistics | None, value: object, rows: float) -> float:
    """Selectivity of ``column = value`` (PostgreSQL ``var_eq_const``)."""
    if stats is None or stats.distinct is None:
        return 1.0 / _ndv(stats, rows) if rows and rows < DEFAULT_NUM_DISTINCT else DEFAULT_EQ_SEL
    if value is not _UNKNOWN_VALUE:
        for common, frequency in stats.most_common:
            if same_value(common, value):
                return float(frequency)
        if _outside(stats, value):
            return 0.0
    ndv = _ndv(stats, rows)
    nulls = stats.null_fraction or 0.0
    if stats.most_common and value is not _UNKNOWN_VALUE:
        rest = 1.0 - nulls - sum(f for _, f in stats.most_common)
        others = ndv - len(stats.most_common)
        if others >= 1:
            return max(rest, 0.0) / others
        return 0.0 if rest <= 0 else rest
    return (1.0 - nulls) / max(ndv, 1.0)


def _between(node: exp.Between, columns: ColumnLookup) -> float:
    column = node.this
    if not isinstance(column, exp.Column):
        return DEFAULT_UNKNOWN_SEL
    stats = columns(column)
    (low_known, low), (high_known, high) = literal_value(node.args.get("low")), literal_value(node.args.get("high"))
    if (low_known and low is None) or (high_known and high is None):
        return 0.0
    if not (low_known and high_known):
        return DEFAULT_RANGE_SEL
    lo, hi = _fraction_below(stats, low, inclusive=False), _fraction_below(stats, high, inclusive=True)
    if lo is None or hi is None:
        return DEFAULT_RANGE_SEL
    return max(hi - lo, 0.0) * (1.0 - (stats.null_fraction or 0.0))


def _in(node: exp.In, columns: ColumnLookup, rows: float) -> float:
    if not isinstance(node.this, exp.Column) or node.args.get("query") is not None or not node.expressions:
        return DEFAULT_UNKNOWN_SEL
    stats = columns(node.this)
    total, seen = 0.0, []
    for item in node.expressions:
        known, value = literal_value(item)
        if known and value is None:
            continue
        if known and any(same_value(value, s) for s in seen):
            continue
        seen.append(value)
        total += _eq(stats, value if known else _UNKNOWN_VALUE, rows)
    nulls = stats.null_fraction or 0.0 if stats is not None else 0.0
    return min(total, 1.0 - nulls)


def _like(node: exp.Expression, columns: ColumnLookup, rows: float) -> float:
    if not isinstance(node.this, exp.Column):
        return DEFAULT_UNKNOWN_SEL
    known, pattern = literal_value(node.expression)
    if not known or not isinstance(pattern, str):
        return DEFAULT_LIKE_SEL
    stats = columns(node.this)
    prefix = ""
    for char in pattern:
        if char in "%_\\":
            break
        prefix += char
    if prefix == pattern and isinstance(node, exp.Like):  # no wildcard: an equality
        return _eq(stats, pattern, rows)
    if not prefix:
        return DEFAULT_LIKE_SEL
    if (stats is not None and isinstance(stats.min, str) and isinstance(stats.max, str)
            and isinstance(node, exp.Like) and stats.origin.startswith(EXACT_BOUNDS)
            and (stats.max < prefix or not stats.min < prefix + "\U0010ffff")):
        return 0.0  # no value of the column starts with the prefix
    estimate = FIXED_CHAR_SEL ** len(prefix)
    floor = _eq(stats, _UNKNOWN_VALUE, rows) if stats is not None and stats.distinct else 0.0
    return max(estimate, floor) * (1.0 - ((stats.null_fraction or 0.0) if stats is not None else 0.0))


# -- bounds and interpolation ------------------------------------------------------------------------------


def _outside(stats: ColumnStatistics, value: object) -> bool:
    """Whether ``value`` lies outside [min, max] where those bounds are exact (``EXACT_BOUNDS``; a sample's
    or a histogram's bounds may miss the extremes)."""
    if not stats.origin.startswith(EXACT_BOUNDS):
        return False
    low, high = numeric_axis(stats.min), numeric_axis(stats.max)
    point = numeric_axis(value)
    if low is None or high is None or point is None:
        return False
    return point < low or point > high


def _fraction_below(stats: ColumnStatistics | None, value: object, inclusive: bool) -> float | None:
    """The fraction of non-null values below ``value`` by linear interpolation between min and max (values
    outside give 0 or 1); None when the column has no numeric, date or timestamp bounds."""
    if stats is None or stats.min is None or stats.max is None:
        return None
    low, high = numeric_axis(stats.min), numeric_axis(stats.max)
    point = numeric_axis(coerce_literal(value, stats.min))
    if low is None or high is None or point is None:
        return None
    if point < low or (point == low and not inclusive):
        return 0.0
    if point > high or (point == high and inclusive):
        return 1.0
    if high <= low:
        return 0.5
    fraction = (point - low) / (high - low)
    if inclusive and stats.distinct:  # ``<=`` also keeps the rows equal to the bound
        fraction += 1.0 / stats.distinct
    return _clamp(fraction)
