"""The one result shape: broom-style tidy tables shared by every estimator."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

TIDY_COLUMNS = ("term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high")
MIXED_TIDY_COLUMNS = ("effect", "group", *TIDY_COLUMNS)


def make_tidy(
    term,
    estimate,
    std_error,
    *,
    conf_level: float = 0.95,
    df: float | np.ndarray | None = None,
) -> pd.DataFrame:
    """Build a tidy table of Wald statistics.

    Parameters
    ----------
    term, estimate, std_error
        Sequences of equal length.
    conf_level
        Confidence level of the interval, e.g. 0.95.
    df
        Degrees of freedom for t-based p-values and intervals; ``None`` uses the
        normal distribution.

    Returns
    -------
    pandas.DataFrame
        Columns ``term, estimate, std_error, statistic, p_value, conf_low, conf_high``.

    Examples
    --------
    >>> float(make_tidy(["x"], [2.0], [1.0]).round(3).iloc[0]["conf_low"])
    0.04
    """
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    estimate = np.asarray(estimate, dtype=float)
    std_error = np.asarray(std_error, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / std_error
    dist = stats.norm if df is None else stats.t(df)
    p_value = 2 * dist.sf(np.abs(statistic))
    crit = dist.ppf(0.5 + conf_level / 2)
    return pd.DataFrame(
        {
            "term": list(term),
            "estimate": estimate,
            "std_error": std_error,
            "statistic": statistic,
            "p_value": p_value,
            "conf_low": estimate - crit * std_error,
            "conf_high": estimate + crit * std_error,
        }
    )


def exponentiate_tidy(tidy: pd.DataFrame) -> pd.DataFrame:
    """Return ``tidy`` on the exponentiated scale (rate or odds ratios).

    The standard error becomes the delta-method SE ``exp(b) * se``, as broom does;
    the statistic and p-value stay those of the linear-scale test.
    """
    out = tidy.copy()
    out["std_error"] = np.exp(out["estimate"]) * out["std_error"]
    for col in ("estimate", "conf_low", "conf_high"):
        out[col] = np.exp(tidy[col])
    return out
