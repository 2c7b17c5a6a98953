"""REST result formats, content negotiation, ``GET /v1/query``, the one error shape and the OpenAPI document,
over real HTTP (uvicorn on a free port, ``httpx``), against the demo sources.

Expected values come from the demo files directly (``tests.test_rest.join_reference``: sqlite3 and
pyarrow.dataset), never through the gateway. DuckDB reads the GET endpoint with its own HTTP client (httpfs,
installed offline from the ``duckdb-extension-httpfs`` wheel). About 10 s on the shared 2-core machine.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from urllib.parse import urlencode

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway.api import streaming
from tests.demo_support import customers_db, serving_rest
from tests.test_rest import JOIN_SQL, as_json, error_of, join_reference

MEDIA = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv",
         "arrow": "application/vnd.apache.arrow.stream", "parquet": "application/vnd.apache.parquet"}
# 1,000,000 rows (5,000 orders x 200 customers): enough for several Parquet row groups and Arrow batches
BIG_SQL = "SELECT o.order_id, c.id FROM demo_lake.orders o CROSS JOIN demo_db.customers c"


@pytest.fixture
def client(base_url):  # the demo gateway of tests/conftest.py's ``base_url``, with a longer timeout
    with httpx.Client(base_url=base_url, timeout=60.0) as c:
        yield c


def rows_of(response: httpx.Response, fmt: str) -> list[list]:
    """The result rows of a response in ``fmt``, as JSON-encoded values (decimals and dates as strings)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(MEDIA[fmt])
    if fmt == "json":
        document = response.json()
        assert document["row_count"] == len(document["rows"])
        return document["rows"]
    if fmt == "ndjson":
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert "columns" in lines[0] and lines[-1] == {"row_count": len(lines) - 2}
        return lines[1:-1]
    if fmt == "csv":
        header, *rows = list(csv.reader(io.StringIO(response.text)))
        return [header, *rows]
    table = pa.ipc.open_stream(response.content).read_all() if fmt == "arrow" else pq.read_table(
        io.BytesIO(response.content))
    return [[as_json(v) for v in row.values()] for row in table.to_pylist()]


def expected_rows(config, fmt: str) -> list[list]:
    rows = [[as_json(v) for v in row] for row in join_reference(config)]
    if fmt == "csv":  # text: a header line, then every value as written
        return [["region", "n_orders", "revenue", "last_order"], *[[str(v) for v in row] for row in rows]]
    return rows


@pytest.mark.parametrize("fmt", list(MEDIA))
def test_every_format_by_name(client, demo_config, fmt):
    response = client.post("/v1/query", json={"sql": JOIN_SQL, "format": fmt})
    assert rows_of(response, fmt) == expected_rows(demo_config, fmt)
    query_id = response.headers["x-query-id"]
    extension = {"csv": "csv", "arrow": "arrows", "parquet": "parquet"}.get(fmt)
    assert response.headers.get("content-disposition", "").endswith(f'filename="{query_id}.{extension}"') \
        if extension else "content-disposition" not in response.headers


@pytest.mark.parametrize("fmt", list(MEDIA))
def test_every_format_by_accept_header(client, demo_config, fmt):
    response = client.post("/v1/query", json={"sql": JOIN_SQL}, headers={"accept": MEDIA[fmt]})
    assert rows_of(response, fmt) == expected_rows(demo_config, fmt)


@pytest.mark.parametrize(("accept", "fmt"), [
    ("text/html,application/xhtml+xml,*/*;q=0.8", "json"),                      # a browser
    ("application/json;q=0.5, text/csv", "csv"),                                # by quality
    ("application/vnd.apache.parquet;q=0, application/x-ndjson;q=0.1", "ndjson"),  # q=0: not acceptable
    ("", "json"),
])
def test_accept_header_preferences(client, demo_config, accept, fmt):
    response = client.post("/v1/query", json={"sql": JOIN_SQL}, headers={"accept": accept})
    assert rows_of(response, fmt) == expected_rows(demo_config, fmt)


def test_format_field_wins_over_accept(client, demo_config):
    response = client.post("/v1/query", json={"sql": JOIN_SQL, "format": "csv"}, headers={"accept": MEDIA["arrow"]})
    assert rows_of(response, "csv") == expected_rows(demo_config, "csv")


def test_unacceptable_accept_header_is_406_in_the_error_shape(client):
    error = error_of(client.post("/v1/query", json={"sql": "SELECT 1"}, headers={"accept": "image/png"}),
                     406, "not_acceptable")
    assert "image/png" in error["message"] and "text/csv" in error["message"]


