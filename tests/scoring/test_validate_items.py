"""Tests for spimpact.scoring.validate_items: every rejection path and the variant mapping."""

import numpy as np
import pandas as pd
import pytest

from spimpact.params import ScaleVariant
from spimpact.scoring import INSTRUMENTS, ITEM_COLUMNS, validate_items

VALID = {
    "swemwbs": [3] * 7,
    "wemwbs": [4] * 14,
    "ons4": [7, 8, 6, 3],
    "who5": [3, 2, 4, 1, 0],
    "eq5d5l": [1, 2, 3, 4, 5, 70],
    "mycaw": [5, 3, 4],
    "ucla3": [1, 2, 3],
    "ons_loneliness": [2],
}


def make_measures(rows):
    """Build a measures table from (measure, items) pairs; source_row starts at line 2."""
    records = []
    for number, (measure, items) in enumerate(rows):
        record = {"client_id": f"client-{number}", "measure": measure, "timepoint": 0}
        record.update({f"item_{i}": value for i, value in enumerate(items, start=1)})
        records.append(record)
    frame = pd.DataFrame(records)
    for column in ITEM_COLUMNS:
        frame[column] = frame[column] if column in frame else pd.NA
        try:
            frame[column] = frame[column].astype("Int64")
        except (TypeError, ValueError):
            # non-whole or text responses stay as recorded, like a CSV read without types
            frame[column] = frame[column].astype(object)
    frame["source_row"] = np.arange(2, len(frame) + 2)
    return frame


@pytest.mark.parametrize("measure", list(VALID))
def test_valid_rows_pass_unchanged(measure):
    check = validate_items(make_measures([(measure, VALID[measure])]))
    assert check.exclusions.empty
    assert check.non_standard.empty
    row = check.measures.iloc[0]
    items = [row[f"item_{i}"] for i in range(1, len(VALID[measure]) + 1)]
    assert items == VALID[measure]
    assert row["variant"] is None
    assert check.measures["item_1"].dtype == "Int64"


@pytest.mark.parametrize("measure", list(VALID))
@pytest.mark.parametrize("side", ["low", "high"])
def test_item_just_outside_coding_is_excluded_not_clipped(measure, side):
    instrument = INSTRUMENTS[measure]
    bad = instrument.low - 1 if side == "low" else instrument.high + 1
    items = [bad, *VALID[measure][1:]]
    check = validate_items(make_measures([(measure, items), (measure, VALID[measure])]))
    assert check.measures["source_row"].tolist() == [3]
    exclusion = check.exclusions.iloc[0]
    assert (exclusion["row"], exclusion["column"], exclusion["value"]) == (2, "item_1", str(bad))
    assert f"outside the {measure} coding {instrument.coding}" in exclusion["reason"]
    assert check.non_standard["n_rows"].tolist() == [1]


@pytest.mark.parametrize("measure", list(VALID))
def test_items_on_the_edges_of_the_coding_are_accepted(measure):
    instrument = INSTRUMENTS[measure]
    lows = [item.low for item in instrument.items]
    highs = [item.high for item in instrument.items]
    check = validate_items(make_measures([(measure, lows), (measure, highs)]))
    assert check.exclusions.empty
    assert len(check.measures) == 2


def test_eq5d_vas_has_its_own_range():
    items = [1, 1, 1, 1, 1, 101]
    check = validate_items(make_measures([("eq5d5l", items)]))
    assert check.exclusions.loc[0, "reason"] == "item_6 = 101 is outside the eq5d5l coding 0–100"
    assert check.non_standard.loc[0, "issue"] == "EQ-VAS outside its 0–100 coding"


def test_zero_to_ten_swemwbs_is_recognised():
    """A 0–10 version of the 1–5 scale (Wobi et al. 2025) is named as such."""
    rows = [("swemwbs", [0, 4, 10, 7, 6, 5, 8]), ("swemwbs", [9, 9, 3, 2, 2, 1, 1])]
    check = validate_items(make_measures(rows + [("swemwbs", VALID["swemwbs"])]))
    assert check.measures["source_row"].tolist() == [4]
    issue = check.non_standard.iloc[0]
    assert issue["issue"] == "items look like a 0–10 scale where 1–5 is expected (max observed 10)"
    assert issue["n_rows"] == 2
    assert issue["detail"] == (
        "values outside the coding: 0, 6, 7, 8, 9, 10; totals up to 40 where 7–35 is possible"
    )


