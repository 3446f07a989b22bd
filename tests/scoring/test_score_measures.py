"""score_measures end to end on a small scheme table covering every instrument."""

import pandas as pd
import pytest

from spimpact.params import ScaleVariant
from spimpact.scoring import SCORE_COLUMNS, SCORES, score_measures, validate_items

ROWS = [
    ("a", "swemwbs", 0, [1, 2, 3, 4, 5, 4, 4]),
    ("a", "swemwbs", 1, [5, 5, 5, 5, 5, 5, 5]),
    ("a", "wemwbs", 0, [3] * 14),
    ("b", "ons4", 0, [4, 5, 9, 6]),
    ("b", "who5", 0, [3, 3, 2, 2, 3]),
    ("b", "eq5d5l", 0, [2, 1, 2, 3, 2, 65]),
    ("c", "eq5d5l", 0, [1, 1, 1, 1, 1]),
    ("c", "mycaw", 0, [5, None, 4]),
    ("c", "ucla3", 0, [2, 2, 2]),
    ("c", "ons_loneliness", 0, [1]),
    ("c", "swemwbs", 0, [0, 10, 3, 3, 3, 3, 3]),
]
CLIENTS = pd.DataFrame(
    {
        "client_id": ["a", "b", "c"],
        "age": [30, 50, None],
        "age_band": ["25-34", "45-54", "75+"],
        "sex": ["female", "female", "male"],
    }
)
EXPECTED = {
    ("a", 0, "swemwbs_raw"): 23,
    ("a", 0, "swemwbs_metric"): 20.73,
    ("a", 1, "swemwbs_raw"): 35,
    ("a", 1, "swemwbs_metric"): 35.0,
    ("a", 0, "wemwbs_total"): 42,
    ("b", 0, "ons4_life_satisfaction"): 4,
    ("b", 0, "ons4_worthwhile"): 5,
    ("b", 0, "ons4_happiness"): 9,
    ("b", 0, "ons4_anxiety"): 6,
    ("b", 0, "who5_raw"): 13,
    ("b", 0, "who5_pct"): 52,
    ("b", 0, "eq5d_vas"): 65,
    ("c", 0, "mycaw_concern_1"): 5,
    ("c", 0, "mycaw_wellbeing"): 4,
    ("c", 0, "ucla3_total"): 6,
    ("c", 0, "ons_loneliness"): 1,
}


def make_measures(rows=ROWS):
    records = []
    for client, measure, timepoint, items in rows:
        record = {
            "client_id": client,
            "measure": measure,
            "timepoint": timepoint,
            "date": "2026-01-05",
        }
        record.update({f"item_{i}": v for i, v in enumerate(items, start=1)})
        records.append(record)
    frame = pd.DataFrame(records)
    for i in range(1, 15):
        frame[f"item_{i}"] = frame.get(f"item_{i}", pd.NA)
        frame[f"item_{i}"] = frame[f"item_{i}"].astype("Int64")
    frame["source_row"] = range(2, len(frame) + 2)
    return frame


def _values(scored):
    return {(r.client_id, r.timepoint, r.score): r.value for r in scored.scores.itertuples()}


def test_every_instrument_is_scored_exactly():
    scored = score_measures(make_measures(), clients=CLIENTS)
    values = _values(scored)
    for key, expected in EXPECTED.items():
        assert values[key] == expected, key
    assert list(scored.scores.columns) == list(SCORE_COLUMNS)
    assert set(scored.scores["score"]) <= set(SCORES)
    # DSU (default), values from tests/reference/scoring/dsu_eq5d5l_to_3l_uk.csv:
    # client b is 50 and female (state 21232), client c only has the band 75+ and is male
    assert values[("b", 0, "eq5d5l_index")] == 0.628474024477726
    assert values[("c", 0, "eq5d5l_index")] == 0.988528544847313
    assert scored.eq5d_value_set == "dsu_5l_to_3l"
    assert "NICE" in scored.eq5d_value_set_label


def test_modified_scale_row_is_excluded_with_its_reason():
    scored = score_measures(make_measures(), clients=CLIENTS)
    assert scored.exclusions["row"].tolist() == [12]
    assert "outside the swemwbs coding 1–5" in scored.exclusions.loc[0, "reason"]
    assert scored.non_standard["issue"].str.contains("0–10 scale").any()
    assert not scored.scores["non_standard"].any()


def test_declared_variant_is_mapped_and_flagged():
    variants = {"swemwbs": ScaleVariant(observed_min=0, observed_max=10, reason="0-10 form")}
    scored = score_measures(make_measures(ROWS[-1:]), variants=variants)
    # 0,10,3,3,3,3,3 -> 1,5,2,2,2,2,2 (1 + x * 0.4, halves up) = 16
    assert scored.scores.loc[scored.scores["score"] == "swemwbs_raw", "value"].item() == 16
    assert scored.scores["non_standard"].all()
    assert scored.scores["note"].str.contains("0-10 form").all()


def test_checked_input_is_not_mapped_twice():
    variants = {"swemwbs": ScaleVariant(observed_min=0, observed_max=10, reason="0-10 form")}
    checked = validate_items(make_measures(ROWS[-1:]), variants=variants)
    scored = score_measures(checked, variants=variants)
    assert scored.scores.loc[scored.scores["score"] == "swemwbs_raw", "value"].item() == 16


def test_dsu_rows_without_age_or_sex_are_listed():
    clients = CLIENTS.assign(
        sex=["female", "unknown", "male"], age_band=[None, None, None], age=[30, 50, None]
    )
    scored = score_measures(make_measures(), clients=clients)
    eq5d = scored.exclusions[scored.exclusions["reason"].str.startswith("EQ-5D index")]
    assert eq5d["row"].tolist() == [7, 8]
    assert eq5d["column"].tolist() == ["sex", "age"]
    assert ("b", 0, "eq5d_vas") in _values(scored)  # EQ-VAS still scored


def test_value_set_other_than_dsu_needs_no_clients():
    values = _values(score_measures(make_measures(), eq5d_value_set="england_devlin2018"))
    assert values[("b", 0, "eq5d5l_index")] == 0.730
    assert values[("c", 0, "eq5d5l_index")] == 1.0


def test_opt_in_swemwbs_missing_item_rule():
    rows = [("a", "swemwbs", 0, [3, 3, 3, 4, 4, 4, None])]
    assert score_measures(make_measures(rows)).scores.empty
    scored = score_measures(make_measures(rows), swemwbs_max_missing_items=1)
    assert _values(scored)[("a", 0, "swemwbs_raw")] == 25
    assert scored.scores["non_standard"].all()


def test_missing_client_id_raises():
    with pytest.raises(ValueError, match="lacks column 'client_id'"):
        score_measures(make_measures().drop(columns="client_id"))


def test_summary_names_the_value_set_and_counts():
    text = score_measures(make_measures(), clients=CLIENTS).summary()
    assert text.startswith("EQ-5D value set: EQ-5D-5L mapped onto the EQ-5D-3L UK value set")
    assert "SWEMWBS (metric score): 1 scored" in text
    assert text.endswith("Rows not scored: 1")
