from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

from spimpact.models.ipw import fit_ipw

REF = Path(__file__).parent.parent / "reference" / "attrition"

NHEFS_L = (
    "C(sex) + C(race) + age + I(age**2) + C(education) + smokeintensity"
    " + I(smokeintensity**2) + smokeyrs + I(smokeyrs**2) + C(exercise) + C(active)"
    " + wt71 + I(wt71**2)"
)


@pytest.fixture(scope="module")
def nhefs():
    return pd.read_csv(REF / "nhefs.csv")


@pytest.fixture(scope="module")
def nhefs_ipw(nhefs):
    return fit_ipw(
        nhefs,
        outcome_formula="wt82_71 ~ qsmk",
        censoring_formula="C(qsmk) + " + NHEFS_L,
        treatment_formula="qsmk ~ " + NHEFS_L,
    )


def test_nhefs_ipcw_matches_what_if_program_12_7(nhefs_ipw):
    """Hernán & Robins, What If (2020), §12.6 / Program 12.7: quitting smoking raises
    weight gain by 3.5 kg (95% CI 2.5 to 4.5) with stabilised IP weights for treatment
    and censoring. The book's R code (cibookex-r, docs/12-ipw-msm-r.md) prints
    geeglm(wt82_71 ~ qsmk, data = nhefs, weights = sw, id = seqn,
           corstr = "independence"):
      (Intercept) 1.662 (Std.err 0.233), qsmk 3.496 (Std.err 0.526), CI 2.47 to 4.53.
    Checked to the printed digits."""
    tidy = nhefs_ipw.tidy().set_index("term")
    assert_allclose(tidy.loc["Intercept", "estimate"], 1.662, atol=5e-4)
    assert_allclose(tidy.loc["qsmk", "estimate"], 3.496, atol=5e-4)
    assert_allclose(tidy.loc["Intercept", "std_error"], 0.233, atol=5e-4)
    assert_allclose(tidy.loc["qsmk", "std_error"], 0.526, atol=5e-4)
    assert_allclose(tidy.loc["qsmk", ["conf_low", "conf_high"]], [2.47, 4.53], atol=5e-3)
    # the book's text rounds to one decimal: 3.5 (2.5, 4.5)
    assert_allclose(
        tidy.loc["qsmk", ["estimate", "conf_low", "conf_high"]], [3.5, 2.5, 4.5], atol=0.05
    )


@pytest.mark.parametrize(
    ("term", "estimate", "std_error"),
    [
        ("Intercept", 4.014466, 2.576106),
        ("C(qsmk)[T.1]", 0.516867, 0.287716),
        ("age", -0.269729, 0.117465),
        ("I(age ** 2)", 0.002884, 0.001114),
        ("C(exercise)[T.1]", -0.971471, 0.387810),
        ("C(active)[T.2]", 0.706583, 0.396458),
        ("wt71", -0.087887, 0.040012),
        ("I(wt71 ** 2)", 0.000635, 0.000226),
    ],
)
def test_nhefs_censoring_model_matches_r_glm(nhefs_ipw, term, estimate, std_error):
    """Program 12.7, R: glm(cens ~ as.factor(qsmk) + as.factor(sex) + ... + wt71 + I(wt71^2),
    family = binomial(), data = nhefs), printed to 6 decimals (cibookex-r)."""
    row = nhefs_ipw.censoring_model.set_index("term").loc[term]
    assert_allclose(row["estimate"], estimate, atol=5e-7)
    assert_allclose(row["std_error"], std_error, atol=5e-7)


def test_nhefs_treatment_model_matches_r_glm(nhefs_ipw):
    """Program 12.7, R: glm(qsmk ~ as.factor(sex) + ... , family = binomial()): intercept
    -1.988902 (SE 1.241279), as.factor(sex)1 -0.507522 (SE 0.148232)."""
    model = nhefs_ipw.treatment_model.set_index("term")
    assert_allclose(
        model.loc["Intercept", ["estimate", "std_error"]], [-1.988902, 1.241279], atol=5e-7
    )
    assert_allclose(
        model.loc["C(sex)[T.1]", ["estimate", "std_error"]], [-0.507522, 0.148232], atol=5e-7
    )


