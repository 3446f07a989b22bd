from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.models.inequality import (
    cumulative_rank_midpoints,
    fit_sii,
    poisson_funnel_limits,
    rate_ci,
    wilson_ci,
)
from spimpact.models.tidy import TIDY_COLUMNS

REF = Path(__file__).parent.parent / "reference" / "reach"
SII_REF = pd.read_csv(REF / "phe_sii_testdata.csv")


def _sii_block(record_no: int) -> pd.DataFrame:
    """The quantile rows of one PHE test case, starting at RecordNo ``record_no``."""
    start = SII_REF.index[SII_REF["RecordNo"] == record_no][0]
    first = SII_REF.loc[start]
    block = SII_REF.loc[start:]
    same = (block["Area"] == first["Area"]) & (block["TestDescription"] == first["TestDescription"])
    return block[same.cumprod().astype(bool)]


# record, value_type, transform, multiplier, conf_level, standard error given as
SII_CASES = [
    (1, "normal", False, 1, 0.95, "se"),
    (11, "normal", False, 1, 0.95, "limits"),
    (21, "normal", False, 1, 0.99, "limits"),
    (31, "normal", False, 1, 0.99, "limits"),
    (71, "rate", False, 1, 0.95, "limits"),
    (81, "rate", False, 1, 0.95, "limits"),
    (91, "proportion", False, 1, 0.95, "limits"),
    (101, "proportion", False, 1, 0.95, "limits"),
    (111, "proportion", False, 100, 0.95, "limits"),
    (131, "proportion", False, -100, 0.95, "limits"),
    (306, "rate", True, 1, 0.95, "limits"),
    (316, "rate", True, 1, 0.95, "limits"),
    (326, "proportion", True, 1, 0.95, "limits"),
    (346, "proportion", True, -1, 0.95, "limits"),
    (386, "rate", True, -1, 0.95, "limits"),
    (406, "rate", True, 1, 0.98, "limits"),
    (466, "proportion", True, 1, 0.98, "limits"),
]


@pytest.mark.parametrize(
    ("record", "value_type", "transform", "multiplier", "conf_level", "given"), SII_CASES
)
def test_sii_matches_pheindicatormethods(
    record, value_type, transform, multiplier, conf_level, given
):
    """PHEindicatormethods tests/testthat/testSII.R against testdata_SII.xlsx
    (ukhsa-collaboration/PHEindicatormethods, commit 093fd28), e.g.
    phe_sii(group_by(SII_test_grouped[1:20, 3:13], Area, Grouping1, Grouping2), Quantile,
    Population, value_type = 0, value = Value, se = StandardError, rii = TRUE,
    type = "standard"); value_type = 1/2 with lower_cl = LowerCL, upper_cl = UpperCL,
    transform, multiplier and confidence as in the row's TestDescription.

    SII, RII and intercept are deterministic and match to 1e-6 (the sheet holds 6
    decimals). The limits come from 100,000 simulated draws with a different random
    stream from R's, so they agree only to Monte Carlo error: the 2.5th percentile of
    1e5 draws has SE ~0.2% of the interval width; we allow 1.5% of the width."""
    block = _sii_block(record)
    expected = block.iloc[0]
    interval = (
        {"std_error": "StandardError"}
        if given == "se"
        else {"conf_low": "LowerCL", "conf_high": "UpperCL"}
    )
    fit = fit_sii(
        block,
        quantile="Quantile",
        population="Population",
        value="Value",
        value_type=value_type,
        transform=transform,
        multiplier=multiplier,
        conf_level=conf_level,
        seed=20240601,
        **interval,
    )
    assert_allclose([fit.sii, fit.rii], [expected["sii"], expected["rii"]], rtol=1e-6)
    if pd.notna(expected["Intercept"]):
        assert_allclose(fit.intercept, expected["Intercept"], rtol=1e-6)
    sii_width = abs(expected["sii_uppercl_1"] - expected["sii_lowercl_1"])
    rii_width = abs(expected["rii_uppercl_1"] - expected["rii_lowercl_1"])
    assert_allclose(
        [fit.sii_conf_low, fit.sii_conf_high],
        [expected["sii_lowercl_1"], expected["sii_uppercl_1"]],
        atol=0.015 * sii_width,
    )
    assert_allclose(
        [fit.rii_conf_low, fit.rii_conf_high],
        [expected["rii_lowercl_1"], expected["rii_uppercl_1"]],
        atol=0.015 * rii_width,
    )


