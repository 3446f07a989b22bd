from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.meta_analysis import combine_effects

from spimpact.models.meta import fit_random_effects, i2_from_tau2, plot_funnel
from spimpact.models.tidy import TIDY_COLUMNS

matplotlib.use("Agg")

REF = Path(__file__).parent.parent / "reference" / "meta"


def bcg_log_risk_ratios():
    """metafor: escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)."""
    bcg = pd.read_csv(REF / "dat_bcg.csv")
    yi = np.log(bcg.tpos / (bcg.tpos + bcg.tneg)) - np.log(bcg.cpos / (bcg.cpos + bcg.cneg))
    vi = 1 / bcg.tpos - 1 / (bcg.tpos + bcg.tneg) + 1 / bcg.cpos - 1 / (bcg.cpos + bcg.cneg)
    return yi.to_numpy(), np.sqrt(vi.to_numpy()), bcg.author.to_numpy()


def test_bcg_log_risk_ratios_match_metafor_escalc():
    """Printed in metafor's tips:testing_factors_lincoms page (dat with yi, vi, 4 decimals)."""
    yi, sei, _ = bcg_log_risk_ratios()
    assert_allclose(yi[:3], [-0.8893, -1.5854, -1.3481], atol=5e-5)
    assert_allclose(sei[[0, 7]] ** 2, [0.3256, 0.0040], atol=5e-5)


def test_reml_matches_metafor_bcg():
    """R: rma(yi, vi, data=dat, method="REML"); confint(res); predict(res, digits=2).

    metafor 4.x documentation of rma.uni, confint.rma and predict.rma (dat.bcg, log
    risk ratios); the same model is in Viechtbauer (2010) J Stat Softw 36(3):
    estimate -0.7145 (SE 0.1798, z -3.9744, CI -1.0669 to -0.3622), tau^2 0.3132
    (Q-profile CI 0.1197 to 1.1115), I^2 92.22% (CI 81.9177 to 97.6781), H^2 12.86,
    Q(df = 12) = 152.2330, PI -1.87 to 0.44.
    """
    yi, sei, _ = bcg_log_risk_ratios()
    res = fit_random_effects(yi, sei, method="REML")
    # printed to 4 decimals: agreement to within half a unit of the last digit
    assert_allclose(
        [res.estimate, res.std_error, res.statistic, res.conf_low, res.conf_high],
        [-0.7145, 0.1798, -3.9744, -1.0669, -0.3622],
        atol=5e-5,
    )
    assert_allclose(
        [res.tau2, res.tau2_conf_low, res.tau2_conf_high], [0.3132, 0.1197, 1.1115], atol=5e-5
    )
    assert_allclose(res.tau, 0.5597, atol=5e-5)
    assert_allclose(res.i2, 92.2214, atol=5e-5)
    assert_allclose(
        [i2_from_tau2(res.tau2_conf_low, sei), i2_from_tau2(res.tau2_conf_high, sei)],
        [81.9177, 97.6781],
        # metafor finds the tau^2 bounds with uniroot(tol = .Machine$double.eps^0.25),
        # about 1e-4, which moves the I^2 bounds by up to ~0.003 points.
        atol=5e-3,
    )
    assert_allclose(res.h2, 12.8558, atol=5e-5)
    assert_allclose(res.q, 152.2330, atol=5e-5)
    assert res.q_df == 12
    assert_allclose([res.pi_low, res.pi_high], [-1.87, 0.44], atol=5e-3)


def test_dersimonian_laird_matches_metafor_bcg():
    """R: rma(yi, vi, data=dat, method="DL") on dat.bcg log risk ratios.

    metafor tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r (checked there
    against Stata metan): estimate -0.7141, CI -1.0644 to -0.3638, z -3.9952,
    tau^2 0.3088, I^2 92.1173.
    """
    yi, sei, _ = bcg_log_risk_ratios()
    res = fit_random_effects(yi, sei, method="DL")
    assert_allclose(
        [res.estimate, res.conf_low, res.conf_high, res.statistic, res.tau2, res.i2],
        [-0.7141, -1.0644, -0.3638, -3.9952, 0.3088, 92.1173],
        atol=5e-5,
    )


def test_equal_effects_matches_metafor_bcg():
    """R: rma(yi, vi, data=dat, method="EE"): -0.4303 (CI -0.5097 to -0.3509), z -10.6247."""
    yi, sei, _ = bcg_log_risk_ratios()
    res = fit_random_effects(yi, sei, method="FE")
    assert_allclose(
        [res.estimate, res.conf_low, res.conf_high, res.statistic, res.tau2],
        [-0.4303, -0.5097, -0.3509, -10.6247, 0.0],
        atol=5e-5,
    )


