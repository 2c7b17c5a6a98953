"""Data-frame libraries against a real plaintext Flight SQL server on the demo sources: polars'
``read_database_uri(query, uri, engine="adbc")`` with the ADBC Flight SQL driver's ``flightsql://`` URI.

polars picks the ADBC driver module from the URI's scheme (``adbc_driver_<scheme>``), so ``grpc://`` looks for
an ``adbc_driver_grpc`` that does not exist; ``flightsql://host:port`` selects ``adbc_driver_flightsql``, which
(from 1.12) reads it as TLS unless ``?transport=tcp`` asks for plaintext. polars passes nothing but the URI to
the driver, and the driver takes no credentials from it, so with auth on the way is ``pl.read_database`` over an
ADBC connection made with credentials. Expected rows come from the demo files (sqlite3, pyarrow), never through
the gateway. About 2 s.
"""

from __future__ import annotations

import tomllib
import warnings
from decimal import Decimal

import adbc_driver_flightsql.dbapi as flightsql
import polars as pl
import pyarrow.dataset as ds
import pytest

from gateway.settings import load_settings, prepare, settings_from_dict
from tests.demo_support import customers_db, orders_table
from tests.flight_support import serve

USER, PASSWORD = "analyst", "a long enough analyst password"
FEDERATED = """SELECT c.region, count(*) AS orders, sum(o.total) AS total
FROM demo_db.main.customers c JOIN demo_lake.main.orders o ON o.customer_id = c.id
WHERE o.year = ? GROUP BY c.region ORDER BY c.region"""


def expected(demo_config, year: int) -> list[tuple]:
    """``FEDERATED``'s rows from the demo files: (region, orders, total) per region."""
    region = {c["id"]: c["region"] for c in customers_db(demo_config)}
    out: dict[str, list] = {}
    for order in orders_table(demo_config, ds.field("year") == year, ["customer_id", "total"]).to_pylist():
        row = out.setdefault(region[order["customer_id"]], [0, Decimal(0)])
        row[0] += 1
        row[1] += order["total"]
    return [(r, n, t) for r, (n, t) in sorted(out.items())]


@pytest.fixture(scope="module")
def port(demo_config):
    with serve(prepare(load_settings(demo_config))) as (_, server):
        yield server.port


@pytest.fixture(scope="module")
def auth_port(demo_config):
    raw = tomllib.loads(demo_config.read_text())
    raw["auth"] = {"enabled": True, "users": [{"name": USER, "password": PASSWORD}]}
    with serve(prepare(settings_from_dict(raw, base_dir=demo_config.parent))) as (_, server):
        yield server.port


def read_uri(sql: str, uri: str, **kwargs) -> pl.DataFrame:
    with warnings.catch_warnings():  # the driver's "Cannot disable autocommit" (the gateway is read-only)
        warnings.simplefilter("ignore")
        return pl.read_database_uri(sql, uri, engine="adbc", **kwargs)


def test_polars_read_database_uri_over_plaintext_flight_sql(port, demo_config):
    frame = read_uri(FEDERATED, f"flightsql://127.0.0.1:{port}?transport=tcp",
                     execute_options={"parameters": [2023]})
    assert frame.columns == ["region", "orders", "total"]
    assert frame.rows() == expected(demo_config, 2023) and frame.height > 1


def test_the_grpc_scheme_is_no_polars_adbc_uri(port):
    # polars looks for the module adbc_driver_grpc: the reason the README gives the flightsql:// form
    with pytest.raises(ModuleNotFoundError, match="adbc_driver_grpc"):
        read_uri("SELECT 1", f"grpc://127.0.0.1:{port}")


def test_with_auth_read_database_over_an_adbc_connection(auth_port, demo_config):
    uri = f"flightsql://127.0.0.1:{auth_port}?transport=tcp"
    with pytest.raises(flightsql.ProgrammingError, match="authentication"):  # no credentials in a polars URI
        read_uri("SELECT 1", uri)
    with flightsql.connect(uri, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True) as conn:
        frame = pl.read_database(FEDERATED, connection=conn, execute_options={"parameters": [2024]})
    assert frame.rows() == expected(demo_config, 2024) and frame.height > 1
