"""Flight SQL metadata commands answered from the catalog's in-memory copy.

Each ``Command*`` maps to a result schema (``flight_server.schemas``, exactly as the spec gives) and a
table built from the catalog. Filter patterns are SQL LIKE patterns (``%``, ``_``, backslash escape);
results are ordered as the spec requires. A source that cannot be listed is left out (and logged), so one
failing source never breaks a client's catalog browser. Every answer lists only the sources the caller
may use (``scope["allowed_sources"]``), and the view catalogs of the named views over those sources only
(``table_type`` ``VIEW``). Annotated table schemas (GetTables ``include_schema``) are
serialized once per catalog version.
"""

from __future__ import annotations

import logging
import re

import pyarrow as pa

from catalog import Catalog, TableRef
from flight_server import schemas
from flight_server.sql_info import (
    UpdateDeleteRules,
    XdbcDataType,
    XdbcDatetimeSubcode,
    default_sql_info,
    sql_info_table,
)
from gateway import __version__
from gateway.errors import GatewayError, UnimplementedError
from gateway.execution.engine import QueryEngine
from planner.dialects import sqlglot_type

log = logging.getLogger(__name__)

TABLE_TYPES = ["TABLE", "VIEW"]


def like_to_regex(pattern: str | None) -> re.Pattern | None:
    """A compiled regex for a SQL LIKE pattern (None matches everything)."""
    if pattern is None:
        return None
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _matches(regex: re.Pattern | None, value: str) -> bool:
    return regex is None or regex.match(value) is not None


