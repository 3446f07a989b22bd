import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from spimpact.analyses.equity.analysis import benefit_by_group_section, fit_change_by_group
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData


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


def test_section_is_disclosure_controlled(tmp_path):
    data = _simulate(np.random.default_rng(6), {"1": 2.0, "2": 3.0, "3": 4.0})
    scores = data.assign(score="swemwbs_metric", measure="swemwbs")
    clients = data.drop_duplicates("client_id")[["client_id", "imd_quintile"]].assign(
        ethnic_group="White"
    )
    empty = pd.DataFrame()
    scheme = SchemeData(
        data_dir=tmp_path,
        clients=clients,
        measures=empty,
        reconciliation=empty,
        exclusions=empty,
        non_standard=empty,
    )
    params = SchemeParams(scheme_id="equity_toy", title="toy", data_dir=tmp_path)
    section = benefit_by_group_section(scheme, scores, params=params)
    table = section.tables[0].frame
    for column in ("n_people", "n_followed_up"):
        values = table[column].dropna().astype(int)
        assert (values % 5 == 0).all() and not values.between(1, 7).any()
    assert "Joint test" in section.text[1]
    assert "Ethnic group" in section.text[2] and "Fewer than two groups" in section.text[2]
    assert "no GP appointment data" in section.text[3]
    plt.close("all")
