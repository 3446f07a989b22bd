import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from simulated_attrition import TRUE_CHANGE, make_params, make_scheme

from spimpact.analyses.attrition.analysis import (
    AttritionResult,
    analyse_attrition,
    estimate_change,
)
from spimpact.analyses.attrition.data import prepare_attrition_data
from spimpact.models.tidy import TIDY_COLUMNS


def test_adjusted_estimates_recover_the_truth_complete_cases_do_not():
    scheme, scores = make_scheme(n=1500, seed=3)
    data = prepare_attrition_data(scheme.clients, scores, score="swemwbs_metric")
    estimates, tipping, _ = estimate_change(data, seed=1)
    by = estimates.set_index("key")
    # older people improve more and leave less: complete cases overstate the change
    assert by.loc["complete_case", "conf_low"] > TRUE_CHANGE
    for key in ("ipw", "mi", "mixed"):
        assert by.loc[key, "conf_low"] < TRUE_CHANGE < by.loc[key, "conf_high"], key
    # no change for those who left: the complete-case mean scaled by the share retained
    share = data.completed.mean()
    assert_allclose(
        by.loc["baseline_carried_forward", "estimate"], share * data.frame["change"].mean()
    )
    # the pooled mean moves by delta x (share imputed): the estimate reaches zero there
    assert_allclose(tipping.delta_no_effect, -by.loc["mi", "estimate"] / (1 - share), rtol=1e-6)
    assert tipping.delta_no_effect < tipping.delta_no_significance < 0


def test_estimates_are_reproducible_given_the_seed():
    scheme, scores = make_scheme(n=300, seed=5)
    data = prepare_attrition_data(scheme.clients, scores, score="swemwbs_metric")
    first, first_tipping, _ = estimate_change(data, seed=11)
    second, second_tipping, _ = estimate_change(data, seed=11)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first_tipping.tidy(), second_tipping.tidy())
    other, _, _ = estimate_change(data, seed=12)
    assert (
        other.set_index("key").loc["mi", "estimate"] != first.set_index("key").loc["mi", "estimate"]
    )


def test_tipping_point_for_a_score_where_lower_is_better():
    """UCLA-3 loneliness: an improvement is a fall, and 'worse' is a higher score."""
    scheme, scores = make_scheme(n=400, seed=4)
    scores = scores.assign(
        score="ucla3_total",
        value=lambda d: np.where(d["timepoint"] == 0, 7.0, 5.0) + d["value"] / 100,
    )
    data = prepare_attrition_data(scheme.clients, scores, score="ucla3_total")
    estimates, tipping, _ = estimate_change(data, seed=3, m=5, higher_is_better=False)
    assert estimates.set_index("key").loc["mi", "estimate"] < 0
    assert 0 < tipping.delta_no_significance < tipping.delta_no_effect
    assert (tipping.tidy()["delta"] >= 0).all()


def test_attrition_result_tidy_by_method_at_any_level():
    """tidy() at the fitted level repeats the estimates; at 90% each interval is the
    t (complete cases, carried forward: n - 1 df; MI: Barnard-Rubin df) or normal
    (weighting, mixed model) interval on the same standard error."""
    scheme, scores = make_scheme(n=300, seed=5)
    result = analyse_attrition(scheme, scores, params=make_params())
    assert isinstance(result, AttritionResult)
    tidy = result.tidy()
    assert list(tidy.columns) == list(TIDY_COLUMNS)
    assert list(tidy.term) == list(result.estimates.key)
    columns = ["estimate", "std_error", "conf_low", "conf_high", "p_value"]
    assert_allclose(tidy[columns], result.estimates[columns], rtol=1e-10)
    narrow = result.tidy(conf_level=0.9).set_index("term")
    by = result.estimates.set_index("key")
    for key, df in [("complete_case", by.loc["complete_case", "n"] - 1), ("ipw", None)]:
        crit = stats.norm.ppf(0.95) if df is None else stats.t.ppf(0.95, df)
        half = narrow.loc[key, "conf_high"] - narrow.loc[key, "estimate"]
        assert half == pytest.approx(crit * by.loc[key, "std_error"], rel=1e-10)
    assert result.n_people == len(result.data.frame)
    assert "Multiple imputation" in result.summary()
