"""Table and column statistics of every source kind, on one 200,000-row table with known distributions loaded
into the real PostgreSQL, MariaDB, SQLite, Parquet and CSV; and the catalog's statistics cache.

The table ``t``: ``id`` 1..N (unique), ``k = id % 100`` (100 values 0..99), ``grp = 'g' || id % 10`` (10 values),
``v`` NULL for every fifth row (null fraction 0.2), ``d = 2020-01-01 + id % 365 days`` (365 values),
``hot`` = 'hot' on even rows (frequency 0.5). Databases analyze ``t`` (the test owns them); ``raw`` is the same
table never analyzed (statistics from a bounded sample). Tolerances: rows 10%, distinct counts 10% (a sample's
scaled estimate of the unique ``id`` 20%), null fraction 0.02, ``id`` min/max within 1% of N (databases keep
the bounds of their own sample), other bounds exact.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import time

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from catalog.catalog import Catalog, TableRef
from catalog.statistics import statistics_as_dict
from connectors.files import CsvConnector, ParquetConnector
from connectors.mysql import MySQLConnector
from connectors.postgresql import PostgreSQLConnector
from connectors.sqlite import SQLiteConnector
from tests.sources import fresh_mysql_database, fresh_pg_database, mysql_params, with_database

N = 200_000
#: seconds collecting the statistics of the 200,000-row table may take, per source
BOUND_S = 2.0


def _rows() -> pa.Table:
    ids = list(range(1, N + 1))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "k": pa.array([i % 100 for i in ids], pa.int64()),
        "grp": [f"g{i % 10}" for i in ids],
        "v": [None if i % 5 == 0 else i / 1000 for i in ids],
        "d": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i % 365) for i in ids], pa.date32()),
        "hot": ["hot" if i % 2 == 0 else f"c{i % 1000}" for i in ids],
    })


PG_SELECT = ("SELECT i, i % 100, 'g' || (i % 10), CASE WHEN i % 5 = 0 THEN NULL ELSE i / 1000.0 END, "
             "date '2020-01-01' + (i % 365), CASE WHEN i % 2 = 0 THEN 'hot' ELSE 'c' || (i % 1000) END "
             f"FROM generate_series(1, {N}) i")
MARIA_SELECT = ("SELECT seq, seq % 100, concat('g', seq % 10), IF(seq % 5 = 0, NULL, seq / 1000.0), "
                "date '2020-01-01' + interval (seq % 365) day, IF(seq % 2 = 0, 'hot', concat('c', seq % 1000)) "
                f"FROM seq_1_to_{N}")


@pytest.fixture(scope="module")
def postgres(pg_server):
    """A PostgreSQL database with ``t`` (analyzed) and ``raw`` (autovacuum off, never analyzed)."""
    import adbc_driver_postgresql.dbapi as pg

    with fresh_pg_database(pg_server, "gw_stats_") as uri:
        with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            for table, options in (("t", ""), ("raw", " WITH (autovacuum_enabled = false)")):
                cur.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, k bigint, grp text, v float8, d date, "
                            f"hot text){options}")
                cur.execute(f"INSERT INTO {table} {PG_SELECT}")
            cur.execute("ANALYZE t")
        connector = PostgreSQLConnector("pg", {"uri": uri})
        yield connector
        connector.close()


@pytest.fixture(scope="module")
def maria(mysql_server):
    """A MariaDB database with ``t`` (ANALYZE TABLE: engine-independent statistics) and ``raw`` (not
    analyzed)."""
    import pymysql

    with fresh_mysql_database(mysql_server, "gw_stats_") as name:
        with pymysql.connect(database=name, autocommit=True, **mysql_params(mysql_server)) as conn, \
                conn.cursor() as cur:  # seq_1_to_N: MariaDB's Sequence engine, in the current database
            for table in ("t", "raw"):
                cur.execute(f"CREATE TABLE {name}.{table} (id bigint PRIMARY KEY, k bigint, grp varchar(10), "
                            "v double, d date, hot varchar(10), KEY (k)) ENGINE=InnoDB")
                cur.execute(f"INSERT INTO {name}.{table} {MARIA_SELECT}")
            cur.execute(f"ANALYZE TABLE {name}.t PERSISTENT FOR ALL")
        yield MySQLConnector("maria", {"uri": with_database(mysql_server, name)}), name


@pytest.fixture(scope="module")
def sqlite_path(tmp_path_factory):
    """A SQLite file with ``t`` (ANALYZE: sqlite_stat1) and ``raw`` (not analyzed), each with an index on k."""
    path = tmp_path_factory.mktemp("stats") / "stats.db"
    data = _rows().to_pylist()
    with sqlite3.connect(path) as conn:
        for table in ("t", "raw"):
            conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, k INTEGER, grp TEXT, v REAL, d DATE, "
                         "hot TEXT)")
            conn.execute(f"CREATE INDEX {table}_k ON {table}(k)")
            conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?)",
                             ((r["id"], r["k"], r["grp"], r["v"], r["d"].isoformat(), r["hot"]) for r in data))
        conn.execute("ANALYZE t")
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``t`` as Parquet (row groups of 20,000 rows: footers combined) and as CSV."""
    root = tmp_path_factory.mktemp("stats_files")
    (root / "parquet").mkdir()
    (root / "csv").mkdir()
    table = _rows()
    pq.write_table(table, root / "parquet" / "t.parquet", row_group_size=20_000)
    pcsv.write_csv(table, root / "csv" / "t.csv")
    return root


