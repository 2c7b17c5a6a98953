"""The tests' one data world: every logical table as a deterministic Arrow table, and where it is placed.

``TABLES`` holds each table once (``WorldTable``): its data, its group (which is also its PostgreSQL schema and
Iceberg namespace), the source kinds that hold a copy, its primary key, its Hive partitioning in Parquet and the
few database types that differ from those its Arrow types map to (``tests/sources.py`` loads the world; the
``world`` fixture of ``tests/conftest.py`` loads it once per session). Three groups:

- ``crm``, the federation tables, each in one source: ``customers`` in PostgreSQL ``crm.customers`` (3,000
  rows), ``orders`` as the Parquet folder ``orders/year=YYYY/part-0.parquet`` (6,000 rows; ``year`` is a
  partition), ``products`` in SQLite (400 rows), ``shipments`` in MariaDB (2,000 rows). Every mapped type and
  NULLs; ``reference_tables()`` gives them with exactly the types the gateway's catalog maps them to, for
  DataFusion reference answers.
- ``cf``, the conformance tables ``items`` (40 rows) and ``tags`` (30 rows), full of semantic traps, in all
  seven source kinds (PostgreSQL, MariaDB, SQLite, Parquet, CSV, Delta, Iceberg).
- ``fz``, the fuzzer's tables ``t1`` (200 rows), ``t2`` (150), ``t3`` (60) and ``dim`` (10), in the five
  database and file kinds.

TPC-H (``tests/tpch.py``) is a standard benchmark's data and stays its own; it is loaded into the same session
databases by the ``tpch_world`` fixture.

    >>> [t.name for t in TABLES if "mysql" in t.places and t.group == "crm"]
    ['shipments']
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

UTC = dt.UTC
#: every kind a table can be placed in; the first five are loaded with the world, the lakehouse ones on demand
KINDS = ("postgresql", "mysql", "sqlite", "parquet", "csv", "delta", "iceberg")
FIVE = KINDS[:5]


@dataclass(frozen=True)
class WorldTable:
    """One logical table: ``build()`` makes its rows; ``places`` the source kinds holding a copy; ``group`` its
    group (the PostgreSQL schema and Iceberg namespace of its copies there); ``primary_key`` the column declared
    as key in the databases; ``types[kind][column]`` a database type that replaces the mapped one;
    ``partition`` (column, function of the table giving its values) writes the Parquet copy Hive-partitioned
    as ``<table>/<column>=<value>/part-0.parquet``."""

    name: str
    group: str
    build: Callable[[], pa.Table]
    places: tuple[str, ...]
    primary_key: str | None = "id"
    types: dict[str, dict[str, str]] = field(default_factory=dict)
    partition: tuple[str, Callable[[pa.Table], pa.Array]] | None = None

    @functools.cached_property
    def data(self) -> pa.Table:
        return self.build()


def _maybe(rng: random.Random, value, every: int):
    return None if rng.randrange(every) == 0 else value


# -- crm: the federation tables ------------------------------------------------------------------------------------

# how tests name the federation tables through the gateway (MariaDB's schema is set per run by conftest)
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


def order_years(data: pa.Table) -> pa.Array:
    """The partition values of ``orders``: the year of ``ordered_at`` (int64, as the catalog types ``year``)."""
    return pc.year(data.column("ordered_at")).combine_chunks().cast(pa.int64())


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


# -- cf: the conformance tables ------------------------------------------------------------------------------------

ITEM_NAMES = ["apple", "Apple", "APPLE", "äpfel", "Äpfel", "émile", "Émile", "emile", "zed", "Zed", "trail ",
              "trail", " lead", "", "a%b", "a_b", "ab", "straße", "STRASSE", "Zoë", None, "ß", "x", "X"]
CODES = ["2024-01-05", "2024-1-5", "2023-12-31", "31/12/2023", "2024-01-05 ", "2024-02-30", "20240105", None]
RATIOS = [0.1, 0.2, 0.3, 1e16, -1e16, 1.5, -0.7, 2.25, None, 3.3333333333333335, 1e-9]
LABELS = ["red", "Red", "RED", "rouge", "rôt", "blue ", "blue", None, "Blue"]


def items() -> pa.Table:
    """``name`` text with mixed case, accents, trailing and leading spaces, ``''``, LIKE wildcards and NULLs;
    ``code`` text that looks like dates (ISO and not); ``amount`` decimal(12,2); ``ratio`` float (sums that
    depend on their order); ``flag`` boolean; ``day`` date; ``at`` timestamp; ``grp`` a small group key; ``n``
    an int, half NULL."""
    rows = []
    for i in range(1, 41):
        rows.append({
            "id": i,
            "name": ITEM_NAMES[i % len(ITEM_NAMES)],
            "code": CODES[i % len(CODES)],
            "amount": None if i % 9 == 0 else Decimal(i * 1234 - 20000) / 100,
            "ratio": RATIOS[i % len(RATIOS)],
            "flag": None if i % 7 == 0 else i % 3 == 0,
            "day": None if i % 8 == 0 else dt.date(2023, 12, 25) + dt.timedelta(days=i * 3),
            "at": None if i % 10 == 0 else dt.datetime(2024, 1, 1, 12) + dt.timedelta(hours=i * 7, microseconds=i * 11),
            "grp": i % 4,
            "n": None if i % 2 else i // 2,
        })
    schema = pa.schema([
        pa.field("id", pa.int32(), nullable=False), pa.field("name", pa.string()), pa.field("code", pa.string()),
        pa.field("amount", pa.decimal128(12, 2)), pa.field("ratio", pa.float64()), pa.field("flag", pa.bool_()),
        pa.field("day", pa.date32()), pa.field("at", pa.timestamp("us")), pa.field("grp", pa.int16()),
        pa.field("n", pa.int32()),
    ])
    return pa.Table.from_pylist(rows, schema=schema)


def tags() -> pa.Table:
    """``item_id`` -> items.id (and keys that match nothing, and NULL), ``label`` text, ``weight``
    decimal(8,3)."""
    rows = [{"id": i, "item_id": None if i % 11 == 0 else (i * 7) % 45 + 1, "label": LABELS[i % len(LABELS)],
             "weight": Decimal(i * 137 % 5000) / 1000} for i in range(1, 31)]
    schema = pa.schema([pa.field("id", pa.int32(), nullable=False), pa.field("item_id", pa.int32()),
                        pa.field("label", pa.string()), pa.field("weight", pa.decimal128(8, 3))])
    return pa.Table.from_pylist(rows, schema=schema)


# -- fz: the fuzzer's tables ---------------------------------------------------------------------------------------

TEXTS = ["abc", "ABC", "Abc", "Åsa", "åsa", "émile", "Émile", "", "two words", " lead", "trail ", "x", "X",
         "zed", "Ünter", "ß", "straße", "a%b", "a_b", "Zoë"]
DIM_NAMES = ["north", "South", "east", "West", "Ünter", "ZED", "zed", "mid dle", "Öst", "élan"]

#: logical type of each fuzz column (``tests.sources.column_kind`` of its Arrow type): int, small, dec, float,
#: text, date, ts, tstz, bool. ``t1``: keys ``k2`` -> t2.id, ``k3`` -> t3.id, ``dk`` -> dim.id (with keys that
#: match nothing and NULL keys), ``g`` few values, ``s`` unicode, case and space traps, ``c`` mostly NULL, ``n``
#: half NULL; ``t2``: ``k1`` -> t1.id, ``qty`` duplicates; ``t3``: ``k2`` -> t2.id; ``dim``: ``name``, ``g``.
FUZZ_COLUMNS: dict[str, dict[str, str]] = {
    "t1": {"id": "int", "k2": "int", "k3": "int", "dk": "int", "g": "small", "s": "text", "c": "text",
           "amt": "dec", "f": "float", "dt": "date", "ts": "ts", "tz": "tstz", "b": "bool", "n": "int"},
    "t2": {"id": "int", "k1": "int", "g": "small", "s": "text", "amt": "dec", "qty": "int", "f": "float",
           "dt": "date", "ts": "ts", "b": "bool"},
    "t3": {"id": "int", "k2": "int", "s": "text", "f": "float", "amt": "dec", "tz": "tstz", "dt": "date"},
    "dim": {"id": "int", "name": "text", "g": "small"},
}
FUZZ_SIZES = {"t1": 200, "t2": 150, "t3": 60, "dim": 10}
ARROW = {"int": pa.int32(), "small": pa.int16(), "dec": pa.decimal128(12, 2), "float": pa.float64(),
         "text": pa.string(), "date": pa.date32(), "ts": pa.timestamp("us"), "tstz": pa.timestamp("us", tz="UTC"),
         "bool": pa.bool_()}


def _value(rng: random.Random, kind: str, column: str, i: int):
    """One random value of ``kind``; NULL-heavy and duplicate-heavy columns by name."""
    if column == "id":
        return i
    if kind in ("int", "small"):
        ranges = {"k2": (1, 170, 10), "k3": (1, 70, 7), "dk": (0, 12, 20), "k1": (1, 220, 10), "g": (0, 4, 0),
                  "n": (0, 9, 2), "qty": (0, 20, 12)}
        lo, hi, nulls = ranges.get(column, (-50, 50, 10))
        value = rng.randint(lo, hi)
        return _maybe(rng, value, nulls) if nulls else value
    if kind == "dec":
        return _maybe(rng, Decimal(rng.randrange(-100000, 10_000_000)) / 100, 10)
    if kind == "float":
        return _maybe(rng, rng.choice([rng.uniform(-100, 100), float(rng.randint(-5, 5)), 0.1 * rng.randint(0, 9)]), 9)
    if kind == "text":
        if column == "c":
            return rng.choice(["x", "y", "X"]) if rng.random() < 0.4 else None
        if column == "name":
            return DIM_NAMES[i - 1]
        return _maybe(rng, rng.choice(TEXTS), 10)
    if kind == "date":
        return _maybe(rng, dt.date(2020, 1, 1) + dt.timedelta(days=rng.randrange(1500)), 10)
    if kind == "ts":
        return _maybe(rng, dt.datetime(2021, 1, 1) + dt.timedelta(seconds=rng.randrange(4 * 10**7),
                                                                 microseconds=rng.choice([0, rng.randrange(10**6)])), 10)
    if kind == "tstz":
        return _maybe(rng, dt.datetime(2022, 6, 1, tzinfo=UTC) + dt.timedelta(minutes=rng.randrange(10**6)), 5)
    if kind == "bool":
        return _maybe(rng, rng.random() < 0.5, 5)
    raise ValueError(kind)


def fuzz_table(table: str) -> pa.Table:
    """One fuzz table with the logical types (``ARROW``); each table's own seeded generator."""
    rng = random.Random(1000 + list(FUZZ_COLUMNS).index(table))
    columns = FUZZ_COLUMNS[table]
    rows = [{c: _value(rng, k, c, i) for c, k in columns.items()} for i in range(1, FUZZ_SIZES[table] + 1)]
    schema = pa.schema([pa.field(c, ARROW[k], nullable=c != "id") for c, k in columns.items()])
    return pa.Table.from_pylist(rows, schema=schema)


