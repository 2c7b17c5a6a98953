"""DataFusion 55 moves an outer sort below a sub-query's OFFSET that has no LIMIT, so the rows skipped are the
first in the outer order, not in the sub-query's (fuzz seed 577215 #262). Every SQL text DataFusion runs is
generated with such an OFFSET bounded by a LIMIT of every row (``connectors.arrow.dialect.bound_offsets``): over
Parquet, the whole query run by the file source and a residual plan over two sources skip the right rows."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.parquet_sources import datafusion_over, parquet_engine

#: x descending while y ascends in blocks: the two smallest x (0 and 1) are not the first rows in y order
ROWS = {"x": [5, 4, 3, 2, 1, 0], "y": [0, 0, 0, 1, 1, 1]}
SKIP_TWO_SMALLEST = [2, 3, 4, 5]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """Sources ``lake`` (table ``t``) and ``other`` (table ``u``, one row), Parquet folders."""
    engine = parquet_engine(tmp_path_factory, {
        "lake": {"t": pa.table({k: pa.array(v, pa.int64()) for k, v in ROWS.items()})},
        "other": {"u": pa.table({"k": pa.array([1], pa.int64())})}})
    yield engine
    engine.close()


def test_datafusion_itself_skips_the_wrong_rows():
    """The defect the rewrite works around; when this fails, DataFusion fixed it and the rewrite may go."""
    rows = datafusion_over({"t": ROWS}).sql("SELECT * FROM (SELECT x, y FROM t ORDER BY x OFFSET 2) AS s ORDER BY y").to_pylist()
    assert sorted(r["x"] for r in rows) != SKIP_TWO_SMALLEST


@pytest.mark.parametrize("sql", [
    "SELECT s.x FROM (SELECT t.x, t.y FROM lake.main.t AS t ORDER BY t.x OFFSET 2) AS s ORDER BY s.y, s.x",
    "SELECT s.x FROM (SELECT t.x, t.y FROM lake.main.t AS t ORDER BY t.x OFFSET 2) AS s "
    "CROSS JOIN other.main.u AS u ORDER BY s.y, s.x",
], ids=["whole query in the file source", "residual plan over two sources"])
def test_an_offset_in_a_sub_query_skips_its_own_first_rows(engine, sql):
    rows = engine.execute(sql).reader.read_all().column("x").to_pylist()
    assert sorted(rows) == SKIP_TWO_SMALLEST
