"""The Arrow Flight SQL server: one method per RPC, commands dispatched by message type.

Follows the Flight SQL protocol (FlightSql.proto): commands arrive Any-packed in a FlightDescriptor's
``cmd``; GetFlightInfo answers a schema and one endpoint whose ticket this server can DoGet; actions carry
Any-packed requests and results. SQL planning and execution are the gateway's (``gateway.execution.engine``); this
module only speaks the protocol. Auth is a middleware (``flight_server.middleware``: Basic on Handshake or any
call -> Bearer token, or an API token); every call carries the caller's ``Principal``, whose sources bound what
it sees and queries.

A statement is planned once: GetFlightInfo plans it (for the schema it answers) and keeps the plan with the
ticket (``flight_server.handles``); DoGet runs that plan (``flight_server.streaming``). State kept per server:
statement tickets and prepared statements (bound to the principal that made them, dropped after
``limits.statement_ttl_s`` idle), running queries (for CancelFlightInfo), and sessions (the
``arrow_flight_session_id`` cookie) holding the ``catalog`` / ``schema`` session options.
"""

from __future__ import annotations

import time

import pyarrow as pa
from pyarrow import flight

from flight_server import protocol as pb
from flight_server import streaming
from flight_server.errors import to_flight_error, unexpected_error
from flight_server.handles import Handles, Prepared, Running, Statement
from flight_server.metadata import MetadataService
from flight_server.middleware import AuthMiddlewareFactory, Caller, HandshakeAccepted
from flight_server.sessions import SESSION_COOKIE, Sessions
from gateway.auth import Authenticator
from gateway.errors import GatewayError, InvalidRequestError, UnimplementedError, UnsupportedStatementError
from gateway.execution.engine import QueryEngine

_READ_ONLY_COMMANDS = ("CommandStatementUpdate", "CommandPreparedStatementUpdate", "CommandStatementIngest",
                       "CommandStatementSubstraitPlan")
_TRANSACTION_ACTIONS = (pb.ACTION_BEGIN_TRANSACTION, pb.ACTION_END_TRANSACTION, pb.ACTION_BEGIN_SAVEPOINT,
                        pb.ACTION_END_SAVEPOINT)
_SESSION_ACTIONS = (pb.ACTION_SET_SESSION_OPTIONS, pb.ACTION_GET_SESSION_OPTIONS, pb.ACTION_CLOSE_SESSION)


