"""The hash-partitioned join stage without Ray (``LocalExecutor``): an inner equi-join of two split fragments
runs as N join tasks over hash partitions, and the results equal the local engine's on many shapes: NULL
keys, duplicate keys, multi-column keys, int/text/date/decimal keys (also of different widths and scales on
the two sides), extra conditions, aggregates, ORDER BY/LIMIT above the join, a third table, a PostgreSQL side
cut into ctid ranges. Joins it must not take stay in the residual plan. A fragment of a source with a cache
rule is split by cache partition: the cached ones are read from the cache, only the others by tasks (also as
a side of a join stage). ~10 s (with the shared TPC-H world)."""

from __future__ import annotations

import datetime
import decimal
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway.distributed import Distributor, LocalExecutor
from gateway.distributed.hashing import column_hash, key_kind, partition
from gateway.errors import ExecutionError, QueryCancelledError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.distributed.conftest import distributed_settings, run_and_cancel
from tests.distributed.test_local_executor import FlakyExecutor
from tests.tpch import assert_same_rows

ROWS_LEFT, ROWS_RIGHT = 3000, 2000


def _side(rows: int, seed: int, wide: bool) -> pa.Table:
    """Keys from small domains (many duplicates), ~10% NULL; ``wide``: int64 and decimal(15,3) keys (the other
    side has int32 and decimal(12,2)), so equal values differ in type."""
    rng = random.Random(seed)

    def maybe(value):
        return None if rng.random() < 0.1 else value

    k_int = [maybe(rng.randrange(200)) for _ in range(rows)]
    return pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "k_int": pa.array(k_int, pa.int64() if wide else pa.int32()),
        "k_text": pa.array([maybe(rng.choice(["", "a", "b", "ab", "é", "x" * 40, "a b"])) for _ in range(rows)]),
        "k_date": pa.array([maybe(datetime.date(2020, 1, 1) + datetime.timedelta(days=rng.randrange(60)))
                            for _ in range(rows)], pa.date32()),
        "k_dec": pa.array([maybe(decimal.Decimal(rng.randrange(-300, 300)) / 4) for _ in range(rows)],
                          pa.decimal128(15, 3) if wide else pa.decimal128(12, 2)),
        "v": pa.array([rng.randrange(100) for _ in range(rows)], pa.int64()),
    })


