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
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyarrow import flight

from flight_server import protocol
from gateway.client_errors import rebuild_error
from gateway.client_results import Answer, Cursor, RemoteQuery
from gateway.errors import GatewayError

__all__ = ["Answer", "Connection", "Cursor", "FlightOptions", "RemoteQuery", "connect", "rebuild_error", "server_uri"]

# ADBC Flight SQL driver: connection options with this prefix become Flight SQL session options
_SESSION_OPTION = "adbc.flight.sql.session.option."


class Connection:
    """A connection to a gateway. Use as a context manager, or call ``close()``.

    ``query`` returns a ``pyarrow.Table``; ``stream`` yields record batches as they arrive; ``query_pandas``
    and ``query_polars`` return data frames; ``cursor()`` is a DB-API 2.0 cursor. Metadata: ``sources()``,
    ``tables(source)``. Errors are the gateway's ``GatewayError`` subclasses.
    """

    def __init__(self, dbapi_connection, max_staleness_s: float | None = None,
                 options: FlightOptions | None = None) -> None:
        self._conn = dbapi_connection
        self._staleness: float | None = None
        self._options = options
        self._raw: tuple[Any, list] | None = None  # (pyarrow.flight.FlightClient, call headers), made on first use
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

    def execute(self, sql: str, params: Sequence[object] | None = None) -> RemoteQuery:
        """Start ``sql`` and return a ``RemoteQuery``: its ``schema``, its ``reader`` (record batches as they
        arrive) and ``cancel()`` (safe from another thread: the gateway cancels the query and its source
        statements). Close it (or use it as a context manager) when done."""
        cur = self._conn.cursor()
        try:
            cur.execute(sql, params)
            return RemoteQuery(cur, cur.fetch_record_batch())
        except Exception as exc:
            cur.close()
            raise rebuild_error(exc) from exc

    def query_pandas(self, sql: str, params: Sequence[object] | None = None):
        """The result as a pandas DataFrame (needs pandas: ``pip install 'federated-sql-gateway[pandas]'``)."""
        try:
            import pandas  # noqa: F401  (optional: only this method needs it)
        except ImportError:
            raise ImportError("query_pandas needs pandas: pip install 'federated-sql-gateway[pandas]'") from None
        return self.query(sql, params).to_pandas()

    def query_polars(self, sql: str, params: Sequence[object] | None = None):
        """The result as a polars DataFrame (needs polars: ``pip install 'federated-sql-gateway[polars]'``)."""
        try:
            import polars as pl  # optional: the [polars] extra
        except ImportError:
            raise ImportError("query_polars needs polars: pip install 'federated-sql-gateway[polars]'") from None
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

    def tables(self, source: str, schema: str | None = None, table_types: Sequence[str] | None = None
               ) -> list[tuple[str, str]]:
        """``(schema, table)`` of every table of ``source`` (of one ``schema``; of some ``table_types``, e.g.
        ``["VIEW"]``; the gateway reports ``TABLE`` and ``VIEW``)."""
        return sorted((s, t) for s, t, _ in self._objects(source, schema, table_types))

    def table_types(self, source: str, schema: str | None = None) -> dict[tuple[str, str], str]:
        """``{(schema, table): "TABLE" | "VIEW"}`` of ``source`` (one ``schema`` if given)."""
        return {(s, t): kind for s, t, kind in self._objects(source, schema, None)}

    def _objects(self, source: str, schema: str | None, table_types: Sequence[str] | None) -> list[tuple]:
        try:
            objects = self._conn.adbc_get_objects(
                depth="tables", catalog_filter=source, db_schema_filter=schema,
                table_types_filter=list(table_types) if table_types else None).read_all().to_pylist()
        except Exception as exc:
            raise rebuild_error(exc) from exc
        out = []
        for catalog in objects:
            if catalog["catalog_name"] != source:  # the filter is a LIKE pattern: '_' matches any character
                continue
            for db_schema in catalog["catalog_db_schemas"] or []:
                if schema is not None and db_schema["db_schema_name"] != schema:
                    continue
                out.extend((db_schema["db_schema_name"], t["table_name"], t["table_type"])
                           for t in db_schema["db_schema_tables"] or [])
        return out

    def catalog_names(self) -> dict[tuple[str, str, str], list[str]]:
        """``{(source, schema, table): [column, ...]}`` of everything this connection may see (one GetObjects
        call down to columns)."""
        try:
            objects = self._conn.adbc_get_objects(depth="all").read_all().to_pylist()
        except Exception as exc:
            raise rebuild_error(exc) from exc
        return {(c["catalog_name"], s["db_schema_name"], t["table_name"]):
                [col["column_name"] for col in t["table_columns"] or []]
                for c in objects for s in c["catalog_db_schemas"] or [] for t in s["db_schema_tables"] or []}

    def schemas(self, source: str) -> list[str]:
        """The schemas of ``source``."""
        try:
            objects = self._conn.adbc_get_objects(depth="db_schemas", catalog_filter=source).read_all().to_pylist()
        except Exception as exc:
            raise rebuild_error(exc) from exc
        return sorted(s["db_schema_name"] for c in objects if c["catalog_name"] == source
                      for s in c["catalog_db_schemas"] or [])

    def table_schema(self, source: str, schema: str, table: str) -> pa.Schema:
        """The Arrow schema of one table; each field's metadata carries the Flight SQL column facts
        (``ARROW:FLIGHT:SQL:TYPE_NAME``, ``...:PRECISION``, ``...:SCALE``, ``...:REMARKS`` where known)."""
        try:
            return self._conn.adbc_get_table_schema(table, catalog_filter=source, db_schema_filter=schema)
        except Exception as exc:
            raise rebuild_error(exc) from exc

    def primary_key(self, source: str, schema: str, table: str) -> list[str]:
        """The primary key's columns in key order ([] when the source declares none or cannot say).
        Flight SQL GetPrimaryKeys (the ADBC driver does not expose it)."""
        rows = self._flight_command("CommandGetPrimaryKeys", catalog=source, db_schema=schema, table=table)
        return [r["column_name"] for r in sorted(rows, key=lambda r: r["key_sequence"])]

    def foreign_keys(self, source: str, schema: str, table: str) -> list[dict]:
        """The foreign keys of one table, Flight SQL GetImportedKeys rows (``KEYS_SCHEMA``: ``fk_key_name``,
        ``fk_column_name``, ``pk_catalog_name``, ``pk_db_schema_name``, ``pk_table_name``, ``pk_column_name``,
        ``key_sequence``, ``update_rule``, ``delete_rule``) in key order; [] when unknown."""
        rows = self._flight_command("CommandGetImportedKeys", catalog=source, db_schema=schema, table=table)
        return sorted(rows, key=lambda r: (r["fk_key_name"] or "", r["key_sequence"]))

    def _flight_command(self, command: str, **fields) -> list[dict]:
        """The rows a Flight SQL metadata command answers, through a raw ``pyarrow.flight`` client sharing this
        connection's address, credentials and TLS settings."""
        if self._options is None:
            raise GatewayError("this connection was not made by gateway.client.connect: no Flight address known")
        try:
            if self._raw is None:
                self._raw = self._options.flight_client()
            client, headers = self._raw
            options = flight.FlightCallOptions(headers=headers)
            message = getattr(protocol, command)(**fields)
            info = client.get_flight_info(flight.FlightDescriptor.for_command(protocol.pack(message)), options)
            return [row for endpoint in info.endpoints
                    for row in client.do_get(endpoint.ticket, options).read_all().to_pylist()]
        except GatewayError:
            raise
        except Exception as exc:
            raise rebuild_error(exc) from exc

    def answer(self, sql: str) -> Answer:
        """Run ``sql`` and return an ``Answer``: the whole result (``table``) and its freshness ``manifest``
        (the dict the gateway sends in ``FlightInfo.app_metadata``: per table the source fingerprint, cache
        use, staleness bound, and the ``content_hash`` identifying the data state; see
        ``gateway.trust.manifest``). Two answers with the same ``manifest["content_hash"]`` come from the same
        data. Runs the statement through a raw Flight SQL client (GetFlightInfo, then DoGet of its ticket;
        the connection's session options, such as ``max_staleness_s``, do not apply)."""
        if self._options is None:
            raise GatewayError("this connection was not made by gateway.client.connect: no Flight address known")
        try:
            if self._raw is None:
                self._raw = self._options.flight_client()
            client, headers = self._raw
            options = flight.FlightCallOptions(headers=headers)
            command = protocol.pack(protocol.CommandStatementQuery(query=sql))
            info = client.get_flight_info(flight.FlightDescriptor.for_command(command), options)
            tables = [client.do_get(endpoint.ticket, options).read_all() for endpoint in info.endpoints]
            table = pa.concat_tables(tables) if tables else info.schema.empty_table()
            metadata = json.loads(info.app_metadata or b"{}")
            return Answer(table, metadata.get("gateway_manifest"))
        except GatewayError:
            raise
        except Exception as exc:
            raise rebuild_error(exc) from exc

    def close(self) -> None:
        """Close the connection (and the raw Flight client used for keys, if one was made)."""
        if self._raw is not None:
            self._raw[0].close()
            self._raw = None
        self._conn.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()



