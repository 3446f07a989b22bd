from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy.special import expit

from spimpact.models.ipw_sequential import fit_sequential_ipw

REF = Path(__file__).parent.parent / "reference" / "attrition"
NHEFS_L = (
    "C(sex) + C(race) + age + I(age**2) + C(education) + smokeintensity"
    " + I(smokeintensity**2) + smokeyrs + I(smokeyrs**2) + C(exercise) + C(active)"
    " + wt71 + I(wt71**2)"
)


@pytest.fixture(scope="module")
def nhefs_fit():
    """NHEFS as two visits: everyone at visit 0, wt82_71 recorded at visit 1 (or not).

    The book's stabilised treatment weights (Program 12.7: logistic qsmk ~ L, numerator
    the share who quit) enter as known base weights."""
    nhefs = pd.read_csv(REF / "nhefs.csv")
    p_quit = smf.logit("qsmk ~ " + NHEFS_L, nhefs).fit(disp=0).predict(nhefs)
    share = nhefs["qsmk"].mean()
    nhefs["sw_a"] = np.where(nhefs["qsmk"] == 1, share / p_quit, (1 - share) / (1 - p_quit))
    long = pd.concat(
        [
            nhefs.assign(visit=0, recorded=1.0, wt82_71=np.nan),
            nhefs.assign(visit=1, recorded=nhefs["wt82_71"]),
        ],
        ignore_index=True,
    )
    return fit_sequential_ipw(
        long,
        subject="seqn",
        visit="visit",
        outcome="recorded",
        outcome_formula="wt82_71 ~ qsmk",
        dropout_formula="C(qsmk) + " + NHEFS_L,
        numerator_formula="C(qsmk)",
        weights="sw_a",
    )


def test_one_visit_reproduces_what_if_program_12_7(nhefs_fit):
    """Hernán & Robins, What If (2020), Program 12.7 (cibookex-r, docs/12-ipw-msm-r.md):
    geeglm(wt82_71 ~ qsmk, weights = sw, id = seqn, corstr = "independence") prints
    (Intercept) 1.662 (Std.err 0.233), qsmk 3.496 (Std.err 0.526). With one follow-up
    visit the sequential weights are the book's censoring weights, and the weights-known
    sandwich is geeglm's."""
    known = nhefs_fit.coefficients_weights_known.set_index("term")
    assert_allclose(known["estimate"], [1.662, 3.496], atol=5e-4)
    assert_allclose(known["std_error"], [0.233, 0.526], atol=5e-4)
    assert nhefs_fit.weight_summary["n_observed"].tolist() == [1629, 1566]


@pytest.mark.parametrize(
    ("term", "estimate"),
    [("Intercept", 4.014466), ("C(qsmk)[T.1]", 0.516867), ("age", -0.269729), ("wt71", -0.087887)],
)
def test_one_visit_dropout_model_is_the_books_censoring_model(nhefs_fit, term, estimate):
    """Program 12.7, R: glm(cens ~ as.factor(qsmk) + ... + wt71 + I(wt71^2), family =
    binomial()) printed to 6 decimals; being observed is the complement of censoring,
    so every coefficient changes sign."""
    row = nhefs_fit.dropout_model.set_index("term").loc[term]
    assert_allclose(-row["estimate"], estimate, atol=5e-7)


def test_one_visit_stacked_sandwich_matches_delicatessen(nhefs_fit):
    """Reference: make_nhefs_stacked_ipcw.py (delicatessen 4.3, M-estimation with a
    numerical bread) on the same estimating equations. Estimating the censoring weights
    makes the standard error slightly smaller than geeglm's weights-known 0.526."""
    reference = pd.read_csv(REF / "nhefs_ipcw_stacked_delicatessen.csv")
    tidy = nhefs_fit.tidy()
    assert_allclose(tidy["estimate"], reference["estimate"], atol=1e-7)
    # delicatessen's bread is a numerical derivative (about 1e-7 relative error)
    assert_allclose(tidy["std_error"], reference["std_error"], rtol=1e-5)
    assert (tidy["std_error"] < nhefs_fit.coefficients_weights_known["std_error"]).all()


@pytest.fixture(scope="module")
def sequential_data():
    data = pd.read_csv(REF / "sequential_dropout.csv")
    baseline = data[data["visit"] == 0].set_index("id")["y"]
    data["change"] = np.where(data["visit"] > 0, data["y"] - data["id"].map(baseline), np.nan)
    return data


