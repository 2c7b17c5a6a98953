"""A SQLAlchemy dialect for the gateway, over the ADBC Flight SQL driver (``gateway.client``): SQLAlchemy 2, and
the 1.4 that Apache Superset 6.1 pins (``bench/superset_check.py`` runs Superset on it).

    >>> import sqlalchemy as sa                                                          # doctest: +SKIP
    >>> sa.inspect(sa.create_engine("gateway+flightsql://127.0.0.1:8815")).get_schema_names()  # doctest: +SKIP
    ['demo_db.main', 'demo_lake.main']
    >>> lake = sa.create_engine("gateway+flightsql://127.0.0.1:8815?catalog=demo_lake")  # doctest: +SKIP
    >>> sa.inspect(lake).get_schema_names(), sa.inspect(lake).get_table_names("main")     # doctest: +SKIP
    (['main'], ['orders', 'regions'])

The package's entry point (``sqlalchemy.dialects``: ``gateway.flightsql`` and ``gateway``) registers it: no
import or config line is needed. URL: ``gateway+flightsql://[user:password@]host[:port][?options]`` with options
``tls=true`` (``grpc+tls``), ``tls_ca=/path/ca.pem``, ``tls_skip_verify=true``, ``token=...`` (a bearer or API
token), ``timeout_s=...`` and ``max_staleness_s=...`` (as ``gateway.client.connect``), ``catalog=...`` and
``schema=...`` (below). Port 8815 by default. ``catalog`` and ``schema`` may also be given as ``connect_args``.

Names: a gateway source is a catalog. Without ``catalog`` an engine sees every source and a SQLAlchemy *schema* is
``"source.schema"`` (``demo_db.main``), rendered as two identifiers (``demo_db.main.customers``): two sources with
a schema of the same name stay apart. With ``catalog=source`` an engine works in that source, as SQLAlchemy's
dialects for multi-catalog databases do (Trino, Databricks): its schemas are the source's plain schema names
(``main``); ``engine.dialect.get_catalog_names(connection)`` lists the sources. ``schema`` names the engine's
default schema (``source.schema`` without ``catalog``, a plain name with it; with ``catalog`` alone, a source with
a single schema makes that one the default). Each connection sends both to the gateway as the Flight SQL session's
``catalog`` / ``schema`` options, so unqualified table names in SQL resolve there first (``SELECT * FROM
customers``); fully qualified ``source.schema.table`` names reach every source from any engine. The gateway forgets
a session idle longer than ``auth.token_ttl_s`` (1 h): give a pooled engine a shorter ``pool_recycle``. Superset's
engine spec (``gateway.superset``) makes one engine per catalog and schema this way.

Reflection answers from the gateway's Flight SQL metadata: schemas, tables, views, columns with types (from
their Arrow types) and nullability, primary keys and foreign keys (Flight SQL GetPrimaryKeys /
GetImportedKeys; empty where a source declares none), column comments where the server sends
``ARROW:FLIGHT:SQL:REMARKS``; no indexes; table comments are not known (None). Parameters use the ``qmark``
style: ``text("... :x")`` and ``select()`` bind values positionally as the statement's typed parameters.
The gateway is read-only: commits and rollbacks do nothing.
"""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Any

import pyarrow as pa
import sqlalchemy
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import URL, default
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.sql import compiler

from gateway import client as gateway_client
from gateway.errors import UnknownObjectError

DEFAULT_PORT = 8815
_TRUE = ("1", "true", "yes", "on")
#: SQLAlchemy 1.4 (which Apache Superset 6.1 pins) as well as 2.x: 1.4 has no ``Double`` type and asks a
#: dialect class for ``dbapi()`` where 2.x asks for ``import_dbapi()``
_SQLALCHEMY_1 = int(sqlalchemy.__version__.split(".")[0]) < 2
_DOUBLE = getattr(sqltypes, "Double", sqltypes.Float)


#: SQL that truncates ``{col}`` (a DATE or TIMESTAMP) to each time grain, keyed by the ISO 8601 names Apache
#: Superset uses (``gateway.superset`` hands them to Superset): the gateway's own SQL, so it works on every
#: source (``date_trunc`` weeks start on Monday). Each answers a TIMESTAMP.
TIME_GRAINS: dict[str | None, str] = {
    None: "{col}",
    "PT1S": "date_trunc('second', {col})",
    "PT1M": "date_trunc('minute', {col})",
    "PT1H": "date_trunc('hour', {col})",
    "P1D": "date_trunc('day', {col})",
    "P1W": "date_trunc('week', {col})",
    "1969-12-29T00:00:00Z/P1W": "date_trunc('week', {col})",  # weeks starting on Monday
    "1969-12-28T00:00:00Z/P1W": "date_trunc('week', {col} + INTERVAL '1 day') - INTERVAL '1 day'",  # Sunday
    "P1W/1970-01-03T00:00:00Z": "date_trunc('week', {col} + INTERVAL '1 day') + INTERVAL '5 day'",  # Saturday
    "P1W/1970-01-04T00:00:00Z": "date_trunc('week', {col}) + INTERVAL '6 day'",  # ending on Sunday
    "P1M": "date_trunc('month', {col})",
    "P3M": "date_trunc('quarter', {col})",
    "P1Y": "date_trunc('year', {col})",
}


