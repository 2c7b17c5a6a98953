"""Comparing the gateway's answer with the reference's, and running one fuzz query through both.

Values: integers of any width and decimals compare exactly as numbers (``Decimal('1.50') == 1.5``), floats
(and a float against a decimal) within ``REL_TOL``/``ABS_TOL``, timestamps as UTC instants (a naive timestamp
is read as UTC). Rows compare in order when the query's top-level ORDER BY covers every output column (the
generator appends tie-breakers), else as multisets; LIMIT/OFFSET without such an order compares the row count
only. Output column names that differ are a finding of their own ("names"); so are Arrow types that differ
other than by integer width ("types", a note that does not fail a query).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
from sqlglot import exp

from connectors.arrow.dialect import bound_offsets
from tests.fuzz.generator import FuzzQuery, render

REL_TOL, ABS_TOL = 1e-9, 1e-12
OK, WRONG, ERROR, INVALID, NAMES = "ok", "wrong answer", "planning error", "invalid", "names"
UNSTABLE = "unstable"  # DataFusion answers differently in two configurations: no reference to hold to

#: DataFusion 55 defects that the reference escapes only where its optimizer removes the failing part (an empty
#: sub-query), while the gateway, reading real fragments, meets them: error text -> a reproduction in plain
#: DataFusion (no gateway involved). Such errors count as UNSTABLE, not as gateway failures.
DATAFUSION_DEFECTS = {
    "Invalid comparison operation: Decimal128":
        "SELECT v FROM (SELECT round(d, 1) AS v FROM t) AS s WHERE v <> 50000  -- d DECIMAL(12, 2), one row",
    "Physical input schema should be the same as the one converted from logical input schema":
        "SELECT MAX(MIN(b IS FALSE)) OVER (ORDER BY MIN(CASE WHEN NOT (b IS FALSE) THEN 10.0 ELSE 1e2 END)) "
        "FROM t  -- b BOOLEAN, any rows",
    "aggregate_statistics":
        "WITH q AS (SELECT COUNT(*) AS v FROM t) SELECT COUNT('x') FILTER (WHERE q.v) FROM q  -- any t",
}


def _count_constant_filtered(ast: exp.Expression) -> bool:
    """``COUNT(<constant>) FILTER (WHERE ..)``: DataFusion 52's aggregate_statistics rule answers it from the
    input's row-count statistics, ignoring the filter (the reference says 200 where 1 row passes)."""
    return any(isinstance(f.this, exp.Count) and isinstance(f.this.this, exp.Literal)
               for f in ast.find_all(exp.Filter))


def _rollup_of_a_constant_ordered(ast: exp.Expression) -> bool:
    """ROLLUP/CUBE/GROUPING SETS over a column a CTE or sub-query sets to a constant, with ORDER BY:
    DataFusion 52 drops the sort (the column looks constant, but the super-aggregate row makes it NULL), so
    ``WITH q AS (SELECT TRUE AS v FROM t) SELECT v FROM q GROUP BY ROLLUP (v) ORDER BY 1`` puts NULL first."""
    if not ast.args.get("order") or not any(ast.find_all(exp.Rollup, exp.Cube, exp.GroupingSets)):
        return False
    if any(_folds_to_constant(key) for sets in ast.find_all(exp.Rollup, exp.Cube, exp.GroupingSets)
           for key in sets.expressions):
        return True  # regression r41: CASE WHEN <constant> IS NULL THEN col ELSE FALSE END folds to FALSE
    inner = [select for select in ast.find_all(exp.Select) if select is not ast]
    return any(isinstance(p, exp.Alias) and isinstance(p.this, exp.Literal | exp.Boolean | exp.Null)
               for select in inner for p in select.expressions) or any(_one_row(select) for select in inner)


def _one_row(select: exp.Select) -> bool:
    """An aggregate without GROUP BY: exactly one row, so DataFusion takes its outputs for constants too (seed
    1212121 #1809: ``GROUPING SETS (a3.v1, ())`` over ``(SELECT MAX(amt) AS v1 ...)`` ordered NULLS FIRST)."""
    return (not select.args.get("group") and bool(select.expressions)
            and all(isinstance(p.unalias(), exp.AggFunc) for p in select.expressions))


