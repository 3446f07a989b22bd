"""The data-quality account of a mapping file: every label counted, nothing identifying shown."""

import pandas as pd
import pytest

from spimpact.analyses.overview.mapping import (
    BLANK,
    NOT_IN_LOOKUP,
    NOT_SHOWN,
    VALUE_MAPPING_COLUMNS,
    summarise_value_mapping,
)
from spimpact.analyses.overview.section import value_mapping_text
from spimpact.mapping import MAPPING_REPORT_COLUMNS
from spimpact.params import DisclosureRule
from spimpact.publish.disclosure import DEFAULT_RULE


def report(rows) -> pd.DataFrame:
    """A mapping report as ``load_scheme(mapping=...)`` returns it."""
    frame = pd.DataFrame(
        rows, columns=["table", "column", "source_value", "target_value", "n_rows", "action"]
    )
    frame["source"] = "export.csv"
    frame["source_column"] = "Header of " + frame["column"]
    frame["declared"] = frame["action"] == "mapped"
    return frame[list(MAPPING_REPORT_COLUMNS)]


REPORT = report(
    [
        ("clients", "referral_source", "Self referral", "self", 212, "mapped"),
        ("clients", "referral_source", "GP", "gp", 530, "mapped"),
        ("clients", "referral_source", "Walk in", None, 9, "excluded"),
        ("clients", "referral_source", "Mrs Jones, 07700 900123", None, 1, "excluded"),
        ("clients", "referral_source", "dropped in", None, 3, "excluded"),
        ("clients", "ethnic_category", "White - British", "A", 400, "mapped"),
        ("clients", "ethnic_category", "Irish", "B", 4, "mapped"),
        ("clients", "ethnic_category", "Gypsy or Irish Traveller", "C", 5, "mapped"),
        ("clients", "ethnic_category", "", None, 30, "missing"),
        ("clients", "consent_contact", "Y", "Y", 500, "unchanged"),
        ("clients", "lsoa_code", None, None, 40, "blank"),
        ("clients", "referral_date", None, None, 700, "derived"),
        ("measures", "timepoint", "3 month review", "1", 150, "mapped"),
        ("feedback", "client_id", "VA-0001", None, 12, "excluded"),
    ]
)


def test_every_label_is_counted_and_small_or_identifying_labels_are_pooled():
    result = summarise_value_mapping(REPORT, DEFAULT_RULE)
    table = result.table
    assert list(table.columns) == list(VALUE_MAPPING_COLUMNS)
    labels = set(table["source_value"])
    # categories used by many people are shown, with rounded counts
    shown = table.set_index("source_value")
    assert shown.loc["Self referral", "n_rows"] == 210
    assert shown.loc["GP", "n_rows"] == 530
    assert shown.loc["3 month review", "target_value"] == "1"
    # a label typed for one person, or in 1-7 rows, never appears
    assert not {"Mrs Jones, 07700 900123", "dropped in", "Irish"} & labels
    # identifiers are not coded fields: their values are never shown; postcodes not in
    # the lookup and blank cells are counted without a value; rule bookkeeping is left out
    assert "VA-0001" not in labels
    assert (table["source_value"] == NOT_SHOWN).sum() == 1
    assert shown.loc[NOT_IN_LOOKUP, "n_rows"] == 40 and shown.loc[BLANK, "n_rows"] == 30
    assert "referral_date" not in set(table["column"])
    assert shown.loc["Y", "action"] == "unchanged"
    # unmapped labels in 1-7 rows are pooled (1 + 3 = 4 rows: suppressed), and 'Walk in'
    # (9 rows) is suppressed with it, being the only other cell that would reveal it
    referral = table[table["column"] == "referral_source"]
    assert referral["source_value"].tolist()[:3] == ["GP", "Self referral", "Walk in"]
    assert referral["action"].tolist() == ["mapped", "mapped", "excluded", "excluded"]
    assert referral["n_rows"].tolist()[:2] == [530, 210]
    assert referral["n_rows"].iloc[2:].isna().all()
    # raw totals for the maturity score: labels only (blank cells count as completeness)
    assert result.n_rows_placed == 212 + 530 + 400 + 4 + 5 + 500 + 150
    assert result.n_rows_not_placed == 9 + 1 + 3 + 12
    assert result.n_labels_not_placed == 4


