"""Catalog export to OpenMetadata (``gateway catalog export --format openmetadata``, ``openmetadata_requests``): the
create requests of OpenMetadata's API schemas (``CreateDatabaseServiceRequest``, ``CreateDatabaseRequest``,
``CreateDatabaseSchemaRequest``, ``CreateTableRequest``, ``CreateTableProfileRequest``; for named views
``AddLineageRequest`` with column lineage, ``gateway.trust.view_export``), as a JSON array of
``{type, method, path, entity}`` in the order an ingestion sends them; ``post_openmetadata`` sends them to a
server (``--url``). openmetadata-ingestion's generated models parse every one in
``bench/openmetadata_export_check.py``. ``gateway.trust.export`` re-exports the public names.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

import httpx
import pyarrow as pa

from catalog import Catalog, TableRef
from catalog.statistics import statistics_as_dict
from gateway.errors import SourceQueryError, SourceUnavailableError
from gateway.trust.view_export import OM_VIEW_SERVICE_TYPE, exported_views, om_lineage_requests, om_view_entities

#: connector kind -> OpenMetadata ``DatabaseServiceType`` (``entity/services/databaseService.json``); kinds
#: without a service type of their own (Iceberg catalogs, Flight SQL servers) are ``CustomDatabase``
OM_SERVICE_TYPES = {"postgresql": "Postgres", "mysql": "Mysql", "sqlite": "SQLite", "delta": "DeltaLake",
                    "parquet": "Datalake", "csv": "Datalake", "iceberg": "CustomDatabase",
                    "flightsql": "CustomDatabase"}
#: OpenMetadata's database name for sources without a database level (``metadata.utils.constants
#: .DEFAULT_DATABASE``, what its MySQL and file sources ingest under)
OM_DEFAULT_DATABASE = "default"
#: where each create request is sent (OpenMetadata's REST API; PUT creates or updates by name)
OM_PATHS = {"CreateDatabaseServiceRequest": "/v1/services/databaseServices", "CreateDatabaseRequest": "/v1/databases",
            "CreateDatabaseSchemaRequest": "/v1/databaseSchemas", "CreateTableRequest": "/v1/tables",
            "CreateTableProfileRequest": "/v1/tables/{id}/tableProfile", "AddLineageRequest": "/v1/lineage"}
_OM_INTEGERS = {8: "TINYINT", 16: "SMALLINT", 32: "INT", 64: "BIGINT"}


def om_quote(name: str) -> str:
    """One part of an OpenMetadata fully qualified name: quoted when it contains a dot (OpenMetadata's
    ``FullyQualifiedName.quoteName``). Raises ValueError for a name with a double quote, as it does.

        >>> om_quote("orders"), om_quote("v1.2")
        ('orders', '"v1.2"')
    """
    if '"' in name:
        raise ValueError(f"OpenMetadata names cannot contain '\"': {name!r}")
    return f'"{name}"' if "." in name else name


def om_fqn(*parts: str) -> str:
    """An OpenMetadata fully qualified name: the parts quoted (``om_quote``) and joined with dots."""
    return ".".join(om_quote(p) for p in parts)


def om_database(catalog: Catalog, source: str) -> str:
    """The OpenMetadata database a source's schemas go under: a PostgreSQL source's database (from its URI),
    else ``default`` (MySQL/MariaDB schemas are databases, and other kinds have no such level)."""
    connector = catalog.connector(source)
    if connector.kind == "postgresql":
        name = urlsplit(str(getattr(connector, "uri", ""))).path.lstrip("/")
        if name:
            return unquote(name)
    return OM_DEFAULT_DATABASE


#: Arrow type tests -> OpenMetadata ``dataType``, first match wins (the types with more members are handled
#: in ``om_column_type``)
_OM_SIMPLE_TYPES = (
    (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_date, "DATE"), (pa.types.is_time, "TIME"),
    (pa.types.is_duration, "INTERVAL"), (pa.types.is_interval, "INTERVAL"), (pa.types.is_string, "STRING"),
    (pa.types.is_large_string, "STRING"), (pa.types.is_string_view, "STRING"), (pa.types.is_binary, "BYTES"),
    (pa.types.is_large_binary, "BYTES"), (pa.types.is_binary_view, "BYTES"), (pa.types.is_map, "MAP"),
    (pa.types.is_null, "NULL"),
)


def om_column_type(kind: pa.DataType) -> dict:
    """OpenMetadata's column type members for an Arrow type: ``dataType`` (``entity/data/table.json``
    ``dataType`` enum), and where they apply ``arrayDataType``, ``precision``/``scale``, ``dataLength`` and
    ``children`` (struct fields, each a column). ``dataTypeDisplay`` is the Arrow type as text. Unsigned
    integers take the next wider signed type (uint64: NUMERIC(20, 0)); a dictionary its values' type; a type
    with no counterpart is UNKNOWN.

        >>> om_column_type(pa.decimal128(12, 2))
        {'dataType': 'DECIMAL', 'dataTypeDisplay': 'decimal128(12, 2)', 'precision': 12, 'scale': 2}
        >>> om_column_type(pa.list_(pa.int32()))["arrayDataType"]
        'INT'
    """
    out: dict = {"dataTypeDisplay": str(kind)}
    if pa.types.is_dictionary(kind):
        return {**om_column_type(kind.value_type), "dataTypeDisplay": str(kind)}
    name = next((n for test, n in _OM_SIMPLE_TYPES if test(kind)), None) or _om_type_with_members(kind, out)
    return {"dataType": name, **out}


def _om_type_with_members(kind: pa.DataType, out: dict) -> str:
    """The ``dataType`` of the Arrow types that carry more members (set in ``out``), or UNKNOWN."""
    if pa.types.is_signed_integer(kind):
        return _OM_INTEGERS[kind.bit_width]
    if pa.types.is_unsigned_integer(kind):  # the next wider signed type holds every value
        if kind.bit_width == 64:
            out.update(precision=20, scale=0)
            return "NUMERIC"
        return _OM_INTEGERS[kind.bit_width * 2]
    if pa.types.is_floating(kind):
        return "DOUBLE" if kind.bit_width == 64 else "FLOAT"
    if pa.types.is_decimal(kind):
        out.update(precision=kind.precision, scale=kind.scale)
        return "DECIMAL"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPZ" if kind.tz else "TIMESTAMP"
    if pa.types.is_fixed_size_binary(kind):  # OpenMetadata wants BINARY's length
        out["dataLength"] = kind.byte_width
        return "BINARY"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        out["arrayDataType"] = om_column_type(kind.value_type)["dataType"]
        return "ARRAY"
    if pa.types.is_struct(kind):
        out["children"] = [_om_column(kind.field(i), [], None) for i in range(kind.num_fields)]
        return "STRUCT"
    return "UNKNOWN"


def _om_column(field: pa.Field, key: list[str], position: int | None) -> dict:
    column = {"name": field.name, **om_column_type(field.type)}
    # as OpenMetadata's SQL sources set it (sql_column_handler._get_column_constraints): a one-column primary
    # key on the column, a composite one as a table constraint only
    if key == [field.name]:
        column["constraint"] = "PRIMARY_KEY"
    elif field.name not in key:
        column["constraint"] = "NULL" if field.nullable else "NOT_NULL"
    if position is not None:
        column["ordinalPosition"] = position
    return column


def _om_constraints(catalog: Catalog, ref: TableRef, key: list[str]) -> list[dict]:
    out: list[dict] = []
    if len(key) > 1:
        out.append({"constraintType": "PRIMARY_KEY", "columns": list(key)})
    for fk in catalog.foreign_keys(ref):
        parent = TableRef(ref.source, fk.ref_schema, fk.ref_table)
        parent_fqn = om_fqn(ref.source, om_database(catalog, ref.source), parent.schema, parent.table)
        one_to_one = sorted(fk.columns) == sorted(key)  # the referencing columns are this table's key too
        out.append({"constraintType": "FOREIGN_KEY", "columns": list(fk.columns),
                    "referredColumns": [f"{parent_fqn}.{om_quote(c)}" for c in fk.ref_columns],
                    "relationshipType": "ONE_TO_ONE" if one_to_one else "MANY_TO_ONE"})
    return out


def _om_number(value: object) -> object:
    """A statistic's min/max as ``ColumnProfile`` takes it: numbers as numbers, everything else as text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    return str(value)


