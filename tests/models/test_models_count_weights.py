"""Weighted Poisson regression (prior weights) against statsmodels' GLM."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from spimpact.models.count import fit_poisson


@pytest.fixture(scope="module")
def visits():
    rng = np.random.default_rng(8)
    n = 600
    frame = pd.DataFrame(
        {
            "person": np.repeat(np.arange(150), 4),
            "post": np.tile([0, 0, 1, 1], 150),
            "x": rng.normal(size=n),
            "days": rng.integers(20, 40, n),
        }
    )
    frame["referred"] = (frame.person < 75).astype(int)
    frame["w"] = rng.choice([0.5, 1.0, 3.0], 150)[frame.person]
    rate = np.exp(-3 + 0.3 * frame.x + 0.2 * frame.post + 0.4 * frame.post * frame.referred)
    frame["appointments"] = rng.poisson(frame.days * rate * rng.gamma(2, 0.5, 150)[frame.person])
    return frame


def test_weighted_poisson_matches_glm_var_weights(visits):
    """R: glm(appointments ~ x + post * referred + offset(log(days)), family = poisson,
    weights = w) -- the same fit as statsmodels GLM with var_weights (prior weights):
    coefficients and model-based SEs (X'WmuX)^-1 agree."""
    ours = fit_poisson(
        "appointments ~ x + post * referred", visits, exposure="days", weights="w"
    ).tidy()
    glm = smf.glm(
        "appointments ~ x + post * referred",
        visits,
        family=sm.families.Poisson(),
        offset=np.log(visits.days),
        var_weights=visits.w,
    ).fit(tol=1e-12)
    np.testing.assert_allclose(ours.estimate, glm.params, rtol=1e-7)
    np.testing.assert_allclose(ours.std_error, glm.bse, rtol=1e-6)


def test_weighted_poisson_with_absorbed_person_effects(visits):
    """Absorbing person effects equals estimating them as dummies (weighted GLM)."""
    ours = fit_poisson(
        "appointments ~ x + post:referred + post", visits, absorb="person", exposure="days",
        weights="w",
    ).tidy()  # fmt: skip
    glm = smf.glm(
        "appointments ~ x + post:referred + post + C(person)",
        visits,
        family=sm.families.Poisson(),
        offset=np.log(visits.days),
        var_weights=visits.w,
    ).fit(tol=1e-12)
    for term in ["x", "post:referred", "post"]:
        row = ours.set_index("term").loc[term]
        assert row.estimate == pytest.approx(glm.params[term], rel=1e-6)
        assert row.std_error == pytest.approx(glm.bse[term], rel=1e-5)


def test_zero_weight_rows_are_dropped_and_reported(visits):
    data = visits.assign(w=np.where(visits.person == 0, 0.0, visits.w))
    res = fit_poisson("appointments ~ x", data, exposure="days", weights="w")
    same = fit_poisson("appointments ~ x", data[data.person != 0], exposure="days", weights="w")
    np.testing.assert_allclose(res.tidy().estimate, same.tidy().estimate, rtol=1e-10)
    assert any("weight 0" in note for note in res.diagnostics)
    with pytest.raises(ValueError, match="negative"):
        fit_poisson("appointments ~ x", data.assign(w=-1.0), exposure="days", weights="w")