def datetime_literal(type_name: str, value: dt.datetime) -> str | None:
    """A SQL literal of ``value`` for a column of type ``type_name`` (as SQLAlchemy or the gateway spells it),
    or None for a type that is not a date or a timestamp. Superset's time-range filters use it.

        >>> datetime_literal("DATE", dt.datetime(2024, 3, 14, 15, 9)), datetime_literal("VARCHAR", dt.datetime.now())
        ("DATE '2024-03-14'", None)
    """
    kind = type_name.upper().split("(")[0].strip()
    if kind == "DATE":
        return f"DATE '{value.date().isoformat()}'"
    if kind in ("TIMESTAMP", "DATETIME") or kind.startswith("TIMESTAMP "):
        return f"TIMESTAMP '{value.replace(tzinfo=None).isoformat(sep=' ', timespec='microseconds')}'"
    return None


class GatewayIdentifierPreparer(compiler.IdentifierPreparer):
    """Double-quoted identifiers. Without a catalog a schema ``source.schema`` is rendered as
    ``"source"."schema"`` (split at its first dot: a Flight SQL source's schema may hold one); an engine with a
    catalog renders its plain schema names as one identifier."""

    def quote_schema(self, schema: str, force: Any = None) -> str:
        source, dot, name = schema.partition(".")
        if getattr(self.dialect, "catalog", None) is not None or not dot:
            return self.quote(schema)
        return f"{self.quote(source)}.{self.quote(name)}"


def sqlalchemy_type(arrow_type: pa.DataType) -> sqltypes.TypeEngine:
    """The SQLAlchemy type of an Arrow type (NullType for nested and unknown types)."""
    checks = [
        (pa.types.is_boolean, sqltypes.Boolean), (pa.types.is_int8, sqltypes.SmallInteger),
        (pa.types.is_int16, sqltypes.SmallInteger), (pa.types.is_int32, sqltypes.Integer),
        (pa.types.is_integer, sqltypes.BigInteger), (pa.types.is_float16, sqltypes.Float),
        (pa.types.is_float32, sqltypes.Float), (pa.types.is_float64, _DOUBLE),
        (pa.types.is_string, sqltypes.String), (pa.types.is_large_string, sqltypes.String),
        (pa.types.is_date, sqltypes.Date), (pa.types.is_time, sqltypes.Time),
        (pa.types.is_binary, sqltypes.LargeBinary), (pa.types.is_large_binary, sqltypes.LargeBinary),
        (pa.types.is_fixed_size_binary, sqltypes.LargeBinary), (pa.types.is_interval, sqltypes.Interval),
        (pa.types.is_duration, sqltypes.Interval),
    ]
    if pa.types.is_decimal(arrow_type):
        return sqltypes.Numeric(arrow_type.precision, arrow_type.scale)
    if pa.types.is_timestamp(arrow_type):
        return sqltypes.DateTime(timezone=arrow_type.tz is not None)
    if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(arrow_type):
        return sqltypes.String()
    for check, sa_type in checks:
        if check(arrow_type):
            return sa_type()
    return sqltypes.NullType()


def _split(schema: str | None) -> tuple[str, str]:
    """``source.schema`` -> ``(source, schema)``; a ValueError names a schema without its source."""
    source, dot, name = (schema or "").partition(".")
    if not dot or not source or not name:
        raise ValueError(f"schema {schema!r}: expected 'source.schema' (a gateway source is a catalog)")
    return source, name


def _session_defaults(catalog: str | None, schema: str | None) -> tuple[str | None, str | None]:
    """The Flight SQL session's ``catalog`` / ``schema`` options for an engine's ``catalog`` and default
    ``schema`` (``source.schema`` when there is no catalog).

        >>> _session_defaults("demo_db", "main"), _session_defaults(None, "demo_db.main"), _session_defaults(None, None)
        (('demo_db', 'main'), ('demo_db', 'main'), (None, None))
    """
    if catalog is not None or schema is None:
        return catalog, schema
    return _split(schema)


