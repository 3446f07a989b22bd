"""Poisson regression for counts with an exposure offset and absorbed fixed effects.

Used for GP-attendance counts per person-window: ``fit_poisson("n_appointments ~
post * referred", panel, absorb="person", exposure="days_registered")``. Rate
ratios come from ``.tidy(exponentiate=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy

from spimpact.models.did_fixed_effects import (
    as_name_list,
    cluster_meat,
    demean,
    design_matrices,
    encode_groups,
    fixest_k,
    is_nested,
    require_columns,
)
from spimpact.models.linear_fit import check_weights
from spimpact.models.result import ExponentiableResult
from spimpact.models.tidy import make_tidy

MAX_IRLS_ITERATIONS = 100
DEVIANCE_TOLERANCE = 1e-10


# eq=False: the fields hold data frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class PoissonResult(ExponentiableResult):
    """A fitted Poisson (pseudo-)maximum-likelihood model.

    ``coefficients`` is the broom table on the log scale; ``diagnostics`` holds
    plain-English notes (dropped rows, non-convergence). ``tidy(exponentiate=True)``
    gives rate ratios (delta-method SEs).
    """

    coefficients: pd.DataFrame
    covariance: pd.DataFrame
    se_type: str
    n_obs: int
    n_clusters: int | None
    absorbed: tuple[str, ...]
    n_absorbed_levels: tuple[int, ...]
    deviance: float
    n_iterations: int
    converged: bool
    formula: str
    diagnostics: tuple[str, ...] = ()
    conf_level: float = 0.95

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom table on the log scale, normal reference."""
        return make_tidy(
            self.coefficients["term"],
            self.coefficients["estimate"],
            self.coefficients["std_error"],
            conf_level=conf_level,
        )

    def summary(self) -> str:
        """Text summary with rate ratios and the standard-error type."""
        absorbed = (
            ", ".join(
                f"{n} ({k} levels)"
                for n, k in zip(self.absorbed, self.n_absorbed_levels, strict=True)
            )
            or "none"
        )
        lines = [
            f"Poisson regression: {self.formula}",
            f"Observations: {self.n_obs}; absorbed fixed effects: {absorbed}",
            f"Standard errors: {self.se_type}",
            f"Deviance {self.deviance:.6g} after {self.n_iterations} IRLS iterations"
            + ("" if self.converged else " (NOT converged)"),
            *self.diagnostics,
            "",
            "Rate ratios:",
            self.tidy(exponentiate=True).to_string(index=False, float_format=lambda v: f"{v:.6g}"),
        ]
        return "\n".join(lines)


