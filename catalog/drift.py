"""Schema drift: each table's columns and types are versioned, and every catalog refresh that finds them
changed records change events.

``DriftStore`` keeps, in a small SQLite file (``catalog.state_path``; in memory when unset) so that it
survives restarts, one row per table version (a SHA-256 over its columns' names, Arrow types and
nullability, and the columns as JSON) and one row per change. ``observe(source, tables)`` compares a freshly
introspected source with the last versions and returns the changes:

- ``table_added`` / ``table_dropped``: a table seen (or no longer listed) since the last refresh. The very
  first refresh of a source only records its baseline (no events for every table of a new store);
- ``column_added`` / ``column_dropped``;
- ``column_retyped``, with ``widening`` true when every old value fits the new type (int32 -> int64,
  float32 -> float64, string -> large_string, a decimal with more digits on both sides, date32 -> date64);
  ``varchar(n) -> text`` already maps to one Arrow string type, so it is no change at all.

Renames are not reported as such: none of our sources says that a column was renamed (a rename shows as a
drop and an add). A table that could not be read during the refresh is left out of the comparison.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

_SCHEMA = """
CREATE TABLE IF NOT EXISTS table_versions (
    source TEXT NOT NULL, schema_name TEXT NOT NULL, table_name TEXT NOT NULL, version INTEGER NOT NULL,
    hash TEXT NOT NULL, columns TEXT NOT NULL, seen_at REAL NOT NULL, dropped INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, schema_name, table_name, version));
CREATE TABLE IF NOT EXISTS schema_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, source TEXT NOT NULL, schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL, kind TEXT NOT NULL, column_name TEXT, old_type TEXT, new_type TEXT,
    widening INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL);
