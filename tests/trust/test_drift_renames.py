"""Renamed columns where the source says so: PostgreSQL keeps a column's ``attnum`` across ``ALTER TABLE ...
RENAME COLUMN`` and Iceberg keeps field ids across ``update_schema().rename_column``; the connectors report
that identity (``Connector.column_ids``), the drift store keeps it per version, and a refresh reports one
``column_renamed`` event (old name -> new name) instead of a drop and an add, with cached partitions dropped,
``GET /v1/catalog/changes`` and ``gateway catalog history`` showing it, and a query naming the old name told
so. MariaDB has no such identity: a rename there stays a drop and an add. Stores written before identities
were kept are migrated on open. About 10 s."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from catalog.drift import DriftStore, renames
from gateway.api.app import create_app
from gateway.errors import UnknownObjectError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.demo_support import running_app
from tests.test_cli import cli_env, gateway_command
from tests.trust.conftest import maria_execute, maria_schema, pg_execute


def _events(changes) -> list[tuple]:
    return sorted((c.kind, c.old_column, c.column, c.old_type, c.new_type) for c in changes)


def test_store_tells_renames_from_drops_and_adds(tmp_path):
    store = DriftStore(tmp_path / "drift.sqlite")
    key = ("s", "t")
    v1 = pa.schema([("a", pa.int32()), ("b", pa.string()), ("c", pa.float64())])
    assert store.observe("src", {key: v1}, column_ids={key: {"a": "7:1", "b": "7:2", "c": "7:3"}}) == []
    # a -> x (same id); b and c swap names; a new column takes the old name a
    v2 = pa.schema([("x", pa.int32()), ("c", pa.string()), ("b", pa.float64()), ("a", pa.int64())])
    found = store.observe("src", {key: v2}, column_ids={key: {"x": "7:1", "c": "7:2", "b": "7:3", "a": "7:4"}})
    assert _events(found) == [("column_added", None, "a", None, "int64"),
                              ("column_renamed", "a", "x", "int32", "int32"),
                              ("column_renamed", "b", "c", "string", "string"),
                              ("column_renamed", "c", "b", "double", "double")]
    # renamed and widened at once: a rename and a retype of the new name
    v3 = pa.schema([("y", pa.int64()), ("c", pa.string()), ("b", pa.float64()), ("a", pa.int64())])
    found = store.observe("src", {key: v3}, column_ids={key: {"y": "7:1", "c": "7:2", "b": "7:3", "a": "7:4"}})
    assert _events(found) == [("column_renamed", "x", "y", "int32", "int64"),
                              ("column_retyped", None, "y", "int32", "int64")]
    assert found[1].widening and not found[0].additive
    # without identities (MariaDB, files): a drop and an add, as before
    v4 = pa.schema([("z", pa.int64()), ("c", pa.string()), ("b", pa.float64()), ("a", pa.int64())])
    assert _events(store.observe("src", {key: v4})) == [("column_added", None, "z", None, "int64"),
                                                        ("column_dropped", None, "y", "int64", None)]
    history = store.history("src", "s", "t")
    assert [c["kind"] for c in history[2]["changes"]] == ["column_renamed", "column_retyped"]
    assert history[2]["columns"][0] == {"name": "y", "type": "int64", "nullable": True, "id": "7:1"}
    assert "id" not in history[3]["columns"][0]
    assert store.dropped_column("x") == {"at": history[2]["seen_at"], "table": "src.s.t", "column": "x",
                                         "renamed_to": "y"}
    assert store.dropped_column("y")["renamed_to"] is None  # dropped since
    store.close()
    assert renames({"a": "1"}, None) == {} and renames({"a": "1"}, {"b": "1"}) == {"b": "a"}


def test_identities_are_asked_only_for_changed_tables():
    store = DriftStore()
    t, u = ("s", "t"), ("s", "u")
    asked: list = []
    ids = {t: {"a": "1:1"}, u: {"x": "3:1"}}

    def column_ids(key):
        asked.append(key)
        return ids[key]

    schemas = {t: pa.schema([("a", pa.int32())]), u: pa.schema([("x", pa.int32())])}
    store.observe("src", schemas, column_ids=column_ids)
    assert asked == [t, u]  # the baseline: every table
    asked.clear()
    assert store.observe("src", schemas, column_ids=column_ids) == [] and asked == []  # nothing changed
    ids[t] = {"b": "1:1"}
    schemas[t] = pa.schema([("b", pa.int32())])
    renamed = store.observe("src", schemas, column_ids=column_ids)
    assert asked == [t] and _events(renamed) == [("column_renamed", "a", "b", "int32", "int32")]
    # a version kept without identities gets them from the next refresh, without a new version
    schemas[("s", "v")] = pa.schema([("k", pa.int8())])
    assert _events(store.observe("src", schemas)) == [("table_added", None, None, None, None)]
    assert store.observe("src", schemas, column_ids={("s", "v"): {"k": "5:1"}}) == []
    (version,) = store.history("src", "s", "v")
    assert version["columns"][0]["id"] == "5:1"


def test_store_written_before_identities_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE table_versions (source TEXT NOT NULL, schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
            version INTEGER NOT NULL, hash TEXT NOT NULL, columns TEXT NOT NULL, seen_at REAL NOT NULL,
            dropped INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (source, schema_name, table_name, version));
        CREATE TABLE schema_changes (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, source TEXT NOT NULL,
            schema_name TEXT NOT NULL, table_name TEXT NOT NULL, kind TEXT NOT NULL, column_name TEXT,
            old_type TEXT, new_type TEXT, widening INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL);
        INSERT INTO table_versions VALUES ('src', 's', 't', 1, 'h', '[["a", "int32", true]]', 0, 0);
        INSERT INTO schema_changes (at, source, schema_name, table_name, kind, column_name, new_type, version)
            VALUES (0, 'src', 's', 't', 'column_added', 'a', 'int32', 1);
    """)
    old.close()
    store = DriftStore(path)
    assert [c["kind"] for c in store.changes()] == ["column_added"]
    key = ("s", "t")
    # the old version has no identities: this refresh cannot tell a rename (drop + add), the next one can
    found = store.observe("src", {key: pa.schema([("b", pa.int32())])}, column_ids={key: {"b": "9:1"}})
    assert _events(found) == [("column_added", None, "b", None, "int32"), ("column_dropped", None, "a", "int32", None)]
    found = store.observe("src", {key: pa.schema([("c", pa.int32())])}, column_ids={key: {"c": "9:1"}})
    assert _events(found) == [("column_renamed", "b", "c", "int32", "int32")]
    store.close()


