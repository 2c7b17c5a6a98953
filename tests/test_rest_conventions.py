"""Two REST conventions over real HTTP with auth on, on the demo sources plus one that is down:

- ``GET /readyz`` answering 503 uses the gateway's one error body ``{"error": {"code": "not_ready", ...}}`` (as
  every 4xx/5xx does), lists it in the OpenAPI document, and names sources only to authenticated callers (only
  the ones they may use).
- A source the caller may not use is refused alike everywhere (403 ``permission_denied``, as a SELECT on it):
  DESCRIBE, SHOW COLUMNS/TABLES/SCHEMAS FROM, the catalog endpoints; a source that does not exist is 404
  ``unknown_object`` everywhere, its "did you mean" naming only sources the caller may use; Flight SQL refuses
  DESCRIBE alike. About 3 s.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import httpx
import pytest

from gateway.settings import settings_from_dict
from tests.demo_support import serving_rest
from tests.flight_support import serve
from tests.test_rest import error_of

LAKE_USER, LAKE_PASSWORD = "lake_reader", "a long enough lake password"
OPS_USER, OPS_PASSWORD = "ops", "a long enough ops password"


@pytest.fixture(scope="module")
def settings(demo_config: Path):
    """The demo with auth on (``LAKE_USER`` may use ``demo_lake`` only, ``OPS_USER`` every source) and a
    source whose folder is missing (``down_lake``)."""
    raw = tomllib.loads(demo_config.read_text())
    raw["sources"].append({"name": "down_lake", "kind": "parquet", "path": "no_such_folder"})
    raw["auth"] = {"enabled": True, "users": [
        {"name": LAKE_USER, "password": LAKE_PASSWORD, "sources": ["demo_lake"]},
        {"name": OPS_USER, "password": OPS_PASSWORD}]}
    return settings_from_dict(raw, base_dir=demo_config.parent)


@pytest.fixture(scope="module")
def base_url(settings):
    with serving_rest(settings) as url:
        yield url


@pytest.fixture
def lake(base_url):
    with httpx.Client(base_url=base_url, timeout=30.0, auth=(LAKE_USER, LAKE_PASSWORD)) as client:
        yield client


# -- /readyz ------------------------------------------------------------------------------------------------

def test_readyz_503_is_the_gateway_error_shape_with_the_sources_to_an_operator(base_url):
    response = httpx.get(f"{base_url}/readyz", auth=(OPS_USER, OPS_PASSWORD), timeout=30)
    error = error_of(response, 503, "not_ready")
    assert set(response.json()) == {"error"} and error["phase"] == "execution"
    assert {name: s["status"] for name, s in error["sources"].items()} == {
        "demo_db": "ok", "demo_lake": "ok", "down_lake": "unavailable"}
    assert "'down_lake' (unavailable)" in error["message"] and "demo_db" not in error["message"]


def test_readyz_503_names_no_source_to_anonymous_or_other_users(base_url, lake):
    anonymous = httpx.get(f"{base_url}/readyz", timeout=30)
    error = error_of(anonymous, 503, "not_ready")
    assert "sources" not in error
    assert not any(name in anonymous.text for name in ("demo_db", "demo_lake", "down_lake"))
    limited = error_of(lake.get("/readyz"), 503, "not_ready")  # down_lake is not hers: not named
    assert list(limited["sources"]) == ["demo_lake"] and "down_lake" not in limited["message"]


def test_readyz_lists_503_in_the_openapi_document(base_url):
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    responses = spec["paths"]["/readyz"]["get"]["responses"]
    assert responses["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


# -- a source the caller may not use ---------------------------------------------------------------------------

FORBIDDEN_SQL = [
    "SELECT * FROM demo_db.main.customers",  # the convention: what a query on the source answers
    "DESCRIBE demo_db.main.customers",
    "DESCRIBE demo_db.customers",
    "DESC DEMO_DB.customers",
    "SHOW COLUMNS FROM demo_db.main.customers",
    "SHOW COLUMNS IN demo_db.customers",
    "SHOW TABLES FROM demo_db",
    "SHOW TABLES FROM demo_db.main",
    "SHOW SCHEMAS FROM demo_db",
    "SELECT * FROM demo_db.information_schema.tables",
]


@pytest.mark.parametrize("sql", FORBIDDEN_SQL)
def test_a_forbidden_source_is_403_like_a_select(lake, sql):
    error = error_of(lake.post("/v1/query", json={"sql": sql}), 403, "permission_denied")
    assert error["source"] == "demo_db" and "customers" not in error["message"]
    # and over GET /v1/query, the same answer
    error_of(lake.get("/v1/query", params={"sql": sql}), 403, "permission_denied")


@pytest.mark.parametrize("path", ["/v1/sources/demo_db/tables",
                                  "/v1/sources/demo_db/tables/customers/statistics"])
def test_the_catalog_endpoints_answer_403_too(lake, path):
    assert error_of(lake.get(path), 403, "permission_denied")["source"] == "demo_db"


@pytest.mark.parametrize("sql", ["SELECT * FROM demo_dbx.main.customers", "DESCRIBE demo_dbx.main.customers",
                                 "SHOW TABLES FROM demo_dbx", "SHOW COLUMNS FROM demo_lake.main.custmers"])
def test_what_does_not_exist_is_404_naming_only_allowed_objects(lake, sql):
    error = error_of(lake.post("/v1/query", json={"sql": sql}), 404, "unknown_object")
    assert "demo_db" not in str(error.get("nearest")) and "customers" not in str(error.get("nearest"))


def test_an_unknown_source_in_the_catalog_endpoints_is_404(lake):
    error = error_of(lake.get("/v1/sources/demo_lak/tables"), 404, "unknown_object")
    assert error["nearest"] == ["demo_lake"]


def test_the_allowed_source_still_answers(lake):
    response = lake.post("/v1/query", json={"sql": "DESCRIBE demo_lake.main.regions"})
    assert response.status_code == 200, response.text
    assert [r[0] for r in response.json()["rows"]] and lake.get("/v1/sources/demo_lake/tables").status_code == 200


def test_flight_sql_refuses_describe_of_a_forbidden_source_alike(settings):
    with serve(settings) as (uri, _), flightsql.connect(uri, db_kwargs={"username": LAKE_USER,
                                                                        "password": LAKE_PASSWORD},
                                                        autocommit=True) as conn:
        for sql in ("SELECT * FROM demo_db.main.customers", "DESCRIBE demo_db.customers",
                    "SHOW TABLES FROM demo_db"):
            with conn.cursor() as cur, pytest.raises(flightsql.Error, match=r"\[permission_denied\]"):
                cur.execute(sql)
        with conn.cursor() as cur:
            cur.execute("DESCRIBE demo_lake.regions")
            assert cur.fetchall()
