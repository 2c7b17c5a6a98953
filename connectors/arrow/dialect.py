"""The sqlglot dialect of every SQL text DataFusion runs: residual plans, fragments of file and table-format
sources (whole queries pushed to them included), cached partitions filtered locally, dynamic-filter keys.
Registered in sqlglot as ``"datafusion"`` (``DATAFUSION_DIALECT``); ``NAMING_DIALECT`` writes the same SQL without
the guard below, for planning a query as written only (DataFusion names unaliased outputs after their text).

DataFusion's SQL is close to PostgreSQL's; the differences are class data, as in sqlglot's own dialects (``TO_CHAR``
templates written as chrono formats: ``time_formats``), three rewrites of what the planner marked
(``days_between_dates``, ``epochs_of_durations``, ``typed_decimal_rounds``: it knows the operands' types), and eight
rewrites before generating: ``outer_joins.inner_null_rejected_joins`` (an outer join whose WHERE rejects its
null-extended rows written as the inner join it is), ``join_names.distinct_join_names`` (DataFusion 55 pushes a
filter to the wrong input of a join whose inputs share a column name), ``not_in.null_aware_not_in`` (DataFusion 55
keeps every row of a constant NOT IN a sub-query holding NULLs), ``null_extended.anchor_null_extended_columns``
(DataFusion 55 takes a column an outer join null-extends for the constant it is on the other side, and drops sorts
on it), ``null_sets.guard_in_sets`` (DataFusion 55 combines IN lists ignoring NULLs),
``set_branches.read_distinct_branches`` (DataFusion 55 loses the output names of a set operation whose first branch
it finds empty), ``bound_offsets`` (DataFusion 55 moves an outer sort below a sub-query's OFFSET without LIMIT) and
``numbered_comparison_window_keys`` (DataFusion 55 fails a window ordered by a comparison of computed values).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres

from connectors.arrow.join_names import distinct_join_names
from connectors.arrow.not_in import null_aware_not_in
from connectors.arrow.null_extended import anchor_null_extended_columns
from connectors.arrow.null_sets import guard_in_sets
from connectors.arrow.outer_joins import inner_null_rejected_joins
from connectors.arrow.set_branches import read_distinct_branches
from connectors.arrow.time_formats import chrono_format
from connectors.errors import InvalidRequestError


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
            # PostgreSQL's template patterns as the chrono format DataFusion's to_char reads (time_formats)
            exp.TimeToStr: lambda self, e: self.func("TO_CHAR", e.this, exp.Literal.string(
                chrono_format(_postgres_template(self, e)))),
            exp.StrToDate: lambda self, e: self.func("TO_DATE", e.this, exp.Literal.string(
                chrono_format(_postgres_template(self, e)))),
        }

        def sign_sql(self, expression: exp.Sign) -> str:
            return self.func("SIGNUM", expression.this)  # DataFusion has no SIGN

        def anonymous_sql(self, expression: exp.Anonymous) -> str:
            if expression.name.upper() == "EVERY" and len(expression.expressions) == 1:
                return self.func("BOOL_AND", *expression.expressions)  # SQL's EVERY, which DataFusion lacks
            return super().anonymous_sql(expression)

        def withingroup_sql(self, expression: exp.WithinGroup) -> str:
            """``PERCENTILE_DISC(f) WITHIN GROUP (ORDER BY x)``, which DataFusion 55 lacks, as the value at position
            ``ceil(f * n)`` (at least 1) of the ``n`` non-NULL values in that order: PostgreSQL's definition, "the
            first value whose position in the ordering equals or exceeds the fraction"; NULL over no value."""
            function, order = expression.this, expression.expression
            keys = order.expressions if isinstance(order, exp.Order) else []
            if not (isinstance(function, exp.PercentileDisc) and isinstance(function.this, exp.Literal)
                    and len(keys) == 1):
                return super().withingroup_sql(expression)
            value = self.sql(keys[0].this)
            direction = " DESC" if keys[0].args.get("desc") else ""
            return (f"ARRAY_ELEMENT(ARRAY_AGG({value} ORDER BY {value}{direction}) FILTER (WHERE {value} IS NOT NULL), "
                    f"CAST(GREATEST(CEIL({self.sql(function.this)} * COUNT({value})), 1) AS BIGINT))")

        def similarto_sql(self, expression: exp.SimilarTo) -> str:
            """``x SIMILAR TO p`` as the anchored regular expression SQL means (``similar_to_regex``): DataFusion 55
            reads ``p`` as an unanchored regular expression, ``%`` and ``_`` as themselves (``'abc' SIMILAR TO
            '[a-z]%'`` was FALSE)."""
            pattern = expression.expression
            if not (isinstance(pattern, exp.Literal) and pattern.is_string):
                return super().similarto_sql(expression)
            return self.sql(exp.Paren(this=exp.RegexpLike(
                this=expression.this, expression=exp.Literal.string(similar_to_regex(pattern.this)))))

        def escape_sql(self, expression: exp.Escape) -> str:
            """``LIKE p ESCAPE e``: DataFusion 55 takes no escape character but the backslash, its default; a
            literal pattern is rewritten to it (``'a!_%' ESCAPE '!'`` -> ``'a\\_%'``). ``SIMILAR TO p ESCAPE e``
            as ``similarto_sql`` with that escape character."""
            like, escape = expression.this, expression.expression
            if isinstance(like, exp.SimilarTo) and isinstance(like.expression, exp.Literal) and \
                    like.expression.is_string and isinstance(escape, exp.Literal) and len(escape.this) == 1:
                return self.sql(exp.Paren(this=exp.RegexpLike(this=like.this, expression=exp.Literal.string(
                    similar_to_regex(like.expression.this, escape.this)))))
            pattern = like.expression if isinstance(like, exp.Like | exp.ILike) else None
            if not (isinstance(pattern, exp.Literal) and pattern.is_string and isinstance(escape, exp.Literal)
                    and escape.is_string and len(escape.this) == 1):
                return super().escape_sql(expression)
            rewritten = like.copy()
            rewritten.set("expression", exp.Literal.string(backslash_escaped(pattern.this, escape.this)))
            return self.sql(rewritten)

        def preprocess(self, expression: exp.Expression) -> exp.Expression:
            """Postgres's preprocessing, then outer joins that are inner written so, join inputs' shared column
            names renamed apart, the IN lists DataFusion 55 would combine wrongly guarded, later set-operation
            branches that remove duplicates read through a derived table and OFFSETs bounded (on the generator's
            copy of the tree: ``.sql()`` leaves the caller's tree as it was)."""
            return defect_rewrites(gateway_rewrites(super().preprocess(expression)))


