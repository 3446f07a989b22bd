"""The simulation study of the GP-attendance designs, small version (slow tests).

The full study (every scenario, hundreds of replicates, every alternative design) is
``benchmarks/bench_attendance_designs.py``; its table is in docs/methods.md. These tests
run the report's primary design (:func:`spimpact.analyses.attendance.study.run_replicate`:
the same matching, weights and standard errors as the report) on a few scenarios where a
naive design breaks, and check that it recovers the simulated truth; and they check that the
study itself detects a wrong design (no washout) in the scenario that breaks it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spimpact.analyses.attendance.study import (
    NULL_BIAS_TOLERANCE,
    RELATIVE_BIAS_TOLERANCE,
    run_replicate,
    summarise_study,
)
from spimpact.params import ComparisonParams
from spimpact.synthetic.attendance_scenarios import STUDY_SCENARIOS

REPLICATES = 40
SCENARIOS = {s.name: s for s in STUDY_SCENARIOS}
#: Fewer bootstrap draws than the report's 9,999: they add only Monte Carlo noise to the
#: interval end points, not bias.
FAST = ComparisonParams(bootstrap_draws=399)


def _study(name: str, comparison: ComparisonParams) -> pd.Series:
    results = pd.concat(
        [
            run_replicate(SCENARIOS[name], replicate, comparison=comparison, seed=7)
            for replicate in range(REPLICATES)
        ],
        ignore_index=True,
    )
    (row,) = summarise_study(results).itertuples(index=False)
    return pd.Series(row._asdict())


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "rise_before_null",  # the case: clients-only rise in months -3 to -1
        "rise_around_effect",  # clients-only rise around month 0, rate ratio 0.85
        "staggered_trend_effect",  # staggered referrals, secular trend, no practices
    ],
)
def test_primary_design_recovers_the_truth(name):
    """Bias within the study's tolerance (10% of the effect, or 0.005 appointments per
    person-month without one) allowing two Monte Carlo standard errors for 40 replicates;
    coverage at least 85% (34 of 40: a correct 95% interval falls below that with
    probability under 1%); model standard errors agree with the spread of the estimates."""
    row = _study(name, FAST)
    assert row["n_replicates"] == REPLICATES
    tolerance = (
        NULL_BIAS_TOLERANCE
        if abs(row["truth"]) < 1e-9
        else RELATIVE_BIAS_TOLERANCE * abs(row["truth"])
    )
    assert abs(row["bias"]) < tolerance + 2 * row["mc_se_bias"], row.to_dict()
    assert row["coverage"] >= 0.85, row.to_dict()
    assert row["mean_std_error"] == pytest.approx(row["sd_estimate"], rel=0.35), row.to_dict()


@pytest.mark.slow
def test_the_study_detects_a_design_without_washout():
    """The same study with the washout switched off (the whole year before referral against
    the year after) is biased by the clients-only rise before referral: the study can fail."""
    naive = ComparisonParams(bootstrap_draws=399, washout_months_before=0, washout_months_after=0)
    row = _study("rise_before_null", naive)
    assert row["truth"] == 0
    assert abs(row["bias"]) > max(0.01, 4 * row["mc_se_bias"]), row.to_dict()
    assert np.isfinite(row["coverage"]) and row["coverage"] < 0.85, row.to_dict()