class GatewayFlightServer(flight.FlightServerBase):
    """Flight SQL over a ``QueryEngine``.

    Served: Handshake; GetFlightInfo/GetSchema/DoGet for CommandStatementQuery, CommandPreparedStatementQuery
    and the metadata commands (GetSqlInfo, GetXdbcTypeInfo, GetCatalogs, GetDbSchemas, GetTables,
    GetTableTypes, GetPrimaryKeys, GetImportedKeys, GetExportedKeys, GetCrossReference); DoAction
    CreatePreparedStatement / ClosePreparedStatement, CancelFlightInfo (and the deprecated CancelQuery),
    SetSessionOptions / GetSessionOptions / CloseSession; DoPut of prepared-statement parameters. Updates,
    ingest, transactions and Substrait answer with a clear error (read-only / UNIMPLEMENTED).

    ``tls_certificates``: ``[(cert_pem, key_pem)]`` to serve ``grpc+tls``.
    """

    def __init__(
        self, gateway: QueryEngine, location: str, authenticator: Authenticator | None = None, **kwargs
    ) -> None:
        self.gateway = gateway
        self.authenticator = authenticator or Authenticator(gateway.settings.auth)
        super().__init__(location, auth_handler=HandshakeAccepted(),
                         middleware={"call": AuthMiddlewareFactory(self.authenticator)}, **kwargs)
        ttl = gateway.settings.limits.statement_ttl_s
        self._statements = Handles(ttl)
        self._prepared = Handles(ttl)
        self._running = Running()
        self.sessions = Sessions(ttl_s=max(ttl, gateway.settings.auth.token_ttl_s))
        self.metadata = MetadataService(gateway)

    # -- RPCs ------------------------------------------------------------------------------------------

    def get_flight_info(self, context, descriptor):
        command = _command(descriptor.command)
        name = type(command).DESCRIPTOR.name
        try:
            caller = Caller.of(context, self.sessions)
            if name == "CommandStatementQuery":
                return self._ticket(caller, descriptor, command.query, None)
            if name == "CommandPreparedStatementQuery":
                prepared = self._prepared.get(command.prepared_statement_handle, caller.owner, "prepared statement")
                count = len(prepared.parameter_schema)
                if count and prepared.params is None:
                    error = InvalidRequestError(f"the prepared statement has {count} parameter(s); bind them "
                                                "first (DoPut)")
                    self._record_failure(caller, prepared.sql, error, time.perf_counter())
                    raise error
                reuse = prepared.params is None and prepared.scope == caller.scope()
                planned = prepared.plan_for(self.gateway.catalog.version) if reuse else None
                return self._ticket(caller, descriptor, prepared.sql, prepared.params, planned)
            if name in _READ_ONLY_COMMANDS:
                raise UnimplementedError(f"{name} is refused: the gateway is read-only")
            return _flight_info(descriptor, self.metadata.schema_of(command), pb.pack(command))
        except Exception as exc:
            raise unexpected_error(exc, "GetFlightInfo") from None

    def get_schema(self, context, descriptor):
        command = _command(descriptor.command)
        try:
            caller = Caller.of(context, self.sessions)
            if isinstance(command, pb.CommandStatementQuery):
                return flight.SchemaResult(self._planned(caller, command.query, None)[0])
            if isinstance(command, pb.CommandPreparedStatementQuery):
                prepared = self._prepared.get(command.prepared_statement_handle, caller.owner, "prepared statement")
                return flight.SchemaResult(prepared.dataset_schema)
        except Exception as exc:
            raise unexpected_error(exc, "GetSchema") from None
        return flight.SchemaResult(self.get_flight_info(context, descriptor).schema)

    def do_get(self, context, ticket):
        command = _command(ticket.ticket)
        try:
            caller = Caller.of(context, self.sessions)
            if isinstance(command, pb.TicketStatementQuery):
                handle = command.statement_handle
                statement = self._statements.get(handle, caller.owner, "statement")
                self._statements.pop(handle)
                self._running.add(handle, statement)
                return streaming.stream(self.gateway, context, statement, lambda: self._running.remove(handle))
            return flight.RecordBatchStream(self.metadata.table_of(command, caller.scope()))
        except Exception as exc:
            raise unexpected_error(exc, "DoGet") from None

    def do_put(self, context, descriptor, reader, writer):
        command = _command(descriptor.command)
        try:
            if isinstance(command, pb.CommandPreparedStatementQuery):
                owner = Caller.of(context, self.sessions).owner
                prepared = self._prepared.get(command.prepared_statement_handle, owner, "prepared statement")
                table = reader.read_all()
                if table.num_rows > 1:
                    raise InvalidRequestError(
                        f"{table.num_rows} parameter rows were sent; executemany is not supported for queries")
                prepared.params = [c[0].as_py() for c in table.columns] if table.num_rows == 1 else None
                result = pb.DoPutPreparedStatementResult(prepared_statement_handle=command.prepared_statement_handle)
                writer.write(pa.py_buffer(result.SerializeToString()))
                return
            name = type(command).DESCRIPTOR.name
            if name in _READ_ONLY_COMMANDS:
                raise UnsupportedStatementError(f"{name} is refused: the gateway is read-only")
            raise UnimplementedError(f"DoPut does not accept {name}")
        except Exception as exc:
            raise unexpected_error(exc, "DoPut") from None

    def list_actions(self, context):
        return [
            (pb.ACTION_CREATE_PREPARED_STATEMENT, "Prepare a query; returns its handle and schemas"),
            (pb.ACTION_CLOSE_PREPARED_STATEMENT, "Release a prepared statement"),
            (pb.ACTION_CANCEL_FLIGHT_INFO, "Cancel a running query (its source statements stop)"),
            (pb.ACTION_CANCEL_QUERY, "Cancel a running query (deprecated form of CancelFlightInfo)"),
            (pb.ACTION_SET_SESSION_OPTIONS, "Set session options: catalog, schema"),
            (pb.ACTION_GET_SESSION_OPTIONS, "Get the session options"),
            (pb.ACTION_CLOSE_SESSION, "Close the session"),
        ]

    def do_action(self, context, action):
        body = action.body.to_pybytes() if action.body is not None else b""
        try:
            caller = Caller.of(context, self.sessions)
            if action.type == pb.ACTION_CREATE_PREPARED_STATEMENT:
                return [flight.Result(pa.py_buffer(self._prepare(caller, _command(body).query)))]
            if action.type == pb.ACTION_CLOSE_PREPARED_STATEMENT:
                self._prepared.pop(_command(body).prepared_statement_handle, caller.owner)
                return []
            if action.type == pb.ACTION_CANCEL_FLIGHT_INFO:
                status = self._cancel(caller, pb.CancelFlightInfoRequest.FromString(body).info)
                return [flight.Result(pa.py_buffer(pb.CancelFlightInfoResult(status=status).SerializeToString()))]
            if action.type == pb.ACTION_CANCEL_QUERY:
                status = self._cancel(caller, _command(body).info)  # CancelStatus and CancelResult share numbers
                return [flight.Result(pa.py_buffer(pb.pack(pb.ActionCancelQueryResult(result=status))))]
            if action.type in _SESSION_ACTIONS:
                return [flight.Result(pa.py_buffer(self._session_action(context, caller, action.type, body)))]
            if action.type in _TRANSACTION_ACTIONS:
                raise UnimplementedError(f"{action.type}: the gateway is read-only and has no transactions")
            raise UnimplementedError(f"action '{action.type}' is not supported")
        except Exception as exc:
            raise unexpected_error(exc, "DoAction") from None

    # -- statements ------------------------------------------------------------------------------------

    def _planned(self, caller: Caller, sql: str, params: list | None) -> tuple[pa.Schema, tuple]:
        """``(schema, (statement, plan))`` of ``sql`` for ``caller``; a GatewayError is recorded as a failed
        Flight SQL query of ``sql`` (history, metrics, log: it never reaches DoGet, where the engine records
        the queries it runs)."""
        t0 = time.perf_counter()
        try:
            planned = self.gateway.plan_statement(sql, params, **caller.scope())
        except GatewayError as exc:
            self._record_failure(caller, sql, exc, t0)
            raise
        return self.gateway.result_schema(*planned), planned

    def _record_failure(self, caller: Caller, sql: str, exc: GatewayError, t0: float) -> None:
        self.gateway.metrics.record_failure(sql, exc, user=caller.owner, protocol="flight_sql",
                                            seconds=time.perf_counter() - t0)

    def _ticket(self, caller: Caller, descriptor, sql: str, params: list | None, planned: tuple | None = None
                ) -> flight.FlightInfo:
        """Plan ``sql`` (unless ``planned`` holds its plan already) and answer its schema with a ticket that
        holds the plan for DoGet."""
        version = self.gateway.catalog.version
        if planned is None:
            schema, planned = self._planned(caller, sql, params)
        else:
            schema = self.gateway.result_schema(*planned)
        # the freshness manifest as of planning (fingerprints now), JSON in app_metadata (gateway.trust); the run
        # DoGet starts from it, so the fingerprints are read once
        preview = self.gateway.trust.preview(sql, params, planned[1], caller.option("max_staleness_s"))
        handle = self._statements.add(Statement(
            sql, params, caller.owner, caller.scope(), max_staleness_s=caller.option("max_staleness_s"),
            timeout_s=caller.option("timeout_s"), planned=planned, catalog_version=version, manifest=preview))
        return _flight_info(descriptor, schema, pb.pack(pb.TicketStatementQuery(statement_handle=handle)),
                            self.gateway.trust.flight_metadata(preview))

    def _prepare(self, caller: Caller, sql: str) -> bytes:
        """CreatePreparedStatement: a handle and the schemas; a statement without parameters keeps its plan."""
        scope = caller.scope()
        version = self.gateway.catalog.version
        t0 = time.perf_counter()
        try:
            parameter_schema = self.gateway.parameter_schema(sql, **scope)
            # Plan with NULL parameters: the result schema does not depend on parameter values.
            params = [None] * len(parameter_schema) if len(parameter_schema) else None
            planned = self.gateway.plan_statement(sql, params, **scope)
        except GatewayError as exc:
            self._record_failure(caller, sql, exc, t0)
            raise
        schema = self.gateway.result_schema(*planned)
        handle = self._prepared.add(Prepared(sql, caller.owner, schema, parameter_schema, scope=scope,
                                             planned=None if params else planned, catalog_version=version))
        return pb.pack(pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=handle, dataset_schema=schema.serialize().to_pybytes(),
            parameter_schema=parameter_schema.serialize().to_pybytes()))

    def _cancel(self, caller: Caller, info_bytes: bytes) -> int:
        """CancelStatus of cancelling the statement a FlightInfo's ticket names (only its owner may)."""
        try:
            info = flight.FlightInfo.deserialize(info_bytes)
            tickets = [pb.unpack(e.ticket.ticket) for e in info.endpoints]
        except (ValueError, pa.ArrowException) as exc:
            raise InvalidRequestError(f"CancelFlightInfo: not a FlightInfo of this server: {exc}") from None
        status = pb.CancelStatus.Value("CANCEL_STATUS_NOT_CANCELLABLE")
        for ticket in tickets:
            if not isinstance(ticket, pb.TicketStatementQuery):
                continue
            pending = self._statements.pop(ticket.statement_handle, caller.owner)
            running = self._running.get(ticket.statement_handle)
            if running is not None and running.owner == caller.owner:
                running.cancel.set()
                status = pb.CancelStatus.Value("CANCEL_STATUS_CANCELLING")
            elif pending is not None:
                status = pb.CancelStatus.Value("CANCEL_STATUS_CANCELLED")
        return status

    def _session_action(self, context, caller: Caller, kind: str, body: bytes) -> bytes:
        if kind == pb.ACTION_CLOSE_SESSION:
            self.sessions.close(caller.cookie, caller.owner)
            return pb.CloseSessionResult(status=1).SerializeToString()  # CLOSED
        session, created = self.sessions.get_or_create(caller.cookie, caller.owner)
        if created:
            context.add_header("set-cookie", f"{SESSION_COOKIE}={session.id}")
        if kind == pb.ACTION_GET_SESSION_OPTIONS:
            return self.sessions.options_result(session).SerializeToString()
        principal = caller.principal
        allowed = [s for s in self.gateway.catalog.list_sources() if principal is None or principal.may_use(s)]
        request = pb.SetSessionOptionsRequest.FromString(body)
        return self.sessions.set_options(session, request, allowed).SerializeToString()


def _command(data: bytes | None):
    """The Flight SQL command Any-packed in ``data`` (InvalidArgument when there is none or it is unknown)."""
    if not data:
        raise to_flight_error(InvalidRequestError("a Flight SQL command (descriptor cmd) is required"))
    try:
        return pb.unpack(data)
    except ValueError as exc:
        raise to_flight_error(InvalidRequestError(str(exc))) from None


def _flight_info(descriptor, schema: pa.Schema, ticket: bytes, app_metadata: bytes = b"") -> flight.FlightInfo:
    return flight.FlightInfo(schema, descriptor, [flight.FlightEndpoint(ticket, [])], -1, -1,
                             app_metadata=app_metadata)


def location_uri(host: str, port: int, tls: bool = False) -> str:
    scheme = "grpc+tls" if tls else "grpc"
    return f"{scheme}://{host}:{port}"
