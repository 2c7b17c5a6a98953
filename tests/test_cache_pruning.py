"""Zone maps of cached partitions (gateway.cache.pruning) and cached fragments read in place
(``CachedScanner.native_view``): the zones a filter rules out are skipped, and what is kept, filtered, is exactly
what the source returns. The end-to-end tests run against the real PostgreSQL, MariaDB and Parquet files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from datafusion import SessionContext

from gateway.cache.pruning import ZoneMap
from gateway.execution.engine import QueryEngine
from gateway.execution.runtime_filters import keys_batch
from gateway.settings import settings_from_dict
from tests.conftest import MYSQL_URI, _mysql_params

ROWS = 1000
DAY0 = dt.date(2024, 1, 1)


def _table() -> pa.Table:
    """k 0..999 ascending (so zones of 100 rows hold k in [100 i, 100 i + 99]), day ascending with k, a decimal,
    a text column, a column with nulls in its first 200 rows and a float column."""
    return pa.table({
        "k": pa.array(range(ROWS), pa.int64()),
        "day": pa.array([DAY0 + dt.timedelta(days=i // 10) for i in range(ROWS)], pa.date32()),
        "amount": pa.array([decimal.Decimal(i) / 4 for i in range(ROWS)], pa.decimal128(10, 2)),
        "name": pa.array([f"n{i:04d}" for i in range(ROWS)]),
        "maybe": pa.array([None if i < 200 else i for i in range(ROWS)], pa.int64()),
        "ratio": pa.array([i / 3 for i in range(ROWS)], pa.float64()),
    })


def _where(condition: str) -> sqlglot.exp.Expression:
    return sqlglot.parse_one(f"SELECT 1 FROM t AS t WHERE {condition}", read="postgres").args["where"].this


def _kept(zones: ZoneMap, condition: str, **kwargs) -> list[int]:
    return [i for i, keep in enumerate(zones.keep(_where(condition), "t", **kwargs)) if keep]


@pytest.mark.parametrize(("condition", "zones"), [
    ("t.k = 250", [2]),
    ("250 = t.k", [2]),
    ("t.k < 150", [0, 1]),
    ("t.k <= 99", [0]),
    ("t.k > 899", [9]),
    ("t.k >= 900", [9]),
    ("t.k BETWEEN 350 AND 420", [3, 4]),
    ("t.k IN (5, 777, 12345)", [0, 7]),
    ("t.k = 5 OR t.k = 905", [0, 9]),
    ("t.k > 100 AND t.k < 300 AND t.name >= 'n0250'", [2]),
    ("t.day >= CAST('2024-03-01' AS DATE) AND t.day < DATE '2024-03-11'", [6]),
    ("t.amount > 240.5", [9]),
    ("t.amount <= -1", []),
    ("t.name = 'n0512'", [5]),
    ("t.maybe IS NULL", [0, 1]),
    ("t.maybe = 150", []),
    ("t.k = ANY(CAST('{15,950}' AS BIGINT[]))", [0, 9]),
])
def test_zone_map_keeps_only_zones_a_row_of_which_may_match(condition, zones):
    table = _table()
    assert _kept(ZoneMap(table, zone_rows=100), condition) == zones


@pytest.mark.parametrize("condition", [
    "t.ratio < 1",                       # floating point: never pruned (NaN ordering)
    "t.k + 1 = 5",                       # arithmetic on the column
    "NOT t.k = 5",                       # negation
    "t.k = t.maybe",                     # two columns
    "t.amount < CAST(0.055 AS DECIMAL(10, 2))",  # a cast that may round
    "t.day < '2024-02-01'",              # a text literal against a date: DataFusion coerces, the map keeps all
    "t.k IN (SELECT 1)",                 # a sub-query it cannot see
    "t.k BETWEEN SYMMETRIC 450 AND 250",
    "lower(t.name) = 'x'",
    "other.k = 5",                       # another table's column
])
def test_zone_map_keeps_every_zone_for_what_it_does_not_understand(condition):
    table = _table()
    assert _kept(ZoneMap(table, zone_rows=100), condition) == list(range(10))


def test_zone_map_prunes_by_a_semi_join_keys_table():
    table = _table()
    zones = ZoneMap(table, zone_rows=100)
    keys = pa.array([3, 4, 612], pa.int64())
    assert _kept(zones, "t.k IN (SELECT k FROM __keys_f1_0)", tables={"__keys_f1_0": keys}) == [0, 6]
    assert _kept(zones, "t.k IN (SELECT k FROM __unknown)", tables={"__keys_f1_0": keys}) == list(range(10))


def test_zone_slices_are_the_kept_rows_in_order():
    table = _table()
    zones = ZoneMap(table, zone_rows=100)
    keep = zones.keep(_where("t.k < 150 OR t.k >= 950"), "t")
    kept = pa.concat_tables(zones.slices(table, keep))
    assert kept.column("k").to_pylist() == list(range(200)) + list(range(900, 1000))
    empty = table.slice(0, 0)
    assert ZoneMap(empty).keep(_where("t.k = 1"), "t") == [False]


def test_zone_map_does_not_keep_its_table_alive():
    import gc
    import weakref

    table = _table()
    alive = weakref.ref(table)
    zones = ZoneMap(table, zone_rows=100)
    assert _kept(zones, "t.k = 250") == [2]
    del table
    gc.collect()
    assert alive() is None
    assert _kept(zones, "t.k = 250") == [2]  # statistics already made stay
    assert _kept(zones, "t.name = 'n0250'") == list(range(10))  # none can be made now: every zone kept


@pytest.mark.parametrize("condition", [
    "t.k = 250", "t.k BETWEEN 350 AND 420 OR t.name < 'n0030'", "t.day >= DATE '2024-03-01' AND t.amount < 200",
    "t.maybe IS NULL OR t.maybe > 990", "t.k IN (1, 2, 501) AND t.maybe IS NULL", "t.name > 'n0998'",
])
def test_filtering_the_kept_zones_gives_the_same_rows_as_filtering_everything(condition):
    table = _table()
    zones = ZoneMap(table, zone_rows=64)
    kept = list(zones.slices(table, zones.keep(_where(condition), "t")))
    sql = f"SELECT k FROM data AS t WHERE {condition} ORDER BY k"
    whole, pruned = SessionContext(), SessionContext()
    whole.register_record_batches("data", [table.to_batches()])
    pruned.register_record_batches("data", [[b for t in kept for b in t.to_batches()] or
                                            [pa.RecordBatch.from_pylist([], schema=table.schema)]])
    assert pruned.sql(sql).to_arrow_table().column(0).to_pylist() == whole.sql(sql).to_arrow_table().column(0).to_pylist()


# -- end to end: real sources -----------------------------------------------------------------------------

EVENTS = 3000


def _events() -> list[tuple]:
    return [(i, DAY0 + dt.timedelta(days=i // 20), decimal.Decimal(i) / 4, None if i % 7 == 0 else f"n{i}")
            for i in range(1, EVENTS + 1)]


@pytest.fixture(scope="module")
def sources(pg_database, mysql_database, tmp_path_factory):
    """events(id, day, amount, note) in PostgreSQL (schema prune_test), MariaDB and a Parquet file, in id order."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    rows = _events()
    with pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA prune_test")
        cur.execute("CREATE TABLE prune_test.events (id integer PRIMARY KEY, day date, amount numeric(10,2), note text)")
        cur.executemany("INSERT INTO prune_test.events VALUES ($1, $2, $3::numeric, $4)",
                        [(i, d, str(a), n) for i, d, a, n in rows])
    database = mysql_database.rsplit("/", 1)[1]
    conn = pymysql.connect(database=database, autocommit=True, **_mysql_params(MYSQL_URI))
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE prune_events (id int PRIMARY KEY, day date, amount decimal(10,2), note varchar(20))")
        cur.executemany("INSERT INTO prune_events VALUES (%s, %s, %s, %s)", rows)
    conn.close()
    lake = tmp_path_factory.mktemp("prune_lake")
    pq.write_table(pa.table({
        "id": pa.array([r[0] for r in rows], pa.int32()), "day": pa.array([r[1] for r in rows], pa.date32()),
        "amount": pa.array([r[2] for r in rows], pa.decimal128(10, 2)), "note": [r[3] for r in rows],
    }), lake / "prune_events.parquet")
    return {"pg": pg_database, "maria": mysql_database, "maria_db": database, "lake": lake}


