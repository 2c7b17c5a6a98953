"""Columns of an outer join's null-extended input that DataFusion 55 takes for constants, made plain values in
every SQL text DataFusion runs.

DataFusion 55 keeps, in a join's output properties, the constants of an input the join null-extends: a column that
is a literal in a derived table (``(SELECT id, 1 AS k FROM b) AS d``) or fixed by a filter (``ON a.id = b.id AND
b.s = 'x'``) still counts as constant above the join, where it is that value or NULL. A sort on it is then dropped,
from ORDER BY and from window orderings, above the join or above any query reading its output, and the rows come
out in the wrong order: ``SELECT a.id, d.k FROM a LEFT JOIN (SELECT id, 1 AS k FROM b) AS d ON a.id = d.id ORDER
BY d.k DESC NULLS FIRST LIMIT 3`` returns three matched rows where SQL returns three unmatched ones (with the join's
inputs swapped or not, one partition or several). The differential fuzzer cannot see it: its reference is
DataFusion. ``tests/test_null_extended_constants.py`` keeps the defect's own check.

A derived table's column is read as ``CASE WHEN d.id IS NULL THEN NULL ELSE d.k END``, with ``d.id`` an equi-join
key of that input (never NULL on a row the input really has, NULL on every row the join adds): the same value on
every row, and no longer a constant to DataFusion. A derived table without such a key (a one-row aggregate joined
``ON a.g = 1``) is read through the ON that matched it, ``CASE WHEN (a.g = 1) THEN x.m END``: TRUE wherever the
row of ``x`` is real, and ``x.m`` is NULL anyway where it is not. It is read so wherever the SELECT reads it
above its joins (outputs, a bare column keeping its name; GROUP BY, HAVING, ORDER BY, DISTINCT ON, window
specifications, alike so that they still match), not in its WHERE or ON. An ON conjunct that fixes a column the
SELECT reads is written ``(b.s = 'x') IS TRUE``: an ON keeps the same pairs, and DataFusion derives no constant
from it (the price: that conjunct no longer prunes row groups; TPC-H has no such ON).
"""

from __future__ import annotations

from sqlglot import exp

from connectors.arrow.outer_joins import from_relations, nodes


def anchor_null_extended_columns(expression: exp.Expression) -> exp.Expression:
    """``expression`` with, in each SELECT that outer-joins, the columns of a null-extended input that DataFusion
    may take for constants made plain values again: every column of a derived table that is more than a
    projection of one table (its outputs may be literals or fixed by its WHERE) read through that input's join
    key as above, in the SELECT's outputs, GROUP BY, HAVING, ORDER BY and DISTINCT ON alike; and each ON conjunct
    that fixes a column of such an input to one value (``b.s = 'x'``, ``b.s IN ('x')``, ``b.s BETWEEN 1 AND 1``)
    written ``(b.s = 'x') IS TRUE`` (the same rows: an ON keeps a pair only where it is TRUE) when the SELECT
    reads that column there, so that no constant is derived from it. A CTE's name counts as the derived table it
    stands for. A derived table without an equi-join key that its own WHERE does not fix is read through the ON
    that matched it (``CASE WHEN (<on>) THEN x.m END``) when that ON reads another input and holds no sub-query.
    A SELECT whose FROM is not a list of tables and aliased sub-queries, and USING or NATURAL joins are left as
    written. Changes ``expression`` in place (the
    generator's copy) and returns it.

        >>> import sqlglot
        >>> q = "SELECT a.id, d.k FROM a LEFT JOIN (SELECT b.id, 1 AS k FROM b) AS d ON a.id = d.id ORDER BY d.k"
        >>> anchor_null_extended_columns(sqlglot.parse_one(q)).sql().split(" FROM ")[0]
        'SELECT a.id, CASE WHEN d.id IS NULL THEN NULL ELSE d.k END AS k'
        >>> q = "SELECT a.id, b.s FROM a LEFT JOIN b ON a.id = b.id AND b.s = 'x' ORDER BY b.s"
        >>> anchor_null_extended_columns(sqlglot.parse_one(q)).sql().split(" ON ")[1]
        "a.id = b.id AND (b.s = 'x') IS TRUE ORDER BY b.s"
    """
    ctes = {cte.alias_or_name: cte.this for cte in expression.find_all(exp.CTE)}
    for select in [n for n in nodes(expression) if isinstance(n, exp.Select)]:
        _anchor(select, ctes)
    return expression


