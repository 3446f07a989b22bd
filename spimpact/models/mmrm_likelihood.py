"""The MMRM (restricted) likelihood from per-pattern sufficient statistics.

Subjects are grouped by their pattern of observed visits (and covariance group).
Within a pattern every subject shares the same covariance block, so the model
needs only three cross-product sums per pattern,

    xx[a, b] = sum_i X_ia' X_ib,   xy[a, b] = sum_i X_ia' y_ib,   yy[a, b] = sum_i y_ia y_ib,

(a, b index the pattern's visits); after that one pass over the data, each
evaluation of the likelihood, its gradient and its Hessian costs the same for
200 subjects as for 200,000. Patterns with the same number of visits are stacked
so that each evaluation is a handful of batched array operations. Observation
weights w scale the residual variance (Var(y_ij) proportional to 1 / w_ij, as in
R mmrm and SAS ``WEIGHT``); they are absorbed by scaling the rows of X and y by sqrt(w).

The criterion is -2 log-likelihood,

    ML:   N log(2 pi) + log|V| + r'V^-1 r
    REML: (N - p) log(2 pi) + log|V| + log|X'V^-1 X| + r'V^-1 r,

with r = y - X beta_hat (beta profiled out by generalised least squares), as in SAS
PROC MIXED and R mmrm (Wolfinger, Tobias & Sall 1994). The gradient and observed
Hessian with respect to the covariance parameters are analytic (Jennrich &
Schluchter 1986; the REML forms in Wolfinger et al. 1994, Appendix); the same
pieces give the P, Q and R matrices of Kenward & Roger (1997).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PatternStack:
    """Sufficient statistics of all patterns with k observed visits, stacked.

    ``groups`` (n_b,), ``visits`` (n_b, k) and ``n_subjects`` (n_b,) describe the
    patterns; ``xx`` is (n_b, k, k, p, p), ``xy`` (n_b, k, k, p) and ``yy`` (n_b, k, k).
    """

    groups: np.ndarray
    visits: np.ndarray
    n_subjects: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: np.ndarray


@dataclass(frozen=True)
class Data:
    """Everything the likelihood needs: stacked pattern statistics and totals."""

    stacks: tuple[PatternStack, ...]
    n_obs: int
    n_fixed: int
    n_groups: int
    n_visits: int
    log_weight_sum: float


def build_data(x, y, weights, subject_codes, visit_codes, group_codes, n_visits) -> Data:
    """Pattern statistics from rows of ``x``, ``y`` (one row per subject and visit).

    ``subject_codes`` are 0..n_subjects-1, ``visit_codes`` 0..n_visits-1 and
    ``group_codes`` the covariance group of each row (constant within subject).
    """
    n_subjects = int(subject_codes.max()) + 1
    p = x.shape[1]
    root = np.sqrt(weights)
    dense_x = np.zeros((n_subjects, n_visits, p))
    dense_y = np.zeros((n_subjects, n_visits))
    dense_x[subject_codes, visit_codes] = x * root[:, None]
    dense_y[subject_codes, visit_codes] = y * root
    observed = np.zeros((n_subjects, n_visits), dtype=bool)
    observed[subject_codes, visit_codes] = True
    subject_group = np.zeros(n_subjects, dtype=int)
    subject_group[subject_codes] = group_codes
    masks = observed @ (1 << np.arange(n_visits, dtype=np.int64))
    keys = subject_group.astype(np.int64) * (1 << n_visits) + masks
    order = np.argsort(keys, kind="stable")
    unique_keys, starts = np.unique(keys[order], return_index=True)
    by_size: dict[int, list] = {}
    for key, members in zip(unique_keys, np.split(order, starts[1:]), strict=True):
        visits = np.flatnonzero(observed[members[0]])
        bx = dense_x[np.ix_(members, visits)]
        by = dense_y[np.ix_(members, visits)]
        k = len(visits)
        flat = bx.reshape(len(members), k * p)
        xx = (flat.T @ flat).reshape(k, p, k, p).transpose(0, 2, 1, 3)
        xy = np.einsum("iap,ib->abp", bx, by)
        group = int(key >> n_visits)
        by_size.setdefault(k, []).append((group, visits, len(members), xx, xy, by.T @ by))
    stacks = []
    for k in sorted(by_size):
        items = by_size[k]
        stacks.append(
            PatternStack(
                groups=np.array([item[0] for item in items]),
                visits=np.array([item[1] for item in items]).reshape(len(items), k),
                n_subjects=np.array([item[2] for item in items], dtype=float),
                xx=np.stack([item[3] for item in items]),
                xy=np.stack([item[4] for item in items]),
                yy=np.stack([item[5] for item in items]),
            )
        )
    n_groups = int(subject_group.max()) + 1
    return Data(tuple(stacks), len(y), p, n_groups, n_visits, float(np.sum(np.log(weights))))


def _blocks(stack: PatternStack, matrices):
    """Each pattern's sub-matrix of its group's matrix: matrices (G, ..., m, m)."""
    rows = stack.visits[:, :, None]
    cols = stack.visits[:, None, :]
    # move the two visit axes next to the pattern axis, pick, and move them back
    moved = np.moveaxis(matrices[stack.groups], (-2, -1), (1, 2))
    picked = moved[np.arange(len(rows))[:, None, None], rows, cols]
    return np.moveaxis(picked, (1, 2), (-2, -1))


@dataclass(frozen=True)
class Profile:
    """The criterion at given covariance matrices, with beta profiled out.

    Per stack: ``inverses`` (n_b, k, k), ``residual_products`` sum_i r_ia r_ib and
    ``trace_terms`` tr((X'V^-1X)^-1 xx[a, b]) (the derivative of log|X'V^-1X|).
    """

    deviance: float
    beta: np.ndarray
    xtvx: np.ndarray
    xtvx_inv: np.ndarray
    inverses: tuple
    residual_products: tuple
    trace_terms: tuple


def profile(data: Data, sigmas, reml: bool) -> Profile | None:
    """-2 log-likelihood at the group covariance matrices ``sigmas``; ``None`` if not PD."""
    p = data.n_fixed
    sigmas = np.asarray(sigmas, dtype=float)
    xtvx = np.zeros((p, p))
    xtvy = np.zeros(p)
    ytvy = 0.0
    log_det = 0.0
    inverses = []
    for stack in data.stacks:
        sub = _blocks(stack, sigmas)
        try:
            lower = np.linalg.cholesky(sub)
        except np.linalg.LinAlgError:
            return None
        inverse = np.linalg.inv(sub)
        inverses.append(inverse)
        log_det += 2 * float(stack.n_subjects @ np.log(np.diagonal(lower, axis1=1, axis2=2)).sum(1))
        xtvx += np.einsum("nab,nabpq->pq", inverse, stack.xx)
        xtvy += np.einsum("nab,nabp->p", inverse, stack.xy)
        ytvy += float(np.sum(inverse * stack.yy))
    try:
        x_lower = np.linalg.cholesky(xtvx)
    except np.linalg.LinAlgError:
        return None
    xtvx_inv = np.linalg.inv(xtvx)
    beta = xtvx_inv @ xtvy
    quadratic = ytvy - xtvy @ beta
    deviance = log_det - data.log_weight_sum + quadratic
    if reml:
        deviance += 2 * np.sum(np.log(np.diag(x_lower))) + (data.n_obs - p) * np.log(2 * np.pi)
    else:
        deviance += data.n_obs * np.log(2 * np.pi)
    residual_products = []
    trace_terms = []
    for stack in data.stacks:
        xb = np.einsum("nabp,p->nab", stack.xy, beta)
        quad = np.einsum("nabpq,p,q->nab", stack.xx, beta, beta)
        residual_products.append(stack.yy - xb - np.swapaxes(xb, 1, 2) + quad)
        trace_terms.append(np.einsum("pq,nabqp->nab", xtvx_inv, stack.xx))
    return Profile(
        float(deviance),
        beta,
        xtvx,
        xtvx_inv,
        tuple(inverses),
        tuple(residual_products),
        tuple(trace_terms),
    )


def matrix_gradient(data: Data, state: Profile, reml: bool) -> np.ndarray:
    """Derivative of the deviance in each group's Sigma, (G, m, m), paired by trace."""
    out = np.zeros((data.n_groups, data.n_visits, data.n_visits))
    for stack, inverse, products, traces in zip(
        data.stacks, state.inverses, state.residual_products, state.trace_terms, strict=True
    ):
        inner = products + traces if reml else products
        local = stack.n_subjects[:, None, None] * inverse - inverse @ inner @ inverse
        rows = stack.visits[:, :, None]
        cols = stack.visits[:, None, :]
        np.add.at(out, (stack.groups[:, None, None], rows, cols), local)
    return out


@dataclass(frozen=True)
class Derivatives:
    """Gradient and Hessian of the deviance in the natural parameters, and KR's P_h."""

    gradient: np.ndarray
    hessian: np.ndarray
    expected: np.ndarray
    p: np.ndarray


def _block_diagonal(per_group: np.ndarray, n_per: int) -> np.ndarray:
    """Place group blocks (G, n_per, n_per) on the diagonal of the full matrix."""
    n_groups = per_group.shape[0]
    out = np.zeros((n_groups * n_per, n_groups * n_per))
    for g in range(n_groups):
        out[g * n_per : (g + 1) * n_per, g * n_per : (g + 1) * n_per] = per_group[g]
    return out


def derivatives(data: Data, state: Profile, d_sigmas, d2_sigmas, reml: bool) -> Derivatives:
    """Analytic gradient and observed Hessian of the deviance, and KR's P_h.

    ``d_sigmas`` is (G, n, m, m) and ``d2_sigmas`` (G, n, n, m, m): the
    derivatives of each group's matrix in its n natural parameters. Returns
    vectors and matrices over all G * n parameters (group-major), with
    ``p[h] = X'V^-1 (dV/dphi_h) V^-1 X`` and the expected information
    (for -2 log-likelihood) kept beside the observed one.
    """
    pdim = data.n_fixed
    n_groups = data.n_groups
    n = d_sigmas.shape[1]
    ainv = state.xtvx_inv
    tr_vh = np.zeros((n_groups, n))
    rr_h = np.zeros((n_groups, n))
    p_h = np.zeros((n_groups, n, pdim, pdim))
    u_h = np.zeros((n_groups, n, pdim))
    pair_terms = np.zeros((6, n_groups, n, n))
    for stack, inverse, products, traces in zip(
        data.stacks, state.inverses, state.residual_products, state.trace_terms, strict=True
    ):
        first = _blocks(stack, d_sigmas)  # (nb, n, k, k)
        second = _blocks(stack, d2_sigmas)  # (nb, n, n, k, k)
        ns = stack.n_subjects
        vinv_vh = inverse[:, None] @ first  # V^-1 V_h
        t = vinv_vh @ inverse[:, None]  # V^-1 V_h V^-1
        tt = np.einsum("nhab,njbc->nhjac", t, first) @ inverse[:, None, None]
        rm = inverse[:, None, None] @ second @ inverse[:, None, None]
        fitted = stack.xy - np.einsum("nabpq,q->nabp", stack.xx, state.beta)
        groups = stack.groups
        np.add.at(tr_vh, groups, ns[:, None] * np.einsum("nhab,nba->nh", first, inverse))
        np.add.at(rr_h, groups, np.einsum("nhab,nba->nh", t, products))
        np.add.at(p_h, groups, np.einsum("nhab,nabpq->nhpq", t, stack.xx))
        np.add.at(u_h, groups, np.einsum("nhab,nabp->nhp", t, fitted))
        pairs = np.stack(
            [
                ns[:, None, None] * np.einsum("nhab,njba->nhj", vinv_vh, vinv_vh),
                ns[:, None, None] * np.einsum("nab,nhjba->nhj", inverse, second),
                np.einsum("nhjab,nba->nhj", tt, traces),
                np.einsum("nhjab,nba->nhj", rm, traces),
                np.einsum("nhjab,nba->nhj", tt, products),
                np.einsum("nhjab,nba->nhj", rm, products),
            ]
        )
        np.add.at(pair_terms, (slice(None), groups), pairs)
    tr_vhvj, tr_vhj, tr_aq, tr_ar, rr_hj, rhr_hj = (_block_diagonal(term, n) for term in pair_terms)
    tr_vh, rr_h = tr_vh.reshape(-1), rr_h.reshape(-1)
    p_h = p_h.reshape(n_groups * n, pdim, pdim)
    u_h = u_h.reshape(n_groups * n, pdim)
    ap = np.einsum("pq,hqr->hpr", ainv, p_h)
    tr_apap = np.einsum("hpq,jqp->hj", ap, ap)
    uau = u_h @ ainv @ u_h.T
    rr_sym = (rr_hj + rr_hj.T) / 2
    tr_aq = (tr_aq + tr_aq.T) / 2
    if reml:
        gradient = tr_vh - np.einsum("hpp->h", ap) - rr_h
        hessian = -tr_vhvj + 2 * tr_aq - tr_apap + tr_vhj - tr_ar + 2 * rr_sym - 2 * uau - rhr_hj
        expected = tr_vhvj - 2 * tr_aq + tr_apap
    else:
        gradient = tr_vh - rr_h
        hessian = -tr_vhvj + tr_vhj + 2 * rr_sym - 2 * uau - rhr_hj
        expected = tr_vhvj
    return Derivatives(gradient, (hessian + hessian.T) / 2, expected, p_h)


def kenward_roger_sum(data: Data, state: Profile, d_sigmas, d2_sigmas, w, linear: bool):
    """sum_hj W_hj (Q_hj - R_hj / 4), the data part of the Kenward-Roger adjustment.

    Q_hj = X'V^-1 V_h V^-1 V_j V^-1 X and R_hj = X'V^-1 V_hj V^-1 X (Kenward & Roger
    1997, eq. 4-5); contracting with W inside each pattern keeps the cost at one
    p x p matrix per pattern. Parameters of different groups never share a
    subject, so their Q and R vanish. ``linear`` drops R (SAS ``DDFM=KR(LINEAR)``).
    """
    n = d_sigmas.shape[1]
    out = np.zeros((data.n_fixed, data.n_fixed))
    for stack, inverse in zip(data.stacks, state.inverses, strict=True):
        first = _blocks(stack, d_sigmas)
        index = stack.groups[:, None] * n + np.arange(n)[None]
        wg = w[index[:, :, None], index[:, None, :]]  # (nb, n, n)
        vinv_vh = inverse[:, None] @ first
        weighted = np.einsum("nhj,nhab,njbc->nac", wg, vinv_vh, vinv_vh) @ inverse
        if not linear:
            second = _blocks(stack, d2_sigmas)
            weighted = weighted - 0.25 * inverse @ np.einsum("nhj,nhjab->nab", wg, second) @ inverse
        out += np.einsum("nab,nabpq->pq", weighted, stack.xx)
    return out
