"""DataFusion 55's physical scalar sub-query (``ScalarSubqueryExec``) lets its FilterPushdown move a filter that
compares with the sub-query below a join whose inputs share a column name, reading both names from one input.
Every session the gateway builds turns it off (``connectors.arrow.datafusion.CORRECTNESS_SETTINGS``; fuzz seed
8080808 #520). The expected rows are counted in Python over the same tables."""

from __future__ import annotations

import pyarrow as pa
import pytest
from datafusion import SessionContext

from connectors.arrow.datafusion import session
from tests.world import fuzz_table

SQL = ("SELECT b.dt FROM a AS a JOIN b AS b ON b.k3 = a.id "
       "WHERE (b.amt + a.amt) > (SELECT SUM(c.f) FROM c AS c) AND b.dt IS NULL")


def _tables() -> dict[str, pa.Table]:
    return {"a": fuzz_table("t3").select(["id", "amt"]), "b": fuzz_table("t1").select(["k3", "amt", "dt"]),
            "c": fuzz_table("t2").select(["f"])}


def _expected(tables: dict[str, pa.Table]) -> int:
    total = sum(f for f in tables["c"].column("f").to_pylist() if f is not None)
    a = {r["id"]: r["amt"] for r in tables["a"].to_pylist()}
    return sum(1 for r in tables["b"].to_pylist()
               if r["k3"] in a and r["dt"] is None and r["amt"] is not None and a[r["k3"]] is not None
               and float(r["amt"] + a[r["k3"]]) > total)


def _count(ctx: SessionContext, tables: dict[str, pa.Table]) -> int:
    for name, table in tables.items():
        ctx.register_record_batches(name, [table.to_batches()])
    return ctx.sql(SQL).to_arrow_table().num_rows


def test_gateway_sessions_compare_with_a_scalar_sub_query_above_the_join():
    tables = _tables()
    assert _count(session(), tables) == _expected(tables) > 0


@pytest.mark.parametrize("partitions", [1, 4])
def test_datafusion_55_still_pushes_the_filter_wrongly_by_default(partitions):
    """When this fails, DataFusion was fixed: the setting can go."""
    from datafusion import SessionConfig

    tables = _tables()
    assert _count(SessionContext(SessionConfig().with_target_partitions(partitions)), tables) != _expected(tables)
