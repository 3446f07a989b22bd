from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.models.imputation import fit_mice, impute_mice, pool_analyses, pool_rubin

REF = Path(__file__).parent.parent / "reference" / "attrition"


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


def test_pooled_intervals_at_any_level_match_mice_summary():
    """mice's summary(pool(fit), conf.int = TRUE, conf.level = 0.90) gives
    estimate -/+ qt((1 + conf.level) / 2, df) * sqrt(t) with the Barnard-Rubin df
    (mice:::summary.mipo). The pooled df and t are those printed by pool(fit) in the
    mice reference manual's pool.scalar() example (tests/reference/attrition); the
    inputs are rounded as in test_pooled_mi_regression_matches_mice_pool, hence
    rtol 3e-4 on the estimate and on the half-width of the interval (the age
    interval ends near zero, where a relative tolerance on the limit means nothing)."""
    analyses = pd.read_csv(REF / "mice_nhanes_bmi_age_analyses.csv")
    known = pd.read_csv(REF / "mice_nhanes_bmi_age_pool.csv")
    datasets = [group for _, group in analyses.groupby("imputation")]
    res = pool_analyses(datasets, lambda d: d, dfcom=23, conf_level=0.95)
    half_width = stats.t.ppf(0.95, known["df"]) * np.sqrt(known["t"])
    tidy = res.tidy(conf_level=0.90)
    assert_allclose(tidy["estimate"], known["estimate"], rtol=3e-4)
    assert_allclose(tidy["conf_high"] - tidy["estimate"], half_width, rtol=3e-4)
    assert_allclose(tidy["estimate"] - tidy["conf_low"], half_width, rtol=3e-4)
    # the level the result was fitted with is the default, and it is wider
    wide = res.tidy()
    assert (wide["conf_low"] < tidy["conf_low"]).all()
    assert_allclose(res.coef(), known["estimate"], rtol=3e-4)
    assert "Rubin" in res._repr_html_()
