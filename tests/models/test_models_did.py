"""2x2 DiD, two-way fixed effects and event study against published results."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.datasets import grunfeld

from spimpact.models.did import fit_did_2x2, fit_event_study, fit_twfe

REF = Path(__file__).parent.parent / "reference" / "did"


@pytest.fixture(scope="module")
def kielmc():
    return pd.read_csv(REF / "kielmc.csv")


@pytest.fixture(scope="module")
def base_did():
    data = pd.read_csv(REF / "base_did.csv")
    data["first_treated"] = np.where(data["treat"] == 1, 6, 0)
    return data


@pytest.fixture(scope="module")
def grunfeld10():
    data = grunfeld.load_pandas().data
    # plm's and Baltagi's Grunfeld data are the 10 firms without American Steel
    return data[data["firm"] != "American Steel"].reset_index(drop=True)


def test_did_2x2_matches_wooldridge_example_13_3(kielmc):
    """Wooldridge, Introductory Econometrics, Example 13.3 (eq. 13.11), KIELMC:
    rprice = 82,517.23 - 18,824.37 nearinc + 18,790.29 y81 - 11,863.90 y81nearinc,
    SEs (2,726.91) (4,875.32) (4,050.07) (7,456.65), n = 321. R: lm(rprice ~ nearinc * y81)."""
    result = fit_did_2x2(kielmc, outcome="rprice", treated="nearinc", post="y81")
    tidy = result.tidy().set_index("term")
    assert_allclose(
        tidy.loc[["(Intercept)", "nearinc", "y81", "nearinc:y81"], "estimate"],
        [82517.23, -18824.37, 18790.29, -11863.90],
        atol=0.006,
    )
    assert_allclose(
        tidy.loc[["(Intercept)", "nearinc", "y81", "nearinc:y81"], "std_error"],
        [2726.91, 4875.32, 4050.07, 7456.65],
        atol=0.006,
    )
    assert result.att == pytest.approx(-11863.90, abs=0.006)
    assert result.n_obs == 321
    assert "classical" in result.summary()


def test_did_2x2_cluster_matches_fixest(kielmc):
    """R: fixest::feols(rprice ~ nearinc * y81, kielmc, cluster = ~cbd); printed via
    modelsummary: SEs 3221.924, 7796.294, 5154.864, 6621.818 (34 clusters, CR1)."""
    result = fit_did_2x2(kielmc, outcome="rprice", treated="nearinc", post="y81", cluster="cbd")
    tidy = result.tidy().set_index("term")
    assert_allclose(
        tidy.loc[["(Intercept)", "nearinc", "y81", "nearinc:y81"], "std_error"],
        [3221.924, 7796.294, 5154.864, 6621.818],
        atol=0.0006,
    )
    assert result.n_clusters == 34
    assert "CR1 by cbd" in result.summary()


@pytest.mark.parametrize(
    ("time_effects", "expected_estimate", "expected_se"),
    [
        # R: plm(inv ~ value + capital, Grunfeld, model = "within", effect = "twoways")
        (True, [0.117716, 0.357916], [0.013751, 0.022719]),
    ],
)
def test_twfe_matches_plm_grunfeld(grunfeld10, time_effects, expected_estimate, expected_se):
    """Grunfeld investment data, two-way within estimator. R plm (Croissant & Millo 2008,
    J Stat Softw 27(2)) prints value 0.117716 (0.013751), capital 0.357916 (0.022719)."""
    result = fit_twfe("invest ~ value + capital", grunfeld10, unit="firm", time="year")
    tidy = result.tidy()
    assert_allclose(tidy["estimate"], expected_estimate, atol=5e-7)
    assert_allclose(tidy["std_error"], expected_se, atol=5e-7)
    assert result.n_units == 10 and result.n_times == 20
    assert "classical" in result.summary()


def test_twfe_unbalanced_equals_dummy_regression(grunfeld10):
    """Alternating projections on an unbalanced panel give the dummy-variable OLS answer."""
    import statsmodels.formula.api as smf

    unbalanced = grunfeld10.drop(index=[3, 50, 51, 120, 199]).reset_index(drop=True)
    result = fit_twfe("invest ~ value + capital", unbalanced, unit="firm", time="year")
    lsdv = smf.ols("invest ~ value + capital + C(firm) + C(year)", unbalanced).fit()
    assert_allclose(result.tidy()["estimate"], lsdv.params[["value", "capital"]], rtol=1e-8)
    assert_allclose(result.tidy()["std_error"], lsdv.bse[["value", "capital"]], rtol=1e-8)


@pytest.mark.parametrize("drop", [(), (3, 50, 51, 120, 199)], ids=["balanced", "unbalanced"])
def test_twfe_matches_linearmodels_panelols(grunfeld10, drop):
    """linearmodels is the oracle for the within estimator (Grunfeld, public data):
    PanelOLS.from_formula("invest ~ value + capital + EntityEffects + TimeEffects",
    data.set_index(["firm", "year"])).fit(cov_type="unadjusted"), balanced and with five
    rows dropped. linearmodels stays a test dependency for this cross-check."""
    from linearmodels.panel import PanelOLS

    data = grunfeld10.drop(index=list(drop)).reset_index(drop=True)
    data["year"] = data["year"].astype(int)
    result = fit_twfe("invest ~ value + capital", data, unit="firm", time="year")
    oracle = PanelOLS.from_formula(
        "invest ~ value + capital + EntityEffects + TimeEffects", data.set_index(["firm", "year"])
    ).fit(cov_type="unadjusted")
    assert_allclose(result.tidy()["estimate"], oracle.params.to_numpy(), rtol=1e-8)
    assert_allclose(result.tidy()["std_error"], oracle.std_errors.to_numpy(), rtol=1e-8)
    assert result.df == oracle.df_resid


def test_twfe_clustered_matches_linearmodels_up_to_the_stated_small_sample_factor(grunfeld10):
    """Clustered by firm, the sandwich is linearmodels' (PanelOLS ... .fit(cov_type=
    "clustered", cluster_entity=True, group_debias=True)); only the small-sample factor
    differs. linearmodels multiplies by G/(G-1) (n-1)/(n - k) with every absorbed level in
    k (its df_resid, 169); fixest, and spimpact, by G/(G-1) (n-1)/(n - K) with the firm
    effects, nested in the firm clusters, left out of K (2 slopes + 20 years: n - K = 178).
    """
    from linearmodels.panel import PanelOLS

    data = grunfeld10.assign(year=grunfeld10["year"].astype(int))
    result = fit_twfe("invest ~ value + capital", data, unit="firm", time="year", cluster="firm")
    oracle = PanelOLS.from_formula(
        "invest ~ value + capital + EntityEffects + TimeEffects", data.set_index(["firm", "year"])
    ).fit(cov_type="clustered", cluster_entity=True, group_debias=True)
    assert oracle.df_resid == 169
    assert_allclose(result.tidy()["estimate"], oracle.params.to_numpy(), rtol=1e-8)
    assert_allclose(
        result.tidy()["std_error"] ** 2, oracle.std_errors.to_numpy() ** 2 * 169 / 178, rtol=1e-8
    )


def test_event_study_matches_fixest_base_did(base_did):
    """R: fixest::feols(y ~ x1 + i(period, treat, 5) | id + period, base_did), clustered
    by id (fixest walkthrough vignette). Treatment starts in period 6, so period p is
    event time p - 6 and the reference period 5 is event time -1."""
    result = fit_event_study(
        base_did,
        outcome="y",
        unit="id",
        time="period",
        first_treated="first_treated",
        window=(-5, 4),
        cluster="id",
        covariates=["x1"],
    )
    tidy = result.tidy()
    assert tidy["term"].tolist() == [f"event_time::{e}" for e in [-5, -4, -3, -2, 0, 1, 2, 3, 4]]
    assert_allclose(
        tidy["estimate"],
        [
            -1.403045,
            -1.247511,
            -0.273206,
            -1.795721,
            0.784452,
            3.598897,
            3.811766,
            4.731426,
            6.606229,
        ],
        atol=5e-7,
    )
    assert_allclose(
        tidy["std_error"],
        [1.110267, 1.093145, 1.106935, 1.087974, 1.028388, 1.101563, 1.247502, 1.097113, 1.120494],
        atol=5e-7,
    )
    # t reference with G - 1 = 107 df: fixest prints Pr(>|t|) 2.0908e-01 for period 1
    assert tidy["p_value"].iloc[0] == pytest.approx(0.20908, abs=5e-6)
    assert_allclose(result.other_terms["estimate"], [0.973490], atol=5e-7)
    assert_allclose(result.other_terms["std_error"], [0.045678], atol=5e-7)


def test_event_study_pretrend_wald_test(base_did):
    """The pre-trend statistic is b' V^-1 b over the pre-period coefficients."""
    result = fit_event_study(
        base_did,
        outcome="y",
        unit="id",
        time="period",
        first_treated="first_treated",
        window=(-5, 4),
        cluster="id",
        covariates=["x1"],
    )
    pre = result.coefficients["event_time"] < 0
    b = result.coefficients.loc[pre, "estimate"].to_numpy()
    v = result.covariance.to_numpy()[np.ix_(pre, pre)]
    assert result.pretrend_test.df == 4
    assert result.pretrend_test.statistic == pytest.approx(b @ np.linalg.solve(v, b))
    assert 0 < result.pretrend_test.p_value < 1
    assert "pre-trend" in result.summary()
    ax = result.plot()
    assert len(ax.lines) >= 1


