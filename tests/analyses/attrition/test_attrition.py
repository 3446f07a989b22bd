import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from spimpact.analyses.attrition.analysis import (
    HEADLINE_METHODS,
    AttritionData,
    attrition_section,
    engagement_timeline,
    estimate_change,
    make_table_completer_balance,
    prepare_attrition_data,
)
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import DisclosureRule
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData

matplotlib.use("Agg")

TRUE_CHANGE = 2.0


def _scheme(n=600, seed=7, p_missing_shift=0.0):
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


def _params(**kwargs):
    return SchemeParams(scheme_id="test", title="Test scheme", data_dir="data", **kwargs)


@pytest.fixture(scope="module")
def section():
    scheme, scores = _scheme(n=400)
    return attrition_section(scheme, scores, params=_params())


def test_adjusted_estimates_recover_the_truth_complete_cases_do_not():
    scheme, scores = _scheme(n=1500, seed=3)
    data = prepare_attrition_data(scheme.clients, scores, score="swemwbs_metric")
    estimates, tipping, _ = estimate_change(data, seed=1)
    by = estimates.set_index("key")
    # older people improve more and leave less: complete cases overstate the change
    assert by.loc["complete_case", "conf_low"] > TRUE_CHANGE
    for key in ("ipw", "mi", "mixed"):
        assert by.loc[key, "conf_low"] < TRUE_CHANGE < by.loc[key, "conf_high"], key
    # no change for those who left: the complete-case mean scaled by the share retained
    share = data.completed.mean()
    assert_allclose(
        by.loc["baseline_carried_forward", "estimate"], share * data.frame["change"].mean()
    )
    # the pooled mean moves by delta x (share imputed): the estimate reaches zero there
    assert_allclose(tipping.delta_no_effect, -by.loc["mi", "estimate"] / (1 - share), rtol=1e-6)
    assert tipping.delta_no_effect < tipping.delta_no_significance < 0


def test_section_tables_are_disclosure_controlled(section):
    names = [table.name for table in section.tables]
    assert names == [
        "attrition_funnel",
        "attrition_completers_vs_non_completers",
        "attrition_change_estimates",
        "attrition_tipping_point",
        "attrition_dropout_predictors",
        "attrition_retention_logrank",
    ]
    tables = {table.name: table.frame for table in section.tables}
    for counts in (
        tables["attrition_funnel"]["n_people"],
        tables["attrition_change_estimates"]["n_people"],
    ):
        shown = counts.dropna().astype(int)
        assert (shown % 5 == 0).all()
    # no identifiers anywhere in the published tables
    for frame in tables.values():
        text = frame.astype(str).to_numpy().ravel()
        assert not any(re.fullmatch(r"c\d{4}", cell) for cell in text)


def test_section_headline_and_text(section):
    headline = section.headline
    assert list(headline.columns) == list(HEADLINE_COLUMNS)
    assert set(headline["outcome_level"]) == {"person"}
    assert list(headline["method"]) == list(HEADLINE_METHODS.values())
    assert (headline["conf_low"] < headline["estimate"]).all()
    assert (headline["estimate"] < headline["conf_high"]).all()
    assert headline["n"].dropna().astype(int).mod(5).eq(0).all()
    text = " ".join(section.text)
    assert "points worse" in text
    assert "log(-log)" in text
    assert len(section.figures) == 2


def test_estimates_are_reproducible_given_the_seed():
    scheme, scores = _scheme(n=300, seed=5)
    data = prepare_attrition_data(scheme.clients, scores, score="swemwbs_metric")
    first, first_tipping, _ = estimate_change(data, seed=11)
    second, second_tipping, _ = estimate_change(data, seed=11)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first_tipping.tidy(), second_tipping.tidy())
    other, _, _ = estimate_change(data, seed=12)
    assert (
        other.set_index("key").loc["mi", "estimate"] != first.set_index("key").loc["mi", "estimate"]
    )