TABLES = {"pg": "pg.prune_test.events", "maria": "maria.{db}.prune_events", "lake": "lake.main.prune_events"}


def _gateway(sources, tmp: Path) -> QueryEngine:
    rule = {"cache_ttl_s": 3600}
    gw = QueryEngine(settings_from_dict({"sources": [
        {"name": "pg", "kind": "postgresql", "uri": sources["pg"], **rule},
        {"name": "maria", "kind": "mysql", "uri": sources["maria"], **rule},
        {"name": "lake", "kind": "parquet", "path": str(sources["lake"]), **rule},
    ], "cache": {"memory_bytes": 64 << 20, "admit_after": 1}}, base_dir=tmp))
    gw.scanner.zone_rows = 100  # 30 zones of the 3,000 rows
    return gw


def _name(sources, source: str) -> str:
    return TABLES[source].format(db=sources["maria_db"])


def _want(lo: int, hi: int) -> list[tuple]:
    return [(i, a) for i, _, a, _ in _events() if lo <= i <= hi]


@pytest.mark.parametrize("source", ["pg", "maria", "lake"])
def test_a_selective_query_reads_only_the_zones_its_filter_allows(sources, tmp_path, source):
    gw = _gateway(sources, tmp_path)
    name = _name(sources, source)
    gw.cache_warm(name)
    connector = gw.catalog.connector(source)
    before = connector.scans
    result = gw.execute(f"SELECT id, amount FROM {name} WHERE id BETWEEN 1234 AND 1250")
    got = sorted((r["id"], r["amount"]) for r in result.reader.read_all().to_pylist())
    assert got == _want(1234, 1250)
    assert connector.scans == before  # served by the cache alone
    uses = [u for f in result.stats.fragments for u in f.partitions]
    assert [(u.status, u.zones) for u in uses] == [("cached", "kept 1 of 30 zones")]
    gw.close()


