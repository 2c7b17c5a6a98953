"""The field facts of the Flight SQL protobuf messages, as Python data (``protocol`` builds the classes).

``SQL_MESSAGES``: the messages of ``FlightSql.proto`` (package ``arrow.flight.protocol.sql``, v21 text);
``FLIGHT_MESSAGES`` / ``FLIGHT_ENUMS``: the session-option and cancellation messages of ``Flight.proto``
(package ``arrow.flight.protocol``). Labels and type names as ``protocol``'s docstring describes.
"""

from __future__ import annotations

from typing import NamedTuple


class Msg(NamedTuple):
    """One message: its fields ``(name, number, type, label)``, nested enums and messages, deprecation."""

    fields: tuple[tuple[str, int, str, str], ...] = ()
    enums: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    nested: tuple[tuple[str, Msg], ...] = ()
    deprecated: bool = False


# ---- FlightSql.proto (package arrow.flight.protocol.sql), field facts per the v21 text ---------------------

_OPT_CATALOG_SCHEMA_TABLE = (
    ("catalog", 1, "string", "optional"),
    ("db_schema", 2, "string", "optional"),
    ("table", 3, "string", "plain"),
)

SQL_MESSAGES: dict[str, Msg] = {
    "CommandGetSqlInfo": Msg(fields=(("info", 1, "uint32", "repeated"),)),
    "CommandGetXdbcTypeInfo": Msg(fields=(("data_type", 1, "int32", "optional"),)),
    "CommandGetCatalogs": Msg(),
    "CommandGetDbSchemas": Msg(fields=(
        ("catalog", 1, "string", "optional"),
        ("db_schema_filter_pattern", 2, "string", "optional"),
    )),
    "CommandGetTables": Msg(fields=(
        ("catalog", 1, "string", "optional"),
        ("db_schema_filter_pattern", 2, "string", "optional"),
        ("table_name_filter_pattern", 3, "string", "optional"),
        ("table_types", 4, "string", "repeated"),
        ("include_schema", 5, "bool", "plain"),
    )),
    "CommandGetTableTypes": Msg(),
    "CommandGetPrimaryKeys": Msg(fields=_OPT_CATALOG_SCHEMA_TABLE),
    "CommandGetExportedKeys": Msg(fields=_OPT_CATALOG_SCHEMA_TABLE),
    "CommandGetImportedKeys": Msg(fields=_OPT_CATALOG_SCHEMA_TABLE),
    "CommandGetCrossReference": Msg(fields=(
        ("pk_catalog", 1, "string", "optional"),
        ("pk_db_schema", 2, "string", "optional"),
        ("pk_table", 3, "string", "plain"),
        ("fk_catalog", 4, "string", "optional"),
        ("fk_db_schema", 5, "string", "optional"),
        ("fk_table", 6, "string", "plain"),
    )),
    "ActionCreatePreparedStatementRequest": Msg(fields=(
        ("query", 1, "string", "plain"),
        ("transaction_id", 2, "bytes", "optional"),
    )),
    "SubstraitPlan": Msg(fields=(
        ("plan", 1, "bytes", "plain"),
        ("version", 2, "string", "plain"),
    )),
    "ActionCreatePreparedSubstraitPlanRequest": Msg(fields=(
        ("plan", 1, "SubstraitPlan", "plain"),
        ("transaction_id", 2, "bytes", "optional"),
    )),
    "ActionCreatePreparedStatementResult": Msg(fields=(
        ("prepared_statement_handle", 1, "bytes", "plain"),
        ("dataset_schema", 2, "bytes", "plain"),
        ("parameter_schema", 3, "bytes", "plain"),
    )),
    "ActionClosePreparedStatementRequest": Msg(fields=(("prepared_statement_handle", 1, "bytes", "plain"),)),
    "ActionBeginTransactionRequest": Msg(),
    "ActionBeginTransactionResult": Msg(fields=(("transaction_id", 1, "bytes", "plain"),)),
    "ActionBeginSavepointRequest": Msg(fields=(
        ("transaction_id", 1, "bytes", "plain"),
        ("name", 2, "string", "plain"),
    )),
    "ActionBeginSavepointResult": Msg(fields=(("savepoint_id", 1, "bytes", "plain"),)),
    "ActionEndTransactionRequest": Msg(
        fields=(("transaction_id", 1, "bytes", "plain"), ("action", 2, "EndTransaction", "plain")),
        enums=(("EndTransaction", (
            ("END_TRANSACTION_UNSPECIFIED", 0),
            ("END_TRANSACTION_COMMIT", 1),
            ("END_TRANSACTION_ROLLBACK", 2),
        )),),
    ),
    "ActionEndSavepointRequest": Msg(
        fields=(("savepoint_id", 1, "bytes", "plain"), ("action", 2, "EndSavepoint", "plain")),
        enums=(("EndSavepoint", (
            ("END_SAVEPOINT_UNSPECIFIED", 0), ("END_SAVEPOINT_RELEASE", 1), ("END_SAVEPOINT_ROLLBACK", 2),
        )),),
    ),
    "CommandStatementQuery": Msg(fields=(
        ("query", 1, "string", "plain"),
        ("transaction_id", 2, "bytes", "optional"),
    )),
    "CommandStatementSubstraitPlan": Msg(fields=(
        ("plan", 1, "SubstraitPlan", "plain"),
        ("transaction_id", 2, "bytes", "optional"),
    )),
    "TicketStatementQuery": Msg(fields=(("statement_handle", 1, "bytes", "plain"),)),
    "CommandPreparedStatementQuery": Msg(fields=(("prepared_statement_handle", 1, "bytes", "plain"),)),
    "CommandStatementUpdate": Msg(fields=(
        ("query", 1, "string", "plain"),
        ("transaction_id", 2, "bytes", "optional"),
    )),
    "CommandPreparedStatementUpdate": Msg(fields=(("prepared_statement_handle", 1, "bytes", "plain"),)),
    "CommandStatementIngest": Msg(
        fields=(
            ("table_definition_options", 1, "TableDefinitionOptions", "plain"),
            ("table", 2, "string", "plain"),
            ("schema", 3, "string", "optional"),
            ("catalog", 4, "string", "optional"),
            ("temporary", 5, "bool", "plain"),
            ("transaction_id", 6, "bytes", "optional"),
            ("options", 1000, "map<string,string>", "map"),
        ),
        nested=(("TableDefinitionOptions", Msg(
            fields=(
                ("if_not_exist", 1, "TableNotExistOption", "plain"),
                ("if_exists", 2, "TableExistsOption", "plain"),
            ),
            enums=(
                ("TableNotExistOption", (
                    ("TABLE_NOT_EXIST_OPTION_UNSPECIFIED", 0),
                    ("TABLE_NOT_EXIST_OPTION_CREATE", 1),
                    ("TABLE_NOT_EXIST_OPTION_FAIL", 2),
                )),
                ("TableExistsOption", (
                    ("TABLE_EXISTS_OPTION_UNSPECIFIED", 0),
                    ("TABLE_EXISTS_OPTION_FAIL", 1),
                    ("TABLE_EXISTS_OPTION_APPEND", 2),
                    ("TABLE_EXISTS_OPTION_REPLACE", 3),
                )),
            ),
        )),),
    ),
    "DoPutUpdateResult": Msg(fields=(("record_count", 1, "int64", "plain"),)),
    "DoPutPreparedStatementResult": Msg(fields=(("prepared_statement_handle", 1, "bytes", "optional"),)),
    # `info` is a serialized arrow.flight.protocol.FlightInfo per the spec (declared as bytes there too).
    "ActionCancelQueryRequest": Msg(fields=(("info", 1, "bytes", "plain"),), deprecated=True),
    "ActionCancelQueryResult": Msg(
        fields=(("result", 1, "CancelResult", "plain"),),
        enums=(("CancelResult", (
            ("CANCEL_RESULT_UNSPECIFIED", 0), ("CANCEL_RESULT_CANCELLED", 1),
            ("CANCEL_RESULT_CANCELLING", 2), ("CANCEL_RESULT_NOT_CANCELLABLE", 3),
        )),),
        deprecated=True,
    ),
}

