"""Simulated clients and scores whose dropout is known, shared by the attrition tests.

Imported by the test modules beside it (pytest puts this folder on the path).
"""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from spimpact.params import SchemeParams

TRUE_CHANGE = 2.0


def make_scheme(n=600, seed=7, p_missing_shift=0.0):
    """Clients and long scores whose dropout depends on baseline score and age (MAR)."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:04d}" for i in range(n)]
    age = rng.integers(18, 90, size=n)
    baseline = np.clip(rng.normal(20, 4, size=n), 7, 35)
    change = TRUE_CHANGE + 0.08 * (age - age.mean()) + rng.normal(0, 3, size=n)
    p_drop = 1 / (1 + np.exp(-(p_missing_shift - 0.3 - 0.04 * (age - 50) - 0.1 * (baseline - 20))))
    dropped = rng.random(n) < p_drop
    referral = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    clients = pd.DataFrame(
        {
            "client_id": ids,
            "referral_date": referral,
            "age": age,
            "age_band": pd.cut(age, [0, 44, 64, 200], labels=["16-44", "45-64", "65+"]).astype(str),
            "sex": rng.choice(["female", "male"], size=n),
            "imd_quintile": rng.integers(1, 6, size=n),
            "ethnic_group": rng.choice(["White", "Asian", "Black"], size=n, p=[0.7, 0.2, 0.1]),
            "discharge_date": referral + pd.to_timedelta(rng.integers(20, 200, n), unit="D"),
            "discharge_reason": np.where(dropped, "disengaged", "completed"),
        }
    )
    contacts = pd.DataFrame(
        {
            "client_id": ids,
            "contact_date": referral + pd.to_timedelta(rng.integers(1, 19, n), unit="D"),
        }
    )
    base = pd.DataFrame({"client_id": ids, "timepoint": 0, "value": baseline})
    follow = pd.DataFrame({"client_id": ids, "timepoint": 1, "value": baseline + change})[~dropped]
    scores = pd.concat([base, follow]).assign(score="swemwbs_metric", non_standard=False)
    return SimpleNamespace(clients=clients, contacts=contacts), scores


def make_params(**kwargs):
    return SchemeParams(scheme_id="test", title="Test scheme", data_dir="data", **kwargs)
