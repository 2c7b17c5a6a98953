"""Parquet and CSV folders, read by DataFusion (its own projection, filter and Hive-partition pruning).

Each table is registered on its own: a table that cannot be read (an unparseable file, a symbolic link
leading outside the folder) is listed with its reason (``table_errors``) and fails only the queries that
read it. Messages name the source, the table and paths relative to the source folder, never the server's
absolute paths. Where tables are and how they are named: ``connectors.files_layout``; their statistics:
``connectors.files_statistics``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
from datafusion import DataFrame, SessionContext
from sqlglot import exp

from connectors.arrow import datafusion as df_boundary
from connectors.arrow.datafusion import StreamCancelled
from connectors.arrow.dialect import DATAFUSION_DIALECT
from connectors.arrow.streams import conformed_reader
from connectors.base import (
    PORTABLE_EXPRESSIONS,
    QUERY_SHAPE_EXPRESSIONS,
    Capabilities,
    Connector,
    Fragment,
    TableStatistics,
)
from connectors.errors import SourceQueryError, SourceUnavailableError, UnknownObjectError
from connectors.files_layout import (
    TableError,
    failure,
    folder_tables,
    hive_condition,
    hive_partition_columns,
    link_outside,
    session_name,
    without_folder,
)
from connectors.files_sessions import conformed_view, own_tables, plain_view_types, pooled, share_tables
from connectors.files_statistics import csv_statistics, parquet_statistics, partition_column_statistics
from connectors.objectstore import FILE_SCHEMES, ObjectPath, ObjectStore, is_object_store

log = logging.getLogger(__name__)


class FileConnector(Connector):
    """A folder of Parquet or CSV files; one schema, ``main``.

    Each file directly in ``path`` is a table named after its stem; each sub-folder is a table made of the
    files inside it, where Hive-style ``key=value`` folders become partition columns (int64 when every value
    is an integer, else utf8). Fragments run in this connector's own DataFusion session, so the whole
    query is pushed down: the source *is* DataFusion, with the same semantics as the residual plan.

    Files are read only where their real path (symbolic links resolved) lies inside ``path``: a table that
    holds a link leading out of the folder cannot be read (its reason says which link), unless the source
    sets ``follow_symlinks = true``.

    Options: ``path`` (the folder, or ``s3://``, ``az://``, ``gs://`` with the store's settings: see
    ``connectors.objectstore``), ``has_header`` (CSV, default true), ``delimiter`` (CSV, default ``,``),
    ``follow_symlinks`` (default false).
    """

    dialect = DATAFUSION_DIALECT  # DataFusion's SQL (connectors.arrow.dialect)
    capabilities = Capabilities(
        full_query=True, expressions=PORTABLE_EXPRESSIONS | QUERY_SHAPE_EXPRESSIONS | {exp.Avg, exp.Div},
        ordered_text=True, exact_float_sum=True, float_literals=True, local_compute=True,
    )
    extension: str = ""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        # an object-store prefix (s3://bucket/prefix) is read through DataFusion's own object store; its listing
        # (ObjectPath) answers the Path questions asked below, with each object's last-modified time and size
        self.store = ObjectStore.from_options(str(options["path"]), options, schemes=FILE_SCHEMES) \
            if is_object_store(options["path"]) else None
        self.path = ObjectPath(self.store) if self.store else Path(options["path"])
        self.follow_symlinks = bool(options.get("follow_symlinks", False))
        self._ctx: SessionContext | None = None
        self._tables: dict[str, Path] = {}
        self._errors: dict[str, str] = {}  # table -> why it cannot be read
        self._lock = threading.Lock()
        self._cancels: dict[int, threading.Event] = {}  # id(fragment) -> set by cancel() while it runs

    def _context(self) -> SessionContext:
        if self.store is None:
            return self._listed_context()
        try:
            return self._listed_context()
        except OSError as exc:
            raise self.store.unavailable(self.name, exc) from exc

    def _listed_context(self) -> SessionContext:
        with self._lock:
            if self._ctx is None:
                if not self.path.is_dir():
                    raise SourceUnavailableError(self.name, "its folder (the source's path) does not exist")
                # DataFusion's own view types inside (Q1 and Q12 spend 1.5x the CPU on plain utf8), cast to plain
                # utf8/binary at the edge (table_schema, conformed scans, native views); broadcast builds:
                # TPC-H Q7 over Parquet 0.63 -> 0.40 s of CPU
                ctx = df_boundary.session(broadcast_builds=True)
                if self.store is not None:
                    self.store.register(ctx)
                tables = folder_tables(self.path, self.extension)
                errors: dict[str, str] = {}
                for table, location in tables.items():
                    try:
                        self._files(table, location)  # no link out of the folder
                        self._register(ctx, table, location)
                    except TableError as exc:
                        errors[table] = exc.reason
                        log.warning("file source table cannot be read",
                                    extra={"source": self.name, "table": table, "error": exc.reason})
                self._ctx, self._tables, self._errors = ctx, tables, errors
            return self._ctx

    def _register(self, ctx: SessionContext, table: str, location: Path) -> None:
        partition_cols = hive_partition_columns(location) if location.is_dir() else []
        kwargs: dict[str, Any] = {"table_partition_cols": partition_cols, "file_extension": self.extension}
        try:
            if self.store is not None and not self.store.native_reads:  # gs://: a pyarrow dataset of the objects
                ctx.register_dataset(session_name(table), self.store.dataset(
                    self._files(table, location), location, partition_cols, self.extension, self.options))
                return
            self._register_format(ctx, table, location, kwargs)
        except BaseException as exc:
            if not failure(exc):
                raise
            raise TableError(self.name, table.split("/", 1)[0], self._reason(exc)) from exc

    def _reason(self, exc: BaseException) -> str:
        """DataFusion's message on one line, with this source's folder cut from every path in it (DataFusion
        writes paths without their leading ``/``; a path outside the folder becomes ``<path>``)."""
        lines = [line.strip() for line in str(exc).splitlines()]
        text = ": ".join(line for line in lines if line and line != "caused by")
        if type(exc).__name__ == "PanicException":
            text = f"a file could not be parsed (DataFusion panicked: {text})"
        return self.store.redact(text) if self.store is not None else without_folder(text, self.path)

    def _files(self, table: str, target: Path) -> list[Path]:
        """The files of this connector's kind at ``target`` (a file or a folder of ``table``), as DataFusion
        lists them (symbolic links to folders are not descended). Raises SourceQueryError naming the table
        when a symbolic link there leads outside the source folder (unless ``follow_symlinks``)."""
        try:
            files = [target] if target.is_file() else sorted(target.rglob(f"*{self.extension}"))
        except OSError as exc:  # an object store that stopped answering
            if self.store is None:
                raise
            raise self.store.unavailable(self.name, exc) from exc
        link = None if self.follow_symlinks or self.store is not None else link_outside(target, self.path)
        if link is not None:
            where = link.relative_to(self.path) if link.is_relative_to(self.path) else link.name
            raise TableError(self.name, table, f"it contains a symbolic link leading outside the source folder "
                                               f"({where}); set follow_symlinks = true on the source to allow it")
        return files

    def _location(self, table: str) -> Path:
        """The file or folder of a readable table. Raises UnknownObjectError, or SourceQueryError with the
        reason the table cannot be read."""
        self._context()
        reason = self._errors.get(table)
        if reason is not None:
            raise TableError(self.name, table, reason)
        location = self._tables.get(table)
        if location is None:
            raise UnknownObjectError("table", table, self._tables, context=f"source '{self.name}'")
        return location

    def table_errors(self, schema: str) -> dict[str, str]:
        """Tables of ``schema`` that are listed but cannot be read, each with the reason (paths relative to
        the source folder)."""
        self._context()
        return dict(self._errors)

    def _register_format(self, ctx, table, location, kwargs) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def refresh(self) -> None:
        """Forget registered tables so new or removed files are seen on next use."""
        with self._lock:
            self._ctx = None

    def list_schemas(self) -> list[str]:
        return ["main"]

    def list_tables(self, schema: str) -> list[str]:
        """Every table, also those that cannot be read (``table_errors``: a query on one names the reason)."""
        self._context()
        return sorted(self._tables)

    def table_schema(self, schema: str, table: str) -> pa.Schema:
        ctx = self._context()
        self._location(table)
        return plain_view_types(ctx.table(session_name(table)).schema())

    def statistics(self, schema: str, table: str) -> TableStatistics:
        """Rows, bytes (the files' sizes) and per-column statistics of a readable table; unknown
        (``TableStatistics(None, None)``) for one that cannot be read. Parquet: rows, null counts and min/max
        from the footers (every row group's statistics combined; nothing else is read), distinct counts and
        common values from a sample of at most ``SAMPLE_ROWS`` rows over row groups spread across the files.
        CSV: a sample of at most ``SAMPLE_ROWS`` rows in blocks spread across the files (the whole table when it
        is at most ``CSV_WHOLE_BYTES``), rows estimated from the sampled bytes per row. Hive partition columns:
        their folder values. Raises SourceQueryError naming the table when a file cannot be parsed."""
        self._context()
        if table not in self._tables or table in self._errors:
            return TableStatistics(None, None)
        location = self._tables[table]
        files = self._files(table, location)
        fields = plain_view_types(self._context().table(session_name(table)).schema())
        partition_names = {name for name, _ in (hive_partition_columns(location) if location.is_dir() else [])}
        data_fields = [f for f in fields if f.name not in partition_names]
        sizes = sum(f.stat().st_size for f in files)
        try:
            if self.extension == ".parquet":
                rows, columns = parquet_statistics([f.open() if self.store else f for f in files], data_fields)
            elif self.store is not None:  # CSV objects are not sampled (each block would be a request)
                return TableStatistics(rows=None, bytes=sizes)
            else:
                rows, columns = csv_statistics(files, data_fields, bool(self.options.get("has_header", True)),
                                               str(self.options.get("delimiter", ",")))
        except BaseException as exc:
            if not failure(exc):
                raise
            raise TableError(self.name, table, self._reason(exc)) from exc
        columns.update(partition_column_statistics(files, location, [f for f in fields if f.name in partition_names]))
        return TableStatistics(rows=rows, bytes=sizes, columns=columns)

    def partitions(self, schema: str, table: str) -> list[str]:
        """``["*"]`` for a one-file table; each Hive ``key=value`` leaf folder (``year=2022``) of a
        partitioned one; else each file (``lineitem-1992.parquet``)."""
        location = self._location(table)
        if location.is_file():
            return ["*"]
        files = self._files(table, location)
        if hive_partition_columns(location):
            return sorted({str(f.parent.relative_to(location)) for f in files})
        return [str(f.relative_to(location)) for f in files]

    def _partition_files(self, table: str, partition: str) -> list[Path]:
        location = self._location(table)
        return self._files(table, location if partition == "*" else location / partition)

    def partition_fragment(self, select: exp.Select, schema: str, table: str, partition: str, alias: str
                           ) -> exp.Select:
        """A Hive folder: the select with ``key = value`` conditions (DataFusion prunes to that folder).
        A file: the select reading a table made of that one file."""
        if partition == "*":
            return select
        ctx = self._context()
        location = self._location(table)
        if (location / partition).is_dir():
            return select.where(hive_condition(partition, dict(hive_partition_columns(location)), alias))
        name = f"{table}/{partition}"
        with self._lock:
            if not ctx.table_exist(session_name(name)):
                self._register(ctx, name, location / partition)
        select = select.copy()
        select.find(exp.From).this.set("this", exp.to_identifier(name, quoted=True))
        return select

    def partition_fingerprint(self, schema: str, table: str, partition: str) -> str:
        self._context()
        files = self._partition_files(table, partition)
        return ";".join(f"{f.name}:{f.stat().st_mtime_ns}:{f.stat().st_size}" for f in files)

    def fingerprint(self, schema: str, table: str) -> str:
        self._context()
        location = self._tables.get(table)
        if location is None or table in self._errors:
            return ""
        files = self._files(table, location)
        return ";".join(f"{f.name}:{f.stat().st_mtime_ns}:{f.stat().st_size}" for f in files)

    def table_expression(self, schema: str, table: str) -> exp.Table:
        return exp.table_(table, quoted=True)

    def _current(self, ctx: SessionContext, tables: list[str]) -> None:
        """Re-register tables whose files changed (DataFusion keeps file sizes and lists from registration).
        Raises SourceQueryError for a table that cannot be read (now or since the folder was listed)."""
        seen = self.__dict__.setdefault("_registered_fingerprints", {})
        for name in tables:
            table = name.split("/", 1)[0]
            if table in self._errors:
                raise TableError(self.name, table, self._errors[table])
            location = self._tables.get(table)
            if location is None:
                continue
            target = location / name.split("/", 1)[1] if "/" in name else location
            files = self._files(table, target)  # also: no link out of the folder was added since
            token = ";".join(f"{f}:{f.stat().st_mtime_ns}:{f.stat().st_size}" for f in files)
            with self._lock:
                if seen.setdefault(name, token) != token:
                    ctx.deregister_table(session_name(name))
                    self._register(ctx, name, target)
                    seen[name] = token

    def native_view(self, fragment: Fragment, ctx: SessionContext) -> DataFrame | None:
        """The fragment over this folder's tables registered in the residual session ``ctx`` (the same
        table providers, so file listings and schemas are not inferred again), under a name derived from the
        source and table.
        DataFusion then plans the fragment with the residual plan: only the columns and rows the whole query
        needs are decoded, and hash joins prune row groups by the keys of their build side. The view's
        columns are cast to ``fragment.schema`` where their types differ. Raises SourceQueryError."""
        if not isinstance(fragment.ast, exp.Select | exp.Union):
            return None
        own = self._context()
        query = fragment.ast.copy()
        tables = own_tables(query, self._tables)
        if not tables:
            return None
        self._current(own, sorted({t.name for t in tables}))
        try:
            if self.store is not None:
                self.store.register(ctx)  # the providers read s3:// URLs in the residual session's runtime
            share_tables(own, ctx, self.name, tables)
            df = ctx.sql(query.sql(dialect=self.dialect))
        except BaseException as exc:
            if not failure(exc):
                raise
            raise self._query_error(exc, fragment) from exc
        actual = df.schema()
        if actual.names != fragment.schema.names:
            return None
        self.scans += 1
        return conformed_view(df, actual, fragment.schema)

    def scan(self, fragment: Fragment) -> pa.RecordBatchReader:
        """Run the fragment in this connector's DataFusion session; streams, conformed to its schema. With
        ``fragment.memory_bytes`` it runs in a session of its own (``_pooled``) whose memory pool has that many
        bytes: its operators spill beyond it, and what cannot spill fails with DataFusion's "Resources
        exhausted" (as SourceQueryError, which the engine reports as ResourceLimitError). With
        ``fragment.late_materialization`` too, in a session that decodes columns only for the rows kept. With
        ``fragment.key_tables`` (the keys its semi-join restrictions read), in a session of its own holding them."""
        ctx = self._context()
        if fragment.ast is not None:
            self._current(ctx, [t.name for t in fragment.ast.find_all(exp.Table)])
        else:
            self._current(ctx, [t.rsplit(".", 1)[-1] for t in fragment.tables])
        self.scans += 1
        try:
            own_session = fragment.memory_bytes or fragment.late_materialization or fragment.key_tables
            df = self._pooled(ctx, fragment) if own_session else ctx.sql(fragment.sql)
        except BaseException as exc:
            if not failure(exc):
                raise
            raise self._query_error(exc, fragment) from exc
        cancel = self._cancels.setdefault(id(fragment), threading.Event())

        def batches():
            # execute_stream (inside datafusion_batches), not the Arrow C stream export: measured 1.6x faster on
            # a selective lineitem scan and 11% on TPC-H Q1 (datafusion-python 55)
            try:
                yield from df_boundary.batches(df, cancel)
            except StreamCancelled:
                raise SourceQueryError(self.name, "the statement was cancelled", fragment.sql) from None
            except BaseException as exc:
                if not failure(exc):
                    raise
                raise self._query_error(exc, fragment) from exc
            finally:
                self._cancels.pop(id(fragment), None)

        return conformed_reader(fragment.schema, batches())

    def _pooled(self, own: SessionContext, fragment: Fragment) -> DataFrame:
        """The fragment in a session of its own with a memory pool (``files_sessions.pooled``)."""
        return pooled(own, fragment, self.store, self._tables, self.dialect)

    def cancel(self, fragment: Fragment) -> None:
        """Stop the fragment's DataFusion plan if it runs (a whole query pushed to this source can be long)."""
        event = self._cancels.get(id(fragment))
        if event is not None:
            event.set()

    def _query_error(self, exc: BaseException, fragment: Fragment) -> SourceQueryError:
        """A failed fragment as SourceQueryError naming the tables it read and DataFusion's reason."""
        tables = ", ".join(f"'{t.rsplit('.', 1)[-1]}'" for t in fragment.tables)
        prefix = f"table {tables}: " if len(fragment.tables) == 1 else f"tables {tables}: " if tables else ""
        return SourceQueryError(self.name, prefix + self._reason(exc), fragment.sql)


class ParquetConnector(FileConnector):
    kind = "parquet"
    extension = ".parquet"

    def _register_format(self, ctx, table, location, kwargs) -> None:
        ctx.register_parquet(session_name(table), str(location), **kwargs)


class CsvConnector(FileConnector):
    kind = "csv"
    extension = ".csv"

    def _register_format(self, ctx, table, location, kwargs) -> None:
        from datafusion import CsvReadOptions  # CSV sources only

        options = CsvReadOptions(
            has_header=bool(self.options.get("has_header", True)), delimiter=str(self.options.get("delimiter", ",")),
            file_extension=kwargs["file_extension"], table_partition_cols=kwargs["table_partition_cols"],
        )
        ctx.register_csv(session_name(table), str(location), options=options)