SOURCES = ["postgresql", "postgresql-unanalyzed", "mariadb", "mariadb-unanalyzed", "sqlite", "sqlite-unanalyzed",
           "parquet", "csv"]


@pytest.fixture(params=SOURCES)
def source(request):
    """(kind, connector, schema, table) for each source kind, analyzed or not."""
    kind = request.param
    table = "raw" if kind.endswith("-unanalyzed") else "t"
    base = kind.removesuffix("-unanalyzed")
    if base == "postgresql":
        return kind, request.getfixturevalue("postgres"), "public", table
    if base == "mariadb":
        connector, schema = request.getfixturevalue("maria")
        return kind, connector, schema, table
    if base == "sqlite":
        return kind, SQLiteConnector("sqlite", {"path": str(request.getfixturevalue("sqlite_path"))}), "main", table
    root = request.getfixturevalue("folders")
    connector = (ParquetConnector if base == "parquet" else CsvConnector)(base, {"path": str(root / base)})
    return kind, connector, "main", table


@pytest.fixture
def collected(source):
    """(kind, statistics, seconds the collection took)."""
    kind, connector, schema, table = source
    start = time.perf_counter()
    stats = connector.statistics(schema, table)
    elapsed = time.perf_counter() - start
    print(f"{kind}: statistics of {N} rows in {elapsed:.3f} s")
    return kind, stats, elapsed


def test_row_count_within_ten_percent(collected):
    kind, stats, _ = collected
    assert stats.rows == pytest.approx(N, rel=0.10), kind
    assert stats.bytes and stats.bytes > 0


def test_distinct_counts_within_tolerance(collected):
    kind, stats, _ = collected
    columns = stats.columns
    assert columns["k"].distinct == pytest.approx(100, rel=0.10), kind
    assert columns["grp"].distinct == pytest.approx(10, rel=0.10), kind
    assert columns["d"].distinct == pytest.approx(365, rel=0.10), kind
    assert columns["id"].distinct == pytest.approx(N, rel=0.20), kind  # a unique key, scaled from a sample


def test_null_fraction_within_two_points(collected):
    kind, stats, _ = collected
    assert stats.columns["v"].null_fraction == pytest.approx(0.2, abs=0.02), kind
    assert stats.columns["id"].null_fraction == pytest.approx(0.0, abs=0.001), kind


def test_min_and_max(collected):
    kind, stats, _ = collected
    columns = stats.columns
    assert (columns["k"].min, columns["k"].max) == (0, 99), kind
    assert (columns["grp"].min, columns["grp"].max) == ("g0", "g9"), kind
    assert (columns["d"].min, columns["d"].max) == (dt.date(2020, 1, 1), dt.date(2020, 12, 30)), kind
    assert columns["id"].min <= 0.01 * N and columns["id"].max >= 0.99 * N, kind


def test_most_common_value_and_its_frequency(collected):
    kind, stats, _ = collected
    if kind == "mariadb":
        pytest.skip("mysql.column_stats keeps histograms, not most-common values")
    value, frequency = stats.columns["hot"].most_common[0]
    assert value == "hot" and frequency == pytest.approx(0.5, abs=0.03), kind


def test_sampled_statistics_are_labelled_as_estimates(collected):
    kind, stats, _ = collected
    if kind in ("postgresql", "mariadb"):
        assert all("sample" not in c.origin for c in stats.columns.values()), kind
    else:
        assert "sample" in stats.columns["grp"].origin or stats.columns["grp"].origin.startswith("all"), kind


