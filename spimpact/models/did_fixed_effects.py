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
# two-factor projections are solved directly when the smaller factor has at most this
# many levels (months of follow-up, practices); its normal equations are this small
MAX_DIRECT_LEVELS = 500


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
    """Integer codes 0..k-1 for the levels of ``values`` (sorted) and the number of levels.

    Integer columns whose range is at most a few times their length (person ids,
    months) are coded with ``np.bincount`` in linear time; anything else with
    ``pd.factorize``. Both give the codes of the sorted levels.
    """
    array = np.asarray(values)
    if array.dtype.kind in "iu" and array.size:
        low = int(array.min())
        span = int(array.max()) - low + 1
        if span <= 4 * array.size:
            shifted = array - low if low else array
            present = np.bincount(shifted, minlength=span) > 0
            code_of_value = np.cumsum(present, dtype=np.int64) - 1
            return code_of_value[shifted], int(code_of_value[-1]) + 1
    codes, levels = pd.factorize(values, sort=True)
    return codes.astype(np.int64), len(levels)


def is_balanced(groups: Sequence[np.ndarray]) -> bool:
    """True when two factors form a complete grid: every pair of levels exactly once."""
    if len(groups) != 2:
        return False
    first, second = groups
    n_first, n_second = int(first.max()) + 1, int(second.max()) + 1
    if n_first * n_second != first.size:
        return False
    cells = np.bincount(first * n_second + second, minlength=n_first * n_second)
    return bool((cells == 1).all())


def demean(
    matrix: np.ndarray,
    groups: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    *,
    start: np.ndarray | None = None,
    copy: bool = True,
) -> np.ndarray:
    """Project the columns of ``matrix`` off the fixed effects in ``groups``.

    Two factors (person and period) are projected exactly: unweighted on a complete grid
    (a balanced panel) by the closed form ``x - mean_unit - mean_time + mean``; otherwise,
    when the smaller factor has at most ``MAX_DIRECT_LEVELS`` levels and the grid is not
    much larger than the data, by solving the smaller factor's normal equations with the
    larger factor concentrated out (a dense person x period table of weights, a small
    linear system, then one pass over the rows). Anything else uses alternating
    projections (the method of Gaure 2013, used by ``lfe``/``fixest``): subtract weighted
    group means for each factor in turn until the largest change is below
    ``DEMEAN_TOLERANCE`` relative to the column scale (one factor: exact in one sweep).
    ``start`` (same shape as ``matrix``) is a guess of the fixed-effect part, e.g. from
    the previous IRLS step, subtracted before sweeping: the projection is the same, only
    fewer sweeps are needed. Columns are processed contiguously (Fortran order) with
    ``np.bincount`` on the integer codes; ``copy=False`` lets a float, Fortran-ordered
    ``matrix`` be overwritten instead of copied.
    """
    if copy:
        out = np.array(matrix, dtype=float, copy=True, order="F")
    else:
        out = np.asfortranarray(matrix, dtype=float)
    if out.ndim == 1:
        out = out.reshape(-1, 1, order="F")
    if not groups or out.shape[0] == 0:
        return out
    if weights is None and is_balanced(groups):
        unit, time = groups
        n_units, n_times = int(unit.max()) + 1, int(time.max()) + 1
        for j in range(out.shape[1]):
            column = out[:, j]
            unit_means = np.bincount(unit, weights=column, minlength=n_units) / n_times
            time_means = np.bincount(time, weights=column, minlength=n_times) / n_units
            grand_mean = unit_means.mean()
            column -= unit_means[unit]
            column -= time_means[time] - grand_mean
        return out
    if len(groups) == 2 and _demean_two_way(out, groups, weights):
        return out
    scale = np.maximum(np.abs(out).max(axis=0), 1.0)
    if start is not None:
        out -= np.asarray(start, dtype=float).reshape(out.shape)
    w = None if weights is None else np.asarray(weights, dtype=float)
    group_weight = [
        np.bincount(g, minlength=int(g.max()) + 1).astype(float)
        if w is None
        else np.bincount(g, weights=w, minlength=int(g.max()) + 1)
        for g in groups
    ]
    for _ in range(DEMEAN_MAX_ITERATIONS):
        largest_change = 0.0
        for g, gw in zip(groups, group_weight, strict=True):
            for j in range(out.shape[1]):
                column = out[:, j]
                values = column if w is None else w * column
                means = np.bincount(g, weights=values, minlength=gw.size)
                np.divide(means, gw, out=means, where=gw > 0)
                column -= means[g]
                largest_change = max(largest_change, np.abs(means).max() / scale[j])
        if len(groups) == 1 or largest_change < DEMEAN_TOLERANCE:
            return out
    raise RuntimeError(
        "Absorbing the fixed effects did not converge after "
        f"{DEMEAN_MAX_ITERATIONS} sweeps; check for very sparse or disconnected groups."
    )


