"""Overview sections on the example schemes: disclosure control, reasons, the XmR chart."""

import numpy as np
import pytest

from spimpact.analyses.overview import (
    data_quality_section,
    overview_section,
    referrals_spc_section,
)
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData


@pytest.fixture(scope="module")
def valley(example_data, load_example):
    return load_example(example_data / "valley"), SchemeParams(
        scheme_id="valley", title="Valley", data_dir=example_data / "valley"
    )


def test_overview_tables_never_show_counts_of_one_to_seven(valley):
    scheme, params = valley
    section = overview_section(scheme, params=params)
    for table in section.tables:
        counts = table.frame["n"].dropna().astype(int)
        assert not counts.between(1, 7).any(), table.name
        assert (counts % 5 == 0).all(), table.name


def test_data_quality_counts_every_exclusion_reason(valley):
    scheme, params = valley
    section = data_quality_section(scheme, params=params)
    reconciliation = next(t for t in section.tables if t.name == "reconciliation").frame
    assert reconciliation.set_index("table").loc["measures", "n_excluded"] > 0
    reasons = next(t for t in section.tables if t.name == "exclusion_reasons").frame
    assert reasons["reason"].str.contains("outside the swemwbs coding").any()
    assert reasons["reason"].str.contains("label not in the mapping's values").any()
    assert not reasons["reason"].str.contains(r"= \d", regex=True).any()  # values stay internal


def test_data_quality_counts_the_labels_of_the_mapping_file(valley):
    """The workbook's 9 'See notes' referrals (spimpact.synthetic.writing.N_UNPLACED) are
    counted as not mapped and excluded, rounded to 10."""
    scheme, params = valley
    section = data_quality_section(scheme, params=params)
    mapping = next(t for t in section.tables if t.name == "value_mapping").frame
    unplaced = mapping[mapping["source_value"] == "See notes"]
    assert unplaced[["column", "n_rows", "action"]].values.tolist() == [
        ["referral_source", 10, "excluded"]
    ]
    assert (mapping["action"] == "mapped").sum() > 20
    counts = mapping["n_rows"].dropna().astype(int)
    assert not counts.between(1, 7).any() and (counts % 5 == 0).all()
    text = " ".join(section.text)
    assert "'See notes' (about 10 rows, clients.referral_source) not mapped: excluded" in text


def test_small_scheme_referrals_chart_degrades_to_a_sentence(valley):
    scheme, params = valley
    with pytest.raises(InsufficientData, match="too few to chart"):
        referrals_spc_section(scheme, params=params)


def test_referrals_chart_uses_rounded_monthly_counts(example_data, load_example):
    scheme = load_example(example_data / "hillcrest")
    params = SchemeParams(scheme_id="hillcrest", title="H", data_dir=example_data / "hillcrest")
    section = referrals_spc_section(scheme, params=params)
    values = section.tables[0].frame["referrals_rounded"].to_numpy()
    assert len(values) >= 12 and np.all(values % 5 == 0) and np.all(values >= 10)


def test_data_quality_states_which_referral_episode_is_analysed(valley):
    """Issue 15: the analyses state which episode they use; counts pass disclosure control."""
    from spimpact.analyses.overview.section import episode_text

    scheme, params = valley
    text = " ".join(data_quality_section(scheme, params=params).text)
    assert "Each client has one referral" in text or "Referral episodes:" in text
    rule = params.disclosure.rule()
    few = episode_text("first", (3, 4), rule)
    assert "each client's first referral episode" in few and "`episodes: first`" in few
    assert "A few clients" in few and "(count withheld)" in few
    assert " 3 " not in few and " 4 " not in few
    many = episode_text("last", (12, 14), rule)
    assert "About 10 clients" in many and "(about 15)" in many and "last" in many
    assert "No client was referred more than once" in episode_text("first", (0, 0), rule)
    assert episode_text("first", None, rule).startswith("Each client has one referral")
