"""Parquet and CSV sources on Azure Blob Storage (Azurite, started by the ``azurite`` fixture): the same answers as
over local copies, Hive partitions listed and pruned, last-modified/size fingerprints, new objects seen at
``max_staleness_s = 0``, settings from the config (``${VAR}``) or the standard environment variables, and clear
``source_unavailable`` errors for a wrong key or a missing container."""

from __future__ import annotations

import secrets

import pyarrow.parquet as pq
import pytest

from gateway.errors import SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.lakehouse import support
from tests.lakehouse.support import assert_same_as_local, orders, rows, write_copies


@pytest.fixture(scope="module")
def lake(azurite, tmp_path_factory):
    """The same data under az://container/<prefix>/ and in a local folder: orders (Hive-partitioned Parquet),
    regions (one Parquet object) and rates (CSV)."""
    prefix = f"run-{secrets.token_hex(3)}"
    local = tmp_path_factory.mktemp("azcopy")
    write_copies(azurite.filesystem(), f"{azurite.container}/{prefix}", local)
    return {"prefix": prefix, "local": local}


def _engine(azurite, lake, remote: bool = True, **options) -> QueryEngine:
    def path(kind: str) -> str:
        return f"az://{azurite.container}/{lake['prefix']}/{kind}" if remote else str(lake["local"] / kind)

    extra = azurite.options(**options) if remote else {}
    raw = {"sources": [{"name": "pq", "kind": "parquet", "path": path("pq"), **extra},
                       {"name": "rates", "kind": "csv", "path": path("csv"), **extra}],
           "limits": {"in_place_min_rows": 0}}  # the residual session reads the az:// files in place too
    return QueryEngine(settings_from_dict(raw, base_dir=lake["local"]))


QUERIES = [
    *support.QUERIES,
    "SELECT o.year, SUM(x.rate) AS s FROM pq.orders o JOIN rates.rates x ON o.o_id % 2 + 1 = x.r_id "
    "GROUP BY o.year ORDER BY o.year",
]


def test_same_answers_as_local_copies(azurite, lake):
    assert_same_as_local(_engine(azurite, lake), _engine(azurite, lake, remote=False), QUERIES)


def test_hive_pruning_fingerprints_and_new_objects_seen(azurite, lake):
    engine = _engine(azurite, lake, cache_fingerprint=True)
    conn = engine.catalog.connector("pq")
    sql = "SELECT COUNT(*) AS c FROM pq.orders WHERE year = 2024"
    assert rows(engine, sql, max_staleness_s=0) == [{"c": 50}]
    assert "year=2023" not in conn.partition_fingerprint("main", "orders", "year=2024")
    before = {p: conn.partition_fingerprint("main", "orders", p) for p in ("year=2023", "year=2024")}
    assert all(":" in f and not f.endswith(":0") for f in before.values())  # name:last-modified ns:size
    pq.write_table(orders(2024, 5), f"{azurite.container}/{lake['prefix']}/pq/orders/year=2024/part-1.parquet",
                   filesystem=azurite.filesystem())
    assert conn.partition_fingerprint("main", "orders", "year=2024") != before["year=2024"]
    assert conn.partition_fingerprint("main", "orders", "year=2023") == before["year=2023"]
    assert rows(engine, sql, max_staleness_s=0) == [{"c": 55}]


def test_settings_from_secrets_and_environment(azurite, lake, monkeypatch):
    """``${VAR}`` in the config, or nothing in the config and the standard ``AZURE_STORAGE_*`` variables; the
    ``abfs://container@account.dfs.core.windows.net`` form names the account in the URL."""
    monkeypatch.setenv("AZ_TEST_KEY", azurite.account_key)
    from_secret = _engine(azurite, lake, account_key="${AZ_TEST_KEY}")
    assert rows(from_secret, "SELECT COUNT(*) AS c FROM rates.rates") == [{"c": 2}]

    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", azurite.account_name)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", azurite.account_key)
    monkeypatch.setenv("AZURE_STORAGE_ENDPOINT", azurite.endpoint)
    raw = {"sources": [
        {"name": "env", "kind": "parquet", "path": f"az://{azurite.container}/{lake['prefix']}/pq"},
        {"name": "abfs", "kind": "csv", "endpoint": azurite.endpoint, "account_key": azurite.account_key,
         "path": f"abfss://{azurite.container}@{azurite.account_name}.dfs.core.windows.net/{lake['prefix']}/csv"}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=lake["local"]))
    assert rows(engine, "SELECT g.r_name, r.rate FROM env.regions g JOIN abfs.rates r ON g.r_id = r.r_id "
                         "ORDER BY g.r_id") == [{"r_name": "north", "rate": 0.5}, {"r_name": "south", "rate": 0.25}]


def test_wrong_key_is_refused_naming_the_source(azurite, lake):
    wrong = "d3Jvbmcta2V5LW9mLXRoZS1yaWdodC1sZW5ndGgtZm9yLWF6dXJpdGUtdGVzdHMtMDAwMDAwMDAwMDA="
    engine = _engine(azurite, lake, account_key=wrong)
    with pytest.raises(SourceUnavailableError, match=r"source 'pq' is unavailable: .*refused the credentials "
                                                     r"\(authentication failed for container"):
        engine.catalog.connector("pq").list_tables("main")


def test_missing_container_is_unavailable(azurite, tmp_path):
    raw = {"sources": [{"name": "nocontainer", "kind": "parquet", "path": "az://no-such-container-x/data",
                        **azurite.options()}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    with pytest.raises(SourceUnavailableError, match="source 'nocontainer' is unavailable: the container "
                                                     "'no-such-container-x' does not exist"):
        engine.catalog.connector("nocontainer").list_tables("main")
