"""Parquet and CSV sources on Azure Blob Storage (Azurite, started by the ``azurite`` fixture): the same answers as
over local copies, Hive partitions listed and pruned, last-modified/size fingerprints, new objects seen at
``max_staleness_s = 0``, settings from the config (``${VAR}``) or the standard environment variables, and clear
``source_unavailable`` errors for a wrong key or a missing container."""

from __future__ import annotations

import pytest

from gateway.errors import SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.lakehouse import support
from tests.lakehouse.support import assert_same_as_local, rows


@pytest.fixture(scope="module")
def lake(azurite, tmp_path_factory):
    """The same data under az://container/<prefix>/ and in a local folder (``support.copies_in_store``)."""
    return support.copies_in_store(azurite, azurite.container, tmp_path_factory.mktemp("azcopy"))


def _engine(azurite, lake, remote: bool = True, **options) -> QueryEngine:
    return support.store_engine(azurite, f"az://{azurite.container}", lake, remote, **options)


def test_same_answers_as_local_copies(azurite, lake):
    assert_same_as_local(_engine(azurite, lake), _engine(azurite, lake, remote=False), support.STORE_QUERIES)


def test_hive_pruning_fingerprints_and_new_objects_seen(azurite, lake):
    support.check_partitions_and_new_objects(_engine(azurite, lake, cache_fingerprint=True), azurite,
                                             azurite.container, lake)


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