# ---- Flight.proto (package arrow.flight.protocol): session options and cancellation only -------------------

FLIGHT_ENUMS: dict[str, tuple[tuple[str, int], ...]] = {
    "CancelStatus": (
        ("CANCEL_STATUS_UNSPECIFIED", 0), ("CANCEL_STATUS_CANCELLED", 1),
        ("CANCEL_STATUS_CANCELLING", 2), ("CANCEL_STATUS_NOT_CANCELLABLE", 3),
    ),
}

FLIGHT_MESSAGES: dict[str, Msg] = {
    # FlightInfo / FlightEndpoint are embedded messages in Flight.proto; `bytes` has the same wire form
    # (length-delimited), so these parse identically and pyarrow.flight.FlightInfo/FlightEndpoint.deserialize
    # decode the inner bytes without redeclaring the whole Flight.proto here.
    "CancelFlightInfoRequest": Msg(fields=(("info", 1, "bytes", "plain"),)),
    "CancelFlightInfoResult": Msg(fields=(("status", 1, "CancelStatus", "plain"),)),
    "RenewFlightEndpointRequest": Msg(fields=(("endpoint", 1, "bytes", "plain"),)),
    "SessionOptionValue": Msg(
        fields=(
            ("string_value", 1, "string", "oneof:option_value"),
            ("bool_value", 2, "bool", "oneof:option_value"),
            ("int64_value", 3, "sfixed64", "oneof:option_value"),  # sfixed64 per spec: 8 fixed bytes
            ("double_value", 4, "double", "oneof:option_value"),
            ("string_list_value", 5, "StringListValue", "oneof:option_value"),
        ),
        nested=(("StringListValue", Msg(fields=(("values", 1, "string", "repeated"),))),),
    ),
    "SetSessionOptionsRequest": Msg(
        fields=(("session_options", 1, "map<string,SessionOptionValue>", "map"),),
    ),
    "SetSessionOptionsResult": Msg(
        fields=(("errors", 1, "map<string,Error>", "map"),),
        enums=(("ErrorValue", (
            ("UNSPECIFIED", 0), ("INVALID_NAME", 1), ("INVALID_VALUE", 2), ("ERROR", 3),
        )),),
        nested=(("Error", Msg(fields=(("value", 1, "ErrorValue", "plain"),))),),
    ),
    "GetSessionOptionsRequest": Msg(),
    "GetSessionOptionsResult": Msg(
        fields=(("session_options", 1, "map<string,SessionOptionValue>", "map"),),
    ),
    "CloseSessionRequest": Msg(),
    "CloseSessionResult": Msg(
        fields=(("status", 1, "Status", "plain"),),
        enums=(("Status", (("UNSPECIFIED", 0), ("CLOSED", 1), ("CLOSING", 2), ("NOT_CLOSEABLE", 3))),),
    ),
}
