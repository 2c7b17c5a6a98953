"""Flight SQL wire facts: protobuf field numbers, Any packing, metadata schemas and GetSqlInfo results."""

from __future__ import annotations

import struct

import pyarrow as pa
import pytest
from google.protobuf import any_pb2
from pyarrow import flight

from flight_server import protocol, schemas
from flight_server.sql_info import (
    SQL_INFO_VALUE_KIND,
    SqlInfo,
    SqlNullOrdering,
    SqlOuterJoinsSupportLevel,
    SqlSupportedCaseSensitivity,
    SqlSupportedSubqueries,
    SqlSupportedUnions,
    XdbcDataType,
    XdbcDatetimeSubcode,
    bitmask,
    default_sql_info,
    sql_info_table,
)

# ---- hand encoding: tag = (field_number << 3) | wire_type --------------------------------------------------
VARINT, I64, LEN = 0, 1, 2


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32/int64 go on the wire as 64-bit two's complement
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tag(field_number: int, wire_type: int) -> bytes:
    return varint((field_number << 3) | wire_type)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    return tag(field_number, LEN) + varint(len(payload)) + payload


def wire(message) -> bytes:
    return message.SerializeToString()


# ---- (a) Any packing round trips ---------------------------------------------------------------------------
P = protocol
_SAMPLES = {
    "CommandGetSqlInfo": lambda: P.CommandGetSqlInfo(info=[0, 504, 10_000]),
    "CommandGetXdbcTypeInfo": lambda: P.CommandGetXdbcTypeInfo(data_type=-5),
    "CommandGetCatalogs": lambda: P.CommandGetCatalogs(),
    "CommandGetDbSchemas": lambda: P.CommandGetDbSchemas(catalog="cat", db_schema_filter_pattern="pub%"),
    "CommandGetTables": lambda: P.CommandGetTables(
        catalog="cat", db_schema_filter_pattern="s_", table_name_filter_pattern="t%",
        table_types=["TABLE", "VIEW"], include_schema=True),
    "CommandGetTableTypes": lambda: P.CommandGetTableTypes(),
    "CommandGetPrimaryKeys": lambda: P.CommandGetPrimaryKeys(catalog="c", db_schema="s", table="t"),
    "CommandGetExportedKeys": lambda: P.CommandGetExportedKeys(catalog="c", db_schema="s", table="t"),
    "CommandGetImportedKeys": lambda: P.CommandGetImportedKeys(catalog="", db_schema="s", table="t"),
    "CommandGetCrossReference": lambda: P.CommandGetCrossReference(
        pk_catalog="pc", pk_db_schema="ps", pk_table="pt", fk_catalog="fc", fk_db_schema="fs", fk_table="ft"),
    "ActionCreatePreparedStatementRequest": lambda: P.ActionCreatePreparedStatementRequest(
        query="SELECT 1", transaction_id=b"tx"),
    "ActionCreatePreparedStatementResult": lambda: P.ActionCreatePreparedStatementResult(
        prepared_statement_handle=b"h", dataset_schema=b"ds", parameter_schema=b"ps"),
    "ActionClosePreparedStatementRequest": lambda: P.ActionClosePreparedStatementRequest(
        prepared_statement_handle=b"h"),
    "ActionBeginTransactionRequest": lambda: P.ActionBeginTransactionRequest(),
    "ActionBeginTransactionResult": lambda: P.ActionBeginTransactionResult(transaction_id=b"tx"),
    "ActionEndTransactionRequest": lambda: P.ActionEndTransactionRequest(
        transaction_id=b"tx", action=P.ActionEndTransactionRequest.END_TRANSACTION_ROLLBACK),
    "ActionBeginSavepointRequest": lambda: P.ActionBeginSavepointRequest(transaction_id=b"tx", name="sp"),
    "ActionBeginSavepointResult": lambda: P.ActionBeginSavepointResult(savepoint_id=b"sp"),
    "ActionEndSavepointRequest": lambda: P.ActionEndSavepointRequest(
        savepoint_id=b"sp", action=P.ActionEndSavepointRequest.END_SAVEPOINT_RELEASE),
    "CommandStatementQuery": lambda: P.CommandStatementQuery(query="SELECT 1", transaction_id=b"tx"),
    "CommandStatementSubstraitPlan": lambda: P.CommandStatementSubstraitPlan(
        plan=P.SubstraitPlan(plan=b"\x01\x02", version="0.12.0"), transaction_id=b"tx"),
    "SubstraitPlan": lambda: P.SubstraitPlan(plan=b"plan", version="0.12.0"),
    "ActionCreatePreparedSubstraitPlanRequest": lambda: P.ActionCreatePreparedSubstraitPlanRequest(
        plan=P.SubstraitPlan(plan=b"plan", version="0.1"), transaction_id=b"tx"),
    "TicketStatementQuery": lambda: P.TicketStatementQuery(statement_handle=b"handle"),
    "CommandPreparedStatementQuery": lambda: P.CommandPreparedStatementQuery(prepared_statement_handle=b"h"),
    "CommandStatementUpdate": lambda: P.CommandStatementUpdate(query="DELETE FROM t", transaction_id=b"tx"),
    "CommandPreparedStatementUpdate": lambda: P.CommandPreparedStatementUpdate(
        prepared_statement_handle=b"h"),
    "CommandStatementIngest": lambda: P.CommandStatementIngest(
        table_definition_options=P.CommandStatementIngest.TableDefinitionOptions(
            if_not_exist=P.CommandStatementIngest.TableDefinitionOptions.TABLE_NOT_EXIST_OPTION_CREATE,
            if_exists=P.CommandStatementIngest.TableDefinitionOptions.TABLE_EXISTS_OPTION_REPLACE),
        table="t", schema="s", catalog="c", temporary=True, transaction_id=b"tx", options={"k": "v"}),
    "DoPutUpdateResult": lambda: P.DoPutUpdateResult(record_count=42),
    "DoPutPreparedStatementResult": lambda: P.DoPutPreparedStatementResult(prepared_statement_handle=b"h2"),
    "ActionCancelQueryRequest": lambda: P.ActionCancelQueryRequest(info=b"flight-info"),
    "ActionCancelQueryResult": lambda: P.ActionCancelQueryResult(
        result=P.ActionCancelQueryResult.CANCEL_RESULT_CANCELLING),
}
_EMPTY_MESSAGES = {"CommandGetCatalogs", "CommandGetTableTypes", "ActionBeginTransactionRequest"}


