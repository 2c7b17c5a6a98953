"""A residual join that explodes stops computing the moment its query is cancelled, times out or loses its
REST client, and the next query answers at once. Issue: a runaway local join burned CPU for 95 s after its
REST client gave up. Cause: DataFusion aborts a cancelled plan's Tokio tasks only at their next yield point,
and a join feeding an aggregate yields none (apache/datafusion#19358), so dropping the stream did not stop it;
the residual plan's joins now carry a kill switch (``connectors.arrow.datafusion.register_kill_switch``).

Real servers: PostgreSQL (``crm.customers``, 3,000 rows) and a Parquet folder (``orders``, 6,000 rows); the
join cannot be pushed to one source. The cross join below has 108 billion candidate rows: it never ends by
itself within a test. Cost: about 10 s in all (each case waits 1-2 s for its limit and watches 1.5 s of CPU).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import httpx
import pytest

from gateway.api import create_app
from gateway.errors import QueryCancelledError, QueryTimeoutError
from gateway.execution.engine import QueryEngine
from gateway.execution.residual import guarded_sql
from gateway.settings import settings_from_dict
from tests.demo_support import running_app

#: PostgreSQL x Parquet x Parquet with a filter over all three: a nested-loop join under a count
RUNAWAY = ("SELECT count(*) AS n FROM pg.crm.customers c CROSS JOIN lake.orders o CROSS JOIN lake.orders p "
           "WHERE c.score + o.amount > p.amount")
#: an equi-join on a low-cardinality key, four times: a hash join explosion under a count
EXPLODING = ("SELECT count(*) AS n FROM lake.orders a JOIN lake.orders b ON a.status = b.status "
             "JOIN lake.orders c ON c.status = b.status JOIN pg.crm.customers e ON e.id = c.customer_id")
NEXT = "SELECT c.region, count(*) AS n FROM pg.crm.customers c JOIN lake.orders o ON o.customer_id = c.id " \
       "GROUP BY c.region"
#: CPU seconds the process may spend per wall second once the query stopped (idle: ~0.01; a runaway join
#: takes one to two cores, at least ~0.5 even when the 2-core machine is shared)
IDLE_CPU = 0.2


@pytest.fixture(scope="module")
def settings(pg_database, files):
    return settings_from_dict({
        "sources": [{"name": "pg", "kind": "postgresql", "uri": pg_database},
                    {"name": "lake", "kind": "parquet", "path": str(files["lake"])}],
        "limits": {"query_timeout_s": 60},
    }, base_dir=files["root"])


@pytest.fixture()
def gateway(settings):
    engine = QueryEngine(settings)
    try:
        yield engine
    finally:
        engine.close()


def _process_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def cpu_per_second(seconds: float = 1.5, settle_s: float = 0.3, within_s: float = 6.0) -> float:
    """The whole process's CPU seconds per wall second over ``seconds`` (after ``settle_s``): the first such
    window at idle within ``within_s``, else the last one. A join stops at its next kill-switch check, which
    a nested-loop join over millions of build rows reaches after one chunk: not always within the first window
    on a loaded machine, but within a few seconds."""
    time.sleep(settle_s)
    deadline = time.perf_counter() + within_s
    while True:
        c0, t0 = _process_cpu_s(), time.perf_counter()
        time.sleep(seconds)
        rate = (_process_cpu_s() - c0) / (time.perf_counter() - t0)
        if rate < IDLE_CPU or time.perf_counter() > deadline:
            return rate


def _final_entry(client: httpx.Client, query_id: str, limit_s: float = 5.0) -> dict:
    """The query's entry in ``/v1/history`` once it is no longer running (or after ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while True:
        entries = [e for e in client.get("/v1/history").json() if e["query_id"] == query_id]
        if entries and (entries[0]["status"] != "running" or time.monotonic() > deadline):
            return entries[0]
        assert time.monotonic() < deadline, f"{query_id} is not in the history"
        time.sleep(0.05)


def assert_next_query_is_prompt(gateway: QueryEngine) -> None:
    t0 = time.perf_counter()
    assert gateway.execute(NEXT).reader.read_all().num_rows > 0
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, f"the next query took {elapsed:.1f} s"  # ~0.05 s alone; slack for a shared machine


