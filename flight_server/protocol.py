"""Flight SQL protobuf messages, built at import time from a table of field facts.

The messages of ``FlightSql.proto`` (package ``arrow.flight.protocol.sql``) and the session / cancel messages
of ``Flight.proto`` (package ``arrow.flight.protocol``) are declared as Python data in ``proto_spec``: message name ->
fields ``(name, number, type, label)``. The tables become ``FileDescriptorProto``s in a private
``DescriptorPool`` (so they never clash with another copy of the same names in the default pool) and the
classes come from ``message_factory.GetMessageClass``. No ``.proto`` file and no generated code is used.

Labels: ``plain`` (proto3 singular, no presence), ``optional`` (proto3 ``optional``: explicit presence via a
synthetic oneof), ``repeated``, ``map`` (type ``map<K,V>``; wire = repeated ``{K key = 1; V value = 2}``)
and ``oneof:<name>`` (member of a real oneof). A non-scalar type names a message or enum, looked up from
the innermost enclosing message outwards to the package, as protoc does.

Packing conventions (spec): Flight SQL commands, tickets and action bodies/results travel as serialized
``google.protobuf.Any`` (see ``pack`` / ``unpack``); ``DoPutUpdateResult``, ``DoPutPreparedStatementResult``
and the Flight core action messages travel raw (``SerializeToString`` / ``FromString``).
"""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import enum_type_wrapper
from google.protobuf.message import DecodeError, Message

from flight_server.proto_spec import FLIGHT_ENUMS, FLIGHT_MESSAGES, SQL_MESSAGES, Msg

SQL_PACKAGE = "arrow.flight.protocol.sql"
FLIGHT_PACKAGE = "arrow.flight.protocol"
TYPE_URL_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."

# Flight SQL action types (Action.type); bodies are Any-packed Flight SQL messages.
ACTION_CREATE_PREPARED_STATEMENT = "CreatePreparedStatement"
ACTION_CREATE_PREPARED_SUBSTRAIT_PLAN = "CreatePreparedSubstraitPlan"
ACTION_CLOSE_PREPARED_STATEMENT = "ClosePreparedStatement"
ACTION_BEGIN_TRANSACTION = "BeginTransaction"
ACTION_END_TRANSACTION = "EndTransaction"
ACTION_BEGIN_SAVEPOINT = "BeginSavepoint"
ACTION_END_SAVEPOINT = "EndSavepoint"
ACTION_CANCEL_QUERY = "CancelQuery"  # deprecated since Arrow 13 in favour of CancelFlightInfo
# Flight core action types; bodies and results are raw (not Any) Flight.proto messages.
ACTION_CANCEL_FLIGHT_INFO = "CancelFlightInfo"
ACTION_RENEW_FLIGHT_ENDPOINT = "RenewFlightEndpoint"
ACTION_SET_SESSION_OPTIONS = "SetSessionOptions"
ACTION_GET_SESSION_OPTIONS = "GetSessionOptions"
ACTION_CLOSE_SESSION = "CloseSession"


# ---- descriptor building ---------------------------------------------------------------------------------

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS: dict[str, int] = {
    name: getattr(_FDP, f"TYPE_{name.upper()}")
    for name in ("double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string",
                 "bytes", "uint32", "sfixed32", "sfixed64", "sint32", "sint64")
}


def _declared_names(package: str, messages: dict[str, Msg], enums: dict) -> dict[str, int]:
    """Full name (with leading dot) of every declared message/enum -> TYPE_MESSAGE or TYPE_ENUM."""
    names = {f".{package}.{name}": _FDP.TYPE_ENUM for name in enums}

    def walk(prefix: str, msgs) -> None:
        for name, spec in msgs:
            full = f"{prefix}.{name}"
            names[full] = _FDP.TYPE_MESSAGE
            names.update({f"{full}.{enum}": _FDP.TYPE_ENUM for enum, _ in spec.enums})
            walk(full, spec.nested)

    walk(f".{package}", messages.items())
    return names


