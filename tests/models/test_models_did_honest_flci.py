"""Smoothness-restriction (Delta^SD) fixed-length confidence intervals of Rambachan & Roth."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spimpact.models.did import fit_event_study
from spimpact.models.did_honest import honest_did_smoothness
from spimpact.models.did_honest_flci import folded_normal_quantile

REF = Path(__file__).parent.parent / "reference" / "did"


@pytest.fixture(scope="module")
def medicaid_event_study():
    """HonestDiD README: fixest::feols(dins ~ i(year, D, ref = 2013) | stfips + year,
    cluster = "stfips", data = df_nonstaggered), 2008-2015, the 2015 cohort dropped."""
    data = pd.read_csv(REF / "ehec_data.csv")
    data = data[(data["year"] < 2016) & (data["yexp2"].isna() | (data["yexp2"] != 2015))]
    data = data.assign(first_treated=np.where(data["yexp2"] == 2014, 2014, 0))
    return fit_event_study(
        data,
        outcome="dins",
        unit="stfips",
        time="year",
        first_treated="first_treated",
        window=(-6, 1),
        cluster="stfips",
    )


def test_matches_honestdid_readme(medicaid_event_study):
    """HonestDiD README (asheshrambachan/HonestDiD), createSensitivityResults(betahat,
    sigma, numPrePeriods = 5, numPostPeriods = 2, Mvec = seq(0, 0.05, by = 0.01)), FLCI:
      M     lb       ub
      0     0.0259   0.0607
      0.01  0.0132   0.0787
      0.02  0.00286  0.0907
      0.03 -0.00714  0.101
      0.04 -0.0171   0.111
      0.05 -0.0271   0.121
    Tolerance: half a unit in the last printed (third significant) digit plus 5e-5,
    because HonestDiD simulates the folded-normal critical value with 10^6 draws (ours is
    exact), which moves the end points by a few 1e-5."""
    table = medicaid_event_study.honest_did_smoothness(np.arange(6) / 100)
    for ours, printed in [
        (table.conf_low, [0.0259, 0.0132, 0.00286, -0.00714, -0.0171, -0.0271]),
        (table.conf_high, [0.0607, 0.0787, 0.0907, 0.101, 0.111, 0.121]),
    ]:
        printed = np.array(printed)
        tolerance = 0.5 * 10.0 ** (np.floor(np.log10(np.abs(printed))) - 2) + 5e-5
        assert (np.abs(ours.to_numpy() - printed) <= tolerance).all(), (ours, printed)
    assert (table.method == "FLCI").all()
    # the README's breakdown value: significant up to M = 0.02, not at 0.03
    assert table.conf_low.iloc[2] > 0 > table.conf_low.iloc[3]


def test_function_and_method_agree(medicaid_event_study):
    beta = medicaid_event_study.coefficients.estimate.to_numpy()
    sigma = medicaid_event_study.covariance.to_numpy()
    direct = honest_did_smoothness(
        beta, sigma, num_pre_periods=5, num_post_periods=2, m_values=[0.01]
    )
    pd.testing.assert_frame_equal(direct, medicaid_event_study.honest_did_smoothness([0.01]))


def test_at_m_zero_the_interval_is_the_most_precise_trend_adjusted_estimate():
    """With M = 0 the differential trend is exactly linear: the FLCI is the Wald interval
    of the minimum-variance estimator l'beta_post + v'beta_pre that removes any linear
    trend. One pre period (-2) and one post period (0), independent coefficients: the
    trend through 0 at -1 and beta_-2 at -2 extrapolates to -beta_-2 at 0, so
    theta_hat = beta_0 + beta_-2, variance s0^2 + s2^2."""
    beta = np.array([0.3, 1.0])
    sigma = np.diag([0.04, 0.09])
    table = honest_did_smoothness(
        beta, sigma, num_pre_periods=1, num_post_periods=1, m_values=[0.0, 0.1]
    )
    half = stats.norm.ppf(0.975) * np.sqrt(0.13)
    assert table.conf_low.iloc[0] == pytest.approx(1.3 - half, abs=1e-10)
    assert table.conf_high.iloc[0] == pytest.approx(1.3 + half, abs=1e-10)
    # with one pre period the bias is M * 1 (the curvature at 0 moves tau_0 by M)
    cv = folded_normal_quantile(0.95, 0.1 / np.sqrt(0.13))
    assert table.conf_high.iloc[1] - 1.3 == pytest.approx(cv * np.sqrt(0.13), abs=1e-10)


def test_folded_normal_quantile():
    assert folded_normal_quantile(0.95, 0.0) == pytest.approx(stats.norm.ppf(0.975), abs=1e-12)
    c = folded_normal_quantile(0.9, 2.5)
    assert stats.norm.cdf(c - 2.5) - stats.norm.cdf(-c - 2.5) == pytest.approx(0.9, abs=1e-12)


def test_average_target_and_monotone_in_m(medicaid_event_study):
    table = medicaid_event_study.honest_did_smoothness([0, 0.01, 0.02], l_vec=[0.5, 0.5])
    widths = (table.conf_high - table.conf_low).to_numpy()
    assert (np.diff(widths) > 0).all()


@pytest.mark.slow
def test_coverage_when_the_trend_bends_within_m():
    """A differential trend whose slope changes by M = 0.05 each period from the reference
    on lies in Delta^SD(0.05): the FLCI for tau_0 must cover in >= 95% (less 3 Monte Carlo
    SEs of 120 draws) of draws
    of the event-study coefficients (covariance from the Medicaid example, scaled up),
    while the M = 0 interval undercovers."""
    rng = np.random.default_rng(4)
    sigma = np.diag(np.full(7, 0.02**2)) + 0.0001
    e = np.array([-6, -5, -4, -3, -2, 0, 1])
    m = 0.05
    delta = np.where(e >= 0, m * (e + 1) * (e + 2) / 2, 0.0)  # bends after the reference
    tau = np.where(e >= 0, 0.2, 0.0)
    covered = {0.0: [], m: []}
    for beta in rng.multivariate_normal(delta + tau, sigma, size=120):
        table = honest_did_smoothness(
            beta, sigma, num_pre_periods=5, num_post_periods=2, m_values=[0.0, m]
        )
        for value, low, high in zip(table.m, table.conf_low, table.conf_high, strict=True):
            covered[value].append(low <= 0.2 <= high)
    assert np.mean(covered[m]) >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 120)
    assert np.mean(covered[0.0]) < 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m_values": []}, "m_values must be"),
        ({"m_values": [-0.1]}, "m_values must be"),
        ({"m_values": [0.1], "method": "C-LF"}, "method must be one of"),
        ({"m_values": [0.1], "l_vec": [1, 0, 0]}, "l_vec needs 2"),
        ({"m_values": [0.1], "num_pre_periods": 4}, "betahat has 7 entries"),
    ],
)
def test_bad_input(kwargs, message):
    arguments = {
        "num_pre_periods": 5,
        "num_post_periods": 2,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        honest_did_smoothness(np.zeros(7), np.eye(7), **arguments)