def test_every_spec_message_is_exported_and_sampled() -> None:
    assert set(_SAMPLES) == set(protocol.SQL_MESSAGE_CLASSES)
    assert len(_SAMPLES) == 32
    for name in _SAMPLES:
        cls = getattr(protocol, name)
        assert cls is protocol.SQL_MESSAGE_CLASSES[name]
        assert cls.DESCRIPTOR.full_name == f"arrow.flight.protocol.sql.{name}"


@pytest.mark.parametrize("name", sorted(_SAMPLES))
def test_pack_unpack_round_trip(name: str) -> None:
    message = _SAMPLES[name]()
    assert (message.ByteSize() == 0) == (name in _EMPTY_MESSAGES)  # samples really are non-default
    packed = protocol.pack(message)

    wrapper = any_pb2.Any.FromString(packed)
    assert wrapper.type_url == protocol.TYPE_URL_PREFIX + name
    assert wrapper.type_url == f"type.googleapis.com/arrow.flight.protocol.sql.{name}"
    assert wrapper.value == message.SerializeToString(deterministic=True)
    # Any is {string type_url = 1; bytes value = 2}.
    expected = length_delimited(1, wrapper.type_url.encode())
    if wrapper.value:
        expected += length_delimited(2, wrapper.value)
    assert packed == expected

    unpacked = protocol.unpack(packed)
    assert type(unpacked) is type(message)
    assert unpacked == message


def test_proto3_optional_fields_track_presence() -> None:
    unset = protocol.unpack(protocol.pack(protocol.CommandGetDbSchemas()))
    empty = protocol.unpack(protocol.pack(protocol.CommandGetDbSchemas(catalog="")))
    assert not unset.HasField("catalog")
    assert empty.HasField("catalog") and empty.catalog == ""  # "" = objects without a catalog, per spec
    assert protocol.CommandGetXdbcTypeInfo(data_type=0).SerializeToString() == tag(1, VARINT) + b"\x00"


