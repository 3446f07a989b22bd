"""The "Data maturity" section: ratings, percentages from rounded counts, priorities."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spimpact.analyses.maturity import RATINGS, analyse_maturity
from spimpact.analyses.maturity.section import MATURITY_COLUMNS, data_maturity_section
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData

N = 100
PROJECT_DIR = Path(__file__).resolve().parents[3]


def make_scheme(tmp_path, *, n_ethnic_unknown=0, n_with_followup=80, primary_share=1.0):
    ids = [f"C{i:03d}" for i in range(N)]
    clients = pd.DataFrame(
        {
            "client_id": ids,
            "age_band": ["45-54"] * N,
            "sex": ["female"] * N,
            "ethnic_category": ["Z"] * n_ethnic_unknown + ["A"] * (N - n_ethnic_unknown),
            "lsoa_code": ["E01000001"] * N,
            "imd_decile": [3] * N,
            "practice_code": ["A12345"] * N,
            "consent_contact": [True] * N,
            "discharge_date": [pd.Timestamp("2024-01-01")] * 50 + [pd.NaT] * 50,
            "discharge_reason": ["completed"] * 40 + [None] * 60,
        }
    )
    n_primary = int(N * primary_share)
    # Follow-ups 70, 84, ..., 168 days after baseline: 3 months (91.3 days) +/- 28 days
    # covers days 63-119, so 4 of every 8 are on time.
    follow_up_days = [70 + 14 * (i % 8) for i in range(n_with_followup)]
    measures = pd.DataFrame(
        {
            "client_id": ids + ids[:n_with_followup],
            "measure": ["swemwbs"] * n_primary + ["who5"] * (N - n_primary)
            + ["swemwbs"] * n_with_followup,
            "timepoint": [0] * N + [1] * n_with_followup,
            "date": [pd.Timestamp("2024-01-01")] * N
            + [pd.Timestamp("2024-01-01") + pd.Timedelta(days=d) for d in follow_up_days],
        }
    )  # fmt: skip
    scores = measures[measures["measure"] == "swemwbs"].assign(score="swemwbs_metric", value=20.0)
    scheme = SchemeData(
        data_dir=tmp_path,
        clients=clients,
        measures=measures,
        reconciliation=pd.DataFrame(
            {
                "table": ["clients", "measures"],
                "n_read": [N, 200],
                "n_used": [N, 180],
                "n_excluded": [0, 20],
            }
        ),  # fmt: skip
        exclusions=pd.DataFrame(),
        non_standard=pd.DataFrame(
            {"measure": ["who5"], "issue": ["out of range"], "n_rows": [20], "detail": ["0-10"]}
        ),
        contacts=pd.DataFrame({"client_id": ids}),
        support_offered=pd.DataFrame({"client_id": ids[:90]}),
    )
    return scheme, scores


def run(tmp_path, **kwargs):
    scheme, scores = make_scheme(tmp_path, **kwargs)
    section = data_maturity_section(
        scheme,
        scores,
        non_standard=scheme.non_standard,
        params=SchemeParams(scheme_id="t", title="T", data_dir=tmp_path),
    )
    (table,) = section.tables
    assert table.name == "data_maturity"
    assert tuple(table.frame.columns) == MATURITY_COLUMNS
    return section, table.frame.set_index("check")


@pytest.mark.parametrize(
    ("n_unknown", "percent", "rating"),
    # percentages come from counts rounded to 5 (96 -> 95), ratings from the unrounded share
    [(0, 100, "good"), (4, 95, "good"), (10, 90, "fair"), (30, 70, "poor")],
)
def test_ethnicity_completeness_rating(tmp_path, n_unknown, percent, rating):
    _, table = run(tmp_path, n_ethnic_unknown=n_unknown)
    row = table.loc["clients with ethnic category recorded"]
    assert (row["percent"], row["rating"]) == (percent, rating)


def test_follow_up_and_measure_use(tmp_path):
    _, table = run(tmp_path, n_with_followup=60, primary_share=0.75)
    follow = table.loc["clients with a scored baseline SWEMWBS who have a follow-up"]
    # 75 clients have a scored SWEMWBS baseline and 60 of them a follow-up: 80%
    assert (follow["percent"], follow["n_records"], follow["rating"]) == (80, 75, "good")
    primary = table.loc["clients with a baseline SWEMWBS"]
    assert (primary["percent"], primary["rating"]) == (75, "fair")


def test_follow_up_timing_against_the_scheduled_time_point(tmp_path):
    _, table = run(tmp_path)
    row = table.loc["first follow-ups within 4 weeks of the scheduled 3 months"]
    assert (row["percent"], row["n_records"], row["rating"]) == (50, 80, "poor")


def test_discharge_reason_is_checked_only_for_discharged_clients(tmp_path):
    _, table = run(tmp_path)
    row = table.loc["discharged clients with a discharge reason"]
    assert (row["percent"], row["n_records"], row["rating"]) == (80, 50, "fair")


def test_instrument_and_loading_checks(tmp_path):
    _, table = run(tmp_path)
    instrument = table.loc["questionnaires recorded on the published response scale"]
    assert instrument["percent"] == round(100 * 180 / 200)  # 20 non-standard of 200 rows
    assert instrument["rating"] == "poor"
    assert "WHO5" in instrument["improve"]
    loading = table.loc["rows that passed the data contract checks"]
    assert (loading["percent"], loading["rating"]) == (93, "poor")  # 280 of 300 rows used


def test_priorities_put_poor_before_fair_and_good_last(tmp_path):
    section, table = run(tmp_path, n_ethnic_unknown=30)
    ranked = table[table["priority"] != ""].sort_values("priority", key=lambda p: p.astype(int))
    ratings = ranked["rating"].tolist()
    assert ratings == sorted(ratings, key=["poor", "fair"].index)
    assert ranked["priority"].tolist() == [str(k) for k in range(1, len(ranked) + 1)]
    assert (table.loc[table["rating"] == "good", "priority"] == "").all()
    assert "What to improve first: (1)" in " ".join(section.text)


def test_small_denominators_are_withheld(tmp_path):
    scheme, scores = make_scheme(tmp_path)
    small = SchemeData(**{**scheme.__dict__, "clients": scheme.clients.head(5)})
    section = data_maturity_section(
        small, scores, non_standard=None,
        params=SchemeParams(scheme_id="t", title="T", data_dir=tmp_path),
    )  # fmt: skip
    frame = section.tables[0].frame.set_index("check")
    row = frame.loc["clients with sex recorded"]
    assert pd.isna(row["percent"]) and pd.isna(row["n_records"])
    assert np.isin(frame["rating"], ["good", "fair", "poor"]).all()


def test_no_clients_is_insufficient(tmp_path):
    scheme, scores = make_scheme(tmp_path)
    empty = SchemeData(**{**scheme.__dict__, "clients": scheme.clients.iloc[0:0]})
    with pytest.raises(InsufficientData):
        data_maturity_section(
            empty, scores, non_standard=None,
            params=SchemeParams(scheme_id="t", title="T", data_dir=tmp_path),
        )  # fmt: skip


# --- the analysis behind the section --------------------------------------------------


def _params(tmp_path):
    return SchemeParams(scheme_id="t", title="T", data_dir=tmp_path)


def test_scorecard_ranks_what_to_improve_first(tmp_path):
    scheme, scores = make_scheme(tmp_path, n_ethnic_unknown=30)
    result = analyse_maturity(
        scheme, scores, non_standard=scheme.non_standard, params=_params(tmp_path)
    )
    assert tuple(result.scorecard.columns) == MATURITY_COLUMNS
    assert set(result.scorecard["rating"]) <= set(RATINGS)
    assert result.n_good == (result.scorecard["rating"] == "good").sum()
    first = result.improve_first(3)
    assert first["priority"].tolist() == ["1", "2", "3"]
    assert first["rating"].iloc[0] == "poor"


def test_analysis_without_clients_is_insufficient(tmp_path):
    scheme, scores = make_scheme(tmp_path)
    empty = SchemeData(**{**scheme.__dict__, "clients": scheme.clients.iloc[0:0]})
    with pytest.raises(InsufficientData, match="no client records"):
        analyse_maturity(empty, scores, non_standard=None, params=_params(tmp_path))


def mapping_report(n_placed: int, n_not_placed: int) -> pd.DataFrame:
    """A mapping report (``SchemeData.mapping_report``) of one coded field."""
    return pd.DataFrame(
        {
            "table": "clients",
            "column": "referral_source",
            "source": "referrals.csv",
            "source_column": "Referred by",
            "source_value": ["GP", "See notes", ""],
            "target_value": ["gp", None, None],
            "n_rows": [n_placed, n_not_placed, 40],
            "action": ["mapped", "excluded", "missing"],
            "declared": [True, False, False],
        }
    )


@pytest.mark.parametrize(("n_not_placed", "rating"), [(0, "good"), (3, "fair"), (40, "poor")])
def test_labels_a_mapping_file_cannot_place_are_scored(tmp_path, n_not_placed, rating):
    """Of the values in coded fields (blank cells count as completeness, not here), the
    share the mapping file places: 99% good, 95% fair."""
    scheme, scores = make_scheme(tmp_path)
    scheme = replace(scheme, mapping_report=mapping_report(97, n_not_placed))
    result = analyse_maturity(
        scheme,
        scores,
        non_standard=None,
        params=SchemeParams(scheme_id="t", title="T", data_dir=tmp_path),
    )
    row = result.scorecard.set_index("check").loc[
        "values in coded fields that the mapping file places in the data contract"
    ]
    assert row["rating"] == rating
    assert row["n_records"] == 5 * round((97 + n_not_placed) / 5)
    if n_not_placed:
        assert "1 label(s) could not be placed" in row["improve"]


def test_no_mapping_no_mapping_check(tmp_path):
    scheme, scores = make_scheme(tmp_path)
    result = analyse_maturity(
        scheme,
        scores,
        non_standard=None,
        params=SchemeParams(scheme_id="t", title="T", data_dir=tmp_path),
    )
    assert not result.scorecard["check"].str.contains("mapping file").any()


@pytest.mark.slow
def test_messy_example_schemes_get_real_poor_and_fair_ratings(example_data, load_example):
    """The example exports' gaps (docs/example-exports.md) show on the scorecard with
    the fix to make: valley's ethnicity, consent to contact and follow-up are poor."""
    from spimpact.analyses.measures import score_scheme
    from spimpact.params import load_params

    params = load_params(PROJECT_DIR / "params" / "valley.yaml")
    scheme = load_example(example_data / "valley")
    scored = score_scheme(scheme, params)
    table = analyse_maturity(
        scheme, scored.scores, non_standard=scheme.non_standard, params=params
    ).scorecard.set_index("check")
    for check in (
        "clients with ethnic category recorded",
        "clients with consent to follow-up contact recorded",
        "clients with a scored baseline SWEMWBS who have a follow-up",
        "clients with deprivation decile recorded",
    ):
        assert table.loc[check, "rating"] == "poor", check
    assert table.loc["clients with home area (LSOA) recorded", "rating"] == "fair"
    placed = table.loc["values in coded fields that the mapping file places in the data contract"]
    assert placed["rating"] in ("good", "fair") and "could not be placed" in placed["improve"]
