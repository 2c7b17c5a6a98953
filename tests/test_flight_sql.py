"""End-to-end Flight SQL: the real GatewayFlightServer on a loopback port, driven by real clients.

Clients: the ADBC Flight SQL driver (Go, through its DB-API), a raw ``pyarrow.flight`` client speaking the
protocol with ``flight_server.protocol`` messages, and ``gateway.client``. The data is a fresh copy of the
demo data set under a temp folder; expected values come from that copy read independently (``sqlite3`` for
the SQLite source, ``pyarrow.dataset`` for the Parquet lake), never from the gateway.

One server per auth mode (module scope) keeps the file fast.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from adbc_driver_flightsql import DatabaseOptions
from pyarrow import flight

import gateway
from catalog import TableRef
from flight_server import protocol as pb
from flight_server import schemas
from flight_server.sql_info import SqlInfo
from gateway import client as gw_client
from gateway.errors import AuthenticationError, SqlSyntaxError, UnknownObjectError, UnsupportedStatementError
from gateway.settings import load_settings, prepare
from tests.demo_support import DEMO_TOML, orders_table
from tests.flight_support import serve

USER, PASSWORD = "alice", "s3cret"
# "bob:pw1" is 7 bytes: its base64 needs padding, which Go clients (the ADBC driver) leave out.
USER2, PASSWORD2 = "bob", "pw1"

_AUTH = f"""
[auth]
enabled = true
users = [{{name = "{USER}", password = "{PASSWORD}"}}, {{name = "{USER2}", password = "{PASSWORD2}"}}]
"""

# Expected Arrow types of the demo tables (gateway/demo.py; customers/products are SQLite declared types).
CUSTOMERS_TYPES = {
    "id": pa.int64(), "name": pa.string(), "email": pa.string(), "region": pa.string(),
    "signup_date": pa.date32(), "credit_limit": pa.decimal128(10, 2), "active": pa.bool_(),
}
ORDERS_TYPES = {
    "order_id": pa.int64(), "customer_id": pa.int64(), "product_id": pa.int64(), "order_date": pa.date32(),
    "quantity": pa.int32(), "total": pa.decimal128(10, 2), "status": pa.string(), "year": pa.int64(),
}
# XDBC (JDBC/ODBC) type codes per Arrow type, as the spec's XdbcDataType gives them.
XDBC_CODE = {
    pa.int64(): -5, pa.int32(): 4, pa.string(): 12, pa.date32(): 91, pa.decimal128(10, 2): 3, pa.bool_(): -7,
}

JOIN_SQL = (
    "SELECT c.region, count(*) AS n_orders, sum(o.quantity) AS quantity, sum(o.total) AS revenue "
    "FROM demo_db.main.customers c JOIN demo_lake.main.orders o ON o.customer_id = c.id "
    "WHERE o.status = 'shipped' AND c.active "
    "GROUP BY c.region ORDER BY revenue DESC, c.region LIMIT 3"
)
PARAM_SQL = (
    "SELECT o.order_id, o.order_date, o.total, c.name "
    "FROM demo_lake.main.orders o JOIN demo_db.main.customers c ON o.customer_id = c.id "
    "WHERE (o.customer_id = ? AND o.status = ?) AND (o.order_date >= ? AND o.quantity > 0) "
    "ORDER BY o.order_id"
)


# ---- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_dir(demo_folder) -> Path:
    """The session's demo config, with an auth-enabled copy beside it (both share one demo_data folder)."""
    (demo_folder / "gateway_auth.toml").write_text(DEMO_TOML + _AUTH)
    return demo_folder


@pytest.fixture(scope="module")
def flight_settings(config_dir):
    return prepare(load_settings(config_dir / "gateway.toml"))


@pytest.fixture(scope="module")
def auth_uri(config_dir) -> Iterator[str]:
    with serve(prepare(load_settings(config_dir / "gateway_auth.toml"))) as (address, _):
        yield address


