"""The Python client: Flight SQL through the ADBC Flight SQL driver, with the gateway's own errors.

    >>> from gateway.client import connect
    >>> with connect("grpc://127.0.0.1:8815", user="analyst", password="...") as conn:   # doctest: +SKIP
    ...     orders = conn.query("SELECT * FROM demo_lake.orders WHERE year = ?", [2023])  # pyarrow.Table
    ...     for batch in conn.stream("SELECT * FROM demo_lake.orders"):                  # record batches
    ...         pass
    ...     frame = conn.query_pandas("SELECT region, count(*) AS n FROM demo_db.customers GROUP BY 1")

Errors are rebuilt from the Flight status (whose message starts with ``[code]``) into the gateway's own
classes: ``SqlSyntaxError`` (with ``line`` / ``column``), ``UnknownObjectError`` (with ``nearest``),
``PermissionDeniedError``, ``SourceUnavailableError`` (with ``source``), ``QueryTimeoutError``,
``AuthenticationError``, ... (``gateway.errors``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from gateway.errors import ERRORS_BY_CODE, GatewayError

_CODE = re.compile(r"\[([a-z_]+)\] (.*?)(?:\. Detail: |$)", re.DOTALL)
_POSITION = re.compile(r"at line (\d+), column (\d+)")
_SOURCE = re.compile(r"source '([^']+)'")
_UNKNOWN = re.compile(r"unknown (.+?) '([^']*)'(?:.*?did you mean: (.*?)\?)?", re.DOTALL)


def rebuild_error(exc: BaseException) -> BaseException:
    """The gateway exception encoded in a Flight status message (``[code] message``), else ``exc``.

    Attributes the message carries are restored: ``line``/``column`` of a syntax error, ``source`` of a
    source error, ``kind``/``name``/``nearest`` of an unknown object.
    """
    match = _CODE.search(str(exc))
    if not match:
        return exc
    cls = ERRORS_BY_CODE.get(match.group(1), GatewayError)
    message = match.group(2).strip()
    details: dict[str, Any] = {}
    if (position := _POSITION.search(message)) is not None:
        details["line"], details["column"] = int(position.group(1)), int(position.group(2))
    if (source := _SOURCE.search(message)) is not None:
        details["source"] = source.group(1)
    if cls.code == "unknown_object" and (unknown := _UNKNOWN.search(message)) is not None:
        details["kind"], details["name"] = unknown.group(1), unknown.group(2)
        details["nearest"] = [n.strip() for n in unknown.group(3).split(",")] if unknown.group(3) else []
    error = GatewayError.__new__(cls)
    GatewayError.__init__(error, message, **details)
    for key, value in details.items():
        setattr(error, key, value)
    return error


class Cursor:
    """A DB-API 2.0 cursor (the ADBC driver's), whose errors are the gateway's exception classes."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def __getattr__(self, name: str):
        attribute = getattr(self._cursor, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            try:
                return attribute(*args, **kwargs)
            except Exception as exc:
                raise rebuild_error(exc) from exc

        return call

    def __iter__(self):
        return iter(self._cursor)

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc) -> None:
        self._cursor.close()


# ADBC Flight SQL driver: connection options with this prefix become Flight SQL session options
_SESSION_OPTION = "adbc.flight.sql.session.option."


class Connection:
    """A connection to a gateway. Use as a context manager, or call ``close()``.

    ``query`` returns a ``pyarrow.Table``; ``stream`` yields record batches as they arrive; ``query_pandas``
    and ``query_polars`` return data frames; ``cursor()`` is a DB-API 2.0 cursor. Metadata: ``sources()``,
    ``tables(source)``. Errors are the gateway's ``GatewayError`` subclasses.
    """

    def __init__(self, dbapi_connection, max_staleness_s: float | None = None) -> None:
        self._conn = dbapi_connection
        self._staleness: float | None = None
        self.max_staleness_s = max_staleness_s

    @property
    def max_staleness_s(self) -> float | None:
        """Seconds a cached partition may be old for this connection's queries (None: each source's own TTL;
        0: only partitions the source's fingerprint proves current). Sent as the Flight SQL session option
        ``max_staleness_s``."""
        return self._staleness

    @max_staleness_s.setter
    def max_staleness_s(self, seconds: float | None) -> None:
        self._set_staleness(seconds)
        self._staleness = seconds

    def _set_staleness(self, seconds: float | None) -> None:
        value = "" if seconds is None else repr(float(seconds))
        try:
            self._conn.adbc_connection.set_options(**{_SESSION_OPTION + "max_staleness_s": value})
        except Exception as exc:
            raise rebuild_error(exc) from exc

    @contextlib.contextmanager
    def _staleness_for(self, seconds: float | None):
        if seconds is None or seconds == self._staleness:
            yield
            return
        self._set_staleness(seconds)
        try:
            yield
        finally:
            self._set_staleness(self._staleness)

    @property
    def adbc(self):
        """The underlying ADBC DB-API connection (for ``adbc_get_objects``, ``adbc_get_info``, ...)."""
        return self._conn

    def cursor(self) -> Cursor:
        return Cursor(self._conn.cursor())

    def query(self, sql: str, params: Sequence[object] | None = None, max_staleness_s: float | None = None
              ) -> pa.Table:
        """Run ``sql`` (with ``?`` parameters) and return the whole result as a pyarrow.Table.
        ``max_staleness_s`` overrides the connection's bound for this query (see ``max_staleness_s``)."""
        with self._staleness_for(max_staleness_s), self._conn.cursor() as cur:
            try:
                cur.execute(sql, params)
                return cur.fetch_arrow_table()
            except Exception as exc:
                raise rebuild_error(exc) from exc

    def stream(self, sql: str, params: Sequence[object] | None = None) -> Iterator[pa.RecordBatch]:
        """Run ``sql`` and yield its record batches as they arrive. Closing the iterator early cancels the
        query on the gateway (and its source statements)."""
        cur = self._conn.cursor()
        try:
            cur.execute(sql, params)
            reader = cur.fetch_record_batch()
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                yield batch
        except GeneratorExit:
            try:
                cur.adbc_cancel()
            except Exception:
                pass
            raise
        except Exception as exc:
            raise rebuild_error(exc) from exc
        finally:
            try:
                cur.close()
            except Exception:
                pass

    def query_pandas(self, sql: str, params: Sequence[object] | None = None):
        """The result as a pandas DataFrame."""
        return self.query(sql, params).to_pandas()

    def query_polars(self, sql: str, params: Sequence[object] | None = None):
        """The result as a polars DataFrame."""
        import polars as pl

        return pl.from_arrow(self.query(sql, params))

    def explain(self, sql: str) -> str:
        """The federated plan as text: each fragment's pushed SQL, the residual plan, what was not pushed."""
        return "\n".join(self.query(f"EXPLAIN {sql}").column("plan").to_pylist())

    def sources(self) -> list[str]:
        """The sources (Flight SQL catalogs) this connection may use."""
        try:
            objects = self._conn.adbc_get_objects(depth="catalogs").read_all()
        except Exception as exc:
            raise rebuild_error(exc) from exc
        return sorted(objects.column("catalog_name").to_pylist())

    def tables(self, source: str) -> list[tuple[str, str]]:
        """``(schema, table)`` of every table of ``source``."""
        try:
            objects = self._conn.adbc_get_objects(depth="tables", catalog_filter=source).read_all().to_pylist()
        except Exception as exc:
            raise rebuild_error(exc) from exc
        out = []
        for catalog in objects:
            if catalog["catalog_name"] != source:
                continue
            for schema in catalog["catalog_db_schemas"] or []:
                out.extend((schema["db_schema_name"], t["table_name"]) for t in schema["db_schema_tables"] or [])
        return sorted(out)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(uri: str = "grpc://127.0.0.1:8815", user: str | None = None, password: str | None = None,
            token: str | None = None, tls: bool | str | os.PathLike | None = None,
            tls_skip_verify: bool = False, max_staleness_s: float | None = None,
            timeout_s: float | None = None) -> Connection:
    """Connect to a gateway's Flight SQL endpoint.

    - ``user``/``password``: the driver performs the Basic handshake and uses the returned bearer token.
    - ``token``: a bearer or API token, sent as ``Authorization: Bearer <token>``.
    - ``tls``: True for ``grpc+tls`` with the system's root certificates, or the path of a PEM file of the
      certificate(s) to trust (a private CA, a self-signed server). ``grpc+tls://`` URIs imply TLS.
      ``tls_skip_verify`` turns certificate checks off (testing only).
    - ``max_staleness_s``: how old cached partitions may be for this connection's queries (0: current only).
    - ``timeout_s``: the time limit of each of this connection's queries in seconds (default: the gateway's
      ``limits.query_timeout_s``; 0: none); a query past it raises QueryTimeoutError. Sent as the Flight SQL
      session option ``timeout_s``.
    """
    import adbc_driver_flightsql.dbapi as flightsql
    from adbc_driver_flightsql import DatabaseOptions

    # the session cookie carries session options (default catalog/schema, max_staleness_s)
    db_kwargs: dict[str, str] = {DatabaseOptions.WITH_COOKIE_MIDDLEWARE.value: "true"}
    if user is not None:
        db_kwargs["username"] = user
        db_kwargs["password"] = password or ""
    if token is not None:
        db_kwargs[DatabaseOptions.AUTHORIZATION_HEADER.value] = f"Bearer {token}"
    if tls and uri.startswith("grpc://"):
        uri = "grpc+tls://" + uri.removeprefix("grpc://")
    if tls is not None and not isinstance(tls, bool):
        with open(tls) as pem:
            db_kwargs[DatabaseOptions.TLS_ROOT_CERTS.value] = pem.read()
    if tls_skip_verify:
        db_kwargs[DatabaseOptions.TLS_SKIP_VERIFY.value] = "true"
    try:
        connection = flightsql.connect(uri, db_kwargs=db_kwargs, autocommit=True)
    except Exception as exc:
        raise rebuild_error(exc) from exc
    if user is not None or token is not None:
        try:  # authenticate now, so bad credentials fail at connect
            connection.adbc_get_table_types()
        except Exception as exc:
            connection.close()
            raise rebuild_error(exc) from exc
    if timeout_s is not None:
        try:
            connection.adbc_connection.set_options(**{_SESSION_OPTION + "timeout_s": repr(float(timeout_s))})
        except Exception as exc:
            connection.close()
            raise rebuild_error(exc) from exc
    return Connection(connection, max_staleness_s)
