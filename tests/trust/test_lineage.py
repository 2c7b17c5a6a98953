"""OpenLineage run events: a collector (a small ASGI app on loopback) receives START and COMPLETE of a
federated query over PostgreSQL, MariaDB and Parquet; the events hold the OpenLineage 2-0-2 structure; the
column lineage of a TPC-H-shaped query with joins, CASE and aggregates is the hand-checked one; a failed query
sends FAIL; a collector that is down neither slows queries down nor goes unnoticed. Runs in about 10 s.

openlineage-python (1.54) ships no JSON schema files (only classes generated from them), so the events are
validated with ``jsonschema`` against ``EVENT_SCHEMA`` below: the required members and types of the spec's
OpenLineage.json (2-0-2: RunEvent, Run, Job, Dataset, BaseFacet) and ColumnLineageDatasetFacet.json (1-2-0),
restated from the spec.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI, Request

from gateway.errors import ConfigError, GatewayError
from gateway.execution.engine import QueryEngine
from gateway.settings import LineageConfig
from gateway.trust.emitter import make_client
from gateway.trust.lineage import query_fingerprint
from tests.demo_support import free_port, running_app
from tests.trust.conftest import maria_schema, trust_settings, write_lake

_FACET = {"type": "object", "required": ["_producer", "_schemaURL"],
          "properties": {"_producer": {"type": "string", "format": "uri"},
                         "_schemaURL": {"type": "string", "format": "uri"}}}
_INPUT_FIELD = {"type": "object", "required": ["namespace", "name", "field"], "properties": {
    "namespace": {"type": "string"}, "name": {"type": "string"}, "field": {"type": "string"},
    "transformations": {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
        "type": {"enum": ["DIRECT", "INDIRECT"]}, "subtype": {"type": "string"}}}}}}
_DATASET = {"type": "object", "required": ["namespace", "name"], "properties": {
    "namespace": {"type": "string"}, "name": {"type": "string"},
    "facets": {"type": "object", "additionalProperties": _FACET,
               "properties": {"columnLineage": {"allOf": [_FACET, {"type": "object", "required": ["fields"],
                   "properties": {"fields": {"type": "object", "additionalProperties": {
                       "type": "object", "required": ["inputFields"],
                       "properties": {"inputFields": {"type": "array", "items": _INPUT_FIELD}}}},
                       "dataset": {"type": "array", "items": _INPUT_FIELD}}}]}}},
    "inputFacets": {"type": "object", "additionalProperties": _FACET},
    "outputFacets": {"type": "object", "additionalProperties": _FACET}}}
EVENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "required": ["eventTime", "producer", "run", "job", "schemaURL"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {"type": "object", "required": ["runId"], "properties": {
            "runId": {"type": "string", "format": "uuid"},
            "facets": {"type": "object", "additionalProperties": _FACET}}},
        "job": {"type": "object", "required": ["namespace", "name"], "properties": {
            "namespace": {"type": "string"}, "name": {"type": "string"},
            "facets": {"type": "object", "additionalProperties": _FACET}}},
        "inputs": {"type": "array", "items": _DATASET},
        "outputs": {"type": "array", "items": _DATASET},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(EVENT_SCHEMA, format_checker=jsonschema.FormatChecker())

#: a TPC-H Q5/Q12-shaped query over three sources: joins, a CASE inside an aggregate, grouping and sorting
TPCH_SQL = """SELECT n.n_name AS nation, o.o_orderstatus AS status,
       SUM(CASE WHEN o.o_orderstatus = 'F' THEN l.l_extendedprice * (1 - l.l_discount) ELSE 0 END) AS revenue,
       MAX(l.l_quantity) AS max_qty, COUNT(*) AS lines
FROM pg.public.orders o
JOIN maria.{maria}.lineitem l ON l.l_orderkey = o.o_orderkey
JOIN lake.customer c ON c.c_custkey = o.o_custkey
JOIN lake.nation n ON n.n_nationkey = c.c_nationkey
WHERE o.o_orderdate >= DATE '1995-01-01'
GROUP BY n.n_name, o.o_orderstatus
ORDER BY revenue DESC"""


class Collector:
    """An OpenLineage HTTP collector: ``POST /api/v1/lineage`` keeps each event; ``/healthz`` for startup."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.app = FastAPI()
        self.app.post("/api/v1/lineage")(self._receive)
        self.app.get("/healthz")(lambda: {"status": "ok"})

    async def _receive(self, request: Request) -> dict:
        self.events.append(await request.json())
        return {}

    def wait_for(self, run_id: str, types: set[str], timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events if e["run"]["runId"] == run_id]
            if {e["eventType"] for e in found} >= types:
                return found
            time.sleep(0.05)
        raise AssertionError(f"events {types} of run {run_id} not received: {[e['eventType'] for e in found]}")


