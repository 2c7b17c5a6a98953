"""IN lists that DataFusion 55 combines ignoring NULLs (apache/datafusion#24246) give SQL's answers through the
gateway: ``connectors.arrow.null_sets.guard_in_sets``, applied by the DataFusion dialect to every SQL text
DataFusion runs.

Golden cases of the rewrite (no database), a seeded differential check of the rewrite against SQLite over
random conditions, and the gateway end to end over a local Parquet and CSV source (a whole query pushed to the
source, read in place, a residual plan over two sources, cached partitions filtered locally) and over the
MariaDB fixture source. Expected rows come from SQLite, whose three-valued logic is SQL's, and for the first
reproduction also by hand.
"""

from __future__ import annotations

import random
import sqlite3

import datafusion
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import sqlglot

from connectors.arrow.dialect import DATAFUSION_DIALECT
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests import world

#: t(id, g, h): g holds 1..9 and a NULL, h other values and a NULL
T = pa.table({"id": pa.array(range(1, 11), pa.int32()),
              "g": pa.array([1, 2, 3, 4, 5, 6, 7, 8, 9, None], pa.int32()),
              "h": pa.array([1, 3, 3, None, 5, 1, 7, 8, 2, 4], pa.int32())})

#: conditions over t that DataFusion 55 answers wrongly without the guard (``test_datafusion_55_still_...``)
WRONG_IN_DATAFUSION_55 = [
    "NOT g IN (1) OR NOT g IN (NULL)",  # the fuzzer's finding: every row instead of g = 2..9
    "g NOT IN (1) OR g NOT IN (2)",  # keeps the NULL row
    "g IN (1, 2) AND g NOT IN (2, NULL)",  # keeps g = 1, where NOT IN (2, NULL) is NULL
    "g IN (1, NULL) AND g NOT IN (NULL)",
    "g NOT IN (1, NULL) OR g NOT IN (2)",
    "NOT (g IN (1) AND g IN (2))",  # NOT over AND: the NULL row
    "(g NOT IN (1) OR g NOT IN (2)) IS NULL",
    "(g IN (1) AND g IN (2)) IS NULL",
    "NOT (g = 1 OR g = 2) OR NOT (g = 3 OR g = 4)",  # = chains become IN lists first
    "g IN (h) AND g IN (id)",  # column items: no row at all, NULLs or not
    "NOT g IN (h) OR NOT g IN (id)",
    "NOT (g IN (3, NULL) OR g NOT IN (1, 2))",  # NOT over OR: an AND once DataFusion pushes the NOT down
    # both CASEs simplify to g, written differently (fuzz seed 3141592 #2460): keyed by the columns they read
    "NOT (NOT CASE WHEN NOT id IN (1, 2) THEN g ELSE g END IN (5) AND CASE WHEN NOT (id IN (1, 2)) THEN g ELSE g END"
    " IN (NULL))",
]


def sqlite(tables: dict[str, pa.Table]) -> sqlite3.Connection:
    """An in-memory SQLite database holding ``tables`` (SQLite's three-valued logic is SQL's)."""
    db = sqlite3.connect(":memory:")
    for name, table in tables.items():
        db.execute(f"CREATE TABLE {name} ({', '.join(table.column_names)})")
        db.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * table.num_columns)})",
                       list(zip(*(c.to_pylist() for c in table.columns), strict=True)))
    return db


def sqlite_ids(condition: str) -> list[int]:
    """The ids of t whose ``condition`` is TRUE, by SQLite."""
    return [r[0] for r in sqlite({"t": T}).execute(f"SELECT id FROM t WHERE {condition} ORDER BY id")]


def qualified(condition: str, tables: dict[str, str]) -> str:
    """``condition`` with each column qualified by ``tables[column]``."""
    tree = sqlglot.parse_one(condition, read="postgres")
    for column in tree.find_all(sqlglot.exp.Column):
        column.set("table", sqlglot.exp.to_identifier(tables[column.name]))
    return tree.sql(dialect="postgres")


def datafusion_ids(sql: str) -> list[int]:
    ctx = datafusion.SessionContext()
    ctx.register_record_batches("t", [T.to_batches()])
    return sorted(ctx.sql(sql).to_arrow_table().column(0).to_pylist())


def guarded(sql: str) -> str:
    return sqlglot.parse_one(sql, read="postgres").sql(dialect=DATAFUSION_DIALECT)


# -- the rewrite -------------------------------------------------------------------------------------------------

CASE = "CASE ({}) WHEN TRUE THEN TRUE WHEN FALSE THEN FALSE END"

