"""Dynamic filters past the old fixed limits, on the real servers: large key sets rendered by PostgreSQL's and
MariaDB's ``key_filter`` keep exactly the rows their keys match (int, bigint, decimal, date and text keys, text
with quotes, backslashes, braces and control characters), within a byte bound past which a range (or, for
text, nothing) is sent; and a build side above the old 200,000-row limit restricts a probe far larger."""

from __future__ import annotations

import datetime
import decimal

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from tests.sources import fresh_mysql_database, fresh_pg_database, mysql_params, with_database

#: table rows; every 97th row is NULL in each key column (NULLs are never keys)
ROWS = 45_000
#: keys sent: past the default IN_LIST_LIMIT (20,000) and MariaDB's one-node-per-key bound (1,000)
KEYS = 21_000


def _value(column: str, g: int) -> object:
    """Row ``g``'s value in ``column`` (as the tables below are filled by the servers themselves)."""
    if column == "i":
        return 3 * g
    if column == "b":
        return 3 * g + 5_000_000_000
    if column == "d":
        return decimal.Decimal(3 * g) / 100
    if column == "dt":
        return datetime.date(2000, 1, 1) + datetime.timedelta(days=g)
    return f"k'{g}\" {{x,y}} é" + ("\\" if g % 3 == 0 else "") + ("\t" if g % 5 == 0 else "")


ARROW_TYPES = {"i": pa.int32(), "b": pa.int64(), "d": pa.decimal128(15, 2), "dt": pa.date32(), "s": pa.string()}
#: the text keys that are not made of ``g``: the empty string and the word NULL
EXTRA_TEXT = {ROWS + 1: "", ROWS + 2: "NULL"}


def _keys_and_expected(column: str) -> tuple[pa.Array, set[int]]:
    """``KEYS`` keys of ``column`` (every other row's, and keys no row has) and the ids of the rows they match."""
    chosen = list(range(1, ROWS + 1, 2))[: KEYS - 500]
    absent = range(ROWS + 10, ROWS + 510)  # keys no row holds
    values = [_value(column, g) for g in [*chosen, *absent]]
    expected = {g for g in chosen if g % 97}
    if column == "s":
        values += list(EXTRA_TEXT.values())
        expected |= set(EXTRA_TEXT)
    return pa.array(values, ARROW_TYPES[column]), expected


def _ids(connector, column: str, condition: exp.Expression, table: exp.Table) -> set[int]:
    select = exp.select(exp.column("id", table="t")).from_(table.as_("t")).where(condition)
    return set(connector.fetch_table(select.sql(dialect=connector.dialect)).column(0).to_pylist())


@pytest.fixture(scope="module")
def pg_keys(pg_server):
    """A PostgreSQL connector over a database of its own holding ``public.t`` (``ROWS`` rows and two text rows)."""
    import adbc_driver_postgresql.dbapi as pg

    from connectors.postgresql import PostgreSQLConnector

    with fresh_pg_database(pg_server, "gw_keys_") as uri:
        with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            nulled = "CASE WHEN g % 97 = 0 THEN NULL ELSE {} END"
            cur.execute("CREATE TABLE t (id int PRIMARY KEY, i int, b bigint, d numeric(15, 2), dt date, s text)")
            cur.execute(
                "INSERT INTO t SELECT g, " + ", ".join(nulled.format(e) for e in (
                    "3 * g", "3 * g + 5000000000::bigint", "(3 * g)::numeric / 100", "DATE '2000-01-01' + g",
                    "'k''' || g || '\" {x,y} é' || CASE WHEN g % 3 = 0 THEN chr(92) ELSE '' END"
                    " || CASE WHEN g % 5 = 0 THEN chr(9) ELSE '' END",
                )) + f" FROM generate_series(1, {ROWS}) AS g")
            for g, text in EXTRA_TEXT.items():
                cur.execute(f"INSERT INTO t (id, s) VALUES ({g}, '{text}')")
            cur.execute("INSERT INTO t (id, s) VALUES (0, NULL)")
        connector = PostgreSQLConnector("pg", {"uri": uri})
        yield connector, exp.table_("t", db="public")
        connector.close()


