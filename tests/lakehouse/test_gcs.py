"""Parquet and CSV sources on Google Cloud Storage (gcp-storage-emulator, started by the ``gcs`` fixture; read
through pyarrow's GCS filesystem into DataFusion, see ``connectors.objectstore_gcs``): the same answers as over
local copies, Hive partitions listed and pruned, last-modified/size fingerprints, new objects seen at
``max_staleness_s = 0``, the endpoint from the environment, and clear ``source_unavailable`` errors for a missing
bucket, an unreachable endpoint or an unusable key file."""

from __future__ import annotations

import json
import secrets

import pyarrow.parquet as pq
import pytest

from gateway.errors import ConfigError, SourceQueryError, SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.demo_support import free_port
from tests.lakehouse import support
from tests.lakehouse.support import assert_same_as_local, orders, rows


@pytest.fixture(scope="module")
def lake(gcs, tmp_path_factory):
    """The same data under gs://bucket/<prefix>/ and in a local folder (``support.copies_in_store``)."""
    return support.copies_in_store(gcs, gcs.bucket, tmp_path_factory.mktemp("gcscopy"))


def _engine(gcs, lake, remote: bool = True, **options) -> QueryEngine:
    return support.store_engine(gcs, f"gs://{gcs.bucket}", lake, remote, **options)


def test_same_answers_as_local_copies(gcs, lake):
    assert_same_as_local(_engine(gcs, lake), _engine(gcs, lake, remote=False), support.STORE_QUERIES)


def test_hive_pruning_fingerprints_and_new_objects_seen(gcs, lake):
    support.check_partitions_and_new_objects(_engine(gcs, lake, cache_fingerprint=True), gcs,
                                             gcs.bucket, lake)


def test_endpoint_from_the_environment(gcs, lake, monkeypatch):
    """Nothing in the config but ``anonymous``: the endpoint from ``STORAGE_EMULATOR_HOST`` (a bare host:port, as
    Google's clients take it)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint.removeprefix("http://"))
    raw = {"sources": [{"name": "env", "kind": "parquet", "anonymous": True,
                        "path": f"gs://{gcs.bucket}/{lake['prefix']}/pq"}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=lake["local"]))
    assert rows(engine, "SELECT r_name FROM env.regions ORDER BY r_id") == [{"r_name": "north"}, {"r_name": "south"}]


def test_missing_bucket_and_unreachable_endpoint_are_unavailable(gcs, tmp_path):
    raw = {"sources": [{"name": "nobucket", "kind": "parquet", "path": "gs://no-such-bucket-x/data", **gcs.options()},
                       {"name": "down", "kind": "csv", "path": f"gs://{gcs.bucket}/x",
                        **gcs.options(endpoint=f"http://127.0.0.1:{free_port()}")}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    with pytest.raises(SourceUnavailableError, match="source 'nobucket' is unavailable: the bucket "
                                                     "'no-such-bucket-x' does not exist"):
        engine.catalog.connector("nobucket").list_tables("main")
    with pytest.raises(SourceUnavailableError, match="source 'down' is unavailable: the object store endpoint "
                                                     "cannot be reached"):
        engine.catalog.connector("down").list_tables("main")


def test_unusable_key_file_is_refused_naming_the_source(gcs, lake, tmp_path):
    """A ``credentials_file`` reaches the GCS client (which cannot sign with this key) instead of the anonymous
    access the emulator would allow."""
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "client_email": "gateway@example.iam.gserviceaccount.com",
                               "private_key_id": "1", "private_key": "not a key", "token_uri": f"{gcs.endpoint}/token"}))
    raw = {"sources": [{"name": "keyed", "kind": "parquet", "path": f"gs://{gcs.bucket}/{lake['prefix']}/pq",
                        "endpoint": gcs.endpoint, "credentials_file": str(key)}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    with pytest.raises(SourceUnavailableError, match=r"source 'keyed' is unavailable: the object store refused the "
                                                     r"credentials \(authentication failed for bucket"):
        engine.catalog.connector("keyed").list_tables("main")


def test_gs_is_for_the_file_kinds_only(tmp_path):
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: 'gs://' is not a supported location"):
        settings_from_dict({"sources": [{"name": "d", "kind": "delta", "path": "gs://bucket/x"}]}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"sources\[0\]\.credentials_file: not an option of a 'delta' source"):
        settings_from_dict({"sources": [{"name": "d", "kind": "delta", "path": "s3://b/x", "credentials_file": "k"}]},
                           base_dir=tmp_path)


def test_hive_values_prune_objects(gcs, tmp_path):
    """An unreadable object under ``year=2025`` fails only the queries that need that partition."""
    prefix = f"prune-{secrets.token_hex(3)}"
    fs = gcs.filesystem()
    for year in (2023, 2024):
        pq.write_table(orders(year, 10), f"{gcs.bucket}/{prefix}/pq/orders/year={year}/part-0.parquet", filesystem=fs)
    with fs.open_output_stream(f"{gcs.bucket}/{prefix}/pq/orders/year=2025/part-0.parquet") as out:
        out.write(b"not parquet")
    raw = {"sources": [{"name": "pq", "kind": "parquet", "path": f"gs://{gcs.bucket}/{prefix}/pq", **gcs.options()}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    assert rows(engine, "SELECT COUNT(*) AS c FROM pq.orders WHERE year = 2024") == [{"c": 10}]
    assert rows(engine, "SELECT COUNT(*) AS c FROM pq.orders WHERE year < 2025") == [{"c": 20}]
    with pytest.raises(SourceQueryError, match="source 'pq'"):
        rows(engine, "SELECT COUNT(*) AS c FROM pq.orders WHERE year = 2025")
