"""Simulations behind issue 13's claims (full tables: benchmarks/bench_wellbeing_missing.py)."""

import numpy as np
import pytest
from simulated_wellbeing import simulate_unequal

from spimpact.analyses.wellbeing.analysis import fit_change_model
from spimpact.models.mixed import fit_mixed
from spimpact.params import SchemeParams

TRUE_CHANGE = 3.0
PARAMS = SchemeParams(scheme_id="simulation", title="Simulation", data_dir=".")


def _headline_change(long):
    fit, _ = fit_change_model("value ~ C(timepoint)", long.dropna(), PARAMS)
    return fit.contrasts("timepoint", reference=0).iloc[-1]


@pytest.mark.slow
def test_mmrm_recovers_the_change_when_dropout_follows_the_last_score():
    """Unequal variances (SD 3, 5, 8) and dropout after each visit driven by the score
    there (missing at random): over 8 data sets of 2,000 clients the headline MMRM's
    bias is under 5% of the true change (3.0), while the random-intercept model, whose
    equal-variance assumption makes it impute the wrong trajectories for the people who
    left, is off by more than 30%."""
    mmrm, random_intercept = [], []
    for rep in range(8):
        long = simulate_unequal(2000, np.random.default_rng([2026, rep]))
        mmrm.append(_headline_change(long)["estimate"])
        fit = fit_mixed("value ~ C(timepoint)", long.dropna(), group="client_id")
        random_intercept.append(fit.contrasts("timepoint", reference=0).iloc[-1]["estimate"])
    assert abs(np.mean(mmrm) - TRUE_CHANGE) < 0.05 * TRUE_CHANGE
    assert abs(np.mean(random_intercept) - TRUE_CHANGE) > 0.3 * TRUE_CHANGE


@pytest.mark.slow
@pytest.mark.parametrize("n_clients", [10, 40])
def test_headline_interval_covers_95_percent_in_small_schemes(n_clients):
    """The headline's t interval on Kenward-Roger df covers the true change in 93-97% of
    400 simulated schemes with 10 and with 40 clients with a follow-up (Monte Carlo SE of
    coverage ~1.1%); the normal interval of issue 4 covered 92.7% with 8-10 pairs."""
    covered = []
    for rep in range(400):
        long = simulate_unequal(
            n_clients, np.random.default_rng([7, n_clients, rep]), informative=False
        )
        row = _headline_change(long)
        covered.append(row["conf_low"] < TRUE_CHANGE < row["conf_high"])
    assert 0.93 <= np.mean(covered) <= 0.97
