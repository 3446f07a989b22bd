import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spimpact.publish.disclosure import (
    DisclosureRule,
    disclose_count,
    disclose_percentage,
    disclose_rate,
    disclose_summary,
    disclose_table,
    format_for_publication,
    secondary_suppression,
)


@pytest.mark.parametrize(
    ("count", "expected"),
    # SPEC §3.2 (NHS Digital 2018 method): 0 stays 0, 1-7 suppressed, others rounded to
    # the nearest 5 (8 -> 10, 12 -> 10, 13 -> 15).
    [(0, 0), (1, pd.NA), (7, pd.NA), (8, 10), (12, 10), (13, 15), (102, 100), (103, 105)],
)
def test_count_rule_follows_nhsd_2018(count, expected):
    result = disclose_count([count])[0]
    assert (result is pd.NA) if expected is pd.NA else result == expected


@pytest.mark.parametrize(
    ("name", "count", "expected"),
    [
        ("legacy_1to5_secondary", 5, pd.NA),
        ("legacy_1to5_secondary", 6, 6),
        ("legacy_1to5_secondary", 13, 13),
        ("nhsd_2018", 6, pd.NA),
    ],
)
def test_named_rules(name, count, expected):
    result = disclose_count([count], DisclosureRule.named(name))[0]
    assert (result is pd.NA) if expected is pd.NA else result == expected


def test_unknown_rule_name_raises():
    with pytest.raises(ValueError, match="unknown disclosure rule"):
        DisclosureRule.named("strict")


def test_row_totals_trigger_secondary_suppression_of_the_next_smallest_cell():
    counts = np.array([[3, 20, 40], [30, 25, 50]])
    mask = secondary_suppression(counts, counts <= 7, totals="rows")
    assert mask.tolist() == [[True, True, False], [False, False, False]]


def test_suppression_cascades_across_rows_and_columns():
    # Worked by hand, lines visited rows first then columns, repeated until stable:
    # pass 1: row 0 holds the primary 2 alone -> its smallest other cell, 10, goes;
    #   column 0 holds the 2 alone -> 11 goes; column 1 holds the 10 alone -> 12 goes.
    # pass 2: row 1 holds the 11 alone -> 30 goes; row 2 holds the 12 alone -> 60 goes.
    # pass 3: every row has two and columns 0-1 three suppressed cells: stable.
    counts = np.array([[2, 10, 50], [11, 30, 40], [60, 12, 70]])
    mask = secondary_suppression(counts, counts <= 7, totals="both")
    assert mask.tolist() == [[True, True, False]] * 3


def test_zero_cells_are_protected_last():
    counts = np.array([[4, 0, 9, 30]])
    mask = secondary_suppression(counts, counts == 4, totals="rows")
    # the 9 goes, not the structural zero
    assert mask.tolist() == [[True, False, True, False]]


def test_long_table_uses_column_totals_within_each_dimension():
    table = pd.DataFrame(
        {
            "dimension": ["sex"] * 2 + ["imd_quintile"] * 5,
            "category": ["female", "male", "1", "2", "3", "4", "5"],
            "n_referrals": [150, 60, 5, 40, 50, 55, 60],
        }
    )
    out = disclose_table(table, ["n_referrals"], totals="columns", by="dimension")
    assert out["n_referrals"].tolist() == [150, 60, pd.NA, pd.NA, 50, 55, 60]
    assert str(out["n_referrals"].dtype) == "Int64"


def test_without_totals_only_primary_suppression():
    table = pd.DataFrame({"n": [5, 40, 50]})
    assert disclose_table(table, ["n"])["n"].tolist() == [pd.NA, 40, 50]


def test_missing_count_column_raises():
    with pytest.raises(ValueError, match="not found"):
        disclose_table(pd.DataFrame({"n": [1]}), ["count"])


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.int64, st.tuples(st.integers(2, 5), st.integers(2, 5)), elements=st.integers(0, 60))
)
def test_no_published_line_keeps_a_lone_suppressed_cell(counts):
    primary = (counts >= 1) & (counts <= 7)
    mask = secondary_suppression(counts, primary, totals="both")
    assert (mask >= primary).all()
    for line in [*mask, *mask.T]:
        assert line.sum() != 1


def test_rate_is_suppressed_with_its_count():
    rates = disclose_rate([12.5, 3.0, 0.0, 40.0], [25, 3, 0, 80])
    assert rates.tolist() == [12.5, pd.NA, 0.0, 40.0]


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (33, 100, 35.0),  # 35 / 100 from the rounded counts, whole percent
        (1234, 5000, 24.7),  # denominator >= 4,000: one decimal
        (5, 100, pd.NA),  # numerator suppressed
        (0, 7, pd.NA),  # fewer than 8 behind it
    ],
)
def test_percentage_precision_follows_rounded_denominator(numerator, denominator, expected):
    result = disclose_percentage([numerator], [denominator])[0]
    assert (result is pd.NA) if expected is pd.NA else result == expected


def test_summary_needs_eight_people():
    assert disclose_summary([2.5, 3.5], [7, 8]).tolist() == [pd.NA, 3.5]


def test_suppressed_cells_print_as_star():
    out = format_for_publication(pd.DataFrame({"n": pd.array([pd.NA, 10], dtype="Int64")}))
    assert out["n"].tolist() == ["*", 10]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 clients were left out", "fewer than 8 clients were left out"),
        ("82 of 7916 treated units found no control", "80 of 7,915 treated units found no control"),
        ("2,847 row(s) were dropped", "2,845 row(s) were dropped"),
        ("0 people", "0 people"),
        # not counts: years, months, decimals, percentages, money, ranges, already safe text
        ("Daw & Hatfield 2018 found", "Daw & Hatfield 2018 found"),
        ("months -24 to -19", "months -24 to -19"),
        (
            "1.5 people, 12% of clients, £48 per patient",
            "1.5 people, 12% of clients, £48 per patient",
        ),
        ("bins with 1–7 people", "bins with 1–7 people"),
        ("fewer than 8 clients", "fewer than 8 clients"),
    ],
)
def test_counts_written_in_sentences_are_controlled(text, expected):
    from spimpact.publish.disclosure import disclose_counts_in_text

    assert disclose_counts_in_text(text) == expected
