from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from spimpact.models.spc import MDC_COLOURS, _runs, _trend, _two_in_three, xmr

REF = Path(__file__).parent.parent / "reference" / "reach"

MDC_EXAMPLE = [1, 2, 1, 2, 10, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1]


@pytest.mark.parametrize(
    ("screen_outliers", "upper", "mean", "lower"),
    [(False, 6.95, 1.94, -3.06), (True, 4.60, 1.94, -0.72)],
)
def test_limits_match_nhsrplotthedots_deviations_vignette(screen_outliers, upper, mean, lower):
    """NHSRplotthedots 0.2.0, vignettes/deviations.Rmd, "Treatment of outlying points":
    ptd_spc(tibble(data = c(1, 2, 1, 2, 10, 1, 2, ...), date), value_field = data,
    date_field = date, screen_outliers = FALSE) gives "UPL = 6.95, Mean = 1.94,
    LPL = -3.06", the Making Data Count Excel tool's output; screen_outliers = TRUE gives
    UPL 4.6, LPL -0.72. The vignette prints two decimals, hence atol 0.005."""
    chart = xmr(MDC_EXAMPLE, screen_outliers=screen_outliers, improvement="up")
    assert_allclose([chart.upper, chart.mean, chart.lower], [upper, mean, lower], atol=0.005)
    # The vignette's figure shows point 5 as the single blue (improvement) point.
    assert (
        chart.points["point_type"].tolist()
        == ["common_cause"] * 4 + ["special_cause_improvement"] + ["common_cause"] * 13
    )


@pytest.mark.parametrize(
    ("outlier", "screen_outliers", "mean", "lower", "upper"),
    [
        (None, True, 0.1416238, -3.01138, 3.294627),
        (10.0, True, 0.6694159, -2.383666, 3.722497),
        (10.0, False, 0.6694159, -4.596625, 5.935457),
    ],
)
def test_limits_match_nhsrplotthedots_snapshot(outlier, screen_outliers, mean, lower, upper):
    """NHSRplotthedots 0.2.0 tests/testthat/test-ptd_spc_standard.R, "it returns expected
    values": set.seed(123); y = rnorm(20) (r1), then y[15] <- 10 with screen_outliers
    TRUE (r2) and FALSE (r3); expected mean_col, lpl, upl from
    tests/testthat/_snaps/ptd_spc_standard.md (printed to 7 significant digits). The
    inputs were printed to 8 decimals, so agreement is to ~1e-7."""
    y = pd.read_csv(REF / "spc_rnorm_seed123.csv")["y"].to_numpy()
    if outlier is not None:
        y[14] = outlier
    chart = xmr(y, screen_outliers=screen_outliers)
    assert_allclose([chart.mean, chart.lower, chart.upper], [mean, lower, upper], atol=2e-6)
    assert not chart.points["special_cause"].iloc[:14].any()


@pytest.mark.parametrize(
    ("values", "expected_flag", "expected_direction"),
    [
        # ptd_seven_point_trend tests in test-ptd_calculate_point_type.R
        (list(range(1, 7)), [0] * 6, [0] * 6),
        ([1, 2, 3, 3, 4, 5, 6], [0] * 7, [0] * 7),
        (list(range(1, 8)), [1] * 7, [1] * 7),
        ([2, *range(1, 8), 3], [0] + [1] * 7 + [0], [0] + [1] * 7 + [0]),
        (list(range(7, 0, -1)), [1] * 7, [-1] * 7),
        ([2, *range(7, 0, -1), 3], [0] + [1] * 7 + [0], [0] + [-1] * 7 + [0]),
    ],
)
def test_trend_rule_matches_nhsrplotthedots(values, expected_flag, expected_direction):
    """NHSRplotthedots ptd_seven_point_trend + ptd_part_of_seven_trend unit tests."""
    flag, direction = _trend(np.asarray(values, dtype=float), 7)
    assert_array_equal(flag, np.asarray(expected_flag, dtype=bool))
    assert_array_equal(direction, expected_direction)


def test_peak_between_two_trends_takes_the_later_direction():
    values = np.array([*range(1, 8), *range(6, 0, -1)], dtype=float)
    flag, direction = _trend(values, 7)
    assert flag.all()
    assert direction[6] == -1
    assert (direction[:6] == 1).all() and (direction[7:] == -1).all()


@pytest.mark.parametrize(
    ("sides", "expected"),
    [
        # ptd_seven_point_one_side_mean + ptd_part_of_seven_trend
        ([1] * 6, [0] * 6),
        ([1] * 6 + [-1], [0] * 7),
        ([1] * 8 + [-1], [1] * 8 + [0]),
        ([-1] * 8 + [1], [1] * 8 + [0]),
        ([1] * 3 + [0] + [1] * 4, [0] * 8),
    ],
)
def test_shift_rule_matches_nhsrplotthedots(sides, expected):
    sides = np.asarray(sides)
    flag = _runs(sides == 1, 7) | _runs(sides == -1, 7)
    assert_array_equal(flag, np.asarray(expected, dtype=bool))


