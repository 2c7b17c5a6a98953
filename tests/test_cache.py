"""The hot-partition cache end to end, against the real PostgreSQL, MariaDB and Parquet files."""

from __future__ import annotations

import datetime as dt
import decimal
import shutil
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests import world
from tests.conftest import MYSQL_URI, _mysql_params
from tests.demo_support import running_app
from tests.sources import write_files

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(0, 180)]


def _rows():
    return [(i, DAYS[i % len(DAYS)], decimal.Decimal(i) / 4, None if i % 9 == 0 else f"n{i}") for i in range(1, 1801)]


@pytest.fixture(scope="module")
def sources(pg_database, mysql_database, tmp_path_factory):
    """events(id, day, amount, note) in PostgreSQL (schema cache_test) and MariaDB, and a Parquet lake."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    with pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA cache_test")
        cur.execute("CREATE TABLE cache_test.events (id integer PRIMARY KEY, day date, amount numeric(10,2), note text)")
        cur.executemany("INSERT INTO cache_test.events VALUES ($1, $2, $3::numeric, $4)",
                        [(i, d, str(a), n) for i, d, a, n in _rows()])
    database = mysql_database.rsplit("/", 1)[1]
    params = _mysql_params(MYSQL_URI)
    conn = pymysql.connect(database=database, autocommit=True, **params)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE events (id int PRIMARY KEY, day date, amount decimal(10,2), note varchar(20)) "
                    "ENGINE=InnoDB")
        cur.executemany("INSERT INTO events VALUES (%s, %s, %s, %s)", _rows())
    conn.close()
    lake = write_files(tmp_path_factory.mktemp("cache_lake") / "lake", [world.table("orders")], "parquet")
    return {"pg": pg_database, "maria": mysql_database, "maria_db": database, "lake": lake}


def _gateway(sources, tmp: Path, *, memory=64 << 20, disk=True, admit_after=1, extra=None) -> QueryEngine:
    part = {"partition_column": "day", "partition_granularity": "month"}
    raw = {
        "sources": [
            {"name": "pg_ttl", "kind": "postgresql", "uri": sources["pg"], "cache_ttl_s": 3600, **part},
            {"name": "pg_fp", "kind": "postgresql", "uri": sources["pg"], "cache_fingerprint": True, **part},
            {"name": "maria", "kind": "mysql", "uri": sources["maria"], "cache_ttl_s": 3600, **part},
            {"name": "lake", "kind": "parquet", "path": str(sources["lake"]), "cache_fingerprint": True},
        ],
        "cache": {"memory_bytes": memory, "disk_bytes": 256 << 20, "admit_after": admit_after,
                  **({"disk_path": str(tmp / "cache")} if disk else {})},
        **(extra or {}),
    }
    return QueryEngine(settings_from_dict(raw, base_dir=tmp))


def _pg_rows(uri: str, sql: str) -> list[tuple]:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def _statuses(result) -> list[str]:
    return [u.status for f in result.stats.fragments for u in f.partitions]


QUERY = "SELECT id, amount FROM {src}.cache_test.events WHERE day >= DATE '2024-02-01' AND day < DATE '2024-04-01'"


def test_cached_partition_is_reused_without_a_second_fetch(sources, tmp_path):
    gw = _gateway(sources, tmp_path)
    connector = gw.catalog.connector("pg_ttl")
    first = gw.execute(QUERY.format(src="pg_ttl"))
    got = sorted(first.reader.read_all().to_pylist(), key=lambda r: r["id"])
    assert set(_statuses(first)) == {"admitted"} and len(_statuses(first)) == 2  # February and March only
    scans_after_first = connector.scans
    second = gw.execute(QUERY.format(src="pg_ttl"))
    again = sorted(second.reader.read_all().to_pylist(), key=lambda r: r["id"])
    assert connector.scans == scans_after_first  # the source ran no statement for the second query
    assert set(_statuses(second)) == {"cached"}
    want = [(i, decimal.Decimal(a)) for i, a in _pg_rows(
        sources["pg"], "SELECT id, amount FROM cache_test.events WHERE day >= '2024-02-01' AND day < '2024-04-01' "
        "ORDER BY id")]  # ADBC reads numeric as text
    assert [(r["id"], r["amount"]) for r in got] == want == [(r["id"], r["amount"]) for r in again]
    explained = gw.explain(QUERY.format(src="pg_ttl"))
    assert "day:[2024-02-01,2024-03-01): cached" in explained
    gw.close()


@pytest.mark.parametrize("source", ["pg_ttl", "maria"])
def test_committed_update_is_seen_with_a_strict_bound(sources, tmp_path, source):
    gw = _gateway(sources, tmp_path)
    name = "pg_ttl.cache_test.events" if source == "pg_ttl" else f"maria.{sources['maria_db']}.events"
    sql = f"SELECT note FROM {name} WHERE id = 40"
    assert gw.execute(sql).reader.read_all().column(0).to_pylist() == ["n40"]
    _write(sources, source, "UPDATE {t} SET note = 'changed' WHERE id = 40")
    try:
        # the source's TTL (an hour) allows the cached answer...
        assert gw.execute(sql).reader.read_all().column(0).to_pylist() == ["n40"]
        # ...a strict bound does not
        strict = gw.execute(sql, max_staleness_s=0)
        assert strict.reader.read_all().column(0).to_pylist() == ["changed"]
        assert "admitted" in _statuses(strict) or "fetched" in _statuses(strict)
    finally:
        _write(sources, source, "UPDATE {t} SET note = 'n40' WHERE id = 40")
    gw.close()


def _write(sources, source: str, statement: str) -> None:
    if source.startswith("pg"):
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(sources["pg"], autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(statement.format(t="cache_test.events"))
    else:
        import pymysql

        conn = pymysql.connect(database=sources["maria_db"], autocommit=True, **_mysql_params(MYSQL_URI))
        with conn.cursor() as cur:
            cur.execute(statement.format(t="events"))
        conn.close()


@pytest.mark.parametrize("source", ["pg_fp", "maria"])
def test_fingerprint_changes_on_every_kind_of_write(sources, tmp_path, source):
    gw = _gateway(sources, tmp_path, disk=False)
    connector = gw.catalog.connector(source)
    schema = "cache_test" if source == "pg_fp" else sources["maria_db"]
    _write(sources, source, "CREATE TABLE {t}_fp AS SELECT * FROM {t} WHERE id < 10")
    try:
        seen = [connector.fingerprint(schema, "events_fp")]
        assert seen[0]
        for statement in ("INSERT INTO {t}_fp (id, note) VALUES (10000, 'x')",
                          "UPDATE {t}_fp SET note = 'y' WHERE id = 10000",
                          "DELETE FROM {t}_fp WHERE id = 10000",
                          "TRUNCATE TABLE {t}_fp"):
            _write(sources, source, statement)
            seen.append(connector.fingerprint(schema, "events_fp"))
            assert seen[-1] != seen[-2], statement
    finally:
        _write(sources, source, "DROP TABLE {t}_fp")
    gw.close()


def test_replaced_parquet_file_invalidates_only_its_partition(sources, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(sources["lake"], lake)
    gw = _gateway({**sources, "lake": lake}, tmp_path)
    sql = "SELECT year, count(*) AS n, sum(qty) AS q FROM lake.orders GROUP BY year ORDER BY year"
    first = gw.execute(sql)
    before = first.reader.read_all().to_pylist()
    assert set(_statuses(first)) == {"admitted"} and len(_statuses(first)) == 3  # year=2021..2023
    part = lake / "orders" / "year=2022" / "part-0.parquet"
    table = pq.read_table(part)
    pq.write_table(table.slice(0, 10), part)  # replace the file: 10 rows left
    second = gw.execute(sql)
    after = second.reader.read_all().to_pylist()
    uses = {u.partition: u.status for f in second.stats.fragments for u in f.partitions}
    assert uses == {"year=2021": "cached", "year=2022": "admitted", "year=2023": "cached"}
    assert [r["n"] for r in after] == [before[0]["n"], 10, before[2]["n"]]
    gw.close()


def test_disk_tier_survives_a_restart(sources, tmp_path):
    gw = _gateway(sources, tmp_path)
    gw.cache_warm("pg_ttl.cache_test.events", "day < DATE '2024-03-01'")
    want = gw.execute(QUERY.format(src="pg_ttl")).reader.read_all()
    gw.close()
    restarted = _gateway(sources, tmp_path)
    result = restarted.execute("SELECT id, amount FROM pg_ttl.cache_test.events WHERE day < DATE '2024-03-01'")
    got = result.reader.read_all()
    assert restarted.catalog.connector("pg_ttl").scans == 0  # served from the disk tier only
    assert set(_statuses(result)) == {"cached"} and got.num_rows == 31 * 10 + 29 * 10
    assert want.num_rows > 0
    restarted.close()


def test_budget_holds_under_a_larger_workload(sources, tmp_path):
    budget = 24_000  # a few months of (id, amount) fit; the whole table does not
    gw = _gateway(sources, tmp_path, memory=budget, disk=False)
    cache = gw.scanner.cache
    for month in range(1, 7):
        lo, hi = dt.date(2024, month, 1), dt.date(2024 + month // 12, month % 12 + 1, 1)
        sql = f"SELECT id, amount FROM pg_ttl.cache_test.events WHERE day >= DATE '{lo}' AND day < DATE '{hi}'"
        rows = gw.execute(sql).reader.read_all().num_rows
        assert rows == sum(1 for _, d, _, _ in _rows() if lo <= d < hi)
        assert cache.memory_used_bytes <= budget
    assert cache.stats.evictions > 0
    gw.close()


def test_concurrent_queries_fetch_a_partition_once(sources, tmp_path):
    gw = _gateway(sources, tmp_path, disk=False)
    connector = gw.catalog.connector("maria")
    sql = f"SELECT id, note FROM maria.{sources['maria_db']}.events WHERE day >= DATE '2024-05-01'"
    results: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(gw.execute(sql).reader.read_all().num_rows)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    partitions = gw.scanner.partitions_of(gw.plan(sql).fragments[0])
    assert results[0] == results[1] > 0
    assert connector.scans == len(partitions)  # one fetch per partition, shared by both queries
    gw.close()


def test_corrupted_cache_file_is_dropped_and_refetched(sources, tmp_path):
    gw = _gateway(sources, tmp_path)
    gw.cache_warm("pg_ttl.cache_test.events", "day < DATE '2024-02-01'")
    gw.close()
    files = sorted((tmp_path / "cache").glob("*.arrow"))
    assert files
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    files[0].write_bytes(bytes(data))
    restarted = _gateway(sources, tmp_path)
    got = restarted.execute("SELECT id FROM pg_ttl.cache_test.events WHERE day < DATE '2024-02-01'").reader.read_all()
    assert sorted(got.column(0).to_pylist()) == sorted(i for i, d, _, _ in _rows() if d < dt.date(2024, 2, 1))
    assert restarted.scanner.cache.stats.corruptions >= 1
    assert restarted.catalog.connector("pg_ttl").scans >= 1  # refetched, never served from the bad file
    restarted.close()


def test_metrics_and_status(sources, tmp_path):
    from prometheus_client import generate_latest

    gw = _gateway(sources, tmp_path, disk=False)
    for _ in range(2):
        gw.execute(QUERY.format(src="pg_ttl")).reader.read_all()
    text = generate_latest(gw.metrics.registry).decode()
    assert "gateway_cache_hits_total" in text and "gateway_cache_bytes_served_total" in text
    status = gw.cache_status()
    assert {e["partition"] for e in status["entries"]} == {"day:[2024-02-01,2024-03-01)", "day:[2024-03-01,2024-04-01)"}
    assert status["stats"]["hits"] == 2  # the second run read both partitions from the cache
    assert gw.cache_clear(source="pg_ttl") == 2 and gw.cache_status()["entries"] == []
    gw.close()


def test_staleness_bound_over_flight_sql_and_rest(sources, tmp_path):
    import httpx

    from flight_server.server import GatewayFlightServer
    from gateway.api import create_app
    from gateway.client import connect

    gw = _gateway(sources, tmp_path, disk=False)
    flight_server = GatewayFlightServer(gw, "grpc://127.0.0.1:0")
    threading.Thread(target=flight_server.serve, daemon=True).start()
    sql = "SELECT note FROM pg_ttl.cache_test.events WHERE id = 77"
    try:
        with running_app(create_app(gw)) as base_url:
            with connect(f"grpc://127.0.0.1:{flight_server.port}") as conn:
                assert conn.query(sql).column(0).to_pylist() == ["n77"]  # cached now (admitted on first use)
                _write(sources, "pg_ttl", "UPDATE {t} SET note = 'fresh' WHERE id = 77")
                assert conn.query(sql).column(0).to_pylist() == ["n77"]  # within the source's TTL
                assert conn.query(sql, max_staleness_s=0).column(0).to_pylist() == ["fresh"]  # session option
                conn.max_staleness_s = 0
                assert conn.query(sql).column(0).to_pylist() == ["fresh"]
            body = httpx.post(f"{base_url}/v1/query", json={"sql": sql, "max_staleness_s": 0}).json()
            assert body["rows"] == [["fresh"]]
            status = httpx.get(f"{base_url}/v1/cache").json()
            assert any(e["source"] == "pg_ttl" for e in status["entries"]) and status["stats"]["hits"] >= 1
            warmed = httpx.post(f"{base_url}/v1/cache/warm",
                                json={"table": "maria." + sources["maria_db"] + ".events"}).json()
            assert sum(p["rows"] for p in warmed["partitions"]) == 1800
            assert httpx.delete(f"{base_url}/v1/cache", params={"source": "pg_ttl"}).json()["dropped"] >= 1
    finally:
        _write(sources, "pg_ttl", "UPDATE {t} SET note = 'n77' WHERE id = 77")
        flight_server.shutdown()
        gw.close()
