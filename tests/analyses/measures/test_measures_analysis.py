"""Measures analysis: the numbers behind "Wellbeing at referral" and "Use of outcome measures"."""

import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.analyses.measures import analyse_measure_quality, analyse_wellbeing_at_referral
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData
from spimpact.scoring import score_measures

PARAMS = SchemeParams(scheme_id="test", title="Test", data_dir=".")


def test_primary_mean_has_a_student_t_interval(make_scheme):
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


def test_results_use_machine_names(make_scheme):
    measures, clients = make_scheme()
    result = analyse_wellbeing_at_referral(
        score_measures(measures, clients=clients), clients, params=PARAMS
    )
    assert list(result.means.columns[:3]) == ["score", "group", "n_people"]
    assert set(result.completeness["measure"]) == {"swemwbs", "ons4"}
    assert set(result.completeness["timepoint"]) == {0, 1}
    assert result.measures == ("swemwbs", "ons4")
    assert all(d.counts.sum() % 5 == 0 for d in result.distributions)


def test_no_baseline_is_insufficient(make_scheme):
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
