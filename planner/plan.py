"""The planner's output: fragments pushed to sources and the residual plan DataFusion runs over them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from sqlglot import exp

from connectors.base import Fragment
from planner.dialects import RESIDUAL_DIALECT
from planner.parse import literal, substitute_parameters


@dataclass
class NotPushed:
    """One thing that stayed in DataFusion and why (shown by EXPLAIN)."""

    what: str
    reason: str


@dataclass(frozen=True)
class FragmentJoin:
    """An equi-join between two fragments in the residual, ``left.left_column = right.right_column``: a
    candidate for a dynamic filter.

    Attributes:
        either_way: False for a correlation ``inner.k = outer.k`` of a sub-query: only ``right`` (the inner
            side) may be restricted by ``left``; True for an inner join of one scope.
        left_use, right_use: which of the residual's references to that fragment the join is on (a shared
            fragment is referenced more than once; 0 for the first).
    """

    left: str
    left_column: str
    right: str
    right_column: str
    either_way: bool
    left_use: int = 0
    right_use: int = 0


@dataclass(frozen=True)
class LocalFilter:
    """A condition DataFusion applies to a fragment's rows (conjuncts its source could not run), written over
    the table alias ``alias``: a dynamic filter built from the fragment applies it first."""

    alias: str
    condition: exp.Expression


@dataclass(frozen=True)
class TopNFallback:
    """A top-N pushed below an inner join (``planner.federation.top_n``) and the plan to run instead when the
    join dropped one of its rows: ``fragment`` fetched ``fetched`` rows (LIMIT + OFFSET) of its table, and the
    result must then have ``rows`` rows (the LIMIT); fewer means a row found no partner (or was filtered) and
    rows further down may belong in the answer, so execution discards the result and runs ``plan`` (the same
    query planned without this pushdown). The result is held (at most ``rows`` rows) until checked."""

    fragment: str
    fetched: int
    rows: int
    plan: FederatedPlan

    def needed(self, result_rows: int, fragment_rows: int | None) -> bool:
        """Whether the result (``result_rows``) may be wrong: it is short while the fragment returned all
        ``fetched`` rows or an unknown number (``fragment_rows`` None: read in place).

            >>> f = TopNFallback("__fragment_0", 25, 20, None)
            >>> f.needed(20, 25), f.needed(18, 25), f.needed(18, 23), f.needed(18, None)
            (False, True, False, True)
        """
        return result_rows < self.rows and (fragment_rows is None or fragment_rows >= self.fetched)


@dataclass
class FederatedPlan:
    """Fragments + residual SQL over them.

    Attributes:
        sql: the original SQL text.
        fragments: fragments pushed to sources (a table, a group of joined tables of one source, a whole
            sub-query, or the whole query).
        residual_sql: DataFusion SQL over the fragments, each registered under its ``id``; None when the
            whole query was pushed to one source and DataFusion only passes its stream through.
        schema: the Arrow schema of the result.
        not_pushed: what stayed in DataFusion, with the reason.
        residual_plan: DataFusion's optimized logical plan of the residual, as text (for EXPLAIN).
        residual_ast: the residual as a sqlglot expression (may hold ``$n`` parameters until bound).
        joins: equi-joins between fragments in the residual (``FragmentJoin``), usable for dynamic filters.
        local_filters: per fragment id, the ``LocalFilter`` DataFusion applies to its rows (conjuncts the
            source could not run); a dynamic filter built from the fragment applies it first.
        join_estimates: each join of ``residual_plan`` with its estimated rows
            (``planner.join_estimates.JoinEstimate``), outermost first.
        filtered_estimates: per fragment id that dynamic filters would restrict, its estimated rows after
            them (``planner.join_estimates.filtered_estimates``); EXPLAIN ANALYZE and the misestimate metric
            judge such a fragment's rows against it.
        fallback: why the federation passes were not used (a pass failed on this query shape), or None.
            A fallback plan reads each table through its own fragment (columns only) and runs the query in
            DataFusion: slower, never wrong.
        top_n_fallback: a top-N pushed below an inner join and the plan run instead when its result comes out
            short (``TopNFallback``), or None.
        join_orders: FROM lists the planner reordered by estimated rows (``planner.federation.join_order``),
            each as ``"the new order (written ...): its estimate against the written one's"``.
    """

    sql: str
    fragments: list[Fragment]
    residual_sql: str | None
    schema: pa.Schema
    not_pushed: list[NotPushed] = field(default_factory=list)
    residual_plan: str = ""
    residual_ast: exp.Expression | None = None
    joins: list[FragmentJoin] = field(default_factory=list)
    local_filters: dict[str, LocalFilter] = field(default_factory=dict)
    fallback: str | None = None
    join_estimates: list = field(default_factory=list)
    top_n_fallback: TopNFallback | None = None
    filtered_estimates: dict[str, int] = field(default_factory=dict)
    join_orders: list[str] = field(default_factory=list)

    def with_output_names(self, names: Sequence[str]) -> FederatedPlan:
        """The plan whose result columns are named ``names`` (same count, same order). Internal names
        (``_col_N``) stay inside fragments and the residual; batches are renamed by position when they are
        conformed to ``schema`` (a whole pushed query's fragment carries the final names itself)."""
        if list(names) == self.schema.names or len(names) != len(self.schema):
            return self
        schema = pa.schema([f.with_name(n) for f, n in zip(self.schema, names, strict=True)])
        fallback = self.top_n_fallback
        if fallback is not None:  # its result replaces this one's: the same names
            fallback = dataclasses.replace(fallback, plan=fallback.plan.with_output_names(names))
        if self.residual_sql is None:
            fragment = dataclasses.replace(self.fragments[0], schema=schema)
            return dataclasses.replace(self, fragments=[fragment, *self.fragments[1:]], schema=schema,
                                       top_n_fallback=fallback)
        return dataclasses.replace(self, schema=schema, top_n_fallback=fallback)

    @property
    def pushed_whole(self) -> bool:
        return self.residual_sql is None

    def references(self) -> dict[str, int]:
        """How many times the residual names each fragment (a shared fragment, more than once)."""
        counts: dict[str, int] = {}
        if self.residual_ast is not None:
            ids = {f.id for f in self.fragments}
            for table in self.residual_ast.find_all(exp.Table):
                if table.name in ids:
                    counts[table.name] = counts.get(table.name, 0) + 1
        return counts

    @property
    def sources(self) -> list[str]:
        return sorted({f.source for f in self.fragments})

    def explain(self, fragment_stats: dict[str, dict] | None = None,
                partitions: dict[str, list[str]] | None = None, in_place: set[str] | frozenset = frozenset(),
                engines: dict[str, str] | None = None, joins: Sequence[dict] | None = None,
                fallback_run: str | None = None) -> str:
        """A text plan: each fragment with its pushed SQL, the residual plan, and what was not pushed.

        ``fragment_stats`` (from a run: ``{fragment_id: {"rows": n, "bytes": n}}``, optionally
        ``"estimated_rows"``: the estimate the run judged it by) adds what each fragment returned;
        ``partitions`` (``{fragment_id: ["year=2022: cached (3.1s old)", ...]}``) how each partition of a
        cached source was (or would be) read; ``in_place`` names the fragments the
        residual plan scans itself (files) instead of fetching them; ``engines`` (``{fragment_id: "ray, 4 tasks:
        ctid page ranges of tpch.orders"}``) where each fragment was read and why (``[execution] engine``);
        ``joins`` (from a run: ``[{"operator", "type", "on", "rows", "build_rows", "estimated_rows"}]``, outermost
        first) the joins the residual plan ran, with their actual rows and the planner's estimate;
        ``fallback_run`` (from a run of a plan with a ``top_n_fallback``) whether its fallback plan ran and why.
        """
        lines = ["Federated plan"]
        if self.fallback:
            lines.append(f"  fallback: each table read on its own, the query run by DataFusion ({self.fallback})")
        if self.pushed_whole:
            lines.append(f"  whole query pushed down to source '{self.fragments[0].source}'")
        for order in self.join_orders:
            lines.append(f"  join order: {order}")
        for f in self.fragments:
            lines.extend(_fragment_lines(f, fragment_stats, partitions, in_place, engines,
                                         self.filtered_estimates.get(f.id)))
        if self.residual_sql is not None:
            lines.append("  Residual plan (DataFusion):")
            lines.append(f"    SQL: {self.residual_sql}")
            for plan_line in self.residual_plan.splitlines():
                lines.append(f"      {plan_line}")
            lines.extend(_join_lines(joins or ()))
        if self.top_n_fallback is not None:
            lines.extend(_top_n_fallback_lines(self.top_n_fallback, fallback_run))
        if self.not_pushed:
            lines.append("  Not pushed down:")
            for item in self.not_pushed:
                lines.append(f"    - {item.what}: {item.reason}")
        lines.append(f"  Output: {', '.join(f'{fld.name} {fld.type}' for fld in self.schema)}")
        return "\n".join(lines)


def _fragment_lines(f: Fragment, fragment_stats: dict[str, dict] | None, partitions: dict[str, list[str]] | None,
                    in_place: set[str] | frozenset, engines: dict[str, str] | None,
                    filtered: int | None = None) -> list[str]:
    """EXPLAIN's lines for one fragment (``FederatedPlan.explain`` gives the arguments' meaning; ``filtered``:
    its estimated rows after the dynamic filters planned for it, which its returned rows are judged by)."""
    lines: list[str] = []
    lines.append(f"  Fragment {f.id} -> source '{f.source}' reads {', '.join(f.tables)}")
    if f.pushed:
        lines.append(f"    pushed: {'; '.join(f.pushed)}")
    if partitions and f.id in partitions:
        lines.append("    partitions:")
        lines.extend(f"      {mark}" for mark in partitions[f.id])
    else:
        lines.append(f"    partitions: {', '.join(f.partitions)}")
    lines.append(f"    SQL: {f.sql}")
    if f.id in in_place:
        lines.append("    read in place: DataFusion scans the files inside the residual plan")
    if engines and f.id in engines:
        lines.append(f"    engine: {engines[f.id]}")
    if f.estimated_rows is not None or filtered is not None:
        before = f"{f.estimated_rows:,} rows" if f.estimated_rows is not None else "rows unknown"
        after = f", {filtered:,} after its dynamic filters" if filtered is not None else ""
        lines.append(f"    estimated: {before}{after}")
    if fragment_stats and f.id in fragment_stats:
        s = fragment_stats[f.id]
        # the run's estimate: unfiltered when no planned filter was sent, or when read in place (its scan's rows
        # are counted before the semi-join)
        judged = f.estimated_rows if f.id in in_place else s.get("estimated_rows")
        off = estimate_error(judged if judged is not None else filtered if filtered is not None else f.estimated_rows,
                             s.get("rows"))
        lines.append(f"    returned: {s.get('rows')} rows, {s.get('bytes')} bytes"
                     + (f" (estimate off by {off:.1f}x)" if off is not None and off >= 2 else ""))
        if s.get("dynamic_filter"):
            lines.append(f"    dynamic filter: {s['dynamic_filter']}")
    return lines


def _top_n_fallback_lines(fallback: TopNFallback, run: str | None) -> list[str]:
    """EXPLAIN's note on a top-N pushed below an inner join (``FederatedPlan.explain``)."""
    lines = [f"  top-N below an inner join: {fallback.fragment} reads the first {fallback.fetched:,} rows of its "
             f"table; if it returns all of them and the result has fewer than {fallback.rows:,} rows, the result "
             "is discarded and the fallback plan runs (the query without this pushdown)"]
    if run is not None:
        lines.append(f"    fallback: {run}")
    return lines


def _join_lines(joins: Sequence[dict]) -> list[str]:
    """EXPLAIN ANALYZE's lines for the joins a residual plan ran (``FederatedPlan.explain``), each with the
    planner's estimate where a planned join matched it (``estimated_rows``, ``planner.join_estimates.match``)."""
    if not joins:
        return []
    lines = ["    joins run (actual rows, DataFusion's metrics; outermost first):"]
    for j in joins:
        build = f", build side {j['build_rows']:,} rows" if j.get("build_rows") is not None else ""
        rows = f"{j['rows']:,}" if j.get("rows") is not None else "?"
        estimated = j.get("estimated_rows")
        off = estimate_error(estimated, j.get("rows"))
        guess = "" if estimated is None else f", estimated {estimated:,}" + (
            f" (off by {off:.1f}x)" if off is not None and off >= 2 else "")
        lines.append(f"      {j['type']} {j['operator']}" + (f" on {j['on']}" if j.get("on") else "")
                     + f": {rows} rows{guess}{build}")
    return lines


def estimate_error(estimated: float | None, actual: int | None) -> float | None:
    """How far an estimate was off, as a factor >= 1 (``max(e, a) / min(e, a)``, each at least one row);
    None when either is unknown.

        >>> estimate_error(100, 1000), estimate_error(50, 5), estimate_error(None, 3)
        (10.0, 10.0, None)
    """
    if estimated is None or actual is None:
        return None
    low, high = sorted((max(float(estimated), 1.0), max(float(actual), 1.0)))
    return high / low


def bind(plan: FederatedPlan, params: Sequence[object] | None) -> FederatedPlan:
    """The plan with its ``$n`` parameters replaced by typed literals, SQL rendered per dialect.

    A plan without parameters is returned as is (plans are immutable once built).
    """
    if not params:
        return plan

    def described(text: str) -> str:  # EXPLAIN's descriptions show the values, not $n
        return re.sub(r"\$(\d+)", lambda m: literal(params[int(m.group(1)) - 1]).sql(), text)

    fragments = []
    for f in plan.fragments:
        if f.ast is not None and f.ast.find(exp.Parameter):
            bound = substitute_parameters(f.ast, params)
            f = dataclasses.replace(f, ast=bound, sql=bound.sql(dialect=f.dialect),
                                    pushed=[described(p) for p in f.pushed])
        fragments.append(f)
    residual = plan.residual_sql
    if plan.residual_ast is not None and plan.residual_ast.find(exp.Parameter):
        residual = substitute_parameters(plan.residual_ast, params).sql(dialect=RESIDUAL_DIALECT)
    not_pushed = [NotPushed(described(n.what), n.reason) for n in plan.not_pushed]
    local_filters = {
        fid: LocalFilter(local.alias, substitute_parameters(local.condition, params))
        for fid, local in plan.local_filters.items()
    }
    fallback = plan.top_n_fallback
    if fallback is not None:
        fallback = dataclasses.replace(fallback, plan=bind(fallback.plan, params))
    return dataclasses.replace(plan, fragments=fragments, residual_sql=residual, not_pushed=not_pushed,
                               local_filters=local_filters, top_n_fallback=fallback)
