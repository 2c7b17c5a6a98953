"""A deterministic test data set with every mapped type and NULLs, loaded into the real sources.

- ``customers`` -> PostgreSQL ``crm.customers`` (3,000 rows)
- ``orders`` -> Parquet folder ``orders/year=YYYY/part-0.parquet`` (6,000 rows; ``year`` is a partition)
- ``products`` -> SQLite ``products`` (400 rows)
- ``shipments`` -> MariaDB ``shipments`` (2,000 rows)

``reference_tables()`` gives the same data as Arrow tables with exactly the types the gateway's catalog maps
each column to; tests run the same SQL over them in a local DataFusion session to get the reference answer.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

UTC = dt.UTC
# how tests name the data set's tables through the gateway (MariaDB's schema is set per run by conftest)
GATEWAY_NAMES = {"customers": "pg.crm.customers", "orders": "lake.orders", "products": "shop.main.products"}
LOCAL_NAMES = {"customers": "customers", "orders": "orders", "products": "products", "shipments": "shipments"}
REGIONS = ["north", "South", "east", "West", "Ünter", "ZED"]  # mixed case and non-ASCII: collation traps
NAMES = ["adam", "Bea", "Åsa", "carl", "Dora", "émile", "Zoe", "bob", "Bob", "alice", "Alice", "Öz"]

CUSTOMERS_SCHEMA = pa.schema([
    pa.field("id", pa.int32(), nullable=False),
    pa.field("name", pa.string(), nullable=False),
    pa.field("email", pa.string()),
    pa.field("region", pa.string()),
    pa.field("created", pa.date32()),
    pa.field("updated_at", pa.timestamp("us")),
    pa.field("last_login", pa.timestamp("us", tz="UTC")),
    pa.field("credit", pa.decimal128(12, 2)),
    pa.field("score", pa.float64()),
    pa.field("active", pa.bool_()),
    pa.field("tier", pa.int16()),
    pa.field("lifetime_value", pa.int64()),
])

ORDERS_SCHEMA = pa.schema([
    pa.field("order_id", pa.int64()),
    pa.field("customer_id", pa.int32()),
    pa.field("product_id", pa.int64()),
    pa.field("amount", pa.decimal128(12, 2)),
    pa.field("status", pa.string()),
    pa.field("ordered_at", pa.timestamp("us")),
    pa.field("ship_date", pa.date32()),
    pa.field("qty", pa.int32()),
])

PRODUCTS_SCHEMA = pa.schema([
    pa.field("product_id", pa.int64()),
    pa.field("name", pa.string(), nullable=False),
    pa.field("category", pa.string()),
    pa.field("price", pa.decimal128(10, 2)),
    pa.field("weight", pa.float64()),
    pa.field("launched", pa.date32()),
    pa.field("discontinued", pa.bool_()),
])


def _maybe(rng: random.Random, value, every: int):
    return None if rng.randrange(every) == 0 else value


def customers() -> pa.Table:
    rng = random.Random(1)
    rows = []
    for i in range(1, 3001):
        rows.append({
            "id": i,
            "name": f"{rng.choice(NAMES)} {i}",
            "email": _maybe(rng, f"c{i}@example.org", 7),
            "region": _maybe(rng, rng.choice(REGIONS), 20),
            "created": dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(2000)),
            "updated_at": dt.datetime(2024, 1, 1) + dt.timedelta(seconds=rng.randrange(10**7), microseconds=rng.randrange(10**6)),
            "last_login": _maybe(rng, dt.datetime(2024, 6, 1, tzinfo=UTC) + dt.timedelta(minutes=rng.randrange(10**6)), 11),
            "credit": _maybe(rng, Decimal(rng.randrange(-100000, 10**8)) / 100, 13),
            "score": _maybe(rng, rng.uniform(-1000, 1000), 17),
            "active": _maybe(rng, rng.random() < 0.7, 9),
            "tier": rng.randrange(-3, 300),
            "lifetime_value": rng.randrange(-(2**40), 2**40),
        })
    return pa.Table.from_pylist(rows, schema=CUSTOMERS_SCHEMA)


def orders() -> pa.Table:
    rng = random.Random(2)
    rows = []
    for i in range(1, 6001):
        ordered = dt.datetime(2021, 1, 1) + dt.timedelta(seconds=rng.randrange(3 * 365 * 86400))
        rows.append({
            "order_id": i,
            "customer_id": rng.randrange(1, 3200),  # some orders point at no customer
            "product_id": rng.randrange(1, 420),
            "amount": Decimal(rng.randrange(1, 10**7)) / 100,
            "status": _maybe(rng, rng.choice(["open", "shipped", "Shipped", "returned"]), 10),
            "ordered_at": ordered,
            "ship_date": _maybe(rng, (ordered + dt.timedelta(days=rng.randrange(20))).date(), 5),
            "qty": rng.randrange(1, 50),
        })
    return pa.Table.from_pylist(rows, schema=ORDERS_SCHEMA)


def products() -> pa.Table:
    rng = random.Random(3)
    rows = []
    for i in range(1, 401):
        rows.append({
            "product_id": i,
            "name": f"{rng.choice(['widget', 'Gadget', 'gizmo', 'Doohickey'])}-{i}",
            "category": _maybe(rng, rng.choice(["tools", "Toys", "food"]), 8),
            "price": _maybe(rng, Decimal(rng.randrange(1, 10**6)) / 100, 15),
            "weight": _maybe(rng, round(rng.uniform(0.01, 50), 3), 10),
            "launched": _maybe(rng, dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(3000)), 12),
            "discontinued": _maybe(rng, rng.random() < 0.2, 6),
        })
    return pa.Table.from_pylist(rows, schema=PRODUCTS_SCHEMA)


def reference_tables() -> dict[str, pa.Table]:
    """The data as the catalog types it; ``orders`` has its partition column ``year`` (int64) appended."""
    o = orders()
    years = pa.array([ts.year for ts in o.column("ordered_at").to_pylist()], pa.int64())
    return {"customers": customers(), "orders": o.append_column(pa.field("year", pa.int64(), nullable=False), years),
            "products": products(), "shipments": shipments()}


def write_parquet(folder: Path) -> Path:
    """Write ``orders`` Hive-partitioned by year under ``folder/orders``; returns ``folder``."""
    o = orders()
    years = [ts.year for ts in o.column("ordered_at").to_pylist()]
    for year in sorted(set(years)):
        mask = pa.array([y == year for y in years])
        part = folder / "orders" / f"year={year}"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(o.filter(mask), part / "part-0.parquet")
    return folder


def write_sqlite(path: Path) -> Path:
    """Write ``products`` into a new SQLite database at ``path`` (declared types drive the mapping)."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE products (product_id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT, "
            "price DECIMAL(10,2), weight REAL, launched DATE, discontinued BOOLEAN)"
        )
        conn.executemany(
            "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (r["product_id"], r["name"], r["category"], None if r["price"] is None else str(r["price"]),
                 r["weight"], None if r["launched"] is None else r["launched"].isoformat(),
                 None if r["discontinued"] is None else int(r["discontinued"]))
                for r in products().to_pylist()
            ],
        )
    return path


