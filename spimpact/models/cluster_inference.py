"""Small-sample cluster-robust inference for (weighted) least squares with absorbed fixed effects.

Private helpers behind the ``se=`` options of the DiD estimators:

* :func:`cr2_inference` -- the bias-reduced linearisation (CR2) covariance of Bell &
  McCaffrey (2002), generalised to fixed effects and weights by Pustejovsky & Tipton
  (2018), with Satterthwaite degrees of freedom for any single linear contrast, as
  R ``clubSandwich::coef_test(..., vcov = "CR2", test = "Satterthwaite")``.
* :func:`wild_cluster_bootstrap` -- the restricted wild cluster bootstrap (WCR, null
  imposed) of Cameron, Gelbach & Miller (2008) with Rademacher or Webb weights, its
  p-value and the confidence interval found by test inversion, as Stata ``boottest`` /
  R ``fwildclusterboot`` / Julia ``WildBootTests``, using the fast cluster-level
  algebra of Roodman, MacKinnon, Nielsen & Webb (2019).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from spimpact.models.did_fixed_effects import demean, is_nested

EIGEN_TOLERANCE = 1e-12
MAX_EXPLICIT_COLUMNS = 400
MAX_WILD_CLUSTERS = 2000
BOOTSTRAP_WEIGHTS = ("rademacher", "webb")


def _cluster_rows(cluster: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(cluster, kind="stable")
    bounds = np.flatnonzero(np.diff(cluster[order])) + 1
    return np.split(order, bounds)


def split_fixed_effects(
    absorb: Sequence[np.ndarray], cluster: np.ndarray
) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """Choose the one absorbed factor kept implicit (nested in the clusters) and the rest.

    The nested factor with most levels stays absorbed; another nested factor whose
    levels are unions of its levels adds nothing and is dropped. Every other factor
    must be carried as explicit dummy columns.
    """
    nested = [g for g in absorb if is_nested(g, cluster)]
    kept = max(nested, key=lambda g: int(g.max()) + 1) if nested else None
    explicit = []
    for g in absorb:
        if g is kept:
            continue
        if kept is not None and is_nested(kept, g):
            continue
        explicit.append(g)
    return kept, explicit


def explicit_dummies(groups: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Dummy columns for ``groups``, one level of each dropped (collinear with the rest)."""
    columns = []
    for g in groups:
        levels = int(g.max()) + 1
        block = np.zeros((n, levels))
        block[np.arange(n), g] = 1.0
        columns.append(block[:, 1:])
    total = sum(c.shape[1] for c in columns)
    if total > MAX_EXPLICIT_COLUMNS:
        raise ValueError(
            f"CR2 needs the fixed effects that are not nested in the clusters as explicit "
            f"columns, here {total} (more than {MAX_EXPLICIT_COLUMNS}); cluster at a level "
            "that contains them or use se='CR1' or se='wild'"
        )
    return np.column_stack(columns) if columns else np.empty((n, 0))


@dataclass(frozen=True)
class Cr2Inference:
    """CR2 covariance of the first ``k`` coefficients and what the Satterthwaite df needs."""

    covariance: np.ndarray
    n_clusters: int
    _s: np.ndarray
    _omega: np.ndarray
    _alpha: np.ndarray
    _phi: np.ndarray
    _diagonal: np.ndarray

    def satterthwaite_df(self, contrast: np.ndarray) -> float:
        """Satterthwaite degrees of freedom of ``contrast' beta`` (clubSandwich ``df_Satt``)."""
        c = np.asarray(contrast, dtype=float)
        alpha = np.einsum("gkp,k->gp", self._alpha, c)
        phi = np.einsum("gkp,k->gp", self._phi, c)
        s_alpha = alpha @ self._s
        cross = -s_alpha @ phi.T
        matrix = cross + cross.T + s_alpha @ self._omega @ s_alpha.T
        np.fill_diagonal(matrix, np.einsum("gij,i,j->g", self._diagonal, c, c))
        return float(np.trace(matrix) ** 2 / np.sum(matrix**2))


