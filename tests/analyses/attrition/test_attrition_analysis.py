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
from spimpact.analyses.attrition.change import analyse_completed, long_scores
from spimpact.analyses.attrition.data import prepare_attrition_data
from spimpact.models.mmrm import fit_mmrm
from spimpact.models.tidy import TIDY_COLUMNS


@pytest.fixture(scope="module")
def large():
    scheme, scores = make_scheme(n=1500, seed=3)
    data = prepare_attrition_data(scheme.clients, scores, score="swemwbs_metric")
    return data, estimate_change(data, seed=1, m=10)


def test_adjusted_estimates_recover_the_truth_complete_cases_do_not(large):
    data, (estimates, tipping, ipw, _) = large
    by = estimates.set_index("key")
    # older people improve more and leave less: complete cases overstate the change
    assert by.loc["complete_case", "conf_low"] > TRUE_CHANGE
    for key in ("ipw", "mmrm", "mi"):
        assert by.loc[key, "conf_low"] < TRUE_CHANGE < by.loc[key, "conf_high"], key
    # back at baseline: those who left contribute (about) no change
    assert by.loc["return_to_baseline", "estimate"] < by.loc["mi", "estimate"] - 0.3
    assert ipw.n_subjects == len(data.frame)


def test_one_follow_up_tipping_point_has_its_closed_form(large):
    """With one follow-up and centred characteristics, the pooled change is the mean of
    the completed changes, which moves by delta x (share imputed): it reaches zero at
    -estimate / share."""
    data, (estimates, tipping, _, _) = large
    share = 1 - data.completed.mean()
    mi = estimates.set_index("key").loc["mi", "estimate"]
    assert_allclose(tipping.delta_no_effect, -mi / share, rtol=1e-6)
    assert tipping.delta_no_effect < tipping.delta_no_significance < 0
    assert (np.diff(tipping.table["estimate"]) > 0).all()


def test_closed_form_analysis_is_the_mmrm_on_complete_data():
    """On a completed data set the time x centred-characteristics MMRM (unstructured,
    REML, Kenward-Roger) gives the change at each visit as the least-squares intercept
    of the change on the characteristics: same estimate, standard error and df n - p."""
    rng = np.random.default_rng(4)
    n = 120
    people = pd.DataFrame({"client_id": np.arange(n), "z_age_0": rng.normal(size=n)})
    people["z_age_0"] -= people["z_age_0"].mean()
    people["z_sex_0"] = rng.integers(0, 2, n) - 0.5
    y = rng.multivariate_normal([20, 22, 23], [[9, 5, 4], [5, 16, 9], [4, 9, 25]], size=n)
    y[:, 1:] += np.outer(people["z_age_0"], [1.0, 1.5])
    long = pd.DataFrame(
        {"client_id": np.repeat(np.arange(n), 3), "timepoint": np.tile([0, 1, 2], n),
         "value": y.ravel()}
    ).merge(people, on="client_id")  # fmt: skip
    closed = analyse_completed(long, ["z_age_0", "z_sex_0"], (1, 2)).set_index("term")
    fit = fit_mmrm(
        "value ~ C(timepoint) * (z_age_0 + z_sex_0)", long, subject="client_id",
        visit="timepoint", covariance="us", df="kenward_roger",
    )  # fmt: skip
    tidy = fit.tidy().set_index("term").loc[closed.index]
    assert_allclose(closed["estimate"], tidy["estimate"], rtol=1e-6)
    assert_allclose(closed["std_error"], tidy["std_error"], rtol=1e-5)
    assert_allclose(closed["df"], tidy["df"], rtol=1e-4)


def test_long_scores_centre_the_characteristics():
    scheme, scores = make_scheme(n=300, seed=5)
    data = prepare_attrition_data(scheme.clients, scores, score="swemwbs_metric")
    long, z_terms = long_scores(data)
    assert z_terms
    people = long.drop_duplicates("client_id")
    assert_allclose(people[z_terms].mean(), 0.0, atol=1e-12)
    assert len(long) == len(data.frame) * (1 + len(data.follow_ups))


def test_estimates_are_reproducible_given_the_seed():
    scheme, scores = make_scheme(n=300, seed=5)
    data = prepare_attrition_data(scheme.clients, scores, score="swemwbs_metric")
    first, first_tipping, _, _ = estimate_change(data, seed=11, m=5)
    second, second_tipping, _, _ = estimate_change(data, seed=11, m=5)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first_tipping.tidy(), second_tipping.tidy())
    other, _, _, _ = estimate_change(data, seed=12, m=5)
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
    estimates, tipping, _, _ = estimate_change(data, seed=3, m=5, higher_is_better=False)
    assert estimates.set_index("key").loc["mi", "estimate"] < 0
    assert 0 < tipping.delta_no_significance < tipping.delta_no_effect
    assert (tipping.tidy()["delta"] >= 0).all()


def test_attrition_result_tidy_by_method_at_any_level():
    """tidy() at the fitted level repeats the estimates; at 90% each interval is the
    t (complete cases: n - 1 df; MMRM: Kenward-Roger; MI: Barnard-Rubin) or normal
    (sequential weighting) interval on the same standard error."""
    scheme, scores = make_scheme(n=300, seed=5)
    params = make_params()
    params = params.model_copy(
        update={
            "measures": params.measures.model_copy(
                update={"missing_data": params.measures.missing_data.model_copy(
                    update={"n_imputations": 5})}
            )
        }
    )  # fmt: skip
    result = analyse_attrition(scheme, scores, params=params)
    assert isinstance(result, AttritionResult)
    tidy = result.tidy()
    assert list(tidy.columns) == list(TIDY_COLUMNS)
    keys = [
        f"{k}:{t}" for k, t in zip(result.estimates.key, result.estimates.timepoint, strict=True)
    ]
    assert list(tidy.term) == keys
    columns = ["estimate", "std_error", "conf_low", "conf_high", "p_value"]
    assert_allclose(tidy[columns], result.estimates[columns], rtol=1e-10)
    narrow = result.tidy(conf_level=0.9).set_index("term")
    by = result.estimates.set_index("key")
    for key, df in [
        ("complete_case", by.loc["complete_case", "n"] - 1),
        ("mmrm", by.loc["mmrm", "df"]),
        ("ipw", None),
    ]:
        crit = stats.norm.ppf(0.95) if df is None else stats.t.ppf(0.95, df)
        half = narrow.loc[f"{key}:1", "conf_high"] - narrow.loc[f"{key}:1", "estimate"]
        assert half == pytest.approx(crit * by.loc[key, "std_error"], rel=1e-10)
    assert result.n_people == len(result.data.frame)
    assert "Multiple imputation" in result.summary()
