"""The conformance suite over the session's one data world (``world``, tests/conftest.py): its group ``cf``
(``items``, ``tags``: tests/world.py) in PostgreSQL, MariaDB, SQLite, Parquet, CSV, Delta and Iceberg, one
QueryEngine over the seven, and the ``source`` fixture parametrized over them (Ibis's backend suite is the
model: every test that takes ``source`` runs once per source kind).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pytest

from tests.sources import SOURCE_KINDS as KINDS

GROUP = "cf"


@dataclass
class Source:
    """One source of the world as a test sees it.

    ``name`` is the source's catalog name (``pg``, ``maria``, ``lite``, ``pq``, ``csv``), ``kind`` its kind,
    ``capabilities`` and ``dialect`` what its connector declares, ``scans`` its tables as the gateway reads
    them (``SELECT *``), ``reference`` a DataFusion session holding exactly those tables under their plain
    names, ``read_as_text`` the columns its catalog marks as read as text (never computed on in the source)."""

    name: str
    kind: str
    prefix: str
    engine: object
    capabilities: object
    dialect: str
    scans: dict[str, pa.Table]
    reference: object
    read_as_text: dict[str, set[str]]  # per table, the columns the connector reads as text (no exact type)

    def gateway_sql(self, sql: str) -> str:
        """``sql`` with ``{items}``/``{tags}`` naming this source's tables."""
        return sql.format(items=f"{self.prefix}.items", tags=f"{self.prefix}.tags")

    def reference_sql(self, sql: str) -> str:
        return sql.format(items="items", tags="tags")


@pytest.fixture(scope="session")
def conformance_engine(world):
    from gateway.execution.engine import QueryEngine

    engine = QueryEngine(world.settings(lakehouse=True))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def sources(world, conformance_engine) -> dict[str, Source]:
    """Every source of the world, each with its DataFusion reference over the tables as scanned."""
    from datafusion import SessionContext

    out = {}
    for name, kind in KINDS.items():
        prefix = world.prefix(name, GROUP)
        connector = conformance_engine.catalog.connector(name)
        ctx = SessionContext()
        scans, as_text = {}, {}
        for table in world.group(GROUP):
            schema = connector.table_schema(prefix.split(".", 1)[1], table)
            as_text[table] = {f.name for f in schema if (f.metadata or {}).get(b"gateway.read_as_text") == b"1"}
            scans[table] = conformance_engine.execute(f"SELECT * FROM {prefix}.{table}").reader.read_all()
            ctx.register_record_batches(table, [scans[table].to_batches()])
        out[name] = Source(name, kind, prefix, conformance_engine, connector.capabilities, connector.dialect,
                           scans, ctx, as_text)
    return out


@pytest.fixture(params=list(KINDS))
def source(request, sources) -> Source:
    """Each source kind in turn (ids: pg, maria, lite, pq, csv)."""
    return sources[request.param]
