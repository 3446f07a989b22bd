"""Report sections on measures: disclosure control, plain-language flags, no identifiers."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.analyses.measures import analyse_measure_quality, analyse_wellbeing_at_referral
from spimpact.analyses.measures.section import (
    measure_quality_section,
    wellbeing_at_referral_section,
)
from spimpact.params import MeasuresParams, ScaleVariant, SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData
from spimpact.scoring import score_measures, validate_items

PARAMS = SchemeParams(scheme_id="test", title="Test", data_dir=".")


def make_scheme(n_people=60, seed=1, modified=0):
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


def _all_text(section):
    parts = list(section.text) + list(section.notes)
    for table in section.tables:
        parts.append(table.frame.astype(str).to_string())
    return " ".join(parts)


def test_wellbeing_at_referral_tables_are_disclosure_controlled():
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


def test_headline_for_primary_measure():
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


def test_small_groups_show_no_means():
    measures, clients = make_scheme(n_people=7)
    scored = score_measures(measures, clients=clients)
    section = wellbeing_at_referral_section(scored, clients, params=PARAMS)
    means = section.tables[0].frame
    assert means["Mean"].isna().all() and means["People"].isna().all()
    assert section.headline is None
    assert section.figures == ()


def test_no_baseline_means_insufficient_data():
    measures, clients = make_scheme()
    scored = score_measures(measures[measures["timepoint"] == 1], clients=clients)
    with pytest.raises(InsufficientData, match="No wellbeing questionnaire"):
        wellbeing_at_referral_section(scored, clients, params=PARAMS)


def test_modified_zero_to_ten_swemwbs_is_visibly_flagged():
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


def test_declared_variant_is_explained():
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


# --- the analysis behind the sections ------------------------------------------------


def test_primary_mean_has_a_student_t_interval():
    """t interval on n - 1 df: mean +/- t(0.975, 59) x SD / sqrt(60), by hand."""
    measures, clients = make_scheme()
    scored = score_measures(measures, clients=clients)
    result = analyse_wellbeing_at_referral(scored, clients, params=PARAMS)
    baseline = scored.scores.query("score == 'swemwbs_metric' and timepoint == 0")["value"]
    half = stats.t.ppf(0.975, 59) * baseline.std() / 60**0.5
    interval = result.primary_mean.tidy().iloc[0]
    assert_allclose(
        [interval["conf_low"], interval["conf_high"]],
        [baseline.mean() - half, baseline.mean() + half],
        rtol=1e-12,
    )
    assert result.n_primary_published == 60
    assert result.primary_score == "swemwbs_metric"


def test_results_use_machine_names():
    measures, clients = make_scheme()
    result = analyse_wellbeing_at_referral(
        score_measures(measures, clients=clients), clients, params=PARAMS
    )
    assert list(result.means.columns[:3]) == ["score", "group", "n_people"]
    assert set(result.completeness["measure"]) == {"swemwbs", "ons4"}
    assert set(result.completeness["timepoint"]) == {0, 1}
    assert result.measures == ("swemwbs", "ons4")
    assert all(d.counts.sum() % 5 == 0 for d in result.distributions)


def test_no_baseline_is_insufficient():
    measures, clients = make_scheme()
    scored = score_measures(measures[measures["timepoint"] == 1], clients=clients)
    with pytest.raises(InsufficientData, match="No wellbeing questionnaire"):
        analyse_wellbeing_at_referral(scored, clients, params=PARAMS)


def test_measure_quality_counts_are_disclosure_controlled():
    exclusions = pd.DataFrame(
        {
            "table": ["measures"] * 12,
            "row": range(12),
            "column": ["item_1"] * 12,
            "value": [0] * 12,
            "reason": ["item_1 = 0 is outside the swemwbs coding 1–5"] * 12,
        }
    )
    non_standard = pd.DataFrame(
        {"measure": ["who5"], "issue": ["out of range"], "n_rows": [3], "detail": ["0-10"]}
    )
    result = analyse_measure_quality(non_standard, exclusions, params=PARAMS)
    assert pd.isna(result.issues.loc[0, "n_rows_published"])  # 3 records: withheld
    assert result.exclusion_reasons.to_dict("list") == {
        "reason": ["an answer outside the questionnaire's coding"],
        "n_records": [10],
    }
    assert result.n_excluded_published == 10
