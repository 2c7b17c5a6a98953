"""The partition cache: ``GET /v1/cache``, ``POST /v1/cache/warm``, ``DELETE /v1/cache``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.api.deps import Engine, User, visible_sources
from gateway.auth import allowed_sources
from gateway.errors import UnknownObjectError

router = APIRouter()


class CacheWarmRequest(BaseModel):
    table: str = Field(description="source.schema.table (or any name the catalog resolves)")
    where: str | None = Field(default=None, description="SQL condition selecting the partitions to warm")


@router.get("/v1/cache")
def cache_status(user: User, engine: Engine) -> dict:
    """Cached partitions (source, table, partition, columns, tier, bytes, age), budgets and counters."""
    status = engine.cache_status()
    visible = set(visible_sources(engine, user))
    status["entries"] = [e for e in status["entries"] if e["source"] in visible]
    return status


@router.post("/v1/cache/warm")
def cache_warm(body: CacheWarmRequest, user: User, engine: Engine) -> dict:
    """Fetch and cache every partition of ``table`` (``source.schema.table``), or those ``where`` selects."""
    partitions = engine.cache_warm(body.table, body.where, allowed_sources=allowed_sources(user))
    return {"table": body.table, "partitions": partitions}


@router.delete("/v1/cache")
def cache_clear(user: User, engine: Engine, source: str | None = None, table: str | None = None) -> dict:
    """Drop cached partitions: all, those of ``source``, or of ``table`` (with ``source``)."""
    limited = allowed_sources(user)
    if limited is not None and (source is None or source not in limited):
        raise UnknownObjectError("source", source or "(all)", limited)
    return {"dropped": engine.cache_clear(source, table)}
