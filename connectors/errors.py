"""The gateway's one error hierarchy, on the lowest floor (as Trino keeps its error codes in the SPI).

Every error a client can see is a ``GatewayError``. Each class carries, as class data, the HTTP status the
REST app answers with and the Flight status kind the Flight SQL server raises (``flight_server.errors`` maps
the kind to a ``pyarrow.flight`` exception; ``gateway.api.errors`` maps ``http_status``). Messages name what was
wrong: the source, the table, the column, the position in the SQL. Clients import it as ``gateway.errors``
(a re-export); connectors, the catalog and the planner import it from here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GatewayError(Exception):
    """Root of all client-visible errors.

    Attributes:
        code: stable machine-readable name, e.g. ``"syntax_error"``; sent to REST clients and in Flight
            error details so a client can rebuild the class (``gateway.client``).
        http_status: the HTTP status code for REST responses.
        flight_kind: one of ``invalid_argument``, ``not_found``, ``unavailable``, ``unauthenticated``,
            ``unauthorized``, ``timed_out``, ``resource_exhausted``, ``unimplemented``, ``internal``.
        phase: where it happened: ``request`` (the HTTP body or Flight command itself, before its SQL is
            read), ``parsing``, ``planning``, ``execution``, ``auth`` or ``config``.
    """

    code = "internal"
    http_status = 500
    flight_kind = "internal"
    phase = "execution"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    def to_dict(self) -> dict[str, object]:
        """JSON shape sent to REST clients: ``{"error": {"code", "message", "phase", **details}}``."""
        return {"error": {"code": self.code, "message": self.message, "phase": self.phase, **self.details}}


class SqlSyntaxError(GatewayError):
    """The SQL text does not parse. ``line`` and ``column`` are 1-based positions in the SQL text."""

    code = "syntax_error"
    http_status = 400
    flight_kind = "invalid_argument"
    phase = "parsing"

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"SQL syntax error{where}: {message}", line=line, column=column)
        self.line = line
        self.column = column


class UnknownObjectError(GatewayError):
    """A source, schema, table or column name that the catalog does not have; lists the nearest names."""

    code = "unknown_object"
    http_status = 404
    flight_kind = "not_found"
    phase = "planning"

    def __init__(self, kind: str, name: str, candidates: Iterable[str] = (), context: str = "") -> None:
        nearest = nearest_names(name, candidates)
        hint = f"; did you mean: {', '.join(nearest)}?" if nearest else ""
        where = f" in {context}" if context else ""
        super().__init__(f"unknown {kind} '{name}'{where}{hint}", kind=kind, name=name, nearest=nearest)
        self.nearest = nearest


class AmbiguousNameError(GatewayError):
    """A name that matches objects in several sources or schemas; lists every candidate."""

    code = "ambiguous_name"
    http_status = 400
    flight_kind = "invalid_argument"
    phase = "planning"

    def __init__(self, kind: str, name: str, candidates: Iterable[str]) -> None:
        listed = sorted(candidates)
        super().__init__(
            f"ambiguous {kind} '{name}': it matches {', '.join(listed)}; qualify it",
            kind=kind, name=name, candidates=listed,
        )


class UnsupportedStatementError(GatewayError):
    """Anything but a query (DDL, DML, transaction control): the gateway is read-only towards sources."""

    code = "unsupported_statement"
    http_status = 400
    flight_kind = "invalid_argument"
    phase = "parsing"


class InvalidRequestError(GatewayError):
    """A request that is malformed apart from its SQL (a bad parameter count, an unknown handle...)."""

    code = "invalid_request"
    http_status = 400
    flight_kind = "invalid_argument"
    phase = "planning"


class InputLimitError(GatewayError):
    """A statement over one of the input limits (``planner.limits.InputLimits``), refused before planning;
    ``limit`` names the limit and ``value`` its setting."""

    code = "input_limit"
    http_status = 400
    flight_kind = "invalid_argument"
    phase = "parsing"


class UnimplementedError(GatewayError):
    """A protocol command or SQL feature the gateway does not serve."""

    code = "unimplemented"
    http_status = 501
    flight_kind = "unimplemented"
    phase = "planning"


class SourceUnavailableError(GatewayError):
    """A source could not be reached (connection refused, file missing). Names the source."""

    code = "source_unavailable"
    http_status = 503
    flight_kind = "unavailable"
    phase = "execution"

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"source '{source}' is unavailable: {reason}", source=source)
        self.source = source


#: characters of a fragment's SQL kept in errors and the query history: a dynamic filter's key list can make it
#: megabytes long (``Connector.key_filter``)
SQL_KEPT_CHARS = 16_384


def shortened_sql(sql: str | None, limit: int = SQL_KEPT_CHARS) -> str | None:
    """``sql`` cut to ``limit`` characters with a note of its full length; None stays None."""
    if sql is None or len(sql) <= limit:
        return sql
    return f"{sql[:limit]}... ({len(sql):,} characters in all)"


class SourceQueryError(GatewayError):
    """A source rejected or failed a pushed-down fragment; carries the source's own message."""

    code = "source_query_failed"
    http_status = 502
    flight_kind = "internal"
    phase = "execution"

    def __init__(self, source: str, reason: str, sql: str | None = None) -> None:
        super().__init__(f"source '{source}' failed the query: {reason}", source=source, sql=shortened_sql(sql))
        self.source = source


