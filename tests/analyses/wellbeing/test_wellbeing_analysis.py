import numpy as np
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy import stats
from simulated_wellbeing import TRUE_CHANGE, make_scheme
from statsmodels.stats.power import NormalIndPower

from spimpact.analyses.wellbeing.analysis import WellbeingResult, analyse_wellbeing
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import TIDY_COLUMNS
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData


@pytest.fixture(scope="module")
def params():
    return SchemeParams(scheme_id="test", title="Test scheme", data_dir=".")


@pytest.fixture(scope="module")
def scheme():
    return make_scheme()


@pytest.fixture(scope="module")
def result(scheme, params):
    scores, clients = scheme
    return analyse_wellbeing(scores, clients, score="swemwbs_metric", params=params)


@pytest.mark.parametrize("timepoint", [1, 2])
def test_mixed_model_change_covers_the_true_change(result, timepoint):
    row = result.change.set_index("timepoint").loc[timepoint]
    assert row.conf_low < TRUE_CHANGE[timepoint] < row.conf_high
    assert row.estimate == pytest.approx(TRUE_CHANGE[timepoint], abs=0.4)


def test_headline_is_the_unstructured_mmrm_with_kenward_roger_df(scheme, result):
    """The headline change is fit_mmrm's visit contrast (unstructured covariance, REML,
    Kenward-Roger df, adjusted for sex, age band and IMD quintile) with its t interval."""
    from spimpact.models.mmrm import fit_mmrm

    scores, clients = scheme
    data = scores.merge(clients, on="client_id").assign(
        sex=lambda d: d.sex.astype("string"),
        age_band=lambda d: d.age_band.astype("string"),
        imd_quintile=lambda d: d.imd_quintile.astype("string"),
    )
    oracle = fit_mmrm(
        "value ~ C(timepoint) + C(sex) + C(age_band) + C(imd_quintile)",
        data,
        subject="client_id",
        visit="timepoint",
        covariance="us",
        df="kenward_roger",
    ).contrasts("timepoint", reference=0)
    assert result.model.covariance_type == "us"
    assert result.covariates == ("sex", "age_band", "imd_quintile")
    columns = ["estimate", "std_error", "conf_low", "conf_high", "df"]
    assert_allclose(result.change[columns], oracle[columns], rtol=1e-8)
    half = result.change.conf_high - result.change.estimate
    assert_allclose(half, stats.t.ppf(0.975, result.change.df) * result.change.std_error)


def test_random_intercept_sensitivity_matches_statsmodels(scheme, result):
    """Oracle: statsmodels MixedLM on the same adjusted model gives the same contrasts."""
    scores, clients = scheme
    data = scores.merge(clients, on="client_id").assign(
        imd_quintile=lambda d: d.imd_quintile.astype(str)
    )
    oracle = smf.mixedlm(
        "value ~ C(timepoint) + C(sex) + C(age_band) + C(imd_quintile)",
        data,
        groups=data.client_id,
    ).fit(reml=True, method="bfgs", gtol=1e-10)
    expected = oracle.fe_params[["C(timepoint)[T.1]", "C(timepoint)[T.2]"]].to_numpy()
    np.testing.assert_allclose(result.random_intercept_change.estimate, expected, atol=1e-6)


def test_paired_change_effect_sizes_and_detectable_change(scheme, result):
    """Paired t interval, SRM = d_z = mean/SD of change, ES = mean/SD at baseline, and
    the MDC is the effect statsmodels' one-sample power solver finds for 80% power."""
    scores, _ = scheme
    wide = scores.pivot(index="client_id", columns="timepoint", values="value")
    pairs = wide[[0, 2]].dropna()
    diff = pairs[2] - pairs[0]
    row = result.paired.set_index("timepoint").loc[2]
    t_ci = stats.ttest_1samp(diff, 0).confidence_interval(0.95)
    assert row.n_pairs == len(diff)
    assert row.mean_change == pytest.approx(diff.mean())
    assert (row.conf_low, row.conf_high) == pytest.approx((t_ci.low, t_ci.high))
    assert row.srm == pytest.approx(diff.mean() / diff.std(ddof=1))
    assert row.effect_size == pytest.approx(diff.mean() / wide[0].std(ddof=1))
    # ratio=0: one-sample (paired) normal power calculation. statsmodels also counts
    # rejections in the wrong tail, which moves the answer by ~2e-6 relative.
    standardised = NormalIndPower().solve_power(
        nobs1=len(diff), alpha=0.05, power=0.8, ratio=0, alternative="two-sided"
    )
    assert row.detectable_change == pytest.approx(standardised * diff.std(ddof=1), rel=1e-5)


def test_regression_to_the_mean_uses_norms_matched_on_sex(scheme, result):
    """SPEC §5.4: expected change = (1 - r)(population mean - baseline mean); SWEMWBS
    r = 0.70 and norms 23.7 (men), 23.2 (women) from spimpact.scoring.SCORES."""
    scores, clients = scheme
    baseline = scores[scores.timepoint == 0].merge(clients, on="client_id")
    population = np.where(baseline.sex == "male", 23.7, 23.2).mean()
    rtm = result.regression_to_mean.iloc[0]
    assert rtm.population_mean == pytest.approx(population)
    assert rtm.baseline_mean == pytest.approx(baseline.value.mean())
    assert rtm.expected_change == pytest.approx(0.3 * (population - baseline.value.mean()))
    assert rtm.expected_change > 0


