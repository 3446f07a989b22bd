"""The fabricated scheme the data-maturity tests share."""

import pandas as pd
import pytest

from spimpact.io import SchemeData

N = 100


@pytest.fixture
def make_scheme():
    """A builder of a fabricated scheme and its scores (see ``_make_scheme``)."""
    return _make_scheme


def _make_scheme(tmp_path, *, n_ethnic_unknown=0, n_with_followup=80, primary_share=1.0):
    ids = [f"C{i:03d}" for i in range(N)]
    clients = pd.DataFrame(
        {
            "client_id": ids,
            "age_band": ["45-54"] * N,
            "sex": ["female"] * N,
            "ethnic_category": ["Z"] * n_ethnic_unknown + ["A"] * (N - n_ethnic_unknown),
            "lsoa_code": ["E01000001"] * N,
            "imd_decile": [3] * N,
            "practice_code": ["A12345"] * N,
            "consent_contact": [True] * N,
            "discharge_date": [pd.Timestamp("2024-01-01")] * 50 + [pd.NaT] * 50,
            "discharge_reason": ["completed"] * 40 + [None] * 60,
        }
    )
    n_primary = int(N * primary_share)
    # Follow-ups 70, 84, ..., 168 days after baseline: 3 months (91.3 days) +/- 28 days
    # covers days 63-119, so 4 of every 8 are on time.
    follow_up_days = [70 + 14 * (i % 8) for i in range(n_with_followup)]
    measures = pd.DataFrame(
        {
            "client_id": ids + ids[:n_with_followup],
            "measure": ["swemwbs"] * n_primary + ["who5"] * (N - n_primary)
            + ["swemwbs"] * n_with_followup,
            "timepoint": [0] * N + [1] * n_with_followup,
            "date": [pd.Timestamp("2024-01-01")] * N
            + [pd.Timestamp("2024-01-01") + pd.Timedelta(days=d) for d in follow_up_days],
        }
    )  # fmt: skip
    scores = measures[measures["measure"] == "swemwbs"].assign(score="swemwbs_metric", value=20.0)
    scheme = SchemeData(
        data_dir=tmp_path,
        clients=clients,
        measures=measures,
        reconciliation=pd.DataFrame(
            {
                "table": ["clients", "measures"],
                "n_read": [N, 200],
                "n_used": [N, 180],
                "n_excluded": [0, 20],
            }
        ),  # fmt: skip
        exclusions=pd.DataFrame(),
        non_standard=pd.DataFrame(
            {"measure": ["who5"], "issue": ["out of range"], "n_rows": [20], "detail": ["0-10"]}
        ),
        contacts=pd.DataFrame({"client_id": ids}),
        support_offered=pd.DataFrame({"client_id": ids[:90]}),
    )
    return scheme, scores