def _om_profile(catalog: Catalog, ref: TableRef, columns: int, now_ms: int) -> dict | None:
    stats = statistics_as_dict(catalog.statistics(ref))
    if stats["rows"] is None and not stats["columns"]:
        return None
    table: dict = {"timestamp": now_ms, "columnCount": columns}
    if stats["rows"] is not None:
        table["rowCount"] = int(stats["rows"])
    if stats["bytes"] is not None:
        table["sizeInByte"] = int(stats["bytes"])
    profiles = []
    for name, c in sorted(stats["columns"].items()):
        column: dict = {"name": name, "timestamp": now_ms}
        if c["distinct"] is not None:
            column["distinctCount"] = float(c["distinct"])
            if stats["rows"]:
                column["distinctProportion"] = min(1.0, float(c["distinct"]) / stats["rows"])
        if c["null_fraction"] is not None:
            column["nullProportion"] = float(c["null_fraction"])
            if stats["rows"] is not None:
                column["nullCount"] = round(float(c["null_fraction"]) * stats["rows"])
        for bound in ("min", "max"):
            if c[bound] is not None:
                column[bound] = _om_number(c[bound])
        profiles.append(column)
    return {"tableProfile": table, "columnProfile": profiles}


def _om_request(model: str, entity: dict, **extra: str) -> dict:
    return {"type": model, "method": "PUT", "path": OM_PATHS[model], **extra, "entity": entity}


