"""Pure sqlglot helpers of the federation passes: conjuncts, join structure, rewrites in place.

Nothing here knows the catalog or the federation state; every function takes and returns sqlglot nodes.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope
from sqlglot.optimizer.simplify import simplify

from planner.pushdown import output_projection

#: join kinds that commute: an inner join (``JOIN``, ``INNER JOIN``) or a cross join (``,``, ``CROSS JOIN``)
_INNER_KINDS = ("", "INNER", "CROSS")


def inner_joins_only(select: exp.Select) -> bool:
    """Whether every join of ``select`` is an inner or cross join (outer, semi and anti joins keep their order;
    only inner joins commute).

        >>> import sqlglot
        >>> inner_joins_only(sqlglot.parse_one("SELECT * FROM a JOIN b ON a.k = b.k, c"))
        True
        >>> inner_joins_only(sqlglot.parse_one("SELECT * FROM a LEFT JOIN b ON a.k = b.k"))
        False
    """
    return not any(j.side or (j.kind or "").upper() not in _INNER_KINDS for j in select.args.get("joins") or [])


def conjuncts(container: exp.Expression | None) -> list[exp.Expression]:
    """The AND-ed conditions of a WHERE, HAVING or JOIN ... ON (``[]`` when it has none), an AND in parentheses
    flattened too: ``a AND (b AND c)`` is three conjuncts. (Kept whole, ``(b AND c)`` was moved into a join group
    once its parentheses had gone from the tree, and stayed in the residual: fuzz seed 1212121.)

        >>> import sqlglot
        >>> where = sqlglot.parse_one("SELECT 1 FROM t WHERE a = 1 AND (b = 2 AND (c = 3 OR d))").args["where"]
        >>> [c.sql() for c in conjuncts(where)]
        ['a = 1', 'b = 2', 'c = 3 OR d']
    """
    if container is None:
        return []
    condition = container.args.get("on") if isinstance(container, exp.Join) else container.this
    if condition is None:
        return []
    return _and_operands(condition.unnest()) if isinstance(condition.unnest(), exp.And) else [condition]


def _and_operands(node: exp.And) -> list[exp.Expression]:
    """The operands of ``node`` without their parentheses (as ``flatten`` gives them), nested ANDs flattened."""
    operands = []
    for operand in node.flatten():
        operands.extend(_and_operands(operand) if isinstance(operand, exp.And) else [operand])
    return operands


def condition_containers(select: exp.Select) -> list[exp.Expression]:
    """The WHERE (if any) and every join of ``select``: the places an inner-join condition may be written."""
    where = select.args.get("where")
    return [*([where] if where is not None else []), *(select.args.get("joins") or [])]


def join_structure(select: exp.Select) -> tuple[set[str], list[tuple[exp.Expression, set[str]]]]:
    """(null-supplying aliases, [(condition container, aliases a conjunct may be pushed into)])."""
    from_expr = select.args.get("from") or select.args.get("from_")
    seen = [from_expr.this.alias_or_name] if from_expr is not None else []
    null_supplying: set[str] = set()
    containers: list[tuple[exp.Expression, set[str]]] = []
    inner_ons = []
    for join in select.args.get("joins") or []:
        alias = join.this.alias_or_name
        side, kind = (join.side or "").upper(), (join.kind or "").upper()
        if kind in ("SEMI", "ANTI", "ASOF") or side == "FULL":
            null_supplying.update([*seen, alias])
        elif side == "LEFT":
            null_supplying.add(alias)
            containers.append((join, {alias}))
        elif side == "RIGHT":
            null_supplying.update(seen)
        else:
            inner_ons.append(join)
        seen.append(alias)
    preserved = {a for a in seen if a not in null_supplying}
    containers.extend((join, preserved) for join in inner_ons)
    if select.args.get("where") is not None:
        containers.append((select.args["where"], preserved))
    return null_supplying, containers


def set_condition(select: exp.Select, container: exp.Expression, kept: list[exp.Expression]) -> None:
    """Keep only ``kept`` conjuncts in a WHERE or JOIN ... ON.

    Never leaves a literal ``ON TRUE``: DataFusion pushes it into the fragments' dataset scans, which
    cannot take a literal filter. An emptied inner join becomes a CROSS JOIN (outer joins keep a
    conjunct, see ``planner.federation.filters``).
    """
    if isinstance(container, exp.Join):
        if kept:
            container.set("on", exp.and_(*kept, copy=False))
        elif container.args.get("on") is not None:
            container.set("on", None)
            container.set("kind", "CROSS")
    elif kept:
        container.set("this", exp.and_(*kept, copy=False))
    elif select.args.get("where") is container:
        select.set("where", None)


def factor_or(disjunction: exp.Or) -> list[exp.Expression]:
    """Conjuncts common to every branch of ``disjunction``, then the disjunction of what is left (dropped
    when a branch is left empty, since that branch is then true whenever the common part is).

        >>> import sqlglot
        >>> [c.sql() for c in factor_or(sqlglot.parse_one("(a = 1 AND x) OR (a = 1 AND y)"))]
        ['a = 1', 'x OR y']
    """
    branches = [list(b.flatten()) if isinstance(b, exp.And) else [b] for b in disjunction.flatten()]
    common = [c for c in branches[0] if all(any(c == d for d in branch) for branch in branches[1:])]
    if not common:
        return [disjunction]
    rests = [[c for c in branch if not any(c == d for d in common)] for branch in branches]
    if any(not rest for rest in rests):
        return [c.copy() for c in common]
    return [c.copy() for c in common] + [exp.or_(*(exp.and_(*(c.copy() for c in rest)) for rest in rests))]


def _parenthesize_order_key(ordered: exp.Ordered, outputs: dict[str, exp.Expression], distinct: bool) -> None:
    """One ORDER BY key of ``order_by_computed_outputs``."""
    simple = (exp.Column, exp.Literal, exp.Paren, exp.Func, exp.AggFunc, exp.Window)
    key = ordered.this
    if isinstance(key, exp.Column) and not key.table and key.name in outputs:
        target = outputs[key.name]
        if isinstance(target, simple):
            return
        if distinct:  # the output itself in parentheses: MySQL's emulation copies it into the CASE
            target.replace(exp.Paren(this=target.copy()))
        else:
            key.replace(exp.Paren(this=target.copy()))
    elif not isinstance(key, simple):  # an expression key: the same expression, as one operand
        key.replace(exp.Paren(this=key.copy()))


def order_by_computed_outputs(query: exp.Expression) -> None:
    """ORDER BY keys naming a computed output (``ORDER BY "_col_2"``, an ordinal's reading) become the output's
    expression in parentheses, in place. Sources rewrite ORDER BY keys (MySQL's NULL-ordering emulation writes
    ``CASE WHEN <key> IS NULL``, and reads ``NOT (x IN (1)) IS NULL`` as ``NOT (... IS NULL)``): in
    parentheses the key stays one operand whatever the dialect does with it.

        >>> import sqlglot
        >>> q = sqlglot.parse_one("SELECT a + 1 AS s FROM t ORDER BY s")
        >>> order_by_computed_outputs(q); q.sql()
        'SELECT a + 1 AS s FROM t ORDER BY (a + 1)'
    """
    for select in list(query.find_all(exp.Select)):
        order = select.args.get("order")
        if order is None:
            continue
        # SELECT DISTINCT orders by its outputs only: names stay names there
        distinct = bool(select.args.get("distinct"))
        outputs = {p.alias: p.this for p in select.expressions if isinstance(p, exp.Alias)}
        for ordered in order.expressions:
            _parenthesize_order_key(ordered, outputs, distinct)


def distinct_output_names(ast: exp.Expression) -> list[str] | None:
    """Give the residual's top-level outputs that share a name distinct aliases (``id``, ``id_2``): DataFusion
    refuses two aliased projections of one name (a star over a join pushed as one fragment reads
    ``"__g0"."c.id" AS "id", "__g0"."t.id" AS "id"``). Returns the names the outputs must carry in the end,
    or None when they were distinct already. In a set operation every branch is made distinct (an INTERSECT of
    ``a1.dt AS dt, a2.dt AS dt`` is "ambiguous" to DataFusion); the first branch names the result."""
    if isinstance(ast, exp.SetOperation):
        branches = _set_operation_branches(ast)
        renamed = [distinct_output_names(branch) for branch in branches]
        return renamed[0] if any(r is not None for r in renamed) else None
    if not isinstance(ast, exp.Select):
        return None
    names = [p.alias_or_name for p in ast.expressions]
    if len(set(names)) == len(names):
        return None
    taken, seen = set(names), set()
    for projection in ast.expressions:
        name = projection.alias_or_name
        if name in seen:
            suffix = 2
            while f"{name}_{suffix}" in taken:
                suffix += 1
            taken.add(f"{name}_{suffix}")
            inner = projection.this if isinstance(projection, exp.Alias) else projection
            projection.replace(exp.alias_(inner.copy(), f"{name}_{suffix}", quoted=True))
        seen.add(name)
    return names


def _set_operation_branches(node: exp.Expression) -> list[exp.Expression]:
    """The SELECTs of a set operation, left to right (nested set operations flattened, parentheses unwrapped)."""
    while isinstance(node, exp.Subquery | exp.Paren):
        node = node.this
    if isinstance(node, exp.SetOperation):
        return [*_set_operation_branches(node.this), *_set_operation_branches(node.expression)]
    return [node]


def source_tables(ast: exp.Expression) -> list[exp.Table]:
    """Base-table nodes (resolved to ``source.schema.table``) of a qualified AST."""
    return [t for t in ast.find_all(exp.Table) if t.args.get("catalog") and t.args.get("db")]


def within(scope: Scope | None, ancestor: Scope) -> bool:
    """Whether ``scope`` is ``ancestor`` or nested in it."""
    while scope is not None:
        if scope is ancestor:
            return True
        scope = scope.parent
    return False


def fold_date_arithmetic(expression: exp.Expression) -> exp.Expression:
    """``DATE '1998-12-01' - INTERVAL '90' DAY`` -> ``CAST('1998-09-02' AS DATE)`` (and timestamps), in place:
    sources differ in interval syntax, a date literal is portable. Only constant date +/- interval is folded.

        >>> import sqlglot
        >>> fold_date_arithmetic(sqlglot.parse_one("d <= DATE '1998-12-01' - INTERVAL '90' DAY")).sql()
        "d <= CAST('1998-09-02' AS DATE)"
    """
    for node in list(expression.find_all(exp.Add, exp.Sub)):
        operands = [node.this, node.expression]
        if not any(isinstance(o, exp.Interval) for o in operands) or any(
                o.find(exp.Column, exp.Subquery, exp.Parameter, exp.Placeholder) for o in operands):
            continue
        folded = simplify(node.copy())
        if isinstance(folded, exp.Cast) and isinstance(folded.this, exp.Literal):
            node.replace(folded)
    return expression


def has_subquery(node: exp.Expression) -> bool:
    """Whether ``node`` holds a sub-query, an aggregate or a window (it cannot move into one table's scan)."""
    return bool(node.find(exp.Subquery, exp.Exists, exp.Select, exp.AggFunc, exp.Window))


def column_aliases(node: exp.Expression) -> set[str]:
    """The table aliases of the columns ``node`` reads."""
    return {c.table for c in node.find_all(exp.Column)}


def has_local(expression: exp.Expression, kinds: tuple) -> bool:
    """Whether ``expression`` contains ``kinds`` outside nested sub-queries."""
    for node in expression.walk(prune=lambda n: isinstance(n, exp.Subquery | exp.Select) and n is not expression):
        if isinstance(node, kinds):
            return True
    return False


def int_literal(expression: exp.Expression | None) -> int | None:
    """The value of a non-negative integer literal, else None."""
    if isinstance(expression, exp.Literal) and not expression.is_string and expression.name.isdigit():
        return int(expression.name)
    return None


def union_find(parent: dict[str, str]):
    """``find`` over a parent map (path halving); union by ``parent[find(a)] = find(b)``."""

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    return find


def order_over_columns(order: exp.Order, alias: str) -> exp.Order | None:
    """``order`` with output-alias references replaced by the table columns they name, or None when a key
    is not a column of ``alias``."""
    targets = []
    for column in order.find_all(exp.Column):  # resolved on the original nodes, which know their SELECT
        projection = output_projection(column) if not column.table else column
        if not isinstance(projection, exp.Column):
            return None
        targets.append(projection)
    order = order.copy()
    for column, target in zip(list(order.find_all(exp.Column)), targets, strict=True):
        column.replace(target.copy())
    columns = list(order.find_all(exp.Column))
    if not columns or any(c.table != alias for c in columns):
        return None
    return order


def explicit_nulls(ordered: exp.Ordered) -> exp.Ordered:
    """DataFusion puts NULLs last ascending and first descending; say so, so every dialect does the same."""
    ordered.set("nulls_first", bool(ordered.args.get("desc")) if ordered.args.get("nulls_first") is None
                else ordered.args["nulls_first"])
    return ordered


def position(node: exp.Expression) -> int:
    """Text order of a table in its SELECT: FROM first, then joins in order."""
    parent = node.parent
    if isinstance(parent, exp.From):
        return -1
    if isinstance(parent, exp.Join) and parent.parent is not None:
        joins = parent.parent.args.get("joins") or []
        return next((i for i, j in enumerate(joins) if j is parent), 10_000)
    return 10_000


def aliased_table(name: str, alias: str | None) -> exp.Table:
    """``"name" AS "alias"`` (no alias when ``alias`` is None)."""
    table = exp.Table(this=exp.to_identifier(name, quoted=True))
    if alias is not None:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    return table
