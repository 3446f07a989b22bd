from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

from spimpact.models.attrition import (
    fit_ipw,
    fit_mice,
    fit_tipping_point,
    impute_mice,
    pool_analyses,
    pool_rubin,
)

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


def test_pool_rubin_matches_mice_pool_scalar():
    """mice reference manual, pool.scalar() example:
    pool.scalar(Q = c(-1.5457, -1.428), U = c(0.9723^2, 1.041^2), n = 25, k = 2)
    prints qbar -1.48685, ubar 1.014524, b 0.006926645, t 1.024914, df 20.97025,
    r 0.01024122, fmi 0.09272831. Same inputs, so matched to the printed 7 digits."""
    pooled = pool_rubin([-1.5457, -1.428], [0.9723**2, 1.041**2], dfcom=23).iloc[0]
    assert_allclose(pooled["estimate"], -1.48685, rtol=1e-6)
    assert_allclose(pooled["ubar"], 1.014524, rtol=1e-6)
    assert_allclose(pooled["b"], 0.006926645, rtol=1e-6)
    assert_allclose(pooled["t"], 1.024914, rtol=1e-6)
    assert_allclose(pooled["df"], 20.97025, rtol=1e-6)
    assert_allclose(pooled["riv"], 0.01024122, rtol=1e-6)
    assert_allclose(pooled["fmi"], 0.09272831, rtol=1e-6)
    assert_allclose(pooled["std_error"], np.sqrt(1.024914), rtol=1e-6)


def test_pooled_mi_regression_matches_mice_pool():
    """mice reference manual, pool.scalar() example, 'automatic pooling using broom':
    imp <- mice(nhanes, maxit = 2, m = 2, print = FALSE, seed = 18210)
    fit <- with(data = imp, lm(bmi ~ age)); pool(fit)
    Inputs are the per-imputation lm() coefficients and SEs printed in the same example
    (rounded to 4-5 significant digits), so the pooled quantities agree to that
    precision: rtol 3e-4 for the estimate, ubar, t and df; b (hence riv, lambda and
    fmi) is a variance of two inputs that differ only from the 3rd digit (-1.5457 vs
    -1.428, rounding error up to 5e-4 on a difference of 0.118), so rtol 5e-3 there."""
    analyses = pd.read_csv(REF / "mice_nhanes_bmi_age_analyses.csv")
    known = pd.read_csv(REF / "mice_nhanes_bmi_age_pool.csv")
    estimates = analyses.pivot(index="imputation", columns="term", values="estimate")
    variances = analyses.pivot(index="imputation", columns="term", values="std_error") ** 2
    unknown = pool_rubin(estimates, variances, dfcom=23)
    assert list(unknown["term"]) == list(known["term"])
    for column in ("estimate", "ubar", "t", "df"):
        assert_allclose(unknown[column], known[column], rtol=3e-4, err_msg=column)
    for column in ("b", "riv", "lambda", "fmi"):
        assert_allclose(unknown[column], known[column], rtol=5e-3, err_msg=column)


def test_pool_rubin_large_sample_df_is_rubin_1987():
    q = np.array([[1.0, 2.0], [1.2, 2.5], [0.9, 2.1]])
    u = np.full_like(q, 0.04)
    pooled = pool_rubin(q, u)
    b = q.var(axis=0, ddof=1)
    lam = (1 + 1 / 3) * b / (0.04 + (1 + 1 / 3) * b)
    assert_allclose(pooled["df"], 2 / lam**2)
    assert np.isinf(pooled["dfcom"]).all()
    assert list(pooled.columns) == [
        "term",
        "m",
        "estimate",
        "std_error",
        "ubar",
        "b",
        "t",
        "dfcom",
        "df",
        "riv",
        "lambda",
        "fmi",
    ]


@pytest.mark.parametrize(
    ("estimates", "variances", "dfcom", "message"),
    [
        ([1.0], [1.0], None, "at least 2"),
        ([1.0, 2.0], [1.0], None, "same shape"),
        ([1.0, 2.0], [1.0, -1.0], None, "non-negative"),
        ([1.0, 2.0], [1.0, 1.0], 0, "dfcom"),
    ],
)
def test_pool_rubin_rejects_bad_input(estimates, variances, dfcom, message):
    with pytest.raises(ValueError, match=message):
        pool_rubin(estimates, variances, dfcom=dfcom)


def _example_frame(n=150, seed=11):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    group = rng.choice(["a", "b", "c"], size=n)
    y = 1 + 0.5 * x + (group == "b") + rng.normal(size=n)
    frame = pd.DataFrame({"id": np.arange(n), "x": x, "group": group, "y": y})
    frame.loc[rng.random(n) < 0.3, "y"] = np.nan
    frame.loc[rng.random(n) < 0.1, "group"] = None
    return frame


