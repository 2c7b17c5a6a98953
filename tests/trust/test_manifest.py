"""The freshness manifest of answers: the same data state gives the same content hash, a committed write or a
replaced file gives another; cache use and staleness are reported; REST headers, ``GET
/v1/queries/{id}/manifest`` and Flight SQL ``FlightInfo.app_metadata`` carry it. Runs in about 5 s."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import flight

from flight_server import protocol as pb
from flight_server.server import GatewayFlightServer
from gateway.api.app import create_app
from gateway.client import connect
from gateway.execution.engine import QueryEngine
from tests.demo_support import running_app
from tests.trust.conftest import maria_execute, maria_schema, pg_execute, trust_settings, write_lake


def _answer(engine: QueryEngine, sql: str, params=None, **kwargs) -> dict:
    result = engine.execute(sql, params, **kwargs)
    result.reader.read_all()
    return engine.trust.current(result.stats.query_id).to_dict()


@pytest.fixture
def engine(trust_pg, trust_maria, tmp_path):
    eng = QueryEngine(trust_settings(trust_pg, trust_maria, write_lake(tmp_path / "lake")))
    yield eng
    eng.close()


def test_file_replacement_changes_the_hash_and_nothing_else_does(engine, tmp_path):
    sql = "SELECT n_name FROM lake.nation WHERE n_nationkey < 3"
    first = _answer(engine, sql)
    again = _answer(engine, sql)
    assert first["content_hash"] == again["content_hash"] and first["provable"]
    assert first["query_id"] != again["query_id"]
    (table,) = first["tables"]
    assert table["table"] == "lake.main.nation" and table["kind"] == "parquet"
    assert table["fingerprint"].startswith("nation.parquet:") and not table["changed_during_read"]
    assert table["rows"] == 3 and table["from_cache"] is False and first["staleness_bound_s"] == 0

    path = tmp_path / "lake" / "nation.parquet"
    pq.write_table(pa.table({"n_nationkey": pa.array([0, 1], pa.int32()), "n_name": ["X", "Y"]}), path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))  # a new mtime even on a coarse clock
    replaced = _answer(engine, sql)
    assert replaced["content_hash"] != first["content_hash"]
    assert replaced["tables"][0]["fingerprint"] != table["fingerprint"]
    assert _answer(engine, sql)["content_hash"] == replaced["content_hash"]
    # the parameters are part of what identifies an answer
    assert _answer(engine, "SELECT n_name FROM lake.nation WHERE n_nationkey < $1", [3])["content_hash"] != \
        _answer(engine, "SELECT n_name FROM lake.nation WHERE n_nationkey < $1", [2])["content_hash"]


def test_committed_writes_change_the_database_fingerprints(engine, trust_pg, trust_maria):
    """PostgreSQL's and MariaDB's fingerprints are server-wide log positions: a committed write always moves
    them (the hash changes); writes elsewhere in the server may move them too (other tests share the
    servers), so equal hashes are asserted only where the fingerprints are equal."""
    schema = maria_schema(trust_maria)
    sql = f"SELECT count(*) AS n FROM pg.public.orders o JOIN maria.{schema}.lineitem l ON l.l_orderkey = o.o_orderkey"
    before = _answer(engine, sql)
    assert {t["kind"] for t in before["tables"]} == {"postgresql", "mysql"}
    assert all(t["fingerprint"].startswith("lsn:") for t in before["tables"])
    pg_execute(trust_pg, "UPDATE public.orders SET o_totalprice = o_totalprice + 1 WHERE o_orderkey = 1")
    after_pg = _answer(engine, sql)
    fps = {t["table"]: t["fingerprint"] for t in before["tables"]}
    moved = {t["table"]: t["fingerprint"] for t in after_pg["tables"]}
    assert moved["pg.public.orders"] != fps["pg.public.orders"]
    assert after_pg["content_hash"] != before["content_hash"]
    maria_execute(trust_maria, "UPDATE lineitem SET l_quantity = l_quantity + 1 WHERE l_orderkey = 1")
    after_maria = _answer(engine, sql)
    assert {t["table"]: t["fingerprint"] for t in after_maria["tables"]}[f"maria.{schema}.lineitem"] != \
        moved[f"maria.{schema}.lineitem"]
    # equal fingerprints <=> equal hashes
    again = _answer(engine, sql)
    same = [t["fingerprint"] for t in again["tables"]] == [t["fingerprint"] for t in after_maria["tables"]]
    assert (again["content_hash"] == after_maria["content_hash"]) == same


def test_cached_partitions_report_their_age_and_the_bound(trust_pg, trust_maria, tmp_path):
    settings = trust_settings(trust_pg, trust_maria, write_lake(tmp_path / "lake"))
    settings.sources[2].cache_ttl_s = 600.0
    eng = QueryEngine(settings)
    try:
        eng.cache_warm("lake.nation")
        time.sleep(0.2)
        cached = _answer(eng, "SELECT n_name FROM lake.nation")
        (table,) = cached["tables"]
        assert table["from_cache"] and table["max_cached_age_s"] >= 0.2
        assert table["staleness_bound_s"] == 600.0 and cached["staleness_bound_s"] == 600.0
        assert _answer(eng, "SELECT n_name FROM lake.nation")["content_hash"] == cached["content_hash"]
        proven = _answer(eng, "SELECT n_name FROM lake.nation", max_staleness_s=0)
        assert proven["staleness_bound_s"] == 0
    finally:
        eng.close()


def test_rest_headers_and_manifest_endpoint(engine):
    with running_app(create_app(engine)) as base:
        answer = httpx.post(f"{base}/v1/query", json={"sql": "SELECT n_name FROM lake.nation"}, timeout=30)
        assert answer.status_code == 200, answer.text
        query_id = answer.headers["x-query-id"]
        link = answer.headers["link"]
        assert link == f'</v1/queries/{query_id}/manifest>; rel="manifest"'
        assert answer.headers["x-manifest-tables"].startswith("lake.main.nation@nation.parquet:")
        assert answer.headers["x-manifest-staleness-s"] == "0"
        whole = httpx.get(f"{base}/v1/queries/{query_id}/manifest", timeout=30).json()
        assert whole["content_hash"] == answer.headers["x-manifest-hash"]
        assert whole["status"] == "ok" and whole["tables"][0]["rows"] == 5
        missing = httpx.get(f"{base}/v1/queries/nope/manifest", timeout=30)
        assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]


@contextlib.contextmanager
def _flight_client(engine):
    """A Flight SQL server of ``engine`` on a free 127.0.0.1 port, a bare client of it, and the command of
    ``SELECT n_name FROM lake.nation``; the server stops at the end."""
    server = GatewayFlightServer(engine, "grpc://127.0.0.1:0")
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        client = flight.FlightClient(f"grpc://127.0.0.1:{server.port}")
        yield server, client, pb.pack(pb.CommandStatementQuery(query="SELECT n_name FROM lake.nation"))
        with contextlib.suppress(Exception):
            client.close()
    finally:
        server.shutdown()
        thread.join(10)


def test_flight_info_app_metadata_carries_the_manifest(engine):
    with _flight_client(engine) as (server, client, command):
        info = client.get_flight_info(flight.FlightDescriptor.for_command(command))
        doc = json.loads(info.app_metadata)["gateway_manifest"]
        assert doc["status"] == "planned" and doc["tables"][0]["table"] == "lake.main.nation"
        client.do_get(info.endpoints[0].ticket).read_all()
        ran = engine.metrics.history(1)[0]
        assert engine.trust.current(ran.query_id).to_dict()["content_hash"] == doc["content_hash"]
        with connect(f"grpc://127.0.0.1:{server.port}") as conn:  # the Python client: answer.manifest
            answer = conn.answer("SELECT n_name FROM lake.nation")
        assert answer.table.num_rows == 5 and answer.manifest["content_hash"] == doc["content_hash"]


def test_a_flight_sql_statement_reads_its_fingerprints_once(engine, monkeypatch):
    """GetFlightInfo reads the fingerprints for the manifest in app_metadata; the run its DoGet starts begins
    from that manifest (read before any fragment all the same), unless it is older than PREVIEW_REUSE_S."""
    from gateway.trust import manifest, recorder

    reads = []  # the fingerprint reads before a run (the ones after it run off the query's path)
    real = manifest.begin
    monkeypatch.setattr(manifest, "begin", lambda *args: reads.append(args[2]) or real(*args))
    with _flight_client(engine) as (_, client, command):
        info = client.get_flight_info(flight.FlightDescriptor.for_command(command))
        client.do_get(info.endpoints[0].ticket).read_all()
        assert reads == ["SELECT n_name FROM lake.nation"]
        ran = engine.trust.current(engine.metrics.history(1)[0].query_id)
        assert ran.content_hash() == json.loads(info.app_metadata)["gateway_manifest"]["content_hash"]

        monkeypatch.setattr(recorder, "PREVIEW_REUSE_S", 0.0)  # a DoGet long after its GetFlightInfo
        info = client.get_flight_info(flight.FlightDescriptor.for_command(command))
        time.sleep(0.01)
        client.do_get(info.endpoints[0].ticket).read_all()
        assert reads == ["SELECT n_name FROM lake.nation"] * 3
