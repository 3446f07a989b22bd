"""The "Who benefits" report section (``spimpact.analyses.equity.section``)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from spimpact.analyses.attendance import analyse_attendance
from spimpact.analyses.equity.analysis import attendance_effect_by_group
from spimpact.analyses.equity.section import benefit_by_group_section
from spimpact.io import SchemeData, load_scheme
from spimpact.params import SchemeParams
from spimpact.synthetic import SchemeSpec, write_example_data


def _simulate(rng, changes: dict, n_per_group: int = 150, follow_up: float = 0.7):
    """Three time points; group g changes by changes[g] at t1 and 1.5x at t2."""
    rows = []
    person = 0
    for group, change in changes.items():
        for _ in range(n_per_group):
            person += 1
            intercept = rng.normal(50, 6)
            for t in (0, 1, 2):
                if t > 0 and rng.random() > follow_up:
                    continue
                mean = intercept + change * (1 if t == 1 else 1.5 if t == 2 else 0)
                rows.append((f"p{person}", group, t, mean + rng.normal(0, 4)))
    return pd.DataFrame(rows, columns=["client_id", "imd_quintile", "timepoint", "value"])


@pytest.fixture(scope="module")
def small_params():
    return SchemeParams(scheme_id="tiny", title="Tiny Link", data_dir=Path("."))


@pytest.fixture(scope="module")
def small_scheme(tmp_path_factory):
    spec = SchemeSpec("tiny", "Tiny Link", 400, ("swemwbs",), n_areas=20)
    (folder,) = write_example_data(tmp_path_factory.mktemp("example"), schemes=(spec,))
    return load_scheme(folder, pseudonym_key="test-key")


@pytest.fixture(scope="module")
def small_result(small_scheme, small_params):
    return analyse_attendance(small_scheme, params=small_params)


def test_section_is_disclosure_controlled(tmp_path):
    data = _simulate(np.random.default_rng(6), {"1": 2.0, "2": 3.0, "3": 4.0})
    scores = data.assign(score="swemwbs_metric", measure="swemwbs")
    clients = data.drop_duplicates("client_id")[["client_id", "imd_quintile"]].assign(
        ethnic_group="White"
    )
    empty = pd.DataFrame()
    scheme = SchemeData(
        data_dir=tmp_path,
        clients=clients,
        measures=empty,
        reconciliation=empty,
        exclusions=empty,
        non_standard=empty,
    )
    params = SchemeParams(scheme_id="equity_toy", title="toy", data_dir=tmp_path)
    section = benefit_by_group_section(scheme, scores, params=params)
    table = section.tables[0].frame
    for column in ("n_people", "n_followed_up"):
        values = table[column].dropna().astype(int)
        assert (values % 5 == 0).all() and not values.between(1, 7).any()
    assert "Joint test" in section.text[1]
    assert "Ethnic group" in section.text[2] and "Fewer than two groups" in section.text[2]
    assert "no GP appointment data" in section.text[3]
    plt.close("all")


def test_attendance_by_group_is_shown_with_its_cochran_q(small_scheme, small_result, small_params):
    """Wellbeing scores simulated for the small scheme's own clients, so the section also
    shows GP attendance by group from the attendance result passed in."""
    rng = np.random.default_rng(8)
    clients = small_scheme.clients["client_id"]
    scores = pd.DataFrame(
        {
            "client_id": np.repeat(clients.to_numpy(), 2),
            "timepoint": np.tile([0, 1], len(clients)),
            "value": rng.normal(45, 8, 2 * len(clients)),
        }
    ).assign(score="swemwbs_metric", measure="swemwbs")
    section = benefit_by_group_section(
        small_scheme, scores, params=small_params, attendance=small_result
    )
    tables = {t.name: t.frame for t in section.tables}
    table = tables["equity_attendance_imd_quintile"]
    assert list(table.columns) == [
        "IMD quintile (1 = most deprived)",
        "n_clients",
        "estimate",
        "conf_low",
        "conf_high",
        "p_value",
        "p_value_bh",
    ]
    counts = table["n_clients"].dropna().astype(int)
    assert (counts % 5 == 0).all() and not counts.between(1, 7).any()
    effects = attendance_effect_by_group(
        small_scheme, params=small_params, by="imd_quintile", result=small_result
    )
    joint = effects[effects["term"] == "joint_test_of_difference"].iloc[0]
    sentence = next(t for t in section.text if t.startswith("**GP attendance by imd quintile**"))
    assert f"(Cochran Q) {joint['statistic']:.1f} on {int(joint['df'])} df" in sentence
    assert f"p = {joint['p_value']:.3f}" in sentence
    assert "Holm-adjusted across" in sentence  # the groupings are one family of tests
    plt.close("all")
