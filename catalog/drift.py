"""Schema drift: each table's columns and types are versioned, and every catalog refresh that finds them
changed records change events.

``DriftStore`` keeps, in a small SQLite file (``catalog.state_path``; in memory when unset) so that it
survives restarts, one row per table version (a SHA-256 over its columns' names, Arrow types and
nullability, and the columns as JSON) and one row per change. ``observe(source, tables)`` compares a freshly
introspected source with the last versions and returns the changes:

- ``table_added`` / ``table_dropped``: a table seen (or no longer listed) since the last refresh. The very
  first refresh of a source only records its baseline (no events for every table of a new store);
- ``column_added`` / ``column_dropped``;
- ``column_renamed`` (``old_column`` -> ``column``), where the source says so: connectors that know a column's
  own identity (``Connector.column_ids``: PostgreSQL's table oid and ``attnum``, which ``ALTER TABLE ... RENAME
  COLUMN`` keeps; Iceberg's table uuid and field id, which ``update_schema().rename_column`` keeps) report it per
  column, the store keeps it with each version, and a column whose identity is unchanged under a new name is a
  rename, not a drop and an add (with a ``column_retyped`` of the new name as well when its type changed too).
  Columns are matched by identity first, then by name;
- ``column_retyped``, with ``widening`` true when every old value fits the new type (int32 -> int64,
  float32 -> float64, string -> large_string, a decimal with more digits on both sides, date32 -> date64);
  ``varchar(n) -> text`` already maps to one Arrow string type, so it is no change at all.

Sources without column identities (MariaDB/MySQL: ``information_schema`` has only names and positions, and
a position moves when a column before it is dropped; SQLite; file, Delta and Flight SQL sources) report a
rename as a drop and an add, as does any refresh where either version lacks identities (a store written before
they were kept). A table that could not be read during the refresh is left out of the comparison.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

_SCHEMA = """
CREATE TABLE IF NOT EXISTS table_versions (
    source TEXT NOT NULL, schema_name TEXT NOT NULL, table_name TEXT NOT NULL, version INTEGER NOT NULL,
    hash TEXT NOT NULL, columns TEXT NOT NULL, seen_at REAL NOT NULL, dropped INTEGER NOT NULL DEFAULT 0,
    column_ids TEXT, PRIMARY KEY (source, schema_name, table_name, version));
CREATE TABLE IF NOT EXISTS schema_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, source TEXT NOT NULL, schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL, kind TEXT NOT NULL, column_name TEXT, old_type TEXT, new_type TEXT,
    widening INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL, old_column TEXT);
