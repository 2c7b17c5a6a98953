"""The residual plan: run it in DataFusion over the registered fragments, bound its time, name its errors.

``run_residual`` registers every feed in a fresh session (``connectors.arrow.datafusion.session``) and streams
the residual SQL's batches conformed to the plan's schema; ``guarded_sql`` puts the session's kill switch into
every join, so that a cancelled or timed-out query stops computing at once. ``Deadline`` is a query's time limit.
``as_gateway_error`` turns whatever stopped a query into the one ``GatewayError`` a client sees.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence

import pyarrow as pa

from connectors.arrow import datafusion as df_boundary
from connectors.arrow import workers
from connectors.arrow.datafusion import TARGET_PARTITIONS, StreamCancelled
from connectors.arrow.streams import conform_batch
from gateway.errors import (
    ExecutionError,
    GatewayError,
    InvalidQueryError,
    QueryCancelledError,
    QueryTimeoutError,
    SourceQueryError,
)
from gateway.execution.feeds import Feed, InPlaceFeed
from gateway.execution.kill_switch import guarded_sql
from gateway.execution.memory import MemoryAccount, memory_error
from gateway.settings import LimitsConfig
from planner import FederatedPlan
from planner.join_estimates import JoinEstimate, match

log = logging.getLogger(__name__)


def run_residual(plan: FederatedPlan, feeds: list[Feed], limits: LimitsConfig, cancel: threading.Event,
                 memory: MemoryAccount | None = None, joins: list[dict] | None = None) -> Iterator[pa.RecordBatch]:
    """Register every feed (waiting for collected fragments) in a fresh session, plan the residual SQL and
    return its batches (``residual_batches``). The session's memory pool is reserved from ``memory`` (the
    query's account of the process-wide budget): ``limits.memory_bytes``, or what is left when less, waiting up
    to ``limits.queue_timeout_s`` for ``limits.min_query_memory_bytes``. Once the plan ran to its end, ``joins``
    (if given) receives each join it ran with its actual rows (``join_metrics``).

    Raises:
        ResourceLimitError: the budget kept less than ``limits.min_query_memory_bytes`` free (HTTP 507).
        QueryCancelledError: ``cancel`` was set while waiting.
    """
    pool = limits.memory_bytes
    if memory is not None:
        pool = memory.reserve_pool(limits.memory_bytes, min(limits.min_query_memory_bytes, limits.memory_bytes),
                                   wait_s=limits.queue_timeout_s, cancel=cancel)
        if not pool:
            raise QueryCancelledError("the query was cancelled while it waited for memory")
    # fragments are build sides of up to a few million rows: one shared hash table per join
    ctx = df_boundary.session(memory_bytes=pool, spill_path=limits.spill_path or None, broadcast_builds=True,
                              late_materialization=_late_materialization(feeds))
    df_boundary.register_kill_switch(ctx, cancel)  # first: in-place fragments guard their own joins with it
    for feed in feeds:
        feed.register(ctx, target_partitions=TARGET_PARTITIONS)
    first_columns = tuple((f.id, f.schema.names[0]) for f in plan.fragments if len(f.schema))
    guarded = guarded_sql(plan.residual_sql, first_columns)
    try:
        df = ctx.sql(guarded)
    except Exception as exc:  # DataFusion refused the guarded SQL: run the plan as it was (never expected)
        if guarded == plan.residual_sql:
            raise
        log.warning("residual SQL runs without its kill switch", extra={"error": str(exc).splitlines()[0]})
        df = ctx.sql(plan.residual_sql)
    return residual_batches(df, plan.schema, feeds, cancel, joins, plan.join_estimates)


def _late_materialization(feeds: list[Feed]) -> bool:
    """Whether the residual session's Parquet scans evaluate filters while decoding: some fragment read in place
    is cut to a small share by its keys (``Fragment.late_materialization``) and no other has conditions (the
    setting holds for every scan of the session, and a scan's own conditions lose by it)."""
    in_place = [feed.fragment for feed in feeds if isinstance(feed, InPlaceFeed)]
    return any(f.late_materialization for f in in_place) and all(
        f.late_materialization or f.ast is None or f.ast.args.get("where") is None for f in in_place)


def residual_batches(df, schema: pa.Schema, feeds: list[Feed], cancel: threading.Event,
                     joins: list[dict] | None = None,
                     estimates: Sequence[JoinEstimate] = ()) -> Iterator[pa.RecordBatch]:
    """The residual plan's batches conformed to ``schema``; once it ran to the end, the in-place fragments'
    rows and bytes are read off its executed plan, and ``joins`` receives its joins, each with the estimate of
    the planned join it matches (``estimates``: ``FederatedPlan.join_estimates``). Stops DataFusion's work
    when ``cancel`` is set (``connectors.arrow.datafusion.batches``) and raises QueryCancelledError."""
    try:
        for batch in df_boundary.batches(df, cancel):
            yield batch if batch.schema == schema else conform_batch(batch, schema)
    except StreamCancelled:
        df = None  # nor may this frame keep the plan (and its tasks) alive in the error's traceback
        raise QueryCancelledError("the query was cancelled") from None
    executed = df.execution_plan()
    record_scan_metrics(executed, feeds)
    if joins is not None:
        for ran in join_metrics(executed):
            planned = match(list(estimates), ran["type"], ran["on"])
            joins.append({**ran, "estimated_rows": planned.estimated_rows if planned is not None else None})


#: DataFusion's join operators (physical plan names)
_JOINS = ("HashJoinExec", "NestedLoopJoinExec", "SortMergeJoin", "CrossJoinExec", "SymmetricHashJoinExec")
_COLUMN_INDEX = re.compile(r"@\d+")


def join_metrics(plan) -> list[dict]:
    """Every join an executed residual ``plan`` (a ``datafusion.ExecutionPlan``) ran, in plan order (outermost
    first): ``{"operator": "HashJoinExec", "type": "Inner", "on": "o_custkey = c_custkey", "rows": n,
    "build_rows": n}``, rows from DataFusion's own metrics (``build_rows``: what its first input, the build
    side of a hash join, produced; None when not measured). Joins of in-place fragments count too."""
    found: list[dict] = []

    def visit(node) -> None:
        text = node.display()
        name = text.split(":", 1)[0]
        if name in _JOINS:
            metrics = node.metrics()
            children = node.children()
            build = children[0].metrics() if children else None
            found.append({
                "operator": name,
                "type": _display_field(text, "join_type") or "Inner",
                "on": ", ".join(f"{a} = {b}" for a, b in re.findall(r"\(([^,()]+), ([^,()]+)\)",
                                                                     _display_field(text, "on") or "")),
                "rows": metrics.output_rows if metrics is not None else None,
                "build_rows": build.output_rows if build is not None else None,
            })
        for child in node.children():
            visit(child)

    visit(plan)
    return found


def _display_field(text: str, name: str) -> str | None:
    """One ``name=value`` of an operator's one-line display (a bracketed value whole), column indexes cut."""
    match = re.search(rf"\b{name}=(\[[^\]]*\]|[^,]+)", text)
    return _COLUMN_INDEX.sub("", match.group(1)).strip("[]") if match else None


def record_scan_metrics(plan, feeds: list[Feed]) -> None:
    """Give each in-place fragment of an executed residual ``plan`` (a ``datafusion.ExecutionPlan``) the
    rows its file scans yielded after the filters applied at the scan (the FilterExec right above a
    DataSourceExec, else the scan's own output) and their Arrow bytes. A scan is matched to a fragment by the
    table named in its file paths; several fragments over one table take its scans in plan order."""
    in_place = [feed for feed in feeds if feed.stats.read_in_place]
    if not in_place:
        return
    for feed in in_place:
        feed.stats.rows = feed.stats.bytes = 0
    taken: set[tuple[int, str]] = set()

    def visit(node, above: list) -> None:
        text = node.display()
        if text.startswith("DataSourceExec"):
            _count_scan(node, above, text, in_place, taken)
        for child in node.children():
            visit(child, [*above, node])

    visit(plan, [])


def _count_scan(node, above: list, text: str, in_place: list[Feed], taken: set[tuple[int, str]]) -> None:
    """Add one DataSourceExec's output (or that of the filter right above it) to the fragment it reads."""
    counted = node
    for ancestor in reversed(above):  # through repartitions to a filter, if any
        if ancestor.display().startswith("FilterExec"):
            counted = ancestor
        if not ancestor.display().startswith(("RepartitionExec", "CoalesceBatchesExec")):
            break
    metrics = counted.metrics()
    matches = [(feed, table) for feed in in_place
               for table in (t.rsplit(".", 1)[-1] for t in feed.fragment.tables)
               if f"/{table}/" in text or f"/{table}." in text]
    if matches and metrics is not None:
        feed, table = next((m for m in matches if (id(m[0]), m[1]) not in taken), matches[0])
        taken.add((id(feed), table))
        feed.stats.rows += metrics.output_rows or 0
        feed.stats.bytes += sum(m.value or 0 for m in metrics.metrics() if m.name == "output_bytes")


class Deadline:
    """A query's time limit: past ``timeout_s`` seconds it sets ``cancel`` and cancels the source statements
    of ``feeds``; ``error()`` then says which of timeout or cancellation stopped the query."""

    def __init__(self, timeout_s: float, cancel: threading.Event) -> None:
        self.timeout_s = timeout_s
        self.feeds: list[Feed] = []
        self._cancel = cancel
        self._expired = threading.Event()
        self._timer = workers.call_later(timeout_s, self._expire) if timeout_s and timeout_s > 0 else None

    def _expire(self) -> None:
        self._expired.set()
        self._cancel.set()
        for feed in self.feeds:
            feed.cancel_source()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def error(self) -> GatewayError:
        if self._expired.is_set():
            return QueryTimeoutError(f"the query ran longer than its time limit of {self.timeout_s:g} s "
                                     "(limits.query_timeout_s or the query's timeout)", timeout_s=self.timeout_s)
        return QueryCancelledError("the query was cancelled")


#: DataFusion errors that come from reading files (an in-place fragment's source), not from the plan itself
_FILE_ERROR = re.compile(r"Parquet|IO error|Object ?Store|CSV error|No such file", re.IGNORECASE)
#: DataFusion errors caused by the query's own values (InvalidQueryError, 400): division by zero, a value that
#: does not cast, overflow, a string that does not parse as a date/time, a function's argument out of range
_QUERY_ERROR = re.compile(r"Divide by zero|Cast error|overflow|Parser error|Compute error|out of range|"
                          r"not allowed|regex parse error|Invalid regex", re.IGNORECASE)
#: a source's own report that the query's values failed (a file source runs DataFusion too): the client's error
_SOURCE_VALUE_ERROR = re.compile(r"Divide by zero|division by zero|Arithmetic overflow", re.IGNORECASE)
#: DataFusion's memory pool (limits.memory_bytes) refused an allocation
_RESOURCES_ERROR = re.compile(r"Resources exhausted", re.IGNORECASE)
#: DataFusion's wrappings in front of the reason
_DATAFUSION_PREFIX = re.compile(r"^(?:DataFusion error|Arrow error|External error|Execution error|Compute error)"
                                r":\s*")
_DATAFUSION_WRAPPING = re.compile(r"(?:DataFusion|Arrow|External) error:\s*")


def _datafusion_reason(exc: BaseException) -> str:
    """DataFusion's innermost reason (the last ``caused by`` line), without its ``DataFusion error:`` /
    ``Arrow error:`` wrappings: ``Divide by zero error``, ``Cast error: Cannot cast string 'x' to ...``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and line.strip() != "caused by"]
    reason = lines[-1] if lines else repr(exc)
    while (shorter := _DATAFUSION_PREFIX.sub("", reason, count=1)) != reason:
        reason = shorter
    return reason


def _source_error(feeds: list[Feed]) -> GatewayError | None:
    """A fragment's own error, if one failed: a file source's DataFusion pool exhausted is ResourceLimitError
    (507); the source's report that the query's values failed is the client's error (InvalidQueryError); any
    other is shown as the source gave it."""
    for feed in feeds:
        exhausted = _RESOURCES_ERROR.search(feed.error.message) if isinstance(feed.error, SourceQueryError) else None
        if exhausted:  # a whole query pushed to a file source ran out of the pool reserved for it (pooling.pooled)
            return memory_error(f"the query needs more memory than its pool (limits.memory_bytes, within "
                                f"limits.process_memory_bytes) allows in source '{feed.error.source}': "
                                f"{feed.error.message[exhausted.start():]}", source=feed.error.source)
        if isinstance(feed.error, SourceQueryError) and _SOURCE_VALUE_ERROR.search(feed.error.message):
            reason = feed.error.message.split("failed the query: ", 1)[-1]
            return InvalidQueryError(f"the query failed on its values in source '{feed.error.source}': "
                                     f"{_DATAFUSION_WRAPPING.sub('', reason)}", source=feed.error.source)
        if isinstance(feed.error, GatewayError):
            return feed.error
    return None


def as_gateway_error(exc: BaseException, feeds: list[Feed]) -> BaseException:
    """The error to show: a source's own error wins over DataFusion's wrapping of it; a failure inside the
    files an in-place fragment scans is that source's. The query's values failing (division by zero, a failed
    cast, overflow; in DataFusion, or a division by zero or overflow a source reports) is InvalidQueryError
    (400); DataFusion's memory limit ResourceLimitError; anything else of DataFusion's ExecutionError (500).
    Messages never carry a traceback or a path."""
    source_error = _source_error(feeds)
    if source_error is not None:
        return source_error
    in_place = [f for f in feeds if isinstance(f, InPlaceFeed) and f.stats.read_in_place]
    if len({f.fragment.source for f in in_place}) == 1 and _FILE_ERROR.search(str(exc)):
        feed = in_place[0]  # DataFusion's file errors do not name the file; one file source is in play
        return SourceQueryError(feed.fragment.source, str(exc).splitlines()[0], feed.fragment.sql)
    if isinstance(exc, GatewayError | GeneratorExit | KeyboardInterrupt):
        return exc
    if isinstance(exc, TimeoutError):
        return QueryTimeoutError(str(exc))
    if not isinstance(exc, pa.ArrowException):  # pyarrow's are the gateway's conformance of a fragment's batches
        if _RESOURCES_ERROR.search(str(exc)):
            return memory_error(f"the query needs more memory than its pool (limits.memory_bytes, within "
                                f"limits.process_memory_bytes) allows: {_datafusion_reason(exc)}")
        if _QUERY_ERROR.search(str(exc)):
            return InvalidQueryError(f"the query failed on its values: {_datafusion_reason(exc)}")
    return ExecutionError(f"the residual plan failed in DataFusion: {str(exc).splitlines()[0] if str(exc) else exc!r}")
