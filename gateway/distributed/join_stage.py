"""The hash-partitioned join stage: an inner equi-join of two large distributed fragments, run as N Ray tasks
instead of in the coordinator's residual plan.

Stage one: every split task of both fragments hash-partitions its rows on the join keys into N partitions
(``gateway.distributed.hashing``), left in Ray's object store. Stage two: task i joins partition i of both
sides in DataFusion (the join, its conditions over the two sides only, and the columns the rest of the query
reads), returning Arrow. The coordinator's residual plan reads the N outputs as one table in place of the
two fragments. ``plan_join`` finds such a join in a plan and rewrites the residual; the run is
``gateway.distributed.join_feed``.

    residual: SELECT o.o_orderpriority, SUM(l.__partial_0) FROM "__fragment_0" AS o
              JOIN "__fragment_1" AS l ON l.l_orderkey = o.o_orderkey WHERE o.x + l.y > 1 GROUP BY 1
    stage 2:  SELECT o.o_orderpriority AS __c0, l.__partial_0 AS __c1 FROM "__fragment_0" AS o
              JOIN "__fragment_1" AS l ON l.l_orderkey = o.o_orderkey AND o.x + l.y > 1      (per partition)
    residual: SELECT __hj.__c0 AS o_orderpriority, SUM(__hj.__c1) FROM "__hashjoin" AS __hj GROUP BY 1
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import sqlglot
from sqlglot import exp

from connectors.arrow.join_names import plain_join_names
from gateway.distributed.hashing import Keys, key_kind
from planner import FederatedPlan
from planner.dialects import RESIDUAL_DIALECT
from planner.federation.residual import residual_schema
from planner.federation.sqlast import conjuncts, inner_joins_only

#: the table the residual reads the join stage's output from, and the alias it reads it under
JOIN_TABLE = "__hashjoin"
JOIN_ALIAS = "__hj"


@dataclass(frozen=True)
class JoinPlan:
    """One hash-partitioned join between fragments ``left`` and ``right`` (ids).

    Attributes:
        left_keys, right_keys: ``(column, KeyKind)`` per equi-join key, in the same order on both sides.
        stage_sql: the join each stage-two task runs (DataFusion SQL over tables named ``left`` and ``right``).
        schema: its output Arrow schema (columns ``__c0``, ``__c1``, ...: what the residual reads of both sides).
        residual_sql: the plan's residual SQL reading ``JOIN_TABLE`` in place of the two fragments.
        partitions: N, the number of hash partitions and of stage-two tasks.
        condition: the join's keys as written in the residual (EXPLAIN).
        partial: the stage also aggregates partially per partition; the residual merges the partial aggregates.
    """

    left: str
    right: str
    left_keys: Keys
    right_keys: Keys
    stage_sql: str
    schema: pa.Schema
    residual_sql: str
    partitions: int
    condition: str
    partial: bool = False

    def describe(self) -> str:
        """EXPLAIN's line: ``hash join stage: 4 tasks join partition i of __fragment_0 and __fragment_1 ...``."""
        return (f"hash join stage: {self.partitions} task{'s' if self.partitions != 1 else ''} join partition i "
                f"of {self.left} and {self.right} on {self.condition}"
                + ("; partial aggregates per partition" if self.partial else "")
                + "; the residual plan reads their output")


def plan_join(plan: FederatedPlan, candidates: set[str] | frozenset[str], partitions: int,
              sizes: dict[str, float | None] | None = None) -> tuple[JoinPlan | None, str]:
    """The largest (by the two sides' estimated ``sizes`` in rows, when given) inner equi-join of the residual
    between two ``candidates`` (large fragments read by Ray tasks) that can run as a join stage, and why;
    ``(None, reason)`` when none can. Only a join whose
    two fragments are each read once, as plain FROM/JOIN items of one SELECT of inner joins, on at least one
    key pair of plain columns of hashable types (``hashing.key_kind``), qualifies; the rewritten residual must
    plan in DataFusion with the original result types."""
    if plan.residual_sql is None or partitions < 1:
        return None, "no residual plan"
    counts = plan.references()
    reason = "no join between two large fragments read by Ray tasks"
    seen = set()
    sizes = sizes or {}
    joins = sorted(plan.joins, key=lambda j: -((sizes.get(j.left) or 0) + (sizes.get(j.right) or 0)))
    for join in joins:
        pair = tuple(sorted((join.left, join.right)))
        if not join.either_way or pair in seen or not {join.left, join.right} <= set(candidates):
            continue
        seen.add(pair)
        if counts.get(join.left) != 1 or counts.get(join.right) != 1:
            reason = f"{join.left} or {join.right} is read more than once by the residual plan"
            continue
        try:
            found = _rewrite(plan, join.left, join.right, partitions)
        except Exception as exc:  # a residual shape this rewrite does not know: the join stays local
            found = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        if isinstance(found, JoinPlan):
            return found, found.describe()
        reason = f"{join.left} JOIN {join.right} stays in the residual plan: {found}"
    return None, reason