GOLDEN = [
    # (condition, as the DataFusion dialect writes it)
    ("NOT g IN (1) OR NOT g IN (NULL)", "NOT g IN (1) OR " + CASE.format("NOT g IN (NULL)")),
    ("g IN (1, 2, 3) AND g NOT IN (2, NULL)", "g IN (1, 2, 3) AND " + CASE.format("NOT g IN (2, NULL)")),
    ("g IN (1) AND g IN (2, 3)", CASE.format("g IN (1)") + " AND g IN (2, 3)"),  # the longest list stays
    ("(g = 1 OR g = 2) AND g IN (3)", "(g = 1 OR g = 2) AND " + CASE.format("g IN (3)")),
    ("NOT (g = 1 OR g = 2) OR NOT (g = 3 OR g = 4)", "NOT (g = 1 OR g = 2) OR " + CASE.format("NOT (g = 3 OR g = 4)")),
    ("a.g IN (1) AND CAST(g AS BIGINT) IN (2)", "a.g IN (1) AND " + CASE.format("CAST(g AS BIGINT) IN (2)")),
]

UNCHANGED = [
    "g IN (1, 2) OR g IN (3)",  # a union: exact
    "NOT g IN (1) AND NOT g IN (2, NULL)",  # a union: exact
    "g = 1 OR g = 2 OR g = 3",
    "g <> 1 AND g <> 2 AND g IN (3, 4)",  # DataFusion keeps a plain <> chain as it is
    "g IN (1, 2) AND g <> 2",
    "g = 1 AND h IN (1, 2) AND s NOT IN ('a', NULL)",  # one test per column
    "g IN (SELECT g FROM u) AND g IN (1)",  # a sub-query is no list DataFusion combines
]


@pytest.mark.parametrize(("condition", "expected"), GOLDEN, ids=[c for c, _ in GOLDEN])
def test_guard_wraps_the_operands_datafusion_would_combine(condition, expected):
    assert guarded(f"SELECT 1 FROM t WHERE {condition}") == f"SELECT 1 FROM t WHERE {expected}"


@pytest.mark.parametrize("condition", UNCHANGED)
def test_guard_leaves_exact_and_single_tests_alone(condition):
    sql = f"SELECT 1 FROM t WHERE {condition}"
    assert guarded(sql) == sqlglot.parse_one(sql, read="postgres").sql(dialect="postgres")


def test_guard_is_idempotent_and_leaves_the_callers_tree_unchanged():
    tree = sqlglot.parse_one("SELECT g FROM t WHERE NOT g IN (1) OR NOT g IN (NULL)", read="postgres")
    before = tree.sql()
    once = tree.sql(dialect=DATAFUSION_DIALECT)
    assert tree.sql() == before
    assert sqlglot.parse_one(once, read=DATAFUSION_DIALECT).sql(dialect=DATAFUSION_DIALECT) == once


def test_guard_keeps_a_dynamic_filters_long_list_unwrapped():
    keys = ", ".join(str(i) for i in range(5000))
    sql = guarded(f"SELECT 1 FROM t WHERE NOT g IN (NULL) AND g IN ({keys})")
    assert f"AND g IN ({keys})" in sql and CASE.format("NOT g IN (NULL)") in sql


@pytest.mark.parametrize("condition", WRONG_IN_DATAFUSION_55)
def test_datafusion_55_still_answers_the_shape_wrongly(condition):
    """Why the guard exists: plain DataFusion (the pinned 55) answers each shape differently from SQLite. When
    this fails after an upgrade, apache/datafusion#24258 has landed and ``null_sets`` may go."""
    assert datafusion_ids(f"SELECT id FROM t WHERE {condition}") != sqlite_ids(condition)


@pytest.mark.parametrize("condition", WRONG_IN_DATAFUSION_55)
def test_guarded_sql_gives_sqlites_rows_in_datafusion(condition):
    assert datafusion_ids(guarded(f"SELECT id FROM t WHERE {condition}")) == sqlite_ids(condition)


def _random_condition(rng: random.Random, depth: int = 0) -> str:
    """A condition over t mixing IN / NOT IN lists (NULL and column items), = and <>, constants, NOTs."""
    r = rng.random()
    if depth < 3 and r < 0.45:
        return f"({_random_condition(rng, depth + 1)} {rng.choice(['AND', 'OR'])} {_random_condition(rng, depth + 1)})"
    if depth < 3 and r < 0.58:
        return f"NOT ({_random_condition(rng, depth + 1)})"
    subject = rng.choice(["g", "g", "g", "h", "(g + 0)"])
    if r < 0.8:
        items = ", ".join(rng.choice(["1", "2", "3", "4", "NULL", "h", "id"]) for _ in range(rng.randint(1, 3)))
        return f"{subject} {rng.choice(['IN', 'NOT IN'])} ({items})"
    if r < 0.93:
        return f"{subject} {rng.choice(['=', '<>'])} {rng.choice(['1', '2', '3', 'NULL'])}"
    return rng.choice(["g IS NULL", "h > 2", "TRUE", "FALSE", "NOT TRUE", "(g IN (1, NULL)) = TRUE"])


