import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.analyses.measures import score_scheme
from spimpact.analyses.qualitative.analysis import (
    community_section,
    qualitative_section,
    scrub_text,
    split_themes,
)
from spimpact.io import SchemeData, load_scheme
from spimpact.params import SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData
from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data

# Phone numbers, postcodes and NHS numbers below are from ranges reserved for
# fiction and testing (Ofcom drama numbers 07700 900xxx, 020 7946 0xxx, 0113 496 0xxx,
# 01632 960xxx) or are made up; 943 476 5919 is the NHS Digital documentation example.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # titles and capitalised names
        ("Mrs Jane Smith rang me.", "[name] rang me."),
        (
            "Dr. J. R. Patel-Hughes at the surgery referred me.",
            "[name] at the surgery referred me.",
        ),
        ("On Friday I met Mr O'Neil.", "On Friday I met [name]."),
        ("Prof McDonald and Cllr Begum came.", "[name] and [name] came."),
        ("Margaret told us: I feel better.", "[name] told us: I feel better."),
        (
            "My friend Aisha O'Connor-Begum and Tomasz come to the CBT group.",
            "My friend [name] and [name] come to the CBT group.",
        ),
        ("Sian's daughter came along.", "[name]'s daughter came along."),
        ("Walking helped. John helped too.", "Walking helped. [name] helped too."),
        # an unknown capitalised word opening a sentence is removed: it may be a name
        ("Kwame helped. Sewing helped.", "[name] helped. [name] helped."),
        # UK phone formats
        ("Ring 07700 900123 today", "Ring [phone] today"),
        ("Ring 07700900123.", "Ring [phone]."),
        ("Ring 07700-900-123.", "Ring [phone]."),
        ("Call +44 (0)20 7946 0958 now", "Call [phone] now"),
        ("Call +447700900123 now", "Call [phone] now"),
        ("Call (01632) 960 001 now", "Call [phone] now"),
        ("Call 0113 496 0000 2 times.", "Call [phone] 2 times."),
        ("Call 0113.496.0000 please", "Call [phone] please"),
        # dates in many formats
        ("Seen 12/03/2024.", "Seen [date]."),
        ("Seen 1.2.24 and 2024-05-01.", "Seen [date] and [date]."),
        ("Seen on 3rd March 2024.", "Seen on [date]."),
        ("Seen on Tuesday 4th of June.", "Seen on [date]."),
        ("Seen on March 12th, 2023.", "Seen on [date]."),
        ("Seen on 12 Mar 24 again.", "Seen on [date] again."),
        ("Started in April 2023.", "Started in [date]."),
        ("Seen on Sept. 5th.", "Seen on [date]."),
        # postcodes
        ("I live in LS6 2QT.", "I live in [postcode]."),
        ("Postcode ls62qt please", "Postcode [postcode] please"),
        ("Near M1 1AE and in LS6 too.", "Near [postcode] and in [postcode] too."),
        # e-mails and links
        ("Email jane.o'neil@example.co.uk now.", "Email [email] now."),
        ("See www.example.org/page.", "See [link]."),
        # NHS numbers
        ("My NHS number is 943 476 5919.", "My NHS number is [NHS number]."),
        ("NHS no 9434765919", "NHS no [NHS number]"),
        ("NHS no 943-476-5919", "NHS no [NHS number]"),
        # street addresses and places
        ("I live at Flat 3, 27 Hyde Park Road.", "I live at [address]."),
        ("Post to 4a Elm St. please", "Post to [address] please"),
        ("She lives on Elm Grove near Otley.", "She lives on [address] near [place]."),
        ("I went to St Mark's Church Hall.", "I went to [place]."),
        ("Thanks to all at Riverside Community Centre.", "Thanks to all at [place]."),
    ],
)
def test_scrub_text_removes_identifiers(text, expected):
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I feel more confident going out on my own now.",
        "I went to the NHS walk on Monday with my GP's advice, in May.",
        "I scored 14 and came to 3 of 7 sessions in 2019.",
        "The walking group got me moving again.",
        "My EQ5D and SF36 scores went up.",
        "Before this I hardly spoke to anyone from one week to the next.",
    ],
)
def test_scrub_text_keeps_harmless_text(text):
    assert scrub_text(text) == text


@pytest.mark.parametrize("missing", [None, np.nan])
def test_scrub_text_missing_gives_empty_string(missing):
    assert scrub_text(missing) == ""