def test_unpack_rejects_unknown_or_non_any() -> None:
    unknown = any_pb2.Any(type_url="type.googleapis.com/arrow.flight.protocol.sql.NoSuchCommand", value=b"")
    with pytest.raises(ValueError, match="NoSuchCommand"):
        protocol.unpack(unknown.SerializeToString())
    other_package = any_pb2.Any(type_url="type.googleapis.com/other.CommandStatementQuery")
    with pytest.raises(ValueError, match=r"other\.CommandStatementQuery"):
        protocol.unpack(other_package.SerializeToString())
    with pytest.raises(ValueError):
        protocol.unpack(b"\xff\xff\xff")  # not a protobuf at all
    with pytest.raises(ValueError):
        protocol.unpack(b"")  # parses as an empty Any: no type_url
    with pytest.raises(ValueError):
        protocol.pack(protocol.CloseSessionRequest())  # Flight core messages travel raw


def test_unpack_accepts_any_type_url_host() -> None:
    query = protocol.CommandStatementQuery(query="SELECT 2")
    custom = any_pb2.Any(type_url="example.com/arrow.flight.protocol.sql.CommandStatementQuery",
                         value=query.SerializeToString())
    assert protocol.unpack(custom.SerializeToString()) == query


def test_action_names() -> None:
    assert protocol.ACTION_CREATE_PREPARED_STATEMENT == "CreatePreparedStatement"
    assert protocol.ACTION_CLOSE_PREPARED_STATEMENT == "ClosePreparedStatement"
    assert protocol.ACTION_CREATE_PREPARED_SUBSTRAIT_PLAN == "CreatePreparedSubstraitPlan"
    assert protocol.ACTION_BEGIN_TRANSACTION == "BeginTransaction"
    assert protocol.ACTION_END_TRANSACTION == "EndTransaction"
    assert protocol.ACTION_BEGIN_SAVEPOINT == "BeginSavepoint"
    assert protocol.ACTION_END_SAVEPOINT == "EndSavepoint"
    assert protocol.ACTION_CANCEL_QUERY == "CancelQuery"
    assert protocol.ACTION_CANCEL_FLIGHT_INFO == "CancelFlightInfo"
    assert protocol.ACTION_RENEW_FLIGHT_ENDPOINT == "RenewFlightEndpoint"
    assert protocol.ACTION_SET_SESSION_OPTIONS == "SetSessionOptions"
    assert protocol.ACTION_GET_SESSION_OPTIONS == "GetSessionOptions"
    assert protocol.ACTION_CLOSE_SESSION == "CloseSession"


# ---- (b) wire bytes equal hand encoding from the spec's field numbers --------------------------------------


def test_get_tables_wire_bytes() -> None:
    message = protocol.CommandGetTables(catalog="c", include_schema=True)
    expected = tag(1, LEN) + b"\x01c" + tag(5, VARINT) + b"\x01"
    assert expected == b"\n\x01c(\x01"
    assert message.SerializeToString() == expected
    full = protocol.CommandGetTables(db_schema_filter_pattern="s", table_name_filter_pattern="t",
                                     table_types=["A", "B"])
    assert full.SerializeToString() == (
        length_delimited(2, b"s") + length_delimited(3, b"t")
        + length_delimited(4, b"A") + length_delimited(4, b"B")
    )


def test_cross_reference_and_key_commands_wire_bytes() -> None:
    message = protocol.CommandGetCrossReference(pk_catalog="a", pk_db_schema="b", pk_table="c",
                                                fk_catalog="d", fk_db_schema="e", fk_table="f")
    assert message.SerializeToString() == b"".join(
        length_delimited(number, text) for number, text in enumerate([b"a", b"b", b"c", b"d", b"e", b"f"], 1)
    )
    for cls in (P.CommandGetPrimaryKeys, P.CommandGetExportedKeys, P.CommandGetImportedKeys):
        assert wire(cls(table="t")) == tag(3, LEN) + b"\x01t"


