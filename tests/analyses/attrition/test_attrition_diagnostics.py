"""Diagnostics of the attrition analysis (issue 18) on the hillcrest example."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from spimpact.analyses.attrition import diagnostics as dx
from spimpact.interactive import open_scheme
from spimpact.models.imputation import impute_mice
from spimpact.models.ipw import fit_ipw


@pytest.fixture(scope="module")
def result(example_params):
    params = next(p for p in example_params if p.stem == "hillcrest")
    return open_scheme(params, tier="analyst").attrition().result


def test_weights_are_those_of_the_ipw_fit(result):
    data = result.data
    fit = fit_ipw(
        data.frame, outcome_formula="change ~ 1", censoring_formula=data.censoring_formula
    )
    table = dx.weight_distribution(result).set_index("quantile")["weight"]
    weights = fit.weights.to_numpy(dtype=float)
    weights = weights[np.isfinite(weights) & (weights > 0)]
    assert table["n"] == len(weights) == result.n_completers
    assert table["p50"] == pytest.approx(np.median(weights))
    assert table["effective_sample_size"] == pytest.approx(fit.effective_sample_size)
    quantiles = table.drop(["n", "effective_sample_size"]).to_numpy()
    assert (np.diff(quantiles) >= 0).all()


def test_truncation_sensitivity(result):
    data = result.data
    table = dx.truncation_sensitivity(result)
    untruncated = fit_ipw(
        data.frame, outcome_formula="change ~ 1", censoring_formula=data.censoring_formula
    ).tidy()
    assert table["estimate"].iloc[0] == pytest.approx(untruncated["estimate"].iloc[0])
    # truncating the extreme weights can only make them more equal
    assert (np.diff(table["effective_sample_size"]) >= -1e-9).all()


def test_dropout_models_include_the_censoring_model(result):
    tables = dx.dropout_models(result)
    censoring = tables["returned follow-up (IPW model)"]
    assert "baseline" in set(censoring["term"])
    if result.retention.dropout_model is not None:
        assert "disengagement (Cox)" in tables


def test_imputation_chains_trace_each_chain_iteration_by_iteration(result):
    chains = dx.imputation_chains(result, seed=7, n_chains=2, max_iter=3)
    incomplete = [c for c in chains["column"].unique()]
    assert len(chains) == 2 * 3 * len(incomplete)
    # the state after the last iteration is that chain's own imputation
    data = result.data
    columns = ["baseline", *[f"follow_up_{t}" for t in data.follow_ups], *data.covariates]
    one = impute_mice(data.frame, m=1, max_iter=3, seed=8, columns=columns)
    column = incomplete[0]
    imputed = one.datasets[0].loc[one.missing[column], column]
    last = chains[
        (chains["chain"] == 1) & (chains["iteration"] == 3) & (chains["column"] == column)
    ]
    assert last["mean"].iloc[0] == pytest.approx(imputed.mean())
    observed = data.frame[column].dropna()
    assert observed.min() <= last["mean"].iloc[0] <= observed.max()


def test_delta_sensitivity_is_the_tipping_point_curve(result):
    table = dx.delta_sensitivity(result)
    assert_allclose(table["estimate"], result.tipping.table["estimate"])
    assert table["delta"].is_monotonic_increasing or table["delta"].is_monotonic_decreasing