def _rewrite(plan: FederatedPlan, left: str, right: str, partitions: int) -> JoinPlan | str:
    """The join plan of ``left`` JOIN ``right``, or why it cannot be made."""
    # the fragments as plain FROM/JOIN items again (the dialect renames join inputs' shared names apart when it
    # writes SQL, the stage's and the rewritten residual's included)
    root = plain_join_names(sqlglot.parse_one(plan.residual_sql, read=RESIDUAL_DIALECT))
    fragments = {f.id: f for f in plan.fragments}
    sides = {left: fragments[left].schema, right: fragments[right].schema}
    found = _locate(root, left, right, sides)
    if isinstance(found, str):
        return found
    select, ta, tb = found
    moved, keys = _move_conditions(select, ta.alias_or_name, tb.alias_or_name, sides[left], sides[right])
    if not keys:
        return "no equi-join key of hashable types between them"
    stage = _read_through(select, ta, tb, moved)
    stage_sql = stage.sql(dialect=RESIDUAL_DIALECT)
    schema, _ = residual_schema(stage_sql, sides)
    partial = _partial_aggregation(select, stage, sides)
    if partial is not None:
        stage_sql, schema = partial
    residual_sql = root.sql(dialect=RESIDUAL_DIALECT)
    others = {f.id: f.schema for f in plan.fragments if f.id not in (left, right)}
    result, _ = residual_schema(residual_sql, {**others, JOIN_TABLE: schema})
    if [f.type for f in result] != [f.type for f in plan.schema]:
        return "the rewritten residual plan would change the result's types"
    return JoinPlan(left, right, tuple((k[0], k[2]) for k in keys), tuple((k[1], k[2]) for k in keys), stage_sql,
                    schema, residual_sql, partitions, " AND ".join(k[3] for k in keys), partial is not None)


def _locate(root: exp.Expression, left: str, right: str, sides: dict[str, pa.Schema]
            ) -> tuple[exp.Select, exp.Table, exp.Table] | str:
    """``(select, left table, right table)``: the one SELECT of inner joins whose FROM/JOIN items read both
    fragments, every column of it qualified; or why there is none."""
    ta = next(t for t in root.find_all(exp.Table) if t.name == left)
    tb = next(t for t in root.find_all(exp.Table) if t.name == right)
    select = ta.find_ancestor(exp.Select)
    if tb.find_ancestor(exp.Select) is not select:
        return "the two fragments are read in different SELECTs"
    joins = list(select.args.get("joins") or [])
    if not any(i is ta for i in _items(select)) or not any(i is tb for i in _items(select)):
        return "a fragment is not a plain FROM/JOIN item"
    if not inner_joins_only(select) or any(j.args.get("using") or j.args.get("method") for j in joins):
        return "the SELECT has outer, USING or lateral joins"
    columns = set(sides[left].names) | set(sides[right].names)
    problem = _names_problem(select, ta.alias_or_name, tb.alias_or_name, columns)
    return problem or (select, ta, tb)


def _names_problem(select: exp.Select, a: str, b: str, side_columns: set[str]) -> str | None:
    """Why the SELECT's columns could not be renamed safely (``SELECT *``, one alias for both sides, a
    sub-query naming ``a`` or ``b`` again, an unqualified column of a side), or None."""
    if a == b or any(isinstance(e, exp.Star) or isinstance(e.this, exp.Star) for e in select.expressions):
        return "SELECT * or ambiguous aliases"
    for node in select.find_all(exp.Table, exp.Subquery, exp.CTE):
        if node.find_ancestor(exp.Select) is not select and node.alias_or_name in (a, b, JOIN_ALIAS):
            return "a sub-query names an alias of the join again"
    outputs = {e.alias_or_name for e in select.expressions}
    for column in select.find_all(exp.Column):
        if not column.table and column.name in side_columns and column.name not in outputs:
            return f"column {column.name} is not qualified"
    return None


def _items(select: exp.Select) -> list[exp.Expression]:
    """The SELECT's FROM item and joined items, in order."""
    from_ = select.args.get("from_") or select.args.get("from")
    return ([from_.this] if from_ is not None else []) + [j.this for j in select.args.get("joins") or []]


