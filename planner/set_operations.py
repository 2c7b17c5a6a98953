"""``INTERSECT ALL`` and ``EXCEPT ALL`` written with numbered duplicates, which every engine answers as SQL does.

DataFusion 55 answers both wrong: ``INTERSECT ALL`` keeps every duplicate of the left input that the right input
holds once (a semi join: ``[1, 1, 1] INTERSECT ALL [1]`` gives three rows, SQL one), and ``EXCEPT ALL`` drops
every duplicate the right input holds once (an anti join: ``[1, 1, 1] EXCEPT ALL [1]`` gives none, SQL two). A
sweep of everyday SQL against PostgreSQL found it (140 rows where 89 are right, on every placement); the
differential fuzzer could not, its reference being DataFusion.

SQL's bag semantics are the set semantics of rows numbered within their duplicates: the k-th copy of a row is
in ``A INTERSECT ALL B`` when both hold k copies or more, and in ``A EXCEPT ALL B`` when A holds k and B fewer. So

    A INTERSECT ALL B
    ->  SELECT s.x, s.y FROM (SELECT q.x, q.y, ROW_NUMBER() OVER (PARTITION BY q.x, q.y) AS __copy FROM (A) AS q
                              INTERSECT
                              SELECT r.u, r.v, ROW_NUMBER() OVER (PARTITION BY r.u, r.v) FROM (B) AS r) AS s

(PARTITION BY and the set operation both take NULLs as equal, as SQL's set operations do). Written on the
qualified query, before federation: PostgreSQL, MariaDB and SQLite run the rewritten form as well, so a set
operation runs whole in one of them or across sources alike.
"""

from __future__ import annotations

from sqlglot import exp

#: the name of the duplicate number each branch adds
COPY = "__copy"


def _names(branch: exp.Expression) -> list[str] | None:
    """The output names of a qualified branch, or None when one is missing or repeated (not rewritten)."""
    names = list(branch.named_selects) if isinstance(branch, exp.Query) else []
    if not names or any(not n or n == "*" for n in names) or len(set(names)) != len(names):
        return None
    return names


def _unparenthesized(branch: exp.Expression) -> exp.Expression:
    while isinstance(branch, exp.Subquery) and not branch.alias and not branch.args.get("limit"):
        branch = branch.this
    return branch


def _numbered(branch: exp.Expression, names: list[str], alias: str) -> exp.Select:
    """``SELECT <alias>.n.., ROW_NUMBER() OVER (PARTITION BY <alias>.n..) AS __copy FROM (branch) AS <alias>``."""
    columns = [exp.column(n, table=alias, quoted=True) for n in names]
    number = exp.Window(this=exp.RowNumber(), partition_by=[c.copy() for c in columns])
    derived = exp.Subquery(this=branch, alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    return exp.Select(expressions=[*columns, exp.alias_(number, COPY, quoted=True)]).from_(derived)


def count_duplicates_in_set_operations(ast: exp.Expression) -> exp.Expression:
    """``ast`` with each ``INTERSECT ALL`` and ``EXCEPT ALL`` written as the set operation of its branches' rows
    numbered within their duplicates (see the module); returns the new root (the query may be one). Branches
    whose outputs are not uniquely named are left as written. The set operation's ORDER BY, LIMIT and OFFSET
    move to the SELECT that reads it, whose outputs have the same names and positions."""
    for operation in reversed(list(ast.find_all(exp.Intersect, exp.Except))):
        if operation.args.get("distinct") is not False:
            continue
        left, right = _unparenthesized(operation.this), _unparenthesized(operation.expression)
        left_names, right_names = _names(left), _names(right)
        if left_names is None or right_names is None or len(left_names) != len(right_names):
            continue
        counted = operation.__class__(this=_numbered(left.copy(), left_names, "__left"),
                                      expression=_numbered(right.copy(), right_names, "__right"), distinct=True)
        derived = exp.Subquery(this=counted, alias=exp.TableAlias(this=exp.to_identifier("__counted", quoted=True)))
        select = exp.Select(expressions=[exp.column(n, table="__counted", quoted=True) for n in left_names])
        select = select.from_(derived)
        for clause in ("order", "limit", "offset", "with", "with_"):
            if operation.args.get(clause) is not None:
                select.set(clause, operation.args[clause])
        if operation is ast:
            ast = select
        else:
            operation.replace(select)
    return ast