def test_nhefs_weights_match_book_python_code(nhefs_ipw):
    """Book's Python code (jrfiedler/causal_inference_python_code, chapter12.ipynb,
    Program 12.7) prints the combined stabilised weights sw_AC: min 0.35, max 4.09
    (censored rows' weights, set to 1 there, do not enter the outcome model)."""
    assert nhefs_ipw.n_censored == 63
    assert nhefs_ipw.n_uncensored == 1566
    summary = nhefs_ipw.weight_summary()
    assert_allclose(summary["min"], 0.35, atol=0.005)
    assert_allclose(summary["max"], 4.09, atol=0.005)
    assert 1 < summary["effective_sample_size"] < 1566


def test_ipw_without_missing_outcomes_equals_ols_with_hc0():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"x": rng.normal(size=200)})
    df["y"] = 2 + df.x + rng.normal(size=200)
    df.loc[:49, "y"] = np.nan
    # censoring depends on x only, and x is in the numerator too: every weight is 1
    df = df.sample(frac=1, random_state=1)
    res = fit_ipw(df, outcome_formula="y ~ x", censoring_formula="x")
    ols = smf.ols("y ~ x", df.dropna()).fit(cov_type="HC0")
    assert_allclose(res.tidy()["estimate"], ols.params.to_numpy(), rtol=1e-10)
    assert_allclose(res.tidy()["std_error"], ols.bse.to_numpy(), rtol=1e-10)
    assert_allclose(res.weights.to_numpy(), 1.0)
    assert set(res.weights.index) == set(df.dropna().index)


def test_ipw_truncation_clips_weights(nhefs, nhefs_ipw):
    res = fit_ipw(
        nhefs,
        outcome_formula="wt82_71 ~ qsmk",
        censoring_formula="C(qsmk) + " + NHEFS_L,
        treatment_formula="qsmk ~ " + NHEFS_L,
        truncate=(0.01, 0.99),
    )
    untruncated = nhefs_ipw.weights
    assert_allclose(res.weights.max(), untruncated.quantile(0.99), rtol=1e-12)
    assert_allclose(res.weights.min(), untruncated.quantile(0.01), rtol=1e-12)
    assert any("truncated" in d for d in res.diagnostics)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome_formula": "nope ~ qsmk", "censoring_formula": "age"}, "nope"),
        (
            {"outcome_formula": "wt82_71 ~ qsmk", "censoring_formula": "cens ~ age"},
            "right-hand side",
        ),
        ({"outcome_formula": "~ qsmk", "censoring_formula": "age"}, "outcome"),
        (
            {
                "outcome_formula": "wt82_71 ~ qsmk",
                "censoring_formula": "age",
                "truncate": (0.9, 0.1),
            },
            "truncate",
        ),
        (
            {
                "outcome_formula": "wt82_71 ~ qsmk",
                "censoring_formula": "age",
                "treatment_formula": "wt71 ~ age",
            },
            "0/1",
        ),
    ],
)
def test_ipw_rejects_bad_input(nhefs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_ipw(nhefs, **kwargs)


def test_ipw_names_covariate_with_missing_values(nhefs):
    data = nhefs.copy()
    data.loc[3, "age"] = np.nan
    with pytest.raises(ValueError, match="age"):
        fit_ipw(data, outcome_formula="wt82_71 ~ qsmk", censoring_formula="age")


def test_ipw_tidy_at_another_level_matches_statsmodels_hc0():
    """Oracle: statsmodels OLS with HC0 (every weight is 1 here), conf_int(alpha=0.1)
    gives the 90% Wald interval that tidy(conf_level=0.9) must give."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"x": rng.normal(size=200)})
    df["y"] = 2 + df.x + rng.normal(size=200)
    df.loc[:49, "y"] = np.nan
    res = fit_ipw(df, outcome_formula="y ~ x", censoring_formula="x")
    ols = smf.ols("y ~ x", df.dropna()).fit(cov_type="HC0")
    tidy = res.tidy(conf_level=0.9)
    assert_allclose(tidy[["conf_low", "conf_high"]], ols.conf_int(alpha=0.1), rtol=1e-10)
    assert_allclose(res.confint(0.9), ols.conf_int(alpha=0.1), rtol=1e-10)
    assert_allclose(res.coef(), ols.params, rtol=1e-10)
    assert_allclose(res.se(), ols.bse, rtol=1e-10)
    pd.testing.assert_frame_equal(res.tidy(), res.coefficients)
    assert "Inverse probability weighting" in res._repr_html_()
    with pytest.raises(ValueError, match="conf_level"):
        res.tidy(conf_level=95)