def _move_conditions(select: exp.Select, a: str, b: str, left: pa.Schema, right: pa.Schema
                     ) -> tuple[list[exp.Expression], list[tuple[str, str, str, str]]]:
    """Take the conjuncts over aliases ``a`` and ``b`` only out of the SELECT's WHERE and ONs (every join is
    inner, so they may run in the stage's join): ``(moved conjuncts, keys)``, a key being ``(left column,
    right column, KeyKind, its SQL)``. Conjuncts with a sub-query, aggregate or window stay."""
    own = {i.alias_or_name for i in _items(select)}
    moved: list[exp.Expression] = []
    keys: list[tuple[str, str, str, str]] = []
    for container in [c for c in (select.args.get("where"), *(select.args.get("joins") or [])) if c is not None]:
        kept = []
        for conjunct in conjuncts(container):
            names = ({c.table for c in conjunct.find_all(exp.Column)}
                     if not conjunct.find(exp.Select, exp.Subquery, exp.AggFunc, exp.Window) else set())
            if not names or "" in names or not names <= own or not names <= {a, b}:
                kept.append(conjunct)
                continue
            moved.append(conjunct.copy())
            key = _key(conjunct, a, b, left, right)
            if key is not None:
                keys.append((*key, conjunct.sql(dialect=RESIDUAL_DIALECT)))
        _set_condition(container, kept)
    return moved, keys


def _read_through(select: exp.Select, ta: exp.Table, tb: exp.Table, moved: list[exp.Expression]) -> exp.Select:
    """Rewrite ``select`` in place to read ``JOIN_TABLE`` in place of both fragments (the right one dropped,
    its columns and the left's renamed ``__hj.__cN``) and return the stage's join producing those columns."""
    a, b = ta.alias_or_name, tb.alias_or_name
    hashed = exp.Table(this=exp.to_identifier(JOIN_TABLE, quoted=True),
                       alias=exp.TableAlias(this=exp.to_identifier(JOIN_ALIAS, quoted=True)))
    _drop(select, tb)
    ta.replace(hashed)
    names: dict[tuple[str, str], str] = {}
    for column in list(select.find_all(exp.Column)):
        if column.table in (a, b):
            name = names.setdefault((column.table, column.name), f"__c{len(names)}")
            renamed = exp.column(name, table=JOIN_ALIAS, quoted=True)
            if column.parent is select:  # a bare output column keeps its name
                renamed = exp.alias_(renamed, column.name, quoted=True)
            column.replace(renamed)
    outputs = [exp.alias_(exp.column(col, table=alias, quoted=True), name, quoted=True)
               for (alias, col), name in names.items()] or [exp.alias_(exp.Literal.number(1), "__c0", quoted=True)]
    return exp.select(*outputs).from_(ta.copy()).join(exp.Join(this=tb.copy(), on=exp.and_(*moved)))


#: aggregates a join stage computes partially per partition (the residual merges their partial columns)
_PARTIAL = (exp.Sum, exp.Count, exp.Min, exp.Max)


def _partial_aggregation(select: exp.Select, stage: exp.Select, sides: dict[str, pa.Schema]
                         ) -> tuple[str, pa.Schema] | None:
    """When the rewritten ``select`` only groups the join's output (no other table, condition, DISTINCT,
    window or sub-query; GROUP BY plain columns; SUM/COUNT/MIN/MAX without DISTINCT), move the aggregation
    into the stage as partial aggregates per partition and make ``select`` merge them, in place:

        SELECT __hj.__c0 AS k, SUM(__hj.__c1) AS s FROM __hashjoin AS __hj GROUP BY __hj.__c0
        stage:    SELECT __hj.__c0 AS __g0, SUM(__hj.__c1) AS __a0 FROM (<join>) AS __hj GROUP BY __hj.__c0
        residual: SELECT __hj.__g0 AS k, CAST(SUM(__hj.__a0) AS <SUM's type>) AS s FROM __hashjoin AS __hj
                  GROUP BY __hj.__g0

    A SUM keeps its own type (the merge is cast back to it: exact for integers and decimals; floating-point
    sums are not merged), COUNT becomes the SUM of counts (0 when there are none), MIN/MAX of MIN/MAX.
    Returns ``(stage SQL, its schema)``, or None (``select`` untouched) when the shape does not qualify."""
    shape = _grouping(select)
    if shape is None:
        return None
    group, aggregates = shape
    keys = {g.name: f"__g{i}" for i, g in enumerate(group)}
    outputs = [exp.alias_(g.copy(), keys[g.name], quoted=True) for g in group]
    outputs += [exp.alias_(a.copy(), f"__a{i}", quoted=True) for i, a in enumerate(aggregates)]
    partial = exp.select(*outputs).from_(exp.Subquery(this=stage.copy(), alias=exp.TableAlias(
        this=exp.to_identifier(JOIN_ALIAS, quoted=True))))
    if group:
        partial = partial.group_by(*[g.copy() for g in group])
    sql = partial.sql(dialect=RESIDUAL_DIALECT)
    schema, _ = residual_schema(sql, sides)
    merges = [_merge(a, f"__a{i}", schema.field(f"__a{i}").type) for i, a in enumerate(aggregates)]
    if any(m is None for m in merges):
        return None
    for aggregate, merge in zip(aggregates, merges, strict=True):
        aggregate.replace(merge)
    for column in list(select.find_all(exp.Column)):
        if column.table == JOIN_ALIAS and column.name in keys:
            column.replace(exp.column(keys[column.name], table=JOIN_ALIAS, quoted=True))
    return sql, schema


