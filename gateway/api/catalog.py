"""The catalog as the caller sees it: ``GET /v1/sources``, ``GET /v1/sources/{source}/tables``."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import Engine, User, visible_sources
from gateway.errors import UnknownObjectError

router = APIRouter()


@router.get("/v1/sources")
def sources(user: User, engine: Engine) -> list[dict]:
    return [{"name": name, "kind": engine.catalog.connector(name).kind} for name in visible_sources(engine, user)]


@router.get("/v1/sources/{source}/tables")
def tables(source: str, user: User, engine: Engine) -> list[dict]:
    visible = visible_sources(engine, user)
    if source not in visible:
        raise UnknownObjectError("source", source, visible)
    out = []
    for schema in engine.catalog.list_schemas(source):
        out.extend({"source": source, "schema": schema, "table": t} for t in engine.catalog.list_tables(source, schema))
    return out
