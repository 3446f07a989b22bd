"""Relative-magnitude sensitivity bounds (conservative Bonferroni version of Rambachan & Roth)."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spimpact.models.did import fit_event_study, honest_did_relative_magnitude

REF = Path(__file__).parent.parent / "reference" / "did"
EVENT_TIMES = [-5, -4, -3, -2, 0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def event_study():
    data = pd.read_csv(REF / "base_did.csv")
    data["first_treated"] = np.where(data["treat"] == 1, 6, 0)
    return fit_event_study(
        data,
        outcome="y",
        unit="id",
        time="period",
        first_treated="first_treated",
        window=(-5, 4),
        cluster="id",
    )


def with_estimates(event_study, beta, sigma):
    coefficients = event_study.coefficients.assign(estimate=beta)
    names = coefficients["term"].tolist()
    covariance = pd.DataFrame(sigma, index=names, columns=names)
    return dataclasses.replace(event_study, coefficients=coefficients, covariance=covariance)


def test_bounds_by_hand(event_study):
    """beta_pre = (0.1, -0.2, 0.1, 0.3) and 0 at the reference -1, so the consecutive
    changes are -0.3, 0.3, 0.2, -0.3; coefficients independent with variance 0.01."""
    beta = np.array([0.1, -0.2, 0.1, 0.3, 1.0, 1.2, 1.1, 1.0, 0.9])
    sigma = np.diag(np.full(9, 0.01))
    result = honest_did_relative_magnitude(
        with_estimates(event_study, beta, sigma), mbar=[0, 0.5, 1], method="bonferroni"
    )
    alpha = 0.05
    # pre changes: -0.3, 0.3, 0.2, -0.3; SEs sqrt(0.02), last one (to reference 0) 0.1
    change_se = np.array([np.sqrt(0.02)] * 3 + [0.1])
    upper_d = np.max(np.abs([-0.3, 0.3, 0.2, -0.3]) + stats.norm.ppf(1 - alpha / 16) * change_se)
    z_split = stats.norm.ppf(1 - alpha / 4)
    expected_half = [
        stats.norm.ppf(1 - alpha / 2) * 0.1,
        z_split * 0.1 + 0.5 * upper_d,
        z_split * 0.1 + 1.0 * upper_d,
    ]
    np.testing.assert_allclose(result["conf_high"] - 1.0, expected_half, rtol=1e-12)
    np.testing.assert_allclose(1.0 - result["conf_low"], expected_half, rtol=1e-12)
    breakdown = (1.0 - z_split * 0.1) / upper_d
    assert result["breakdown_mbar"].iloc[0] == pytest.approx(breakdown, rel=1e-12)


def test_post_weights_average_target(event_study):
    """theta = mean of the first two post effects; bias bound grows as (k + 1)."""
    beta = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0])
    sigma = np.diag(np.full(9, 1e-6))
    result = honest_did_relative_magnitude(
        with_estimates(event_study, beta, sigma),
        mbar=[1.0],
        post_weights=[0.5, 0.5],
        method="bonferroni",
    )
    centre = (result["conf_low"] + result["conf_high"]) / 2
    assert centre.iloc[0] == pytest.approx(1.5)


@pytest.mark.slow
def test_coverage_when_violation_is_within_mbar(event_study):
    """A linear differential trend continuing after treatment has post-period changes
    equal to the largest pre-period change, so it lies in Delta^RM(Mbar = 1): the robust
    interval must cover tau_0 in at least 95% of draws, while the ordinary interval
    (Mbar = 0) does not. Draws of the event-study coefficients come from their normal
    sampling distribution with the covariance estimated on base_did."""
    rng = np.random.default_rng(7)
    sigma = event_study.covariance.to_numpy()
    slope = 1.0
    e = np.array(EVENT_TIMES)
    delta = slope * (e + 1)
    tau = np.where(e >= 0, 2.0, 0.0)
    draws = rng.multivariate_normal(delta + tau, sigma, size=2000)
    covered_robust, covered_naive = [], []
    for beta in draws:
        result = honest_did_relative_magnitude(
            with_estimates(event_study, beta, sigma), mbar=[0, 1], method="bonferroni"
        )
        inside = (result["conf_low"] <= 2.0) & (2.0 <= result["conf_high"])
        covered_naive.append(inside.iloc[0])
        covered_robust.append(inside.iloc[1])
    assert np.mean(covered_robust) >= 0.95
    assert np.mean(covered_naive) < 0.90


def test_method_on_result_and_breakdown_sign(event_study):
    table = event_study.honest_did(mbar=[0.5, 1, 2], method="bonferroni")
    assert table.columns.tolist() == ["mbar", "conf_low", "conf_high", "method", "breakdown_mbar"]
    assert (table["conf_high"].diff().dropna() > 0).all()
    assert (table["breakdown_mbar"] >= 0).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mbar": []}, "mbar must be"),
        ({"mbar": [-1]}, "mbar must be"),
        ({"mbar": [1], "post_weights": [1] * 6}, "post_weights"),
        ({"mbar": [1], "method": "exact"}, "method must be one of"),
    ],
)
def test_bad_input(event_study, kwargs, message):
    with pytest.raises(ValueError, match=message):
        honest_did_relative_magnitude(event_study, **kwargs)


@pytest.fixture(scope="module")
def medicaid_event_study():
    """HonestDiD README: states first treated in 2014 against never/later-treated states,
    2008-2015, 2015 cohort dropped; R: fixest::feols(dins ~ i(year, D, ref = 2013) |
    stfips + year, cluster = "stfips", data = df_nonstaggered)."""
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


def test_contains_honestdid_readme_intervals(medicaid_event_study):
    """HonestDiD README, createSensitivityResults_relativeMagnitudes(betahat, sigma,
    numPrePeriods = 5, numPostPeriods = 2, Mbarvec = seq(0.5, 2, by = 0.5)), C-LF:
    [0.0241, 0.0673], [0.0171, 0.0720], [0.00859, 0.0796], [-0.00107, 0.0883].
    Ours is a conservative Bonferroni projection of the same restriction, so each of
    its intervals must contain HonestDiD's (to their printed precision), and its
    breakdown value cannot exceed HonestDiD's (robust at Mbar 1.5, not at 2)."""
    published = pd.DataFrame(
        {
            "mbar": [0.5, 1.0, 1.5, 2.0],
            "conf_low": [0.0241, 0.0171, 0.00859, -0.00107],
            "conf_high": [0.0673, 0.0720, 0.0796, 0.0883],
        }
    )
    ours = medicaid_event_study.honest_did(mbar=published["mbar"], method="bonferroni")
    assert (ours["conf_low"] <= published["conf_low"] + 5e-5).all()
    assert (ours["conf_high"] >= published["conf_high"] - 5e-5).all()
    assert 0 < ours["breakdown_mbar"].iloc[0] < 2.0
    assert medicaid_event_study.pretrend_test.df == 5


