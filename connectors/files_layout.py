"""Where a file source's tables are and how they are named: Hive ``key=value`` partition columns, symbolic links
and the folder they must stay in, server paths cut from messages, and table names in DataFusion sessions
(``connectors.files``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from connectors.errors import SourceQueryError
from connectors.objectstore import ObjectPath


def session_name(table: str) -> str:
    """A table's name as given to the source's own DataFusion session: quoted, because DataFusion parses names
    given to ``register_*``/``table_provider`` (lower-casing ``MixedCase`` and splitting ``orders/x.parquet``
    at the dot), while the fragments' SQL quotes every table name."""
    return '"' + table.replace('"', '""') + '"'


class TableError(SourceQueryError):
    """One table of a file source cannot be read; ``reason`` says why (without the source and table)."""

    def __init__(self, source: str, table: str, reason: str) -> None:
        super().__init__(source, f"table '{table}' cannot be read: {reason}")
        self.table = table
        self.reason = reason


# an absolute path (or file:// URL) in a message: /segments, the first starting like a folder name (so that
# a division such as "(a)/2" in quoted SQL is left alone)
ABSOLUTE_PATH = re.compile(r"(?:file://)?(?<![\w.~)\]-])/(?=[A-Za-z_.])(?:[^\s/'\"`:,;()]+/)*[^\s/'\"`:,;()]+")


def failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure to report: any Exception, and a panic inside DataFusion (pyo3's
    ``PanicException`` derives from BaseException; a crafted Parquet footer raised one), but not an
    interrupt, an exit or a closed generator."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def links(target: Path) -> list[Path]:
    """Every symbolic link at or below ``target`` (not descending into linked folders)."""
    links = [target] if target.is_symlink() else []
    if target.is_dir():
        for folder, dirnames, filenames in os.walk(target):
            links.extend(Path(folder, n) for n in dirnames + filenames if os.path.islink(os.path.join(folder, n)))
    return links


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def hive_partition_columns(folder: Path) -> list[tuple[str, pa.DataType]]:
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



def without_folder(text: str, folder: Path) -> str:
    """``text`` with ``folder`` cut from every path in it (DataFusion writes paths without their leading ``/``);
    a path outside the folder becomes ``<path>``."""
    folders = {os.path.abspath(folder), os.path.realpath(folder)}
    for name in sorted(folders, key=len, reverse=True):
        for prefix in (f"file://{name}/", f"{name}/", f"{name.lstrip('/')}/"):
            text = text.replace(prefix, "")
        text = text.replace(name, ".").replace(name.lstrip("/"), ".")
    return ABSOLUTE_PATH.sub("<path>", text)


def link_outside(target: Path, folder: Path) -> Path | None:
    """The first symbolic link at or below ``target`` whose real path lies outside ``folder`` (None: none)."""
    root = os.path.realpath(folder)
    return next((link for link in links(target) if not inside(os.path.realpath(link), root)), None)


def folder_tables(folder: Path, extension: str) -> dict[str, Path]:
    """The tables of a file source's folder: each file with ``extension`` directly in it (named by its stem) and
    each sub-folder holding such files (by its name); names starting with ``.`` or ``_`` are left out."""
    tables: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_file() and entry.suffix == extension:
            tables[entry.stem] = entry
        elif entry.is_dir() and any(entry.rglob(f"*{extension}")):
            tables[entry.name] = entry
    return tables


def hive_condition(partition: str, types: dict[str, pa.DataType], alias: str) -> exp.Expression:
    """``key = value`` for each ``key=value`` folder of ``partition`` (``year=2022/month=3``), on columns of
    ``alias``; integer partition columns (``types``) compared with numbers."""
    conditions = []
    for part in Path(partition).parts:
        key, value = part.split("=", 1)
        literal = exp.Literal.number(value) if pa.types.is_integer(types[key]) else exp.Literal.string(value)
        conditions.append(exp.column(key, table=alias, quoted=True).eq(literal))
    return exp.and_(*conditions)
