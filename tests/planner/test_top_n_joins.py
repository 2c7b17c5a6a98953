"""Top-N below foreign-key -> primary-key joins (``planner.federation.top_n``) against the real sources: the fuzz
tables (``fz`` of tests/world.py: ``t1.dk`` -> ``dim.id`` with keys that match nothing and NULL keys,
``t1.k2`` -> ``t2.id``) in PostgreSQL, MariaDB, SQLite and Parquet, and the crm tables.

Every answer is compared in order with DataFusion's over the same tables loaded locally (the unpushed answer):
each query orders by a unique key last, so its order is total.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from planner.federation.top_n import INNER_JOIN_CAP
from tests.world import GATEWAY_NAMES


def _same(got: pa.Table, want: pa.Table) -> None:
    assert got.column_names == want.column_names
    assert got.to_pylist() == want.cast(got.schema).to_pylist()


def _fragment(plan, source: str):
    return next(f for f in plan.fragments if f.source == source)


def _explain(fz, sql: str, analyze: bool = False) -> str:
    return fz.engine.explain(fz.sql(sql), analyze=analyze)


LEFT = ("SELECT a.id, a.amt, a.dk, d.name FROM {pg}t1 a LEFT JOIN {maria}dim d ON a.dk = d.id "
        "ORDER BY a.amt DESC, a.id LIMIT 7")


def test_left_join_pushes_the_top_n_into_the_from_table(fz):
    plan = fz.engine.plan(fz.sql(LEFT))
    pg = _fragment(plan, "pg")
    assert "ORDER BY" in pg.sql and pg.sql.endswith("LIMIT 7")
    assert "LIMIT" not in _fragment(plan, "maria").sql
    assert plan.top_n_fallback is None  # exact: every row of t1 gives one row
    text = _explain(fz, LEFT)
    assert "limit 7 (top-N below the left join of d on its primary key: exact)" in text
    got, want = fz(LEFT)
    _same(got, want)
    assert got.num_rows == 7


def test_chain_of_left_joins_with_offset(fz):
    sql = ("SELECT a.id, a.s, d.name, b.qty FROM {pq}t1 a LEFT JOIN {maria}dim d ON d.id = a.dk AND d.g > 1 "
           "LEFT JOIN {lite}t2 b ON b.id = a.k2 ORDER BY a.id DESC LIMIT 5 OFFSET 4")
    plan = fz.engine.plan(fz.sql(sql))
    pq = _fragment(plan, "pq")
    assert "LIMIT 9" in pq.sql and "ORDER BY" in pq.sql
    got, want = fz(sql)
    _same(got, want)
    assert got.num_rows == 5


@pytest.mark.parametrize("order", ["a.n DESC", "a.n DESC NULLS LAST", "a.n", "a.n NULLS FIRST"])
def test_nulls_in_the_sort_column(fz, order):
    """``t1.n`` is half NULL: the source puts NULLs where DataFusion does (explicit NULLS FIRST/LAST)."""
    sql = (f"SELECT a.id, a.n, d.name FROM {{lite}}t1 a LEFT JOIN {{pg}}dim d ON a.dk = d.id "
           f"ORDER BY {order}, a.id LIMIT 12")
    assert "LIMIT 12" in _fragment(fz.engine.plan(fz.sql(sql)), "lite").sql
    got, want = fz(sql)
    _same(got, want)


def test_inner_join_with_every_partner_found_keeps_the_result(fz):
    """Keys 1..10 all exist in dim: the pushed top-N needs no fallback."""
    sql = ("SELECT a.id, a.dk, d.name FROM {pg}t1 a JOIN {maria}dim d ON a.dk = d.id "
           "WHERE a.dk BETWEEN 1 AND 10 ORDER BY a.id LIMIT 10")
    plan = fz.engine.plan(fz.sql(sql))
    pg = _fragment(plan, "pg")
    assert "ORDER BY" in pg.sql and pg.sql.endswith("LIMIT 10")
    assert plan.top_n_fallback is not None and plan.top_n_fallback.fragment == pg.id
    assert "LIMIT" not in _fragment(plan.top_n_fallback.plan, "pg").sql
    text = _explain(fz, sql)
    assert "a fallback plan runs if the join drops one of these rows" in text
    assert "top-N below an inner join" in text
    analyzed = _explain(fz, sql, analyze=True)
    assert "fallback: not run: the result has all 10 rows" in analyzed
    got, want = fz(sql)
    _same(got, want)


def test_inner_join_losing_rows_runs_the_fallback(fz):
    """``t1.dk`` holds NULLs and keys dim does not have: some of the first rows find no partner."""
    sql = ("SELECT a.id, a.dk, d.name FROM {pg}t1 a JOIN {lite}dim d ON a.dk = d.id ORDER BY a.id LIMIT 15")
    plan = fz.engine.plan(fz.sql(sql))
    assert plan.top_n_fallback is not None
    analyzed = _explain(fz, sql, analyze=True)
    assert "fallback: ran: the result had" in analyzed and "Fallback plan (run):" in analyzed
    got, want = fz(sql)
    _same(got, want)
    assert got.num_rows == 15


def test_inner_join_with_a_filter_on_the_joined_table(fz):
    """A WHERE on the joined table goes into its fragment: rows may be lost, the fallback restores them."""
    sql = ("SELECT a.id, a.amt, b.qty FROM {maria}t1 a JOIN {pg}t2 b ON a.k2 = b.id WHERE b.qty > 5 "
           "ORDER BY a.amt, a.id LIMIT 6 OFFSET 2")
    plan = fz.engine.plan(fz.sql(sql))
    assert plan.top_n_fallback is not None and plan.top_n_fallback.fetched == 8
    assert "LIMIT 8" in _fragment(plan, "maria").sql
    got, want = fz(sql)
    _same(got, want)


def test_inner_join_with_parameters_binds_the_fallback_plan(fz):
    sql = ("SELECT a.id, d.name FROM {pg}t1 a JOIN {maria}dim d ON a.dk = d.id WHERE a.g = $1 "
           "ORDER BY a.id DESC LIMIT 9")
    got, want = fz(sql, [2])
    _same(got, want)


def test_left_join_with_a_where_on_the_joined_table_is_not_pushed(fz):
    sql = ("SELECT a.id, d.name FROM {pg}t1 a LEFT JOIN {maria}dim d ON a.dk = d.id WHERE COALESCE(d.g, 1) = 1 "
           "ORDER BY a.id LIMIT 5")
    plan = fz.engine.plan(fz.sql(sql))
    assert "LIMIT" not in _fragment(plan, "pg").sql
    assert any("below the join" in n.what and "a filter that stays in DataFusion" in n.reason
               for n in plan.not_pushed)
    got, want = fz(sql)
    _same(got, want)


def test_left_join_whose_where_rejects_null_extended_rows_is_planned_as_the_inner_join_it_is(fz):
    """``d.g = 1`` is never TRUE where the LEFT JOIN null-extends ``d``: an inner join, its filter in d's fragment
    and the top-N below it (with the fallback plan for the rows the filter drops)."""
    sql = ("SELECT a.id, d.name FROM {pg}t1 a LEFT JOIN {maria}dim d ON a.dk = d.id WHERE d.g = 1 "
           "ORDER BY a.id LIMIT 5")
    plan = fz.engine.plan(fz.sql(sql))
    assert "WHERE `d`.`g` = 1" in _fragment(plan, "maria").sql
    assert "LEFT" not in plan.residual_sql and plan.top_n_fallback is not None
    got, want = fz(sql)
    _same(got, want)


def test_join_on_a_key_that_is_not_unique_is_not_pushed(fz):
    sql = ("SELECT a.id, b.id AS bid FROM {pg}t1 a LEFT JOIN {maria}t2 b ON a.g = b.g "
           "ORDER BY a.id, b.id LIMIT 8")
    plan = fz.engine.plan(fz.sql(sql))
    assert "LIMIT" not in _fragment(plan, "pg").sql
    sql = "SELECT a.id, b.qty FROM {pg}t1 a LEFT JOIN {maria}t2 b ON a.g = b.g ORDER BY a.id LIMIT 8"
    plan = fz.engine.plan(fz.sql(sql))
    assert "LIMIT" not in _fragment(plan, "pg").sql
    assert any("primary key" in n.reason for n in plan.not_pushed)


def test_order_by_a_joined_column_is_not_pushed(fz):
    sql = ("SELECT a.id, d.name FROM {pg}t1 a LEFT JOIN {maria}dim d ON a.dk = d.id "
           "ORDER BY d.name, a.id LIMIT 5")
    plan = fz.engine.plan(fz.sql(sql))
    assert "LIMIT" not in _fragment(plan, "pg").sql
    got, want = fz(sql)
    _same(got, want)


def test_inner_join_in_a_sub_query_or_above_the_cap_is_not_pushed(fz):
    inner = "SELECT a.id, d.name FROM {pg}t1 a JOIN {maria}dim d ON a.dk = d.id ORDER BY a.id LIMIT 5"
    plan = fz.engine.plan(fz.sql(f"SELECT s.id FROM ({inner}) s WHERE s.id > 2"))
    assert "LIMIT" not in _fragment(plan, "pg").sql and plan.top_n_fallback is None
    big = inner.replace("LIMIT 5", f"LIMIT {INNER_JOIN_CAP + 1}")
    plan = fz.engine.plan(fz.sql(big))
    assert "LIMIT" not in _fragment(plan, "pg").sql and plan.top_n_fallback is None
    # the same below a LEFT JOIN is exact anywhere
    left = inner.replace(" JOIN ", " LEFT JOIN ")
    plan = fz.engine.plan(fz.sql(f"SELECT s.id FROM ({left}) s WHERE s.id > 2"))
    assert "LIMIT 5" in _fragment(plan, "pg").sql


def test_aggregate_or_distinct_over_the_join_is_not_pushed(fz):
    for sql in ("SELECT DISTINCT a.g FROM {pg}t1 a LEFT JOIN {maria}dim d ON a.dk = d.id ORDER BY a.g LIMIT 2",
                "SELECT a.g, count(*) AS n FROM {pg}t1 a LEFT JOIN {maria}dim d ON a.dk = d.id "
                "GROUP BY a.g ORDER BY a.g LIMIT 2"):
        plan = fz.engine.plan(fz.sql(sql))
        assert "LIMIT" not in _fragment(plan, "pg").sql
        got, want = fz(sql)
        _same(got, want)


def test_same_source_join_keeps_its_limit_in_the_source(fz):
    sql = "SELECT a.id, d.name FROM {pg}t1 a JOIN {pg}dim d ON a.dk = d.id ORDER BY a.id LIMIT 5"
    plan = fz.engine.plan(fz.sql(sql))
    assert plan.top_n_fallback is None and plan.pushed_whole
    got, want = fz(sql)
    _same(got, want)


def test_crm_orders_left_join_customers(gateway, reference):
    """The issue's shape: orders (Parquet) top-N by amount below the join with customers (PostgreSQL)."""
    sql = ("SELECT o.order_id, o.amount, c.name FROM {orders} o LEFT JOIN {customers} c ON o.customer_id = c.id "
           "ORDER BY o.amount DESC, o.order_id LIMIT 20")
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    lake = _fragment(plan, "lake")
    assert "ORDER BY" in lake.sql and "LIMIT 20" in lake.sql
    got = gateway.execute(sql.format(**GATEWAY_NAMES)).reader.read_all()
    want = reference(sql)
    assert got.to_pylist() == want.cast(got.schema).to_pylist()


