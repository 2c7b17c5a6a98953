"""The DataFusion sessions a file source's fragments run in besides the source's own: a session of one fragment
with a memory pool of its own, and the residual plan's session, where a fragment becomes a view (``connectors.files``).
Both hold the source session's table providers, so no file is listed or inferred again: ``pooled`` builds the
first (under the providers' own names), ``share_tables`` registers them in the second (under names of their own).
``plain_view_types``: DataFusion's view types as the plain ones every client knows, at the edge."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any

import pyarrow as pa
from datafusion import DataFrame, SessionContext, col
from sqlglot import exp

from connectors.arrow import datafusion as df_boundary
from connectors.base import Fragment
from connectors.files_layout import session_name


def provider_name(source: str, table: str) -> str:
    """A table's name in a session other than its source's own: plain and lower-case (DataFusion parses, and
    lower-cases, names given to ``register_table``)."""
    return "__file_" + hashlib.sha1(f"{source}\0{table}".encode()).hexdigest()[:16]


def own_tables(query: exp.Expression, tables: Collection[str], partitions: bool = False) -> list[exp.Table]:
    """The nodes of ``query`` naming one of a file source's ``tables`` (CTE names left out); with ``partitions``
    also a partition's table (``orders/x.parquet``)."""
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    return [t for t in query.find_all(exp.Table) if not t.args.get("db") and t.name not in ctes
            and (t.name in tables or (partitions and t.name.split("/", 1)[0] in tables))]


def share_tables(own: SessionContext, ctx: SessionContext, source: str, nodes: list[exp.Table]) -> None:
    """Register in ``ctx`` the table providers of ``own`` (the source's session) for the tables ``nodes`` name,
    each under ``provider_name(source, table)``, and rename the nodes to match."""
    for table in nodes:
        name = provider_name(source, table.name)
        if not ctx.table_exist(name):
            ctx.register_table(name, own.table_provider(session_name(table.name)))
        table.set("this", exp.to_identifier(name, quoted=True))


def pooled(own: SessionContext, fragment: Fragment, store: Any, tables: Collection[str], dialect: str) -> DataFrame:
    """``fragment`` planned in a session of its own with a memory pool of ``fragment.memory_bytes`` (spilling to
    ``fragment.spill_path``), holding the table providers of ``own`` (the source's session) for the ``tables`` it
    reads, under the names they have there: no file is listed or inferred again, and ``fragment.sql`` runs as
    planned (renaming its tables and generating the SQL again took 6-7 ms of TPC-H Q2's 150); with
    ``fragment.late_materialization``, its Parquet scans decode other columns only for the rows their filters
    keep; ``fragment.key_tables`` are registered under their names (a one-column table ``k`` each, the keys its
    semi-join restrictions read). ``store``: the source's ``ObjectStore`` (its objects made readable in the new
    session) or None.
    Building it takes about 1 ms, but its run reads again the files' footers that the shared session caches:
    measured end to end, an aggregation over 5 small files took 7.8 ms instead of 5.8 ms (the engine keeps
    small inputs shared)."""
    ctx = df_boundary.session(memory_bytes=fragment.memory_bytes, spill_path=fragment.spill_path,
                              broadcast_builds=True, late_materialization=fragment.late_materialization)
    if store is not None:
        store.register(ctx)
    query = fragment.ast if fragment.ast is not None else exp.maybe_parse(fragment.sql, dialect=dialect)
    for name in sorted({t.name for t in own_tables(query, tables, partitions=True)}):
        ctx.register_table(session_name(name), own.table_provider(session_name(name)))
    for name, keys in fragment.key_tables.items():
        ctx.register_record_batches(name, [[pa.record_batch([keys], names=["k"])]])
    return ctx.sql(fragment.sql)


def conformed_view(df: DataFrame, actual: pa.Schema, schema: pa.Schema) -> DataFrame:
    """``df`` (whose schema is ``actual``, with the names of ``schema``) with its columns cast to ``schema``'s
    types where they differ."""
    casts = {f.name: f.type for f, a in zip(schema, actual, strict=True) if f.type != a.type}
    if not casts:
        return df
    # quoted: a join group's outputs are named "alias.column", which DataFusion would read as qualified
    columns = [col('"' + f.name.replace('"', '""') + '"') for f in schema]
    return df.select(*((c.cast(casts[f.name]) if f.name in casts else c).alias(f.name)
                       for c, f in zip(columns, schema, strict=True)))


_PLAIN_TYPES = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}


def plain_view_types(schema: pa.Schema) -> pa.Schema:
    """``schema`` with DataFusion's ``utf8_view``/``binary_view`` columns as plain ``utf8``/``binary`` (also as list
    items): the types the catalog, the planner and every client (ADBC, JDBC, pandas) use."""

    def plain(t: pa.DataType) -> pa.DataType:
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            item = t.value_field.with_type(plain(t.value_type))
            return pa.list_(item) if pa.types.is_list(t) else pa.large_list(item)
        return _PLAIN_TYPES.get(t, t)

    return pa.schema([f.with_type(plain(f.type)) for f in schema], metadata=schema.metadata)