@pytest.mark.parametrize(
    ("n", "p_missing_shift", "message"),
    [(15, 0.0, "at least 20 people"), (300, -12.0, "cannot materially bias")],
)
def test_insufficient_data_gives_plain_sentence(n, p_missing_shift, message):
    scheme, scores = _scheme(n=n, seed=2, p_missing_shift=p_missing_shift)
    with pytest.raises(InsufficientData, match=message):
        attrition_section(scheme, scores, params=_params())


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


def test_completer_balance_smd_and_suppression():
    frame = pd.DataFrame(
        {
            "client_id": [str(i) for i in range(40)],
            "baseline": np.r_[np.full(20, 20.0), np.full(20, 18.0)] + np.tile([-1.0, 1.0], 20),
            "follow_up_1": np.r_[np.full(20, 22.0), np.full(20, np.nan)],
            "sex": ["female"] * 15 + ["male"] * 5 + ["female"] * 10 + ["male"] * 10,
        }
    )
    frame["change"] = frame["follow_up_1"] - frame["baseline"]
    data = AttritionData(frame, "swemwbs_metric", (1,), ("sex",), ("sex",), "baseline + C(sex)")
    table = make_table_completer_balance(data, rule=DisclosureRule()).set_index(
        ["characteristic", "level"]
    )
    sd = np.sqrt(np.var([-1.0, 1.0] * 10, ddof=1))
    assert_allclose(table.loc[("Baseline score", "mean"), "smd"], round(2 / sd, 3))
    assert table.loc[("Baseline score", "mean"), "completers"] == 20.0
    # 5 completers are male: a count of 1-7 people, so its SMD is withheld
    assert pd.isna(table.loc[("Sex", "male"), "smd"])
    p1, p0 = 15 / 20, 10 / 20
    assert_allclose(
        table.loc[("Sex", "female"), "smd"],
        round((p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2), 3),
    )


@pytest.mark.parametrize("scheme_id", ["valley"])
def test_example_scheme_has_the_section(example_data, scheme_id):
    """The smallest example scheme (150 referrals) still supports the section."""
    from spimpact.analyses.measures import score_scheme
    from spimpact.io import load_scheme
    from spimpact.params import load_params

    params = load_params(Path(__file__).parents[3] / "params" / f"{scheme_id}.yaml")
    params = params.model_copy(update={"data_dir": example_data / scheme_id})
    scheme = load_scheme(params.data_dir, pseudonym_key="test-key")
    scores = score_scheme(scheme, params).scores
    section = attrition_section(scheme, scores, params=params)
    assert len(section.headline) == 3
    assert section.headline["estimate"].notna().all()


def test_section_without_contacts_or_discharges():
    """Optional data missing: no contacts table and no discharge columns."""
    scheme, scores = _scheme(n=200, seed=9)
    clients = scheme.clients.drop(columns=["discharge_date", "discharge_reason"])
    section = attrition_section(
        SimpleNamespace(clients=clients, contacts=None), scores, params=_params()
    )
    funnel = {t.name: t.frame for t in section.tables}["attrition_funnel"]
    assert funnel["stage"].str.contains("contact|Discharged").sum() == 0
    assert len(section.headline) == 3
    assert any("disengaged" in note for note in section.notes)


def test_tipping_point_for_a_score_where_lower_is_better():
    """UCLA-3 loneliness: an improvement is a fall, and 'worse' is a higher score."""
    scheme, scores = _scheme(n=400, seed=4)
    scores = scores.assign(
        score="ucla3_total",
        value=lambda d: np.where(d["timepoint"] == 0, 7.0, 5.0) + d["value"] / 100,
    )
    data = prepare_attrition_data(scheme.clients, scores, score="ucla3_total")
    estimates, tipping, _ = estimate_change(data, seed=3, m=5, higher_is_better=False)
    assert estimates.set_index("key").loc["mi", "estimate"] < 0
    assert 0 < tipping.delta_no_significance < tipping.delta_no_effect
    assert (tipping.tidy()["delta"] >= 0).all()