def test_three_visits_match_delicatessen(sequential_data):
    """Reference: make_sequential_dropout.py, the stacked estimating equations of the
    pooled dropout model, its numerator and the weighted change per visit, solved and
    differentiated independently by delicatessen 4.3."""
    reference = pd.read_csv(REF / "sequential_dropout_delicatessen.csv")
    res = fit_sequential_ipw(
        sequential_data,
        subject="id",
        visit="visit",
        outcome="y",
        outcome_formula="change ~ 0 + C(visit)",
        dropout_formula="C(visit) + previous_y + x",
    )
    tidy = res.tidy()
    assert_allclose(tidy["estimate"], reference["estimate"], atol=1e-7)
    assert_allclose(tidy["std_error"], reference["std_error"], rtol=1e-5)
    summary = res.weight_summary.set_index("visit")
    assert summary["n_at_risk"].tolist() == [300, 300, 272, 229]
    assert summary.loc[0, "weight_max"] == 1.0


def test_unstabilised_weights_are_inverse_cumulative_probabilities(sequential_data):
    """Oracle: the same pooled logistic model fitted by statsmodels, weights multiplied by hand."""
    res = fit_sequential_ipw(
        sequential_data,
        subject="id",
        visit="visit",
        outcome="y",
        outcome_formula="y ~ 0 + C(visit)",
        dropout_formula="C(visit) + previous_y + x",
        stabilized=False,
    )
    wide = sequential_data.pivot(index="id", columns="visit", values="y")
    x = sequential_data.groupby("id")["x"].first()
    rows = [
        {"id": i, "visit": k, "previous_y": wide.loc[i, k - 1], "x": x[i],
         "r": int(not np.isnan(wide.loc[i, k]))}
        for i in wide.index for k in (1, 2, 3) if not np.isnan(wide.loc[i, k - 1])
    ]  # fmt: skip
    risk = pd.DataFrame(rows)
    risk["p"] = smf.logit("r ~ C(visit) + previous_y + x", risk).fit(disp=0).predict(risk)
    risk["w"] = 1 / risk.groupby("id")["p"].cumprod()
    expected = risk[risk["r"] == 1].set_index(["id", "visit"])["w"]
    got = res.weights.copy()
    got.index = pd.MultiIndex.from_frame(sequential_data.loc[got.index, ["id", "visit"]])
    assert_allclose(got.loc[expected.index], expected, rtol=1e-8)
    assert res.numerator_model is None
    assert_allclose(got[got.index.get_level_values("visit") == 0], 1.0)


def _simulate(n, rng):
    y0 = rng.normal(20, 4, n)
    steps = 1.0 + rng.normal(0, 2, size=(n, 2))
    y = np.column_stack([y0, y0 + steps[:, 0], y0 + steps.sum(axis=1)])
    seen = np.ones((n, 3), dtype=bool)
    for k in (1, 2):
        # the people who scored low last time are the ones who leave
        seen[:, k] = seen[:, k - 1] & (rng.random(n) < expit(1.2 + 0.35 * (y[:, k - 1] - 20)))
    long = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), 3),
            "visit": np.tile([0, 1, 2], n),
            "y": np.where(seen, y, np.nan).ravel(),
        }
    )
    baseline = np.repeat(y0, 3)
    long["change"] = np.where(long["visit"] > 0, long["y"] - baseline, np.nan)
    return long


@pytest.mark.slow
def test_simulation_recovers_the_change_with_nominal_coverage():
    """Dropout depends on the previous score (MAR, monotone); true change 1 and 2.

    300 data sets of 300 subjects: bias under 5% of the change at the last visit (the
    complete-case mean is biased upwards by ~0.4), and 95% stacked-sandwich intervals
    cover 93-97% (Monte Carlo SE of coverage ~1.3%)."""
    rng = np.random.default_rng(20260204)
    estimates, covered, naive = [], [], []
    for _ in range(300):
        data = _simulate(300, rng)
        res = fit_sequential_ipw(
            data,
            subject="id",
            visit="visit",
            outcome="y",
            outcome_formula="change ~ 0 + C(visit)",
            dropout_formula="C(visit) + previous_y",
        )
        row = res.tidy().iloc[1]
        estimates.append(row["estimate"])
        covered.append(row["conf_low"] < 2.0 < row["conf_high"])
        naive.append(data.loc[data["visit"] == 2, "change"].mean())
    assert abs(np.mean(estimates) - 2.0) < 0.05 * 2.0
    assert np.mean(naive) - 2.0 > 0.2
    assert 0.93 <= np.mean(covered) <= 0.97