# -- the world -----------------------------------------------------------------------------------------------------

TABLES: tuple[WorldTable, ...] = (
    WorldTable("customers", "crm", customers, ("postgresql",)),
    WorldTable("orders", "crm", orders, ("parquet",), primary_key=None, partition=("year", order_years)),
    WorldTable("products", "crm", products, ("sqlite",), primary_key="product_id"),
    # MariaDB keeps its own widths: varchar(20) and an unsigned smallint (Arrow uint16)
    WorldTable("shipments", "crm", shipments, ("mysql",), primary_key="shipment_id",
               types={"mysql": {"carrier": "varchar(20)", "boxes": "smallint unsigned"}}),
    WorldTable("items", "cf", items, KINDS),
    WorldTable("tags", "cf", tags, KINDS),
    *(WorldTable(name, "fz", functools.partial(fuzz_table, name), FIVE) for name in FUZZ_COLUMNS),
)


def table(name: str) -> WorldTable:
    """The world's table ``name``."""
    return next(t for t in TABLES if t.name == name)


def group(name: str) -> dict[str, pa.Table]:
    """The tables of group ``name`` (``crm``, ``cf``, ``fz``) by table name, as loaded."""
    return {t.name: t.data for t in TABLES if t.group == name}


def reference_tables() -> dict[str, pa.Table]:
    """The federation tables as the catalog types them; ``orders`` has its partition column ``year`` (int64)
    appended."""
    tables = group("crm")
    o = tables["orders"]
    tables["orders"] = o.append_column(pa.field("year", pa.int64(), nullable=False), order_years(o))
    return tables