class MetadataService:
    """Schemas and result tables of the Flight SQL metadata commands."""

    def __init__(self, gateway: QueryEngine) -> None:
        self.gateway = gateway
        self.catalog = gateway.catalog
        self.sql_info = default_sql_info("federated-sql-gateway", __version__, pa.__version__)
        self._schema_bytes: dict[TableRef, bytes] = {}
        self._schema_bytes_version = -1
        self._sources: frozenset[str] | None = None  # of the call being answered (set by table_of)

    _SCHEMAS = {
        "CommandGetSqlInfo": schemas.SQL_INFO_SCHEMA,
        "CommandGetXdbcTypeInfo": schemas.XDBC_TYPE_INFO_SCHEMA,
        "CommandGetCatalogs": schemas.CATALOGS_SCHEMA,
        "CommandGetDbSchemas": schemas.DB_SCHEMAS_SCHEMA,
        "CommandGetTableTypes": schemas.TABLE_TYPES_SCHEMA,
        "CommandGetPrimaryKeys": schemas.PRIMARY_KEYS_SCHEMA,
        "CommandGetImportedKeys": schemas.KEYS_SCHEMA,
        "CommandGetExportedKeys": schemas.KEYS_SCHEMA,
        "CommandGetCrossReference": schemas.KEYS_SCHEMA,
    }

    def schema_of(self, command) -> pa.Schema:
        """The result schema of a metadata command. Raises UnimplementedError for other commands."""
        name = type(command).DESCRIPTOR.name
        if name == "CommandGetTables":
            return schemas.TABLES_SCHEMA_WITH_SCHEMA if command.include_schema else schemas.TABLES_SCHEMA
        if name in self._SCHEMAS:
            return self._SCHEMAS[name]
        raise UnimplementedError(f"{name} is not supported by this server")

    def table_of(self, command, scope: dict | None = None) -> pa.Table:
        """The result of a metadata command, with exactly ``schema_of(command)``, as ``scope`` sees it."""
        name = type(command).DESCRIPTOR.name
        handler = getattr(self, f"_{name}", None)
        if handler is None:
            raise UnimplementedError(f"{name} is not supported by this server")
        allowed = (scope or {}).get("allowed_sources")
        table = handler(command, None if allowed is None else frozenset(allowed))
        return table.cast(self.schema_of(command)) if table.schema != self.schema_of(command) else table

    def sources(self, allowed: frozenset[str] | None) -> list[str]:
        """The catalogs the caller sees: its sources and the view catalogs of views over them only."""
        return self.scoped(allowed).list_catalogs()

    def scoped(self, allowed: frozenset[str] | None) -> Catalog:
        """The catalog as a caller restricted to ``allowed`` sees it (named views over those sources only)."""
        return self.catalog if allowed is None else self.catalog.view(allowed)

    # -- commands --------------------------------------------------------------------------------------

    def _CommandGetSqlInfo(self, command, allowed) -> pa.Table:
        return sql_info_table(self.sql_info, list(command.info))

    def _CommandGetCatalogs(self, command, allowed) -> pa.Table:
        return pa.table({"catalog_name": self.sources(allowed)}, schema=schemas.CATALOGS_SCHEMA)

    def _schemas(self, catalog: str | None, pattern: str | None, allowed) -> list[tuple[str, str]]:
        regex = like_to_regex(pattern)
        rows = []
        for source in self.sources(allowed):
            if catalog is not None and source != catalog:
                continue
            try:
                rows.extend((source, s) for s in self.scoped(allowed).list_schemas(source) if _matches(regex, s))
            except GatewayError as exc:
                log.warning("metadata: source skipped", extra={"source": source, "error": exc.message})
        return sorted(rows)

    def _CommandGetDbSchemas(self, command, allowed) -> pa.Table:
        catalog = command.catalog if command.HasField("catalog") else None
        pattern = command.db_schema_filter_pattern if command.HasField("db_schema_filter_pattern") else None
        rows = self._schemas(catalog, pattern, allowed)
        return pa.table(
            {"catalog_name": [r[0] for r in rows], "db_schema_name": [r[1] for r in rows]},
            schema=schemas.DB_SCHEMAS_SCHEMA,
        )

    def _CommandGetTables(self, command, allowed) -> pa.Table:
        catalog = command.catalog if command.HasField("catalog") else None
        schema_pattern = command.db_schema_filter_pattern if command.HasField("db_schema_filter_pattern") else None
        table_regex = like_to_regex(
            command.table_name_filter_pattern if command.HasField("table_name_filter_pattern") else None
        )
        types = set(command.table_types)
        if command.include_schema and self._schema_bytes_version != self.catalog.version:
            self._schema_bytes, self._schema_bytes_version = {}, self.catalog.version
        columns: dict[str, list] = {name: [] for name in (
            "catalog_name", "db_schema_name", "table_name", "table_type", "table_schema")}
        for source, schema in self._schemas(catalog, schema_pattern, allowed):  # sorted
            try:
                for table in self.scoped(allowed).list_tables(source, schema):  # sorted
                    if table_regex is not None and table_regex.match(table) is None:
                        continue
                    ref = TableRef(source, schema, table)
                    table_type = self.catalog.table_type(ref)
                    if types and table_type not in types:
                        continue
                    if command.include_schema:
                        serialized = self._schema_bytes.get(ref)
                        if serialized is None:
                            serialized = self._annotated_schema(ref).serialize().to_pybytes()
                            self._schema_bytes[ref] = serialized
                        columns["table_schema"].append(serialized)
                    columns["catalog_name"].append(source)
                    columns["db_schema_name"].append(schema)
                    columns["table_name"].append(table)
                    columns["table_type"].append(table_type)
            except GatewayError as exc:
                log.warning("metadata: source skipped", extra={"source": source, "error": exc.message})
        # (catalog, schema, table) order comes from the sorted listings; one type per table
        target = schemas.TABLES_SCHEMA_WITH_SCHEMA if command.include_schema else schemas.TABLES_SCHEMA
        return pa.table({f.name: columns[f.name] for f in target}, schema=target)

    def _annotated_schema(self, ref: TableRef) -> pa.Schema:
        """The table's Arrow schema with the spec's ARROW:FLIGHT:SQL:* column metadata."""
        fields = []
        for f in self.catalog.table_schema(ref):
            precision = f.type.precision if pa.types.is_decimal(f.type) else None
            scale = f.type.scale if pa.types.is_decimal(f.type) else None
            metadata = schemas.column_metadata(
                ref.source, ref.schema, ref.table, sqlglot_type(f.type).split("(")[0],
                precision=precision, scale=scale, case_sensitive=pa.types.is_string(f.type),
                read_only=True, searchable=True,
            )
            # the spec's text says DB_SCHEMA_NAME; the C++, Java and Go implementations read SCHEMA_NAME
            metadata[b"ARROW:FLIGHT:SQL:SCHEMA_NAME"] = ref.schema.encode()
            fields.append(pa.field(f.name, f.type, f.nullable, metadata=metadata))
        return pa.schema(fields)

    def _CommandGetTableTypes(self, command, allowed) -> pa.Table:
        return pa.table({"table_type": TABLE_TYPES}, schema=schemas.TABLE_TYPES_SCHEMA)

    def _tables_named(self, catalog: str | None, db_schema: str | None, table: str, allowed) -> list[TableRef]:
        """The tables called exactly ``table`` (catalog/schema unset = any) that the caller may see."""
        refs = []
        for source, schema in self._schemas(catalog, None, allowed):
            if db_schema is not None and schema != db_schema:
                continue
            try:
                if table in self.catalog.list_tables(source, schema):
                    refs.append(TableRef(source, schema, table))
            except GatewayError as exc:
                log.warning("metadata: source skipped", extra={"source": source, "error": exc.message})
        return refs

    def _CommandGetPrimaryKeys(self, command, allowed) -> pa.Table:
        rows = []
        for ref in self._tables_named(_opt(command, "catalog"), _opt(command, "db_schema"), command.table, allowed):
            keys = self.catalog.connector(ref.source).primary_key(ref.schema, ref.table)
            rows.extend(
                {"catalog_name": ref.source, "db_schema_name": ref.schema, "table_name": ref.table,
                 "column_name": col, "key_name": None, "key_sequence": i + 1}
                for i, col in enumerate(keys)
            )
        return pa.Table.from_pylist(rows, schema=schemas.PRIMARY_KEYS_SCHEMA)

    def _key_rows(self, fk_ref: TableRef, keys) -> list[dict]:
        rows = []
        for key in keys:
            for i, (column, ref_column) in enumerate(zip(key.columns, key.ref_columns, strict=True)):
                rows.append({
                    "pk_catalog_name": fk_ref.source, "pk_db_schema_name": key.ref_schema,
                    "pk_table_name": key.ref_table, "pk_column_name": ref_column,
                    "fk_catalog_name": fk_ref.source, "fk_db_schema_name": fk_ref.schema,
                    "fk_table_name": fk_ref.table, "fk_column_name": column, "key_sequence": i + 1,
                    "fk_key_name": key.name, "pk_key_name": None,
                    "update_rule": _RULES.get(key.update_rule, UpdateDeleteRules.NO_ACTION),
                    "delete_rule": _RULES.get(key.delete_rule, UpdateDeleteRules.NO_ACTION),
                })
        return rows

    @staticmethod
    def _keys_table(rows: list[dict], side: str) -> pa.Table:
        rows.sort(key=lambda r: (r[f"{side}_catalog_name"], r[f"{side}_db_schema_name"] or "",
                                 r[f"{side}_table_name"], r[f"{side}_key_name"] or "", r["key_sequence"]))
        return pa.Table.from_pylist(rows, schema=schemas.KEYS_SCHEMA)

    def _CommandGetImportedKeys(self, command, allowed) -> pa.Table:
        """The foreign keys of the table: the primary keys it references."""
        rows = []
        for ref in self._tables_named(_opt(command, "catalog"), _opt(command, "db_schema"), command.table, allowed):
            rows.extend(self._key_rows(ref, self.catalog.foreign_keys(ref)))
        return self._keys_table(rows, "pk")

    def _CommandGetExportedKeys(self, command, allowed) -> pa.Table:
        """The foreign keys of other tables (of the same source) that reference the table."""
        rows = []
        for target in self._tables_named(_opt(command, "catalog"), _opt(command, "db_schema"), command.table,
                                         allowed):
            for schema in self.catalog.list_schemas(target.source):
                for table in self.catalog.list_tables(target.source, schema):
                    ref = TableRef(target.source, schema, table)
                    keys = [k for k in self.catalog.foreign_keys(ref)
                            if (k.ref_schema, k.ref_table) == (target.schema, target.table)]
                    rows.extend(self._key_rows(ref, keys))
        return self._keys_table(rows, "fk")

    def _CommandGetCrossReference(self, command, allowed) -> pa.Table:
        """The foreign keys of ``fk_table`` that reference ``pk_table``."""
        pk_refs = set(self._tables_named(_opt(command, "pk_catalog"), _opt(command, "pk_db_schema"),
                                         command.pk_table, allowed))
        rows = []
        for ref in self._tables_named(_opt(command, "fk_catalog"), _opt(command, "fk_db_schema"),
                                      command.fk_table, allowed):
            keys = [k for k in self.catalog.foreign_keys(ref)
                    if TableRef(ref.source, k.ref_schema, k.ref_table) in pk_refs]
            rows.extend(self._key_rows(ref, keys))
        return self._keys_table(rows, "pk")

    def _CommandGetXdbcTypeInfo(self, command, allowed) -> pa.Table:
        t, sub = XdbcDataType, XdbcDatetimeSubcode
        rows = [
            _xdbc("BOOLEAN", t.XDBC_BIT, 1),
            _xdbc("TINYINT", t.XDBC_TINYINT, 3, radix=10),
            _xdbc("SMALLINT", t.XDBC_SMALLINT, 5, radix=10),
            _xdbc("INTEGER", t.XDBC_INTEGER, 10, radix=10),
            _xdbc("BIGINT", t.XDBC_BIGINT, 19, radix=10),
            _xdbc("REAL", t.XDBC_REAL, 7, radix=2),
            _xdbc("FLOAT", t.XDBC_FLOAT, 15, radix=2),
            _xdbc("DOUBLE", t.XDBC_DOUBLE, 15, radix=2),
            _xdbc("DECIMAL", t.XDBC_DECIMAL, 38, params=["precision", "scale"], radix=10, scales=(0, 38)),
            _xdbc("NUMERIC", t.XDBC_NUMERIC, 38, params=["precision", "scale"], radix=10, scales=(0, 38)),
            _xdbc("CHAR", t.XDBC_CHAR, None, prefix="'", suffix="'", case=True, params=["length"]),
            _xdbc("VARCHAR", t.XDBC_VARCHAR, None, prefix="'", suffix="'", case=True, params=["length"]),
            _xdbc("TEXT", t.XDBC_LONGVARCHAR, None, prefix="'", suffix="'", case=True),
            _xdbc("DATE", t.XDBC_DATE, 10, prefix="DATE '", suffix="'", datetime=sub.XDBC_SUBCODE_DATE),
            _xdbc("TIME", t.XDBC_TIME, 15, prefix="TIME '", suffix="'", datetime=sub.XDBC_SUBCODE_TIME,
                  scales=(0, 6)),
            _xdbc("TIMESTAMP", t.XDBC_TIMESTAMP, 26, prefix="TIMESTAMP '", suffix="'",
                  datetime=sub.XDBC_SUBCODE_TIMESTAMP, scales=(0, 6)),
            _xdbc("TIMESTAMP WITH TIME ZONE", t.XDBC_TIMESTAMP, 32, prefix="TIMESTAMP '", suffix="'",
                  datetime=sub.XDBC_SUBCODE_TIMESTAMP_WITH_TIMEZONE, scales=(0, 6)),
            _xdbc("BYTEA", t.XDBC_VARBINARY, None),
        ]
        if command.HasField("data_type"):
            rows = [r for r in rows if r["data_type"] == command.data_type]
        rows.sort(key=lambda r: (r["data_type"], r["type_name"]))
        return pa.Table.from_pylist(rows, schema=schemas.XDBC_TYPE_INFO_SCHEMA)