@pytest.mark.parametrize("record", [246, 256, 266, 276, 286, 296])
def test_sii_intercept_matches_pheindicatormethods(record):
    """testSII.R "test default with intercept": phe_sii(..., intercept = TRUE)."""
    block = _sii_block(record)
    value_type = {0: "normal", 1: "rate", 2: "proportion"}[int(block["ValueType"].iloc[0])]
    fit = fit_sii(
        block,
        quantile="Quantile",
        population="Population",
        value="Value",
        conf_low="LowerCL",
        conf_high="UpperCL",
        value_type=value_type,
        repetitions=1000,
        seed=1,
    )
    assert_allclose(fit.intercept, block["Intercept"].iloc[0], rtol=1e-6)


@pytest.mark.parametrize("record", [61, 66])
def test_sii_on_quintiles_matches_pheindicatormethods(record):
    """testSII.R "default - testing quintiles" (5 quantiles; no limits in the sheet)."""
    block = _sii_block(record)
    fit = fit_sii(
        block,
        quantile="Quantile",
        population="Population",
        value="Value",
        std_error="StandardError",
        repetitions=1000,
        seed=1,
    )
    assert_allclose([fit.sii, fit.rii], block[["sii", "rii"]].iloc[0], rtol=1e-6)


def test_sii_is_reproducible_with_a_seed_and_tidy_has_broom_columns():
    block = _sii_block(1)
    kwargs = dict(
        quantile="Quantile",
        population="Population",
        value="Value",
        std_error="StandardError",
        repetitions=2000,
    )
    first = fit_sii(block, seed=5, **kwargs)
    second = fit_sii(block, seed=5, **kwargs)
    assert first.tidy().equals(second.tidy())
    tidy = first.tidy()
    assert tuple(tidy.columns) == TIDY_COLUMNS
    assert tidy["term"].tolist() == ["sii", "rii"]
    assert tidy.loc[0, "conf_low"] < tidy.loc[0, "estimate"] < tidy.loc[0, "conf_high"]
    assert "Slope index of inequality" in first.summary()
    ax = first.plot()
    assert len(ax.collections) == 1
    plt.close(ax.figure)


def test_rank_midpoints_follow_phe_documentation():
    """phe_sii docs: quantile 1 with 12% of the population has relative rank 0.06 and
    quantile 2 with 10% has 0.12 + 0.10 / 2 = 0.17."""
    assert_allclose(cumulative_rank_midpoints([12, 10, 78]), [0.06, 0.17, 0.61])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Population": -1}, "must be positive"),
        ({"Value": np.nan}, "missing"),
    ],
)
def test_sii_bad_input_raises(change, message):
    block = _sii_block(1).copy()
    column, new = next(iter(change.items()))
    block.loc[block.index[0], column] = new
    with pytest.raises(ValueError, match=message):
        fit_sii(
            block,
            quantile="Quantile",
            population="Population",
            value="Value",
            std_error="StandardError",
            repetitions=1000,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"value_type": "count"}, "value_type"),
        ({"transform": True}, "transform=True needs"),
        ({"repetitions": 10}, "at least 1000"),
        ({"std_error": None}, "either std_error"),
    ],
)
def test_sii_bad_options_raise(kwargs, message):
    options = (
        dict(quantile="Quantile", population="Population", value="Value", std_error="StandardError")
        | kwargs
    )
    with pytest.raises(ValueError, match=message):
        fit_sii(_sii_block(1), **options)


RATE_REF = pd.read_csv(REF / "phe_rate_testdata.csv").dropna(subset=["Numerator", "Denominator"])
PROPORTION_REF = pd.read_csv(REF / "phe_proportion_testdata.csv").dropna(
    subset=["Numerator", "Denominator"]
)


@pytest.mark.parametrize("conf_level", [0.95, 0.998])
def test_rate_ci_matches_phe_rate(conf_level):
    """PHEindicatormethods tests/testthat/testRates.R against testdata_Rate.xlsx sheet
    testdata_Rate: phe_rate(df, Numerator, Denominator, confidence = c(0.95, 0.998),
    multiplier = 100 or 100000); exact Poisson below 10 events, Byar's from 10."""
    suffix = "95_0cl" if conf_level == 0.95 else "99_8cl"
    unknown = rate_ci(
        RATE_REF["Numerator"], RATE_REF["Denominator"], conf_level=conf_level, per=1.0
    )
    multiplier = RATE_REF["multiplier"].to_numpy()
    assert_allclose(unknown["rate"] * multiplier, RATE_REF["value"], rtol=1e-6)
    assert_allclose(unknown["conf_low"] * multiplier, RATE_REF[f"lower{suffix}"], rtol=1e-6)
    assert_allclose(unknown["conf_high"] * multiplier, RATE_REF[f"upper{suffix}"], rtol=1e-6)
    expected_method = RATE_REF["method"].map({"Exact": "exact", "Byars": "byar"})
    assert unknown["method"].tolist() == expected_method.tolist()


