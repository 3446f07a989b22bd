"""Absorbed fixed effects and cluster-robust covariance, shared by the DiD and count models.

Private helpers: the public estimators are in :mod:`spimpact.models.did` and
:mod:`spimpact.models.count`. The small-sample conventions follow R ``fixest``
(Bergé 2018) so that standard errors can be checked against its documented output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy

DEMEAN_TOLERANCE = 1e-10
DEMEAN_MAX_ITERATIONS = 10_000


def require_columns(data: pd.DataFrame, columns: Sequence[str | None], *, role: str) -> None:
    """Raise a ``ValueError`` naming every column of ``columns`` missing from ``data``."""
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise ValueError(
            f"{role}: column(s) {missing} not found in data; available columns: "
            f"{list(data.columns)}"
        )


def require_numeric(data: pd.DataFrame, columns: Sequence[str], *, role: str) -> None:
    """Raise a ``ValueError`` naming any of ``columns`` that is not numeric."""
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(data[c])]
    if bad:
        raise ValueError(
            f"{role}: column(s) {bad} must be numeric periods on one scale (e.g. months "
            f"since a fixed date), got dtype(s) {[str(data[c].dtype) for c in bad]}"
        )


def as_name_list(value: str | Sequence[str] | None) -> list[str]:
    """Accept one column name, ``"a + b"`` or a sequence of names; return a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split("+") if part.strip()]
    return list(value)


