"""Schema drift: ALTER TABLE ADD / DROP COLUMN / ALTER TYPE on the real PostgreSQL and MariaDB, a rewritten
Parquet file, and created/dropped tables are found by the next catalog refresh, recorded in a store that
survives restarts, counted in /metrics and listed by ``GET /v1/catalog/changes``; additive changes are
queryable at once, cached partitions of a changed table are dropped, a dropped column a query still names gets
a clear error. Runs in about 6 s."""

from __future__ import annotations

from dataclasses import astuple

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.drift import DriftStore, widens
from gateway.api.app import create_app
from gateway.errors import UnknownObjectError
from gateway.execution.engine import QueryEngine
from tests.demo_support import running_app
from tests.trust.conftest import maria_execute, maria_schema, pg_execute, trust_settings, write_lake


def _kinds(changes: list[dict]) -> set[tuple]:
    return {(c["table_name"], c["kind"], c["column"], c["old_type"], c["new_type"], c["widening"]) for c in changes}


def test_store_versions_tables_and_survives_a_restart(tmp_path):
    path = tmp_path / "state" / "drift.sqlite"
    store = DriftStore(path)
    v1 = {("s", "t"): pa.schema([("a", pa.int32()), ("b", pa.string())])}
    assert store.observe("src", v1) == []  # the first refresh of a source is its baseline
    v2 = {("s", "t"): pa.schema([("a", pa.int64()), ("c", pa.float64())]), ("s", "u"): pa.schema([("x", pa.int8())])}
    found = {(c.table, c.kind, c.column, c.widening) for c in store.observe("src", v2)}
    assert found == {("t", "column_retyped", "a", True), ("t", "column_added", "c", False),
                     ("t", "column_dropped", "b", False), ("u", "table_added", None, False)}
    store.close()
    reopened = DriftStore(path)
    assert reopened.observe("src", v2) == []  # the same columns after a restart: no change
    assert [v["version"] for v in reopened.history("src", "s", "t")] == [1, 2]
    dropped = reopened.observe("src", {("s", "t"): v2[("s", "t")]}, unreadable=set())
    assert [(c.table, c.kind) for c in dropped] == [("u", "table_dropped")]
    # a table that could not be read is neither compared nor dropped
    assert reopened.observe("src", {}, unreadable={("s", "t")}) == []
    assert [c["kind"] for c in reopened.changes("src")][-1] == "table_dropped"
    reopened.close()


def test_widening_rules():
    assert widens("int32", "int64") and widens("decimal128(10, 2)", "decimal128(12, 2)")
    assert not widens("int64", "int32") and not widens("decimal128(10, 2)", "decimal128(10, 3)")
    assert not widens("string", "int64")


@pytest.fixture
def engine(trust_pg, trust_maria, tmp_path):
    settings = trust_settings(trust_pg, trust_maria, write_lake(tmp_path / "lake"),
                              catalog={"state_path": str(tmp_path / "state" / "drift.sqlite")})
    settings.sources[0].cache_ttl_s = 600.0  # pg: cached partitions, to show they are dropped
    eng = QueryEngine(settings)
    for source in ("pg", "maria", "lake"):  # the baseline of every source
        assert eng.trust.refresh(source) == []
    unreadable = [r for r in eng.catalog.available_tables()[0] if not eng.catalog.drift.history(*astuple(r))]
    assert not unreadable, f"tables not versioned by the baseline refresh: {unreadable}"
    yield eng
    eng.close()