#: the parts of a SELECT that read its inputs' columns above its joins (not WHERE, not ON)
READING_PARTS = ("expressions", "group", "having", "order")


def _anchor(select: exp.Select, ctes: dict[str, exp.Expression]) -> None:
    joins = select.args.get("joins") or []
    if not all(isinstance(j, exp.Join) for j in joins) or not any(j.side in ("LEFT", "RIGHT", "FULL") for j in joins):
        return  # (a tree the fuzzer's shrinker cut may hold other nodes there)
    relations = from_relations(select)
    if relations is None or any(j.args.get("using") or j.method for j in joins):
        return
    names = list(relations)
    extended = _null_extended(joins, names)
    anchored = {}  # derived table -> the join key its columns are read through, or the ON that matched it
    for name in extended:
        relation = _defined(relations[name], ctes)
        if _computed(relation, ctes):
            anchor = _key(name, joins, names, relation) or _matching_on(name, joins, names)
            if anchor is not None:
                anchored[name] = anchor
    if anchored:
        _read_through_keys(select, anchored)
    _unfix(select, joins, extended)


def _reading_parts(select: exp.Select) -> list[exp.Expression]:
    parts = [p for k in READING_PARTS for p in (select.args.get(k) if k == "expressions" else [select.args.get(k)])]
    distinct = select.args.get("distinct")
    if distinct is not None and distinct.args.get("on") is not None:
        parts.append(distinct.args["on"])
    return [p for p in parts if p is not None]


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


def _constant(node: exp.Expression) -> bool:
    return node.find(exp.Column, exp.Select) is None


def _fixed_column(conjunct: exp.Expression) -> exp.Column | None:
    """The column ``conjunct`` fixes to one value (``c = 'x'``, ``c IN ('x')``, ``c BETWEEN 1 AND 1``), or None."""
    if isinstance(conjunct, exp.EQ):
        for column, other in ((conjunct.this, conjunct.expression), (conjunct.expression, conjunct.this)):
            if isinstance(column, exp.Column) and _constant(other):
                return column
    if isinstance(conjunct, exp.In) and isinstance(conjunct.this, exp.Column) and not conjunct.args.get("query"):
        items = conjunct.expressions
        if len(items) == 1 and _constant(items[0]):
            return conjunct.this
    if isinstance(conjunct, exp.Between) and isinstance(conjunct.this, exp.Column):
        low, high = conjunct.args.get("low"), conjunct.args.get("high")
        if low is not None and high is not None and _constant(low) and low.sql() == high.sql():
            return conjunct.this
    return None


def _unfix(select: exp.Select, joins: list[exp.Join], extended: set[str]) -> None:
    """Each ON conjunct fixing a column of a null-extended input that the SELECT reads written ``(..) IS TRUE``."""
    read = {(c.table, c.name) for part in _reading_parts(select) for c in part.find_all(exp.Column)}
    for join in joins:
        conjuncts = _conjuncts(join.args.get("on"))
        fixing = [c for c in conjuncts if (f := _fixed_column(c)) is not None and f.table in extended
                  and (f.table, f.name) in read]
        if fixing:
            join.set("on", exp.and_(*[exp.Is(this=exp.Paren(this=c.copy()), expression=exp.true())
                                      if c in fixing else c for c in conjuncts]))


def _key(name: str, joins: list[exp.Join], names: list[str], relation: exp.Expression) -> str | None:
    """A column of input ``name`` that an ON equates with another input's column where that ON keeps only the
    rows of ``name`` it matches (an inner join's, a LEFT join's for its right input, a RIGHT join's for its left
    inputs): not NULL on any row the input has. None if none is, or each may be a constant of the input."""
    for i, join in enumerate(joins):
        if not _keeps_only_matched(join, i, name, names):
            continue
        for conjunct in _conjuncts(join.args.get("on")):
            if not isinstance(conjunct, exp.EQ):
                continue
            sides = [conjunct.this, conjunct.expression]
            if not all(isinstance(s, exp.Column) and s.table in names for s in sides):
                continue
            own = [s for s in sides if s.table == name]
            if len(own) == 1 and _plain_output(relation, own[0].name):
                return own[0].name
    return None


