"""Sensitivity of an event study to violations of parallel trends (relative magnitudes).

Re-exported by :mod:`spimpact.models.did`. Implements a simple, conservative
confidence set for Rambachan & Roth's (2023) relative-magnitudes restriction,
not the ARP conditional / hybrid test of the R ``HonestDiD`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from spimpact.models.did import EventStudyResult


def honest_did_relative_magnitude(
    event_study: EventStudyResult,
    *,
    mbar: Sequence[float],
    post_weights: Sequence[float] | None = None,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Robust confidence intervals when post-treatment trend breaks may be Mbar x pre-trend ones.

    Parameters
    ----------
    event_study
        A fitted :class:`~spimpact.models.did.EventStudyResult` whose pre-period
        coefficients are contiguous up to the reference period ``-1``.
    mbar
        Values of Mbar >= 0: post-treatment violations of parallel trends (changes
        in the differential trend between consecutive periods) may be up to Mbar
        times the largest such change before treatment.
    post_weights
        Weights ``l`` defining the target ``theta = l' tau_post`` over event times
        0, 1, ... of the study; default ``(1, 0, 0, ...)``: the effect on impact.
    conf_level
        Joint coverage guaranteed for each interval.

    Returns
    -------
    pandas.DataFrame
        One row per Mbar: ``mbar, conf_low, conf_high, method`` and a column
        ``breakdown_mbar`` (the same on every row): the largest Mbar at which the
        interval still excludes zero (0 if it never does).

    Notes
    -----
    Rambachan & Roth (2023), "A More Credible Approach to Parallel Trends",
    Review of Economic Studies 90(5), section 2.4 (Delta^RM). Under Delta^RM the
    post-period bias satisfies ``|delta_k| <= (k + 1) Mbar D`` with ``D`` the largest
    absolute change of consecutive pre-period coefficients (the reference being 0),
    so the identified set for ``theta`` is ``l' beta_post +/- Mbar D sum_k |l_k|(k+1)``.

    This function is a **conservative Bonferroni projection**, not the R
    ``HonestDiD`` C-LF (conditional least-favourable hybrid) interval: with
    ``alpha = 1 - conf_level`` it takes an upper confidence bound ``U`` for ``D`` at
    level ``1 - alpha/2`` (Bonferroni over the pre-period changes) and a
    ``1 - alpha/2`` Wald interval for ``l' beta_post``, and reports
    ``l' beta_post +/- (z_{1-alpha/4} se + Mbar U sum_k |l_k|(k+1))``. Coverage is
    at least ``conf_level`` for every Mbar; intervals are wider than HonestDiD's,
    so the breakdown value is a lower bound for HonestDiD's. At Mbar = 0 the
    restriction is exact parallel trends and the ordinary Wald interval is used.
    """
    mbar = np.asarray(list(mbar), dtype=float)
    if mbar.size == 0 or (mbar < 0).any() or not np.isfinite(mbar).all():
        raise ValueError(f"mbar must be a non-empty sequence of finite values >= 0, got {mbar}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    if event_study.reference != -1:
        raise ValueError("honest DiD bounds need the event study's reference period to be -1")
    e = event_study.event_times
    beta = event_study.coefficients["estimate"].to_numpy()
    sigma = event_study.covariance.to_numpy()
    pre = np.flatnonzero(e < 0)
    post = np.flatnonzero(e >= 0)
    if pre.size == 0 or post.size == 0:
        raise ValueError("the event study needs pre-treatment and post-treatment coefficients")
    if not np.array_equal(e[pre], np.arange(-pre.size - 1, -1)):
        raise ValueError(f"pre-period event times must run contiguously up to -2; got {e[pre]}")
    if not np.array_equal(e[post], np.arange(post.size)):
        raise ValueError(f"post-period event times must run contiguously from 0; got {e[post]}")
    weights = np.zeros(post.size)
    if post_weights is None:
        weights[0] = 1.0
    else:
        given = np.asarray(list(post_weights), dtype=float)
        if given.size > post.size:
            raise ValueError(
                f"post_weights has {given.size} entries but only {post.size} post periods"
            )
        weights[: given.size] = given
    alpha = 1 - conf_level

    # consecutive changes of (beta_-K, ..., beta_-2, 0) as linear maps of beta
    n_changes = pre.size
    changes = np.zeros((n_changes, beta.size))
    for j in range(n_changes):
        if j + 1 < pre.size:
            changes[j, pre[j + 1]] = 1.0
        changes[j, pre[j]] -= 1.0
    change_hat = changes @ beta
    change_se = np.sqrt(np.einsum("ij,jk,ik->i", changes, sigma, changes))
    z_changes = stats.norm.ppf(1 - alpha / (4 * n_changes))
    upper_d = float(np.max(np.abs(change_hat) + z_changes * change_se))

    target = np.zeros(beta.size)
    target[post] = weights
    theta = float(target @ beta)
    theta_se = float(np.sqrt(target @ sigma @ target))
    growth = float(np.sum(np.abs(weights) * (np.arange(post.size) + 1)))
    z_split = stats.norm.ppf(1 - alpha / 4)
    z_plain = stats.norm.ppf(1 - alpha / 2)

    half = np.where(mbar == 0, z_plain * theta_se, z_split * theta_se + mbar * upper_d * growth)
    margin = abs(theta) - z_split * theta_se
    breakdown = max(margin / (upper_d * growth), 0.0) if upper_d * growth > 0 else np.inf
    return pd.DataFrame(
        {
            "mbar": mbar,
            "conf_low": theta - half,
            "conf_high": theta + half,
            "method": "Bonferroni projection (conservative)",
            "breakdown_mbar": breakdown,
        }
    )
