import numpy as np
import pandas as pd
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.models.imputation import impute_mice
from spimpact.models.tipping_point import fit_tipping_point


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
