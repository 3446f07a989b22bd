"""The GP-attendance report section (``spimpact.analyses.attendance.section``)."""

from dataclasses import replace
from pathlib import Path

import matplotlib
import pytest
from scipy import stats

from spimpact.analyses.attendance.analysis import analyse_attendance
from spimpact.analyses.attendance.section import attendance_section
from spimpact.io import load_scheme
from spimpact.params import ComparisonParams, SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData
from spimpact.synthetic import SchemeSpec, write_example_data

matplotlib.use("Agg")


def _params(**comparison) -> SchemeParams:
    return SchemeParams(
        scheme_id="tiny",
        title="Tiny Link",
        data_dir=Path("."),
        comparison=ComparisonParams(**comparison),
    )


@pytest.fixture(scope="module")
def small_scheme(tmp_path_factory):
    spec = SchemeSpec("tiny", "Tiny Link", 400, ("swemwbs",), n_areas=20)
    (folder,) = write_example_data(tmp_path_factory.mktemp("example"), schemes=(spec,))
    return load_scheme(folder, pseudonym_key="test-key")


@pytest.fixture(scope="module")
def small_result(small_scheme):
    return analyse_attendance(small_scheme, params=_params())


@pytest.fixture(scope="module")
def small_section(small_scheme, small_result):
    return attendance_section(small_scheme, params=_params(), result=small_result)


def test_section_tables_are_disclosure_controlled(small_section):
    names = [t.name for t in small_section.tables]
    assert names == [
        "attendance_before_after",
        "attendance_estimates",
        "attendance_sensitivity",
        "attendance_honest_bounds",
        "attendance_matching_sample",
        "attendance_matching_balance",
    ]
    tables = {t.name: t.frame for t in small_section.tables}
    counts = tables["attendance_before_after"]["n_people"].dropna().astype(int)
    assert (counts % 5 == 0).all()
    sensitivity = tables["attendance_sensitivity"]["n_clients"].dropna().astype(int)
    assert ((sensitivity % 5 == 0) & ((sensitivity == 0) | (sensitivity > 7))).all()
    sample = tables["attendance_matching_sample"][["n_comparison_patients", "n_clients"]]
    values = sample.stack().dropna().astype(int)
    assert ((values % 5 == 0) & ((values == 0) | (values > 7))).all()
    assert not any("patient_id" in t.frame.columns for t in small_section.tables)


def test_section_headline_and_story(small_section, small_result):
    headline = small_section.headline
    assert list(headline.columns) == list(HEADLINE_COLUMNS)
    assert headline["outcome_level"].eq("system").all()
    assert headline["measure"].tolist() == [
        "gp_appointments_per_1000_per_year",
        "gp_appointments_pct_change",
        "gp_cost_averted_gbp_per_1000_per_year",
    ]
    did = small_result.estimates.set_index("term").loc["did"]
    assert headline.loc[0, "estimate"] == pytest.approx(did["estimate"] * 12000)
    gp = small_result.estimates.set_index("term").loc["did_gp"]
    assert headline.loc[2, "estimate"] == pytest.approx(-gp["estimate"] * 12000 * 48.0)
    assert headline.loc[2, "conf_low"] == pytest.approx(-gp["conf_high"] * 12000 * 48.0)
    text = " ".join(small_section.text)
    for phrase in (
        "regression to the mean",
        "2024/25",
        "80% power",
        # the estimand in words, and every check the issue asks the report to show
        "over months 3 to 11 after referral",
        "the 6 months from \u22123 to 2 are left out",
        "**Does it depend on the design?**",
        "**Washout check.**",
        "**Placebo.**",
        "**Trends before referral.**",
        "**Honest bounds.**",
        "wild cluster bootstrap",
        "Abadie & Spiess 2022",
        "Holm's method",
    ):
        assert phrase in text, phrase
    assert len(small_section.figures) == 2


def test_sensitivity_table_puts_the_primary_beside_its_alternatives(small_section, small_result):
    """The primary row first, then one row per alternative design, on the report's scale."""
    table = next(t.frame for t in small_section.tables if t.name == "attendance_sensitivity")
    assert len(table) == 1 + len(small_result.sensitivity) >= 5
    assert table["design"].iloc[0].endswith("(primary)")
    did = small_result.estimates.set_index("term").loc["did", "estimate"]
    assert table["estimate"].iloc[0] == pytest.approx(round(did * 12000), abs=0.5)
    sentence = next(t for t in small_section.text if t.startswith("**Does it depend"))
    assert "survive" in sentence


def test_without_comparison_falls_back_to_before_after_with_warning(small_scheme):
    params = _params(enabled=False)
    section = attendance_section(small_scheme, params=params)
    assert section.text[0].startswith("**Warning: no comparison group.**")
    assert "switched off in this scheme's parameters" in section.text[0]
    assert "regression to the mean" in section.text[0]
    assert "not an effect estimate" in section.headline.loc[0, "outcome"]
    assert [t.name for t in section.tables] == ["attendance_before_after", "attendance_estimates"]


def test_without_gp_data_the_section_says_why(small_scheme):
    with pytest.raises(InsufficientData, match="No GP appointment data"):
        attendance_section(replace(small_scheme, gp_appointments=None), params=_params())


def test_minimum_detectable_change_is_stated_per_1000_per_year(small_section, small_result):
    """(z_0.975 + z_0.8) x SE of the primary estimate (Bloom 1995), per 1,000 clients per year."""
    std_error = small_result.estimates.set_index("term").loc["did", "std_error"]
    by_hand = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * std_error * 12000
    words = f"a change of about {by_hand:,.0f} appointments per 1,000 clients per year"
    assert words.replace("-", "\u2212") in " ".join(small_section.text)
