"""The bundled demo data: a SQLite CRM database and a Parquet lake of orders, generated deterministically.

``ensure_demo_data(folder)`` writes ``folder/demo.db`` (customers, products) and ``folder/lake/orders``
(Hive-partitioned by year, one Parquet file per year) plus ``folder/lake/regions.parquet`` when missing.
Sizes: 200 customers, 50 products, 5,000 orders (a few hundred KiB in all).
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REGIONS = ["north", "south", "east", "west"]
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Margaret", "Linus", "Frances"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Thompson", "Hamilton", "Torvalds", "Allen"]


def ensure_demo_data(folder: Path, customers: int = 200, products: int = 50, orders: int = 5000) -> Path:
    """Create the demo data set under ``folder`` unless it is already there. Returns ``folder``."""
    folder = Path(folder)
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    db = folder / "demo.db"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, region TEXT, "
            "signup_date DATE, credit_limit DECIMAL(10,2), active BOOLEAN)"
        )
        conn.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price DECIMAL(10,2))")
        rows = []
        for i in range(1, customers + 1):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}"
            email = None if i % 17 == 0 else f"user{i}@example.com"
            signup = dt.date(2020, 1, 1) + dt.timedelta(days=rng.randrange(1500))
            limit = str(Decimal(rng.randrange(10000, 500000)) / 100)
            rows.append((i, name, email, REGIONS[i % 4], signup.isoformat(), limit, i % 5 != 0))
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany(
            "INSERT INTO products VALUES (?, ?, ?)",
            [(i, f"product-{i}", str(Decimal(rng.randrange(100, 20000)) / 100)) for i in range(1, products + 1)],
        )
    lake = folder / "lake"
    by_year: dict[int, list[dict]] = {}
    for order_id in range(1, orders + 1):
        day = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(3 * 365))
        by_year.setdefault(day.year, []).append({
            "order_id": order_id,
            "customer_id": rng.randrange(1, customers + 1),
            "product_id": rng.randrange(1, products + 1),
            "order_date": day,
            "quantity": rng.randrange(1, 10),
            "total": Decimal(rng.randrange(100, 100000)) / 100,
            "status": rng.choice(["open", "shipped", "returned", None]),
        })
    schema = pa.schema([
        ("order_id", pa.int64()), ("customer_id", pa.int64()), ("product_id", pa.int64()),
        ("order_date", pa.date32()), ("quantity", pa.int32()), ("total", pa.decimal128(10, 2)),
        ("status", pa.string()),
    ])
    for year, rows in sorted(by_year.items()):
        part = lake / "orders" / f"year={year}"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), part / "part-0.parquet")
    pq.write_table(
        pa.table({"region": REGIONS, "manager": ["Ines", "Omar", "Yuki", "Sven"]}), lake / "regions.parquet"
    )
    marker.write_text("ok\n")
    return folder