RAUDENBUSH_TABLE_16_3 = {
    # method, hartung_knapp: tau2, mu, se, z/t, ci.lb, ci.ub
    ("FE", False): (0.0, 0.0604, 0.0365, 1.6553, -0.0111, 0.1318),
    ("REML", False): (0.0188, 0.0837, 0.0516, 1.6208, -0.0175, 0.1849),
    ("DL", False): (0.0259, 0.0893, 0.0558, 1.6009, -0.0200, 0.1987),
    ("FE", True): (0.0, 0.0604, 0.0515, 1.1733, -0.0477, 0.1685),
    ("REML", True): (0.0188, 0.0837, 0.0616, 1.3593, -0.0457, 0.2131),
    ("DL", True): (0.0259, 0.0893, 0.0636, 1.4050, -0.0442, 0.2229),
}


@pytest.mark.parametrize(("method", "hartung_knapp"), list(RAUDENBUSH_TABLE_16_3))
def test_matches_raudenbush_2009_table_16_3(method, hartung_knapp):
    """Raudenbush (2009), Handbook of Research Synthesis and Meta-Analysis, Table 16.3, p.309.

    Teacher-expectancy data (dat.raudenbush1985, 19 studies). Reproduced in metafor
    tests/testthat/test_analysis_example_raudenbush2009.r by
    R: rma(yi, vi, data=dat, method=<m>, test="z" | "knha").
    """
    data = pd.read_csv(REF / "dat_raudenbush1985.csv")
    res = fit_random_effects(data.yi, np.sqrt(data.vi), method=method, hartung_knapp=hartung_knapp)
    expected = RAUDENBUSH_TABLE_16_3[(method, hartung_knapp)]
    assert_allclose(
        [res.tau2, res.estimate, res.std_error, res.statistic, res.conf_low, res.conf_high],
        expected,
        atol=1e-4,  # the table is printed to 4 decimals and rounds z 1.35924 up to 1.3593
    )


def test_prediction_interval_matches_metafor_raudenbush():
    """R: predict(rma(yi, vi, data=dat.raudenbush1985)): pi.lb -0.2036, pi.ub 0.3711."""
    data = pd.read_csv(REF / "dat_raudenbush1985.csv")
    res = fit_random_effects(data.yi, np.sqrt(data.vi))
    # metafor stops Fisher scoring when tau^2 changes by < 1e-5, which moves the
    # fourth decimal of the prediction interval; we iterate to 1e-10.
    assert_allclose([res.pi_low, res.pi_high], [-0.2036, 0.3711], atol=2e-4)


def test_dersimonian_laird_and_hartung_knapp_agree_with_statsmodels():
    data = pd.read_csv(REF / "dat_raudenbush1985.csv")
    reference = combine_effects(data.yi.to_numpy(), data.vi.to_numpy(), method_re="dl")
    frame = reference.summary_frame()
    res = fit_random_effects(data.yi, np.sqrt(data.vi), method="DL")
    res_hk = fit_random_effects(data.yi, np.sqrt(data.vi), method="DL", hartung_knapp=True)
    assert_allclose(res.tau2, reference.tau2, rtol=1e-10)
    assert_allclose(res.estimate, frame.loc["random effect", "eff"], rtol=1e-10)
    assert_allclose(res.std_error, frame.loc["random effect", "sd_eff"], rtol=1e-10)
    assert_allclose(res_hk.std_error, frame.loc["random effect wls", "sd_eff"], rtol=1e-10)


def test_tidy_and_glance_shapes():
    yi, sei, labels = bcg_log_risk_ratios()
    res = fit_random_effects(yi, sei, labels=labels, hartung_knapp=True)
    tidy = res.tidy()
    assert tuple(tidy.columns) == TIDY_COLUMNS
    assert tidy.term.tolist() == ["overall"]
    assert_allclose(tidy.conf_low.iloc[0], res.conf_low)
    glance = res.glance()
    assert glance.k.iloc[0] == 13
    assert "I^2" in res.summary()
    assert_allclose(res.weights.sum(), 100)


def test_plots_return_axes():
    yi, sei, labels = bcg_log_risk_ratios()
    res = fit_random_effects(yi, sei, labels=labels)
    ax = res.plot(xlabel="log risk ratio")
    assert len(ax.get_yticklabels()) == 14
    ax_se = plot_funnel(res)
    assert ax_se.get_ylim()[0] > ax_se.get_ylim()[1]  # standard error axis runs downwards
    ax_n = plot_funnel(res, sizes=np.arange(13) + 10)
    assert ax_n.get_ylabel() == "Number of people"


