"""OpenLineage run events of queries (spec 2-0-2, facets from the openlineage-python package).

A query is one job run: START when it begins reading, COMPLETE or FAIL when it ends. The job is
``<namespace>`` / ``<job_prefix>.<fingerprint>`` where the fingerprint is the first 16 hex digits of the
SHA-256 of the query's SQL with its literals replaced by ``?`` (one job per query shape). Inputs are the
tables read, named by OpenLineage's dataset naming (``openlineage.client.naming``): PostgreSQL
``postgres://host:port`` + ``db.schema.table``, MySQL/MariaDB ``mysql://host:port`` + ``db.table``, files
``file`` + the absolute path; SQLite (no convention) ``sqlite`` + ``<path>.<table>``. Each input carries the
schema facet and, on COMPLETE/FAIL, the input-statistics facet (rows and Arrow bytes read). The output is the
answer itself (``<namespace>`` / ``<job>.result``) with its schema and the **column-lineage facet**: each
output column mapped to the source columns it was computed from, with the transformation type (DIRECT
IDENTITY / TRANSFORMATION / AGGREGATION; INDIRECT CONDITIONAL for CASE conditions), plus dataset-wide
INDIRECT FILTER / JOIN / GROUP_BY / SORT fields. The run carries the gateway's query id and the freshness
manifest (``gatewayManifest`` run facet), the SQL job facet, and the error message on FAIL.

Column lineage is computed with ``sqlglot.lineage`` over the query with every named view expanded and every
table name resolved in the catalog to ``source.schema.table`` (a query over a view maps to the source
columns under it). Indirect fields are read from each SELECT scope whose sources are tables
(a filter inside a derived table counts; one over a derived table's outputs is not traced further).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from urllib.parse import urlsplit

import attr
import pyarrow as pa
import sqlglot
from openlineage.client import event_v2 as ol
from openlineage.client.generated import (
    column_lineage_dataset,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    schema_dataset,
    sql_job,
)
from openlineage.client.generated.base import DatasetFacet, RunFacet
from openlineage.client.naming import dataset as naming
from sqlglot import exp
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from catalog import Catalog, TableRef
from catalog.drift import SchemaChange
from gateway.metrics import QueryStats
from gateway.trust.manifest import Manifest
from planner import FederatedPlan
from planner.views import expand_views

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/federated-sql-gateway/gateway"
MANIFEST_FACET_SCHEMA = "https://federated-sql-gateway.invalid/spec/GatewayManifestRunFacet.json"
SCHEMA_CHANGE_FACET_SCHEMA = "https://federated-sql-gateway.invalid/spec/GatewaySchemaChangeDatasetFacet.json"


@attr.define
class GatewayManifestRunFacet(RunFacet):
    """The gateway's query id and the answer's freshness manifest (``gateway.trust.manifest``)."""

    queryId: str  # camelCase, as OpenLineage facets spell their members
    manifest: dict

    @staticmethod
    def _get_schema() -> str:
        return MANIFEST_FACET_SCHEMA


@attr.define
class GatewaySchemaChangeDatasetFacet(DatasetFacet):
    """A schema change the gateway's catalog refresh found (``catalog.drift.SchemaChange.to_dict``)."""

    change: dict

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_CHANGE_FACET_SCHEMA


