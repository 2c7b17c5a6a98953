"""Greedy reduction of a failing fuzz query to a small one that still fails the same way.

Each step tries candidate reductions of the sqlglot tree, biggest first: drop a CTE, a join, a clause (WHERE,
HAVING, GROUP BY, ORDER BY, LIMIT, OFFSET, DISTINCT), an item of a list (projection, conjunct, order key, group
key, IN-list value, function argument), or replace a node by one of its children. A candidate is kept when the
reference still answers it (it is valid) and the gateway still fails with the same signature
(``Outcome.signature``); the placement of every remaining table alias is kept. Two things are never reduced,
so that a shrunk query stays deterministic: an ORDER BY inside a window or an aggregate call, and the ORDER BY of
a sub-query with LIMIT or OFFSET.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from sqlglot import exp

from tests.fuzz.compare import Outcome
from tests.fuzz.generator import FuzzQuery

CLAUSES = ("with", "with_", "where", "having", "group", "order", "limit", "offset", "distinct", "qualify")
LIST_ARGS = ("expressions", "joins", "partition_by", "ifs")
# never put one of these where an expression or a query was
CLAUSE_NODES = (exp.Identifier, exp.DataType, exp.Var, exp.Table, exp.From, exp.Join, exp.Where, exp.Group,
                exp.Having, exp.Order, exp.Limit, exp.Offset, exp.With, exp.CTE, exp.TableAlias, exp.WindowSpec)


def _frozen(node: exp.Expression) -> bool:
    """Inside an ORDER BY that is not a query's own (a window's, string_agg's), or inside the ORDER BY of a
    sub-query that has a LIMIT or an OFFSET."""
    ancestor = node
    while ancestor is not None:
        if isinstance(ancestor, exp.Order):
            parent = ancestor.parent
            if not isinstance(parent, exp.Query):
                return True
            if parent.parent is not None and _limited(parent):
                return True
        ancestor = ancestor.parent
    return False


def _limited(query: exp.Expression) -> bool:
    """Whether ``query`` keeps part of its ordered rows: a LIMIT, or an OFFSET alone (seed 2424242 #2751 lost
    the ORDER BY under its OFFSET 1 and shrank to a query that skips an arbitrary row)."""
    return query.args.get("limit") is not None or query.args.get("offset") is not None


def _edits(tree: exp.Expression) -> Iterator[tuple[int, str, object]]:
    """Candidate edits as (node index in ``tree.walk()`` order, action, argument), biggest first."""
    nodes = list(tree.walk())
    removals, replacements = [], []
    for i, node in enumerate(nodes):
        if _frozen(node) or isinstance(node, exp.Table):
            continue
        for key in CLAUSES:
            if node.args.get(key) is not None and isinstance(node, exp.Query):
                if key == "order" and _limited(node) and node.parent is not None:
                    continue
                removals.append((i, "drop", key))
        for key in LIST_ARGS:
            items = node.args.get(key)
            if isinstance(items, list) and (len(items) > 1 or key in ("joins", "partition_by")):
                removals.extend((i, "remove", (key, j)) for j in range(len(items)))
        typed_literal = isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal)
        if node.parent is not None and not typed_literal and not isinstance(node, exp.Identifier | exp.Column
                                                                             | exp.Literal):
            for child in node.iter_expressions():
                if not isinstance(child, CLAUSE_NODES):
                    replacements.append((i, "replace", child.arg_key, child.index))
    yield from removals
    for i, action, key, index in replacements:
        yield i, action, (key, index)


def _apply(tree: exp.Expression, edit: tuple[int, str, object]) -> exp.Expression | None:
    copy = tree.copy()
    node = list(copy.walk())[edit[0]]
    action, arg = edit[1], edit[2]
    if action == "drop":
        node.set(arg, None)
    elif action == "remove":
        key, j = arg
        items = list(node.args[key])
        del items[j]
        node.set(key, items)
    else:
        key, index = arg
        child = node.args[key][index] if index is not None else node.args[key]
        if node is copy:
            return None
        node.replace(child.copy())
    if any(not s.expressions for s in copy.find_all(exp.Select)):
        return None
    return copy


def shrink(query: FuzzQuery, run: Callable[[FuzzQuery], Outcome], signature: tuple[str, str],
           max_checks: int = 400, seconds: float = 30.0) -> tuple[FuzzQuery, Outcome | None, int]:
    """The smallest query found that still fails with ``signature``; returns (query, its outcome, checks made).

    ``run`` checks a query against the reference and the gateway (``compare.check``)."""
    best, best_outcome, checks = query, None, 0
    deadline = time.monotonic() + seconds
    improved = True
    while improved and checks < max_checks and time.monotonic() < deadline:
        improved = False
        size = len(best.ast.sql())
        for edit in _edits(best.ast):
            if checks >= max_checks or time.monotonic() >= deadline:
                break
            try:
                tree = _apply(best.ast, edit)
            except Exception:
                continue
            if tree is None or len(tree.sql()) >= size:
                continue
            aliases = {t.alias for t in tree.find_all(exp.Table)}
            candidate = FuzzQuery(tree, {a: s for a, s in best.placement.items() if a in aliases}, best.shapes,
                                  best.number)
            checks += 1
            outcome = run(candidate)
            if outcome.failed and outcome.signature() == signature:
                best, best_outcome, improved = candidate, outcome, True
                break
    return best, best_outcome, checks