def _folds_to_constant(key: exp.Expression) -> bool:
    """A grouping key DataFusion's simplifier may fold to a constant: a literal, or a CASE whose conditions read
    no column and one of whose results is a literal."""
    key = key.unnest()
    if isinstance(key, exp.Literal | exp.Boolean | exp.Null):
        return True
    if not isinstance(key, exp.Case) or any(w.this.find(exp.Column) for w in key.args.get("ifs") or []):
        return False
    results = [w.args.get("true") for w in key.args.get("ifs") or []] + [key.args.get("default")]
    return any(isinstance(r, exp.Literal | exp.Boolean | exp.Null) for r in results if r is not None)


def _offset_without_limit_under_an_order(ast: exp.Expression) -> bool:
    """A shape the gateway rewrites with ``connectors.arrow.dialect.bound_offsets`` (a sub-query's ORDER BY ..
    OFFSET without LIMIT under another ORDER BY): DataFusion 55 moves that outer sort below the skip
    (``tests/test_datafusion_offsets.py``; seed 577215 #262), and the reference runs the SQL as written."""
    return bound_offsets(ast.copy()) != ast


#: query shapes for which the reference itself is known to be wrong: (predicate over the AST, the defect)
DATAFUSION_WRONG_SHAPES = (
    (_count_constant_filtered, "COUNT(<constant>) FILTER (..) answered from row-count statistics"),
    (_rollup_of_a_constant_ordered, "the sort of a ROLLUP over a constant column is dropped"),
    (_offset_without_limit_under_an_order, "an outer sort is moved below a sub-query's OFFSET without LIMIT"),
)


@dataclass
class Outcome:
    """What one query did: ``category`` (OK, WRONG, ERROR, INVALID, NAMES, UNSTABLE), a detail, whether the
    gateway's plan fell back (``fallback``: the reason string) or differed in types (``types``), and whether the
    planner reordered a FROM list of it (``reordered``: ``planner.federation.join_order``) or ran a fragment of it
    late materialized (``late``: ``planner.federation.whole_query.selective_join``)."""

    category: str
    detail: str = ""
    fallback: str | None = None
    types: str | None = None
    gateway_sql: str = ""
    reference_sql: str = ""
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    reordered: bool = False
    late: bool = False

    @property
    def failed(self) -> bool:
        return self.category in (WRONG, ERROR)

    def signature(self) -> tuple[str, str]:
        """What a shrunk query must keep to "fail the same way": the category and, for errors, the class."""
        if self.category == ERROR:
            return self.category, self.detail.split(":", 1)[0]
        return self.category, ""


