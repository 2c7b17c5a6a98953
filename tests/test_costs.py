"""Cardinality estimates of planner/costs.py on constructed statistics (no database)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot

from connectors.base import ColumnStatistics, TableStatistics
from planner.costs import (
    DEFAULT_EQ_SEL,
    DEFAULT_INEQ_SEL,
    DEFAULT_LIKE_SEL,
    DEFAULT_NULL_SEL,
    column_lookup,
    estimate_fragment_rows,
    group_rows,
    join_rows,
    selectivity,
)

ROWS = 10_000
STATS = TableStatistics(rows=ROWS, bytes=None, columns={
    "k": ColumnStatistics(distinct=100, null_fraction=0.0, min=0, max=100),
    "status": ColumnStatistics(distinct=4, null_fraction=0.0, min="a", max="z",
                               most_common=(("open", 0.7), ("closed", 0.2))),
    "v": ColumnStatistics(distinct=1000, null_fraction=0.2, min=0.0, max=10.0),
    "d": ColumnStatistics(distinct=366, null_fraction=0.0, min=dt.date(2024, 1, 1), max=dt.date(2024, 12, 31)),
    "name": ColumnStatistics(distinct=ROWS, null_fraction=0.0, min="a", max="z"),
})


def sel(sql: str) -> float:
    return selectivity(sqlglot.parse_one(sql), column_lookup(STATS), ROWS)


def test_equality_is_one_over_distinct():
    assert sel("k = 5") == pytest.approx(1 / 100)


def test_equality_with_a_most_common_value_is_its_frequency():
    assert sel("status = 'open'") == pytest.approx(0.7)


def test_equality_with_a_rare_value_shares_the_rest_among_the_other_values():
    assert sel("status = 'pending'") == pytest.approx((1 - 0.7 - 0.2) / 2)


def test_equality_without_statistics_is_postgresql_default():
    assert sel("unknown_column = 1") == DEFAULT_EQ_SEL


def test_not_equal_complements_equality_and_nulls():
    assert sel("v <> 1.5") == pytest.approx(1 - 0.8 / 1000 - 0.2)


def test_range_interpolates_between_min_and_max():
    assert sel("k < 25") == pytest.approx(0.25)
    assert sel("k >= 75") == pytest.approx(0.25)
    assert sel("25 > k") == pytest.approx(0.25)  # literal on the left


def test_range_scales_by_non_null_fraction():
    assert sel("v < 5") == pytest.approx(0.5 * 0.8)


def test_range_outside_bounds_is_zero_or_all():
    assert sel("k > 1000") == 0.0
    assert sel("k < 1000") == pytest.approx(1.0)


def test_range_on_dates_interpolates_days():
    expected = (dt.date(2024, 7, 1) - dt.date(2024, 1, 1)).days / (dt.date(2024, 12, 31) - dt.date(2024, 1, 1)).days
    assert sel("d < DATE '2024-07-01'") == pytest.approx(expected)
    assert sel("d < '2024-07-01'") == pytest.approx(expected)  # a string literal compared with a date


def test_range_without_bounds_is_one_third():
    assert sel("status < 'm'") == pytest.approx(DEFAULT_INEQ_SEL)
    assert sel("x > 3") == pytest.approx(DEFAULT_INEQ_SEL)


def test_between_is_the_difference_of_two_interpolations():
    assert sel("k BETWEEN 10 AND 30") == pytest.approx(0.2 + 1 / 100)


def test_in_list_sums_its_equalities():
    assert sel("k IN (1, 2, 3)") == pytest.approx(3 / 100)
    assert sel("status IN ('open', 'closed')") == pytest.approx(0.9)
    assert sel("k IN (1, 1, 1)") == pytest.approx(1 / 100)  # duplicates count once


def test_and_multiplies_under_independence():
    assert sel("k = 5 AND status = 'open'") == pytest.approx(0.01 * 0.7)


def test_a_lower_and_an_upper_bound_on_one_column_are_one_range():
    """PostgreSQL's range pairs: ``P(x >= lo) + P(x < hi) - 1``, not their product (which kept 25% of TPC-H
    lineitem for Q14's one month of ship dates, where 1.2% is right); nulls counted once; the tightest bound of
    each side; bounds of other columns, or without statistics, multiply as before."""
    assert sel("k >= 20 AND k < 30") == pytest.approx(0.1)
    assert sel("(k >= 20 AND status = 'open') AND k < 30") == pytest.approx(0.1 * 0.7)
    assert sel("v > 2 AND v <= 4") == pytest.approx(0.2 * 0.8)  # the non-null 80%
    assert sel("k > 10 AND k > 20 AND k < 30") == pytest.approx(sel("k > 20 AND k < 30"))
    assert sel("d >= DATE '2024-03-01' AND d < DATE '2024-04-01'") == pytest.approx(31 / 365)
    assert sel("k >= 30 AND k < 20") == 0.0  # an empty range
    assert sel("k >= 20 AND x < 30") == pytest.approx(0.8 * DEFAULT_INEQ_SEL)


def test_or_adds_minus_the_overlap():
    assert sel("k < 50 OR status = 'open'") == pytest.approx(0.5 + 0.7 - 0.5 * 0.7)


def test_not_complements():
    assert sel("NOT (k < 25)") == pytest.approx(0.75)


def test_is_null_is_the_null_fraction():
    assert sel("v IS NULL") == pytest.approx(0.2)
    assert sel("v IS NOT NULL") == pytest.approx(0.8)
    assert sel("x IS NULL") == DEFAULT_NULL_SEL


def test_like_prefix_versus_default():
    assert sel("name LIKE 'abc%'") == pytest.approx(0.2 ** 3)
    assert sel("name LIKE '%abc'") == DEFAULT_LIKE_SEL
    assert sel("status LIKE 'open'") == pytest.approx(0.7)  # no wildcard: an equality


def test_not_like_keeps_the_rows_like_drops():
    # sqlglot parses ``x NOT LIKE p`` as Like(negate=True), not as NOT over a LIKE
    assert sel("name NOT LIKE 'abc%'") == pytest.approx(1 - 0.2 ** 3)
    assert sel("name NOT LIKE 'abc%'") == pytest.approx(sel("NOT (name LIKE 'abc%')"))
    assert sel("status NOT ILIKE '%x'") == pytest.approx(1 - DEFAULT_LIKE_SEL)


def test_comparison_with_null_is_never_true():
    assert sel("k = NULL") == 0.0


def test_selectivity_rejects_what_is_not_an_expression():
    with pytest.raises(TypeError, match="sqlglot expression"):
        selectivity("k = 1", column_lookup(STATS), ROWS)


def test_join_rows_divides_by_the_larger_distinct_count():
    assert join_rows(1_000_000, 10_000, 10_000, 10_000) == pytest.approx(1_000_000)
    assert join_rows(1000, 1000, 10, 100) == pytest.approx(10_000)


def test_join_rows_with_unknown_distinct_assumes_a_key():
    assert join_rows(1000, 50, None, None) == pytest.approx(1000)
    assert join_rows(1000, 50, 10, None) == pytest.approx(1000 * 50 / 50)


def test_join_rows_rejects_negative_rows():
    with pytest.raises(ValueError, match="rows >= 0"):
        join_rows(-1, 5, None, None)


def test_group_rows_is_the_product_of_distinct_counts_capped_by_input():
    assert group_rows(1_000_000, [10, 12]) == pytest.approx(120)
    assert group_rows(50, [100, 100]) == pytest.approx(50)
    assert group_rows(1000, []) == 1.0


def test_fragment_rows_apply_the_where_and_the_limit():
    where = sqlglot.parse_one("SELECT * FROM t WHERE t.k < 25 AND t.status = 'open'").args["where"]
    assert estimate_fragment_rows(STATS, where) == pytest.approx(ROWS * 0.25 * 0.7)
    assert estimate_fragment_rows(STATS, where, limit=100) == pytest.approx(100)
    assert estimate_fragment_rows(TableStatistics(None, None), where) is None


def test_sorted_sample_blocks_scale_distinct_values_with_the_rows():
    """A key stored sorted (four rows per order) sampled in contiguous blocks: Duj1 alone keeps the sample's
    count; the blocks show the values keep changing, so the count grows with the table."""
    import pyarrow as pa

    from connectors.statistics import sample_column_statistics

    keys = [k // 4 for k in range(0, 1_000)] + [k // 4 for k in range(400_000, 401_000)]
    sample = pa.table({"k": keys, "shuffled": [k % 50 for k in range(2_000)]})
    stats = sample_column_statistics(sample, 1_000_000, blocks=[1_000, 1_000])
    assert stats["k"].distinct == 250_000
    assert stats["shuffled"].distinct == 50  # not sorted within a block: Duj1 (every value repeats)
    assert sample_column_statistics(sample, 1_000_000)["k"].distinct == 500  # no blocks known
