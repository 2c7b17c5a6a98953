"""``gateway catalog export --format openmetadata``: OpenMetadata create requests (services, databases,
schemas, tables with columns, types, keys; table profiles) over a real PostgreSQL database and a Parquet
folder, their order, names and type mapping, deterministic output, and ``--url`` against a stand-in of
OpenMetadata's REST API on loopback (an ASGI app that records the PUTs). openmetadata-ingestion's own models
parse the output in ``bench/openmetadata_export_check.py`` (too heavy for the test extra). About 5 s."""

from __future__ import annotations

import json
import subprocess

import pyarrow as pa
import pytest

from gateway.errors import SourceQueryError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from gateway.trust.export import OM_PATHS, om_column_type, om_fqn, openmetadata_requests, post_openmetadata
from tests.demo_support import running_app
from tests.test_cli import cli_env, gateway_command
from tests.trust.conftest import openmetadata_stand_in, pg_execute, write_lake

ORDER = ["CreateDatabaseServiceRequest", "CreateDatabaseRequest", "CreateDatabaseSchemaRequest", "CreateTableRequest",
         "CreateTableProfileRequest"]


@pytest.fixture(scope="module")
def om_pg(trust_pg):
    """The trust database plus ``public.lines`` (composite key, foreign key to orders), analyzed."""
    pg_execute(trust_pg, "CREATE TABLE public.lines (l_orderkey integer REFERENCES public.orders (o_orderkey), "
                         "l_line smallint, l_qty real, PRIMARY KEY (l_orderkey, l_line))",
               "INSERT INTO public.lines SELECT g, 1, 2.5 FROM generate_series(1, 10) g",
               "ANALYZE public.orders", "ANALYZE public.lines")
    return trust_pg


@pytest.fixture
def config(om_pg, tmp_path):
    lake = write_lake(tmp_path / "lake")
    return {"sources": [{"name": "pg", "kind": "postgresql", "uri": om_pg},
                        {"name": "lake", "kind": "parquet", "path": str(lake)}]}


def _export(raw: dict, tmp_path, now_ms: int = 1_700_000_000_000) -> list[dict]:
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    try:
        return openmetadata_requests(engine.catalog, now_ms=now_ms)
    finally:
        engine.close()


def test_requests_shape_names_keys_and_profiles(config, om_pg, tmp_path):
    requests = _export(config, tmp_path)
    assert requests == _export(config, tmp_path)  # deterministic
    json.dumps(requests)  # JSON-ready as it is
    kinds = [r["type"] for r in requests]
    assert kinds == sorted(kinds, key=ORDER.index)  # each entity after the one it belongs to
    assert all(r["method"] == "PUT" and r["path"] == OM_PATHS[r["type"]] for r in requests)
    database = om_pg.rsplit("/", 1)[1].split("?")[0]
    by = {(r["type"], r.get("table") or r["entity"]["name"]): r["entity"] for r in requests if r["type"] != ORDER[3]}
    tables = {f"{r['entity']['databaseSchema']}.{r['entity']['name']}": r["entity"] for r in requests
              if r["type"] == ORDER[3]}
    assert by[(ORDER[0], "pg")]["serviceType"] == "Postgres" and by[(ORDER[0], "lake")]["serviceType"] == "Datalake"
    assert by[(ORDER[1], database)] == {"name": database, "service": "pg"}
    assert by[(ORDER[1], "default")] == {"name": "default", "service": "lake"}  # OpenMetadata's DEFAULT_DATABASE
    assert by[(ORDER[2], "public")] == {"name": "public", "database": f"pg.{database}"}
    assert set(tables) == {f"pg.{database}.public.orders", f"pg.{database}.public.lines",
                           "lake.default.main.nation", "lake.default.main.customer"}

    orders = tables[f"pg.{database}.public.orders"]
    assert orders["tableType"] == "Regular" and "tableConstraints" not in orders
    assert [(c["name"], c["dataType"], c.get("constraint"), c["ordinalPosition"]) for c in orders["columns"]] == [
        ("o_orderkey", "INT", "PRIMARY_KEY", 1), ("o_custkey", "INT", "NOT_NULL", 2),
        ("o_orderstatus", "STRING", "NOT_NULL", 3), ("o_totalprice", "DECIMAL", "NULL", 4),
        ("o_orderdate", "DATE", "NULL", 5)]
    assert orders["columns"][3]["precision"] == 12 and orders["columns"][3]["scale"] == 2
    lines = tables[f"pg.{database}.public.lines"]
    assert lines["tableConstraints"] == [
        {"constraintType": "PRIMARY_KEY", "columns": ["l_orderkey", "l_line"]},
        {"constraintType": "FOREIGN_KEY", "columns": ["l_orderkey"],
         "referredColumns": [f"pg.{database}.public.orders.o_orderkey"], "relationshipType": "MANY_TO_ONE"}]
    assert [c.get("constraint") for c in lines["columns"]] == [None, None, "NULL"]  # a composite key's columns
    assert tables["lake.default.main.nation"]["tableType"] == "External"

    profile = by[(ORDER[4], f"pg.{database}.public.orders")]
    assert profile["tableProfile"]["rowCount"] == 60 and profile["tableProfile"]["columnCount"] == 5
    assert profile["tableProfile"]["timestamp"] == 1_700_000_000_000
    status = next(c for c in profile["columnProfile"] if c["name"] == "o_orderstatus")
    assert status["distinctProportion"] == 2 / 60 and status["distinctCount"] == 2 and status["nullProportion"] == 0 and status["nullCount"] == 0
    assert (status["min"], status["max"]) == ("F", "O")
    columns = {c["name"]: c for c in profile["columnProfile"]}
    assert (columns["o_orderkey"]["min"], columns["o_orderkey"]["max"]) == (1, 60)  # numbers stay numbers
    assert (columns["o_orderdate"]["min"], columns["o_totalprice"]["max"]) == ("1995-01-02", "630.00")  # text


