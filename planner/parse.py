"""Parse SQL text into one read-only sqlglot expression, and bind ``?`` parameters.

    >>> parse_statement("SELECT 1").sql()
    'SELECT 1'
    >>> parse_statement("DELETE FROM t")
    Traceback (most recent call last):
    connectors.errors.UnsupportedStatementError: DELETE statements are refused: the gateway is read-only ...
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from connectors.base import literal
from connectors.errors import GatewayError, InvalidRequestError, SqlSyntaxError, UnsupportedStatementError
from planner.limits import InputLimits, check_text, check_tree
from planner.metadata_statements import statement_sources

DEFAULT_LIMITS = InputLimits()

# Root expressions that are queries. Everything else (DDL, DML, SET, transactions, COPY...) is refused.
QUERY_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values, exp.Subquery)
# Nodes that write or change state wherever they appear (PostgreSQL allows DML inside WITH).
WRITING_NODES = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.TruncateTable,
    exp.Command, exp.Into, exp.Copy, exp.Set, exp.Transaction, exp.Commit, exp.Rollback, exp.Grant,
)
_EXPLAIN = re.compile(r"^\s*EXPLAIN\b(\s+ANALYZE\b)?", re.IGNORECASE)


@dataclass
class Statement:
    """A parsed query: the expression, whether it was wrapped in EXPLAIN [ANALYZE], and the query's text
    without the EXPLAIN prefix."""

    expression: exp.Expression
    explain: bool = False
    analyze: bool = False
    sql: str = ""


def parse_statement(sql: str, dialect: str = "postgres") -> exp.Expression:
    """Parse exactly one read-only query. Raises SqlSyntaxError (line, column) or UnsupportedStatementError."""
    return parse(sql, dialect).expression


def parse(sql: str, dialect: str = "postgres", limits: InputLimits = DEFAULT_LIMITS) -> Statement:
    """Parse ``sql`` (optionally prefixed by ``EXPLAIN [ANALYZE]``) into a ``Statement``.

    Raises:
        InputLimitError: the statement is over one of ``limits`` (checked on the text before parsing, then
            on the tree).
        SqlSyntaxError: the text does not parse; line and column are 1-based.
        UnsupportedStatementError: anything but one query (DDL, DML, several statements).
    """
    check_text(sql, limits)
    explain = _EXPLAIN.match(sql)
    body = sql[explain.end():] if explain else sql
    if not body.strip():
        raise SqlSyntaxError("empty statement", line=1, column=1)
    try:
        expressions = [e for e in sqlglot.parse(body, read=dialect) if e is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        line, col = first.get("line"), first.get("col")
        highlight = first.get("highlight") or ""
        if col is not None and highlight:
            col = max(1, col - len(highlight) + 1)  # sqlglot reports the token's last column
        if explain and line == 1 and col is not None:
            col += explain.end()
        description = str(first.get("description", exc)).split(". Line")[0]
        description = re.sub(r"<Token token_type: [^,]+, text: ([^,]*),.*?>", r"'\1'", description)
        description = re.sub(
            r"Required keyword: '(\w+)' missing for <class '[\w.]+\.(\w+)'>",
            lambda m: f"incomplete {m.group(2).upper()} expression (no {m.group(1)})", description,
        )
        raise SqlSyntaxError(description, line=line, column=col) from exc
    except TokenError as exc:
        raise SqlSyntaxError(str(exc)) from exc
    if not expressions:
        raise SqlSyntaxError("empty statement", line=1, column=1)
    if len(expressions) > 1:
        raise UnsupportedStatementError("only one statement per request is accepted")
    expression = expressions[0]
    check_tree(expression, limits)
    numbered = _number_placeholders(body, dialect)
    if numbered != body:
        expression = sqlglot.parse_one(numbered, read=dialect)
    check_read_only(expression)
    return Statement(expression, explain=bool(explain), analyze=bool(explain and explain.group(1)), sql=body)


# operators whose operands may need parentheses in another dialect (precedence of IS, BETWEEN, LIKE, NOT,
# comparisons and arithmetic differs between PostgreSQL, MySQL, SQLite and DataFusion)
_OPERATORS = (
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Pow, exp.DPipe, exp.EQ, exp.NEQ, exp.GT, exp.GTE,
    exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is, exp.Like, exp.ILike, exp.SimilarTo, exp.Glob,
    exp.RegexpLike, exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseLeftShift, exp.BitwiseRightShift,
    exp.Not, exp.Neg, exp.BitwiseNot, exp.Between, exp.In,
)


def parenthesize_operands(expression: exp.Expression) -> exp.Expression:
    """Wrap every operand of an operator that is itself an operator in parentheses, in place, so that no
    dialect's precedence can regroup it when the tree is rendered for a source or the residual plan:

        >>> import sqlglot
        >>> tree = sqlglot.parse_one("SELECT 1 FROM t WHERE g BETWEEN 1.5 AND 0 IS NOT NULL AND NOT a = 1")
        >>> parenthesize_operands(tree).sql()
        'SELECT 1 FROM t WHERE (g BETWEEN 1.5 AND 0) IS NOT NULL AND NOT (a = 1)'

    (SQLite reads the unparenthesized text as ``g BETWEEN 1.5 AND (0 IS NOT NULL)``.) AND/OR chains are left
    as they are (the lowest precedence everywhere): the planner splits them into conjuncts. Returns
    ``expression``."""
    for node in list(expression.walk()):
        if not isinstance(node, _OPERATORS):
            continue
        for key in ("this", "expression", "low", "high"):
            child = node.args.get(key)
            if isinstance(child, (*_OPERATORS, exp.Connector, exp.Xor)) and not (isinstance(node, exp.Is)
                                                                                and key == "expression"):
                child.replace(exp.Paren(this=child.copy()))
    return expression


def check_read_only(expression: exp.Expression) -> None:
    """Refuse anything that is not a query, before any source is contacted."""
    if not isinstance(expression, QUERY_ROOTS):
        raise UnsupportedStatementError(
            f"{_statement_name(expression)} statements are refused: the gateway is read-only; "
            "only SELECT, WITH, VALUES, UNION/INTERSECT/EXCEPT and EXPLAIN are accepted",
            statement=_statement_name(expression),
        )
    for node in expression.walk():
        if isinstance(node, WRITING_NODES):
            raise UnsupportedStatementError(
                f"{_statement_name(node)} inside a query is refused: the gateway is read-only",
                statement=_statement_name(node),
            )


def _statement_name(expression: exp.Expression) -> str:
    if isinstance(expression, exp.Command):
        return str(expression.this).upper()
    if isinstance(expression, exp.Into):
        return "SELECT INTO"
    return expression.key.upper()


def _number_placeholders(sql: str, dialect: str) -> str:
    """Rewrite positional ``?`` placeholders as ``$1, $2, ...`` in text order (strings/comments untouched)."""
    tokens = [t for t in Dialect.get_or_raise(dialect).tokenize(sql) if t.token_type.name == "PLACEHOLDER"]
    if not tokens:
        return sql
    out, last = [], 0
    for n, token in enumerate(tokens, start=1):
        out.append(sql[last:token.start])
        out.append(f"${n}")
        last = token.end + 1
    out.append(sql[last:])
    return "".join(out)


def placeholders(expression: exp.Expression) -> list[exp.Parameter]:
    """The numbered parameters (``$n``, which positional ``?`` become at parse time) of a query."""
    return [
        p for p in expression.find_all(exp.Parameter)
        if isinstance(p.this, exp.Literal) and p.this.name.isdigit()
    ]


def check_parameter_count(expression: exp.Expression, params: Sequence[object] | None) -> int:
    """The number of parameters of a query; raises InvalidRequestError when ``params`` has another count."""
    needed = max((int(p.this.name) for p in placeholders(expression)), default=0)
    given = len(params or [])
    if given != needed:
        raise InvalidRequestError(f"the query has {needed} parameter(s) but {given} value(s) were given")
    return needed


def substitute_parameters(expression: exp.Expression, params: Sequence[object]) -> exp.Expression:
    """A copy of ``expression`` (a query or a part of one) with each ``$n`` replaced by ``params[n-1]``."""
    expression = expression.copy()
    for node in placeholders(expression):
        node.replace(literal(params[int(node.this.name) - 1]))
    return expression


def referenced_sources(sql: str, sources: Sequence[str], limits: InputLimits | None = None) -> set[str]:
    """Sources named explicitly by the query's table names (``src.schema.t``, ``src.t``), or by a SHOW/DESCRIBE
    statement (``metadata_statements.statement_sources``); case-insensitive.

    Parsing only: no catalog lookup, no source contacted. Unparsable SQL yields nothing here (the planner
    reports the syntax error).

        >>> sorted(referenced_sources("SELECT * FROM PG.public.t JOIN lake.o ON true", ["pg", "lake", "x"]))
        ['lake', 'pg']
    """
    named = statement_sources(sql, sources)  # SHOW TABLES FROM src, DESCRIBE src.schema.t
    if named is not None:
        return named
    try:
        expression = parse(sql, limits=limits or DEFAULT_LIMITS).expression
    except GatewayError:
        return set()
    by_lower = {s.lower(): s for s in sources}
    named = set()
    for table in expression.find_all(exp.Table):
        parts = [p.name for p in table.parts]
        if len(parts) >= 2 and parts[0].lower() in by_lower:
            named.add(by_lower[parts[0].lower()])
    return named
