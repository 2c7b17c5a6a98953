"""The catalog: registered sources and an in-memory copy of their schemas, tables and columns.

Names are ``source.schema.table`` (Flight SQL: catalog = source, db_schema = schema). Introspection is lazy
and cached per table; ``refresh()`` forgets the copy. A source that cannot be reached only affects the
objects of that source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from connectors import Connector, connector_class
from gateway.errors import AmbiguousNameError, GatewayError, SourceUnavailableError, UnknownObjectError

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class TableRef:
    """A fully qualified table: source, schema, table."""

    source: str
    schema: str
    table: str

    def __str__(self) -> str:
        return f"{self.source}.{self.schema}.{self.table}"


class Catalog:
    """All registered sources and what they contain.

    ``connectors`` maps a source name to its connector. Listing methods return sorted names; ``table_schema``
    returns the connector's Arrow schema. Errors: UnknownObjectError (with the nearest names),
    AmbiguousNameError (with every candidate), SourceUnavailableError (naming the source).
    """

    def __init__(self, connectors: dict[str, Connector]) -> None:
        self.connectors = dict(connectors)
        self._lock = threading.RLock()
        self._schemas: dict[str, list[str]] = {}
        self._tables: dict[tuple[str, str], list[str]] = {}
        self._columns: dict[TableRef, pa.Schema] = {}

    @classmethod
    def from_settings(cls, settings) -> Catalog:
        """Build connectors for every ``[[sources]]`` entry of a ``gateway.settings.Settings``."""
        connectors = {
            s.name: connector_class(s.kind)(s.name, s.options()) for s in settings.sources
        }
        return cls(connectors)

    # -- listing -------------------------------------------------------------------------------------

    def list_sources(self) -> list[str]:
        return sorted(self.connectors)

    def connector(self, source: str) -> Connector:
        try:
            return self.connectors[source]
        except KeyError:
            raise UnknownObjectError("source", source, self.connectors) from None

    def list_schemas(self, source: str) -> list[str]:
        with self._lock:
            if source not in self._schemas:
                self._schemas[source] = sorted(self.connector(source).list_schemas())
            return self._schemas[source]

    def list_tables(self, source: str, schema: str) -> list[str]:
        key = (source, schema)
        with self._lock:
            if key not in self._tables:
                if schema not in self.list_schemas(source):
                    raise UnknownObjectError(
                        "schema", schema, self.list_schemas(source), context=f"source '{source}'"
                    )
                self._tables[key] = sorted(self.connector(source).list_tables(schema))
            return self._tables[key]

    def table_schema(self, ref: TableRef) -> pa.Schema:
        """The table's columns. Raises UnknownObjectError when the table does not exist."""
        with self._lock:
            if ref not in self._columns:
                tables = self.list_tables(ref.source, ref.schema)
                if ref.table not in tables:
                    raise UnknownObjectError(
                        "table", ref.table, tables, context=f"{ref.source}.{ref.schema}"
                    )
                self._columns[ref] = self.connector(ref.source).table_schema(ref.schema, ref.table)
            return self._columns[ref]

    def table_type(self, ref: TableRef) -> str:
        return self.connector(ref.source).table_type(ref.schema, ref.table)

    def refresh(self, source: str | None = None) -> None:
        """Forget the cached copy (of one source, or of all)."""
        with self._lock:
            if source is None:
                self._schemas.clear()
                self._tables.clear()
                self._columns.clear()
            else:
                self._schemas.pop(source, None)
                self._tables = {k: v for k, v in self._tables.items() if k[0] != source}
                self._columns = {k: v for k, v in self._columns.items() if k.source != source}
            for name, conn in self.connectors.items():
                if (source is None or name == source) and hasattr(conn, "refresh"):
                    conn.refresh()

    def available_tables(self, sources: Iterable[str] | None = None) -> tuple[list[TableRef], list[str]]:
        """Every table of the given (default: all) sources, and the sources that could not be listed."""
        refs: list[TableRef] = []
        unavailable: list[str] = []
        for source in sources if sources is not None else self.list_sources():
            try:
                for schema in self.list_schemas(source):
                    refs.extend(TableRef(source, schema, t) for t in self.list_tables(source, schema))
            except GatewayError as exc:
                log.warning("source listing failed", extra={"source": source, "error": exc.message})
                unavailable.append(source)
        return refs, unavailable

    # -- name resolution ------------------------------------------------------------------------------

    def resolve(self, parts: Sequence[str]) -> TableRef:
        """Resolve a 1-, 2- or 3-part table name to a TableRef.

        - ``source.schema.table``: exact.
        - ``source.table``: when ``source`` is a source with exactly one schema (file sources); otherwise
          ``schema.table`` searched across sources.
        - ``table``: searched across all sources; an ambiguous name lists the candidates.

        Names match exactly first, then case-insensitively when that is unique.
        """
        parts = [p for p in parts if p]
        if len(parts) == 3:
            source = self._match("source", parts[0], self.list_sources())
            schema = self._match("schema", parts[1], self.list_schemas(source), f"source '{source}'")
            table = self._match("table", parts[2], self.list_tables(source, schema), f"{source}.{schema}")
            return TableRef(source, schema, table)
        if len(parts) == 2:
            first, name = parts
            source = _pick(first, self.list_sources())
            if source is not None:
                schemas = self.list_schemas(source)
                if len(schemas) == 1:
                    table = self._match("table", name, self.list_tables(source, schemas[0]), source)
                    return TableRef(source, schemas[0], table)
                raise UnknownObjectError(
                    "table", f"{first}.{name}", (f"{source}.{s}.{name}" for s in schemas),
                    context=f"source '{source}', which has several schemas; qualify as source.schema.table",
                )
            return self._search(name, schema=first)
        if len(parts) == 1:
            return self._search(parts[0])
        raise UnknownObjectError("table", ".".join(parts), ())

    def _search(self, table: str, schema: str | None = None) -> TableRef:
        refs, unavailable = self.available_tables()
        if schema is not None:
            refs_in_schema = [r for r in refs if _same(r.schema, schema)]
            if not refs_in_schema:
                known = {r.source for r in refs} | {r.schema for r in refs}
                raise UnknownObjectError("source or schema", schema, known, context=_down(unavailable))
            refs = refs_in_schema
        exact = [r for r in refs if r.table == table]
        matches = exact or [r for r in refs if r.table.lower() == table.lower()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousNameError("table", table, (str(r) for r in matches))
        if unavailable:
            raise SourceUnavailableError(
                ", ".join(unavailable), f"table '{table}' was not found in the sources that answered"
            )
        raise UnknownObjectError("table", table, (r.table for r in refs))

    def _match(self, kind: str, name: str, candidates: list[str], context: str = "") -> str:
        found = _pick(name, candidates)
        if found is None:
            raise UnknownObjectError(kind, name, candidates, context=context)
        return found


def _pick(name: str, candidates: list[str]) -> str | None:
    if name in candidates:
        return name
    folded = [c for c in candidates if c.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def _same(a: str, b: str) -> bool:
    return a == b or a.lower() == b.lower()


def _down(unavailable: list[str]) -> str:
    return f"the sources that answered (unavailable: {', '.join(unavailable)})" if unavailable else ""
