"""Named views in ``gateway catalog export``: the column lineage of a view with a join across sources, CASE
and aggregates (and of a view over it) against a hand-checked expectation, as DataHub aspects
(``viewProperties``, ``upstreamLineage`` with ``fineGrainedLineages``) and OpenMetadata requests (a View table
with ``schemaDefinition``, ``AddLineageRequest`` with ``columnsLineage``), sent to a stand-in OpenMetadata with
the tables' real ids. Over a real PostgreSQL database and a Parquet folder. DataHub's own file source and
openmetadata-ingestion's models read views' exports back in ``bench/datahub_export_check.py`` and
``bench/openmetadata_export_check.py`` (too heavy for the test extra). About 3 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from gateway.trust.export import datahub_mcps, openmetadata_requests, post_openmetadata
from gateway.trust.view_export import view_lineage
from tests.demo_support import running_app
from tests.trust.conftest import openmetadata_stand_in, write_lake

ROOT = Path(__file__).resolve().parents[2]
REVENUE_SQL = (
    "SELECT n.n_name AS nation, c.c_name AS customer, count(*) AS orders, sum(o.o_totalprice) AS revenue, "
    "sum(CASE WHEN o.o_orderstatus = 'F' THEN o.o_totalprice ELSE 0 END) AS finished, "
    "CASE WHEN max(o.o_orderdate) > DATE '1995-02-01' THEN 'recent' ELSE upper(n.n_name) END AS label "
    "FROM pg.public.orders o JOIN lake.main.customer c ON c.c_custkey = o.o_custkey "
    "JOIN lake.main.nation n ON n.n_nationkey = c.c_nationkey GROUP BY n.n_name, c.c_name")
VIEWS = [{"name": "bi.sales.revenue", "sql": REVENUE_SQL, "description": "revenue per customer"},
         {"name": "bi.sales.big", "sql": "SELECT customer, revenue FROM bi.sales.revenue WHERE revenue > 100"}]
ORDERS, CUSTOMER, NATION = "pg.public.orders", "lake.main.customer", "lake.main.nation"
#: the lineage of bi.sales.revenue, checked by hand against REVENUE_SQL
EXPECTED = {
    "nation": {(NATION, "n_name", "IDENTITY")},
    "customer": {(CUSTOMER, "c_name", "IDENTITY")},
    # orders: count(*) reads no column
    "revenue": {(ORDERS, "o_totalprice", "AGGREGATION")},
    "finished": {(ORDERS, "o_totalprice", "AGGREGATION"), (ORDERS, "o_orderstatus", "CONDITIONAL")},
    "label": {(ORDERS, "o_orderdate", "CONDITIONAL"), (NATION, "n_name", "TRANSFORMATION")},
}


@pytest.fixture(scope="module")
def engine(trust_pg, tmp_path_factory):
    lake = write_lake(tmp_path_factory.mktemp("views") / "lake")
    settings = settings_from_dict({"sources": [{"name": "pg", "kind": "postgresql", "uri": trust_pg},
                                               {"name": "lake", "kind": "parquet", "path": str(lake)}],
                                   "views": VIEWS}, base_dir=lake.parent)
    engine = QueryEngine(settings)
    yield engine
    engine.close()


def _lineage(engine, name: str) -> dict:
    view = engine.catalog.views.find(name.split("."))
    return {column: {(str(ref), col, kind) for ref, col, kind in inputs}
            for column, inputs in view_lineage(engine.catalog, view).items()}


def test_view_column_lineage_matches_the_hand_checked_expectation(engine):
    assert _lineage(engine, "bi.sales.revenue") == EXPECTED
    # a view over the view is traced to the same source columns
    assert _lineage(engine, "bi.sales.big") == {"customer": EXPECTED["customer"], "revenue": EXPECTED["revenue"]}


def _urn(name: str, platform: str) -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:{platform},{name},PROD)"


def test_datahub_view_dataset_with_fine_grained_lineage(engine, tmp_path):
    proposals = datahub_mcps(engine.catalog)
    view = _urn("bi.sales.revenue", "gateway")
    by = {(p["entityUrn"], p["aspectName"]): p["aspect"]["json"] for p in proposals}
    assert [a for u, a in by if u == view] == ["datasetProperties", "schemaMetadata", "viewProperties", "subTypes",
                                               "upstreamLineage"]
    assert by[(view, "viewProperties")] == {"materialized": False, "viewLogic": REVENUE_SQL, "viewLanguage": "SQL"}
    assert by[(view, "datasetProperties")]["description"] == "revenue per customer"
    assert [f["fieldPath"] for f in by[(view, "schemaMetadata")]["fields"]] == [
        "nation", "customer", "orders", "revenue", "finished", "label"]
    lineage = by[(view, "upstreamLineage")]
    platforms = {ORDERS: "postgres", CUSTOMER: "file", NATION: "file"}
    assert [(u["dataset"], u["type"]) for u in lineage["upstreams"]] == [
        (_urn(CUSTOMER, "file"), "VIEW"), (_urn(NATION, "file"), "VIEW"), (_urn(ORDERS, "postgres"), "VIEW")]
    got = set()
    for fine in lineage["fineGrainedLineages"]:
        assert fine["upstreamType"] == "FIELD_SET" and fine["downstreamType"] == "FIELD"
        (down,) = fine["downstreams"]
        assert down.startswith(f"urn:li:schemaField:({view},")
        got |= {(down.rsplit(",", 1)[1][:-1], up, fine["transformOperation"]) for up in fine["upstreams"]}
    want = {(column, f"urn:li:schemaField:({_urn(t, platforms[t])},{c})", kind)
            for column, inputs in EXPECTED.items() for t, c, kind in inputs}
    assert got == want


def test_openmetadata_view_table_and_lineage_requests(engine, tmp_path):
    requests = openmetadata_requests(engine.catalog, now_ms=1_700_000_000_000)
    types = [r["type"] for r in requests]
    assert types[-6:] == ["AddLineageRequest"] * 6 and "AddLineageRequest" not in types[:-6]  # 3 tables x 2 views
    view = next(r["entity"] for r in requests if r["type"] == "CreateTableRequest" and r["entity"]["name"] == "revenue")
    assert view["tableType"] == "View" and view["schemaDefinition"] == REVENUE_SQL
    assert view["databaseSchema"] == "bi.default.sales"
    lineage = [r for r in requests if r["type"] == "AddLineageRequest"]
    assert sorted(r["to_table"] for r in lineage) == ["bi.default.sales.big"] * 3 + ["bi.default.sales.revenue"] * 3
    fqn = {ORDERS: next(r["from_table"] for r in lineage if r["from_table"].endswith(".public.orders")),
           CUSTOMER: "lake.default.main.customer", NATION: "lake.default.main.nation"}
    got = set()
    for request in lineage:
        edge = request["entity"]["edge"]
        sql = REVENUE_SQL if request["to_table"].endswith(".revenue") else VIEWS[1]["sql"]
        assert edge["lineageDetails"]["sqlQuery"] == sql
        assert edge["fromEntity"]["fullyQualifiedName"] == request["from_table"]
        for column in edge["lineageDetails"]["columnsLineage"]:
            assert all(c.rpartition(".")[0] == request["from_table"] for c in column["fromColumns"])
            got |= {(column["toColumn"], c) for c in column["fromColumns"]}
    target = "bi.default.sales.revenue"
    want = {(f"{target}.{column}", f"{fqn[t]}.{c}") for column, inputs in EXPECTED.items() for t, c, _ in inputs}
    assert {g for g in got if g[0].startswith(target + ".")} == want
    assert {g for g in got if not g[0].startswith(target + ".")} == {
        ("bi.default.sales.big.customer", f"{fqn[CUSTOMER]}.c_name"),
        ("bi.default.sales.big.revenue", f"{fqn[ORDERS]}.o_totalprice")}


def test_lineage_edges_are_sent_with_the_tables_ids(engine):
    requests = openmetadata_requests(engine.catalog)
    received: list = []
    with running_app(openmetadata_stand_in(received)) as base:
        sent = post_openmetadata(requests, f"{base}/api")
    ids = {f"{body['databaseSchema']}.{body['name']}": answered
           for kind, _, body, answered in received if kind == "tables"}
    assert sent["by_type"]["AddLineageRequest"] == 6
    edges = [body["edge"] for kind, _, body, _ in received if kind == "lineage"]
    assert {e["toEntity"]["id"] for e in edges} == {ids["bi.default.sales.revenue"], ids["bi.default.sales.big"]}
    assert all(e["fromEntity"]["id"] == ids[e["fromEntity"]["fullyQualifiedName"]] for e in edges)
