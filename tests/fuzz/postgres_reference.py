"""PostgreSQL itself as the reference for hand-written queries over the fuzz tables: the differential fuzzer's
reference is DataFusion, so it cannot see DataFusion's own defects; these checks can (``test_subqueries_as_values``,
``test_decimal_rounds``, ``test_counted_set_operations``, ``test_to_char``, ``test_postgres_functions``,
``test_window_comparison_keys``)."""

from __future__ import annotations

import psycopg2
import pyarrow as pa
import sqlglot
from sqlglot import exp

from tests.fuzz.compare import OK, compare
from tests.fuzz.data import SOURCES
from tests.fuzz.generator import FuzzQuery, render


def postgres_answer(world, sql: str) -> pa.Table:
    """The query as written, run by PostgreSQL on its copy of the fuzz tables (schema ``fz``; CTE names kept)."""
    text = sqlglot.parse_one(sql, read="postgres")
    ctes = {cte.alias for cte in text.find_all(exp.CTE)}
    for table in text.find_all(exp.Table):
        if table.name not in ctes:
            table.set("db", exp.to_identifier("fz"))
    with psycopg2.connect(world.pg_uri) as conn, conn.cursor() as cur:
        cur.execute(text.sql(dialect="postgres"))
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    if not rows:  # no rows to type the columns by: the names alone, as null columns
        return pa.table({name: pa.array([], pa.null()) for name in names})
    return pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows])


def placement_failures(fuzz_session, sql: str, ordered: bool = False, shifts: tuple[int, ...] = (0, 3),
                       sources: tuple[str, ...] = SOURCES) -> tuple[pa.Table, list[str]]:
    """PostgreSQL's answer to ``sql`` (tables ``t1 AS a``..., unqualified) and how the gateway's answers differ
    from it, with every table in each of ``sources`` alone and in the mixes that place the i-th alias (sorted) in
    source ``(i + shift) % 5``, one per shift."""
    want = postgres_answer(fuzz_session.sources.world, sql)
    ast = sqlglot.parse_one(sql, read="postgres")
    ctes = {c.alias for c in ast.find_all(exp.CTE)}
    aliases = sorted({t.alias_or_name for t in ast.find_all(exp.Table) if t.name not in ctes})
    mixes = [{a: SOURCES[(i + shift) % len(SOURCES)] for i, a in enumerate(aliases)} for shift in shifts]
    failures = []
    for placement in [{a: s for a in aliases} for s in sources] + mixes:
        text = render(FuzzQuery(ast, placement).ast, placement, fuzz_session.sources.names)
        try:
            got = fuzz_session.gateway.execute(text).reader.read_all()
        except Exception as exc:
            failures.append(f"{placement}: {type(exc).__name__}: {exc}")
            continue
        category, detail = compare(got, want, ordered)
        if category != OK:
            failures.append(f"{placement}: {detail}")
    return want, failures
