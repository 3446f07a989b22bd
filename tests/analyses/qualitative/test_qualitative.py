import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.analyses.measures import score_scheme
from spimpact.analyses.qualitative import analyse_feedback, qualitative_section
from spimpact.analyses.qualitative.analysis import split_themes
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.gate import paragraph
from spimpact.publish.section import InsufficientData
from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data

# --- sections on a fabricated scheme ------------------------------------------------------

N_CLIENTS = 40


def fabricated_scheme(tmp_path, *, feedback=True, support=True):
    ids = [f"C{i:03d}" for i in range(N_CLIENTS)]
    clients = pd.DataFrame(
        {
            "client_id": ids,
            "sex": ["female", "male"] * (N_CLIENTS // 2),
            "age_band": ["45-54"] * N_CLIENTS,
            "ethnic_group": ["White"] * 30 + ["Asian"] * 10,
            "imd_quintile": [1, 2, 3, 4] * (N_CLIENTS // 4),
        }
    )
    rows = []
    for i in range(20):  # 20 items on confidence alone
        rows.append((f"F{i:03d}", ids[i], "informal", "confidence", i < 2, "I feel better."))
    for i in range(20, 30):  # 10 on isolation and confidence
        rows.append((f"F{i:03d}", ids[i], "formal", "Isolation; confidence", False,
                     "Mrs Grace Mensah of 12 Acacia Avenue rang 07700 900456."))  # fmt: skip
    for i in range(30, 33):  # 3 on housing: too few to publish
        rows.append((f"F{i:03d}", ids[i], "case_study", "housing", i == 30,
                     "Dr Patel helped me on 02/03/2024 at Riverside Centre."))  # fmt: skip
    rows.append(("F999", None, "informal", None, False, "Unlinked."))
    feedback_frame = pd.DataFrame(
        rows,
        columns=["feedback_id", "client_id", "feedback_type", "themes", "consent_to_quote", "text"],
    )
    # SWEMWBS change: +4 for clients mentioning confidence (0-29), +1 for the others.
    change = np.where(np.arange(N_CLIENTS) < 30, 4.0, 1.0) + np.tile([-1.0, 1.0], N_CLIENTS // 2)
    scores = pd.concat(
        [
            pd.DataFrame({"client_id": ids, "measure": "swemwbs", "timepoint": 0,
                          "score": "swemwbs_metric", "value": 18.0}),
            pd.DataFrame({"client_id": ids, "measure": "swemwbs", "timepoint": 1,
                          "score": "swemwbs_metric", "value": 18.0 + change}),
        ]
    )  # fmt: skip
    support_frame = pd.DataFrame(
        {
            "client_id": ids[:30] + ids[:3],
            "activity_type": ["arts_culture"] * 30 + ["housing"] * 3,
            "organisation_id": [f"ORG-{i % 6}" for i in range(33)],
        }
    )
    scheme = SchemeData(
        data_dir=tmp_path,
        clients=clients,
        measures=scores[["client_id", "measure", "timepoint"]],
        reconciliation=pd.DataFrame(columns=["table", "n_read", "n_used", "n_excluded"]),
        exclusions=pd.DataFrame(),
        non_standard=pd.DataFrame(columns=["measure", "issue", "n_rows", "detail"]),
        feedback=feedback_frame if feedback else None,
        support_offered=support_frame if support else None,
    )
    return scheme, scores, change


def params(tmp_path):
    return SchemeParams(scheme_id="test_scheme", title="Test", data_dir=tmp_path)


def tables_of(section):
    return {table.name: table.frame for table in section.tables}


def test_split_themes_normalises_labels():
    feedback = pd.DataFrame(
        {"feedback_id": ["a", "b"], "client_id": ["x", None], "feedback_type": ["formal"] * 2,
         "themes": [" Isolation ;confidence;isolation", None]}
    )  # fmt: skip
    long = split_themes(feedback)
    assert long["theme"].tolist() == ["isolation", "confidence", "(no theme recorded)"]


def test_qualitative_counts_are_disclosure_controlled(tmp_path):
    scheme, scores, _ = fabricated_scheme(tmp_path)
    section = qualitative_section(scheme, scores, params=params(tmp_path))
    tables = tables_of(section)
    by_type = tables["feedback_by_type"].set_index("feedback_type")["n_feedback"]
    assert pd.isna(by_type["Case study"])  # 3 case studies: suppressed
    assert (by_type["Formal"], by_type["Informal"]) == (10, 20)
    by_theme = tables["feedback_by_theme"].set_index("theme")
    assert by_theme.loc["confidence", "n_feedback"] == 30
    assert by_theme.loc["isolation", "n_clients"] == 10
    assert pd.isna(by_theme.loc["housing", "n_feedback"])  # 3 items: suppressed
    subgroup = tables["feedback_themes_by_subgroup"]
    by_group = subgroup.set_index(["dimension", "category", "theme"])
    white = by_group.loc[("Ethnic group", "White", "confidence")]
    assert (white["n_feedback"], white["percent_of_group"]) == (30, 100)
    assert pd.isna(by_group.loc[("Ethnic group", "Asian", "housing"), "n_feedback"])
    assert ("Ethnic group", "Asian", "confidence") not in by_group.index  # never mentioned
    assert {"Sex", "Age band", "Ethnic group"} <= set(subgroup["dimension"])


def test_quotes_only_with_consent_and_scrubbed(tmp_path):
    scheme, scores, _ = fabricated_scheme(tmp_path)
    text = "\n".join(qualitative_section(scheme, scores, params=params(tmp_path)).text)
    quotes = [line for line in text.splitlines() if line.startswith(">")]
    assert len(quotes) == 3  # F000, F001 (confidence) and F030 (housing) consented
    assert "Mensah" not in text and "07700" not in text  # never consented
    housing = next(q for q in quotes if "housing" in q)
    assert "[name] helped me on [date] at [place]." in housing
    assert "Patel" not in text and "Riverside" not in text


def test_joint_display_matches_hand_calculation_and_applies_n_rule(tmp_path):
    """Welch interval checked against the textbook formula (Welch 1947; df by Satterthwaite)."""
    scheme, scores, change = fabricated_scheme(tmp_path)
    section = qualitative_section(scheme, scores, params=params(tmp_path))
    joint = tables_of(section)["feedback_joint_display"].set_index("theme")
    with_theme, others = change[:30], change[30:]
    difference = with_theme.mean() - others.mean()
    va, vb = with_theme.var(ddof=1) / 30, others.var(ddof=1) / 10
    df = (va + vb) ** 2 / (va**2 / 29 + vb**2 / 9)
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    row = joint.loc["confidence"]
    assert row["n_with_theme"] == 30 and row["n_others"] == 10
    assert_allclose(
        [row["mean_change_with_theme"], row["difference"], row["conf_low"], row["conf_high"]],
        [with_theme.mean(), difference, difference - half, difference + half],
        rtol=1e-12,
    )
    housing = joint.loc["housing"]  # 3 clients: mean and comparison withheld
    assert pd.isna(housing["n_with_theme"])
    assert pd.isna(housing["mean_change_with_theme"]) and pd.isna(housing["difference"])
    assert "Descriptive only" in " ".join(section.text)
    assert len(section.figures) == 1


def test_qualitative_without_feedback_is_insufficient(tmp_path):
    scheme, scores, _ = fabricated_scheme(tmp_path, feedback=False)
    with pytest.raises(InsufficientData, match="no feedback"):
        qualitative_section(scheme, scores, params=params(tmp_path))


@pytest.mark.slow
def test_sections_on_example_scheme(tmp_path, load_example):
    scheme_spec = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "valley")
    (folder,) = write_example_data(tmp_path, schemes=(scheme_spec,))
    scheme = load_example(folder)
    scheme_params = SchemeParams(scheme_id="valley", title="Valley", data_dir=folder)
    scored = score_scheme(scheme, scheme_params)
    section = qualitative_section(scheme, scored.scores, params=scheme_params)
    text = "\n".join(section.text)
    assert not re.search(r"\b(?:Mrs|Mr|Ms)\b|07700|\d{2}/\d{2}/\d{4}", text)


def test_quotes_cannot_inject_html_or_markdown(tmp_path):
    scheme, scores, _ = fabricated_scheme(tmp_path)
    feedback = scheme.feedback.copy()
    feedback.loc[0, "text"] = "it was <script>alert(1)</script> *great*\n\n# really"
    section = qualitative_section(
        SchemeData(**{**scheme.__dict__, "feedback": feedback}), scores, params=params(tmp_path)
    )
    quote = next(line for line in section.text if "alert" in line)
    assert r"\*great\*" in quote and r"\# really" in quote and "\n" not in quote
    shown = paragraph(quote)  # as the report shows it
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "*great*" in shown and "<em>" not in shown and "# really" in shown


def test_feedback_analysis_holds_only_scrubbed_consented_quotes(tmp_path):
    scheme, scores, _ = fabricated_scheme(tmp_path)
    result = analyse_feedback(scheme, scores, params=params(tmp_path))
    quotes = result.quotes.set_index("feedback_id")
    assert quotes.index.tolist() == ["F000", "F001", "F030"]
    # "Dr Patel helped me on 02/03/2024 at Riverside Centre." as given
    assert quotes.loc["F030", "text"] == "[name] helped me on [date] at [place]."
    assert quotes.loc["F030", "themes"] == "housing"
    assert result.joint_score == "swemwbs_metric"