def test_sql_info_and_statement_wire_bytes() -> None:
    # Repeated uint32 is packed in proto3: one LEN record of varints; 504 = 0xf8 0x03.
    assert wire(P.CommandGetSqlInfo(info=[0, 504])) == length_delimited(1, b"\x00\xf8\x03")
    query = protocol.CommandStatementQuery(query="q", transaction_id=b"t")
    assert query.SerializeToString() == length_delimited(1, b"q") + length_delimited(2, b"t")
    end = protocol.ActionEndTransactionRequest(transaction_id=b"t", action=2)
    assert end.SerializeToString() == length_delimited(1, b"t") + tag(2, VARINT) + b"\x02"
    assert protocol.ActionEndTransactionRequest.EndTransaction.Name(2) == "END_TRANSACTION_ROLLBACK"
    result = protocol.ActionCreatePreparedStatementResult(prepared_statement_handle=b"h", dataset_schema=b"d",
                                                          parameter_schema=b"p")
    assert result.SerializeToString() == length_delimited(1, b"h") + length_delimited(2, b"d") + \
        length_delimited(3, b"p")
    # int64 -1 is a 10-byte varint.
    assert wire(P.DoPutUpdateResult(record_count=-1)) == tag(1, VARINT) + b"\xff" * 9 + b"\x01"


def test_ingest_wire_bytes_including_field_1000_map() -> None:
    options = protocol.CommandStatementIngest.TableDefinitionOptions
    message = protocol.CommandStatementIngest(
        table_definition_options=options(if_not_exist=options.TABLE_NOT_EXIST_OPTION_FAIL,
                                         if_exists=options.TABLE_EXISTS_OPTION_APPEND),
        table="t", schema="s", catalog="c", temporary=True, transaction_id=b"x", options={"k": "v"})
    entry = length_delimited(1, b"k") + length_delimited(2, b"v")
    assert tag(1000, LEN) == b"\xc2\x3e"
    assert message.SerializeToString() == (
        length_delimited(1, tag(1, VARINT) + b"\x02" + tag(2, VARINT) + b"\x02")
        + length_delimited(2, b"t") + length_delimited(3, b"s") + length_delimited(4, b"c")
        + tag(5, VARINT) + b"\x01" + length_delimited(6, b"x") + length_delimited(1000, entry)
    )


def test_flight_session_and_cancel_wire_bytes() -> None:
    # SessionOptionValue.int64_value is sfixed64 (wire type 1, 8 little-endian bytes), not a varint.
    assert wire(P.SessionOptionValue(int64_value=5)) == tag(3, I64) + struct.pack("<q", 5)
    assert wire(P.SessionOptionValue(double_value=1.5)) == tag(4, I64) + struct.pack("<d", 1.5)
    assert protocol.SessionOptionValue(bool_value=True).SerializeToString() == tag(2, VARINT) + b"\x01"
    listed = protocol.SessionOptionValue(string_list_value={"values": ["a", "b"]})
    assert listed.WhichOneof("option_value") == "string_list_value"
    assert wire(listed) == length_delimited(5, length_delimited(1, b"a") + length_delimited(1, b"b"))

    request = protocol.SetSessionOptionsRequest(session_options={"catalog": protocol.SessionOptionValue(
        string_value="x")})
    entry = length_delimited(1, b"catalog") + length_delimited(2, length_delimited(1, b"x"))
    assert request.SerializeToString() == length_delimited(1, entry)

    errors = protocol.SetSessionOptionsResult(errors={"n": protocol.SetSessionOptionsResult.Error(
        value=protocol.SetSessionOptionsResult.INVALID_VALUE)})
    assert errors.SerializeToString() == length_delimited(
        1, length_delimited(1, b"n") + length_delimited(2, tag(1, VARINT) + b"\x02"))
    assert wire(P.CloseSessionResult(status=P.CloseSessionResult.CLOSED)) == b"\x08\x01"
    assert protocol.CancelFlightInfoResult(
        status=protocol.CancelStatus.CANCEL_STATUS_CANCELLED).SerializeToString() == tag(1, VARINT) + b"\x01"
    assert protocol.CancelStatus.Name(3) == "CANCEL_STATUS_NOT_CANCELLABLE"


def test_cancel_flight_info_request_carries_a_flight_info() -> None:
    info = flight.FlightInfo(pa.schema([("a", pa.int32())]), flight.FlightDescriptor.for_command(b"cmd"),
                             [flight.FlightEndpoint(b"ticket", ["grpc://host:1"])], 7, -1)
    raw = info.serialize()
    request = protocol.CancelFlightInfoRequest.FromString(length_delimited(1, raw))
    decoded = flight.FlightInfo.deserialize(request.info)
    assert decoded.total_records == 7
    assert decoded.descriptor.command == b"cmd"
    assert decoded.endpoints[0].ticket.ticket == b"ticket"


