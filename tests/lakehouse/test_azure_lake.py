"""Delta and Iceberg sources on Azure Blob Storage (Azurite, started by the ``azurite`` fixture), with the same
credential options as the Parquet kind on ``az://``: a Delta table written by deltalake and an Iceberg table
written by pyiceberg (SQL catalog on SQLite, warehouse in the container) are queried, and a new Delta version or
Iceberg snapshot written between queries is seen under ``max_staleness_s = 0``; a wrong key is refused naming the
source."""

from __future__ import annotations

import secrets

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyiceberg.catalog.sql import SqlCatalog

from connectors.objectstore import ObjectStore
from gateway.errors import SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.lakehouse.support import rows


def _events(start: int, n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "year": pa.array([2020 + i % 2 for i in range(start, start + n)], pa.int64()),
                     "amount": pa.array([i / 2 for i in range(start, start + n)])})


@pytest.fixture()
def prefix(azurite) -> str:
    return f"lake-{secrets.token_hex(3)}"


def _storage(azurite, prefix: str):
    return ObjectStore.from_options(f"az://{azurite.container}/{prefix}", azurite.options())


def test_delta_table_on_azure(azurite, prefix, tmp_path):
    store = _storage(azurite, prefix)
    uri = f"az://{azurite.container}/{prefix}/delta/events"
    write_deltalake(uri, _events(0, 40), partition_by=["year"], storage_options=store.storage_options())
    raw = {"sources": [{"name": "lake", "kind": "delta", "path": f"az://{azurite.container}/{prefix}/delta",
                        **azurite.options()}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    conn = engine.catalog.connector("lake")
    assert conn.list_tables("main") == ["events"]
    assert conn.partitions("main", "events") == ["year=2020", "year=2021"]
    sql = "SELECT year, COUNT(*) AS c, SUM(amount) AS s FROM lake.main.events GROUP BY year ORDER BY year"
    assert rows(engine, sql, max_staleness_s=0) == [{"year": 2020, "c": 20, "s": float(sum(range(0, 40, 2))) / 2},
                                                    {"year": 2021, "c": 20, "s": float(sum(range(1, 40, 2))) / 2}]
    write_deltalake(uri, _events(100, 4), mode="append", partition_by=["year"], storage_options=store.storage_options())
    assert conn.fingerprint("main", "events") == "v1"
    assert rows(engine, "SELECT COUNT(*) AS c FROM lake.main.events", max_staleness_s=0) == [{"c": 44}]
    assert rows(engine, "SELECT COUNT(*) AS c FROM lake.main.events FOR VERSION AS OF 0") == [{"c": 40}]

    wrong = "d3Jvbmcta2V5LW9mLXRoZS1yaWdodC1sZW5ndGgtZm9yLWF6dXJpdGUtdGVzdHMtMDAwMDAwMDAwMDA="
    raw["sources"][0]["account_key"] = wrong
    refused = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    with pytest.raises(SourceUnavailableError, match=r"source 'lake' is unavailable: .*refused the credentials"):
        refused.catalog.connector("lake").list_tables("main")


def test_iceberg_table_on_azure(azurite, prefix, tmp_path):
    store = _storage(azurite, f"{prefix}/wh")
    catalog_uri = f"sqlite:///{tmp_path}/catalog.db"
    catalog = SqlCatalog("azlake", uri=catalog_uri, warehouse=store.iceberg_warehouse(), **store.iceberg_properties())
    catalog.create_namespace("sales")
    table = catalog.create_table("sales.events", schema=_events(0, 2).schema)
    table.append(_events(0, 30))
    raw = {"sources": [{"name": "ice", "kind": "iceberg", "uri": catalog_uri, "catalog_name": "azlake",
                        "warehouse": f"az://{azurite.container}/{prefix}/wh", **azurite.options()}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    try:
        assert engine.catalog.connector("ice").list_tables("sales") == ["events"]
        sql = "SELECT COUNT(*) AS c, SUM(id) AS s FROM ice.sales.events WHERE year = 2021"
        assert rows(engine, sql, max_staleness_s=0) == [{"c": 15, "s": sum(range(1, 30, 2))}]
        table.append(_events(100, 2))
        assert rows(engine, sql, max_staleness_s=0) == [{"c": 16, "s": sum(range(1, 30, 2)) + 101}]
    finally:
        engine.close()
        catalog.engine.dispose()
