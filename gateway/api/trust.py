"""Trust: ``GET /v1/queries/{query_id}/manifest`` (the freshness manifest of an answer), and schema drift:
``GET /v1/catalog/changes``, ``POST /v1/catalog/refresh``, ``GET /v1/catalog/history/{table}``."""

from __future__ import annotations

from fastapi import APIRouter, Query

from gateway.api.deps import Engine, User, visible_sources
from gateway.errors import InvalidRequestError, UnknownObjectError

router = APIRouter()


@router.get("/v1/queries/{query_id}/manifest")
def manifest(query_id: str, user: User, engine: Engine) -> dict:
    """The freshness manifest of a recent answer (``gateway.trust.manifest``: per table read its source
    fingerprint, read time, cache use and age, the staleness bound; the content hash over query, parameters
    and manifest). The last ``lineage.manifests_kept`` answers are kept, from REST and Flight SQL alike.
    404 for an id no kept manifest has, or whose tables include a source the caller may not use."""
    found = engine.trust.current(query_id)
    if user is not None and user.sources is not None and any(not user.may_use(t.source) for t in found.tables):
        raise UnknownObjectError("query manifest", query_id, [])
    return found.to_dict()


@router.get("/v1/catalog/changes")
def changes(user: User, engine: Engine, source: str | None = None, since_id: int = Query(0, ge=0, le=2**63 - 1),
            limit: int = Query(1000, ge=1, le=10000)) -> list[dict]:
    """Schema changes catalog refreshes found, oldest first: ``{id, at, source, schema, table, table_name,
    kind, column, old_column, old_type, new_type, widening, version}`` (``catalog.drift``; ``old_column`` is
    the name before a ``column_renamed``). Poll with the last ``id`` seen as ``since_id``. Only sources the
    caller may use are listed."""
    drift = engine.catalog.drift
    if drift is None:
        return []
    visible = set(visible_sources(engine, user))
    if source is not None and source not in visible:
        raise UnknownObjectError("source", source, sorted(visible))
    return [c for c in drift.changes(source, since_id, limit) if c["source"] in visible]


@router.post("/v1/catalog/refresh")
def refresh(user: User, engine: Engine, source: str | None = None) -> dict:
    """Reload the catalog copy of ``source`` (default: every source the caller may use) now; answers the
    schema changes found (``{"changes": [...]}``). Cached partitions of changed tables are dropped and plans
    made over the old columns are not used again."""
    visible = visible_sources(engine, user)
    if source is not None and source not in visible:
        raise UnknownObjectError("source", source, visible)
    found: list[dict] = []
    for name in [source] if source is not None else visible:
        found.extend(engine.trust.refresh(name))
    return {"changes": found}


@router.get("/v1/catalog/history/{table}")
def history(table: str, user: User, engine: Engine) -> dict:
    """Every recorded version of ``source.schema.table`` (its columns, hash, when first seen, whether the
    table was dropped), oldest first. 404 for a table with no recorded version."""
    parts = table.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidRequestError(f"'{table}' is not source.schema.table")
    if parts[0] not in visible_sources(engine, user):
        raise UnknownObjectError("source", parts[0], visible_sources(engine, user))
    versions = engine.catalog.drift.history(*parts) if engine.catalog.drift is not None else []
    if not versions:
        raise UnknownObjectError("table history", table, [])
    return {"table": table, "versions": versions}