def fit_poisson(
    formula: str,
    data: pd.DataFrame,
    *,
    absorb: str | Sequence[str] | None = None,
    exposure: str | None = None,
    cluster: str | None = None,
    conf_level: float = 0.95,
    weights: str | None = None,
) -> PoissonResult:
    """Poisson regression with a log link, exposure offset and absorbed fixed effects.

    Parameters
    ----------
    formula
        patsy formula for the count outcome and regressors, e.g.
        ``"appointments ~ post + np.log(age)"``; do not list absorbed factors here.
    data
        One row per observation.
    absorb
        Column name(s) whose levels get their own intercept, absorbed by
        demeaning rather than estimated (``"person"`` or ``["person", "month"]``).
    exposure
        Column of positive exposure (e.g. days observed); ``log(exposure)`` enters as
        an offset so coefficients are log rate ratios.
    cluster
        Column to cluster on; ``None`` gives model-based (inverse Fisher information)
        standard errors, which assume the Poisson variance holds.
    conf_level
        Confidence level for intervals.
    weights
        Column of non-negative prior weights (e.g. matching weights): each row's
        log-likelihood contribution is multiplied by its weight (R ``glm(weights =)``,
        ``fixest::fepois(weights =)``); rows with weight 0 are dropped.

    Returns
    -------
    PoissonResult

    Notes
    -----
    Iteratively reweighted least squares in which each weighted least-squares step
    absorbs the fixed effects, the algorithm of R ``fixest::fepois`` (Bergé 2018;
    Correia, Guimarães & Zylkin 2020, ``ppmlhdfe``); two factors with one of few levels
    (person and month) are projected exactly, more by alternating projections started
    from the previous step's fixed effects (see
    :func:`~spimpact.models.did_fixed_effects.demean`). From per-cell sums:
    :func:`~spimpact.models.cell_fits.fit_poisson_from_cells`.
    Groups of an absorbed factor whose outcome is zero throughout carry no
    information and are dropped first, as fixest does. Clustered standard errors
    follow fixest's defaults: sandwich ``H^-1 (sum_g s_g s_g') H^-1`` times
    ``G/(G-1) * (n-1)/(n-K)``, fixed effects nested in the clusters excluded from K;
    normal reference distribution. Model-based SEs are not rescaled (as R ``glm``).

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> d = pd.DataFrame({"x": rng.normal(size=500), "days": rng.integers(30, 365, 500)})
    >>> d["visits"] = rng.poisson(d.days / 100 * np.exp(0.4 * d.x))
    >>> res = fit_poisson("visits ~ x", d, exposure="days")
    >>> round(float(res.tidy(exponentiate=True).estimate[1]), 1)
    1.5
    """
    absorbed = as_name_list(absorb)
    require_columns(data, [*absorbed, exposure, cluster, weights], role="fit_poisson")
    env = patsy.EvalEnvironment.capture(1)
    y, x, terms, kept = design_matrices(formula, data, eval_env=env, drop_intercept=bool(absorbed))
    # patsy keeps every row when none has a missing value: no copy of the data then
    rows = data if len(kept) == len(data) else data.loc[kept]
    diagnostics = []
    if (y < 0).any():
        raise ValueError(f"the outcome of {formula!r} must be non-negative counts")
    extra = [c for c in [*absorbed, exposure, cluster, weights] if c is not None]
    complete = np.ones(len(rows), bool)
    for name in extra:
        complete &= rows[name].notna().to_numpy()
    if not complete.all():
        diagnostics.append(
            f"{int((~complete).sum())} row(s) with missing exposure, cluster or fixed-effect "
            "values were dropped."
        )
    offset = np.zeros(len(rows))
    if exposure is not None:
        exposure_values = pd.to_numeric(rows[exposure], errors="raise").to_numpy(float)
        if (exposure_values[complete] <= 0).any():
            raise ValueError(f"exposure column {exposure!r} must be strictly positive")
        offset = np.log(np.where(complete, exposure_values, 1.0))
    keep = complete.copy()
    prior = np.ones(len(rows))
    if weights is not None:
        prior = pd.to_numeric(rows[weights], errors="raise").to_numpy(float)
        check_weights(np.where(complete, prior, 0.0), name=weights)
        zero = complete & (prior == 0)
        if zero.any():
            diagnostics.append(f"{int(zero.sum())} row(s) with weight 0 were dropped.")
            keep &= ~zero
    for name in absorbed:
        # missing levels get code -1: they are never dropped here (already excluded)
        codes = encode_groups(rows[name])[0]
        known = codes >= 0
        group_total = np.bincount(codes[known], weights=y[known])
        all_zero = np.zeros(len(rows), dtype=bool)
        all_zero[known] = group_total[codes[known]] == 0
        drop = all_zero & keep
        if drop.any():
            diagnostics.append(
                f"{int(drop.sum())} row(s) in {name!r} groups whose outcome is always 0 were "
                "dropped (they carry no information about the coefficients)."
            )
            keep &= ~drop
    y, x, offset, prior = y[keep], x[keep], offset[keep], prior[keep]
    groups = [_codes_of_kept(rows[name], keep) for name in absorbed]
    cluster_codes = None if cluster is None else _codes_of_kept(rows[cluster], keep)
    return poisson_fit(
        y,
        x,
        offset,
        prior,
        terms=terms,
        groups=dict(zip(absorbed, groups, strict=True)),
        cluster=(cluster, cluster_codes),
        n_obs=y.size,
        formula=formula,
        diagnostics=diagnostics,
        conf_level=conf_level,
    )