def _resolve(type_name: str, scope: str, names: dict[str, int]) -> tuple[str, int]:
    # protoc scoping: innermost enclosing message first, then outwards to the package.
    while True:
        candidate = f"{scope}.{type_name}"
        if candidate in names:
            return candidate, names[candidate]
        if "." not in scope.lstrip("."):
            raise KeyError(f"unresolved protobuf type {type_name!r}")
        scope = scope.rsplit(".", 1)[0]


def _set_type(field: descriptor_pb2.FieldDescriptorProto, type_name: str, scope: str, names) -> None:
    if type_name in _SCALARS:
        field.type = _SCALARS[type_name]
    else:
        field.type_name, field.type = _resolve(type_name, scope, names)


def _enum_proto(name: str, values, out: descriptor_pb2.EnumDescriptorProto) -> None:
    out.name = name
    for value_name, number in values:
        out.value.add(name=value_name, number=number)


def _message_proto(name: str, spec: Msg, scope: str, names, out: descriptor_pb2.DescriptorProto) -> None:
    out.name = name
    full = f"{scope}.{name}"
    if spec.deprecated:
        out.options.deprecated = True
    for enum_name, values in spec.enums:
        _enum_proto(enum_name, values, out.enum_type.add())
    for nested_name, nested in spec.nested:
        _message_proto(nested_name, nested, full, names, out.nested_type.add())
    # Real oneofs must precede the synthetic ones that proto3 `optional` fields get.
    real_oneofs = list(dict.fromkeys(
        label.split(":", 1)[1] for *_, label in spec.fields if label.startswith("oneof:")
    ))
    for oneof in real_oneofs:
        out.oneof_decl.add(name=oneof)
    for field_name, number, type_name, label in spec.fields:
        field = out.field.add(name=field_name, number=number, label=_FDP.LABEL_OPTIONAL)
        if label == "repeated":
            field.label = _FDP.LABEL_REPEATED
            _set_type(field, type_name, full, names)
        elif label == "map":
            key_type, value_type = type_name.removeprefix("map<").removesuffix(">").split(",")
            entry_name = "".join(part.capitalize() for part in field_name.split("_")) + "Entry"
            entry = out.nested_type.add(name=entry_name)
            entry.options.map_entry = True
            for entry_field, entry_number, entry_type in (("key", 1, key_type), ("value", 2, value_type)):
                _set_type(entry.field.add(name=entry_field, number=entry_number, label=_FDP.LABEL_OPTIONAL),
                          entry_type.strip(), full, names)
            field.label = _FDP.LABEL_REPEATED
            field.type = _FDP.TYPE_MESSAGE
            field.type_name = f"{full}.{entry_name}"
        else:
            _set_type(field, type_name, full, names)
            if label == "optional":
                field.proto3_optional = True
                field.oneof_index = len(out.oneof_decl)
                out.oneof_decl.add(name=f"_{field_name}")
            elif label.startswith("oneof:"):
                field.oneof_index = real_oneofs.index(label.split(":", 1)[1])
            elif label != "plain":
                raise ValueError(f"unknown label {label!r} on {full}.{field_name}")


def _file_proto(
    file_name: str, package: str, messages: dict[str, Msg], enums: dict
) -> descriptor_pb2.FileDescriptorProto:
    names = _declared_names(package, messages, enums)
    proto = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    for enum_name, values in enums.items():
        _enum_proto(enum_name, values, proto.enum_type.add())
    for name, spec in messages.items():
        _message_proto(name, spec, f".{package}", names, proto.message_type.add())
    return proto


