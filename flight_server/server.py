"""The Arrow Flight SQL server: one method per RPC, commands dispatched by message type.

Follows the Flight SQL protocol (FlightSql.proto): commands arrive Any-packed in a FlightDescriptor's
``cmd``; GetFlightInfo answers a schema and one endpoint whose ticket this server can DoGet; actions carry
Any-packed requests and results. SQL planning and execution are the gateway's (``gateway.engine``); this
module only speaks the protocol. Auth is a middleware (Basic on Handshake -> Bearer token).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
from pyarrow import flight

from flight_server import protocol as pb
from flight_server.errors import to_flight_error
from flight_server.metadata import MetadataService
from gateway.auth import Authenticator
from gateway.engine import Gateway
from gateway.errors import GatewayError, InvalidRequestError, UnimplementedError, UnsupportedStatementError

log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    """A prepared statement: its SQL, bound parameters (one row) and result schema; owned by a user."""

    sql: str
    user: str | None
    dataset_schema: pa.Schema
    parameter_count: int
    params: list | None = None
    expires: float = 0.0


@dataclass
class _Statement:
    """A ticketed statement awaiting DoGet."""

    sql: str
    params: list | None
    user: str | None
    expires: float = field(default=0.0)


class _Handles:
    """Handle -> entry with an idle expiry, thread-safe."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[bytes, object] = {}
        self._lock = threading.Lock()

    def add(self, entry) -> bytes:
        handle = secrets.token_bytes(16)
        with self._lock:
            now = time.monotonic()
            self._entries = {h: e for h, e in self._entries.items() if e.expires > now}
            entry.expires = now + self.ttl_s
            self._entries[handle] = entry
        return handle

    def get(self, handle: bytes, user: str | None, kind: str):
        with self._lock:
            entry = self._entries.get(handle)
            if entry is None or entry.expires <= time.monotonic() or entry.user != user:
                raise InvalidRequestError(f"unknown or expired {kind} handle")
            entry.expires = time.monotonic() + self.ttl_s
            return entry

    def pop(self, handle: bytes) -> None:
        with self._lock:
            self._entries.pop(handle, None)


class _AuthMiddleware(flight.ServerMiddleware):
    def __init__(self, user: str | None, token: str | None) -> None:
        self.user = user
        self._token = token

    def sending_headers(self):
        return {"authorization": f"Bearer {self._token}"} if self._token else {}


class _HandshakeAccepted(flight.ServerAuthHandler):
    """Lets the Handshake RPC through; the credentials travel in its headers and the middleware checks them
    (Basic in, ``authorization: Bearer <token>`` out), as Flight SQL clients expect."""

    def authenticate(self, outgoing, incoming):
        pass

    def is_valid(self, token):
        return ""


