"""Small Parquet sources for tests of what DataFusion runs: an engine over folders written from Arrow tables,
a bare DataFusion session over the same tables (to keep a DataFusion defect's own check beside the fix), and
the two inputs sharing column names that DataFusion 55's name-based filter pushdown confuses."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.parquet as pq
from datafusion import SessionContext

from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict

#: ``a`` is the larger input (DataFusion builds its hash table on ``b``); both have ``s``, ``amt`` and ``k``
SHARED_NAMES_A = {"s": ["abc", "X", "zed", "Q", None, "m"] * 4,
                  "amt": [None, 1.0, None, None, 2.0, None, 3.0, None] * 3, "k": list(range(24))}
SHARED_NAMES_B = {"s": ["abc", "X", "zed", "q", None, "m"], "amt": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                  "k": [1, 2, 3, 4, 5, 6]}


def parquet_engine(tmp_path_factory, sources: Mapping[str, Mapping[str, pa.Table]]) -> QueryEngine:
    """A ``QueryEngine`` over one Parquet source per key of ``sources`` (source -> table -> rows), each a fresh
    folder holding ``<table>.parquet``. The caller closes it."""
    folders = {}
    for source, tables in sources.items():
        folders[source] = tmp_path_factory.mktemp(source)
        for table, rows in tables.items():
            pq.write_table(rows, folders[source] / f"{table}.parquet")
    settings = settings_from_dict({"sources": [{"name": s, "kind": "parquet", "path": str(f)}
                                               for s, f in folders.items()]}, base_dir=next(iter(folders.values())))
    return QueryEngine(settings)


def datafusion_over(tables: Mapping[str, Mapping[str, list]]) -> SessionContext:
    """A default DataFusion session holding each table (name -> column -> values) in memory."""
    ctx = SessionContext()
    for name, columns in tables.items():
        ctx.register_record_batches(name, [[pa.record_batch(dict(columns))]])
    return ctx
