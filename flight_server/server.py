"""The Arrow Flight SQL server: one method per RPC, commands dispatched by message type.

Follows the Flight SQL protocol (FlightSql.proto): commands arrive Any-packed in a FlightDescriptor's
``cmd``; GetFlightInfo answers a schema and one endpoint whose ticket this server can DoGet; actions carry
Any-packed requests and results. SQL planning and execution are the gateway's (``gateway.execution.engine``); this
module only speaks the protocol. Auth is a middleware (Basic on Handshake or any call -> Bearer token, or an
API token); every call carries the caller's ``Principal``, whose sources bound what it sees and queries.

State kept per server: statement tickets and prepared statements (bound to the principal that made them,
dropped after ``limits.statement_ttl_s`` idle), running queries (for CancelFlightInfo), and sessions (the
``arrow_flight_session_id`` cookie) holding the ``catalog`` / ``schema`` session options.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from pyarrow import flight

from flight_server import protocol as pb
from flight_server.errors import to_flight_error, unexpected_error
from flight_server.metadata import MetadataService
from flight_server.sessions import SESSION_COOKIE, Sessions
from gateway.auth import Authenticator, Principal
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    QueryCancelledError,
    UnimplementedError,
    UnsupportedStatementError,
)
from gateway.execution.engine import QueryEngine
from gateway.metrics import query_protocol

log = logging.getLogger(__name__)

_READ_ONLY_COMMANDS = ("CommandStatementUpdate", "CommandPreparedStatementUpdate", "CommandStatementIngest",
                       "CommandStatementSubstraitPlan")


@dataclass
class _Prepared:
    """A prepared statement: its SQL, bound parameters (one row) and schemas; owned by a principal."""

    sql: str
    owner: str | None
    dataset_schema: pa.Schema
    parameter_schema: pa.Schema
    params: list | None = None
    expires: float = 0.0


@dataclass
class _Statement:
    """A ticketed statement awaiting DoGet; ``cancel`` is set by CancelFlightInfo."""

    sql: str
    params: list | None
    owner: str | None
    scope: dict
    cancel: threading.Event = field(default_factory=threading.Event)
    expires: float = 0.0
    max_staleness_s: float | None = None
    timeout_s: float | None = None


class _Handles:
    """Handle -> entry with an idle expiry, thread-safe. Entries are bound to the principal that made them."""

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

    def get(self, handle: bytes, owner: str | None, kind: str):
        with self._lock:
            entry = self._entries.get(handle)
            if entry is None or entry.expires <= time.monotonic() or entry.owner != owner:
                raise InvalidRequestError(f"unknown or expired {kind} handle")
            entry.expires = time.monotonic() + self.ttl_s
            return entry

    def pop(self, handle: bytes, owner: str | None = None):
        with self._lock:
            entry = self._entries.get(handle)
            if entry is not None and (owner is None or entry.owner == owner):
                return self._entries.pop(handle)
        return None

    def __len__(self) -> int:
        with self._lock:
            now = time.monotonic()
            return sum(1 for e in self._entries.values() if e.expires > now)


class _CallMiddleware(flight.ServerMiddleware):
    def __init__(self, principal: Principal | None, token: str | None, cookies: dict[str, str]) -> None:
        self.principal = principal
        self.cookies = cookies
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


class _MiddlewareFactory(flight.ServerMiddlewareFactory):
    """Authenticates every call: Basic credentials yield a bearer token; other calls need a bearer token."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def start_call(self, info, headers):
        cookies = _cookies(headers.get("cookie") or headers.get("Cookie") or [])
        if not self.authenticator.enabled:
            return _CallMiddleware(None, None, cookies)
        values = headers.get("authorization") or headers.get("Authorization") or []
        try:
            principal, token = self.authenticator.user_for_header(values[0] if values else None)
        except Exception as exc:
            raise unexpected_error(exc, "authentication") from None
        return _CallMiddleware(principal, token, cookies)