@pytest.fixture(scope="module")
def collector():
    c = Collector()
    with running_app(c.app) as base:
        c.url = base
        yield c


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return write_lake(tmp_path_factory.mktemp("lineage") / "lake")


@pytest.fixture(scope="module")
def engine(trust_pg, trust_maria, lake, collector):
    eng = QueryEngine(trust_settings(trust_pg, trust_maria, lake, lineage={
        "transport": {"type": "http", "url": collector.url, "endpoint": "api/v1/lineage", "timeout": 5}}))
    yield eng
    eng.close()


def _run(engine: QueryEngine, sql: str):
    result = engine.execute(sql)
    result.reader.read_all()
    return result


def _tail(name: str) -> str:
    """A dataset name's last part: a file's name, a database table's name."""
    return name.rsplit("/", 1)[-1] if "/" in name else name.rsplit(".", 1)[-1]


def _fields(facet: dict) -> dict:
    """``{output: {(dataset tail, field, type, subtype)}}`` of a column-lineage facet (JSON)."""
    return {out: {(_tail(i["name"]), i["field"], t["type"], t["subtype"])
                  for i in spec["inputFields"] for t in i["transformations"]}
            for out, spec in facet["fields"].items()}


def test_federated_query_sends_start_and_complete(engine, collector, trust_maria, lake):
    schema = maria_schema(trust_maria)
    result = _run(engine, TPCH_SQL.format(maria=schema))
    events = collector.wait_for(str(uuid.UUID(result.stats.query_id)), {"START", "COMPLETE"})
    for event in events:
        errors = sorted(_VALIDATOR.iter_errors(event), key=str)
        assert not errors, [e.message for e in errors]
    start = next(e for e in events if e["eventType"] == "START")
    complete = next(e for e in events if e["eventType"] == "COMPLETE")
    assert start["job"] == complete["job"] | {"facets": start["job"]["facets"]}
    assert complete["job"]["namespace"] == "federated-sql-gateway"
    assert complete["job"]["name"] == f"query.{query_fingerprint(result.stats.sql)}"
    assert complete["job"]["facets"]["sql"]["query"] == result.stats.sql
    inputs = {(i["namespace"], i["name"]): i for i in complete["inputs"]}
    pg_db = engine.catalog.connector("pg").options["uri"].rsplit("/", 1)[1]
    assert set(inputs) == {
        ("postgres://127.0.0.1:5432", f"{pg_db}.public.orders"),
        ("mysql://127.0.0.1:3306", f"{schema}.lineitem"),
        ("file", str((lake / "customer.parquet").resolve())),
        ("file", str((lake / "nation.parquet").resolve())),
    }
    orders = inputs[("postgres://127.0.0.1:5432", f"{pg_db}.public.orders")]
    assert [f["name"] for f in orders["facets"]["schema"]["fields"]][:3] == ["o_orderkey", "o_custkey",
                                                                            "o_orderstatus"]
    assert orders["inputFacets"]["inputStatistics"]["rowCount"] == 60
    assert "inputStatistics" not in {k for i in start["inputs"] for k in i.get("inputFacets", {})}
    run_facet = complete["run"]["facets"]["gatewayManifest"]
    assert run_facet["queryId"] == result.stats.query_id
    assert run_facet["manifest"]["content_hash"] == engine.trust.current(result.stats.query_id).content_hash()
    assert {t["table"] for t in run_facet["manifest"]["tables"]} == {
        "pg.public.orders", f"maria.{schema}.lineitem", "lake.main.customer", "lake.main.nation"}


def test_column_lineage_of_a_tpch_query_matches_the_hand_checked_one(engine, collector, trust_maria):
    result = _run(engine, TPCH_SQL.format(maria=maria_schema(trust_maria)))
    events = collector.wait_for(str(uuid.UUID(result.stats.query_id)), {"COMPLETE"})
    complete = next(e for e in events if e["eventType"] == "COMPLETE")
    (output,) = complete["outputs"]
    facet = output["facets"]["columnLineage"]
    assert _fields(facet) == {
        "nation": {("nation.parquet", "n_name", "DIRECT", "IDENTITY")},
        "status": {("orders", "o_orderstatus", "DIRECT", "IDENTITY")},
        "revenue": {("lineitem", "l_extendedprice", "DIRECT", "AGGREGATION"),
                    ("lineitem", "l_discount", "DIRECT", "AGGREGATION"),
                    ("orders", "o_orderstatus", "INDIRECT", "CONDITIONAL")},
        "max_qty": {("lineitem", "l_quantity", "DIRECT", "AGGREGATION")},
        # COUNT(*) reads no column: no input fields, hence no entry
    }
    dataset = {(_tail(i["name"]), i["field"], i["transformations"][0]["subtype"])
               for i in facet["dataset"]}
    assert dataset == {
        ("orders", "o_orderdate", "FILTER"),
        ("nation.parquet", "n_name", "GROUP_BY"), ("orders", "o_orderstatus", "GROUP_BY"),
        ("lineitem", "l_orderkey", "JOIN"), ("orders", "o_orderkey", "JOIN"),
        ("customer.parquet", "c_custkey", "JOIN"), ("orders", "o_custkey", "JOIN"),
        ("nation.parquet", "n_nationkey", "JOIN"), ("customer.parquet", "c_nationkey", "JOIN"),
    }
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["nation", "status", "revenue",
                                                                        "max_qty", "lines"]


