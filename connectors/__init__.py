"""One module per source kind; ``connector_class(kind)`` finds the class for a config's ``kind``."""

from __future__ import annotations

from importlib import import_module

from connectors.base import Capabilities, Connector, Fragment, TableStatistics

# kind -> "module:Class"; imported on first use so a missing optional driver only affects its own kind
CONNECTOR_CLASSES: dict[str, str] = {
    "postgresql": "connectors.postgresql:PostgreSQLConnector",
    "mysql": "connectors.mysql:MySQLConnector",
    "sqlite": "connectors.sqlite:SQLiteConnector",
    "parquet": "connectors.files:ParquetConnector",
    "csv": "connectors.files:CsvConnector",
    "delta": "connectors.delta:DeltaConnector",
    "iceberg": "connectors.iceberg:IcebergConnector",
    "flightsql": "connectors.flightsql:FlightSqlConnector",
}


def connector_class(kind: str) -> type[Connector]:
    """The connector class for a source kind. Raises KeyError for an unknown kind."""
    module, _, name = CONNECTOR_CLASSES[kind].partition(":")
    return getattr(import_module(module), name)


__all__ = ["CONNECTOR_CLASSES", "Capabilities", "Connector", "Fragment", "TableStatistics", "connector_class"]
