"""The board-paper pieces of the ICB page: judgements and pooling (ratios on the log scale)."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.models.meta import fit_random_effects
from spimpact.publish.section import HEADLINE_COLUMNS
from spimpact.report.board import judge, pool_outcome


def row(estimate, low, high, *, measure="swemwbs_metric", outcome="SWEMWBS change", method="x"):
    return pd.Series(
        dict(zip(HEADLINE_COLUMNS, ("person", outcome, measure, estimate, np.nan, low, high,
                                    100, method, 0.95), strict=True))
    )  # fmt: skip


@pytest.mark.parametrize(
    ("estimate", "low", "high", "measure", "outcome", "expected"),
    [
        (2.0, 1.0, 3.0, "swemwbs_metric", "SWEMWBS change", "better"),
        (-2.0, -3.0, -1.0, "swemwbs_metric", "SWEMWBS change", "worse"),
        (0.5, -1.0, 2.0, "swemwbs_metric", "SWEMWBS change", "unclear"),
        # fewer GP appointments is better
        (-0.5, -0.9, -0.1, "gp_rate", "Change in GP appointments", "better"),
        # a ratio is judged against 1, not 0
        (0.8, 0.7, 0.9, "gp_rate_ratio", "GP appointment rate ratio", "better"),
        (1.1, 0.9, 1.3, "gp_rate_ratio", "GP appointment rate ratio", "unclear"),
        # no known direction: higher or lower, not better or worse
        (-9.0, -13.0, -6.0, "referral_rate_sii", "Gap in referrals (difference)", "lower"),
        # a level (mean at referral) carries no judgement
        (18.5, 17.8, 19.2, "swemwbs_metric", "SWEMWBS at referral (mean)", "level"),
        (2.0, np.nan, np.nan, "swemwbs_metric", "SWEMWBS change", "level"),
    ],
)
def test_judgement_follows_interval_and_direction(estimate, low, high, measure, outcome, expected):
    assert judge(row(estimate, low, high, measure=measure, outcome=outcome)) == expected


def scheme_rows(estimates, lows, highs, **kwargs):
    rows = [row(e, lo, hi, **kwargs) for e, lo, hi in zip(estimates, lows, highs, strict=True)]
    frame = pd.DataFrame(rows)
    frame["scheme_id"] = [f"s{i}" for i in range(len(frame))]
    return frame


def test_ratios_are_pooled_on_the_log_scale():
    ratios, lows, highs = [0.8, 0.9, 0.7], [0.6, 0.75, 0.5], [1.07, 1.08, 0.98]
    group = scheme_rows(ratios, lows, highs, measure="gp_rate_ratio", outcome="rate ratio")
    estimate, low, high, k = pool_outcome(group)
    z = stats.norm.ppf(0.975)
    se = (np.log(highs) - np.log(lows)) / (2 * z)
    direct = fit_random_effects(np.log(ratios), se, method="REML", hartung_knapp=True)
    assert k == 3
    assert_allclose([estimate, low, high], np.exp([direct.estimate, direct.conf_low,
                                                   direct.conf_high]), rtol=1e-12)  # fmt: skip
    # pooling the ratios themselves would give a different (wrong) answer
    naive = fit_random_effects(ratios, (np.array(highs) - lows) / (2 * z), method="REML",
                               hartung_knapp=True)  # fmt: skip
    assert abs(naive.estimate - estimate) > 1e-4


def test_differences_pool_with_their_standard_errors_and_need_three_schemes():
    group = scheme_rows([2.0, 1.0, 3.0], [1.0, -0.4, 1.2], [3.0, 2.4, 4.8])
    group["std_error"] = [0.5, 0.7, 0.9]
    estimate, low, high, k = pool_outcome(group)
    direct = fit_random_effects([2.0, 1.0, 3.0], [0.5, 0.7, 0.9], method="REML",
                                hartung_knapp=True)  # fmt: skip
    assert_allclose([estimate, low, high], [direct.estimate, direct.conf_low, direct.conf_high])
    assert k == 3
    assert pool_outcome(group.iloc[:2]) is None
