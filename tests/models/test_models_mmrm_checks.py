"""fit_mmrm internals and behaviour: derivatives, optimiser, inputs, result API.

The reference comparisons with R mmrm and SAS are in test_models_mmrm.py; here the
analytic derivatives are checked against finite differences, statsmodels is shown
failing where fit_mmrm converges, and the result's tables are checked against
hand computation.
"""

import dataclasses
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from simulated_mmrm import simulate
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from spimpact.models import fit_mmrm as exported_fit_mmrm
from spimpact.models import mmrm_likelihood, mmrm_optimise
from spimpact.models.mmrm import MmrmResult, fit_mmrm
from spimpact.models.mmrm_covariance import STRUCTURES, acf_to_pacf, make_structure, pacf_to_acf

matplotlib.use("Agg")

REF = Path(__file__).parent.parent / "reference" / "mmrm"
VISITS = ["v1", "v2", "v3", "v4"]


@pytest.fixture(scope="module")
def fev():
    frame = pd.read_csv(REF / "fev_data.csv")
    frame["AVISIT"] = pd.Categorical(frame.AVISIT, categories=["VIS1", "VIS2", "VIS3", "VIS4"])
    frame["ARMCD"] = pd.Categorical(frame.ARMCD, categories=["PBO", "TRT"])
    return frame


@pytest.fixture(scope="module")
def small():
    return simulate(60, np.random.default_rng(5))


def _phi(structure, seed=0):
    rng = np.random.default_rng(seed)
    return structure.natural(structure.start(np.diag([4.0, 6.0, 9.0, 16.0])) + 0.2 * rng.normal(
        size=structure.n_theta
    ))  # fmt: skip


@pytest.mark.parametrize("name", STRUCTURES)
def test_covariance_derivatives_match_finite_differences(name):
    structure = make_structure(name, VISITS)
    phi = _phi(structure)
    sigma, first, second = structure.derivatives(phi)
    step = 1e-6
    eye = np.eye(len(phi))
    numeric_first = np.array(
        [
            (structure.sigma(phi + step * e) - structure.sigma(phi - step * e)) / (2 * step)
            for e in eye
        ]
    )
    numeric_second = np.array(
        [
            (structure.derivatives(phi + step * e)[1] - structure.derivatives(phi - step * e)[1])
            / (2 * step)
            for e in eye
        ]
    )
    assert_allclose(first, numeric_first, atol=1e-6)
    assert_allclose(second, numeric_second, atol=1e-5)
    assert_allclose(sigma, sigma.T)
    assert structure.is_valid(phi)
    # the complex-step Jacobian of theta -> phi against finite differences
    theta = structure.start(np.diag([4.0, 6.0, 9.0, 16.0])) + 0.1
    numeric_jacobian = np.column_stack(
        [
            (structure.natural(theta + step * e) - structure.natural(theta - step * e)) / (2 * step)
            for e in np.eye(len(theta))
        ]
    )
    assert_allclose(structure.jacobian(theta), numeric_jacobian, atol=1e-6)


@pytest.mark.parametrize(
    "name,reml,grouped",
    [("us", True, False), ("ar1h", True, True), ("toeph", False, False), ("csh", False, True)],
)
def test_deviance_gradient_and_hessian_match_finite_differences(fev, name, reml, grouped):
    """Analytic gradient and observed Hessian, with weights and group-specific matrices."""
    frame = fev.dropna(subset=["FEV1"]).reset_index(drop=True)
    y, x = patsy.dmatrices("FEV1 ~ ARMCD + SEX", frame, return_type="dataframe")
    groups = frame.ARMCD.cat.codes.to_numpy().astype(int) if grouped else np.zeros(len(frame), int)
    data = mmrm_likelihood.build_data(
        x.to_numpy(), y.to_numpy().ravel(), frame.WEIGHT.to_numpy(),
        pd.factorize(frame.USUBJID)[0], frame.AVISIT.cat.codes.to_numpy().astype(int), groups, 4,
    )  # fmt: skip
    structure = make_structure(name, VISITS)
    n_groups = groups.max() + 1
    phis = [_phi(structure, seed) for seed in range(n_groups)]
    flat = np.concatenate(phis)
    size = structure.n_theta

    def split(vector):
        return [vector[g * size : (g + 1) * size] for g in range(n_groups)]

    def deviance(vector):
        sigmas = [structure.sigma(phi) for phi in split(vector)]
        return mmrm_likelihood.profile(data, sigmas, reml).deviance

    def derivatives(vector):
        sigmas = [structure.sigma(phi) for phi in split(vector)]
        state = mmrm_likelihood.profile(data, sigmas, reml)
        firsts, seconds = mmrm_optimise.stacked_derivatives(structure, split(vector))
        return mmrm_likelihood.derivatives(data, state, firsts, seconds, reml)

    analytic = derivatives(flat)
    step = 1e-5
    eye = np.eye(len(flat))
    gradient = [(deviance(flat + step * e) - deviance(flat - step * e)) / (2 * step) for e in eye]
    hessian = [
        (derivatives(flat + step * e).gradient - derivatives(flat - step * e).gradient) / (2 * step)
        for e in eye
    ]
    scale = np.abs(analytic.hessian).max()
    assert_allclose(analytic.gradient, gradient, rtol=1e-6, atol=1e-6 * scale)
    assert_allclose(analytic.hessian, hessian, rtol=1e-5, atol=1e-6 * scale)


