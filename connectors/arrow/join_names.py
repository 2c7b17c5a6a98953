"""Join inputs whose columns share a name, renamed apart in every SQL text DataFusion runs.

DataFusion 55's physical filter pushdown finds a filter's columns in a join's inputs by name: when both inputs
have a column ``amt``, a filter on one is pushed to the other (apache/datafusion#25296, #25244, fixed after 55).
Parent filters above an outer join, join dynamic filters and TopK dynamic filters all travel that way, and the
rows come out wrong: ``a RIGHT JOIN b ON b.s = a.s WHERE a.amt IS NULL AND b.amt > 1`` returns no row where ten
are right (the ``a.amt IS NULL`` is applied to ``b.amt`` below the join; with or without the join's inputs
swapped; fuzz seeds 577215 #61 and 3141592, ``tests/test_join_names.py``). With each shared name renamed apart
(the input wrapped as ``(SELECT a.amt AS "a.amt", .. FROM a) AS a``) every lookup finds its own column.

Parent filters above an outer join, join dynamic filters and TopK dynamic filters all travel that way: in-place
Parquet scans of a residual plan lost rows to a hash join's dynamic filter landing on the other input's ``id``
(seed 577215 #2057, regression r50: 16 rows where 114 are right, fixed first by turning those filters off).
``distinct_join_names`` renames, in each SELECT that joins, only the names that two of its inputs both read
(TPC-H's prefixed columns meet only in self-joins: Q7, Q8, Q21); a SELECT it cannot read whole is left as
written (see there). ``plain_join_names`` undoes it for code that reads the planner's residual SQL by its
tables (the Ray join stage).
"""

from __future__ import annotations

from collections import Counter

from sqlglot import exp

from connectors.arrow.outer_joins import from_relations, nodes


def distinct_join_names(expression: exp.Expression) -> exp.Expression:
    """``expression`` with every column name that two inputs of one SELECT's joins both read renamed apart: each
    such input wrapped in ``(SELECT x.c AS "x.c", x.d AS d .. FROM <input> AS x) AS x`` and its columns read as
    ``x."x.c"``; a bare column output keeps its name (``x."x.c" AS c``). Left as written: a SELECT with a star,
    USING or NATURAL joins, an input that is not a table or an aliased sub-query, an unqualified column, an
    unaliased computed output reading a renamed column (its name would change), or an alias used twice in the
    statement. Changes ``expression`` in place (the generator's copy) and returns it.

        >>> import sqlglot
        >>> sql = distinct_join_names(sqlglot.parse_one("SELECT b.v FROM a JOIN b ON b.k = a.k")).sql()
        >>> sql[:sql.index(" JOIN")]
        'SELECT b.v FROM (SELECT "a"."k" AS "a.k" FROM a) AS "a"'
        >>> sql[sql.index(" JOIN"):]
        ' JOIN (SELECT "b"."k" AS "b.k", "b"."v" AS "v" FROM b) AS "b" ON b."b.k" = a."a.k"'
    """
    found = list(nodes(expression))
    aliases = Counter(r.alias_or_name for r in found if isinstance(r, exp.Table | exp.Subquery) and r.alias_or_name)
    repeated = {a for a, n in aliases.items() if n > 1}
    for select in [n for n in found if isinstance(n, exp.Select)]:
        _rename_apart(select, repeated)
    return expression


def _rename_apart(select: exp.Select, repeated: set[str]) -> None:
    relations = _relations(select)
    if relations is None or repeated & set(relations):
        return
    read = _read_columns(select, relations)
    if read is None:
        return
    names: dict[str, set[str]] = {}
    for alias, columns in read.items():
        for column in columns:
            names.setdefault(column.name.lower(), set()).add(alias)
    shared = {name for name, owners in names.items() if len(owners) > 1}
    if not shared or not _outputs_keep_names(select, shared, set(relations)):
        return
    for projection in list(select.expressions):
        if isinstance(projection, exp.Column) and projection.table in relations and projection.name.lower() in shared:
            named = exp.Alias(alias=exp.to_identifier(projection.name, quoted=True))
            projection.replace(named)
            named.set("this", projection)  # the same column node: renamed below with the others
    for alias, relation in relations.items():
        renamed = {c.name for c in read[alias] if c.name.lower() in shared}
        if not renamed:
            continue
        kept = sorted({c.name for c in read[alias]})
        body = exp.select(*(exp.alias_(exp.column(name, table=alias, quoted=True),
                                       f"{alias}.{name}" if name in renamed else name, quoted=True)
                            for name in kept))
        relation.replace(exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))))
        body.from_(relation, copy=False)  # the input itself moves inside: a SELECT in it is renamed on its own
        for column in read[alias]:
            if column.name in renamed:
                column.set("this", exp.to_identifier(f"{alias}.{column.name}", quoted=True))


