"""Iceberg sources (``kind = "iceberg"``) with a SQL catalog on the real PostgreSQL and on SQLite: namespaces as
schemas, appends and schema evolution (rename, add) between queries, file pruning by Iceberg's planning
(counted), snapshot time travel, and a join with a PostgreSQL table."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.types import StringType

from gateway.errors import InvalidRequestError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.lakehouse.support import rows as _rows


def _orders(start: int, n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "region": pa.array(["north", "south"] * (n // 2)),
                     "amt": pa.array([float(i) for i in range(start, start + n)])})


def _catalog_uri(kind: str, pg_database: str, tmp_path) -> str:
    return f"sqlite:///{tmp_path}/catalog.db" if kind == "sqlite" else pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def lake(request, tmp_path):
    """sales.orders, partitioned by region, written in two appends; returns (source options, catalog)."""
    uri = _catalog_uri(request.param, request.getfixturevalue("pg_database") if request.param != "sqlite" else "",
                       tmp_path)
    sql_uri = uri.replace("postgresql://", "postgresql+psycopg2://")
    name = f"gateway_{request.param}"
    catalog = SqlCatalog(name, uri=sql_uri, warehouse=f"file://{tmp_path}/wh")
    namespace = f"sales_{id(request) % 100000}"
    catalog.create_namespace(namespace)
    table = catalog.create_table(f"{namespace}.orders", schema=_orders(0, 2).schema)
    with table.update_spec() as spec:
        spec.add_identity("region")
    table.append(_orders(0, 100))
    table.append(_orders(100, 20))
    yield {"uri": uri, "warehouse": str(tmp_path / "wh"), "name": name, "namespace": namespace}, catalog
    catalog.drop_table(f"{namespace}.orders")
    catalog.drop_namespace(namespace)
    catalog.engine.dispose()  # its pooled connections to PostgreSQL


@pytest.fixture()
def engines():
    """Engines a test builds, closed after it (their catalogs' and sources' connections released)."""
    made: list[QueryEngine] = []
    yield made
    for engine in made:
        engine.close()


def _engine(options: dict, tmp_path, extra: list | None = None) -> QueryEngine:
    raw = {"sources": [{"name": "ice", "kind": "iceberg", "uri": options["uri"], "warehouse": options["warehouse"],
                        "catalog_name": options["name"]},
                       *(extra or [])]}
    return QueryEngine(settings_from_dict(raw, base_dir=tmp_path))


def _closing(engines: list, engine: QueryEngine) -> QueryEngine:
    engines.append(engine)
    return engine


def test_metadata_queries_appends_and_schema_evolution(lake, tmp_path, engines):
    options, catalog = lake
    ns = options["namespace"]
    engine = _closing(engines, _engine(options, tmp_path))
    conn = engine.catalog.connector("ice")
    assert ns in conn.list_schemas() and conn.list_tables(ns) == ["orders"]
    assert conn.table_schema(ns, "orders") == pa.schema([("id", pa.int64()), ("region", pa.string()),
                                                         ("amt", pa.float64())])
    assert conn.statistics(ns, "orders").rows == 120
    sql = f"SELECT region, COUNT(*) AS c, SUM(amt) AS s FROM ice.{ns}.orders WHERE id >= 10 GROUP BY region ORDER BY 1"
    assert _rows(engine, sql, max_staleness_s=0) == [
        {"region": "north", "c": 55, "s": float(sum(range(10, 120, 2)))},
        {"region": "south", "c": 55, "s": float(sum(range(11, 120, 2)))}]
    first = conn.fingerprint(ns, "orders")
    table = catalog.load_table(f"{ns}.orders")
    table.append(_orders(500, 2))
    assert conn.fingerprint(ns, "orders") != first
    assert _rows(engine, f"SELECT COUNT(*) AS c FROM ice.{ns}.orders", max_staleness_s=0) == [{"c": 122}]
    with table.update_schema() as update:
        update.rename_column("amt", "amount")
        update.add_column("note", StringType())
    table.append(pa.table({"id": pa.array([900], pa.int64()), "region": ["north"], "amount": [9.5], "note": ["new"]}))
    engine.catalog.refresh("ice")
    rows = _rows(engine, f"SELECT id, amount, note FROM ice.{ns}.orders WHERE id IN (0, 900) ORDER BY id")
    assert rows == [{"id": 0, "amount": 0.0, "note": None}, {"id": 900, "amount": 9.5, "note": "new"}]


def test_pruning_and_time_travel(lake, tmp_path, engines):
    options, catalog = lake
    ns = options["namespace"]
    engine = _closing(engines, _engine(options, tmp_path))
    conn = engine.catalog.connector("ice")
    assert conn.files_kept(ns, "orders") == (4, 4)
    assert conn.files_kept(ns, "orders", "region = 'north'") == (2, 4)  # partition transform
    assert conn.files_kept(ns, "orders", "id >= 100") == (2, 4)  # manifest statistics of the second append
    snapshots = [s.snapshot_id for s in catalog.load_table(f"{ns}.orders").snapshots()]
    explain = engine.explain(f"SELECT id FROM ice.{ns}.orders WHERE region = 'north' AND id > 3")
    assert (f"orders: snapshot {snapshots[-1]}, row filter And(left=EqualTo(term=Reference(name='region'), "
            "literal=literal('north')), right=GreaterThan(term=Reference(name='id'), literal=LongLiteral(3))), "
            "2 of 4 data files planned (2 pruned") in explain
    sql = f"SELECT COUNT(*) AS c FROM ice.{ns}.orders FOR VERSION AS OF {snapshots[0]}"
    assert _rows(engine, sql) == [{"c": 100}]
    with pytest.raises(InvalidRequestError, match="has no snapshot version 12345"):
        _rows(engine, f"SELECT COUNT(*) AS c FROM ice.{ns}.orders FOR VERSION AS OF 12345")


def test_join_with_postgresql(lake, tmp_path, pg_database, engines):
    import adbc_driver_postgresql.dbapi as pg

    options, _ = lake
    ns = options["namespace"]
    with pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS ice_regions (name text PRIMARY KEY, manager text)")
        cur.execute("INSERT INTO ice_regions VALUES ('north', 'ann'), ('south', 'bob') ON CONFLICT DO NOTHING")
    engine = _closing(engines, _engine(options, tmp_path, [{"name": "pg", "kind": "postgresql", "uri": pg_database}]))
    sql = (f"SELECT r.manager, COUNT(*) AS c FROM ice.{ns}.orders o JOIN pg.public.ice_regions r "
           "ON o.region = r.name WHERE o.id < 10 GROUP BY r.manager ORDER BY 1")
    assert _rows(engine, sql) == [{"manager": "ann", "c": 5}, {"manager": "bob", "c": 5}]