def test_crm_orders_join_customers_inner(gateway, reference):
    """orders.customer_id points at no customer for some orders: the fallback keeps the answer exact."""
    sql = ("SELECT o.order_id, o.customer_id, c.region FROM {orders} o JOIN {customers} c ON o.customer_id = c.id "
           "ORDER BY o.customer_id DESC, o.order_id LIMIT 30")
    plan = gateway.plan(sql.format(**GATEWAY_NAMES))
    assert plan.top_n_fallback is not None
    got = gateway.execute(sql.format(**GATEWAY_NAMES)).reader.read_all()
    want = reference(sql)
    assert got.to_pylist() == want.cast(got.schema).to_pylist()


# -- planning only: declared keys and types (tests/planner/catalog.py's planning connectors) -----------------------

def _planner():
    from catalog import Catalog
    from connectors.files import ParquetConnector
    from connectors.mysql import MySQLConnector
    from connectors.postgresql import PostgreSQLConnector
    from planner import Planner
    from tests.planner.catalog import PlanningConnector

    lines = pa.schema([("order_id", pa.int64()), ("line", pa.int32()), ("code", pa.string()), ("n", pa.int64()),
                       ("u", pa.uint64())])
    keyed = pa.schema([("order_id", pa.int64()), ("line", pa.int32()), ("note", pa.string())])
    coded = pa.schema([pa.field("code", pa.string(), metadata={b"gateway.read_as_text": b"1"}), ("label", pa.string())])
    named = pa.schema([("code", pa.string()), ("label", pa.string()), ("k", pa.int64())])
    return Planner(Catalog({
        "lake": PlanningConnector("lake", ParquetConnector, {("main", "facts"): (lines, [], 1_000_000)},
                                  qualified=False),
        "pg": PlanningConnector("pg", PostgreSQLConnector, {
            ("public", "keyed"): (keyed, ["order_id", "line"], 10_000),
            ("public", "named"): (named, ["code"], 100),
        }),
        "my": PlanningConnector("my", MySQLConnector, {("db", "coded"): (coded, ["code"], 100)}),
    }), "postgres")