class QueryTimeoutError(GatewayError):
    code = "timeout"
    http_status = 504
    flight_kind = "timed_out"
    phase = "execution"


class QueryCancelledError(GatewayError):
    """The query was cancelled by its client (CancelFlightInfo, a closed stream); its source statements
    were cancelled too."""

    code = "cancelled"
    http_status = 499
    flight_kind = "cancelled"
    phase = "execution"


class ResourceLimitError(GatewayError):
    code = "resource_limit"
    http_status = 429
    flight_kind = "resource_exhausted"
    phase = "execution"


class AuthenticationError(GatewayError):
    code = "authentication_failed"
    http_status = 401
    flight_kind = "unauthenticated"
    phase = "auth"


class PermissionDeniedError(GatewayError):
    code = "permission_denied"
    http_status = 403
    flight_kind = "unauthorized"
    phase = "auth"


class ConfigError(GatewayError):
    """A bad config file: names the key path (``sources[1].kind``) and the reason."""

    code = "config_error"
    http_status = 500
    flight_kind = "internal"
    phase = "config"


class InvalidQueryError(GatewayError):
    """The query is valid SQL but its own values fail while it runs: a division by zero, a value that does not
    cast to its target type, an arithmetic overflow, a bad argument to a function. The client's error
    (400 / INVALID_ARGUMENT), unlike ExecutionError (the gateway's)."""

    code = "invalid_query"
    http_status = 400
    flight_kind = "invalid_argument"
    phase = "execution"


class ExecutionError(GatewayError):
    """The residual plan failed in DataFusion for a reason that is not the query's own (see InvalidQueryError)."""

    code = "execution_failed"
    http_status = 500
    flight_kind = "internal"
    phase = "execution"


ERRORS_BY_CODE: dict[str, type[GatewayError]] = {
    cls.code: cls
    for cls in (
        GatewayError, SqlSyntaxError, UnknownObjectError, AmbiguousNameError, UnsupportedStatementError,
        InvalidRequestError, InputLimitError, UnimplementedError, SourceUnavailableError, SourceQueryError,
        QueryTimeoutError, QueryCancelledError, ResourceLimitError, AuthenticationError, PermissionDeniedError,
        ConfigError, InvalidQueryError, ExecutionError,
    )
}


def nearest_names(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The up-to-``limit`` candidates closest to ``name`` (case-insensitive, difflib ratio >= 0.5)."""
    pool = list(dict.fromkeys(candidates))
    by_lower = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=limit, cutoff=0.5)
    return [by_lower[c] for c in close]