def _postgres_template(generator: Postgres.Generator, expression: exp.TimeToStr | exp.StrToDate) -> str:
    """The PostgreSQL template of a ``TO_CHAR`` or ``TO_DATE`` (sqlglot keeps it as strftime); InvalidRequestError
    unless a string literal."""
    if not (isinstance(expression.args.get("format"), exp.Literal) and expression.args["format"].is_string):
        function = "TO_CHAR" if isinstance(expression, exp.TimeToStr) else "TO_DATE"
        raise InvalidRequestError(f"{function} takes its template as a string literal here (DataFusion)")
    return generator.format_time(expression)[1:-1].replace("''", "'")


def backslash_escaped(pattern: str, escape: str) -> str:
    r"""A LIKE pattern written with escape character ``escape`` as the same pattern escaped by a backslash.

        >>> backslash_escaped('a!_%', '!'), backslash_escaped('50!%', '!'), backslash_escaped('a\\b', '!')
        ('a\\_%', '50\\%', 'a\\\\b')
    """
    if escape == "\\":
        return pattern
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == escape and i + 1 < len(pattern):
            out.append("\\" + pattern[i + 1])
            i += 2
            continue
        out.append("\\\\" if char == "\\" else char)  # a backslash is plain text under another escape
        i += 1
    return "".join(out)


#: characters with a meaning in a regular expression (Rust's regex crate, which DataFusion uses)
_REGEX_META = set("\\.+*?()|[]{}^$")


