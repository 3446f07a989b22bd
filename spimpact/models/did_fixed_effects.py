"""Absorbed fixed effects and cluster-robust covariance, shared by the DiD and count models.

Private helpers: the public estimators are in :mod:`spimpact.models.did` and
:mod:`spimpact.models.count`. The small-sample conventions follow R ``fixest``
(Bergé 2018) so that standard errors can be checked against its documented output.
"""

from __future__ import annotations

from collections.abc import Sequence

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