@pytest.mark.parametrize(
    ("estimates", "std_errors", "kwargs", "message"),
    [
        ([1.0], [0.1], {}, "at least 2"),
        ([1.0, 2.0], [0.1], {}, "same length"),
        ([1.0, 2.0], [0.1, 0.0], {}, "positive"),
        ([1.0, np.nan], [0.1, 0.2], {}, "finite"),
        ([1.0, 2.0], [0.1, 0.2], {"method": "PM"}, "method"),
        ([1.0, 2.0], [0.1, 0.2], {"labels": ["a"]}, "labels"),
    ],
)
def test_bad_input_is_rejected(estimates, std_errors, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_random_effects(estimates, std_errors, **kwargs)


def test_homogeneous_results_give_zero_tau2_and_a_diagnostic():
    res = fit_random_effects([1.0, 1.01, 0.99], [0.5, 0.5, 0.5])
    assert res.tau2 == 0
    assert_allclose(res.estimate, 1.0)
    assert any("tau^2 = 0" in note for note in res.diagnostics)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "hartung_knapp", "min_coverage"),
    [("REML", True, 0.92), ("DL", True, 0.92), ("REML", False, 0.87)],
)
def test_simulation_bias_and_coverage(method, hartung_knapp, min_coverage):
    """Ten schemes, true mean change 3 points, between-scheme SD 1.5, sizes 20-300.

    Measured with this seed (2,000 replications, Monte Carlo SE of coverage 0.005):
    bias +0.015 (MC SE 0.013) for all three; coverage 93.3% (REML, HK), 93.2% (DL,
    HK), 89.3% (REML, Wald). Wald intervals under-cover with few studies (IntHout et
    al. 2014, BMC Med Res Methodol 14:25); Hartung-Knapp can fall slightly below 95%
    when study sizes differ widely and the rescaling factor drops below 1 (Jackson
    et al. 2017, Stat Med 36:3923-3934), hence the 92% floor.
    """
    rng = np.random.default_rng(20261130)
    n_replications = 2000
    true_mean, tau = 3.0, 1.5
    sizes = np.array([20, 30, 40, 60, 80, 100, 150, 200, 250, 300])
    std_errors = 8.0 / np.sqrt(sizes)  # SD of change 8 SWEMWBS points
    estimates_all, covered = [], []
    for _ in range(n_replications):
        truth = true_mean + tau * rng.standard_normal(len(sizes))
        observed = truth + std_errors * rng.standard_normal(len(sizes))
        res = fit_random_effects(observed, std_errors, method=method, hartung_knapp=hartung_knapp)
        estimates_all.append(res.estimate)
        covered.append(res.conf_low <= true_mean <= res.conf_high)
    bias = np.mean(estimates_all) - true_mean
    monte_carlo_se = np.std(estimates_all) / np.sqrt(n_replications)
    assert abs(bias) < 3 * monte_carlo_se + 0.01
    coverage = np.mean(covered)
    assert min_coverage <= coverage <= 0.975


def test_reml_converges_beyond_metafor_default_threshold():
    """R: rma(yi, vi, data=dat.bangertdrowns2004) prints tau^2 0.0499, estimate 0.2219
    (SE 0.0460, CI 0.1317 to 0.3122), Q(df = 47) = 107.1061, I^2 58.37%; metadat's
    tests give tau^2 0.0499411 and estimate 0.2219296 to 7 digits.

    metafor stops Fisher scoring once tau^2 changes by less than 1e-5, so its 7th digit
    is not converged: our estimate differs by 2.4e-6 and has a REML score (derivative
    of the restricted log-likelihood) closer to zero than metafor's value.
    """
    data = pd.read_csv(REF / "dat_bangertdrowns2004.csv")
    assert_allclose(data.yi[:4], [0.65, -0.75, -0.21, -0.04])  # as printed by metadat
    assert_allclose(data.vi[:4], [0.070, 0.126, 0.042, 0.019])
    res = fit_random_effects(data.yi, np.sqrt(data.vi))
    assert_allclose(
        [res.estimate, res.std_error, res.conf_low, res.conf_high, res.q],
        [0.2219, 0.0460, 0.1317, 0.3122, 107.1061],
        atol=5e-5,
    )
    assert_allclose(res.i2, 58.37, atol=5e-3)  # printed with two decimals
    assert_allclose([res.tau2, res.estimate], [0.0499411, 0.2219296], atol=5e-6)

    def reml_score(tau2):
        w = 1 / (data.vi.to_numpy() + tau2)
        p_matrix = np.diag(w) - np.outer(w, w) / w.sum()
        p_y = p_matrix @ data.yi.to_numpy()
        return 0.5 * (p_y @ p_y - np.trace(p_matrix))

    assert abs(reml_score(res.tau2)) < abs(reml_score(0.0499411)) / 50
