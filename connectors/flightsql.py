"""Remote Arrow Flight SQL servers (another gateway, Dremio, Spice...), through the ADBC Flight SQL driver.

    [[sources]]
    name = "remote"
    kind = "flightsql"
    uri = "grpc://10.0.0.5:8815"        # grpc+tls:// for TLS
    username = "analyst"                # or token = "${REMOTE_TOKEN}"
    password = "${REMOTE_PASSWORD}"
    dialect = "postgres"                # the SQL dialect fragments are written in (default: the gateway's own)

Catalogs, schemas, tables and columns come from the server's metadata commands (GetCatalogs, GetDbSchemas,
GetTables with schemas, as ADBC's ``get_objects``/``get_table_schema`` issue them). A remote catalog and schema
become one schema here, ``catalog.schema`` (just ``schema`` when the server has no catalogs). Fragments are
sent as SQL in ``dialect`` and stream back as Arrow record batches, conformed to the fragment's schema. A
server that cannot be reached (or refuses the credentials) is ``source_unavailable``, naming the source.
"""

from __future__ import annotations

import queue
import re
import threading
from typing import Any

import pyarrow as pa
from sqlglot import exp

from connectors.arrow.streams import conformed_reader
from connectors.base import PORTABLE_EXPRESSIONS, QUERY_SHAPE_EXPRESSIONS, Capabilities, Connector, Fragment
from connectors.errors import SourceQueryError, SourceUnavailableError, UnknownObjectError

#: seconds a metadata call or a query may wait for the server before the source counts as unavailable
RPC_TIMEOUT_S = 30
_UNAVAILABLE = re.compile(r"Unavailable|connection refused|connect: |failed to connect|transport|DeadlineExceeded"
                          r"|deadline exceeded|no such host|EOF", re.I)
_UNAUTHENTICATED = re.compile(r"Unauthenticated|unauthorized|invalid (user|password|token)", re.I)


