"""Delta Lake sources (``kind = "delta"``) on a local folder: schema and partitions from the log, writes by
deltalake between queries seen under ``max_staleness_s = 0`` (also through the partition cache), time travel,
file skipping proven by files the query must not open, and answers equal to DataFusion over the same data."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datafusion import SessionContext
from deltalake import DeltaTable, write_deltalake

from connectors.delta import DeltaConnector
from gateway.errors import InvalidRequestError, SourceQueryError, UnknownObjectError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.lakehouse.support import rows as _rows


def _events(start: int, n: int) -> pa.Table:
    return pa.table({
        "id": pa.array(range(start, start + n), pa.int64()),
        "year": pa.array([2020 + i % 4 for i in range(start, start + n)], pa.int64()),
        "name": pa.array([f"n{i}" for i in range(start, start + n)]),
        "amount": pa.array([i / 4 for i in range(start, start + n)]),
    })


@pytest.fixture()
def lake(tmp_path) -> Path:
    """events (partitioned by year, two commits) and plain (unpartitioned) as Delta tables."""
    root = tmp_path / "lake"
    write_deltalake(str(root / "events"), _events(0, 400), partition_by=["year"])
    write_deltalake(str(root / "events"), _events(400, 40), mode="append", partition_by=["year"])
    write_deltalake(str(root / "plain"), pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    (root / "not_delta").mkdir()  # a folder without _delta_log is no table
    return root


def _engine(lake: Path, **source) -> QueryEngine:
    raw = {"sources": [{"name": "lake", "kind": "delta", "path": str(lake), **source}],
           "cache": {"admit_after": 1}}
    return QueryEngine(settings_from_dict(raw, base_dir=lake))


def test_tables_schema_partitions_and_statistics(lake):
    conn = DeltaConnector("lake", {"path": str(lake)})
    assert conn.list_tables("main") == ["events", "plain"]
    schema = conn.table_schema("main", "events")
    assert schema.names == ["id", "year", "name", "amount"] and schema.field("name").type == pa.string()
    assert conn.partitions("main", "events") == ["year=2020", "year=2021", "year=2022", "year=2023"]
    assert conn.partitions("main", "plain") == ["*"]
    stats = conn.statistics("main", "events")
    assert stats.rows == 440 and stats.bytes > 0
    assert (stats.columns["id"].min, stats.columns["id"].max) == (0, 439)
    assert stats.columns["year"].distinct == 4
    assert conn.fingerprint("main", "events") == "v1"
    with pytest.raises(UnknownObjectError, match=r"unknown table 'event'.*events"):
        conn.table_schema("main", "event")


def test_queries_equal_datafusion_over_the_same_data(lake):
    engine = _engine(lake)
    reference = SessionContext()
    reference.register_dataset("events", DeltaTable(str(lake / "events")).to_pyarrow_dataset())
    reference.register_dataset("plain", DeltaTable(str(lake / "plain")).to_pyarrow_dataset())
    for sql in [
        "SELECT year, COUNT(*) AS c, SUM(amount) AS s FROM {events} WHERE id % 3 = 0 GROUP BY year ORDER BY year",
        "SELECT e.id, p.v FROM {events} e JOIN {plain} p ON e.id = p.k ORDER BY e.id",
        "SELECT name FROM {events} WHERE year = 2022 AND id > 400 ORDER BY name LIMIT 5",
    ]:
        ours = _rows(engine, sql.format(events="lake.main.events", plain="lake.main.plain"))
        theirs = reference.sql(sql.format(events="events", plain="plain")).to_arrow_table().to_pylist()
        assert ours == theirs, sql


def test_writes_between_queries_are_seen_at_staleness_zero(lake):
    engine = _engine(lake)
    count = "SELECT COUNT(*) AS c FROM lake.main.events"
    assert _rows(engine, count, max_staleness_s=0) == [{"c": 440}]
    write_deltalake(str(lake / "events"), _events(1000, 10), mode="append", partition_by=["year"])
    assert _rows(engine, count, max_staleness_s=0) == [{"c": 450}]
    DeltaTable(str(lake / "events")).delete("year = 2020")
    assert _rows(engine, count, max_staleness_s=0) == [{"c": 450 - 113}]
    write_deltalake(str(lake / "events"), _events(0, 8), mode="overwrite", partition_by=["year"])
    assert _rows(engine, count, max_staleness_s=0) == [{"c": 8}]
    assert engine.catalog.connector("lake").fingerprint("main", "events") == "v4"


def test_cached_partitions_follow_new_versions(lake):
    """With a cache rule the partitions (file sets of each year) are cached; a commit touching year 2021 only
    changes that partition's fingerprint, and the next query at staleness 0 reads it again."""
    engine = _engine(lake, cache_fingerprint=True)
    sql = "SELECT year, COUNT(*) AS c FROM lake.main.events GROUP BY year ORDER BY year"
    first = _rows(engine, sql, max_staleness_s=0)
    assert _rows(engine, sql, max_staleness_s=0) == first
    conn = engine.catalog.connector("lake")
    before = {p: conn.partition_fingerprint("main", "events", p) for p in conn.partitions("main", "events")}
    write_deltalake(str(lake / "events"), pa.table({"id": [9999], "year": [2021], "name": ["x"], "amount": [1.0]}),
                    mode="append", partition_by=["year"])
    after = {p: conn.partition_fingerprint("main", "events", p) for p in conn.partitions("main", "events")}
    assert [p for p in before if before[p] != after[p]] == ["year=2021"]
    rows = _rows(engine, sql, max_staleness_s=0)
    assert rows[1] == {"year": 2021, "c": first[1]["c"] + 1} and rows[0] == first[0]


