"""TPC-H (scale factor 0.01) with lineitem and orders as Delta tables on the S3 server (moto) and the other six
tables in PostgreSQL: all 22 queries return exactly the answers of DataFusion over the same data in memory."""

from __future__ import annotations

import secrets
from pathlib import Path

import pyarrow.compute as pc
import pytest
from datafusion import SessionContext
from deltalake import write_deltalake

from tests import tpch

SCALE_FACTOR = 0.01
IN_DELTA = ("lineitem", "orders")


@pytest.fixture(scope="module")
def tpch_lake(s3, pg_server):
    import adbc_driver_postgresql.dbapi as pg

    from gateway.execution.engine import QueryEngine
    from gateway.settings import settings_from_dict
    from tests.conftest import _with_database

    tables, queries = tpch.generate(SCALE_FACTOR)
    prefix = f"tpch-{secrets.token_hex(3)}"
    lineitem = tables["lineitem"]
    lineitem = lineitem.append_column("l_shipyear", pc.year(lineitem.column("l_shipdate")))
    write_deltalake(f"s3://{s3.bucket}/{prefix}/lineitem", lineitem, partition_by=["l_shipyear"],
                    storage_options=s3.storage_options())
    write_deltalake(f"s3://{s3.bucket}/{prefix}/orders", tables["orders"], storage_options=s3.storage_options())
    database = f"gw_tpch_lake_{secrets.token_hex(4)}"
    with pg.connect(pg_server, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    try:
        uri = _with_database(pg_server, database)
        tpch.load_postgres(uri, tables, [n for n in tables if n not in IN_DELTA])
        settings = settings_from_dict({"sources": [
            {"name": "pg", "kind": "postgresql", "uri": uri},
            {"name": "lake", "kind": "delta", "path": f"s3://{s3.bucket}/{prefix}", **s3.options()},
        ]}, base_dir=Path.cwd())
        engine = QueryEngine(settings)
        names = {t: f"lake.main.{t}" if t in IN_DELTA else f"pg.tpch.{t}" for t in tables}
        reference = SessionContext()
        for name, table in tables.items():
            reference.register_record_batches(name, [table.to_batches()])
        yield engine, reference, queries, names
        engine.close()
    finally:
        with pg.connect(pg_server, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_all_22_queries(tpch_lake):
    engine, reference, queries, names = tpch_lake
    for number in range(1, 23):
        sql = queries[number]
        want = reference.sql(sql).to_arrow_table()
        got = engine.execute(tpch.qualify_tables(sql, names)).reader.read_all()
        tpch.assert_same_rows(got, want, number)
