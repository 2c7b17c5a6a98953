"""Join inputs whose columns share a name, renamed apart in every SQL text DataFusion runs.

DataFusion 55's physical filter pushdown finds a filter's columns in a join's inputs by name: when both inputs
have a column ``amt``, a filter on one is pushed to the other (apache/datafusion#25296, #25244, fixed after 55).
Parent filters above an outer join, join dynamic filters and TopK dynamic filters all travel that way, and the
rows come out wrong: ``a RIGHT JOIN b ON b.s = a.s WHERE a.amt IS NULL AND b.amt > 1`` returns no row where ten
are right (the ``a.amt IS NULL`` is applied to ``b.amt`` below the join; with or without the join's inputs
swapped; fuzz seeds 577215 #61 and 3141592, ``tests/test_join_names.py``). With each shared name renamed apart
(the input wrapped as ``(SELECT a.amt AS "a.amt", .. FROM a) AS a``) every lookup finds its own column.

``distinct_join_names`` renames, in each SELECT with an outer join (where filters stay above a join: DataFusion
pushes those of inner joins below them itself), only the names that two of its inputs both read; a SELECT it
cannot read whole is left as written (see there).
"""

from __future__ import annotations

from sqlglot import exp


def distinct_join_names(expression: exp.Expression) -> exp.Expression:
    """``expression`` with every column name that two inputs of one SELECT's outer joins read renamed apart: each
    such input wrapped in ``(SELECT x.c AS "x.c", x.d AS d .. FROM <input> AS x) AS x`` and its columns read as
    ``x."x.c"``; a bare column output keeps its name (``x."x.c" AS c``). Left as written: a SELECT with a star,
    USING or NATURAL joins, an input that is not a table or an aliased sub-query, an unqualified column, an
    unaliased computed output reading a renamed column (its name would change), or an alias used twice in the
    statement. Changes ``expression`` in place (the generator's copy) and returns it.

        >>> import sqlglot
        >>> sql = distinct_join_names(sqlglot.parse_one("SELECT b.v FROM a LEFT JOIN b ON b.k = a.k")).sql()
        >>> sql[:sql.index(" LEFT JOIN")]
        'SELECT b.v FROM (SELECT "a"."k" AS "a.k" FROM a) AS "a"'
        >>> sql[sql.index(" LEFT JOIN"):]
        ' LEFT JOIN (SELECT "b"."k" AS "b.k", "b"."v" AS "v" FROM b) AS "b" ON b."b.k" = a."a.k"'
    """
    aliases = [r.alias_or_name for r in expression.find_all(exp.Table, exp.Subquery) if r.alias_or_name]
    repeated = {a for a in aliases if aliases.count(a) > 1}
    for select in list(expression.find_all(exp.Select)):
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
    from_ = select.args.get("from_") or select.args.get("from")
    joins = select.args.get("joins") or []
    if from_ is None or not any(j.side in ("LEFT", "RIGHT", "FULL") for j in joins) or any(
            j.args.get("using") or j.method for j in joins):
        return None  # inner joins only: their filters are below them (the Ray join stage reads them as written)
    relations: dict[str, exp.Expression] = {}
    for relation in [from_.this] + [j.this for j in joins]:
        ok = (isinstance(relation, exp.Table) and not relation.args.get("joins")) or (
            isinstance(relation, exp.Subquery) and relation.alias)
        if not ok or not relation.alias_or_name or relation.alias_or_name in relations:
            return None
        relations[relation.alias_or_name] = relation
    return relations


def _read_columns(select: exp.Select, relations: dict[str, exp.Expression]) -> dict[str, list[exp.Column]] | None:
    """The columns ``select`` (and sub-queries inside it, outside its inputs) reads of each input; None when a
    star or an unqualified column of its own scope makes that unknown."""
    if any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
           for p in select.expressions):
        return None
    inputs = {id(node) for relation in relations.values() for node in relation.walk()}
    read: dict[str, list[exp.Column]] = {alias: [] for alias in relations}
    for column in select.find_all(exp.Column):
        if id(column) in inputs:
            continue
        if isinstance(column.this, exp.Star):
            return None
        if column.table in read:
            read[column.table].append(column)
        elif not column.table and _scope_of(column) is select:
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
