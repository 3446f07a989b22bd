"""Sensitivity of an event study to violations of parallel trends (relative magnitudes).

Re-exported by :mod:`spimpact.models.did`. Rambachan & Roth's (2023)
relative-magnitudes restriction, with the conditional least-favourable hybrid
(C-LF) confidence set of the R ``HonestDiD`` package or a closed-form,
conservative Bonferroni projection.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize, sparse, special, stats

from spimpact.models.did_honest_flci import honest_did_smoothness

if TYPE_CHECKING:
    from spimpact.models.did import EventStudyResult


__all__ = ["event_study_inputs", "honest_did_relative_magnitude", "honest_did_smoothness"]

METHODS = ("C-LF", "bonferroni")


def event_study_inputs(
    event_times: Sequence[int], estimates: Sequence[float], covariance: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Check an event study for the honest bounds; return beta, sigma and the period counts.

    The reference period must be -1 (omitted), pre-period event times contiguous up
    to -2 and post-period ones contiguous from 0.
    """
    e = np.asarray(event_times)
    pre = np.flatnonzero(e < 0)
    post = np.flatnonzero(e >= 0)
    if pre.size == 0 or post.size == 0:
        raise ValueError("the event study needs pre-treatment and post-treatment coefficients")
    if not np.array_equal(e[pre], np.arange(-pre.size - 1, -1)):
        raise ValueError(
            f"pre-period event times must run contiguously up to -2 (reference -1); got {e[pre]}"
        )
    if not np.array_equal(e[post], np.arange(post.size)):
        raise ValueError(f"post-period event times must run contiguously from 0; got {e[post]}")
    order = np.r_[pre, post]
    beta = np.asarray(estimates, dtype=float)[order]
    sigma = np.asarray(covariance, dtype=float)[np.ix_(order, order)]
    return beta, sigma, int(pre.size), int(post.size)


