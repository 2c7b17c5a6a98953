"""What BI clients need from the Flight SQL server, against the real server, real PostgreSQL and real clients.

Clients: the ADBC Flight SQL driver (Go; DB-API, get_objects, cancel, session options), pandas and polars reading
through ADBC, and a raw ``pyarrow.flight`` client speaking the protocol messages (the SQLAlchemy dialect, the path
Apache Superset takes, is tested in test_sqlalchemy.py). PostgreSQL holds tables with composite and
single-column foreign keys and a view whose query sleeps, to watch cancellation in ``pg_stat_activity``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as adbc_pg
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from adbc_driver_flightsql import DatabaseOptions
from pyarrow import flight

from flight_server import protocol as pb
from flight_server import schemas
from flight_server.sql_info import SQL_INFO_VALUE_KIND, SqlInfo, UpdateDeleteRules
from gateway.settings import settings_from_dict
from tests.flight_support import serve, setup_pg, slow_backends

KIND_CODE = {"string": 0, "bool": 1, "bigint": 2, "int32_bitmask": 3, "string_list": 4,
             "int32_to_int32_list_map": 5}


@pytest.fixture(scope="module")
def flight_settings(demo_folder, pg_database):
    setup_pg(pg_database)
    raw = {"sources": [
        {"name": "demo_db", "kind": "sqlite", "path": "demo_data/demo.db"},
        {"name": "demo_lake", "kind": "parquet", "path": "demo_data/lake"},
        {"name": "pg", "kind": "postgresql", "uri": pg_database},
    ]}
    return settings_from_dict(raw, base_dir=demo_folder)


@pytest.fixture
def pg_names(pg_database, pg_server) -> Iterator[tuple[str, str]]:
    """(admin URI, database name) for pg_stat_activity; a test that fails leaves no sleeping backend."""
    names = (pg_server, urlsplit(pg_database).path.lstrip("/"))
    yield names
    for pid, *_ in slow_backends(*names):
        with adbc_pg.connect(pg_server, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend($1)", parameters=(pid,))


def flight_get(client, command, options=None) -> tuple[flight.FlightInfo, pa.Table]:
    descriptor = flight.FlightDescriptor.for_command(pb.pack(command))
    info = client.get_flight_info(descriptor, options) if options else client.get_flight_info(descriptor)
    reader = client.do_get(info.endpoints[0].ticket, options) if options else client.do_get(info.endpoints[0].ticket)
    return info, reader.read_all()


def action(client, kind: str, body: bytes) -> list[bytes]:
    return [r.body.to_pybytes() for r in client.do_action(flight.Action(kind, body))]


def wait_until(predicate, timeout: float = 10.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# ---- GetSqlInfo, GetXdbcTypeInfo ------------------------------------------------------------------------------


def test_sql_info_every_id_in_its_spec_arm(raw):
    _info, table = flight_get(raw, pb.CommandGetSqlInfo())
    assert table.schema.equals(schemas.SQL_INFO_SCHEMA)
    ids = table.column("info_name").to_pylist()
    assert sorted(ids) == sorted(int(i) for i in SqlInfo)  # empty request = every id
    codes = table.column("value").chunk(0).type_codes.to_pylist()
    for info_id, code in zip(ids, codes, strict=True):
        assert code == KIND_CODE[SQL_INFO_VALUE_KIND[SqlInfo(info_id)]], SqlInfo(info_id).name
    values = dict(zip(ids, table.column("value").to_pylist(), strict=True))
    # JDBC reads 562 as a Long (int64 arm); the spec's "no transactions" ordinal is 0
    assert codes[ids.index(562)] == 2 and values[562] == 0
    assert values[SqlInfo.FLIGHT_SQL_SERVER_CANCEL] is True
    assert values[SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION] is None
    assert dict(values[SqlInfo.SQL_SUPPORTS_CONVERT])[0]  # BIGINT converts to something


def test_xdbc_type_info_sorted_with_datetime_subcodes(raw):
    _, table = flight_get(raw, pb.CommandGetXdbcTypeInfo())
    rows = table.to_pylist()
    assert [(r["data_type"], r["type_name"]) for r in rows] == sorted((r["data_type"], r["type_name"]) for r in rows)
    by_name = {r["type_name"]: r for r in rows}
    assert by_name["DATE"]["sql_data_type"] == 9 and by_name["DATE"]["datetime_subcode"] == 1
    assert by_name["TIMESTAMP"]["datetime_subcode"] == 3 and by_name["DOUBLE"]["num_prec_radix"] == 2
    assert by_name["DECIMAL"]["num_prec_radix"] == 10 and by_name["DECIMAL"]["maximum_scale"] == 38
    _, ints = flight_get(raw, pb.CommandGetXdbcTypeInfo(data_type=4))
    assert ints.column("type_name").to_pylist() == ["INTEGER"]


# ---- keys ----------------------------------------------------------------------------------------------------


def test_primary_keys_composite(raw):
    _, table = flight_get(raw, pb.CommandGetPrimaryKeys(catalog="pg", db_schema="bi", table="parent"))
    assert [(r["column_name"], r["key_sequence"]) for r in table.to_pylist()] == [("a", 1), ("b", 2)]


def test_imported_keys_composite_with_rules(raw):
    info, table = flight_get(raw, pb.CommandGetImportedKeys(catalog="pg", db_schema="bi", table="child"))
    assert info.schema.equals(schemas.KEYS_SCHEMA) and table.schema.equals(schemas.KEYS_SCHEMA)
    rows = [(r["pk_table_name"], r["pk_column_name"], r["fk_table_name"], r["fk_column_name"], r["key_sequence"],
             r["fk_key_name"], r["update_rule"], r["delete_rule"]) for r in table.to_pylist()]
    cascade, no_action = int(UpdateDeleteRules.CASCADE), int(UpdateDeleteRules.NO_ACTION)
    assert rows == [("parent", "a", "child", "pa", 1, "child_parent_fk", no_action, cascade),
                    ("parent", "b", "child", "pb", 2, "child_parent_fk", no_action, cascade)]
    assert {r["pk_catalog_name"] for r in table.to_pylist()} == {"pg"}


def test_exported_keys_and_cross_reference(raw):
    _, exported = flight_get(raw, pb.CommandGetExportedKeys(catalog="pg", db_schema="bi", table="child"))
    assert [(r["fk_table_name"], r["fk_column_name"], r["pk_column_name"], r["update_rule"])
            for r in exported.to_pylist()] == [("grandchild", "child_id", "id", int(UpdateDeleteRules.SET_NULL))]
    command = pb.CommandGetCrossReference(pk_catalog="pg", pk_db_schema="bi", pk_table="parent",
                                          fk_catalog="pg", fk_db_schema="bi", fk_table="child")
    _, cross = flight_get(raw, command)
    assert [r["fk_column_name"] for r in cross.to_pylist()] == ["pa", "pb"]
    unrelated = pb.CommandGetCrossReference(pk_table="parent", fk_table="grandchild")
    assert flight_get(raw, unrelated)[1].num_rows == 0


# ---- prepared statements ------------------------------------------------------------------------------------


def _prepare(client, sql: str):
    request = pb.ActionCreatePreparedStatementRequest(query=sql)
    [body] = action(client, pb.ACTION_CREATE_PREPARED_STATEMENT, pb.pack(request))
    return pb.unpack(body)


def test_prepare_gives_dataset_and_typed_parameter_schemas(raw):
    created = _prepare(raw, "SELECT a, label FROM pg.bi.parent WHERE b = ? AND label LIKE ? LIMIT ?")
    dataset = pa.ipc.read_schema(pa.py_buffer(created.dataset_schema))
    params = pa.ipc.read_schema(pa.py_buffer(created.parameter_schema))
    assert dataset.names == ["a", "label"] and dataset.field("a").type == pa.int32()
    assert [(f.name, f.type) for f in params] == [("$1", pa.int32()), ("$2", pa.string()), ("$3", pa.int64())]


def test_prepared_handle_kept_across_executions_and_closed(raw, orders_count):
    created = _prepare(raw, "SELECT count(*) AS n FROM demo_lake.main.orders WHERE customer_id = ?")
    descriptor = flight.FlightDescriptor.for_command(
        pb.pack(pb.CommandPreparedStatementQuery(prepared_statement_handle=created.prepared_statement_handle)))
    for customer in (3, 9):
        params = pa.table({"$1": pa.array([customer], pa.int64())})
        writer, reader = raw.do_put(descriptor, params.schema)
        writer.write_table(params)
        writer.done_writing()
        reader.read()
        writer.close()
        info = raw.get_flight_info(descriptor)
        assert raw.do_get(info.endpoints[0].ticket).read_all().to_pylist() == [{"n": orders_count(customer)}]
    close = pb.ActionClosePreparedStatementRequest(prepared_statement_handle=created.prepared_statement_handle)
    action(raw, pb.ACTION_CLOSE_PREPARED_STATEMENT, pb.pack(close))
    with pytest.raises(pa.ArrowInvalid, match="unknown or expired prepared statement"):
        raw.get_flight_info(descriptor)


@pytest.fixture(scope="module")
def orders_count(flight_settings):
    import pyarrow.dataset as ds

    orders = ds.dataset(Path(flight_settings.config_dir) / "demo_data" / "lake" / "orders", partitioning="hive")
    ids = orders.to_table(columns=["customer_id"]).column("customer_id").to_pylist()
    return ids.count


def test_prepared_statement_expires_when_idle(flight_settings):
    settings = flight_settings.model_copy(update={"limits": flight_settings.limits.model_copy(
        update={"statement_ttl_s": 0.5})})
    with serve(settings) as (address, _), flight.connect(address) as client:
        created = _prepare(client, "SELECT count(*) AS n FROM demo_db.main.customers")
        descriptor = flight.FlightDescriptor.for_command(pb.pack(
            pb.CommandPreparedStatementQuery(prepared_statement_handle=created.prepared_statement_handle)))
        assert client.get_flight_info(descriptor).schema.names == ["n"]
        info = client.get_flight_info(descriptor)
        time.sleep(0.7)
        with pytest.raises(pa.ArrowInvalid, match="unknown or expired prepared statement"):
            client.get_flight_info(descriptor)
        with pytest.raises(pa.ArrowInvalid, match="unknown or expired statement"):  # tickets expire too
            client.do_get(info.endpoints[0].ticket).read_all()


# ---- read-only --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    pb.CommandStatementIngest(table="t", table_definition_options={"if_not_exist": 1, "if_exists": 1}),
    pb.CommandStatementUpdate(query="UPDATE pg.bi.parent SET label = 'x'"),
], ids=["ingest", "update"])
def test_updates_and_ingest_refused_read_only(raw, command):
    descriptor = flight.FlightDescriptor.for_command(pb.pack(command))
    with pytest.raises(pa.ArrowInvalid, match=r"\[unsupported_statement\] .* read-only"):
        writer, reader = raw.do_put(descriptor, pa.schema([("a", pa.int32())]))
        writer.write_table(pa.table({"a": pa.array([1], pa.int32())}))
        writer.done_writing()
        reader.read()
        writer.close()


# ---- session options ----------------------------------------------------------------------------------------


def test_session_catalog_and_schema_through_adbc(uri):
    """``customers`` exists in demo_db.main and pg.crm: ambiguous, unless the session names a default."""
    kwargs = {DatabaseOptions.WITH_COOKIE_MIDDLEWARE.value: "true"}
    with flightsql.connect(uri, db_kwargs=kwargs, autocommit=True) as conn:
        conn.adbc_current_catalog = "pg"
        conn.adbc_current_db_schema = "crm"
        assert (conn.adbc_current_catalog, conn.adbc_current_db_schema) == ("pg", "crm")
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM pg.crm.customers")
            expected = cur.fetchall()
            cur.execute("SELECT count(*) AS n FROM customers")  # resolved in pg.crm
            assert cur.fetchall() == expected
            cur.execute("SELECT count(*) AS n FROM bi.parent")  # schema.table within the default catalog
            assert cur.fetchall() == [(0,)]
    with (flightsql.connect(uri, db_kwargs=kwargs, autocommit=True) as other, other.cursor() as cur,
          pytest.raises(flightsql.Error, match="ambiguous_name")):  # another session: no default
        cur.execute("SELECT count(*) AS n FROM customers")


def test_session_options_errors_raw(raw):
    request = pb.SetSessionOptionsRequest()
    request.session_options["catalog"].string_value = "nope"
    request.session_options["colour"].string_value = "blue"
    [body] = action(raw, pb.ACTION_SET_SESSION_OPTIONS, request.SerializeToString())
    errors = pb.SetSessionOptionsResult.FromString(body).errors
    value = pb.SetSessionOptionsResult.ErrorValue
    assert errors["catalog"].value == value.Value("INVALID_VALUE")
    assert errors["colour"].value == value.Value("INVALID_NAME")


# ---- cancellation ---------------------------------------------------------------------------------------------


def test_cancel_flight_info_before_do_get(raw):
    descriptor = flight.FlightDescriptor.for_command(
        pb.pack(pb.CommandStatementQuery(query="SELECT * FROM demo_db.main.customers")))
    info = raw.get_flight_info(descriptor)
    request = pb.CancelFlightInfoRequest(info=info.serialize())
    [body] = action(raw, pb.ACTION_CANCEL_FLIGHT_INFO, request.SerializeToString())
    assert pb.CancelFlightInfoResult.FromString(body).status == pb.CancelStatus.Value("CANCEL_STATUS_CANCELLED")
    with pytest.raises(pa.ArrowInvalid, match="unknown or expired statement"):
        raw.do_get(info.endpoints[0].ticket).read_all()
    [again] = action(raw, pb.ACTION_CANCEL_FLIGHT_INFO, request.SerializeToString())
    assert pb.CancelFlightInfoResult.FromString(again).status == pb.CancelStatus.Value(
        "CANCEL_STATUS_NOT_CANCELLABLE")


def _run_in_thread(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = target()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_adbc_cancel_stops_the_postgres_backend(uri, pg_names):
    with flightsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        thread, outcome = _run_in_thread(lambda: (cur.execute("SELECT * FROM pg.bi.slow"), cur.fetchall()))
        running = wait_until(lambda: slow_backends(*pg_names))
        assert running and running[0][1] == "active"
        t0 = time.monotonic()
        cur.adbc_cancel()
        thread.join(10)
        assert not thread.is_alive() and "error" in outcome
        assert wait_until(lambda: not slow_backends(*pg_names), timeout=5), slow_backends(*pg_names)
        assert time.monotonic() - t0 < 5


def test_cancel_flight_info_stops_a_running_query(raw, uri, pg_names):
    descriptor = flight.FlightDescriptor.for_command(pb.pack(pb.CommandStatementQuery(query="SELECT * FROM pg.bi.slow")))
    info = raw.get_flight_info(descriptor)
    with flight.connect(uri) as reader_client:
        thread, outcome = _run_in_thread(lambda: reader_client.do_get(info.endpoints[0].ticket).read_all())
        assert wait_until(lambda: slow_backends(*pg_names))
        request = pb.CancelFlightInfoRequest(info=info.serialize())
        [body] = action(raw, pb.ACTION_CANCEL_FLIGHT_INFO, request.SerializeToString())
        assert pb.CancelFlightInfoResult.FromString(body).status == pb.CancelStatus.Value("CANCEL_STATUS_CANCELLING")
        thread.join(10)
        assert isinstance(outcome.get("error"), flight.FlightCancelledError), outcome
        assert "[cancelled]" in str(outcome["error"])
    assert wait_until(lambda: not slow_backends(*pg_names), timeout=5), slow_backends(*pg_names)


_DISCONNECTING_CLIENT = """
import sys
from pyarrow import flight
from flight_server import protocol as pb
client = flight.connect(sys.argv[1])
descriptor = flight.FlightDescriptor.for_command(pb.pack(pb.CommandStatementQuery(query="SELECT * FROM pg.bi.slow")))
info = client.get_flight_info(descriptor)
print("started", flush=True)
client.do_get(info.endpoints[0].ticket).read_all()
"""


def test_client_that_disconnects_stops_the_source_query(uri, served, pg_names):
    """A client process killed mid-DoGet: the server sees the call cancelled and cancels the source query."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", _DISCONNECTING_CLIENT, uri], stdout=subprocess.PIPE,
                               cwd=Path(__file__).resolve().parent.parent, text=True)
    try:
        assert process.stdout.readline().strip() == "started"
        assert wait_until(lambda: slow_backends(*pg_names))
        assert served[1]._running
    finally:
        process.kill()
        process.wait(10)
    assert wait_until(lambda: not slow_backends(*pg_names), timeout=5), slow_backends(*pg_names)
    assert wait_until(lambda: not served[1]._running, timeout=5)


