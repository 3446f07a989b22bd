"""Fixed-length confidence intervals under the smoothness restriction (Rambachan & Roth 2023).

Re-exported by :mod:`spimpact.models.did_honest` as
:func:`~spimpact.models.did_honest.honest_did_smoothness`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

METHODS = ("FLCI",)


def folded_normal_quantile(p: float, mean: float) -> float:
    """Quantile ``p`` of ``|N(mean, 1)|`` (the FLCI critical value ``cv_alpha(mean)``)."""
    mean = abs(float(mean))
    upper = mean + stats.norm.ppf(p) + 1.0

    def coverage(c: float) -> float:
        return special.ndtr(c - mean) - special.ndtr(-c - mean) - p

    return float(optimize.brentq(coverage, 0.0, max(upper, 1.0), xtol=1e-14, rtol=1e-14))


def _bias_coefficients(v: np.ndarray, n_pre: int) -> np.ndarray:
    """Pre-period second-difference loadings ``c_j = sum_{s<j} v_s (j - s)``, j = -n_pre+1..-1."""
    s = np.arange(-n_pre, 0)
    j = np.arange(-n_pre + 1, 0)
    lag = j[:, None] - s[None, :]
    return (np.where(lag > 0, lag, 0.0)) @ v


def _post_bias_constant(l_vec: np.ndarray) -> float:
    """Sum over j = 0..T_post-1 of ``|sum_{t>j} l_t (t - j)|``."""
    t = np.arange(1, l_vec.size + 1)
    return float(sum(abs(np.sum(l_vec[t > j] * (t[t > j] - j))) for j in range(l_vec.size)))


class _Problem:
    """The affine estimators ``l' beta_post + v' beta_pre`` and their worst-case bias."""

    def __init__(self, sigma: np.ndarray, n_pre: int, l_vec: np.ndarray):
        self.n_pre = n_pre
        self.l_vec = l_vec
        self.sigma_pre = sigma[:n_pre, :n_pre]
        self.cross = sigma[:n_pre, n_pre:] @ l_vec
        self.var_post = float(l_vec @ sigma[n_pre:, n_pre:] @ l_vec)
        self.s = np.arange(-n_pre, 0).astype(float)
        # invariance to linear trends: sum_t l_t t + sum_s v_s s = 0
        self.target = -float(np.arange(1, l_vec.size + 1) @ l_vec)
        self.constant = _post_bias_constant(l_vec)

    def variance(self, v: np.ndarray) -> float:
        return float(v @ self.sigma_pre @ v + 2 * v @ self.cross + self.var_post)

    def bias(self, v: np.ndarray) -> float:
        """Worst-case bias for M = 1."""
        return self.constant + float(np.abs(_bias_coefficients(v, self.n_pre)).sum())

    def lowest_variance(self) -> np.ndarray:
        """``argmin var(v)`` subject to the trend constraint (closed form)."""
        a, b, s = self.sigma_pre, self.cross, self.s
        a_inv_b = np.linalg.solve(a, b)
        a_inv_s = np.linalg.solve(a, s)
        lam = (self.target + s @ a_inv_b) / (s @ a_inv_s)
        return -a_inv_b + lam * a_inv_s

    def least_bias(self) -> np.ndarray:
        """The estimator with no pre-period bias: all weight on the last pre period."""
        v = np.zeros(self.n_pre)
        v[-1] = self.target / self.s[-1]
        return v

    def min_bias_given_sd(self, h: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """Smallest worst-case bias among estimators with standard deviation at most ``h``.

        Convex: minimise ``sum u`` over ``(v, u)`` with ``-u <= c(v) <= u``, the trend
        constraint and ``var(v) <= h^2`` (HonestDiD ``.findWorstCaseBiasGivenH``).
        """
        n_pre = self.n_pre
        n_u = n_pre - 1
        lag = np.arange(-n_pre + 1, 0)[:, None] - self.s[None, :]
        loadings = np.where(lag > 0, lag, 0.0)
        if n_u == 0:
            return self.bias(start), start
        u0 = np.abs(loadings @ start) + 1e-9
        x0 = np.r_[start, u0]
        identity = np.eye(n_u)
        abs_jacobian = np.block([[-loadings, identity], [loadings, identity]])
        constraints = [
            {
                "type": "eq",
                "fun": lambda x: np.array([self.s @ x[:n_pre] - self.target]),
                "jac": lambda x: np.r_[self.s, np.zeros(n_u)][None, :],
            },
            {
                "type": "ineq",
                "fun": lambda x: abs_jacobian @ x,
                "jac": lambda x: abs_jacobian,
            },
            {
                "type": "ineq",
                "fun": lambda x: np.array([h * h - self.variance(x[:n_pre])]),
                "jac": lambda x: np.r_[
                    -2 * (self.sigma_pre @ x[:n_pre] + self.cross), np.zeros(n_u)
                ][None, :],
            },
        ]
        result = optimize.minimize(
            lambda x: x[n_pre:].sum(),
            x0,
            jac=lambda x: np.r_[np.zeros(n_pre), np.ones(n_u)],
            constraints=constraints,
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        v = result.x[:n_pre]
        return self.bias(v), v


def honest_did_smoothness(
    betahat: Sequence[float],
    sigma: np.ndarray,
    *,
    num_pre_periods: int,
    num_post_periods: int,
    m_values: Sequence[float],
    method: str = "FLCI",
    l_vec: Sequence[float] | None = None,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Robust confidence intervals when the trend difference's slope may change by M per period.

    Parameters
    ----------
    betahat
        Event-study coefficients: ``num_pre_periods`` pre-period ones (event times
        -num_pre-1..-2, the reference -1 omitted) then ``num_post_periods`` post ones.
    sigma
        Their covariance matrix.
    num_pre_periods, num_post_periods
        How many of each (``num_pre_periods >= 1``).
    m_values
        Values of M >= 0: the largest change in the slope of the differential trend
        between consecutive periods (Delta^SD(M)); M = 0 allows exactly linear trends.
    method
        ``"FLCI"``: Armstrong & Kolesar's fixed-length interval, optimised as R
        ``HonestDiD::findOptimalFLCI``.
    l_vec
        Weights of the target ``theta = l' tau_post``; default ``(1, 0, ..., 0)``, the
        effect in the first post period.
    conf_level
        Coverage of each interval.

    Returns
    -------
    pandas.DataFrame
        One row per M: ``m, conf_low, conf_high, method``.

    Notes
    -----
    Rambachan & Roth (2023), Review of Economic Studies 90(5), section 3 and
    Appendix; HonestDiD (GitHub asheshrambachan/HonestDiD, ``flci.R``). The estimator is
    affine, ``l' beta_post + v' beta_pre``, with ``v`` making it invariant to linear
    trends; under Delta^SD(M) its worst-case bias is ``M b(v)``, where ``b`` sums the
    absolute loadings of the second differences of the trend (closed form here, the
    absolute-value constraints of HonestDiD). For a bound ``h`` on its standard
    deviation the least-biased ``v`` solves a convex programme; the half-length
    ``h cv_alpha(M b / h)`` is then minimised over ``h`` between the lowest attainable
    standard deviation and that of the unbiased-for-pre-trends estimator, with
    ``cv_alpha(t)`` the exact ``1 - alpha`` quantile of ``|N(t, 1)|`` (HonestDiD
    simulates it with 10^6 draws).

    Examples
    --------
    >>> beta = np.array([0.0, 0.01, 0.0, 0.2, 0.25])
    >>> table = honest_did_smoothness(beta, np.diag(np.full(5, 1e-4)), num_pre_periods=3,
    ...                               num_post_periods=2, m_values=[0, 0.05])
    >>> bool((table.conf_low < table.conf_high).all()), list(table.columns)
    (True, ['m', 'conf_low', 'conf_high', 'method'])
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    beta = np.asarray(betahat, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    n_pre, n_post = int(num_pre_periods), int(num_post_periods)
    if n_pre < 1 or n_post < 1:
        raise ValueError("need at least one pre-period and one post-period coefficient")
    if beta.shape != (n_pre + n_post,):
        raise ValueError(
            f"betahat has {beta.size} entries; expected num_pre_periods + num_post_periods "
            f"= {n_pre + n_post}"
        )
    if sigma.shape != (beta.size, beta.size):
        raise ValueError(f"sigma must be {beta.size} x {beta.size}, got {sigma.shape}")
    m_values = np.asarray(list(m_values), dtype=float)
    if m_values.size == 0 or (m_values < 0).any() or not np.isfinite(m_values).all():
        raise ValueError(f"m_values must be finite values >= 0, got {m_values}")
    weights = np.zeros(n_post)
    if l_vec is None:
        weights[0] = 1.0
    else:
        given = np.asarray(list(l_vec), dtype=float)
        if given.size != n_post:
            raise ValueError(
                f"l_vec needs {n_post} entries (one per post period), got {given.size}"
            )
        weights = given
    problem = _Problem(sigma, n_pre, weights)
    alpha = 1 - conf_level
    v_low = problem.lowest_variance()
    v_unbiased = problem.least_bias()
    h_min = np.sqrt(problem.variance(v_low))
    h_max = np.sqrt(problem.variance(v_unbiased))
    lows, highs = [], []
    for m in m_values:
        v = _optimal_weights(problem, m, alpha, h_min, h_max, v_low, v_unbiased)
        sd = np.sqrt(problem.variance(v))
        half = sd * folded_normal_quantile(1 - alpha, m * problem.bias(v) / sd)
        centre = float(weights @ beta[n_pre:] + v @ beta[:n_pre])
        lows.append(centre - half)
        highs.append(centre + half)
    return pd.DataFrame({"m": m_values, "conf_low": lows, "conf_high": highs, "method": method})


def _optimal_weights(problem, m, alpha, h_min, h_max, v_low, v_unbiased) -> np.ndarray:
    """Weights ``v`` of the shortest FLCI: minimise ``h cv(M b*(h) / h)`` over ``h``."""
    if m == 0 or h_max <= h_min * (1 + 1e-10):
        return v_low if m == 0 else v_unbiased
    cache: dict[float, np.ndarray] = {}

    def half_length(h: float) -> float:
        start = (
            v_unbiased
            if h >= h_max
            else v_low + (v_unbiased - v_low) * ((h - h_min) / (h_max - h_min))
        )
        bias, v = problem.min_bias_given_sd(h, start)
        sd = np.sqrt(max(problem.variance(v), 1e-300))
        cache[h] = v
        return sd * folded_normal_quantile(1 - alpha, m * bias / sd)

    # the half-length is convex in h on [h_min, h_max] (HonestDiD bisects its derivative)
    ends = {h_min: half_length(h_min), h_max: half_length(h_max)}
    result = optimize.minimize_scalar(
        half_length, bounds=(h_min, h_max), method="bounded", options={"xatol": 1e-9 * h_max}
    )
    candidates = ends | {result.x: result.fun}
    h_best = min(candidates, key=candidates.get)
    return cache[h_best]