def test_time_travel_by_version_and_timestamp(lake):
    engine = _engine(lake)
    time.sleep(0.01)
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    write_deltalake(str(lake / "events"), _events(2000, 5), mode="append", partition_by=["year"])
    assert _rows(engine, "SELECT COUNT(*) AS c FROM lake.main.events FOR VERSION AS OF 0") == [{"c": 400}]
    stamp = between.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert _rows(engine, f"SELECT COUNT(*) AS c FROM lake.main.events FOR TIMESTAMP AS OF '{stamp}'") == [{"c": 440}]
    # an old version joined with the newest: the 45 rows added since match nothing
    sql = ("SELECT COUNT(*) AS c FROM lake.main.events FOR VERSION AS OF 1 AS o "
           "RIGHT JOIN lake.main.events AS n ON o.id = n.id WHERE o.id IS NULL")
    assert _rows(engine, sql) == [{"c": 5}]
    with pytest.raises(InvalidRequestError, match="table 'events' has no version 42"):
        _rows(engine, "SELECT COUNT(*) AS c FROM lake.main.events FOR VERSION AS OF 42")


def test_partition_and_statistics_skipping_opens_only_matching_files(lake):
    """Files the filter excludes are made unreadable: a query that skipped them still answers, one that needs
    them fails naming the source; the connector's own count says how many files a filter keeps."""
    engine = _engine(lake)
    conn = engine.catalog.connector("lake")
    from sqlglot import parse_one

    assert conn.files_kept("events", parse_one("year = 2021")) == (2, 8)
    assert conn.files_kept("events", parse_one("id >= 400")) == (4, 8)  # min/max statistics of the 2nd commit
    explain = engine.explain("SELECT name FROM lake.main.events WHERE year = 2021")
    assert "events: Delta version 1, 2 of 8 files kept (6 pruned by partition values" in explain
    explain = engine.explain("SELECT COUNT(*) FROM lake.main.events FOR VERSION AS OF 0 WHERE id >= 400")
    assert "events: Delta version 0 (time travel), 0 of 4 files kept" in explain
    for file in (lake / "events" / "year=2020").iterdir():
        file.write_bytes(b"not parquet")
    assert _rows(engine, "SELECT COUNT(*) AS c FROM lake.main.events WHERE year = 2021") == [{"c": 110}]
    assert _rows(engine, "SELECT SUM(id) AS s FROM lake.main.events WHERE year > 2020 AND id < 8") == [
        {"s": 1 + 2 + 3 + 5 + 6 + 7}]
    with pytest.raises(SourceQueryError, match="source 'lake'"):
        _rows(engine, "SELECT COUNT(*) AS c FROM lake.main.events WHERE year = 2020")


def test_missing_folder_is_unavailable_and_config_checks_options(tmp_path):
    from gateway.errors import ConfigError, SourceUnavailableError

    conn = DeltaConnector("gone", {"path": str(tmp_path / "nowhere")})
    with pytest.raises(SourceUnavailableError, match="source 'gone' is unavailable"):
        conn.list_tables("main")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.has_header: not an option of a 'delta' source"):
        settings_from_dict({"sources": [{"name": "d", "kind": "delta", "path": "x", "has_header": True}]},
                           base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: 'gs://' is not a supported location"):
        settings_from_dict({"sources": [{"name": "d", "kind": "delta", "path": "gs://bucket/x"}]}, base_dir=tmp_path)


def test_in_place_delta_fragment_restricted_by_a_semi_join_of_keys(tmp_path, monkeypatch):
    """A Delta fragment read in place and restricted by a semi-join against the residual plan's table of keys
    (past ``SEMI_JOIN_MIN_KEYS`` keys: TPC-H Q7 with lineitem as Delta at SF1 failed with "unknown table
    '__keys_...'") answers as DataFusion does."""
    from gateway.execution import runtime_filters

    monkeypatch.setattr(runtime_filters, "SEMI_JOIN_MIN_KEYS", 1)
    events = _events(0, 4400)
    write_deltalake(str(tmp_path / "lake" / "events"), events, partition_by=["year"])
    (tmp_path / "files").mkdir()
    pq.write_table(pa.table({"k": pa.array(range(0, 700, 11), pa.int64())}), tmp_path / "files" / "picked.parquet")
    raw = {"sources": [{"name": "lake", "kind": "delta", "path": str(tmp_path / "lake")},
                       {"name": "files", "kind": "parquet", "path": str(tmp_path / "files")}],
           "limits": {"in_place_min_rows": 1000}}  # events (4,400 rows) read in place, the 64 keys fetched
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    try:
        result = engine.execute("SELECT e.year, COUNT(*) AS c, SUM(e.amount) AS s FROM lake.main.events e "
                                "JOIN files.main.picked p ON p.k = e.id WHERE p.k >= 0 GROUP BY e.year ORDER BY e.year")
        got = result.reader.read_all().to_pylist()
        restricted = [f.dynamic_filter or "" for f in result.stats.fragments if f.source == "lake"]
    finally:
        engine.close()
    reference = SessionContext()
    reference.register_record_batches("events", [events.to_batches()])
    want = reference.sql("SELECT year, COUNT(*) AS c, SUM(amount) AS s FROM events WHERE id < 700 AND id % 11 = 0 "
                         "GROUP BY year ORDER BY year").to_arrow_table().to_pylist()
    assert got == want
    assert any("semi-join" in r for r in restricted), restricted