def test_collection_is_bounded_in_time(collected):
    kind, _, elapsed = collected
    assert elapsed < BOUND_S, f"{kind}: {elapsed:.2f} s"


def test_views_have_unknown_rows(postgres):
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(postgres.uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE VIEW hot_rows AS SELECT * FROM t WHERE hot = 'hot'")
    stats = postgres.statistics("public", "hot_rows")
    assert stats.rows is None and stats.columns == {}


def test_catalog_caches_statistics_until_refresh(sqlite_path):
    catalog = Catalog({"s": SQLiteConnector("s", {"path": str(sqlite_path)})})
    ref = TableRef("s", "main", "t")
    first = catalog.statistics(ref)
    assert first.rows == N
    assert catalog.statistics(ref) is first
    catalog.refresh("s")
    again = catalog.statistics(ref)
    assert again is not first and again == first


def test_catalog_statistics_refreshed_after_ttl(sqlite_path):
    catalog = Catalog({"s": SQLiteConnector("s", {"path": str(sqlite_path)})})
    catalog.statistics_cache.ttl_s = 0.0
    ref = TableRef("s", "main", "t")
    first = catalog.statistics(ref)
    time.sleep(0.01)
    catalog.statistics(ref)  # expired: answered at once (the last statistics) while collected again
    deadline = time.monotonic() + 5
    while catalog._statistics[ref].statistics is first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert catalog._statistics[ref].statistics is not first


def test_failing_source_gives_unknown_statistics_and_a_warning(tmp_path, caplog):
    catalog = Catalog({"gone": SQLiteConnector("gone", {"path": str(tmp_path / "missing.db")})})
    with caplog.at_level(logging.WARNING, logger="catalog.statistics"):
        stats = catalog.statistics(TableRef("gone", "main", "t"))
    assert (stats.rows, stats.bytes, stats.columns) == (None, None, {})
    assert any("statistics" in r.getMessage() and r.source == "gone" for r in caplog.records)


def test_statistics_as_dict_is_json_ready(postgres):
    data = json.loads(json.dumps(statistics_as_dict(postgres.statistics("public", "t"))))
    assert data["rows"] == pytest.approx(N, rel=0.10)
    assert data["columns"]["d"]["min"] == "2020-01-01"
    assert data["columns"]["v"]["null_fraction"] == pytest.approx(0.2, abs=0.02)


def test_sqlite_rows_of_a_sparse_integer_key_are_counted(tmp_path):
    """A table whose INTEGER PRIMARY KEY has gaps (64 keys over 0..4,340) is not estimated at its rowid span."""
    path = tmp_path / "sparse.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE picked (k INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO picked VALUES (?)", [(k,) for k in range(0, 4400, 70)])
    stats = SQLiteConnector("s", {"path": str(path)}).statistics("main", "picked")
    assert stats.rows == 63


def test_mariadb_composite_key_columns_get_their_own_distinct_counts(mysql_server):
    """A table keyed like TPC-H partsupp: (a, b) with 4 values of b per a, b's values repeating every 2,500 a.
    MariaDB reports the key's first column with the key's cardinality, and the table's first rows make b look
    unique; InnoDB's persistent statistics and a sample from random points of the key tell both apart."""
    import pymysql

    with fresh_mysql_database(mysql_server, "gw_stats_") as name:
        with pymysql.connect(database=name, autocommit=True, **mysql_params(mysql_server)) as conn, \
                conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {name}.pairs (a bigint, b bigint, PRIMARY KEY (a, b)) ENGINE=InnoDB")
            cur.execute(f"INSERT INTO {name}.pairs SELECT s.seq, (s.seq + 2500 * j.seq) % 10000 "
                        "FROM seq_1_to_50000 s, seq_0_to_3 j")
            cur.execute("SET SESSION use_stat_tables = 'NEVER'")  # InnoDB's statistics only, no column_stats
            cur.execute(f"ANALYZE TABLE {name}.pairs")
        stats = MySQLConnector("maria", {"uri": with_database(mysql_server, name)}).statistics(name, "pairs")
    # InnoDB estimates n_diff from a sample of leaf pages: 37,351 once in a full run (the key has 200,000 rows)
    assert stats.columns["a"].distinct == pytest.approx(50_000, rel=0.35)  # not the 200,000 rows of the key
    # sampled in slices whose starts are seeded by the (fresh, random) database's name: 14,262 once
    assert stats.columns["b"].distinct == pytest.approx(10_000, rel=0.5)  # not unique (200,000 rows)
