"""Diagnostics of the wellbeing change model (issue 18), on simulated scores with a known truth."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from simulated_wellbeing import make_scheme

from spimpact.analyses.wellbeing import diagnostics as dx
from spimpact.analyses.wellbeing.analysis import analyse_wellbeing
from spimpact.params import SchemeParams

PARAMS = SchemeParams(scheme_id="test", title="Test scheme", data_dir=".")


@pytest.fixture(scope="module")
def scheme():
    scores, clients = make_scheme(n_clients=150, seed=4)
    # one client far below everyone at every follow-up: the most influential
    complete = scores.groupby("client_id")["timepoint"].nunique()
    outlier = complete[complete == 3].index[0]
    later = (scores["client_id"] == outlier) & (scores["timepoint"] > 0)
    scores.loc[later, "value"] -= 25
    return scores, clients, outlier


@pytest.fixture(scope="module")
def result(scheme):
    scores, clients, _ = scheme
    return analyse_wellbeing(scores, clients, score="swemwbs_metric", params=PARAMS)


def test_fitted_values_rebuild_the_design_as_statsmodels_does(scheme, result):
    """X b from the formula and named coefficients equals statsmodels' OLS fitted values."""
    from types import SimpleNamespace

    scores, clients, _ = scheme
    data = dx.model_data(result, scores, clients)
    ols = smf.ols(result.model.formula, data).fit()
    model = SimpleNamespace(
        formula=result.model.formula,
        fixed_names=tuple(reversed(ols.params.index)),  # order must not matter
        coef=ols.params.to_numpy()[::-1],
    )
    assert_allclose(dx.fitted_values(model, data), ols.fittedvalues, rtol=1e-10)
    table = dx.residual_table(result, scores, clients)
    assert_allclose(table["residual"], table["value"] - table["fitted"])
    assert len(table) == int(result.counts["n_people"].sum())
    # the fit leaves no systematic error at any time point
    assert table.groupby("timepoint")["residual"].mean().abs().max() < 0.5


def test_client_effects_and_influence_find_the_planted_outlier(scheme, result):
    scores, clients, outlier = scheme
    effects = dx.client_effects(dx.residual_table(result, scores, clients))
    assert effects["client_id"].iloc[0] == outlier
    influence = dx.client_influence(result, scores, clients, n_clients=3)
    assert influence["client_id"].iloc[0] == "(none)"
    assert influence["client_id"].iloc[1] == outlier
    # leaving the outlier out raises the change by about 25 / n followed up
    n_followed = int(result.counts.set_index("timepoint").loc[1, "n_people"])
    assert influence["shift"].iloc[1] == pytest.approx(25 / n_followed, rel=0.3)
    assert influence["change_without"].iloc[0] == pytest.approx(
        result.change["estimate"].iloc[0], abs=1e-6
    )


def test_observed_vs_fitted_means(scheme, result):
    scores, clients, _ = scheme
    residuals = dx.residual_table(result, scores, clients)
    table = dx.observed_vs_fitted(result, residuals)
    observed = residuals.groupby("timepoint")["value"].mean().to_numpy()
    assert_allclose(table["observed_mean"], observed)
    assert_allclose(table["model_mean"], result.trajectory["estimate"])
    assert list(table["n_people"]) == list(result.counts["n_people"])


def test_covariance_comparison_prefers_random_slopes_when_people_differ_in_change():
    """Simulated truth: each person's change grows at their own rate (SD 1.5 a time point)."""
    rng = np.random.default_rng(11)
    n = 200
    ids = np.array([f"p{i:03d}" for i in range(n)])
    intercept, slope = rng.normal(0, 2, n), rng.normal(0, 1.5, n)
    rows = [
        pd.DataFrame(
            {
                "client_id": ids,
                "timepoint": t,
                "value": 20 + intercept + (1 + slope) * t + rng.normal(0, 1, n),
            }
        )
        for t in (0, 1, 2)
    ]
    scores = pd.concat(rows, ignore_index=True).assign(score="swemwbs_metric")
    clients = pd.DataFrame({"client_id": ids, "sex": "female"})
    result = analyse_wellbeing(scores, clients, score="swemwbs_metric", params=PARAMS)
    table = dx.covariance_comparison(result, scores, clients)
    assert table["used"].sum() == 1
    # variance grows over time: a homogeneous, exchangeable structure must not win
    assert table["structure"].iloc[0] not in ("random intercept", "cs", "ar1", "toep")
    assert_allclose(table["aic"], -2 * table["loglik"] + 2 * table["n_params"])


def test_convergence_record_reports_the_fit(result):
    record = dx.convergence_record(result)
    converged = record[(record["model"] == "change model") & (record["item"] == "converged")]
    assert converged["value"].tolist() == ["True"]
    assert set(record.columns) == {"model", "item", "value"}


def test_plots_return_figures(scheme, result):
    import matplotlib.pyplot as plt

    scores, clients, _ = scheme
    residuals = dx.residual_table(result, scores, clients)
    for figure in (
        dx.plot_residuals(residuals),
        dx.plot_trajectories(residuals, dx.observed_vs_fitted(result, residuals)),
    ):
        assert figure.axes
        plt.close(figure)
