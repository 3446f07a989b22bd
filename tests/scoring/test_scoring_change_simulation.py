"""Simulation: the reliable change index flags 5% of people whose true score did not change.

Classical test theory: observed = true + error with reliability r = var(true) / var(observed).
With no true change, |RCI| >= 1.96 should occur in 5% of people (Jacobson & Truax 1991);
with a true change of exactly 1.96 * S_diff, in half of them.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spimpact.scoring import classify_change

N_PEOPLE = 20_000


def _simulate(true_change, reliability, seed):
    rng = np.random.default_rng(seed)
    sd_observed = 8.0
    sd_true = sd_observed * np.sqrt(reliability)
    sd_error = sd_observed * np.sqrt(1 - reliability)
    true = rng.normal(50, sd_true, N_PEOPLE)
    baseline = true + rng.normal(0, sd_error, N_PEOPLE)
    follow_up = true + true_change + rng.normal(0, sd_error, N_PEOPLE)
    ids = [f"p{i}" for i in range(N_PEOPLE)]
    scores = pd.DataFrame(
        {
            "client_id": ids * 2,
            "score": "wemwbs_total",
            "timepoint": [0] * N_PEOPLE + [1] * N_PEOPLE,
            "value": np.concatenate([baseline, follow_up]),
        }
    )
    return classify_change(scores, reliability={"wemwbs_total": reliability}), sd_error


@pytest.mark.slow
@pytest.mark.parametrize(("reliability", "seed"), [(0.83, 11), (0.7, 12)])
def test_no_true_change_gives_five_percent_reliable_change(reliability, seed):
    result, _ = _simulate(0.0, reliability, seed)
    share = (result.changes["reliable"] != "no reliable change").mean()
    # binomial SE at 5% with 20,000 people is 0.0015; 4 SE either side
    assert abs(share - 0.05) < 4 * np.sqrt(0.05 * 0.95 / N_PEOPLE)
    improved = (result.changes["reliable"] == "reliable improvement").mean()
    assert abs(improved - 0.025) < 4 * np.sqrt(0.025 * 0.975 / N_PEOPLE)


@pytest.mark.slow
def test_true_change_at_the_threshold_is_flagged_half_the_time():
    reliability = 0.83
    sd_error = 8.0 * np.sqrt(1 - reliability)
    s_diff = np.sqrt(2) * sd_error
    result, _ = _simulate(1.96 * s_diff, reliability, seed=13)
    # the sample baseline SD estimates 8.0, so the S_diff used differs slightly from the truth
    used = result.methods.loc[0, "s_diff"]
    expected = stats.norm.sf(1.96 - 1.96 * s_diff / used)
    share = (result.changes["reliable"] == "reliable improvement").mean()
    assert abs(share - expected) < 4 * np.sqrt(0.25 / N_PEOPLE)
    assert abs(used / s_diff - 1) < 0.02