@pytest.fixture(scope="module")
def shapes(tpch_world, tmp_path_factory):
    """``(distributed engine, local engine)`` over ``l`` (Parquet, 3 files: 3 splits) and ``r`` (Parquet in a
    second source, 2 files; and in PostgreSQL as ``pg.shapes.r``: ctid ranges), every join a join stage."""
    import adbc_driver_postgresql.dbapi as pg

    folder = tmp_path_factory.mktemp("shapes")
    left, right = _side(ROWS_LEFT, 1, wide=False), _side(ROWS_RIGHT, 2, wide=True)
    for name, table, files in (("l", left, 3), ("r", right, 2)):
        (folder / name).mkdir()
        step = -(-table.num_rows // files)
        for i in range(files):
            pq.write_table(table.slice(i * step, step), folder / name / f"part-{i}.parquet")
    with pg.connect(tpch_world["pg_uri"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA shapes")
        cur.execute("CREATE TABLE shapes.r (id bigint, k_int bigint, k_text text, k_date date, k_dec numeric(15,3), "
                    "v bigint) WITH (fillfactor = 10)")  # a few rows per page: several ctid ranges
        staging = right.cast(pa.schema([pa.field(f.name, pa.string() if pa.types.is_decimal(f.type) else f.type)
                                        for f in right.schema]))
        cur.adbc_ingest("r_staging", staging, mode="create", db_schema_name="shapes")
        cur.execute("INSERT INTO shapes.r SELECT id, k_int, k_text, k_date, k_dec::numeric(15,3), v "
                    "FROM shapes.r_staging")
        cur.execute("ANALYZE shapes.r")
    sources = [{"name": "pl", "kind": "parquet", "path": str(folder)},
               {"name": "pr", "kind": "parquet", "path": str(folder)},
               {"name": "pg", "kind": "postgresql", "uri": tpch_world["pg_uri"]}]
    settings = settings_from_dict({"sources": sources}, base_dir=folder)
    local = QueryEngine(settings)
    distributed = _engine(settings)
    yield distributed, local
    distributed.close()
    local.close()


def _engine(settings, executor=None, **execution) -> QueryEngine:
    settings = distributed_settings(settings, **{"join_min_rows": 0, "join_partitions": 3, **execution})
    engine = QueryEngine(settings)
    engine.distributor = Distributor(settings.execution, settings.sources, executor or LocalExecutor(2))
    return engine


SHAPES = {
    "int keys, NULLs and duplicates": "SELECT l.id AS a, r.id AS b FROM pl.main.l l JOIN pr.main.r r "
                                      "ON l.k_int = r.k_int",
    "text keys": "SELECT l.id AS a, r.id AS b, r.k_text FROM pl.main.l l JOIN pr.main.r r ON r.k_text = l.k_text "
                 "WHERE l.id < 400",
    "date keys": "SELECT l.k_date, COUNT(*) AS n, SUM(r.v) AS s FROM pl.main.l l JOIN pr.main.r r "
                 "ON l.k_date = r.k_date GROUP BY l.k_date",
    "decimal keys of two scales": "SELECT l.id AS a, r.id AS b, l.k_dec FROM pl.main.l l JOIN pr.main.r r "
                                  "ON l.k_dec = r.k_dec",
    "int against decimal": "SELECT l.id AS a, r.id AS b FROM pl.main.l l JOIN pr.main.r r ON l.k_int = r.k_dec",
    "multi-column keys": "SELECT l.id AS a, r.id AS b FROM pl.main.l l JOIN pr.main.r r "
                         "ON l.k_int = r.k_int AND l.k_text = r.k_text AND l.k_date = r.k_date",
    "extra conditions, aggregate, ORDER BY, LIMIT": (
        "SELECT l.k_text, COUNT(*) AS n, SUM(l.v * r.v) AS s, MIN(r.k_dec) AS m FROM pl.main.l l "
        "JOIN pr.main.r r ON l.k_int = r.k_int AND l.v + r.v > 50 WHERE r.k_date > DATE '2020-01-10' "
        "GROUP BY l.k_text ORDER BY n DESC, l.k_text LIMIT 4"),
    "a third table in the residual": (
        "SELECT l.id AS a, r.id AS b, t.id AS c FROM pl.main.l l JOIN pr.main.r r ON l.k_int = r.k_int "
        "JOIN pl.main.r t ON t.id = r.id AND t.v < l.v WHERE l.id < 300"),
    "no matching keys": "SELECT l.id AS a FROM pl.main.l l JOIN pr.main.r r ON l.k_int = r.k_int WHERE r.v > 1000",
    "a PostgreSQL side in ctid ranges": (
        "SELECT l.k_int, COUNT(*) AS n, SUM(r.k_dec) AS s FROM pl.main.l l JOIN pg.shapes.r r "
        "ON l.k_dec = r.k_dec AND l.k_int = r.k_int GROUP BY l.k_int"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_join_stage_equals_local(shapes, shape):
    distributed, local = shapes
    sql = SHAPES[shape]
    result = distributed.execute(sql)
    got = result.reader.read_all()
    want = local.execute(sql).reader.read_all()
    assert want.num_rows > 0 or shape == "no matching keys"
    assert_same_rows(got, want)
    stages = [f.join_stage for f in result.stats.fragments if f.join_stage and "hash join stage" in f.join_stage]
    assert len(stages) == 1 and "3 tasks" in stages[0], [f.join_stage for f in result.stats.fragments]
    sides = [f for f in result.stats.fragments if f.join_stage]
    assert len(sides) == 2 and all(f.tasks > 1 for f in sides), [(f.id, f.tasks) for f in sides]


def test_explain_shows_the_join_stage(shapes):
    distributed, _ = shapes
    sql = SHAPES["int keys, NULLs and duplicates"]
    assert "hash join stage: 3 tasks join partition i of" in distributed.explain(sql)
    text = distributed.explain(sql, analyze=True)
    assert "bytes hash-partitioned into the object store; hash join stage: 3 tasks on 1 node(s), 3 partitions " \
           'on "l"."k_int" = "r"."k_int"' in text or 'on "r"."k_int" = "l"."k_int"' in text, text
    assert "bytes shuffled" in text
    grouped = distributed.explain(SHAPES["date keys"])
    assert "hash join stage: 3 tasks join partition i of" in grouped and "partial aggregates per partition" in grouped
    result = distributed.execute(SHAPES["date keys"])
    result.reader.read_all()
    assert any("rows (partial aggregates, " in (f.join_stage or "") for f in result.stats.fragments)
    assert distributed.metrics.registry.get_sample_value("gateway_distributed_shuffled_bytes_total") > 0


@pytest.mark.parametrize("sql", [
    "SELECT l.id, r.id FROM pl.main.l l LEFT JOIN pr.main.r r ON l.k_int = r.k_int",  # outer join
    "SELECT l.id, r.id FROM pl.main.l l JOIN pr.main.r r ON l.k_int + 1 = r.k_int",  # key is an expression
])
def test_other_joins_stay_in_the_residual(shapes, sql):
    distributed, local = shapes
    assert "hash join stage" not in distributed.explain(sql)
    result = distributed.execute(sql)
    assert_same_rows(result.reader.read_all(), local.execute(sql).reader.read_all())
    assert not any(f.join_stage for f in result.stats.fragments)


def test_small_sides_stay_in_the_residual(shapes):
    _, local = shapes
    engine = _engine(local.settings, join_min_rows=1_000_000)
    try:
        text = engine.explain(SHAPES["int keys, NULLs and duplicates"])
        assert "engine: ray" in text and "hash join stage" not in text
    finally:
        engine.close()


def test_a_lost_join_task_is_submitted_again(shapes):
    _, local = shapes
    engine = _engine(local.settings, FlakyExecutor(losses=1), max_retries=1)
    try:
        sql = SHAPES["multi-column keys"]
        result = engine.execute(sql)
        assert_same_rows(result.reader.read_all(), local.execute(sql).reader.read_all())
        assert sum(f.retries for f in result.stats.fragments) == sum(f.tasks + f.join_tasks
                                                                    for f in result.stats.fragments) // 2
    finally:
        engine.close()


def test_retries_that_run_out_fail_naming_the_stage(shapes):
    _, local = shapes
    engine = _engine(local.settings, FlakyExecutor(losses=5), max_retries=1)
    try:
        with pytest.raises(ExecutionError, match=r"stage '(scan|join) \w+.*' failed: .* no retries left"):
            engine.execute(SHAPES["text keys"]).reader.read_all()
    finally:
        engine.close()


def test_equal_keys_hash_alike_across_types():
    assert key_kind(pa.int32(), pa.int64()) == "int"
    assert key_kind(pa.int64(), pa.decimal128(10, 3)) == "decimal:3"
    assert key_kind(pa.string(), pa.large_string()) == "text"
    assert key_kind(pa.float64(), pa.float64()) is None and key_kind(pa.string(), pa.int64()) is None
    pairs = [
        (pa.array([1, -7, 2 ** 40], pa.int64()), pa.array([1, -7, 2 ** 40], pa.decimal128(20, 0)), "decimal:0"),
        (pa.array([decimal.Decimal("1.5"), decimal.Decimal("-0.25")], pa.decimal128(5, 2)),
         pa.array([decimal.Decimal("1.500"), decimal.Decimal("-0.250")], pa.decimal128(12, 3)), "decimal:3"),
        (pa.array(["", "é", "x" * 100]), pa.array(["", "é", "x" * 100], pa.large_string()), "text"),
        (pa.array([datetime.date(1970, 1, 1), datetime.date(2024, 2, 29)]),
         pa.array([datetime.date(1970, 1, 1), datetime.date(2024, 2, 29)], pa.date64()), "date"),
    ]
    for one, other, kind in pairs:
        assert list(column_hash(one, kind)) == list(column_hash(other, kind)), kind
    table = pa.table({"k": pa.array([3, None, 3, 4, None], pa.int32())})
    parts = partition(table, (("k", "int"),), 4)
    assert sum(p.num_rows for p in parts) == 3 and max(p.num_rows for p in parts) >= 2  # NULLs out, 3s together


def test_cancel_stops_the_join_stage_and_its_statements(tpch_world, shapes):
    distributed, _ = shapes
    sql = "SELECT s.o_orderkey, l.id FROM pg.tpch.slow_orders s JOIN pl.main.l l ON l.k_int = s.o_custkey"
    assert "hash join stage" in distributed.explain(sql)
    errors = run_and_cancel(distributed, sql, tpch_world["pg_uri"])
    assert errors and isinstance(errors[0], QueryCancelledError)


@pytest.fixture(scope="module")
def cached(tpch_world, shapes):
    """``(engine factory, local engine)`` with ``pgc``: the PostgreSQL database with a cache rule, cached by
    ranges of 500 ids (``shapes.rc``, a copy of ``r`` of its own: the test changes it)."""
    import adbc_driver_postgresql.dbapi as pg

    _, local = shapes
    with pg.connect(tpch_world["pg_uri"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE shapes.rc AS SELECT * FROM shapes.r")
        cur.execute("ANALYZE shapes.rc")
    source = {"name": "pgc", "kind": "postgresql", "uri": tpch_world["pg_uri"]}
    rule = {"cache_ttl_s": 300, "partition_column": "id", "partition_granularity": "500"}

    def with_source(config: dict):
        return local.settings.model_copy(update={"sources": [
            *local.settings.sources, *settings_from_dict({"sources": [config]}, base_dir=".").sources]})

    fresh = QueryEngine(with_source(source))  # no cache rule: always the source's current rows
    yield with_source({**source, **rule}), fresh
    fresh.close()


CACHED_SQL = ("SELECT r.id AS a, l.id AS b, r.v FROM pgc.shapes.rc r JOIN pl.main.l l ON l.k_int = r.k_int "
              "WHERE r.v > 20")


@pytest.mark.parametrize("join_min_rows", [0, 1_000_000])  # a side of a join stage; a fragment read by splits
def test_cached_partitions_are_splits_of_their_own(tpch_world, cached, join_min_rows):
    import adbc_driver_postgresql.dbapi as pg

    settings, fresh = cached
    engine = _engine(settings, join_min_rows=join_min_rows)
    try:
        text = engine.explain(CACHED_SQL)
        assert "one split per cache partition of shapes.rc (5): cached ones read from the partition cache" in text
        engine.cache_warm("pgc.shapes.rc", where="id < 1000")  # 2 of the 5 partitions (4 ranges of id, its NULLs)
        result = engine.execute(CACHED_SQL)
        assert_same_rows(result.reader.read_all(), fresh.execute(CACHED_SQL).reader.read_all())
        side = next(f for f in result.stats.fragments if f.source == "pgc")
        assert sorted(u.status for u in side.partitions) == ["cached", "cached", "fetched", "fetched", "fetched"]
        assert side.tasks == 3  # only the partitions not cached went to the source
        assert ("hash join stage" in " ".join(f.join_stage or "" for f in result.stats.fragments)) == (not join_min_rows)
        # proof that the cached rows came from the cache: a change the source has is not in them (ttl 300 s) ...
        with pg.connect(tpch_world["pg_uri"], autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("UPDATE shapes.rc SET v = v + 1000 WHERE id < 1000")
        try:
            stale = engine.execute(CACHED_SQL).reader.read_all()
            assert max(v for v in stale.column("v").to_pylist()) < 1000
            # ... and a query that wants proven-current partitions goes to the source for all of them
            current = engine.execute(CACHED_SQL, max_staleness_s=0)
            assert_same_rows(current.reader.read_all(), fresh.execute(CACHED_SQL).reader.read_all())
            assert next(f for f in current.stats.fragments if f.source == "pgc").tasks == 5
        finally:
            with pg.connect(tpch_world["pg_uri"], autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("UPDATE shapes.rc SET v = v - 1000 WHERE id < 1000")
    finally:
        engine.close()