class FlightSqlConnector(Connector):
    """A remote Flight SQL server. Options: ``uri``, ``username``/``password`` or ``token``, ``dialect``,
    ``pool_size`` (open connections kept, default 4), ``tls_skip_verify``."""

    kind = "flightsql"
    dialect = "postgres"
    # a DataFusion-based server (another gateway) computes as the residual plan does; its rows travel over the
    # network, so joins are pushed by the planner's join-growth rule (no local_compute)
    capabilities = Capabilities(
        full_query=True,
        expressions=PORTABLE_EXPRESSIONS | QUERY_SHAPE_EXPRESSIONS | {exp.Avg, exp.Div},
        float_literals=True,
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.uri = str(options["uri"])
        self.dialect = str(options.get("dialect") or "postgres")
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._pool_size = int(options.get("pool_size", 4))
        self._lock = threading.Lock()
        self._running: dict[int, Any] = {}  # id(fragment) -> its cursor, for cancel()

    # -- connections ---------------------------------------------------------------------------------------

    def _db_kwargs(self) -> dict[str, str]:
        kwargs = {"adbc.flight.sql.rpc.timeout_seconds.query": str(RPC_TIMEOUT_S),
                  "adbc.flight.sql.rpc.timeout_seconds.fetch": str(RPC_TIMEOUT_S),
                  "adbc.flight.sql.rpc.timeout_seconds.update": str(RPC_TIMEOUT_S)}
        if self.options.get("token"):
            kwargs["adbc.flight.sql.authorization_header"] = f"Bearer {self.options['token']}"
        elif self.options.get("username"):
            kwargs.update(username=str(self.options["username"]), password=str(self.options.get("password", "")))
        if self.options.get("tls_skip_verify"):
            kwargs["adbc.flight.sql.client_option.tls_skip_verify"] = "true"
        return kwargs

    def _connect(self):
        import adbc_driver_flightsql.dbapi as flightsql  # loaded when a source of this kind first connects

        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        try:
            return flightsql.connect(self.uri, db_kwargs=self._db_kwargs(), autocommit=True)
        except Exception as exc:
            raise self._error(exc) from exc

    def _release(self, conn, broken: bool = False) -> None:
        if broken or self._idle.qsize() >= self._pool_size:
            try:
                conn.close()
            except Exception:
                pass
            return
        self._idle.put(conn)

    def _error(self, exc: BaseException, sql: str | None = None) -> Exception:
        """An ADBC error as SourceUnavailableError (unreachable, credentials refused) or SourceQueryError."""
        text = str(exc)
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)[:400]
        if _UNAUTHENTICATED.search(text):
            return SourceUnavailableError(self.name, f"the Flight SQL server refused the credentials: {first}")
        if _UNAVAILABLE.search(text):
            return SourceUnavailableError(self.name, f"the Flight SQL server cannot be reached: {first}")
        return SourceQueryError(self.name, first, sql)

    def _metadata(self, fn):
        """Run ``fn(connection)`` on a pooled connection; errors mapped (a broken connection is dropped)."""
        conn = self._connect()
        try:
            result = fn(conn)
        except Exception as exc:
            self._release(conn, broken=True)
            raise self._error(exc) from exc
        self._release(conn)
        return result

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
            except Exception:
                continue

    # -- metadata ------------------------------------------------------------------------------------------

    def _objects(self) -> dict[str, tuple[str | None, str | None, list[tuple[str, str]]]]:
        """schema name here -> (remote catalog, remote schema, [(table, table type)])."""
        table = self._metadata(lambda conn: conn.adbc_get_objects(depth="tables").read_all())
        out: dict[str, tuple[str | None, str | None, list[tuple[str, str]]]] = {}
        for catalog in table.to_pylist():
            for schema in catalog["catalog_db_schemas"] or []:
                cat, sch = catalog["catalog_name"] or None, schema["db_schema_name"] or None
                name = ".".join(p for p in (cat, sch) if p) or "default"
                tables = [(t["table_name"], t["table_type"] or "TABLE") for t in schema["db_schema_tables"] or []]
                out[name] = (cat, sch, tables)
        return out

    def _remote(self, schema: str) -> tuple[str | None, str | None, list[tuple[str, str]]]:
        objects = self.__dict__.get("_cached_objects") or self._objects()
        self.__dict__["_cached_objects"] = objects
        if schema not in objects:
            raise UnknownObjectError("schema", schema, objects, context=f"source '{self.name}'")
        return objects[schema]

    def refresh(self) -> None:
        """Read the remote metadata anew on next use."""
        self.__dict__.pop("_cached_objects", None)

    def list_schemas(self) -> list[str]:
        self.refresh()
        return sorted(self._remote_names())

    def _remote_names(self) -> list[str]:
        objects = self._objects()
        self.__dict__["_cached_objects"] = objects
        return list(objects)

    def list_tables(self, schema: str) -> list[str]:
        return sorted(t for t, _ in self._remote(schema)[2])

    def table_type(self, schema: str, table: str) -> str:
        return dict(self._remote(schema)[2]).get(table, "TABLE")

    def table_schema(self, schema: str, table: str) -> pa.Schema:
        """The remote table's Arrow schema (GetTables with its schema)."""
        catalog, db_schema, _ = self._remote(schema)
        return self._metadata(lambda conn: conn.adbc_get_table_schema(
            table, catalog_filter=catalog, db_schema_filter=db_schema))

    def table_expression(self, schema: str, table: str) -> exp.Table:
        """``catalog.schema.table`` as the remote server names it."""
        catalog, db_schema, _ = self._remote(schema)
        return exp.table_(table, db=db_schema, catalog=catalog, quoted=True)

    # -- queries -------------------------------------------------------------------------------------------

    def scan(self, fragment: Fragment) -> pa.RecordBatchReader:
        """Send the fragment's SQL and stream the server's record batches, conformed to ``fragment.schema``."""
        conn = self._connect()
        cursor = conn.cursor()
        try:
            cursor.execute(fragment.sql)
            reader = cursor.fetch_record_batch()
        except Exception as exc:
            cursor.close()
            self._release(conn, broken=True)
            raise self._error(exc, fragment.sql) from exc
        self.scans += 1
        self._running[id(fragment)] = cursor

        def batches():
            broken = True
            try:
                yield from reader
                broken = False
            except Exception as exc:
                raise self._error(exc, fragment.sql) from exc
            finally:
                self._running.pop(id(fragment), None)
                try:
                    cursor.close()
                except Exception:
                    broken = True
                self._release(conn, broken=broken)

        return conformed_reader(fragment.schema, batches())

    def cancel(self, fragment: Fragment) -> None:
        """Cancel the fragment's remote statement if it runs (ADBC cancels the Flight stream)."""
        cursor = self._running.get(id(fragment))
        if cursor is not None:
            try:
                cursor.adbc_cancel()
            except Exception:
                pass
