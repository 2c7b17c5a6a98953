"""SQL habits answered from the catalog: ``SHOW ...``, ``DESCRIBE``, ``information_schema`` and ``version()``.

Two steps, both in the planner (floor 3) so that every protocol (REST, Flight SQL, CLI, shell) gets them:

1. ``rewrite_statement(sql, catalog)`` turns a metadata statement into an ordinary query over the gateway-wide
   ``information_schema``; names in it are resolved in the catalog, unknown ones raise ``UnknownObjectError``
   naming only objects that exist:

   ======================================================  =====================================================
   ``SHOW CATALOGS [LIKE 'p']``                             ``catalog_name, source_kind`` (catalog = source, or
                                                            a view catalog of named views: kind ``view``)
   ``SHOW SCHEMAS [FROM source] [LIKE 'p']``                ``catalog_name, schema_name``
   ``SHOW TABLES [FROM source[.schema]] [LIKE 'p']``        ``table_catalog, table_schema, table_name, table_type``
   ``SHOW COLUMNS FROM table``, ``DESCRIBE table``          ``column_name, data_type, is_nullable``
   ======================================================  =====================================================

   (``IN`` may replace ``FROM``; ``DESC`` is ``DESCRIBE``; an ``EXPLAIN`` prefix and a trailing ``;`` are
   kept/accepted.) Anything else starting with SHOW/DESCRIBE is a ``SqlSyntaxError`` listing these forms.

2. ``expand_metadata(ast, catalog)`` replaces each ``information_schema.<table>`` (or
   ``<source>.information_schema.<table>``, restricted to that source) by a ``VALUES`` list built from the
   catalog's copy, and ``version()`` by the gateway's version. The rest of the query is planned as usual, so
   filters, joins with other sources and EXPLAIN work; the VALUES run in the residual plan (DataFusion) and no
   source's data is read. The catalog loads a source's metadata (schemas, tables, columns) the first time it
   is asked, as it does for any query. The catalog passed in is the caller's view, so a principal only sees
   the sources it may use (``gateway.auth.allowed_sources``). Equality filters of the WHERE clause on the
   catalog/schema/table name columns limit which tables are introspected (``SHOW COLUMNS`` reads one table).

    >>> from catalog import Catalog
    >>> rewrite_statement("show catalogs", Catalog({}))
    'SELECT catalog_name, source_kind FROM information_schema.catalogs ORDER BY catalog_name'
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from collections.abc import Callable, Iterator, Sequence

from sqlglot import exp

from catalog import Catalog, TableRef
from connectors.errors import GatewayError, SqlSyntaxError, UnknownObjectError
from planner.dialects import sqlglot_type

log = logging.getLogger(__name__)

#: the gateway-wide schema's name (the SQL standard's)
INFORMATION_SCHEMA = "information_schema"

#: the columns of each ``information_schema`` table; every value is text except ``ordinal_position`` (BIGINT)
TABLES: dict[str, tuple[str, ...]] = {
    "catalogs": ("catalog_name", "source_kind"),
    "schemata": ("catalog_name", "schema_name"),
    "tables": ("table_catalog", "table_schema", "table_name", "table_type"),
    "columns": ("table_catalog", "table_schema", "table_name", "column_name", "ordinal_position", "data_type",
                "is_nullable", "arrow_type"),
}
# which column of each table holds the source, the schema and the table name (used to prune introspection)
_NAME_COLUMNS = {"catalog_name": "source", "table_catalog": "source", "schema_name": "schema",
                 "table_schema": "schema", "table_name": "table"}

_NAME = r'(?:"[^"]+"|`[^`]+`|[A-Za-z_][\w$]*)'
_QUALIFIED = rf"{_NAME}(?:\s*\.\s*{_NAME}){{0,2}}"
_LIKE = r"(?:\s+LIKE\s+(?P<like>'(?:[^']|'')*'))?"
_PREFIX = r"^(?:\s*(?:--[^\n]*(?:\n|$)|/\*[\s\S]*?\*/))*\s*(?P<explain>EXPLAIN\s+(?:ANALYZE\s+)?)?"
_END = r"\s*;?\s*$"
_FORMS = {
    "catalogs": re.compile(_PREFIX + r"SHOW\s+CATALOGS" + _LIKE + _END, re.IGNORECASE),
    "schemas": re.compile(_PREFIX + rf"SHOW\s+SCHEMAS(?:\s+(?:FROM|IN)\s+(?P<name>{_NAME}))?" + _LIKE + _END,
                          re.IGNORECASE),
    "tables": re.compile(_PREFIX + rf"SHOW\s+TABLES(?:\s+(?:FROM|IN)\s+(?P<name>{_QUALIFIED}))?" + _LIKE + _END,
                         re.IGNORECASE),
    "columns": re.compile(_PREFIX + rf"(?:SHOW\s+COLUMNS\s+(?:FROM|IN)|DESCRIBE|DESC)\s+(?P<name>{_QUALIFIED})"
                          + _END, re.IGNORECASE),
}
_METADATA_START = re.compile(_PREFIX + r"(SHOW|DESCRIBE|DESC)\b", re.IGNORECASE)
_ACCEPTED = ("SHOW CATALOGS, SHOW SCHEMAS [FROM source], SHOW TABLES [FROM source[.schema]] (each with an optional "
             "LIKE 'pattern'), SHOW COLUMNS FROM table, DESCRIBE table")


def gateway_version() -> str:
    """What ``SELECT version()`` answers: ``federated-sql-gateway <version> (Apache DataFusion <version>)``."""
    return f"federated-sql-gateway {_version('federated-sql-gateway')} (Apache DataFusion {_version('datafusion')})"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# -- 1. SHOW / DESCRIBE -> a query over information_schema ------------------------------------------------

def rewrite_statement(sql: str, catalog: Catalog) -> str:
    """``sql`` itself, or for a SHOW/DESCRIBE statement the equivalent query over ``information_schema`` (see
    the module docstring). Raises SqlSyntaxError for an unsupported SHOW/DESCRIBE form and UnknownObjectError
    (with the nearest existing names) for a source, schema or table ``catalog`` does not have."""
    start = _METADATA_START.match(sql)
    if start is None:
        return sql
    for kind, form in _FORMS.items():
        match = form.match(sql)
        if match is not None:
            groups = match.groupdict()
            query = _REWRITES[kind](catalog, _split_name(groups.get("name")), groups.get("like"))
            return (groups.get("explain") or "") + query
    raise SqlSyntaxError(f"unsupported {start.group(2).upper()} statement; accepted: {_ACCEPTED}", line=1,
                         column=start.start(2) + 1)


def statement_sources(sql: str, sources: Sequence[str]) -> set[str] | None:
    """The sources of ``sources`` a SHOW/DESCRIBE statement names (``SHOW TABLES FROM src``, ``DESCRIBE
    src.schema.t``, ``DESCRIBE src.t``; case-insensitive), or None when ``sql`` is no such statement. Text only,
    no catalog: the engine uses it to refuse a source the caller may not use as it refuses a SELECT on it.

        >>> statement_sources("DESCRIBE Lake.main.orders", ["lake", "db"]), statement_sources("SELECT 1", ["lake"])
        ({'lake'}, None)
    """
    if _METADATA_START.match(sql) is None:
        return None
    by_lower = {s.lower(): s for s in sources}
    for kind, form in _FORMS.items():
        match = form.match(sql)
        if match is not None:
            name = _split_name(match.groupdict().get("name"))
            # a one-part name is a source for SHOW SCHEMAS/TABLES FROM, a table for SHOW COLUMNS/DESCRIBE
            if name and (len(name) > 1 or kind in ("schemas", "tables")) and name[0].lower() in by_lower:
                return {by_lower[name[0].lower()]}
    return set()


def _split_name(name: str | None) -> list[str]:
    if not name:
        return []
    return [part.strip()[1:-1] if part.strip()[:1] in '"`' else part.strip()
            for part in re.findall(rf"{_NAME}", name)]


def _literal(value: str) -> str:
    return exp.Literal.string(value).sql()


def _where(conditions: list[str], like_column: str, like: str | None) -> str:
    if like is not None:
        conditions = [*conditions, f"{like_column} LIKE {like}"]
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _show_catalogs(_: Catalog, __: list[str], like: str | None) -> str:
    return ("SELECT catalog_name, source_kind FROM information_schema.catalogs"
            f"{_where([], 'catalog_name', like)} ORDER BY catalog_name")


def _show_schemas(catalog: Catalog, name: list[str], like: str | None) -> str:
    conditions = [f"catalog_name = {_literal(_source(catalog, name[0]))}"] if name else []
    return ("SELECT catalog_name, schema_name FROM information_schema.schemata"
            f"{_where(conditions, 'schema_name', like)} ORDER BY catalog_name, schema_name")


def _show_tables(catalog: Catalog, name: list[str], like: str | None) -> str:
    if len(name) > 2:
        raise UnknownObjectError("schema", ".".join(name), (), context="SHOW TABLES FROM source[.schema]")
    conditions = []
    if name:
        source = _source(catalog, name[0])
        conditions.append(f"table_catalog = {_literal(source)}")
        if len(name) == 2:
            schemas = catalog.list_schemas(source)
            schema = _pick(name[1], schemas)
            if schema is None:
                raise UnknownObjectError("schema", name[1], schemas, context=f"source '{source}'")
            conditions.append(f"table_schema = {_literal(schema)}")
    return ("SELECT table_catalog, table_schema, table_name, table_type FROM information_schema.tables"
            f"{_where(conditions, 'table_name', like)} ORDER BY table_catalog, table_schema, table_name")


def _show_columns(catalog: Catalog, name: list[str], _: str | None) -> str:
    ref = catalog.resolve(name)
    catalog.view_definition(ref)  # a named view reading a source the caller may not use: PermissionDeniedError
    return ("SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            f" WHERE table_catalog = {_literal(ref.source)} AND table_schema = {_literal(ref.schema)}"
            f" AND table_name = {_literal(ref.table)} ORDER BY ordinal_position")


_REWRITES: dict[str, Callable[[Catalog, list[str], str | None], str]] = {
    "catalogs": _show_catalogs, "schemas": _show_schemas, "tables": _show_tables, "columns": _show_columns,
}


def _source(catalog: Catalog, name: str) -> str:
    source = _pick(name, catalog.list_catalogs())  # a source or a view catalog
    if source is None:
        raise UnknownObjectError("source", name, catalog.list_catalogs())
    return source


def _pick(name: str, candidates: list[str]) -> str | None:
    """``name`` exactly, else its only case-insensitive match."""
    if name in candidates:
        return name
    folded = [c for c in candidates if c.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


# -- 2. information_schema tables and version() ------------------------------------------------------------

def is_metadata_table(table: exp.Table, catalog: Catalog) -> bool:
    """Whether ``table`` names a gateway ``information_schema`` table (``information_schema.tables``, or
    ``<source>.information_schema.tables`` for a source of ``catalog``)."""
    parts = [p.name for p in table.parts] if isinstance(table.this, exp.Identifier) else []
    if len(parts) not in (2, 3) or parts[-2].lower() != INFORMATION_SCHEMA or parts[-1].lower() not in TABLES:
        return False
    return len(parts) == 2 or _pick(parts[0], catalog.list_sources()) is not None


def expand_metadata(ast: exp.Expression, catalog: Catalog) -> exp.Expression:
    """Replace, in place, the ``information_schema`` tables ``ast`` reads by VALUES lists from ``catalog``
    and each ``version()`` call by the gateway's version (see the module docstring). Returns ``ast``."""
    for call in list(ast.find_all(exp.CurrentVersion, exp.Anonymous)):
        if isinstance(call, exp.CurrentVersion) or (call.name.lower() == "version" and not call.expressions):
            text = exp.Literal.string(gateway_version())
            named = isinstance(call.parent, exp.Select) and call.arg_key == "expressions"
            call.replace(exp.alias_(text, "version") if named else text)
    for table in list(ast.find_all(exp.Table)):
        if is_metadata_table(table, catalog):
            parts = [p.name for p in table.parts]
            source = _pick(parts[0], catalog.list_sources()) if len(parts) == 3 else None
            name = parts[-1].lower()
            filters = _equality_filters(table)
            if source is not None:
                filters["source"] = source if filters.get("source", source) == source else "\0none"
            rows = list(_ROWS[name](catalog, filters))
            table.replace(_values(rows, TABLES[name], table.alias or name))
    return ast