# ---- (c) metadata result schemas ---------------------------------------------------------------------------


def _shape(schema: pa.Schema) -> list[tuple[str, pa.DataType, bool]]:
    return [(field.name, field.type, field.nullable) for field in schema]


def test_sql_info_schema() -> None:
    schema = schemas.SQL_INFO_SCHEMA
    assert schema.names == ["info_name", "value"]
    assert schema.field("info_name").type == pa.uint32() and not schema.field("info_name").nullable
    value = schema.field("value")
    assert not value.nullable
    assert value.type.mode == "dense"
    assert value.type.type_codes == [0, 1, 2, 3, 4, 5]
    children = [value.type.field(i) for i in range(value.type.num_fields)]
    assert [child.name for child in children] == [
        "string_value", "bool_value", "bigint_value", "int32_bitmask", "string_list",
        "int32_to_int32_list_map"]
    assert [child.type for child in children[:4]] == [pa.utf8(), pa.bool_(), pa.int64(), pa.int32()]
    assert children[4].type.value_field.name == "string_data"
    assert children[4].type.value_type == pa.utf8()
    map_type = children[5].type
    assert map_type.key_type == pa.int32() and not map_type.key_field.nullable
    assert map_type.item_field.name == "value"
    assert map_type.item_type.value_field.name == "$data$"
    assert map_type.item_type.value_type == pa.int32()


def test_catalog_schema_and_table_schemas() -> None:
    utf8 = pa.utf8()
    assert _shape(schemas.CATALOGS_SCHEMA) == [("catalog_name", utf8, False)]
    assert _shape(schemas.DB_SCHEMAS_SCHEMA) == [
        ("catalog_name", utf8, True), ("db_schema_name", utf8, False)]
    assert _shape(schemas.TABLES_SCHEMA) == [
        ("catalog_name", utf8, True), ("db_schema_name", utf8, True),
        ("table_name", utf8, False), ("table_type", utf8, False)]
    assert _shape(schemas.TABLES_SCHEMA_WITH_SCHEMA) == [
        *_shape(schemas.TABLES_SCHEMA), ("table_schema", pa.binary(), False)]
    assert _shape(schemas.TABLE_TYPES_SCHEMA) == [("table_type", utf8, False)]


def test_key_schemas() -> None:
    utf8, i32 = pa.utf8(), pa.int32()
    # Spec text order (key_name before key_sequence); the C++ reference swaps them.
    assert _shape(schemas.PRIMARY_KEYS_SCHEMA) == [
        ("catalog_name", utf8, True), ("db_schema_name", utf8, True), ("table_name", utf8, False),
        ("column_name", utf8, False), ("key_name", utf8, True), ("key_sequence", i32, False)]
    assert _shape(schemas.KEYS_SCHEMA) == [
        ("pk_catalog_name", utf8, True), ("pk_db_schema_name", utf8, True), ("pk_table_name", utf8, False),
        ("pk_column_name", utf8, False), ("fk_catalog_name", utf8, True), ("fk_db_schema_name", utf8, True),
        ("fk_table_name", utf8, False), ("fk_column_name", utf8, False), ("key_sequence", i32, False),
        ("fk_key_name", utf8, True), ("pk_key_name", utf8, True),
        ("update_rule", pa.uint8(), False), ("delete_rule", pa.uint8(), False)]


def test_xdbc_type_info_schema() -> None:
    schema = schemas.XDBC_TYPE_INFO_SCHEMA
    assert schema.names == [
        "type_name", "data_type", "column_size", "literal_prefix", "literal_suffix", "create_params",
        "nullable",
        "case_sensitive", "searchable", "unsigned_attribute", "fixed_prec_scale", "auto_increment",
        "local_type_name", "minimum_scale", "maximum_scale", "sql_data_type", "datetime_subcode",
        "num_prec_radix", "interval_precision"]
    not_null = {field.name for field in schema if not field.nullable}
    assert not_null == {"type_name", "data_type", "nullable", "case_sensitive", "searchable",
                        "fixed_prec_scale", "sql_data_type"}
    create_params = schema.field("create_params").type
    assert create_params.value_type == pa.utf8() and not create_params.value_field.nullable
    assert schema.field("case_sensitive").type == pa.bool_()
    assert schema.field("data_type").type == pa.int32()