def test_guarded_random_conditions_give_sqlites_rows_in_datafusion():
    """300 seeded random conditions, each as WHERE c, WHERE NOT (c) and WHERE (c) IS NULL: DataFusion over the
    guarded SQL keeps the rows SQLite keeps."""
    rng = random.Random(24246)
    wrong = []
    for _ in range(300):
        condition = _random_condition(rng)
        for form in (condition, f"NOT ({condition})", f"({condition}) IS NULL"):
            if datafusion_ids(guarded(f"SELECT id FROM t WHERE {form}")) != sqlite_ids(form):
                wrong.append(form)
    assert not wrong, wrong[:5]


# -- the gateway end to end --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """t as t.parquet and t.csv in two folders, and a third Parquet folder for the cached source."""
    root = tmp_path_factory.mktemp("null_sets")
    for name in ("pq", "csv", "cached"):
        (root / name).mkdir()
    pq.write_table(T, root / "pq" / "t.parquet")
    pq.write_table(T, root / "cached" / "t.parquet")
    pcsv.write_csv(T, root / "csv" / "t.csv")
    return root


def _engine(folders, limits: dict | None = None, extra: list[dict] | None = None, cache: dict | None = None):
    sources = [{"name": "pq", "kind": "parquet", "path": str(folders / "pq")},
               {"name": "csv", "kind": "csv", "path": str(folders / "csv")},
               {"name": "cached", "kind": "parquet", "path": str(folders / "cached"), "cache_fingerprint": True},
               *(extra or [])]
    raw = {"sources": sources, "limits": limits or {}, **({"cache": cache} if cache else {})}
    return QueryEngine(settings_from_dict(raw, base_dir=folders))


@pytest.fixture(scope="module")
def gateways(folders):
    """The gateway as configured by default ("pushed": small file fragments run in their source's session) and
    reading file fragments in place inside the residual plan ("in_place")."""
    engines = {"pushed": _engine(folders), "in_place": _engine(folders, {"in_place_min_rows": 0})}
    yield engines
    for engine in engines.values():
        engine.close()


def _ids(engine: QueryEngine, sql: str) -> list[int]:
    return sorted(engine.execute(sql).reader.read_all().column(0).to_pylist())


@pytest.mark.parametrize("source", ["pq", "csv"])
@pytest.mark.parametrize("path", ["pushed", "in_place"])
def test_not_in_or_not_in_null_keeps_g_2_to_9_over_a_file_source(gateways, source, path):
    """The reproduction: NOT g IN (NULL) is NULL on every row, so the filter is g <> 1 OR NULL, TRUE for g in
    2..9 only (ids 2..9): neither g = 1 nor the NULL row."""
    sql = f"SELECT id FROM {source}.main.t WHERE NOT g IN (1) OR NOT g IN (NULL)"
    assert _ids(gateways[path], sql) == [2, 3, 4, 5, 6, 7, 8, 9]


def test_unaliased_output_keeps_the_name_of_the_expression_as_written(gateways):
    """DataFusion names an unaliased output after its text: the name is that of the query as sqlglot writes it
    (``NOT t.g IN ...``), without the guard's CASE."""
    sql = "SELECT g NOT IN (1) OR g NOT IN (2) FROM pq.main.t"
    result = gateways["pushed"].execute(sql).reader.read_all()
    ctx = datafusion.SessionContext()
    ctx.register_record_batches("t", [T.to_batches()])
    as_written = sqlglot.parse_one("SELECT g NOT IN (1) OR g NOT IN (2) FROM t", read="postgres").sql("postgres")
    assert result.column_names == ctx.sql(as_written).schema().names
    assert "CASE" not in result.column_names[0]
    assert result.column(0).to_pylist() == [True] * 9 + [None]


@pytest.mark.parametrize("source", ["pq", "csv"])
@pytest.mark.parametrize("path", ["pushed", "in_place"])
@pytest.mark.parametrize("condition", WRONG_IN_DATAFUSION_55)
def test_whole_query_pushed_to_a_file_source_gives_sqlites_rows(gateways, source, path, condition):
    sql = f"SELECT id FROM {source}.main.t WHERE {condition}"
    assert _ids(gateways[path], sql) == sqlite_ids(condition)