@pytest.mark.slow
def test_clf_matches_honestdid_readme(medicaid_event_study):
    """HonestDiD README, createSensitivityResults_relativeMagnitudes(betahat, sigma,
    numPrePeriods = 5, numPostPeriods = 2, Mbarvec = seq(0.5, 2, by = 0.5)), method C-LF:
    [0.0241, 0.0673], [0.0171, 0.0720], [0.00859, 0.0796], [-0.00107, 0.0883]; the
    README reads the breakdown value off these as robust at 1.5, not at 2.
    Tolerance 6e-4: the end points are grid points (our grid step is 4e-4) and the
    least-favourable critical value is simulated with a different random stream."""
    ours = medicaid_event_study.honest_did(mbar=[0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(ours["conf_low"], [0.0241, 0.0171, 0.00859, -0.00107], atol=6e-4)
    np.testing.assert_allclose(ours["conf_high"], [0.0673, 0.0720, 0.0796, 0.0883], atol=6e-4)
    assert (ours["method"] == "C-LF").all()
    assert ours["breakdown_mbar"].iloc[0] == 1.5


def test_clf_needs_two_post_periods(medicaid_event_study):
    single_post = dataclasses.replace(
        medicaid_event_study,
        coefficients=medicaid_event_study.coefficients.iloc[:-1],
        covariance=medicaid_event_study.covariance.iloc[:-1, :-1],
    )
    with pytest.raises(ValueError, match="at least two post-treatment"):
        single_post.honest_did(mbar=[1])
    assert len(single_post.honest_did(mbar=[1], method="bonferroni")) == 1


def test_closed_form_truncation_equals_honestdid_bisection(medicaid_event_study):
    """Where the ARP dual branch is taken, the closed-form truncation points from the
    dual vertices equal those of HonestDiD's bisection (ported as the fallback)."""
    from spimpact.models import did_honest

    beta = medicaid_event_study.coefficients["estimate"].to_numpy()
    sigma = medicaid_event_study.covariance.to_numpy()
    a = did_honest._create_a_rm(5, 2, 1.0, 0, True)
    rows = np.flatnonzero(np.any(a[:, 5:] != 0, axis=1))
    x = a[rows, 6:]
    sigma_y = (a @ sigma @ a.T)[np.ix_(rows, rows)]
    sd = np.sqrt(np.diag(sigma_y))
    grid = np.linspace(-0.05, 0.15, 60)
    y = (a @ beta)[rows][None, :] - grid[:, None] * a[rows, 5][None, :]
    eta, duals, ok = did_honest._eta_batch(y, x, sd)
    assert ok
    vertices = did_honest._dual_vertices(np.column_stack([sd, x]))
    compared = 0
    for i in range(grid.size):
        gamma = duals[i]
        s_t = y[i] - sigma_y @ gamma * (gamma @ y[i]) / (gamma @ sigma_y @ gamma)
        closed = did_honest._vlo_vup_vertices(eta[i], s_t, gamma, sigma_y, vertices)
        bisected = did_honest._vlo_vup_dual(eta[i], s_t, gamma, sigma_y, np.column_stack([sd, x]))
        finite = np.isfinite(closed) & (np.abs(closed) < 100)
        assert np.isfinite(bisected)[finite].all()
        np.testing.assert_allclose(np.array(bisected)[finite], np.array(closed)[finite], atol=1e-5)
        compared += int(finite.sum())
    assert compared > 10
