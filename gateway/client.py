"""The Python client: Flight SQL through the ADBC Flight SQL driver, with the gateway's own errors.

    >>> from gateway.client import connect
    >>> conn = connect("grpc://127.0.0.1:8815")                       # doctest: +SKIP
    >>> conn.query("SELECT count(*) AS n FROM demo_lake.orders").to_pandas()   # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import pyarrow as pa

from gateway.errors import ERRORS_BY_CODE, GatewayError

_CODE = re.compile(r"\[([a-z_]+)\] (.*?)(?:\. Detail: |$)", re.DOTALL)


def _rebuild(exc: Exception) -> Exception:
    """The gateway exception encoded in a Flight status message (``[code] message``), else ``exc``."""
    match = _CODE.search(str(exc))
    if not match:
        return exc
    cls = ERRORS_BY_CODE.get(match.group(1), GatewayError)
    error = GatewayError.__new__(cls)
    GatewayError.__init__(error, match.group(2).strip())
    return error


class Connection:
    """A connection to a gateway. Use as a context manager, or call ``close()``.

    ``query`` returns a ``pyarrow.Table``; ``stream`` yields record batches; ``cursor()`` is a DB-API 2.0
    cursor of the ADBC driver. Errors are the gateway's ``GatewayError`` subclasses.
    """

    def __init__(self, dbapi_connection) -> None:
        self._conn = dbapi_connection

    def cursor(self):
        return self._conn.cursor()

    def query(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        """Run ``sql`` (with ``?`` parameters) and return the whole result as a pyarrow.Table."""
        with self._conn.cursor() as cur:
            try:
                cur.execute(sql, params)
                return cur.fetch_arrow_table()
            except Exception as exc:
                raise _rebuild(exc) from exc

    def stream(self, sql: str, params: Sequence[object] | None = None) -> Iterator[pa.RecordBatch]:
        """Run ``sql`` and yield its record batches as they arrive."""
        with self._conn.cursor() as cur:
            try:
                cur.execute(sql, params)
                yield from cur.fetch_record_batch()
            except Exception as exc:
                raise _rebuild(exc) from exc

    def explain(self, sql: str) -> str:
        """The federated plan as text."""
        return "\n".join(self.query(f"EXPLAIN {sql}").column("plan").to_pylist())

    def sources(self) -> list[str]:
        """Source names (Flight SQL catalogs)."""
        objects = self._conn.adbc_get_objects(depth="catalogs").read_all()
        return sorted(objects.column("catalog_name").to_pylist())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(uri: str = "grpc://127.0.0.1:8815", user: str | None = None, password: str | None = None,
            token: str | None = None) -> Connection:
    """Connect to a gateway's Flight SQL endpoint (``grpc://`` or ``grpc+tls://``).

    With ``user``/``password`` the driver performs the Basic handshake and uses the returned bearer token;
    with ``token`` it sends ``Authorization: Bearer <token>``.
    """
    import adbc_driver_flightsql.dbapi as flightsql
    from adbc_driver_flightsql import DatabaseOptions

    db_kwargs: dict[str, str] = {}
    if user is not None:
        db_kwargs["username"] = user
        db_kwargs["password"] = password or ""
    if token is not None:
        db_kwargs[DatabaseOptions.AUTHORIZATION_HEADER.value] = f"Bearer {token}"
    try:
        return Connection(flightsql.connect(uri, db_kwargs=db_kwargs, autocommit=True))
    except Exception as exc:
        raise _rebuild(exc) from exc
