"""fit_event_study_grouped against fit_event_study, pyfixest and a simulation with known truth.

``fit_event_study`` is the reference: it is tested against R ``fixest::feols(y ~ x1 +
i(period, treat, 5) | id + period)`` (test_models_did.py) and pyfixest's
``feols("y ~ i(event_time, ref=-1) | person + month")`` (test_models_fixest_pyfixest.py).
The grouped fit solves the same normal equations without the design, so it must equal it
to rounding: every comparison here is at rtol 1e-8, on balanced and unbalanced panels.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import sparse

from spimpact.models.did_event_study import fit_event_study
from spimpact.models.did_event_study_grouped import TwoWayProjection, fit_event_study_grouped
from spimpact.models.did_fixed_effects import demean, encode_groups

RTOL = 1e-8
COLUMNS = {"outcome": "y", "unit": "person", "time": "month", "first_treated": "first_treated"}


def make_panel(*, balanced: bool, seed: int = 11, n_people: int = 240, n_months: int = 14):
    """Staggered referrals (months 4-11, 40% never), matched sets of 6 people, weights 1 or 1/3.

    Unbalanced: people join late and leave early at random and miss a tenth of the
    months in between.
    """
    rng = np.random.default_rng(seed)
    person = np.repeat(np.arange(n_people), n_months)
    month = np.tile(np.arange(1, n_months + 1), n_people)
    referral = np.where(rng.random(n_people) < 0.6, rng.integers(4, 12, n_people), 0)
    first_treated = np.repeat(referral, n_months)
    event_time = month - first_treated
    # 0.5, 0.6, ... up to 0.9 from four months after referral on, so the binned end
    # point's truth is 0.9 too
    effect = np.where(
        (first_treated > 0) & (event_time >= 0), 0.5 + 0.1 * np.minimum(event_time, 4), 0.0
    )
    panel = pd.DataFrame(
        {
            "person": person,
            "month": month,
            "first_treated": first_treated,
            "matched_set": person // 6,
            "weight": np.repeat(np.where(rng.random(n_people) < 0.5, 1.0, 1 / 3), n_months),
            "y": np.repeat(rng.normal(0, 1, n_people), n_months)
            + np.tile(rng.normal(0, 0.3, n_months), n_people)
            + effect
            + rng.normal(0, 1, n_people * n_months),
        }
    )
    if balanced:
        return panel
    start = np.repeat(rng.integers(1, 5, n_people), n_months)
    end = np.repeat(rng.integers(10, n_months + 1, n_people), n_months)
    observed = (month >= start) & (month <= end) & (rng.random(panel.shape[0]) > 0.1)
    return panel.loc[observed].reset_index(drop=True)


def assert_same_fit(theirs, ours) -> None:
    assert ours.tidy()["term"].tolist() == theirs.tidy()["term"].tolist()
    assert_allclose(ours.tidy()["estimate"], theirs.tidy()["estimate"], rtol=RTOL)
    assert_allclose(ours.tidy()["std_error"], theirs.tidy()["std_error"], rtol=RTOL)
    assert_allclose(ours.tidy()["p_value"], theirs.tidy()["p_value"], rtol=RTOL, atol=1e-300)
    assert_allclose(ours.covariance.to_numpy(), theirs.covariance.to_numpy(), rtol=RTOL)
    assert_allclose(ours.pretrend_test.statistic, theirs.pretrend_test.statistic, rtol=RTOL)
    assert ours.pretrend_test.df == theirs.pretrend_test.df
    assert ours.df == theirs.df
    assert (ours.n_obs, ours.n_units, ours.n_treated_units, ours.n_clusters) == (
        theirs.n_obs,
        theirs.n_units,
        theirs.n_treated_units,
        theirs.n_clusters,
    )
    assert ours.se_type == theirs.se_type
    assert (ours.window, ours.reference) == (theirs.window, theirs.reference)


def fit_both(data: pd.DataFrame, **kwargs):
    arguments = COLUMNS | {"window": (-4, 4)} | kwargs
    return fit_event_study(data, **arguments), fit_event_study_grouped(data, **arguments)


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cluster": "person"},
        {"cluster": "matched_set"},
        {"cluster": "month"},
        {"weights": "weight"},
        {"weights": "weight", "cluster": "matched_set"},
        {"weights": "weight", "cluster": "month"},
        {"window": (-2, 2)},
        {"window": (-3, 5), "reference": -2, "cluster": "person"},
        {"window": (0, 3), "reference": 0},
    ],
    ids=str,
)
def test_equals_fit_event_study(balanced, options):
    assert_same_fit(*fit_both(make_panel(balanced=balanced), **options))


@pytest.mark.parametrize("never_code", [0, np.nan, np.inf])
def test_never_treated_codes(never_code):
    panel = make_panel(balanced=False)
    panel["first_treated"] = (
        panel["first_treated"].astype(float).where(panel["first_treated"] > 0, never_code)
    )
    theirs, ours = fit_both(panel, cluster="person")
    assert_same_fit(theirs, ours)
    coded_zero = fit_event_study_grouped(make_panel(balanced=False), **COLUMNS, window=(-4, 4))
    assert_allclose(ours.tidy()["estimate"], coded_zero.tidy()["estimate"], rtol=1e-12)


def test_missing_values_and_zero_weights_dropped_as_fit_event_study():
    """Rows missing the outcome are dropped; rows of weight 0 too, including a person
    weighted 0 only in some months (constant weight over the rows kept)."""
    panel = make_panel(balanced=False)
    panel.loc[panel.index % 37 == 0, "y"] = np.nan
    panel.loc[panel["person"] < 12, "weight"] = 0.0
    panel.loc[(panel["person"] == 20) & (panel["month"] > 8), "weight"] = 0.0
    theirs, ours = fit_both(panel, weights="weight", cluster="matched_set")
    assert ours.n_obs < panel["y"].notna().sum()
    assert_same_fit(theirs, ours)


def test_duplicate_person_months_as_fit_event_study():
    panel = make_panel(balanced=False)
    panel = pd.concat([panel, panel.iloc[::9]], ignore_index=True)
    assert_same_fit(*fit_both(panel, cluster="person"))


def disconnected(panel):
    """Half the people seen only in months 1-7, the others only in months 8-14."""
    first_half = panel["person"] < panel["person"].max() / 2
    return panel[first_half == (panel["month"] <= 7)]


def with_singletons(panel):
    """Two people with a single month each."""
    extra = pd.DataFrame(
        {"person": [9001, 9002], "month": [3, 9], "first_treated": [5, 0], "y": [0.3, 0.1]}
    )
    return pd.concat([panel, extra.assign(matched_set=[1, 2], weight=1.0)], ignore_index=True)


@pytest.mark.parametrize(
    "change",
    [
        disconnected,
        with_singletons,
        lambda d: d.assign(person="p" + d["person"].astype(str)),
        lambda d: d.assign(month=d["month"] + np.where(d["person"] % 5 == 0, 0.5, 0.0)),
    ],
    ids=["disconnected", "singletons", "text ids", "non-integer months"],
)
def test_awkward_panels_as_fit_event_study(change):
    panel = change(make_panel(balanced=False))
    assert_same_fit(*fit_both(panel, cluster="person", weights="weight"))


@pytest.mark.parametrize(
    ("change", "table"), [(lambda d: d, "dense"), (disconnected, "sparse")], ids=["dense", "sparse"]
)
def test_projection_equals_demean(change, table):
    """The projection equals did_fixed_effects.demean (weighted, two factors) with the
    count table dense (at most twice the rows) or sparse."""
    panel = change(make_panel(balanced=False))
    unit = encode_groups(panel["person"])[0]
    time = encode_groups(panel["month"])[0]
    weight = panel["weight"].to_numpy()
    per_unit = np.empty(unit.max() + 1)
    per_unit[unit] = weight
    projection = TwoWayProjection.build(unit, time, per_unit, weight)
    assert (table == "sparse") == sparse.issparse(projection.counts)
    values = panel["y"].to_numpy()
    expected = demean(values, [unit, time], weights=weight)[:, 0]
    # the disconnected panel goes through demean's alternating projections, which stop
    # when a sweep changes the column by less than 1e-10 of its scale (about 3 here)
    assert_allclose(projection.residual(values), expected, rtol=0, atol=1e-9)


def test_matches_pyfixest_feols():
    """pyfixest: feols("y ~ i(event_time, ref=-1) | person + month", vcov={"CRV1":
    "matched_set"}, weights="weight"), fixest's defaults, on the unbalanced panel; its
    demeaning tolerance tightened from 1e-8 so that its own numbers are accurate to 1e-8."""
    pyfixest = pytest.importorskip("pyfixest")
    panel = make_panel(balanced=False)
    never = panel["first_treated"] == 0
    panel["event_time"] = np.where(never, -1, (panel.month - panel.first_treated).clip(-4, 4))
    ours = fit_event_study_grouped(
        panel, **COLUMNS, window=(-4, 4), cluster="matched_set", weights="weight"
    ).tidy()
    theirs = pyfixest.feols(
        "y ~ i(event_time, ref=-1) | person + month",
        panel,
        vcov={"CRV1": "matched_set"},
        weights="weight",
        demeaner=pyfixest.MapDemeaner(fixef_tol=1e-14),
    ).tidy()
    assert_allclose(ours["estimate"], theirs["Estimate"], rtol=RTOL)
    assert_allclose(ours["std_error"], theirs["Std. Error"], rtol=RTOL)


@pytest.mark.parametrize("balanced", [True, False])
def test_collinear_design_rejected(balanced):
    """One cohort, no never-treated, window spanning every month: the indicators are the
    month dummies, so no coefficient is identified."""
    panel = make_panel(balanced=balanced).assign(first_treated=6)
    with pytest.raises(ValueError, match="collinear"):
        fit_event_study_grouped(panel, **COLUMNS, window=(-5, 8))


def test_simulation_bias_and_coverage():
    """Known path 0.5 + 0.1 min(e, 4) for e >= 0, no pre-trend, 200 seeded panels, CR1 by person.

    Coverage of a 95% interval over 200 replications has binomial sd 1.5 points; the band
    0.90-0.99 allows three of them plus the small-G CR1 approximation (120 people).
    """
    truth = np.array([0.0, 0.0, 0.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    estimates, covered = [], []
    for seed in range(200):
        panel = make_panel(balanced=False, seed=seed, n_people=120, n_months=12)
        tidy = fit_event_study_grouped(panel, **COLUMNS, window=(-4, 4), cluster="person").tidy()
        estimates.append(tidy["estimate"].to_numpy())
        covered.append((tidy["conf_low"] <= truth) & (truth <= tidy["conf_high"]))
    estimates = np.array(estimates)
    standard_error = estimates.std(axis=0) / np.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(axis=0) - truth) < 4 * standard_error)
    coverage = np.mean(covered, axis=0)
    assert np.all((coverage >= 0.90) & (coverage <= 0.99)), coverage


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.assign(weight=np.where(d.index == 5, 2.0, d.weight)),
            r"weights column 'weight' must be constant within each 'person'; 'person' = 0",
        ),
        (
            lambda d: d.assign(y=np.where(d.index == 3, np.inf, d.y)),
            r"outcome column 'y' has 1 infinite value\(s\) \(first at row 3: inf\)",
        ),
        (lambda d: d.assign(y=d.y.astype(str)), "outcome column 'y' must be numeric"),
        (lambda d: d.assign(weight=-d.weight), "weights column 'weight'.*negative"),
        (lambda d: d.drop(columns="month"), r"column\(s\) \['month'\] not found"),
        (lambda d: d.assign(first_treated=0), "column 'first_treated' is all 0/NaN/inf"),
    ],
    ids=["varying weight", "infinite outcome", "text outcome", "negative", "column", "never"],
)
def test_bad_input(change, message):
    panel = change(make_panel(balanced=True))
    with pytest.raises(ValueError, match=message):
        fit_event_study_grouped(panel, **COLUMNS, window=(-4, 4), weights="weight")


def test_bad_window():
    with pytest.raises(ValueError, match="window must be"):
        fit_event_study_grouped(make_panel(balanced=True), **COLUMNS, window=(0, 4))
