"""Stacked difference-in-differences (Wing, Freedman & Hollingsworth 2024)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spimpact.models.did import fit_stacked_did
from spimpact.models.did_stacked import stack_sub_experiments

REF = Path(__file__).parent.parent / "reference" / "did"


@pytest.fixture(scope="module")
def medicaid():
    data = pd.read_csv(REF / "acs1860_unins_2008_2021.csv")
    return data.assign(first_treated=data.adopt_year.fillna(0))


@pytest.fixture(scope="module")
def stacked(medicaid):
    return fit_stacked_did(
        medicaid,
        outcome="unins",
        unit="statefip",
        time="year",
        first_treated="first_treated",
        kappa_pre=3,
        kappa_post=2,
    )


def test_sub_experiments_and_weights_match_the_authors(stacked):
    """hollina/stacked-did-weights, stacked-example-r-and-stata (Wing, Hollingsworth &
    Freedman): create_sub_exp(..., kappa_pre = 3, kappa_post = 2) for each adoption year,
    feasible stacks only, then compute_weights(); printed: 2014: 28 treated / 18 controls,
    2015: 3 / 18, 2016: 2 / 18, 2019: 2 / 11; mean control weight at event time 0
    2.8888889, 0.3095238, 0.2063492, 0.3376623; 600 stacked observations."""
    stacks = stacked.stacks
    assert stacks.sub_experiment.tolist() == [2014, 2015, 2016, 2019]
    assert stacks.n_treated.tolist() == [28, 3, 2, 2]
    assert stacks.n_control.tolist() == [18, 18, 18, 11]
    np.testing.assert_allclose(
        stacks.control_weight, [2.8888889, 0.3095238, 0.2063492, 0.3376623], atol=5e-8
    )
    assert stacked.n_obs == 600
    assert stacked.excluded_cohorts.first_treated.tolist() == [2020, 2021]


def test_event_study_matches_the_authors(stacked):
    """Same source, feols(unins ~ i(event_time, treat, ref = -1) | treat + event_time,
    cluster = statefip, weights = stack_weight); Stata reghdfe [aw = stack_weight],
    cluster(statefip) absorb(treat event_time), esttab:
    -0.00102 (0.00368), -0.00303 (0.00299), -0.0163 (0.00393), -0.0239 (0.00645),
    -0.0255 (0.00707); the text gives -.01627, -.023864, -.025500 for 0, 1, 2."""
    es = stacked.event_study
    assert es.event_time.tolist() == [-3, -2, 0, 1, 2]
    np.testing.assert_allclose(es.estimate[:2], [-0.00102, -0.00303], atol=5e-6)
    np.testing.assert_allclose(es.estimate[2:], [-0.01627, -0.023864, -0.025500], atol=5e-7)
    np.testing.assert_allclose(
        es.std_error, [0.00368, 0.00299, 0.00393, 0.00645, 0.00707], atol=5e-6
    )
    assert {"event_time", "estimate", "std_error", "conf_low", "conf_high"} <= set(es.columns)


def test_simple_aggregate_matches_the_authors(stacked):
    """Same source, Stata: lincom (1.treat#1._Ievent_tim_4 + ..._5 + ..._6)/3:
    -.0218778 (.0056281), t -3.89, 95% CI -.0331822 to -.0105733 (t with 50 df;
    R marginaleffects::hypotheses(..., df = 50) prints -0.0219, 0.00563, -0.0332, -0.0106)."""
    agg = stacked.aggregate("simple")
    assert agg.att == pytest.approx(-0.0218778, abs=5e-8)
    assert agg.std_error == pytest.approx(0.0056281, abs=5e-8)
    assert agg.df == 50
    assert agg.conf_low == pytest.approx(-0.0331822, abs=5e-8)
    assert agg.conf_high == pytest.approx(-0.0105733, abs=5e-8)
    assert agg.event_times == (0, 1, 2)
    assert agg.tidy().term.tolist() == ["simple"]


def test_cr2_and_wild_options(medicaid):
    common = {
        "outcome": "unins",
        "unit": "statefip",
        "time": "year",
        "first_treated": "first_treated",
        "kappa_pre": 3,
        "kappa_post": 2,
    }
    cr2 = fit_stacked_did(medicaid, se="CR2", **common)
    assert "CR2" in cr2.se_type
    assert cr2.aggregate().df < 50
    wild = fit_stacked_did(medicaid, se="wild", bootstrap_draws=999, seed=3, **common)
    agg = wild.aggregate()
    assert agg.conf_low < agg.att < agg.conf_high < 0
    with pytest.raises(ValueError, match="computed at fit time"):
        agg.tidy(0.9)
    np.testing.assert_allclose(wild.event_study.estimate, cr2.event_study.estimate)


def test_smoothness_bounds_on_the_stacked_event_study(stacked):
    table = stacked.honest_did_smoothness([0, 0.01])
    assert table.columns.tolist() == ["m", "conf_low", "conf_high", "method"]
    assert (table.conf_high.diff().dropna() > 0).all()


def _simulated(seed, n_units=300, effects=(1.0, 2.0, 3.0)):
    """Staggered adoption at t = 6, 9, 12 with cohort-specific and growing effects, a
    never-treated group, unit effects and a common non-linear time trend."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"id": np.repeat(np.arange(n_units), 20), "t": np.tile(np.arange(20), n_units)}
    )
    cohort = frame.id % 4
    frame["g"] = np.array([6, 9, 12, 0])[cohort]
    e = frame.t - frame.g
    treated_now = (frame.g > 0) & (e >= 0)
    effect = np.where(treated_now, np.array(effects + (0.0,))[cohort] * (1 + 0.5 * e.clip(0, 2)), 0)
    frame["y"] = (
        rng.normal(size=n_units)[frame.id]
        + np.sin(frame.t / 3)
        + effect
        + rng.normal(size=len(frame))
    )
    truth = np.mean([np.mean([c * (1 + 0.5 * k) for k in range(3)]) for c in effects])
    return frame, truth