def _demean_two_way(
    out: np.ndarray, groups: Sequence[np.ndarray], weights: np.ndarray | None
) -> bool:
    """Exact weighted projection off two factors, in place; False if not applicable.

    With ``W`` the table of summed weights by (large level u, small level t), the
    small factor's effects solve ``(diag(W_t) - W' diag(1/W_u) W) b = V_t - W'(V_u / W_u)``
    (``V`` the weighted sums of the column), one of them fixed at 0 (the two factors
    share a constant); then ``a_u = (V_u - (W b)_u) / W_u``.
    """
    sizes = [int(g.max()) + 1 for g in groups]
    big, small = groups if sizes[0] >= sizes[1] else groups[::-1]
    n_big, n_small = max(sizes), min(sizes)
    if n_small > MAX_DIRECT_LEVELS or n_big * n_small > 2 * out.shape[0]:
        return False
    w = np.ones(out.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    table = np.bincount(big * n_small + small, weights=w, minlength=n_big * n_small)
    table = table.reshape(n_big, n_small)
    big_weight, small_weight = table.sum(axis=1), table.sum(axis=0)
    if (big_weight <= 0).any() or (small_weight <= 0).any():
        return False
    scaled = table / big_weight[:, None]
    system = (np.diag(small_weight) - np.einsum("ut,us->ts", table, scaled))[1:, 1:]
    for j in range(out.shape[1]):
        column = out[:, j]
        values = column if weights is None else w * column
        big_sum = np.bincount(big, weights=values, minlength=n_big)
        small_sum = np.bincount(small, weights=values, minlength=n_small)
        small_effect = np.zeros(n_small)
        # einsum, not BLAS: threaded matrix-vector products stall on a busy machine
        rhs = (small_sum - np.einsum("ut,u->t", scaled, big_sum))[1:]
        small_effect[1:] = np.linalg.lstsq(system, rhs, rcond=None)[0]
        big_effect = (big_sum - np.einsum("ut,t->u", table, small_effect)) / big_weight
        column -= big_effect[big]
        column -= small_effect[small]
    return True


def n_fixed_effect_parameters(sizes: Sequence[int]) -> int:
    """Free fixed-effect coefficients as fixest counts them: sum of levels minus (k - 1)."""
    if not sizes:
        return 0
    return int(sum(sizes) - (len(sizes) - 1))


def is_nested(fe_codes: np.ndarray, cluster_codes: np.ndarray) -> bool:
    """Return True when every level of the fixed effect sits inside a single cluster."""
    if fe_codes.size == 0:
        return True
    # any cluster seen with each level; nested exactly when every row agrees with it
    cluster_of_level = np.empty(int(fe_codes.max()) + 1, dtype=np.asarray(cluster_codes).dtype)
    cluster_of_level[fe_codes] = cluster_codes
    return bool(np.array_equal(cluster_of_level[fe_codes], cluster_codes))


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


def cluster_meat(
    scores: np.ndarray, cluster_codes: np.ndarray, residuals: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Sum of outer products of per-cluster score sums, and the number of clusters.

    With ``residuals`` the scores are ``scores * residuals[:, None]``, formed one column
    at a time (no second n x k matrix).
    """
    n_clusters = int(cluster_codes.max()) + 1
    summed = np.empty((n_clusters, scores.shape[1]))
    for j in range(scores.shape[1]):
        column = scores[:, j] if residuals is None else scores[:, j] * residuals
        summed[:, j] = np.bincount(cluster_codes, weights=column, minlength=n_clusters)
    return summed.T @ summed, n_clusters


def design_matrices(
    formula: str, data: pd.DataFrame, *, eval_env: patsy.EvalEnvironment, drop_intercept: bool
) -> tuple[np.ndarray, np.ndarray, list[str], pd.Index]:
    """Outcome vector, regressor matrix, term names and kept row index for ``formula``.

    Rows with a missing value in any variable of the formula are dropped (the kept
    index says which). With absorbed fixed effects the intercept column is removed
    after patsy has chosen reduced-rank contrasts, so factors stay identified. A formula
    of plain numeric columns (``"y ~ treated_now + age"``) is read straight from the
    columns, without patsy's per-row machinery: the same matrices, names and rows.
    """
    plain = _plain_numeric_formula(formula, data)
    if plain is not None:
        outcome, regressors, intercept = plain
        columns = [data[outcome].to_numpy(float), *(data[c].to_numpy(float) for c in regressors)]
        complete = np.ones(len(data), dtype=bool)
        for column in columns:
            complete &= ~np.isnan(column)
        if not complete.all():
            columns = [column[complete] for column in columns]
        n = int(complete.sum())
        with_intercept = intercept and not drop_intercept
        x = np.empty((n, len(regressors) + with_intercept), order="F")
        if with_intercept:
            x[:, 0] = 1.0
        for j, column in enumerate(columns[1:]):
            x[:, j + with_intercept] = column
        if x.shape[1] == 0:
            raise ValueError(f"formula {formula!r} has no regressors left to estimate")
        terms = ["(Intercept)"] * with_intercept + list(regressors)
        kept = data.index if n == len(data) else data.index[complete]
        return columns[0], x, terms, kept
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


def _plain_numeric_formula(formula: str, data: pd.DataFrame) -> tuple[str, list[str], bool] | None:
    """Outcome, regressors and intercept of a formula of plain numeric columns.

    ``None`` unless every term of ``formula`` is a single numeric (not boolean) column
    of ``data``, without repeats.
    """
    try:
        description = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError:
        return None

    def column_of(term) -> str | None:
        if len(term.factors) != 1:
            return None
        code = getattr(term.factors[0], "code", None)
        if code not in data.columns:
            return None
        dtype = data[code].dtype
        if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf":
            return None
        return code

    if len(description.lhs_termlist) != 1:
        return None
    outcome = column_of(description.lhs_termlist[0])
    intercept = any(not term.factors for term in description.rhs_termlist)
    regressors = [column_of(term) for term in description.rhs_termlist if term.factors]
    if outcome is None or None in regressors or len(set(regressors)) != len(regressors):
        return None
    return outcome, regressors, intercept
