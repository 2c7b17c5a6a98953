"""``gateway mock``: Parquet mocks of real PostgreSQL tables follow their statistics, keep keys unique and
foreign keys resolvable, never copy a sensitive value, and are the same for the same seed. About 4 s."""

from __future__ import annotations

import collections

import pyarrow.parquet as pq
import pytest

from catalog import TableRef
from gateway.execution.engine import QueryEngine
from gateway.trust.mock import is_sensitive, mock_tables
from tests.trust.conftest import pg_execute, trust_settings, write_lake

SETUP = [
    "CREATE TABLE public.customer (c_custkey integer PRIMARY KEY, c_name text NOT NULL, c_email text, "
    "c_segment text NOT NULL, c_acctbal numeric(12,2), c_since date)",
    "INSERT INTO public.customer SELECT g, 'Customer#' || g, 'c' || g || '@shop.example', "
    "CASE WHEN g % 10 < 5 THEN 'BUILDING' WHEN g % 10 < 8 THEN 'MACHINERY' ELSE 'AUTO' END, "
    "CASE WHEN g % 5 = 0 THEN NULL ELSE (g % 997) * 3.5 - 100 END, DATE '2020-01-01' + g % 700 "
    "FROM generate_series(1, 2000) g",
    "CREATE TABLE public.purchase (p_id integer PRIMARY KEY, p_custkey integer NOT NULL "
    "REFERENCES public.customer (c_custkey), p_qty integer)",
    "INSERT INTO public.purchase SELECT g, 1 + g % 2000, g % 50 FROM generate_series(1, 3000) g",
    "ANALYZE public.customer", "ANALYZE public.purchase",
]


@pytest.fixture(scope="module")
def engine(trust_pg, trust_maria, tmp_path_factory):
    pg_execute(trust_pg, *SETUP)
    eng = QueryEngine(trust_settings(trust_pg, trust_maria, write_lake(tmp_path_factory.mktemp("mock") / "lake")))
    yield eng
    eng.close()


def _real(engine: QueryEngine, table: str) -> list[dict]:
    return engine.execute(f"SELECT * FROM pg.public.{table}").reader.read_all().to_pylist()


def test_mock_follows_statistics_and_keys(engine, tmp_path):
    refs = [TableRef("pg", "public", "purchase"), TableRef("pg", "public", "customer")]
    files = mock_tables(engine.catalog, refs, 5000, tmp_path, seed=7)
    customers = pq.read_table(files[refs[1]]).to_pylist()
    purchases = pq.read_table(files[refs[0]]).to_pylist()
    assert len(customers) == len(purchases) == 5000
    keys = [c["c_custkey"] for c in customers]
    assert len(set(keys)) == 5000 and len({p["p_id"] for p in purchases}) == 5000  # primary keys unique
    assert {p["p_custkey"] for p in purchases} <= set(keys)  # every foreign key resolves

    real = _real(engine, "customer")
    segments = collections.Counter(c["c_segment"] for c in customers)
    for value, share in {"BUILDING": 0.5, "MACHINERY": 0.3, "AUTO": 0.2}.items():
        assert abs(segments[value] / 5000 - share) <= 0.05, segments
    nulls = sum(c["c_acctbal"] is None for c in customers) / 5000
    assert abs(nulls - 0.2) <= 0.05
    balances = [r["c_acctbal"] for r in real if r["c_acctbal"] is not None]
    mocked = [c["c_acctbal"] for c in customers if c["c_acctbal"] is not None]
    assert min(balances) <= min(mocked) and max(mocked) <= max(balances)
    dates = [r["c_since"] for r in real]
    assert all(min(dates) <= c["c_since"] <= max(dates) for c in customers)
    distinct_real = len(set(dates))
    assert distinct_real / 2 <= len({c["c_since"] for c in customers}) <= distinct_real * 2

    # sensitive by name (c_name, c_email): no real value, synthetic ones instead
    for column in ("c_name", "c_email"):
        assert not {c[column] for c in customers} & {r[column] for r in real}, column
    assert all(c["c_email"] is None or c["c_email"].endswith("@example.invalid") for c in customers)
    # the same seed, the same files
    again = mock_tables(engine.catalog, refs, 5000, tmp_path / "again", seed=7)
    assert pq.read_table(again[refs[1]]).equals(pq.read_table(files[refs[1]]))


def test_configured_sensitive_columns_are_not_copied(engine, tmp_path):
    ref = TableRef("pg", "public", "customer")
    files = mock_tables(engine.catalog, [ref], 1000, tmp_path, sensitive=["customer.c_segment"])
    mocked = {c["c_segment"] for c in pq.read_table(files[ref]).to_pylist()}
    assert not mocked & {"BUILDING", "MACHINERY", "AUTO"}
    assert is_sensitive("t", "home_address") and is_sensitive("t", "x", ["t.x"]) and not is_sensitive("t", "qty")