def query_fingerprint(sql: str, dialect: str = "postgres") -> str:
    """16 hex digits identifying the query's shape: its SQL with literals replaced by ``?``, normalized by
    sqlglot (the text itself when it does not parse)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        tree = tree.transform(lambda n: exp.Placeholder() if isinstance(n, exp.Literal) else n)
        text = tree.sql(dialect=dialect, normalize=True)
    except sqlglot.errors.SqlglotError:
        text = sql
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_id(query_id: str) -> str:
    """The OpenLineage run id (a UUID) of a gateway query id: the id itself when it is a UUID's hex."""
    try:
        return str(uuid.UUID(query_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gateway-query:{query_id}"))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _host_port(uri: str, default_port: int) -> tuple[str, str, str]:
    parts = urlsplit(uri)
    return parts.hostname or "localhost", str(parts.port or default_port), parts.path.lstrip("/") or ""


class LineageBuilder:
    """Builds the run events of queries over ``catalog`` (see the module docstring)."""

    def __init__(self, namespace: str, job_prefix: str, catalog: Catalog, dialect: str = "postgres") -> None:
        self.namespace = namespace
        self.job_prefix = job_prefix
        self.catalog = catalog
        self.dialect = dialect

    # -- datasets ----------------------------------------------------------------------------------------

    def dataset_name(self, ref: TableRef) -> tuple[str, str]:
        """``(namespace, name)`` of a table by OpenLineage's naming conventions for its source kind."""
        connector = self.catalog.connector(ref.source)
        options = connector.options
        if connector.kind == "postgresql":
            host, port, db = _host_port(options.get("uri") or "", 5432)
            named = naming.Postgres(host, port, db or "postgres", ref.schema, ref.table)
        elif connector.kind == "mysql":
            host, port, _ = _host_port(options.get("uri") or "", 3306)
            named = naming.MySQL(host, port, ref.schema, ref.table)
        elif connector.kind in ("parquet", "csv"):
            try:
                location = connector._location(ref.table)  # the table's file or folder
                path = str(location.resolve())
            except Exception:
                path = f"{options.get('path') or ref.source}/{ref.table}"
            named = naming.LocalFileSystem(path)
        elif connector.kind == "sqlite":
            return "sqlite", f"{options.get('path') or ref.source}.{ref.table}"
        else:
            return f"gateway://{ref.source}", f"{ref.schema}.{ref.table}"
        return named.get_namespace(), named.get_name()

    def _schema_facet(self, schema: pa.Schema) -> schema_dataset.SchemaDatasetFacet:
        return schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=f.name, type=str(f.type), ordinal_position=i + 1)
            for i, f in enumerate(schema)
        ], producer=PRODUCER)

    def _inputs(self, plan: FederatedPlan, manifest: Manifest | None, with_stats: bool) -> list[ol.InputDataset]:
        reads = {t.table: t for t in manifest.tables} if manifest else {}
        out = []
        for name in sorted({t for f in plan.fragments for t in f.tables}):
            ref = TableRef(*name.split(".", 2))
            namespace, dataset = self.dataset_name(ref)
            facets = {"schema": self._schema_facet(self.catalog.table_schema(ref))}
            input_facets = {}
            read = reads.get(name)
            if with_stats and read is not None and read.rows is not None:
                input_facets["inputStatistics"] = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                    rowCount=read.rows, size=read.bytes, producer=PRODUCER)
            out.append(ol.InputDataset(namespace, dataset, facets=facets, inputFacets=input_facets))
        return out

    # -- events --------------------------------------------------------------------------------------------

    def _job(self, sql: str) -> ol.Job:
        return ol.Job(self.namespace, f"{self.job_prefix}.{query_fingerprint(sql, self.dialect)}", facets={
            "sql": sql_job.SQLJobFacet(query=sql, dialect=self.dialect, producer=PRODUCER),
            "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="FEDERATED_SQL_GATEWAY",
                                                    jobType="QUERY", producer=PRODUCER),
        })

    def _event(self, state: ol.RunState, stats: QueryStats, plan: FederatedPlan, manifest: Manifest,
               done: bool) -> ol.RunEvent:
        """Built on the emitter's thread: ``manifest`` is a copy taken when the event was queued (START) or
        the finished one (COMPLETE/FAIL)."""
        job = self._job(stats.sql)
        facets: dict = {"gatewayManifest": GatewayManifestRunFacet(stats.query_id, manifest.to_dict(),
                                                                   producer=PRODUCER)}
        if state == ol.RunState.FAIL:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=stats.error or stats.status, programmingLanguage="SQL", producer=PRODUCER)
        output = ol.OutputDataset(self.namespace, f"{job.name}.result", facets={
            "schema": self._schema_facet(plan.schema),
            "columnLineage": self.column_lineage(stats.sql, plan),
        })
        return ol.RunEvent(eventType=state, eventTime=_now(), run=ol.Run(run_id(stats.query_id), facets=facets),
                           job=job, producer=PRODUCER, inputs=self._inputs(plan, manifest, done),
                           outputs=[output])

    def start_event(self, stats: QueryStats, plan: FederatedPlan, manifest: Manifest) -> ol.RunEvent:
        """The START event of a query about to read ``plan``."""
        return self._event(ol.RunState.START, stats, plan, manifest, done=False)

    def end_event(self, stats: QueryStats, plan: FederatedPlan, manifest: Manifest) -> ol.RunEvent:
        """COMPLETE (``stats.status == "ok"``) or FAIL (error, cancelled, timeout) of a query."""
        state = ol.RunState.COMPLETE if stats.status == "ok" else ol.RunState.FAIL
        return self._event(state, stats, plan, manifest, done=True)

    def dataset_event(self, change: SchemaChange) -> ol.DatasetEvent:
        """An OpenLineage dataset event announcing a schema change: the table with its new schema facet (no
        facet for a dropped table) and the change itself as a ``gatewaySchemaChange`` dataset facet."""
        ref = TableRef(change.source, change.schema, change.table)
        namespace, name = self.dataset_name(ref)
        facets: dict = {"gatewaySchemaChange": GatewaySchemaChangeDatasetFacet(change.to_dict(), producer=PRODUCER)}
        if change.kind != "table_dropped":
            try:
                facets["schema"] = self._schema_facet(self.catalog.table_schema(ref))
            except Exception:
                pass
        return ol.DatasetEvent(eventTime=_now(), producer=PRODUCER,
                               dataset=ol.StaticDataset(namespace, name, facets=facets))

    # -- column lineage ------------------------------------------------------------------------------------

    def resolved(self, sql: str) -> tuple[exp.Expression, dict]:
        """The query with every named view expanded (``planner.views``), every table named
        ``source.schema.table``, and the sqlglot schema of those tables (``{source: {schema: {table: {column:
        type}}}}``). CTE names are left alone."""
        tree = sqlglot.parse_one(sql, read=self.dialect)
        expand_views(tree, self.catalog)  # a named view is traced through to the source columns it reads
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        schema: dict = {}
        for table in tree.find_all(exp.Table):
            if not table.name or (not table.db and table.name in ctes):
                continue
            parts = [p for p in (table.catalog, table.db, table.name) if p]
            ref = self.catalog.resolve(parts)
            table.set("catalog", exp.to_identifier(ref.source))
            table.set("db", exp.to_identifier(ref.schema))
            table.set("this", exp.to_identifier(ref.table))
            columns = {f.name: "text" for f in self.catalog.table_schema(ref)}
            schema.setdefault(ref.source, {}).setdefault(ref.schema, {})[ref.table] = columns
        return tree, schema

    def column_sources(self, sql: str, names: list[str]) -> tuple[dict[str, list[tuple]], exp.Expression]:
        """Each output column of ``sql`` (named by position by ``names``) -> the source columns it is computed
        from, ``[(TableRef, column, kind, subtype)]`` sorted (kind ``DIRECT`` with subtype ``IDENTITY`` /
        ``TRANSFORMATION`` / ``AGGREGATION``, or ``INDIRECT`` ``CONDITIONAL`` for a CASE condition), named
        views traced through to their sources; and the qualified query. Raises what sqlglot's ``qualify`` and
        ``lineage`` raise, GatewayError for a name the catalog does not resolve."""
        tree, schema = self.resolved(sql)
        qualified = qualify(tree.copy(), schema=schema, dialect=self.dialect, validate_qualify_columns=False,
                            quote_identifiers=False, identify=False)
        selects = qualified.selects if isinstance(qualified, exp.Query) else []
        out: dict[str, list[tuple]] = {}
        for position, out_name in enumerate(names[:len(selects)]):
            node = lineage(selects[position].alias_or_name, qualified, schema=schema, dialect=self.dialect)
            inputs = self._direct(node)
            if inputs:
                out[out_name] = inputs
        return out, qualified

    def column_lineage(self, sql: str, plan: FederatedPlan) -> column_lineage_dataset.ColumnLineageDatasetFacet:
        """The column-lineage facet of the answer's columns (``plan.schema`` names, by position)."""
        fields: dict = {}
        indirect: list = []
        try:
            sources, qualified = self.column_sources(sql, plan.schema.names)
            for out_name, inputs in sources.items():
                fields[out_name] = column_lineage_dataset.Fields(inputFields=[
                    self._input_field(exp.table_(ref.table, db=ref.schema, catalog=ref.source), column, kind, subtype)
                    for ref, column, kind, subtype in inputs])
            indirect = self._indirect(qualified)
        except Exception as exc:  # lineage is best effort: an event without it beats no event
            log.info("column lineage not computed", extra={"error": str(exc)[:300]})
        return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, dataset=indirect, producer=PRODUCER)

    def _input_field(self, table: exp.Table, column: str, kind: str, subtype: str) -> column_lineage_dataset.InputField:
        namespace, name = self.dataset_name(TableRef(table.catalog, table.db, table.name))
        return column_lineage_dataset.InputField(namespace, name, column, transformations=[
            column_lineage_dataset.Transformation(type=kind, subtype=subtype)])

    def _direct(self, root: Node) -> list[tuple]:
        """Source columns of one output column with their transformation, merged over every path:
        ``[(TableRef, column, kind, subtype)]``, sorted."""
        found: dict[tuple, set[tuple[str, str]]] = {}

        def visit(node: Node, kinds: set[tuple[str, str]]) -> None:
            if not node.downstream and isinstance(node.source, exp.Table) and isinstance(node.expression, exp.Table):
                key = (node.source.catalog, node.source.db, node.source.name, node.name.split(".")[-1])
                found.setdefault(key, set()).update(kinds)
                return
            for child in node.downstream:
                visit(child, _combine(kinds, _classify(node.expression, child.name)))

        visit(root, {("DIRECT", "IDENTITY")})
        return [(TableRef(catalog, db, table), column, kind, subtype)
                for (catalog, db, table, column), kinds in sorted(found.items()) for kind, subtype in sorted(kinds)]

    def _indirect(self, tree: exp.Expression) -> list:
        """Dataset-wide INDIRECT fields: columns of source tables in WHERE, JOIN ... ON, GROUP BY, ORDER BY."""
        seen: set[tuple] = set()
        out = []
        for scope in traverse_scope(tree):
            select = scope.expression
            if not isinstance(select, exp.Select):
                continue
            parts = [("FILTER", select.args.get("where")), ("GROUP_BY", select.args.get("group")),
                     ("SORT", select.args.get("order")), ("FILTER", select.args.get("having"))]
            parts += [("JOIN", j.args.get("on")) for j in select.args.get("joins") or []]
            for subtype, clause in parts:
                if clause is None:
                    continue
                for column in clause.find_all(exp.Column):
                    source = scope.sources.get(column.table)
                    if not isinstance(source, exp.Table):
                        continue
                    key = (source.catalog, source.db, source.name, column.name, subtype)
                    if key not in seen:
                        seen.add(key)
                        out.append(self._input_field(source, column.name, "INDIRECT", subtype))
        return out