def test_a_failed_query_sends_fail(engine, collector):
    with pytest.raises(GatewayError):
        _run(engine, "SELECT CAST(n_name AS INTEGER) AS n FROM lake.nation")
    failed = engine.metrics.history(1)[0]
    events = collector.wait_for(str(uuid.UUID(failed.query_id)), {"START", "FAIL"})
    fail = next(e for e in events if e["eventType"] == "FAIL")
    assert not list(_VALIDATOR.iter_errors(fail))
    assert fail["run"]["facets"]["errorMessage"]["message"] == failed.error


def test_a_schema_change_is_sent_as_a_dataset_event(engine, collector, lake):
    assert engine.trust.refresh("lake") == []  # the baseline
    pq.write_table(pa.table({"r_regionkey": pa.array([0], pa.int32()), "r_name": ["AFRICA"]}),
                   lake / "region.parquet")
    try:
        assert [c["kind"] for c in engine.trust.refresh("lake")] == ["table_added"]
        name = str((lake / "region.parquet").resolve())
        deadline = time.monotonic() + 15
        while not (found := [e for e in collector.events if e.get("dataset", {}).get("name") == name]):
            assert time.monotonic() < deadline, "no dataset event received"
            time.sleep(0.05)
        (event,) = found
        assert event["dataset"]["namespace"] == "file" and "run" not in event
        facets = event["dataset"]["facets"]
        assert [f["name"] for f in facets["schema"]["fields"]] == ["r_regionkey", "r_name"]
        assert facets["gatewaySchemaChange"]["change"]["kind"] == "table_added"
    finally:
        (lake / "region.parquet").unlink()


def test_the_environment_configures_the_transport(monkeypatch, collector):
    monkeypatch.delenv("OPENLINEAGE_CONFIG", raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    assert make_client(LineageConfig()) is None
    monkeypatch.setenv("OPENLINEAGE_URL", collector.url)
    assert make_client(LineageConfig()).transport.kind == "http"
    assert make_client(LineageConfig(enabled=False)) is None
    with pytest.raises(ConfigError, match=r"lineage\.transport"):
        make_client(LineageConfig(transport={"type": "no-such-transport"}))


def _timed(engine: QueryEngine, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        _run(engine, "SELECT n_name, COUNT(*) AS c FROM lake.nation GROUP BY n_name")
        times.append(time.perf_counter() - t0)
    return times


def test_a_collector_that_is_down_does_not_slow_queries_and_is_counted(trust_pg, trust_maria, lake):
    """Measured: the median query time with lineage sent to a closed port vs with lineage off (30 queries
    each, after a warm-up); events that could not be sent are counted ``failed`` or ``dropped``."""
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    quiet = QueryEngine(trust_settings(trust_pg, trust_maria, lake, lineage={"enabled": False}))
    noisy = QueryEngine(trust_settings(trust_pg, trust_maria, lake, lineage={
        "transport": {"type": "http", "url": down, "timeout": 1, "retry": {"total": 2, "backoff_factor": 0.2}},
        "queue_size": 4}))
    try:
        _timed(quiet, 3), _timed(noisy, 3)
        off, on = statistics.median(_timed(quiet, 30)), statistics.median(_timed(noisy, 30))
        assert on <= off * 1.5 + 0.005, f"median {on * 1000:.1f} ms with a down collector vs {off * 1000:.1f} ms"
        registry = noisy.metrics.registry
        lost = sum(registry.get_sample_value("gateway_lineage_events_total", {"outcome": o}) or 0
                   for o in ("failed", "dropped"))
        assert lost >= 60  # 2 events per query, none of them sent
        assert (registry.get_sample_value("gateway_lineage_events_total", {"outcome": "sent"}) or 0) == 0
        assert threading.active_count() < 200
    finally:
        t0 = time.perf_counter()
        noisy.close()
        quiet.close()
        assert time.perf_counter() - t0 < 10
