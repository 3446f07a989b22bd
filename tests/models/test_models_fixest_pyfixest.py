"""TWFE, event study and Poisson FE against pyfixest on one simulated unbalanced panel.

pyfixest (Fischer et al., https://github.com/py-econometrics/pyfixest) reimplements R
``fixest``: ``feols("y ~ x | person + month", vcov={"CRV1": cluster})`` and
``fepois(...)`` with fixest's default small-sample correction, the conventions our
estimators follow. The panel is unbalanced (a tenth of the person-months removed) so
that the alternating projections are exercised, not only the balanced closed form.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from spimpact.models.count import fit_poisson
from spimpact.models.did import fit_event_study, fit_twfe

pyfixest = pytest.importorskip("pyfixest")

WINDOW = (-3, 3)


def make_panel(balanced: bool) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n_people, n_months = 400, 14
    person = np.repeat(np.arange(n_people), n_months)
    month = np.tile(np.arange(1, n_months + 1), n_people)
    referral = np.where(rng.random(n_people) < 0.4, rng.integers(5, 11, n_people), 0)
    first_treated = np.repeat(referral, n_months)
    treated_now = ((first_treated > 0) & (month >= first_treated)).astype(float)
    rate = np.exp(
        np.repeat(rng.normal(-1.0, 0.8, n_people), n_months)
        + np.tile(rng.normal(0, 0.2, n_months), n_people)
        + 0.25 * treated_now
    )
    panel = pd.DataFrame(
        {
            "person": person,
            "month": month,
            "practice": np.repeat(rng.integers(0, 25, n_people), n_months),
            "first_treated": first_treated,
            "treated_now": treated_now,
            "age": rng.normal(50, 10, n_people * n_months),
            "attendances": rng.poisson(rate).astype(float),
        }
    )
    never = panel.first_treated == 0
    panel["event_time"] = np.where(never, -1, (panel.month - panel.first_treated).clip(*WINDOW))
    if not balanced:
        panel = panel.loc[rng.random(len(panel)) > 0.1].reset_index(drop=True)
    return panel


def pyfixest_table(fit) -> pd.DataFrame:
    tidy = fit.tidy()
    return pd.DataFrame(
        {
            "term": [str(t) for t in tidy.index],
            "estimate": tidy["Estimate"].to_numpy(),
            "std_error": tidy["Std. Error"].to_numpy(),
        }
    )


def assert_same(ours: pd.DataFrame, theirs: pd.DataFrame, rtol: float = 1e-8) -> None:
    assert ours["term"].tolist() == theirs["term"].tolist()
    assert_allclose(ours["estimate"], theirs["estimate"], rtol=rtol)
    assert_allclose(ours["std_error"], theirs["std_error"], rtol=rtol)


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("cluster", ["person", "practice"])
def test_twfe_matches_pyfixest_feols(balanced, cluster):
    panel = make_panel(balanced)
    ours = fit_twfe(
        "attendances ~ treated_now + age", panel, unit="person", time="month", cluster=cluster
    )
    theirs = pyfixest.feols(
        "attendances ~ treated_now + age | person + month", panel, vcov={"CRV1": cluster}
    )
    assert_same(ours.tidy(), pyfixest_table(theirs))


@pytest.mark.parametrize("balanced", [True, False])
def test_event_study_matches_pyfixest_feols(balanced):
    panel = make_panel(balanced)
    ours = fit_event_study(
        panel,
        outcome="attendances",
        unit="person",
        time="month",
        first_treated="first_treated",
        window=WINDOW,
        cluster="practice",
    )
    theirs = pyfixest.feols(
        "attendances ~ i(event_time, ref=-1) | person + month", panel, vcov={"CRV1": "practice"}
    )
    assert_same(ours.tidy(), pyfixest_table(theirs))


@pytest.mark.parametrize("balanced", [True, False])
def test_poisson_matches_pyfixest_fepois(balanced):
    panel = make_panel(balanced)
    ours = fit_poisson(
        "attendances ~ treated_now", panel, absorb=["person", "month"], cluster="person"
    )
    # pyfixest's convergence tolerances tightened from 1e-8 so that its own numbers are
    # accurate to the 1e-8 compared here
    with pytest.warns(UserWarning, match="separation"):
        theirs = pyfixest.fepois(
            "attendances ~ treated_now | person + month",
            panel,
            vcov={"CRV1": "person"},
            iwls_tol=1e-14,
            iwls_maxiter=100,
            demeaner=pyfixest.MapDemeaner(fixef_tol=1e-14),
        )
    assert_same(ours.tidy()[["term", "estimate", "std_error"]], pyfixest_table(theirs))
