"""The "Data maturity" section: ratings, percentages from rounded counts, priorities."""

import numpy as np
import pandas as pd
import pytest

from spimpact.analyses.maturity.section import MATURITY_COLUMNS, data_maturity_section
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData


def run(make_scheme, tmp_path, **kwargs):
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
def test_ethnicity_completeness_rating(tmp_path, n_unknown, percent, rating, make_scheme):
    _, table = run(make_scheme, tmp_path, n_ethnic_unknown=n_unknown)
    row = table.loc["clients with ethnic category recorded"]
    assert (row["percent"], row["rating"]) == (percent, rating)


def test_follow_up_and_measure_use(tmp_path, make_scheme):
    _, table = run(make_scheme, tmp_path, n_with_followup=60, primary_share=0.75)
    follow = table.loc["clients with a scored baseline SWEMWBS who have a follow-up"]
    # 75 clients have a scored SWEMWBS baseline and 60 of them a follow-up: 80%
    assert (follow["percent"], follow["n_records"], follow["rating"]) == (80, 75, "good")
    primary = table.loc["clients with a baseline SWEMWBS"]
    assert (primary["percent"], primary["rating"]) == (75, "fair")


def test_follow_up_timing_against_the_scheduled_time_point(tmp_path, make_scheme):
    _, table = run(make_scheme, tmp_path)
    row = table.loc["first follow-ups within 4 weeks of the scheduled 3 months"]
    assert (row["percent"], row["n_records"], row["rating"]) == (50, 80, "poor")


def test_discharge_reason_is_checked_only_for_discharged_clients(tmp_path, make_scheme):
    _, table = run(make_scheme, tmp_path)
    row = table.loc["discharged clients with a discharge reason"]
    assert (row["percent"], row["n_records"], row["rating"]) == (80, 50, "fair")


def test_instrument_and_loading_checks(tmp_path, make_scheme):
    _, table = run(make_scheme, tmp_path)
    instrument = table.loc["questionnaires recorded on the published response scale"]
    assert instrument["percent"] == round(100 * 180 / 200)  # 20 non-standard of 200 rows
    assert instrument["rating"] == "poor"
    assert "WHO5" in instrument["improve"]
    loading = table.loc["rows that passed the data contract checks"]
    assert (loading["percent"], loading["rating"]) == (93, "poor")  # 280 of 300 rows used


def test_priorities_put_poor_before_fair_and_good_last(tmp_path, make_scheme):
    section, table = run(make_scheme, tmp_path, n_ethnic_unknown=30)
    ranked = table[table["priority"] != ""].sort_values("priority", key=lambda p: p.astype(int))
    ratings = ranked["rating"].tolist()
    assert ratings == sorted(ratings, key=["poor", "fair"].index)
    assert ranked["priority"].tolist() == [str(k) for k in range(1, len(ranked) + 1)]
    assert (table.loc[table["rating"] == "good", "priority"] == "").all()
    assert "What to improve first: (1)" in " ".join(section.text)


def test_small_denominators_are_withheld(tmp_path, make_scheme):
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


def test_no_clients_is_insufficient(tmp_path, make_scheme):
    scheme, scores = make_scheme(tmp_path)
    empty = SchemeData(**{**scheme.__dict__, "clients": scheme.clients.iloc[0:0]})
    with pytest.raises(InsufficientData):
        data_maturity_section(
            empty, scores, non_standard=None,
            params=SchemeParams(scheme_id="t", title="T", data_dir=tmp_path),
        )  # fmt: skip
