"""Gateway errors -> Flight statuses, in one place.

The message starts with ``[code]`` (the ``GatewayError.code``) so clients can rebuild the gateway's own
exception class (``gateway.client``); Flight error classes that carry ``extra_info`` also get the JSON body.
"""

from __future__ import annotations

import json

import pyarrow as pa
from pyarrow import flight

from gateway.errors import GatewayError

# flight_kind -> exception class pyarrow maps to that gRPC status
_BY_KIND = {
    "invalid_argument": pa.ArrowInvalid,          # INVALID_ARGUMENT
    "not_found": pa.ArrowKeyError,                # NOT_FOUND
    "unimplemented": pa.ArrowNotImplementedError,  # UNIMPLEMENTED
    "unavailable": flight.FlightUnavailableError,
    "unauthenticated": flight.FlightUnauthenticatedError,
    "unauthorized": flight.FlightUnauthorizedError,
    "timed_out": flight.FlightTimedOutError,
    "cancelled": flight.FlightCancelledError,
    "resource_exhausted": flight.FlightServerError,
    "internal": flight.FlightInternalError,
}


def to_flight_error(exc: GatewayError) -> Exception:
    """The exception to raise from an RPC for ``exc`` (status per ``exc.flight_kind``)."""
    cls = _BY_KIND.get(exc.flight_kind, flight.FlightInternalError)
    message = f"[{exc.code}] {exc.message}"
    if issubclass(cls, flight.FlightError):
        return cls(message, json.dumps(exc.to_dict(), default=str).encode())
    return cls(message)
