"""Adjusting p-values for multiple comparisons (Holm; Benjamini-Hochberg)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from statsmodels.stats.multitest import multipletests

METHODS = {"holm": "holm", "fdr_bh": "fdr_bh", "bonferroni": "bonferroni"}


def adjust_p_values(p: Sequence[float], method: str = "holm") -> np.ndarray:
    """Adjusted p-values, in the order given; missing values stay missing.

    Parameters
    ----------
    p
        Unadjusted p-values in [0, 1] (NaN for tests that were not done).
    method
        ``"holm"`` (family-wise error rate, Holm 1979), ``"fdr_bh"`` (false discovery
        rate, Benjamini & Hochberg 1995) or ``"bonferroni"``.

    Returns
    -------
    numpy.ndarray
        The adjusted p-values, the same as R ``p.adjust(p, method = "holm" | "BH" |
        "bonferroni")``.

    Notes
    -----
    Wraps :func:`statsmodels.stats.multitest.multipletests`; NaNs are set aside first, as
    R's ``p.adjust`` does (``n`` counts only the non-missing p-values).

    Examples
    --------
    >>> adjust_p_values([0.01, 0.04, 0.03], method="holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    values = np.asarray(p, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"p must be a one-dimensional sequence, got shape {values.shape}")
    present = ~np.isnan(values)
    if ((values[present] < 0) | (values[present] > 1)).any():
        bad = values[present][(values[present] < 0) | (values[present] > 1)][0]
        raise ValueError(f"p-values must lie in [0, 1]; got {bad}")
    out = np.full(values.shape, np.nan)
    if present.any():
        out[present] = multipletests(values[present], method=METHODS[method])[1]
    return out
