"""A seeded random SQL query generator over the fuzz tables (group ``fz`` of ``tests/world.py``,
``tests.fuzz.data``).

Queries are written as PostgreSQL text over logical tables (``t1 AS a1``) and parsed by sqlglot; every table
reference has its own alias, and a query's placement maps each alias to a source. ``render`` gives the same
query for the gateway (placed names, PostgreSQL dialect) or for the local DataFusion reference
(``<table>_<source>`` names, the ``datafusion`` dialect; ``wrap_set_tests`` keeps DataFusion 55 from combining
IN lists ignoring NULLs). Each query records the shapes it covers.

Generated queries stay deterministic: LIMIT appears in a sub-query only under an ORDER BY of all its outputs,
order-sensitive window functions (row_number, lag, lead, first_value, ntile, ROWS frames) order by unique keys,
string_agg orders by its argument.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass, field

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres

import planner.dialects  # noqa: F401  (registers the "datafusion" sqlglot dialect)
from connectors.arrow.datafusion import plan_over_empty
from connectors.arrow.dialect import DataFusion, defect_rewrites
from planner.decimal_rounds import mark_decimal_rounds
from planner.dialects import NAMING_DIALECT
from planner.set_operations import count_duplicates_in_set_operations
from tests.fuzz.data import COLUMNS, SOURCES
from tests.fuzz.expressions import FACTORED_OR_CHANCE, NUMERIC, SELECTIVE_JOIN_CHANCE, ExpressionGenerator, Rel
from tests.fuzz.reference_sets import wrap_set_tests

KIND = {"int": "int", "small": "int", "dec": "dec", "float": "float", "text": "text", "date": "date", "ts": "ts",
        "tstz": "tstz", "bool": "bool"}
TABLE_COLUMNS = {t: {c: KIND[k] for c, k in cols.items()} for t, cols in COLUMNS.items()}
JOIN_KEYS = [("t1", "k2", "t2", "id"), ("t1", "k3", "t3", "id"), ("t1", "dk", "dim", "id"), ("t2", "k1", "t1", "id"),
             ("t3", "k2", "t2", "id"), ("t1", "g", "t2", "g"), ("t1", "g", "dim", "g"), ("t2", "g", "dim", "g"),
             ("t1", "s", "t2", "s"), ("t1", "s", "t3", "s"), ("t2", "s", "t3", "s"), ("t1", "dt", "t2", "dt")]
#: foreign key -> primary key: (table, its column, the table whose ``id`` it names) for top-N below joins
FOREIGN_KEYS = [("t1", "k2", "t2"), ("t1", "k3", "t3"), ("t1", "dk", "dim"), ("t2", "k1", "t1"), ("t3", "k2", "t2")]
#: columns with few distinct values (tests/world.py's ``_value``): an existence test correlated on one reads distinct
#: keys from PostgreSQL
DUPLICATE_HEAVY = ("g", "dk", "n", "c", "qty")
COLUMN_REF = re.compile(r"\ba\d+\.\w+")
VALUES = "(VALUES (1, 'abc'), (2, 'ABC'), (3, 'Åsa'), (NULL, 'x'), (5, NULL))"


@dataclass
class Block:
    """A generated SELECT (or set operation): its text and its outputs as (alias or None, kind)."""

    sql: str
    outputs: list[tuple[str | None, str]]
    order_exprs: list[str] = field(default_factory=list)  # extra expressions a top-level ORDER BY may use


@dataclass
class FuzzQuery:
    """A query over logical tables, its placement (table alias -> source) and its shape tags."""

    ast: exp.Expression
    placement: dict[str, str]
    shapes: frozenset[str] = frozenset()
    number: int = 0

    def placed_sql(self) -> str:
        """The query with its placement baked into the names (``pq.t1 AS a1``): the regression-file form."""
        return render(self.ast, self.placement, {s: s for s in SOURCES})


class ReferenceDataFusion(DataFusion):
    """The gateway's DataFusion dialect without ``connectors.arrow.dialect.gateway_rewrites`` (outer joins written
    as inner, shared join column names renamed apart), so that those rewrites are checked too (a query DataFusion
    55 answers wrong as written shows as an answer DataFusion itself gives two ways: the sort-merge session
    disagrees). The rewrites without which DataFusion 55 answers a shape wrong in every session stay
    (``connectors.arrow.dialect.defect_rewrites``; ``tests/test_not_in.py`` checks the NOT IN one)."""

    class Generator(DataFusion.Generator):
        def preprocess(self, expression: exp.Expression) -> exp.Expression:
            return defect_rewrites(Postgres.Generator.preprocess(self, expression))


def render(ast: exp.Expression, placement: dict[str, str], names: dict[str, str] | None,
           as_written: bool = False, schemas: dict[str, pa.Schema] | None = None) -> str:
    """The query with its tables placed: with ``names`` (source -> ``catalog.schema``) for the gateway in
    PostgreSQL dialect; without, for the reference (``<table>_<source>``, DataFusion dialect, set tests wrapped
    by ``wrap_set_tests``). ``as_written``: the reference's text without any wrapping, to plan only (DataFusion
    names unaliased outputs after their text, as the gateway does). The reference's dialect is
    ``ReferenceDataFusion``; with ``schemas`` (``<table>_<source>`` -> the reference's schema of it), its decimal
    ROUNDs typed as the gateway's planner types them (``planner.decimal_rounds``)."""
    tree = ast.copy()
    for table in list(tree.find_all(exp.Table)):
        if table.name not in COLUMNS or table.args.get("db"):
            continue
        source = placement.get(table.alias) or next(iter(placement.values()), "pg")
        if names is None:
            table.set("this", exp.to_identifier(f"{table.name}_{source}"))
        else:
            parts = names[source].split(".")
            table.set("db", exp.to_identifier(parts[-1]))
            if len(parts) > 1:
                table.set("catalog", exp.to_identifier(parts[0]))
    if names is not None:
        return tree.sql(dialect="postgres")
    if as_written:
        return tree.sql(dialect=NAMING_DIALECT)
    if schemas is not None:
        mark_decimal_rounds(tree, functools.partial(_reference_schema, schemas=schemas))
    return wrap_set_tests(_counted_set_operations(tree)).sql(dialect=ReferenceDataFusion)


def _counted_set_operations(tree: exp.Expression) -> exp.Expression:
    """``tree`` with INTERSECT ALL and EXCEPT ALL written as the gateway's planner writes them
    (``planner.set_operations``: DataFusion 55 answers them wrong), its branches' unnamed outputs named first
    (the planner's are, by qualification; the reference's names come from the query as written)."""
    for operation in tree.find_all(exp.Intersect, exp.Except):
        for branch in (operation.this, operation.expression) if operation.args.get("distinct") is False else ():
            for i, output in enumerate(branch.expressions if isinstance(branch, exp.Select) else []):
                if not output.alias_or_name or output.alias_or_name == "*":
                    output.replace(exp.alias_(output.copy(), f"_col_{i}"))
    return count_duplicates_in_set_operations(tree)


def _reference_schema(select: exp.Expression, schemas: dict[str, pa.Schema]) -> pa.Schema | None:
    """The schema DataFusion gives ``select`` over empty tables of the reference's schemas, or None."""
    try:
        return plan_over_empty(select.sql(dialect=NAMING_DIALECT), schemas)[1].schema()
    except Exception:
        return None


def parse_placed(sql: str) -> FuzzQuery:
    """A query in regression-file form (``pq.t1 AS a1``) back to logical tables and a placement."""
    ast = sqlglot.parse_one(sql, read="postgres")
    placement = {}
    for table in ast.find_all(exp.Table):
        if table.name in COLUMNS and table.db in SOURCES:
            placement[table.alias or table.name] = table.db
            table.set("db", None)
    return FuzzQuery(ast, placement)


def _paren(sql: str) -> str:
    """A grouping element sqlglot parses inside ROLLUP/CUBE/GROUPING SETS (a boolean condition needs parens)."""
    return sql if sql.replace(".", "").replace("_", "").isalnum() else f"({sql})"


def _is_number(sql: str) -> bool:
    return sql.lstrip("-").replace(".", "").isdigit()


class QueryGenerator(ExpressionGenerator):
    """Random queries; ``generate()`` gives the next ``FuzzQuery``. Same seed, same queries."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sets_rng = random.Random(f"sets {seed}")
        self.ors_rng = random.Random(f"ors {seed}")
        self.shapes_rng = random.Random(f"shapes {seed}")
        self.count = 0
        self.tags: set[str] = set()

    def alias(self) -> str:
        self.aliases += 1
        return f"a{self.aliases}"

    def table_rel(self) -> Rel:
        table = self.rng.choices(["t1", "t2", "t3", "dim"], [4, 3, 2, 1])[0]
        return Rel(self.alias(), TABLE_COLUMNS[table], table, "id")

    # -- sub-queries ---------------------------------------------------------------------------------------
    def key_pairs(self, inner: Rel, outer: list[Rel]) -> list[tuple[str, str, str]]:
        """Joinable (inner column, outer alias, outer column) triples, by foreign key first, else by kind."""
        pairs = [(a, o.alias, b) for (ta, a, tb, b) in JOIN_KEYS for o in outer if inner.table == ta and o.table == tb]
        pairs += [(b, o.alias, a) for (ta, a, tb, b) in JOIN_KEYS for o in outer if inner.table == tb and o.table == ta]
        return pairs or [(c, o.alias, d) for c, k in inner.columns.items() for o in outer
                         for d, k2 in o.columns.items() if k == k2 and k in ("int", "text")]

    def correlation(self, inner: Rel, outer: list[Rel]) -> str | None:
        """An equality between a column of ``inner`` and a same-kind column of ``outer``; a third of the time on
        one of ``inner``'s duplicate-heavy columns, whose fragment PostgreSQL then reads as distinct keys
        (``planner.federation.distinct_keys``)."""
        pairs = self.key_pairs(inner, outer)
        heavy = [(c, o.alias, d) for c in DUPLICATE_HEAVY if c in inner.columns for o in outer
                 for d, k in o.columns.items() if k == inner.columns[c]]
        if heavy and self.chance(0.33):
            pairs = heavy
            self.tags.add("existence_keys")
        if not pairs:
            return None
        self.tags.add("correlated")
        a, alias, b = self.pick(pairs)
        return f"{inner.alias}.{a} = {alias}.{b}"

    def subquery_pred(self, scope: list[Rel]) -> str:
        inner = self.table_rel()
        corr = self.correlation(inner, scope) if self.chance(0.5) else None
        conds = [c for c in (corr, self.pred([inner], 1) if self.chance(0.6) else None) if c]
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        r = self.rng.randrange(100)
        if r < 40:
            kind = self.pick(["int", "int", "text", "dec", "date"])
            col = self.column(kind, [inner]) or self.literal(kind)
            # DataFusion 55 answers a correlated NOT IN wrongly when the sub-query's table holds a NULL
            # anywhere (its null-aware anti join is not per correlation group): NOT IN only uncorrelated
            neg = self.chance(0.4) and corr is None
            self.tags.add("not_in" if neg else "in")
            left = self.column(kind, scope) or self.expr(kind, scope, 1)
            if self.chance(0.2):
                self.tags.add("in_agg")
                col, where = f"max({col})", where + f" GROUP BY {inner.alias}.{self.pick(inner.columns)}"
            return f"{left} {'NOT IN' if neg else 'IN'} (SELECT {col} FROM {inner.table} AS {inner.alias}{where})"
        if r < 75:
            neg = self.chance(0.4)
            self.tags.add("not_exists" if neg else "exists")
            return f"{'NOT ' if neg else ''}EXISTS (SELECT 1 FROM {inner.table} AS {inner.alias}{where})"
        self.tags.add("scalar_sub")
        kind = self.pick(NUMERIC)
        return (f"{self.expr(kind, scope, 1)} {self.pick(['>', '<', '=', '>='])} "
                f"(SELECT {self.aggregate(kind, [inner])} FROM {inner.table} AS {inner.alias}{where})")

    # -- blocks --------------------------------------------------------------------------------------------
    def from_item(self, pool: list[Rel], p_pool: float) -> tuple[str, Rel]:
        """A table reference, a VALUES list, or (from ``pool``) a CTE or derived table under a new alias."""
        if pool and self.chance(p_pool):
            src = self.pick(pool)
            rel = Rel(self.alias(), src.columns)
            self.pool_uses += 1
            return (f"({src.body}) AS {rel.alias}" if src.body else f"{src.alias} AS {rel.alias}"), rel
        if self.chance(0.04):
            self.tags.add("values")
            rel = Rel(self.alias(), {"id": "int", "s": "text"})
            return f"{VALUES} AS {rel.alias}(id, s)", rel
        rel = self.table_rel()
        return f"{rel.table} AS {rel.alias}", rel

    def from_clause(self, depth: int, pool: list[Rel]) -> tuple[str, list[Rel]]:
        text, first = self.from_item(pool, 0.7)
        rels = [first]
        joined: set[tuple[str, str]] = set()  # (alias, column) pairs already equated by an ON condition
        for _ in range(self.rng.choices([0, 1, 2], [5, 4, 1] if depth == 0 else [7, 3, 0])[0]):
            item, new = self.from_item(pool, 0.3)
            kind = self.rng.choices(["inner", "left", "right", "full", "cross", "comma"], [35, 25, 12, 12, 8, 8])[0]
            small = new.table == "dim" or (len(rels) == 1 and rels[0].table in ("t3", "dim"))
            pairs = self.key_pairs(new, rels)
            if kind in ("cross", "comma") and not small:
                kind = "inner"
            if not pairs and not small:  # no key to join on: a cross product would be too large
                continue
            self.tags.add(kind if kind != "comma" else "inner")
            chained = [p for p in pairs if (p[1], p[2]) in joined]
            if chained and kind == "inner" and self.chance(0.6):
                # a third table on a column already joined: a.x = b.y AND c.z = b.y imply a.x = c.z (carried keys)
                pairs = chained
                self.tags.add("carried_keys")
            a, alias, b = self.pick(pairs) if pairs else (None, None, None)
            if a:
                joined |= {(alias, b), (new.alias, a)}
            on = f"{new.alias}.{a} = {alias}.{b}" if a else "TRUE"
            if kind in ("cross", "comma"):
                text += f"{' CROSS JOIN' if kind == 'cross' else ','} {item}"
                if kind == "comma":
                    self.comma_conds.append(on)
                rels.append(new)
                continue
            join = {"inner": "JOIN", "left": "LEFT JOIN", "right": "RIGHT JOIN", "full": "FULL JOIN"}[kind]
            if a and a == b and len(rels) == 1 and self.chance(0.25):
                text += f" {join} {item} USING ({a})"
                self.tags.add("using")
            else:
                if self.chance(0.3):
                    on += f" AND {self.pred([self.pick([*rels, new])], 1)}"
                text += f" {join} {item} ON {on}"
            rels.append(new)
        return text, rels

    def block(self, depth: int, pool: list[Rel] | None = None, kinds: list[str] | None = None,
              named: bool = False) -> Block:
        """One SELECT; ``kinds`` forces the output kinds, ``named`` gives outputs unique plain aliases."""
        self.comma_conds: list[str] = []
        from_sql, rels = self.from_clause(depth, pool or [])
        conds = list(self.comma_conds)
        for _ in range(self.rng.choices([0, 1, 2, 3], [3, 4, 2, 1])[0]):
            conds.append(self.subquery_pred(rels) if depth < 2 and self.chance(0.25) else self.pred(rels))
        conds = self.factored_or(conds, rels)
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        keys = [f"{r.alias}.{r.key}" for r in rels if r.key]
        if self.chance(0.4):
            (select, rest), outputs, order_exprs = self.aggregate_select(rels, kinds, named)
        else:
            (select, rest), outputs, order_exprs = self.plain_select(rels, kinds, named, keys, depth)
        return Block(f"{select} FROM {from_sql}{where}{rest}", outputs, order_exprs)

    def factored_or(self, conds: list[str], rels: list[Rel]) -> list[str]:
        """Sometimes (``FACTORED_OR_CHANCE``) ``conds`` with one more: an OR of two or three branches that each
        repeat a common part (``planner.federation.factor_ors`` takes it out: TPC-H Q19's shape), the common
        part a comma join's condition taken out of ``conds`` (the join then exists only inside the OR) or a key
        equality of two tables, and/or conditions on one table, in any order within a branch. Drawn from
        ``ors_rng`` (``drawing_from``)."""
        if self.ors_rng is None or self.ors_rng.random() >= FACTORED_OR_CHANCE:
            return conds
        with self.drawing_from(self.ors_rng):
            self.tags.add("factored_or")
            conds, common = list(conds), []
            joins = [c for c in conds if c in self.comma_conds and c != "TRUE"]
            pairs = self.key_pairs(rels[-1], rels[:-1]) if len(rels) > 1 else []
            if joins and self.chance(0.7):
                common.append(self.pick(joins))
                conds.remove(common[0])
                self.tags.add("factored_or_join")
            elif pairs and self.chance(0.5):
                a, alias, b = self.pick(pairs)
                common.append(f"{rels[-1].alias}.{a} = {alias}.{b}")
                self.tags.add("factored_or_join")
            if not common or self.chance(0.5):
                common.append(self.pred([self.pick(rels)], 1))
            branches = []
            for _ in range(self.rng.choice([2, 2, 3])):
                own = [self.pred([self.pick(rels)], 1) for _ in range(self.rng.choice([1, 1, 2]))]
                parts = common + own
                self.rng.shuffle(parts)
                branches.append("(" + " AND ".join(parts) + ")")
            return [*conds, "(" + " OR ".join(branches) + ")"]

    def output_alias(self, i: int, named: bool, used: list[str]) -> str | None:
        if named:
            return f"v{i + 1}"
        r = self.rng.randrange(100)
        if r < 15:
            self.tags.add("unaliased")
            return None
        if r < 17 and used:
            self.tags.add("repeated_alias")
            return self.pick(used)
        if r < 24:
            self.tags.add("quoted_alias")
            return f'"{self.pick(["Total", "My Col", "x", "ÅsaCol"])}{i}"'
        return f"c{i + 1}"

    def plain_select(self, rels, kinds, named, keys, depth):
        kinds = kinds or [self.pick(["int", "int", "dec", "float", "text", "text", "date", "ts", "tstz", "bool"])
                          for _ in range(self.rng.randint(1, 4))]
        items, outputs, used = [], [], []
        for i, kind in enumerate(kinds):
            r = self.rng.random()
            if depth < 2 and r < 0.08 and kind == "int":
                inner = self.table_rel()
                corr = self.correlation(inner, rels)
                self.tags.add("scalar_sub")
                e = f"(SELECT count(*) FROM {inner.table} AS {inner.alias}{' WHERE ' + corr if corr else ''})"
            elif r < 0.22 and kind in ("int", "dec", "float", "text"):
                e = self.window(kind, rels, keys)
            else:
                e = self.expr(kind, rels)
            alias = self.output_alias(i, named, used)
            items.append(e + (f" AS {alias}" if alias else ""))
            used += [alias] if alias else []
            outputs.append((alias, kind))
        distinct = "DISTINCT " if self.chance(0.1) else ""
        self.tags.update(["distinct"] if distinct else [])
        order_exprs = [] if distinct else [self.expr(self.pick(["int", "text", "dec", "date"]), rels, 1)]
        return (f"SELECT {distinct}{', '.join(items)}", ""), outputs, [e for e in order_exprs if not _is_number(e)]

    def window(self, kind: str, rels: list[Rel], keys: list[str], aggs: list[str] | None = None) -> str:
        """A window function returning ``kind``; ``aggs`` (aggregate mode) are the expressions it may use."""
        self.tags.add("window_agg" if aggs else "window")
        part = ""
        if self.chance(0.6) and (keys or not aggs):
            part = f"PARTITION BY {self.pick(keys) if aggs else self.expr(self.pick(['int', 'text', 'date']), rels, 1)}"
        value = (lambda k: self.pick(aggs)) if aggs else (lambda k: self.expr(k, rels, 1))
        total = f"ORDER BY {', '.join(keys)}"
        if kind == "int":
            fn = self.pick(["row_number", "rank", "dense_rank", "count", "ntile", "lag", "lead"])
            if fn in ("row_number", "lag", "lead", "ntile") and keys:
                arg = {"row_number": "", "ntile": "3"}.get(fn, value("int"))
                return f"{fn}({arg}) OVER ({part} {total})"
            if fn == "count":
                return f"count(*) OVER ({part})"
            fn = fn if fn in ("rank", "dense_rank") else "rank"
            return f"{fn}() OVER ({part} ORDER BY {value(self.pick(['int', 'dec']))} {self.pick(['', 'DESC'])})"
        if kind == "float" and self.chance(0.2):
            return f"{self.pick(['percent_rank', 'cume_dist'])}() OVER ({part} ORDER BY {value('int')})"
        if keys and self.chance(0.3):
            self.tags.add("window_frame")
            fn = self.pick(["sum", "min", "max"] if kind != "text" else ["min", "max"])
            frame = self.pick(["ROWS BETWEEN 1 PRECEDING AND CURRENT ROW", "ROWS BETWEEN CURRENT ROW AND 2 FOLLOWING",
                               "ROWS UNBOUNDED PRECEDING"])
            if self.chance(0.3):
                return f"first_value({value(kind)}) OVER ({part} {total})"
            return f"{fn}({value(kind)}) OVER ({part} {total} {frame})"
        order = f" ORDER BY {value(self.pick(['int', 'date', 'dec']))}" if self.chance(0.5) else ""
        if kind == "text":
            return f"max({value('text')}) OVER ({part}{order})"
        fns = ["sum", "min", "max"] + (["avg"] if kind != "int" else [])
        return f"{self.pick(fns)}({value(kind)}) OVER ({part}{order})"

    def aggregate_select(self, rels, kinds, named):
        forced = bool(kinds)
        if kinds:
            roles = [("key" if self.chance(0.4) else "agg") for _ in kinds]
        else:
            n_keys = self.rng.choices([0, 1, 2, 3], [2, 5, 3, 1])[0]
            roles = ["key"] * n_keys + ["agg"] * self.rng.randint(0 if n_keys else 1, 3)
            self.rng.shuffle(roles)
            kinds = [self.pick(["int", "text", "date", "bool", "ts"]) if r == "key" else
                     self.pick(["int", "int", "dec", "float", "text", "date"]) for r in roles]
        items, outputs, used, group, aggs, key_exprs = [], [], [], [], [], []
        for i, (role, kind) in enumerate(zip(roles, kinds, strict=True)):
            e = self.expr(kind, rels, 1 if self.chance(0.6) else 0) if role == "key" else self.aggregate(kind, rels)
            alias = self.output_alias(i, named, used)
            if role == "key":
                if not COLUMN_REF.search(e):  # PostgreSQL refuses constant keys; DataFusion mis-sorts them
                    e = self.column(kind, rels) or next(f"{r.alias}.{c}" for r in rels for c in r.columns)
                key_exprs.append(e)
                form = self.pick(["name", "ordinal", "alias"] if alias and not alias.startswith('"') else
                                 ["name", "ordinal"])
                if _paren(e) == e:
                    self.tags.add("group_name" if form != "ordinal" else "group_ordinal")
                    group.append(str(i + 1) if form == "ordinal" else e)
                else:
                    self.tags.add({"name": "group_expr", "ordinal": "group_ordinal", "alias": "group_alias"}[form])
                    group.append({"name": e, "ordinal": str(i + 1), "alias": alias}[form])
            else:
                aggs.append(e)
            items.append(e + (f" AS {alias}" if alias else ""))
            used += [alias] if alias else []
            outputs.append((alias, kind))
        grouping = self.rng.randrange(10) if key_exprs else 9
        if grouping == 0:
            self.tags.add("rollup")
            group_sql = f" GROUP BY ROLLUP ({', '.join(map(_paren, key_exprs))})"
        elif grouping == 1 and len(key_exprs) <= 2:
            self.tags.add("cube")
            group_sql = f" GROUP BY CUBE ({', '.join(map(_paren, key_exprs))})"
        elif grouping == 2:
            self.tags.add("grouping_sets")
            sets = [f"({_paren(k)})" for k in key_exprs] + ["()"]
            group_sql = f" GROUP BY GROUPING SETS ({', '.join(sets)})"
        else:
            group_sql = f" GROUP BY {', '.join(group)}" if group else ""
        if aggs and self.chance(0.2) and not named and not forced:
            kind = self.pick(["int", "dec", "float"])
            safe_keys = key_exprs if grouping >= 3 else []
            items.append(self.window(kind, rels, safe_keys, aggs=[self.aggregate(kind, rels)]) + f" AS w{len(items)}")
            outputs.append((f"w{len(items) - 1}", kind))
        having = ""
        if self.chance(0.25):
            self.tags.add("having")
            kind = self.pick(["int", "dec", "float"])
            having = f" HAVING {self.aggregate(kind, rels)} {self.pick(['>', '<', '>=', '<>'])} {self.literal(kind)}"
            if rels[0].table and self.chance(0.2):
                inner = self.table_rel()
                self.tags.add("having_sub")
                having += f" OR count(*) > (SELECT count(*) FROM {inner.table} AS {inner.alias} WHERE " \
                          f"{inner.alias}.id < {self.pick([3, 8])})"
        return (f"SELECT {', '.join(items)}", group_sql + having), outputs, [self.aggregate("int", rels)]

    # -- whole queries -------------------------------------------------------------------------------------
    def order_by(self, block: Block, exprs_ok: bool) -> str:
        """ORDER BY chosen keys, then every output ordinal not yet used: the order is total."""
        keys, used = [], set()
        aliases = [a for a, _ in block.outputs]
        for _ in range(self.rng.randint(1, 2)):
            i = self.rng.randrange(len(block.outputs))
            alias = block.outputs[i][0]
            form = self.rng.randrange(3)
            if form == 1 and alias and aliases.count(alias) == 1:
                self.tags.add("order_alias")
                key = alias
                used.add(i)
            elif form == 2 and exprs_ok and block.order_exprs:
                self.tags.add("order_expr")
                key = self.pick(block.order_exprs)
            else:
                self.tags.add("order_ordinal")
                key = str(i + 1)
                used.add(i)
            keys.append(self.directed(key))
        keys += [str(i + 1) for i in range(len(block.outputs)) if i not in used]
        return " ORDER BY " + ", ".join(keys)

    def directed(self, key: str) -> str:
        """A sort key, sometimes DESC, sometimes with explicit NULLS FIRST/LAST (tagged)."""
        if self.chance(0.4):
            key += self.tagged("desc", " DESC")
        if self.chance(0.3):
            nulls = self.pick(["FIRST", "LAST"])
            key += self.tagged(f"nulls_{nulls.lower()}", f" NULLS {nulls}")
        return key

    def limit(self) -> str:
        if self.chance(0.1):
            return self.tagged("offset", f" OFFSET {self.pick([1, 5])}")
        text = self.tagged("limit", f" LIMIT {self.pick([0, 1, 3, 10, 25])}")
        if self.chance(0.3):
            text += self.tagged("offset", f" OFFSET {self.pick([0, 2, 5])}")
        return text

    def derived(self, depth: int) -> tuple[str, dict[str, str]]:
        """A named block as a CTE body or derived table (sometimes with ORDER BY all + LIMIT)."""
        block = self.block(depth, named=True)
        sql = block.sql
        if self.chance(0.2):
            self.tags.add("sub_limit")
            sql += " ORDER BY " + ", ".join(str(i + 1) for i in range(len(block.outputs))) + self.limit()
        return sql, {a: k for a, k in block.outputs}

    def set_operation(self) -> Block:
        left = self.block(1)
        kinds = [k for _, k in left.outputs]
        sql = left.sql
        for n in range(self.rng.choice([1, 1, 1, 2])):
            op = self.pick(["UNION", "INTERSECT", "EXCEPT"]) + self.pick(["", " ALL"])
            self.tags.add(op.lower().replace(" ", "_"))
            sql = f"{'(' + sql + ')' if n else sql} {op} {self.block(1, kinds=kinds).sql}"
        return Block(sql, left.outputs)

    def generate(self) -> FuzzQuery:
        """The next random query with a random placement."""
        self.count += 1
        for _ in range(20):
            try:
                return self._generate()
            except sqlglot.errors.ParseError:  # a rare text sqlglot cannot parse: draw another
                continue
        raise RuntimeError("the generator keeps writing SQL sqlglot cannot parse")

    def _generate(self) -> FuzzQuery:
        self.tags = set()
        self.aliases = self.pool_uses = 0
        if self.shapes_rng.random() < SELECTIVE_JOIN_CHANCE:
            return self._selective_join_query()
        r = self.rng.randrange(100)
        if r >= 93:
            return self._top_n_join_query()
        if r >= 89:
            return self._join_order_query()
        with_sql, pool = "", []
        if r < 20:
            ctes = []
            for i in range(self.rng.choice([1, 1, 2])):
                sql, columns = self.derived(1)
                ctes.append(f"q{i + 1} AS ({sql})")
                pool.append(Rel(f"q{i + 1}", columns))
            self.tags.add("cte")
            with_sql = "WITH " + ", ".join(ctes) + " "
        elif r < 30:
            sql, columns = self.derived(1)
            pool.append(Rel("d1", columns, body=sql))
            self.tags.add("derived")
        if 30 <= r < 45:
            body, exprs_ok = self.set_operation(), False
        else:
            body, exprs_ok = self.block(0, pool), True
            if with_sql and self.pool_uses > 1:
                self.tags.add("cte_twice")
        sql = with_sql + body.sql
        if self.chance(0.6):
            sql += self.order_by(body, exprs_ok)
            sql += self.limit() if self.chance(0.35) else ""
        elif self.chance(0.1):
            sql += self.limit()
            self.tags.add("limit_unordered")
        ast = sqlglot.parse_one(sql, read="postgres")
        placement = self.place(ast)
        return FuzzQuery(ast, placement, frozenset(self.tags | self.source_tags(placement)), self.count)

    def top_n_join(self) -> str:
        """Top-N below foreign-key -> primary-key joins (``planner.federation.top_n``): a table LEFT or inner
        joined on the ``id`` of one or two others (a filter in the ON or WHERE sometimes), its own columns as
        outputs and as ORDER BY keys (DESC, NULLS FIRST/LAST), its ``id`` last: the order is total and the
        fuzzer compares rows in order. In a third of the queries the same block, with the joined tables' columns
        among its outputs, is a derived table under an ORDER BY of all outputs (top-N in a sub-query)."""
        table, column, target = self.pick(FOREIGN_KEYS)
        first = Rel(self.alias(), TABLE_COLUMNS[table], table, "id")
        joins = [(column, target)]
        more = [(c, t) for (f, c, t) in FOREIGN_KEYS if f == table and c != column]
        if more and self.chance(0.3):
            joins.append(self.pick(more))
            self.tags.add("top_n_chain")
        text, joined = f"{table} AS {first.alias}", []
        for fk, target in joins:
            rel = Rel(self.alias(), TABLE_COLUMNS[target], target, "id")
            kind = self.pick(["LEFT JOIN", "JOIN"])
            self.tags.add("top_n_left" if kind == "LEFT JOIN" else "top_n_inner")
            on = f"{first.alias}.{fk} = {rel.alias}.id"
            if self.chance(0.25):
                on += f" AND {self.pred([rel], 1)}"
            text += f" {kind} {target} AS {rel.alias} ON {on}"
            joined.append(rel)
        where = f" WHERE {self.pred([self.pick([first, *joined])], 1)}" if self.chance(0.35) else ""
        own = self.rng.sample([c for c in first.columns if c != "id"], self.rng.randint(1, 3))
        keys = []
        for c in own[:self.rng.randint(1, len(own))]:
            keys.append(self.directed(f"{first.alias}.{c}"))
        keys.append(f"{first.alias}.id")
        outputs = [f"{first.alias}.{c}" for c in [*own, "id"]]
        nested = self.chance(0.33)
        if nested:
            outputs += [f"{rel.alias}.{self.pick(rel.columns)}" for rel in joined]
        select = ", ".join(f"{o} AS v{i + 1}" for i, o in enumerate(outputs))
        block = f"SELECT {select} FROM {text}{where} ORDER BY {', '.join(keys)}{self.limit()}"
        if not nested:
            return block
        self.tags.add("top_n_nested")
        return (f"SELECT * FROM ({block}) AS {self.alias()} ORDER BY "
                + ", ".join(str(i + 1) for i in range(len(outputs))))

    def _top_n_join_query(self) -> FuzzQuery:
        """A ``top_n_join`` query, its joined tables placed in another source than the first most of the time
        (the pushdown applies across sources; in one source the whole query is pushed)."""
        self.tags.add("top_n_join")
        ast = sqlglot.parse_one(self.top_n_join(), read="postgres")
        placement = self.place(ast)
        aliases = list(placement)
        if len(set(placement.values())) == 1 and self.chance(0.8):
            for alias in aliases[1:]:
                placement[alias] = self.pick([s for s in SOURCES if s != placement[aliases[0]]])
        return FuzzQuery(ast, placement, frozenset(self.tags | self.source_tags(placement)), self.count)

    def join_order(self) -> str:
        """Inner joins written in a poor order (``planner.federation.join_order``): t1 and t2 joined first on
        their few-valued ``g``, the selective ``dim`` (one id or one ``g``) after them, sometimes t3 last; as
        JOIN ... ON or as comma joins; rows in a total order (by the tables' ids) or a count and a sum per
        ``dim`` name."""
        a, b, d = (Rel(self.alias(), TABLE_COLUMNS[t], t, "id") for t in ("t1", "t2", "dim"))
        c = Rel(self.alias(), TABLE_COLUMNS["t3"], "t3", "id") if self.chance(0.35) else None
        joins = [(b, f"{b.alias}.g = {a.alias}.g"), (d, f"{d.alias}.id = {a.alias}.dk")]
        if c is not None:
            joins.append((c, f"{c.alias}.k2 = {b.alias}.id"))
        conds = [f"{d.alias}.id = {self.rng.randint(0, 11)}" if self.chance(0.7)
                 else f"{d.alias}.g = {self.rng.randint(0, 4)}"]
        if self.chance(0.3):
            conds.append(self.pred([self.pick([a, b])], 1))
        if self.chance(0.4):
            self.tags.add("join_order_comma")
            text = ", ".join(f"{r.table} AS {r.alias}" for r in [a, *(r for r, _ in joins)])
            conds = [on for _, on in joins] + conds
        else:
            text = f"{a.table} AS {a.alias}" + "".join(f" JOIN {r.table} AS {r.alias} ON {on}" for r, on in joins)
        where = " WHERE " + " AND ".join(conds)
        if self.chance(0.4):
            self.tags.add("join_order_agg")
            return (f"SELECT {d.alias}.name AS v1, COUNT(*) AS v2, SUM({a.alias}.id + {b.alias}.id) AS v3 FROM {text}"
                    f"{where} GROUP BY {d.alias}.name ORDER BY 1")
        ids = [a, b, *([c] if c is not None else [])]
        outputs = [f"{r.alias}.id" for r in ids] + [f"{d.alias}.name", f"{b.alias}.{self.pick(list(b.columns))}"]
        select = ", ".join(f"{o} AS v{i + 1}" for i, o in enumerate(outputs))
        order = ", ".join(str(i + 1) for i in range(len(ids)))
        return f"SELECT {select} FROM {text}{where} ORDER BY {order}{self.limit() if self.chance(0.3) else ''}"

    def _join_order_query(self) -> FuzzQuery:
        """A ``join_order`` query, randomly placed (one source or several)."""
        self.tags.add("join_order")
        ast = sqlglot.parse_one(self.join_order(), read="postgres")
        return FuzzQuery(ast, (placement := self.place(ast)), frozenset(self.tags | self.source_tags(placement)),
                         self.count)

    def selective_join(self) -> str:
        """A join kept small by one side's filter (``planner.federation.whole_query.selective_join``): ``t1``
        joined on its ``id`` to one or two ``t2`` rows (``b.id = n`` or ``b.id IN (n, m)``: at most 1% of
        t1.id's 200 values), sometimes ``t3`` on b too, sometimes TPC-H Q17's correlated aggregate of t1 per
        key; a count, sums and a minimum, or rows in id order."""
        a, b = Rel(self.alias(), TABLE_COLUMNS["t1"], "t1", "id"), Rel(self.alias(), TABLE_COLUMNS["t2"], "t2", "id")
        ids = [str(self.rng.randint(1, 160)) for _ in range(self.rng.choice([1, 1, 2]))]
        pick = f"{b.alias}.id = {ids[0]}" if len(ids) == 1 else f"{b.alias}.id IN ({', '.join(ids)})"
        text = f"t1 AS {a.alias} JOIN t2 AS {b.alias} ON {b.alias}.k1 = {a.alias}.id"
        if self.chance(0.3):
            c = Rel(self.alias(), TABLE_COLUMNS["t3"], "t3", "id")
            text += f" LEFT JOIN t3 AS {c.alias} ON {c.alias}.k2 = {b.alias}.id"
            self.tags.add("selective_join_left")
        conds = [pick]
        if self.chance(0.4):
            inner = self.alias()
            conds.append(f"{a.alias}.f < (SELECT 2 * AVG({inner}.f) FROM t1 AS {inner} WHERE {inner}.id = {b.alias}.k1)")
            self.tags.add("selective_join_correlated")
        if self.chance(0.3):
            conds.append(self.pred([a], 1))
        where = " WHERE " + " AND ".join(conds)
        if self.chance(0.5):
            return (f"SELECT COUNT(*) AS v1, SUM({a.alias}.amt) AS v2, MIN({b.alias}.s) AS v3, "
                    f"SUM({a.alias}.id + {b.alias}.id) AS v4 FROM {text}{where}")
        return (f"SELECT {a.alias}.id AS v1, {b.alias}.id AS v2, {a.alias}.{self.pick(list(a.columns))} AS v3 "
                f"FROM {text}{where} ORDER BY 1, 2")

    def _selective_join_query(self) -> FuzzQuery:
        """A ``selective_join`` query drawn from ``shapes_rng`` (the other draws, so the queries of a seed, stay
        what they were), in one file source most of the time (there it runs whole, late materialized)."""
        with self.drawing_from(self.shapes_rng):
            self.tags.add("selective_join")
            ast = sqlglot.parse_one(self.selective_join(), read="postgres")
            placement = self.place(ast)
            if self.chance(0.7):
                source = self.pick(["pq", "csv"])
                placement = {alias: source for alias in placement}
            return FuzzQuery(ast, placement, frozenset(self.tags | self.source_tags(placement)), self.count)

    def place(self, ast: exp.Expression) -> dict[str, str]:
        """Each table alias to a random source (a third of the queries keep every table in one source)."""
        aliases = [t.alias for t in ast.find_all(exp.Table) if t.name in COLUMNS]
        one = self.pick(SOURCES) if self.chance(0.33) else None
        return {a: one or self.pick(SOURCES) for a in aliases}

    @staticmethod
    def source_tags(placement: dict[str, str]) -> set[str]:
        sources = set(placement.values())
        return {f"src:{s}" for s in sources} | {"one_source" if len(sources) <= 1 else "multi_source"}