# Private pool: a generated FlightSql_pb2 elsewhere in the process would otherwise clash on the same names.
_POOL = descriptor_pool.DescriptorPool()
for _file in (
    _file_proto("gateway/flight_sql.proto", SQL_PACKAGE, SQL_MESSAGES, {}),
    _file_proto("gateway/flight_session.proto", FLIGHT_PACKAGE, FLIGHT_MESSAGES, FLIGHT_ENUMS),
):
    _POOL.AddSerializedFile(_file.SerializeToString())
del _file


def _cls(full_name: str) -> type[Message]:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))


SQL_MESSAGE_CLASSES: dict[str, type[Message]] = {
    name: _cls(f"{SQL_PACKAGE}.{name}") for name in SQL_MESSAGES
}
"""Every top-level Flight SQL message class by its spec name (the type_url's last component)."""

CommandGetSqlInfo = SQL_MESSAGE_CLASSES["CommandGetSqlInfo"]
CommandGetXdbcTypeInfo = SQL_MESSAGE_CLASSES["CommandGetXdbcTypeInfo"]
CommandGetCatalogs = SQL_MESSAGE_CLASSES["CommandGetCatalogs"]
CommandGetDbSchemas = SQL_MESSAGE_CLASSES["CommandGetDbSchemas"]
CommandGetTables = SQL_MESSAGE_CLASSES["CommandGetTables"]
CommandGetTableTypes = SQL_MESSAGE_CLASSES["CommandGetTableTypes"]
CommandGetPrimaryKeys = SQL_MESSAGE_CLASSES["CommandGetPrimaryKeys"]
CommandGetExportedKeys = SQL_MESSAGE_CLASSES["CommandGetExportedKeys"]
CommandGetImportedKeys = SQL_MESSAGE_CLASSES["CommandGetImportedKeys"]
CommandGetCrossReference = SQL_MESSAGE_CLASSES["CommandGetCrossReference"]
ActionCreatePreparedStatementRequest = SQL_MESSAGE_CLASSES["ActionCreatePreparedStatementRequest"]
ActionCreatePreparedStatementResult = SQL_MESSAGE_CLASSES["ActionCreatePreparedStatementResult"]
ActionClosePreparedStatementRequest = SQL_MESSAGE_CLASSES["ActionClosePreparedStatementRequest"]
ActionBeginTransactionRequest = SQL_MESSAGE_CLASSES["ActionBeginTransactionRequest"]
ActionBeginTransactionResult = SQL_MESSAGE_CLASSES["ActionBeginTransactionResult"]
ActionEndTransactionRequest = SQL_MESSAGE_CLASSES["ActionEndTransactionRequest"]
ActionBeginSavepointRequest = SQL_MESSAGE_CLASSES["ActionBeginSavepointRequest"]
ActionBeginSavepointResult = SQL_MESSAGE_CLASSES["ActionBeginSavepointResult"]
ActionEndSavepointRequest = SQL_MESSAGE_CLASSES["ActionEndSavepointRequest"]
CommandStatementQuery = SQL_MESSAGE_CLASSES["CommandStatementQuery"]
CommandStatementSubstraitPlan = SQL_MESSAGE_CLASSES["CommandStatementSubstraitPlan"]
SubstraitPlan = SQL_MESSAGE_CLASSES["SubstraitPlan"]
ActionCreatePreparedSubstraitPlanRequest = SQL_MESSAGE_CLASSES["ActionCreatePreparedSubstraitPlanRequest"]
TicketStatementQuery = SQL_MESSAGE_CLASSES["TicketStatementQuery"]
CommandPreparedStatementQuery = SQL_MESSAGE_CLASSES["CommandPreparedStatementQuery"]
CommandStatementUpdate = SQL_MESSAGE_CLASSES["CommandStatementUpdate"]
CommandPreparedStatementUpdate = SQL_MESSAGE_CLASSES["CommandPreparedStatementUpdate"]
CommandStatementIngest = SQL_MESSAGE_CLASSES["CommandStatementIngest"]
DoPutUpdateResult = SQL_MESSAGE_CLASSES["DoPutUpdateResult"]
DoPutPreparedStatementResult = SQL_MESSAGE_CLASSES["DoPutPreparedStatementResult"]
ActionCancelQueryRequest = SQL_MESSAGE_CLASSES["ActionCancelQueryRequest"]
ActionCancelQueryResult = SQL_MESSAGE_CLASSES["ActionCancelQueryResult"]