def _dbapi_connection(connection):
    """The ADBC connection under a SQLAlchemy ``Connection``: behind the pool's wrapper, or (SQLAlchemy 1.4's
    first connect, which runs ``initialize``) the driver's connection itself."""
    raw = connection.connection
    return getattr(raw, "dbapi_connection", raw)


class GatewayDialect(default.DefaultDialect):
    """``gateway+flightsql://``: the gateway over Flight SQL (ADBC), read-only, ``qmark`` parameters."""

    name = "gateway"
    driver = "flightsql"
    supports_statement_cache = True
    default_paramstyle = "qmark"
    preparer = GatewayIdentifierPreparer
    supports_native_boolean = True
    supports_native_decimal = True
    supports_alter = False
    supports_sequences = False
    supports_comments = True
    inline_comments = False
    supports_default_values = False
    supports_empty_insert = False
    supports_multivalues_insert = False
    postfetch_lastrowid = False
    max_identifier_length = 255

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # the gateway.client connection behind each DB-API connection (its keys need a raw Flight client)
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        #: the source this engine works in (URL or connect_args ``catalog``); None: every source, schemas are
        #: ``source.schema``. One value per engine: its URL and connect_args are the same for each connection
        self.catalog: str | None = None
        self._schema: str | None = None  # the URL or connect_args ``schema`` (see ``_get_default_schema_name``)

    @classmethod
    def import_dbapi(cls):
        """The DB-API module: the ADBC Flight SQL driver's."""
        import adbc_driver_flightsql.dbapi as flightsql  # SQLAlchemy imports dialects at start; connect loads it

        return flightsql

    if _SQLALCHEMY_1:  # 1.4 calls the class's dbapi(); 2.x warns when a dialect defines it
        @classmethod
        def dbapi(cls):
            """SQLAlchemy 1.4's name of ``import_dbapi``."""
            return cls.import_dbapi()

    def create_connect_args(self, url: URL) -> tuple[list, dict]:
        """``gateway.client.connect`` arguments from the URL (see the module docstring for its options)."""
        query = dict(url.query)
        tls = str(query.get("tls", "")).lower() in _TRUE or url.get_backend_name() == "gateway+tls"
        kwargs: dict[str, Any] = {
            "uri": f"grpc{'+tls' if tls else ''}://{url.host or '127.0.0.1'}:{url.port or DEFAULT_PORT}",
            "user": url.username, "password": url.password, "token": query.get("token"),
            "tls": query.get("tls_ca") or (True if tls else None),
            "tls_skip_verify": str(query.get("tls_skip_verify", "")).lower() in _TRUE,
        }
        for name in ("timeout_s", "max_staleness_s"):
            if name in query:
                kwargs[name] = float(query[name])
        for name in ("catalog", "schema"):
            if query.get(name):
                kwargs[name] = query[name]
        self.catalog = kwargs.get("catalog")  # known before a first connection, for the identifier preparer
        return [], kwargs

    def connect(self, *cargs: Any, **cparams: Any):
        """A DB-API connection (the ADBC driver's, autocommit) made by ``gateway.client.connect``, its Flight
        SQL session's ``catalog`` / ``schema`` set from the engine's (see the module docstring)."""
        self.catalog = cparams.pop("catalog", None) or None
        self._schema = cparams.pop("schema", None) or None
        catalog, schema = _session_defaults(self.catalog, self._schema)
        connection = gateway_client.connect(**cparams)
        try:
            if catalog is not None:
                connection.adbc.adbc_current_catalog = catalog
            if schema is not None:
                connection.adbc.adbc_current_db_schema = schema
        except Exception as exc:  # an unknown catalog or schema, or one this user may not use
            connection.close()
            raise gateway_client.rebuild_error(exc) from exc
        self._clients[connection.adbc] = connection
        return connection.adbc

    def _client(self, connection) -> gateway_client.Connection:
        return self._clients[_dbapi_connection(connection)]

    # the gateway is read-only and the driver runs in autocommit mode
    def do_begin(self, dbapi_connection) -> None:
        pass

    def do_commit(self, dbapi_connection) -> None:
        pass

    def do_rollback(self, dbapi_connection) -> None:
        pass

    def do_execute(self, cursor, statement, parameters, context=None) -> None:
        cursor.execute(statement, parameters or None)  # no parameters: a plain statement, not a prepared one

    def do_execute_no_params(self, cursor, statement, context=None) -> None:
        cursor.execute(statement)

    def do_ping(self, dbapi_connection) -> bool:
        dbapi_connection.adbc_get_table_types()
        return True

    def get_isolation_level(self, dbapi_connection) -> str:
        return "AUTOCOMMIT"

    def _get_server_version_info(self, connection) -> tuple[int, ...]:
        version = _dbapi_connection(connection).adbc_get_info().get("vendor_version") or ""
        return tuple(int(p) for p in version.split(".") if p.isdigit())

    def _get_default_schema_name(self, connection) -> str | None:
        """The engine's ``schema``, checked once per engine here (the gateway's session takes any schema name:
        UnknownObjectError); with a catalog and no ``schema``, the catalog's schema if it has only one."""
        source, schema = _session_defaults(self.catalog, self._schema)
        if source is None:
            return None
        schemas = self._client(connection).schemas(source)
        if schema is None:
            return schemas[0] if len(schemas) == 1 else None
        if schema not in schemas:
            raise UnknownObjectError("schema", schema, schemas, context=f"source '{source}'")
        return self._schema

    def _locate(self, schema: str | None) -> tuple[str, str]:
        """``(source, schema)`` of a SQLAlchemy schema name (None: the default schema): a plain name in the
        engine's catalog, or ``source.schema`` (a ValueError names a schema without its source)."""
        schema = schema if schema is not None else self.default_schema_name
        if self.catalog is not None and schema is not None:
            return self.catalog, schema
        return _split(schema)

    # ---- reflection ------------------------------------------------------------------------------------------

    def get_catalog_names(self, connection, **kw: Any) -> list[str]:
        """The sources this user may see (Flight SQL catalogs); ``gateway.superset`` lists them as Superset's
        catalogs."""
        return self._client(connection).sources()

    def get_schema_names(self, connection, **kw: Any) -> list[str]:
        """The schemas of the engine's catalog; without one, every ``source.schema`` this user may see."""
        client = self._client(connection)
        if self.catalog is not None:
            return client.schemas(self.catalog)
        return [f"{source}.{schema}" for source in client.sources() for schema in client.schemas(source)]

    def _tables(self, connection, schema: str | None, kind: str) -> list[str]:
        if schema is None and self.default_schema_name is None:
            return []  # no default schema: every table lives in a schema of a source
        source, name = self._locate(schema)
        return [t for _, t in self._client(connection).tables(source, name, [kind])]

    def get_table_names(self, connection, schema: str | None = None, **kw: Any) -> list[str]:
        return self._tables(connection, schema, "TABLE")

    def get_view_names(self, connection, schema: str | None = None, **kw: Any) -> list[str]:
        return self._tables(connection, schema, "VIEW")

    def has_table(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> bool:
        if schema is None and self.default_schema_name is None:
            return False
        source, name = self._locate(schema)
        return (name, table_name) in self._client(connection).table_types(source, name)

    def get_columns(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list[dict]:
        """Name, SQLAlchemy type (from the Arrow type), nullability and comment of each column."""
        source, name = self._locate(schema)
        client = self._client(connection)
        if (name, table_name) not in client.table_types(source, name):
            raise NoSuchTableError(f"{schema}.{table_name}")
        columns = []
        for f in client.table_schema(source, name, table_name):
            remarks = (f.metadata or {}).get(b"ARROW:FLIGHT:SQL:REMARKS")
            columns.append({"name": f.name, "type": sqlalchemy_type(f.type), "nullable": f.nullable,
                            "default": None, "autoincrement": False,
                            "comment": remarks.decode() if remarks else None})
        return columns

    def get_pk_constraint(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> dict:
        source, name = self._locate(schema)
        return {"constrained_columns": self._client(connection).primary_key(source, name, table_name),
                "name": None}

    def get_foreign_keys(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list[dict]:
        """One entry per foreign key (composite keys in key order); a referred schema is named as
        ``get_schema_names`` names it (a plain name in the engine's catalog, otherwise ``source.schema``)."""
        source, name = self._locate(schema)
        keys: dict[str, dict] = {}
        for row in self._client(connection).foreign_keys(source, name, table_name):
            key = keys.setdefault(row["fk_key_name"] or f"fk_{row['pk_table_name']}", {
                "name": row["fk_key_name"], "constrained_columns": [], "referred_columns": [],
                "referred_schema": row["pk_db_schema_name"] if row["pk_catalog_name"] == self.catalog
                else f"{row['pk_catalog_name']}.{row['pk_db_schema_name']}",
                "referred_table": row["pk_table_name"], "options": {},
            })
            key["constrained_columns"].append(row["fk_column_name"])
            key["referred_columns"].append(row["pk_column_name"])
        return list(keys.values())

    def get_indexes(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list:
        return []

    def get_unique_constraints(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list:
        return []

    def get_check_constraints(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list:
        return []

    def get_table_comment(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> dict:
        return {"text": None}  # Flight SQL's GetTables carries no table remarks


dialect = GatewayDialect
