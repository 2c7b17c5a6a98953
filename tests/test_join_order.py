"""The join order pass (``planner.federation.join_order``) on real Parquet sources: a FROM list written with
a many-to-many join first is reordered by the catalog's statistics, the answer stays the same, and EXPLAIN
says why; a list written in a good order is left as it is."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict

CUSTOMERS, SUPPLIERS, NATIONS = 20_000, 1_000, 25

#: customers x suppliers on nation first (800,000 rows in between), the selective nation last
WRITTEN_BADLY = (
    "SELECT n.name, count(*) AS pairs, sum(c.id + s.id) AS ids "
    "FROM {c} AS c JOIN {s} AS s ON s.nation_id = c.nation_id JOIN {n} AS n ON n.id = c.nation_id "
    "WHERE n.name = 'FRANCE' GROUP BY n.name")
WRITTEN_WELL = (
    "SELECT n.name, count(*) AS pairs, sum(c.id + s.id) AS ids "
    "FROM {n} AS n JOIN {c} AS c ON n.id = c.nation_id JOIN {s} AS s ON s.nation_id = c.nation_id "
    "WHERE n.name = 'FRANCE' GROUP BY n.name")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """Sources ``lake`` (customers, nation, suppliers) and ``other`` (suppliers), Parquet folders; nation 7 is
    FRANCE."""
    lake, other = tmp_path_factory.mktemp("lake"), tmp_path_factory.mktemp("other")
    pq.write_table(pa.table({"id": pa.array(range(CUSTOMERS), pa.int64()),
                             "nation_id": pa.array([i % NATIONS for i in range(CUSTOMERS)], pa.int32())}),
                   lake / "customers.parquet")
    names = [f"N{i}" for i in range(NATIONS)]
    names[7] = "FRANCE"
    pq.write_table(pa.table({"id": pa.array(range(NATIONS), pa.int32()), "name": names}), lake / "nation.parquet")
    suppliers = pa.table({"id": pa.array(range(SUPPLIERS), pa.int64()),
                          "nation_id": pa.array([i % NATIONS for i in range(SUPPLIERS)], pa.int32())})
    pq.write_table(suppliers, lake / "suppliers.parquet")
    pq.write_table(suppliers, other / "suppliers.parquet")
    settings = settings_from_dict({"sources": [
        {"name": "lake", "kind": "parquet", "path": str(lake)},
        {"name": "other", "kind": "parquet", "path": str(other)},
    ]}, base_dir=lake)
    engine = QueryEngine(settings)
    yield engine
    engine.close()


def _expected() -> list[dict]:
    customers = [i for i in range(CUSTOMERS) if i % NATIONS == 7]
    suppliers = [i for i in range(SUPPLIERS) if i % NATIONS == 7]
    total = sum(c + s for c in customers for s in suppliers)
    return [{"name": "FRANCE", "pairs": len(customers) * len(suppliers), "ids": total}]


@pytest.mark.parametrize("suppliers", ["lake.main.suppliers", "other.main.suppliers"])
def test_a_badly_written_join_order_is_reordered_with_the_same_answer(engine, suppliers):
    """All in one file source (the whole query runs in its session) or across two (the residual plan)."""
    names = {"c": "lake.main.customers", "n": "lake.main.nation", "s": suppliers}
    sql = WRITTEN_BADLY.format(**names)
    assert engine.execute(sql).reader.read_all().to_pylist() == _expected()
    plan = engine.explain(sql)
    assert "join order: " in plan and "(written c, s, n)" in plan, plan


def test_a_well_written_join_order_is_left_as_written(engine):
    sql = WRITTEN_WELL.format(c="lake.main.customers", n="lake.main.nation", s="other.main.suppliers")
    assert engine.execute(sql).reader.read_all().to_pylist() == _expected()
    assert "join order: " not in engine.explain(sql)
