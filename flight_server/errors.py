"""Gateway errors -> Flight statuses, in one place; no traceback ever reaches a client.

The message starts with ``[code]`` (the ``GatewayError.code``) so clients can rebuild the gateway's own
exception class (``gateway.client.rebuild_error``); Flight error classes that carry ``extra_info`` also get the
JSON body (``GatewayError.to_dict``).

Statuses. ``pyarrow.flight`` has an exception class for INTERNAL, DEADLINE_EXCEEDED (``FlightTimedOutError``),
CANCELLED, UNAUTHENTICATED, PERMISSION_DENIED (``FlightUnauthorizedError``), UNAVAILABLE and UNKNOWN
(``FlightServerError``), and sends their message alone. It has none for INVALID_ARGUMENT, NOT_FOUND or
UNIMPLEMENTED: pyarrow sends those statuses only for ``pyarrow.lib.ArrowInvalid`` / ``ArrowKeyError`` /
``ArrowNotImplementedError`` raised by a handler, and details them with the Python traceback of the raise
(server paths included), formatted by ``traceback.format_exception`` when the status is sent
(apache/arrow#45555 asks for a class). A syntax error answered UNKNOWN would be a DB-API ``OperationalError``
instead of a ``ProgrammingError`` in ADBC and JDBC clients, so those three statuses keep their codes: they are
raised as the subclasses below, whose traceback ``install_traceback_filter`` (run on import) replaces by the
status name. The filter touches only these three classes; every other exception formats as before.

A handler's unexpected exception (a defect, not a ``GatewayError``) becomes INTERNAL with an error id through
``unexpected_error``; its traceback goes to the server log under that id, never to the client.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback

import pyarrow as pa
from pyarrow import flight

from gateway.errors import GatewayError

log = logging.getLogger(__name__)


class _StatusOnly:
    """Mixin of the exceptions whose pyarrow status detail is the status name instead of a traceback."""

    status_name = ""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FlightInvalidArgumentError(_StatusOnly, pa.ArrowInvalid):
    """Sent as INVALID_ARGUMENT (the client's request or SQL is wrong)."""

    status_name = "InvalidArgument"


class FlightNotFoundError(_StatusOnly, pa.ArrowKeyError):
    """Sent as NOT_FOUND (a source, table, column or handle that does not exist)."""

    status_name = "NotFound"


class FlightUnimplementedError(_StatusOnly, pa.ArrowNotImplementedError):
    """Sent as UNIMPLEMENTED (a command or feature the gateway does not serve)."""

    status_name = "Unimplemented"


# flight_kind -> the exception class whose gRPC status that kind is
_BY_KIND: dict[str, type[Exception]] = {
    "invalid_argument": FlightInvalidArgumentError,  # INVALID_ARGUMENT
    "not_found": FlightNotFoundError,                # NOT_FOUND
    "unimplemented": FlightUnimplementedError,       # UNIMPLEMENTED
    "unavailable": flight.FlightUnavailableError,    # UNAVAILABLE
    "unauthenticated": flight.FlightUnauthenticatedError,
    "unauthorized": flight.FlightUnauthorizedError,  # PERMISSION_DENIED
    "timed_out": flight.FlightTimedOutError,         # DEADLINE_EXCEEDED
    "cancelled": flight.FlightCancelledError,
    "resource_exhausted": flight.FlightServerError,  # UNKNOWN: pyarrow has no RESOURCE_EXHAUSTED
    "internal": flight.FlightInternalError,
}

#: what an RPC may raise as is: already a status this module made
STATUS_ERRORS = (flight.FlightError, _StatusOnly)


def to_flight_error(exc: GatewayError) -> Exception:
    """The exception to raise from an RPC for ``exc``: its status per ``exc.flight_kind``, its message
    ``[code] message``, no traceback."""
    cls = _BY_KIND.get(exc.flight_kind, flight.FlightInternalError)
    message = f"[{exc.code}] {exc.message}"
    if issubclass(cls, flight.FlightError):
        return cls(message, json.dumps(exc.to_dict(), default=str).encode())
    return cls(message)


def unexpected_error(exc: BaseException, rpc: str) -> Exception:
    """The exception to raise from RPC ``rpc`` for any exception its handler did not expect: statuses made
    by this module pass as they are, a ``GatewayError`` gets its own status, anything else is logged here
    with its traceback and answered INTERNAL naming only an error id (the exception's text may hold paths)."""
    if isinstance(exc, STATUS_ERRORS):
        return exc  # type: ignore[return-value]
    if isinstance(exc, GatewayError):
        return to_flight_error(exc)
    error_id = secrets.token_hex(6)
    log.error("Flight SQL %s failed unexpectedly", rpc, exc_info=exc, extra={"error_id": error_id, "rpc": rpc})
    body = {"error": {"code": "internal", "message": f"{rpc} failed on the server", "phase": "execution",
                      "error_id": error_id}}
    return flight.FlightInternalError(
        f"[internal] {rpc} failed on the server (error id {error_id}; the server log has the details)",
        json.dumps(body).encode(),
    )


_original_format_exception = traceback.format_exception


def _format_exception(exc, /, *args, **kwargs):
    """``traceback.format_exception``, except for the exceptions above: only their status name."""
    value = args[0] if args else kwargs.get("value", exc)
    if isinstance(value, _StatusOnly):
        return [value.status_name]
    return _original_format_exception(exc, *args, **kwargs)


def install_traceback_filter() -> None:
    """Make pyarrow detail the statuses of ``FlightInvalidArgumentError``, ``FlightNotFoundError`` and
    ``FlightUnimplementedError`` with their status name instead of the traceback (idempotent)."""
    if traceback.format_exception is not _format_exception:
        traceback.format_exception = _format_exception


install_traceback_filter()
