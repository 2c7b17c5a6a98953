"""The CLI's and the shell's output formats: a ``Sink`` per format that takes a result's Arrow record batches.

``sink(format, out, ...)``: ``table`` (rich, capped to the first and last rows like DuckDB's shell), ``csv``,
``json`` (one array), ``ndjson`` (a line per row), ``markdown`` (text), ``parquet``, ``arrow`` (an Arrow IPC
stream; binary, ``out`` must be a binary file).
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Callable
from typing import IO, Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from rich.console import Console
from rich.markup import escape
from rich.table import Table

TEXT_FORMATS = ("table", "csv", "json", "ndjson", "markdown")
BINARY_FORMATS = ("parquet", "arrow")
FORMATS = TEXT_FORMATS + BINARY_FORMATS
DEFAULT_MAX_ROWS = 40  # as DuckDB's shell: 20 first and 20 last rows


def _text(value: Any) -> str:
    """A value as the text formats print it: NULL, ISO dates, decimals with their scale."""
    if value is None:
        return "NULL"
    return value.isoformat() if hasattr(value, "isoformat") and not isinstance(value, str) else str(value)


class Sink:
    """Receives one result: ``begin(schema)``, ``write(batch)`` per batch, ``end()``."""

    def begin(self, schema: pa.Schema) -> None:
        self.schema = schema

    def write(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def end(self) -> None:
        pass

    def finish(self) -> None:
        """Called on the caller's thread after a successful run (and after the spinner is gone)."""


class TableSink(Sink):
    """A rich table with each column's type under its name; more than ``max_rows`` rows (0: no cap) are cut to
    the first and last ones with a row saying how many are not shown. Only the rows shown are kept."""

    def __init__(self, console: Console, max_rows: int = DEFAULT_MAX_ROWS, hint: str = "--max-rows 0") -> None:
        self.console = console
        self.max_rows = max_rows
        self.hint = hint  # how to see every row, named in the footer of a capped table
        self.head: list[dict] = []
        self.tail: deque[dict] = deque(maxlen=max(max_rows // 2, 0))
        self.total = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self.max_rows == 0:
            self.head.extend(batch.to_pylist())
        else:
            room = self.max_rows - len(self.head)
            if room > 0:
                self.head.extend(batch.slice(0, room).to_pylist())
            if self.tail.maxlen:
                self.tail.extend(batch.slice(max(batch.num_rows - self.tail.maxlen, 0)).to_pylist())
        self.total += batch.num_rows

    def finish(self) -> None:
        numeric = {f.name for f in self.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
                   or pa.types.is_decimal(f.type)}
        out = Table(show_lines=False)
        for f in self.schema:
            out.add_column(f"{escape(f.name)}\n[dim]{escape(str(f.type))}[/]",
                           justify="right" if f.name in numeric else "left")
        capped = self.max_rows and self.total > self.max_rows
        first = self.head[: self.max_rows - len(self.tail)] if capped else self.head
        for row in first:
            out.add_row(*(escape(_text(v)) for v in row.values()))
        if capped:
            hidden = self.total - len(first) - len(self.tail)
            out.add_row(*(["…"] * len(self.schema)))
            for row in self.tail:
                out.add_row(*(escape(_text(v)) for v in row.values()))
        self.console.print(out)
        if capped:
            self.console.print(f"{self.total:,} rows, {hidden:,} rows more not shown ({self.hint} shows all)",
                               highlight=False)
        else:
            self.console.print(f"{self.total:,} row{'s' if self.total != 1 else ''}", highlight=False)


class CsvSink(Sink):
    """CSV with a header line; NULL is an empty field."""

    def __init__(self, out: IO[str]) -> None:
        self.writer = csv.writer(out)

    def begin(self, schema: pa.Schema) -> None:
        super().begin(schema)
        self.writer.writerow(schema.names)

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.writerows(["" if v is None else _text(v) for v in row.values()] for row in batch.to_pylist())


class JsonSink(Sink):
    """A JSON array of objects (``ndjson``: one object per line); decimals and dates as strings."""

    def __init__(self, out: IO[str], lines: bool = False) -> None:
        self.out, self.lines, self.first = out, lines, True

    def begin(self, schema: pa.Schema) -> None:
        super().begin(schema)
        if not self.lines:
            self.out.write("[")

    def write(self, batch: pa.RecordBatch) -> None:
        for row in batch.to_pylist():
            text = json.dumps(row, default=str, ensure_ascii=False)
            if self.lines:
                self.out.write(text + "\n")
            else:
                self.out.write(("\n" if self.first else ",\n") + text)
                self.first = False

    def end(self) -> None:
        if not self.lines:
            self.out.write("\n]\n" if not self.first else "]\n")


class MarkdownSink(Sink):
    """A GitHub-flavoured Markdown table (pipes in values escaped)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def begin(self, schema: pa.Schema) -> None:
        super().begin(schema)
        numeric = [pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)
                   for f in schema]
        self.out.write("| " + " | ".join(self._cell(n) for n in schema.names) + " |\n")
        self.out.write("|" + "|".join("---:" if n else "---" for n in numeric) + "|\n")

    @staticmethod
    def _cell(value: Any) -> str:
        return _text(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    def write(self, batch: pa.RecordBatch) -> None:
        for row in batch.to_pylist():
            self.out.write("| " + " | ".join(self._cell(v) for v in row.values()) + " |\n")


class ParquetSink(Sink):
    """A Parquet file (one row group per few batches, as pyarrow writes them)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.writer: pq.ParquetWriter | None = None

    def begin(self, schema: pa.Schema) -> None:
        super().begin(schema)
        self.writer = pq.ParquetWriter(self.out, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)

    def end(self) -> None:
        self.writer.close()


class ArrowSink(Sink):
    """An Arrow IPC stream (``application/vnd.apache.arrow.stream``)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def begin(self, schema: pa.Schema) -> None:
        super().begin(schema)
        self.writer = ipc.new_stream(self.out, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)

    def end(self) -> None:
        self.writer.close()


def sink(format: str, out: IO, console: Console | None = None, max_rows: int = DEFAULT_MAX_ROWS,
         hint: str = "--max-rows 0") -> Sink:
    """The sink of ``format`` (one of ``FORMATS``) writing to ``out`` (binary for ``BINARY_FORMATS``); the table
    format prints on ``console``. Raises ValueError naming the format and the choices."""
    if format == "table":
        return TableSink(console or Console(file=out), max_rows, hint)
    makers: dict[str, Callable[[], Sink]] = {
        "csv": lambda: CsvSink(out), "json": lambda: JsonSink(out), "ndjson": lambda: JsonSink(out, lines=True),
        "markdown": lambda: MarkdownSink(out), "parquet": lambda: ParquetSink(out), "arrow": lambda: ArrowSink(out),
    }
    if format not in makers:
        raise ValueError(f"unknown format {format!r}: expected one of {', '.join(FORMATS)}")
    return makers[format]()
