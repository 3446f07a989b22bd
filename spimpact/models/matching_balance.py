"""Covariate balance of a matching: MatchIt's ``summary()`` statistics per variable."""

from __future__ import annotations

import numpy as np
import pandas as pd


def balance_table(data: pd.DataFrame, treatment: str, covariates, exact) -> pd.DataFrame:
    """Balance before and after matching (see :meth:`spimpact.models.matching.MatchResult.balance`).

    ``data`` holds ``treatment``, ``distance``, ``weights`` and the variables.
    """
    treated = data[treatment].astype(int).to_numpy() == 1
    weights = data["weights"].to_numpy(dtype=float)
    ones = np.ones(len(weights))
    rows = []
    for column, values, levels in _balance_columns(data, covariates, exact):
        if levels is None:
            names = [column]
            before = [_balance_one(values, treated, ones)]
            after = [_balance_one(values, treated, weights, sd_weights=ones)]
        else:
            names = [f"{column}{level}" for level in levels]
            before = _balance_levels(values, len(levels), treated, ones, ones)
            after = _balance_levels(values, len(levels), treated, weights, ones)
        for name, stats_before, stats_after in zip(names, before, after, strict=True):
            row = {"variable": name}
            row.update({f"{key}_before": value for key, value in stats_before.items()})
            row.update({f"{key}_after": value for key, value in stats_after.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def is_categorical(series: pd.Series) -> bool:
    """Whether ``series`` is treated as a factor (text, category or boolean)."""
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _balance_columns(data: pd.DataFrame, covariates, exact):
    """``(column, values, levels)`` of the distance and each variable.

    A factor gives its level codes and sorted levels (MatchIt's summary shows every level
    of a factor, not level contrasts); any other variable its values and ``None``.
    """
    yield "distance", data["distance"].to_numpy(dtype=float), None
    for column in (*covariates, *[e for e in exact if e not in covariates]):
        series = data[column]
        if is_categorical(series) and not pd.api.types.is_bool_dtype(series):
            codes, levels = pd.factorize(series.astype(str), sort=True)
            yield column, codes, levels
        else:
            yield column, series.astype(float).to_numpy(), None


def _balance_levels(codes, n_levels, treated, weights, sd_weights) -> list[dict]:
    """:func:`_balance_one` of every level's indicator of a factor at once.

    Indicators are binary, so each statistic is a weighted share per level: one
    ``bincount`` per group instead of a pass over the data per level (a factor such as
    the GP practice can have thousands of levels).
    """
    t, c = codes[treated], codes[~treated]
    w_t, w_c, s_t = weights[treated], weights[~treated], sd_weights[treated]
    mean_t = np.bincount(t, weights=w_t, minlength=n_levels) / w_t.sum()
    mean_c = np.bincount(c, weights=w_c, minlength=n_levels) / w_c.sum()
    share = np.bincount(t, weights=s_t, minlength=n_levels) / s_t.sum()
    sd = np.sqrt(share * (1 - share))
    difference = mean_t - mean_c
    tiny = np.sqrt(np.finfo(float).eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        smd = np.where(
            np.abs(difference) <= tiny, difference, np.where(sd > tiny, difference / sd, np.nan)
        )
    return [
        {
            "mean_treated": float(mean_t[k]),
            "mean_control": float(mean_c[k]),
            "std_mean_diff": float(smd[k]),
            "variance_ratio": np.nan,
            "ecdf_mean": float(abs(difference[k])),
            "ecdf_max": float(abs(difference[k])),
        }
        for k in range(n_levels)
    ]


def _balance_one(values, treated, weights, sd_weights=None):
    """Balance statistics for one variable (MatchIt ``bal1var`` with standardize = TRUE)."""
    sd_weights = weights if sd_weights is None else sd_weights
    binary = bool(np.all((values == 0) | (values == 1)))
    w_t, w_c = weights[treated], weights[~treated]
    mean_t = np.sum(w_t * values[treated]) / w_t.sum()
    mean_c = np.sum(w_c * values[~treated]) / w_c.sum()
    difference = mean_t - mean_c
    sd = np.sqrt(_weighted_variance(values[treated], sd_weights[treated], binary))
    if abs(difference) <= np.sqrt(np.finfo(float).eps):
        smd = difference
    else:
        smd = difference / sd if sd > np.sqrt(np.finfo(float).eps) else np.nan
    if binary:
        return {
            "mean_treated": mean_t,
            "mean_control": mean_c,
            "std_mean_diff": smd,
            "variance_ratio": np.nan,
            "ecdf_mean": abs(difference),
            "ecdf_max": abs(difference),
        }
    variance_ratio = _weighted_variance(values[treated], w_t, False) / _weighted_variance(
        values[~treated], w_c, False
    )
    # As MatchIt's qqsum, unmatched units (weight 0) still contribute evaluation
    # points to the eCDF mean, so the mean runs over every distinct observed value.
    signed = np.where(treated, weights / w_t.sum(), -weights / w_c.sum())
    order = np.argsort(values, kind="stable")
    x_sorted = values[order]
    cumulative = np.abs(np.cumsum(signed[order]))
    # Values equal to rounding error are one evaluation point: fitted propensity scores
    # of identical covariate rows can differ in the last bit with the BLAS kernel used.
    tolerance = 64 * np.finfo(float).eps * np.maximum(np.abs(x_sorted[1:]), 1e-300)
    at_value = np.append(np.diff(x_sorted) > tolerance, True)
    ecdf = cumulative[at_value]
    return {
        "mean_treated": mean_t,
        "mean_control": mean_c,
        "std_mean_diff": smd,
        "variance_ratio": variance_ratio,
        "ecdf_mean": float(ecdf.mean()),
        "ecdf_max": float(ecdf.max()),
    }


def _weighted_variance(values, weights, binary):
    weights = weights / weights.sum()
    mean = np.sum(weights * values)
    if binary:
        return mean * (1 - mean)
    return np.sum(weights * (values - mean) ** 2) / (1 - np.sum(weights**2))