def load_postgres(uri: str) -> None:
    """Create schema ``crm`` and table ``customers`` in the database at ``uri`` and load the rows."""
    import adbc_driver_postgresql.dbapi as pg

    data = customers()
    staging = data.set_column(
        data.schema.get_field_index("credit"), "credit", data.column("credit").cast(pa.string())
    )
    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute("CREATE SCHEMA crm")
        cur.execute(
            "CREATE TABLE crm.customers (id integer PRIMARY KEY, name text NOT NULL, email text, region text, "
            "created date, updated_at timestamp, last_login timestamptz, credit numeric(12,2), "
            "score double precision, active boolean, tier smallint, lifetime_value bigint)"
        )
        cur.adbc_ingest("customers_staging", staging, mode="create", db_schema_name="crm")
        cur.execute(
            "INSERT INTO crm.customers SELECT id, name, email, region, created, updated_at, last_login, "
            "credit::numeric(12,2), score, active, tier, lifetime_value FROM crm.customers_staging"
        )
        cur.execute("DROP TABLE crm.customers_staging")
        cur.execute("ANALYZE crm.customers")


SHIPMENTS_SCHEMA = pa.schema([
    pa.field("shipment_id", pa.int32(), nullable=False),
    pa.field("order_id", pa.int64()),
    pa.field("carrier", pa.string()),
    pa.field("cost", pa.decimal128(12, 2)),
    pa.field("declared", pa.decimal256(40, 5), metadata={b"gateway.read_as_text": b"1"}),
    pa.field("weight", pa.float64()),
    pa.field("shipped", pa.date32()),
    pa.field("picked_at", pa.timestamp("us")),
    pa.field("delivered_at", pa.timestamp("us", tz="UTC")),
    pa.field("insured", pa.bool_()),
    pa.field("boxes", pa.uint16()),
])
# case and trailing-space variants: MariaDB's default collation says they are equal, DataFusion does not
CARRIERS = ["DHL", "dhl", "Dhl ", "UPS", "ups", "FedEx", "Posten", "POSTEN", "Émile", "emile"]


def shipments() -> pa.Table:
    rng = random.Random(4)
    rows = []
    for i in range(1, 2001):
        picked = dt.datetime(2022, 1, 1) + dt.timedelta(seconds=rng.randrange(2 * 365 * 86400),
                                                        microseconds=rng.randrange(10**6))
        rows.append({
            "shipment_id": i,
            "order_id": rng.randrange(1, 6001),
            "carrier": _maybe(rng, rng.choice(CARRIERS), 12),
            "cost": _maybe(rng, Decimal(rng.randrange(0, 10**7)) / 100, 10),
            "declared": _maybe(rng, Decimal(rng.randrange(10**30, 10**34)) / 10**5, 9),
            "weight": _maybe(rng, round(rng.uniform(0.1, 999), 4), 8),
            "shipped": picked.date(),
            "picked_at": picked,
            "delivered_at": _maybe(rng, (picked + dt.timedelta(hours=rng.randrange(200))).replace(tzinfo=UTC), 6),
            "insured": _maybe(rng, rng.random() < 0.4, 7),
            "boxes": rng.randrange(0, 65536),
        })
    return pa.Table.from_pylist(rows, schema=SHIPMENTS_SCHEMA)


def load_mysql(host: str, port: int, user: str, password: str, database: str) -> None:
    """Create ``shipments`` in ``database`` (which must exist) and load the rows (PyMySQL, test-only)."""
    import pymysql

    conn = pymysql.connect(host=host, port=port, user=user, password=password, database=database, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(
                "CREATE TABLE shipments (shipment_id int PRIMARY KEY, order_id bigint, carrier varchar(20), "
                "cost decimal(12,2), declared decimal(40,5), weight double, shipped date, picked_at datetime(6), "
                "delivered_at timestamp(6) NULL, insured tinyint(1), boxes smallint unsigned)"
            )
            rows = [
                (r["shipment_id"], r["order_id"], r["carrier"], r["cost"], r["declared"], r["weight"], r["shipped"],
                 r["picked_at"], None if r["delivered_at"] is None else r["delivered_at"].replace(tzinfo=None),
                 r["insured"], r["boxes"])
                for r in shipments().to_pylist()
            ]
            cur.executemany("INSERT INTO shipments VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    finally:
        conn.close()