@pytest.mark.parametrize(
    ("beyond", "sides", "expected"),
    [
        # ptd_two_in_three + ptd_part_of_two_in_three unit tests
        ([1, 0, 1], [1, 1, 1], [1, 0, 1]),
        ([0, 1, 1], [1, 1, 1], [0, 1, 1]),
        ([1, 1, 0], [1, 1, 1], [1, 1, 0]),
        ([0, 0, 1, 0, 1, 0, 0], [1] * 7, [0, 0, 1, 0, 1, 0, 0]),
        ([0, 0, 1, 1, 0, 0, 0], [1] * 7, [0, 0, 1, 1, 0, 0, 0]),
        ([1, 0, 0, 1], [1] * 4, [0] * 4),
        ([1, 0, 0, 1, 1], [1] * 5, [0, 0, 0, 1, 1]),
        ([1, 0, 1], [1, -1, 1], [0] * 3),
        ([0, 0, 1, 1, 0, 0, 0], [-1, 1, -1, 1, -1, 1, -1], [0] * 7),
    ],
)
def test_two_in_three_rule_matches_nhsrplotthedots(beyond, sides, expected):
    flag = _two_in_three(np.asarray(beyond, dtype=bool), np.asarray(sides))
    assert_array_equal(flag, np.asarray(expected, dtype=bool))


def test_two_close_points_on_opposite_sides_are_common_cause():
    """NHSRplotthedots test-ptd_spc_standard.R: "it only reports special cause for 2of3
    points close to limits when they are on the same side of the mean"."""
    values = np.tile([1.0, -1.0], 8)
    values[14], values[15] = 5.5, -5.5
    chart = xmr(values)
    assert chart.points["point_type"].iloc[-2:].tolist() == ["common_cause"] * 2


@pytest.mark.parametrize(
    ("improvement", "expected"),
    [
        ("up", "special_cause_improvement"),
        ("down", "special_cause_concern"),
        (None, "special_cause_neutral_high"),
    ],
)
def test_improvement_direction_colours_a_shift(improvement, expected):
    values = [0, 1] * 5 + [5] * 8
    chart = xmr(values, improvement=improvement, baseline=10)
    points = chart.points
    assert (points["special_cause_type"].iloc[10:] == "above_upper_limit").all()
    assert (points["point_type"].iloc[10:] == expected).all()
    assert chart.variation == expected


def test_shift_inside_limits_is_labelled_shift():
    # Baseline mean 0, limits +/-5.32; eight equal values (no trend) just below the mean.
    chart = xmr([-1, 1] * 10 + [-0.5] * 8, baseline=20, improvement="up")
    tail = chart.points.iloc[20:]
    assert not tail["outside_limits"].any()
    assert (tail["special_cause_type"] == "shift_below").all()
    assert (tail["point_type"] == "special_cause_concern").all()
    assert not chart.points.iloc[:20]["special_cause"].any()


def test_shift_length_parameter_accepts_six():
    values = [2, 0] * 6 + [1.5] * 6
    assert not xmr(values, baseline=12).points["shift"].any()
    assert xmr(values, baseline=12, shift_points=6).points["shift"].iloc[12:].all()


def test_trial_limits_are_reported():
    chart = xmr([1, 2, 3, 2, 1])
    assert any("trial limits" in note for note in chart.diagnostics)
    assert "trial limits" in chart.summary()


def test_dates_are_carried_and_plot_uses_mdc_colours():
    dates = pd.date_range("2024-01-01", periods=18, freq="MS")
    chart = xmr(MDC_EXAMPLE, dates=dates, improvement="up")
    assert (chart.points["date"] == dates).all()
    ax = chart.plot(title="Referrals")
    colours = ax.collections[0].get_facecolors()
    blue = matplotlib.colors.to_rgba(MDC_COLOURS["special_cause_improvement"])
    assert_allclose(colours[4], blue)
    assert ax.get_title() == "Referrals"
    plt.close(ax.figure)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": [1.0]}, "at least 2"),
        ({"values": [1.0, np.nan, 2.0]}, "positions \\[1\\]"),
        ({"values": [1, 2, 3], "improvement": "higher"}, "improvement"),
        ({"values": [1, 2, 3], "dates": [3, 2, 1]}, "strictly increasing"),
        ({"values": [1, 2, 3], "dates": [1, 2]}, "dates has 2"),
        ({"values": [1, 2, 3], "baseline": 5}, "baseline"),
    ],
)
def test_bad_input_raises(kwargs, message):
    values = kwargs.pop("values")
    with pytest.raises(ValueError, match=message):
        xmr(values, **kwargs)


def test_tidy_gives_the_centre_line_with_wheelers_sigma():
    """The process mean's standard error is sigma / sqrt(n) with Wheeler's (2000) sigma =
    mean moving range / d2, d2 = 1.128: from the NHSRplotthedots snapshot above (r1),
    mean moving range = (UPL - mean) / 2.66 = (3.294627 - 0.1416238) / 2.66."""
    y = pd.read_csv(REF / "spc_rnorm_seed123.csv")["y"].to_numpy()
    chart = xmr(y, conf_level=0.9)
    row = chart.tidy().iloc[0]
    expected_se = (3.294627 - 0.1416238) / 2.66 / 1.128 / np.sqrt(20)
    assert row["term"] == "mean"
    assert row["estimate"] == pytest.approx(0.1416238, abs=2e-6)
    assert row["std_error"] == pytest.approx(expected_se, abs=2e-6)
    # qt(0.95, 0.62 * 19) = 1.785: Student t on Wheeler's degrees of freedom of sigma
    t_quantile = stats.t.ppf(0.95, 0.62 * 19)
    assert row["conf_high"] - row["estimate"] == pytest.approx(t_quantile * row["std_error"])


def test_process_mean_interval_covers_the_truth():
    """Simulation: 2,000 series of 24 independent normal points (mean 10, SD 2); the 95%
    interval of the centre line covers 10 in 93% to 97% of them (binomial SD 0.5%)."""
    rng = np.random.default_rng(20261130)
    covered = [
        (lambda row: row.conf_low <= 10 <= row.conf_high)(xmr(rng.normal(10, 2, 24)).tidy().iloc[0])
        for _ in range(2000)
    ]
    assert 0.93 <= np.mean(covered) <= 0.97
