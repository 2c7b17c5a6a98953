"""What the lakehouse tests share: a query's rows, and the small lake written twice, to an object store and to a
local folder, that the S3 and Azure tests compare (``orders`` Hive-partitioned Parquet, ``regions`` one Parquet
object, ``rates`` CSV) with the queries they compare it by."""

from __future__ import annotations

import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict

#: queries over ``write_copies``'s tables (sources ``pq`` and ``rates``) answered the same remotely and locally
QUERIES = [
    "SELECT year, COUNT(*) AS c, SUM(o_total) AS t FROM pq.orders WHERE o_id % 7 = 1 GROUP BY year ORDER BY year",
    "SELECT o.o_id, r.r_name, x.rate FROM pq.orders o JOIN pq.regions r ON o.o_id % 2 + 1 = r.r_id "
    "JOIN rates.rates x ON x.r_id = r.r_id WHERE o.year = 2024 AND o.o_id < 2024005 ORDER BY o.o_id",
]


def rows(engine: QueryEngine, sql: str, **kw) -> list[dict]:
    """``sql``'s answer as a list of row dicts (``kw``: ``execute``'s options, e.g. ``max_staleness_s``)."""
    return engine.execute(sql, **kw).reader.read_all().to_pylist()


def orders(year: int, n: int) -> pa.Table:
    """``n`` orders of ``year``: ``o_id`` (``year * 1000 + i``), ``o_total``, ``o_note``."""
    return pa.table({"o_id": pa.array([year * 1000 + i for i in range(n)], pa.int64()),
                     "o_total": pa.array([float(i) * 1.5 for i in range(n)]),
                     "o_note": pa.array([f"note {i}" for i in range(n)])})


def write_copies(fs, remote: str, local: Path) -> None:
    """The same tables under ``remote`` (``bucket/prefix`` on the pyarrow filesystem ``fs``) and ``local``:
    ``pq/orders/year=2023|2024/part-0.parquet`` (50 rows each), ``pq/regions.parquet``, ``csv/rates.csv``."""
    for year in (2023, 2024):
        (local / "pq" / "orders" / f"year={year}").mkdir(parents=True)
        pq.write_table(orders(year, 50), local / "pq" / "orders" / f"year={year}" / "part-0.parquet")
        pq.write_table(orders(year, 50), f"{remote}/pq/orders/year={year}/part-0.parquet", filesystem=fs)
    regions = pa.table({"r_id": [1, 2], "r_name": ["north", "south"]})
    pq.write_table(regions, local / "pq" / "regions.parquet")
    pq.write_table(regions, f"{remote}/pq/regions.parquet", filesystem=fs)
    rates = pa.table({"r_id": [1, 2], "rate": [0.5, 0.25]})
    (local / "csv").mkdir()
    pcsv.write_csv(rates, local / "csv" / "rates.csv")
    with fs.open_output_stream(f"{remote}/csv/rates.csv") as out:
        pcsv.write_csv(rates, out)


def assert_same_as_local(remote: QueryEngine, local: QueryEngine, queries: list[str]) -> None:
    """``write_copies``'s tables are listed, partitioned and counted (from the Parquet footers, read remotely)
    through ``remote`` as written, and every query answers the same through ``remote`` as through ``local``."""
    files = remote.catalog.connector("pq")
    assert files.list_tables("main") == ["orders", "regions"]
    assert remote.catalog.connector("rates").list_tables("main") == ["rates"]
    assert files.partitions("main", "orders") == ["year=2023", "year=2024"]
    for sql in queries:
        assert rows(remote, sql) == rows(local, sql), sql
    assert files.statistics("main", "orders").rows == 100


#: the object-store tests' queries: ``QUERIES`` and a join of the Parquet source with the CSV one
STORE_QUERIES = [
    *QUERIES,
    "SELECT o.year, SUM(x.rate) AS s FROM pq.orders o JOIN rates.rates x ON o.o_id % 2 + 1 = x.r_id "
    "GROUP BY o.year ORDER BY o.year",
]


def copies_in_store(store, root: str, local: Path) -> dict:
    """The same data under ``<root>/<prefix>/`` of an object store (``store.filesystem()``, a pyarrow
    filesystem; ``root`` its bucket or container) and in ``local``: orders (Hive-partitioned Parquet), regions
    (one Parquet object) and rates (CSV). ``{"prefix", "local"}``."""
    prefix = f"run-{secrets.token_hex(3)}"
    write_copies(store.filesystem(), f"{root}/{prefix}", local)
    return {"prefix": prefix, "local": local}


def store_engine(store, url: str, lake: dict, remote: bool = True, **options) -> QueryEngine:
    """An engine over the copies of ``copies_in_store``: a Parquet source ``pq`` and a CSV source ``rates``
    under ``<url>/<prefix>/`` (``url``: e.g. ``gs://bucket``) with ``store.options(**options)``, or over the
    local copies; the residual session reads the remote tables in place too."""
    def path(kind: str) -> str:
        return f"{url}/{lake['prefix']}/{kind}" if remote else str(lake["local"] / kind)

    extra = store.options(**options) if remote else {}
    raw = {"sources": [{"name": "pq", "kind": "parquet", "path": path("pq"), **extra},
                       {"name": "rates", "kind": "csv", "path": path("csv"), **extra}],
           "limits": {"in_place_min_rows": 0}}
    return QueryEngine(settings_from_dict(raw, base_dir=lake["local"]))


def check_partitions_and_new_objects(engine: QueryEngine, store, root: str, lake: dict) -> None:
    """Hive pruning, per-partition fingerprints (``name:last-modified ns:size``) and an object written to one
    partition seen at ``max_staleness_s = 0`` while the other partition's fingerprint stays (``engine`` from
    ``store_engine`` with ``cache_fingerprint=True``)."""
    conn = engine.catalog.connector("pq")
    sql = "SELECT COUNT(*) AS c FROM pq.orders WHERE year = 2024"
    assert rows(engine, sql, max_staleness_s=0) == [{"c": 50}]
    assert "year=2023" not in conn.partition_fingerprint("main", "orders", "year=2024")
    before = {p: conn.partition_fingerprint("main", "orders", p) for p in ("year=2023", "year=2024")}
    assert all(":" in f and not f.endswith(":0") for f in before.values())
    pq.write_table(orders(2024, 5), f"{root}/{lake['prefix']}/pq/orders/year=2024/part-1.parquet",
                   filesystem=store.filesystem())
    assert conn.partition_fingerprint("main", "orders", "year=2024") != before["year=2024"]
    assert conn.partition_fingerprint("main", "orders", "year=2023") == before["year=2023"]
    assert rows(engine, sql, max_staleness_s=0) == [{"c": 55}]
