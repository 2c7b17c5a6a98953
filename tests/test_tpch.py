"""TPC-H (scale factor 0.01, the session's ``tpch_world``) across PostgreSQL, MariaDB and Parquet: all 22 queries, in their standard text with
source-qualified tables, return exactly the answers of DataFusion over the same data loaded locally."""

from __future__ import annotations

import pytest

from tests import tpch


@pytest.fixture(scope="module")
def tpch_setup(tpch_world):
    """``({"fetched": engine, "in_place": engine}, reference, queries, names)`` over the session's TPC-H."""
    from gateway.execution.engine import QueryEngine

    settings = tpch_world["settings"]
    # every file fragment fetched with literal key conditions (by default a small probe of many keys is read
    # in place, where it takes a semi-join of them)
    gateway = QueryEngine(settings.model_copy(update={"limits": settings.limits.model_copy(
        update={"read_files_in_place": False})}))
    # every file fragment scanned in place by the residual plan, whatever its size (SF 0.01 is small)
    in_place = QueryEngine(settings.model_copy(update={"limits": settings.limits.model_copy(
        update={"in_place_min_rows": 0})}), catalog=gateway.catalog)
    yield ({"fetched": gateway, "in_place": in_place}, tpch_world["reference"], tpch_world["queries"],
           tpch_world["names"])
    gateway.close()


@pytest.mark.parametrize("files", ["fetched", "in_place"])
@pytest.mark.parametrize("number", range(1, 23))
def test_tpch_query(tpch_setup, number, files, monkeypatch):
    gateways, reference, queries, names = tpch_setup
    if files == "in_place":  # and every key condition on a file fragment without its own decoded late
        from planner import dynamic_filters

        monkeypatch.setattr(dynamic_filters, "LATE_MATERIALIZATION_SHARE", 1.0)
    sql = queries[number]
    want = reference.sql(sql).to_arrow_table()
    result = gateways[files].execute(tpch.qualify_tables(sql, names))
    got = result.reader.read_all()
    in_place = [f for f in result.stats.fragments if f.read_in_place]
    if files == "fetched":
        assert not in_place
    elif not result.stats.pushed_whole:
        assert all(f.source == "lake" for f in in_place)
        if number in (3, 9):  # lineitem is joined, not a dynamic filter's build: scanned in place
            assert in_place and all(f.rows > 0 for f in in_place)
    tpch.assert_same_rows(got, want)