@pytest.mark.parametrize(
    ("measure", "items", "column", "reason"),
    [
        ("swemwbs", [3, 3, 3, 3, 3, 3], "item_7", "item_7 missing (SWEMWBS needs all of its 7"),
        ("who5", [3, None, 3, None, 3], "item_2", "item_2, item_4 missing (WHO-5"),
        ("eq5d5l", [1, 1, None, 1, 1, 50], "item_3", "item_3 missing (EQ-5D-5L"),
        ("mycaw", [3, 2, None], "item_3", "item_3 missing (MYCaW"),
        ("ons4", [None, None, None, None], "item_1", "no ONS4 personal wellbeing item answered"),
        (
            "swemwbs",
            [3] * 14,
            "item_8",
            "item_8, item_9, item_10, item_11, item_12, item_13, item_14 "
            "filled but SWEMWBS has 7 items",
        ),
        ("ucla3", [1, 2, 2, 1], "item_4", "item_4 filled but UCLA 3-item loneliness has 3 items"),
        ("who5", [1, 2.5, 3, 3, 3], "item_2", "item_2 = 2.5 is not a whole number"),
        ("ucla3", ["often", 2, 2], "item_1", "item_1 = 'often' is not a whole number"),
        ("pam", [50], "measure", "unknown measure 'pam'; expected one of swemwbs"),
    ],
)
def test_each_rejection_path_gives_its_reason(measure, items, column, reason):
    frame = make_measures([(measure, items), ("ucla3", VALID["ucla3"])])
    check = validate_items(frame)
    assert check.measures["source_row"].tolist() == [3]
    assert check.exclusions[["row", "column"]].values.tolist() == [[2, column]]
    assert check.exclusions.loc[0, "reason"].startswith(reason)
    assert len(check.non_standard) == 1
    assert check.non_standard.loc[0, "measure"] == measure


def test_optional_items_may_be_blank():
    rows = [("mycaw", [3, None, 4]), ("ons4", [None, None, 5, None]), ("eq5d5l", [1, 2, 3, 4, 5])]
    check = validate_items(make_measures(rows))
    assert check.exclusions.empty
    assert len(check.measures) == 3


def test_blank_text_counts_as_missing():
    frame = make_measures([("mycaw", [3, 1, 4])])
    frame["item_2"] = frame["item_2"].astype(object)
    frame.loc[0, "item_2"] = "  "
    check = validate_items(frame)
    assert check.exclusions.empty
    assert check.measures.loc[0, "item_2"] is pd.NA


def test_several_problems_in_one_row_give_one_exclusion():
    check = validate_items(make_measures([("swemwbs", [0, 3, 3, 9, 3, 3])]))
    assert len(check.exclusions) == 1
    assert check.exclusions.loc[0, "reason"] == (
        "item_1 = 0 is outside the swemwbs coding 1–5; item_4 = 9 is outside the swemwbs "
        "coding 1–5; item_7 missing (SWEMWBS needs all of its 7 required items)"
    )
    assert sorted(check.non_standard["issue"]) == [
        "items look like a 0–10 scale where 1–5 is expected (max observed 9)",
        "wrong item count: required items missing (all of 7 needed)",
    ]


@pytest.mark.parametrize(
    ("observed", "expected"),
    # 1 + x * 4 / 10, halves up: 0->1.0, 1->1.4, 2->1.8, 3->2.2, 4->2.6, 5->3.0, 6->3.4,
    # 7->3.8, 8->4.2, 9->4.6, 10->5.0
    list(zip(range(11), [1, 1, 2, 2, 3, 3, 3, 4, 4, 5, 5], strict=True)),
)
def test_declared_zero_to_ten_variant_is_mapped_linearly(observed, expected):
    variant = ScaleVariant(observed_min=0, observed_max=10, reason="local 0-10 form")
    check = validate_items(
        make_measures([("swemwbs", [observed] * 7)]), variants={"swemwbs": variant}
    )
    assert check.exclusions.empty
    assert check.measures.loc[0, [f"item_{i}" for i in range(1, 8)]].tolist() == [expected] * 7
    assert check.measures.loc[0, "variant"] == "local 0-10 form"
    assert check.non_standard.loc[0, "issue"].startswith("recorded on a modified 0–10 scale")


def test_mapping_rounds_halves_up():
    # 1-7 onto 0-6 of MYCaW is a shift; 0-12 onto 0-6 halves: 1 -> 0.5 -> 1, 3 -> 1.5 -> 2.
    variant = ScaleVariant(observed_min=0, observed_max=12, reason="doubled")
    check = validate_items(make_measures([("mycaw", [1, 3, 5])]), variants={"mycaw": variant})
    assert check.measures.loc[0, ["item_1", "item_2", "item_3"]].tolist() == [1, 2, 3]


