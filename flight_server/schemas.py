"""Arrow result schemas of the Flight SQL metadata commands, and Flight SQL column metadata.

Field names, order, types and nullability follow the schema comments of ``FlightSql.proto`` (v21 text): a
field the spec marks ``not null`` is ``nullable=False``, every other field is nullable. Where the spec text
and the Arrow C++ reference server disagree we follow the spec, since clients read these results by column
name or by position/type code (the ADBC Go driver and the JDBC driver do), never by comparing schemas.
"""

from __future__ import annotations

import pyarrow as pa

# GetSqlInfo: info_name uint32 not null, value dense_union<...> not null. Children in spec order get type
# codes 0..5, which is what clients dispatch on. The spec gives children no `not null`, so they are nullable
# (C++ declares them non-nullable); nullable children also let FLIGHT_SQL_SERVER_SUBSTRAIT_MIN/MAX_VERSION be
# null as the spec asks when Substrait is unsupported. List child names are the spec's ("string_data",
# "$data$"; C++ uses "item").
SQL_INFO_STRING_LIST_TYPE = pa.list_(pa.field("string_data", pa.utf8()))
SQL_INFO_INT32_LIST_MAP_TYPE = pa.map_(
    pa.field("key", pa.int32(), nullable=False), pa.field("value", pa.list_(pa.field("$data$", pa.int32())))
)
SQL_INFO_UNION_FIELDS: tuple[pa.Field, ...] = (
    pa.field("string_value", pa.utf8()),
    pa.field("bool_value", pa.bool_()),
    pa.field("bigint_value", pa.int64()),
    pa.field("int32_bitmask", pa.int32()),
    pa.field("string_list", SQL_INFO_STRING_LIST_TYPE),
    pa.field("int32_to_int32_list_map", SQL_INFO_INT32_LIST_MAP_TYPE),
)
SQL_INFO_SCHEMA = pa.schema([
    pa.field("info_name", pa.uint32(), nullable=False),
    pa.field("value", pa.dense_union(list(SQL_INFO_UNION_FIELDS), type_codes=list(range(6))), nullable=False),
])

# GetXdbcTypeInfo; create_params is list<utf8 not null> (spec names no child; "item" as in C++).
XDBC_TYPE_INFO_SCHEMA = pa.schema([
    pa.field("type_name", pa.utf8(), nullable=False),
    pa.field("data_type", pa.int32(), nullable=False),
    pa.field("column_size", pa.int32()),
    pa.field("literal_prefix", pa.utf8()),
    pa.field("literal_suffix", pa.utf8()),
    pa.field("create_params", pa.list_(pa.field("item", pa.utf8(), nullable=False))),
    pa.field("nullable", pa.int32(), nullable=False),
    pa.field("case_sensitive", pa.bool_(), nullable=False),
    pa.field("searchable", pa.int32(), nullable=False),
    pa.field("unsigned_attribute", pa.bool_()),
    pa.field("fixed_prec_scale", pa.bool_(), nullable=False),
    pa.field("auto_increment", pa.bool_()),
    pa.field("local_type_name", pa.utf8()),
    pa.field("minimum_scale", pa.int32()),
    pa.field("maximum_scale", pa.int32()),
    pa.field("sql_data_type", pa.int32(), nullable=False),
    pa.field("datetime_subcode", pa.int32()),
    pa.field("num_prec_radix", pa.int32()),
    pa.field("interval_precision", pa.int32()),
])

CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", pa.utf8(), nullable=False)])

DB_SCHEMAS_SCHEMA = pa.schema([
    pa.field("catalog_name", pa.utf8()),
    pa.field("db_schema_name", pa.utf8(), nullable=False),
])

TABLES_SCHEMA = pa.schema([
    pa.field("catalog_name", pa.utf8()),
    pa.field("db_schema_name", pa.utf8()),
    pa.field("table_name", pa.utf8(), nullable=False),
    pa.field("table_type", pa.utf8(), nullable=False),
])

# include_schema = true: table_schema is the table's Arrow schema as an IPC-encapsulated Schema message.
TABLES_SCHEMA_WITH_SCHEMA = TABLES_SCHEMA.append(pa.field("table_schema", pa.binary(), nullable=False))

TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", pa.utf8(), nullable=False)])

# Spec text order: key_name before key_sequence. The Arrow C++ reference server swaps the two; JDBC and ADBC
# read these columns by name, so the spec order is safe.
PRIMARY_KEYS_SCHEMA = pa.schema([
    pa.field("catalog_name", pa.utf8()),
    pa.field("db_schema_name", pa.utf8()),
    pa.field("table_name", pa.utf8(), nullable=False),
    pa.field("column_name", pa.utf8(), nullable=False),
    pa.field("key_name", pa.utf8()),
    pa.field("key_sequence", pa.int32(), nullable=False),
])

