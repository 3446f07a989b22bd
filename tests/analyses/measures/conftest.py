"""The fabricated scheme the measures tests share."""

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def make_scheme():
    """A builder of fabricated measures and clients (see ``_make_scheme``)."""
    return _make_scheme


def _make_scheme(n_people=60, seed=1, modified=0):
    """SWEMWBS and ONS4 at two time points; the first ``modified`` people use a 0-10 form."""
    rng = np.random.default_rng(seed)
    records = []
    for person in range(n_people):
        for timepoint in (0, 1):
            if modified > person:
                swemwbs = list(rng.integers(0, 11, size=7))
                swemwbs[0] = 10
            else:
                swemwbs = list(rng.integers(1, 6, size=7))
            records.append(
                {
                    "client_id": f"person-{person:03d}",
                    "measure": "swemwbs",
                    "timepoint": timepoint,
                    "date": "2026-01-01",
                    **{f"item_{i + 1}": v for i, v in enumerate(swemwbs)},
                }
            )
            records.append(
                {
                    "client_id": f"person-{person:03d}",
                    "measure": "ons4",
                    "timepoint": timepoint,
                    "date": "2026-01-01",
                    **{f"item_{i + 1}": v for i, v in enumerate(rng.integers(0, 11, size=4))},
                }
            )
    measures = pd.DataFrame(records)
    for i in range(1, 15):
        measures[f"item_{i}"] = measures.get(f"item_{i}", pd.NA)
        measures[f"item_{i}"] = measures[f"item_{i}"].astype("Int64")
    measures["source_row"] = range(2, len(measures) + 2)
    clients = pd.DataFrame(
        {
            "client_id": [f"person-{p:03d}" for p in range(n_people)],
            "sex": ["female", "male"] * (n_people // 2) + ["female"] * (n_people % 2),
        }
    )
    return measures, clients