def _grouping(select: exp.Select) -> tuple[list[exp.Column], list[exp.AggFunc]] | None:
    """``(GROUP BY columns, aggregates)`` of a SELECT that only aggregates ``JOIN_TABLE`` (see
    ``_partial_aggregation``), or None."""
    if (select.args.get("joins") or select.args.get("where") or select.args.get("distinct")
            or select.find(exp.Window, exp.Subquery) or len(list(select.find_all(exp.Select))) > 1):
        return None
    group = list(select.args["group"].expressions) if select.args.get("group") else []
    if not all(isinstance(g, exp.Column) and g.table == JOIN_ALIAS for g in group):
        return None
    aggregates = list(select.find_all(exp.AggFunc))
    if not aggregates or any(not isinstance(a, _PARTIAL) or a.find(exp.Distinct) or a.this.find(exp.AggFunc)
                             for a in aggregates):
        return None
    names = {g.name for g in group}
    if any(c.find_ancestor(exp.AggFunc) is None and c.table and c.name not in names
           for c in select.find_all(exp.Column)):
        return None  # a column outside the aggregates that is not a group key
    return group, aggregates


def _merge(aggregate: exp.AggFunc, name: str, kind: pa.DataType) -> exp.Expression | None:
    """How the residual merges partial column ``name`` (of Arrow type ``kind``) of ``aggregate``; None for a
    SUM of another type than int64 or decimal128 (floating-point sums depend on their order)."""
    column = exp.column(name, table=JOIN_ALIAS, quoted=True)
    if isinstance(aggregate, exp.Sum):
        if pa.types.is_decimal128(kind):
            return exp.cast(exp.Sum(this=column), exp.DataType.build(f"DECIMAL({kind.precision}, {kind.scale})"))
        return exp.cast(exp.Sum(this=column), exp.DataType.build("BIGINT")) if pa.types.is_int64(kind) else None
    if isinstance(aggregate, exp.Count):
        return exp.cast(exp.func("COALESCE", exp.Sum(this=column), exp.Literal.number(0)),
                        exp.DataType.build("BIGINT"))
    return type(aggregate)(this=column)


def _key(conjunct: exp.Expression, a: str, b: str, left: pa.Schema, right: pa.Schema
         ) -> tuple[str, str, str] | None:
    """``(left column, right column, kind)`` when ``conjunct`` is ``a.x = b.y`` (either way round) of plain
    columns of hashable types, else None."""
    if not (isinstance(conjunct, exp.EQ) and isinstance(conjunct.this, exp.Column)
            and isinstance(conjunct.expression, exp.Column)):
        return None
    one, other = conjunct.this, conjunct.expression
    if (one.table, other.table) == (b, a):
        one, other = other, one
    if (one.table, other.table) != (a, b) or one.name not in left.names or other.name not in right.names:
        return None
    kind = key_kind(left.field(one.name).type, right.field(other.name).type)
    return (one.name, other.name, kind) if kind is not None else None


def _set_condition(container: exp.Expression, kept: list[exp.Expression]) -> None:
    """Give a WHERE or JOIN its remaining conjuncts (none: the WHERE goes, the join becomes a cross join)."""
    condition = exp.and_(*kept) if kept else None
    if isinstance(container, exp.Join):
        container.set("on", condition)
    elif condition is None:
        container.pop()
    else:
        container.set("this", condition)


def _drop(select: exp.Select, table: exp.Table) -> None:
    """Remove ``table`` from the SELECT's FROM/JOIN items; conditions left on its join move to the WHERE
    (every join is inner). A FROM item is replaced by the first joined item."""
    joins = list(select.args.get("joins") or [])
    parent = table.parent
    if isinstance(parent, exp.Join):
        removed = parent
    else:  # the FROM item: the first join's item takes its place
        removed = joins[0]
        parent.set("this", removed.this)
    leftover = removed.args.get("on")
    select.set("joins", [j for j in joins if j is not removed] or None)
    if leftover is not None:
        select.where(leftover, copy=False)