def _equality_filters(table: exp.Table) -> dict[str, str]:
    """``{"source"|"schema"|"table": value}`` from the top-level ``column = 'text'`` conjuncts of the WHERE
    clause of the SELECT reading ``table``. Such a filter is null-rejecting, so leaving the rows it drops out
    of the VALUES changes no result. Unqualified columns count only when ``table`` is the SELECT's one table."""
    select = table.parent_select
    where = select.args.get("where") if select is not None else None
    if where is None:
        return {}
    alias = table.alias_or_name
    alone = not select.args.get("joins") and isinstance(select.args.get("from"), exp.From) \
        and select.args["from"].this is table
    filters: dict[str, str] = {}
    for condition in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        if not isinstance(condition, exp.EQ):
            continue
        column, value = condition.this, condition.expression
        if isinstance(value, exp.Column):
            column, value = value, column
        if not (isinstance(column, exp.Column) and isinstance(value, exp.Literal) and value.is_string):
            continue
        key = _NAME_COLUMNS.get(column.name.lower())
        if key is None or not (column.table == alias or (not column.table and alone)):
            continue
        filters[key] = value.name if filters.get(key, value.name) == value.name else "\0none"
    return filters


def _values(rows: list[tuple], columns: tuple[str, ...], alias: str) -> exp.Expression:
    """``(VALUES ...) AS alias(columns)``; no rows: a typed SELECT that returns none."""
    table_alias = exp.TableAlias(this=exp.to_identifier(alias), columns=[exp.to_identifier(c) for c in columns])
    if rows:
        tuples = [exp.Tuple(expressions=[exp.Literal.number(v) if isinstance(v, int) else exp.Literal.string(v)
                                         for v in row]) for row in rows]
        return exp.Values(expressions=tuples, alias=table_alias)
    typed = [exp.alias_(exp.cast(exp.null(), "BIGINT" if c == "ordinal_position" else "VARCHAR"), c)
             for c in columns]
    return exp.Subquery(this=exp.select(*typed).where(exp.false()), alias=table_alias)


