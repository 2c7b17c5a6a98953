"""IN lists that DataFusion 55 would combine wrongly, guarded so that the SQL DataFusion runs never has that shape.

DataFusion 55's expression simplifier (apache/datafusion#24246; fixed upstream by #24258, in no release we can
install) treats two IN lists on the same expression that meet under one AND or OR as sets. It ignores that the
expression or a list item may be NULL, and that an item may be a column rather than a constant:

    x IN A AND x IN B         -> x IN (A ∩ B), FALSE if empty     NULL x: FALSE, not NULL; `x IN (h) AND x IN (k)`
                                                                  keeps no row, not even where x = h = k
    x IN A AND x NOT IN B     -> x IN (A - B), FALSE if empty     B holds NULL: TRUE, not NULL
    x NOT IN A OR x NOT IN B  -> x NOT IN (A ∩ B), TRUE if empty  NULL x, or B holds NULL: TRUE, not NULL

So ``WHERE NOT g IN (1) OR NOT g IN (NULL)`` returns every row (the filter is gone) where SQL keeps only the
rows whose g is neither 1 nor NULL (``NOT g IN (NULL)`` is NULL on every row).
DataFusion first turns ``x = 1 OR x = 2`` into ``x IN (1, 2)``, and applies De Morgan to a NOT above an AND or
OR after its operands were combined: both can make the shape. The two unions, ``x IN A OR x IN B`` and
``x NOT IN A AND x NOT IN B``, are exact and stay as they are.

``guard_in_sets`` looks at each AND/OR tree of a statement (nested ANDs or ORs of one kind as one operand
list, a NOT as a flip of polarity) and wraps operands until no two that remain could meet in a wrong
combination, in

    CASE (p) WHEN TRUE THEN TRUE WHEN FALSE THEN FALSE END

which is TRUE, FALSE or NULL exactly when ``p`` is, evaluates ``p`` once, and which DataFusion 55 keeps as it
is: no set rule sees an IN list inside it. The longest IN lists stay unwrapped (they may still prune a scan).
The check is wider than DataFusion's rules, because DataFusion reshapes the tree before it combines sets
(``x IN (2) OR NOT TRUE`` becomes ``x IN (2)``; ``NOT (NOT (x IN A OR x NOT IN B))`` meets the difference rule
between its two NOTs): an operand holding an AND/OR shows every set test inside it, any two operands of a list
may meet (not only neighbours), a NOT anywhere above counts, a column is compared without its table. So a
wrapped operand may have been safe: it costs a CASE, never a wrong answer.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from sqlglot import exp


@dataclass(frozen=True)
class _Test:
    """A set test DataFusion may see in an operand: on ``key`` (the tested expression as compared), IN or =
    (``positive``) or NOT IN or <>, with ``size`` list items; ``comparison``: a single = or <>, a set only once
    merged with a sibling (``x = 1 OR x = 2`` is ``x IN (1, 2)``)."""

    key: str
    positive: bool
    size: int
    comparison: bool = False

    def flipped(self, flip: bool) -> _Test:
        return dataclasses.replace(self, positive=self.positive != flip) if flip else self


def guard_in_sets(expression: exp.Expression) -> exp.Expression:
    """``expression`` (changed in place and returned) with the IN lists that DataFusion 55 would combine
    ignoring NULLs wrapped in a CASE of the same value (apache/datafusion#24246; see the module). Raises nothing.

        >>> guard_in_sets(exp.maybe_parse("SELECT g FROM t WHERE NOT g IN (1) OR NOT g IN (NULL)")).sql()
        'SELECT g FROM t WHERE NOT g IN (1) OR CASE (NOT g IN (NULL)) WHEN TRUE THEN TRUE WHEN FALSE THEN FALSE END'
    """
    for root, negated in _roots(expression):
        _guard(root, negated)
    return expression


def _roots(expression: exp.Expression) -> list[tuple[exp.Expression, bool]]:
    """The AND/OR nodes not inside another AND/OR (through parentheses and NOTs), each with whether a NOT is
    above it."""
    roots = []
    for node in expression.walk(prune=literal_list):
        if not isinstance(node, exp.And | exp.Or):
            continue
        parent, nots = node.parent, 0
        while isinstance(parent, exp.Paren | exp.Not):
            nots += isinstance(parent, exp.Not)
            parent = parent.parent
        if not isinstance(parent, exp.And | exp.Or):
            roots.append((node, nots > 0))
    return roots


_LITERALS = (exp.Literal, exp.Null, exp.Boolean)


def literal_list(node: exp.Expression) -> bool:
    """An IN list of literals only, whose items need no walk (a dynamic filter's list has up to 20,000). Not an
    IN sub-query: it has no list, and its WHERE needs the guard too."""
    return (isinstance(node, exp.In) and node.args.get("query") is None
            and all(isinstance(e, _LITERALS) for e in node.expressions))


def _guard(node: exp.And | exp.Or, negated: bool) -> list[_Test]:
    """Wrap operands of ``node`` (and of the AND/OR lists inside them) until no two remaining ones hold set tests
    that combine wrongly, keeping the longest lists. Returns the set tests still visible in ``node``, relative to
    it. ``negated``: a NOT above ``node`` (any number): DataFusion combines the operands as written, then as the
    NOT pushed down (De Morgan) turns them, and a second NOT turns them back."""
    is_and = isinstance(node, exp.And)
    tested = [(operand, _tests(operand, negated)) for operand in _operands(node)]
    counts = Counter((t.key, t.positive) for _, tests in tested for t in tests)
    # a comparison that meets a same-polarity test where DataFusion merges them is part of an IN list; else not
    tested = [(operand, [dataclasses.replace(t, comparison=False) for t in tests if not t.comparison
                         or (_merging(t.positive, is_and, negated) and counts[t.key, t.positive] > 1)])
              for operand, tests in tested]
    kept: dict[str, set[bool]] = {}
    visible: list[_Test] = []
    for operand, tests in sorted((o for o in tested if o[1]), key=lambda o: -sum(t.size for t in o[1])):
        if any(_wrong(t.positive, p, is_and, negated) for t in tests for p in kept.get(t.key, ())):
            _wrap(operand)
            continue
        for t in tests:
            kept.setdefault(t.key, set()).add(t.positive)
        visible += tests
    return visible


def _merging(positive: bool, is_and: bool, negated: bool) -> bool:
    """Whether DataFusion merges comparisons of this polarity under this AND/OR into an IN list: ``x = 1 OR
    x = 2``, or under a NOT (De Morgan) ``x <> 1 AND x <> 2``. A plain ``x <> 1 AND x <> 2`` stays."""
    return (not is_and and positive) or (is_and and negated and not positive)


def _wrong(a: bool, b: bool, is_and: bool, negated: bool) -> bool:
    """Whether set tests of polarities ``a`` and ``b`` (True: IN) on one key combine wrongly under this AND/OR:
    under AND any pair with an IN (intersection, difference); under OR two NOT INs (intersection), or with a
    NOT above (an AND once pushed down) any pair with a NOT IN."""
    if is_and:
        return a or b
    return not (a and b) if negated else not (a or b)


def _operands(node: exp.And | exp.Or) -> list[exp.Expression]:
    """The operands of ``node`` with nested nodes of its kind (in parentheses or not) flattened, in order."""
    kind, found, stack = type(node), [], [node]
    while stack:
        current = stack.pop()
        inner = current
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if type(inner) is kind:
            stack += [inner.expression, inner.this]  # popped left first
        else:
            found.append(current)
    return found


def _tests(operand: exp.Expression, negated: bool) -> list[_Test]:
    """The set tests DataFusion may see in ``operand``: an IN list, a comparison with a constant, or those
    still visible in an AND/OR (guarded first), relative to ``operand``."""
    inner, flip, negation = _peel(operand)
    if isinstance(inner, exp.And | exp.Or):
        return [t.flipped(flip) for t in _guard(inner, negated or negation)]
    if isinstance(inner, exp.In):
        if not inner.expressions or any(inner.args.get(a) for a in ("query", "unnest", "field")):
            return []  # a sub-query: not a list DataFusion combines
        return [_Test(key, not flip, len(inner.expressions)) for key in _keys(inner.this)]
    if isinstance(inner, exp.EQ | exp.NEQ):
        left, right = inner.this, inner.expression
        subject = right if _constant(left) else left if _constant(right) else None
        if subject is None or _constant(subject):
            return []
        return [_Test(key, isinstance(inner, exp.EQ) != flip, 1, comparison=True) for key in _keys(subject)]
    return []


def _peel(operand: exp.Expression) -> tuple[exp.Expression, bool, bool]:
    """``operand`` as DataFusion simplifies its outside, whether that flips it, and whether a NOT was passed
    (``NOT NOT p`` does not flip p, but DataFusion pushes each NOT down in turn): without parentheses, NOTs and
    comparisons with a boolean literal (``p = FALSE`` is ``NOT p``), and an AND/OR with one operand that is not
    constant as that operand (``x IN (2) OR NOT TRUE`` is ``x IN (2)``)."""
    flip = negation = False
    while True:
        if isinstance(operand, exp.Paren | exp.Not):
            flip ^= isinstance(operand, exp.Not)
            negation |= isinstance(operand, exp.Not)
            operand = operand.this
        elif (compared := _boolean_comparison(operand)) is not None:
            operand, negates = compared
            flip ^= negates
            negation |= negates
        elif isinstance(operand, exp.And | exp.Or) and len(varying := [
                o for o in _operands(operand) if not _constant(o)]) == 1:
            operand = varying[0]
        else:
            return operand, flip, negation


def _boolean_comparison(node: exp.Expression) -> tuple[exp.Expression, bool] | None:
    """(p, whether it is negated) for ``p = TRUE``, ``p <> FALSE`` (not negated), ``p = FALSE``, ``p <> TRUE``
    (negated) where p is a condition; else None."""
    if not isinstance(node, exp.EQ | exp.NEQ):
        return None
    for condition, literal in ((node.this, node.expression), (node.expression, node.this)):
        if isinstance(literal, exp.Boolean) and isinstance(condition.unnest(), exp.Predicate | exp.Connector | exp.Not):
            return condition, isinstance(node, exp.EQ) != literal.this
    return None


def _wrap(operand: exp.Expression) -> None:
    """Replace ``operand`` with ``CASE (operand) WHEN TRUE THEN TRUE WHEN FALSE THEN FALSE END``: the same value,
    NULL included, in a form DataFusion 55's set rules do not see into."""
    case = exp.Case(ifs=[exp.If(this=exp.true(), true=exp.true()), exp.If(this=exp.false(), true=exp.false())])
    operand.replace(case)
    case.set("this", exp.Paren(this=operand))


#: nodes that make an expression vary by row (or group), so it is not a constant of a comparison
_VARYING = (exp.Column, exp.Query, exp.Subquery, exp.AggFunc, exp.Window, exp.Star)


def _constant(expression: exp.Expression) -> bool:
    return expression.find(*_VARYING) is None


def _keys(subject: exp.Expression) -> list[str]:
    """``subject`` as DataFusion may compare it: a column by its name in lower case (it unwraps casts of columns;
    ``a.g`` and ``g`` can be one column); a computed value by every column it reads, for DataFusion simplifies
    it first and may leave just one of them (``CASE WHEN NOT (d IN (..)) THEN f ELSE f END`` is ``f``: fuzz seed
    3141592 #2460 met ``f IN (NULL)`` that way); a value that reads no column by its text."""
    while isinstance(subject, exp.Paren | exp.Cast | exp.TryCast):
        subject = subject.this
    if isinstance(subject, exp.Column):
        return [subject.name.lower()]
    names = sorted({column.name.lower() for column in subject.find_all(exp.Column)})
    return names or [subject.sql().lower()]
