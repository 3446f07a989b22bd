"""The reference-based imputation engine against cases whose answer is known exactly."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from spimpact.models.reference_based import ImputationModelDraws

SIGMA = np.array([[4.0, 2.0, 1.0], [2.0, 5.0, 3.0], [1.0, 3.0, 6.0]])
MEANS = np.array([20.0, 22.0, 23.0])


def _one_subject(values):
    return pd.DataFrame({"id": "a", "t": [0, 1, 2], "y": values})


def _draws(data, m=1):
    draws = ImputationModelDraws.from_parameters(
        data, formula="y ~ 0 + C(t)", subject="id", visit="t", beta=MEANS, sigma=SIGMA
    )
    if m == 1:
        return draws
    # the same parameters m times, with noise: the sampler alone
    return ImputationModelDraws(
        data=draws.data, subject="id", visit="t", outcome="y", visits=draws.visits,
        design=draws.design, betas=np.repeat(draws.betas, m, axis=0),
        sigmas=np.repeat(draws.sigmas, m, axis=0),
    )  # fmt: skip


@pytest.mark.parametrize("delta", [0.0, -2.0, 3.5])
def test_delta_propagates_to_later_visits_inside_the_loop(delta):
    """Baseline 18 recorded, visits 1 and 2 missing; mu = (20, 22, 23), Sigma above.

    Visit 1: 22 + (2/4)(18 - 20) + delta = 21 + delta. Visit 2 given visits 0 and 1:
    coefficients Sigma_{2,01} Sigma_{01}^{-1} = (1, 3) [[4, 2], [2, 5]]^{-1} = (-1/16, 10/16),
    so 23 + (-1/16)(-2) + (10/16)(-1 + delta) + delta = 22.5 + 1.625 delta: the shift of
    visit 1 carries into visit 2 (a shift after imputation would give 22.5 + delta)."""
    completed = _draws(_one_subject([18.0, np.nan, np.nan])).impute(delta=delta)[0]
    assert_allclose(completed["y"], [18.0, 21.0 + delta, 22.5 + 1.625 * delta], atol=1e-10)
    assert completed["imputed"].tolist() == [False, True, True]


@pytest.mark.parametrize("delta", [0.0, -2.0])
def test_return_to_baseline_centres_dropout_visits_on_the_baseline_mean(delta):
    """rbmi's jump to reference with the baseline mean as reference: mean 20 at visits
    1 and 2, the subject's own deviation kept. Visit 1: 20 + (1/2)(-2) = 19 (+ delta);
    visit 2: 20 + (-1/16)(-2) + (10/16)(19 + delta - 20) + delta = 19.5 + 1.625 delta."""
    draws = _draws(_one_subject([18.0, np.nan, np.nan]))
    completed = draws.impute(strategy="return_to_baseline", delta=delta)[0]
    assert_allclose(completed["y"], [18.0, 19.0 + delta, 19.5 + 1.625 * delta], atol=1e-10)


def test_delta_per_visit_applies_only_where_named():
    completed = _draws(_one_subject([18.0, 24.0, np.nan])).impute(delta={2: -3.0})[0]
    # visit 2 given visits 0 and 1: 23 + (-1/16)(-2) + (10/16)(2) - 3
    assert_allclose(completed["y"].iloc[2], 23 + 2 / 16 + 20 / 16 - 3, atol=1e-10)


def test_intermittent_gap_is_imputed_missing_at_random_without_delta():
    """Visit 1 missing between recorded visits 0 and 2: the conditional mean given both,
    mu_1 + Sigma_{1,02} Sigma_{02}^{-1} (y_02 - mu_02), and no shift (it is not dropout)."""
    completed = _draws(_one_subject([18.0, np.nan, 26.0])).impute(delta=-5.0)[0]
    given = [0, 2]
    coefficient = np.linalg.solve(SIGMA[np.ix_(given, given)], SIGMA[given, 1])
    expected = MEANS[1] + coefficient @ (np.array([18.0, 26.0]) - MEANS[given])
    assert_allclose(completed["y"].iloc[1], expected, atol=1e-10)


def test_draws_follow_the_conditional_distribution():
    """10,000 subjects recorded at baseline only (18), one draw each: mean (21 + d,
    22.5 + 1.625 d) and covariance of the two visits given baseline, Sigma_{12} -
    Sigma_{12,0} Sigma_{12,0}' / 4 = [[4, 2.5], [2.5, 5.75]] (delta is a constant).
    Tolerances are ~4 Monte Carlo standard errors."""
    delta = -1.0
    n = 10_000
    data = pd.DataFrame(
        {"id": np.repeat(np.arange(n), 3), "t": np.tile([0, 1, 2], n),
         "y": np.tile([18.0, np.nan, np.nan], n)}
    )  # fmt: skip
    exact = _draws(data)
    noisy = ImputationModelDraws(
        data=exact.data, subject="id", visit="t", outcome="y", visits=exact.visits,
        design=exact.design, betas=exact.betas, sigmas=exact.sigmas,
    )  # fmt: skip
    completed = noisy.impute(delta=delta, seed=5)[0]
    values = completed["y"].to_numpy().reshape(n, 3)[:, 1:]
    assert_allclose(values.mean(axis=0), [21 + delta, 22.5 + 1.625 * delta], atol=0.1)
    assert_allclose(np.cov(values.T), [[4.0, 2.5], [2.5, 5.75]], atol=0.35)


def test_same_seed_same_normals_for_every_delta():
    """Common random numbers: with one seed the imputations differ between two deltas
    by exactly the propagated shift."""
    draws = _draws(_one_subject([18.0, np.nan, np.nan]), m=5)
    low = draws.impute(delta=0.0, seed=3)
    high = draws.impute(delta=2.0, seed=3)
    for a, b in zip(low, high, strict=True):
        assert_allclose(b["y"] - a["y"], [0.0, 2.0, 2 * 1.625], atol=1e-10)


def test_conditional_mean_imputation_reproduces_generalised_least_squares():
    """Exact identity (the EM fixed point): impute every subject's missing visits by their
    conditional mean at the GLS estimate for a given covariance; the visit means of the
    completed data are then the GLS visit means themselves."""
    from spimpact.models.reference_based import _gls

    rng = np.random.default_rng(8)
    n = 200
    y = MEANS + rng.multivariate_normal(np.zeros(3), SIGMA, size=n)
    stays = np.column_stack([np.ones(n, bool), y[:, 0] > 19, (y[:, 0] > 19) & (y[:, 1] > 21)])
    long = pd.DataFrame(
        {"id": np.repeat(np.arange(n), 3), "t": np.tile([0, 1, 2], n),
         "y": np.where(stays, y, np.nan).ravel()}
    )  # fmt: skip
    template = _draws(long)
    beta = _gls(long["y"].to_numpy().reshape(n, 3), stays, template.design, SIGMA)
    draws = ImputationModelDraws.from_parameters(
        long, formula="y ~ 0 + C(t)", subject="id", visit="t", beta=beta, sigma=SIGMA
    )
    completed = draws.impute()[0]
    assert_allclose(completed.groupby("t")["y"].mean(), beta, atol=1e-10)
    # and the complete-case means are biased: people with low scores left
    assert long.groupby("t")["y"].mean().iloc[2] - beta[2] > 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "jump_to_reference"}, "strategy"),
        ({"delta": {5: 1.0}}, "visits"),
    ],
)
def test_bad_impute_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _draws(_one_subject([18.0, np.nan, np.nan])).impute(**kwargs)


def test_subject_without_any_value_is_rejected():
    data = pd.concat([_one_subject([18.0, np.nan, 1.0]), _one_subject([np.nan] * 3).assign(id="b")])
    with pytest.raises(ValueError, match="id b has no recorded y"):
        _draws(data)


def test_time_varying_covariate_is_rejected():
    data = _one_subject([18.0, 19.0, np.nan]).assign(x=[1, 2, 3])
    with pytest.raises(ValueError, match="vary within id"):
        ImputationModelDraws.from_parameters(
            data, formula="y ~ C(t) + x", subject="id", visit="t", beta=[0] * 4, sigma=SIGMA
        )


def _shifted_truth(n, rng, delta):
    """MVN scores, monotone MAR dropout, then every value after dropout moved by delta
    *in the sequential sense* (its innovation plus delta, given the shifted past): the
    pattern-mixture model that delta-adjusted imputation assumes."""
    y = MEANS + rng.multivariate_normal(np.zeros(3), SIGMA, size=n)
    stay1 = rng.random(n) < 1 / (1 + np.exp(-(1.0 + 0.4 * (y[:, 0] - 20))))
    stay2 = stay1 & (rng.random(n) < 1 / (1 + np.exp(-(0.8 + 0.4 * (y[:, 1] - 22)))))
    shifted = y.copy()
    for j in (1, 2):
        left = ~(stay1 if j == 1 else stay2)
        past = np.arange(j)
        coefficient = np.linalg.solve(SIGMA[np.ix_(past, past)], SIGMA[past, j])
        shifted[left, j] += delta + (shifted[left][:, past] - y[left][:, past]) @ coefficient
    observed = np.column_stack([np.ones(n, bool), stay1, stay2])
    return shifted, observed


@pytest.mark.slow
def test_delta_adjusted_imputation_recovers_an_mnar_truth():
    """Data missing not at random by a known shift (-2 at every visit after leaving,
    carried through the conditional distribution). Imputing with the MMRM (approximate
    Bayes, m = 10, Rubin's rules) and the true delta recovers the change to visit 2
    (bias under 5%, 95% intervals cover in 40 data sets of 250 people at least 36
    times); imputing under MAR (delta 0) is biased upwards."""
    from spimpact.models.imputation import pool_analyses
    from spimpact.models.reference_based import draw_imputation_model

    delta, n = -2.0, 250
    population, _ = _shifted_truth(200_000, np.random.default_rng(1), delta)
    truth = population[:, 2].mean() - population[:, 0].mean()

    def change(data):
        wide = data["y"].to_numpy().reshape(-1, 3)
        diff = wide[:, 2] - wide[:, 0]
        return pd.DataFrame(
            {"term": ["change"], "estimate": [diff.mean()],
             "std_error": [diff.std(ddof=1) / np.sqrt(len(diff))], "df": [len(diff) - 1.0]}
        )  # fmt: skip

    adjusted, at_random, covered = [], [], []
    for rep in range(40):
        rng = np.random.default_rng([5, rep])
        y, observed = _shifted_truth(n, rng, delta)
        long = pd.DataFrame(
            {"id": np.repeat(np.arange(n), 3), "t": np.tile([0, 1, 2], n),
             "y": np.where(observed, y, np.nan).ravel()}
        )  # fmt: skip
        draws = draw_imputation_model(long, formula="y ~ C(t)", subject="id", visit="t",
                                      m=10, seed=rep)  # fmt: skip
        pooled = pool_analyses(draws.impute(delta=delta, seed=rep), change, dfcom="analysis")
        row = pooled.tidy().iloc[0]
        adjusted.append(row["estimate"])
        covered.append(row["conf_low"] < truth < row["conf_high"])
        mar = pool_analyses(draws.impute(delta=0.0, seed=rep), change, dfcom="analysis")
        at_random.append(mar.tidy()["estimate"].iloc[0])
    assert abs(np.mean(adjusted) - truth) < 0.05 * abs(truth)
    assert np.mean(at_random) - truth > 0.5
    assert np.sum(covered) >= 36