# Flight.proto messages (package arrow.flight.protocol); sent raw, never Any-packed.
CancelFlightInfoRequest = _cls(f"{FLIGHT_PACKAGE}.CancelFlightInfoRequest")
CancelFlightInfoResult = _cls(f"{FLIGHT_PACKAGE}.CancelFlightInfoResult")
RenewFlightEndpointRequest = _cls(f"{FLIGHT_PACKAGE}.RenewFlightEndpointRequest")
SessionOptionValue = _cls(f"{FLIGHT_PACKAGE}.SessionOptionValue")
SetSessionOptionsRequest = _cls(f"{FLIGHT_PACKAGE}.SetSessionOptionsRequest")
SetSessionOptionsResult = _cls(f"{FLIGHT_PACKAGE}.SetSessionOptionsResult")
GetSessionOptionsRequest = _cls(f"{FLIGHT_PACKAGE}.GetSessionOptionsRequest")
GetSessionOptionsResult = _cls(f"{FLIGHT_PACKAGE}.GetSessionOptionsResult")
CloseSessionRequest = _cls(f"{FLIGHT_PACKAGE}.CloseSessionRequest")
CloseSessionResult = _cls(f"{FLIGHT_PACKAGE}.CloseSessionResult")
CancelStatus = enum_type_wrapper.EnumTypeWrapper(_POOL.FindEnumTypeByName(f"{FLIGHT_PACKAGE}.CancelStatus"))
"""Flight.proto top-level enum CancelStatus: CANCEL_STATUS_UNSPECIFIED = 0 .. NOT_CANCELLABLE = 3."""


def pack(message: Message) -> bytes:
    """Serialize ``message`` inside a ``google.protobuf.Any`` (type_url 1, value 2), as Flight SQL requires.

    The type_url is ``TYPE_URL_PREFIX + <message name>``, e.g.
    ``type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery``. Only Flight SQL messages are
    accepted: Flight core messages (session options, CancelFlightInfo) and the DoPut results are sent raw.
    """
    descriptor = message.DESCRIPTOR
    if SQL_MESSAGE_CLASSES.get(descriptor.name) is not type(message):
        raise ValueError(f"{descriptor.full_name} is not a Flight SQL message; send it raw, not Any-packed")
    wrapper = any_pb2.Any(type_url=TYPE_URL_PREFIX + descriptor.name,
                          value=message.SerializeToString(deterministic=True))
    return wrapper.SerializeToString(deterministic=True)


def unpack(data: bytes) -> Message:
    """Parse a serialized ``google.protobuf.Any`` holding a Flight SQL message and return that message.

    As in the reference implementations, the full message name after the type_url's last ``/`` selects the
    class (any host prefix is accepted). Raises ``ValueError`` naming the type_url when the bytes are not an
    Any, the name is not a Flight SQL message, or the payload does not parse.
    """
    wrapper = any_pb2.Any()
    try:
        wrapper.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(f"not a google.protobuf.Any (Flight SQL command expected): {exc}") from exc
    type_url = wrapper.type_url
    package, _, name = type_url.rpartition("/")[2].rpartition(".")
    cls = SQL_MESSAGE_CLASSES.get(name) if package == SQL_PACKAGE else None
    if cls is None:
        raise ValueError(f"unknown Flight SQL message type_url {type_url!r}")
    message = cls()
    try:
        message.ParseFromString(wrapper.value)
    except DecodeError as exc:
        raise ValueError(f"malformed {name} payload for type_url {type_url!r}: {exc}") from exc
    return message