def test_type_mapping_and_names():
    assert [om_column_type(t)["dataType"] for t in (
        pa.bool_(), pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(), pa.float32(),
        pa.float64(), pa.date32(), pa.timestamp("us"), pa.timestamp("us", tz="UTC"), pa.time64("us"),
        pa.duration("s"), pa.string(), pa.large_string(), pa.binary(), pa.binary(16), pa.null(),
    )] == ["BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT", "SMALLINT", "BIGINT", "FLOAT", "DOUBLE", "DATE",
           "TIMESTAMP", "TIMESTAMPZ", "TIME", "INTERVAL", "STRING", "STRING", "BYTES", "BINARY", "NULL"]
    assert om_column_type(pa.uint64()) == {"dataType": "NUMERIC", "dataTypeDisplay": "uint64", "precision": 20,
                                           "scale": 0}
    assert om_column_type(pa.binary(16))["dataLength"] == 16  # OpenMetadata requires it for BINARY
    assert om_column_type(pa.list_(pa.float32())) == {"dataType": "ARRAY", "dataTypeDisplay": "list<item: float>",
                                                      "arrayDataType": "FLOAT"}
    nested = om_column_type(pa.struct([("city", pa.string()), ("zip", pa.int32())]))
    assert [(c["name"], c["dataType"]) for c in nested["children"]] == [("city", "STRING"), ("zip", "INT")]
    assert om_column_type(pa.dictionary(pa.int8(), pa.string()))["dataType"] == "STRING"
    assert om_column_type(pa.map_(pa.string(), pa.int64()))["dataType"] == "MAP"
    assert om_fqn("pg", "db", "public", "v1.2") == 'pg.db.public."v1.2"'


def test_url_sends_every_request_in_order(config, tmp_path):
    requests = [r for r in _export(config, tmp_path) if r.get("table", "").split(".")[-1] != "nation"
                and r["entity"].get("name") != "nation"]
    received: list = []
    with running_app(openmetadata_stand_in(received, refused_table="nation")) as base:
        sent = post_openmetadata(requests, f"{base}/api", token="t0ken")
    assert sent["sent"] == len(requests) == len(received)
    assert sent["by_type"]["CreateTableRequest"] == 3
    assert all(auth == "Bearer t0ken" for _, auth, _, _ in received)
    assert [kind for kind, _, _, _ in received][:6] == ["services/databaseServices"] * 2 + ["databases"] * 2 + [
        "databaseSchemas"] * 2
    profiles = [kind for kind, _, _, _ in received if kind.endswith("/tableProfile")]
    assert len(profiles) == sum(1 for r in requests if r["type"] == "CreateTableProfileRequest") > 0
    assert all(len(p.split("/")[1]) == 36 for p in profiles)  # the ids the stand-in gave the tables


def test_url_refusal_names_the_request(config, tmp_path):
    received: list = []
    with running_app(openmetadata_stand_in(received, refused_table="nation")) as base, pytest.raises(SourceQueryError, match=r"CreateTableRequest "
                                                                 r"nation was refused with HTTP 400"):
        post_openmetadata(_export(config, tmp_path), f"{base}/api")


def test_cli_writes_the_file(config, tmp_path):
    lake = config["sources"][1]["path"]
    toml = tmp_path / "gateway.toml"
    toml.write_text(f'[[sources]]\nname = "lake"\nkind = "parquet"\npath = "{lake}"\n')
    out = tmp_path / "om.json"
    done = subprocess.run([*gateway_command(), "catalog", "export", "--format", "openmetadata", "--out", str(out),
                           "--config", str(toml)], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "OpenMetadata create requests" in done.stdout
    written = json.loads(out.read_text())
    assert [r["type"] for r in written].count("CreateTableRequest") == 2