def _relations(select: exp.Select) -> dict[str, exp.Expression] | None:
    """Alias -> input of a SELECT that joins two or more; None when one cannot be renamed apart."""
    joins = select.args.get("joins") or []
    if not joins or any(j.args.get("using") or j.method for j in joins):
        return None
    return from_relations(select)


def _read_columns(select: exp.Select, relations: dict[str, exp.Expression]) -> dict[str, list[exp.Column]] | None:
    """The columns ``select`` (and sub-queries inside it, outside its inputs) reads of each input; None when a
    star or an unqualified column of its own scope makes that unknown."""
    if any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
           for p in select.expressions):
        return None
    inputs = {id(node) for relation in relations.values() for node in nodes(relation)}
    # ORDER BY "id" names an output (whose name the renaming keeps), not an input's column
    outputs = {p.alias_or_name for p in select.expressions}
    order = {id(node) for node in (select.args.get("order") or exp.Null()).walk()}
    read: dict[str, list[exp.Column]] = {alias: [] for alias in relations}
    for column in (n for n in nodes(select) if isinstance(n, exp.Column)):
        if id(column) in inputs:
            continue
        if isinstance(column.this, exp.Star):
            return None
        if column.table in read:
            read[column.table].append(column)
        elif not column.table and _scope_of(column) is select and not (
                id(column) in order and column.name in outputs):
            return None  # an unqualified column of this SELECT: whose input is unknown here
    return read


def _scope_of(column: exp.Column) -> exp.Expression | None:
    return column.find_ancestor(exp.Select)


def _outputs_keep_names(select: exp.Select, shared: set[str], aliases: set[str]) -> bool:
    """Whether renaming leaves the SELECT's output names as they were: no unaliased output other than a bare
    column reads a renamed column (DataFusion names such an output after its text)."""
    for projection in select.expressions:
        if isinstance(projection, exp.Alias | exp.Column):
            continue
        if any(c.table in aliases and c.name.lower() in shared for c in projection.find_all(exp.Column)):
            return False
    return True


def plain_join_names(expression: exp.Expression) -> exp.Expression:
    """``expression`` (parsed from SQL ``distinct_join_names`` wrote) with each input it wrapped unwrapped and
    its columns read by their own names again; a sub-query of any other shape is left alone. Changes
    ``expression`` in place and returns it.

        >>> import sqlglot
        >>> q = 'SELECT b."b.k" AS "k" FROM a JOIN (SELECT "b"."k" AS "b.k" FROM t AS b) AS "b" ON b."b.k" = a.k'
        >>> plain_join_names(sqlglot.parse_one(q)).sql()
        'SELECT b."k" AS "k" FROM a JOIN t AS b ON b."k" = a.k'
    """
    for subquery in list(expression.find_all(exp.Subquery)):
        renamed = _wrapped_names(subquery)
        if not renamed:
            continue
        alias, scope = subquery.alias_or_name, subquery.find_ancestor(exp.Select)
        subquery.replace(subquery.this.args["from_"].this)
        for column in (scope or expression).find_all(exp.Column):
            if column.table == alias and column.name in renamed:
                column.set("this", exp.to_identifier(renamed[column.name], quoted=True))
    return expression


def _wrapped_names(subquery: exp.Subquery) -> dict[str, str] | None:
    """``{"x.c": "c"}`` for a wrapper ``(SELECT x.c AS "x.c", x.d AS d FROM <input> AS x) AS x`` that renames at
    least one column; None for any other sub-query."""
    body, alias = subquery.this, subquery.alias_or_name
    if not isinstance(body, exp.Select) or not alias or set(k for k, v in body.args.items() if v) - {
            "expressions", "from_"}:
        return None
    inner = body.args["from_"].this
    if not isinstance(inner, exp.Table | exp.Subquery) or inner.alias_or_name != alias:
        return None
    renamed = {}
    for projection in body.expressions:
        column = projection.this if isinstance(projection, exp.Alias) else None
        if not isinstance(column, exp.Column) or column.table != alias or projection.alias not in (
                column.name, f"{alias}.{column.name}"):
            return None
        if projection.alias != column.name:
            renamed[projection.alias] = column.name
    return renamed or None