@pytest.mark.parametrize("join, pushed", [
    ("LEFT JOIN pg.public.keyed AS k ON k.order_id = f.order_id AND k.line = f.line", True),
    ("LEFT JOIN pg.public.keyed AS k ON k.order_id = f.order_id", False),  # half the composite key
    ("LEFT JOIN pg.public.keyed AS k ON k.order_id = f.order_id AND k.line = f.line + 1", False),  # not a column
    ("LEFT JOIN pg.public.named AS k ON k.code = f.code", True),
    ("LEFT JOIN pg.public.named AS k ON k.code = CAST(f.n AS TEXT)", False),
    ("LEFT JOIN pg.public.named AS k ON k.k = f.n", False),  # k is not the key
    ("LEFT JOIN my.db.coded AS k ON k.code = f.code", False),  # a key read as text
    ("RIGHT JOIN pg.public.named AS k ON k.code = f.code", False),
    ("FULL JOIN pg.public.named AS k ON k.code = f.code", False),
    ("LEFT JOIN pg.public.keyed AS k ON k.order_id = f.u AND k.line = f.line", False),  # unsigned against signed
])
def test_which_joins_keep_one_row_per_row(join, pushed):
    _, plan = _planner().plan(f"SELECT f.order_id, f.n FROM lake.main.facts AS f {join} ORDER BY f.n DESC LIMIT 10")
    assert ("LIMIT 10" in _fragment(plan, "lake").sql) is pushed, plan.explain()


