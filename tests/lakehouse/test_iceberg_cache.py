"""Iceberg tables in the partition cache: a partitioned table's partitions are the data-file sets of its partition
values (from the snapshot's manifests), each with a fingerprint of its files; an append to one partition
invalidates only that partition's cached data (the other is served from the cache without its files being read
again); after partition evolution the files written under the older spec are a partition of their own, read as
that file set; an unpartitioned table is one partition."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict


def _orders(start: int, n: int, region: str | None = None) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "region": pa.array([region] * n if region else ["north", "south"] * (n // 2)),
                     "amt": pa.array([float(i) for i in range(start, start + n)])})


@pytest.fixture()
def lake(tmp_path):
    """sales.orders (identity partitions on region), sales.evolved (unpartitioned, then partitioned by region) and
    sales.plain (unpartitioned) in a SQL catalog on SQLite."""
    catalog = SqlCatalog("cachelake", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("sales")
    orders = catalog.create_table("sales.orders", schema=_orders(0, 2).schema)
    with orders.update_spec() as spec:
        spec.add_identity("region")
    orders.append(_orders(0, 100))
    evolved = catalog.create_table("sales.evolved", schema=_orders(0, 2).schema)
    evolved.append(_orders(0, 40))
    with evolved.update_spec() as spec:
        spec.add_identity("region")
    evolved.append(_orders(100, 10))
    catalog.create_table("sales.plain", schema=_orders(0, 2).schema).append(_orders(0, 10))
    yield catalog, tmp_path
    catalog.engine.dispose()


def _engine(tmp_path: Path) -> QueryEngine:
    raw = {"sources": [{"name": "ice", "kind": "iceberg", "uri": f"sqlite:///{tmp_path}/catalog.db",
                        "warehouse": str(tmp_path / "wh"), "catalog_name": "cachelake", "cache_fingerprint": True}],
           "cache": {"admit_after": 1}}
    return QueryEngine(settings_from_dict(raw, base_dir=tmp_path))


def _run(engine: QueryEngine, sql: str) -> tuple[list[dict], dict[str, str]]:
    result = engine.execute(sql, max_staleness_s=0)
    rows = result.reader.read_all().to_pylist()
    return rows, {u.partition: u.status for f in result.stats.fragments for u in f.partitions}


def _files(catalog, table: str, region: str) -> list[Path]:
    tasks = catalog.load_table(f"sales.{table}").scan().plan_files()
    return [Path(t.file.file_path.removeprefix("file://")) for t in tasks if t.file.partition[0] == region]


def test_partitions_are_data_file_sets_and_an_append_invalidates_only_its_own(lake):
    catalog, tmp_path = lake
    engine = _engine(tmp_path)
    conn = engine.catalog.connector("ice")
    assert conn.partitions("sales", "orders") == ["region=north", "region=south"]
    assert conn.partitions("sales", "plain") == ["*"]
    sql = "SELECT region, COUNT(*) AS c, SUM(id) AS s FROM ice.sales.orders GROUP BY region ORDER BY region"
    first, uses = _run(engine, sql)
    assert uses == {"region=north": "admitted", "region=south": "admitted"}
    assert first == [{"region": "north", "c": 50, "s": sum(range(0, 100, 2))},
                     {"region": "south", "c": 50, "s": sum(range(1, 100, 2))}]
    before = {p: conn.partition_fingerprint("sales", "orders", p) for p in conn.partitions("sales", "orders")}

    catalog.load_table("sales.orders").append(_orders(1000, 3, region="north"))
    after = {p: conn.partition_fingerprint("sales", "orders", p) for p in conn.partitions("sales", "orders")}
    assert [p for p in before if before[p] != after[p]] == ["region=north"]
    south = _files(catalog, "orders", "south")
    assert south
    for path in south:  # south is served from the cache: its files are not read
        path.write_bytes(b"not parquet")
    rows, uses = _run(engine, sql)
    assert uses == {"region=north": "admitted", "region=south": "cached"}
    assert rows == [{"region": "north", "c": 53, "s": first[0]["s"] + 3003}, first[1]]
    filtered, uses = _run(engine, "SELECT COUNT(*) AS c FROM ice.sales.orders WHERE region = 'south' AND id < 10")
    assert filtered == [{"c": 5}] and uses["region=south"] == "cached"


def test_files_of_an_older_spec_are_a_partition_of_their_own(lake):
    catalog, tmp_path = lake
    engine = _engine(tmp_path)
    conn = engine.catalog.connector("ice")
    assert conn.partitions("sales", "evolved") == ["region=north", "region=south", "spec-0"]
    sql = "SELECT region, COUNT(*) AS c, SUM(id) AS s FROM ice.sales.evolved GROUP BY region ORDER BY region"
    want = [{"region": "north", "c": 25, "s": sum(range(0, 40, 2)) + sum(range(100, 110, 2))},
            {"region": "south", "c": 25, "s": sum(range(1, 40, 2)) + sum(range(101, 110, 2))}]
    cold, uses = _run(engine, sql)
    assert cold == want and set(uses.values()) == {"admitted"} and len(uses) == 3
    warm, uses = _run(engine, sql)
    assert warm == want and set(uses.values()) == {"cached"}
    catalog.load_table("sales.evolved").append(_orders(500, 2))
    rows, uses = _run(engine, sql)
    assert uses == {"region=north": "admitted", "region=south": "admitted", "spec-0": "cached"}
    assert rows == [{**want[0], "c": 26, "s": want[0]["s"] + 500}, {**want[1], "c": 26, "s": want[1]["s"] + 501}]