def test_scrub_text_leaves_no_digits_of_identifiers():
    text = (
        "Mrs Grace Mensah (NHS 943 476 5919, tel 07700 900456, grace@example.com) of "
        "12 Acacia Avenue, Leeds LS6 2QT first came on 02/03/2024."
    )
    scrubbed = scrub_text(text)
    assert not re.search(r"\d", scrubbed)
    for leaked in ("Grace", "Mensah", "Acacia", "Leeds", "example"):
        assert leaked not in scrubbed


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


def test_community_section_counts_and_headline(tmp_path):
    scheme, _, _ = fabricated_scheme(tmp_path)
    section = community_section(scheme, params=params(tmp_path))
    activity = tables_of(section)["support_by_activity"].set_index("activity")
    assert activity.loc["Arts and culture", "n_clients"] == 30
    assert pd.isna(activity.loc["Housing", "n_clients"])  # 3 clients: suppressed
    assert activity.loc["Volunteering", "n_clients"] == 0
    headline = section.headline.set_index("measure")
    assert tuple(section.headline.columns) == HEADLINE_COLUMNS
    assert (section.headline["outcome_level"] == "community").all()
    assert headline.loc["n_clients_connected", "estimate"] == 30
    assert headline.loc["pct_clients_connected", "estimate"] == 75  # 30 of 40
    assert headline.loc["n_organisations", "estimate"] == 6
    assert headline.loc["n_clients_connected", "n"] == 40


def test_community_without_support_offered_is_insufficient(tmp_path):
    scheme, _, _ = fabricated_scheme(tmp_path, support=False)
    with pytest.raises(InsufficientData, match="support offered"):
        community_section(scheme, params=params(tmp_path))


@pytest.mark.slow
def test_sections_on_example_scheme(tmp_path):
    scheme_spec = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "valley")
    (folder,) = write_example_data(tmp_path, schemes=(scheme_spec,))
    scheme = load_scheme(folder, pseudonym_key="test-key")
    scheme_params = SchemeParams(scheme_id="valley", title="Valley", data_dir=folder)
    scored = score_scheme(scheme, scheme_params)
    section = qualitative_section(scheme, scored.scores, params=scheme_params)
    text = "\n".join(section.text)
    assert not re.search(r"\b(?:Mrs|Mr|Ms)\b|07700|\d{2}/\d{2}/\d{4}", text)
    community = community_section(scheme, params=scheme_params)
    assert community.headline["estimate"].notna().all()


_UK_NUMBER_PREFIXES = ("07700 900", "020 7946 0", "0113 496 0", "01632 960", "+44 7700 900")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    prefix=st.sampled_from(_UK_NUMBER_PREFIXES),
    tail=st.integers(min_value=0, max_value=999),
    separator=st.sampled_from([" ", "-", "", "."]),
    before=st.sampled_from(["Call me on", "ring", "My number:", "(tel."]),
    after=st.sampled_from([".", " today.", ", thanks", ")", " or email me"]),
)
def test_scrub_text_removes_any_uk_phone_layout(prefix, tail, separator, before, after):
    number = (prefix + f"{tail:03d}").replace(" ", separator)
    scrubbed = scrub_text(f"{before} {number}{after}")
    assert "[phone]" in scrubbed
    assert not re.search(r"\d{3}", scrubbed)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(digits=st.from_regex(r"[1-9]\d{9}", fullmatch=True), layout=st.sampled_from([0, 1, 2]))
def test_scrub_text_removes_any_ten_digit_nhs_number(digits, layout):
    number = [
        digits,
        f"{digits[:3]} {digits[3:6]} {digits[6:]}",
        f"{digits[:3]}-{digits[3:6]}-{digits[6:]}",
    ][layout]
    scrubbed = scrub_text(f"NHS number {number} on file")
    assert scrubbed == "NHS number [NHS number] on file"


def test_quotes_cannot_inject_html_or_markdown(tmp_path):
    scheme, scores, _ = fabricated_scheme(tmp_path)
    feedback = scheme.feedback.copy()
    feedback.loc[0, "text"] = "it was <script>alert(1)</script> *great*\n\n# really"
    section = qualitative_section(
        SchemeData(**{**scheme.__dict__, "feedback": feedback}), scores, params=params(tmp_path)
    )
    quote = next(line for line in section.text if "alert" in line)
    assert "<script>" not in quote and "&lt;script&gt;" in quote
    assert r"\*great\*" in quote and r"\# really" in quote and "\n" not in quote
