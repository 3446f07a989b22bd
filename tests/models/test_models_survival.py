import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.models.survival import fit_cox, fit_kaplan_meier, fit_logrank

# Freireich et al. (1963) remission times (weeks), as tabulated by Gehan (1965) and in
# Kleinbaum & Klein, Survival Analysis: A Self-Learning Text, 3rd ed. (2012), ch. 2.
SIX_MP_TIME = [6, 6, 6, 7, 10, 13, 16, 22, 23, 6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
SIX_MP_EVENT = [1] * 9 + [0] * 12
PLACEBO_TIME = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


@pytest.fixture(scope="module")
def freireich():
    return pd.DataFrame(
        {
            "weeks": SIX_MP_TIME + PLACEBO_TIME,
            "relapse": SIX_MP_EVENT + [1] * 21,
            "arm": ["6-MP"] * 21 + ["placebo"] * 21,
        }
    )


def test_kaplan_meier_matches_kleinbaum_klein_6mp(freireich):
    """Kleinbaum & Klein (2012), ch. 2, KM table for the 6-MP group:
    S(6)=0.8571, S(7)=0.8067, S(10)=0.7529, S(13)=0.6902, S(16)=0.6275, S(22)=0.5378,
    S(23)=0.4482 (R: survfit(Surv(weeks, relapse) ~ arm)); exact fractions below."""
    km = fit_kaplan_meier(freireich, duration="weeks", event="relapse", group="arm")
    six_mp = km.tidy().query("strata == '6-MP' and n_event > 0")
    assert six_mp["time"].tolist() == [6, 7, 10, 13, 16, 22, 23]
    expected = np.cumprod([18 / 21, 16 / 17, 14 / 15, 11 / 12, 10 / 11, 6 / 7, 5 / 6])
    assert_allclose(six_mp["estimate"], expected, rtol=1e-12)
    assert_allclose(
        six_mp["estimate"], [0.8571, 0.8067, 0.7529, 0.6902, 0.6275, 0.5378, 0.4482], atol=5e-5
    )
    assert six_mp["n_risk"].tolist() == [21, 17, 15, 12, 11, 7, 6]


def test_kaplan_meier_interval_is_log_minus_log_greenwood(freireich):
    """The stated transform: Greenwood variance on log(-log S) (Kalbfleisch & Prentice
    2002, eq. 1.12), computed here from the risk sets, as R's conf.type = "log-log"."""
    km = fit_kaplan_meier(freireich, duration="weeks", event="relapse", group="arm", conf_level=0.9)
    six_mp = km.tidy().query("strata == '6-MP' and n_event > 0")
    d, n, s = (
        six_mp["n_event"].to_numpy(),
        six_mp["n_risk"].to_numpy(),
        six_mp["estimate"].to_numpy(),
    )
    greenwood = np.cumsum(d / (n * (n - d)))
    se_loglog = np.sqrt(greenwood) / np.abs(np.log(s))
    z = stats.norm.ppf(0.95)
    assert_allclose(six_mp["conf_low"], s ** np.exp(z * se_loglog), rtol=1e-8)
    assert_allclose(six_mp["conf_high"], s ** np.exp(-z * se_loglog), rtol=1e-8)


def test_logrank_matches_kleinbaum_klein(freireich):
    """Kleinbaum & Klein (2012), ch. 2: log-rank chi-square 16.79 for 6-MP vs placebo
    (R: survdiff(Surv(weeks, relapse) ~ arm) prints Chisq = 16.8 on 1 df, p = 4e-05)."""
    test = fit_logrank(freireich, duration="weeks", event="relapse", group="arm")
    assert_allclose(test.statistic, 16.79, atol=5e-3)
    assert test.df == 1
    assert_allclose(test.p_value, 4e-5, rtol=0.1)  # printed to one significant digit


def test_cox_matches_fox_weisberg_rossi():
    """Fox & Weisberg (2018), 'Cox Proportional-Hazards Regression for Survival Data in
    R', appendix to An R Companion to Applied Regression, 3rd ed.:
    coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi)
    coef: finyes -0.37942, age -0.05744, raceother -0.31390, wexpyes -0.14980,
    marnot married 0.43370, paroyes -0.08487, prio 0.09150; se(coef) 0.19138, 0.02200,
    0.30799, 0.21222, 0.38187, 0.19576, 0.02865. lifelines' bundled copy codes race = 1
    for black and mar = 1 for married, so those two signs flip."""
    rossi = load_rossi()
    res = fit_cox(
        rossi,
        duration="week",
        event="arrest",
        formula="fin + age + race + wexp + mar + paro + prio",
    )
    tidy = res.tidy().set_index("term").loc[["fin", "age", "race", "wexp", "mar", "paro", "prio"]]
    assert_allclose(
        tidy["estimate"],
        [-0.37942, -0.05744, 0.31390, -0.14980, -0.43370, -0.08487, 0.09150],
        atol=5e-6,
    )
    assert_allclose(
        tidy["std_error"],
        [0.19138, 0.02200, 0.30799, 0.21222, 0.38187, 0.19576, 0.02865],
        atol=5e-6,
    )
    hazard_ratios = res.tidy(exponentiate=True).set_index("term")
    assert_allclose(hazard_ratios.loc["fin", "estimate"], 0.68426, atol=5e-6)
    assert res.n == 432 and res.n_events == 114
    assert set(res.proportional_hazards["term"]) == {
        "fin",
        "age",
        "race",
        "wexp",
        "mar",
        "paro",
        "prio",
    }


def test_plot_points_hide_small_steps_and_small_risk_sets(freireich):
    km = fit_kaplan_meier(freireich, duration="weeks", event="relapse", group="arm")
    points = km.plot_points(min_at_risk=8, min_events_per_step=3)
    table = km.tidy()
    for stratum, rows in points.groupby("strata"):
        full = table[table["strata"] == stratum]
        drops = rows["time"][rows["estimate"].diff() < 0]
        previous = 0.0
        for time in drops:
            n_events = full.loc[(full["time"] > previous) & (full["time"] <= time), "n_event"].sum()
            assert n_events >= 3
            previous = time
        shown = full[full["time"] <= rows["time"].max()]
        assert shown["n_risk"].min() >= 8
    # a group with fewer events than the step size is not drawn at all
    assert km.plot_points(min_events_per_step=10)["strata"].unique().tolist() == ["placebo"]
    ax = km.plot(min_at_risk=8, min_events_per_step=3)
    assert len(ax.get_lines()) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weeks": -1.0}, "non-negative"),
        ({"relapse": 2}, "0/1"),
        ({"arm": None}, "missing"),
    ],
)
def test_survival_rejects_bad_input(freireich, change, message):
    data = freireich.copy()
    column, value = next(iter(change.items()))
    data.loc[0, column] = value
    with pytest.raises(ValueError, match=message):
        fit_kaplan_meier(data, duration="weeks", event="relapse", group="arm")