def test_inputs_are_checked():
    frame, _ = _simulated(0, n_units=40)
    common = {"outcome": "y", "unit": "id", "time": "t", "first_treated": "g"}
    with pytest.raises(ValueError, match="kappa_pre >= 1"):
        fit_stacked_did(frame, kappa_pre=0, kappa_post=2, **common)
    with pytest.raises(ValueError, match="no feasible sub-experiment"):
        fit_stacked_did(frame, kappa_pre=15, kappa_post=10, **common)
    bad = frame.copy()
    bad.loc[0, "g"] = 9
    with pytest.raises(ValueError, match="constant within each unit"):
        fit_stacked_did(bad, kappa_pre=3, kappa_post=2, **common)
    with pytest.raises(ValueError, match="not found"):
        fit_stacked_did(frame, kappa_pre=3, kappa_post=2, cluster="practice", **common)


def test_weights_multiply_the_corrective_weights():
    frame, _ = _simulated(1, n_units=40)
    frame["w"] = 2.0
    plain, _ = stack_sub_experiments(
        frame, unit="id", time="t", first_treated="g", kappa_pre=3, kappa_post=2
    )
    doubled, _ = stack_sub_experiments(
        frame, unit="id", time="t", first_treated="g", kappa_pre=3, kappa_post=2, weights="w"
    )
    np.testing.assert_allclose(doubled.stack_weight, 2 * plain.stack_weight)
    # controls are not yet treated through kappa_post: cohort 9 is a control for 6 only
    # when 9 > 6 + 2
    controls_for_6 = plain[(plain.sub_experiment == 6) & (plain.treated == 0)].g.unique()
    assert sorted(controls_for_6) == [0, 9, 12]
    controls_for_9 = plain[(plain.sub_experiment == 9) & (plain.treated == 0)].g.unique()
    assert sorted(controls_for_9) == [0, 12]


def test_recovers_heterogeneous_staggered_effects():
    frame, truth = _simulated(2)
    result = fit_stacked_did(
        frame, outcome="y", unit="id", time="t", first_treated="g", kappa_pre=3, kappa_post=2
    )
    agg = result.aggregate()
    assert abs(agg.att - truth) < 4 * agg.std_error
    pre = result.event_study[result.event_study.event_time < 0]
    assert (pre.estimate.abs() < 4 * pre.std_error).all()


@pytest.mark.slow
def test_bias_and_coverage_by_simulation():
    """200 panels with staggered adoption, cohort- and time-varying effects and a
    non-linear common trend: the simple aggregate is unbiased (|bias| < 0.02 against a
    truth of 3.0) and its 95% CI covers the truth in 91-99% of panels (MC SE 1.5%)."""
    estimates, covered = [], []
    for seed in range(200):
        frame, truth = _simulated(100 + seed, n_units=120)
        agg = fit_stacked_did(
            frame, outcome="y", unit="id", time="t", first_treated="g", kappa_pre=3, kappa_post=2
        ).aggregate()
        estimates.append(agg.att)
        covered.append(agg.conf_low <= truth <= agg.conf_high)
    assert abs(np.mean(estimates) - truth) < 0.02
    assert 0.91 <= np.mean(covered) <= 0.99
