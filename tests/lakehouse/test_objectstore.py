"""Parquet, CSV and Delta sources on an S3-compatible server (moto, started by the ``s3`` fixture): the same
answers as over local copies, Hive partitions pruned, last-modified/size fingerprints, new objects seen at
``max_staleness_s = 0``, and clear ``source_unavailable`` errors for wrong credentials or a missing bucket."""

from __future__ import annotations

import secrets

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from gateway.errors import SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict


def _orders(year: int, n: int) -> pa.Table:
    return pa.table({"o_id": pa.array([year * 1000 + i for i in range(n)], pa.int64()),
                     "o_total": pa.array([float(i) * 1.5 for i in range(n)]),
                     "o_note": pa.array([f"note {i}" for i in range(n)])})


@pytest.fixture(scope="module")
def lake(s3, tmp_path_factory):
    """The same data under s3://bucket/<prefix>/ and in a local folder: orders (Hive-partitioned Parquet),
    regions (one Parquet object), rates (CSV) and events (a Delta table)."""
    prefix = f"run-{secrets.token_hex(3)}"
    local = tmp_path_factory.mktemp("s3copy")
    fs = s3.filesystem()
    for year in (2023, 2024):
        (local / "pq" / "orders" / f"year={year}").mkdir(parents=True)
        pq.write_table(_orders(year, 50), local / "pq" / "orders" / f"year={year}" / "part-0.parquet")
        pq.write_table(_orders(year, 50), f"{s3.bucket}/{prefix}/pq/orders/year={year}/part-0.parquet", filesystem=fs)
    regions = pa.table({"r_id": [1, 2], "r_name": ["north", "south"]})
    pq.write_table(regions, local / "pq" / "regions.parquet")
    pq.write_table(regions, f"{s3.bucket}/{prefix}/pq/regions.parquet", filesystem=fs)
    rates = pa.table({"r_id": [1, 2], "rate": [0.5, 0.25]})
    (local / "csv").mkdir()
    pcsv.write_csv(rates, local / "csv" / "rates.csv")
    with fs.open_output_stream(f"{s3.bucket}/{prefix}/csv/rates.csv") as out:
        pcsv.write_csv(rates, out)
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


def _rows(engine: QueryEngine, sql: str, **kw) -> list[dict]:
    return engine.execute(sql, **kw).reader.read_all().to_pylist()


QUERIES = [
    "SELECT year, COUNT(*) AS c, SUM(o_total) AS t FROM pq.orders WHERE o_id % 7 = 1 GROUP BY year ORDER BY year",
    "SELECT o.o_id, r.r_name, x.rate FROM pq.orders o JOIN pq.regions r ON o.o_id % 2 + 1 = r.r_id "
    "JOIN rates.rates x ON x.r_id = r.r_id WHERE o.year = 2024 AND o.o_id < 2024005 ORDER BY o.o_id",
    "SELECT e.kind, COUNT(*) AS c FROM dl.events e JOIN rates.rates x ON e.id = x.r_id GROUP BY e.kind ORDER BY 1",
]


def test_same_answers_as_local_copies(s3, lake):
    remote, local = _engine(s3, lake), _engine(s3, lake, remote=False)
    assert remote.catalog.connector("pq").list_tables("main") == ["orders", "regions"]
    assert remote.catalog.connector("pq").partitions("main", "orders") == ["year=2023", "year=2024"]
    for sql in QUERIES:
        assert _rows(remote, sql) == _rows(local, sql), sql
    assert remote.catalog.connector("pq").statistics("main", "orders").rows == 100  # Parquet footers, read remotely


def test_hive_pruning_and_new_objects_seen(s3, lake):
    engine = _engine(s3, lake, cache_fingerprint=True)
    conn = engine.catalog.connector("pq")
    sql = "SELECT COUNT(*) AS c FROM pq.orders WHERE year = 2024"
    assert _rows(engine, sql, max_staleness_s=0) == [{"c": 50}]
    before = conn.partition_fingerprint("main", "orders", "year=2024")
    pq.write_table(_orders(2024, 5), f"{s3.bucket}/{lake['prefix']}/pq/orders/year=2024/part-1.parquet",
                   filesystem=s3.filesystem())
    assert conn.partition_fingerprint("main", "orders", "year=2024") != before
    assert _rows(engine, sql, max_staleness_s=0) == [{"c": 55}]


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