"""

_WIDER = {("int8", "int16"), ("int8", "int32"), ("int8", "int64"), ("int16", "int32"), ("int16", "int64"),
          ("int32", "int64"), ("uint8", "uint16"), ("uint16", "uint32"), ("uint32", "uint64"),
          ("float", "double"), ("halffloat", "float"), ("halffloat", "double"), ("string", "large_string"),
          ("binary", "large_binary"), ("date32[day]", "date64[ms]")}


@dataclass(frozen=True)
class SchemaChange:
    """One change of one table: ``kind`` is table_added, table_dropped, column_added, column_dropped or
    column_retyped; ``at`` epoch seconds; ``version`` the table's version after the change."""

    source: str
    schema: str
    table: str
    kind: str
    at: float
    version: int
    column: str | None = None
    old_type: str | None = None
    new_type: str | None = None
    widening: bool = False

    @property
    def table_name(self) -> str:
        return f"{self.source}.{self.schema}.{self.table}"

    @property
    def additive(self) -> bool:
        """Whether queries that ran before still run unchanged (an added table or column, a widening)."""
        return self.kind in ("table_added", "column_added") or (self.kind == "column_retyped" and self.widening)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["table_name"] = self.table_name
        out["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at))
        return out


def columns_of(schema: pa.Schema) -> list[list]:
    """``[[name, arrow type, nullable], ...]`` of a table's columns: what a version is made of."""
    return [[f.name, str(f.type), bool(f.nullable)] for f in schema]


def schema_hash(columns: list[list]) -> str:
    """SHA-256 (hex) of a table version's columns."""
    return hashlib.sha256(json.dumps(columns, separators=(",", ":")).encode()).hexdigest()


def widens(old: str, new: str) -> bool:
    """Whether every value of Arrow type ``old`` is representable in ``new`` (see the module docstring)."""
    if (old, new) in _WIDER:
        return True
    if old.startswith("decimal") and new.startswith("decimal"):
        (p0, s0), (p1, s1) = (_precision_scale(old), _precision_scale(new))
        return s1 >= s0 and p1 - s1 >= p0 - s0
    return False


def _precision_scale(decimal_type: str) -> tuple[int, int]:
    inner = decimal_type[decimal_type.index("(") + 1:decimal_type.index(")")]
    p, s = (int(x) for x in inner.split(","))
    return p, s


class DriftStore:
    """Table versions and schema changes in SQLite (``path``; ``None`` keeps them in memory). Thread-safe."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def _latest(self, source: str) -> dict[tuple[str, str], tuple[int, str, list, bool]]:
        rows = self._db.execute(
            "SELECT schema_name, table_name, version, hash, columns, dropped FROM table_versions v WHERE source = ? "
            "AND version = (SELECT max(version) FROM table_versions w WHERE w.source = v.source "
            "AND w.schema_name = v.schema_name AND w.table_name = v.table_name)", (source,)).fetchall()
        return {(s, t): (v, h, json.loads(c), bool(d)) for s, t, v, h, c, d in rows}

    def observe(self, source: str, tables: Mapping[tuple[str, str], pa.Schema],
                unreadable: set[tuple[str, str]] | frozenset = frozenset(), now: float | None = None
                ) -> list[SchemaChange]:
        """Compare ``tables`` (``(schema, table) -> Arrow schema``: every readable table of ``source`` as just
        introspected) with the last versions; record new versions and the changes, and return the changes.
        ``unreadable`` tables are listed but could not be read: neither compared nor reported dropped."""
        now = time.time() if now is None else now
        with self._lock:
            latest = self._latest(source)
            baseline = not latest
            changes: list[SchemaChange] = []
            for key, schema in sorted(tables.items()):
                columns = columns_of(schema)
                digest = schema_hash(columns)
                known = latest.get(key)
                if known is not None and known[1] == digest and not known[3]:
                    continue
                version = known[0] + 1 if known else 1
                self._db.execute("INSERT INTO table_versions VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                                 (source, key[0], key[1], version, digest, json.dumps(columns), now))
                if baseline:
                    continue
                if known is None or known[3]:
                    changes.append(SchemaChange(source, *key, "table_added", now, version))
                else:
                    changes.extend(_column_changes(source, key, known[2], columns, now, version))
            for key, (version, digest, columns, dropped) in sorted(latest.items()):
                if dropped or key in tables or key in unreadable:
                    continue
                self._db.execute("INSERT INTO table_versions VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                                 (source, key[0], key[1], version + 1, digest, json.dumps(columns), now))
                changes.append(SchemaChange(source, *key, "table_dropped", now, version + 1))
            for c in changes:
                self._db.execute(
                    "INSERT INTO schema_changes (at, source, schema_name, table_name, kind, column_name, old_type, "
                    "new_type, widening, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (c.at, c.source, c.schema, c.table, c.kind, c.column, c.old_type, c.new_type, int(c.widening),
                     c.version))
            return changes

    def changes(self, source: str | None = None, since_id: int = 0, limit: int = 1000) -> list[dict]:
        """Recorded changes, oldest first, each with its ``id`` (pass the last one as ``since_id`` to poll)."""
        query = ("SELECT id, at, source, schema_name, table_name, kind, column_name, old_type, new_type, widening, "
                 "version FROM schema_changes WHERE id > ?" + (" AND source = ?" if source else "") +
                 " ORDER BY id LIMIT ?")
        args = (since_id, source, limit) if source else (since_id, limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [{"id": r[0], **SchemaChange(r[2], r[3], r[4], r[5], r[1], r[10], r[6], r[7], r[8], bool(r[9]))
                 .to_dict()} for r in rows]

    def last_id(self) -> int:
        """The id of the latest recorded change (0 when none)."""
        with self._lock:
            return self._db.execute("SELECT coalesce(max(id), 0) FROM schema_changes").fetchone()[0]

    def history(self, source: str, schema: str, table: str) -> list[dict]:
        """Every recorded version of one table, oldest first: ``{version, hash, seen_at, dropped, columns:
        [{name, type, nullable}]}``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT version, hash, seen_at, dropped, columns FROM table_versions WHERE source = ? AND "
                "schema_name = ? AND table_name = ? ORDER BY version", (source, schema, table)).fetchall()
        return [{"version": v, "hash": h, "seen_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                 "dropped": bool(d), "columns": [{"name": n, "type": t, "nullable": nl} for n, t, nl in json.loads(c)]}
                for v, h, at, d, c in rows]

    def dropped_column(self, column: str) -> dict | None:
        """The latest recorded drop of a column named ``column`` (case-insensitive), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT at, source, schema_name, table_name, column_name FROM schema_changes WHERE kind = "
                "'column_dropped' AND lower(column_name) = lower(?) ORDER BY id DESC LIMIT 1", (column,)).fetchone()
        if row is None:
            return None
        return {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row[0])), "table": ".".join(row[1:4]),
                "column": row[4]}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _column_changes(source: str, key: tuple[str, str], old: list[list], new: list[list], now: float,
                    version: int) -> list[SchemaChange]:
    before = {c[0]: c[1] for c in old}
    after = {c[0]: c[1] for c in new}
    out = []
    for name, kind in after.items():
        if name not in before:
            out.append(SchemaChange(source, *key, "column_added", now, version, name, None, kind))
        elif before[name] != kind:
            out.append(SchemaChange(source, *key, "column_retyped", now, version, name, before[name], kind,
                                    widens(before[name], kind)))
    out.extend(SchemaChange(source, *key, "column_dropped", now, version, name, kind, None)
               for name, kind in before.items() if name not in after)
    return out