@pytest.fixture(scope="module")
def maria_keys(mysql_server):
    """A MariaDB connector over a database of its own holding ``t`` (as ``pg_keys``; utf8mb4, the default
    case-insensitive collation, which no two of its texts collide under)."""
    import pymysql

    from connectors.mysql import MySQLConnector

    with fresh_mysql_database(mysql_server, "gw_keys_") as name:
        conn = pymysql.connect(autocommit=True, database=name, **mysql_params(mysql_server))
        with conn.cursor() as cur:
            nulled = "CASE WHEN seq % 97 = 0 THEN NULL ELSE {} END"
            cur.execute("CREATE TABLE t (id int PRIMARY KEY, i int, b bigint, d decimal(15, 2), dt date, s text)")
            cur.execute(
                "INSERT INTO t SELECT seq, " + ", ".join(nulled.format(e) for e in (
                    "3 * seq", "3 * seq + 5000000000", "3 * seq / 100", "DATE'2000-01-01' + INTERVAL seq DAY",
                    "CONCAT('k''', seq, '\" {x,y} é', IF(seq % 3 = 0, CHAR(92 USING utf8mb4), ''),"
                    " IF(seq % 5 = 0, CHAR(9 USING utf8mb4), ''))",
                )) + f" FROM seq_1_to_{ROWS}")
            for g, text in EXTRA_TEXT.items():
                cur.execute(f"INSERT INTO t (id, s) VALUES ({g}, '{text}')")
            cur.execute("INSERT INTO t (id, s) VALUES (0, NULL)")
        conn.close()
        connector = MySQLConnector("maria", {"uri": with_database(mysql_server, name)})
        yield connector, exp.table_("t", db=name)
        connector.close()


@pytest.mark.parametrize("column", ["i", "b", "d", "dt", "s"])
def test_postgresql_array_keeps_exactly_the_rows_of_its_keys(pg_keys, column):
    connector, table = pg_keys
    keys, expected = _keys_and_expected(column)
    condition = connector.key_filter(exp.column(column, table="t"), keys)
    assert isinstance(condition, exp.EQ) and isinstance(condition.expression, exp.Any)
    assert _ids(connector, column, condition, table) == expected


@pytest.mark.parametrize("column", ["i", "b", "d", "dt", "s"])
def test_mariadb_key_list_keeps_exactly_the_rows_of_its_keys(maria_keys, column):
    connector, table = maria_keys
    keys, expected = _keys_and_expected(column)
    condition = connector.key_filter(exp.column(column, table="t"), keys)
    assert isinstance(condition, exp.In) and len(condition.expressions) == 1  # one token of text
    assert _ids(connector, column, condition, table) == expected
    few = connector.key_filter(exp.column(column, table="t"), keys[:50])
    assert len(few.expressions) == 50  # few keys: one node each (``split`` counts them)
    assert _ids(connector, column, few, table) == expected & {g for g in range(1, 100, 2)}


def test_mariadb_key_list_is_bounded_by_the_servers_packet(maria_keys, monkeypatch):
    """Past ``KEY_TEXT_SHARE`` of max_allowed_packet, numbers get a range and text nothing."""
    connector, table = maria_keys
    assert connector._max_packet() >= 1 << 20  # read from the server
    monkeypatch.setattr(connector, "_packet", 40_000)
    numbers, expected = _keys_and_expected("b")
    condition = connector.key_filter(exp.column("b", table="t"), numbers)
    assert isinstance(condition, exp.Between)
    assert expected <= _ids(connector, "b", condition, table)  # wider, never narrower
    assert connector.key_filter(exp.column("s", table="t"), _keys_and_expected("s")[0]) is None


def test_postgresql_array_is_bounded_in_bytes(pg_keys, monkeypatch):
    from connectors import postgresql

    connector, _ = pg_keys
    monkeypatch.setattr(postgresql, "ARRAY_MAX_BYTES", 1_000)
    condition = connector.key_filter(exp.column("d", table="t"), _keys_and_expected("d")[0])
    assert isinstance(condition, exp.Between)
    assert connector.key_filter(exp.column("s", table="t"), _keys_and_expected("s")[0]) is None


def test_key_lists_render_fast():
    """Rendering is text, not a sqlglot node per key: 200,000 decimal keys in well under a second's work each
    (as nodes, 20,000 took seconds)."""
    import time

    from connectors.mysql import MySQLConnector
    from connectors.postgresql import PostgreSQLConnector

    keys = pa.array([decimal.Decimal(k) / 100 for k in range(200_000)], pa.decimal128(15, 2))
    mysql = MySQLConnector("m", {"uri": "mysql://nobody@127.0.0.1:1/none"})
    mysql._packet = 64 << 20
    select = sqlglot.parse_one("SELECT t.d FROM x.t AS t", read="mysql")
    for connector in (mysql, PostgreSQLConnector("pg", {"uri": "postgresql://nobody@127.0.0.1:1/none"})):
        started = time.process_time()
        condition = connector.key_filter(exp.column("d", table="t"), keys)
        sql = select.copy().where(condition).sql(dialect=connector.dialect)
        assert time.process_time() - started < 2.0 and "1999.99" in sql


