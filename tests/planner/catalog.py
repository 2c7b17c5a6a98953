"""A catalog for planning only: sources that declare what the planner reads (dialect, capabilities, tables,
primary keys, statistics) and cannot scan. Planning never reads data, so nothing here is a database mock: the
dialects and capabilities are the real connectors' class data.

    pg      PostgreSQL    customers (10,000 rows; nation_id 25 distinct), orders (1,000,000; distinct values: status 5,
                          qty 50, ordered_at 900,000), nation (25; id and name 25 distinct)
    my      MySQL/MariaDB products (2,000), suppliers (100; nation_id 25 distinct)
    shop    SQLite        stores (50)
    lake    Parquet       items (5,000,000), events (200,000)
    cached  PostgreSQL with a cache rule (read per table): rates (1,000), fx (365)
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlglot import exp

from catalog import Catalog
from connectors.base import READ_AS_TEXT, Capabilities, ColumnStatistics, Connector, Fragment, TableStatistics
from connectors.files import ParquetConnector
from connectors.mysql import MySQLConnector
from connectors.postgresql import PostgreSQLConnector
from connectors.sqlite import SQLiteConnector
from planner import Planner

#: table -> (schema, primary key, rows)
Tables = dict[tuple[str, str], tuple[pa.Schema, list[str], int]]


class PlanningConnector(Connector):
    """A source the planner can plan for and nothing can read: ``kind``, ``dialect`` and ``capabilities`` are
    taken from ``like`` (a real connector class); tables, keys and statistics are declared."""

    def __init__(self, name: str, like: type[Connector], tables: Tables, qualified: bool = True,
                 options: dict[str, Any] | None = None) -> None:
        super().__init__(name, options or {})
        self.kind = like.kind
        self.dialect = like.dialect
        self.capabilities: Capabilities = like.capabilities
        self.tables = tables
        self.qualified = qualified  # databases name tables by schema and table; file sources by table only

    def list_schemas(self) -> list[str]:
        return sorted({schema for schema, _ in self.tables})

    def list_tables(self, schema: str) -> list[str]:
        return sorted(table for s, table in self.tables if s == schema)

    def table_schema(self, schema: str, table: str) -> pa.Schema:
        return self.tables[(schema, table)][0]

    def primary_key(self, schema: str, table: str) -> list[str]:
        return self.tables[(schema, table)][1]

    def statistics(self, schema: str, table: str) -> TableStatistics:
        rows = self.tables[(schema, table)][2]
        return TableStatistics(rows=rows, bytes=rows * 100, columns=COLUMNS.get((self.name, schema, table), {}))

    def table_expression(self, schema: str, table: str) -> exp.Table:
        return exp.table_(table, db=schema if self.qualified else None, quoted=True)

    def scan(self, fragment: Fragment) -> pa.RecordBatchReader:
        raise AssertionError(f"planning read data: {fragment.sql}")


#: the few column statistics declared: (source, schema, table) -> column -> statistics
COLUMNS = {("pg", "public", "orders"): {"status": ColumnStatistics(distinct=5), "qty": ColumnStatistics(distinct=50),
                                       "ordered_at": ColumnStatistics(distinct=900_000)},
           ("pg", "public", "customers"): {"nation_id": ColumnStatistics(distinct=25)},
           ("pg", "public", "nation"): {"id": ColumnStatistics(distinct=25), "name": ColumnStatistics(distinct=25)},
           ("my", "shop", "suppliers"): {"nation_id": ColumnStatistics(distinct=25)}}


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, kind) for name, kind in fields])


CUSTOMERS = _schema(("id", pa.int64()), ("name", pa.string()), ("region", pa.string()), ("tier", pa.int32()),
                    ("active", pa.bool_()), ("created", pa.date32()), ("nation_id", pa.int32()))
ORDERS = _schema(("id", pa.int64()), ("customer_id", pa.int64()), ("amount", pa.decimal128(12, 2)),
                 ("qty", pa.int32()), ("status", pa.string()), ("ordered_at", pa.timestamp("us")),
                 ("score", pa.float64()))
NATION = _schema(("id", pa.int32()), ("name", pa.string()))
PRODUCTS = _schema(("id", pa.int64()), ("name", pa.string()), ("category", pa.string()),
                   ("price", pa.decimal128(10, 2)), ("supplier_id", pa.int64()))
SUPPLIERS = _schema(("id", pa.int64()), ("name", pa.string()), ("nation_id", pa.int32()))
STORES = _schema(("id", pa.int64()), ("city", pa.string()), ("opened", pa.date32()))
ITEMS = _schema(("order_id", pa.int64()), ("product_id", pa.int64()), ("store_id", pa.int64()),
                ("price", pa.float64()), ("qty", pa.int32()))
EVENTS = _schema(("id", pa.int64()), ("customer_id", pa.int64()), ("kind", pa.string()),
                 ("at", pa.timestamp("us")))
RATES = _schema(("currency", pa.string()), ("day", pa.date32()), ("rate", pa.float64()))
DOCS = pa.schema([pa.field("id", pa.int64()),
                  pa.field("body", pa.string(), metadata={READ_AS_TEXT: b"1"})])


def planning_catalog() -> Catalog:
    """The sources of the module docstring."""
    return Catalog({
        "pg": PlanningConnector("pg", PostgreSQLConnector, {
            ("public", "customers"): (CUSTOMERS, ["id"], 10_000),
            ("public", "orders"): (ORDERS, ["id"], 1_000_000),
            ("public", "nation"): (NATION, ["id"], 25),
            ("public", "docs"): (DOCS, ["id"], 500),
        }),
        "my": PlanningConnector("my", MySQLConnector, {
            ("shop", "products"): (PRODUCTS, ["id"], 2_000),
            ("shop", "suppliers"): (SUPPLIERS, ["id"], 100),
        }),
        "shop": PlanningConnector("shop", SQLiteConnector, {("main", "stores"): (STORES, ["id"], 50)},
                                  qualified=False),
        "lake": PlanningConnector("lake", ParquetConnector, {
            ("main", "items"): (ITEMS, [], 5_000_000),
            ("main", "events"): (EVENTS, ["id"], 200_000),
        }, qualified=False),
        "cached": PlanningConnector("cached", PostgreSQLConnector, {
            ("public", "rates"): (RATES, [], 1_000),
            ("public", "fx"): (RATES, [], 365),
        }, options={"cache_ttl_s": 60}),
    })


def planner() -> Planner:
    return Planner(planning_catalog(), "postgres")