def test_variant_leaves_eq_vas_alone_and_other_measures_unmapped():
    variant = ScaleVariant(observed_min=0, observed_max=10, reason="0-10 form")
    rows = [("eq5d5l", [0, 10, 5, 5, 5, 80]), ("swemwbs", VALID["swemwbs"])]
    check = validate_items(make_measures(rows), variants={"eq5d5l": variant})
    eq5d = check.measures.iloc[0]
    assert [eq5d[f"item_{i}"] for i in range(1, 7)] == [1, 5, 3, 3, 3, 80]
    assert check.measures.iloc[1]["variant"] is None
    assert check.measures.iloc[1]["item_1"] == 3


def test_value_outside_declared_variant_is_excluded():
    variant = ScaleVariant(observed_min=0, observed_max=10, reason="0-10 form")
    check = validate_items(
        make_measures([("swemwbs", [11, 3, 3, 3, 3, 3, 3])]), variants={"swemwbs": variant}
    )
    assert check.measures.empty
    assert check.exclusions.loc[0, "reason"] == (
        "item_1 = 11 is outside the declared variant range 0–10"
    )
    assert check.non_standard.loc[0, "issue"] == "items outside the declared 0–10 variant range"


@pytest.mark.parametrize(("max_missing", "n_kept"), [(0, 1), (1, 2)])
def test_swemwbs_missing_item_rule_is_opt_in(max_missing, n_kept):
    rows = [
        ("swemwbs", VALID["swemwbs"]),
        ("swemwbs", [3, 3, None, 3, 3, 3, 3]),
        ("swemwbs", [3, 3, None, 3, None, 3, 3]),
    ]
    check = validate_items(make_measures(rows), max_missing_items={"swemwbs": max_missing})
    assert len(check.measures) == n_kept
    assert len(check.exclusions) == 3 - n_kept


def test_every_row_is_kept_or_excluded_and_input_untouched():
    rows = [(measure, items) for measure, items in VALID.items()]
    rows += [("swemwbs", [6] * 7), ("foo", [1]), ("who5", [1, 2])]
    frame = make_measures(rows)
    before = frame.copy()
    check = validate_items(frame)
    pd.testing.assert_frame_equal(frame, before)
    kept = set(check.measures["source_row"])
    excluded = set(check.exclusions["row"])
    assert kept.isdisjoint(excluded)
    assert kept | excluded == set(frame["source_row"])
    assert check.non_standard["n_rows"].sum() == len(excluded)


def test_non_standard_never_names_a_client():
    rows = [("swemwbs", [0, 10, 3, 3, 3, 3, 3]), ("who5", [1, 2]), ("pam", [1])]
    check = validate_items(make_measures(rows))
    text = " ".join(check.non_standard.astype(str).to_numpy().ravel())
    assert "client-" not in text


def test_missing_item_columns_count_as_blank():
    frame = make_measures([("ucla3", [1, 2, 3])])[
        ["client_id", "measure", "item_1", "item_2", "item_3", "source_row"]
    ]
    check = validate_items(frame)
    assert check.exclusions.empty
    assert list(check.measures.columns[-1:]) == ["variant"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"variants": {"pam": ScaleVariant(observed_min=0, observed_max=10, reason="x")}},
            "unknown measure 'pam'",
        ),
        (
            {"variants": {"ucla3": ScaleVariant(observed_min=5, observed_max=5, reason="x")}},
            "observed_max \\(5\\) must exceed observed_min \\(5\\)",
        ),
        ({"variants": {"ucla3": (0, 10)}}, "lacks 'observed_min'"),
        ({"max_missing_items": {"swemwbs": -1}}, "must be a whole number >= 0"),
        ({"max_missing_items": {"ons_loneliness": 1}}, "would allow a row with no answers"),
        ({"max_missing_items": {"pam": 1}}, "unknown measure 'pam'"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        validate_items(make_measures([("ucla3", [1, 2, 3])]), **kwargs)


def test_missing_required_column_raises():
    frame = make_measures([("ucla3", [1, 2, 3])]).drop(columns="source_row")
    with pytest.raises(ValueError, match="lacks column\\(s\\) source_row"):
        validate_items(frame)


def test_blank_measure_is_excluded_with_its_reason():
    frame = make_measures([("ucla3", VALID["ucla3"]), ("ucla3", VALID["ucla3"])])
    frame["measure"] = frame["measure"].astype(object)
    frame.loc[0, "measure"] = None
    check = validate_items(frame)
    assert check.exclusions.loc[0, "reason"].startswith("measure missing; expected one of")
    assert check.exclusions.loc[0, "value"] is None
    assert check.non_standard.loc[0, "issue"] == "measure not given"