#: the federation test's sizes: a build of ``BUILD`` rows (above the old fixed 200,000) out of ``BUILD_TABLE``,
#: a probe table of ``PROBE`` rows (a tenth of it is 300,000: the build is waited for)
BUILD, BUILD_TABLE, PROBE = 250_000, 300_000, 3_000_000


@pytest.fixture(scope="module")
def large_build(pg_server, mysql_server, tmp_path_factory):
    """A gateway over MariaDB table ``b`` (``BUILD_TABLE`` rows, ids 1..) and PostgreSQL table ``p``
    (``PROBE`` rows, keys 1..), each in a database of its own, filled by the servers themselves."""
    import adbc_driver_postgresql.dbapi as pg
    import pymysql

    from gateway.execution.engine import QueryEngine
    from gateway.settings import settings_from_dict

    with fresh_pg_database(pg_server, "gw_build_") as uri, fresh_mysql_database(mysql_server, "gw_build_") as name:
        with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE TABLE p AS SELECT g::bigint AS k, g % 1000 AS v FROM generate_series(1, {PROBE}) AS g")
            cur.execute("ANALYZE p")
        conn = pymysql.connect(autocommit=True, database=name, **mysql_params(mysql_server))
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE b (id int PRIMARY KEY, x int)")
            cur.execute(f"INSERT INTO b SELECT seq, seq % 7 FROM seq_1_to_{BUILD_TABLE}")
            cur.execute("ANALYZE TABLE b")
        conn.close()
        settings = settings_from_dict({"sources": [
            {"name": "pg", "kind": "postgresql", "uri": uri},
            {"name": "maria", "kind": "mysql", "uri": with_database(mysql_server, name)},
        ]}, base_dir=tmp_path_factory.mktemp("build"))
        engine = QueryEngine(settings)
        yield engine, name
        engine.close()


def test_a_build_above_200000_rows_restricts_a_far_larger_probe(large_build):
    engine, name = large_build
    sql = (f"SELECT b.id, b.x, p.v FROM maria.{name}.b AS b JOIN pg.public.p AS p ON p.k = b.id "
           f"WHERE b.id <= {BUILD}")
    result = engine.execute(sql)
    table = result.reader.read_all()
    assert table.num_rows == BUILD
    assert sorted(table.column("id").to_pylist()) == list(range(1, BUILD + 1))
    assert all(v == i % 1000 for i, v in zip(table.column("id").to_pylist(), table.column("v").to_pylist(), strict=True))
    probe = next(f for f in result.stats.fragments if f.source == "pg")
    assert probe.rows == BUILD, probe.dynamic_filter  # was: all 3,000,000 (the build passed 200,000 rows)
    assert f"= ANY(array of {BUILD} values)" in probe.dynamic_filter
    assert f"{BUILD:,} build rows" in probe.dynamic_filter and "of the probe's estimated" in probe.dynamic_filter
    assert "of the probe's estimated" in engine.explain(sql, analyze=True)


def test_long_fragment_sql_is_shortened_in_history_and_errors():
    """A fragment restricted by a large key set may be megabytes of SQL: the query history and error details
    keep its first SQL_KEPT_CHARS characters and say how long it was."""
    from connectors.errors import SQL_KEPT_CHARS, SourceQueryError
    from gateway.metrics import FragmentStats

    sql = "SELECT a FROM t WHERE a IN (" + ",".join(str(i) for i in range(200_000)) + ")"
    kept = FragmentStats("__fragment_0", "pg", sql).sql
    assert kept.startswith(sql[:1000]) and len(kept) < SQL_KEPT_CHARS + 100
    assert f"({len(sql):,} characters in all)" in kept
    assert FragmentStats("__fragment_0", "pg", "SELECT 1").sql == "SELECT 1"
    error = SourceQueryError("pg", "canceling statement", sql)
    assert len(str(error.details)) < SQL_KEPT_CHARS + 200
