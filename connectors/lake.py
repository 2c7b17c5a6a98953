"""What the table-format connectors (Delta Lake, Iceberg) share: a fragment's SQL run in a DataFusion session of
its own over the tables it reads, streamed, conformed to the fragment's schema and cancellable.

A subclass says only how the tables a query reads reach a session (``register_tables``: register each under a
name of its own and point the query's table nodes at it); ``scan`` and ``cancel`` are the same for every format::

    class DeltaConnector(LakeConnector):
        def register_tables(self, query, ctx, prefix):
            ...  # ctx.register_dataset(prefix + digest, the snapshot's dataset); node.set("this", ...)
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pyarrow as pa
from datafusion import DataFrame, SessionContext
from sqlglot import exp

from connectors.arrow import datafusion as df_boundary
from connectors.arrow.datafusion import StreamCancelled
from connectors.arrow.dialect import DATAFUSION_DIALECT
from connectors.arrow.streams import conformed_reader
from connectors.base import Connector, Fragment
from connectors.errors import InvalidRequestError, SourceQueryError, SourceUnavailableError, UnknownObjectError
from connectors.files import FileConnector

#: errors that reach the caller as they are while a query's tables are registered and planned (anything else
#: becomes SourceQueryError naming the source and the fragment's SQL)
_OWN_ERRORS = (InvalidRequestError, SourceUnavailableError, UnknownObjectError, SourceQueryError)


def session_table(node: exp.Table, ctx: SessionContext) -> bool:
    """Whether ``node`` names a table the session already holds under that very name rather than one of the
    source's tables: the residual plan's table of keys that a semi-join restriction of an in-place fragment
    reads (``gateway.execution.runtime_filters``; TPC-H Q7 with lineitem as Delta failed on it). The gateway's
    own tables in a session are named ``__...`` (fragments, keys, shared providers) and are unqualified."""
    return not node.args.get("db") and node.name.startswith("__") and ctx.table_exist(node.name)


class LakeConnector(Connector):
    """A source of table-format tables whose fragments run in DataFusion (as for Parquet folders, so whole
    queries are pushed down): ``scan`` runs a fragment in a session of its own, ``cancel`` stops it."""

    dialect = DATAFUSION_DIALECT  # DataFusion's SQL (connectors.arrow.dialect)
    capabilities = FileConnector.capabilities

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self._lock = threading.RLock()
        self._cancels: dict[int, threading.Event] = {}  # id(fragment) -> set by cancel() while it runs

    def register_tables(self, query: exp.Expression, ctx: SessionContext, prefix: str) -> None:
        """Register each table ``query`` reads in ``ctx`` under a name starting with ``prefix`` and point the
        query's table nodes at those names."""
        raise NotImplementedError

    def dataframe(self, fragment: Fragment, query: exp.Expression, ctx: SessionContext, prefix: str) -> DataFrame:
        """``query`` (a copy of the fragment's) planned in ``ctx`` over its registered tables. Raises the
        connector's own errors as they are, anything else as SourceQueryError naming the fragment's SQL."""
        try:
            self.register_tables(query, ctx, prefix)
            return ctx.sql(query.sql(dialect=self.dialect))
        except _OWN_ERRORS:
            raise
        except Exception as exc:
            raise SourceQueryError(self.name, first_line(exc), fragment.sql) from exc

    def scan(self, fragment: Fragment) -> pa.RecordBatchReader:
        """Run the fragment in a DataFusion session of its own; streams, conformed to its schema."""
        ctx = df_boundary.session(plain_types=True)
        query = fragment.ast.copy() if fragment.ast is not None else exp.maybe_parse(fragment.sql, dialect="postgres")
        df = self.dataframe(fragment, query, ctx, "t_")
        self.scans += 1
        cancel = self._cancels.setdefault(id(fragment), threading.Event())

        def batches():
            try:
                yield from df_boundary.batches(df, cancel)
            except StreamCancelled:
                raise SourceQueryError(self.name, "the statement was cancelled", fragment.sql) from None
            except Exception as exc:
                raise SourceQueryError(self.name, first_line(exc), fragment.sql) from exc
            finally:
                self._cancels.pop(id(fragment), None)

        return conformed_reader(fragment.schema, batches())

    def cancel(self, fragment: Fragment) -> None:
        """Stop the fragment's DataFusion plan if it runs."""
        event = self._cancels.get(id(fragment))
        if event is not None:
            event.set()


def utc_instant(text: str) -> dt.datetime:
    """The instant of ``FOR TIMESTAMP AS OF '<ISO time>'`` (UTC when it names no zone): ``'2024-05-01 12:00'`` ->
    ``2024-05-01 12:00:00+00:00``. Raises ValueError for text that is no ISO time."""
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's text (its type's name when it has none), at most 400 chars."""
    text = str(exc).strip()
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)[:400]
