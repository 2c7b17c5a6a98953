"""Table names: ``TableRef`` (a resolved ``source.schema.table``) and how 1-, 2- and 3-part names resolve
(``NameResolution``, a mixin of ``catalog.catalog.Catalog``: exact first, then case-insensitive when unique;
unknown names answered with the nearest ones, ambiguous ones with every candidate). ``catalog.catalog``
re-exports ``TableRef``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.errors import AmbiguousNameError, SourceUnavailableError, UnknownObjectError, nearest_names


@dataclass(frozen=True, order=True)
class TableRef:
    """A fully qualified table: source, schema, table."""

    source: str
    schema: str
    table: str

    def __str__(self) -> str:
        return f"{self.source}.{self.schema}.{self.table}"


class NameResolution:
    """``resolve`` for a catalog: its ``list_sources``, ``list_schemas``, ``list_tables`` and
    ``available_tables`` answer the names, ``views`` the named views (``catalog.catalog.Catalog``)."""

    def resolve(self, parts: Sequence[str]) -> TableRef:
        """Resolve a 1-, 2- or 3-part table name to a TableRef.

        - ``source.schema.table``: exact.
        - ``source.table``: when ``source`` is a source with exactly one schema (file sources); otherwise
          ``schema.table`` searched across sources.
        - ``table``: searched across all sources; an ambiguous name lists the candidates.
        - ``view_catalog.schema.view``: a named view (``catalog.views``), also one this catalog does not list
          (``Catalog.view_definition`` then refuses it).

        Names match exactly first, then case-insensitively when that is unique.
        """
        parts = [p for p in parts if p]
        view = self.views.find(parts)
        if view is not None:
            return view.ref
        if len(parts) == 3 and pick(parts[0], self.views.catalogs()) is not None:
            names = [str(v.ref) for v in self._listed_views() if v.ref.source.lower() == parts[0].lower()]
            raise UnknownObjectError("view", ".".join(parts), names)
        if len(parts) == 3:
            source = self._match("source", parts[0], self.list_sources())
            schema = self._match("schema", parts[1], self.list_schemas(source), f"source '{source}'")
            table = self._match("table", parts[2], self.list_tables(source, schema), f"{source}.{schema}")
            return TableRef(source, schema, table)
        if len(parts) == 2:
            first, name = parts
            source = pick(first, self.list_sources())
            if source is not None:
                schemas = self.list_schemas(source)
                if len(schemas) == 1:
                    table = self._match("table", name, self.list_tables(source, schemas[0]), source)
                    return TableRef(source, schemas[0], table)
                raise UnknownObjectError(
                    "table", f"{first}.{name}", self._qualified_near(source, schemas, name),
                    context=f"source '{source}', which has several schemas; qualify as source.schema.table",
                )
            return self._search(name, schema=first)
        if len(parts) == 1:
            return self._search(parts[0])
        raise UnknownObjectError("table", ".".join(parts), ())

    def _qualified_near(self, source: str, schemas: list[str], name: str) -> list[str]:
        """``source.schema.table`` of the tables of ``source`` named like ``name`` (only ones that exist: a
        "did you mean" never names a table that is not there)."""
        near = []
        for schema in schemas:
            tables = self.list_tables(source, schema)
            same = [t for t in tables if t.lower() == name.lower()]
            near.extend(f"{source}.{schema}.{t}" for t in same or nearest_names(name, tables))
        return near

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
        found = pick(name, candidates)
        if found is None:
            raise UnknownObjectError(kind, name, candidates, context=context)
        return found


def pick(name: str, candidates: list[str]) -> str | None:
    """``name`` among ``candidates``: exactly, else case-insensitively when that is unique; None otherwise."""
    if name in candidates:
        return name
    folded = [c for c in candidates if c.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def _same(a: str, b: str) -> bool:
    return a == b or a.lower() == b.lower()


def _down(unavailable: list[str]) -> str:
    return f"the sources that answered (unavailable: {', '.join(unavailable)})" if unavailable else ""
