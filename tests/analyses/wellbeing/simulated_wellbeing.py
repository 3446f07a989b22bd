"""Simulated wellbeing scores with a known change, shared by the analysis and section tests.

Imported by the test modules beside it (pytest puts this folder on the path).
"""

import numpy as np
import pandas as pd

TRUE_CHANGE = {1: 2.0, 2: 2.6}


def make_scheme(n_clients=400, seed=1, sex_effect=0.0, score="swemwbs_metric"):
    """Baseline and two follow-ups; follow-up MAR given baseline; true change known.

    ``sex_effect`` is added to the change of men at every follow-up.
    """
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:04d}" for i in range(n_clients)])
    clients = pd.DataFrame(
        {
            "client_id": ids,
            "sex": rng.choice(["female", "male"], n_clients, p=[0.6, 0.4]),
            "age_band": rng.choice(["16-24", "25-34", "35-44", "45-54", "55-64"], n_clients),
            "imd_quintile": rng.integers(1, 6, n_clients),
            "ethnic_group": rng.choice(["White", "Asian", "Black"], n_clients, p=[0.7, 0.2, 0.1]),
        }
    )
    person = rng.normal(0, 3, n_clients)
    male = (clients.sex == "male").to_numpy()
    rows = []
    for t in (0, 1, 2):
        change = 0.0 if t == 0 else TRUE_CHANGE[t] + sex_effect * male
        value = 18.5 + person + change + rng.normal(0, 2, n_clients)
        rows.append(pd.DataFrame({"client_id": ids, "timepoint": t, "value": value}))
    scores = pd.concat(rows, ignore_index=True)
    baseline = scores[scores.timepoint == 0].set_index("client_id").value
    p_missing = 1 / (1 + np.exp(-(-0.8 - 0.2 * (scores.client_id.map(baseline) - 18.5))))
    missing = (scores.timepoint > 0) & (rng.random(len(scores)) < p_missing)
    scores = scores[~missing].assign(score=score).reset_index(drop=True)
    return scores, clients


# Unequal variances by visit (SD 3, 5, 8) and correlations that fall with distance: the
# setting of benchmarks/bench_wellbeing_missing.py (kept in step with it).
UNEQUAL_MEANS = np.array([20.0, 21.5, 23.0])
UNEQUAL_SDS = np.array([3.0, 5.0, 8.0])
UNEQUAL_CORRELATION = np.array([[1.0, 0.6, 0.4], [0.6, 1.0, 0.7], [0.4, 0.7, 1.0]])


def simulate_unequal(n, rng, *, informative=True):
    """Long scores at time points 0, 1, 2 (true change to 2: 3.0).

    ``informative``: monotone dropout after each visit that depends on the score at that
    visit (missing at random given the last observed score); otherwise everyone has the
    first follow-up and about a quarter miss the second, depending on the first.
    """
    sigma = UNEQUAL_CORRELATION * np.outer(UNEQUAL_SDS, UNEQUAL_SDS)
    y = rng.multivariate_normal(UNEQUAL_MEANS, sigma, size=n)
    seen = np.ones((n, 3), dtype=bool)
    if informative:
        seen[:, 1] = rng.random(n) < 1 / (1 + np.exp(-(1.1 + 0.3 * (y[:, 0] - 20.0))))
        seen[:, 2] = seen[:, 1] & (
            rng.random(n) < 1 / (1 + np.exp(-(0.6 + 0.35 * (y[:, 1] - 21.5))))
        )
    else:
        seen[:, 2] = rng.random(n) < 1 / (1 + np.exp(-(1.0 + 0.2 * (y[:, 1] - 21.5))))
    return pd.DataFrame(
        {
            "client_id": np.repeat(np.arange(n), 3),
            "timepoint": np.tile([0, 1, 2], n),
            "value": np.where(seen, y, np.nan).ravel(),
        }
    )