"""
#: ``DriftStore.observe``'s column identities: by table, or a function of the table
ColumnIds = Mapping[tuple[str, str], Mapping[str, str] | None] | Callable[[tuple[str, str]], Mapping[str, str] | None]
#: columns added to the tables above since stores were first written: (table, column, type), added on open
_MIGRATIONS = (("table_versions", "column_ids", "TEXT"), ("schema_changes", "old_column", "TEXT"))

_WIDER = {("int8", "int16"), ("int8", "int32"), ("int8", "int64"), ("int16", "int32"), ("int16", "int64"),
          ("int32", "int64"), ("uint8", "uint16"), ("uint16", "uint32"), ("uint32", "uint64"),
          ("float", "double"), ("halffloat", "float"), ("halffloat", "double"), ("string", "large_string"),
          ("binary", "large_binary"), ("date32[day]", "date64[ms]")}


@dataclass(frozen=True)
class SchemaChange:
    """One change of one table: ``kind`` is table_added, table_dropped, column_added, column_dropped,
    column_renamed (``old_column`` -> ``column``, ``old_type``/``new_type`` its types before and after) or
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
    old_column: str | None = None

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
        for table, column, kind in _MIGRATIONS:
            if column not in {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self._lock = threading.Lock()

    def _latest(self, source: str) -> dict[tuple[str, str], tuple[int, str, list, bool, dict | None]]:
        rows = self._db.execute(
            "SELECT schema_name, table_name, version, hash, columns, dropped, column_ids FROM table_versions v "
            "WHERE source = ? AND version = (SELECT max(version) FROM table_versions w WHERE w.source = v.source "
            "AND w.schema_name = v.schema_name AND w.table_name = v.table_name)", (source,)).fetchall()
        return {(s, t): (v, h, json.loads(c), bool(d), json.loads(i) if i else None) for s, t, v, h, c, d, i in rows}

    def _insert_version(self, source: str, key: tuple[str, str], version: int, digest: str, columns: list,
                        now: float, dropped: bool, ids: Mapping[str, str] | None) -> None:
        self._db.execute(
            "INSERT INTO table_versions (source, schema_name, table_name, version, hash, columns, seen_at, dropped, "
            "column_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (source, key[0], key[1], version, digest, json.dumps(columns), now, int(dropped),
             json.dumps(dict(sorted(ids.items()))) if ids else None))

    def observe(self, source: str, tables: Mapping[tuple[str, str], pa.Schema],
                unreadable: set[tuple[str, str]] | frozenset = frozenset(), now: float | None = None,
                column_ids: ColumnIds | None = None) -> list[SchemaChange]:
        """Compare ``tables`` (``(schema, table) -> Arrow schema``: every readable table of ``source`` as just
        introspected) with the last versions; record new versions and the changes, and return the changes.
        ``unreadable`` tables are listed but could not be read: neither compared nor reported dropped.

        ``column_ids`` gives ``{column: identity}`` of a table (``Connector.column_ids``; None: the source
        keeps no identities), as a mapping by ``(schema, table)`` or a function of it; it lets a rename be told
        from a drop and an add. A function is called, outside the store's lock, only for the tables whose
        columns changed and those whose last version has no identities yet (so a refresh that finds nothing
        changed asks the source nothing more). Hence a table dropped and created again with the same columns
        keeps its old identities: a later rename in it shows as a drop and an add."""
        now = time.time() if now is None else now
        digests = {key: (columns_of(schema), schema_hash(columns_of(schema))) for key, schema in tables.items()}
        with self._lock:
            before = self._latest(source)
        fetched = _identities(before, digests, column_ids)
        with self._lock:
            latest = self._latest(source)  # again: another refresh of the source may have recorded versions
            baseline = not latest
            changes: list[SchemaChange] = []
            for key in sorted(tables):
                columns, digest = digests[key]
                ids = fetched.get(key)
                known = latest.get(key)
                if known is not None and known[1] == digest and not known[3]:
                    if ids and ids != known[4]:  # identities for a version kept without them
                        self._db.execute(
                            "UPDATE table_versions SET column_ids = ? WHERE source = ? AND schema_name = ? AND "
                            "table_name = ? AND version = ?", (json.dumps(dict(sorted(ids.items()))), source,
                                                               key[0], key[1], known[0]))
                    continue
                version = known[0] + 1 if known else 1
                self._insert_version(source, key, version, digest, columns, now, False, ids)
                if baseline:
                    continue
                if known is None or known[3]:
                    changes.append(SchemaChange(source, *key, "table_added", now, version))
                else:
                    changes.extend(_column_changes(source, key, known[2], columns, now, version, known[4], ids))
            for key, (version, digest, columns, dropped, ids) in sorted(latest.items()):
                if dropped or key in tables or key in unreadable:
                    continue
                self._insert_version(source, key, version + 1, digest, columns, now, True, ids)
                changes.append(SchemaChange(source, *key, "table_dropped", now, version + 1))
            self._db.executemany(
                "INSERT INTO schema_changes (at, source, schema_name, table_name, kind, column_name, old_type, "
                "new_type, widening, version, old_column) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(c.at, c.source, c.schema, c.table, c.kind, c.column, c.old_type, c.new_type, int(c.widening),
                  c.version, c.old_column) for c in changes])
            return changes

    def changes(self, source: str | None = None, since_id: int = 0, limit: int = 1000) -> list[dict]:
        """Recorded changes, oldest first, each with its ``id`` (pass the last one as ``since_id`` to poll):
        ``SchemaChange.to_dict`` (``{id, at, source, schema, table, table_name, kind, column, old_column,
        old_type, new_type, widening, version}``)."""
        query = (f"SELECT id, {_CHANGE_COLUMNS} FROM schema_changes WHERE id > ?" +
                 (" AND source = ?" if source else "") + " ORDER BY id LIMIT ?")
        args = (since_id, source, limit) if source else (since_id, limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [{"id": r[0], **_change(r[1:]).to_dict()} for r in rows]

    def last_id(self) -> int:
        """The id of the latest recorded change (0 when none)."""
        with self._lock:
            return self._db.execute("SELECT coalesce(max(id), 0) FROM schema_changes").fetchone()[0]

    def history(self, source: str, schema: str, table: str) -> list[dict]:
        """Every recorded version of one table, oldest first: ``{version, hash, seen_at, dropped, columns:
        [{name, type, nullable[, id]}], changes: [SchemaChange.to_dict(), ...]}``; a column's ``id`` is its
        identity in the source (left out when the source keeps none), ``changes`` what made this version
        (empty for a table's first version and a baseline)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT version, hash, seen_at, dropped, columns, column_ids FROM table_versions WHERE source = ? "
                "AND schema_name = ? AND table_name = ? ORDER BY version", (source, schema, table)).fetchall()
            found = self._db.execute(
                f"SELECT {_CHANGE_COLUMNS} FROM schema_changes WHERE source = ? AND schema_name = ? AND "
                "table_name = ? ORDER BY id", (source, schema, table)).fetchall()
        by_version: dict[int, list[dict]] = {}
        for r in found:
            change = _change(r)
            by_version.setdefault(change.version, []).append(change.to_dict())
        out = []
        for v, h, at, d, c, i in rows:
            ids = json.loads(i) if i else {}
            out.append({"version": v, "hash": h, "seen_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                        "dropped": bool(d), "columns": [{"name": n, "type": t, "nullable": nl,
                                                         **({"id": ids[n]} if n in ids else {})}
                                                        for n, t, nl in json.loads(c)],
                        "changes": by_version.get(v, [])})
        return out

    def dropped_column(self, column: str) -> dict | None:
        """The latest recorded drop or rename away of a column named ``column`` (case-insensitive):
        ``{at, table, column, renamed_to}`` (``renamed_to`` None for a drop), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT at, source, schema_name, table_name, kind, column_name, old_column FROM schema_changes "
                "WHERE (kind = 'column_dropped' AND lower(column_name) = lower(?)) OR (kind = 'column_renamed' "
                "AND lower(old_column) = lower(?)) ORDER BY id DESC LIMIT 1", (column, column)).fetchone()
        if row is None:
            return None
        renamed = row[4] == "column_renamed"
        return {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row[0])), "table": ".".join(row[1:4]),
                "column": row[6] if renamed else row[5], "renamed_to": row[5] if renamed else None}

    def close(self) -> None:
        with self._lock:
            self._db.close()


