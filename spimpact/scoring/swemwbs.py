"""SWEMWBS and WEMWBS: raw totals and the SWEMWBS Rasch metric score."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.scoring._frames import long_scores, round_half_up
from spimpact.scoring.instruments import INSTRUMENTS
from spimpact.scoring.tables import swemwbs_conversion


def swemwbs_metric(raw):
    """Convert SWEMWBS raw totals (7–35) to metric scores with the Rasch conversion table.

    Parameters
    ----------
    raw
        A whole-number raw total or an array of them; missing values (NaN/None/NA) give NaN.

    Returns
    -------
    float or numpy.ndarray
        Metric score(s), same shape as ``raw``.

    Raises
    ------
    ValueError
        If a raw total is not a whole number or lies outside 7–35 (never interpolated).

    Notes
    -----
    Conversion table from Warwick Medical School, as carried by several independent
    scoring scripts and matching the German GEDA 2022 norms (SPEC §1.1). Change should be
    analysed on the metric scale, the interval scale (Warwick).

    Examples
    --------
    >>> swemwbs_metric(23)
    20.73
    >>> swemwbs_metric([7, 35]).tolist()
    [7.0, 35.0]
    """
    scalar = np.ndim(raw) == 0
    given = np.asarray(raw, dtype=object)
    flat = pd.Series(given.ravel())
    values = pd.to_numeric(flat, errors="coerce")
    bad = flat.notna() & (values.isna() | (values % 1 != 0) | ~values.between(7, 35))
    if bad.any():
        raise ValueError(
            f"SWEMWBS raw total {flat[bad].iloc[0]!r} is not a whole number from 7 to 35; "
            "the metric conversion is defined only there"
        )
    metric = values.map(swemwbs_conversion()).to_numpy(dtype=float).reshape(given.shape)
    return float(metric) if scalar else metric


def score_swemwbs(items: pd.DataFrame, *, max_missing_items: int = 0) -> pd.DataFrame:
    """Score checked SWEMWBS rows: ``swemwbs_raw`` (7–35) and ``swemwbs_metric``.

    Parameters
    ----------
    items
        Rows already checked by :func:`spimpact.scoring.validate_items` (``item_1`` …
        ``item_7`` on 1–5).
    max_missing_items
        0 (default, Warwick's table assumes all 7 items) or 1: impute one missing item
        with the person's mean of the other six, rounded to a whole response (halves up),
        and flag the row as non-standard (SPEC §1.1 RECOMMENDATION; no Warwick rule found).

    Returns
    -------
    pandas.DataFrame
        Long frame ``index, score, value, band, poor_band, non_standard, note``.
    """
    columns = list(INSTRUMENTS["swemwbs"].columns)
    values = items[columns].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    n_missing = np.isnan(values).sum(axis=1)
    if (n_missing > max_missing_items).any():
        raise ValueError(
            f"SWEMWBS rows with more than {max_missing_items} missing item(s) reached scoring; "
            "check them with validate_items first"
        )
    person_mean = np.nanmean(np.where(n_missing[:, None] < 7, values, 0), axis=1)
    imputed = np.where(np.isnan(values), round_half_up(person_mean)[:, None], values)
    raw = imputed.sum(axis=1)
    note = np.where(
        n_missing > 0,
        "one missing item imputed with the person's mean of the other six (rounded); "
        "non-standard rule",
        None,
    )
    return pd.concat(
        [
            long_scores(items.index, "swemwbs_raw", raw, note=note),
            long_scores(items.index, "swemwbs_metric", swemwbs_metric(raw), note=note),
        ],
        ignore_index=True,
    )


def score_wemwbs(items: pd.DataFrame) -> pd.DataFrame:
    """Score checked WEMWBS rows: ``wemwbs_total`` = sum of the 14 items (14–70).

    Notes
    -----
    Tennant R et al. Health Qual Life Outcomes 2007;5:63; no transformation (SPEC §1.2).
    """
    columns = list(INSTRUMENTS["wemwbs"].columns)
    total = items[columns].astype("Float64").sum(axis=1, skipna=False)
    return long_scores(items.index, "wemwbs_total", total.to_numpy(dtype=float, na_value=np.nan))