def test_inner_join_fallback_plan_survives_output_renaming_and_binding():
    sql = ("SELECT f.n, k.note, f.n + 1 FROM lake.main.facts AS f JOIN pg.public.keyed AS k "
           "ON k.order_id = f.order_id AND k.line = f.line WHERE k.note = $1 ORDER BY f.n LIMIT 5 OFFSET 1")
    _, plan = _planner().plan(sql, ["x"])
    fallback = plan.top_n_fallback
    assert fallback is not None and (fallback.fetched, fallback.rows) == (6, 5)
    assert fallback.plan.schema.names == plan.schema.names
    assert "'x'" in _fragment(fallback.plan, "pg").sql and "$1" not in _fragment(fallback.plan, "pg").sql
    assert "LIMIT" not in _fragment(fallback.plan, "lake").sql
    assert fallback.needed(4, 6) and not fallback.needed(5, 6) and not fallback.needed(4, 5)


def test_the_top_n_rows_restrict_the_joined_table(fz):
    """The pushed top-N's rows are few: their keys go to the joined table as a dynamic filter, so it is not read
    whole (a LIMIT counts as a restriction of the build side)."""
    from planner.dynamic_filters import choose

    sql = "SELECT a.id, b.qty FROM {pg}t1 a JOIN {maria}t2 b ON a.k2 = b.id ORDER BY a.id LIMIT 5"
    plan = fz.engine.plan(fz.sql(sql))
    pg, maria = _fragment(plan, "pg"), _fragment(plan, "maria")
    assert pg.sql.endswith("LIMIT 5")
    assert [(f.build, f.probe) for f in choose(plan, fz.engine.catalog)] == [(pg.id, maria.id)]
    assert "dynamic filter: id IN (5 values)" in _explain(fz, sql, analyze=True)
    got, want = fz(sql)
    _same(got, want)