def test_column_metadata_encoding() -> None:
    metadata = schemas.column_metadata("cat", "sch", "tbl", "NUMERIC", precision=12, scale=2,
                                       auto_increment=False, case_sensitive=True, searchable=True,
                                       remarks="r")
    assert metadata == {
        b"ARROW:FLIGHT:SQL:CATALOG_NAME": b"cat",
        b"ARROW:FLIGHT:SQL:DB_SCHEMA_NAME": b"sch",
        b"ARROW:FLIGHT:SQL:TABLE_NAME": b"tbl",
        b"ARROW:FLIGHT:SQL:TYPE_NAME": b"NUMERIC",
        b"ARROW:FLIGHT:SQL:PRECISION": b"12",
        b"ARROW:FLIGHT:SQL:SCALE": b"2",
        b"ARROW:FLIGHT:SQL:IS_AUTO_INCREMENT": b"0",
        b"ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE": b"1",
        b"ARROW:FLIGHT:SQL:IS_READ_ONLY": b"1",
        b"ARROW:FLIGHT:SQL:IS_SEARCHABLE": b"1",
        b"ARROW:FLIGHT:SQL:REMARKS": b"r",
    }
    minimal = schemas.column_metadata(None, None, "t", "INT", read_only=None)
    assert minimal == {b"ARROW:FLIGHT:SQL:TABLE_NAME": b"t", b"ARROW:FLIGHT:SQL:TYPE_NAME": b"INT"}
    field = pa.field("x", pa.int32(), metadata=schemas.column_metadata("c", "s", "t", "INTEGER"))
    assert field.metadata[b"ARROW:FLIGHT:SQL:IS_READ_ONLY"] == b"1"


# ---- (d) GetSqlInfo tables ---------------------------------------------------------------------------------

_ARM = {"string": 0, "bool": 1, "bigint": 2, "int32_bitmask": 3, "string_list": 4,
        "int32_to_int32_list_map": 5}


def _defaults() -> dict[int, object]:
    return default_sql_info("gateway", "1.2.3", pa.__version__)


def test_sql_info_table_all_defaults() -> None:
    table = sql_info_table(_defaults(), None)
    assert table.schema.equals(schemas.SQL_INFO_SCHEMA)
    names = table.column("info_name").to_pylist()
    assert names == sorted(int(member) for member in SqlInfo)
    assert len(names) == 91
    union = table.column("value").combine_chunks()
    codes = union.type_codes.to_pylist()
    assert codes == [_ARM[SQL_INFO_VALUE_KIND[SqlInfo(info_id)]] for info_id in names]
    rows = dict(zip(names, table.column("value").to_pylist(), strict=True))
    assert rows[SqlInfo.FLIGHT_SQL_SERVER_NAME] == "gateway"
    assert rows[SqlInfo.FLIGHT_SQL_SERVER_ARROW_VERSION] == pa.__version__
    assert rows[SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY] is True
    assert rows[SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION] is None  # spec: null without Substrait
    assert rows[SqlInfo.SQL_IDENTIFIER_QUOTE_CHAR] == '"'
    assert rows[SqlInfo.SQL_IDENTIFIER_CASE] == SqlSupportedCaseSensitivity.SQL_CASE_SENSITIVITY_LOWERCASE
    assert rows[SqlInfo.SQL_NULL_ORDERING] == SqlNullOrdering.SQL_NULLS_SORTED_HIGH
    assert rows[SqlInfo.SQL_OUTER_JOINS_SUPPORT_LEVEL] == SqlOuterJoinsSupportLevel.SQL_FULL_OUTER_JOINS
    assert rows[SqlInfo.SQL_SUPPORTED_UNIONS] == 0b11
    assert rows[SqlInfo.SQL_SUPPORTED_SUBQUERIES] == 0b1111
    assert rows[SqlInfo.SQL_DEFAULT_TRANSACTION_ISOLATION] == 0
    assert "abs" in rows[SqlInfo.SQL_NUMERIC_FUNCTIONS]
    convert = dict(rows[SqlInfo.SQL_SUPPORTS_CONVERT])
    assert 16 in convert[19]  # VARCHAR -> TIMESTAMP
    # JDBC reads id 562 as a Java Long: it must sit in the bigint arm.
    assert codes[names.index(562)] == 2


