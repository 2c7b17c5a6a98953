"""Named views: ``[[views]]`` of the config, registered in the catalog under view catalogs of their own.

A view is ``catalog.schema.view`` (its first part a *view catalog*, never a source's name) with a SQL query
over sources and other views. Views are security-invoker virtual datasets (Trino's and Dremio's views): the
planner expands a view reference into a derived table of the view's query (``planner.views``), so reading a
view needs the sources it reads. The catalog lists a view with its columns (``table_type`` ``VIEW``) to a
caller that may use every one of those sources; to others it is not listed, and a query naming it is refused
as a query on the source would be (PermissionDeniedError).

    >>> views = Views([ViewDefinition(TableRef("bi", "sales", "big_orders"), "SELECT 1 AS x")])
    >>> views.catalogs(), views.find(["BI", "sales", "big_orders"]).ref
    (['bi'], TableRef(source='bi', schema='sales', table='big_orders'))
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from catalog.names import TableRef, pick


@dataclass
class ViewDefinition:
    """One view. ``ref``: its name (``ref.source`` is the view catalog); ``sql``: its query as written;
    ``description``: free text. Set once the view is typed (``planner.views.prepare_views``): ``query`` (the
    parsed query with every table name resolved to ``source.schema.table``, other views' names kept),
    ``schema`` (its output columns, from planning it), ``sources`` and ``tables`` (every source and source
    table it reads, through other views too). ``error`` holds why it could not be typed yet (a source
    unavailable at start)."""

    ref: TableRef
    sql: str
    description: str | None = None
    query: exp.Expression | None = None
    schema: pa.Schema | None = None
    sources: frozenset[str] = frozenset()
    tables: tuple[TableRef, ...] = ()
    error: str | None = None


class ViewCatalog:
    """What listings ask of a catalog's connector (``kind``, ``options``, keys), for a view catalog: views
    have no keys. It reads nothing; a view's rows come from its expansion into source fragments."""

    kind = "view"
    options: dict = {}

    def __init__(self, name: str) -> None:
        self.name = name

    def primary_key(self, schema: str, table: str) -> list[str]:
        return []

    def foreign_keys(self, schema: str, table: str) -> list:
        return []


class Views:
    """The registered views by name. Read-only once built; shared by every ``CatalogView`` of a catalog."""

    def __init__(self, definitions: Iterable[ViewDefinition] = ()) -> None:
        self._by_ref: dict[TableRef, ViewDefinition] = {d.ref: d for d in definitions}

    def load(self, definitions: Iterable[ViewDefinition]) -> None:
        """Replace the registered views, in place (every catalog view sharing this object sees them)."""
        self._by_ref.clear()
        self._by_ref.update({d.ref: d for d in definitions})

    def __iter__(self) -> Iterator[ViewDefinition]:
        return iter(sorted(self._by_ref.values(), key=lambda d: d.ref))

    def __len__(self) -> int:
        return len(self._by_ref)

    def untyped(self) -> bool:
        """Whether a view could not be typed yet (``ViewDefinition.error``)."""
        return any(d.query is None for d in self._by_ref.values())

    def catalogs(self) -> list[str]:
        """The view catalogs, sorted."""
        return sorted({ref.source for ref in self._by_ref})

    def get(self, ref: TableRef) -> ViewDefinition | None:
        """The view named exactly ``ref``, or None."""
        return self._by_ref.get(ref)

    def find(self, parts: Sequence[str]) -> ViewDefinition | None:
        """The view a three-part name names (each part exactly, else case-insensitively when unique), or
        None (also for other numbers of parts: views are always named in full)."""
        parts = [p for p in parts if p]
        if len(parts) != 3:
            return None
        catalog = pick(parts[0], self.catalogs())
        if catalog is None:
            return None
        schema = pick(parts[1], sorted({r.schema for r in self._by_ref if r.source == catalog}))
        if schema is None:
            return None
        name = pick(parts[2], sorted(r.table for r in self._by_ref if r.source == catalog and r.schema == schema))
        return None if name is None else self._by_ref[TableRef(catalog, schema, name)]

    def visible(self, sources: Iterable[str], every_source: Iterable[str]) -> list[ViewDefinition]:
        """The views whose every source is among ``sources`` (a view not typed yet, whose sources are not
        known, only when ``sources`` holds ``every_source``)."""
        allowed = set(sources)
        whole = allowed >= set(every_source)
        return [d for d in self if d.sources <= allowed and (d.query is not None or whole)]