@pytest.mark.parametrize("source", ["pg", "maria", "lake"])
def test_a_filter_no_zone_can_satisfy_returns_no_rows_without_asking_the_source(sources, tmp_path, source):
    gw = _gateway(sources, tmp_path)
    name = _name(sources, source)
    gw.cache_warm(name)
    before = gw.catalog.connector(source).scans
    result = gw.execute(f"SELECT id FROM {name} WHERE id > 100000")
    assert result.reader.read_all().num_rows == 0
    assert gw.catalog.connector(source).scans == before
    assert [u.zones for f in result.stats.fragments for u in f.partitions] == ["kept 0 of 30 zones"]
    gw.close()


@pytest.mark.parametrize("source", ["pg", "maria", "lake"])
def test_native_view_reads_cached_zones_in_the_callers_session(sources, tmp_path, source):
    gw = _gateway(sources, tmp_path)
    name = _name(sources, source)
    sql = f"SELECT id, amount FROM {name} WHERE day >= DATE '2024-03-01' AND id IN (SELECT k FROM __keys_t)"
    fragment = gw.plan(f"SELECT id, amount FROM {name} WHERE day >= DATE '2024-03-01'").fragments[0]
    ctx = SessionContext()
    assert gw.scanner.native_view(fragment, ctx) is None  # nothing cached yet: the caller fetches
    gw.cache_warm(name)
    # the fragment as a dynamic filter leaves it for an in-place read: a semi-join against a keys table
    restricted = fragment.ast.copy().where(sqlglot.parse_one("id IN (SELECT k FROM __keys_t)"))
    fragment = dataclasses.replace(fragment, ast=restricted, sql=sql)
    ctx.register_record_batches("__keys_t", [[keys_batch(pa.array([1205, 1207, 2999, 5], pa.int64()))]])
    uses: list = []
    view = gw.scanner.native_view(fragment, ctx, uses=uses)
    assert view is not None
    got = sorted((r["id"], r["amount"]) for r in view.to_arrow_table().to_pylist())
    assert got == [(i, a) for i, a in _want(1, EVENTS) if i in (1205, 1207, 2999)]  # day filter drops id 5
    assert [(u.status, u.zones) for u in uses] == [("cached", "kept 2 of 30 zones")]
    assert view.schema().names == fragment.schema.names
    gw.close()


def test_a_join_of_cached_sources_answers_as_the_sources_do_without_asking_them(sources, tmp_path):
    """A residual plan over cached fragments of two sources (a small filtered side, a large one the dynamic
    filter may restrict): exactly the rows of the data, and no statement sent to either source."""
    gw = _gateway(sources, tmp_path)
    for source in ("pg", "lake"):
        gw.cache_warm(_name(sources, source))
    before = {s: gw.catalog.connector(s).scans for s in ("pg", "lake")}
    sql = (f"SELECT l.id, l.amount FROM {_name(sources, 'pg')} AS p JOIN {_name(sources, 'lake')} AS l "
           "ON p.id = l.id WHERE p.day = DATE '2024-03-05' AND l.amount >= 300")
    got = sorted((r["id"], r["amount"]) for r in gw.execute(sql).reader.read_all().to_pylist())
    day = DAY0 + dt.timedelta(days=64)
    assert got == [(i, a) for i, d, a, _ in _events() if d == day and a >= 300] and len(got) == 20
    assert {s: gw.catalog.connector(s).scans for s in ("pg", "lake")} == before
    gw.close()
