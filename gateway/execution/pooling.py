"""Memory pools for whole queries pushed to a source that computes in this process (DataFusion over files).

``pooled`` gives such a fragment a pool reserved from its query's ``MemoryAccount``, as a residual plan gets
one, unless it streams (``holds_rows``) or its input is small (``small_input``).
"""

from __future__ import annotations

import dataclasses
import threading

from sqlglot import exp

from catalog import Catalog, TableRef
from connectors.base import Fragment
from gateway.errors import QueryCancelledError
from gateway.execution.memory import MemoryAccount
from gateway.settings import Settings

#: operators whose memory grows with their input: joins, aggregation, sorts, DISTINCT, windows, sub-queries
_HOLDING = (exp.Join, exp.Group, exp.AggFunc, exp.Order, exp.Distinct, exp.Window, exp.Intersect, exp.Except,
            exp.Subquery, exp.Exists)


def holds_rows(fragment: Fragment) -> bool:
    """Whether running ``fragment`` may hold rows in memory (an operator of ``_HOLDING``, or a UNION without
    ALL); True when its tree is unknown. ``SELECT a FROM t WHERE b > 1 LIMIT 10`` streams: False."""
    tree = fragment.ast
    if tree is None:
        return True
    return any(isinstance(node, _HOLDING) or (isinstance(node, exp.Union) and node.args.get("distinct"))
               for node in tree.walk())


def pooled(fragment: Fragment, memory: MemoryAccount | None, cancel: threading.Event, catalog: Catalog,
           settings: Settings) -> Fragment:
    """A whole query pushed to a source that computes in this process (``local_compute``: DataFusion over
    files) runs in a memory pool reserved from the query's ``memory`` account, as a residual plan does
    (``limits.memory_bytes`` or what is left, waiting up to ``limits.queue_timeout_s`` for
    ``limits.min_query_memory_bytes``), when it holds rows (``holds_rows``). In the source's shared
    session stay: a scan that only filters and projects (it streams), and a query without joins over at
    most ``limits.light_query_max_rows`` rows in all (its memory is bounded by that input; its own
    session would cost it ~2 ms, 35% of a 6 ms aggregation over 5 files, in the files' footers that the
    shared session caches).

    Raises:
        ResourceLimitError: the budget kept less than ``limits.min_query_memory_bytes`` free (HTTP 507).
        QueryCancelledError: the query was cancelled while it waited for memory.
    """
    limits = settings.limits
    if memory is None or not holds_rows(fragment) or small_input(fragment, catalog, limits.light_query_max_rows) \
            or not catalog.connector(fragment.source).capabilities.local_compute:
        return fragment
    pool = memory.reserve_pool(limits.memory_bytes, min(limits.min_query_memory_bytes, limits.memory_bytes),
                               wait_s=limits.queue_timeout_s, cancel=cancel)
    if not pool:
        raise QueryCancelledError("the query was cancelled while it waited for memory")
    return dataclasses.replace(fragment, memory_bytes=pool, spill_path=limits.spill_path or None)


def small_input(fragment: Fragment, catalog: Catalog, max_rows: int) -> bool:
    """Whether ``fragment`` joins nothing and its tables hold at most ``max_rows`` rows in all
    (``limits.light_query_max_rows``), by the catalog's statistics (unknown: not small)."""
    if fragment.ast is None or fragment.ast.find(exp.Join) is not None:
        return False
    rows = 0
    for name in fragment.tables:
        try:
            rows += catalog.statistics(TableRef(*name.split(".", 2))).rows
        except Exception:  # unknown rows (None), an unknown table: not small
            return False
    return rows <= max_rows