def test_sql_info_table_requested_subset_keeps_request_order() -> None:
    requested = [SqlInfo.SQL_SUPPORTS_CONVERT, SqlInfo.SQL_IDENTIFIER_QUOTE_CHAR,
                 SqlInfo.FLIGHT_SQL_SERVER_NAME, SqlInfo.SQL_IDENTIFIER_QUOTE_CHAR, 12_345]
    table = sql_info_table(_defaults(), requested)
    assert table.schema.equals(schemas.SQL_INFO_SCHEMA)
    assert table.column("info_name").to_pylist() == [517, 504, 0]  # unknown id skipped, duplicate dropped
    assert table.column("value").to_pylist()[1:] == ['"', "gateway"]
    assert sql_info_table(_defaults(), []).num_rows == 91


def test_sql_info_table_custom_ids_infer_arm() -> None:
    values = {10_003: {1: [2, 3]}, 10_000: "s", 10_001: True, 10_002: 7, 10_004: ["a", "b"]}
    table = sql_info_table(values, None)
    assert table.schema.equals(schemas.SQL_INFO_SCHEMA)
    assert table.column("info_name").to_pylist() == [10_000, 10_001, 10_002, 10_003, 10_004]
    assert table.column("value").combine_chunks().type_codes.to_pylist() == [0, 1, 2, 5, 4]
    assert table.column("value").to_pylist() == ["s", True, 7, [(1, [2, 3])], ["a", "b"]]
    with pytest.raises(ValueError):
        sql_info_table({12: "reserved but undefined"}, None)


# ---- (e) SqlInfo ids, kinds and defaults -------------------------------------------------------------------

_PYTHON_TYPE = {"string": str, "bool": bool, "bigint": int, "int32_bitmask": int, "string_list": list,
                "int32_to_int32_list_map": dict}


def test_every_sql_info_id_has_kind_and_default() -> None:
    assert [int(m) for m in SqlInfo] == [*range(12), 100, 101, *range(500, 577)]
    assert set(SQL_INFO_VALUE_KIND) == set(SqlInfo)
    defaults = _defaults()
    assert set(defaults) == {int(member) for member in SqlInfo}
    nullable = {SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION,
                SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT_MAX_VERSION}
    for member in SqlInfo:
        value, kind = defaults[member], SQL_INFO_VALUE_KIND[member]
        if value is None:
            assert member in nullable
            continue
        assert isinstance(value, _PYTHON_TYPE[kind]), member
        if kind in ("bigint", "int32_bitmask"):
            assert not isinstance(value, bool), member
    assert SQL_INFO_VALUE_KIND[SqlInfo.SQL_DEFAULT_TRANSACTION_ISOLATION] == "bigint"
    assert SQL_INFO_VALUE_KIND[SqlInfo.FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT] == "int32_bitmask"
    assert SQL_INFO_VALUE_KIND[SqlInfo.SQL_DB_SCHEMA_NAME_LENGTH] == "bigint"
    assert defaults[SqlInfo.SQL_MAX_COLUMNS_IN_SELECT] == 0
    assert defaults[SqlInfo.FLIGHT_SQL_SERVER_CANCEL] is True
    assert default_sql_info("g", "1", "2", read_only=False)[SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY] is False


def test_enums_and_bitmask() -> None:
    assert bitmask(SqlSupportedUnions.SQL_UNION, SqlSupportedUnions.SQL_UNION_ALL) == 3
    assert bitmask(SqlSupportedSubqueries.SQL_SUBQUERIES_IN_QUANTIFIEDS) == 8
    assert bitmask() == 0
    assert XdbcDataType.XDBC_BIGINT == -5 and XdbcDataType.XDBC_WVARCHAR == -9
    assert 11 not in {int(member) for member in XdbcDataType}
    assert XdbcDatetimeSubcode.XDBC_SUBCODE_DATE is XdbcDatetimeSubcode.XDBC_SUBCODE_YEAR  # allow_alias
    assert XdbcDatetimeSubcode.XDBC_SUBCODE_INTERVAL_MINUTE_TO_SECOND == 113