def similar_to_regex(pattern: str, escape: str = "\\") -> str:
    r"""SQL's ``SIMILAR TO`` pattern as the regular expression it means: the whole string must match, ``%`` is any
    text and ``_`` any character, ``.``, ``^`` and ``$`` are plain characters, ``escape`` makes the next character
    plain, bracket expressions and ``| * + ? { } ( )`` keep their regular-expression meaning (PostgreSQL 15
    manual, "SIMILAR TO Regular Expressions"; ``(?s)``: ``%`` spans newlines as in PostgreSQL).

        >>> similar_to_regex('[a-z]%'), similar_to_regex('(ab|cd)_.'), similar_to_regex('50#%', '#')
        ('(?s)^(?:[a-z].*)$', '(?s)^(?:(ab|cd).\\.)$', '(?s)^(?:50%)$')
    """
    out, i, bracket = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == escape and i + 1 < len(pattern):
            plain = pattern[i + 1]
            out.append("\\" + plain if plain in _REGEX_META else plain)
            i += 2
            continue
        if bracket:
            bracket = char != "]" or out[-1] == "[" or out[-2:] == ["[", "^"]  # a leading ] is a member
        elif char == "[":
            bracket = True
        elif char in "%_":
            char = ".*" if char == "%" else "."
        elif char in ".^$":
            char = "\\" + char
        out.append(char)
        i += 1
    return "(?s)^(?:" + "".join(out) + ")$"


def gateway_rewrites(expression: exp.Expression) -> exp.Expression:
    """The rewrites of SQL DataFusion runs that a DataFusion without its 55 defects would not need to answer
    right and that do not change what the SQL means: outer joins written as the inner joins they are, join
    inputs' shared column names renamed apart. The differential fuzzer's reference runs without them."""
    return distinct_join_names(inner_null_rejected_joins(expression))


#: ``Expression.meta`` key the planner sets on a ``-`` of two dates (it knows the operand types; this dialect does not)
DATE_DIFFERENCE = "date_difference"


def days_between_dates(expression: exp.Expression) -> exp.Expression:
    """Each ``a - b`` the planner marked ``DATE_DIFFERENCE`` written ``CAST(a AS BIGINT) - CAST(b AS BIGINT)``: the
    same days, as Int64. DataFusion 55 fails a filter comparing ``a - b`` over a Parquet file with statistics
    ("Only intervals with the same data type are comparable, lhs:Int64, rhs:Duration(s)"; fuzz seeds 7531902,
    9182736), in its filter-statistics analysis, whatever the session's pruning settings. In place; returns it."""
    for sub in list(expression.find_all(exp.Sub)):
        if sub.meta.get(DATE_DIFFERENCE):
            sub.set("this", exp.cast(sub.this.copy(), exp.DataType.build("BIGINT")))
            sub.set("expression", exp.cast(sub.expression.copy(), exp.DataType.build("BIGINT")))
            sub.meta.pop(DATE_DIFFERENCE)
    return expression


#: ``Expression.meta`` key the planner sets on a ``ROUND`` of a decimal: the (precision, scale) DataFusion 55 gives it
DECIMAL_ROUND = "decimal_round"


def typed_decimal_rounds(expression: exp.Expression) -> exp.Expression:
    """Each ``ROUND(x, n)`` the planner marked ``DECIMAL_ROUND`` written ``CAST(ROUND(x, n) AS DECIMAL(p, s))``, the
    type DataFusion 55 computes it in. DataFusion 55 types a decimal ROUND two ways: ``decimal(p, n)`` once its
    scale argument is a literal (as it runs), ``decimal(p + 1, s)`` while type coercion has that literal under a
    cast (as CASE, COALESCE, GREATEST, comparisons and set operations take their common type). So
    ``CASE WHEN .. THEN amt ELSE ROUND(amt, 0) END`` fails over Parquet ("column types must match schema types,
    expected Decimal128(13, 2) but found Decimal128(12, 0)"; fuzz seed 9876543), a comparison with the column
    fails, and ``ROUND(amt, 1) INTERSECT SELECT amt`` reads the rounded values' digits at the wrong scale: a wrong
    answer. Under the cast both passes see one type. In place; returns it."""
    for node in list(expression.find_all(exp.Round)):
        typed = node.meta.pop(DECIMAL_ROUND, None)
        if typed is not None:
            precision, scale = typed
            typed_round = exp.Cast(to=exp.DataType.build(f"DECIMAL({precision}, {scale})"))
            node.replace(typed_round)
            typed_round.set("this", node)
    return expression


