"""``[[views]]``: named views of the config (``catalog.views``; expanded by ``planner.views``).

    [[views]]
    name = "bi.sales.big_orders"          # view_catalog.schema.view; the catalog is not a source's name
    sql = "SELECT * FROM demo_lake.orders WHERE amount > 100"
    description = "orders over 100"      # optional

What is checked when the config is read (``ConfigError`` with the key path): the name has three parts; the
SQL parses as one read-only query; a view catalog is not a source's name (case-insensitively); no two views
share a name; a name in a view catalog read by a view is a view; views do not read each other in a cycle
(the error names it: ``a.s.v1 -> a.s.v2 -> a.s.v1``). Whether the SQL's tables and columns exist is checked
when the catalog is built (``planner.views.prepare_views``), before the gateway serves.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator
from sqlglot import exp

from catalog import TableRef
from catalog.views import ViewDefinition
from gateway.errors import GatewayError
from planner.parse import parse


class ViewConfig(BaseModel):
    """One ``[[views]]`` entry: ``name`` (``catalog.schema.view``), ``sql``, optional ``description``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    sql: str
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _three_parts(cls, name: str) -> str:
        parts = name.split(".")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ValueError(f"'{name}' is not catalog.schema.view (three names separated by dots)")
        return ".".join(p.strip() for p in parts)

    @field_validator("sql")
    @classmethod
    def _one_query(cls, sql: str) -> str:
        try:
            parse(sql)
        except GatewayError as exc:
            raise ValueError(f"not a read-only query: {exc.message}") from None
        return sql

    @property
    def ref(self) -> TableRef:
        return TableRef(*self.name.split("."))

    def read_names(self) -> list[list[str]]:
        """The table names the view's SQL reads (each as its parts; CTE names left out)."""
        query = parse(self.sql).expression
        ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
        return [[p.name for p in t.parts] for t in query.find_all(exp.Table)
                if isinstance(t.this, exp.Identifier) and not (len(t.parts) == 1 and t.name.lower() in ctes)]


def check_views(views: list[ViewConfig], sources: list[str]) -> None:
    """The whole-config checks of the module docstring. Raises ValueError ``"views[i].name: reason"``."""
    by_lower = {s.lower(): s for s in sources}
    seen: dict[str, int] = {}
    for i, view in enumerate(views):
        catalog = view.ref.source
        if catalog.lower() in by_lower:
            raise ValueError(f"views[{i}].name: the view catalog '{catalog}' of '{view.name}' is the name of source "
                             f"'{by_lower[catalog.lower()]}'; give views a catalog of their own")
        if view.name.lower() in seen:
            raise ValueError(f"views[{i}].name: duplicate view name '{view.name}'")
        seen[view.name.lower()] = i
    catalogs = {v.ref.source.lower() for v in views}
    reads: dict[int, list[int]] = {}
    for i, view in enumerate(views):
        reads[i] = []
        for parts in view.read_names():
            if len(parts) != 3 or parts[0].lower() not in catalogs:
                continue
            name = ".".join(parts)
            if name.lower() not in seen:
                raise ValueError(f"views[{i}].sql: view '{view.name}' reads '{name}', which is no view; views: "
                                 f"{', '.join(v.name for v in views)}")
            reads[i].append(seen[name.lower()])
    for i in range(len(views)):
        cycle = _cycle(i, reads, [])
        if cycle:
            raise ValueError(f"views[{cycle[0]}].sql: views read each other in a cycle: "
                             + " -> ".join(views[j].name for j in cycle))


def _cycle(node: int, reads: dict[int, list[int]], path: list[int]) -> list[int] | None:
    if node in path:
        return [*path[path.index(node):], node]
    for nxt in reads[node]:
        found = _cycle(nxt, reads, [*path, node])
        if found:
            return found
    return None


def view_definitions(views: list[ViewConfig]) -> list[ViewDefinition]:
    """The catalog's (untyped) definitions of the config's views."""
    return [ViewDefinition(v.ref, v.sql, v.description) for v in views]
