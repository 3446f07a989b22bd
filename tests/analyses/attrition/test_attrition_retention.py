import pandas as pd
from simulated_attrition import make_scheme

from spimpact.analyses.attrition.retention import analyse_retention, engagement_timeline


def test_engagement_timeline_dates_and_censoring():
    clients = pd.DataFrame(
        {
            "client_id": ["a", "b", "c", "d"],
            "referral_date": pd.to_datetime(["2024-01-01"] * 4),
            "discharge_date": pd.to_datetime(["2024-03-01", "2024-02-01", None, None]),
            "discharge_reason": ["disengaged", "completed", None, None],
        }
    )
    contacts = pd.DataFrame(
        {
            "client_id": ["a", "a", "b", "c"],
            "contact_date": pd.to_datetime(
                ["2024-01-05", "2024-01-11", "2024-01-20", "2024-01-31"]
            ),
        }
    )
    timeline = engagement_timeline(clients, contacts).set_index("client_id")
    # disengaged: dated by the last contact; completed: censored at discharge;
    # open: censored at the last contact; open with no contact: no time at risk
    assert timeline["days"].tolist() == [10, 31, 30, 0]
    assert timeline["disengaged"].tolist() == [1, 0, 0, 0]


def test_retention_curves_tests_and_dropout_model():
    """Dropout depends on age in the simulated scheme: the Cox model finds it, the
    curves cover everyone referred, and age band (the curves' grouping) is tested."""
    scheme, _ = make_scheme(n=400)
    retention = analyse_retention(scheme.clients, scheme.contacts)
    assert set(retention.curves) == {"all", "imd_quintile", "age_band"}
    first = retention.curves["all"].table.iloc[0]
    assert first["n_risk"] == len(scheme.clients)
    assert set(retention.logrank) == {"imd_quintile", "age_band", "sex", "ethnic_group"}
    assert retention.logrank["age_band"].p_value < 0.001
    hazard = retention.dropout_model.tidy(exponentiate=True).set_index("term")
    assert hazard.loc["age", "estimate"] < 1
    assert hazard.loc["age", "conf_high"] < 1