def honest_did_relative_magnitude(
    event_study: EventStudyResult,
    *,
    mbar: Sequence[float],
    post_weights: Sequence[float] | None = None,
    conf_level: float = 0.95,
    method: str = "C-LF",
    n_grid: int = 1000,
    n_simulations: int = 1000,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """Robust confidence intervals when post-treatment trend breaks may be Mbar x pre-trend ones.

    Parameters
    ----------
    event_study
        A fitted :class:`~spimpact.models.did.EventStudyResult` with reference
        period -1, pre-period coefficients running contiguously to -2 and
        post-period ones from 0.
    mbar
        Values of Mbar >= 0: post-treatment violations of parallel trends (changes
        in the differential trend between consecutive periods) may be up to Mbar
        times the largest such change before treatment.
    post_weights
        Weights ``l`` defining the target ``theta = l' tau_post`` over event times
        0, 1, ... of the study; default ``(1, 0, 0, ...)``: the effect on impact.
    conf_level
        Coverage of each interval.
    method
        ``"C-LF"`` (default): the conditional least-favourable hybrid test of R
        ``HonestDiD`` (needs at least two post-treatment coefficients);
        ``"bonferroni"``: a closed-form, conservative projection (any event study).
    n_grid, n_simulations, seed
        C-LF only: points of the grid of theta values tested (HonestDiD's
        ``gridPoints``), draws for the least-favourable critical value and their seed.

    Returns
    -------
    pandas.DataFrame
        One row per Mbar: ``mbar, conf_low, conf_high, method, breakdown_mbar``.
        ``breakdown_mbar`` (the same on every row) says how large Mbar can be with
        the interval still excluding zero: for ``"bonferroni"`` exactly (0 if even
        Mbar = 0 does not exclude zero); for ``"C-LF"`` the largest requested Mbar
        up to which every requested interval excludes zero (NaN if the smallest
        does not), as read off HonestDiD's sensitivity plots.

    Notes
    -----
    Rambachan & Roth (2023), "A More Credible Approach to Parallel Trends",
    Review of Economic Studies 90(5), Delta^RM (section 2.4). ``"C-LF"`` follows
    R ``HonestDiD::createSensitivityResults_relativeMagnitudes`` (version on
    GitHub asheshrambachan/HonestDiD): for each location and sign of the largest
    pre-treatment change the Andrews, Roth & Pakes (2023) moment-inequality test
    with nuisance parameters and the least-favourable hybrid (kappa = alpha / 10)
    is inverted over a grid of theta, using post-period moments only, and the
    union over locations and signs is reported. The least-favourable critical
    value is simulated (``n_simulations`` draws), so the end points can differ
    from R's by about one grid step. The dual truncation points are found in
    closed form from the vertices of the dual polytope rather than by
    HonestDiD's bisection (bisection is the fallback when there are too many
    vertices to enumerate).

    ``"bonferroni"``: under Delta^RM the bias of ``theta`` is at most
    ``Mbar D sum_k |l_k| (k + 1)``, ``D`` the largest absolute change of consecutive
    pre-period coefficients. With ``alpha = 1 - conf_level``, an upper confidence
    bound ``U`` for ``D`` at level ``1 - alpha/2`` (Bonferroni over the pre-period
    changes) and a ``1 - alpha/2`` Wald interval give
    ``l' beta_post +/- (z_{1-alpha/4} se + Mbar U sum_k |l_k|(k+1))``; at Mbar = 0 the
    ordinary Wald interval. Coverage is at least ``conf_level`` and intervals are
    wider than C-LF's.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
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
    if method == "bonferroni":
        return _bonferroni(beta, sigma, pre, post, weights, mbar, conf_level)
    if post.size < 2:
        raise ValueError(
            "method='C-LF' needs at least two post-treatment coefficients; "
            "use method='bonferroni' for a single one"
        )
    if n_grid < 100 or n_simulations < 100:
        raise ValueError("n_grid and n_simulations must each be at least 100")
    return _clf(
        beta, sigma, pre.size, post.size, weights, mbar, conf_level, n_grid, n_simulations, seed
    )


def _bonferroni(beta, sigma, pre, post, weights, mbar, conf_level) -> pd.DataFrame:
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
            "method": "bonferroni",
            "breakdown_mbar": breakdown,
        }
    )


def _clf(beta, sigma, n_pre, n_post, weights, mbar, conf_level, n_grid, n_simulations, seed):
    alpha = 1 - conf_level
    kappa = alpha / 10
    post_sigma = sigma[n_pre:, n_pre:]
    theta = float(weights @ beta[n_pre:])
    sd_theta = float(np.sqrt(weights @ post_sigma @ weights))
    # HonestDiD tests theta on [-20 sd, 20 sd]; widened here to reach theta +/- 20 sd
    grid = np.linspace(
        min(-20 * sd_theta, theta - 20 * sd_theta),
        max(20 * sd_theta, theta + 20 * sd_theta),
        n_grid,
    )
    lows, highs = [], []
    for value in mbar:
        rng = np.random.default_rng(seed)
        accept = np.zeros(grid.size, dtype=bool)
        for s in range(-(n_pre - 1), 1):
            for max_positive in (True, False):
                accept |= _clf_accept_region(
                    beta,
                    sigma,
                    n_pre,
                    n_post,
                    weights,
                    value,
                    s,
                    max_positive,
                    grid,
                    alpha,
                    kappa,
                    n_simulations,
                    rng,
                )
        if not accept.any():
            lows.append(np.nan)
            highs.append(np.nan)
            continue
        lows.append(-np.inf if accept[0] else float(grid[accept].min()))
        highs.append(np.inf if accept[-1] else float(grid[accept].max()))
    lows, highs = np.array(lows), np.array(highs)
    order = np.argsort(mbar)
    excludes = ~((lows[order] <= 0) & (highs[order] >= 0))
    if not excludes[0]:
        breakdown = np.nan
    else:
        first_failure = np.flatnonzero(~excludes)
        last = order[-1] if first_failure.size == 0 else order[first_failure[0] - 1]
        breakdown = float(mbar[last])
    return pd.DataFrame(
        {
            "mbar": mbar,
            "conf_low": lows,
            "conf_high": highs,
            "method": "C-LF",
            "breakdown_mbar": breakdown,
        }
    )


# ---------------------------------------------------------------------------
# Conditional least-favourable hybrid (C-LF) test of Andrews, Roth & Pakes (2023),
# as R HonestDiD's computeConditionalCS_DeltaRM with nuisance parameters.
# ---------------------------------------------------------------------------

LAMBDA_TOLERANCE = 1e-6


def _create_a_rm(n_pre: int, n_post: int, mbar: float, s: int, max_positive: bool) -> np.ndarray:
    """Constraint matrix A of Delta^RM for a fixed location ``s`` of the largest pre change.

    Rows ``A delta <= 0`` say every consecutive change of delta (pre and post) is at
    most the pre change at ``s`` (Mbar times it after treatment), in absolute value;
    the reference-period column is dropped (HonestDiD ``.create_A_RM``).
    """
    size = n_pre + n_post
    a_tilde = np.zeros((size, size + 1))
    for r in range(size):
        a_tilde[r, r], a_tilde[r, r + 1] = -1.0, 1.0
    v = np.zeros(size + 1)
    v[n_pre + s - 1], v[n_pre + s] = -1.0, 1.0
    if not max_positive:
        v = -v
    a_ub = np.vstack([np.tile(v, (n_pre, 1)), np.tile(mbar * v, (n_post, 1))])
    a = np.vstack([a_tilde - a_ub, -a_tilde - a_ub])
    a = a[np.einsum("ij,ij->i", a, a) > 1e-10]
    return np.delete(a, n_pre, axis=1)


def _construct_gamma(weights: np.ndarray) -> np.ndarray:
    """Invertible matrix whose first row is ``weights`` (HonestDiD ``.construct_Gamma``)."""
    rows = [weights]
    for j in range(weights.size):
        candidate = np.vstack([*rows, np.eye(weights.size)[j]])
        if np.linalg.matrix_rank(candidate) == candidate.shape[0]:
            rows.append(np.eye(weights.size)[j])
        if len(rows) == weights.size:
            break
    return np.vstack(rows)


def _eta_batch(y: np.ndarray, x: np.ndarray, sd: np.ndarray):
    """Solve ``min eta s.t. y_b - X delta_b <= sd eta`` for every row ``y_b`` of ``y`` at once.

    The problems are independent, so they are stacked into one block-diagonal linear
    programme (HiGHS); returns eta, the duals lambda (>= 0) and a success flag.
    """
    n_problems, m = y.shape
    k = x.shape[1]
    block = sparse.csr_matrix(-np.column_stack([sd, x]))
    a_ub = sparse.kron(sparse.identity(n_problems, format="csr"), block, format="csr")
    cost = np.tile(np.r_[1.0, np.zeros(k)], n_problems)
    result = optimize.linprog(cost, A_ub=a_ub, b_ub=-y.ravel(), bounds=(None, None), method="highs")
    if result.status != 0:
        return None, None, False
    eta = result.x.reshape(n_problems, k + 1)[:, 0]
    duals = -result.ineqlin.marginals.reshape(n_problems, m)
    return eta, duals, True


def _max_program(s_t, gamma, sigma, w_t, c):
    b = sigma @ gamma / (gamma @ sigma @ gamma)
    objective = s_t + b * c
    result = optimize.linprog(
        -objective,
        A_eq=w_t.T,
        b_eq=np.r_[1.0, np.zeros(w_t.shape[1] - 1)],
        bounds=(0, None),
        method="highs",
    )
    return result


def _is_solution(c, s_t, gamma, sigma, w_t) -> tuple[bool, np.ndarray | None]:
    result = _max_program(s_t, gamma, sigma, w_t, c)
    if result.status != 0:
        return False, None
    return abs(c - (-result.fun)) <= 1e-6, result.x


def _vlo_vup_dual(eta, s_t, gamma, sigma, w_t) -> tuple[float, float]:
    """Find the truncation points by bisection on the dual (HonestDiD ``.vlo_vup_dual_fn``)."""
    sigma_b = float(np.sqrt(gamma @ sigma @ gamma))
    low_initial = min(-100.0, eta - 20 * sigma_b)
    high_initial = max(100.0, eta + 20 * sigma_b)
    b = sigma @ gamma / (gamma @ sigma @ gamma)
    if not _is_solution(eta, s_t, gamma, sigma, w_t)[0]:
        return eta, np.inf

    def search(start, other_end, upper):
        solved, vertex = _is_solution(start, s_t, gamma, sigma, w_t)
        if solved:
            return np.inf if upper else -np.inf
        dif, iterations = 0.0, 1
        mid = start if vertex is None else _vertex_mid(vertex, s_t, b)
        while True:
            solved, vertex = _is_solution(mid, s_t, gamma, sigma, w_t)
            if solved:
                break
            iterations += 1
            if iterations >= 10 or vertex is None:
                dif = 1e-6 + 1
                break
            mid = _vertex_mid(vertex, s_t, b)
        low, high = (other_end, mid) if upper else (mid, other_end)
        while dif > 1e-6 and iterations < 10_000:
            iterations += 1
            mid = (high + low) / 2
            inside = _is_solution(mid, s_t, gamma, sigma, w_t)[0]
            if upper:
                low, high = (mid, high) if inside else (low, mid)
            else:
                low, high = (low, mid) if inside else (mid, high)
            dif = high - low
        return mid

    return search(low_initial, eta, upper=False), search(high_initial, eta, upper=True)


def _dual_vertices(w_t: np.ndarray, max_subsets: int = 50_000) -> np.ndarray | None:
    """Vertices of ``{lambda >= 0 : W' lambda = e1}``; ``None`` when too many to enumerate."""
    m, p = w_t.shape
    if math.comb(m, p) > max_subsets:
        return None
    target = np.r_[1.0, np.zeros(p - 1)]
    vertices = []
    for subset in itertools.combinations(range(m), p):
        block = w_t[list(subset)].T
        if abs(np.linalg.det(block)) < 1e-12:
            continue
        values = np.linalg.solve(block, target)
        if (values >= -1e-12).all():
            vertex = np.zeros(m)
            vertex[list(subset)] = np.maximum(values, 0.0)
            vertices.append(vertex)
    return np.array(vertices) if vertices else None


def _vlo_vup_vertices(eta, s_t, gamma, sigma, vertices) -> tuple[float, float]:
    """Compute the truncation points of the dual branch in closed form.

    The dual value ``g(c) = max_v lambda_v'(s_T + b c)`` is convex, piecewise linear and
    ``>= c``; HonestDiD bisects for the interval where ``g(c) = c``. Its end points are
    the roots ``lambda_v's_T / (1 - lambda_v'b)`` of the vertex lines (the same
    expression HonestDiD uses to start its search), found here directly.
    """
    b = sigma @ gamma / (gamma @ sigma @ gamma)
    intercept = vertices @ s_t
    slope = vertices @ b
    if abs(np.max(intercept + eta * slope) - eta) > 1e-6:
        return eta, np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = intercept / (1 - slope)
    right = slope > 1 + 1e-12
    left = slope < 1 - 1e-12
    vup = roots[right].min() if right.any() else np.inf
    vlo = roots[left].max() if left.any() else -np.inf
    return float(vlo), float(vup)


def _vertex_mid(vertex, s_t, b) -> float:
    numerator = float(vertex @ s_t)
    numerator = 0.0 if abs(numerator) < np.finfo(float).eps ** 0.75 else numerator
    return numerator / (1 - float(vertex @ b))


def _conditional_test(
    y: np.ndarray,
    x: np.ndarray,
    sigma: np.ndarray,
    eta: float,
    duals: np.ndarray,
    alpha: float,
    kappa: float,
    lf_cv: float,
    vertices: np.ndarray | None,
) -> bool:
    """Reject? ARP conditional test with the least-favourable hybrid, given the LP solution."""
    if eta > lf_cv:
        return True
    mod_size = (alpha - kappa) / (1 - kappa)
    m, k = x.shape
    sd = np.sqrt(np.diag(sigma))
    binding = duals > LAMBDA_TOLERANCE
    degenerate = binding.sum() != k + 1
    x_b = x[binding]
    full_rank = min(x_b.shape) > 0 and np.linalg.matrix_rank(x_b) == min(x_b.shape)
    if degenerate or not full_rank:
        gamma = duals
        w_t = np.column_stack([sd, x])
        s_t = y - sigma @ gamma * (gamma @ y) / (gamma @ sigma @ gamma)
        variance = float(gamma @ sigma @ gamma)
        if abs(variance) < np.finfo(float).eps:
            return eta > 0
        if vertices is None:
            vlo, vup = _vlo_vup_dual(eta, s_t, gamma, sigma, w_t)
        else:
            vlo, vup = _vlo_vup_vertices(eta, s_t, gamma, sigma, vertices)
        sigma_b = np.sqrt(variance)
        statistic = eta / sigma_b
        zlo, zup = vlo / sigma_b, min(vup, lf_cv) / sigma_b
    else:
        s_b = np.eye(m)[binding]
        s_bc = np.eye(m)[~binding]
        basis_inverse = np.linalg.inv(np.column_stack([sd[binding], x_b]))
        gamma_b = np.column_stack([sd[~binding], x[~binding]]) @ basis_inverse @ s_b - s_bc
        v_b = (basis_inverse @ s_b)[0]
        variance = float(v_b @ sigma @ v_b)
        sigma_b = np.sqrt(variance)
        rho = gamma_b @ sigma @ v_b / variance
        bounds = -(gamma_b @ y) / rho + v_b @ y
        vlo = bounds[rho > 0].max() if (rho > 0).any() else -np.inf
        vup = bounds[rho < 0].min() if (rho < 0).any() else np.inf
        statistic = eta / sigma_b
        zlo, zup = vlo / sigma_b, min(vup, lf_cv) / sigma_b
    if not zlo <= statistic <= zup:
        return False
    critical = max(0.0, _truncated_normal_quantile(1 - mod_size, zlo, zup))
    return statistic > critical


def _truncated_normal_quantile(p: float, low: float, high: float) -> float:
    """Quantile of N(0, 1) truncated to [low, high], via the tail that keeps precision."""
    if low > 0:
        upper_low, upper_high = special.ndtr(-low), special.ndtr(-high)
        return float(-special.ndtri(upper_low - p * (upper_low - upper_high)))
    lower_low, lower_high = special.ndtr(low), special.ndtr(high)
    return float(special.ndtri(lower_low + p * (lower_high - lower_low)))


def _clf_accept_region(
    beta,
    sigma,
    n_pre,
    n_post,
    weights,
    mbar,
    s,
    max_positive,
    grid,
    alpha,
    kappa,
    n_simulations,
    rng,
) -> np.ndarray:
    a = _create_a_rm(n_pre, n_post, mbar, s, max_positive)
    rows = np.flatnonzero(np.any(a[:, n_pre:] != 0, axis=1))
    a_gamma_inverse = a[:, n_pre:] @ np.linalg.inv(_construct_gamma(weights))
    one = a_gamma_inverse[rows, 0]
    x = a_gamma_inverse[rows, 1:]
    y_all = (a @ beta)[rows]
    sigma_y = (a @ sigma @ a.T)[np.ix_(rows, rows)]
    sd = np.sqrt(np.diag(sigma_y))
    draws = rng.multivariate_normal(np.zeros(rows.size), sigma_y, size=n_simulations)
    eta_draws, _, ok = _eta_batch(draws, x, sd)
    if not ok:
        raise RuntimeError("least-favourable critical value: linear programmes failed")
    lf_cv = float(np.quantile(eta_draws, 1 - kappa))
    y_grid = y_all[None, :] - grid[:, None] * one[None, :]
    eta, duals, ok = _eta_batch(y_grid, x, sd)
    if not ok:
        raise RuntimeError("the ARP test's linear programmes failed")
    vertices = _dual_vertices(np.column_stack([sd, x]))
    return np.array(
        [
            not _conditional_test(
                y_grid[i], x, sigma_y, eta[i], duals[i], alpha, kappa, lf_cv, vertices
            )
            for i in range(grid.size)
        ]
    )
