"""The gateway: engine, settings, REST app, CLI and Python client."""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import gateway.errors` from lower layers stays light.
    if name == "Gateway":
        from gateway.engine import Gateway

        return Gateway
    raise AttributeError(name)