def _wanted(value: str, filters: dict[str, str], key: str) -> bool:
    return key not in filters or filters[key] == value


def _sources(catalog: Catalog, filters: dict[str, str]) -> list[str]:
    """The sources and view catalogs (``Catalog.list_catalogs``) the filters keep."""
    return [s for s in catalog.list_catalogs() if _wanted(s, filters, "source")]


def _schemas(catalog: Catalog, filters: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(source, schema) of every schema the filters keep; a source that cannot be listed is left out (logged)."""
    for source in _sources(catalog, filters):
        try:
            schemas = catalog.list_schemas(source)
        except GatewayError as exc:
            log.warning("information_schema: source not listed", extra={"source": source, "error": exc.message})
            continue
        yield from ((source, s) for s in schemas if _wanted(s, filters, "schema"))


def _refs(catalog: Catalog, filters: dict[str, str]) -> Iterator[TableRef]:
    for source, schema in _schemas(catalog, filters):
        try:
            tables = catalog.list_tables(source, schema)
        except GatewayError as exc:
            log.warning("information_schema: schema not listed", extra={"source": source, "schema": schema,
                                                                          "error": exc.message})
            continue
        yield from (TableRef(source, schema, t) for t in tables if _wanted(t, filters, "table"))


def _catalog_rows(catalog: Catalog, filters: dict[str, str]) -> Iterator[tuple]:
    for source in _sources(catalog, filters):
        yield source, str(getattr(catalog.connector(source), "kind", "unknown"))


def _schema_rows(catalog: Catalog, filters: dict[str, str]) -> Iterator[tuple]:
    yield from _schemas(catalog, filters)


def _table_rows(catalog: Catalog, filters: dict[str, str]) -> Iterator[tuple]:
    for ref in _refs(catalog, filters):
        try:
            kind = "VIEW" if catalog.table_type(ref) == "VIEW" else "BASE TABLE"
        except GatewayError:
            kind = "BASE TABLE"
        yield ref.source, ref.schema, ref.table, kind


def _column_rows(catalog: Catalog, filters: dict[str, str]) -> Iterator[tuple]:
    for ref in _refs(catalog, filters):
        try:
            schema = catalog.table_schema(ref)
        except GatewayError as exc:  # this table only (an unreadable file of a file source)
            log.warning("information_schema: table not read", extra={"table": str(ref), "error": exc.message})
            continue
        for position, field in enumerate(schema, start=1):
            yield (ref.source, ref.schema, ref.table, field.name, position, sqlglot_type(field.type),
                   "YES" if field.nullable else "NO", str(field.type))


_ROWS: dict[str, Callable[[Catalog, dict[str, str]], Iterator[tuple]]] = {
    "catalogs": _catalog_rows, "schemata": _schema_rows, "tables": _table_rows, "columns": _column_rows,
}
