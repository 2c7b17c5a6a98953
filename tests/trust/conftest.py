"""Fixtures of the trust tests: small TPC-H-shaped tables of their own in a fresh PostgreSQL database
(``orders``), a fresh MariaDB database (``lineitem``) and a Parquet folder (``nation``, ``customer``), so
that drift tests may ALTER and rewrite them. Databases get random names and are dropped at the end."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI, HTTPException, Request

from tests.conftest import _mysql_params
from tests.sources import fresh_mysql_database, fresh_pg_database, with_database

ORDERS_SQL = [
    "CREATE TABLE public.orders (o_orderkey integer PRIMARY KEY, o_custkey integer NOT NULL, "
    "o_orderstatus text NOT NULL, o_totalprice numeric(12,2), o_orderdate date)",
    "INSERT INTO public.orders SELECT g, 1 + g % 5, CASE WHEN g % 3 = 0 THEN 'F' ELSE 'O' END, g * 10.5, "
    "DATE '1995-01-01' + g FROM generate_series(1, 60) g",
]
LINEITEM_SQL = [
    "CREATE TABLE lineitem (l_orderkey INT NOT NULL, l_linenumber INT NOT NULL, l_extendedprice DOUBLE, "
    "l_discount DOUBLE, l_quantity INT, PRIMARY KEY (l_orderkey, l_linenumber)) ENGINE=InnoDB",
    "INSERT INTO lineitem SELECT seq DIV 2 + 1, seq % 2, seq * 3.25, 0.05, seq % 7 FROM seq_0_to_119",
]


def write_lake(folder: Path) -> Path:
    """``nation.parquet`` (n_nationkey, n_name) and ``customer.parquet`` (c_custkey, c_nationkey, c_name)."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"n_nationkey": pa.array([0, 1, 2, 3, 4], pa.int32()),
                             "n_name": ["ALGERIA", "ARGENTINA", "BRAZIL", "CANADA", "EGYPT"]}),
                   folder / "nation.parquet")
    pq.write_table(pa.table({"c_custkey": pa.array([1, 2, 3, 4, 5], pa.int32()),
                             "c_nationkey": pa.array([0, 1, 2, 3, 4], pa.int32()),
                             "c_name": [f"Customer#{i}" for i in range(1, 6)]}),
                   folder / "customer.parquet")
    return folder


@pytest.fixture(scope="module")
def trust_pg(pg_server) -> str:
    """A fresh PostgreSQL database with ``public.orders``; dropped after the module."""
    with fresh_pg_database(pg_server, "gw_trust_") as uri:
        pg_execute(uri, *ORDERS_SQL)
        yield uri


@pytest.fixture(scope="module")
def trust_maria(mysql_server) -> str:
    """A fresh MariaDB database with ``lineitem``; dropped after the module."""
    with fresh_mysql_database(mysql_server, "gw_trust_") as name:
        maria_execute(with_database(mysql_server, name), *LINEITEM_SQL)
        yield with_database(mysql_server, name)


def pg_execute(uri: str, *statements: str) -> None:
    """Run statements in PostgreSQL, each committed."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def maria_execute(uri: str, *statements: str) -> None:
    """Run statements in the MariaDB database of ``uri``, each committed."""
    import pymysql

    conn = pymysql.connect(autocommit=True, database=urlsplit(uri).path.lstrip("/"), **_mysql_params(uri))
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def trust_settings(pg_uri: str, maria_uri: str, lake: Path, **extra):
    """Settings over the three sources (``pg``, ``maria``, ``lake``) plus ``extra`` top-level sections."""
    from gateway.settings import settings_from_dict

    return settings_from_dict({"sources": [
        {"name": "pg", "kind": "postgresql", "uri": pg_uri},
        {"name": "maria", "kind": "mysql", "uri": maria_uri},
        {"name": "lake", "kind": "parquet", "path": str(lake)},
    ], **extra}, base_dir=lake.parent)


def maria_schema(uri: str) -> str:
    """The MariaDB schema (database) name of ``uri``."""
    return urlsplit(uri).path.lstrip("/")


def openmetadata_stand_in(received: list, refused_table: str | None = None) -> FastAPI:
    """A FastAPI app answering OpenMetadata's REST paths the export uses as the server does (the entity with
    an id): each PUT is recorded in ``received`` as ``(path, authorization header, body, id answered)``; a
    profile answers its table's id; a table named ``refused_table`` is refused with HTTP 400."""
    app = FastAPI()
    ids: dict[str, str] = {}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.put("/api/v1/{kind:path}")
    async def put(kind: str, request: Request) -> dict:
        body = await request.json()
        if kind.startswith("tables/") and kind.endswith("/tableProfile"):
            answered = kind.split("/")[1]
        elif kind == "tables" and body["name"] == refused_table:
            raise HTTPException(400, "refused by the stand-in")
        else:
            key = f"{kind}/{body.get('databaseSchema', '')}.{body.get('name', '')}"
            answered = ids.setdefault(key, str(uuid.uuid4())) if "edge" not in body else str(uuid.uuid4())
        received.append((kind, request.headers.get("authorization"), body, answered))
        return {**body, "id": answered}

    return app
