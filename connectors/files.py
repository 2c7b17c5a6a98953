"""Parquet and CSV folders, read by DataFusion (its own projection, filter and Hive-partition pruning).

Each table is registered on its own: a table that cannot be read (an unparseable file, a symbolic link
leading outside the folder) is listed with its reason (``table_errors``) and fails only the queries that
read it. Messages name the source, the table and paths relative to the source folder, never the server's
absolute paths.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
from datafusion import DataFrame, SessionContext, col
from sqlglot import exp

from connectors.arrow import datafusion as df_boundary
from connectors.arrow.datafusion import StreamCancelled
from connectors.arrow.streams import conformed_reader
from connectors.base import (
    PORTABLE_EXPRESSIONS,
    QUERY_SHAPE_EXPRESSIONS,
    Capabilities,
    ColumnStatistics,
    Connector,
    Fragment,
    TableStatistics,
)
from connectors.errors import SourceQueryError, SourceUnavailableError, UnknownObjectError
from connectors.objectstore import FILE_SCHEMES, ObjectPath, ObjectStore, is_object_store
from connectors.statistics import SAMPLE_ROWS, largest, sample_column_statistics, smallest, value_from_text

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

    Options: ``path`` (the folder), ``has_header`` (CSV, default true), ``delimiter`` (CSV, default ``,``),
    ``follow_symlinks`` (default false).
    """

    dialect = "postgres"  # DataFusion's SQL; see planner.dialects
    capabilities = Capabilities(
        full_query=True,
        expressions=PORTABLE_EXPRESSIONS | QUERY_SHAPE_EXPRESSIONS | {exp.Avg, exp.Div},
        ordered_text=True,
        exact_float_sum=True,
        float_literals=True,
        local_compute=True,
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
                tables: dict[str, Path] = {}
                for entry in sorted(self.path.iterdir()):
                    if entry.name.startswith((".", "_")):
                        continue
                    if entry.is_file() and entry.suffix == self.extension:
                        tables[entry.stem] = entry
                    elif entry.is_dir() and any(entry.rglob(f"*{self.extension}")):
                        tables[entry.name] = entry
                errors: dict[str, str] = {}
                for table, location in tables.items():
                    try:
                        self._files(table, location)  # no link out of the folder
                        self._register(ctx, table, location)
                    except _TableError as exc:
                        errors[table] = exc.reason
                        log.warning("file source table cannot be read",
                                    extra={"source": self.name, "table": table, "error": exc.reason})
                self._ctx, self._tables, self._errors = ctx, tables, errors
            return self._ctx

    def _register(self, ctx: SessionContext, table: str, location: Path) -> None:
        partition_cols = _hive_partition_columns(location) if location.is_dir() else []
        kwargs: dict[str, Any] = {"table_partition_cols": partition_cols, "file_extension": self.extension}
        try:
            self._register_format(ctx, table, location, kwargs)
        except BaseException as exc:
            if not _failure(exc):
                raise
            raise _TableError(self.name, table.split("/", 1)[0], self._reason(exc)) from exc

    def _reason(self, exc: BaseException) -> str:
        """DataFusion's message on one line, with this source's folder cut from every path in it (DataFusion
        writes paths without their leading ``/``; a path outside the folder becomes ``<path>``)."""
        lines = [line.strip() for line in str(exc).splitlines()]
        text = ": ".join(line for line in lines if line and line != "caused by")
        if type(exc).__name__ == "PanicException":
            text = f"a file could not be parsed (DataFusion panicked: {text})"
        if self.store is not None:
            return self.store.redact(text)
        folders = {os.path.abspath(self.path), os.path.realpath(self.path)}
        for folder in sorted(folders, key=len, reverse=True):
            for prefix in (f"file://{folder}/", f"{folder}/", f"{folder.lstrip('/')}/"):
                text = text.replace(prefix, "")
            text = text.replace(folder, ".").replace(folder.lstrip("/"), ".")
        return _ABSOLUTE_PATH.sub("<path>", text)

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
        if not self.follow_symlinks and self.store is None:
            root = os.path.realpath(self.path)
            for link in _links(target):
                if not _inside(os.path.realpath(link), root):
                    where = link.relative_to(self.path) if link.is_relative_to(self.path) else link.name
                    raise _TableError(self.name, table, f"it contains a symbolic link leading outside the source "
                                                        f"folder ({where}); set follow_symlinks = true on the "
                                                        "source to allow it")
        return files

    def _location(self, table: str) -> Path:
        """The file or folder of a readable table. Raises UnknownObjectError, or SourceQueryError with the
        reason the table cannot be read."""
        self._context()
        reason = self._errors.get(table)
        if reason is not None:
            raise _TableError(self.name, table, reason)
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
        return plain_view_types(ctx.table(_session_name(table)).schema())

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
        fields = plain_view_types(self._context().table(_session_name(table)).schema())
        partition_names = {name for name, _ in (_hive_partition_columns(location) if location.is_dir() else [])}
        data_fields = [f for f in fields if f.name not in partition_names]
        try:
            if self.extension == ".parquet":
                rows, columns = _parquet_statistics([f.open() if self.store else f for f in files], data_fields)
            elif self.store is not None:  # CSV objects are not sampled (each block would be a request)
                return TableStatistics(rows=None, bytes=sum(f.stat().st_size for f in files))
            else:
                rows, columns = _csv_statistics(files, data_fields, bool(self.options.get("has_header", True)),
                                                str(self.options.get("delimiter", ",")))
        except BaseException as exc:
            if not _failure(exc):
                raise
            raise _TableError(self.name, table, self._reason(exc)) from exc
        for f in fields:
            if f.name in partition_names:
                values = [value_from_text(part.split("=", 1)[1], f.type) for file in files
                          for part in file.relative_to(location).parts[:-1] if part.split("=", 1)[0] == f.name]
                distinct = {v for v in values if v is not None}
                columns[f.name] = ColumnStatistics(distinct=float(len(distinct)), null_fraction=0.0,
                                                   min=smallest(distinct), max=largest(distinct),
                                                   origin="partition folders")
        return TableStatistics(rows=rows, bytes=sum(f.stat().st_size for f in files), columns=columns)

    def partitions(self, schema: str, table: str) -> list[str]:
        """``["*"]`` for a one-file table; each Hive ``key=value`` leaf folder (``year=2022``) of a
        partitioned one; else each file (``lineitem-1992.parquet``)."""
        location = self._location(table)
        if location.is_file():
            return ["*"]
        files = self._files(table, location)
        if _hive_partition_columns(location):
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
            types = dict(_hive_partition_columns(location))
            conditions = []
            for part in Path(partition).parts:
                key, value = part.split("=", 1)
                literal = exp.Literal.number(value) if pa.types.is_integer(types[key]) else exp.Literal.string(value)
                conditions.append(exp.column(key, table=alias, quoted=True).eq(literal))
            return select.where(exp.and_(*conditions))
        name = f"{table}/{partition}"
        with self._lock:
            if not ctx.table_exist(_session_name(name)):
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
                raise _TableError(self.name, table, self._errors[table])
            location = self._tables.get(table)
            if location is None:
                continue
            target = location / name.split("/", 1)[1] if "/" in name else location
            files = self._files(table, target)  # also: no link out of the folder was added since
            token = ";".join(f"{f}:{f.stat().st_mtime_ns}:{f.stat().st_size}" for f in files)
            with self._lock:
                if seen.setdefault(name, token) != token:
                    ctx.deregister_table(_session_name(name))
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
        ctes = {cte.alias for cte in fragment.ast.find_all(exp.CTE)}
        query = fragment.ast.copy()
        tables = [t for t in query.find_all(exp.Table)
                  if not t.args.get("db") and t.name not in ctes and t.name in self._tables]
        if not tables:
            return None
        self._current(own, sorted({t.name for t in tables}))
        try:
            if self.store is not None:
                self.store.register(ctx)  # the providers read s3:// URLs in the residual session's runtime
            for table in tables:
                name = _provider_name(self.name, table.name)
                if not ctx.table_exist(name):
                    ctx.register_table(name, own.table_provider(_session_name(table.name)))
                table.set("this", exp.to_identifier(name, quoted=True))
            df = ctx.sql(query.sql(dialect=self.dialect))
        except BaseException as exc:
            if not _failure(exc):
                raise
            raise self._query_error(exc, fragment) from exc
        actual = df.schema()
        if actual.names != fragment.schema.names:
            return None
        casts = {f.name: f.type for f, a in zip(fragment.schema, actual, strict=True) if f.type != a.type}
        self.scans += 1
        if not casts:
            return df
        # quoted: a join group's outputs are named "alias.column", which DataFusion would read as qualified
        columns = [col('"' + f.name.replace('"', '""') + '"') for f in fragment.schema]
        return df.select(*((c.cast(casts[f.name]) if f.name in casts else c).alias(f.name)
                           for c, f in zip(columns, fragment.schema, strict=True)))

    def scan(self, fragment: Fragment) -> pa.RecordBatchReader:
        """Run the fragment in this connector's DataFusion session; streams, conformed to its schema. With
        ``fragment.memory_bytes`` it runs in a session of its own (``_pooled``) whose memory pool has that many
        bytes: its operators spill beyond it, and what cannot spill fails with DataFusion's "Resources
        exhausted" (as SourceQueryError, which the engine reports as ResourceLimitError)."""
        ctx = self._context()
        if fragment.ast is not None:
            self._current(ctx, [t.name for t in fragment.ast.find_all(exp.Table)])
        else:
            self._current(ctx, [t.rsplit(".", 1)[-1] for t in fragment.tables])
        self.scans += 1
        try:
            df = self._pooled(ctx, fragment).sql(self._pooled_sql(fragment)) if fragment.memory_bytes else \
                ctx.sql(fragment.sql)
        except BaseException as exc:
            if not _failure(exc):
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
                if not _failure(exc):
                    raise
                raise self._query_error(exc, fragment) from exc
            finally:
                self._cancels.pop(id(fragment), None)

        return conformed_reader(fragment.schema, batches())

    def _pooled(self, own: SessionContext, fragment: Fragment) -> SessionContext:
        """A session for one fragment with a memory pool of ``fragment.memory_bytes`` (spilling to
        ``fragment.spill_path``), holding the shared session's table providers of the tables it reads under
        the names ``_pooled_sql`` gives them: no file is listed or inferred again. Building it takes 0.06 ms,
        but its run reads again the files' footers that the shared session caches: measured end to end, an
        aggregation over 5 small files took 7.8 ms instead of 5.8 ms (the engine keeps small inputs shared)."""
        ctx = df_boundary.session(memory_bytes=fragment.memory_bytes, spill_path=fragment.spill_path,
                                  broadcast_builds=True)
        if self.store is not None:
            self.store.register(ctx)
        for table in self._own_tables(self._pooled_query(fragment)):
            name = _provider_name(self.name, table.name)
            if not ctx.table_exist(name):
                ctx.register_table(name, own.table_provider(_session_name(table.name)))
        return ctx

    def _pooled_sql(self, fragment: Fragment) -> str:
        """The fragment's SQL over the table names of ``_pooled``'s session."""
        query = self._pooled_query(fragment)
        for table in self._own_tables(query):
            table.set("this", exp.to_identifier(_provider_name(self.name, table.name), quoted=True))
        return query.sql(dialect=self.dialect)

    def _pooled_query(self, fragment: Fragment) -> exp.Expression:
        return fragment.ast.copy() if fragment.ast is not None else exp.maybe_parse(fragment.sql, dialect=self.dialect)

    def _own_tables(self, query: exp.Expression) -> list[exp.Table]:
        """The nodes of ``query`` naming this folder's tables (or a partition's table: ``orders/x.parquet``)."""
        ctes = {cte.alias for cte in query.find_all(exp.CTE)}
        return [t for t in query.find_all(exp.Table) if not t.args.get("db") and t.name not in ctes
                and (t.name in self._tables or t.name.split("/", 1)[0] in self._tables)]

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


def _session_name(table: str) -> str:
    """A table's name as given to the source's own DataFusion session: quoted, because DataFusion parses names
    given to ``register_*``/``table_provider`` (lower-casing ``MixedCase`` and splitting ``orders/x.parquet``
    at the dot), while the fragments' SQL quotes every table name."""
    return '"' + table.replace('"', '""') + '"'


def _provider_name(source: str, table: str) -> str:
    """A table's name in a session other than its source's own: plain and lower-case (DataFusion parses, and
    lower-cases, names given to ``register_table``)."""
    return "__file_" + hashlib.sha1(f"{source}\0{table}".encode()).hexdigest()[:16]


class ParquetConnector(FileConnector):
    kind = "parquet"
    extension = ".parquet"

    def _register_format(self, ctx, table, location, kwargs) -> None:
        ctx.register_parquet(_session_name(table), str(location), **kwargs)


class CsvConnector(FileConnector):
    kind = "csv"
    extension = ".csv"

    def _register_format(self, ctx, table, location, kwargs) -> None:
        from datafusion import CsvReadOptions

        options = CsvReadOptions(
            has_header=bool(self.options.get("has_header", True)), delimiter=str(self.options.get("delimiter", ",")),
            file_extension=kwargs["file_extension"], table_partition_cols=kwargs["table_partition_cols"],
        )
        ctx.register_csv(_session_name(table), str(location), options=options)


class _TableError(SourceQueryError):
    """One table of a file source cannot be read; ``reason`` says why (without the source and table)."""

    def __init__(self, source: str, table: str, reason: str) -> None:
        super().__init__(source, f"table '{table}' cannot be read: {reason}")
        self.table = table
        self.reason = reason


# an absolute path (or file:// URL) in a message: /segments, the first starting like a folder name (so that
# a division such as "(a)/2" in quoted SQL is left alone)
_ABSOLUTE_PATH = re.compile(r"(?:file://)?(?<![\w.~)\]-])/(?=[A-Za-z_.])(?:[^\s/'\"`:,;()]+/)*[^\s/'\"`:,;()]+")


def _failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure to report: any Exception, and a panic inside DataFusion (pyo3's
    ``PanicException`` derives from BaseException; a crafted Parquet footer raised one), but not an
    interrupt, an exit or a closed generator."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _links(target: Path) -> list[Path]:
    """Every symbolic link at or below ``target`` (not descending into linked folders)."""
    links = [target] if target.is_symlink() else []
    if target.is_dir():
        for folder, dirnames, filenames in os.walk(target):
            links.extend(Path(folder, n) for n in dirnames + filenames if os.path.islink(os.path.join(folder, n)))
    return links


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _hive_partition_columns(folder: Path) -> list[tuple[str, pa.DataType]]:
    """Partition columns from ``key=value`` folder names below ``folder`` (in nesting order)."""
    values: dict[str, set[str]] = {}
    order: list[str] = []
    for _, dirnames, _ in folder.walk() if isinstance(folder, ObjectPath) else os.walk(folder):
        for d in dirnames:
            if "=" in d:
                key, value = d.split("=", 1)
                if key not in values:
                    values[key] = set()
                    order.append(key)
                values[key].add(value)
    columns = []
    for key in order:
        is_int = all(v.lstrip("-").isdigit() for v in values[key])
        columns.append((key, pa.int64() if is_int else pa.string()))
    return columns


#: a CSV table at most this large (bytes) is read whole for its statistics; a larger one in sampled blocks
CSV_WHOLE_BYTES = 4 * 1024 * 1024
#: blocks a larger CSV table is sampled in, spread evenly over its bytes (the first and the last included)
CSV_BLOCKS = 10


def _parquet_statistics(files: list[Path], fields: list[pa.Field]) -> tuple[int, dict[str, ColumnStatistics]]:
    """(rows, column statistics) of Parquet files: rows, null counts and min/max from every row group's footer
    statistics (``_parquet_footers``), distinct and common values from up to ``SAMPLE_ROWS`` rows read from at
    most ten row groups spread over the files."""
    import pyarrow.parquet as pq

    parquets = [pq.ParquetFile(file) for file in files]
    rows, nulls, bounds = _parquet_footers(parquets, [f.name for f in fields])
    sample, blocks = _parquet_sample(parquets, fields)
    sampled = sample_column_statistics(sample, rows, f"parquet footer; distinct from a sample of {sample.num_rows} "
                                                     f"of {rows} rows", blocks)
    columns = {}
    for field in fields:
        name, seen = field.name, sampled.get(field.name, ColumnStatistics())
        lo, hi = bounds[name]
        distinct = seen.distinct
        if distinct is not None and isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool):
            distinct = min(distinct, float(hi - lo + 1))
        columns[name] = ColumnStatistics(
            distinct=distinct, null_fraction=(nulls[name] / rows) if rows and nulls[name] is not None else None,
            min=lo, max=hi, most_common=seen.most_common, origin=seen.origin or "parquet footer")
    return rows, columns


