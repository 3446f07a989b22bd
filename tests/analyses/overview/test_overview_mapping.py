"""The data-quality account of a mapping file: every label counted, nothing identifying shown."""

import pandas as pd
import pytest

from spimpact.analyses.overview.mapping import (
    MAPPING_REPORT_COLUMNS,
    NOT_SHOWN,
    summarise_value_mapping,
)
from spimpact.analyses.overview.section import value_mapping_text
from spimpact.params import DisclosureRule
from spimpact.publish.disclosure import DEFAULT_RULE


def report(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(MAPPING_REPORT_COLUMNS))


REPORT = report(
    [
        ("clients", "referral_source", "Self referral", "self", 212, "mapped"),
        ("clients", "referral_source", "GP", "gp", 530, "mapped"),
        ("clients", "referral_source", "Walk in", None, 9, "exclude"),
        ("clients", "referral_source", "Mrs Jones, 07700 900123", None, 1, "exclude"),
        ("clients", "referral_source", "dropped in", None, 3, "exclude"),
        ("clients", "ethnic_category", "White - British", "A", 400, "mapped"),
        ("clients", "ethnic_category", "Irish", "B", 4, "mapped"),
        ("clients", "ethnic_category", "Gypsy or Irish Traveller", "C", 5, "mapped"),
        ("clients", "lsoa_code", "QV1 2AB", None, 40, "blank"),
        ("measures", "timepoint", "3 month review", "1", 150, "mapped"),
        ("feedback", "client_id", "VA-0001", None, 12, "exclude"),
    ]
)


def test_every_label_is_counted_and_small_or_identifying_labels_are_pooled():
    result = summarise_value_mapping(REPORT, DEFAULT_RULE)
    table = result.table
    assert list(table.columns) == list(MAPPING_REPORT_COLUMNS)
    labels = set(table["source_value"])
    # categories used by many people are shown, with rounded counts
    shown = table.set_index("source_value")
    assert shown.loc["Self referral", "n_rows"] == 210
    assert shown.loc["GP", "n_rows"] == 530
    assert shown.loc["3 month review", "target_value"] == "1"
    # a label typed for one person, or in 1-7 rows, never appears
    assert not {"Mrs Jones, 07700 900123", "dropped in", "Irish"} & labels
    # postcodes and identifiers are not coded fields: their values are never shown
    assert "QV1 2AB" not in labels and "VA-0001" not in labels
    assert (table["source_value"] == NOT_SHOWN).sum() == 2
    # unmapped labels in 1-7 rows are pooled (1 + 3 = 4 rows: suppressed), and 'Walk in'
    # (9 rows) is suppressed with it, being the only other cell that would reveal it
    referral = table[table["column"] == "referral_source"]
    assert referral["source_value"].tolist()[:3] == ["GP", "Self referral", "Walk in"]
    assert referral["action"].tolist() == ["mapped", "mapped", "exclude", "exclude"]
    assert referral["n_rows"].tolist()[:2] == [530, 210]
    assert referral["n_rows"].iloc[2:].isna().all()
    # raw totals for the maturity score
    assert result.n_rows_mapped == 212 + 530 + 400 + 4 + 5 + 150
    assert result.n_rows_not_mapped == 9 + 1 + 3 + 40 + 12
    assert result.n_labels_not_mapped == 5


def test_pooled_small_labels_are_suppressed_with_their_neighbour_when_alone():
    """Ethnicity: 'Irish' (4 rows, mapped to B) is pooled; the pool of 4 is suppressed
    (1-7), and since the field's rows add up to a published total, the next smallest
    cell of the field is suppressed too (secondary suppression)."""
    table = summarise_value_mapping(REPORT, DEFAULT_RULE).table
    ethnic = table[table["column"] == "ethnic_category"].reset_index(drop=True)
    assert ethnic["source_value"].str.startswith("(other labels").sum() == 2
    assert ethnic["n_rows"].isna().sum() == 2
    assert ethnic.loc[ethnic["source_value"] == "White - British", "n_rows"].item() == 400


def test_counts_follow_the_schemes_rule():
    strict = DisclosureRule(threshold=10, rounding=10)
    table = summarise_value_mapping(REPORT, strict).table
    assert "Walk in" not in set(table["source_value"])  # 9 rows: within 1-10 now
    published = table["n_rows"].dropna().astype(int)
    assert (published % 10 == 0).all()
    assert sorted(published)[-2:] == [400, 530]


def test_text_names_the_unmapped_labels_and_what_happened_to_their_rows():
    result = summarise_value_mapping(REPORT, DEFAULT_RULE)
    text = value_mapping_text(result, DEFAULT_RULE)
    assert "'Walk in' (count withheld, clients.referral_source) not mapped: excluded" in text
    assert "Mrs Jones" not in text and "07700" not in text and "QV1 2AB" not in text
    everything_mapped = summarise_value_mapping(REPORT[REPORT["action"] == "mapped"], DEFAULT_RULE)
    assert value_mapping_text(everything_mapped, DEFAULT_RULE).endswith(
        "and every label was placed."
    )


def test_no_report_no_account():
    assert summarise_value_mapping(None, DEFAULT_RULE) is None
    assert summarise_value_mapping(REPORT.iloc[:0], DEFAULT_RULE) is None
    with pytest.raises(ValueError, match="lacks the columns"):
        summarise_value_mapping(REPORT.drop(columns=["action"]), DEFAULT_RULE)