def test_logrank_needs_two_groups(freireich):
    with pytest.raises(ValueError, match="two groups"):
        fit_logrank(freireich.assign(arm="one"), duration="weeks", event="relapse", group="arm")


@pytest.mark.parametrize("ties", ["weeks", "days apart"])
def test_proportional_hazards_test_equals_lifelines(ties):
    """Our O(n log n) Schoenfeld test gives lifelines' proportional_hazard_test(time_transform
    = "rank") on the Rossi data (Fox & Weisberg 2018): with its many tied weeks, and with
    the ties broken."""
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    from spimpact.models.survival import proportional_hazards_test

    rossi = load_rossi()
    if ties == "days apart":
        rossi["week"] = rossi["week"] + np.random.default_rng(2).random(len(rossi))
    formula = "fin + age + race + wexp + mar + paro + prio"
    fitter = CoxPHFitter().fit(rossi, duration_col="week", event_col="arrest", formula=formula)
    known = proportional_hazard_test(fitter, rossi, time_transform="rank").summary
    known.index = known.index.astype(str)
    ours = proportional_hazards_test(fitter, rossi).set_index("term")
    assert list(ours.index) == list(known.index)
    assert_allclose(ours["statistic"], known["test_statistic"], rtol=1e-9)
    assert_allclose(ours["p_value"], known["p"], rtol=1e-9)
