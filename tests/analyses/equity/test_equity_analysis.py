"""Change by group and its joint tests (``spimpact.analyses.equity.analysis``)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from spimpact.analyses.attendance import analyse_attendance
from spimpact.analyses.equity.analysis import (
    GroupChangeResult,
    attendance_effect_by_group,
    fit_change_by_group,
)
from spimpact.io import load_scheme
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import TIDY_COLUMNS
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData
from spimpact.synthetic import SchemeSpec, write_example_data


def _simulate(rng, changes: dict, n_per_group: int = 150, follow_up: float = 0.7):
    """Three time points; group g changes by changes[g] at t1 and 1.5x at t2."""
    rows = []
    person = 0
    for group, change in changes.items():
        for _ in range(n_per_group):
            person += 1
            intercept = rng.normal(50, 6)
            for t in (0, 1, 2):
                if t > 0 and rng.random() > follow_up:
                    continue
                mean = intercept + change * (1 if t == 1 else 1.5 if t == 2 else 0)
                rows.append((f"p{person}", group, t, mean + rng.normal(0, 4)))
    return pd.DataFrame(rows, columns=["client_id", "imd_quintile", "timepoint", "value"])


@pytest.fixture(scope="module")
def small_params():
    return SchemeParams(scheme_id="tiny", title="Tiny Link", data_dir=Path("."))


@pytest.fixture(scope="module")
def small_scheme(tmp_path_factory):
    spec = SchemeSpec("tiny", "Tiny Link", 400, ("swemwbs",), n_areas=20)
    (folder,) = write_example_data(tmp_path_factory.mktemp("example"), schemes=(spec,))
    return load_scheme(folder, pseudonym_key="test-key")


@pytest.fixture(scope="module")
def small_result(small_scheme, small_params):
    return analyse_attendance(small_scheme, params=small_params)


def test_group_changes_are_recovered():
    data = _simulate(np.random.default_rng(1), {"1": 1.0, "2": 3.0, "3": 5.0}, n_per_group=400)
    result = fit_change_by_group(data, by="imd_quintile")
    estimates = result.changes.set_index("group")["estimate"]
    np.testing.assert_allclose(estimates.to_numpy(), [1.0, 3.0, 5.0], atol=0.5)
    assert result.joint_df == 4  # 2 follow-ups x (3 groups - 1)
    assert result.joint_p_value < 1e-6
    assert tuple(result.tidy().columns)[0] == "term"


def test_joint_test_matches_statsmodels_wald_test():
    """Joint Wald test of the time x group interactions against statsmodels MixedLM
    (REML, random intercept) on the same data: smf.mixedlm("value ~ C(timepoint) *
    C(imd_quintile)", groups=client_id).fit(reml=True).wald_test(<interaction rows>).
    Tolerance 1e-3 relative: the two fits stop their optimisers at slightly
    different points."""
    data = _simulate(np.random.default_rng(2), {"1": 2.0, "2": 2.5, "3": 1.5})
    ours = fit_change_by_group(data, by="imd_quintile")
    model = smf.mixedlm("value ~ C(timepoint) * C(imd_quintile)", data, groups="client_id")
    fit = model.fit(reml=True)
    names = [n for n in fit.fe_params.index if ":" in n]
    contrast = np.zeros((len(names), len(fit.params)))
    for i, name in enumerate(names):
        contrast[i, list(fit.params.index).index(name)] = 1
    wald = fit.wald_test(contrast, scalar=True)
    assert ours.joint_statistic == pytest.approx(float(wald.statistic), rel=1e-3)


def test_small_groups_are_named_not_estimated():
    rng = np.random.default_rng(3)
    data = pd.concat(
        [
            _simulate(rng, {"1": 2.0, "2": 2.0}),
            _simulate(rng, {"5": 2.0}, n_per_group=10),
        ]
    )
    result = fit_change_by_group(data, by="imd_quintile")
    assert result.too_small == ("5",)
    assert list(result.changes["group"]) == ["1", "2"]


def test_one_estimable_group_is_insufficient():
    data = _simulate(np.random.default_rng(4), {"1": 2.0}, n_per_group=100)
    with pytest.raises(InsufficientData, match="Fewer than two groups"):
        fit_change_by_group(data, by="imd_quintile")


@pytest.mark.slow
def test_joint_test_size_and_interval_coverage():
    """Simulation, 200 replications with equal true changes (2 points) in 3 groups:
    the joint test rejects at 5% in about 5% of runs (accept 1.5-10%) and each
    group's 95% interval covers 2 in about 95% (accept 91-98.5%); mean bias below
    0.1 points."""
    rng = np.random.default_rng(5)
    rejections, covered, estimates = [], [], []
    for _ in range(200):
        data = _simulate(rng, {"1": 2.0, "2": 2.0, "3": 2.0}, n_per_group=80)
        result = fit_change_by_group(data, by="imd_quintile")
        rejections.append(result.joint_p_value < 0.05)
        covered.extend((result.changes["conf_low"] <= 2) & (2 <= result.changes["conf_high"]))
        estimates.extend(result.changes["estimate"])
    assert 0.015 <= np.mean(rejections) <= 0.10
    assert 0.91 <= np.mean(covered) <= 0.985
    assert abs(np.mean(estimates) - 2) < 0.1


def test_group_change_result_is_an_estimator_result():
    data = _simulate(np.random.default_rng(2), {"1": 2.0, "2": 2.5, "3": 1.5})
    result = fit_change_by_group(data, by="imd_quintile", conf_level=0.9)
    assert isinstance(result, GroupChangeResult) and isinstance(result, EstimatorResult)
    assert result.conf_level == 0.9
    tidy = result.tidy()
    assert list(tidy.columns) == list(TIDY_COLUMNS)
    changes = result.changes.rename(columns={"group": "term"})[list(TIDY_COLUMNS)]
    pd.testing.assert_frame_equal(tidy, changes)
    wider = result.tidy(conf_level=0.95)
    half_width = (wider["conf_high"] - wider["estimate"]) / wider["std_error"]
    np.testing.assert_allclose(half_width, stats.norm.ppf(0.975), rtol=1e-12)
    assert result.coef().index.tolist() == ["1", "2", "3"]


@pytest.mark.parametrize("by", ["imd_quintile", "sex"])
def test_effect_by_group_with_joint_test(small_scheme, small_result, small_params, by):
    table = attendance_effect_by_group(
        small_scheme, params=small_params, by=by, result=small_result
    )
    groups = table[table["term"] != "joint_test_of_difference"]
    analysed = small_result.panel.loc[small_result.panel["treated"] == 1, "patient_id"]
    clients = small_scheme.clients.set_index("client_id")
    assert set(groups["term"]) == set(clients.loc[analysed.unique(), by].astype(str))
    assert groups["n_clients"].sum() == small_result.n_clients
    joint = table[table["term"] == "joint_test_of_difference"].iloc[0]
    estimable = groups.dropna(subset=["estimate"])
    assert joint["df"] == len(estimable) - 1
    assert 0 <= joint["p_value"] <= 1
    with pytest.raises(ValueError, match="not a column of the clients table"):
        attendance_effect_by_group(
            small_scheme, params=small_params, by="shoe_size", result=small_result
        )


@pytest.mark.parametrize("by", ["imd_quintile", "ethnic_group", "sex"])
def test_joint_test_is_cochran_q_as_before_and_as_statsmodels(
    small_scheme, small_result, small_params, by
):
    """The joint row (now from spimpact.models.meta.fit_random_effects) equals the
    hand-written Cochran Q it replaced, Q = sum w_g (b_g - b_w)^2 with w_g = 1 / se_g^2
    on G - 1 df (Cochran 1954), and statsmodels' combine_effects(...).test_homogeneity()
    (R: metafor::rma(yi, sei = se, method = "FE")$QE). Tolerance: float rounding only."""
    table = attendance_effect_by_group(
        small_scheme, params=small_params, by=by, result=small_result
    )
    groups = table[table["term"] != "joint_test_of_difference"].dropna(subset=["estimate"])
    joint = table[table["term"] == "joint_test_of_difference"].iloc[0]
    assert len(groups) >= 2
    estimate, std_error = groups["estimate"].to_numpy(), groups["std_error"].to_numpy()
    weights = 1 / std_error**2
    pooled = np.sum(weights * estimate) / weights.sum()
    q = float(np.sum(weights * (estimate - pooled) ** 2))
    assert joint["statistic"] == pytest.approx(q, rel=1e-12)
    assert joint["df"] == len(groups) - 1
    assert joint["p_value"] == pytest.approx(stats.chi2.sf(q, len(groups) - 1), rel=1e-12)
    reference = combine_effects(estimate, std_error**2).test_homogeneity()
    assert joint["statistic"] == pytest.approx(reference.statistic, rel=1e-12)
    assert joint["p_value"] == pytest.approx(reference.pvalue, rel=1e-10)
    assert np.isnan(joint[["estimate", "std_error", "conf_low", "conf_high"]].astype(float)).all()


def test_joint_test_needs_two_estimable_groups(small_scheme, small_result, small_params):
    """With the threshold above every group's size no level is estimated: no joint test."""
    params = small_params.model_copy(
        update={"disclosure": small_params.disclosure.model_copy(update={"min_n_summary": 10**6})}
    )
    table = attendance_effect_by_group(
        small_scheme, params=params, by="imd_quintile", result=small_result
    )
    assert table["estimate"].isna().all()
    joint = table[table["term"] == "joint_test_of_difference"].iloc[0]
    assert np.isnan([joint["statistic"], joint["p_value"], joint["df"]]).all()
