"""The conformance data world: two small tables full of semantic traps, loaded the same into every source kind.

``items`` (40 rows): ``name`` text with mixed case, accents, trailing and leading spaces, ``''``, LIKE
wildcards and NULLs; ``code`` text that looks like dates (ISO and not); ``amount`` decimal(12,2);
``ratio`` float (sums that depend on their order); ``flag`` boolean; ``day`` date; ``at`` timestamp; ``grp``
a small group key; ``n`` an int, half NULL. ``tags`` (30 rows): ``item_id`` -> items.id (and keys that match
nothing, and NULL), ``label`` text, ``weight`` decimal(8,3).

The loaders are the fuzzer's (``tests/sources.py``: each column's database type from its Arrow type), so the five
sources hold exactly what the fuzzer's would for the same types; PostgreSQL's schema is ``cf``.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from tests.sources import (
    database_name,
    drop_five_sources,
    five_source_settings,
    load_five_sources,
    with_database,
)

#: source name -> source kind, in the order the suite runs them
KINDS = {"pg": "postgresql", "maria": "mysql", "lite": "sqlite", "pq": "parquet", "csv": "csv", "dl": "delta",
         "ice": "iceberg"}

NAMES = ["apple", "Apple", "APPLE", "äpfel", "Äpfel", "émile", "Émile", "emile", "zed", "Zed", "trail ", "trail",
         " lead", "", "a%b", "a_b", "ab", "straße", "STRASSE", "Zoë", None, "ß", "x", "X"]
CODES = ["2024-01-05", "2024-1-5", "2023-12-31", "31/12/2023", "2024-01-05 ", "2024-02-30", "20240105", None]
RATIOS = [0.1, 0.2, 0.3, 1e16, -1e16, 1.5, -0.7, 2.25, None, 3.3333333333333335, 1e-9]
LABELS = ["red", "Red", "RED", "rouge", "rôt", "blue ", "blue", None, "Blue"]


def _items() -> pa.Table:
    rows = []
    for i in range(1, 41):
        rows.append({
            "id": i,
            "name": NAMES[i % len(NAMES)],
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


def _tags() -> pa.Table:
    rows = [{"id": i, "item_id": None if i % 11 == 0 else (i * 7) % 45 + 1, "label": LABELS[i % len(LABELS)],
             "weight": Decimal(i * 137 % 5000) / 1000} for i in range(1, 31)]
    schema = pa.schema([pa.field("id", pa.int32(), nullable=False), pa.field("item_id", pa.int32()),
                        pa.field("label", pa.string()), pa.field("weight", pa.decimal128(8, 3))])
    return pa.Table.from_pylist(rows, schema=schema)


def canonical_tables() -> dict[str, pa.Table]:
    return {"items": _items(), "tags": _tags()}


def write_lake(root: Path, tables: dict[str, pa.Table]) -> None:
    """The tables as Delta tables under ``root/delta`` and as Iceberg tables (namespace ``cf``) of a SQLite
    catalog ``root/iceberg.db`` with its warehouse under ``root/warehouse``."""
    from deltalake import write_deltalake
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("ice", uri=f"sqlite:///{root}/iceberg.db", warehouse=f"file://{root}/warehouse")
    catalog.create_namespace("cf")
    for name, data in tables.items():
        write_deltalake(str(root / "delta" / name), data)
        catalog.create_table(f"cf.{name}", schema=data.schema).append(data)


def lake_settings(settings, root: Path):
    """``settings`` with the lake sources of ``write_lake``: ``dl`` (Delta) and ``ice`` (Iceberg)."""
    from gateway.settings import SourceConfig

    settings.sources.append(SourceConfig(name="dl", kind="delta", path=str(root / "delta")))
    settings.sources.append(SourceConfig(name="ice", kind="iceberg", uri=f"sqlite:///{root}/iceberg.db",
                                         warehouse=f"{root}/warehouse"))
    return settings


@dataclass
class World:
    """The tables in a fresh PostgreSQL database (schema ``cf``), a fresh MariaDB database, a SQLite file, a
    Parquet folder and a CSV folder; ``prefix[source]`` is the ``catalog.schema`` of its tables."""

    pg_admin_uri: str
    mysql_uri: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gw_conformance_")))
    tables: dict[str, pa.Table] = field(default_factory=canonical_tables)
    database: str = ""

    def create(self) -> World:
        self.database = database_name("gw_conf_")
        load_five_sources(self.tables, self.root, self.pg_admin_uri, self.mysql_uri, self.database, pg_schema="cf",
                          sqlite_file="conformance.db")
        write_lake(self.root, self.tables)
        return self

    @property
    def prefix(self) -> dict[str, str]:
        return {"pg": "pg.cf", "maria": f"maria.{self.database}", "lite": "lite.main", "pq": "pq.main",
                "csv": "csv.main", "dl": "dl.main", "ice": "ice.cf"}

    def settings(self):
        settings = five_source_settings(self.root, with_database(self.pg_admin_uri, self.database),
                                        with_database(self.mysql_uri, self.database), "conformance.db")
        return lake_settings(settings, self.root)

    def close(self) -> None:
        drop_five_sources(self.pg_admin_uri, self.database, self.mysql_uri, self.database, self.root)