def test_get_query_with_params_and_format(client, demo_config):
    customers = customers_db(demo_config, "id < 4")
    query = urlencode({"sql": "SELECT id, name FROM demo_db.customers WHERE id < ? ORDER BY id", "params": "[4]",
                       "format": "csv"})
    response = client.get(f"/v1/query?{query}")
    assert rows_of(response, "csv") == [["id", "name"], *[[str(c["id"]), c["name"]] for c in customers]]
    # the default is json, as for POST
    response = client.get("/v1/query", params={"sql": "SELECT count(*) AS n FROM demo_db.customers"})
    assert rows_of(response, "json") == [[len(customers_db(demo_config))]]


@pytest.mark.parametrize(("params", "field"), [
    ({"sql": "SELECT 1", "params": "4"}, "query.params"),          # not a JSON array
    ({"sql": "SELECT 1", "params": "[4"}, "query.params"),         # not JSON
    ({"sql": "SELECT 1", "fromat": "csv"}, "query.fromat"),        # a misspelt parameter
    ({"sql": "SELECT 1", "format": "xlsx"}, "query.format"),       # no such format
    ({"format": "csv"}, "query.sql"),                              # no SQL
])
def test_get_query_bad_parameters_are_400_naming_the_field(client, params, field):
    error = error_of(client.get("/v1/query", params=params), 400, "invalid_request")
    assert error["phase"] == "request"
    assert field in [f["field"] for f in error["fields"]], error


def test_post_validation_errors_use_the_one_error_shape(client):
    error = error_of(client.post("/v1/query", json={"format": "csv"}), 400, "invalid_request")
    assert {"field": "body.sql", "problem": "Field required"} in error["fields"]
    error_of(client.post("/v1/query", json={"sql": "SELECT 1", "rows": "tuples"}), 400, "invalid_request")


def test_errors_before_the_first_row_keep_their_status_in_every_format(client):
    for fmt in MEDIA:
        error = error_of(client.post("/v1/query", json={"sql": "SELECT * FROM demo_db.custmers", "format": fmt}),
                         404, "unknown_object")
        assert error["nearest"] == ["customers"]


def test_rows_as_objects_json_and_ndjson(client, demo_config):
    sql = "SELECT c.id, c.name, d.id FROM demo_db.customers c JOIN demo_db.customers d ON d.id = c.id " \
          "WHERE c.id < 3 ORDER BY c.id"
    expected = [{"id": c["id"], "name": c["name"], "id_2": c["id"]} for c in customers_db(demo_config, "id < 3")]
    response = client.get("/v1/query", params={"sql": sql, "rows": "objects"})
    assert response.json() == expected
    response = client.post("/v1/query", json={"sql": sql, "rows": "objects", "format": "ndjson"})
    assert [json.loads(line) for line in response.text.splitlines()] == expected
    empty = client.post("/v1/query", json={"sql": "SELECT id FROM demo_db.customers WHERE id < 0", "rows": "objects"})
    assert empty.json() == []


def test_big_results_stream_in_every_binary_format(client, monkeypatch):
    """1M rows: Parquet arrives as several row groups (written as the batches come), Arrow as many batches,
    CSV as many chunks; each holds every row."""
    monkeypatch.setattr(streaming, "PARQUET_ROW_GROUP_ROWS", 250_000)
    response = client.post("/v1/query", json={"sql": BIG_SQL, "format": "parquet"})
    parquet = pq.ParquetFile(io.BytesIO(response.content))
    assert parquet.metadata.num_rows == 1_000_000 and parquet.metadata.num_row_groups >= 4
    assert parquet.read(columns=["id"]).column(0).to_pylist().count(1) == 5000
    csv_text = client.post("/v1/query", json={"sql": BIG_SQL, "format": "csv"}).text
    assert csv_text.count("\n") == 1_000_001


def test_delete_unknown_query_is_404_in_the_error_shape(client):
    error = error_of(client.delete("/v1/queries/no-such-query"), 404, "unknown_object")
    assert error["phase"] == "request"


def test_unknown_route_and_method_use_the_error_shape(client):
    error_of(client.get("/v1/nothing-here"), 404, "not_found")
    error_of(client.put("/v1/query", json={}), 405, "method_not_allowed")


