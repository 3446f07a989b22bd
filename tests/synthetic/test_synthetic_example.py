"""The seeded example schemes: deterministic, shaped by their spec, true to their truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import spimpact.synthetic
from spimpact.identifiers import is_valid_nhs_number
from spimpact.synthetic import EXAMPLE_SCHEMES, SchemeSpec, simulate_scheme, write_example_data
from spimpact.synthetic.schemes import EXTRACT_DATE

SMALL = SchemeSpec(
    "small",
    "Small Test Scheme",
    120,
    ("swemwbs",),
    identifier="nhs_number",
    age_source="date_of_birth",
    comparison_ratio=1,
    n_areas=12,
    boundaries=True,
    gp_rate_ratio=0.8,
)


@pytest.fixture(scope="module")
def small():
    return simulate_scheme(SMALL, np.random.default_rng(7))


def test_the_package_keeps_its_stable_names():
    assert spimpact.synthetic.write_example_data is write_example_data
    assert [spec.scheme_id for spec in EXAMPLE_SCHEMES] == [
        "north_shore",
        "riverside",
        "hillcrest",
        "valley",
    ]


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    valley = EXAMPLE_SCHEMES[-1:]
    (first,) = write_example_data(tmp_path / "a", schemes=valley)
    (second,) = write_example_data(tmp_path / "b", schemes=valley)
    (other,) = write_example_data(tmp_path / "c", schemes=valley, seed=1)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "caseload.xlsx").read_bytes() != (other / "caseload.xlsx").read_bytes()


def test_spec_options_shape_the_tables(small):
    tables, truth = small
    assert set(tables) == {
        "clients",
        "measures",
        "contacts",
        "support_offered",
        "feedback",
        "population",
        "gp_appointments",
        "comparison_pool",
        "boundaries",
    }
    clients = tables["clients"]
    assert "date_of_birth" in clients and "age" not in clients
    for name in ("clients", "measures", "gp_appointments", "comparison_pool"):
        assert "client_id" not in tables[name] and "patient_id" not in tables[name]
        assert all(is_valid_nhs_number(number) for number in tables[name]["nhs_number"])
    assert len(tables["comparison_pool"]) == SMALL.n_clients * SMALL.comparison_ratio
    assert len(tables["boundaries"]["features"]) == SMALL.n_areas
    assert truth["n_clients"] == len(clients) == SMALL.n_clients


def test_no_scheme_without_gp_data_has_appointments():
    tables, truth = simulate_scheme(
        SchemeSpec("tiny", "Tiny", 60, ("who5",), gp_data=False, comparison_ratio=0, n_areas=5),
        np.random.default_rng(3),
    )
    assert "gp_appointments" not in tables and "comparison_pool" not in tables
    assert "gp_attendance" not in truth
    assert set(tables["measures"]["measure"]) == {"who5"}


def test_nothing_is_dated_after_the_extract(small):
    tables, _ = small
    for name, frame in tables.items():
        if name == "boundaries":
            continue
        for column in [c for c in frame.columns if "date" in c]:
            dates = pd.to_datetime(frame[column]).dropna()
            assert (dates <= EXTRACT_DATE).all(), f"{name}.{column}"


def test_truth_records_the_simulated_gp_effect(small):
    _, truth = small
    gp = truth["gp_attendance"]
    assert gp["rate_ratio_from_month_3"] == SMALL.gp_rate_ratio
    assert gp["rate_ratio_months_1_to_2"] == pytest.approx(0.9)
    # the effect is constant over the post-period months 3 to 11 the truth averages
    assert gp["post_months"] == [3, 11]
    assert gp["gp_rate_ratio_post"] == pytest.approx(SMALL.gp_rate_ratio)
    # clients attend less after referral than they would have: a negative average effect
    assert gp["gp_att_per_person_month"] < 0
    change = truth["wellbeing"]["swemwbs"]["swemwbs_metric"]
    assert 0 < change["1"] < change["2"]
