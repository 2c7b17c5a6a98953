"""A whole query run in a file source decodes its Parquet columns only for the rows kept when one of its joins
is selective by the catalog's statistics (``planner.federation.whole_query.selective_join``): the plan says so,
the session runs it so, and the answer is DataFusion's."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.parquet_sources import datafusion_over, parquet_engine

FACTS = {"k": [i % 10_000 for i in range(60_000)], "v": [float(i % 97) for i in range(60_000)],
         "note": [f"n{i % 13}" for i in range(60_000)]}
DIMS = {"id": list(range(10_000)), "g": [i % 500 for i in range(10_000)], "name": [f"d{i}" for i in range(10_000)]}

SELECTIVE = ("SELECT d.name, SUM(f.v) AS total, COUNT(*) AS n FROM lake.main.facts AS f "
             "JOIN lake.main.dims AS d ON d.id = f.k WHERE d.g = 7 GROUP BY d.name ORDER BY d.name")
WIDE = ("SELECT d.g, COUNT(*) AS n FROM lake.main.facts AS f JOIN lake.main.dims AS d ON d.id = f.k "
        "WHERE d.g < 400 GROUP BY d.g ORDER BY d.g")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = parquet_engine(tmp_path_factory, {"lake": {"facts": pa.table(FACTS), "dims": pa.table(DIMS)}})
    yield engine
    engine.close()


def test_a_selective_join_over_files_runs_with_late_materialization(engine):
    """20 dimension rows of 10,000 key values (0.2%): the whole-query fragment is marked, EXPLAIN names the join,
    and the answer is what DataFusion gives over the same tables."""
    plan = engine.plan(SELECTIVE)
    assert plan.pushed_whole
    fragment = plan.fragments[0]
    assert fragment.late_materialization
    assert any(p.startswith("late materialization:") and '"d"."id" = "f"."k"' in p for p in fragment.pushed)
    assert "late materialization" in engine.explain(SELECTIVE)
    got = engine.execute(SELECTIVE).reader.read_all()
    want = datafusion_over({"facts": FACTS, "dims": DIMS}).sql(
        SELECTIVE.replace("lake.main.", "")).to_arrow_table()
    assert got.column("name").to_pylist() == want.column("name").to_pylist()
    assert got.column("total").to_pylist() == want.column("total").to_pylist()
    assert got.column("n").to_pylist() == want.column("n").to_pylist() == [6] * 20


def test_a_join_keeping_a_wide_share_runs_without_late_materialization(engine):
    """8,000 dimension rows of 10,000 key values: row filters in the Parquet reader would cost more than they
    save, so the fragment is not marked."""
    plan = engine.plan(WIDE)
    assert plan.pushed_whole
    assert not plan.fragments[0].late_materialization
    assert not any(p.startswith("late materialization") for p in plan.fragments[0].pushed)


def test_a_correlated_aggregate_run_with_late_materialization_has_no_key_restriction(engine):
    """TPC-H Q17's shape: the semi-join reduction the planner adds for a file source is taken out again (the join
    dynamic filter restricts the sub-query's scan as it decodes), and the answer is DataFusion's."""
    sql = ("SELECT SUM(f.v) AS total, COUNT(*) AS n FROM lake.main.facts AS f, lake.main.dims AS d "
           "WHERE d.id = f.k AND d.g = 7 AND f.v < (SELECT 0.5 * AVG(f2.v) FROM lake.main.facts AS f2 "
           "WHERE f2.k = d.id)")
    plan = engine.plan(sql)
    fragment = plan.fragments[0]
    assert plan.pushed_whole and fragment.late_materialization
    assert "__keys_" not in fragment.sql
    got = engine.execute(sql).reader.read_all().to_pylist()
    want = datafusion_over({"facts": FACTS, "dims": DIMS}).sql(sql.replace("lake.main.", "")).to_arrow_table()
    assert got == want.to_pylist()
    assert got[0]["n"] > 0