def test_partial_autocorrelations_round_trip():
    pacf = np.array([0.5, -0.3, 0.2])
    acf = pacf_to_acf(pacf)
    assert_allclose(acf_to_pacf(acf), pacf)
    lags = np.abs(np.subtract.outer(range(4), range(4)))
    correlation = np.concatenate([[1.0], acf])[lags]
    assert np.linalg.eigvalsh(correlation).min() > 0


@pytest.mark.slow
def test_statsmodels_fails_where_mmrm_converges(fev):
    """statsmodels MixedLM cannot state an unstructured residual covariance; the usual
    emulation (a random effect per visit, re_formula="0 + AVISIT", plus the residual
    variance, which over-parameterises the model) on mmrm's README model warns that
    its optimisation failed and stops at a -2 log-likelihood 0.19 worse than the
    REML maximum; fit_mmrm converges to the maximum that R mmrm and SAS report
    (test_models_mmrm.py).
    """
    formula = "FEV1 ~ RACE + SEX + ARMCD * AVISIT"
    ours = fit_mmrm(formula, fev, subject="USUBJID", visit="AVISIT")
    assert ours.converged
    observed = fev.dropna(subset=["FEV1"])
    model = smf.mixedlm(formula, observed, groups=observed["USUBJID"], re_formula="0 + AVISIT")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theirs = model.fit(reml=True)
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert -2 * theirs.llf > -2 * ours.loglik + 0.1


def test_missing_at_random_estimates_are_unbiased_where_random_intercept_is_not():
    """Unequal variances by visit and dropout driven by the previous score (MAR):
    the unstructured MMRM recovers the changes from the first visit (1, 2, 3) within
    Monte Carlo error on 20,000 subjects; a random-intercept model (compound
    symmetry, the previous wellbeing headline) is biased downwards by more than 5%.
    """
    from spimpact.models.mixed import fit_mixed

    frame = simulate(20000, np.random.default_rng(1))
    mmrm = fit_mmrm("score ~ C(visit)", frame, subject="id", visit="visit").contrasts()
    assert_allclose(mmrm.estimate, [1.0, 2.0, 3.0], atol=3 * mmrm.std_error.max())
    assert (np.abs(mmrm.estimate / [1.0, 2.0, 3.0] - 1) < 0.05).all()
    intercept = fit_mixed("score ~ C(visit)", frame, group="id").contrasts("visit")
    assert (intercept.estimate.to_numpy() / [1.0, 2.0, 3.0] < 0.95).all()


def test_result_api(small):
    fit = fit_mmrm("score ~ C(visit)", small, subject="id", visit="visit", conf_level=0.9)
    assert isinstance(fit, MmrmResult) and exported_fit_mmrm is fit_mmrm
    tidy = fit.tidy()
    assert list(tidy.columns) == [
        "effect", "group", "term", "estimate", "std_error", "statistic", "p_value",
        "conf_low", "conf_high", "df",
    ]  # fmt: skip
    fixed = tidy[tidy.effect == "fixed"]
    assert fixed.term.tolist() == list(fit.fixed_names)
    # t intervals on the fitted df at the fitted level
    from scipy import stats

    crit = stats.t.ppf(0.95, fixed.df)
    assert_allclose(fixed.conf_high - fixed.estimate, crit * fixed.std_error)
    ran = tidy[tidy.effect == "ran_pars"].set_index("term").estimate
    assert ran["sd__0"] == pytest.approx(np.sqrt(fit.covariance.loc[0, 0]))
    assert fit.covariance.shape == (4, 4) and list(fit.covariance.columns) == [0, 1, 2, 3]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.loglik = 0.0
    # marginal means at each visit; contrasts = differences of them with the same df
    means = fit.marginal_means()
    contrasts = fit.contrasts()
    assert means.level.tolist() == [0, 1, 2, 3]
    assert_allclose(contrasts.estimate, means.estimate.iloc[1:] - means.estimate.iloc[0])
    assert_allclose(contrasts.estimate, fit.coef[1:])
    assert_allclose(contrasts.df, fit.df_coef[1:])
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * 10)
    assert fit.bic == pytest.approx(-2 * fit.loglik + np.log(60) * 10)
    text = fit.summary()
    assert "unstructured" in text and "Satterthwaite" in text
    assert fit._repr_html_().startswith("<pre>")
    assert fit.plot().get_xlabel() == "visit"


