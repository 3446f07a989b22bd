"""Fits from per-cell sums against the same estimators on the full person x month panel.

The sufficiency arguments are in :mod:`spimpact.models.cell_fits`; each test fits the
same model both ways on one simulated balanced panel and asks for equal estimates and
standard errors to 1e-8 (relative), the accuracy the cell fits claim.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from spimpact.models.cell_fits import (
    fit_did_2x2_from_cells,
    fit_event_study_from_cells,
    fit_poisson_from_cells,
    fit_twfe_from_cells,
    sum_panel_cells,
)
from spimpact.models.count import fit_poisson
from spimpact.models.did import fit_did_2x2, fit_event_study, fit_twfe

N_PEOPLE, N_MONTHS = 900, 18
WINDOW = (-4, 4)


@pytest.fixture(scope="module")
def panel():
    """Balanced panel: monthly attendances, 40% referred in months 6-12, 10 practices;
    low rates so that some people never attend (the Poisson fit drops them)."""
    rng = np.random.default_rng(14)
    person = np.repeat(np.arange(N_PEOPLE), N_MONTHS)
    month = np.tile(np.arange(1, N_MONTHS + 1), N_PEOPLE)
    referral = np.where(rng.random(N_PEOPLE) < 0.4, rng.integers(6, 13, N_PEOPLE), 0)
    first_treated = np.repeat(referral, N_MONTHS)
    treated_now = ((first_treated > 0) & (month >= first_treated)).astype(float)
    rate = np.exp(
        np.repeat(rng.normal(-2.5, 1.0, N_PEOPLE), N_MONTHS)
        + np.tile(rng.normal(0, 0.2, N_MONTHS), N_PEOPLE)
        + 0.3 * treated_now
    )
    return pd.DataFrame(
        {
            "person": person,
            "month": month,
            "practice": np.repeat(rng.integers(0, 10, N_PEOPLE), N_MONTHS),
            "first_treated": first_treated,
            "treated_now": treated_now,
            "treated": (first_treated > 0).astype(int),
            "post": (month > N_MONTHS // 2).astype(int),
            "attendances": rng.poisson(rate).astype(float),
        }
    )


def cells_of(panel, by):
    cells = sum_panel_cells(panel, by=by, outcome="attendances", unit="person")
    if "first_treated" in by:
        referred = (cells.first_treated > 0) & (cells.month >= cells.first_treated)
        cells["treated_now"] = referred.astype(float)
    return cells


def assert_same_fit(full, from_cells):
    a, b = full.tidy(), from_cells.tidy()
    assert a["term"].tolist() == b["term"].tolist()
    assert_allclose(b["estimate"], a["estimate"], rtol=1e-8, atol=1e-12)
    assert_allclose(b["std_error"], a["std_error"], rtol=1e-8)
    assert from_cells.n_obs == full.n_obs


def test_panel_has_people_who_never_attend(panel):
    totals = panel.groupby("person")["attendances"].sum()
    assert (totals == 0).sum() > 10


@pytest.mark.parametrize("cluster", ["practice", "person"])
def test_event_study_from_cells_equals_panel_fit(panel, cluster):
    full = fit_event_study(
        panel,
        outcome="attendances",
        unit="person",
        time="month",
        first_treated="first_treated",
        window=WINDOW,
        cluster=cluster,
    )
    cells = cells_of(panel, [cluster, "first_treated", "month"])
    from_cells = fit_event_study_from_cells(
        cells,
        outcome="attendances",
        time="month",
        first_treated="first_treated",
        window=WINDOW,
        cluster=cluster,
    )
    assert_same_fit(full, from_cells)
    assert (from_cells.n_units, from_cells.n_treated_units) == (
        full.n_units,
        full.n_treated_units,
    )
    assert from_cells.pretrend_test.statistic == pytest.approx(full.pretrend_test.statistic)
    if cluster == "practice":
        assert len(cells) < len(panel) / 5


@pytest.mark.parametrize("cluster", ["practice", "person"])
def test_twfe_from_cells_equals_panel_fit(panel, cluster):
    full = fit_twfe(
        "attendances ~ treated_now", panel, unit="person", time="month", cluster=cluster
    )
    from_cells = fit_twfe_from_cells(
        "attendances ~ treated_now",
        cells_of(panel, [cluster, "first_treated", "month"]),
        group="first_treated",
        time="month",
        cluster=cluster,
    )
    assert_same_fit(full, from_cells)
    assert from_cells.n_units == full.n_units


@pytest.mark.parametrize("cluster", ["practice", None])
def test_poisson_from_cells_equals_panel_fit(panel, cluster):
    full = fit_poisson(
        "attendances ~ treated_now", panel, absorb=["person", "month"], cluster=cluster
    )
    keys = ["first_treated", "month"] if cluster is None else [cluster, "first_treated", "month"]
    from_cells = fit_poisson_from_cells(
        "attendances_sum ~ treated_now",
        cells_of(panel, keys),
        group="first_treated",
        time="month",
        cluster=cluster,
    )
    assert_same_fit(full, from_cells)
    assert from_cells.n_obs < len(panel)  # people who never attend are not counted


@pytest.mark.parametrize("cluster", ["practice", None])
def test_did_2x2_from_cells_equals_row_fit(panel, cluster):
    full = fit_did_2x2(
        panel, outcome="attendances", treated="treated", post="post", cluster=cluster
    )
    keys = ["treated", "post"] if cluster is None else [cluster, "treated", "post"]
    from_cells = fit_did_2x2_from_cells(
        cells_of(panel, keys),
        outcome="attendances",
        treated="treated",
        post="post",
        cluster=cluster,
        sum_of_squares="attendances_sum_of_squares",
    )
    assert_same_fit(full, from_cells)
    assert from_cells.df == pytest.approx(full.df)


def test_cells_from_parquet_equal_cells_from_frame(panel, tmp_path):
    path = tmp_path / "panel.parquet"
    panel.to_parquet(path)
    by = ["practice", "first_treated", "month"]
    from_file = sum_panel_cells(path, by=by, outcome="attendances", unit="person")
    from_frame = sum_panel_cells(panel, by=by, outcome="attendances", unit="person")
    pd.testing.assert_frame_equal(from_file, from_frame)
    expected = panel.groupby(by)["attendances"].agg(["size", "sum"]).reset_index()
    assert from_file["n_rows"].tolist() == expected["size"].tolist()
    assert_allclose(from_file["attendances_sum"], expected["sum"])


def test_unbalanced_cells_are_refused(panel):
    cells = cells_of(panel, ["practice", "first_treated", "month"]).iloc[1:]
    with pytest.raises(ValueError, match="balanced panel"):
        fit_event_study_from_cells(
            cells,
            outcome="attendances",
            time="month",
            first_treated="first_treated",
            window=WINDOW,
            cluster="practice",
        )


def test_missing_outcome_is_reported_not_dropped(panel):
    broken = panel.copy()
    broken.loc[[3, 7], "attendances"] = np.nan
    with pytest.raises(ValueError, match="2 row\\(s\\) with a missing 'attendances'"):
        sum_panel_cells(broken, by=["first_treated", "month"], outcome="attendances")


def test_classical_2x2_needs_sums_of_squares(panel):
    cells = cells_of(panel, ["treated", "post"])
    with pytest.raises(ValueError, match="sums of squares"):
        fit_did_2x2_from_cells(cells, outcome="attendances", treated="treated", post="post")