_RANK = {"IDENTITY": 0, "TRANSFORMATION": 1, "AGGREGATION": 2}


def _combine(outer: set[tuple[str, str]], inner: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Transformations along a path: INDIRECT anywhere stays INDIRECT; otherwise the strongest DIRECT subtype
    (AGGREGATION over TRANSFORMATION over IDENTITY)."""
    out = set()
    for a in outer:
        for b in inner:
            if "INDIRECT" in (a[0], b[0]):
                out.add(a if a[0] == "INDIRECT" else b)
            else:
                out.add(("DIRECT", max(a[1], b[1], key=_RANK.__getitem__)))
    return out


def _classify(projection: exp.Expression, child: str) -> set[tuple[str, str]]:
    """How the column ``child`` (``alias.column`` or ``column``) is used in ``projection``: identity when the
    projection is that column, aggregation under an aggregate function, conditional (INDIRECT) in a CASE/IF
    condition, else transformation."""
    body = projection.unalias() if isinstance(projection, exp.Alias) else projection
    table, _, name = child.rpartition(".")
    kinds: set[tuple[str, str]] = set()
    for column in body.find_all(exp.Column) if not isinstance(body, exp.Column) else [body]:
        if column.name != name or (table and column.table and column.table != table):
            continue
        if column is body:
            kinds.add(("DIRECT", "IDENTITY"))
            continue
        conditional = aggregated = False
        node: exp.Expression = column
        while node is not body and node.parent is not None:
            parent = node.parent
            if isinstance(parent, exp.If) and node.arg_key == "this":
                conditional = True
            if isinstance(parent, exp.AggFunc):
                aggregated = True
            node = parent
        if conditional:
            kinds.add(("INDIRECT", "CONDITIONAL"))
        else:
            kinds.add(("DIRECT", "AGGREGATION" if aggregated or isinstance(body, exp.AggFunc) else "TRANSFORMATION"))
    return kinds or {("DIRECT", "TRANSFORMATION")}
