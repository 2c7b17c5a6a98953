"""Filters on a derived table's outputs moved into the derived table, so that the federation passes push them
on to its source (named views are derived tables: ``planner.views``). On the qualified query, top-down, in
place:

    SELECT v.name FROM (SELECT c.id AS id, c.name AS name FROM pg.public.customers AS c) AS v
    WHERE v.id > 10 AND v.name <> v.other_name_from_elsewhere
    -> SELECT v.name FROM (SELECT c.id AS id, c.name AS name FROM pg.public.customers AS c WHERE c.id > 10) AS v
       WHERE v.name <> ...

A WHERE conjunct moves when it reads only one derived table's columns, holds no sub-query, aggregate, window
or volatile function, and the derived table is not null-supplying (an outer join's optional side); the derived
table must be a plain SELECT (no GROUP BY, aggregate, window, DISTINCT ON, LIMIT/OFFSET, set operation) whose
outputs the conjunct reads are free of sub-queries, windows and volatile functions. The moved conjunct reads
the outputs' expressions. A filter commutes with such a SELECT, so answers do not change.
"""

from __future__ import annotations

from sqlglot import exp

from planner.federation.sqlast import conjuncts, join_structure

_VOLATILE = (exp.Rand, exp.Randn) if hasattr(exp, "Randn") else (exp.Rand,)
_BLOCKING = (exp.Subquery, exp.Select, exp.AggFunc, exp.Window, *_VOLATILE)


def push_into_derived_tables(ast: exp.Expression) -> exp.Expression:
    """Move WHERE conjuncts into derived tables (see the module docstring), in place. Returns ``ast``."""
    for select in list(ast.find_all(exp.Select, bfs=True)):
        where = select.args.get("where")
        if where is None:
            continue
        derived = _derived_tables(select)
        if not derived:
            continue
        kept = []
        for conjunct in conjuncts(where):
            target = _target(conjunct, derived)
            if target is None or not _move(conjunct, target):
                kept.append(conjunct)
        if len(kept) != len(conjuncts(where)):
            if kept:
                where.set("this", exp.and_(*kept, copy=False))
            else:
                where.pop()
    return ast


def _derived_tables(select: exp.Select) -> dict[str, exp.Select]:
    """Alias -> body of the derived tables of ``select`` that filters may enter (plain SELECTs, not
    null-supplying, without column aliases)."""
    null_supplying, _ = join_structure(select)
    from_ = select.args.get("from") or select.args.get("from_")  # the key's name differs between sqlglot versions
    sources = [from_.this] if from_ is not None else []
    sources += [join.this for join in select.args.get("joins") or []]
    out = {}
    for source in sources:
        if not isinstance(source, exp.Subquery) or not source.alias or source.alias in null_supplying:
            continue
        alias = source.args.get("alias")
        body = source.this
        if alias is None or alias.columns or not _plain(body):
            continue
        out[source.alias] = body
    return out


def _plain(body: exp.Expression) -> bool:
    if not isinstance(body, exp.Select):
        return False
    if any(body.args.get(k) for k in ("group", "having", "limit", "offset", "fetch", "qualify", "windows",
                                      "with", "with_", "laterals", "pivots")):
        return False
    distinct = body.args.get("distinct")
    if distinct is not None and distinct.args.get("on") is not None:
        return False
    return not any(p.find(exp.AggFunc, exp.Window) for p in body.expressions)


def _target(conjunct: exp.Expression, derived: dict[str, exp.Select]) -> exp.Select | None:
    if conjunct.find(*_BLOCKING):
        return None
    tables = {c.table for c in conjunct.find_all(exp.Column)}
    if len(tables) != 1:
        return None
    return derived.get(tables.pop())


def _move(conjunct: exp.Expression, body: exp.Select) -> bool:
    """Add ``conjunct`` to ``body``'s WHERE, its columns replaced by the outputs' expressions; False (nothing
    changed) when an output it reads is missing or may not be copied."""
    outputs = {}
    for projection in body.expressions:
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
            return False
        outputs.setdefault(projection.alias_or_name, []).append(projection.unalias())
    moved = conjunct.copy()
    for column in list(moved.find_all(exp.Column)):
        found = outputs.get(column.name)
        if not found or len(found) > 1 or found[0].find(*_BLOCKING):
            return False
        replacement = found[0].copy()
        if column is moved:
            moved = replacement
        else:
            column.replace(exp.Paren(this=replacement) if not isinstance(replacement, exp.Column) else replacement)
    body.where(moved, copy=False)
    return True
