"""Pass 8: fragments that read the same rows of one source (same tables, joins, filters, grouping: they differ
only in their columns) become one, with the union of their columns: the source is read once (TPC-H Q11, Q17
read one table twice). DISTINCT fragments stay apart (more columns, other rows), and so do fragments the
residual reads with ``SELECT *`` (whole sub-queries). A dynamic filter restricts a shared fragment only when it
joins every reference (``planner.dynamic_filters.choose``).

    __fragment_0: SELECT p.k AS k FROM part AS p WHERE p.brand = 'A'
    __fragment_1: SELECT p.k AS k, p.size AS size FROM part AS p WHERE p.brand = 'A'
    -> __fragment_0: SELECT p.k AS k, p.size AS size FROM part AS p WHERE p.brand = 'A'  (shared with
       __fragment_1); the residual reads "__fragment_0" twice
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
from sqlglot import exp

from connectors.base import Fragment
from planner.federation.state import FederationState


def share_fragments(state: FederationState) -> None:
    """Merge fragments of the same shape into the first of them; the residual and the base tables are
    pointed at the one kept."""
    starred = _starred(state.ast)
    shapes = {f.id: _shape(f, starred) for f in state.fragments}  # a merge changes columns only, not the shape
    kept: list[Fragment] = []
    renamed: dict[str, str] = {}
    for fragment in state.fragments:
        bare = shapes[fragment.id]
        target = next((i for i, k in enumerate(kept) if bare is not None and k.source == fragment.source
                       and shapes[k.id] == bare), None)
        merged = _merged(kept[target], fragment) if target is not None else None
        if merged is None:
            kept.append(fragment)
            continue
        kept[target] = merged
        renamed[fragment.id] = merged.id
    if not renamed:
        return
    state.fragments = kept
    for table in state.ast.find_all(exp.Table):
        if table.name in renamed:
            table.set("this", exp.to_identifier(renamed[table.name], quoted=True))
    for base in state.bases:
        if base.fragment_id in renamed:
            base.fragment_id = renamed[base.fragment_id]


def _starred(ast: exp.Expression) -> set[str]:
    """Names of the tables read by a ``SELECT *`` (more columns there would change the residual)."""
    return {t.name for t in ast.find_all(exp.Table)
            if isinstance(t.parent_select, exp.Select) and any(
                isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
                for p in t.parent_select.expressions)}


def _shape(fragment: Fragment, starred: set[str]) -> exp.Expression | None:
    """The fragment without its outputs, or None when it may not be shared."""
    if not isinstance(fragment.ast, exp.Select) or fragment.ast.args.get("distinct"):
        return None
    if fragment.id in starred:  # read as SELECT *: more columns would change the residual
        return None
    bare = fragment.ast.copy()
    bare.set("expressions", [])
    return bare


def _merged(into: Fragment, fragment: Fragment) -> Fragment | None:
    """``into`` returning ``fragment``'s columns too, or None when one name means two expressions."""
    have = {p.alias_or_name: p for p in into.ast.expressions}
    if any(have[p.alias_or_name] != p for p in fragment.ast.expressions if p.alias_or_name in have):
        return None  # one name, two expressions: cannot share
    extra = [(p, fragment.schema.field(p.alias_or_name)) for p in fragment.ast.expressions
             if p.alias_or_name not in have]
    select = into.ast.copy()
    select.set("expressions", [*select.expressions, *(p.copy() for p, _ in extra)])
    schema = pa.schema([*into.schema, *(f for _, f in extra)])
    return dataclasses.replace(into, ast=select, sql=select.sql(dialect=into.dialect), schema=schema,
                               pushed=[*into.pushed, f"shared with {fragment.id}"])
