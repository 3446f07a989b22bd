"""Simulated GP attendance: the example schemes' rise around referral and the study scenarios."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spimpact.analyses.attendance.cohort import cohort_people
from spimpact.analyses.attendance.panel import build_panel
from spimpact.io import load_scheme
from spimpact.synthetic import SchemeSpec, write_example_data
from spimpact.synthetic.appointments import month_starts
from spimpact.synthetic.attendance_scenarios import (
    STUDY_SCENARIOS,
    AttendanceScenario,
    simulate_attendance_scenario,
)
from spimpact.synthetic.attendance_shapes import PEAK_SHAPES, effect_by_month, peak_profile


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """A scheme with North Shore's rise before referral and a strong effect."""
    spec = SchemeSpec(
        "rise",
        "Rise",
        600,
        ("swemwbs",),
        n_areas=20,
        client_peak="north_shore",
        gp_rate_ratio=0.7,
    )
    (folder,) = write_example_data(tmp_path_factory.mktemp("example"), schemes=(spec,))
    scheme = load_scheme(folder, pseudonym_key="test-key")
    people = cohort_people(scheme, include_pool=True)
    panel = build_panel(
        scheme.gp_appointments,
        people[["patient_id", "index_date", "treated"]],
        window_months=12,
        months_before=36,
    )
    truth = json.loads((folder / "truth.json").read_text())["gp_attendance"]
    return panel, truth


def test_month_starts_follow_the_panel_months():
    """Month m starts on the index day of the m-th month after it, clamped to the month's end,
    as the panel SQL counts months."""
    starts = month_starts(
        np.array(["2024-01-31", "2024-03-15"], dtype="datetime64[D]"), np.arange(-1, 2)
    )
    assert starts.astype(str).tolist() == [
        ["2023-12-31", "2024-01-31", "2024-02-29", "2024-03-31"],
        ["2024-02-15", "2024-03-15", "2024-04-15", "2024-05-15"],
    ]


def test_the_rise_is_in_clients_only_and_has_the_scheme_shape(example):
    panel, _ = example
    means = panel.groupby(["treated", "months_since_index"])["n_clinical"].mean().unstack(0)
    baseline = means.loc[-12:-4].mean()
    rise = means.loc[-3:1] / baseline
    # clients: well above their baseline in months -2..0, most in month -1 (North Shore)
    assert (rise.loc[[-2, -1, 0], 1] > 1.25).all()
    assert rise[1].idxmax() == -1
    # comparison patients: no rise (their mean over months -3..1 within sampling noise)
    assert abs(rise[0].mean() - 1) < 0.06
    # asymmetric: more before referral than after
    assert rise.loc[-2, 1] > rise.loc[1, 1]


def test_truth_is_the_effect_over_the_post_period_months(example):
    """With a constant rate ratio r over months 3..11 the effect on clients is (r - 1) times
    their attendance without it, i.e. (1 - 1/r) times what they were seen to attend there:
    the truth agrees with the simulated panel within sampling error."""
    panel, truth = example
    assert truth["post_months"] == [3, 11]
    assert truth["gp_rate_ratio_post"] == pytest.approx(0.7)
    post = panel[(panel["treated"] == 1) & panel["months_since_index"].between(3, 11)]
    per_client = post.groupby("patient_id")["n_clinical"].mean()
    implied = float((1 - 1 / 0.7) * per_client.mean())
    assert truth["gp_att_per_person_month"] == pytest.approx(implied, rel=0.1)


def test_peak_shapes_are_transient_and_effect_ramps_up():
    months = np.arange(-36, 12)
    for name in PEAK_SHAPES:
        profile = peak_profile(name, months)
        assert (profile[(months < -6) | (months > 5)] == 0).all(), name
    # the example schemes' shapes sit inside the default washout, months -3 to 2
    for name in ("north_shore", "riverside", "before", "around_index", "symmetric"):
        assert set(PEAK_SHAPES[name]) <= set(range(-3, 3)), name
    assert effect_by_month(0.8, np.array([-1, 0, 1, 2, 3, 11])).tolist() == [
        1.0,
        1.0,
        0.9,
        0.9,
        0.8,
        0.8,
    ]
    with pytest.raises(ValueError, match="unknown peak shape"):
        peak_profile("tall", months)


def test_scenario_truth_is_computed_from_the_simulated_rates():
    scenario = AttendanceScenario("t", "t", rate_ratio=0.8, client_peak="before", n_clients=300)
    data = simulate_attendance_scenario(scenario, np.random.default_rng(4))
    # every month of the truth is after the transition: effect 0.8 throughout
    assert data.truth["rate_ratio"] == pytest.approx(0.8)
    in_post = (data.months >= 3) & (data.months <= 11)
    seen = data.observed & in_post[None, :]
    by_hand = np.mean(
        [
            (data.rate[i][seen[i]] - data.untreated_rate[i][seen[i]]).mean()
            for i in range(len(data.client_ids))
            if seen[i].any()
        ]
    )
    assert data.truth["att"] == pytest.approx(by_hand, rel=1e-12)
    # a subset of clients, and other months
    some = data.client_ids[:50]
    assert data.true_effect((3, 11), clients=some)["n_clients"] == 50
    assert data.true_effect((0, 11))["att"] > data.truth["att"]  # months 0-2: less effect
    # the panel holds only observed months, and the people table one row per person
    assert data.panel.groupby("patient_id").size().max() <= 48
    assert data.people["patient_id"].is_unique
    assert len(data.people) == 300 * (1 + scenario.pool_ratio)


def test_scenarios_cover_the_study_design():
    names = {s.name for s in STUDY_SCENARIOS}
    for peak in ("no_rise", "rise_before", "rise_around", "rise_both", "staggered_trend"):
        assert {f"{peak}_null", f"{peak}_effect"} <= names
    secular = [s for s in STUDY_SCENARIOS if s.secular_trend]
    assert secular and all(s.n_practices is None for s in secular)
    assert any(s.n_practices and s.n_practices >= 40 for s in STUDY_SCENARIOS)
    with pytest.raises(ValueError, match="unknown peak shape"):
        AttendanceScenario("x", "x", client_peak="tall")


def test_secular_trend_spreads_comparison_index_months_evenly():
    scenario = next(s for s in STUDY_SCENARIOS if s.secular_trend)
    data = simulate_attendance_scenario(
        AttendanceScenario(**{**scenario.__dict__, "n_clients": 2000}), np.random.default_rng(1)
    )
    months = pd.to_datetime(data.people["index_date"]).dt.to_period("M")
    clients = months[data.people["treated"] == 1].value_counts(normalize=True).sort_index()
    pool = months[data.people["treated"] == 0].value_counts(normalize=True).sort_index()
    # referrals grow over time; comparison index dates do not
    assert clients.iloc[-6:].sum() > clients.iloc[:6].sum() * 1.5
    assert pool.iloc[-6:].sum() == pytest.approx(pool.iloc[:6].sum(), rel=0.25)