def _value(v):
    if hasattr(v, "to_pydatetime") and hasattr(v, "nanosecond"):  # pandas Timestamp (timestamp[ns] values)
        nanos = v.nanosecond
        v = v.to_pydatetime(warn=False)
        if nanos:
            return (_value(v), nanos)
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(v, Decimal):
        return v.normalize() if v.is_finite() else v
    return v


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    numbers = (int, float, Decimal)
    if isinstance(a, numbers) and isinstance(b, numbers):
        if isinstance(a, float) or isinstance(b, float):
            fa, fb = float(a), float(b)
            if math.isnan(fa) or math.isnan(fb):
                return math.isnan(fa) and math.isnan(fb)
            return fa == fb or math.isclose(fa, fb, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        return Decimal(a) == Decimal(b)
    return type(a) is type(b) and a == b


def _sort_key(row: tuple) -> tuple:
    key = []
    for v in row:
        if v is None:
            key.append((0, ""))
        elif isinstance(v, int | float | Decimal) and not isinstance(v, bool):
            key.append((1, f"{float(v):.6e}"))
        else:
            key.append((2, f"{type(v).__name__}:{v}"))
    return tuple(key)


def _rows(table: pa.Table) -> list[tuple]:
    columns = [[_value(v) for v in c.to_pylist()] for c in table.columns]
    return list(zip(*columns, strict=True)) if columns else [()] * table.num_rows


def _row_same(g: tuple, w: tuple) -> bool:
    return all(_same(a, b) for a, b in zip(g, w, strict=True))


_PLAIN = {pa.string_view(): pa.string(), pa.large_string(): pa.string(), pa.binary_view(): pa.binary()}


def _types_differ(got: pa.Schema, want: pa.Schema) -> str | None:
    """Types that differ other than by integer width or by string/view encoding."""
    diffs = [f"{w.name}: {g.type}, want {w.type}" for g, w in zip(got, want, strict=True)
             if _PLAIN.get(g.type, g.type) != _PLAIN.get(w.type, w.type)
             and not (pa.types.is_integer(g.type) and pa.types.is_integer(w.type))]
    return "; ".join(diffs) or None


def compare(got: pa.Table, want: pa.Table, ordered: bool, count_only: bool = False) -> tuple[str, str]:
    """(category, detail) of ``got`` against the reference ``want``: OK, WRONG or NAMES."""
    if got.num_columns != want.num_columns:
        return WRONG, f"{got.num_columns} columns, want {want.num_columns}"
    if got.num_rows != want.num_rows:
        return WRONG, f"{got.num_rows} rows, want {want.num_rows}"
    if not count_only:
        g_rows, w_rows = _rows(got), _rows(want)
        if not ordered:
            g_rows, w_rows = sorted(g_rows, key=_sort_key), sorted(w_rows, key=_sort_key)
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(g_rows, w_rows, strict=True)) if not _row_same(g, w)]
        if bad and not ordered and len(g_rows) <= 5000:
            bad = _unmatched(g_rows, w_rows)  # float rounding can sort near-equal rows apart: match greedily
        if bad and ordered and len(g_rows) <= 5000 and any(pa.types.is_floating(f.type) for f in want.schema) \
                and not _unmatched(g_rows, w_rows):
            # the same rows, in an order that differs where float keys tie up to their last bits (summation
            # order moves those bits): not a wrong answer
            bad = []
        if bad:
            i, g, w = bad[0]
            where = f"row {i}" if ordered else "a row"
            return WRONG, f"{len(bad)} of {len(w_rows)} rows differ{' (in order)' if ordered else ''}: {where} " \
                          f"is {_short(g)}, want {_short(w)}"
    if got.column_names != want.column_names:
        return NAMES, f"column names {got.column_names}, want {want.column_names}"
    return OK, ""


def _unmatched(g_rows: list[tuple], w_rows: list[tuple]) -> list[tuple]:
    left = list(w_rows)
    missing = []
    for g in g_rows:
        for j, w in enumerate(left):
            if _row_same(g, w):
                left.pop(j)
                break
        else:
            missing.append(g)
    return [(0, g, w) for g, w in zip(missing, left, strict=True)]


def _show(v) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, Decimal):
        return f"dec {v}"
    if isinstance(v, dt.datetime | dt.date):
        return f"{type(v).__name__} {v}"
    return repr(v)


def _short(row: tuple) -> str:
    text = "(" + ", ".join(_show(v) for v in row) + ")"
    return text if len(text) < 300 else text[:300] + "..."


# -- the order a query promises ------------------------------------------------------------------------------

def _outputs(query: exp.Expression) -> list[exp.Expression]:
    while isinstance(query, exp.SetOperation):
        query = query.this
    return list(query.expressions) if isinstance(query, exp.Select) else []


def total_order(ast: exp.Expression) -> bool:
    """Whether the top-level ORDER BY covers every output column (by ordinal, alias or the same expression)."""
    order = ast.args.get("order")
    outputs = _outputs(ast)
    if order is None or not outputs:
        return False
    covered = set()
    for ordered in order.expressions:
        key = ordered.this
        for i, out in enumerate(outputs):
            inner = out.this if isinstance(out, exp.Alias) else out
            if (isinstance(key, exp.Literal) and key.is_int and int(key.name) == i + 1) or (isinstance(key, exp.Column) and not key.table and key.name == out.alias_or_name) or key == inner:
                covered.add(i)
    return len(covered) == len(outputs)


# -- one query -------------------------------------------------------------------------------------------------

def _error_text(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:400]}"


