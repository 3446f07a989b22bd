"""Report sections on measures: disclosure control, plain-language flags, no identifiers."""

import numpy as np
import pandas as pd
import pytest

from spimpact.analyses.measures.section import (
    measure_quality_section,
    wellbeing_at_referral_section,
)
from spimpact.params import MeasuresParams, ScaleVariant, SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData
from spimpact.scoring import score_measures, validate_items

PARAMS = SchemeParams(scheme_id="test", title="Test", data_dir=".")


def _all_text(section):
    parts = list(section.text) + list(section.notes)
    for table in section.tables:
        parts.append(table.frame.astype(str).to_string())
    return " ".join(parts)


def test_wellbeing_at_referral_tables_are_disclosure_controlled(make_scheme):
    measures, clients = make_scheme()
    scored = score_measures(measures, clients=clients)
    section = wellbeing_at_referral_section(scored, clients, non_standard=None, params=PARAMS)
    names = [table.name for table in section.tables]
    assert names == ["wellbeing_at_referral", "wellbeing_poor_bands", "measure_completeness"]
    for table in section.tables:
        for column in ("People", "In band"):
            if column in table.frame:
                counts = table.frame[column].dropna().astype(int)
                assert (counts % 5 == 0).all()
    means = section.tables[0].frame
    swemwbs = means[means["Measure"] == "SWEMWBS (metric score)"].set_index("Group")
    assert swemwbs.loc["men", "Population mean"] == 23.7
    assert swemwbs.loc["women", "Population mean"] == 23.2
    assert "person-" not in _all_text(section)
    assert len(section.figures) == 1


def test_headline_for_primary_measure(make_scheme):
    measures, clients = make_scheme()
    scored = score_measures(measures, clients=clients)
    section = wellbeing_at_referral_section(scored.scores, clients, params=PARAMS)
    headline = section.headline
    assert list(headline.columns) == list(HEADLINE_COLUMNS)
    baseline = scored.scores.query("score == 'swemwbs_metric' and timepoint == 0")["value"]
    assert headline.loc[0, "estimate"] == pytest.approx(baseline.mean(), rel=1e-12)
    assert headline.loc[0, "std_error"] == pytest.approx(baseline.std() / np.sqrt(60), rel=1e-12)
    assert headline.loc[0, "conf_low"] < headline.loc[0, "estimate"] < headline.loc[0, "conf_high"]
    assert headline.loc[0, "n"] == 60


def test_small_groups_show_no_means(make_scheme):
    measures, clients = make_scheme(n_people=7)
    scored = score_measures(measures, clients=clients)
    section = wellbeing_at_referral_section(scored, clients, params=PARAMS)
    means = section.tables[0].frame
    assert means["Mean"].isna().all() and means["People"].isna().all()
    assert section.headline is None
    assert section.figures == ()


def test_no_baseline_means_insufficient_data(make_scheme):
    measures, clients = make_scheme()
    scored = score_measures(measures[measures["timepoint"] == 1], clients=clients)
    with pytest.raises(InsufficientData, match="No wellbeing questionnaire"):
        wellbeing_at_referral_section(scored, clients, params=PARAMS)


def test_modified_zero_to_ten_swemwbs_is_visibly_flagged(make_scheme):
    measures, clients = make_scheme(modified=20)
    check = validate_items(measures)
    scored = score_measures(check.measures, clients=clients)
    section = measure_quality_section(check.non_standard, scored.exclusions, params=PARAMS)
    text = " ".join(section.text)
    assert "**SWEMWBS**: items look like a 0–10 scale where 1–5 is expected" in text
    assert "about 40 records" in text
    assert "no answer was changed or clipped" in text
    assert "lower bound" in text
    table = section.tables[0].frame
    assert table.loc[0, "Records"] == 40
    assert "person-" not in _all_text(section)

    referral = wellbeing_at_referral_section(
        scored, clients, non_standard=check.non_standard, params=PARAMS
    )
    assert any("Use of outcome measures" in paragraph for paragraph in referral.text)


def test_declared_variant_is_explained(make_scheme):
    variant = ScaleVariant(observed_min=0, observed_max=10, reason="local 0-10 form")
    params = PARAMS.model_copy(update={"measures": MeasuresParams(variants={"swemwbs": variant})})
    measures, _ = make_scheme(modified=20)
    check = validate_items(
        measures[measures["client_id"] < "person-020"], variants=params.measures.variants
    )
    section = measure_quality_section(check.non_standard, None, params=params)
    assert "on a 0–10 scale instead of the standard 1–5" in section.text[0]
    assert "local 0-10 form" in section.text[0]


def test_clean_data_says_so():
    section = measure_quality_section(
        pd.DataFrame(columns=["measure", "issue", "n_rows", "detail"]), None, params=PARAMS
    )
    assert "no questionnaire was set aside" in section.text[0]
    assert section.tables == ()


def test_exclusion_reasons_are_grouped_and_rounded():
    exclusions = pd.DataFrame(
        {
            "table": ["measures"] * 12 + ["clients"],
            "row": range(13),
            "column": ["age"] * 13,
            "value": [None] * 13,
            "reason": ["EQ-5D index not computed: sex 'unknown' is not male or female"] * 9
            + ["item_1 = 0 is outside the swemwbs coding 1–5"] * 3
            + ["other table"],
        }
    )
    section = measure_quality_section(None, exclusions, params=PARAMS)
    reasons = section.tables[0].frame.set_index("Reason")["Records"]
    assert reasons.iloc[0] == 10  # 9 rounded to 5
    assert pd.isna(reasons["an answer outside the questionnaire's coding"])  # 3 suppressed
    assert len(reasons) == 2


def test_exclusions_are_explained_in_words():
    exclusions = pd.DataFrame(
        {
            "row": range(12),
            "column": ["sex"] * 12,
            "value": ["other"] * 12,
            "reason": [
                "EQ-5D index not computed: sex 'other' is not male or female (NICE DSU mapping)"
            ]
            * 12,
        }
    )
    section = measure_quality_section(None, exclusions, params=PARAMS)
    assert section.text[0].startswith("In all, about 10 records could not be scored in full")
    assert "EQ-VAS was still scored" in section.text[0]
