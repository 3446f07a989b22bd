"""Diagnostics of the attrition analysis (issue 18) on the hillcrest example."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from spimpact.analyses.attrition import diagnostics as dx
from spimpact.analyses.attrition.change import _term
from spimpact.interactive import open_scheme
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


def test_imputation_stability_ends_at_the_reported_imputation(result):
    table = dx.imputation_stability(result)
    m = int(result.mi.pooled["m"].iloc[0])
    last = table[table["k"] == m].set_index("term")
    pooled = result.mi.pooled.set_index("term")
    assert_allclose(last["estimate"], pooled.loc[last.index, "estimate"], rtol=1e-12)
    assert_allclose(last["std_error"], pooled.loc[last.index, "std_error"], rtol=1e-12)
    # the report's imputed change at the last follow-up is that pooled estimate
    reported = result.estimates.set_index(["key", "timepoint"]).loc[
        ("mi", result.last_follow_up), "estimate"
    ]
    assert last.loc[_term(result.last_follow_up), "estimate"] == pytest.approx(reported)


def test_imputation_stability_pools_the_first_k_by_hand(result):
    table = dx.imputation_stability(result)
    per = result.mi.per_imputation
    term = per["term"].iloc[0]
    first = per[per["term"] == term].sort_values("imputation").iloc[:3]
    estimate = first["estimate"].mean()
    between = first["estimate"].var(ddof=1)
    within = (first["std_error"] ** 2).mean()
    row = table[(table["term"] == term) & (table["k"] == 3)].iloc[0]
    assert row["estimate"] == pytest.approx(estimate)
    assert row["std_error"] == pytest.approx(np.sqrt(within + (1 + 1 / 3) * between))
    assert row["mc_error"] == pytest.approx(np.sqrt(between / 3))
    assert sorted(table["k"].unique())[0] == 2


def test_delta_sensitivity_is_the_tipping_point_curve(result):
    table = dx.delta_sensitivity(result)
    assert_allclose(table["estimate"], result.tipping.table["estimate"])
    assert table["delta"].is_monotonic_increasing or table["delta"].is_monotonic_decreasing
