"""Shared pieces of the DiD estimators: broom tables at any level, weights, options.

Private to :mod:`spimpact.models.did` and :mod:`spimpact.models.did_event_study`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.models.linear_fit import LinearFit, WildOptions, check_weights
from spimpact.models.tidy import make_tidy


def check_binary(data: pd.DataFrame, column: str) -> pd.Series:
    """Column as float after checking it holds only 0/1 or booleans."""
    values = data[column]
    if values.dtype == bool:
        return values.astype(float)
    observed = set(pd.unique(values.dropna()))
    if not observed <= {0, 1}:
        raise ValueError(
            f"column {column!r} must be 0/1 or boolean; found values "
            f"{sorted(observed, key=str)[:5]}"
        )
    return values.astype(float)


def tidy_from_fit(fit: LinearFit, conf_level: float) -> pd.DataFrame:
    """Broom table of a fit plus the per-term df (CR2) or bootstrap columns (wild)."""
    table = fit.table(conf_level)
    if fit.term_df is not None:
        table["df"] = fit.term_df
    if fit.wild is not None:
        for column in ("p_value", "conf_low", "conf_high"):
            table[f"{column}_wild"] = table[column]
    return table


def format_table(tidy: pd.DataFrame) -> str:
    """Plain-text table for ``summary()``."""
    return tidy.to_string(index=False, float_format=lambda v: f"{v:.6g}")


def tidy_at(coefficients: pd.DataFrame, conf_level: float, df: float | None) -> pd.DataFrame:
    """The broom table of stored coefficients, intervals at ``conf_level``."""
    term_df = coefficients["df"].to_numpy(float) if "df" in coefficients.columns else df
    table = make_tidy(
        coefficients["term"],
        coefficients["estimate"],
        coefficients["std_error"],
        conf_level=conf_level,
        df=term_df,
    )
    if "p_value_wild" in coefficients.columns:
        for column in ("p_value", "conf_low", "conf_high"):
            table[column] = coefficients[f"{column}_wild"].to_numpy()
    return table


def bootstrap_level(result, level: float, *, bootstrapped: bool | None = None) -> float:
    """Refuse a new ``conf_level`` when the intervals came from the wild bootstrap."""
    if bootstrapped is None:
        bootstrapped = "p_value_wild" in result.coefficients.columns
    if bootstrapped and level != result.conf_level:
        raise ValueError(
            f"{type(result).__name__} wild bootstrap intervals were computed at fit time at "
            f"conf_level {result.conf_level}; fit again with conf_level={level} for that level"
        )
    return level


def weights_of(data: pd.DataFrame, weights: str | None, *, role: str) -> np.ndarray | None:
    """Checked regression weights from column ``weights`` (``None`` for OLS)."""
    if weights is None:
        return None
    values = pd.to_numeric(data[weights], errors="raise").to_numpy(float)
    check_weights(values, name=weights)
    if not (values > 0).any():
        raise ValueError(f"{role}: every weight in column {weights!r} is zero")
    return values


def wild_options(bootstrap_draws: int, bootstrap_weights: str, seed) -> WildOptions:
    """Bootstrap settings from the estimators' keyword options."""
    return WildOptions(n_draws=bootstrap_draws, weight_type=bootstrap_weights, seed=seed)
