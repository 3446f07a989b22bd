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
