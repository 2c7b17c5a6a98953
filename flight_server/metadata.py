"""Flight SQL metadata commands answered from the catalog's in-memory copy.

Each ``Command*`` maps to a result schema (``flight_server.schemas``, exactly as the spec gives) and a
table built from the catalog. Filter patterns are SQL LIKE patterns (``%``, ``_``, backslash escape);
results are ordered as the spec requires. A source that cannot be listed is left out (and logged), so one
failing source never breaks a client's catalog browser.
"""

from __future__ import annotations

import logging
import re

import pyarrow as pa

from catalog import TableRef
from flight_server import schemas
from flight_server.sql_info import XdbcDataType, default_sql_info, sql_info_table
from gateway.engine import Gateway
from gateway.errors import GatewayError, UnimplementedError
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

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.catalog = gateway.catalog
        from gateway import __version__

        self.sql_info = default_sql_info("federated-sql-gateway", __version__, pa.__version__)

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

    def table_of(self, command) -> pa.Table:
        """The result of a metadata command, with exactly ``schema_of(command)``."""
        name = type(command).DESCRIPTOR.name
        handler = getattr(self, f"_{name}", None)
        if handler is None:
            raise UnimplementedError(f"{name} is not supported by this server")
        table = handler(command)
        return table.cast(self.schema_of(command)) if table.schema != self.schema_of(command) else table

    # -- commands --------------------------------------------------------------------------------------

    def _CommandGetSqlInfo(self, command) -> pa.Table:
        return sql_info_table(self.sql_info, list(command.info))

    def _CommandGetCatalogs(self, command) -> pa.Table:
        return pa.table({"catalog_name": self.catalog.list_sources()}, schema=schemas.CATALOGS_SCHEMA)

    def _schemas(self, catalog: str | None, pattern: str | None) -> list[tuple[str, str]]:
        regex = like_to_regex(pattern)
        rows = []
        for source in self.catalog.list_sources():
            if catalog is not None and source != catalog:
                continue
            try:
                rows.extend((source, s) for s in self.catalog.list_schemas(source) if _matches(regex, s))
            except GatewayError as exc:
                log.warning("metadata: source skipped", extra={"source": source, "error": exc.message})
        return sorted(rows)

    def _CommandGetDbSchemas(self, command) -> pa.Table:
        catalog = command.catalog if command.HasField("catalog") else None
        pattern = command.db_schema_filter_pattern if command.HasField("db_schema_filter_pattern") else None
        rows = self._schemas(catalog, pattern)
        return pa.table(
            {"catalog_name": [r[0] for r in rows], "db_schema_name": [r[1] for r in rows]},
            schema=schemas.DB_SCHEMAS_SCHEMA,
        )

    def _CommandGetTables(self, command) -> pa.Table:
        catalog = command.catalog if command.HasField("catalog") else None
        schema_pattern = command.db_schema_filter_pattern if command.HasField("db_schema_filter_pattern") else None
        table_regex = like_to_regex(
            command.table_name_filter_pattern if command.HasField("table_name_filter_pattern") else None
        )
        types = set(command.table_types)
        rows = []
        for source, schema in self._schemas(catalog, schema_pattern):
            try:
                for table in self.catalog.list_tables(source, schema):
                    if not _matches(table_regex, table):
                        continue
                    ref = TableRef(source, schema, table)
                    table_type = self.catalog.table_type(ref)
                    if types and table_type not in types:
                        continue
                    row = {"catalog_name": source, "db_schema_name": schema, "table_name": table,
                           "table_type": table_type}
                    if command.include_schema:
                        row["table_schema"] = self._annotated_schema(ref).serialize().to_pybytes()
                    rows.append(row)
            except GatewayError as exc:
                log.warning("metadata: source skipped", extra={"source": source, "error": exc.message})
        rows.sort(key=lambda r: (r["catalog_name"], r["db_schema_name"], r["table_name"], r["table_type"]))
        target = schemas.TABLES_SCHEMA_WITH_SCHEMA if command.include_schema else schemas.TABLES_SCHEMA
        return pa.Table.from_pylist(rows, schema=target)

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

    def _CommandGetTableTypes(self, command) -> pa.Table:
        return pa.table({"table_type": TABLE_TYPES}, schema=schemas.TABLE_TYPES_SCHEMA)

    def _CommandGetPrimaryKeys(self, command) -> pa.Table:
        rows = []
        catalog = command.catalog if command.HasField("catalog") else None
        db_schema = command.db_schema if command.HasField("db_schema") else None
        for source, schema in self._schemas(catalog, None):
            if db_schema is not None and schema != db_schema:
                continue
            if command.table not in self.catalog.list_tables(source, schema):
                continue
            keys = self.catalog.connector(source).primary_key(schema, command.table)
            rows.extend(
                {"catalog_name": source, "db_schema_name": schema, "table_name": command.table,
                 "column_name": col, "key_name": None, "key_sequence": i + 1}
                for i, col in enumerate(keys)
            )
        return pa.Table.from_pylist(rows, schema=schemas.PRIMARY_KEYS_SCHEMA)

    def _no_foreign_keys(self, command) -> pa.Table:
        return schemas.KEYS_SCHEMA.empty_table()

    _CommandGetImportedKeys = _CommandGetExportedKeys = _CommandGetCrossReference = _no_foreign_keys

    def _CommandGetXdbcTypeInfo(self, command) -> pa.Table:
        rows = [
            _xdbc("BOOLEAN", XdbcDataType.XDBC_BIT, 1),
            _xdbc("SMALLINT", XdbcDataType.XDBC_SMALLINT, 5),
            _xdbc("INTEGER", XdbcDataType.XDBC_INTEGER, 10),
            _xdbc("BIGINT", XdbcDataType.XDBC_BIGINT, 19),
            _xdbc("REAL", XdbcDataType.XDBC_REAL, 7),
            _xdbc("DOUBLE", XdbcDataType.XDBC_DOUBLE, 15),
            _xdbc("DECIMAL", XdbcDataType.XDBC_DECIMAL, 38, params=["precision", "scale"]),
            _xdbc("VARCHAR", XdbcDataType.XDBC_VARCHAR, None, prefix="'", suffix="'", case=True),
            _xdbc("DATE", XdbcDataType.XDBC_DATE, 10, prefix="DATE '", suffix="'"),
            _xdbc("TIMESTAMP", XdbcDataType.XDBC_TIMESTAMP, 26, prefix="TIMESTAMP '", suffix="'"),
            _xdbc("BYTEA", XdbcDataType.XDBC_BINARY, None),
        ]
        if command.HasField("data_type"):
            rows = [r for r in rows if r["data_type"] == command.data_type]
        return pa.Table.from_pylist(rows, schema=schemas.XDBC_TYPE_INFO_SCHEMA)


def _xdbc(name, data_type, size, prefix=None, suffix=None, case=False, params=None) -> dict:
    return {
        "type_name": name, "data_type": int(data_type), "column_size": size, "literal_prefix": prefix,
        "literal_suffix": suffix, "create_params": params, "nullable": 1, "case_sensitive": case,
        "searchable": 3, "unsigned_attribute": False if size else None, "fixed_prec_scale": name == "DECIMAL",
        "auto_increment": False, "local_type_name": name, "minimum_scale": None, "maximum_scale": None,
        "sql_data_type": int(data_type), "datetime_subcode": None, "num_prec_radix": 10 if size else None,
        "interval_precision": None,
    }

