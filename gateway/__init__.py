"""The gateway: engine, settings, REST app, CLI and Python client."""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: the Python client (gateway.client, gateway.errors) imports without DataFusion and the engine.
    if name == "QueryEngine":
        from gateway.execution.engine import QueryEngine

        return QueryEngine
    raise AttributeError(name)