def poisson_fit(
    y: np.ndarray,
    x: np.ndarray,
    offset: np.ndarray,
    prior: np.ndarray,
    *,
    terms: Sequence[str],
    groups: dict[str, np.ndarray],
    cluster: tuple[str | None, np.ndarray | None],
    n_obs: int,
    formula: str,
    diagnostics: list[str],
    conf_level: float,
) -> PoissonResult:
    """IRLS fit and (CR1 or model-based) covariance on prepared arrays.

    ``groups`` maps each absorbed factor's name to its codes, ``cluster`` is the cluster
    column's name and codes (``(None, None)``: model-based SEs); ``n_obs`` is the number
    of observations in the CR1 correction (the rows, or the rows the cells stand for).
    """
    codes = list(groups.values())
    beta, mu, x_tilde, deviance, iterations, converged = _irls(y, x, offset, codes, prior)
    if not converged:
        diagnostics.append(
            f"The Poisson fit did not converge in {MAX_IRLS_ITERATIONS} iterations; "
            "estimates may be unreliable."
        )
    hessian_inverse = np.linalg.inv(x_tilde.T @ ((prior * mu)[:, None] * x_tilde))
    n = n_obs
    cluster_name, cluster_codes = cluster
    if cluster_codes is None:
        covariance = hessian_inverse
        se_type = "model-based (inverse information; assumes Poisson variance)"
        n_clusters = None
    else:
        meat, n_clusters = cluster_meat(x_tilde, cluster_codes, prior * (y - mu))
        sizes = [int(g.max()) + 1 for g in codes]
        k = fixest_k(x.shape[1], sizes, [is_nested(g, cluster_codes) for g in codes])
        adjustment = n_clusters / (n_clusters - 1) * (n - 1) / (n - k)
        covariance = adjustment * hessian_inverse @ meat @ hessian_inverse
        se_type = (
            f"cluster-robust CR1 by {cluster_name} ({n_clusters} clusters), fixest conventions"
        )
    coefficients = make_tidy(terms, beta, np.sqrt(np.diag(covariance)), conf_level=conf_level)
    return PoissonResult(
        coefficients=coefficients,
        covariance=pd.DataFrame(covariance, index=terms, columns=terms),
        se_type=se_type,
        n_obs=n,
        n_clusters=n_clusters,
        absorbed=tuple(groups),
        n_absorbed_levels=tuple(int(g.max()) + 1 for g in codes),
        deviance=deviance,
        n_iterations=iterations,
        converged=converged,
        formula=formula,
        diagnostics=tuple(diagnostics),
        conf_level=conf_level,
    )


def _codes_of_kept(values: pd.Series, keep: np.ndarray) -> np.ndarray:
    """Integer codes 0..k-1 of ``values`` on the rows kept."""
    return encode_groups(values if keep.all() else values.to_numpy()[keep])[0]


def _irls(
    y: np.ndarray, x: np.ndarray, offset: np.ndarray, groups: list[np.ndarray], prior: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int, bool]:
    """IRLS with fixed effects absorbed in every weighted least-squares step.

    Each step's projection starts from the fixed-effect part of the previous step (the
    working outcome and the weights change little between steps), which saves most of
    the alternating-projection sweeps without changing what they converge to (two-way
    projections are exact anyway). The deviance ``2 sum w (y log(y / mu) - y + mu)`` is
    computed as ``saturated - 2 sum w (y eta - mu)``: no logarithm per step.
    """
    mu = (y + y.mean()) / 2  # fixest's starting values: never zero
    eta = np.log(mu)
    weighted_y = prior * y
    positive = y > 0
    saturated = 2 * float(np.sum(weighted_y[positive] * np.log(y[positive])) - weighted_y.sum())

    # sums by einsum rather than BLAS dot products, whose threads stall on a busy machine
    def deviance_at(eta: np.ndarray, mu: np.ndarray) -> float:
        return saturated - 2 * float(
            np.einsum("i,i->", weighted_y, eta) - np.einsum("i,i->", prior, mu)
        )

    deviance = deviance_at(eta, mu)
    beta = np.zeros(x.shape[1])
    converged = False
    n_iterations = 0
    zx = np.empty((y.size, x.shape[1] + 1), order="F")
    zx[:, 1:] = x
    absorbed = None  # fixed-effect part of [z, x] in the previous step
    for iteration in range(1, MAX_IRLS_ITERATIONS + 1):
        zx[:, 0] = eta - offset + y / mu - 1.0
        weights = prior * mu
        zx_tilde = demean(zx, groups, weights=weights, start=absorbed)
        absorbed = zx - zx_tilde
        z_tilde, x_tilde = zx_tilde[:, 0], zx_tilde[:, 1:]
        weighted_x = x_tilde * weights[:, None]
        beta = np.linalg.solve(
            np.einsum("ij,ik->jk", weighted_x, x_tilde), np.einsum("ij,i->j", weighted_x, z_tilde)
        )
        # the absorbed fixed effects equal (z - z_tilde) minus the slope part they absorbed
        eta = offset + absorbed[:, 0] + np.einsum("ij,j->i", x_tilde, beta)
        # free this step's projections before the next allocates its own (3 columns of
        # rows: a large panel's peak)
        del zx_tilde, z_tilde, x_tilde, weighted_x
        mu = np.exp(eta)
        new_deviance = deviance_at(eta, mu)
        converged = abs(new_deviance - deviance) / (0.1 + abs(new_deviance)) < DEVIANCE_TOLERANCE
        deviance = new_deviance
        n_iterations = iteration
        if converged:
            break
    # the information matrix needs the regressors demeaned with the final weights
    start = None if absorbed is None else absorbed[:, 1:]
    x_tilde = demean(x, groups, weights=prior * mu, start=start)
    return beta, mu, x_tilde, deviance, n_iterations, converged