def check(gateway, reference, names: dict[str, str], query: FuzzQuery) -> Outcome:
    """Run ``query`` (with its placement) in the reference and through the gateway; compare."""
    import time

    gw_sql = render(query.ast, query.placement, names)
    ref_sql = render(query.ast, query.placement, None, schemas=reference.schemas)
    unmarked = render(query.ast, query.placement, None)
    t0 = time.perf_counter()
    try:
        want = reference.run(ref_sql)
        as_written = render(query.ast, query.placement, None, as_written=True)
        if as_written != unmarked:
            # set tests wrapped (reference_sets): DataFusion must answer the query as written too (else it is
            # invalid, as it was before the wrapping), whose text names the outputs
            want = want.rename_columns(reference.run(as_written).column_names)
        elif ref_sql != unmarked:  # decimal ROUNDs typed (planner.decimal_rounds): named as written, as planned
            want = want.rename_columns(reference.output_names(as_written))
    except BaseException as exc:  # DataFusion cannot answer: not a valid query
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # an interrupt; a panic inside DataFusion (pyo3's PanicException) is an answer it cannot give
        return Outcome(INVALID, _error_text(exc), gateway_sql=gw_sql, reference_sql=ref_sql)
    fallback = types = None
    reordered = late = False
    try:
        plan = gateway.plan(gw_sql)
        fallback = getattr(plan, "fallback", None)
        reordered = bool(getattr(plan, "join_orders", None))
        late = any(f.late_materialization for f in plan.fragments)
        got = gateway.execute(gw_sql).reader.read_all()
    except Exception as exc:
        known = next((repro for text, repro in DATAFUSION_DEFECTS.items() if text in str(exc)), None)
        if known is not None:
            return Outcome(UNSTABLE, f"a DataFusion defect ({known}): {_error_text(exc)}", fallback,
                           gateway_sql=gw_sql, reference_sql=ref_sql)
        return Outcome(ERROR, _error_text(exc), fallback, gateway_sql=gw_sql, reference_sql=ref_sql,
                       seconds=time.perf_counter() - t0)
    limited = query.ast.args.get("limit") is not None or query.ast.args.get("offset") is not None
    ordered = total_order(query.ast)
    category, detail = compare(got, want, ordered, count_only=limited and not ordered)
    known = next((defect for shape, defect in DATAFUSION_WRONG_SHAPES if shape(query.ast)), None)
    if category == WRONG and known:
        return Outcome(UNSTABLE, f"a DataFusion defect ({known}): {detail}", fallback,
                       gateway_sql=gw_sql, reference_sql=ref_sql)
    if category == WRONG and _order_sensitive_outputs(query.ast):
        keep = [i for i in range(got.num_columns) if i not in _order_sensitive_outputs(query.ast)]
        if keep and compare(got.select(keep), want.select(keep), False)[0] != WRONG:
            return Outcome(UNSTABLE, f"only order-sensitive window outputs differ (ties in their ORDER BY): {detail}",
                           fallback, gateway_sql=gw_sql, reference_sql=ref_sql)
    for variant in ("alternative", "single") if category == WRONG else ():
        try:
            other = reference.run(ref_sql, alternative=variant)
        except Exception as exc:
            other, detail = None, f"{detail} (the {variant} session fails: {_error_text(exc)})"
        if other is not None and compare(other, want, ordered, count_only=limited and not ordered)[0] == WRONG:
            category = UNSTABLE
            detail = f"DataFusion itself answers differently when planned differently ({variant}): {detail}"
            break
    if category != WRONG and got.num_columns == want.num_columns:
        types = _types_differ(got.schema, want.schema)
    return Outcome(category, detail, fallback, types, gw_sql, ref_sql, time.perf_counter() - t0, reordered=reordered,
                   late=late)


#: window functions whose value depends on the order among rows that tie in their ORDER BY
_ORDER_SENSITIVE = (exp.RowNumber, exp.Ntile, exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue)


def _order_sensitive_outputs(ast: exp.Expression) -> set[int]:
    """Positions of the top-level outputs computed by an order-sensitive window function."""
    select = ast
    while isinstance(select, exp.SetOperation):
        select = select.left
    if not isinstance(select, exp.Select):
        return set()
    return {i for i, e in enumerate(select.expressions)
            if any(isinstance(w.this, _ORDER_SENSITIVE) for w in e.find_all(exp.Window))}


def error_class(outcome: Outcome) -> str:
    """A short key grouping similar failures: the category, and the error text without names and numbers."""
    if outcome.category not in (ERROR, INVALID):
        return outcome.category
    text = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "…", outcome.detail)
    return re.sub(r"\d+", "N", text)[:160]
