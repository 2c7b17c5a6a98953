"""Random scalar expressions, conditions and aggregate calls of a given kind, as PostgreSQL text.

Kinds: int, dec, float, text, date, ts, tstz, bool. A scope is a list of ``Rel`` (the relations a query block
reads), whose columns have kinds. Case, collation, NULL and typing traps are favoured: mixed-case and
non-ASCII text, LIKE/ILIKE and regular expressions, integer division, casts of decimals to integers, byte vs
character lengths, NULL in NOT IN lists, two set tests of one expression under AND or OR (``set_pair``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

TEXT_LITERALS = ["abc", "ABC", "Åsa", "émile", "Émile", "", "two words", " lead", "trail ", "trail", "x", "zed",
                 "ß", "b", "Z", "a%b", "STRASSE"]
LIKE_PATTERNS = ["a%", "A%", "%b%", "_b%", "%e", "é%", "É%", "% %", "%", "a\\%b", "t%", "%LE", "%ß%", "_"]
REGEXES = ["^a", "^[A-Z]", "é", "É", "s$", "^.{3}$", " "]
LITERALS = {
    "int": ["0", "1", "2", "3", "5", "10", "-1", "50", "100", "150"],
    "dec": ["0", "12.5", "1000.25", "-3.75", "50000", "0.01"],
    "float": ["0.5", "-1.5", "10.0", "0", "1e2"],
    "date": ["DATE '2021-06-01'", "DATE '2022-01-01'", "DATE '2023-03-15'"],
    "ts": ["TIMESTAMP '2022-01-01 00:00:00'", "TIMESTAMP '2021-07-01 12:30:00'"],
    "tstz": ["TIMESTAMP '2023-01-01 00:00:00+00:00'", "TIMESTAMP '2022-12-01 06:00:00+00:00'"],
    "bool": ["TRUE", "FALSE"],
}
NUMERIC = ("int", "dec", "float")
#: share of IN lists that ``set_pair`` joins with a second set test on the same expression
SET_PAIR_CHANCE = 0.3
#: share of SELECT blocks whose WHERE gets an OR of branches repeating a common part (``factored_or``)
FACTORED_OR_CHANCE = 0.12
#: share of queries that are ``selective_join`` queries (a join kept small by one side's filter)
SELECTIVE_JOIN_CHANCE = 0.05
SQL_TYPES = {"int": "INTEGER", "dec": "DECIMAL(12, 2)", "float": "DOUBLE PRECISION", "text": "TEXT", "date": "DATE",
             "ts": "TIMESTAMP", "tstz": "TIMESTAMP WITH TIME ZONE", "bool": "BOOLEAN"}


@dataclass
class Rel:
    """A relation in scope: a table reference (``table`` set, ``key`` its unique column), a CTE or derived
    table or VALUES list (``body`` holds the text a derived table or VALUES list is written with)."""

    alias: str
    columns: dict[str, str]
    table: str | None = None
    key: str | None = None
    body: str | None = None


def _plain(sql: str) -> bool:
    return sql.replace(".", "").replace("_", "").isalnum()


class ExpressionGenerator:
    """Expressions over a scope; subclasses set ``rng`` and ``tags`` (the shapes the current query covers)."""

    rng: random.Random
    tags: set[str]
    sets_rng: random.Random | None = None  # draws of ``set_pair`` only
    ors_rng: random.Random | None = None  # draws of ``factored_or`` only

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, items):
        return self.rng.choice(list(items))

    def tagged(self, tag: str, sql: str) -> str:
        self.tags.add(tag)
        return sql

    def literal(self, kind: str) -> str:
        if self.chance(0.03):
            return f"CAST(NULL AS {SQL_TYPES[kind]})"
        if kind == "text":
            return "'" + self.pick(TEXT_LITERALS) + "'"
        return self.pick(LITERALS[kind])

    def column(self, kind: str, scope: list[Rel]) -> str | None:
        found = [(r, c) for r in scope for c, k in r.columns.items() if k == kind]
        if not found:
            return None
        rel, col = self.pick(found)
        return f"{rel.alias}.{col}"

    def expr(self, kind: str, scope: list[Rel], depth: int = 0) -> str:
        """A scalar expression of ``kind`` over the columns of ``scope``."""
        col = self.column(kind, scope)
        if depth >= 2 or self.chance(0.45):
            return col if col is not None and self.chance(0.9) else self.literal(kind)
        sub = lambda k: self.expr(k, scope, depth + 1)  # noqa: E731
        t = self.tagged
        r = self.rng.randrange(100)
        if r < 9:
            return t("case", f"CASE WHEN {self.pred(scope, depth + 1)} THEN {sub(kind)} ELSE {sub(kind)} END")
        if r < 12 and kind != "bool":
            return t("case", f"CASE {sub('int')} WHEN 1 THEN {sub(kind)} WHEN 2 THEN {sub(kind)} "
                             f"ELSE {self.literal(kind)} END")
        if r < 17:
            return t("coalesce", f"COALESCE({sub(kind)}, {self.literal(kind)})")
        if r < 20 and kind != "bool":
            return t("nullif", f"NULLIF({sub(kind)}, {self.literal(kind)})")
        if r < 23 and kind not in ("bool", "tstz"):
            return t("greatest", f"{self.pick(['greatest', 'least'])}({sub(kind)}, {sub(kind)})")
        options = {
            "int": [
                lambda: f"({sub('int')} + {sub('int')})", lambda: f"({sub('int')} - {self.literal('int')})",
                lambda: f"({sub('int')} * {self.literal('int')})", lambda: f"({sub('int')} % 3)",
                lambda: f"abs({sub('int')})", lambda: f"({sub('int')} / NULLIF({sub('int')}, 0))",
                lambda: t("string_fn", f"{self.pick(['length', 'char_length', 'octet_length'])}({sub('text')})"),
                lambda: t("string_fn", f"strpos({sub('text')}, {self.literal('text')})"),
                lambda: t("date_fn", f"EXTRACT({self.pick(['YEAR', 'MONTH', 'DAY', 'DOW', 'QUARTER', 'DOY'])} "
                                     f"FROM {sub('date')})"),
                lambda: t("date_fn", f"EXTRACT({self.pick(['HOUR', 'MINUTE'])} FROM {sub(self.pick(['ts', 'tstz']))})"),
                lambda: t("cast", f"CAST({sub(self.pick(['dec', 'float', 'bool']))} AS INTEGER)"),
                lambda: t("date_arith", f"({sub('date')} - {sub('date')})"),
            ],
            "dec": [
                lambda: f"({sub('dec')} * {self.literal('int')})", lambda: f"({sub('dec')} + {sub('dec')})",
                lambda: f"abs({sub('dec')})", lambda: f"round({sub('dec')}, {self.pick([0, 1])})",
                lambda: f"({sub('dec')} / NULLIF({sub('int')}, 0))", lambda: f"trunc({sub('dec')}, 1)",
                lambda: f"floor({sub('dec')})", lambda: f"({sub('dec')} % 7)", lambda: f"(0 - {sub('dec')})",
                lambda: t("cast", f"CAST({sub(self.pick(['int', 'float']))} AS DECIMAL(10, 2))"),
            ],
            "float": [
                lambda: f"({sub('float')} * 1.5)", lambda: f"round({sub('float')}, 2)",
                lambda: f"({sub('float')} - {sub('float')})", lambda: f"({sub('float')} / NULLIF({sub('int')}, 0))",
                lambda: f"ceil({sub('float')})", lambda: f"sqrt(abs({sub('float')}))", lambda: f"power({sub('float')}, 2)",
                lambda: t("cast", f"CAST({sub(self.pick(['int', 'dec']))} AS DOUBLE PRECISION)"),
                lambda: t("date_fn", f"EXTRACT(EPOCH FROM {sub(self.pick(['ts', 'tstz']))})"),
            ],
            "text": [
                lambda: f"upper({sub('text')})", lambda: f"lower({sub('text')})", lambda: f"initcap({sub('text')})",
                lambda: f"substr({sub('text')}, 2, 3)", lambda: f"({sub('text')} || '-' || {sub('text')})",
                lambda: f"concat({sub('text')}, '/', {sub('int')})", lambda: f"trim({sub('text')})",
                lambda: f"replace({sub('text')}, 'a', 'A')", lambda: f"left({sub('text')}, 2)",
                lambda: f"lpad({sub('text')}, 6, '*')", lambda: f"reverse({sub('text')})",
                lambda: f"{self.pick(['ltrim', 'rtrim'])}({sub('text')})", lambda: f"split_part({sub('text')}, ' ', 1)",
                lambda: t("cast", f"CAST({sub(self.pick(['int', 'date', 'dec', 'bool', 'ts']))} AS TEXT)"),
            ],
            "date": [
                lambda: t("cast", f"CAST({sub(self.pick(['ts', 'tstz']))} AS DATE)"),
                lambda: t("date_fn", f"CAST(date_trunc('{self.pick(['month', 'year', 'week'])}', {sub('date')}) AS DATE)"),
                lambda: t("date_arith", f"({sub('date')} {self.pick(['+', '-'])} {self.pick([1, 7, 31, 400])})"),
            ],
            "ts": [
                lambda: t("date_fn", f"date_trunc('{self.pick(['year', 'month', 'day', 'hour', 'week'])}', {sub('ts')})"),
                lambda: t("date_fn", f"({sub('ts')} {self.pick(['+', '-'])} INTERVAL '{self.pick(['1 day', '2 hours', '1 month'])}')"),
                lambda: t("cast", f"CAST({sub(self.pick(['date', 'tstz']))} AS TIMESTAMP)"),
            ],
            "tstz": [
                lambda: t("date_fn", f"date_trunc('{self.pick(['year', 'day', 'hour'])}', {sub('tstz')})"),
                lambda: t("date_fn", f"({sub('tstz')} + INTERVAL '1 day')"),
                lambda: t("cast", f"CAST({sub('ts')} AS TIMESTAMP WITH TIME ZONE)"),
            ],
        }
        if kind in NUMERIC:
            self.tags.add("numeric_fn")
        if kind == "text":
            self.tags.add("string_fn")
        return self.pick(options[kind])() if kind in options else self.pred(scope, depth + 1)

    def pred(self, scope: list[Rel], depth: int = 0) -> str:
        """A boolean condition over ``scope``."""
        r = self.rng.randrange(100)
        if depth < 2 and r < 12:
            return f"({self.pred(scope, depth + 1)} {self.pick(['AND', 'OR'])} {self.pred(scope, depth + 1)})"
        if depth < 2 and r < 15:
            return f"NOT ({self.pred(scope, depth + 1)})"
        kinds = sorted({k for rel in scope for k in rel.columns.values()}) or ["int"]
        kind = self.pick(kinds)
        e = self.expr(kind, scope, depth + 1)
        if r < 25:
            return f"{e if _plain(e) else f'({e})'} IS {self.pick(['NULL', 'NOT NULL'])}"
        if kind == "bool":
            e = e if _plain(e) else f"({e})"
            return self.pick([e, f"{e} IS TRUE", f"{e} IS NOT FALSE", f"NOT {e}", f"{e} = {self.literal('bool')}"])
        if kind == "text" and r < 45:
            if self.chance(0.25):
                op = self.pick(["~", "~*", "!~"])
                return self.tagged("regex", f"{e} {op} '{self.pick(REGEXES)}'")
            op = self.pick(["LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"])
            self.tags.add("ilike" if "ILIKE" in op else "like")
            pattern = self.pick(LIKE_PATTERNS)
            return f"{e} {op} '{pattern}'" + (" ESCAPE '\\'" if "\\" in pattern else "")
        if r < 55:
            values = ", ".join(self.literal(kind) for _ in range(self.rng.randint(1, 4)))
            if self.chance(0.15):
                values += ", NULL"
            return self.set_pair(f"{e} {self.pick(['IN', 'NOT IN'])} ({values})", e, kind, scope)
        if r < 62 and kind != "bool":
            return f"{e} {self.pick(['BETWEEN', 'NOT BETWEEN'])} {self.literal(kind)} AND {self.literal(kind)}"
        if r < 66:
            return f"{e} IS {self.pick(['', 'NOT '])}DISTINCT FROM {self.expr(kind, scope, depth + 1)}"
        other = self.expr(kind, scope, depth + 1) if self.chance(0.3) else self.literal(kind)
        return f"{e} {self.pick(['=', '<>', '<', '<=', '>', '>='])} {other}"

    def set_pair(self, first: str, e: str, kind: str, scope: list[Rel]) -> str:
        """Sometimes (``SET_PAIR_CHANCE``) ``first``, an IN list on ``e``, with a second set test on the same
        ``e`` under AND or OR, perhaps under NOT: the shapes DataFusion 55 combines ignoring NULLs
        (apache/datafusion#24246), with lists holding NULL or a column. Drawn from ``sets_rng``, a generator of
        its own: the other draws, so the queries of a seed, stay what they were (None: never)."""
        if self.sets_rng is None or self.sets_rng.random() >= SET_PAIR_CHANCE:
            return first
        with self.drawing_from(self.sets_rng):
            pair = f"({first} {self.pick(['AND', 'OR'])} {self.set_test(e, kind, scope)})"
            pair = f"NOT {pair}" if self.chance(0.25) else pair
        return self.tagged("in_sets", pair)

    @contextmanager
    def drawing_from(self, rng: random.Random) -> Iterator[None]:
        """Every draw inside the block comes from ``rng`` (a generator of a shape's own), so adding a shape leaves
        the draws of the main generator, and the other queries of a seed, as they were."""
        main, self.rng = self.rng, rng
        try:
            yield
        finally:
            self.rng = main

    def set_test(self, e: str, kind: str, scope: list[Rel]) -> str:
        """A test of ``e`` against a set: [NOT] IN a list (of literals, NULL alone or among them, or with a column
        of the kind), = or <> a literal, or an OR of two =."""
        r = self.rng.random()
        if r < 0.6:
            items = [self.literal(kind) for _ in range(self.rng.randint(1, 3))]
            extra = self.rng.random()
            column = self.column(kind, scope)
            if extra < 0.15:
                items = ["NULL"]
            elif extra < 0.4:
                items.append("NULL")
            elif extra < 0.55 and column is not None:
                items.append(column)
            form = self.pick(["{e} IN ({items})", "NOT {e} IN ({items})", "{e} NOT IN ({items})"])
            return form.format(e=e, items=", ".join(items))
        if r < 0.85:
            return f"{e} {self.pick(['=', '<>'])} {self.literal(kind)}"
        return f"({e} = {self.literal(kind)} OR {e} = {self.literal(kind)})"

    def aggregate(self, kind: str, scope: list[Rel]) -> str:
        """An aggregate call returning ``kind`` (count for int, min/max for any kind, sum/avg for numbers)."""
        options = ["min", "max"]
        if kind == "int":
            options += ["count", "count", "count_distinct", "sum"]
        if kind in ("dec", "float"):
            options += ["sum", "avg", "sum_distinct"]
        if kind == "float":
            options += ["stddev", "var_samp", "avg"]
        if kind == "text":
            options += ["string_agg"]
        if kind == "bool":
            options += ["bool_and", "bool_or"]
        fn = self.pick(options)
        if fn == "count":
            call = "count(*)" if self.chance(0.5) else f"count({self.expr(self.pick((*NUMERIC, 'text')), scope, 1)})"
        elif fn == "count_distinct":
            self.tags.add("count_distinct")
            call = f"count(DISTINCT {self.expr(self.pick(['int', 'text', 'date']), scope, 1)})"
        elif fn == "sum_distinct":
            self.tags.add("count_distinct")
            call = f"{self.pick(['sum', 'avg'])}(DISTINCT {self.expr(kind, scope, 1)})"
        elif fn in ("bool_and", "bool_or"):
            call = f"{fn}({self.pred(scope, 1)})"
        elif fn == "string_agg":
            self.tags.add("string_agg")
            e = self.expr("text", scope, 1)
            call = f"string_agg({e}, ',' ORDER BY {e})"
        else:
            call = f"{fn}({self.expr(kind, scope, 1)})"
        if self.chance(0.15):
            self.tags.add("agg_filter")
            call += f" FILTER (WHERE {self.pred(scope, 1)})"
        return call
