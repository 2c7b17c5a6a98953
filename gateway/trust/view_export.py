"""Named views in catalog exports, with their column lineage (``gateway.trust.export``: DataHub;
``gateway.trust.openmetadata``: OpenMetadata).

A view's column lineage maps each of its output columns to the source columns (``source.schema.table.column``)
it is computed from, with the transformation as OpenLineage names it (``IDENTITY``, ``TRANSFORMATION``,
``AGGREGATION``; ``CONDITIONAL`` for a column read only by a CASE condition), traced through the views it
reads (``LineageBuilder.column_sources`` over ``SELECT * FROM view``). A column computed from no source
column (``count(*)``) has none.

DataHub: one dataset per view on the platform ``gateway`` (``urn:li:dataset:(urn:li:dataPlatform:gateway,
<view_catalog>.<schema>.<view>,<env>)``) with ``datasetProperties``, ``viewProperties`` (``materialized``
false, ``viewLogic`` the SQL, ``viewLanguage`` SQL), ``subTypes`` (View), ``schemaMetadata`` and
``upstreamLineage``: ``upstreams`` (each source table read, type VIEW) and ``fineGrainedLineages`` (per view
column and transformation: upstreamType FIELD_SET, downstreamType FIELD, schemaField URNs,
``transformOperation`` the transformation).

OpenMetadata: the view catalog as a database service (``CustomDatabase``) with database ``default``, each
view a ``CreateTableRequest`` (``tableType`` View, ``schemaDefinition`` the SQL), and per source table a view
reads an ``AddLineageRequest`` (PUT ``/v1/lineage``) whose ``edge.lineageDetails`` carries ``sqlQuery`` and
``columnsLineage`` (``[{fromColumns: [column FQN...], toColumn: FQN}]``). Entity ids are unknown until the
tables are sent: the request's ids are placeholders (a UUID derived from the table's FQN) that
``post_openmetadata`` replaces by the ids the server answered (``from_table``/``to_table`` name them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from catalog import Catalog, TableRef
from catalog.views import ViewDefinition
from gateway.trust.lineage import LineageBuilder

#: DataHub's platform of named views
VIEW_PLATFORM = "gateway"
#: OpenMetadata's service type of a view catalog
OM_VIEW_SERVICE_TYPE = "CustomDatabase"


def exported_views(catalog: Catalog, sources: Iterable[str] | None) -> list[ViewDefinition]:
    """The typed views that read only ``sources`` (None: every source), sorted by name."""
    allowed = set(catalog.list_sources() if sources is None else sources)
    return [v for v in catalog.views if v.query is not None and v.sources <= allowed]


def view_lineage(catalog: Catalog, view: ViewDefinition) -> dict[str, list[tuple[TableRef, str, str]]]:
    """``{view column: [(source table, source column, transformation)]}``, transformations as in the module
    docstring; columns without source columns are left out. Raises what ``LineageBuilder.column_sources``
    raises."""
    builder = LineageBuilder("gateway", "view", catalog)
    sources, _ = builder.column_sources(f"SELECT * FROM {_quoted(view.ref)}", view.schema.names)
    return {column: [(ref, name, subtype) for ref, name, _, subtype in inputs] for column, inputs in sources.items()}


def _quoted(ref: TableRef) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in (ref.source, ref.schema, ref.table))


# -- DataHub -------------------------------------------------------------------------------------------------

def datahub_view_aspects(catalog: Catalog, view: ViewDefinition, urn_of, now_ms: int) -> list[tuple[str, dict]]:
    """``[(aspectName, aspect)]`` of one view's dataset besides ``schemaMetadata`` (see the module docstring);
    ``urn_of(TableRef)`` gives a dataset's URN (``gateway.trust.export.dataset_urn``)."""
    urn = urn_of(view.ref)
    stamp = {"time": now_ms, "actor": "urn:li:corpuser:federated-sql-gateway"}
    properties: dict = {"name": view.ref.table, "qualifiedName": str(view.ref),
                        "customProperties": {"gateway_view_catalog": view.ref.source, "gateway_kind": "view",
                                             "gateway_schema": view.ref.schema}}
    if view.description:
        properties["description"] = view.description
    fine = []
    for column, inputs in view_lineage(catalog, view).items():
        by_operation: dict[str, list[str]] = {}
        for ref, name, subtype in inputs:
            by_operation.setdefault(subtype, []).append(f"urn:li:schemaField:({urn_of(ref)},{name})")
        fine.extend({"upstreamType": "FIELD_SET", "upstreams": fields, "downstreamType": "FIELD",
                     "downstreams": [f"urn:li:schemaField:({urn},{column})"], "transformOperation": operation,
                     "confidenceScore": 1.0} for operation, fields in sorted(by_operation.items()))
    upstreams = [{"auditStamp": stamp, "dataset": urn_of(ref), "type": "VIEW"} for ref in view.tables]
    return [("datasetProperties", properties),
            ("viewProperties", {"materialized": False, "viewLogic": view.sql, "viewLanguage": "SQL"}),
            ("subTypes", {"typeNames": ["View"]}),
            ("upstreamLineage", {"upstreams": upstreams, "fineGrainedLineages": fine})]


# -- OpenMetadata ------------------------------------------------------------------------------------------

def placeholder_id(fqn: str) -> str:
    """The placeholder entity id of a table in an exported ``AddLineageRequest`` (replaced when sent)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"openmetadata-table:{fqn}"))


def om_view_entities(view: ViewDefinition, columns: list[dict], schema_fqn: str) -> dict:
    """The ``CreateTableRequest`` body of a view: ``tableType`` View, ``schemaDefinition`` its SQL."""
    entity = {"name": view.ref.table, "tableType": "View", "databaseSchema": schema_fqn, "columns": columns,
              "schemaDefinition": view.sql}
    if view.description:
        entity["description"] = view.description
    return entity


def om_lineage_requests(catalog: Catalog, view: ViewDefinition, table_fqn, path: str) -> list[dict]:
    """One ``AddLineageRequest`` per source table ``view`` reads: ``{"type", "method", "path", "from_table",
    "to_table", "entity"}``; ``table_fqn(TableRef)`` gives a table's (or view's) fully qualified name."""
    to_fqn = table_fqn(view.ref)
    by_table: dict[TableRef, list[dict]] = {}
    for column, inputs in view_lineage(catalog, view).items():
        for ref in sorted({ref for ref, _, _ in inputs}):
            by_table.setdefault(ref, []).append({
                "fromColumns": sorted({f"{table_fqn(ref)}.{_om_name(name)}" for r, name, _ in inputs if r == ref}),
                "toColumn": f"{to_fqn}.{_om_name(column)}"})
    out = []
    for ref in view.tables:
        from_fqn = table_fqn(ref)
        details = {"sqlQuery": view.sql, "source": "ViewLineage", "columnsLineage": by_table.get(ref, [])}
        out.append({"type": "AddLineageRequest", "method": "PUT", "path": path, "from_table": from_fqn,
                    "to_table": to_fqn, "entity": {"edge": {
                        "fromEntity": {"id": placeholder_id(from_fqn), "type": "table", "fullyQualifiedName": from_fqn},
                        "toEntity": {"id": placeholder_id(to_fqn), "type": "table", "fullyQualifiedName": to_fqn},
                        "lineageDetails": details}}})
    return out


def _om_name(name: str) -> str:
    return f'"{name}"' if "." in name else name
