"""Poisson regression with exposure offset and absorbed fixed effects against published output."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from spimpact.models.count import fit_poisson

REF = Path(__file__).parent.parent / "reference" / "did"
FIXED_EFFECTS = ["Origin", "Destination", "Product", "Year"]


@pytest.fixture(scope="module")
def trade():
    return pd.read_csv(REF / "trade.csv.gz")


@pytest.fixture(scope="module")
def british_doctors():
    """Doll & Hill's British doctors: coronary deaths and person-years by age group and
    smoking, as tabulated in Dobson & Barnett (2008), Table 9.1."""
    return pd.DataFrame(
        {
            "agecat": [1, 2, 3, 4, 5] * 2,
            "smoke": [1] * 5 + [0] * 5,
            "deaths": [32, 104, 206, 186, 102, 2, 12, 28, 28, 31],
            "person_years": [52407, 43248, 28612, 12663, 5317, 18790, 10673, 5710, 2585, 1462],
        }
    )


def test_exposure_offset_matches_dobson_barnett(british_doctors):
    """Dobson & Barnett (2008), An Introduction to Generalized Linear Models, 3rd ed.,
    section 9.2.1, Table 9.2: log(deaths/person-years) on agecat, agesq, smoke, smkage;
    estimates -10.79 (0.450), 2.376 (0.208), -0.198 (0.027), 1.441 (0.372),
    -0.308 (0.097); deviance 1.635. R: glm(deaths ~ agecat + I(agecat^2) + smoke +
    smoke:agecat + offset(log(person_years)), family = poisson)."""
    result = fit_poisson(
        "deaths ~ agecat + I(agecat**2) + smoke + smoke:agecat",
        british_doctors,
        exposure="person_years",
    )
    tidy = result.tidy()
    assert_allclose(tidy["estimate"], [-10.79, 2.376, -0.198, 1.441, -0.308], atol=0.0051)
    assert_allclose(tidy["estimate"].iloc[1:], [2.376, -0.198, 1.441, -0.308], atol=5.1e-4)
    assert_allclose(tidy["std_error"], [0.450, 0.208, 0.027, 0.372, 0.097], atol=5.1e-4)
    assert result.deviance == pytest.approx(1.635, abs=5e-4)
    assert result.converged


def test_model_based_se_equals_statsmodels_glm(british_doctors):
    """Same model through statsmodels GLM: agreement to numerical precision."""
    data = british_doctors.assign(agesq=british_doctors.agecat**2)
    x = sm.add_constant(data[["agecat", "agesq", "smoke"]].assign(sa=data.smoke * data.agecat))
    glm = sm.GLM(
        data.deaths, x, family=sm.families.Poisson(), offset=np.log(data.person_years)
    ).fit()
    ours = fit_poisson(
        "deaths ~ agecat + agesq + smoke + smoke:agecat", data, exposure="person_years"
    ).tidy()
    assert_allclose(ours["estimate"], glm.params, rtol=1e-8)
    assert_allclose(ours["std_error"], glm.bse, rtol=1e-6)


@pytest.mark.parametrize(
    ("cluster", "expected_se"),
    [
        # fixest walkthrough: print(gravity_pois), clustered by the first FE (Origin)
        ("Origin", 0.115678),
        # fixest walkthrough: summary(gravity_pois, cluster = ~Product)
        ("Product", 0.098294),
    ],
)
def test_absorbed_fixed_effects_match_fixest_fepois(trade, cluster, expected_se):
    """R: gravity_pois = fepois(Euros ~ log(dist_km) | Origin + Destination + Product +
    Year, trade) (fixest walkthrough vignette): log(dist_km) -1.52787; 38,325 rows;
    fixed effects Origin 15, Destination 15, Product 20, Year 10."""
    result = fit_poisson("Euros ~ np.log(dist_km)", trade, absorb=FIXED_EFFECTS, cluster=cluster)
    tidy = result.tidy()
    assert tidy["estimate"].iloc[0] == pytest.approx(-1.52787, abs=5e-6)
    assert tidy["std_error"].iloc[0] == pytest.approx(expected_se, abs=5e-7)
    assert result.n_obs == 38325
    assert result.n_absorbed_levels == (15, 15, 20, 10)


def test_no_fixed_effects_cluster_matches_fixest(trade):
    """R: fepois(Euros ~ log(dist_km), trade, vcov = ~Product) (fixest walkthrough):
    (Intercept) 24.70889 (0.330044), log(dist_km) -1.02896 (0.045954). fixest stops its
    IRLS at glm.tol = 1e-8 while ours runs to 1e-10, which moves the SEs in the fifth
    significant digit, hence rtol 1e-4 on the SEs."""
    result = fit_poisson("Euros ~ np.log(dist_km)", trade, cluster="Product")
    tidy = result.tidy()
    assert_allclose(tidy["estimate"], [24.70889, -1.02896], atol=5e-6)
    assert_allclose(tidy["std_error"], [0.330044, 0.045954], rtol=1e-4)


def test_rate_ratios_and_summary(british_doctors):
    result = fit_poisson("deaths ~ smoke", british_doctors, exposure="person_years")
    log_scale = result.tidy()
    ratio = result.tidy(exponentiate=True)
    assert_allclose(ratio["estimate"], np.exp(log_scale["estimate"]))
    assert_allclose(ratio["conf_low"], np.exp(log_scale["conf_low"]))
    assert "Rate ratios" in result.summary()
    assert "model-based" in result.summary()


def test_all_zero_groups_are_dropped_with_a_note():
    rng = np.random.default_rng(11)
    data = pd.DataFrame({"person": np.repeat(np.arange(60), 4), "post": np.tile([0, 0, 1, 1], 60)})
    data["visits"] = rng.poisson(np.exp(0.5 + 0.3 * data["post"]))
    data.loc[data["person"] < 5, "visits"] = 0
    result = fit_poisson("visits ~ post", data, absorb="person", cluster="person")
    assert result.n_obs == 55 * 4
    assert any("always 0" in note for note in result.diagnostics)


def test_fixed_effects_equal_dummy_glm():
    """Absorbing a factor gives the same slope and model-based SE as estimating its dummies."""
    rng = np.random.default_rng(12)
    data = pd.DataFrame({"person": np.repeat(np.arange(40), 6), "x": rng.normal(size=240)})
    data["days"] = rng.integers(20, 40, size=240)
    data["visits"] = rng.poisson(data["days"] / 30 * np.exp(0.3 * data["x"] + data["person"] % 3))
    absorbed = fit_poisson("visits ~ x", data, absorb="person", exposure="days").tidy()
    dummies = fit_poisson("visits ~ x + C(person)", data, exposure="days").tidy()
    dummies = dummies.set_index("term").loc["x"]
    assert absorbed["estimate"].iloc[0] == pytest.approx(dummies["estimate"], rel=1e-7)
    assert absorbed["std_error"].iloc[0] == pytest.approx(dummies["std_error"], rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exposure": "nope"}, "not found"),
        ({"exposure": "smoke"}, "strictly positive"),
        ({"absorb": ["agecat", "missing"]}, "not found"),
    ],
)
def test_bad_input(british_doctors, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_poisson("deaths ~ smoke", british_doctors, **kwargs)


def test_negative_counts_rejected(british_doctors):
    data = british_doctors.assign(deaths=british_doctors.deaths - 50)
    with pytest.raises(ValueError, match="non-negative"):
        fit_poisson("deaths ~ smoke", data)
