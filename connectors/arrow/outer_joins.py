"""Outer joins whose WHERE rejects their null-extended rows, written as the joins they are.

A WHERE conjunct that is NULL or FALSE whenever a table's columns are all NULL (``UPPER(a1.s) > 'M'``) drops every
row an outer join null-extends on that table's side, so the join may be written as the inner join it then is
(a RIGHT or LEFT join becomes INNER; a FULL join LEFT or RIGHT or INNER). SQL engines do this themselves
(outer-join simplification, Galindo-Legaria & Rosenthal 1997), DataFusion too, but only where it can prove null
rejection (plain comparisons, not through a function such as ``UPPER``). The planner runs it as its first pass
(``planner.federation.outer_joins``: the filter then reaches the formerly null-supplying table's fragment), and
every SQL text DataFusion runs gets it once more, so that no WHERE stays above an outer join that rejects its
nulls: DataFusion 55 moved such a filter onto the other input when the two shared a column name
(``join_names``; ``f0 AS a1 RIGHT JOIN f1 AS a2 ON a2.s = a1.s AND a1.amt IS NULL WHERE UPPER(a1.s) > 'M'``: 24
rows where 9 are right, fuzz seed 577215 #61, regression r52, ``tests/test_outer_joins.py``).

A conjunct rejects nulls of a table when its value is NULL whenever one of that table's columns is: a column of
the table under operators and functions that are NULL on a NULL operand (comparisons, LIKE, BETWEEN, IN, NOT,
arithmetic, casts, the string and number functions in ``STRICT_FUNCTIONS``), AND of such conjuncts, OR of two
that both reject the table, ``x IS NOT NULL``. Anything else (COALESCE, CASE, CONCAT, IS NULL, anything holding
a sub-query: ``NOT x IN (<empty>)`` is TRUE where x is NULL) is taken as rejecting nothing: the join then stays
as written.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from connectors.arrow.null_sets import literal_list

#: operators and functions whose value is NULL when any operand is NULL (DataFusion's and SQL's own semantics)
STRICT_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.Between,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.Cast, exp.TryCast,
    exp.Upper, exp.Lower, exp.Length, exp.Reverse, exp.Substring, exp.Trim, exp.Abs, exp.Round, exp.Floor,
    exp.Ceil, exp.Sqrt, exp.Ln, exp.Exp, exp.Sign, exp.Initcap, exp.Left, exp.Right, exp.Extract,
    exp.DateTrunc, exp.TimestampTrunc,
)


def inner_null_rejected_joins(expression: exp.Expression) -> exp.Expression:
    """``expression`` with every outer join of each SELECT whose WHERE rejects the nulls it would add written as
    the join it is (RIGHT/LEFT -> INNER, FULL -> LEFT/RIGHT/INNER): the same rows. Only SELECTs whose FROM is a
    flat list of named tables and aliased sub-queries, and joins without USING or NATURAL, are rewritten. Changes
    ``expression`` in place (the generator's copy) and returns it.

        >>> import sqlglot
        >>> q = "SELECT b.y FROM a RIGHT JOIN b ON a.k = b.k WHERE UPPER(a.s) > 'M'"
        >>> inner_null_rejected_joins(sqlglot.parse_one(q)).sql()
        "SELECT b.y FROM a JOIN b ON a.k = b.k WHERE UPPER(a.s) > 'M'"
        >>> q = "SELECT b.y FROM a RIGHT JOIN b ON a.k = b.k WHERE COALESCE(a.s, 'z') > 'M'"
        >>> inner_null_rejected_joins(sqlglot.parse_one(q)).sql()
        "SELECT b.y FROM a RIGHT JOIN b ON a.k = b.k WHERE COALESCE(a.s, 'z') > 'M'"
    """
    for select in [n for n in nodes(expression) if isinstance(n, exp.Select)]:
        _simplify(select)
    return expression




def nodes(expression: exp.Expression) -> Iterator[exp.Expression]:
    """Every node of ``expression`` but the items of IN lists of literals (the tested value is one): a dynamic
    filter's list holds up to 20,000 keys, and walking them cost these rewrites 35 ms per such SQL text."""
    for node in expression.walk(prune=literal_list):
        yield node
        if literal_list(node):
            yield from nodes(node.this)


def _simplify(select: exp.Select) -> None:
    joins = select.args.get("joins") or []
    where = select.args.get("where")
    if where is None or not any(j.side in ("LEFT", "RIGHT", "FULL") for j in joins):
        return
    relations = from_relations(select)
    if relations is None:
        return
    names = list(relations)
    rejected = _rejected_tables(where.this) & set(names)
    if not rejected:
        return
    for i, join in enumerate(joins):
        if join.side not in ("LEFT", "RIGHT", "FULL") or join.args.get("using") or join.method:
            continue
        left, right = set(names[: i + 1]), {names[i + 1]}
        keeps_left = join.side in ("LEFT", "FULL") and not rejected & right
        keeps_right = join.side in ("RIGHT", "FULL") and not rejected & left
        side = "FULL" if keeps_left and keeps_right else "LEFT" if keeps_left else "RIGHT" if keeps_right else None
        if side != join.side:
            join.set("side", side)
            join.set("kind", "OUTER" if side else None)


def from_relations(select: exp.Select) -> dict[str, exp.Expression] | None:
    """Name -> relation of the SELECT's FROM list, in order, by the names its columns qualify them with; None
    unless each is a table or an aliased sub-query under a name of its own (a parenthesized join, UNNEST or
    LATERAL: left alone)."""
    from_ = select.args.get("from_") or select.args.get("from")
    relations: dict[str, exp.Expression] = {}
    for relation in ([from_.this] if from_ is not None else []) + [j.this for j in select.args.get("joins") or []]:
        table = isinstance(relation, exp.Table) and not relation.args.get("joins")
        if not (table or isinstance(relation, exp.Subquery)) or not relation.alias_or_name or (
                relation.alias_or_name in relations):
            return None
        relations[relation.alias_or_name] = relation
    return relations


def _rejected_tables(node: exp.Expression) -> set[str]:
    """The tables (by qualifier) for which the condition ``node`` is NULL or FALSE whenever any of their columns
    read here is NULL (a row of them null-extended never passes it)."""
    if isinstance(node, exp.Paren):
        return _rejected_tables(node.this)
    if isinstance(node, exp.And):
        return _rejected_tables(node.left) | _rejected_tables(node.right)
    if isinstance(node, exp.Or):
        return _rejected_tables(node.left) & _rejected_tables(node.right)
    if isinstance(node, exp.Not):
        inner = node.this.unnest()
        if isinstance(inner, exp.Is):  # NOT (x IS NULL) rejects; NOT (x IS NOT NULL), NOT (x IS TRUE) do not
            null_test = isinstance(inner.expression, exp.Null) and not inner.args.get("negate")
            return _null_tables(inner.this) if null_test else set()
        return _null_tables(inner)  # NOT p passes where p is FALSE: only a NULL p rejects
    if isinstance(node, exp.Is):  # x IS NOT NULL (as the PostgreSQL reader writes it) rejects; x IS NULL does not
        null_test = isinstance(node.expression, exp.Null) and node.args.get("negate")
        return _null_tables(node.this) if null_test else set()
    return _null_tables(node)


def _null_tables(node: exp.Expression) -> set[str]:
    """The tables for which the value ``node`` is NULL whenever any of their columns read here is NULL: a column
    under operators and functions that are NULL on a NULL operand. A test that is FALSE rather than NULL there
    (``x IS NOT NULL``, an AND) is not: ``(a.s IS NOT NULL) = FALSE`` is TRUE where a.s is NULL (fuzz seed
    6180339)."""
    if isinstance(node, exp.Paren | exp.Not):
        return _null_tables(node.this)
    if isinstance(node, exp.Column):
        return {node.table} if node.table else set()
    if node.find(exp.Select, exp.Any, exp.All):
        return set()  # x IN (<empty sub-query>) is FALSE and x > ALL (<empty>) TRUE even where x is NULL
    if isinstance(node, exp.In):
        return _null_tables(node.this)  # an item may be NULL: only the tested value counts
    if isinstance(node, STRICT_FUNCTIONS):
        return set().union(*(_null_tables(arg) for arg in _operands(node)))
    return set()


def _operands(node: exp.Expression) -> list[exp.Expression]:
    operands = []
    for value in node.args.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, exp.Expression) and not isinstance(item, exp.DataType):
                operands.append(item)
    return operands