#: ``Expression.meta`` key the planner sets on an ``EXTRACT(EPOCH FROM a - b)`` of two timestamps
EPOCH_OF_DURATION = "epoch_of_duration"


def epochs_of_durations(expression: exp.Expression) -> exp.Expression:
    """Each ``EXTRACT(EPOCH FROM d)`` the planner marked ``EPOCH_OF_DURATION`` written ``EXTRACT(EPOCH FROM CAST(d AS
    INTERVAL))``: DataFusion 55 drops the fraction of a second from the epoch of a duration
    (``EXTRACT(EPOCH FROM ts - TIMESTAMP '2021-01-01')`` gave 32713965.0 where 32713965.149665 is right), not from
    an interval's. In place; returns it."""
    for extract in list(expression.find_all(exp.Extract)):
        if extract.meta.pop(EPOCH_OF_DURATION, None):
            extract.set("expression", exp.cast(extract.expression.copy(), exp.DataType.build("INTERVAL")))
    return expression


#: ``Expression.meta`` key the planner sets on a comparison (or BETWEEN) of durations and intervals
INTERVAL_COMPARISON = "interval_comparison"

_COMPARISON_OPERANDS = {exp.Between: ("this", "low", "high")}


def linear_interval_comparisons(expression: exp.Expression) -> exp.Expression:
    """Each comparison the planner marked ``INTERVAL_COMPARISON`` written over its operands' lengths in microseconds,
    ``ROUND(EXTRACT(EPOCH FROM CAST(x AS INTERVAL)) * 1000000)``: DataFusion 55 compares a duration with an interval
    (and two intervals) field by field, months, then days, then nanoseconds, so ``(ts - TIMESTAMP '2021-01-01') >
    INTERVAL '100 days'`` was FALSE for 378 days (the duration's days sit in its nanoseconds) and ``INTERVAL '1 day'
    = INTERVAL '24 hours'`` FALSE. PostgreSQL compares lengths, a month as 30 days and a day as 24 hours, which is
    what DataFusion's epoch of an interval counts; rounded to microseconds, PostgreSQL's resolution, so that equal
    lengths compare equal. In place; returns it."""
    for node in list(expression.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ,
                                         exp.NullSafeNEQ, exp.Between)):
        if not node.meta.pop(INTERVAL_COMPARISON, None):
            continue
        for key in _COMPARISON_OPERANDS.get(type(node), ("this", "expression")):
            operand = node.args[key]
            epoch = exp.Extract(this=exp.var("EPOCH"),
                                expression=exp.cast(operand.copy(), exp.DataType.build("INTERVAL")))
            node.set(key, exp.Round(this=exp.Mul(this=epoch, expression=exp.Literal.number(1_000_000))))
    return expression


def defect_rewrites(expression: exp.Expression) -> exp.Expression:
    """The rewrites without which DataFusion 55 answers a shape wrong or fails to plan it in every session, in the
    order they apply: a constant NOT IN written NULL-aware, null-extended columns that may be constants read
    through their input's join key, IN lists guarded, later set-operation branches that
    remove duplicates read through a derived table, OFFSETs bounded. The differential fuzzer's reference runs
    them too (``tests.fuzz.generator.ReferenceDataFusion``)."""
    return numbered_comparison_window_keys(bound_offsets(read_distinct_branches(guard_in_sets(
        anchor_null_extended_columns(null_aware_not_in(typed_decimal_rounds(linear_interval_comparisons(
            epochs_of_durations(days_between_dates(expression))))))))))


