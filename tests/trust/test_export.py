"""``gateway catalog export --format datahub``: one dataset per table with properties, schema (types, keys,
foreign keys) and profile, over a real PostgreSQL database and a Parquet folder. DataHub's own file source
reads the output back in ``bench/datahub_export_check.py`` (acryl-datahub is too heavy for the test extra).
About 2 s."""

from __future__ import annotations

from gateway.execution.engine import QueryEngine
from gateway.trust.export import datahub_mcps
from tests.trust.conftest import pg_execute, trust_settings, write_lake


def test_datahub_proposals(trust_pg, trust_maria, tmp_path):
    pg_execute(trust_pg, "CREATE TABLE public.lines (l_id integer PRIMARY KEY, "
                         "l_orderkey integer REFERENCES public.orders (o_orderkey), l_note text)",
               "ANALYZE public.orders")
    engine = QueryEngine(trust_settings(trust_pg, trust_maria, write_lake(tmp_path / "lake")))
    try:
        proposals = datahub_mcps(engine.catalog, ["pg", "lake"])
    finally:
        engine.close()
    by = {(p["entityUrn"], p["aspectName"]): p["aspect"]["json"] for p in proposals}
    orders = "urn:li:dataset:(urn:li:dataPlatform:postgres,pg.public.orders,PROD)"
    lines = "urn:li:dataset:(urn:li:dataPlatform:postgres,pg.public.lines,PROD)"
    nation = "urn:li:dataset:(urn:li:dataPlatform:file,lake.main.nation,PROD)"
    assert {urn for urn, _ in by} == {orders, lines, nation,
                                      "urn:li:dataset:(urn:li:dataPlatform:file,lake.main.customer,PROD)"}
    assert all(p["changeType"] == "UPSERT" and p["entityType"] == "dataset" for p in proposals)
    schema = by[(orders, "schemaMetadata")]
    fields = {f["fieldPath"]: f for f in schema["fields"]}
    assert fields["o_orderkey"]["isPartOfKey"] and not fields["o_orderkey"]["nullable"]
    assert fields["o_orderkey"]["type"] == {"type": {"com.linkedin.schema.NumberType": {}}}
    assert fields["o_orderdate"]["type"] == {"type": {"com.linkedin.schema.DateType": {}}}
    assert fields["o_orderstatus"]["nativeDataType"] == "string" and schema["primaryKeys"] == ["o_orderkey"]
    (fk,) = by[(lines, "schemaMetadata")]["foreignKeys"]
    assert fk["foreignDataset"] == orders
    assert fk["foreignFields"] == [f"urn:li:schemaField:({orders},o_orderkey)"]
    profile = by[(orders, "datasetProfile")]
    assert profile["rowCount"] == 60 and profile["columnCount"] == 5
    status = next(f for f in profile["fieldProfiles"] if f["fieldPath"] == "o_orderstatus")
    assert status["uniqueCount"] == 2 and status["nullProportion"] == 0
    assert by[(nation, "datasetProperties")]["customProperties"]["gateway_kind"] == "parquet"