@pytest.fixture(scope="module")
def conn(uri):
    with flightsql.connect(uri, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def gw(uri) -> Iterator[gw_client.Connection]:
    with gw_client.connect(uri) as connection:
        yield connection


# ---- independent reference data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def customers(config_dir) -> list[dict]:
    with contextlib.closing(sqlite3.connect(config_dir / "demo_data" / "demo.db")) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM customers ORDER BY id")]


@pytest.fixture(scope="module")
def sqlite_columns(config_dir) -> dict[str, list[sqlite3.Row]]:
    with contextlib.closing(sqlite3.connect(config_dir / "demo_data" / "demo.db")) as db:
        db.row_factory = sqlite3.Row
        return {t: list(db.execute(f"PRAGMA table_info({t})")) for t in ("customers", "products")}


@pytest.fixture(scope="module")
def orders_dataset(config_dir) -> ds.Dataset:
    return ds.dataset(config_dir / "demo_data" / "lake" / "orders", format="parquet", partitioning="hive")


@pytest.fixture(scope="module")
def orders(orders_dataset) -> list[dict]:
    return orders_dataset.to_table().to_pylist()


def expected_join(customers: list[dict], orders: list[dict]) -> list[dict]:
    by_id = {c["id"]: c for c in customers}
    groups: dict[str, list] = {}
    for o in orders:
        c = by_id.get(o["customer_id"])
        if c is None or o["status"] != "shipped" or not c["active"]:
            continue
        g = groups.setdefault(c["region"], [0, 0, Decimal(0)])
        g[0] += 1
        g[1] += o["quantity"]
        g[2] += o["total"]
    rows = [{"region": r, "n_orders": n, "quantity": q, "revenue": s} for r, (n, q, s) in groups.items()]
    return sorted(rows, key=lambda r: (-r["revenue"], r["region"]))[:3]


def expected_params(customers, orders, customer_id: int, status: str, since: dt.date) -> list[dict]:
    names = {c["id"]: c["name"] for c in customers}
    rows = [
        {"order_id": o["order_id"], "order_date": o["order_date"], "total": o["total"],
         "name": names[o["customer_id"]]}
        for o in orders
        if o["customer_id"] == customer_id and o["status"] == status and o["order_date"] >= since
        and o["quantity"] > 0 and o["customer_id"] in names
    ]
    return sorted(rows, key=lambda r: r["order_id"])


def sqlite_arrow_type(declared: str) -> pa.DataType:
    declared = declared.upper()
    if declared.startswith("DECIMAL"):
        precision, scale = declared[declared.index("(") + 1:-1].split(",")
        return pa.decimal128(int(precision), int(scale))
    return {"INTEGER": pa.int64(), "TEXT": pa.string(), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}[declared]


# ---- raw Flight helpers ------------------------------------------------------------------------------------


def flight_get(client: flight.FlightClient, command, options=None) -> tuple[flight.FlightInfo, pa.Table]:
    descriptor = flight.FlightDescriptor.for_command(pb.pack(command))
    info = client.get_flight_info(descriptor, options) if options else client.get_flight_info(descriptor)
    assert len(info.endpoints) == 1
    ticket = info.endpoints[0].ticket
    reader = client.do_get(ticket, options) if options else client.do_get(ticket)
    return info, reader.read_all()


def assert_spec_schema(info: flight.FlightInfo, table: pa.Table, spec: pa.Schema) -> None:
    """FlightInfo and DoGet both carry exactly the spec schema (names, types, nullability)."""
    assert info.schema.equals(spec, check_metadata=True), f"{info.schema}\n!=\n{spec}"
    assert table.schema.equals(spec, check_metadata=True), f"{table.schema}\n!=\n{spec}"
    for got, want in zip(table.schema, spec, strict=True):
        assert got.nullable == want.nullable, got.name


def flatten_objects(reader) -> list[tuple]:
    """adbc_get_objects -> [(catalog, schema|None, table|None, column|None)], None where the depth stops."""
    out: list[tuple] = []
    for cat in reader.read_all().to_pylist():
        schemas_ = cat["catalog_db_schemas"]
        if not schemas_:
            out.append((cat["catalog_name"], None, None, None))
            continue
        for sch in schemas_:
            tables = sch["db_schema_tables"]
            if not tables:
                out.append((cat["catalog_name"], sch["db_schema_name"], None, None))
                continue
            for tab in tables:
                columns = tab["table_columns"]
                if not columns:
                    out.append((cat["catalog_name"], sch["db_schema_name"], tab["table_name"], None))
                    continue
                out.extend(
                    (cat["catalog_name"], sch["db_schema_name"], tab["table_name"], col["column_name"])
                    for col in columns
                )
    return out


class _CaptureAuthorization(flight.ClientMiddlewareFactory):
    """Remembers the ``authorization`` header the server sends back (the issued bearer token)."""

    def __init__(self) -> None:
        self.value: str | None = None

    def start_call(self, info):
        factory = self

        class _Middleware(flight.ClientMiddleware):
            def received_headers(self, headers):
                values = headers.get("authorization") or []
                if values:
                    factory.value = values[0]

        return _Middleware()


def _basic(user: str, password: str, padded: bool = True) -> str:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return "Basic " + (encoded if padded else encoded.rstrip("="))


# ---- 1. statements through ADBC ----------------------------------------------------------------------------


def test_federated_join_equals_reference(conn, customers, orders):
    with conn.cursor() as cur:
        cur.execute(JOIN_SQL)
        table = cur.fetch_arrow_table()
    expected = expected_join(customers, orders)
    assert len(expected) == 3
    assert table.column_names == ["region", "n_orders", "quantity", "revenue"]
    assert table.to_pylist() == expected
    revenue = table.schema.field("revenue").type
    assert pa.types.is_decimal(revenue) and revenue.scale == 2
    assert table.schema.field("n_orders").type == pa.int64()


def test_parameters_int_str_date(conn, customers, orders):
    params = (7, "open", dt.date(2022, 1, 1))
    with conn.cursor() as cur:
        cur.execute(PARAM_SQL, params)
        table = cur.fetch_arrow_table()
    expected = expected_params(customers, orders, *params)
    assert len(expected) >= 3
    assert table.column_names == ["order_id", "order_date", "total", "name"]
    assert table.schema.field("order_date").type == pa.date32()
    assert table.schema.field("total").type == pa.decimal128(10, 2)
    assert table.to_pylist() == expected


def test_parameters_of_each_type_round_trip(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT ? AS i, ? AS s, ? AS d", (42, "héllo", dt.date(2020, 2, 29)))
        assert cur.fetch_arrow_table().to_pylist() == [{"i": 42, "s": "héllo", "d": dt.date(2020, 2, 29)}]


def test_prepared_statement_reexecuted_with_new_parameters(conn, served, customers, orders, monkeypatch):
    server = served[1]
    actions: list[str] = []
    original = server.do_action

    def spy(context, action):
        actions.append(action.type)
        return original(context, action)

    monkeypatch.setattr(server, "do_action", spy, raising=False)
    runs = [(7, "open", dt.date(2022, 1, 1)), (12, "shipped", dt.date(2022, 6, 1)),
            (7, "open", dt.date(2024, 1, 1))]
    with conn.cursor() as cur:
        cur.adbc_prepare(PARAM_SQL)
        results = []
        for params in runs:
            cur.execute(PARAM_SQL, params)
            results.append(cur.fetch_arrow_table().to_pylist())
    for params, got in zip(runs, results, strict=True):
        assert got == expected_params(customers, orders, *params)
    assert results[0] != results[2]
    # One prepared statement, bound three times (DoPut), not re-prepared per execution.
    assert actions.count(pb.ACTION_CREATE_PREPARED_STATEMENT) == 1


def test_parameters_bind_in_text_order(conn, customers, orders):
    """Placeholders at different depths of the WHERE tree still bind first value -> first `?` (regression)."""
    params = (7, "open", dt.date(2022, 1, 1))
    sql = (
        "SELECT o.order_id, o.order_date, o.total, c.name "
        "FROM demo_lake.main.orders o JOIN demo_db.main.customers c ON o.customer_id = c.id "
        "WHERE o.customer_id = ? AND o.status = ? AND o.order_date >= ? AND o.quantity > 0 "
        "ORDER BY o.order_id"
    )
    with conn.cursor() as cur:
        cur.execute(sql, params)
        assert cur.fetch_arrow_table().to_pylist() == expected_params(customers, orders, *params)


def test_executemany_is_refused_cleanly(conn, demo_config):
    with conn.cursor() as cur:
        with pytest.raises(flightsql.Error) as excinfo:
            cur.executemany(
                "SELECT count(*) AS n FROM demo_lake.main.orders WHERE customer_id = ?", [(1,), (2,)]
            )
        assert "[unsupported_statement]" in str(excinfo.value)
    with conn.cursor() as cur:
        # the connection still answers afterwards, with the count the data holds
        cur.execute("SELECT count(*) AS n FROM demo_lake.main.orders WHERE customer_id = ?", (1,))
        assert cur.fetchall()[0][0] == orders_table(demo_config, ds.field("customer_id") == 1).num_rows


# ---- 2. adbc_get_objects -----------------------------------------------------------------------------------


def test_get_objects_catalogs(conn):
    assert flatten_objects(conn.adbc_get_objects(depth="catalogs")) == [
        ("demo_db", None, None, None), ("demo_lake", None, None, None)]
    assert flatten_objects(conn.adbc_get_objects(depth="catalogs", catalog_filter="demo_l%")) == [
        ("demo_lake", None, None, None)]


def test_get_objects_db_schemas(conn):
    assert flatten_objects(conn.adbc_get_objects(depth="db_schemas")) == [
        ("demo_db", "main", None, None), ("demo_lake", "main", None, None)]
    got = flatten_objects(conn.adbc_get_objects(depth="db_schemas", catalog_filter="demo_db",
                                                db_schema_filter="ma%"))
    assert got == [("demo_db", "main", None, None)]
    got = flatten_objects(conn.adbc_get_objects(depth="db_schemas", db_schema_filter="zz%"))
    assert got == [("demo_db", None, None, None), ("demo_lake", None, None, None)]


def test_get_objects_tables(conn):
    got = flatten_objects(conn.adbc_get_objects(depth="tables"))
    assert got == [
        ("demo_db", "main", "customers", None), ("demo_db", "main", "products", None),
        ("demo_lake", "main", "orders", None), ("demo_lake", "main", "regions", None),
    ]
    got = flatten_objects(conn.adbc_get_objects(depth="tables", table_name_filter="ord%"))
    assert got == [("demo_db", "main", None, None), ("demo_lake", "main", "orders", None)]
    got = flatten_objects(conn.adbc_get_objects(depth="tables", catalog_filter="demo_db",
                                                table_name_filter="_roduct_"))
    assert got == [("demo_db", "main", "products", None)]
    table = conn.adbc_get_objects(depth="tables", catalog_filter="demo_lake").read_all().to_pylist()
    types = {t["table_name"]: t["table_type"] for t in table[0]["catalog_db_schemas"][0]["db_schema_tables"]}
    assert types == {"orders": "TABLE", "regions": "TABLE"}
    views = flatten_objects(conn.adbc_get_objects(depth="tables", table_types_filter=["VIEW"]))
    assert all(row[2] is None for row in views)


def _columns(conn, **filters) -> dict[str, dict]:
    rows = conn.adbc_get_objects(depth="columns", **filters).read_all().to_pylist()
    out = {}
    for cat in rows:
        for sch in cat["catalog_db_schemas"] or []:
            for tab in sch["db_schema_tables"] or []:
                for col in tab["table_columns"] or []:
                    name = ".".join((cat["catalog_name"], sch["db_schema_name"], tab["table_name"],
                                     col["column_name"]))
                    out[name] = col
    return out


@pytest.mark.parametrize(("catalog", "pattern", "table", "types"), [
    ("demo_db", "cust%", "customers", CUSTOMERS_TYPES),
    ("demo_lake", "ord%", "orders", ORDERS_TYPES),
])
def test_get_objects_columns(conn, catalog, pattern, table, types):
    cols = _columns(conn, catalog_filter=catalog, table_name_filter=pattern)
    prefix = f"{catalog}.main.{table}."
    assert list(cols) == [prefix + name for name in types]
    for position, (name, arrow_type) in enumerate(types.items(), start=1):
        col = cols[prefix + name]
        assert col["ordinal_position"] == position, name
        assert col["xdbc_data_type"] == XDBC_CODE[arrow_type], name
        assert col["xdbc_sql_data_type"] == XDBC_CODE[arrow_type], name
        assert col["xdbc_scope_catalog"] == catalog and col["xdbc_scope_table"] == table
    unambiguous = {pa.date32(): "DATE", pa.decimal128(10, 2): "DECIMAL", pa.bool_(): "BOOLEAN",
                   pa.int64(): "BIGINT"}
    for name, arrow_type in types.items():
        if arrow_type in unambiguous:
            assert cols[prefix + name]["xdbc_type_name"] == unambiguous[arrow_type], name


def test_get_objects_column_filter(conn):
    cols = _columns(conn, db_schema_filter="main", column_name_filter="%date")
    assert sorted(cols) == ["demo_db.main.customers.signup_date", "demo_lake.main.orders.order_date"]
    assert {c["xdbc_data_type"] for c in cols.values()} == {91}


# ---- 3. adbc_get_table_schema ------------------------------------------------------------------------------


def test_table_schema_sqlite_source(conn, served, sqlite_columns):
    schema = conn.adbc_get_table_schema("customers", catalog_filter="demo_db", db_schema_filter="main")
    assert schema.names == list(CUSTOMERS_TYPES)
    assert [f.type for f in schema] == list(CUSTOMERS_TYPES.values())
    # independent: SQLite's own declared types and NOT NULL flags
    declared = sqlite_columns["customers"]
    assert [r["name"] for r in declared] == schema.names
    assert [sqlite_arrow_type(r["type"]) for r in declared] == [f.type for f in schema]
    assert [not r["notnull"] for r in declared] == [f.nullable for f in schema]
    catalog = served[1].gateway.catalog.table_schema(TableRef("demo_db", "main", "customers"))
    assert [(f.name, f.type) for f in catalog] == [(f.name, f.type) for f in schema]


def test_table_schema_parquet_source(conn, served, orders_dataset):
    schema = conn.adbc_get_table_schema("orders", catalog_filter="demo_lake", db_schema_filter="main")
    assert schema.names == list(ORDERS_TYPES)
    assert [f.type for f in schema] == list(ORDERS_TYPES.values())
    # independent: the Parquet files' own types (the Hive partition column `year` is not in the files)
    file_schema = orders_dataset.schema
    for f in schema:
        if f.name != "year":
            assert file_schema.field(f.name).type == f.type, f.name
    catalog = served[1].gateway.catalog.table_schema(TableRef("demo_lake", "main", "orders"))
    assert [(f.name, f.type) for f in catalog] == [(f.name, f.type) for f in schema]
    total = schema.field("total")
    assert total.metadata[schemas.PRECISION_KEY] == b"10" and total.metadata[schemas.SCALE_KEY] == b"2"


def test_table_schema_unknown_table_errors(conn):
    with pytest.raises(flightsql.Error):
        conn.adbc_get_table_schema("nope", catalog_filter="demo_lake", db_schema_filter="main")


# ---- 4. / 5. adbc_get_info, adbc_get_table_types ----------------------------------------------------------


def test_get_info(conn):
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "federated-sql-gateway"
    assert info["vendor_version"] == gateway.__version__
    assert info["vendor_arrow_version"] == pa.__version__


def test_get_table_types(conn):
    assert conn.adbc_get_table_types() == ["TABLE", "VIEW"]


# ---- 6. raw pyarrow.flight with protocol messages ---------------------------------------------------------


def test_raw_get_sql_info_all(raw):
    info, table = flight_get(raw, pb.CommandGetSqlInfo())
    assert_spec_schema(info, table, schemas.SQL_INFO_SCHEMA)
    assert sorted(table.column("info_name").to_pylist()) == sorted(int(i) for i in SqlInfo)
    values = dict(zip(table.column("info_name").to_pylist(), table.column("value").to_pylist(), strict=True))
    assert values[SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY] is True
    assert values[SqlInfo.FLIGHT_SQL_SERVER_SQL] is True
    assert values[SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT] is False


def test_raw_get_sql_info_subset(raw):
    ids = [
        SqlInfo.SQL_IDENTIFIER_QUOTE_CHAR, SqlInfo.FLIGHT_SQL_SERVER_NAME, SqlInfo.FLIGHT_SQL_SERVER_VERSION,
        SqlInfo.FLIGHT_SQL_SERVER_ARROW_VERSION, SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY,
    ]
    info, table = flight_get(raw, pb.CommandGetSqlInfo(info=[int(i) for i in ids]))
    assert_spec_schema(info, table, schemas.SQL_INFO_SCHEMA)
    values = dict(zip(table.column("info_name").to_pylist(), table.column("value").to_pylist(), strict=True))
    assert values == {
        504: '"', 0: "federated-sql-gateway", 1: gateway.__version__, 2: pa.__version__, 3: True,
    }
    # dense-union arm: 0 = string, 1 = bool
    codes = dict(zip(table.column("info_name").to_pylist(),
                     table.column("value").chunk(0).type_codes.to_pylist(), strict=True))
    assert codes == {504: 0, 0: 0, 1: 0, 2: 0, 3: 1}


def test_raw_get_catalogs(raw):
    info, table = flight_get(raw, pb.CommandGetCatalogs())
    assert_spec_schema(info, table, schemas.CATALOGS_SCHEMA)
    assert table.column("catalog_name").to_pylist() == ["demo_db", "demo_lake"]
    descriptor = flight.FlightDescriptor.for_command(pb.pack(pb.CommandGetCatalogs()))
    assert raw.get_schema(descriptor).schema.equals(schemas.CATALOGS_SCHEMA, check_metadata=True)


def test_raw_get_db_schemas(raw):
    info, table = flight_get(raw, pb.CommandGetDbSchemas())
    assert_spec_schema(info, table, schemas.DB_SCHEMAS_SCHEMA)
    assert table.to_pylist() == [{"catalog_name": "demo_db", "db_schema_name": "main"},
                                 {"catalog_name": "demo_lake", "db_schema_name": "main"}]
    _, table = flight_get(raw, pb.CommandGetDbSchemas(catalog="demo_lake", db_schema_filter_pattern="m_i%"))
    assert table.to_pylist() == [{"catalog_name": "demo_lake", "db_schema_name": "main"}]
    _, table = flight_get(raw, pb.CommandGetDbSchemas(db_schema_filter_pattern="public"))
    assert table.num_rows == 0 and table.schema.equals(schemas.DB_SCHEMAS_SCHEMA)


def test_raw_get_tables_with_schema(raw, orders_dataset):
    command = pb.CommandGetTables(catalog="demo_lake", table_name_filter_pattern="ord%", include_schema=True)
    info, table = flight_get(raw, command)
    assert_spec_schema(info, table, schemas.TABLES_SCHEMA_WITH_SCHEMA)
    rows = table.to_pylist()
    assert [(r["catalog_name"], r["db_schema_name"], r["table_name"], r["table_type"]) for r in rows] == [
        ("demo_lake", "main", "orders", "TABLE")]
    schema = pa.ipc.read_schema(pa.py_buffer(rows[0]["table_schema"]))
    assert schema.names == list(ORDERS_TYPES)
    assert [f.type for f in schema] == list(ORDERS_TYPES.values())
    for f in schema:
        meta = f.metadata
        assert meta[schemas.CATALOG_NAME_KEY] == b"demo_lake", f.name
        assert meta[schemas.DB_SCHEMA_NAME_KEY] == b"main", f.name
        assert meta[schemas.TABLE_NAME_KEY] == b"orders", f.name
        assert meta[schemas.IS_READ_ONLY_KEY] == b"1", f.name
        assert schemas.TYPE_NAME_KEY in meta, f.name
    total = schema.field("total").metadata
    assert (total[schemas.TYPE_NAME_KEY], total[schemas.PRECISION_KEY], total[schemas.SCALE_KEY]) == (
        b"DECIMAL", b"10", b"2")
    assert schema.field("order_date").metadata[schemas.TYPE_NAME_KEY] == b"DATE"
    assert schemas.PRECISION_KEY not in schema.field("status").metadata


def test_raw_get_tables_without_schema_and_type_filter(raw):
    info, table = flight_get(raw, pb.CommandGetTables())
    assert_spec_schema(info, table, schemas.TABLES_SCHEMA)
    assert [(r["catalog_name"], r["table_name"]) for r in table.to_pylist()] == [
        ("demo_db", "customers"), ("demo_db", "products"), ("demo_lake", "orders"), ("demo_lake", "regions")]
    _, views = flight_get(raw, pb.CommandGetTables(table_types=["VIEW"]))
    assert views.num_rows == 0


def test_raw_get_table_types(raw):
    info, table = flight_get(raw, pb.CommandGetTableTypes())
    assert_spec_schema(info, table, schemas.TABLE_TYPES_SCHEMA)
    assert table.column("table_type").to_pylist() == ["TABLE", "VIEW"]


def test_raw_get_primary_keys(raw, sqlite_columns):
    command = pb.CommandGetPrimaryKeys(catalog="demo_db", db_schema="main", table="customers")
    info, table = flight_get(raw, command)
    assert_spec_schema(info, table, schemas.PRIMARY_KEYS_SCHEMA)
    pk = [r["name"] for r in sorted(sqlite_columns["customers"], key=lambda r: r["pk"]) if r["pk"]]
    assert pk == ["id"]
    assert [(r["catalog_name"], r["db_schema_name"], r["table_name"], r["column_name"], r["key_sequence"])
            for r in table.to_pylist()] == [("demo_db", "main", "customers", "id", 1)]
    _, none = flight_get(raw, pb.CommandGetPrimaryKeys(catalog="demo_lake", db_schema="main", table="orders"))
    assert none.num_rows == 0


def test_raw_get_foreign_keys_are_empty_with_spec_schema(raw):
    command = pb.CommandGetImportedKeys(catalog="demo_db", db_schema="main", table="customers")
    info, table = flight_get(raw, command)
    assert_spec_schema(info, table, schemas.KEYS_SCHEMA)
    assert table.num_rows == 0


def test_raw_get_xdbc_type_info(raw):
    info, table = flight_get(raw, pb.CommandGetXdbcTypeInfo())
    assert_spec_schema(info, table, schemas.XDBC_TYPE_INFO_SCHEMA)
    by_code = {r["data_type"]: r for r in table.to_pylist()}
    assert {-5, 4, 12, 91, 3, -7} <= set(by_code)
    assert by_code[3]["create_params"] == ["precision", "scale"]
    _, dates = flight_get(raw, pb.CommandGetXdbcTypeInfo(data_type=91))
    assert [r["type_name"] for r in dates.to_pylist()] == ["DATE"]


def test_raw_statement_query(raw, customers):
    command = pb.CommandStatementQuery(query="SELECT count(*) AS n FROM demo_db.main.customers")
    info, table = flight_get(raw, command)
    assert info.schema.names == ["n"]
    assert table.to_pylist() == [{"n": len(customers)}]


def test_raw_prepared_statement_bind_and_run(raw, orders):
    request = pb.ActionCreatePreparedStatementRequest(
        query="SELECT count(*) AS n FROM demo_lake.main.orders WHERE customer_id = ?")
    [result] = list(raw.do_action(flight.Action(pb.ACTION_CREATE_PREPARED_STATEMENT, pb.pack(request))))
    created = pb.unpack(result.body.to_pybytes())
    assert pa.ipc.read_schema(pa.py_buffer(created.parameter_schema)).names == ["$1"]
    handle = created.prepared_statement_handle
    descriptor = flight.FlightDescriptor.for_command(
        pb.pack(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle)))

    def bind(values: list[int]) -> bytes:
        params = pa.table({"$1": pa.array(values, pa.int64())})
        writer, reader = raw.do_put(descriptor, params.schema)
        writer.write_table(params)
        writer.done_writing()
        answer = reader.read()
        writer.close()
        return answer.to_pybytes() if answer is not None else b""

    with pytest.raises(pa.ArrowInvalid, match="executemany"):
        bind([1, 2])
    answer = pb.DoPutPreparedStatementResult.FromString(bind([9]))
    assert answer.prepared_statement_handle == handle
    info = raw.get_flight_info(descriptor)
    table = raw.do_get(info.endpoints[0].ticket).read_all()
    assert table.to_pylist() == [{"n": sum(1 for o in orders if o["customer_id"] == 9)}]
    close = pb.ActionClosePreparedStatementRequest(prepared_statement_handle=handle)
    list(raw.do_action(flight.Action(pb.ACTION_CLOSE_PREPARED_STATEMENT, pb.pack(close))))
    with pytest.raises(pa.ArrowInvalid, match="unknown or expired"):
        raw.get_flight_info(descriptor)


def test_raw_update_via_do_put_is_refused(raw):
    descriptor = flight.FlightDescriptor.for_command(
        pb.pack(pb.CommandStatementUpdate(query="DELETE FROM demo_db.main.customers")))
    with pytest.raises(pa.ArrowInvalid, match=r"\[unsupported_statement\] CommandStatementUpdate"):
        writer, _ = raw.do_put(descriptor, pa.schema([]))
        writer.close()


@pytest.mark.parametrize("command", [
    pb.CommandStatementSubstraitPlan(plan=pb.SubstraitPlan(plan=b"\x00", version="0.1")),
    pb.CommandStatementUpdate(query="DELETE FROM demo_db.main.customers"),
], ids=["substrait", "update"])
def test_raw_unsupported_command_in_get_flight_info(raw, command):
    descriptor = flight.FlightDescriptor.for_command(pb.pack(command))
    with pytest.raises(pa.ArrowNotImplementedError, match=r"\[unimplemented\]"):
        raw.get_flight_info(descriptor)


def test_raw_transactions_and_unknown_actions_unimplemented(raw):
    begin = flight.Action(pb.ACTION_BEGIN_TRANSACTION, pb.pack(pb.ActionBeginTransactionRequest()))
    with pytest.raises(pa.ArrowNotImplementedError, match="no transactions"):
        list(raw.do_action(begin))
    with pytest.raises(pa.ArrowNotImplementedError, match="not supported"):
        list(raw.do_action(flight.Action("NoSuchAction", b"")))


def test_raw_malformed_requests_are_invalid(raw):
    with pytest.raises(pa.ArrowInvalid, match=r"\[invalid_request\]"):
        raw.get_flight_info(flight.FlightDescriptor.for_command(b"\xff\xffnot protobuf"))
    with pytest.raises(pa.ArrowInvalid, match=r"\[invalid_request\]"):
        raw.do_get(flight.Ticket(pb.pack(pb.TicketStatementQuery(statement_handle=b"nope")))).read_all()
    with pytest.raises(pa.ArrowInvalid, match=r"\[invalid_request\]"):
        raw.do_get(flight.Ticket(b"\x00garbage")).read_all()


def test_raw_path_descriptor_is_invalid_argument(raw):
    with pytest.raises(pa.ArrowInvalid):
        raw.get_flight_info(flight.FlightDescriptor.for_path("demo_lake", "orders"))


# ---- 7. errors through ADBC and gateway.client -------------------------------------------------------------


def test_adbc_syntax_error(conn):
    with conn.cursor() as cur, pytest.raises(flightsql.Error) as excinfo:
        cur.execute("SELECT * FROM demo_lake.main.orders WHERE")
    message = str(excinfo.value)
    assert "[syntax_error]" in message and "line 1, column" in message


def test_adbc_unknown_table_names_nearest(conn):
    with conn.cursor() as cur, pytest.raises(flightsql.Error) as excinfo:
        cur.execute("SELECT * FROM demo_lake.main.ordrs")
    message = str(excinfo.value)
    assert "[unknown_object]" in message and "'ordrs'" in message and "did you mean: orders" in message


@pytest.mark.parametrize(("sql", "verb"), [
    ("DROP TABLE demo_db.main.customers", "DROP"),
    ("INSERT INTO demo_db.main.products VALUES (999, 'x', 1.00)", "INSERT"),
    ("DELETE FROM demo_db.main.customers", "DELETE"),
])
def test_adbc_ddl_dml_refused(conn, customers, config_dir, sql, verb):
    with conn.cursor() as cur:
        with pytest.raises(flightsql.Error) as excinfo:
            cur.execute(sql)
        assert "[unsupported_statement]" in str(excinfo.value) and verb in str(excinfo.value)
        cur.execute("SELECT count(*) AS n FROM demo_db.main.customers")  # connection still usable
        assert cur.fetchall() == [(len(customers),)]
    with contextlib.closing(sqlite3.connect(config_dir / "demo_data" / "demo.db")) as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == len(customers)
        assert db.execute("SELECT count(*) FROM products WHERE id = 999").fetchone()[0] == 0


@pytest.mark.parametrize(("sql", "cls", "fragment"), [
    ("SELECT * FROM demo_lake.main.orders WHERE", SqlSyntaxError, "line 1, column"),
    ("SELECT * FROM demo_lake.main.ordrs", UnknownObjectError, "did you mean: orders"),
    ("DROP TABLE demo_db.main.customers", UnsupportedStatementError, "read-only"),
    ("INSERT INTO demo_db.main.products VALUES (999, 'x', 1.00)", UnsupportedStatementError, "INSERT"),
])
def test_client_rebuilds_gateway_errors(gw, sql, cls, fragment):
    with pytest.raises(cls) as excinfo:
        gw.query(sql)
    assert type(excinfo.value) is cls
    assert fragment in excinfo.value.message
    assert "Detail:" not in excinfo.value.message


# ---- 8. auth -----------------------------------------------------------------------------------------------

def test_auth_adbc_username_password(auth_uri, customers):
    with flightsql.connect(auth_uri, db_kwargs={"username": USER, "password": PASSWORD},
                           autocommit=True) as connection, connection.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM demo_db.main.customers")
        assert cur.fetchall() == [(len(customers),)]


def test_auth_adbc_wrong_password_refused(auth_uri):
    # "alice:wrong1" is 12 bytes, so its base64 has no padding (see test_auth_unpadded_basic_credentials).
    with (
        pytest.raises(flightsql.Error) as excinfo,
        flightsql.connect(auth_uri, db_kwargs={"username": USER, "password": "wrong1"}, autocommit=True) as c,
        c.cursor() as cur,
    ):
        cur.execute("SELECT 1 AS x")
    message = str(excinfo.value)
    assert "UNAUTHENTICATED" in message and "invalid user name or password" in message


def test_auth_adbc_no_credentials_refused(auth_uri):
    with (
        pytest.raises(flightsql.Error) as excinfo,
        flightsql.connect(auth_uri, autocommit=True) as connection,
        connection.cursor() as cur,
    ):
        cur.execute("SELECT 1 AS x")
    assert "UNAUTHENTICATED" in str(excinfo.value) and "authentication required" in str(excinfo.value)


def test_auth_adbc_basic_authorization_header(auth_uri, customers):
    """Basic credentials on every call (no Handshake) are accepted by the auth middleware."""
    header = DatabaseOptions.AUTHORIZATION_HEADER.value
    with flightsql.connect(auth_uri, db_kwargs={header: _basic(USER, PASSWORD)},
                           autocommit=True) as connection, connection.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM demo_db.main.customers")
        assert cur.fetchall() == [(len(customers),)]
        assert connection.adbc_get_table_types() == ["TABLE", "VIEW"]
    with (
        pytest.raises(flightsql.Error, match="invalid user name or password"),
        flightsql.connect(auth_uri, db_kwargs={header: _basic(USER, "wrong1")}, autocommit=True) as c,
        c.cursor() as cur,
    ):
        cur.execute("SELECT 1 AS x")


def test_auth_raw_authenticate_basic_token(auth_uri):
    with flight.connect(auth_uri) as c:
        pair = c.authenticate_basic_token(USER, PASSWORD)
        assert pair[0] == b"authorization" and pair[1].startswith(b"Bearer ")
        _, table = flight_get(c, pb.CommandGetCatalogs(), flight.FlightCallOptions(headers=[pair]))
        assert table.column("catalog_name").to_pylist() == ["demo_db", "demo_lake"]


def test_auth_raw_basic_on_call_then_bearer(auth_uri):
    capture = _CaptureAuthorization()
    with flight.connect(auth_uri, middleware=[capture]) as c:
        basic = flight.FlightCallOptions(headers=[(b"authorization", _basic(USER, PASSWORD).encode())])
        descriptor = flight.FlightDescriptor.for_command(pb.pack(pb.CommandGetCatalogs()))
        info = c.get_flight_info(descriptor, basic)
        assert capture.value is not None and capture.value.startswith("Bearer ")
        bearer = flight.FlightCallOptions(headers=[(b"authorization", capture.value.encode())])
        table = c.do_get(info.endpoints[0].ticket, bearer).read_all()
        assert table.column("catalog_name").to_pylist() == ["demo_db", "demo_lake"]
        with pytest.raises(flight.FlightUnauthenticatedError, match="invalid or expired bearer token"):
            bad = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer nope")])
            c.get_flight_info(descriptor, bad)


def test_auth_raw_without_credentials_refused(auth_uri):
    with flight.connect(auth_uri) as c:
        descriptor = flight.FlightDescriptor.for_command(pb.pack(pb.CommandGetCatalogs()))
        with pytest.raises(flight.FlightUnauthenticatedError, match="authentication required"):
            c.get_flight_info(descriptor)
        with pytest.raises(flight.FlightUnauthenticatedError):
            c.authenticate_basic_token(USER, "wrong1")


def test_auth_unpadded_basic_credentials(auth_uri):
    with flight.connect(auth_uri) as c:
        unpadded = _basic(USER2, PASSWORD2, padded=False).encode()
        options = flight.FlightCallOptions(headers=[(b"authorization", unpadded)])
        _, table = flight_get(c, pb.CommandGetCatalogs(), options)
        assert table.num_rows == 2


def test_auth_client_wrong_password_raises_authentication_error(auth_uri):
    with (
        pytest.raises(AuthenticationError),
        gw_client.connect(auth_uri, user=USER, password="wrong1") as connection,
    ):
        connection.query("SELECT 1 AS x")


def test_auth_off_needs_no_credentials(uri, raw):
    _, table = flight_get(raw, pb.CommandGetCatalogs())
    assert table.num_rows == 2
    with flightsql.connect(uri, autocommit=True) as connection, connection.cursor() as cur:
        cur.execute("SELECT 1 AS x")
        assert cur.fetchall() == [(1,)]


# ---- 9. gateway.client -------------------------------------------------------------------------------------


def test_client_query_and_stream(gw, customers, orders):
    table = gw.query(JOIN_SQL)
    assert table.column_names == ["region", "n_orders", "quantity", "revenue"]
    assert table.to_pylist() == expected_join(customers, orders)
    batches = list(gw.stream(JOIN_SQL))
    assert batches and all(isinstance(b, pa.RecordBatch) for b in batches)
    assert pa.Table.from_batches(batches).equals(table)
    params = (7, "open", dt.date(2022, 1, 1))
    assert gw.query(PARAM_SQL, params).to_pylist() == expected_params(customers, orders, *params)


def test_client_stream_large_result(gw, orders):
    batches = list(gw.stream("SELECT order_id, total FROM demo_lake.main.orders"))
    streamed = pa.Table.from_batches(batches)
    assert streamed.num_rows == len(orders)
    assert sorted(streamed.column("order_id").to_pylist()) == sorted(o["order_id"] for o in orders)
    expected_total = sum((o["total"] for o in orders), Decimal(0))
    assert sum(streamed.column("total").to_pylist(), Decimal(0)) == expected_total


def test_client_explain_sources_pandas(gw, orders):
    plan = gw.explain(JOIN_SQL)
    assert "Fragment" in plan and "demo_db" in plan and "demo_lake" in plan
    assert gw.sources() == ["demo_db", "demo_lake"]
    frame = gw.query("SELECT status, count(*) AS n FROM demo_lake.main.orders "
                     "WHERE status IS NOT NULL GROUP BY status ORDER BY status").to_pandas()
    assert list(frame.columns) == ["status", "n"]
    expected: dict[str, int] = {}
    for o in orders:
        if o["status"] is not None:
            expected[o["status"]] = expected.get(o["status"], 0) + 1
    assert dict(zip(frame["status"], frame["n"].astype(int), strict=True)) == expected