def test_impute_mice_is_seeded_and_imputes_observed_donor_values():
    frame = _example_frame()
    first = impute_mice(frame, m=3, max_iter=3, seed=42, columns=["x", "group", "y"])
    second = impute_mice(frame, m=3, max_iter=3, seed=42, columns=["x", "group", "y"])
    for a, b in zip(first.datasets, second.datasets, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert first.methods == {"group": "polyreg", "y": "pmm"}
    observed_y = set(frame["y"].dropna())
    for data in first.datasets:
        assert data[["x", "group", "y"]].notna().all().all()
        # predictive mean matching only ever imputes values somebody actually had
        assert set(data.loc[first.missing["y"], "y"]) <= observed_y
        assert set(data["group"]) <= {"a", "b", "c"}
        pd.testing.assert_series_equal(data["id"], frame["id"])
    other = impute_mice(frame, m=3, max_iter=3, seed=43, columns=["x", "group", "y"])
    assert not first.datasets[0].equals(other.datasets[0])


def test_fit_mice_pools_per_imputation_fits():
    frame = _example_frame()

    def analysis(data):
        fit = smf.ols("y ~ x", data).fit()
        return pd.DataFrame(
            {"term": fit.params.index, "estimate": fit.params, "std_error": fit.bse}
        )

    res = fit_mice(frame, analysis, m=5, max_iter=5, seed=1, columns=["x", "group", "y"], dfcom=148)
    per = res.per_imputation
    assert per["imputation"].nunique() == 5
    slope = per.loc[per.term == "x", "estimate"]
    assert_allclose(res.pooled.set_index("term").loc["x", "estimate"], slope.mean())
    tidy = res.tidy()
    assert list(tidy.columns) == [
        "term",
        "estimate",
        "std_error",
        "statistic",
        "p_value",
        "conf_low",
        "conf_high",
    ]
    assert (tidy["conf_low"] < tidy["estimate"]).all()
    assert "Rubin" in res.summary()


def test_fit_mice_rejects_columns_not_in_data():
    with pytest.raises(ValueError, match="not in the data"):
        impute_mice(_example_frame(), columns=["x", "nope"])


def test_tipping_point_is_linear_in_delta_for_a_mean():
    """For the mean of y, shifting the imputed values by delta moves the pooled mean by
    delta x (share imputed), so the tipping points have closed forms."""
    frame = _example_frame(n=200, seed=3)[["x", "y"]]
    frame["y"] = frame["y"] + 2  # a clearly positive mean
    imputations = impute_mice(frame, m=5, max_iter=3, seed=9)

    def mean_of_y(data):
        y = data["y"]
        return pd.DataFrame(
            {"term": ["mean"], "estimate": [y.mean()], "std_error": [y.std() / np.sqrt(len(y))]}
        )

    res = fit_tipping_point(
        imputations, mean_of_y, column="y", term="mean", deltas=np.linspace(-30, 0, 61)
    )
    share = imputations.missing["y"].mean()
    at_zero = res.table.iloc[-1]
    assert_allclose(res.delta_no_effect, -at_zero["estimate"] / share, rtol=1e-6)
    assert res.delta_no_effect < res.delta_no_significance < 0
    assert (np.diff(res.table["estimate"]) > 0).all()
    assert "significance" in res.summary()


def test_pool_analyses_takes_fixed_effects_of_mixed_tidy():
    frames = [pd.DataFrame({"v": [1.0]}), pd.DataFrame({"v": [2.0]})]

    def mixed_like(data):
        return pd.DataFrame(
            {
                "effect": ["fixed", "ran_pars"],
                "group": [None, "client_id"],
                "term": ["timepoint", "sd__(Intercept)"],
                "estimate": [data["v"].iloc[0], 3.0],
                "std_error": [0.5, np.nan],
            }
        )

    res = pool_analyses(frames, mixed_like)
    assert list(res.pooled["term"]) == ["timepoint"]
    assert_allclose(res.pooled["estimate"], 1.5)


def test_pool_analyses_with_fit_mixed_on_imputed_data():
    """The MI workflow with the wellbeing helper's mixed model as the analysis: only its
    fixed effects are pooled, one Rubin row per fixed effect."""
    from spimpact.models.mixed import fit_mixed

    rng = np.random.default_rng(4)
    n = 120
    baseline = rng.normal(20, 4, n)
    wide = pd.DataFrame(
        {
            "client_id": [f"c{i}" for i in range(n)],
            "t0": baseline,
            "t1": baseline + 2 + rng.normal(0, 2, n),
        }
    )
    wide.loc[rng.random(n) < 0.3, "t1"] = np.nan
    imputations = impute_mice(wide, m=3, max_iter=2, seed=8, columns=["t0", "t1"])

    def mixed(data):
        long = data.melt(id_vars="client_id", value_vars=["t0", "t1"], var_name="time")
        long["timepoint"] = long["time"].str[1].astype(int)
        return fit_mixed("value ~ C(timepoint)", long, group="client_id")

    res = pool_analyses(imputations.datasets, mixed)
    assert list(res.pooled["term"]) == ["Intercept", "C(timepoint)[T.1]"]
    per = res.per_imputation
    slope = per.loc[per["term"] == "C(timepoint)[T.1]", "estimate"]
    assert_allclose(res.pooled.loc[1, "estimate"], slope.mean())
    assert 1.0 < res.pooled.loc[1, "estimate"] < 3.0