def test_postgresql_alter_table_is_detected_and_healed(engine, trust_pg):
    engine.cache_warm("pg.public.orders")
    assert any(e["table"] == "orders" for e in engine.cache_status()["entries"])
    pg_execute(trust_pg, "ALTER TABLE public.orders ADD COLUMN o_comment text DEFAULT 'none'",
               "ALTER TABLE public.orders ALTER COLUMN o_custkey TYPE bigint",
               "ALTER TABLE public.orders ALTER COLUMN o_orderstatus TYPE varchar(20)",
               "CREATE TABLE public.region (r_regionkey integer, r_name text)")
    changes = engine.trust.refresh("pg")
    assert _kinds(changes) == {
        ("pg.public.orders", "column_added", "o_comment", None, "string", False),
        ("pg.public.orders", "column_retyped", "o_custkey", "int32", "int64", True),
        ("pg.public.region", "table_added", None, None, None, False),
    }  # text -> varchar(20) is the same Arrow type: no change
    # healed: no stale cached partition, the new column answers at once
    assert not any(e["table"] == "orders" for e in engine.cache_status()["entries"])
    rows = engine.execute("SELECT o_comment, o_custkey FROM pg.public.orders WHERE o_orderkey = 1").reader.read_all()
    assert rows.to_pylist() == [{"o_comment": "none", "o_custkey": 2}]
    assert rows.schema.field("o_custkey").type == pa.int64()

    pg_execute(trust_pg, "ALTER TABLE public.orders DROP COLUMN o_totalprice", "DROP TABLE public.region")
    assert _kinds(engine.trust.refresh("pg")) == {
        ("pg.public.orders", "column_dropped", "o_totalprice", "decimal128(12, 2)", None, False),
        ("pg.public.region", "table_dropped", None, None, None, False),
    }
    with pytest.raises(UnknownObjectError, match=r"column o_totalprice of pg\.public\.orders was dropped at "
                                                 r"20\d\d-.*; the query references it"):
        engine.execute("SELECT o_totalprice FROM pg.public.orders")
    registry = engine.metrics.registry
    assert registry.get_sample_value("gateway_schema_changes_total",
                                     {"source": "pg", "kind": "column_dropped"}) == 1
    history = engine.catalog.drift.history("pg", "public", "orders")
    assert len(history) == 3 and "o_totalprice" not in {c["name"] for c in history[-1]["columns"]}


def test_mariadb_alter_table_is_detected(engine, trust_maria):
    schema = maria_schema(trust_maria)
    maria_execute(trust_maria, "ALTER TABLE lineitem ADD COLUMN l_comment VARCHAR(44)",
                  "ALTER TABLE lineitem MODIFY l_quantity BIGINT", "ALTER TABLE lineitem DROP COLUMN l_discount")
    # the source sees every database of the server: another test's database may change meanwhile
    assert {k for k in _kinds(engine.trust.refresh("maria")) if k[0].startswith(f"maria.{schema}.")} == {
        (f"maria.{schema}.lineitem", "column_added", "l_comment", None, "string", False),
        (f"maria.{schema}.lineitem", "column_retyped", "l_quantity", "int32", "int64", True),
        (f"maria.{schema}.lineitem", "column_dropped", "l_discount", "double", None, False),
    }
    rows = engine.execute(f"SELECT l_comment FROM maria.{schema}.lineitem LIMIT 1").reader.read_all()
    assert rows.num_rows == 1


def test_rewritten_parquet_file_is_detected(engine, tmp_path):
    pq.write_table(pa.table({"n_nationkey": pa.array([0, 1], pa.int64()), "n_name": ["A", "B"],
                             "n_regionkey": pa.array([0, 0], pa.int32())}), tmp_path / "lake" / "nation.parquet")
    assert _kinds(engine.trust.refresh("lake")) == {
        ("lake.main.nation", "column_added", "n_regionkey", None, "int32", False),
        ("lake.main.nation", "column_retyped", "n_nationkey", "int32", "int64", True),
    }
    assert engine.execute("SELECT n_regionkey FROM lake.nation").reader.read_all().num_rows == 2


def test_rest_changes_history_and_refresh(engine, tmp_path):
    pq.write_table(pa.table({"c_custkey": pa.array([1], pa.int32())}), tmp_path / "lake" / "customer.parquet")
    with running_app(create_app(engine)) as base:
        refreshed = httpx.post(f"{base}/v1/catalog/refresh", params={"source": "lake"}, timeout=30).json()
        assert {(c["kind"], c["column"]) for c in refreshed["changes"]} == {
            ("column_dropped", "c_nationkey"), ("column_dropped", "c_name")}
        listed = httpx.get(f"{base}/v1/catalog/changes", params={"source": "lake"}, timeout=30).json()
        assert [c["id"] for c in listed] == [c["id"] for c in refreshed["changes"]]
        since = httpx.get(f"{base}/v1/catalog/changes", params={"since_id": listed[-1]["id"]}, timeout=30).json()
        assert since == []
        history = httpx.get(f"{base}/v1/catalog/history/lake.main.customer", timeout=30).json()
        assert [v["version"] for v in history["versions"]] == [1, 2]
        assert httpx.get(f"{base}/v1/catalog/history/lake.nope", timeout=30).status_code == 400
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
        assert 'gateway_schema_changes_total{kind="column_dropped",source="lake"} 2.0' in metrics