def _cookies(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        for part in value.split(";"):
            name, _, content = part.strip().partition("=")
            if name:
                out[name] = content
    return out


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
        super().__init__(
            location, auth_handler=_HandshakeAccepted(),
            middleware={"call": _MiddlewareFactory(self.authenticator)}, **kwargs,
        )
        ttl = gateway.settings.limits.statement_ttl_s
        self._statements = _Handles(ttl)
        self._prepared = _Handles(ttl)
        self._running: dict[bytes, _Statement] = {}
        self._running_lock = threading.Lock()
        self.sessions = Sessions(ttl_s=max(ttl, gateway.settings.auth.token_ttl_s))
        self.metadata = MetadataService(gateway)

    # -- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _middleware(context) -> _CallMiddleware | None:
        return context.get_middleware("call")

    def _principal(self, context) -> Principal | None:
        middleware = self._middleware(context)
        return middleware.principal if middleware else None

    def _owner(self, context) -> str | None:
        principal = self._principal(context)
        return principal.name if principal else None

    def _scope(self, context) -> dict:
        """The engine's scope for this caller: allowed sources and the session's default catalog/schema."""
        principal = self._principal(context)
        middleware = self._middleware(context)
        session = self.sessions.get(middleware.cookies.get(SESSION_COOKIE) if middleware else None,
                                    self._owner(context))
        options = session.options if session else {}
        return {"allowed_sources": principal.sources if principal else None,
                "default_catalog": options.get("catalog"), "default_schema": options.get("schema")}

    def _staleness(self, context) -> float | None:
        """The session's ``max_staleness_s`` option (seconds a cached partition may be old), if set."""
        return self._session_option(context, "max_staleness_s")

    def _session_option(self, context, name: str) -> float | None:
        middleware = self._middleware(context)
        session = self.sessions.get(middleware.cookies.get(SESSION_COOKIE) if middleware else None,
                                    self._owner(context))
        return session.options.get(name) if session else None

    @staticmethod
    def _command(data: bytes | None):
        if not data:
            raise to_flight_error(InvalidRequestError("a Flight SQL command (descriptor cmd) is required"))
        try:
            return pb.unpack(data)
        except ValueError as exc:
            raise to_flight_error(InvalidRequestError(str(exc))) from None

    @staticmethod
    def _flight_info(descriptor, schema: pa.Schema, ticket: bytes) -> flight.FlightInfo:
        endpoint = flight.FlightEndpoint(ticket, [])
        return flight.FlightInfo(schema, descriptor, [endpoint], -1, -1)

    # -- GetFlightInfo / GetSchema ---------------------------------------------------------------------

    def get_flight_info(self, context, descriptor):
        command = self._command(descriptor.command)
        name = type(command).DESCRIPTOR.name
        try:
            if name == "CommandStatementQuery":
                return self._info_statement(context, descriptor, command)
            if name == "CommandPreparedStatementQuery":
                return self._info_prepared(context, descriptor, command)
            if name in _READ_ONLY_COMMANDS:
                raise UnimplementedError(f"{name} is refused: the gateway is read-only")
            schema = self.metadata.schema_of(command)
            return self._flight_info(descriptor, schema, pb.pack(command))
        except Exception as exc:
            raise unexpected_error(exc, "GetFlightInfo") from None

    def get_schema(self, context, descriptor):
        command = self._command(descriptor.command)
        try:
            if isinstance(command, pb.CommandStatementQuery):
                scope = self._scope(context)
                return flight.SchemaResult(self._recorded(
                    context, command.query, lambda: self.gateway.schema(command.query, **scope)))
            if isinstance(command, pb.CommandPreparedStatementQuery):
                prepared = self._prepared.get(command.prepared_statement_handle, self._owner(context),
                                              "prepared statement")
                return flight.SchemaResult(prepared.dataset_schema)
        except Exception as exc:
            raise unexpected_error(exc, "GetSchema") from None
        return flight.SchemaResult(self.get_flight_info(context, descriptor).schema)

    def _recorded(self, context, sql: str, call):
        """``call()``; a GatewayError it raises is recorded as a failed Flight SQL query of ``sql`` (history,
        metrics, log: the statement never reaches DoGet, where the engine records the queries it runs)."""
        t0 = time.perf_counter()
        try:
            return call()
        except GatewayError as exc:
            self.gateway.metrics.record_failure(sql, exc, user=self._owner(context), protocol="flight_sql",
                                                seconds=time.perf_counter() - t0)
            raise

    def _info_statement(self, context, descriptor, command) -> flight.FlightInfo:
        scope = self._scope(context)
        schema = self._recorded(context, command.query, lambda: self.gateway.schema(command.query, **scope))
        handle = self._statements.add(_Statement(command.query, None, self._owner(context), scope,
                                                 max_staleness_s=self._staleness(context),
                                                 timeout_s=self._session_option(context, "timeout_s")))
        return self._flight_info(descriptor, schema, pb.pack(pb.TicketStatementQuery(statement_handle=handle)))

    def _info_prepared(self, context, descriptor, command) -> flight.FlightInfo:
        owner = self._owner(context)
        prepared = self._prepared.get(command.prepared_statement_handle, owner, "prepared statement")
        count = len(prepared.parameter_schema)
        scope = self._scope(context)

        def plan() -> pa.Schema:
            if count and prepared.params is None:
                raise InvalidRequestError(f"the prepared statement has {count} parameter(s); bind them first (DoPut)")
            return self.gateway.schema(prepared.sql, prepared.params, **scope)

        schema = self._recorded(context, prepared.sql, plan)
        handle = self._statements.add(_Statement(prepared.sql, prepared.params, owner, scope,
                                                 max_staleness_s=self._staleness(context),
                                                 timeout_s=self._session_option(context, "timeout_s")))
        return self._flight_info(descriptor, schema, pb.pack(pb.TicketStatementQuery(statement_handle=handle)))

    # -- DoGet -----------------------------------------------------------------------------------------

    def do_get(self, context, ticket):
        command = self._command(ticket.ticket)
        try:
            if isinstance(command, pb.TicketStatementQuery):
                handle = command.statement_handle
                statement = self._statements.get(handle, self._owner(context), "statement")
                self._statements.pop(handle)
                return self._stream(context, handle, statement)
            return flight.RecordBatchStream(self.metadata.table_of(command, self._scope(context)))
        except Exception as exc:
            raise unexpected_error(exc, "DoGet") from None

    def _stream(self, context, handle: bytes, statement: _Statement) -> flight.FlightDataStream:
        """Start the statement on a pump thread while this (the call's) thread watches for the client going
        away (``context.is_cancelled()``, only ever asked on the call's own thread) and for CancelFlightInfo;
        either cancels the query, whose sources then stop their statements. Once the first batch is there, the
        call's thread reads the rest itself (no second hand-off per batch), checking between batches."""
        batches: queue.Queue = queue.Queue(maxsize=8)
        holder: dict[str, object] = {}
        done = object()
        handoff = object()
        engine_cancel = threading.Event()  # the engine's own; it also sets it when the query ends

        def put(item) -> bool:
            while not statement.cancel.is_set():
                try:
                    batches.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def pump() -> None:
            try:
                with query_protocol("flight_sql"):
                    result = self.gateway.execute(statement.sql, statement.params, user=statement.owner,
                                                  cancel=engine_cancel, max_staleness_s=statement.max_staleness_s,
                                                  timeout_s=statement.timeout_s,
                                                  **statement.scope)
                holder["result"] = result
                put(result.schema)
                try:
                    first = result.reader.read_next_batch()
                except StopIteration:
                    put(done)
                    return
                if put(first):
                    put(handoff)
            except BaseException as exc:
                put(exc)

        with self._running_lock:
            self._running[handle] = statement
        threading.Thread(target=pump, name="flight-doget", daemon=True).start()

        def cancel() -> None:
            statement.cancel.set()
            engine_cancel.set()
            result = holder.get("result")
            if result is not None:
                result.cancel()

        def next_item():
            while True:
                try:
                    item = batches.get(timeout=0.2)
                except queue.Empty:
                    if context.is_cancelled():
                        cancel()
                        raise QueryCancelledError("the client went away") from None
                    if statement.cancel.is_set():
                        cancel()
                        raise QueryCancelledError("the query was cancelled (CancelFlightInfo)") from None
                    continue
                if isinstance(item, BaseException):
                    raise item
                return item

        def finish() -> None:
            with self._running_lock:
                self._running.pop(handle, None)

        try:
            schema = next_item()
        except BaseException:
            finish()
            raise

        def generate() -> Iterator[pa.RecordBatch]:
            completed = False
            try:
                while True:
                    item = next_item()
                    if item is done:
                        completed = True
                        return
                    if item is handoff:
                        break
                    yield item
                for batch in holder["result"].reader:
                    if context.is_cancelled() or statement.cancel.is_set():
                        cancel()
                        raise QueryCancelledError("the query was cancelled")
                    yield batch
                completed = True
            except Exception as exc:
                raise unexpected_error(exc, "DoGet") from None
            finally:
                if not completed:  # the client went away or the stream was closed early: stop the sources
                    cancel()
                    result = holder.get("result")
                    if result is not None:
                        result.reader.close()  # ends the engine's generators now, which release the sources
                finish()

        return flight.GeneratorStream(schema, generate())

    # -- DoPut -----------------------------------------------------------------------------------------

    def do_put(self, context, descriptor, reader, writer):
        command = self._command(descriptor.command)
        try:
            if isinstance(command, pb.CommandPreparedStatementQuery):
                prepared = self._prepared.get(command.prepared_statement_handle, self._owner(context),
                                              "prepared statement")
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
            if name in _READ_ONLY_COMMANDS:
                raise UnsupportedStatementError(f"{name} is refused: the gateway is read-only")
            raise UnimplementedError(f"DoPut does not accept {name}")
        except Exception as exc:
            raise unexpected_error(exc, "DoPut") from None

    # -- DoAction --------------------------------------------------------------------------------------

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
            if action.type == pb.ACTION_CREATE_PREPARED_STATEMENT:
                request = self._command(body)
                return [flight.Result(pa.py_buffer(self._prepare(context, request.query)))]
            if action.type == pb.ACTION_CLOSE_PREPARED_STATEMENT:
                request = self._command(body)
                self._prepared.pop(request.prepared_statement_handle, self._owner(context))
                return []
            if action.type == pb.ACTION_CANCEL_FLIGHT_INFO:
                request = pb.CancelFlightInfoRequest.FromString(body)
                status = self._cancel(context, request.info)
                return [flight.Result(pa.py_buffer(pb.CancelFlightInfoResult(status=status).SerializeToString()))]
            if action.type == pb.ACTION_CANCEL_QUERY:
                request = self._command(body)
                status = self._cancel(context, request.info)  # CancelStatus and CancelResult share numbers
                return [flight.Result(pa.py_buffer(pb.pack(pb.ActionCancelQueryResult(result=status))))]
            if action.type in (pb.ACTION_SET_SESSION_OPTIONS, pb.ACTION_GET_SESSION_OPTIONS,
                               pb.ACTION_CLOSE_SESSION):
                return [flight.Result(pa.py_buffer(self._session_action(context, action.type, body)))]
            if action.type in (pb.ACTION_BEGIN_TRANSACTION, pb.ACTION_END_TRANSACTION,
                               pb.ACTION_BEGIN_SAVEPOINT, pb.ACTION_END_SAVEPOINT):
                raise UnimplementedError(f"{action.type}: the gateway is read-only and has no transactions")
            raise UnimplementedError(f"action '{action.type}' is not supported")
        except Exception as exc:
            raise unexpected_error(exc, "DoAction") from None

    def _prepare(self, context, sql: str) -> bytes:
        scope = self._scope(context)

        def plan() -> tuple[pa.Schema, pa.Schema]:
            parameter_schema = self.gateway.parameter_schema(sql, **scope)
            # Plan with NULL parameters: the result schema does not depend on parameter values.
            params = [None] * len(parameter_schema) if len(parameter_schema) else None
            return parameter_schema, self.gateway.schema(sql, params, **scope)

        parameter_schema, schema = self._recorded(context, sql, plan)
        handle = self._prepared.add(_Prepared(sql, self._owner(context), schema, parameter_schema))
        result = pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=handle,
            dataset_schema=schema.serialize().to_pybytes(),
            parameter_schema=parameter_schema.serialize().to_pybytes(),
        )
        return pb.pack(result)

    def _cancel(self, context, info_bytes: bytes) -> int:
        """CancelStatus of cancelling the statement a FlightInfo's ticket names (only its owner may)."""
        try:
            info = flight.FlightInfo.deserialize(info_bytes)
            tickets = [pb.unpack(e.ticket.ticket) for e in info.endpoints]
        except (ValueError, pa.ArrowException) as exc:
            raise InvalidRequestError(f"CancelFlightInfo: not a FlightInfo of this server: {exc}") from None
        owner = self._owner(context)
        status = pb.CancelStatus.Value("CANCEL_STATUS_NOT_CANCELLABLE")
        for ticket in tickets:
            if not isinstance(ticket, pb.TicketStatementQuery):
                continue
            handle = ticket.statement_handle
            pending = self._statements.pop(handle, owner)
            with self._running_lock:
                running = self._running.get(handle)
            if running is not None and running.owner == owner:
                running.cancel.set()
                status = pb.CancelStatus.Value("CANCEL_STATUS_CANCELLING")
            elif pending is not None:
                status = pb.CancelStatus.Value("CANCEL_STATUS_CANCELLED")
        return status

    def _session_action(self, context, kind: str, body: bytes) -> bytes:
        middleware = self._middleware(context)
        owner = self._owner(context)
        cookie = middleware.cookies.get(SESSION_COOKIE) if middleware else None
        if kind == pb.ACTION_CLOSE_SESSION:
            self.sessions.close(cookie, owner)
            return pb.CloseSessionResult(status=1).SerializeToString()  # CLOSED
        session, created = self.sessions.get_or_create(cookie, owner)
        if created:
            context.add_header("set-cookie", f"{SESSION_COOKIE}={session.id}")
        if kind == pb.ACTION_GET_SESSION_OPTIONS:
            return self.sessions.options_result(session).SerializeToString()
        principal = self._principal(context)
        allowed = [s for s in self.gateway.catalog.list_sources() if principal is None or principal.may_use(s)]
        request = pb.SetSessionOptionsRequest.FromString(body)
        return self.sessions.set_options(session, request, allowed).SerializeToString()


def location_uri(host: str, port: int, tls: bool = False) -> str:
    scheme = "grpc+tls" if tls else "grpc"
    return f"{scheme}://{host}:{port}"