def test_values_after_a_missed_visit_are_set_aside(sequential_data):
    data = sequential_data.copy()
    # give subject 0 a missing visit 1 but a recorded visit 2 and 3
    data.loc[(data["id"] == 0) & (data["visit"] == 1), "y"] = np.nan
    data.loc[(data["id"] == 0) & (data["visit"] > 1), "y"] = 25.0
    res = fit_sequential_ipw(
        data, subject="id", visit="visit", outcome="y",
        outcome_formula="y ~ 0 + C(visit)", dropout_formula="C(visit) + previous_y",
    )  # fmt: skip
    assert res.n_set_aside == 2
    assert any("set aside" in note for note in res.diagnostics)
    assert not set(data.index[(data["id"] == 0) & (data["visit"] > 0)]) & set(res.weights.index)


def test_truncation_is_reported_and_clips_later_weights(sequential_data):
    res = fit_sequential_ipw(
        sequential_data, subject="id", visit="visit", outcome="y",
        outcome_formula="change ~ 0 + C(visit)", dropout_formula="C(visit) + previous_y + x",
        truncate=(0.01, 0.99),
    )  # fmt: skip
    low, high = res.truncation_bounds
    assert res.n_truncated > 0
    assert res.weights.min() >= low - 1e-12 and res.weights.max() <= high + 1e-12
    assert any("truncated" in note for note in res.diagnostics)


def test_no_dropout_gives_unit_weights_and_cluster_robust_ols():
    """Oracle: statsmodels OLS with subject-clustered sandwich (no small-sample factor)."""
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"id": np.repeat(np.arange(50), 2), "visit": np.tile([0, 1], 50)})
    data["y"] = rng.normal(size=100) + data["visit"]
    res = fit_sequential_ipw(
        data, subject="id", visit="visit", outcome="y",
        outcome_formula="y ~ C(visit)", dropout_formula="C(visit) + previous_y",
    )  # fmt: skip
    ols = smf.ols("y ~ C(visit)", data).fit(
        cov_type="cluster", cov_kwds={"groups": data["id"], "use_correction": False}
    )
    assert_allclose(res.weights, 1.0)
    assert_allclose(res.tidy()["estimate"], ols.params, rtol=1e-10)
    assert_allclose(res.tidy()["std_error"], ols.bse, rtol=1e-8)
    assert any("Nobody dropped out" in note for note in res.diagnostics)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subject": "nope"}, "subject column 'nope'"),
        ({"outcome_formula": "nope ~ 1"}, "left of"),
        ({"dropout_formula": "r ~ x"}, "right-hand side"),
        ({"truncate": (0.9, 0.1)}, "truncate"),
        ({"weights": "missing_column"}, "weights column"),
    ],
)
def test_bad_input_is_rejected(sequential_data, kwargs, message):
    arguments = dict(
        subject="id", visit="visit", outcome="y", outcome_formula="y ~ C(visit)",
        dropout_formula="C(visit) + previous_y",
    )  # fmt: skip
    with pytest.raises(ValueError, match=message):
        fit_sequential_ipw(sequential_data, **{**arguments, **kwargs})


def test_duplicate_subject_visit_rows_are_named(sequential_data):
    data = pd.concat([sequential_data, sequential_data.iloc[[5]]], ignore_index=True)
    with pytest.raises(ValueError, match="row 1200: more than one row for id 1 at visit 1"):
        fit_sequential_ipw(
            data, subject="id", visit="visit", outcome="y",
            outcome_formula="y ~ C(visit)", dropout_formula="C(visit)",
        )  # fmt: skip


def test_result_surface(sequential_data):
    res = fit_sequential_ipw(
        sequential_data, subject="id", visit="visit", outcome="y",
        outcome_formula="change ~ 0 + C(visit)", dropout_formula="C(visit) + previous_y",
        conf_level=0.9,
    )  # fmt: skip
    assert "stacked" in res.summary()
    assert res.plot() is not None
    half = res.tidy()["conf_high"] - res.tidy()["estimate"]
    assert_allclose(half, 1.6448536 * res.tidy()["std_error"], rtol=1e-6)
    assert list(res.vcov.columns) == list(res.tidy()["term"])
