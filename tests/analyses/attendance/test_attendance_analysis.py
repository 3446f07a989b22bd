"""The GP-attendance analysis (``spimpact.analyses.attendance.analysis``): numbers only."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spimpact.analyses.attendance.analysis import (
    AttendanceResult,
    analyse_attendance,
    fit_before_after_change,
)
from spimpact.analyses.attendance.cohort import cohort_people
from spimpact.io import load_scheme
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import TIDY_COLUMNS
from spimpact.params import ComparisonParams, SchemeParams
from spimpact.synthetic import EXAMPLE_SCHEMES, SchemeSpec, write_example_data


def _params(**comparison) -> SchemeParams:
    return SchemeParams(
        scheme_id="tiny",
        title="Tiny Link",
        data_dir=Path("."),
        comparison=ComparisonParams(**comparison),
    )


@pytest.fixture(scope="module")
def small_scheme(tmp_path_factory):
    spec = SchemeSpec("tiny", "Tiny Link", 400, ("swemwbs",), n_areas=20)
    (folder,) = write_example_data(tmp_path_factory.mktemp("example"), schemes=(spec,))
    return load_scheme(folder, pseudonym_key="test-key")


@pytest.fixture(scope="module")
def small_result(small_scheme):
    return analyse_attendance(small_scheme, params=_params())


def test_matched_analysis_uses_matched_people_only(small_result):
    assert small_result.design == "matched_did"
    assert small_result.n_clients == small_result.n_comparison  # 1:1 by default
    panel_people = small_result.panel.groupby("treated")["patient_id"].nunique()
    assert panel_people.to_dict() == {0: small_result.n_comparison, 1: small_result.n_clients}
    assert set(small_result.estimates["term"]) == {
        "did",
        "did_gp",
        "did_face_to_face",
        "did_remote",
        "rate_ratio",
        "placebo",
        "before_after_clients",
        "before_after_comparison",
    }


def test_did_equals_difference_of_before_after_changes(small_result):
    """The saturated 2x2 DiD (person-month OLS) equals the difference of the groups' mean
    changes in the before/after table: the published table and the estimate agree."""
    table = small_result.pre_post.set_index(["group", "period"])["appointments_per_person_month"]
    by_hand = (table["clients", "after"] - table["clients", "before"]) - (
        table["comparison", "after"] - table["comparison", "before"]
    )
    did = small_result.estimates.set_index("term").loc["did", "estimate"]
    assert did == pytest.approx(by_hand, abs=1e-12)


def test_prior_attendance_is_taken_from_before_the_compared_months(small_result):
    """Matching on the months the DiD compares would build regression to the mean into the
    comparison group (Daw & Hatfield 2018); the history is its trajectory over months -36 to
    -13, in quarters of a year, all before the baseline (months -12 to -4)."""
    history = [c for c in small_result.matching.covariates if c.startswith("pre_attendance")]
    assert history == [
        "pre_attendance_months_36_to_31",
        "pre_attendance_months_30_to_25",
        "pre_attendance_months_24_to_19",
        "pre_attendance_months_18_to_13",
    ]


def test_prior_attendance_partly_observed_is_imputed_and_flagged(small_scheme):
    """Appointment data starting 12 months before the earliest index date: everyone's
    baseline is observed, the history before it only for people indexed later. Nobody is
    dropped for it: unobserved history is imputed and flagged, and matched on both."""
    appointments = small_scheme.gp_appointments
    earliest = cohort_people(small_scheme, include_pool=True)["index_date"].min()
    start = pd.Timestamp(earliest) - pd.DateOffset(months=12)
    recent = replace(
        small_scheme, gp_appointments=appointments[appointments["appointment_date"] >= start]
    )
    result = analyse_attendance(recent, params=_params())
    covariates = result.matching.covariates
    for part in ("36_to_31", "30_to_25", "24_to_19", "18_to_13"):
        assert f"pre_attendance_months_{part}" in covariates
        assert f"pre_attendance_months_{part}_missing" in covariates
    assert result.n_clients == analyse_attendance(small_scheme, params=_params()).n_clients


def test_unknown_matching_covariate_is_named(small_scheme):
    with pytest.raises(ValueError, match="covariate 'shoe_size' is not a client"):
        analyse_attendance(small_scheme, params=_params(covariates=["age", "shoe_size"]))


def test_result_is_an_estimator_result_whose_tidy_is_the_estimates(small_result):
    assert isinstance(small_result, AttendanceResult)
    assert isinstance(small_result, EstimatorResult)
    tidy = small_result.tidy()
    assert list(tidy.columns) == [*TIDY_COLUMNS, "scale"]
    pd.testing.assert_frame_equal(tidy, small_result.estimates)
    assert small_result.coef()["did"] == tidy.set_index("term").loc["did", "estimate"]
    assert small_result.summary().startswith("GP attendance, design: matched_did")


def test_wild_bootstrap_intervals_are_only_at_the_fitted_level(small_result):
    """Six practices: the wild cluster bootstrap; its intervals are computed at fit time, so
    another level is refused with a clear error instead of a silently wrong interval."""
    assert small_result.inference.se == "wild"
    assert small_result.inference.cluster == "practice_code"
    assert "fewer than 40" in small_result.inference.reason
    with pytest.raises(ValueError, match="fit again with conf_level=0.9"):
        small_result.tidy(conf_level=0.9)


def test_tidy_at_another_level_recomputes_every_interval(small_scheme):
    """CR2 by practice (min_practices_for_cr2 lowered): same estimates and standard errors
    at 90%; the intervals narrow: paired t on n - 1 df for the before/after rows, normal on
    the log scale for the Poisson rate ratio (its interval is symmetric around log(estimate))."""
    result = analyse_attendance(small_scheme, params=_params(min_practices_for_cr2=2))
    assert result.inference.se == "CR2"
    at_95 = result.tidy().set_index("term")
    at_90 = result.tidy(conf_level=0.9).set_index("term")
    pd.testing.assert_series_equal(at_90["estimate"], at_95["estimate"])
    pd.testing.assert_series_equal(at_90["std_error"], at_95["std_error"])
    finite = at_95.index[np.isfinite(at_95["std_error"])]
    assert (at_90.loc[finite, "conf_high"] < at_95.loc[finite, "conf_high"]).all()
    assert (at_90.loc[finite, "conf_low"] > at_95.loc[finite, "conf_low"]).all()
    frame = result.person_periods
    for treated, term in ((1, "before_after_clients"), (0, "before_after_comparison")):
        n = frame.loc[frame["treated"] == treated, "patient_id"].nunique()
        row = at_90.loc[term]
        half_width = (row["conf_high"] - row["estimate"]) / row["std_error"]
        assert half_width == pytest.approx(stats.t.ppf(0.95, n - 1), rel=1e-12)
    ratio = at_90.loc["rate_ratio"]
    log_se = ratio["std_error"] / ratio["estimate"]  # delta-method SE back to the log scale
    assert np.log(ratio["conf_high"] / ratio["estimate"]) / log_se == pytest.approx(
        stats.norm.ppf(0.95), rel=1e-9
    )
    with pytest.raises(ValueError, match="conf_level must be between 0 and 1"):
        result.tidy(conf_level=95)


@pytest.mark.parametrize(
    ("treated", "term"), [(1, "before_after_clients"), (0, "before_after_comparison")]
)
def test_before_after_change_is_the_paired_t_test_of_person_means(small_result, treated, term):
    """Reference: scipy.stats.ttest_rel on each person's mean monthly appointments in the
    post-period and the baseline (the washout left out; R: t.test(after, before, paired =
    TRUE)); tolerance: float rounding only."""
    frame = small_result.person_periods
    group = frame[frame["treated"] == treated]
    means = group.pivot(index="patient_id", columns="post", values="value")
    test = stats.ttest_rel(means[1], means[0])
    interval = test.confidence_interval(0.95)
    row = small_result.estimates.set_index("term").loc[term]
    assert row["estimate"] == pytest.approx((means[1] - means[0]).mean(), rel=1e-12)
    assert row["statistic"] == pytest.approx(test.statistic, rel=1e-9)
    assert row["p_value"] == pytest.approx(test.pvalue, rel=1e-9)
    assert row["conf_low"] == pytest.approx(interval.low, rel=1e-9)
    assert row["conf_high"] == pytest.approx(interval.high, rel=1e-9)
    # the person means are over the design's months only: baseline -12..-4, post 3..11
    panel = small_result.panel
    person = group["patient_id"].iloc[0]
    months = panel[(panel["patient_id"] == person) & panel["months_since_index"].between(3, 11)]
    assert means.loc[person, 1] == pytest.approx(months["n_clinical"].mean(), rel=1e-12)


def test_before_after_change_needs_two_people_seen_before_and_after():
    panel = pd.DataFrame(
        {"patient_id": ["a", "a", "b"], "post": [0, 1, 0], "n_clinical": [1, 2, 3]}
    )
    assert fit_before_after_change(panel) is None  # only a has both periods
    assert fit_before_after_change(panel[panel["post"] == 0]) is None  # no months after
    both = pd.concat([panel, pd.DataFrame({"patient_id": ["b"], "post": [1], "n_clinical": [1]})])
    change = fit_before_after_change(both)
    assert change.n == 2
    assert change.estimate == pytest.approx(((2 - 1) + (1 - 3)) / 2)


def test_before_after_design_without_comparison(small_scheme):
    result = analyse_attendance(small_scheme, params=_params(enabled=False))
    assert result.design == "before_after"
    assert result.matching is None and result.event_study is None
    assert result.estimates["term"].tolist() == ["before_after_clients"]
    assert result.estimates["scale"].tolist() == ["appointments per person-month"]
    assert any("regression to the mean" in d for d in result.diagnostics)


@pytest.mark.slow
def test_did_recovers_true_effect_on_largest_example_scheme(tmp_path):
    """The largest example scheme (north_shore, with its clients-only rise before referral):
    the primary interval covers the average effect on the treated over months 3 to 11 in
    truth.json, the Poisson rate-ratio interval covers the true rate ratio there, and the
    placebo interval covers zero (seeded, one draw)."""
    largest = max(
        (s for s in EXAMPLE_SCHEMES if s.gp_data and s.comparison_ratio), key=lambda s: s.n_clients
    )
    (folder,) = write_example_data(tmp_path, schemes=(largest,))
    truth = json.loads((folder / "truth.json").read_text())["gp_attendance"]
    scheme = load_scheme(folder, pseudonym_key="test-key")
    params = SchemeParams(scheme_id=largest.scheme_id, title=largest.title, data_dir=folder)
    result = analyse_attendance(scheme, params=params)
    did = result.estimates.set_index("term").loc["did"]
    assert did["conf_low"] <= truth["gp_att_per_person_month"] <= did["conf_high"]
    assert truth["post_months"] == [result.primary.post[0], result.primary.post[1]]
    ratio = result.estimates.set_index("term").loc["rate_ratio"]
    assert ratio["conf_low"] <= truth["gp_rate_ratio_post"] <= ratio["conf_high"]
    placebo = result.estimates.set_index("term").loc["placebo"]
    assert placebo["conf_low"] <= 0 <= placebo["conf_high"]


@pytest.mark.slow
def test_no_effect_scheme_gives_an_interval_around_zero(tmp_path):
    """A scheme simulated with no effect on attendance (rate ratio 1) but with the referral
    peak and clients' higher attendance: the matched DiD interval covers 0 (seeded, one
    draw; a check against bias built in by the matching, e.g. regression to the mean)."""
    spec = SchemeSpec("null", "No Effect", 1200, ("swemwbs",), n_areas=30, gp_rate_ratio=1.0)
    (folder,) = write_example_data(tmp_path, schemes=(spec,), seed=11)
    assert json.loads((folder / "truth.json").read_text())["gp_attendance"][
        "gp_att_per_person_month"
    ] == pytest.approx(0.0)
    scheme = load_scheme(folder, pseudonym_key="test-key")
    result = analyse_attendance(scheme, params=_params())
    did = result.estimates.set_index("term").loc["did"]
    assert did["conf_low"] <= 0 <= did["conf_high"]


def test_primary_design_months_and_placebo_months(small_result):
    """Defaults: baseline -12..-4, post-period 3..11, washout -3..2 between them; the placebo
    is the same design 12 months earlier, its post-period stopping before the washout."""
    design = small_result.primary
    assert (design.baseline, design.post) == ((-12, -4), (3, 11))
    periods = small_result.panel.groupby("period")["months_since_index"].agg(["min", "max"])
    assert periods.loc["washout"].tolist() == [-3, 2]
    assert periods.loc["baseline"].tolist() == [-12, -4]
    assert periods.loc["post"].tolist() == [3, 11]
    panel = small_result.panel
    assert panel.loc[panel["period"] != "post", "treated_post"].eq(0).all()
    placebo = small_result.estimates.set_index("term").loc["placebo"]
    assert np.isfinite(
        placebo[["estimate", "std_error", "conf_low", "conf_high"]].astype(float)
    ).all()


def test_washout_check_passes_with_the_default_washout(small_result):
    """The example scheme's rise (clients only, peaking in months -1 to 0) lies in the
    default washout months -3 to 2."""
    check = small_result.washout_check
    assert check.washout == (-3, 2)
    assert check.peak_month is None or -3 <= check.peak_month <= 2
    assert check.passed
    assert set(check.profile["months_since_index"]) == set(range(-12, 12))


def test_washout_check_flags_a_washout_that_misses_the_rise(small_scheme):
    """No washout: the clients' rise sits in the last baseline months and the check says so
    (the peak outside any washout, or the last baseline month above the earlier ones)."""
    result = analyse_attendance(
        small_scheme, params=_params(washout_months_before=0, washout_months_after=0)
    )
    check = result.washout_check
    assert check.washout is None
    assert not check.passed
    assert not check.peak_inside or check.rise_before_p_value < 0.05


def test_honest_bounds_and_secondary_tests(small_result):
    """Honest bounds: relative magnitudes (C-LF) and smoothness (FLCI) rows, never narrower
    at a larger M; the secondary outcomes are Holm-adjusted as one family (Holm 1979, by
    hand: sorted p-values times 3, 2, 1, cumulative maximum, capped at 1)."""
    honest = small_result.honest
    assert set(honest["method"]) == {"C-LF", "FLCI"}
    assert (honest["conf_low"] < honest["conf_high"]).all()
    for _, rows in honest.groupby("restriction"):
        widths = (rows["conf_high"] - rows["conf_low"]).to_numpy()
        assert (np.diff(widths) >= -1e-9).all()  # sorted by M: never narrower
    tests = small_result.secondary_tests
    assert tests["term"].tolist() == ["did_gp", "did_face_to_face", "did_remote"]
    p = tests["p_value"].to_numpy()
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1, (3 - np.arange(3)) * p[order]))
    assert tests["p_value_holm"].to_numpy()[order] == pytest.approx(holm, rel=1e-12)
