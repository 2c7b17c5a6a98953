"""The reference's defence against DataFusion 55 combining set tests of one expression ignoring NULLs
(apache/datafusion#24246: ``WHERE NOT g IN (1) OR NOT g IN (NULL)`` keeps every row, SQL keeps the rows whose g is
neither 1 nor NULL). The reference is DataFusion itself, so without this it is wrong where the gateway is right.

``wrap_set_tests`` wraps, in each AND/OR tree where two or more set tests (IN lists, = or <> with a constant)
test the same expression, every set test of the tree in ``CASE (p) WHEN TRUE THEN TRUE WHEN FALSE THEN FALSE
END``: the same value, NULL included, which DataFusion cannot combine. Deliberately blunter than the gateway's
guard (``connectors.arrow.null_sets``, which wraps only the operands that could meet, and which the DataFusion
dialect then also applies to the reference's text, finding nothing left to wrap): the fuzzer checks the guard's
choice against this one instead of sharing it. Set tests outside such trees stay as written, so the reference
meets DataFusion's other defects where the gateway does (a query DataFusion cannot plan stays invalid).
"""

from __future__ import annotations

from collections import Counter

from sqlglot import exp

#: what makes a side of a comparison vary by row or group (the other side is then a constant)
_VARYING = (exp.Column, exp.AggFunc, exp.Star, exp.Window, exp.Query)


def wrap_set_tests(tree: exp.Expression) -> exp.Expression:
    """``tree`` (changed in place and returned) with the set tests of each AND/OR tree that tests one expression
    twice or more wrapped (see the module)."""
    for root in [n for n in tree.find_all(exp.And, exp.Or) if _is_root(n)]:
        tests = [(node, _subject(node)) for node in _atoms(root)]
        tests = [(node, subject) for node, subject in tests if subject is not None]
        if all(n < 2 for n in Counter(subject for _, subject in tests).values()):
            continue
        for node, _ in tests:
            case = exp.Case(ifs=[exp.If(this=exp.true(), true=exp.true()), exp.If(this=exp.false(), true=exp.false())])
            node.replace(case)
            case.set("this", exp.Paren(this=node))
    return tree


def _is_root(node: exp.Expression) -> bool:
    """An AND/OR not inside another (through parentheses and NOTs)."""
    parent = node.parent
    while isinstance(parent, exp.Paren | exp.Not):
        parent = parent.parent
    return not isinstance(parent, exp.And | exp.Or)


def _atoms(root: exp.Expression) -> list[exp.Expression]:
    """The conditions an AND/OR tree combines: below its ANDs, ORs, NOTs, parentheses and comparisons with a
    boolean literal (``(p) = TRUE``)."""
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.And | exp.Or):
            stack += [node.expression, node.this]
        elif isinstance(node, exp.Paren | exp.Not):
            stack.append(node.this)
        elif isinstance(node, exp.EQ | exp.NEQ) and isinstance(node.this, exp.Boolean):
            stack.append(node.expression)
        elif isinstance(node, exp.EQ | exp.NEQ) and isinstance(node.expression, exp.Boolean):
            stack.append(node.this)
        else:
            found.append(node)
    return found


def _subject(node: exp.Expression) -> str | None:
    """The expression an IN list or a comparison with a constant tests (without casts and table names, in lower
    case), else None."""
    if isinstance(node, exp.In):
        subject = node.this if node.expressions and not node.args.get("query") else None
    elif isinstance(node, exp.EQ | exp.NEQ):
        left, right = node.this, node.expression
        subject = left if right.find(*_VARYING) is None else right if left.find(*_VARYING) is None else None
    else:
        return None
    while isinstance(subject, exp.Paren | exp.Cast | exp.TryCast):  # DataFusion unwraps casts of columns
        subject = subject.this
    if subject is None or subject.find(*_VARYING) is None:
        return None
    plain = subject.copy()
    for column in plain.find_all(exp.Column):
        column.set("table", None)
    return plain.sql().lower()