@dataclass(frozen=True)
class FlightOptions:
    """Where and how to reach a gateway's Flight SQL endpoint: the ``grpc://`` / ``grpc+tls://`` URI,
    credentials (``user``/``password`` for the Basic handshake, or a bearer ``token``) and TLS (``tls_root_certs``:
    PEM text of the certificates to trust; ``tls_skip_verify``: no certificate check, testing only)."""

    uri: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_root_certs: str | None = None
    tls_skip_verify: bool = False

    def adbc_kwargs(self) -> dict[str, str]:
        """The ADBC Flight SQL driver's database options for these settings."""
        from adbc_driver_flightsql import DatabaseOptions  # loaded on connect: importing the client stays light

        # the session cookie carries session options (default catalog/schema, max_staleness_s)
        kwargs: dict[str, str] = {DatabaseOptions.WITH_COOKIE_MIDDLEWARE.value: "true"}
        if self.user is not None:
            kwargs["username"] = self.user
            kwargs["password"] = self.password or ""
        if self.token is not None:
            kwargs[DatabaseOptions.AUTHORIZATION_HEADER.value] = f"Bearer {self.token}"
        if self.tls_root_certs is not None:
            kwargs[DatabaseOptions.TLS_ROOT_CERTS.value] = self.tls_root_certs
        if self.tls_skip_verify:
            kwargs[DatabaseOptions.TLS_SKIP_VERIFY.value] = "true"
        return kwargs

    def flight_client(self) -> tuple[Any, list[tuple[bytes, bytes]]]:
        """A connected ``pyarrow.flight.FlightClient`` and the headers each call must carry (authorization)."""
        client = flight.FlightClient(self.uri, tls_root_certs=self.tls_root_certs,
                                     disable_server_verification=self.tls_skip_verify)
        if self.token is not None:
            return client, [(b"authorization", f"Bearer {self.token}".encode())]
        if self.user is not None:
            return client, [client.authenticate_basic_token(self.user, self.password or "")]
        return client, []


