"""What travels between the coordinator and the workers: picklable descriptors, never plans or connections.

    SplitTask(stage="scan f1", index=0, count=4, source=SourceSpec("pg", "postgresql", {...}),
              sql='SELECT ... FROM "tpch"."orders" AS "orders" WHERE "orders"."ctid" >= CAST(\'(0,0)\' AS tid) ...',
              dialect="postgres", schema=<the fragment's Arrow schema>, tables=("pg.tpch.orders",))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class SourceSpec:
    """How a worker builds its own connector: the source's name, kind and options (``SourceConfig.options()``).
    Options may hold credentials expanded from the coordinator's environment (``${VAR}``); Ray ships them to
    the cluster's own workers only."""

    name: str
    kind: str
    options: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class SplitTask:
    """One split of one fragment, run as one Ray task.

    Attributes:
        stage: the stage it belongs to, e.g. ``scan f1`` (named in errors and EXPLAIN ANALYZE).
        index, count: this split's position among the fragment's splits (0-based) and their number.
        source: the connector to build (``SourceSpec``).
        sql: the fragment's SQL in the source's ``dialect`` with the split's predicate (a ctid page range, a
            primary-key range), or the whole fragment when ``partition`` restricts it.
        schema: the fragment's output Arrow schema; batches are conformed to it by the connector.
        tables: ``source.schema.table`` names read.
        partition: ``(schema, table, partition)``: the worker restricts the fragment's FROM table to this
            partition of its own connector (a file of a file source), or None.
    """

    stage: str
    fragment_id: str
    index: int
    count: int
    source: SourceSpec
    sql: str
    dialect: str
    schema: pa.Schema
    tables: tuple[str, ...]
    partition: tuple[str, str, str] | None = None

    @property
    def name(self) -> str:
        """``scan f1 split 2/4 (source 'pg')``: how errors name the task."""
        return f"{self.stage} split {self.index + 1}/{self.count} (source '{self.source.name}')"


@dataclass(frozen=True)
class SplitResult:
    """What a task returns: its rows (``table``, None when it failed), the node and process it ran on, seconds
    spent, and a failure as data (``error_code``, ``error``: a ``GatewayError.code`` and message; exceptions
    are not pickled across processes)."""

    table: pa.Table | None
    node: str
    pid: int
    seconds: float
    error_code: str | None = None
    error: str | None = None
