"""Fixtures of the planner tests that run against the real sources."""

from __future__ import annotations

import pyarrow as pa
import pytest
from datafusion import SessionContext


@pytest.fixture(scope="module")
def fz(world):
    """(gateway over the five sources, a function running SQL with ``{pg}``, ``{maria}``, ``{lite}``, ``{pq}``
    placeholders through the gateway and DataFusion: (gateway result, reference result))."""
    from gateway.execution.engine import QueryEngine

    engine = QueryEngine(world.settings())
    ctx = SessionContext()
    for name, table in world.group("fz").items():
        ctx.register_record_batches(name, [table.to_batches()])
    prefixes = {s: world.prefix(s, "fz") for s in ("pg", "maria", "lite", "pq", "csv")}
    local = {s: "" for s in prefixes}

    def run(sql: str, params=None) -> tuple[pa.Table, pa.Table]:
        got = engine.execute(sql.format(**{s: p + "." for s, p in prefixes.items()}), params).reader.read_all()
        want = ctx.sql(_bound(sql.format(**local), params)).to_arrow_table()
        return got, want

    run.engine = engine
    run.sql = lambda sql: sql.format(**{s: p + "." for s, p in prefixes.items()})
    yield run
    engine.close()


def _bound(sql: str, params) -> str:
    for i, value in enumerate(params or (), start=1):
        sql = sql.replace(f"${i}", repr(value))
    return sql
