"""Diagnostics of the GP attendance analysis (issue 18) on the riverside and valley examples."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from spimpact.analyses.attendance import diagnostics as dx
from spimpact.interactive import open_scheme


def _params(example_params, name):
    return next(p for p in example_params if p.stem == name)


@pytest.fixture(scope="module")
def matched(example_params):
    scheme = open_scheme(_params(example_params, "riverside"), tier="analyst")
    return scheme, scheme.attendance().result


@pytest.fixture(scope="module")
def before_after(example_params):
    scheme = open_scheme(_params(example_params, "valley"), tier="analyst")
    return scheme.attendance().result


def test_overlap_and_matched_sets_agree_with_the_matching(matched):
    _, result = matched
    sizes = result.matching.sample_sizes().set_index("sample")
    overlap = dx.propensity_overlap(result).set_index(["group", "sample"])
    assert overlap.loc[("clients", "matched"), "n"] == sizes.loc["matched", "n_treated"]
    assert overlap.loc[("comparison", "all"), "n"] == sizes.loc["all", "n_control"]
    quantiles = overlap[["min", "p05", "p25", "median", "p75", "p95", "max"]].to_numpy()
    assert (np.diff(quantiles, axis=1) >= 0).all()
    sets = dx.matched_set_sizes(result)
    assert sets["n_clients"].sum() == sizes.loc["matched", "n_treated"]
    assert (sets["n_controls"] >= 1).all()


def test_weights_and_effective_sample_size(matched):
    _, result = matched
    table = dx.matching_weights(result).set_index("group")
    if "weight" in result.panel.columns:  # weights of the estimate, one per person
        people = result.panel.drop_duplicates("patient_id")
        treated, weights = people["treated"].astype(int) == 1, people["weight"]
    else:  # the matching weights
        data = result.matching.data
        treated = data[result.matching.treatment].astype(int) == 1
        weights = data["weights"]
    w = weights[~treated].to_numpy(dtype=float)
    assert table.loc["comparison", "n"] == len(w)
    assert table.loc["comparison", "n_zero"] == int((w == 0).sum())
    assert table.loc["comparison", "effective_n"] == pytest.approx(
        w[w > 0].sum() ** 2 / (w[w > 0] ** 2).sum()
    )
    assert dx.effective_sample_size([1.0, 3.0]) == pytest.approx(16 / 10)
    assert np.isnan(dx.effective_sample_size([0.0, 0.0]))


def test_event_study_table_carries_the_pretrend_test(matched):
    _, result = matched
    table, pretrend = dx.event_study_table(result)
    assert list(table["event_time"]) == list(result.event_study.event_times)
    assert pretrend["p_value"].iloc[0] == result.event_study.pretrend_test.p_value
    designs = dx.alternative_designs(result)
    assert len(designs) >= 1 and "estimate" in designs.columns
    placebo = dx.placebo_estimates(result)
    assert placebo["term"].str.contains("placebo|falsification", case=False).all()


def test_practice_clustering_counts_everyone_analysed(matched):
    scheme, result = matched
    practices, summary = dx.practice_clustering(result, scheme.data)
    assert practices["n_clients"].sum() == result.n_clients
    assert practices["n_comparison"].sum() == result.n_comparison
    assert summary["n_practices"].iloc[0] == len(practices)
    assert -1 < summary["icc_pre_attendance"].iloc[0] < 1


def test_anova_icc_recovers_a_known_intraclass_correlation():
    """Simulated truth: between-practice variance 1, within 3, so ICC = 0.25."""
    rng = np.random.default_rng(5)
    sizes = rng.integers(20, 80, 400)
    groups = np.repeat(np.arange(400), sizes)
    values = rng.normal(0, 1, 400)[groups] + rng.normal(0, np.sqrt(3), len(groups))
    assert dx.anova_icc(values, groups) == pytest.approx(0.25, abs=0.03)
    assert np.isnan(dx.anova_icc([1.0, 2.0], ["a", "a"]))


def test_anova_icc_matches_the_mixed_model_variance_share():
    """Balanced groups: the ANOVA estimator equals REML variance components (Searle 1992)."""
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(8)
    groups = np.repeat(np.arange(60), 10)
    values = rng.normal(0, 1, 60)[groups] + rng.normal(0, 1.5, len(groups))
    frame = pd.DataFrame({"y": values, "g": groups})
    fit = smf.mixedlm("y ~ 1", frame, groups=frame["g"]).fit(reml=True)
    between = float(fit.cov_re.iloc[0, 0])
    assert dx.anova_icc(values, groups) == pytest.approx(between / (between + fit.scale), abs=1e-4)


def test_before_after_design_gives_empty_matching_tables(before_after):
    assert before_after.matching is None
    assert dx.propensity_overlap(before_after).empty
    assert dx.matched_set_sizes(before_after).empty
    assert dx.matching_weights(before_after).empty
    table, pretrend = dx.event_study_table(before_after)
    assert table.empty and pretrend.empty
    assert_allclose(
        dx.alternative_designs(before_after)["estimate"], before_after.tidy()["estimate"]
    )