@pytest.mark.parametrize("condition", WRONG_IN_DATAFUSION_55)
def test_residual_plan_over_two_file_sources_gives_sqlites_rows(gateways, condition):
    """The condition over both sides of a join between the Parquet and the CSV source (g, h, id from either),
    so DataFusion's residual plan evaluates what the planner cannot push."""
    mixed = qualified(condition, {"g": "p", "h": "c", "id": "c"})
    sql = f"SELECT p.id FROM pq.main.t AS p JOIN csv.main.t AS c ON p.id = c.id WHERE {mixed}"
    plan = gateways["pushed"].plan(sql)
    assert _ids(gateways["pushed"], sql) == sqlite_ids(condition)
    if "c." in mixed:  # the condition stays in the residual plan, guarded
        assert plan.residual_sql is not None and "CASE (" in plan.residual_sql


def test_cached_partitions_filtered_locally_give_sqlites_rows(folders):
    """A Parquet source with a cache rule: the second run reads the cached partition and filters it in a local
    DataFusion session, which gets the guarded condition too."""
    engine = _engine(folders, cache={"memory_bytes": 64 << 20, "admit_after": 1})
    try:
        for condition in WRONG_IN_DATAFUSION_55[:5]:
            sql = f"SELECT id FROM cached.main.t WHERE {condition}"
            first, second = engine.execute(sql), engine.execute(sql)
            statuses = [u.status for f in second.stats.fragments for u in f.partitions]
            assert statuses == ["cached"]
            assert sorted(first.reader.read_all().column(0).to_pylist()) == sqlite_ids(condition)
            assert sorted(second.reader.read_all().column(0).to_pylist()) == sqlite_ids(condition)
    finally:
        engine.close()


# -- over the MariaDB fixture source -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def with_maria(folders, mysql_database):
    """The file sources and ``maria``: the world's MariaDB database (the fuzzer's dim and t1 among its tables)."""
    engine = _engine(folders, extra=[{"name": "maria", "kind": "mysql", "uri": mysql_database}])
    yield engine, mysql_database.rsplit("/", 1)[1]
    engine.close()


def test_fuzz_finding_over_maria_keeps_rows_whose_g_is_not_1(with_maria):
    """The fuzzer's query, whole to MariaDB: dim.g is never NULL, so every row but those with g = 1."""
    engine, database = with_maria
    dim = world.fuzz_table("dim")
    want = sorted(i for i, g in zip(dim.column("id").to_pylist(), dim.column("g").to_pylist(), strict=True) if g != 1)
    sql = f"SELECT a1.id FROM maria.{database}.dim AS a1 WHERE NOT a1.g IN (1) OR NOT a1.g IN (NULL)"
    assert _ids(engine, sql) == want


@pytest.mark.parametrize("condition", [
    "NOT m.n IN (1) OR NOT m.n IN (NULL)",
    "NOT m.n IN (p.g) OR NOT m.n IN (1)",  # a list item from the Parquet side: evaluated in the residual plan
    "m.n IN (p.g, 2) AND m.n NOT IN (p.h, NULL)",
    "NOT (m.n IN (p.g) AND m.n IN (3))",
])
def test_join_of_maria_and_parquet_gives_sqlites_rows(with_maria, condition):
    """t1.n (half NULL) from MariaDB against t from the Parquet source, joined on id: a condition on MariaDB's
    column alone runs in MariaDB, one with a Parquet column among its list items in DataFusion's residual plan."""
    engine, database = with_maria
    t1 = world.fuzz_table("t1").select(["id", "n"])
    sql = f"SELECT p.id FROM maria.{database}.t1 AS m JOIN pq.main.t AS p ON m.id = p.id WHERE {condition}"
    db = sqlite({"t": T, "m": t1})
    want = [r[0] for r in db.execute(
        f"SELECT t.id FROM m JOIN t ON m.id = t.id WHERE {condition.replace('p.', 't.')} ORDER BY t.id")]
    assert _ids(engine, sql) == want


def test_guard_reaches_the_where_of_an_in_sub_query():
    """An IN sub-query has no list: it was skipped as a list of literals, and its WHERE went unguarded (fuzz seed
    5050505: the NULL dates of a SQLite table came back)."""
    inner = "NOT dt IN (CAST('2022-01-01' AS DATE)) OR NOT dt IN (CAST('2023-03-15' AS DATE))"
    sql = guarded(f"SELECT k FROM a WHERE k IN (SELECT id FROM b WHERE {inner})")
    assert CASE.format("NOT dt IN (CAST('2023-03-15' AS DATE))") in sql