def encode_groups(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 for the levels of ``values`` and the number of levels."""
    codes, levels = pd.factorize(values, sort=True)
    return codes.astype(np.int64), len(levels)


def demean(
    matrix: np.ndarray,
    groups: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Project the columns of ``matrix`` off the fixed effects in ``groups``.

    Alternating projections (the method of Gaure 2013, used by ``lfe``/``fixest``):
    subtract weighted group means for each factor in turn until the largest change
    is below ``DEMEAN_TOLERANCE`` relative to the column scale. One factor is exact in
    one sweep; two factors on a balanced panel also converge after one sweep.
    """
    out = np.array(matrix, dtype=float, copy=True)
    if out.ndim == 1:
        out = out[:, None]
    if not groups:
        return out
    w = np.ones(out.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    group_weight = [np.bincount(g, weights=w) for g in groups]
    scale = np.maximum(np.abs(out).max(axis=0), 1.0)
    for _ in range(DEMEAN_MAX_ITERATIONS):
        largest_change = 0.0
        for g, gw in zip(groups, group_weight, strict=True):
            for j in range(out.shape[1]):
                means = np.bincount(g, weights=w * out[:, j], minlength=gw.size) / gw
                step = means[g]
                out[:, j] -= step
                largest_change = max(largest_change, np.abs(step).max() / scale[j])
        if len(groups) == 1 or largest_change < DEMEAN_TOLERANCE:
            return out
    raise RuntimeError(
        "Absorbing the fixed effects did not converge after "
        f"{DEMEAN_MAX_ITERATIONS} sweeps; check for very sparse or disconnected groups."
    )


def n_fixed_effect_parameters(sizes: Sequence[int]) -> int:
    """Free fixed-effect coefficients as fixest counts them: sum of levels minus (k - 1)."""
    if not sizes:
        return 0
    return int(sum(sizes) - (len(sizes) - 1))


def is_nested(fe_codes: np.ndarray, cluster_codes: np.ndarray) -> bool:
    """Return True when every level of the fixed effect sits inside a single cluster."""
    frame = pd.DataFrame({"fe": fe_codes, "cluster": cluster_codes})
    return bool((frame.groupby("fe")["cluster"].nunique() <= 1).all())


def fixest_k(n_coefficients: int, fe_sizes: Sequence[int], nested: Sequence[bool]) -> int:
    """Parameter count K used in fixest's ``(n - 1) / (n - K)`` adjustment.

    fixest's default ``ssc(fixef.K = "nested")`` drops fixed effects nested in the
    cluster variable from K, keeping one parameter for each (fixest ``R/VCOV.R``).
    """
    k = n_coefficients + n_fixed_effect_parameters(fe_sizes)
    if not any(nested):
        return k
    if all(nested):
        k = k - n_fixed_effect_parameters(fe_sizes) + 1
    else:
        k -= sum(size - 1 for size, flag in zip(fe_sizes, nested, strict=True) if flag)
    return max(k, n_coefficients + 1)


def cluster_meat(scores: np.ndarray, cluster_codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Sum of outer products of per-cluster score sums, and the number of clusters."""
    n_clusters = int(cluster_codes.max()) + 1
    summed = np.zeros((n_clusters, scores.shape[1]))
    np.add.at(summed, cluster_codes, scores)
    return summed.T @ summed, n_clusters


@dataclass(frozen=True)
class LinearFit:
    """Coefficients and covariance of an OLS fit with absorbed fixed effects."""

    terms: tuple[str, ...]
    coefficients: np.ndarray
    covariance: np.ndarray
    df: float | None
    se_type: str
    n_obs: int
    n_clusters: int | None
    residual_df: int


def fit_linear(
    y: np.ndarray,
    x: np.ndarray,
    terms: Sequence[str],
    *,
    absorb: Sequence[np.ndarray] = (),
    cluster: np.ndarray | None = None,
    cluster_name: str | None = None,
) -> LinearFit:
    """OLS of ``y`` on ``x`` after absorbing ``absorb``; classical or CR1 covariance.

    Classical: ``s^2 (X'X)^-1`` with ``s^2 = RSS / (n - K)``, K counting absorbed
    levels. Clustered: CR1 as in Stata/fixest, ``G/(G-1) * (n-1)/(n-K)`` with fixed
    effects nested in the clusters dropped from K; t reference with ``G - 1`` df.
    """
    n = y.shape[0]
    sizes = [int(g.max()) + 1 for g in absorb]
    yx = demean(np.column_stack([y, x]), list(absorb))
    y_tilde, x_tilde = yx[:, 0], yx[:, 1:]
    rank = np.linalg.matrix_rank(x_tilde)
    if rank < x_tilde.shape[1]:
        raise ValueError(
            "The regressors are collinear with each other or with the absorbed fixed "
            f"effects (rank {rank} < {x_tilde.shape[1]} columns: {list(terms)})."
        )
    bread = np.linalg.inv(x_tilde.T @ x_tilde)
    coefficients = bread @ (x_tilde.T @ y_tilde)
    residuals = y_tilde - x_tilde @ coefficients
    k_full = x.shape[1] + n_fixed_effect_parameters(sizes)
    residual_df = n - k_full
    if cluster is None:
        sigma2 = residuals @ residuals / residual_df
        return LinearFit(
            terms=tuple(terms),
            coefficients=coefficients,
            covariance=sigma2 * bread,
            df=float(residual_df),
            se_type="classical (homoskedastic) OLS",
            n_obs=n,
            n_clusters=None,
            residual_df=residual_df,
        )
    meat, n_clusters = cluster_meat(x_tilde * residuals[:, None], cluster)
    nested = [is_nested(g, cluster) for g in absorb]
    k = fixest_k(x.shape[1], sizes, nested)
    adjustment = n_clusters / (n_clusters - 1) * (n - 1) / (n - k)
    return LinearFit(
        terms=tuple(terms),
        coefficients=coefficients,
        covariance=adjustment * bread @ meat @ bread,
        df=float(n_clusters - 1),
        se_type=f"cluster-robust CR1 by {cluster_name} ({n_clusters} clusters)",
        n_obs=n,
        n_clusters=n_clusters,
        residual_df=residual_df,
    )


def design_matrices(
    formula: str, data: pd.DataFrame, *, eval_env: patsy.EvalEnvironment, drop_intercept: bool
) -> tuple[np.ndarray, np.ndarray, list[str], pd.Index]:
    """Outcome vector, regressor matrix, term names and kept row index for ``formula``.

    Rows with a missing value in any variable of the formula are dropped (the kept
    index says which). With absorbed fixed effects the intercept column is removed
    after patsy has chosen reduced-rank contrasts, so factors stay identified.
    """
    try:
        y, x = patsy.dmatrices(formula, data, eval_env=eval_env, return_type="dataframe")
    except patsy.PatsyError as error:
        raise ValueError(f"Could not build the model from formula {formula!r}: {error}") from None
    if y.shape[1] != 1:
        raise ValueError(f"formula {formula!r} must have a single numeric outcome on the left")
    if drop_intercept and "Intercept" in x.columns:
        x = x.drop(columns="Intercept")
    if x.shape[1] == 0:
        raise ValueError(f"formula {formula!r} has no regressors left to estimate")
    terms = ["(Intercept)" if c == "Intercept" else c for c in x.columns]
    return y.iloc[:, 0].to_numpy(float), x.to_numpy(float), terms, y.index