@pytest.mark.parametrize("never_code", [np.nan, np.inf])
def test_event_study_accepts_never_treated_codes(base_did, never_code):
    """Never-treated may be coded 0 (R did), NaN or inf: same fit."""
    arguments = {
        "outcome": "y",
        "unit": "id",
        "time": "period",
        "first_treated": "first_treated",
        "window": (-5, 4),
    }
    coded_zero = fit_event_study(base_did, **arguments)
    data = base_did.copy()
    data["first_treated"] = np.where(data["treat"] == 1, 6, never_code)
    result = fit_event_study(data, **arguments)
    assert result.n_treated_units == coded_zero.n_treated_units == 55
    assert_allclose(result.tidy()["estimate"], coded_zero.tidy()["estimate"], rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": "missing"}, "not found"),
        ({"treated": "rprice"}, "must be 0/1"),
        ({"cluster": "nope"}, "not found"),
    ],
)
def test_did_2x2_bad_input(kielmc, kwargs, message):
    arguments = {"outcome": "rprice", "treated": "nearinc", "post": "y81"} | kwargs
    with pytest.raises(ValueError, match=message):
        fit_did_2x2(kielmc, **arguments)


def test_event_study_rejects_bad_window(base_did):
    with pytest.raises(ValueError, match="window"):
        fit_event_study(
            base_did,
            outcome="y",
            unit="id",
            time="period",
            first_treated="first_treated",
            window=(0, 4),
        )


def test_event_study_rejects_date_periods(base_did):
    data = base_did.assign(
        period=pd.to_datetime("2024-01-01") + pd.to_timedelta(base_did.period, "D")
    )
    with pytest.raises(ValueError, match="must be numeric periods"):
        fit_event_study(
            data,
            outcome="y",
            unit="id",
            time="period",
            first_treated="first_treated",
            window=(-5, 4),
        )
