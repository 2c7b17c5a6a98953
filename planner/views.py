"""Named views in queries: each view reference becomes a derived table of the view's query, before names are
resolved, so a query over a view is planned (and pushed down) exactly as the same SQL written inline.

    SELECT v.region, v.total FROM bi.sales.by_region AS v WHERE v.total > 10
    -- bi.sales.by_region = SELECT region, sum(amount) AS total FROM lake.main.orders GROUP BY region
    SELECT v.region, v.total FROM (SELECT "orders".region, sum(amount) AS total
                                   FROM "lake"."main"."orders" AS "orders" GROUP BY region) AS v
    WHERE v.total > 10

``prepare_views`` types every view once at start (planning ``SELECT * FROM view``) and resolves its table
names in the whole catalog, so that a view means the same to every caller whatever its session's default
catalog. Views are security-invoker: the expanded query is resolved in the caller's catalog view, and a view
reading a source the caller may not use is refused (``Catalog.view_definition``: PermissionDeniedError).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Protocol

import pyarrow as pa
from sqlglot import exp

from catalog import Catalog, TableRef
from catalog.views import ViewDefinition
from connectors.errors import ConfigError, GatewayError, InvalidRequestError, SourceUnavailableError
from planner.parse import parse

log = logging.getLogger(__name__)

#: how deep views may read other views (cycles are refused when the config is read)
MAX_DEPTH = 32


class _Plans(Protocol):
    catalog: Catalog
    dialect: str

    def plan(self, sql: str, params=None) -> tuple: ...


def expand_views(ast: exp.Expression, catalog: Catalog) -> list[ViewDefinition]:
    """Replace, in place, every table of ``ast`` that names a view (``view_catalog.schema.view``, wherever it
    is: FROM, JOIN, sub-queries, CTE bodies, other views) by ``(view query) AS alias``, the alias being the
    one written, else the view's name. Returns the views expanded (outermost first). Raises
    PermissionDeniedError / SourceUnavailableError as ``Catalog.view_definition`` does, InvalidRequestError
    past ``MAX_DEPTH`` levels of views."""
    expanded: list[ViewDefinition] = []
    for _ in range(MAX_DEPTH):
        found = False
        for table in list(ast.find_all(exp.Table)):
            definition = _named_view(table, catalog)
            if definition is None:
                continue
            view = catalog.view_definition(definition.ref)
            query = view.query  # once: a catalog change may type the view again meanwhile (ViewTyping.retry)
            if query is None:
                raise SourceUnavailableError(view.ref.source, f"view '{view.ref}' is not available: {view.error}")
            alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(view.ref.table))
            table.replace(exp.Subquery(this=query.copy(), alias=alias.copy()))
            expanded.append(view)
            found = True
        if not found:
            return expanded
    raise InvalidRequestError(f"views read other views more than {MAX_DEPTH} levels deep")


def _named_view(table: exp.Table, catalog: Catalog) -> ViewDefinition | None:
    if not isinstance(table.this, exp.Identifier):
        return None
    return catalog.views.find([p.name for p in table.parts])


def prepare_views(planner: _Plans, untyped_only: bool = False) -> None:
    """Type the catalog's views with ``planner`` (over the whole catalog), views read by others first: each
    view's query parsed (read-only), its table names resolved (``ViewDefinition.query``), its ``sources`` and
    ``tables`` gathered through the views it reads, its ``schema`` from planning ``SELECT * FROM view``.

    Raises ConfigError naming the view for a query that does not parse, names an unknown table or column,
    does not plan, or has two columns of one name. A view whose source is unavailable is left untyped
    (``error`` says why; logged) and typed again by a later call with ``untyped_only``."""
    catalog = planner.catalog
    done: set[TableRef] = set()
    for view in catalog.views:
        _prepare(planner, view, done, (), untyped_only)


def _prepare(planner: _Plans, view: ViewDefinition, done: set[TableRef], path: tuple[TableRef, ...],
             untyped_only: bool) -> None:
    if view.ref in done or (untyped_only and view.query is not None):
        return
    if view.ref in path:
        cycle = " -> ".join(str(r) for r in (*path[path.index(view.ref):], view.ref))
        raise ConfigError(f"views form a cycle: {cycle}", key="views")
    catalog = planner.catalog
    try:
        query = parse(view.sql, planner.dialect).expression.copy()
        ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
        sources: set[str] = set()
        tables: set[TableRef] = set()
        for table in list(query.find_all(exp.Table)):
            if not isinstance(table.this, exp.Identifier):
                continue
            parts = [p.name for p in table.parts]
            if len(parts) == 1 and parts[0].lower() in ctes:
                continue
            inner = catalog.views.find(parts)
            if inner is not None:
                _prepare(planner, inner, done, (*path, view.ref), untyped_only)
                if inner.query is None:
                    raise SourceUnavailableError(inner.ref.source, f"view '{inner.ref}' it reads: {inner.error}")
                sources |= inner.sources
                tables |= set(inner.tables)
                continue
            ref = catalog.resolve(parts)
            if not table.alias:
                table.set("alias", exp.TableAlias(this=table.this.copy()))
            table.set("this", exp.to_identifier(ref.table, quoted=True))
            table.set("db", exp.to_identifier(ref.schema, quoted=True))
            table.set("catalog", exp.to_identifier(ref.source, quoted=True))
            sources.add(ref.source)
            tables.add(ref)
        view.query, view.sources, view.tables, view.error = query, frozenset(sources), tuple(sorted(tables)), None
        view.schema = _typed(planner, view)
    except SourceUnavailableError as exc:
        view.query, view.error = None, exc.message
        log.warning("view not typed: a source it reads is unavailable", extra={"view": str(view.ref),
                                                                              "error": exc.message})
    except ConfigError:
        raise
    except GatewayError as exc:
        view.query, view.error = None, exc.message
        raise ConfigError(f"view '{view.ref}': {exc.message}", key="views", view=str(view.ref)) from exc
    done.add(view.ref)


class ViewTyping:
    """The named views of a catalog, registered and typed at once (``Catalog.set_views``, ``prepare_views``:
    ConfigError for a bad view); ``retry()`` types those whose source was unavailable, at most every
    ``retry_s`` seconds, and types every view again once the catalog changed (schema drift: a view over a table
    that gained a column lists it; one that lost a column the view reads is reported, not served stale)."""

    def __init__(self, planner: _Plans, definitions: Iterable[ViewDefinition], retry_s: float = 10.0) -> None:
        self.planner, self.retry_s = planner, retry_s
        self._lock = threading.Lock()
        definitions = list(definitions)
        if definitions:
            planner.catalog.set_views(definitions)
            prepare_views(planner)
        self._last = time.monotonic()
        self._version = planner.catalog.version

    def retry(self) -> None:
        """Type the views again after a catalog change, or the views not typed yet when ``retry_s`` seconds
        have passed since the last attempt. Never raises: a view the change broke is logged and answers its
        error until it types again."""
        catalog = self.planner.catalog
        if not len(catalog.views) or (catalog.version == self._version and not catalog.views.untyped()):
            return  # the common case, without the lock
        with self._lock:
            changed = catalog.version != self._version
            if not changed and time.monotonic() - self._last <= self.retry_s:
                return
            self._last, self._version = time.monotonic(), catalog.version
            try:
                prepare_views(self.planner, untyped_only=not changed)
            except GatewayError as exc:  # a view the drift broke keeps its error (``_prepare``)
                log.warning("views not typed again after a catalog change", extra={"error": exc.message})


def _typed(planner: _Plans, view: ViewDefinition) -> pa.Schema:
    name = ".".join(exp.to_identifier(p, quoted=True).sql() for p in (view.ref.source, view.ref.schema,
                                                                     view.ref.table))
    schema = planner.plan(f"SELECT * FROM {name}")[1].schema
    seen: set[str] = set()
    for field in schema:
        if field.name in seen:
            raise InvalidRequestError(f"two columns are named '{field.name}'; name each output with AS")
        seen.add(field.name)
    return schema