class _AuthMiddlewareFactory(flight.ServerMiddlewareFactory):
    """Basic credentials (on Handshake or any call) yield a bearer token; other calls need the token."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def start_call(self, info, headers):
        if not self.authenticator.enabled:
            return _AuthMiddleware(None, None)
        values = headers.get("authorization") or headers.get("Authorization") or []
        try:
            user, token = self.authenticator.user_for_header(values[0] if values else None)
        except GatewayError as exc:
            raise to_flight_error(exc) from None
        return _AuthMiddleware(user, token)


class GatewayFlightServer(flight.FlightServerBase):
    """Flight SQL over a ``Gateway``.

    Served: Handshake, GetFlightInfo/GetSchema/DoGet for CommandStatementQuery, CommandPreparedStatementQuery
    and the metadata commands (GetSqlInfo, GetXdbcTypeInfo, GetCatalogs, GetDbSchemas, GetTables,
    GetTableTypes, GetPrimaryKeys, GetImportedKeys, GetExportedKeys, GetCrossReference); DoAction
    CreatePreparedStatement/ClosePreparedStatement; DoPut of prepared-statement parameters. Updates,
    ingest, transactions and Substrait answer with a clear error (read-only / UNIMPLEMENTED).
    """

    def __init__(
        self, gateway: Gateway, location: str, authenticator: Authenticator | None = None, **kwargs
    ) -> None:
        self.gateway = gateway
        self.authenticator = authenticator or Authenticator(gateway.settings.auth)
        super().__init__(
            location, auth_handler=_HandshakeAccepted(),
            middleware={"auth": _AuthMiddlewareFactory(self.authenticator)}, **kwargs,
        )
        ttl = gateway.settings.limits.statement_ttl_s
        self._statements = _Handles(ttl)
        self._prepared = _Handles(ttl)
        self.metadata = MetadataService(gateway)
        self._info_handlers: dict[str, Callable] = {
            "CommandStatementQuery": self._info_statement,
            "CommandPreparedStatementQuery": self._info_prepared,
        }

    # -- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _user(context) -> str | None:
        middleware = context.get_middleware("auth")
        return middleware.user if middleware else None

    @staticmethod
    def _command(data: bytes | None):
        if not data:
            raise to_flight_error(InvalidRequestError("a Flight SQL command (descriptor cmd) is required"))
        try:
            return pb.unpack(data)
        except ValueError as exc:
            raise to_flight_error(InvalidRequestError(str(exc))) from None

    def _flight_info(self, descriptor, schema: pa.Schema, ticket: bytes) -> flight.FlightInfo:
        endpoint = flight.FlightEndpoint(ticket, [])
        return flight.FlightInfo(schema, descriptor, [endpoint], -1, -1)

    # -- RPCs ------------------------------------------------------------------------------------------

    def get_flight_info(self, context, descriptor):
        command = self._command(descriptor.command)
        name = type(command).DESCRIPTOR.name
        try:
            if name in self._info_handlers:
                return self._info_handlers[name](context, descriptor, command)
            schema = self.metadata.schema_of(command)
            return self._flight_info(descriptor, schema, pb.pack(command))
        except GatewayError as exc:
            raise to_flight_error(exc) from None

    def get_schema(self, context, descriptor):
        return flight.SchemaResult(self.get_flight_info(context, descriptor).schema)

    def _info_statement(self, context, descriptor, command) -> flight.FlightInfo:
        user = self._user(context)
        schema = self.gateway.schema(command.query)
        handle = self._statements.add(_Statement(command.query, None, user))
        return self._flight_info(descriptor, schema, pb.pack(pb.TicketStatementQuery(statement_handle=handle)))

    def _info_prepared(self, context, descriptor, command) -> flight.FlightInfo:
        user = self._user(context)
        prepared = self._prepared.get(command.prepared_statement_handle, user, "prepared statement")
        if prepared.parameter_count and prepared.params is None:
            raise InvalidRequestError(
                f"the prepared statement has {prepared.parameter_count} parameter(s); bind them first (DoPut)"
            )
        schema = self.gateway.schema(prepared.sql, prepared.params)
        handle = self._statements.add(_Statement(prepared.sql, prepared.params, user))
        return self._flight_info(descriptor, schema, pb.pack(pb.TicketStatementQuery(statement_handle=handle)))

    def do_get(self, context, ticket):
        command = self._command(ticket.ticket)
        user = self._user(context)
        try:
            if isinstance(command, pb.TicketStatementQuery):
                statement = self._statements.get(command.statement_handle, user, "statement")
                self._statements.pop(command.statement_handle)
                result = self.gateway.execute(statement.sql, statement.params, user=user)
                return flight.RecordBatchStream(result.reader)
            return flight.RecordBatchStream(self.metadata.table_of(command))
        except GatewayError as exc:
            raise to_flight_error(exc) from None

    def do_put(self, context, descriptor, reader, writer):
        command = self._command(descriptor.command)
        user = self._user(context)
        try:
            if isinstance(command, pb.CommandPreparedStatementQuery):
                prepared = self._prepared.get(command.prepared_statement_handle, user, "prepared statement")
                table = reader.read_all()
                if table.num_rows > 1:
                    raise InvalidRequestError(
                        f"{table.num_rows} parameter rows were sent; executemany is not supported for queries"
                    )
                prepared.params = [c[0].as_py() for c in table.columns] if table.num_rows == 1 else None
                result = pb.DoPutPreparedStatementResult(prepared_statement_handle=command.prepared_statement_handle)
                writer.write(pa.py_buffer(result.SerializeToString()))
                return
            name = type(command).DESCRIPTOR.name
            if name in ("CommandStatementUpdate", "CommandPreparedStatementUpdate", "CommandStatementIngest",
                        "CommandStatementSubstraitPlan"):
                raise UnsupportedStatementError(f"{name} is refused: the gateway is read-only")
            raise UnimplementedError(f"DoPut does not accept {name}")
        except GatewayError as exc:
            raise to_flight_error(exc) from None

    def list_actions(self, context):
        return [
            (pb.ACTION_CREATE_PREPARED_STATEMENT, "Prepare a query; returns its handle and schemas"),
            (pb.ACTION_CLOSE_PREPARED_STATEMENT, "Release a prepared statement"),
        ]

    def do_action(self, context, action):
        user = self._user(context)
        try:
            if action.type == pb.ACTION_CREATE_PREPARED_STATEMENT:
                request = self._command(action.body.to_pybytes())
                yield flight.Result(pa.py_buffer(self._prepare(request.query, user)))
            elif action.type == pb.ACTION_CLOSE_PREPARED_STATEMENT:
                request = self._command(action.body.to_pybytes())
                self._prepared.pop(request.prepared_statement_handle)
            elif action.type == pb.ACTION_CLOSE_SESSION:
                # sessions hold nothing server-side yet; answer CLOSED (Flight.proto CloseSessionStatus 1)
                yield flight.Result(pa.py_buffer(pb.CloseSessionResult(status=1).SerializeToString()))
            elif action.type in (pb.ACTION_BEGIN_TRANSACTION, pb.ACTION_END_TRANSACTION,
                                 pb.ACTION_BEGIN_SAVEPOINT, pb.ACTION_END_SAVEPOINT):
                raise UnimplementedError(f"{action.type}: the gateway is read-only and has no transactions")
            else:
                raise UnimplementedError(f"action '{action.type}' is not supported")
        except GatewayError as exc:
            raise to_flight_error(exc) from None

    def _prepare(self, sql: str, user: str | None) -> bytes:
        from planner.parse import parse, placeholders

        statement = parse(sql)
        count = len(placeholders(statement.expression))
        # Plan with NULL parameters: the result schema does not depend on parameter values.
        schema = self.gateway.schema(sql, [None] * count if count else None)
        handle = self._prepared.add(_Prepared(sql, user, schema, count))
        parameter_schema = pa.schema([pa.field(f"${i + 1}", pa.null()) for i in range(count)])
        result = pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=handle,
            dataset_schema=schema.serialize().to_pybytes(),
            parameter_schema=parameter_schema.serialize().to_pybytes(),
        )
        return pb.pack(result)


def location_uri(host: str, port: int, tls: bool = False) -> str:
    scheme = "grpc+tls" if tls else "grpc"
    return f"{scheme}://{host}:{port}"

