"""Parquet, CSV and Delta sources on an S3-compatible server (moto, started by the ``s3`` fixture): the same
answers as over local copies, Hive partitions pruned, last-modified/size fingerprints, new objects seen at
``max_staleness_s = 0``, and clear ``source_unavailable`` errors for wrong credentials or a missing bucket."""

from __future__ import annotations

import secrets

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from gateway.errors import SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.lakehouse import support
from tests.lakehouse.support import assert_same_as_local, orders, rows, write_copies


@pytest.fixture(scope="module")
def lake(s3, tmp_path_factory):
    """The same data under s3://bucket/<prefix>/ and in a local folder: orders (Hive-partitioned Parquet),
    regions (one Parquet object), rates (CSV) and events (a Delta table)."""
    prefix = f"run-{secrets.token_hex(3)}"
    local = tmp_path_factory.mktemp("s3copy")
    write_copies(s3.filesystem(), f"{s3.bucket}/{prefix}", local)
    events = pa.table({"id": list(range(20)), "kind": ["a", "b"] * 10})
    write_deltalake(str(local / "delta" / "events"), events, partition_by=["kind"])
    write_deltalake(f"s3://{s3.bucket}/{prefix}/delta/events", events, partition_by=["kind"],
                    storage_options=s3.storage_options())
    return {"prefix": prefix, "local": local}


def _engine(s3, lake, remote: bool = True, **options) -> QueryEngine:
    def path(kind: str) -> str:
        return f"s3://{s3.bucket}/{lake['prefix']}/{kind}" if remote else str(lake["local"] / kind)

    extra = s3.options(**options) if remote else {}
    raw = {"sources": [{"name": "pq", "kind": "parquet", "path": path("pq"), **extra},
                       {"name": "rates", "kind": "csv", "path": path("csv"), **extra},
                       {"name": "dl", "kind": "delta", "path": path("delta"), **extra}]}
    return QueryEngine(settings_from_dict(raw, base_dir=lake["local"]))


QUERIES = [
    *support.QUERIES,
    "SELECT e.kind, COUNT(*) AS c FROM dl.events e JOIN rates.rates x ON e.id = x.r_id GROUP BY e.kind ORDER BY 1",
]


def test_same_answers_as_local_copies(s3, lake):
    assert_same_as_local(_engine(s3, lake), _engine(s3, lake, remote=False), QUERIES)


def test_hive_pruning_and_new_objects_seen(s3, lake):
    engine = _engine(s3, lake, cache_fingerprint=True)
    conn = engine.catalog.connector("pq")
    sql = "SELECT COUNT(*) AS c FROM pq.orders WHERE year = 2024"
    assert rows(engine, sql, max_staleness_s=0) == [{"c": 50}]
    before = conn.partition_fingerprint("main", "orders", "year=2024")
    pq.write_table(orders(2024, 5), f"{s3.bucket}/{lake['prefix']}/pq/orders/year=2024/part-1.parquet",
                   filesystem=s3.filesystem())
    assert conn.partition_fingerprint("main", "orders", "year=2024") != before
    assert rows(engine, sql, max_staleness_s=0) == [{"c": 55}]


def test_wrong_credentials_are_refused_naming_the_source(s3, lake):
    engine = _engine(s3, lake, secret_access_key="wrong-secret")
    for table in ("pq.orders", "dl.events"):
        with pytest.raises(SourceUnavailableError, match=r"source '(pq|dl)' is unavailable: .*refused the "
                                                         r"credentials \(authentication failed"):
            engine.catalog.connector(table.split(".")[0]).list_tables("main")


def test_missing_bucket_is_unavailable(s3, lake, tmp_path):
    raw = {"sources": [{"name": "nobucket", "kind": "parquet", "path": "s3://no-such-bucket-x/data", **s3.options()},
                       {"name": "nodelta", "kind": "delta", "path": "s3://no-such-bucket-x/d", **s3.options()}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    for name in ("nobucket", "nodelta"):
        with pytest.raises(SourceUnavailableError, match=f"source '{name}' is unavailable: the bucket "
                                                         "'no-such-bucket-x' does not exist"):
            engine.catalog.connector(name).list_tables("main")