_CHANGE_COLUMNS = ("source, schema_name, table_name, kind, at, version, column_name, old_type, new_type, widening, "
                   "old_column")


def _change(row: tuple) -> SchemaChange:
    """A ``SchemaChange`` from a ``schema_changes`` row selected as ``_CHANGE_COLUMNS``."""
    return SchemaChange(*row[:9], bool(row[9]), row[10])


def _identities(latest: dict, digests: dict, column_ids: ColumnIds | None) -> dict:
    """``{(schema, table): {column: identity} or None}`` for the tables ``observe`` needs them for: new,
    changed or dropped since ``latest``, or whose last version has none."""
    ids_of = column_ids if callable(column_ids) else (column_ids or {}).get
    wanted = [key for key in sorted(digests) if key not in latest or latest[key][1] != digests[key][1]
              or latest[key][3] or latest[key][4] is None]
    return {key: ids_of(key) or None for key in wanted}


def renames(old_ids: Mapping[str, str] | None, new_ids: Mapping[str, str] | None) -> dict[str, str]:
    """``{new name: old name}`` of the columns whose identity is kept under another name; empty unless both
    versions have identities.

        >>> renames({"a": "7:1", "b": "7:2"}, {"b": "7:1", "a": "7:2", "c": "7:3"})
        {'b': 'a', 'a': 'b'}
    """
    if not old_ids or not new_ids:
        return {}
    old_by_id = {identity: name for name, identity in old_ids.items()}
    return {name: old_by_id[identity] for name, identity in new_ids.items()
            if identity in old_by_id and old_by_id[identity] != name}


def _column_changes(source: str, key: tuple[str, str], old: list[list], new: list[list], now: float,
                    version: int, old_ids: Mapping[str, str] | None = None,
                    new_ids: Mapping[str, str] | None = None) -> list[SchemaChange]:
    before = {c[0]: c[1] for c in old}
    after = {c[0]: c[1] for c in new}
    renamed = {n: o for n, o in renames(old_ids, new_ids).items() if n in after and o in before}
    renamed_away = set(renamed.values())
    out = []
    for name, kind in after.items():
        if name in renamed:
            was = before[renamed[name]]
            out.append(SchemaChange(source, *key, "column_renamed", now, version, name, was, kind,
                                    old_column=renamed[name]))
            if was != kind:
                out.append(SchemaChange(source, *key, "column_retyped", now, version, name, was, kind,
                                        widens(was, kind)))
        elif name not in before or name in renamed_away:
            out.append(SchemaChange(source, *key, "column_added", now, version, name, None, kind))
        elif before[name] != kind:
            out.append(SchemaChange(source, *key, "column_retyped", now, version, name, before[name], kind,
                                    widens(before[name], kind)))
    out.extend(SchemaChange(source, *key, "column_dropped", now, version, name, kind, None)
               for name, kind in before.items()
               if name not in renamed_away and (name not in after or name in renamed))
    return out
