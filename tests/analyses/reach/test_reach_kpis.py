"""KPIs over time: engagement and completion XmR charts per referral cohort."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.analyses.reach import analyse_kpis, kpi_spc_section
from spimpact.io import SchemeData
from spimpact.params import SchemeParams


def _kpi_scheme(tmp_path, *, drop_after=None):
    """30 months x 40 referrals; engagement 90% until ``drop_after`` months, then 60%."""
    rng = np.random.default_rng(3)
    months = pd.period_range("2022-01", periods=30, freq="M")
    dates = np.concatenate(
        [
            (m.to_timestamp() + pd.to_timedelta(rng.integers(0, 28, 40), unit="D")).to_numpy()
            for m in months
        ]
    )
    month_index = np.repeat(np.arange(30), 40)
    engaged_share = np.where(
        (drop_after is not None) & (month_index >= (drop_after or 0)), 0.6, 0.9
    )
    engaged = rng.random(len(dates)) < engaged_share
    ids = [f"k{i}" for i in range(len(dates))]
    clients = pd.DataFrame(
        {
            "client_id": ids,
            "referral_date": pd.to_datetime(dates),
            "discharge_date": pd.to_datetime(dates) + pd.Timedelta(days=120),
            "discharge_reason": np.where(rng.random(len(dates)) < 0.7, "completed", "disengaged"),
        }
    )
    contacts = pd.DataFrame(
        {
            "client_id": np.asarray(ids)[engaged],
            "contact_date": clients["referral_date"][engaged] + pd.Timedelta(days=7),
        }
    )
    empty = pd.DataFrame()
    measures = pd.DataFrame(columns=["client_id", "timepoint", "date"])
    data = SchemeData(
        data_dir=tmp_path,
        clients=clients,
        measures=measures,
        reconciliation=empty,
        exclusions=empty,
        non_standard=empty,
        contacts=contacts,
    )
    params = SchemeParams(scheme_id="kpi_toy", title="toy", data_dir=tmp_path)
    return data, params


def test_kpi_section_charts_engagement_and_completion(tmp_path):
    data, params = _kpi_scheme(tmp_path)
    section = kpi_spc_section(data, None, params=params)
    assert [t.name for t in section.tables] == ["kpi_engaged_spc", "kpi_completed_spc"]
    assert len(section.figures) == 2
    engaged, completed = (t.frame for t in section.tables)
    # first and last months dropped; completion also needs 6 months after referral
    assert len(engaged) == 28
    assert completed["date"].max() < engaged["date"].max()
    assert engaged["percent"].between(0, 100).all()
    plt.close("all")


def test_kpi_section_flags_a_fall_in_engagement_as_concern(tmp_path):
    data, params = _kpi_scheme(tmp_path, drop_after=20)
    section = kpi_spc_section(data, None, params=params)
    engaged = section.tables[0].frame
    assert (engaged["point_type"].iloc[-8:] == "special_cause_concern").all()
    assert "special-cause" in section.text[0]
    plt.close("all")


def test_kpi_analysis_charts_each_stage_by_month(tmp_path):
    data, params = _kpi_scheme(tmp_path)
    result = analyse_kpis(data, None, params=params)
    assert [(kpi.stage, kpi.unit) for kpi in result.charts] == [
        ("engaged", "month"),
        ("completed", "month"),
    ]
    assert result.typical_referrals == 40  # 40 referrals in every month
