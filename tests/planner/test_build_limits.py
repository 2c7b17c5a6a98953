"""Dynamic filters' costs without sources: how many build rows a probe waits for (``build_row_limit``: a share of
the probe's estimate, bounded by fragment memory; no wait for a probe read in place), when a key range is judged
useless, and the key lists MariaDB/MySQL gets as text."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
from sqlglot import exp

from connectors import base
from connectors.mysql import MySQLConnector
from planner import dynamic_filters
from planner.dynamic_filters import BUILD_ROW_LIMIT, build_row_limit, keeps_nearly_every_row
from tests.planner.catalog import planner


def _pair(probe_rows: int):
    """(build, probe, catalog) of a customers -> items dynamic filter, the probe estimated at ``probe_rows``."""
    planning = planner()
    _, plan = planning.plan("SELECT c.name, i.qty FROM pg.public.customers AS c JOIN lake.main.items AS i "
                            "ON i.order_id = c.id WHERE c.region = 'north'")
    build, probe = plan.fragments
    return build, dataclasses.replace(probe, estimated_rows=probe_rows), planning.catalog


def test_a_small_probe_waits_for_the_fixed_minimum():
    build, probe, catalog = _pair(800_000)
    assert build_row_limit(build, probe, catalog, None, in_place=False) == (
        BUILD_ROW_LIMIT, f"at least {BUILD_ROW_LIMIT:,} rows")


def test_a_large_probe_waits_for_a_share_of_its_rows():
    """TPC-H SF10 Q9 / Q10: a probe of 60M rows is worth waiting for a 1.5M-row build (and more)."""
    build, probe, catalog = _pair(60_000_000)
    limit, why = build_row_limit(build, probe, catalog, None, in_place=False)
    assert limit == 60_000_000 * dynamic_filters.BUILD_SHARE_OF_PROBE >= 1_500_000
    assert why == "0.1 of the probe's estimated 60,000,000 rows"


def test_the_wait_is_bounded_by_fragment_memory():
    build, probe, catalog = _pair(60_000_000)
    width = sum(8 if pa.types.is_integer(f.type) else dynamic_filters.VARIABLE_WIDTH_BYTES for f in build.schema)
    limit, why = build_row_limit(build, probe, catalog, 64 << 20, in_place=False)
    assert limit == (64 << 20) // width < 6_000_000
    assert why == f"what 64 MiB of fragment memory hold at ~{width} bytes a row"


def test_a_probe_read_in_place_waits_for_what_memory_holds():
    """The residual plan starts once every fetched fragment was read: waiting for a build costs nothing."""
    build, probe, catalog = _pair(1_000)
    limit, why = build_row_limit(build, probe, catalog, 256 << 20, in_place=True)
    assert limit > BUILD_ROW_LIMIT and why.startswith("the probe is read in place")


class _Statistics:
    """The one catalog call ``keeps_nearly_every_row`` makes: order_id over 1..1,000,000 with 1,000,000 values."""

    def statistics(self, ref):
        return base.TableStatistics(rows=5_000_000, bytes=None, columns={
            "order_id": base.ColumnStatistics(distinct=1_000_000, min=1, max=1_000_000)})


def test_only_a_range_is_judged_by_its_span():
    """57,069 keys spread over 1..1,000,000 (TPC-H Q10's orders): useless as a range, selective as a list or a
    semi-join (the span was judged whatever was sent, so Q10's in-place lineitem got no semi-join)."""
    _, probe, _ = _pair(5_000_000)
    keys = pa.array(range(1, 1_000_000, 17), pa.int64())
    assert keeps_nearly_every_row(probe, "order_id", keys, _Statistics()) is None
    assert keeps_nearly_every_row(probe, "order_id", keys, _Statistics(), ranged=True) == (
        "the keys' range covers 100% of the column's (1..1000000)")


def _mysql(packet: int = 16 << 20) -> MySQLConnector:
    connector = MySQLConnector("maria", {"uri": "mysql://nobody@127.0.0.1:1/none"})  # never connected
    connector._packet = packet
    return connector


def test_mariadb_key_lists_are_text():
    column = exp.column("k", table="o")
    many = _mysql().key_filter(column, pa.array(range(5_000), pa.int64()))
    assert many.sql(dialect="mysql") == "o.k IN (" + ",".join(map(str, range(5_000))) + ")"
    texts = _mysql().key_filter(column, pa.array(["it's", "a\\b", "tab\t"]))
    assert texts.sql(dialect="mysql") == "o.k IN ('it''s', _utf8mb4 X'615c62', _utf8mb4 X'74616209')"
    dates = _mysql().key_filter(column, pa.array([0, 1], pa.date32()))
    assert dates.sql(dialect="mysql") == "o.k IN (DATE'1970-01-01', DATE'1970-01-02')"


def test_mariadb_key_lists_past_the_packet_share_are_ranges():
    keys = pa.array(range(30_000, 0, -1), pa.int64())
    condition = _mysql(packet=100_000).key_filter(exp.column("k"), keys)
    assert condition.sql(dialect="mysql") == "k BETWEEN 1 AND 30000"


def test_a_one_token_key_list_keeps_a_mariadb_fragment_from_key_range_splits():
    """A dynamic filter's key list is index lookups of few rows: the parallel reader must not spread it over
    primary-key ranges, also when the list was written as one token (past KEY_NODES keys)."""
    from sqlglot import parse_one

    from connectors.mysql import _filters_by_key_set

    condition = _mysql().key_filter(exp.column("other", table="o"), pa.array(range(5_000), pa.int64()))
    select = parse_one("SELECT o.id FROM db.o AS o").where(condition)
    assert _filters_by_key_set(select, "id")
    assert not _filters_by_key_set(parse_one("SELECT o.id FROM db.o AS o WHERE o.other IN (1, 2)"), "id")


def test_a_small_probe_of_more_keys_than_an_in_list_holds_is_read_in_place():
    """A file probe below ``in_place_min_rows`` is fetched, unless its build is estimated past ``IN_LIST_LIMIT``
    keys: fetched it would get a key range, read in place it takes a semi-join of all of them."""
    from gateway.execution.schedule import decide
    from gateway.settings import LimitsConfig

    planning = planner()
    join = ("SELECT e.kind, o.amount FROM pg.public.orders AS o JOIN lake.main.events AS e "
            "ON e.customer_id = o.customer_id WHERE o.qty {}")
    assert base.IN_LIST_LIMIT == 20_000
    for condition, estimated, in_place in (("IN (3, 4)", 40_000, {"__fragment_1"}), ("= 3", 20_000, set())):
        _, plan = planning.plan(join.format(condition))
        assert [dynamic_filters.estimated_rows(f, planning.catalog) for f in plan.fragments] == [estimated, 200_000]
        # the planning catalog's lake reads nothing: a cache rule on it (``cached_source``) makes it read in place
        schedule = decide(plan, planning.catalog, LimitsConfig(), lambda source: source == "lake")
        assert [(d.build, d.probe) for d in schedule.filters] == [("__fragment_0", "__fragment_1")]
        assert set(schedule.in_place) == in_place
