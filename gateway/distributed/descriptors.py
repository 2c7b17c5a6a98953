"""What travels between the coordinator and the workers: picklable descriptors, never plans or connections.

    SplitTask(stage="scan f1", index=0, count=4, source=SourceSpec("pg", "postgresql", {...}),
              sql='SELECT ... FROM "tpch"."orders" AS "orders" WHERE "orders"."ctid" >= CAST(\'(0,0)\' AS tid) ...',
              dialect="postgres", schema=<the fragment's Arrow schema>, tables=("pg.tpch.orders",))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from gateway.distributed.hashing import Keys


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
        tag: this attempt's mark (``gw-task-<hex>``), a comment in the SQL the source sees, so that the
            coordinator can cancel the statement of a task whose worker or node died
            (``Connector.cancel_tagged``); set at each submission.
        key_tables: ``(name, keys)`` pairs, the one-column key tables the SQL's semi-join restrictions read
            (``Fragment.key_tables`` of a file fragment restricted by a dynamic filter); the worker's fragment
            carries them to its connector.
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
    partitioning: HashPartitioning | None = None
    tag: str = ""
    key_tables: tuple[tuple[str, pa.Array], ...] = ()

    @property
    def name(self) -> str:
        """``scan f1 split 2/4 (source 'pg')``: how errors name the task."""
        return f"{self.stage} split {self.index + 1}/{self.count} (source '{self.source.name}')"

    @property
    def returns(self) -> int:
        """How many objects the task returns: its ``SplitResult``, then one table per hash partition."""
        return 1 + (self.partitioning.count if self.partitioning is not None else 0)


@dataclass(frozen=True)
class HashPartitioning:
    """Stage one of a join stage: a split task cuts its rows into ``count`` tables by the hash of ``keys``
    (``gateway.distributed.hashing.partition``; rows with a NULL key are dropped) and returns them as
    separate objects after its ``SplitResult``, which then carries only counts."""

    keys: Keys
    count: int


@dataclass(frozen=True)
class JoinTask:
    """Stage two of a join stage: partition ``index`` of both sides joined by ``sql`` (DataFusion SQL over
    the tables named in ``inputs``), one Ray task.

    Attributes:
        inputs: per side, in order, ``(table name, Arrow schema, number of parts)``: the task's input objects
            are that many tables of each side (the side's split tasks' partition ``index``), in this order.
        schema: the output's Arrow schema (``JoinPlan.schema``).
    """

    stage: str
    index: int
    count: int
    sql: str
    inputs: tuple[tuple[str, pa.Schema, int], ...]
    schema: pa.Schema

    @property
    def name(self) -> str:
        """``join __fragment_0 x __fragment_1 partition 2/4``: how errors name the task."""
        return f"{self.stage} partition {self.index + 1}/{self.count}"

    @property
    def returns(self) -> int:
        """One object: its ``SplitResult``."""
        return 1


@dataclass(frozen=True)
class SplitResult:
    """What a task returns: its rows (``table``, None when it failed), the node and process it ran on, seconds
    spent, and a failure as data (``error_code``, ``error``: a ``GatewayError.code`` and message; exceptions
    are not pickled across processes). A hash-partitioning split task returns no table: ``rows``/``bytes``
    read from its source, ``part_rows``/``part_bytes`` per partition, and ``parts``, the handles of its
    partitions (Ray object refs, or the tables themselves on a local executor), attached by the executor."""

    table: pa.Table | None
    node: str
    pid: int
    seconds: float
    error_code: str | None = None
    error: str | None = None
    rows: int = 0
    bytes: int = 0
    part_rows: tuple[int, ...] = ()
    part_bytes: tuple[int, ...] = ()
    parts: tuple = ()
