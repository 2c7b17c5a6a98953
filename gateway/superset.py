"""Apache Superset's engine spec for the gateway: without it Superset treats ``gateway+flightsql://`` as a generic
database, and every chart with a time grain fails ("No grain spec for P1M for database base"). It gives Superset
the gateway's time-grain SQL (``gateway.sqlalchemy.TIME_GRAINS``), date/time literals for time-range filters,
epoch conversions, and the name shown in its database list.

Superset finds it through this package's ``superset.db_engine_specs`` entry point; it is imported only inside
Superset's environment (``bench/superset_check.py`` runs it there: a monthly time-series chart with a time range).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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