def test_small_labels_are_pooled_per_field_whatever_their_code():
    """Ethnicity: 'Irish' (4 rows, B) and 'Gypsy or Irish Traveller' (5 rows, C) are each
    in 1-7 rows: pooled into one row of 9 (published as 10) mapped to several codes."""
    table = summarise_value_mapping(REPORT, DEFAULT_RULE).table
    ethnic = table[table["column"] == "ethnic_category"]
    assert ethnic[["source_value", "target_value", "n_rows"]].values.tolist() == [
        ["White - British", "A", 400],
        ["(other labels, each in 7 rows or fewer)", "(several codes)", 10],
        ["(blank)", None, 30],
    ]


def test_a_lone_small_cell_is_suppressed_with_its_neighbour():
    """Secondary suppression within a field: the field's rows add up to a published
    total, so one suppressed cell would be recovered by subtraction."""
    sex = report(
        [
            ("clients", "sex", "Female", "female", 95, "mapped"),
            ("clients", "sex", "Male", "male", 40, "mapped"),
            ("clients", "sex", "Non-binary", "other", 2, "mapped"),
        ]
    )
    table = summarise_value_mapping(sex, DEFAULT_RULE).table
    assert table["n_rows"].tolist()[0] == 95
    assert table["n_rows"].iloc[1:].isna().all()


def test_counts_follow_the_schemes_rule():
    strict = DisclosureRule(threshold=10, rounding=10)
    table = summarise_value_mapping(REPORT, strict).table
    assert "Walk in" not in set(table["source_value"])  # 9 rows: within 1-10 now
    published = table["n_rows"].dropna().astype(int)
    assert (published % 10 == 0).all()
    assert sorted(published)[-3:] == [400, 500, 530]


def test_text_names_the_unmapped_labels_and_what_happened_to_their_rows():
    result = summarise_value_mapping(REPORT, DEFAULT_RULE)
    text = value_mapping_text(result, DEFAULT_RULE)
    assert "'Walk in' (count withheld, clients.referral_source) not mapped: excluded" in text
    assert "Header of lsoa_code of about 40 rows not found in the postcode lookup" in text
    assert "Mrs Jones" not in text and "07700" not in text
    everything_mapped = summarise_value_mapping(REPORT[REPORT["action"] == "mapped"], DEFAULT_RULE)
    assert value_mapping_text(everything_mapped, DEFAULT_RULE).endswith(
        "and every label was placed."
    )


def test_no_report_no_account():
    assert summarise_value_mapping(None, DEFAULT_RULE) is None
    assert summarise_value_mapping(REPORT.iloc[:0], DEFAULT_RULE) is None
    with pytest.raises(ValueError, match="lacks the columns"):
        summarise_value_mapping(REPORT.drop(columns=["action"]), DEFAULT_RULE)


def test_codes_of_a_coded_gp_extract_are_listed_with_what_they_gave():
    """SNOMED concept ids are long numbers: listed codes are shown all the same, with
    the referral or item they gave, or why they were not used."""
    coded = report(
        [
            ("clients", "code", "871731000000106", "referral accepted", 1500, "mapped"),
            ("clients", "code", "871711000000103", "referral declined", 180, "not_used"),
            ("clients", "code", None, "(other codes)", 40, "not_used"),
            ("measures", "code", "RVSP0001", "ons4 item 1", 1770, "mapped"),
        ]
    )
    coded["declared"] = coded["source_value"].notna()
    table = summarise_value_mapping(coded, DEFAULT_RULE).table.set_index("source_value")
    assert table.loc["871731000000106", ["target_value", "n_rows"]].tolist() == [
        "referral accepted",
        1500,
    ]
    assert table.loc["871711000000103", "action"] == "not_used"
    assert table.loc["(other codes)", "n_rows"] == 40
    assert table.loc["RVSP0001", "target_value"] == "ons4 item 1"
