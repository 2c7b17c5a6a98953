"""Columns of an outer join's null-extended input that DataFusion 55 takes for constants, read through that input's
join key in every SQL text DataFusion runs.

DataFusion 55 keeps, in a join's output properties, the constants of an input the join null-extends: a column that
is a literal in a derived table (``(SELECT id, 1 AS k FROM b) AS d``) or fixed by a filter (``ON a.id = b.id AND
b.s = 'x'``) still counts as constant above the join, where it is that value or NULL. A sort on it is then dropped,
from ORDER BY and from window orderings, above the join or above any query reading its output, and the rows come
out in the wrong order: ``SELECT a.id, d.k FROM a LEFT JOIN (SELECT id, 1 AS k FROM b) AS d ON a.id = d.id ORDER
BY d.k DESC NULLS FIRST LIMIT 3`` returns three matched rows where SQL returns three unmatched ones (with the join's
inputs swapped or not, one partition or several). The differential fuzzer cannot see it: its reference is
DataFusion. ``tests/test_null_extended_constants.py`` keeps the defect's own check.

Read as ``CASE WHEN d.id IS NULL THEN NULL ELSE d.k END``, with ``d.id`` an equi-join key of that input (never NULL
on a row the input really has, NULL on every row the join adds), the column has the same value on every row and
is no longer a constant to DataFusion. It is read so in the SELECT's outputs (a bare column keeps its name), its
ORDER BY and its window specifications, not in its WHERE, ON or GROUP BY: only the orderings and what queries
above read are at stake.
"""

from __future__ import annotations

from sqlglot import exp

from connectors.arrow.outer_joins import from_relations, nodes


def anchor_null_extended_columns(expression: exp.Expression) -> exp.Expression:
    """``expression`` with, in each SELECT that does not aggregate, each column of an input that an outer join
    null-extends and DataFusion may take for a constant read through that input's join key as above: the columns
    an ON compares with literals only, and every column of a derived table that is more than a projection of one
    table (its outputs may be literals or fixed by its WHERE). An input without an equi-join key that no filter
    fixes, a SELECT whose FROM is not a list of tables and aliased sub-queries, and USING or NATURAL joins are left
    as written. Changes ``expression`` in place (the generator's copy) and returns it.

        >>> import sqlglot
        >>> q = "SELECT a.id, d.k FROM a LEFT JOIN (SELECT b.id, 1 AS k FROM b) AS d ON a.id = d.id ORDER BY d.k"
        >>> anchor_null_extended_columns(sqlglot.parse_one(q)).sql().split(" FROM ")[0]
        'SELECT a.id, CASE WHEN d.id IS NULL THEN NULL ELSE d.k END AS k'
        >>> q = "SELECT a.id, b.s FROM a LEFT JOIN b ON a.id = b.id AND b.s = 'x' ORDER BY b.s"
        >>> anchor_null_extended_columns(sqlglot.parse_one(q)).sql().split(" ORDER BY ")[1]
        'CASE WHEN b.id IS NULL THEN NULL ELSE b.s END'
    """
    for select in [n for n in nodes(expression) if isinstance(n, exp.Select)]:
        _anchor(select)
    return expression


def _anchor(select: exp.Select) -> None:
    joins = select.args.get("joins") or []
    if not any(j.side in ("LEFT", "RIGHT", "FULL") for j in joins) or _aggregates(select):
        return
    relations = from_relations(select)
    if relations is None or any(j.args.get("using") or j.method for j in joins):
        return
    names = list(relations)
    fixed = _fixed_columns(joins, set(names))
    anchored: dict[str, tuple[str, set[str] | None]] = {}  # input -> (its key, the columns to read through it)
    for name in _null_extended(joins, names):
        key = _key(name, joins, names, fixed.get(name, set()), relations[name])
        targets = None if _computed(relations[name]) else fixed.get(name, set())
        if key is not None and targets != set():
            anchored[name] = (key, targets)
    if anchored:
        _read_through_keys(select, anchored)


def _aggregates(select: exp.Select) -> bool:
    if select.args.get("group") is not None or select.args.get("having") is not None:
        return True
    for output in select.expressions:
        for agg in output.find_all(exp.AggFunc):
            if agg.find_ancestor(exp.Window, exp.Select) is select:
                return True
    return False


def _null_extended(joins: list[exp.Join], names: list[str]) -> set[str]:
    extended: set[str] = set()
    for i, join in enumerate(joins):
        if join.side in ("LEFT", "FULL"):
            extended.add(names[i + 1])
        if join.side in ("RIGHT", "FULL"):
            extended.update(names[: i + 1])
    return extended