def openmetadata_requests(catalog: Catalog, sources: Iterable[str] | None = None,
                          now_ms: int | None = None) -> list[dict]:
    """The catalog as OpenMetadata create requests, in the order an ingestion sends them (every service,
    then every database, schema, table, profile: each entity after the one it belongs to, and a foreign
    key's referred table before the profiles): ``[{"type", "method", "path", ["table"], "entity"}, ...]``.

    ``type`` names the request model of OpenMetadata's ``api/`` JSON schemas (the ``metadata.generated
    .schema.api`` models of openmetadata-ingestion, which ``bench/openmetadata_export_check.py`` parses them
    with), ``path`` where OpenMetadata's REST API takes it (PUT: create or update by name), ``entity`` the
    request body:

    - ``CreateDatabaseServiceRequest`` per source (``name`` the gateway source, ``serviceType`` by kind,
      ``OM_SERVICE_TYPES``; no ``connection``: nothing secret is exported);
    - ``CreateDatabaseRequest`` per source: its PostgreSQL database, else ``default`` (``om_database``);
    - ``CreateDatabaseSchemaRequest`` per schema;
    - ``CreateTableRequest`` per table: columns with ``dataType`` (``om_column_type``), ``ordinalPosition``,
      ``constraint`` (NULL / NOT_NULL / PRIMARY_KEY), and ``tableConstraints`` (a composite primary key, foreign
      keys with the referred columns' fully qualified names), ``tableType`` (View, Iceberg, External for
      files, else Regular);
    - ``CreateTableProfileRequest`` per table with statistics (rows, bytes; per column distinct count and
      proportion, null proportion and count, min and max), ``path`` with ``{id}`` for the table's id and
      ``table`` its fully qualified name (the id is the one OpenMetadata answered the table's PUT with).

    - named views reading only exported sources: their view catalog as a ``CustomDatabase`` service (database
      ``default``), each view a ``CreateTableRequest`` (``tableType`` View, ``schemaDefinition`` its SQL), and
      last an ``AddLineageRequest`` per source table a view reads, with ``columnsLineage`` and ``sqlQuery``
      (``from_table``/``to_table`` name the edge's tables; ``gateway.trust.view_export``).

    Names follow OpenMetadata's fully qualified names: ``service.database.schema.table`` (``om_fqn``).
    Deterministic: sorted by name, and ``now_ms`` (default: now) is the profiles' timestamp. A source that
    cannot be listed is left out; raises nothing for it.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    refs, unavailable = catalog.available_tables(sources)
    names = sorted(set(sources) - set(unavailable)) if sources is not None else sorted(
        set(catalog.list_sources()) - set(unavailable))
    services, databases, schemas, tables, profiles = [], [], [], [], []
    for source in names:
        connector = catalog.connector(source)
        database = om_database(catalog, source)
        services.append(_om_request("CreateDatabaseServiceRequest", {
            "name": source, "serviceType": OM_SERVICE_TYPES.get(connector.kind, "CustomDatabase"),
            "description": f"federated-sql-gateway source '{source}' ({connector.kind})"}))
        databases.append(_om_request("CreateDatabaseRequest", {"name": database, "service": om_fqn(source)}))
        schemas.extend(_om_request("CreateDatabaseSchemaRequest", {"name": name, "database": om_fqn(source, database)})
                       for name in sorted({r.schema for r in refs if r.source == source}))
    for ref in sorted(refs):
        connector = catalog.connector(ref.source)
        database = om_database(catalog, ref.source)
        schema = catalog.table_schema(ref)
        key = list(connector.primary_key(ref.schema, ref.table))
        kind = catalog.table_type(ref)
        table_type = ("View" if kind == "VIEW" else "Iceberg" if connector.kind == "iceberg"
                      else "External" if connector.kind in ("parquet", "csv", "delta") else "Regular")
        entity: dict = {"name": ref.table, "tableType": table_type,
                        "databaseSchema": om_fqn(ref.source, database, ref.schema),
                        "columns": [_om_column(f, key, i + 1) for i, f in enumerate(schema)]}
        constraints = _om_constraints(catalog, ref, key)
        if constraints:
            entity["tableConstraints"] = constraints
        tables.append(_om_request("CreateTableRequest", entity))
        profile = _om_profile(catalog, ref, len(schema), now_ms)
        if profile is not None:
            profiles.append(_om_request("CreateTableProfileRequest", profile,
                                        table=om_fqn(ref.source, database, ref.schema, ref.table)))
    lineage = _om_view_requests(catalog, names, services, databases, schemas, tables)
    return services + databases + schemas + tables + profiles + lineage


def _om_view_requests(catalog: Catalog, names: list[str], services: list, databases: list, schemas: list,
                      tables: list) -> list[dict]:
    """The named views reading only the exported sources ``names``: their services, databases, schemas and
    tables appended to the lists given, and their ``AddLineageRequest`` bodies returned
    (``openmetadata_requests``)."""
    lineage: list[dict] = []
    views = exported_views(catalog, names)
    for view_catalog in sorted({v.ref.source for v in views}):
        services.append(_om_request("CreateDatabaseServiceRequest", {
            "name": view_catalog, "serviceType": OM_VIEW_SERVICE_TYPE,
            "description": f"federated-sql-gateway named views '{view_catalog}'"}))
        databases.append(_om_request("CreateDatabaseRequest", {"name": OM_DEFAULT_DATABASE,
                                                               "service": om_fqn(view_catalog)}))
        schemas.extend(_om_request("CreateDatabaseSchemaRequest", {
            "name": name, "database": om_fqn(view_catalog, OM_DEFAULT_DATABASE)})
            for name in sorted({v.ref.schema for v in views if v.ref.source == view_catalog}))
    for view in views:
        columns = [_om_column(f, [], i + 1) for i, f in enumerate(view.schema)]
        schema_fqn = om_fqn(view.ref.source, OM_DEFAULT_DATABASE, view.ref.schema)
        tables.append(_om_request("CreateTableRequest", om_view_entities(view, columns, schema_fqn)))
        lineage.extend(om_lineage_requests(catalog, view, lambda ref: om_fqn(
            ref.source, om_database(catalog, ref.source), ref.schema, ref.table), OM_PATHS["AddLineageRequest"]))
    return lineage


def post_openmetadata(requests: list[dict], url: str, token: str | None = None, timeout_s: float = 30.0) -> dict:
    """Send ``openmetadata_requests`` to an OpenMetadata server's REST API at ``url`` (e.g.
    ``http://host:8585/api``), in order: each request's ``method`` to ``url + path``, ``Authorization: Bearer
    <token>`` when a token is given (an OpenMetadata bot's JWT). A profile's ``{id}`` is the id the server
    answered its table's PUT with, and so are a lineage edge's tables' ids. Returns ``{"sent": n, "by_type":
    {type: n}}``. Raises SourceQueryError naming the request (its type and name) and the server's status and
    message when one is refused, and SourceUnavailableError when the server cannot be reached; what was sent
    before stays sent (every request is an idempotent PUT: sending again is safe)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    ids: dict[str, str] = {}
    by_type: dict[str, int] = {}
    base = url.rstrip("/")
    with httpx.Client(timeout=timeout_s, headers=headers) as client:
        for request in requests:
            path = request["path"]
            name = request.get("table") or request["entity"].get("name")
            entity = request["entity"]
            if "{id}" in path:
                path = path.replace("{id}", quote(_sent_id(ids, request["table"]), safe=""))
            if request["type"] == "AddLineageRequest":  # the edge's placeholder ids become the tables' own
                entity, name = _with_sent_ids(ids, request), f"{request['from_table']} -> {request['to_table']}"
            try:
                answer = client.request(request["method"], base + path, json=entity)
            except httpx.HTTPError as exc:
                raise SourceUnavailableError("openmetadata", f"{base} cannot be reached: {exc}") from exc
            if answer.status_code >= 400:
                raise SourceQueryError("openmetadata", f"{request['type']} {name} was refused with HTTP "
                                                       f"{answer.status_code}: {answer.text[:500]}")
            if request["type"] == "CreateTableRequest":
                ids[f"{entity['databaseSchema']}.{om_quote(entity['name'])}"] = str(answer.json()["id"])
            by_type[request["type"]] = by_type.get(request["type"], 0) + 1
    return {"sent": sum(by_type.values()), "by_type": by_type}


def _with_sent_ids(ids: dict[str, str], request: dict) -> dict:
    """An ``AddLineageRequest``'s body with its edge's placeholder ids replaced by the tables' sent ids."""
    edge = request["entity"]["edge"]
    return {"edge": {**edge, "fromEntity": {**edge["fromEntity"], "id": _sent_id(ids, request["from_table"])},
                     "toEntity": {**edge["toEntity"], "id": _sent_id(ids, request["to_table"])}}}


def _sent_id(ids: dict[str, str], table: str) -> str:
    """The id the server answered the PUT of ``table`` (a fully qualified name) with; SourceQueryError when
    that PUT was not sent."""
    if table not in ids:
        raise SourceQueryError("openmetadata", f"no id for table {table}: its PUT was not sent")
    return ids[table]