def _keeps_only_matched(join: exp.Join, index: int, name: str, names: list[str]) -> bool:
    """Whether the ``index``-th join keeps only the rows of input ``name`` its ON matches: an inner join, a LEFT
    join for its right input, a RIGHT join for its left inputs."""
    return (join.side in ("", None) or (join.side == "LEFT" and names[index + 1] == name)
            or (join.side == "RIGHT" and name in names[: index + 1]))


def _matching_on(name: str, joins: list[exp.Join], names: list[str]) -> exp.Expression | None:
    """The ON of the join that keeps only the rows of input ``name`` it matches (as in ``_key``), when it reads
    another input (so that DataFusion cannot fold it) and holds no sub-query: TRUE on every row where that input's
    row is real, so ``CASE WHEN <on> THEN d.c END`` is ``d.c`` there, and NULL where the input is null-extended."""
    for i, join in enumerate(joins):
        on = join.args.get("on")
        if _keeps_only_matched(join, i, name, names) and on is not None and on.find(exp.Select) is None and any(
                c.table != name for c in on.find_all(exp.Column)):
            return on
    return None


def _defined(relation: exp.Expression, ctes: dict[str, exp.Expression]) -> exp.Expression:
    """A CTE's name read as the derived table it stands for; any other input as it is."""
    if isinstance(relation, exp.Table) and not relation.args.get("db") and relation.name in ctes:
        return exp.Subquery(this=ctes[relation.name])
    return relation


def _plain_output(relation: exp.Expression, column: str) -> bool:
    """Whether ``column`` of the derived table ``relation`` is a column of its input, not a literal, a computed
    value or a column its WHERE reads (which may fix it)."""
    inner = relation.this if isinstance(relation, exp.Subquery) else None
    if not isinstance(inner, exp.Select) or inner.args.get("group") is not None:
        return False
    output = next((o for o in inner.expressions if o.alias_or_name == column), None)
    source = output.unalias() if output is not None else None
    if not isinstance(source, exp.Column):
        return False
    where = inner.args.get("where")
    return where is None or not any(c.name == source.name for c in where.find_all(exp.Column))


def _computed(relation: exp.Expression, ctes: dict[str, exp.Expression]) -> bool:
    """Whether a derived table's outputs may be constants: anything but a plain projection of one table's
    columns (as ``join_names`` wraps an input), that table not a CTE whose outputs may be."""
    if isinstance(relation, exp.Table):
        return False
    inner = relation.this if isinstance(relation, exp.Subquery) else None
    if not isinstance(inner, exp.Select):
        return True
    from_ = inner.args.get("from_") or inner.args.get("from")
    plain = (from_ is not None and isinstance(from_.this, exp.Table) and not inner.args.get("joins")
             and all(inner.args.get(k) is None for k in ("where", "group", "having", "limit", "distinct")))
    if not (plain and all(isinstance(o.unalias(), exp.Column) for o in inner.expressions)):
        return True
    source = _defined(from_.this, ctes)
    return source is not from_.this and _computed(source, ctes)


def _read_through_keys(select: exp.Select, anchored: dict[str, str | exp.Expression]) -> None:
    def target(column: exp.Column) -> bool:
        return (column.table in anchored and column.name != anchored[column.table]
                and column.find_ancestor(exp.Select) is select)

    def read(column: exp.Column) -> exp.Expression:
        anchor = anchored[column.table]
        if isinstance(anchor, exp.Expression):  # the ON that matched the row: TRUE wherever the row is real
            return exp.Case(ifs=[exp.If(this=exp.Paren(this=anchor.copy()), true=column.copy())])
        key = exp.column(anchor, column.table)
        return exp.Case(ifs=[exp.If(this=exp.Is(this=key, expression=exp.Null()), true=exp.Null())],
                        default=column.copy())

    outputs = []
    for output in select.expressions:
        if isinstance(output, exp.Column) and target(output):
            outputs.append(exp.alias_(read(output), output.args["this"].copy()))
            continue
        for column in [c for c in output.find_all(exp.Column) if target(c)]:
            column.replace(read(column))
        outputs.append(output)
    select.set("expressions", outputs)
    for part in _reading_parts(select)[len(outputs):]:
        for column in [c for c in part.find_all(exp.Column) if target(c)]:
            column.replace(read(column))
