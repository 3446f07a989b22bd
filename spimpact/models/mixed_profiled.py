"""Exact profiled likelihood of a linear mixed model with one grouping factor.

For a random intercept, or a random intercept and one slope, the log-likelihood
depends on the data only through per-group sums, so the model is fitted by one
vectorised pass over the rows followed by an optimisation over at most three
covariance parameters. The formulation is that of lme4 (Bates, Maechler, Bolker
& Walker 2015, J Stat Softw 67(1), section 3): with relative covariance factor
Lambda (theta), M_i = Lambda' Z_i' Z_i Lambda + I and the Woodbury identity
V_i^{-1} = I - Z_i Lambda M_i^{-1} Lambda' Z_i', the fixed effects and the
residual variance are profiled out and log|V_i| = log|M_i| (determinant lemma).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

# lme4's isSingular() tolerance on the diagonal of Lambda.
SINGULAR_TOLERANCE = 1e-4
UNDEFINED_DEVIANCE = 1e300


# Above this many distinct per-group designs, the per-group path is cheaper than
# aggregating outer products by design.
MAX_PATTERNS = 2000


@dataclass(frozen=True)
class GroupSums:
    """Per-group sums that the likelihood depends on.

    ``w`` is the design ``[X, y]``; ``s0[i] = sum_j w_ij`` and, with a random slope
    on ``x``, ``s1[i] = sum_j x_ij w_ij``; ``n_per_group, sum_x, sum_x2`` give
    ``Z_i' Z_i``. Groups sharing the same ``Z_i' Z_i`` (the same pattern of
    completed time points) share ``M_i``, so when there are few such patterns the
    outer products ``s s'`` are summed within pattern once and every likelihood
    evaluation costs O(patterns), not O(groups).
    """

    gram: np.ndarray  # [X, y]' [X, y]
    s0: np.ndarray  # (groups, p + 1)
    s1: np.ndarray | None
    n_per_group: np.ndarray
    sum_x: np.ndarray | None
    sum_x2: np.ndarray | None
    n_obs: int
    n_fixed: int
    pattern_zz: np.ndarray | None = None  # (patterns, 3): n, sum x, sum x^2
    pattern_count: np.ndarray | None = None
    pattern_o00: np.ndarray | None = None  # (patterns, p + 1, p + 1)
    pattern_o01: np.ndarray | None = None
    pattern_o11: np.ndarray | None = None


def group_sums(x: np.ndarray, y: np.ndarray, codes: np.ndarray, slope=None) -> GroupSums:
    """Reduce the rows to per-group sums in one pass.

    ``codes`` are integer group codes 0..G-1 (any order); ``slope`` the values of the
    random-slope covariate or ``None`` for a random intercept only.
    """
    order = np.argsort(codes, kind="stable")
    codes_sorted = codes[order]
    w = np.column_stack([x, y])[order]
    starts = np.flatnonzero(np.r_[True, codes_sorted[1:] != codes_sorted[:-1]])
    n_per_group = np.diff(np.r_[starts, len(codes_sorted)]).astype(float)
    s0 = np.add.reduceat(w, starts, axis=0)
    s1 = sum_x = sum_x2 = None
    if slope is not None:
        t = np.asarray(slope, dtype=float)[order]
        s1 = np.add.reduceat(w * t[:, None], starts, axis=0)
        sum_x = np.add.reduceat(t, starts)
        sum_x2 = np.add.reduceat(t * t, starts)
    zz = np.column_stack(
        [
            n_per_group,
            sum_x if sum_x is not None else 0 * n_per_group,
            sum_x2 if sum_x2 is not None else 0 * n_per_group,
        ]
    )
    patterns, inverse, counts = np.unique(zz, axis=0, return_inverse=True, return_counts=True)
    aggregated = {}
    if len(patterns) <= MAX_PATTERNS:
        by_pattern = np.argsort(inverse.ravel(), kind="stable")
        bounds = np.r_[0, np.cumsum(counts)]
        o00, o01, o11 = [], [], []
        for k in range(len(patterns)):
            rows = by_pattern[bounds[k] : bounds[k + 1]]
            a = s0[rows]
            o00.append(a.T @ a)
            if s1 is not None:
                b = s1[rows]
                o01.append(a.T @ b)
                o11.append(b.T @ b)
        aggregated = {
            "pattern_zz": patterns,
            "pattern_count": counts.astype(float),
            "pattern_o00": np.stack(o00),
            "pattern_o01": np.stack(o01) if s1 is not None else None,
            "pattern_o11": np.stack(o11) if s1 is not None else None,
        }
    return GroupSums(
        gram=w.T @ w,
        s0=s0,
        s1=s1,
        n_per_group=n_per_group,
        sum_x=sum_x,
        sum_x2=sum_x2,
        n_obs=len(y),
        n_fixed=x.shape[1],
        **aggregated,
    )


@dataclass(frozen=True)
class ProfiledFit:
    """Everything the profiled likelihood gives at one value of theta."""

    deviance: float
    coef: np.ndarray
    xtvx: np.ndarray  # X' V^{-1} X in units of sigma^2
    sigma2: float
    log_det_m: float


def _lambda(theta: np.ndarray) -> np.ndarray:
    if theta.size == 1:
        return np.array([[theta[0]]])
    return np.array([[theta[0], 0.0], [theta[1], theta[2]]])


def evaluate(theta, sums: GroupSums, *, reml: bool) -> ProfiledFit:
    """Profiled deviance (-2 log-likelihood, restricted under REML) at ``theta``."""
    theta = np.asarray(theta, dtype=float)
    p = sums.n_fixed
    n = sums.n_obs
    if sums.pattern_zz is not None:
        correction, log_det_m = _correction_by_pattern(theta, sums)
    elif theta.size == 1:
        m = 1.0 + theta[0] ** 2 * sums.n_per_group
        weights = theta[0] ** 2 / m
        correction = sums.s0.T @ (sums.s0 * weights[:, None])
        log_det_m = float(np.sum(np.log(m)))
    else:
        l1, l2, l3 = theta
        nn, sx, sxx = sums.n_per_group, sums.sum_x, sums.sum_x2
        # Lambda' Z'Z Lambda + I, written out for the lower-triangular 2x2 Lambda.
        m00 = l1 * l1 * nn + 2 * l1 * l2 * sx + l2 * l2 * sxx + 1.0
        m01 = l1 * l3 * sx + l2 * l3 * sxx
        m11 = l3 * l3 * sxx + 1.0
        c00 = np.sqrt(m00)
        c10 = m01 / c00
        c11 = np.sqrt(m11 - c10 * c10)
        a0 = l1 * sums.s0 + l2 * sums.s1
        a1 = l3 * sums.s1
        b0 = a0 / c00[:, None]
        b1 = (a1 - c10[:, None] * b0) / c11[:, None]
        correction = b0.T @ b0 + b1.T @ b1
        log_det_m = float(2 * np.sum(np.log(c00) + np.log(c11)))
    gram = sums.gram - correction
    xtvx = gram[:p, :p]
    xtvy = gram[:p, p]
    chol = np.linalg.cholesky(xtvx)
    coef = np.linalg.solve(xtvx, xtvy)
    penalised_rss = float(gram[p, p] - xtvy @ coef)
    dof = n - p if reml else n
    sigma2 = penalised_rss / dof
    deviance = log_det_m + dof * (1 + np.log(2 * np.pi * sigma2))
    if reml:
        deviance += 2 * float(np.sum(np.log(np.diag(chol))))
    return ProfiledFit(
        deviance=float(deviance),
        coef=coef,
        xtvx=xtvx,
        sigma2=sigma2,
        log_det_m=log_det_m,
    )


def _correction_by_pattern(theta: np.ndarray, sums: GroupSums) -> tuple[np.ndarray, float]:
    """Sum over groups of S_i' K_i S_i with K_i = Lambda M_i^{-1} Lambda', by pattern."""
    nn, sx, sxx = sums.pattern_zz.T
    count = sums.pattern_count
    if theta.size == 1:
        m = 1.0 + theta[0] ** 2 * nn
        k00 = theta[0] ** 2 / m
        correction = np.tensordot(k00, sums.pattern_o00, axes=1)
        return correction, float(np.sum(count * np.log(m)))
    l1, l2, l3 = theta
    m00 = l1 * l1 * nn + 2 * l1 * l2 * sx + l2 * l2 * sxx + 1.0
    m01 = l1 * l3 * sx + l2 * l3 * sxx
    m11 = l3 * l3 * sxx + 1.0
    det = m00 * m11 - m01 * m01
    i00, i01, i11 = m11 / det, -m01 / det, m00 / det
    # K = Lambda M^{-1} Lambda' with Lambda = [[l1, 0], [l2, l3]].
    k00 = l1 * l1 * i00
    k01 = l1 * (l2 * i00 + l3 * i01)
    k11 = l2 * l2 * i00 + 2 * l2 * l3 * i01 + l3 * l3 * i11
    cross = np.tensordot(k01, sums.pattern_o01, axes=1)
    correction = (
        np.tensordot(k00, sums.pattern_o00, axes=1)
        + cross
        + cross.T
        + np.tensordot(k11, sums.pattern_o11, axes=1)
    )
    return correction, float(np.sum(count * np.log(det)))


@dataclass(frozen=True)
class ThetaSolution:
    """Optimum of the profiled deviance and how it was reached."""

    theta: np.ndarray
    converged: bool
    optimisers_tried: tuple[str, ...]


def optimise_theta(sums: GroupSums, *, n_theta: int, reml: bool) -> ThetaSolution:
    """Minimise the profiled deviance over theta, retrying other optimisers if needed.

    Bounds follow lme4: diagonal elements of Lambda are non-negative, so a zero
    variance (a singular fit) is reached on the boundary rather than by a sign flip.
    """

    def objective(theta):
        # Outside the region where M_i and X'V^-1 X are numerically positive
        # definite the deviance is undefined; a large finite value (not inf) keeps
        # finite-difference gradients defined.
        with np.errstate(invalid="ignore", divide="ignore"):
            try:
                value = evaluate(theta, sums, reml=reml).deviance
            except np.linalg.LinAlgError:
                return UNDEFINED_DEVIANCE
        return value if np.isfinite(value) else UNDEFINED_DEVIANCE

    if n_theta == 1:
        # One parameter: Brent's bounded search is exact and far cheaper than a
        # quasi-Newton method with finite-difference gradients. theta is the
        # between-group SD relative to the residual SD; 1e3 is beyond any real data.
        brent = optimize.minimize_scalar(
            lambda value: objective(np.array([value])),
            bounds=(0.0, 1e3),
            method="bounded",
            options={"xatol": 1e-10, "maxiter": 2000},
        )
        if brent.success and brent.x < 1e3 * (1 - 1e-6):
            # Brent never evaluates the bound itself; a zero variance is checked directly.
            at_zero = objective(np.array([0.0]))
            theta = np.array([0.0 if at_zero <= brent.fun else brent.x])
            return ThetaSolution(theta=theta, converged=True, optimisers_tried=("Brent",))
        start = np.array([1.0])
        bounds = [(0.0, None)]
    else:
        start = np.array([1.0, 0.0, 1.0])
        bounds = [(0.0, None), (None, None), (0.0, None)]
    tried = ["L-BFGS-B"]
    first = optimize.minimize(
        objective,
        start,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
    )
    best = first.x
    # Nelder-Mead polishes the quasi-Newton answer: finite-difference gradients
    # leave L-BFGS-B a little short of the optimum on a flat deviance surface.
    tried.append("Nelder-Mead")
    # The deviance grows with n, so its rounding noise does too: an absolute
    # tolerance below that noise would never be met.
    noise = 1e-13 * max(1.0, abs(first.fun)) if np.isfinite(first.fun) else 1e-12
    polish = optimize.minimize(
        objective,
        best,
        method="Nelder-Mead",
        bounds=bounds,
        options={"xatol": 1e-9, "fatol": noise, "maxiter": 20000, "maxfev": 40000},
    )
    converged = bool(polish.success) and polish.fun < UNDEFINED_DEVIANCE
    if polish.fun <= objective(best):
        best = polish.x
    if not converged:
        tried.append("Powell")
        retry = optimize.minimize(
            objective,
            best,
            method="Powell",
            bounds=bounds,
            options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 20000},
        )
        converged = bool(retry.success) and retry.fun < UNDEFINED_DEVIANCE
        if retry.fun <= objective(best):
            best = retry.x
    best = np.asarray(best, dtype=float)
    # Snap values within rounding of the bound onto it, as lme4 reports them.
    for index, (lower, _) in enumerate(bounds):
        if lower is not None and best[index] < 1e-8:
            best[index] = lower
    return ThetaSolution(theta=best, converged=converged, optimisers_tried=tuple(tried))


def random_effects_covariance(theta: np.ndarray, sigma2: float) -> np.ndarray:
    """Covariance of the random effects, sigma^2 Lambda Lambda'."""
    lam = _lambda(np.asarray(theta, dtype=float))
    return sigma2 * lam @ lam.T


def is_singular(theta: np.ndarray) -> bool:
    """Tell whether a diagonal element of Lambda is (near) zero, as lme4's isSingular()."""
    theta = np.asarray(theta, dtype=float)
    diagonal = theta[[0]] if theta.size == 1 else theta[[0, 2]]
    return bool(np.any(diagonal < SINGULAR_TOLERANCE))
