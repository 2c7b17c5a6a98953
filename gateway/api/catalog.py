"""The catalog as the caller sees it: ``GET /v1/sources``, ``GET /v1/sources/{source}/tables``,
``GET /v1/sources/{source}/tables/{table}/statistics``."""

from __future__ import annotations

from fastapi import APIRouter

from catalog import TableRef
from catalog.statistics import statistics_as_dict
from gateway.api.deps import Engine, User, visible_catalog
from gateway.api.errors import error_responses
from gateway.auth import Principal
from gateway.errors import PermissionDeniedError, UnknownObjectError
from gateway.execution.engine import QueryEngine

router = APIRouter()


@router.get("/v1/sources", responses=error_responses())
def sources(user: User, engine: Engine) -> list[dict]:
    """The sources the caller may use and the view catalogs of named views over them: ``[{"name", "kind"}]``
    (a view catalog's kind is ``view``; SQL: ``SHOW CATALOGS``)."""
    catalog = visible_catalog(engine, user)
    return [{"name": name, "kind": catalog.connector(name).kind} for name in catalog.list_catalogs()]


def _check_source(engine: QueryEngine, user: Principal | None, source: str) -> None:
    """The authorization convention of queries (``QueryEngine._plan``): a source that exists but the caller may
    not use is PermissionDeniedError (403); one that does not exist is UnknownObjectError (404) naming only the
    nearest sources the caller may use."""
    visible = visible_catalog(engine, user).list_catalogs()
    if source in visible:
        return
    if source in engine.catalog.list_catalogs():
        raise PermissionDeniedError(f"access to source '{source}' is not allowed", source=source)
    raise UnknownObjectError("source", source, visible)


@router.get("/v1/sources/{source}/tables", responses=error_responses(404, 503))
def tables(source: str, user: User, engine: Engine) -> list[dict]:
    """The tables of ``source`` (or the views of a view catalog): ``[{"source", "schema", "table", "type"}]``
    (``type``: ``TABLE`` or ``VIEW``; SQL: ``SHOW TABLES FROM source``). 404 (with the nearest names) for a
    source that does not exist, 403 for one the caller may not use (as a query on it answers); 503 when the
    source cannot be listed."""
    _check_source(engine, user, source)
    catalog = visible_catalog(engine, user)
    out = []
    for schema in catalog.list_schemas(source):
        out.extend({"source": source, "schema": schema, "table": t,
                    "type": catalog.table_type(TableRef(source, schema, t))}
                   for t in catalog.list_tables(source, schema))
    return out


@router.get("/v1/sources/{source}/tables/{table}/statistics", responses=error_responses(404, 503))
def table_statistics(source: str, table: str, user: User, engine: Engine, schema: str | None = None) -> dict:
    """The catalog's statistics of one table (``schema`` may be left out where the source has one): rows,
    bytes, and per column distinct values, null fraction, min/max, most common values and where each figure
    came from (``origin``). Unknown figures are null. Raises UnknownObjectError (404) for a source or table that
    does not exist, PermissionDeniedError (403) for a source the caller may not use."""
    _check_source(engine, user, source)
    ref = engine.catalog.resolve([source, schema, table] if schema else [source, table])
    return {"source": ref.source, "schema": ref.schema, "table": ref.table,
            **statistics_as_dict(engine.catalog.statistics(ref))}
