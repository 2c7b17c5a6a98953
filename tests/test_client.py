"""``gateway.client`` against the real Flight SQL server: results, metadata, the DB-API cursor, and errors
rebuilt into the gateway's own exception classes. Expected data comes from the demo files read directly."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from pyarrow import flight

from flight_server.errors import to_flight_error
from gateway import client as gw_client
from gateway.errors import (
    ERRORS_BY_CODE,
    GatewayError,
    QueryTimeoutError,
    SourceUnavailableError,
    SqlSyntaxError,
    UnknownObjectError,
)
from gateway.settings import settings_from_dict


@pytest.fixture(scope="module")
def folder(demo_folder) -> Path:
    return demo_folder


@pytest.fixture(scope="module")
def flight_settings(folder):
    return settings_from_dict({"sources": [
        {"name": "demo_db", "kind": "sqlite", "path": "demo_data/demo.db"},
        {"name": "demo_lake", "kind": "parquet", "path": "demo_data/lake"},
        {"name": "gone", "kind": "sqlite", "path": "missing/gone.db"},
    ]}, base_dir=folder)


@pytest.fixture(scope="module")
def conn(uri):
    with gw_client.connect(uri) as connection:
        yield connection


@pytest.fixture(scope="module")
def customers(folder) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(folder / "demo_data" / "demo.db")) as db:
        return db.execute("SELECT id, name, region FROM customers ORDER BY id").fetchall()


def test_query_with_and_without_parameters(conn, customers):
    table = conn.query("SELECT id, name, region FROM demo_db.customers ORDER BY id")
    assert isinstance(table, pa.Table) and [tuple(r.values()) for r in table.to_pylist()] == customers
    some = conn.query("SELECT id FROM demo_db.customers WHERE region = ? AND id < ? ORDER BY id", ["north", 50])
    assert some.column("id").to_pylist() == [c[0] for c in customers if c[2] == "north" and c[0] < 50]


def test_stream_yields_record_batches(conn, folder):
    orders = ds.dataset(folder / "demo_data" / "lake" / "orders", partitioning="hive").to_table()
    batches = list(conn.stream("SELECT order_id FROM demo_lake.orders"))
    assert batches and all(isinstance(b, pa.RecordBatch) for b in batches)
    assert sorted(pa.Table.from_batches(batches).column("order_id").to_pylist()) == sorted(
        orders.column("order_id").to_pylist())
    stream = conn.stream("SELECT order_id FROM demo_lake.orders")
    first = next(stream)
    stream.close()  # closing early cancels the query; the connection stays usable
    assert first.num_rows > 0
    assert conn.query("SELECT 1 AS x").to_pylist() == [{"x": 1}]


def test_pandas_and_polars(conn, customers):
    frame = conn.query_pandas("SELECT id, name FROM demo_db.customers ORDER BY id")
    assert isinstance(frame, pd.DataFrame) and list(frame["id"]) == [c[0] for c in customers]
    polars_frame = conn.query_polars("SELECT id, name FROM demo_db.customers ORDER BY id")
    assert isinstance(polars_frame, pl.DataFrame) and polars_frame["name"].to_list() == [c[1] for c in customers]


def test_explain_sources_tables(conn):
    plan = conn.explain("SELECT c.name FROM demo_db.customers c JOIN demo_lake.orders o ON o.customer_id = c.id")
    assert "Fragment" in plan and "demo_db" in plan and "demo_lake" in plan
    assert conn.sources() == ["demo_db", "demo_lake", "gone"]
    assert conn.tables("demo_lake") == [("main", "orders"), ("main", "regions")]
    assert conn.tables("nope") == []


def test_dbapi_cursor(conn, customers):
    with conn.cursor() as cur:
        cur.execute("SELECT id, region FROM demo_db.customers WHERE id <= ? ORDER BY id", (3,))
        assert [d[0] for d in cur.description] == ["id", "region"]
        assert cur.fetchone() == (customers[0][0], customers[0][2])
        assert cur.fetchall() == [(c[0], c[2]) for c in customers[1:3]]
        with pytest.raises(UnknownObjectError):
            cur.execute("SELECT * FROM demo_db.customrs")


def test_syntax_error_has_position(conn):
    with pytest.raises(SqlSyntaxError) as excinfo:
        conn.query("SELECT id,\nFROM demo_db.customers WHERE")
    error = excinfo.value
    assert (error.line, error.column) == (2, error.column) and error.column >= 1
    assert error.details["line"] == 2


def test_unknown_object_has_nearest_names(conn):
    with pytest.raises(UnknownObjectError) as excinfo:
        conn.query("SELECT * FROM demo_lake.ordrs")
    assert excinfo.value.name == "ordrs" and excinfo.value.nearest == ["orders"]


def test_source_unavailable_names_the_source(conn):
    with pytest.raises(SourceUnavailableError) as excinfo:
        conn.query("SELECT * FROM gone.main.anything")
    assert excinfo.value.source == "gone"
    assert conn.query("SELECT count(*) AS n FROM demo_db.products").column("n")[0].as_py() > 0


# "cancelled" is left out: a CANCELLED status on a call made from the main thread surfaces as pyarrow's
# KeyboardInterrupt; test_flight_bi's cancellation tests see it come back as FlightCancelledError.
@pytest.mark.parametrize("code", sorted(set(ERRORS_BY_CODE) - {"cancelled"}))
def test_every_error_class_survives_the_flight_status(code):
    """Each gateway error, raised by a real Flight server method, comes back as its own class."""
    cls = ERRORS_BY_CODE[code]
    error = GatewayError.__new__(cls)
    GatewayError.__init__(error, f"{code} happened in source 'pg'")

    class Failing(flight.FlightServerBase):
        def list_flights(self, context, criteria):
            raise to_flight_error(error)

    with (Failing("grpc://127.0.0.1:0") as server, flight.connect(f"grpc://127.0.0.1:{server.port}") as client,
          pytest.raises(Exception) as excinfo):
        list(client.list_flights())
    rebuilt = gw_client.rebuild_error(excinfo.value)
    assert type(rebuilt) is cls and rebuilt.message == error.message
    if cls is QueryTimeoutError:
        assert isinstance(excinfo.value, flight.FlightTimedOutError)


def test_metadata_schemas_types_and_names(conn):
    assert conn.schemas("demo_db") == ["main"] and conn.schemas("nope") == []
    assert conn.table_types("demo_lake") == {("main", "orders"): "TABLE", ("main", "regions"): "TABLE"}
    assert conn.tables("demo_db", "main", ["VIEW"]) == []
    names = conn.catalog_names()
    assert "credit_limit" in names[("demo_db", "main", "customers")]
    assert names[("demo_lake", "main", "regions")] == conn.table_schema("demo_lake", "main", "regions").names
    assert conn.primary_key("demo_db", "main", "customers") == ["id"]
    assert conn.foreign_keys("demo_lake", "main", "orders") == []


def test_execute_streams_and_cancel_stops_the_query(conn, uri):
    with conn.execute("SELECT order_id FROM demo_lake.orders WHERE order_id <= ?", [10]) as running:
        assert running.schema.names == ["order_id"]
        assert sorted(running.reader.read_all().column(0).to_pylist()) == list(range(1, 11))
    # 25 million rows: cancelled after its first batch, the stream ends (or fails) well before its end. On a
    # connection of its own, left open: the ADBC driver (1.13) can abort the process closing a connection
    # after a cancelled DoGet (see terminal.RemoteBackend.close)
    other = gw_client.connect(uri)
    running = other.execute("SELECT a.order_id FROM demo_lake.orders a CROSS JOIN demo_lake.orders b")
    read = running.reader.read_next_batch().num_rows
    running.cancel()
    with contextlib.suppress(Exception):
        for batch in running.reader:
            read += batch.num_rows
    running.close()
    assert 0 < read < 25_000_000
    assert other.query("SELECT 1 AS x").to_pylist() == [{"x": 1}]


@pytest.mark.parametrize(("given", "uri"), [("127.0.0.1:8815", "grpc://127.0.0.1:8815"),
                                            ("grpc+tls://gw:443", "grpc+tls://gw:443")])
def test_server_uri(given, uri):
    assert gw_client.server_uri(given) == uri


def test_server_uri_refuses_other_schemes():
    with pytest.raises(ValueError, match="not a Flight SQL address: 'http://gw:8080'"):
        gw_client.server_uri("http://gw:8080")
