"""A Flight SQL statement is planned once: GetFlightInfo plans it and its ticket carries the plan; DoGet runs
that plan without parsing or planning the SQL again (also not for a principal whose sources are limited).
A ticket whose plan was given up, or made over an older catalog version, still runs: DoGet plans the SQL text.

Real servers on free loopback ports (``tests.flight_support.serve``) over a Parquet folder; driven by the ADBC
Flight SQL driver and by ``pyarrow.flight`` (GetFlightInfo and DoGet apart).
"""

from __future__ import annotations

import base64
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import flight

import planner.parse
from flight_server import protocol as pb
from gateway.auth import hash_password
from gateway.settings import settings_from_dict
from planner import Planner
from tests.flight_support import serve

SQL = "SELECT id, v FROM lake.main.t WHERE id < 3 ORDER BY id"
PASSWORD = "plan-once-pw"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plan_once")
    for source, table in (("lake", "t"), ("other", "u")):
        (root / source / table).mkdir(parents=True)
        pq.write_table(pa.table({"id": list(range(10)), "v": [i * 1.5 for i in range(10)]}),
                       root / source / table / "part-0.parquet")
    return root


def _settings(folder: Path, auth: bool):
    raw = {"sources": [{"name": "lake", "kind": "parquet", "path": str(folder / "lake")},
                       {"name": "other", "kind": "parquet", "path": str(folder / "other")}]}
    if auth:
        raw["auth"] = {"enabled": True, "users": [
            {"name": "ann", "password_hash": hash_password(PASSWORD), "sources": ["lake"]}]}
    return settings_from_dict(raw, base_dir=folder)


@pytest.fixture
def plans(monkeypatch) -> list[str]:
    """The SQL text of every ``Planner.plan`` call (each planning of a statement, plan cache or not)."""
    calls: list[str] = []
    original = Planner.plan

    def counted(self, sql, params=None):
        calls.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(Planner, "plan", counted)
    return calls


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The SQL text of every ``planner.parse.parse`` call looked up at call time (the source check of a limited
    principal parses the query this way)."""
    calls: list[str] = []
    original = planner.parse.parse

    def counted(sql, *args, **kwargs):
        calls.append(sql)
        return original(sql, *args, **kwargs)

    monkeypatch.setattr(planner.parse, "parse", counted)
    return calls


def _descriptor(sql: str) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(pb.pack(pb.CommandStatementQuery(query=sql)))


def test_each_statement_is_planned_once_through_the_adbc_driver(folder, plans):
    """The driver prepares each statement (CreatePreparedStatement), then GetFlightInfo and DoGet run it: one
    planning in all; executing it again reuses that plan."""
    statements = [SQL, "SELECT count(*) AS n FROM lake.main.t", "SELECT max(v) AS m FROM lake.main.t WHERE id < 3"]
    with serve(_settings(folder, auth=False)) as (uri, _), flightsql.connect(uri) as conn, conn.cursor() as cur:
        answers = []
        for sql in statements:
            cur.execute(sql)
            answers.append(cur.fetch_arrow_table().column(0).to_pylist())
        assert plans == statements
        for _ in range(2):
            cur.execute(statements[-1])
            assert cur.fetch_arrow_table().column(0).to_pylist() == answers[-1]
        assert plans == statements
    assert answers == [[0, 1, 2], [10], [3.0]]


def test_do_get_neither_plans_nor_parses_for_a_limited_principal(folder, plans, parses):
    basic = "Basic " + base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    options = flight.FlightCallOptions(headers=[(b"authorization", basic.encode())])
    with serve(_settings(folder, auth=True)) as (uri, _):
        client = flight.connect(uri)
        info = client.get_flight_info(_descriptor(SQL), options)
        assert plans == [SQL]
        plans.clear()
        parses.clear()
        table = client.do_get(info.endpoints[0].ticket, options).read_all()
        assert table.column("id").to_pylist() == [0, 1, 2]
        assert plans == [] and parses == []
        # the source check still holds: a query naming a source outside the principal's is refused
        with pytest.raises(flight.FlightUnauthorizedError, match="other"):
            client.get_flight_info(_descriptor("SELECT * FROM other.main.u"), options)
        client.close()


def test_ticket_without_its_plan_still_runs(folder, plans):
    with serve(_settings(folder, auth=False)) as (uri, server):
        client = flight.connect(uri)
        server._statements.max_planned = 0  # every ticket gives its plan up at once
        info = client.get_flight_info(_descriptor(SQL))
        plans.clear()
        assert client.do_get(info.endpoints[0].ticket).read_all().column("id").to_pylist() == [0, 1, 2]
        assert plans == [SQL]  # planned again from the SQL text
        server._statements.max_planned = 1024
        info = client.get_flight_info(_descriptor(SQL))
        server.gateway.catalog.refresh()  # a new catalog version: the ticket's plan is not used
        plans.clear()
        assert client.do_get(info.endpoints[0].ticket).read_all().column("id").to_pylist() == [0, 1, 2]
        assert plans == [SQL]
        client.close()