def server_uri(address: str) -> str:
    """A Flight SQL URI from what a user types: ``host:port`` becomes ``grpc://host:port``; ``grpc://``,
    ``grpc+tcp://`` and ``grpc+tls://`` URIs are kept. Raises ValueError naming the address otherwise."""
    if "://" not in address:
        address = "grpc://" + address
    scheme, _, rest = address.partition("://")
    if scheme not in ("grpc", "grpc+tcp", "grpc+tls") or not rest:
        raise ValueError(f"not a Flight SQL address: {address!r} (expected grpc://host:port or grpc+tls://host:port)")
    return address


def connect(uri: str = "grpc://127.0.0.1:8815", user: str | None = None, password: str | None = None,
            token: str | None = None, tls: bool | str | os.PathLike | None = None,
            tls_skip_verify: bool = False, max_staleness_s: float | None = None,
            timeout_s: float | None = None) -> Connection:
    """Connect to a gateway's Flight SQL endpoint.

    - ``uri``: ``grpc://host:port`` (``host:port`` alone means the same), or ``grpc+tls://host:port``.
    - ``user``/``password``: the driver performs the Basic handshake and uses the returned bearer token.
    - ``token``: a bearer or API token, sent as ``Authorization: Bearer <token>``.
    - ``tls``: True for ``grpc+tls`` with the system's root certificates, or the path of a PEM file of the
      certificate(s) to trust (a private CA, a self-signed server). ``grpc+tls://`` URIs imply TLS.
      ``tls_skip_verify`` turns certificate checks off (testing only).
    - ``max_staleness_s``: how old cached partitions may be for this connection's queries (0: current only).
    - ``timeout_s``: the time limit of each of this connection's queries in seconds (default: the gateway's
      ``limits.query_timeout_s``; 0: none); a query past it raises QueryTimeoutError. Sent as the Flight SQL
      session option ``timeout_s``.

    Raises ValueError for a malformed URI, AuthenticationError for bad credentials, and the gateway's other
    error classes for what the server answers.
    """
    import adbc_driver_flightsql.dbapi as flightsql  # the driver loads on connect (importing the client stays light)

    uri = server_uri(uri)
    if tls and uri.startswith("grpc://"):
        uri = "grpc+tls://" + uri.removeprefix("grpc://")
    pem = None
    if tls is not None and not isinstance(tls, bool):
        with open(tls) as file:
            pem = file.read()
    options = FlightOptions(uri, user, password, token, pem, tls_skip_verify)
    try:
        connection = flightsql.connect(uri, db_kwargs=options.adbc_kwargs(), autocommit=True)
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
    return Connection(connection, max_staleness_s, options)