# Shared by GetExportedKeys, GetImportedKeys and GetCrossReference; rules are UpdateDeleteRules values.
KEYS_SCHEMA = pa.schema([
    pa.field("pk_catalog_name", pa.utf8()),
    pa.field("pk_db_schema_name", pa.utf8()),
    pa.field("pk_table_name", pa.utf8(), nullable=False),
    pa.field("pk_column_name", pa.utf8(), nullable=False),
    pa.field("fk_catalog_name", pa.utf8()),
    pa.field("fk_db_schema_name", pa.utf8()),
    pa.field("fk_table_name", pa.utf8(), nullable=False),
    pa.field("fk_column_name", pa.utf8(), nullable=False),
    pa.field("key_sequence", pa.int32(), nullable=False),
    pa.field("fk_key_name", pa.utf8()),
    pa.field("pk_key_name", pa.utf8()),
    pa.field("update_rule", pa.uint8(), nullable=False),
    pa.field("delete_rule", pa.uint8(), nullable=False),
])

# Flight SQL field-level metadata keys (spec: "ARROW:FLIGHT:SQL:*", all values UTF-8 strings).
CATALOG_NAME_KEY = b"ARROW:FLIGHT:SQL:CATALOG_NAME"
DB_SCHEMA_NAME_KEY = b"ARROW:FLIGHT:SQL:DB_SCHEMA_NAME"
TABLE_NAME_KEY = b"ARROW:FLIGHT:SQL:TABLE_NAME"
TYPE_NAME_KEY = b"ARROW:FLIGHT:SQL:TYPE_NAME"
PRECISION_KEY = b"ARROW:FLIGHT:SQL:PRECISION"
SCALE_KEY = b"ARROW:FLIGHT:SQL:SCALE"
IS_AUTO_INCREMENT_KEY = b"ARROW:FLIGHT:SQL:IS_AUTO_INCREMENT"
IS_CASE_SENSITIVE_KEY = b"ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE"
IS_READ_ONLY_KEY = b"ARROW:FLIGHT:SQL:IS_READ_ONLY"
IS_SEARCHABLE_KEY = b"ARROW:FLIGHT:SQL:IS_SEARCHABLE"
REMARKS_KEY = b"ARROW:FLIGHT:SQL:REMARKS"


def column_metadata(
    catalog: str | None,
    schema: str | None,
    table: str | None,
    type_name: str | None,
    precision: int | None = None,
    scale: int | None = None,
    auto_increment: bool | None = None,
    case_sensitive: bool | None = None,
    read_only: bool | None = True,
    searchable: bool | None = None,
    remarks: str | None = None,
) -> dict[bytes, bytes]:
    """Flight SQL column metadata for one result/table field, as Arrow field metadata.

    Keys are the spec's ``ARROW:FLIGHT:SQL:{CATALOG_NAME, DB_SCHEMA_NAME, TABLE_NAME, TYPE_NAME, PRECISION,
    SCALE, IS_AUTO_INCREMENT, IS_CASE_SENSITIVE, IS_READ_ONLY, IS_SEARCHABLE, REMARKS}``; values are UTF-8
    text: integers in decimal, booleans ``"1"`` / ``"0"``. Every key is optional per the spec, so an argument
    given as ``None`` leaves its key out. Used for ``table_schema`` in GetTables(include_schema) and for the
    GetSchema / FlightInfo schema of statements.
    """
    entries: list[tuple[bytes, str | int | bool | None]] = [
        (CATALOG_NAME_KEY, catalog),
        (DB_SCHEMA_NAME_KEY, schema),
        (TABLE_NAME_KEY, table),
        (TYPE_NAME_KEY, type_name),
        (PRECISION_KEY, precision),
        (SCALE_KEY, scale),
        (IS_AUTO_INCREMENT_KEY, auto_increment),
        (IS_CASE_SENSITIVE_KEY, case_sensitive),
        (IS_READ_ONLY_KEY, read_only),
        (IS_SEARCHABLE_KEY, searchable),
        (REMARKS_KEY, remarks),
    ]
    metadata: dict[bytes, bytes] = {}
    for key, value in entries:
        if value is None:
            continue
        # bool before int: bool is an int subclass but encodes as "1"/"0", not "True".
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, int):
            text = str(int(value))  # int() so an IntEnum also encodes as plain decimal
        else:
            text = value
        metadata[key] = text.encode("utf-8")
    return metadata
