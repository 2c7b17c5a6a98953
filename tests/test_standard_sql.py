"""Standard SQL that DataFusion does not parse, answered the same on every source.

SQL:2008's ``FETCH FIRST n ROWS ONLY`` (what JDBC-era tools and SQL Server/Oracle/Db2 habits write) answers what
``LIMIT n`` answers on every source, alone, after OFFSET and over a federated join; ``WITH TIES`` answers the
first n rows and those tying with the n-th (as a ``RANK() <= n`` filter, ``planner.planner._with_ties``; checked
against PostgreSQL's own answers on every placement in ``tests/fuzz/test_subqueries_as_values.py``); ``PERCENT``,
and ``WITH TIES`` after an OFFSET, are refused with a message that names them. DataFusion itself has no FETCH
clause ("FETCH clause is not supported yet"), so before this every such query failed to plan.

``x BETWEEN SYMMETRIC a AND b`` (SQL:1999) is ``x BETWEEN a AND b OR x BETWEEN b AND a``, as PostgreSQL itself
rewrites it: it answered when pushed to PostgreSQL and failed with a parser error wherever DataFusion ran it."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from tests.world import GATEWAY_NAMES

QUERIES = {
    "pg": ("SELECT id, name FROM {customers} ORDER BY id {fetch}", "FETCH FIRST 4 ROWS ONLY", "LIMIT 4"),
    "maria": ("SELECT shipment_id FROM {shipments} ORDER BY shipment_id {fetch}", "OFFSET 2 ROWS FETCH NEXT 3 ROWS ONLY",
              "LIMIT 3 OFFSET 2"),
    "lake": ("SELECT order_id FROM {orders} ORDER BY order_id {fetch}", "FETCH FIRST ROW ONLY", "LIMIT 1"),
    "sqlite": ("SELECT product_id FROM {products} ORDER BY product_id {fetch}", "FETCH FIRST 2 ROWS ONLY", "LIMIT 2"),
    "federated": ("SELECT c.id, count(*) AS n FROM {customers} c JOIN {orders} o ON o.customer_id = c.id "
                  "GROUP BY c.id ORDER BY n DESC, c.id {fetch}", "FETCH FIRST 5 ROWS ONLY", "LIMIT 5"),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_fetch_first_answers_as_limit(gateway, name):
    sql, fetch, limit = QUERIES[name]
    got = gateway.execute(sql.format(fetch=fetch, **GATEWAY_NAMES)).reader.read_all()
    want = gateway.execute(sql.format(fetch=limit, **GATEWAY_NAMES)).reader.read_all()
    assert got.num_rows == int(limit.split()[1])  # every table holds more rows than the limit
    assert got.to_pylist() == want.to_pylist()


@pytest.mark.parametrize(("clause", "named"), [("FETCH FIRST 10 PERCENT ROWS ONLY", "PERCENT"),
                                              ("OFFSET 2 ROWS FETCH FIRST 3 ROWS WITH TIES", "WITH TIES")])
def test_fetch_first_percent_or_ties_after_an_offset_is_refused_by_name(gateway, clause, named):
    with pytest.raises(GatewayError) as info:
        gateway.plan(f"SELECT id FROM {GATEWAY_NAMES['customers']} ORDER BY id {clause}")
    assert info.value.code == "invalid_request"
    assert named in str(info.value)


KEYS = {"pg": ("customers", "id"), "maria": ("shipments", "shipment_id"), "lake": ("orders", "order_id"),
        "sqlite": ("products", "product_id")}


@pytest.mark.parametrize("source", list(KEYS))
def test_between_symmetric_answers_with_bounds_in_either_order(gateway, source):
    table, key = KEYS[source]
    name = GATEWAY_NAMES[table]
    every = gateway.execute(f"SELECT {key} FROM {name}").reader.read_all().column(0).to_pylist()
    low, high = sorted(every)[2], sorted(every)[6]
    got = gateway.execute(f"SELECT {key} FROM {name} WHERE {key} BETWEEN SYMMETRIC {high} AND {low} "
                          f"ORDER BY {key}").reader.read_all().column(0).to_pylist()
    assert got == sorted(k for k in every if low <= k <= high)
    # a NULL bound: each branch is NULL or FALSE, so NOT keeps no row (PostgreSQL's own answer)
    none = gateway.execute(f"SELECT {key} FROM {name} WHERE NOT ({key} BETWEEN SYMMETRIC {low} AND NULL)")
    assert none.reader.read_all().num_rows == 0
