"""Fixtures shared by the robustness tests of the memory budget (``test_memory_budget*.py``): settings over
the real PostgreSQL (``crm.customers``) and the Parquet lake (``orders``) with any ``[limits]``, and an engine
that is closed after use."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from gateway.execution.engine import QueryEngine
from gateway.settings import Settings, settings_from_dict


@pytest.fixture(scope="module")
def memory_sources(pg_database, files) -> list[dict]:
    """The ``[[sources]]`` of ``make_settings``: ``pg`` (PostgreSQL) and ``lake`` (Parquet). A module may
    override it to add its own (asking for ``memory_sources`` to get these)."""
    return [{"name": "pg", "kind": "postgresql", "uri": pg_database},
            {"name": "lake", "kind": "parquet", "path": str(files["lake"])}]


@pytest.fixture(scope="module")
def make_settings(memory_sources, files) -> Callable[..., Settings]:
    """``make(**limits)``: settings over ``memory_sources`` with a 60 s query timeout and these ``[limits]``."""

    def make(**limits) -> Settings:
        return settings_from_dict({"sources": memory_sources, "limits": {"query_timeout_s": 60, **limits}},
                                  base_dir=files["root"])

    return make


@contextlib.contextmanager
def engine(settings: Settings) -> Iterator[QueryEngine]:
    """A ``QueryEngine`` over ``settings``, closed (its readers stopped) on exit."""
    gateway = QueryEngine(settings)
    try:
        yield gateway
    finally:
        gateway.close()