_RULES = {"CASCADE": UpdateDeleteRules.CASCADE, "RESTRICT": UpdateDeleteRules.RESTRICT,
          "SET NULL": UpdateDeleteRules.SET_NULL, "NO ACTION": UpdateDeleteRules.NO_ACTION,
          "SET DEFAULT": UpdateDeleteRules.SET_DEFAULT}


def _opt(command, name: str) -> str | None:
    return getattr(command, name) if command.HasField(name) else None


def _xdbc(name, data_type, size, prefix=None, suffix=None, case=False, params=None, radix=None,
          datetime=None, scales=(None, None)) -> dict:
    # ODBC: datetime types report the generic SQL_DATETIME code (9) as sql_data_type, with a subcode
    return {
        "type_name": name, "data_type": int(data_type), "column_size": size, "literal_prefix": prefix,
        "literal_suffix": suffix, "create_params": params, "nullable": 1, "case_sensitive": case,
        "searchable": 3, "unsigned_attribute": False if radix else None,
        "fixed_prec_scale": name in ("DECIMAL", "NUMERIC"), "auto_increment": False, "local_type_name": name,
        "minimum_scale": scales[0], "maximum_scale": scales[1],
        "sql_data_type": int(XdbcDataType.XDBC_DATETIME) if datetime is not None else int(data_type),
        "datetime_subcode": int(datetime) if datetime is not None else None, "num_prec_radix": radix,
        "interval_precision": None,
    }