def cr2_inference(
    t_matrix: np.ndarray,
    residuals: np.ndarray,
    cluster: np.ndarray,
    *,
    k: int,
    nested: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> Cr2Inference:
    """CR2 covariance of the first ``k`` columns of ``t_matrix`` (working model: identity).

    Parameters
    ----------
    t_matrix
        n x p explicit regressors: the ``k`` coefficients of interest first, then any
        fixed-effect dummies that are not nested in the clusters.
    residuals
        Residuals of the full weighted least-squares fit (original scale).
    cluster
        Integer cluster codes 0..G-1.
    nested
        Integer codes of one fixed-effect factor nested in the clusters, absorbed rather
        than written out (``None`` if there is none).
    weights
        Regression weights; ``None`` for OLS.

    Notes
    -----
    Pustejovsky & Tipton (2018), JBES 36(4), eqs. (5)-(8), with R ``clubSandwich``'s
    default working model for ``lm`` (independent, homoskedastic errors, also with
    weights): ``A_j = G_j^{+1/2}``, ``G_j = [(I - H)(I - H)']_jj``, ``H`` the hat matrix of
    the full design including every fixed effect, pseudo-inverse square root dropping
    eigenvalues below 1e-12 as clubSandwich does. ``G_j`` is identity plus a low-rank
    term built from the cluster's units and the explicit columns, so clusters of any size
    are handled without forming an n x n matrix.
    """
    n = residuals.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if nested is not None:
        t_tilde = demean(t_matrix, [nested], weights=w)
        unit_weight = np.bincount(nested, weights=w)
    else:
        t_tilde = np.asarray(t_matrix, dtype=float)
        unit_weight = None
    s = np.linalg.pinv(t_tilde.T @ (w[:, None] * t_tilde))
    omega = t_tilde.T @ ((w**2)[:, None] * t_tilde)
    p = t_tilde.shape[1]
    rows = _cluster_rows(cluster)
    n_clusters = len(rows)
    s_x = s[:, :k]
    meat = np.zeros((k, k))
    alpha = np.zeros((n_clusters, k, p))
    phi = np.zeros((n_clusters, k, p))
    diagonal = np.zeros((n_clusters, k, k))
    for j, idx in enumerate(rows):
        tj = t_tilde[idx]
        wj = w[idx]
        if nested is not None:
            unit_codes, local = np.unique(nested[idx], return_inverse=True)
            units = np.zeros((idx.size, unit_codes.size))
            units[np.arange(idx.size), local] = 1.0
            a_n = units / unit_weight[unit_codes]
        else:
            units = np.empty((idx.size, 0))
            a_n = units
        a = np.column_stack([a_n, tj @ s])
        b = np.column_stack([wj[:, None] * units, wj[:, None] * tj])
        omega_j = tj.T @ ((wj**2)[:, None] * tj)
        extra = np.zeros((a.shape[1], a.shape[1]))
        extra[units.shape[1] :, units.shape[1] :] = omega - omega_j
        inner = b.T @ b + extra
        f = np.column_stack([a, b])
        m = a.shape[1]
        e = np.block([[inner, -np.eye(m)], [-np.eye(m), np.zeros((m, m))]])
        g_matrix_apply, g_inverse_root_apply = _low_rank_operators(f, e)
        pj = g_inverse_root_apply(wj[:, None] * (tj @ s_x))
        score = pj.T @ residuals[idx]
        meat += np.outer(score, score)
        alpha[j] = (tj.T @ pj).T
        gamma = (tj.T @ ((wj**2)[:, None] * (a_n @ (units.T @ pj)))).T
        phi[j] = (tj.T @ (wj[:, None] * pj)).T - gamma
        diagonal[j] = pj.T @ g_matrix_apply(pj)
    return Cr2Inference(
        covariance=meat,
        n_clusters=n_clusters,
        _s=s,
        _omega=omega,
        _alpha=alpha,
        _phi=phi,
        _diagonal=diagonal,
    )


def _low_rank_operators(f: np.ndarray, e: np.ndarray):
    """Operators for ``G = I + F E F'`` and its pseudo-inverse square root ``G^{+1/2}``."""
    u, singular, _ = np.linalg.svd(f, full_matrices=False)
    keep = singular > singular.max(initial=0.0) * 1e-12 if singular.size else singular > 0
    q = u[:, keep]
    low = q.T @ f
    k_matrix = low @ e @ low.T
    k_matrix = (k_matrix + k_matrix.T) / 2
    values, vectors = np.linalg.eigh(k_matrix)
    eig = 1.0 + values
    factor = np.where(eig > EIGEN_TOLERANCE, 1.0 / np.sqrt(np.maximum(eig, EIGEN_TOLERANCE)), 0.0)
    basis = q @ vectors

    def apply_g(matrix):
        return matrix + basis @ (values[:, None] * (basis.T @ matrix))

    def apply_inverse_root(matrix):
        return matrix + basis @ ((factor - 1.0)[:, None] * (basis.T @ matrix))

    return apply_g, apply_inverse_root


@dataclass(frozen=True)
class WildBootstrapTest:
    """A wild cluster bootstrap test of ``contrast' beta = null`` and its inverted interval."""

    estimate: float
    p_value: float
    conf_low: float
    conf_high: float
    n_draws: int
    enumerated: bool


@dataclass(frozen=True)
class WildBootstrapDesign:
    """Transformed design of a weighted fit with fixed effects partialled out.

    ``x_hat`` and ``residuals`` are multiplied by the square roots of the weights, so the
    weighted fit is OLS on them; ``groups`` are the absorbed factors (needed to partial
    bootstrap residuals when a factor is not nested in the clusters).
    """

    x_hat: np.ndarray
    residuals: np.ndarray
    coefficients: np.ndarray
    cluster: np.ndarray
    groups: tuple[np.ndarray, ...]
    sqrt_weights: np.ndarray

    def test(
        self,
        contrast: np.ndarray,
        *,
        null: float = 0.0,
        conf_level: float = 0.95,
        n_draws: int = 9999,
        weight_type: str = "rademacher",
        seed: int | np.random.Generator | None = 0,
    ) -> WildBootstrapTest:
        """Restricted wild cluster bootstrap-t test of ``contrast' beta = null`` and its CI."""
        return wild_cluster_bootstrap(
            self,
            np.asarray(contrast, dtype=float),
            null=null,
            conf_level=conf_level,
            n_draws=n_draws,
            weight_type=weight_type,
            seed=seed,
        )


def bootstrap_draws(
    n_clusters: int, n_draws: int, weight_type: str, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """Auxiliary weights, one row per draw; all 2^G sign patterns when they are fewer."""
    if weight_type not in BOOTSTRAP_WEIGHTS:
        raise ValueError(f"weight_type must be one of {BOOTSTRAP_WEIGHTS}, got {weight_type!r}")
    if weight_type == "rademacher" and 2**n_clusters <= n_draws:
        patterns = (np.arange(2**n_clusters)[:, None] >> np.arange(n_clusters)) & 1
        return 1.0 - 2.0 * patterns, True
    if weight_type == "rademacher":
        return rng.choice([-1.0, 1.0], size=(n_draws, n_clusters)), False
    webb = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
    return rng.choice(webb, size=(n_draws, n_clusters)), False


def wild_cluster_bootstrap(
    design: WildBootstrapDesign,
    contrast: np.ndarray,
    *,
    null: float = 0.0,
    conf_level: float,
    n_draws: int,
    weight_type: str,
    seed: int | np.random.Generator | None,
) -> WildBootstrapTest:
    """WCR bootstrap-t of ``c' beta = r``: p-value at r = ``null``, interval by inversion.

    Notes
    -----
    With restricted residuals ``u_r(r)`` (affine in r) the bootstrap statistic for draw
    ``v`` is ``t*(v) = d(r)'v / sqrt(sum_h [C(r) v]_h^2)``, where ``d`` and ``C`` are
    cluster-level sums (Roodman et al. 2019, section 3); both are affine in ``r``, so
    every ``p(r)`` needs only five numbers per draw computed once. The CRVE is CR1; its
    scale factor cancels between the original and the bootstrap statistics. The
    symmetric p-value is the share of draws with ``|t*| >= |t|`` (ties counted, so with
    all 2^G Rademacher patterns enumerated the result is exact and conservative).
    """
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    if n_draws < 99:
        raise ValueError(f"the wild bootstrap needs at least 99 draws, got {n_draws}")
    x = design.x_hat
    cluster = design.cluster
    rows = _cluster_rows(cluster)
    n_clusters = len(rows)
    if n_clusters > MAX_WILD_CLUSTERS:
        raise ValueError(
            f"the wild cluster bootstrap is meant for few clusters; got {n_clusters} "
            f"(more than {MAX_WILD_CLUSTERS}): use se='CR1' or se='CR2'"
        )
    bread = np.linalg.inv(x.T @ x)
    a = bread @ contrast
    ca = float(contrast @ a)
    estimate = float(contrast @ design.coefficients)
    z = x @ a
    # restricted residuals u_r(r) = u0 + r * u1 (transformed scale)
    u0 = design.residuals + z * estimate / ca
    u1 = -z / ca
    n = x.shape[0]
    order = np.concatenate(rows)
    starts = np.r_[0, np.cumsum([r.size for r in rows])[:-1]]
    cluster_of_row = np.empty(n, dtype=np.int64)
    cluster_of_row[order] = np.repeat(np.arange(n_clusters), [r.size for r in rows])

    def cluster_sum(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values[order], starts, axis=0)

    nested_all = all(is_nested(g, cluster) for g in design.groups)
    if not nested_all and n * n_clusters > 50_000_000:
        raise ValueError(
            f"the wild bootstrap with fixed effects not nested in the {n_clusters} clusters "
            f"needs an n x G matrix ({n} x {n_clusters}), too large here: cluster at a level "
            "that contains the fixed effects or use se='CR2'"
        )
    z_by_x = cluster_sum(z[:, None] * x)

    def c_and_d(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """C(u) as (diagonal, left, right) with C = diag - left @ right, and d(u)."""
        d = cluster_sum(z * u)
        if nested_all:
            # bootstrap residuals stay inside their cluster: C = diag(d) - (Z'X) B (X'U)
            return d, z_by_x @ bread, cluster_sum(x * u[:, None]).T
        scatter = np.zeros((n, n_clusters))
        scatter[np.arange(n), cluster_of_row] = u
        root = design.sqrt_weights
        scatter = root[:, None] * demean(
            scatter / root[:, None], list(design.groups), weights=root**2
        )
        projected = scatter - x @ (bread @ (x.T @ scatter))
        return d, -cluster_sum(z[:, None] * projected), None

    def apply_c(v: np.ndarray, parts) -> np.ndarray:
        d, left, right = parts
        if right is None:
            return v @ left.T * -1.0
        return v * d - (v @ right.T) @ left.T

    parts0 = c_and_d(u0)
    parts1 = c_and_d(u1)
    d0, d1 = parts0[0], parts1[0]
    score = cluster_sum(z * design.residuals)
    se_unscaled = float(np.sqrt(score @ score))

    rng = np.random.default_rng(seed)
    draws, enumerated = bootstrap_draws(n_clusters, n_draws, weight_type, rng)
    n_used = draws.shape[0]
    num0 = np.empty(n_used)
    num1 = np.empty(n_used)
    quad = np.empty((3, n_used))
    chunk = max(1, 4_000_000 // max(n_clusters * n_clusters, 1))
    for start in range(0, n_used, chunk):
        v = draws[start : start + chunk]
        y0 = apply_c(v, parts0)
        y1 = apply_c(v, parts1)
        num0[start : start + chunk] = v @ d0
        num1[start : start + chunk] = v @ d1
        quad[0, start : start + chunk] = np.einsum("ij,ij->i", y0, y0)
        quad[1, start : start + chunk] = 2 * np.einsum("ij,ij->i", y0, y1)
        quad[2, start : start + chunk] = np.einsum("ij,ij->i", y1, y1)

    def p_value(r: float) -> float:
        t = (estimate - r) / se_unscaled
        denominator = np.sqrt(np.maximum(quad[0] + r * quad[1] + r * r * quad[2], 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_star = (num0 + r * num1) / denominator
        t_star = np.where(denominator > 0, t_star, 0.0)
        return float(np.mean(np.abs(t_star) >= np.abs(t) * (1 - 1e-10)))

    alpha = 1 - conf_level
    step = se_unscaled if se_unscaled > 0 else 1.0
    low = _invert(p_value, estimate, -step, alpha)
    high = _invert(p_value, estimate, step, alpha)
    return WildBootstrapTest(
        estimate=estimate,
        p_value=p_value(null),
        conf_low=low,
        conf_high=high,
        n_draws=n_used,
        enumerated=enumerated,
    )


def _invert(p_value, estimate: float, step: float, alpha: float) -> float:
    """End point of ``{r : p(r) > alpha}`` on the side of ``step``, by bracketing and bisection."""
    inside = estimate
    outside = estimate + step
    for _ in range(60):
        if p_value(outside) <= alpha:
            break
        inside, outside = outside, outside + 2 * (outside - estimate)
    else:
        return float(np.sign(step) * np.inf)
    for _ in range(60):
        middle = (inside + outside) / 2
        if p_value(middle) > alpha:
            inside = middle
        else:
            outside = middle
        if abs(outside - inside) <= 1e-9 * max(abs(step), 1e-300):
            break
    return float((inside + outside) / 2)


def t_quantile(conf_level: float, df: float | None) -> float:
    """Two-sided critical value: t with ``df`` degrees of freedom, normal when ``None``."""
    dist = stats.norm if df is None else stats.t(df)
    return float(dist.ppf(0.5 + conf_level / 2))
