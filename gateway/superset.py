"""Apache Superset's engine spec for the gateway: without it Superset treats ``gateway+flightsql://`` as a generic
database, and every chart with a time grain fails ("No grain spec for P1M for database base"). It gives Superset
the gateway's time-grain SQL (``gateway.sqlalchemy.TIME_GRAINS``), date/time literals for time-range filters,
epoch conversions, the name shown in its database list, and the gateway's sources as Superset's catalogs.

Catalogs, as Superset's multi-catalog specs (Trino, Databricks) do it: ``get_catalog_names`` lists the sources;
``adjust_engine_params`` puts the catalog and schema Superset works in (the SQL Lab selectors, a dataset's) into
the URI as ``?catalog=...&schema=...``, so each engine lists that source's plain schema names and each
connection's Flight SQL session resolves unqualified names there (``gateway.sqlalchemy``); ``allow_multi_catalog``
("Allow changing catalogs") is on unless the database's extra turns it off; queries may still join sources with
``source.schema.table`` names. With no catalog chosen Superset lists schemas as ``source.schema``, as before.

Superset finds it through this package's ``superset.db_engine_specs`` entry point; it is imported only inside
Superset's environment (``bench/superset_check.py`` runs it there: catalogs, schemas, tables, SQL Lab with and
without a catalog, a monthly time-series chart with a time range).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine.url import URL
from superset.db_engine_specs.base import BaseEngineSpec

from gateway.sqlalchemy import TIME_GRAINS, datetime_literal


class GatewayEngineSpec(BaseEngineSpec):
    """The federated SQL gateway over Arrow Flight SQL (``gateway+flightsql://user:password@host:8815``)."""

    engine = "gateway"
    engine_name = "Federated SQL Gateway"
    drivers = {"flightsql": "Arrow Flight SQL (ADBC)"}
    default_driver = "flightsql"
    sqlalchemy_uri_placeholder = "gateway+flightsql://user:password@host:8815"
    _time_grain_expressions = TIME_GRAINS
    # sources are catalogs; SQL Lab's catalog and schema become the session's defaults; one query joins sources
    supports_catalog = supports_dynamic_catalog = supports_cross_catalog_queries = True
    supports_dynamic_schema = True

    @classmethod
    def get_default_catalog(cls, database: Any) -> str | None:
        """The URI's ``catalog`` (None without one: schemas are then listed as ``source.schema``)."""
        return database.url_object.query.get("catalog") or None

    @classmethod
    def get_catalog_names(cls, database: Any, inspector: Any) -> set[str]:
        """The sources this database's user may see."""
        with inspector.engine.connect() as connection:
            return set(inspector.dialect.get_catalog_names(connection))

    @classmethod
    def adjust_engine_params(cls, uri: URL, connect_args: dict[str, Any], catalog: str | None = None,
                             schema: str | None = None) -> tuple[URL, dict[str, Any]]:
        """The URI with the ``catalog`` and ``schema`` Superset works in (each kept from the URI when not given).

            >>> from sqlalchemy.engine import make_url
            >>> str(GatewayEngineSpec.adjust_engine_params(make_url("gateway://h:1"), {}, "demo_db", "main")[0])
            'gateway://h:1?catalog=demo_db&schema=main'
        """
        if catalog:
            # another catalog: the URI's schema belonged to the old one
            query = {k: v for k, v in uri.query.items() if k != "schema" or uri.query.get("catalog") == catalog}
            uri = uri.set(query={**query, "catalog": catalog})
        if schema:
            uri = uri.update_query_dict({"schema": schema})
        return uri, connect_args

    @staticmethod
    def get_extra_params(database: Any, source: Any = None) -> dict[str, Any]:
        """The database's extra, with ``allow_multi_catalog`` on unless set: every source is a catalog."""
        extra = BaseEngineSpec.get_extra_params(database, source)
        extra.setdefault("allow_multi_catalog", True)
        return extra

    @classmethod
    def convert_dttm(cls, target_type: str, dttm: dt.datetime, db_extra: dict[str, Any] | None = None) -> str | None:
        """``DATE '...'`` or ``TIMESTAMP '...'`` for a date or timestamp column (None: Superset's default)."""
        return datetime_literal(target_type, dttm)

    @classmethod
    def epoch_to_dttm(cls) -> str:
        """Seconds since the epoch to a timestamp."""
        return "to_timestamp({col})"

    @classmethod
    def epoch_ms_to_dttm(cls) -> str:
        """Milliseconds since the epoch to a timestamp."""
        return "to_timestamp_millis({col})"