@pytest.mark.parametrize("sql", [RUNAWAY, EXPLODING], ids=["cross-join", "hash-join-explosion"])
def test_timed_out_join_stops_computing(gateway, sql):
    t0 = time.perf_counter()
    with pytest.raises(QueryTimeoutError):
        gateway.execute(sql, timeout_s=1).reader.read_all()
    assert time.perf_counter() - t0 < 5.0
    cpu = cpu_per_second()
    print(f"\nCPU after the time limit: {cpu:.2f} s/s")
    assert cpu < IDLE_CPU, f"the cancelled join still computes: {cpu:.2f} CPU s/s"
    assert_next_query_is_prompt(gateway)


def test_cancelled_join_stops_computing(gateway):
    result = gateway.execute(RUNAWAY)
    threading.Timer(1.0, result.cancel).start()
    with pytest.raises(QueryCancelledError):
        result.reader.read_all()
    cpu = cpu_per_second()
    print(f"\nCPU after cancel: {cpu:.2f} s/s")
    assert cpu < IDLE_CPU, f"the cancelled join still computes: {cpu:.2f} CPU s/s"
    assert_next_query_is_prompt(gateway)


def test_rest_client_that_leaves_stops_the_join(gateway):
    with running_app(create_app(gateway)) as url:
        host, port = url.removeprefix("http://").split(":")
        body = json.dumps({"sql": RUNAWAY, "query_id": "runaway-rest"}).encode()
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(1.5)  # the join is running
        sock.close()
        with httpx.Client(base_url=url, timeout=30) as client:
            entry = _final_entry(client, "runaway-rest")
            assert entry["status"] == "cancelled", {k: entry[k] for k in ("status", "rows", "seconds", "error")}
            cpu = cpu_per_second()
            print(f"\nCPU after the REST client left: {cpu:.2f} s/s")
            assert cpu < IDLE_CPU, f"the abandoned join still computes: {cpu:.2f} CPU s/s"
            t0 = time.perf_counter()
            response = client.post("/v1/query", json={"sql": NEXT})
            assert response.status_code == 200
            assert time.perf_counter() - t0 < 3.0


@pytest.mark.parametrize(("sql", "guarded"), [
    ('SELECT "a"."x" FROM "f0" AS "a" LEFT JOIN "f1" AS "b" ON "a"."x" = "b"."y"',
     'SELECT "a"."x" FROM "f0" AS "a" LEFT JOIN "f1" AS "b" ON "a"."x" = "b"."y" '
     'AND __GATEWAY_ALIVE("a"."x" IS NULL, "b"."y" IS NULL)'),
    ('SELECT "a"."x" FROM "f0" AS "a", "f1" AS "b" WHERE "a"."x" < "b"."y"',
     'SELECT "a"."x" FROM "f0" AS "a" JOIN "f1" AS "b" ON __GATEWAY_ALIVE("a"."x" IS NULL, "b"."y" IS NULL) '
     'WHERE "a"."x" < "b"."y"'),
    # a derived table: the column the query reads of it, never one it pruned
    ('SELECT "s"."n" FROM (SELECT MAX("z") AS "m", COUNT(*) AS "n" FROM "f1") AS "s" JOIN "f0" AS "a" '
     'ON "a"."x" = "s"."n"',
     'SELECT "s"."n" FROM (SELECT MAX("z") AS "m", COUNT(*) AS "n" FROM "f1") AS "s" JOIN "f0" AS "a" '
     'ON "a"."x" = "s"."n" AND __GATEWAY_ALIVE("s"."n" IS NULL, "a"."x" IS NULL)'),
    # unchanged: FULL, USING, and an input with no known column
    ('SELECT "a"."x" FROM "f0" AS "a" FULL JOIN "f1" AS "b" ON "a"."x" = "b"."y"', None),
    ('SELECT "x" FROM "f0" AS "a" JOIN "f1" AS "b" USING ("x")', None),
    ('SELECT COUNT(*) FROM "f0" AS "a" CROSS JOIN (SELECT 1 AS "one") AS "s"', None),
])
def test_guarded_sql(sql, guarded):
    """``guarded_sql``: the kill switch in inner, cross, comma and left/right joins, over columns the query
    computes anyway; the SQL unchanged where no join qualifies."""
    assert guarded_sql(sql, (("f0", "x"), ("f1", "y"))) == (guarded or sql)