@pytest.fixture
def pg_engine(trust_pg, tmp_path):
    pg_execute(trust_pg, "DROP TABLE IF EXISTS public.renamed",
               "CREATE TABLE public.renamed (id integer PRIMARY KEY, note text, amount numeric(10, 2))",
               "INSERT INTO public.renamed SELECT g, 'n' || g, g FROM generate_series(1, 5) g")
    settings = settings_from_dict({
        "sources": [{"name": "pg", "kind": "postgresql", "uri": trust_pg, "cache_ttl_s": 600.0}],
        "catalog": {"state_path": str(tmp_path / "state" / "drift.sqlite")}}, base_dir=tmp_path)
    engine = QueryEngine(settings)
    assert engine.trust.refresh("pg") == []  # the baseline
    yield engine
    engine.close()
    pg_execute(trust_pg, "DROP TABLE IF EXISTS public.renamed")


def test_postgresql_rename_column_is_one_renamed_event(pg_engine, trust_pg):
    engine = pg_engine
    ids = engine.catalog.connector("pg").column_ids("public", "renamed")
    assert len(set(ids.values())) == 3 and all(":" in i for i in ids.values())
    engine.cache_warm("pg.public.renamed")
    assert any(e["table"] == "renamed" for e in engine.cache_status()["entries"])
    pg_execute(trust_pg, "ALTER TABLE public.renamed RENAME COLUMN note TO remark")
    (change,) = engine.trust.refresh("pg")
    assert (change["table_name"], change["kind"], change["old_column"], change["column"], change["old_type"],
            change["new_type"]) == ("pg.public.renamed", "column_renamed", "note", "remark", "string", "string")
    assert engine.catalog.connector("pg").column_ids("public", "renamed")["remark"] == ids["note"]
    # healed as for other changes: no cached partition of the old columns, the new name answers at once
    assert not any(e["table"] == "renamed" for e in engine.cache_status()["entries"])
    rows = engine.execute("SELECT remark FROM pg.public.renamed WHERE id = 2").reader.read_all().to_pylist()
    assert rows == [{"remark": "n2"}]
    with pytest.raises(UnknownObjectError, match=r"column note of pg\.public\.renamed was renamed to remark at "
                                                 r"20\d\d-.*; the query references it"):
        engine.execute("SELECT note FROM pg.public.renamed")
    assert engine.metrics.registry.get_sample_value("gateway_schema_changes_total",
                                                    {"source": "pg", "kind": "column_renamed"}) == 1
    with running_app(create_app(engine)) as base:
        listed = httpx.get(f"{base}/v1/catalog/changes", params={"source": "pg"}, timeout=30).json()
        history = httpx.get(f"{base}/v1/catalog/history/pg.public.renamed", timeout=30).json()
    assert [(c["kind"], c["old_column"], c["column"]) for c in listed] == [("column_renamed", "note", "remark")]
    assert [c["kind"] for c in history["versions"][-1]["changes"]] == ["column_renamed"]