# ---- ADBC on the PostgreSQL source ------------------------------------------------------------------------------


def test_adbc_objects_and_table_schema_on_postgres(uri):
    with flightsql.connect(uri, autocommit=True) as conn:
        objects = conn.adbc_get_objects(depth="columns", catalog_filter="pg", db_schema_filter="bi",
                                        table_name_filter="parent").read_all().to_pylist()
        [catalog] = objects
        [schema] = [s for s in catalog["catalog_db_schemas"] if s["db_schema_name"] == "bi"]
        [table] = schema["db_schema_tables"]
        assert [c["column_name"] for c in table["table_columns"]] == ["a", "b", "label"]
        schema = conn.adbc_get_table_schema("child", catalog_filter="pg", db_schema_filter="bi")
        assert [(f.name, f.type) for f in schema] == [("id", pa.int32()), ("pa", pa.int32()), ("pb", pa.int32()),
                                                      ("note", pa.string())]
        assert not schema.field("id").nullable


# flightsql-dbapi and its ``datafusion+flightsql`` SQLAlchemy dialect (pinned to SQLAlchemy < 2, unmaintained) were
# tested here; the gateway's own SQLAlchemy 2 dialect replaces them: tests/test_sqlalchemy.py.


# ---- pandas and polars through ADBC ------------------------------------------------------------------------------


def test_pandas_and_polars_read_through_adbc(uri, flight_settings):
    import sqlite3

    with sqlite3.connect(Path(flight_settings.config_dir) / "demo_data" / "demo.db") as db:
        expected = db.execute("SELECT id, name FROM customers WHERE id <= 5 ORDER BY id").fetchall()
    sql = "SELECT id, name FROM demo_db.main.customers WHERE id <= 5 ORDER BY id"
    with flightsql.connect(uri, autocommit=True) as conn:
        frame = pd.read_sql(sql, conn)
        assert list(frame.itertuples(index=False, name=None)) == expected
        polars_frame = pl.read_database(sql, connection=conn)
        assert polars_frame.rows() == expected
        assert polars_frame.schema["id"] == pl.Int64