def test_categories_match_classify_change(result):
    """SWEMWBS: meaningful 1.03, reliable 2.87 (Shah et al. 2018) via spimpact.scoring."""
    improvement = result.individual_improvement
    at_two = improvement[improvement.timepoint == 2].improvement
    table = result.categories.set_index(["timepoint", "classification", "category"]).n
    assert table[(2, "meaningful", "improved")] == (at_two >= 1.03 - 1e-9).sum()
    assert table[(2, "reliable", "reliable improvement")] == (at_two >= 2.87 - 1e-9).sum()


@pytest.mark.parametrize(("sex_effect", "differs"), [(2.0, True), (0.0, False)])
def test_subgroup_likelihood_ratio_test(params, sex_effect, differs):
    scores, clients = make_scheme(n_clients=300, seed=5, sex_effect=sex_effect)
    result = analyse_wellbeing(scores, clients, score="swemwbs_metric", params=params)
    test = result.subgroup_tests.set_index("subgroup").loc["sex"]
    assert test.df == 2
    assert (test.p_value < 0.001) if differs else (test.p_value > 0.05)
    men = result.subgroups.query("subgroup == 'sex' and level == 'male' and timepoint == 2")
    women = result.subgroups.query("subgroup == 'sex' and level == 'female' and timepoint == 2")
    gap = men.estimate.iloc[0] - women.estimate.iloc[0]
    assert gap == pytest.approx(sex_effect, abs=0.8)


def test_likelihood_ratio_statistic_matches_statsmodels(params):
    """Oracle: 2 (loglik_full - loglik_reduced) from statsmodels ML fits."""
    scores, clients = make_scheme(n_clients=200, seed=8, sex_effect=1.0)
    result = analyse_wellbeing(scores, clients, score="swemwbs_metric", params=params)
    data = scores.merge(clients, on="client_id")
    fits = [
        smf.mixedlm(formula, data, groups=data.client_id).fit(reml=False, method="bfgs")
        for formula in ("value ~ C(timepoint) * C(sex)", "value ~ C(timepoint) + C(sex)")
    ]
    expected = 2 * (fits[0].llf - fits[1].llf)
    statistic = result.subgroup_tests.set_index("subgroup").loc["sex", "statistic"]
    assert statistic == pytest.approx(expected, abs=1e-4)


def test_too_few_pairs_is_insufficient_data(params):
    scores, clients = make_scheme(n_clients=6, seed=2)
    with pytest.raises(InsufficientData, match="Fewer than 8 people"):
        analyse_wellbeing(scores, clients, score="swemwbs_metric", params=params)


def test_unknown_score_is_rejected(scheme, params):
    scores, clients = scheme
    with pytest.raises(ValueError, match="unknown score 'swemwbs'"):
        analyse_wellbeing(scores, clients, score="swemwbs", params=params)


@pytest.mark.parametrize(
    ("scheme_id", "score"),
    [
        ("north_shore", "swemwbs_metric"),
        ("riverside", "ons4_life_satisfaction"),
        ("riverside", "ons4_anxiety"),
        ("hillcrest", "who5_pct"),
    ],
)
def test_example_schemes_recover_their_true_change(example_data, load_example, scheme_id, score):
    """End to end from the example exports (contract tables, a platform's CSV export, a
    coded GP extract) through their mapping files: load, score, fit; the interval covers
    the change written in truth.json (computed by Monte Carlo through the same items and
    scoring). The exports' gaps (follow-ups not entered, ...) are completely at random, so
    the truth still holds (spimpact.synthetic.recording)."""
    import json

    from spimpact.analyses.measures import score_scheme

    folder = example_data / scheme_id
    truth = json.loads((folder / "truth.json").read_text())["wellbeing"]
    true_change = next(v[score] for v in truth.values() if score in v)
    scheme = load_example(folder)
    params = SchemeParams(scheme_id=scheme_id, title=scheme_id, data_dir=folder)
    scores = score_scheme(scheme, params).scores
    result = analyse_wellbeing(scores, scheme.clients, score=score, params=params)
    change = result.change.set_index("timepoint")
    for timepoint in (1, 2):
        row = change.loc[timepoint]
        assert row.conf_low < true_change[str(timepoint)] < row.conf_high, (timepoint, row)


def test_result_tidy_is_the_model_change_at_any_level(result):
    """tidy() at the fitted level is the change frame; at 90% the interval is
    estimate -/+ t_{0.95, df} SE on the MMRM's Kenward-Roger df."""
    assert isinstance(result, WellbeingResult)
    assert isinstance(result, EstimatorResult)
    tidy = result.tidy()
    assert list(tidy.columns) == list(TIDY_COLUMNS)
    assert list(tidy.term) == ["timepoint 1 - 0", "timepoint 2 - 0"]
    columns = ["estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]
    assert_allclose(tidy[columns], result.change[columns], rtol=1e-12)
    narrow = result.tidy(conf_level=0.90)
    assert_allclose(
        narrow.conf_high - narrow.estimate,
        stats.t.ppf(0.95, result.change.df) * tidy.std_error,
        rtol=1e-12,
    )
    assert result.label == "SWEMWBS (metric score)"
    assert result.higher_is_better
    assert "SWEMWBS" in result.summary()
    assert result._repr_html_().startswith("<pre>")
