"""TPC-H (scale factor 0.01) across PostgreSQL, MariaDB and Parquet: all 22 queries, in their standard text with
source-qualified tables, return exactly the answers of DataFusion over the same data loaded locally."""

from __future__ import annotations

import secrets

import pytest
from datafusion import SessionContext

from tests import tpch
from tests.conftest import MYSQL_URI, _mysql_params, _with_database

SCALE_FACTOR = 0.01


@pytest.fixture(scope="module")
def tpch_setup(pg_database, tmp_path_factory):
    import pymysql

    tables, queries = tpch.generate(SCALE_FACTOR)
    tpch.load_postgres(pg_database, tables)
    params = _mysql_params(MYSQL_URI)
    database = f"gw_tpch_{secrets.token_hex(4)}"
    admin = pymysql.connect(autocommit=True, **params)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    try:
        tpch.load_mysql(params, database, tables)
        lake = tpch.write_parquet(tmp_path_factory.mktemp("tpch") / "lake", tables)
        from gateway.execution.engine import QueryEngine
        from gateway.settings import settings_from_dict

        settings = settings_from_dict({"sources": [
            {"name": "pg", "kind": "postgresql", "uri": pg_database},
            {"name": "maria", "kind": "mysql",
             "uri": _with_database(MYSQL_URI, database)},
            {"name": "lake", "kind": "parquet", "path": str(lake)},
        ]}, base_dir=lake)
        gateway = QueryEngine(settings)
        # every file fragment scanned in place by the residual plan, whatever its size (SF 0.01 is small)
        in_place = QueryEngine(settings.model_copy(update={"limits": settings.limits.model_copy(
            update={"in_place_min_rows": 0})}), catalog=gateway.catalog)
        names = {t: {"pg": f"pg.tpch.{t}", "maria": f"maria.{database}.{t}", "lake": f"lake.main.{t}"}[s]
                 for t, s in tpch.PLACEMENT.items()}
        reference = SessionContext()
        for name, table in tables.items():
            reference.register_record_batches(name, [table.to_batches()])
        yield {"fetched": gateway, "in_place": in_place}, reference, queries, names
        gateway.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.close()


@pytest.mark.parametrize("files", ["fetched", "in_place"])
@pytest.mark.parametrize("number", range(1, 23))
def test_tpch_query(tpch_setup, number, files):
    gateways, reference, queries, names = tpch_setup
    sql = queries[number]
    want = reference.sql(sql).to_arrow_table()
    result = gateways[files].execute(tpch.qualify_tables(sql, names))
    got = result.reader.read_all()
    in_place = [f for f in result.stats.fragments if f.read_in_place]
    if files == "fetched":
        assert not in_place
    elif not result.stats.pushed_whole:
        assert all(f.source == "lake" for f in in_place)
        if number in (3, 9):  # lineitem is joined, not a dynamic filter's build: scanned in place
            assert in_place and all(f.rows > 0 for f in in_place)
    tpch.assert_same_rows(got, want)
