"""Catalog statistics are visible where a data engineer looks: ``GET /v1/sources/{s}/tables/{t}/statistics``
over the real REST app, ``gateway catalog stats`` as a subprocess, EXPLAIN's estimated rows, and the
``gateway_misestimated_queries`` metric."""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.api import create_app
from gateway.execution.engine import QueryEngine
from gateway.metrics import FragmentStats, Metrics, QueryStats
from gateway.settings import load_settings
from tests.demo_support import running_app
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def engine(demo_config):
    gateway = QueryEngine(load_settings(demo_config))
    yield gateway
    gateway.close()


def _count(engine: QueryEngine, table: str) -> int:
    return engine.execute(f"SELECT count(*) AS n FROM {table}").reader.read_all().column("n")[0].as_py()


def test_rest_statistics_of_a_table(engine):
    """The route answers the table's row count and per-column figures (ids are all distinct)."""
    rows = _count(engine, "demo_db.customers")
    with running_app(create_app(engine)) as url, httpx.Client(base_url=url, timeout=30) as client:
        body = client.get("/v1/sources/demo_db/tables/customers/statistics").json()
        missing = client.get("/v1/sources/nowhere/tables/customers/statistics")
    assert (body["source"], body["table"], body["rows"]) == ("demo_db", "customers", rows)
    assert abs(body["columns"]["id"]["distinct"] - rows) <= 0.1 * rows
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_object"


def test_cli_catalog_stats(demo_config, engine):
    """``gateway catalog stats demo_lake.orders`` prints the Parquet table's statistics as JSON."""
    result = run_cli("catalog", "stats", "demo_lake.orders", "--config", str(demo_config))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["table"] == "orders" and body["rows"] == _count(engine, "demo_lake.orders")
    assert body["columns"]["customer_id"]["min"] is not None


def test_explain_shows_estimated_rows(engine):
    text = engine.explain("SELECT id FROM demo_db.customers WHERE region = 'north'")
    assert "estimated:" in text


def test_a_query_off_its_estimate_by_more_than_10x_is_counted():
    metrics = Metrics()
    off = QueryStats("q1", "SELECT 1", status="ok",
                     fragments=[FragmentStats("f0", "pg", "SELECT 1", rows=5000, estimated_rows=100)])
    close = QueryStats("q2", "SELECT 1", status="ok",
                       fragments=[FragmentStats("f0", "pg", "SELECT 1", rows=500, estimated_rows=100)])
    metrics.finished(off)
    metrics.finished(close)
    assert metrics.misestimated._value.get() == 1


def test_explain_shows_estimated_and_actual_rows_per_residual_join(engine):
    """EXPLAIN puts the planner's estimate on each join of the residual plan; EXPLAIN ANALYZE gives each join
    that ran its actual rows beside that estimate (demo: SQLite customers joined to Parquet orders)."""
    sql = ("SELECT c.region, count(*) AS n FROM demo_db.customers c JOIN demo_lake.orders o "
           "ON o.customer_id = c.id GROUP BY c.region")
    planned = engine.explain(sql)
    assert any("Inner Join:" in line and "(estimated " in line for line in planned.splitlines()), planned
    analyzed = engine.explain(sql, analyze=True).splitlines()
    joins = analyzed[analyzed.index("    joins run (actual rows, DataFusion's metrics; outermost first):") + 1:]
    orders = _count(engine, "demo_lake.orders")
    ran = [line for line in joins if "HashJoinExec on " in line and "customer_id" in line]
    assert ran and f": {orders:,} rows, estimated " in ran[0], analyzed