def numbered_comparison_window_keys(expression: exp.Expression) -> exp.Expression:
    """Each ordering comparison (``<``, ``<=``, ``>``, ``>=``) inside a window's ORDER BY key written ``(CASE WHEN
    c THEN 1 WHEN NOT c THEN 0 END IN (1))``: the same TRUE, FALSE or NULL. DataFusion 55 fails its SanityCheckPlan on
    a window ordered by a key holding such a comparison of anything but bare columns (``MAX(g) OVER (ORDER BY
    ABS(n) <= g)``, ``COALESCE(n, 0) > 1``, ``CASE WHEN ABS(n) <= g THEN n END``: "does not satisfy order
    requirements", the sort below it being the one required; fuzz seed 2468024, through the null-extended
    rewrite's CASE). In place; returns it."""
    for window in list(expression.find_all(exp.Window)):
        order = window.args.get("order")
        for ordered in order.expressions if order is not None else []:
            for comparison in reversed(list(ordered.find_all(exp.LT, exp.LTE, exp.GT, exp.GTE, bfs=False))):
                if all(isinstance(side, exp.Column | exp.Literal) for side in (comparison.left, comparison.right)):
                    continue
                case = exp.Case(ifs=[exp.If(this=exp.Paren(this=comparison.copy()), true=exp.Literal.number(1)),
                                     exp.If(this=exp.Not(this=exp.Paren(this=comparison.copy())),
                                            true=exp.Literal.number(0))])
                # IN (1), not = 1: DataFusion simplifies `CASE .. END = 1` back into the comparison
                comparison.replace(exp.Paren(this=exp.In(this=case, expressions=[exp.Literal.number(1)])))
    return expression


#: the LIMIT an OFFSET without one is given: i64::MAX, every row
UNBOUNDED_LIMIT = 9223372036854775807


def bound_offsets(expression: exp.Expression) -> exp.Expression:
    """``expression`` with each sub-query's ``ORDER BY .. OFFSET n`` without LIMIT written ``ORDER BY .. LIMIT <i64
    max> OFFSET n`` (the same rows) when an ORDER BY outside that sub-query could move below it. DataFusion 55
    moves an outer sort below a skip-only limit: ``SELECT * FROM (SELECT x, y FROM t ORDER BY x OFFSET 2) AS s
    ORDER BY y`` skips the first two rows in ``y`` order, not in ``x`` order (fuzz seed 577215 #262: the
    reference answered it wrong, the gateway right in PostgreSQL, and wrong wherever DataFusion ran it); with a
    LIMIT the plan keeps the order. The price: DataFusion then sorts that sub-query as a top-K of every row, about
    20x a full sort (2M rows: 4 s), so nothing else is rewritten. Changes ``expression`` in place (the generator's
    copy) and returns it.

        >>> import sqlglot
        >>> inner = "SELECT * FROM (SELECT x FROM t ORDER BY x OFFSET 2) AS s"
        >>> bound_offsets(sqlglot.parse_one(inner + " ORDER BY y")).sql()
        'SELECT * FROM (SELECT x FROM t ORDER BY x LIMIT 9223372036854775807 OFFSET 2) AS s ORDER BY y'
        >>> bound_offsets(sqlglot.parse_one(inner)).sql()
        'SELECT * FROM (SELECT x FROM t ORDER BY x OFFSET 2) AS s'
    """
    skipping = [n for n in expression.find_all(exp.Select, exp.SetOperation)
                if n is not expression and n.args.get("order") is not None and n.args.get("offset") is not None
                and n.args.get("limit") is None]
    for node in skipping:
        inside = {id(m) for m in node.walk()}
        if any(other.args.get("order") is not None and id(other) not in inside
               for other in expression.find_all(exp.Select, exp.SetOperation)):
            node.set("limit", exp.Limit(expression=exp.Literal.number(UNBOUNDED_LIMIT)))
    return expression


class DataFusionNaming(DataFusion):
    """DataFusion's SQL as the user wrote it, IN lists unguarded: only for planning a query whose output names
    DataFusion derives from the expressions' text (``SELECT g NOT IN (1) OR g NOT IN (2)`` keeps that name).
    Never for SQL that runs: its answers may be wrong (``null_sets``)."""

    class Generator(DataFusion.Generator):
        # the user's TO_CHAR and TO_DATE templates, which name an unaliased output
        TRANSFORMS = {**DataFusion.Generator.TRANSFORMS,
                      **{k: Postgres.Generator.TRANSFORMS[k] for k in (exp.TimeToStr, exp.StrToDate)}}

        def preprocess(self, expression: exp.Expression) -> exp.Expression:
            return Postgres.Generator.preprocess(self, expression)


DATAFUSION_DIALECT = "datafusion"
NAMING_DIALECT = "datafusionnaming"