def test_openapi_lists_every_response_code(client):
    spec = client.get("/openapi.json").json()
    operations = {(path, method): op for path, item in spec["paths"].items() for method, op in item.items()
                  if path.startswith("/v1/")}
    assert ("/v1/query", "get") in operations and ("/v1/queries/{query_id}", "delete") in operations
    for (path, method), op in operations.items():
        codes = set(op["responses"])
        assert {"200", "400", "401", "403", "500"} <= codes, (path, method, codes)
        for code in codes - {"200"}:
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method, code)
    for method in ("get", "post"):
        query = operations[("/v1/query", method)]["responses"]
        assert set(MEDIA.values()) <= set(query["200"]["content"])
        assert {"404", "406", "413", "429", "499", "502", "503", "504", "507"} <= set(query)


def _duckdb_with_httpfs() -> duckdb.DuckDBPyConnection:
    import duckdb_extension_httpfs

    pattern = os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions", "*",
                           "httpfs.duckdb_extension")
    con = duckdb.connect()
    con.execute(f"LOAD '{glob.glob(pattern)[0]}'")
    return con


def test_duckdb_reads_the_get_endpoint(base_url, demo_config):
    """DuckDB's read_json and read_csv over GET /v1/query, with DuckDB's own HTTP client."""
    sql = "SELECT id, name, region FROM demo_db.customers WHERE id <= 5 ORDER BY id"
    expected = [(c["id"], c["name"], c["region"]) for c in customers_db(demo_config, "id <= 5")]
    con = _duckdb_with_httpfs()
    try:
        as_json = f"{base_url}/v1/query?{urlencode({'sql': sql, 'rows': 'objects', 'format': 'ndjson'})}"
        assert con.execute(f"SELECT id, name, region FROM read_json('{as_json}') ORDER BY id").fetchall() == expected
        as_csv = f"{base_url}/v1/query?{urlencode({'sql': sql, 'format': 'csv'})}"
        assert con.execute(f"SELECT id, name, region FROM read_csv('{as_csv}') ORDER BY id").fetchall() == expected
    finally:
        con.close()


# -- over PostgreSQL: errors after the first row, cancelling a GET query ------------------------------------

PG_VIEWS = [
    "CREATE SCHEMA IF NOT EXISTS restfmt",
    # ~60 MB of rows, then division by zero at row 60,000: the source fails after its first batches were sent
    "CREATE OR REPLACE VIEW restfmt.fails_late AS SELECT g AS id, repeat('x', 1000) AS pad, 1 / (60000 - g) AS q "
    "FROM generate_series(1, 70000) g",
    # no row for 60 s unless cancelled
    "CREATE OR REPLACE VIEW restfmt.sleeper AS SELECT 1 AS s FROM pg_sleep(60)",
]


@pytest.fixture(scope="module")
def pg_url(pg_database, tmp_path_factory):
    import adbc_driver_postgresql.dbapi as pg

    from gateway.settings import settings_from_dict

    with pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cur:
        for sql in PG_VIEWS:
            cur.execute(sql)
    settings = settings_from_dict({"sources": [{"name": "pg", "kind": "postgresql", "uri": pg_database}]},
                                  base_dir=tmp_path_factory.mktemp("rest-formats"))
    with serving_rest(settings) as url:
        yield url


def _sleepers(pg_database: str) -> list:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("""SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%"sleeper"%' """
                    "AND pid <> pg_backend_pid()")
        return cur.fetchall()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_error_after_the_first_row_cuts_csv_and_parquet_off(pg_url, fmt):
    """Status 200 is out when the source fails: the body ends without the end of the HTTP message, so a
    client sees a broken transfer (a Parquet file never gets its footer)."""
    with httpx.Client(base_url=pg_url, timeout=120.0) as client, client.stream(
            "GET", "/v1/query", params={"sql": "SELECT id, pad, q FROM pg.restfmt.fails_late", "format": fmt}
    ) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_delete_cancels_a_get_query(pg_url, pg_database):
    import threading
    import time

    answer: dict = {}
    with httpx.Client(base_url=pg_url, timeout=120.0) as client:
        def run() -> None:
            answer["response"] = client.get("/v1/query", params={"sql": "SELECT s FROM pg.restfmt.sleeper",
                                                                 "query_id": "sleeper-1", "format": "csv"})

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 20
        while not _sleepers(pg_database):
            assert time.monotonic() < deadline, "the source statement did not start"
            time.sleep(0.05)
        deleted = client.delete("/v1/queries/sleeper-1")
        assert deleted.status_code == 200 and deleted.json() == {"query_id": "sleeper-1", "status": "cancelled"}
        thread.join(10)
        error_of(answer["response"], 499, "cancelled")
        deadline = time.monotonic() + 5
        while _sleepers(pg_database):  # the PostgreSQL statement was cancelled too
            assert time.monotonic() < deadline, "the source statement still runs"
            time.sleep(0.05)
