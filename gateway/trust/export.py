"""Catalog export to metadata platforms: DataHub metadata change proposals (``gateway catalog export --format
datahub``), the JSON array that DataHub's ``file`` ingestion source reads (``datahub ingest`` with
``source: {type: file, config: {path: ...}}``).

One dataset per table, ``urn:li:dataset:(urn:li:dataPlatform:<platform>,<source>.<schema>.<table>,<env>)``
(the gateway's source name plays DataHub's platform instance, so two PostgreSQL sources never collide), with
the aspects:

- ``datasetProperties``: name, qualified name, and custom properties (the gateway source, its kind);
- ``schemaMetadata``: every column with its Arrow type (``nativeDataType``) mapped to DataHub's type
  classes, nullability, whether it is part of the primary key; primary keys; foreign keys (to the referenced
  table's dataset and field URNs);
- ``datasetProfile``: rows, columns, and per column distinct count, null proportion, min and max, as the
  catalog's statistics know them.

Platforms: postgresql -> postgres, mysql -> mysql, sqlite -> sqlite, parquet/csv -> file, named views ->
gateway, others -> the kind.

Named views (``[[views]]``) are datasets too, with ``viewProperties`` (the SQL), ``subTypes`` and an
``upstreamLineage`` aspect carrying their column lineage (``fineGrainedLineages``): ``gateway.trust
.view_export``.

OpenMetadata (``gateway catalog export --format openmetadata``): ``gateway.trust.openmetadata``, whose public
names this module re-exports.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import pyarrow as pa

from catalog import Catalog, TableRef
from catalog.statistics import statistics_as_dict
from gateway.trust.openmetadata import (  # noqa: F401 - importable here as before
    OM_DEFAULT_DATABASE,
    OM_PATHS,
    OM_SERVICE_TYPES,
    om_column_type,
    om_database,
    om_fqn,
    om_quote,
    openmetadata_requests,
    post_openmetadata,
)
from gateway.trust.view_export import VIEW_PLATFORM, datahub_view_aspects, exported_views

PLATFORMS = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite", "parquet": "file", "csv": "file",
             "view": VIEW_PLATFORM}


def dataset_urn(catalog: Catalog, ref: TableRef, env: str = "PROD") -> str:
    """The DataHub dataset URN of a table."""
    platform = PLATFORMS.get(catalog.connector(ref.source).kind, catalog.connector(ref.source).kind)
    return f"urn:li:dataset:(urn:li:dataPlatform:{platform},{ref.source}.{ref.schema}.{ref.table},{env})"


def _field_type(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "BooleanType"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "NumberType"
    if pa.types.is_date(kind):
        return "DateType"
    if pa.types.is_timestamp(kind) or pa.types.is_time(kind):
        return "TimeType"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "StringType"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "BytesType"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return "ArrayType"
    if pa.types.is_struct(kind):
        return "RecordType"
    return "NullType"


def _mcp(urn: str, aspect_name: str, aspect: dict) -> dict:
    return {"entityType": "dataset", "entityUrn": urn, "changeType": "UPSERT", "aspectName": aspect_name,
            "aspect": {"json": aspect}}


def _schema_metadata(catalog: Catalog, ref: TableRef, urn: str, env: str, now_ms: int) -> dict:
    schema = catalog.table_schema(ref)
    connector = catalog.connector(ref.source)
    key = connector.primary_key(ref.schema, ref.table)
    platform = urn.split(",", 1)[0].removeprefix("urn:li:dataset:(")
    foreign = []
    for fk in catalog.foreign_keys(ref):
        parent = TableRef(ref.source, fk.ref_schema, fk.ref_table)
        parent_urn = dataset_urn(catalog, parent, env)
        foreign.append({
            "name": fk.name or f"{ref.table}_{'_'.join(fk.columns)}_fkey", "foreignDataset": parent_urn,
            "foreignFields": [f"urn:li:schemaField:({parent_urn},{c})" for c in fk.ref_columns],
            "sourceFields": [f"urn:li:schemaField:({urn},{c})" for c in fk.columns]})
    stamp = {"time": now_ms, "actor": "urn:li:corpuser:federated-sql-gateway"}
    return {
        "schemaName": f"{ref.source}.{ref.schema}.{ref.table}", "platform": platform, "version": 0,
        "created": stamp, "lastModified": stamp, "hash": "",
        "platformSchema": {"com.linkedin.schema.OtherSchema": {"rawSchema": str(schema)}},
        "fields": [{"fieldPath": f.name, "nullable": bool(f.nullable), "nativeDataType": str(f.type),
                    "type": {"type": {f"com.linkedin.schema.{_field_type(f.type)}": {}}},
                    "recursive": False, "isPartOfKey": f.name in key} for f in schema],
        **({"primaryKeys": key} if key else {}),
        **({"foreignKeys": foreign} if foreign else {}),
    }


def _profile(catalog: Catalog, ref: TableRef, columns: int, now_ms: int) -> dict | None:
    stats = statistics_as_dict(catalog.statistics(ref))
    if stats["rows"] is None and not stats["columns"]:
        return None
    profile: dict = {"timestampMillis": now_ms, "columnCount": columns, "fieldProfiles": []}
    if stats["rows"] is not None:
        profile["rowCount"] = int(stats["rows"])
    for name, c in stats["columns"].items():
        field: dict = {"fieldPath": name}
        if c["distinct"] is not None:
            field["uniqueCount"] = int(c["distinct"])
        if c["null_fraction"] is not None:
            field["nullProportion"] = float(c["null_fraction"])
        for key in ("min", "max"):
            if c[key] is not None:
                field[key] = str(c[key])
        profile["fieldProfiles"].append(field)
    return profile


def datahub_mcps(catalog: Catalog, sources: Iterable[str] | None = None, env: str = "PROD") -> list[dict]:
    """Metadata change proposals (JSON-ready dicts) for every table of ``sources`` (default: all), then every
    named view reading only those sources (with its column lineage). A source that cannot be listed is left
    out (its tables are unknown); raises nothing for it."""
    now_ms = int(time.time() * 1000)
    refs, _ = catalog.available_tables(sources)
    out = []
    for ref in sorted(refs):
        urn = dataset_urn(catalog, ref, env)
        connector = catalog.connector(ref.source)
        out.append(_mcp(urn, "datasetProperties", {
            "name": ref.table, "qualifiedName": str(ref),
            "customProperties": {"gateway_source": ref.source, "gateway_kind": connector.kind,
                                 "gateway_schema": ref.schema}}))
        out.append(_mcp(urn, "schemaMetadata", _schema_metadata(catalog, ref, urn, env, now_ms)))
        profile = _profile(catalog, ref, len(catalog.table_schema(ref)), now_ms)
        if profile is not None:
            out.append(_mcp(urn, "datasetProfile", profile))
    for view in exported_views(catalog, sources):
        urn = dataset_urn(catalog, view.ref, env)
        aspects = datahub_view_aspects(catalog, view, lambda ref: dataset_urn(catalog, ref, env), now_ms)
        out.extend(_mcp(urn, name, aspect) for name, aspect in aspects[:1])  # datasetProperties first
        out.append(_mcp(urn, "schemaMetadata", _schema_metadata(catalog, view.ref, urn, env, now_ms)))
        out.extend(_mcp(urn, name, aspect) for name, aspect in aspects[1:])
    return out
