import re
from pathlib import Path

import pandas as pd
import pytest

from spimpact.params import SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData, Section
from spimpact.report.front_page import (
    collect_headlines,
    describe_result,
    front_page_section,
    is_change,
)

PARAMS = SchemeParams(scheme_id="test_scheme", title="Test Scheme", data_dir=Path("."))


def headline(level, outcome, measure, estimate, low, high, n, method):
    return pd.DataFrame(
        [(level, outcome, measure, estimate, (high - low) / 3.92, low, high, n, method, 0.95)],
        columns=list(HEADLINE_COLUMNS),
    )


def wellbeing(estimate, low, high, n=120, measure="swemwbs_metric"):
    return headline(
        "person",
        "SWEMWBS metric change, baseline to 3 months",
        measure,
        estimate,
        low,
        high,
        n,
        "paired mean change (uncontrolled pre/post)",
    )


@pytest.mark.parametrize(
    ("estimate", "low", "high", "measure", "direction", "certainty"),
    [
        (2.1, 1.2, 3.0, "swemwbs_metric", "an increase of 2.10", "looks like an improvement"),
        (-2.1, -3.0, -1.2, "swemwbs_metric", "a decrease of 2.10", "looks like a worsening"),
        (0.4, -0.5, 1.3, "swemwbs_metric", "an increase of 0.40", "includes no change"),
        (-0.4, -1.3, 0.5, "swemwbs_metric", "a decrease of 0.40", "includes no change"),
        # UCLA loneliness: higher is worse, so a fall is an improvement
        (-0.8, -1.2, -0.4, "ucla3_total", "a decrease of 0.80", "looks like an improvement"),
        # an outcome without a known direction gets no value judgement
        (
            -0.5,
            -0.9,
            -0.1,
            "gp_attended_per_person_year",
            "a decrease of 0.50",
            "rules out no change.",
        ),
    ],
)
def test_wording_follows_sign_and_interval(estimate, low, high, measure, direction, certainty):
    row = wellbeing(estimate, low, high, measure=measure).iloc[0]
    sentence = describe_result(row)
    assert direction in sentence
    assert certainty in sentence
    contradictions = {
        "increase": estimate <= 0,
        "decrease": estimate >= 0,
        "rules out no change": low <= 0 <= high,
        "includes no change": not low <= 0 <= high,
    }
    for phrase, wrong in contradictions.items():
        if wrong:
            assert phrase not in sentence


@pytest.mark.parametrize(
    ("estimate", "low", "high", "direction", "certainty"),
    [
        (0.8, 0.7, 0.9, "a decrease of 20% (ratio 0.80)", "rules out no change"),
        (1.25, 1.1, 1.4, "an increase of 25% (ratio 1.25)", "rules out no change"),
        (0.9, 0.75, 1.05, "a decrease of 10% (ratio 0.90)", "includes no change"),
    ],
)
def test_ratios_are_judged_against_one(estimate, low, high, direction, certainty):
    row = headline(
        "system", "GP appointments attended after vs before referral", "gp_rate_ratio",
        estimate, low, high, 95, "rate ratio, negative binomial GLMM",
    ).iloc[0]  # fmt: skip
    sentence = describe_result(row)
    assert direction in sentence and certainty in sentence


def test_levels_get_no_direction_words():
    row = headline(
        "person", "SWEMWBS (metric score) at referral (mean)", "swemwbs_metric", 18.5, 17.8,
        19.2, 75, "mean at referral, t interval",
    ).iloc[0]  # fmt: skip
    assert not is_change(row)
    sentence = describe_result(row)
    assert "18.5 among 75 people (95% confidence interval 17.8 to 19.2)." in sentence
    for word in ("increase", "decrease", "improvement", "no change"):
        assert word not in sentence


def test_front_page_has_five_or_six_sentences_from_the_headlines():
    sections = [
        Section(title="Wellbeing", headline=wellbeing(2.1, 1.2, 3.0)),
        Section(
            title="GP attendance",
            headline=headline(
                "system",
                "GP appointments attended per person-year",
                "gp_attended_rate",
                -0.6,
                -1.1,
                0.1,
                95,
                "Poisson GLMM, before vs after referral",
            ),
        ),
        Section(
            title="Community",
            headline=headline(
                "community",
                "Community organisations referred to",
                "n_organisations",
                35,
                float("nan"),
                float("nan"),
                210,
                "count",
            ),
        ),
        Section(title="Equity"),
    ]
    page = front_page_section(sections, params=PARAMS)
    text = " ".join(page.text)
    n_sentences = len(re.findall(r"[.!?](?:\s|$)", text))
    assert 5 <= n_sentences <= 6
    assert "Test Scheme" in text
    assert "an increase of 2.10 among 120 people" in text
    assert "a decrease of 0.60" in text and "includes no change" in text
    assert "regression to the mean" in text
    assert page.headline is None  # the scheme's headline rows are not duplicated


def test_front_page_prefers_change_rows_and_reports_other_methods():
    at_referral = headline(
        "person", "SWEMWBS (metric score) at referral (mean)", "swemwbs_metric", 18.5, 17.8,
        19.2, 75, "mean at referral, t interval",
    )  # fmt: skip
    ipw = wellbeing(2.02, 1.04, 3.00).assign(method="uncontrolled before/after, IPW")
    mice = wellbeing(2.33, 1.33, 3.33).assign(method="uncontrolled before/after, MICE")
    mixed = wellbeing(2.23, 1.30, 3.15).assign(method="uncontrolled before/after, mixed model")
    sections = [
        Section(title="a", headline=at_referral),
        Section(title="b", headline=pd.concat([ipw, mice, mixed])),
    ]
    page = front_page_section(sections, params=PARAMS)
    text = " ".join(page.text)
    assert "an increase of 2.02 among 120 people" in text
    assert "(2 other methods gave 2.23 to 2.33)" in text
    assert "increase of 18.5" not in text


def test_comparison_designs_name_unmeasured_confounding():
    row = wellbeing(2.1, 1.2, 3.0).assign(method="difference-in-differences vs matched comparison")
    page = front_page_section([Section(title="x", headline=row)], params=PARAMS)
    text = " ".join(page.text)
    assert "not measured" in text
    assert "regression to the mean" not in text


def test_suppressed_n_is_described_without_a_number():
    row = wellbeing(2.1, 1.2, 3.0, n=pd.NA).iloc[0]
    assert "small number of people" in describe_result(row)


def test_no_headlines_raises_insufficient_data():
    with pytest.raises(InsufficientData):
        front_page_section([Section(title="x")], params=PARAMS)


def test_collect_headlines_rejects_missing_columns():
    bad = Section(title="x", headline=pd.DataFrame({"outcome": ["a"], "estimate": [1.0]}))
    with pytest.raises(ValueError, match="missing columns"):
        collect_headlines([bad])


def test_mixed_designs_name_each_bias_for_its_own_results():
    """Wellbeing has no comparison group while GP attendance has one: both caveats, each apt."""
    gp = headline(
        "system", "Change in GP appointments per 1,000 clients per year", "gp_rate", -850, -961,
        -739, 7905, "Difference-in-differences, 1:1 propensity-matched comparison group",
    )  # fmt: skip
    sections = [
        Section(title="w", headline=wellbeing(2.1, 1.2, 3.0)),
        Section(title="g", headline=gp),
    ]
    text = " ".join(front_page_section(sections, params=PARAMS).text)
    assert "There was no comparison group" not in text
    assert "not measured" in text
    assert "Other results have no comparison group" in text and "regression to the mean" in text
