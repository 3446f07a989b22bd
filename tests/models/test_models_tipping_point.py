import numpy as np
import pandas as pd
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.models.imputation import impute_mice, pool_analyses
from spimpact.models.tipping_point import fit_delta_adjusted, fit_tipping_point


def _example_frame(n=150, seed=11):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    group = rng.choice(["a", "b", "c"], size=n)
    y = 1 + 0.5 * x + (group == "b") + rng.normal(size=n)
    frame = pd.DataFrame({"id": np.arange(n), "x": x, "group": group, "y": y})
    frame.loc[rng.random(n) < 0.3, "y"] = np.nan
    frame.loc[rng.random(n) < 0.1, "group"] = None
    return frame


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


def test_tipping_point_tidy_is_its_table_and_recomputes_other_levels():
    frame = _example_frame(n=200, seed=3)[["x", "y"]]
    frame["y"] = frame["y"] + 2
    imputations = impute_mice(frame, m=5, max_iter=3, seed=9)

    def mean_of_y(data):
        y = data["y"]
        return pd.DataFrame(
            {"term": ["mean"], "estimate": [y.mean()], "std_error": [y.std() / np.sqrt(len(y))]}
        )

    res = fit_tipping_point(
        imputations, mean_of_y, column="y", term="mean", deltas=np.linspace(-4, 0, 5)
    )
    tidy = res.tidy()
    assert list(tidy.columns) == [
        "delta",
        "term",
        "estimate",
        "std_error",
        "statistic",
        "p_value",
        "conf_low",
        "conf_high",
    ]
    assert set(tidy["term"]) == {"mean"}
    # at the fitted level tidy() gives the table's numbers exactly (what the report shows)
    columns = ["delta", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]
    pd.testing.assert_frame_equal(tidy[columns], res.table[columns], check_exact=True)
    # at another level: the Barnard-Rubin t interval on the stored df
    narrow = res.tidy(conf_level=0.8)
    crit = np.where(np.isfinite(res.table["df"]), res.table["df"], 1e12)
    half = stats.t.ppf(0.9, crit) * res.table["std_error"]
    assert_allclose(narrow["conf_high"] - narrow["estimate"], half, rtol=1e-12)
    assert "Delta-adjusted" in res._repr_html_()


def test_delta_adjusted_in_loop_tipping_point_has_its_closed_form():
    """Reference-based engine at known parameters (mu = (20, 22, 23), Sigma below), the
    same parameters drawn 5 times with noise. A shift delta moves a visit-2 value
    imputed after dropout at visit 1 by 1.625 delta (it carries through visit 1, see
    test_models_reference_based) and one imputed after dropout at visit 2 by delta, so
    the pooled visit-2 mean is affine in delta and its root is known exactly."""
    from spimpact.models.reference_based import ImputationModelDraws

    sigma = np.array([[4.0, 2.0, 1.0], [2.0, 5.0, 3.0], [1.0, 3.0, 6.0]])
    rng = np.random.default_rng(4)
    n = 120
    y = np.array([20.0, 22.0, 23.0]) + rng.multivariate_normal(np.zeros(3), sigma, size=n)
    y[:30, 1:] = np.nan  # left after baseline
    y[30:50, 2] = np.nan  # left after visit 1
    long = pd.DataFrame(
        {"id": np.repeat(np.arange(n), 3), "t": np.tile([0, 1, 2], n), "y": y.ravel()}
    )
    exact = ImputationModelDraws.from_parameters(
        long, formula="y ~ 0 + C(t)", subject="id", visit="t", beta=[20, 22, 23], sigma=sigma
    )
    draws = ImputationModelDraws(
        data=exact.data, subject="id", visit="t", outcome="y", visits=exact.visits,
        design=exact.design, betas=np.repeat(exact.betas, 5, axis=0),
        sigmas=np.repeat(exact.sigmas, 5, axis=0),
    )  # fmt: skip

    def visit_2_mean(data):
        values = data.loc[data["t"] == 2, "y"]
        return pd.DataFrame(
            {"term": ["mean"], "estimate": [values.mean()],
             "std_error": [values.std() / np.sqrt(n)], "df": [n - 1.0]}
        )  # fmt: skip

    def impute(delta):
        return draws.impute(delta=delta, seed=1)

    res = fit_delta_adjusted(
        impute, visit_2_mean, term="mean", deltas=[-100, -50, 0], dfcom="analysis"
    )
    at_zero = res.table.set_index("delta").loc[0.0, "estimate"]
    slope = (30 * 1.625 + 20 * 1.0) / n
    assert_allclose(res.delta_no_effect, -at_zero / slope, rtol=1e-9)
    # the refined evaluations joined the table; at the refined shift the lower limit
    # is zero (to far better than the grid's linear interpolation would give)
    assert len(res.table) > 3
    check = pool_analyses(impute(res.delta_no_significance), visit_2_mean, dfcom="analysis")
    assert abs(check.tidy()["conf_low"].iloc[0]) < 1e-3
    # complete-data df from the analyses: Barnard-Rubin df below n - 1
    assert (res.table["df"] < n - 1).all()