def test_with_df_switches_method_without_refitting(fev):
    fit = fit_mmrm("FEV1 ~ ARMCD", fev, subject="USUBJID", visit="AVISIT", covariance="ar1")
    kr = fit.with_df("kenward_roger")
    direct = fit_mmrm(
        "FEV1 ~ ARMCD", fev, subject="USUBJID", visit="AVISIT", covariance="ar1",
        df="kenward_roger",
    )  # fmt: skip
    assert kr.df_method == "kenward_roger" and fit.df_method == "satterthwaite"
    assert_allclose(kr.std_errors, direct.std_errors, rtol=1e-10)
    assert_allclose(kr.df_coef, direct.df_coef, rtol=1e-10)
    residual = fit.with_df("residual")
    assert_allclose(residual.df_coef, [537 - 2, 537 - 2])
    assert_allclose(residual.std_errors, fit.std_errors)
    with pytest.raises(ValueError, match="df must be one of"):
        fit.with_df("containment")


def test_proportional_weights_average_by_observed_frequency(fev):
    """emmeans weights = "proportional": other factors weighted by their frequency."""
    fit = fit_mmrm("FEV1 ~ SEX + ARMCD * AVISIT", fev, subject="USUBJID", visit="AVISIT")
    equal = fit.marginal_means("ARMCD", by="AVISIT")
    proportional = fit.marginal_means("ARMCD", by="AVISIT", weights="proportional")
    used = fev.dropna(subset=["FEV1"])
    female_share = (used.SEX == "Female").mean()
    female = fit.coef[list(fit.fixed_names).index("SEX[T.Male]")]
    # SEX levels sorted: Female is the reference, so the shift is the Male coefficient
    shift = female * ((1 - female_share) - 0.5)
    assert_allclose(proportional.estimate - equal.estimate, shift)
    with pytest.raises(ValueError, match="weights must be one of"):
        fit.marginal_means(weights="cells")


def test_same_data_give_identical_numbers(small):
    first = fit_mmrm("score ~ C(visit)", small, subject="id", visit="visit").tidy()
    second = fit_mmrm("score ~ C(visit)", small.sample(frac=1, random_state=3), subject="id",
                      visit="visit").tidy()  # fmt: skip
    pd.testing.assert_frame_equal(first, second, check_exact=False, rtol=1e-10)


def test_singular_covariance_is_reported_not_hidden():
    """US on 15 subjects with 3 left at the last visit: the conditional variance of
    the last visit given the others is not estimable (4 parameters, 3 subjects).
    """
    rng = np.random.default_rng(2026)
    frame = None
    for _ in range(288):
        frame = simulate(15, rng)
    assert frame.groupby("visit").size().tolist() == [15, 11, 6, 3]
    fit = fit_mmrm("score ~ C(visit)", frame, subject="id", visit="visit")
    assert not fit.converged
    assert any("singular" in text for text in fit.diagnostics)
    assert fit.tidy().df.isna().iloc[0]
    simpler = fit_mmrm("score ~ C(visit)", frame, subject="id", visit="visit", covariance="ar1h")
    assert simpler.converged


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"covariance": "un"}, "covariance must be one of"),
        ({"method": "reml"}, "method must be 'REML' or 'ML'"),
        ({"df": "kr"}, "df must be one of"),
        ({"method": "ML", "df": "kenward_roger"}, "need method='REML'"),
        ({"subject": "client"}, "subject column 'client' is not in data"),
        ({"weights": "w"}, "weights column 'w' is not in data"),
        ({"weights": [1.0, 2.0]}, "one value per row"),
        ({"conf_level": 95}, "conf_level must be between 0 and 1"),
    ],
)
def test_bad_options_are_named(small, kwargs, message):
    options = {"subject": "id", "visit": "visit"} | kwargs
    with pytest.raises(ValueError, match=message):
        fit_mmrm("score ~ C(visit)", small, **options)


def test_bad_data_is_named(small):
    duplicated = pd.concat([small, small.iloc[[4]]], ignore_index=True)
    with pytest.raises(
        ValueError, match=r"subject 1 has more than one row at visit 3 \(rows \[4, 179\]\)"
    ):
        fit_mmrm("score ~ C(visit)", duplicated, subject="id", visit="visit")
    weighted = small.assign(w=1.0)
    weighted.loc[7, "w"] = -2.0
    with pytest.raises(ValueError, match=r"row 7 has -2.0"):
        fit_mmrm("score ~ C(visit)", weighted, subject="id", visit="visit", weights="w")
    grouped = small.assign(arm=np.where(small.index % 2 == 0, "a", "b"))
    with pytest.raises(ValueError, match="constant within subject"):
        fit_mmrm("score ~ C(visit)", grouped, subject="id", visit="visit", group="arm")
    with pytest.raises(ValueError, match="rank deficient"):
        fit_mmrm("score ~ C(visit) + twice", small.assign(twice=1.0), subject="id", visit="visit")
    fit = fit_mmrm("score ~ C(visit)", small.assign(score=small.score.where(small.index != 3)),
                   subject="id", visit="visit")  # fmt: skip
    assert fit.n_rows_dropped == 1 and fit.n_obs == len(small) - 1
    with pytest.raises(ValueError, match="term 'arm' is not a variable"):
        fit.marginal_means("arm")