def _conjuncts(condition: exp.Expression | None) -> list[exp.Expression]:
    return list(condition.flatten()) if isinstance(condition, exp.And) else [condition] if condition else []


def _fixed_columns(joins: list[exp.Join], names: set[str]) -> dict[str, set[str]]:
    """Input -> its columns that an ON conjunct reading only that input (and literals) compares: DataFusion may
    derive a constant from them (``b.s = 'x'``, ``b.s BETWEEN 'x' AND 'x'``)."""
    fixed: dict[str, set[str]] = {}
    for join in joins:
        for conjunct in _conjuncts(join.args.get("on")):
            if conjunct.find(exp.Select):
                continue
            tables = {c.table for c in conjunct.find_all(exp.Column)}
            if len(tables) == 1 and (table := next(iter(tables))) in names:
                fixed.setdefault(table, set()).update(c.name for c in conjunct.find_all(exp.Column))
    return fixed


def _key(name: str, joins: list[exp.Join], names: list[str], fixed: set[str],
         relation: exp.Expression) -> str | None:
    """A column of input ``name`` that an ON equates with another input's column where that ON keeps only the
    rows of ``name`` it matches (an inner join's, a LEFT join's for its right input, a RIGHT join's for its left
    inputs): not NULL on any row the input has. None if none is, or each may be a constant itself."""
    for i, join in enumerate(joins):
        filters = (join.side in ("", None) or (join.side == "LEFT" and names[i + 1] == name)
                   or (join.side == "RIGHT" and name in names[: i + 1]))
        if not filters:
            continue
        for conjunct in _conjuncts(join.args.get("on")):
            if not isinstance(conjunct, exp.EQ):
                continue
            sides = [conjunct.this, conjunct.expression]
            if not all(isinstance(s, exp.Column) and s.table in names for s in sides):
                continue
            own = [s for s in sides if s.table == name]
            if len(own) == 1 and own[0].name not in fixed and _plain_output(relation, own[0].name):
                return own[0].name
    return None


def _plain_output(relation: exp.Expression, column: str) -> bool:
    """Whether ``column`` of ``relation`` is a table's column, not a literal or a column its WHERE fixes."""
    if isinstance(relation, exp.Table):
        return True
    inner = relation.this if isinstance(relation, exp.Subquery) else None
    if not isinstance(inner, exp.Select) or inner.args.get("group") is not None:
        return False
    output = next((o for o in inner.expressions if o.alias_or_name == column), None)
    source = output.unalias() if output is not None else None
    if not isinstance(source, exp.Column):
        return False
    where = inner.args.get("where")
    return where is None or not any(c.name == source.name for c in where.find_all(exp.Column))


def _computed(relation: exp.Expression) -> bool:
    """Whether a derived table's outputs may be constants: anything but a plain projection of one table's
    columns (as ``join_names`` wraps an input)."""
    if isinstance(relation, exp.Table):
        return False
    inner = relation.this if isinstance(relation, exp.Subquery) else None
    if not isinstance(inner, exp.Select):
        return True
    from_ = inner.args.get("from_") or inner.args.get("from")
    plain = (from_ is not None and isinstance(from_.this, exp.Table) and not inner.args.get("joins")
             and all(inner.args.get(k) is None for k in ("where", "group", "having", "limit", "distinct")))
    return not (plain and all(isinstance(o.unalias(), exp.Column) for o in inner.expressions))


def _read_through_keys(select: exp.Select, anchored: dict[str, tuple[str, set[str] | None]]) -> None:
    def target(column: exp.Column) -> bool:
        if column.table not in anchored or column.find_ancestor(exp.Select) is not select:
            return False
        key, columns = anchored[column.table]
        return column.name != key and (columns is None or column.name in columns)

    def read(column: exp.Column) -> exp.Expression:
        key = exp.column(anchored[column.table][0], column.table)
        return exp.Case(ifs=[exp.If(this=exp.Is(this=key, expression=exp.Null()), true=exp.Null())],
                        default=column.copy())

    outputs = []
    for output in select.expressions:
        if isinstance(output, exp.Column) and target(output):
            outputs.append(exp.alias_(read(output), output.args["this"].copy()))
            continue
        for column in list(output.find_all(exp.Column)):
            if target(column):
                column.replace(read(column))
        outputs.append(output)
    select.set("expressions", outputs)
    order = select.args.get("order")
    for column in list(order.find_all(exp.Column)) if order is not None else []:
        if target(column):
            column.replace(read(column))
