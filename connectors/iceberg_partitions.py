"""The partitions of an Iceberg table as the partition cache sees them: the data-file set of each partition value.

A partitioned table's current snapshot is planned once (pyiceberg's ``plan_files``: its manifests); each data file
belongs to the partition named by its partition record under the spec it was written with, as Iceberg writes it in
paths (``PartitionSpec.partition_to_path``): ``region=north``, ``ts_day=2024-05-01/id_bucket=3``. Files written
under an older spec (partition evolution) are named with it: ``spec-0`` (unpartitioned), ``spec-1/region=north``.

A partition's fingerprint is a digest of its data files (path, size in bytes, record count) and of the delete files
that apply to them, so an append, overwrite, delete or compaction that touches another partition leaves it as it
was; a partition is read by reading exactly its planned files (``read_tasks``), whatever the transform.

Plans are kept per snapshot id (a snapshot never changes), so asking for each partition's fingerprint plans the
table once per new snapshot::

    plans = PartitionPlans()
    plans.fingerprints(loaded)  # {"region=north": "9f0c...", "region=south": "1b2e..."}
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

#: the key under which a table node of a partition fragment carries its partition name (``exp.Table.meta``)
PARTITION_META = "iceberg_partition"


def partition_name(metadata: Any, task: Any) -> str:
    """The partition of one planned file (a ``FileScanTask``) of a table whose ``TableMetadata`` is ``metadata``:
    ``partition_to_path`` under the file's spec, prefixed with ``spec-<id>/`` when that is not the current spec."""
    spec = metadata.specs()[task.file.spec_id]
    path = spec.partition_to_path(task.file.partition, metadata.schema()) if spec.fields else ""
    if task.file.spec_id == metadata.default_spec_id and path:
        return path
    return f"spec-{task.file.spec_id}" + (f"/{path}" if path else "")


def file_set_digest(tasks: Iterable[Any]) -> str:
    """A sha1 hex digest of the data files of ``tasks`` (path, bytes, records) and their delete files' paths,
    independent of the order they were planned in."""
    lines = sorted(f"{t.file.file_path}:{t.file.file_size_in_bytes}:{t.file.record_count}:"
                   + ",".join(sorted(d.file_path for d in t.delete_files)) for t in tasks)
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()


def partition_tasks(metadata: Any, tasks: Iterable[Any], partition: str) -> list[Any]:
    """The planned files of ``tasks`` that belong to ``partition``."""
    return [t for t in tasks if partition_name(metadata, t) == partition]


class PartitionPlans:
    """Each partitioned table's partitions and their fingerprints, per snapshot (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, tuple[int, dict[str, str]]] = {}  # table uuid -> (snapshot id, name -> digest)

    def fingerprints(self, loaded: Any) -> dict[str, str]:
        """``{partition: fingerprint}`` of the current snapshot of ``loaded`` (a pyiceberg ``Table``), sorted by
        name; empty for a table without data. Plans the snapshot's files once."""
        snapshot = loaded.current_snapshot()
        if snapshot is None:
            return {}
        key = str(loaded.metadata.table_uuid)
        with self._lock:
            known = self._plans.get(key)
            if known is not None and known[0] == snapshot.snapshot_id:
                return known[1]
        groups: dict[str, list[Any]] = {}
        for task in loaded.scan(snapshot_id=snapshot.snapshot_id).plan_files():
            groups.setdefault(partition_name(loaded.metadata, task), []).append(task)
        digests = {name: file_set_digest(groups[name]) for name in sorted(groups)}
        with self._lock:
            self._plans[key] = (snapshot.snapshot_id, digests)
        return digests


def read_tasks(scan: Any, tasks: list[Any], target: pa.Schema) -> pa.RecordBatchReader:
    """The rows of the planned files ``tasks`` of ``scan`` (a pyiceberg ``DataScan``: its projection, row filter
    and limit apply), streamed as ``target`` (the projection's Arrow schema with plain types)."""
    from pyiceberg.io.pyarrow import ArrowScan  # optional: the [lake] extra

    batches = ArrowScan(scan.table_metadata, scan.io, scan.projection(), scan.row_filter, scan.case_sensitive,
                        scan.limit).to_record_batches(tasks)
    return pa.RecordBatchReader.from_batches(target, (b if b.schema == target else b.cast(target) for b in batches))