@pytest.fixture
def iceberg(tmp_path):
    """An Iceberg table ``sales.orders`` in a SQL catalog on SQLite in ``tmp_path``; the source's options."""
    uri = f"sqlite:///{tmp_path}/iceberg.db"
    catalog = SqlCatalog("ice_renames", uri=uri, warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("sales")
    table = catalog.create_table("sales.orders", schema=pa.schema([("id", pa.int64()), ("region", pa.string())]))
    table.append(pa.table({"id": pa.array([1, 2], pa.int64()), "region": ["north", "south"]}))
    yield catalog, {"name": "ice", "kind": "iceberg", "uri": uri, "warehouse": str(tmp_path / "wh"),
                    "catalog_name": "ice_renames"}
    catalog.engine.dispose()


def test_iceberg_rename_column_is_one_renamed_event(iceberg, tmp_path):
    catalog, source = iceberg
    engine = QueryEngine(settings_from_dict({"sources": [source]}, base_dir=tmp_path))  # drift kept in memory
    try:
        assert engine.trust.refresh("ice") == []
        with catalog.load_table("sales.orders").update_schema() as update:
            update.rename_column("region", "area")
        (change,) = engine.trust.refresh("ice")
        assert (change["kind"], change["old_column"], change["column"]) == ("column_renamed", "region", "area")
        rows = engine.execute("SELECT area FROM ice.sales.orders ORDER BY id").reader.read_all().to_pylist()
        assert rows == [{"area": "north"}, {"area": "south"}]  # read by field id: the old files answer
    finally:
        engine.close()


def test_cli_history_shows_the_rename(iceberg, tmp_path):
    catalog, source = iceberg
    config = tmp_path / "gateway.toml"
    config.write_text('[catalog]\nstate_path = "state/drift.sqlite"\n\n[[sources]]\n' +
                      "".join(f'{k} = "{v}"\n' for k, v in source.items()))

    def history() -> dict:
        done = subprocess.run([*gateway_command(), "catalog", "history", "ice.sales.orders", "--json", "--config",
                               str(config)], capture_output=True, text=True, env=cli_env(), timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert len(history()["versions"]) == 1  # the baseline
    with catalog.load_table("sales.orders").update_schema() as update:
        update.rename_column("id", "order_id")
    versions = history()["versions"]
    assert [(c["kind"], c["old_column"], c["column"]) for c in versions[-1]["changes"]] == [
        ("column_renamed", "id", "order_id")]
    assert versions[-1]["columns"][0]["name"] == "order_id"
    assert versions[-1]["columns"][0]["id"] == versions[0]["columns"][0]["id"]


def test_mariadb_rename_stays_a_drop_and_an_add(trust_maria, tmp_path):
    """MariaDB keeps no column identity (``information_schema`` has names and positions only)."""
    schema = maria_schema(trust_maria)
    engine = QueryEngine(settings_from_dict({"sources": [{"name": "maria", "kind": "mysql", "uri": trust_maria}]},
                                            base_dir=tmp_path))
    try:
        assert engine.catalog.connector("maria").column_ids(schema, "lineitem") is None
        assert engine.trust.refresh("maria") == []
        maria_execute(trust_maria, "ALTER TABLE lineitem RENAME COLUMN l_extendedprice TO l_price")
        found = sorted((c["kind"], c["column"]) for c in engine.trust.refresh("maria"))
        assert found == [("column_added", "l_price"), ("column_dropped", "l_extendedprice")]
    finally:
        engine.close()