@pytest.mark.parametrize("conf_level", [0.95, 0.998])
def test_wilson_ci_matches_phe_proportion(conf_level):
    """PHEindicatormethods testProportions.R against testdata_Proportion.xlsx sheet
    testdata_Prop: phe_proportion(df, Numerator, Denominator, confidence = c(0.95,
    0.998), multiplier = 1 or 100) (Wilson score interval)."""
    suffix = "95_0cl" if conf_level == 0.95 else "99_8cl"
    unknown = wilson_ci(
        PROPORTION_REF["Numerator"], PROPORTION_REF["Denominator"], conf_level=conf_level
    )
    multiplier = PROPORTION_REF["multiplier"].to_numpy()
    assert_allclose(unknown["conf_low"] * multiplier, PROPORTION_REF[f"lower{suffix}"], rtol=1e-5)
    assert_allclose(unknown["conf_high"] * multiplier, PROPORTION_REF[f"upper{suffix}"], rtol=1e-5)


def test_rate_ci_zero_events_has_zero_lower_limit():
    out = rate_ci([0], [1000], per=1000)
    assert out.loc[0, "conf_low"] == 0
    # Exact upper limit for 0 events is -log(0.025) = 3.689 events.
    assert_allclose(out.loc[0, "conf_high"], -np.log(0.025), rtol=1e-9)


@pytest.mark.parametrize(
    ("function", "args", "message"),
    [
        (rate_ci, ([1, 2], [10]), "same length"),
        (rate_ci, ([-1], [10]), "non-negative"),
        (rate_ci, ([1], [0]), "positive"),
        (rate_ci, ([np.nan], [10]), "missing"),
        (wilson_ci, ([5], [4]), "successes <= trials"),
    ],
)
def test_interval_bad_input_raises(function, args, message):
    with pytest.raises(ValueError, match=message):
        function(*args)


@pytest.mark.slow
@pytest.mark.parametrize(("value_type", "transform"), [("normal", False), ("rate", True)])
def test_sii_interval_covers_true_gradient(value_type, transform):
    """Simulation: deciles with unequal populations and a known linear (normal) or
    log-linear (rate) gradient; observed values drawn around the truth with their
    standard errors. The 95% simulation interval should cover the true SII in about
    95% of 400 replications (binomial SE 1.1 points; we accept 91-99%)."""
    rng = np.random.default_rng(7)
    n_rep = 400
    population = rng.integers(5_000, 30_000, size=10).astype(float)
    rank = cumulative_rank_midpoints(population)
    if value_type == "normal":
        truth = 70 + 10 * rank
        true_sii = 10.0
        se = np.full(10, 1.0)
    else:
        truth = np.exp(np.log(0.05) - 0.8 * rank)
        true_sii = 0.05 * (np.exp(-0.8) - 1)
        se = np.full(10, 0.05)  # on the log scale
    covered = []
    estimates = []
    for _ in range(n_rep):
        if value_type == "normal":
            observed = rng.normal(truth, se)
            frame = pd.DataFrame({"q": range(10), "pop": population, "v": observed, "se": se})
            fit = fit_sii(
                frame,
                quantile="q",
                population="pop",
                value="v",
                std_error="se",
                repetitions=2000,
                seed=rng,
            )
        else:
            observed = np.exp(rng.normal(np.log(truth), se))
            frame = pd.DataFrame(
                {
                    "q": range(10),
                    "pop": population,
                    "v": observed,
                    "low": observed * np.exp(-1.959964 * se),
                    "high": observed * np.exp(1.959964 * se),
                }
            )
            fit = fit_sii(
                frame,
                quantile="q",
                population="pop",
                value="v",
                conf_low="low",
                conf_high="high",
                value_type="rate",
                transform=transform,
                repetitions=2000,
                seed=rng,
            )
        estimates.append(fit.sii)
        covered.append(fit.sii_conf_low <= true_sii <= fit.sii_conf_high)
    coverage = np.mean(covered)
    bias = np.mean(estimates) - true_sii
    assert 0.91 <= coverage <= 0.99, coverage
    assert abs(bias) < 3 * np.std(estimates) / np.sqrt(n_rep), bias


@pytest.mark.parametrize("mean_events", [400.0, 2500.0])
@pytest.mark.parametrize("p", [0.001, 0.025, 0.975, 0.999])
def test_funnel_limits_bracket_the_poisson_quantile(mean_events, p):
    """Spiegelhalter (2005) appendix A.1.1: the interpolated limit lies between
    r_p - 1 and r_p, where r_p is the Poisson p-quantile, and is close to the normal
    approximation for large expected counts."""
    n = 10_000.0
    target = mean_events / n
    limit_events = poisson_funnel_limits(target, [n], p)[0] * n
    r = stats.poisson.ppf(p, mean_events)
    assert r - 1 <= limit_events <= r
    normal = mean_events + stats.norm.ppf(p) * np.sqrt(mean_events)
    assert limit_events == pytest.approx(normal, rel=0.02)