def _parquet_footers(parquets: list, names: list[str]) -> tuple[int, dict[str, int | None], dict[str, tuple]]:
    """(rows, null count per column, (min, max) per column) combined over every row group's footer statistics;
    a count or bound that some row group lacks is None (a row group of only NULLs has no bounds to lack)."""
    rows = 0
    nulls: dict[str, int | None] = dict.fromkeys(names, 0)
    lows: dict[str, list | None] = {n: [] for n in names}
    highs: dict[str, list] = {n: [] for n in names}
    for parquet in parquets:
        meta = parquet.metadata
        rows += meta.num_rows
        positions = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for name in names:
                stats = group.column(positions[name]).statistics if name in positions else None
                has_nulls = stats is not None and stats.has_null_count
                nulls[name] = nulls[name] + stats.null_count if has_nulls and nulls[name] is not None else None
                if stats is not None and stats.has_min_max:
                    if lows[name] is not None:
                        lows[name].append(stats.min)
                        highs[name].append(stats.max)
                elif group.num_rows and not (has_nulls and stats.null_count == group.num_rows):
                    lows[name] = None
    bounds = {n: (smallest(lows[n]), largest(highs[n])) if lows[n] is not None else (None, None) for n in names}
    return rows, nulls, bounds


def _parquet_sample(parquets: list, fields: list[pa.Field]) -> tuple[pa.Table, list[int]]:
    """At most ``SAMPLE_ROWS`` rows: the first rows of at most ten row groups spread over the files; and the rows
    taken from each row group (contiguous blocks, for ``clustered_distinct``)."""
    groups = [(parquet, g) for parquet in parquets for g in range(parquet.metadata.num_row_groups)
              if parquet.metadata.row_group(g).num_rows]
    if len(groups) > 10:
        groups = [groups[i] for i in sorted({round(i * (len(groups) - 1) / 9) for i in range(10)})]
    per_group = max(SAMPLE_ROWS // max(len(groups), 1), 1)
    batches = []
    for parquet, g in groups:
        batch = next(parquet.iter_batches(batch_size=per_group, row_groups=[g], columns=[f.name for f in fields]),
                     None)
        if batch is not None:
            batches.append(pa.Table.from_batches([batch]).cast(pa.schema(fields)))
    sample = pa.concat_tables(batches) if batches else pa.schema(fields).empty_table()
    return sample, [b.num_rows for b in batches]


def _csv_statistics(files: list[Path], fields: list[pa.Field], header: bool, delimiter: str
                    ) -> tuple[int | None, dict[str, ColumnStatistics]]:
    """(rows, column statistics) of CSV files from a bounded sample: every row when the files hold at most
    ``CSV_WHOLE_BYTES``, else ``CSV_BLOCKS`` blocks of about ``SAMPLE_ROWS / CSV_BLOCKS`` rows at offsets
    spread over the files (each block starts after a line break; a block that does not parse is skipped). Rows
    are then estimated as the files' bytes over the sampled bytes per row."""
    import io

    from pyarrow import csv

    sizes = [f.stat().st_size for f in files]
    total = sum(sizes)
    read = csv.ReadOptions(column_names=[f.name for f in fields], autogenerate_column_names=False)
    parse = csv.ParseOptions(delimiter=delimiter)
    convert = csv.ConvertOptions(column_types={f.name: f.type for f in fields}, strings_can_be_null=True)

    def parsed(data: bytes) -> pa.Table | None:
        try:
            return csv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None

    def without_header(data: bytes) -> bytes:
        return data.split(b"\n", 1)[1] if header and b"\n" in data else data

    if total <= CSV_WHOLE_BYTES:
        tables = [t for t in (parsed(without_header(f.read_bytes())) for f in files) if t is not None]
        sample = pa.concat_tables(tables) if tables else pa.schema(fields).empty_table()
        return sample.num_rows, sample_column_statistics(sample, sample.num_rows, f"all {sample.num_rows} rows")
    with open(files[0], "rb") as first:
        head = without_header(first.read(256 * 1024))
    line = max(len(head) / max(head.count(b"\n"), 1), 1.0)
    block = int(min(line * SAMPLE_ROWS / CSV_BLOCKS, total / CSV_BLOCKS, 1024 * 1024))
    tables, sampled_bytes = [], 0
    for i in range(CSV_BLOCKS):
        offset = round(i * (total - block) / (CSV_BLOCKS - 1))
        index = 0
        while index < len(sizes) - 1 and offset >= sizes[index]:
            offset -= sizes[index]
            index += 1
        with open(files[index], "rb") as handle:
            handle.seek(max(offset, 0))
            data = handle.read(block)
        data = without_header(data) if offset <= 0 else (data.split(b"\n", 1)[1] if b"\n" in data else b"")
        data = data[: data.rfind(b"\n") + 1] if offset + block < sizes[index] else data
        table = parsed(data) if data.strip() else None
        if table is not None and table.num_rows:
            tables.append(table)
            sampled_bytes += len(data)
    sample = pa.concat_tables(tables) if tables else pa.schema(fields).empty_table()
    rows = round(total * sample.num_rows / sampled_bytes) if sampled_bytes else None
    return rows, sample_column_statistics(sample, rows, f"sample {sample.num_rows} of ~{rows} rows",
                                          [t.num_rows for t in tables])


_PLAIN_TYPES = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}


def plain_view_types(schema: pa.Schema) -> pa.Schema:
    """``schema`` with DataFusion's ``utf8_view``/``binary_view`` columns as plain ``utf8``/``binary`` (also as list
    items): the types the catalog, the planner and every client (ADBC, JDBC, pandas) use."""

    def plain(t: pa.DataType) -> pa.DataType:
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            item = t.value_field.with_type(plain(t.value_type))
            return pa.list_(item) if pa.types.is_list(t) else pa.large_list(item)
        return _PLAIN_TYPES.get(t, t)

    return pa.schema([f.with_type(plain(f.type)) for f in schema], metadata=schema.metadata)
