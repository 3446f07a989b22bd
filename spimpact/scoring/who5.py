"""WHO-5 Well-Being Index: raw 0–25, percentage 0–100 and the screening cut-offs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.scoring._frames import long_scores
from spimpact.scoring.instruments import INSTRUMENTS

POOR_WELLBEING_PCT = 50
LIKELY_DEPRESSION_PCT = 28


def who5_band(percentage) -> list:
    """Return the WHO-5 screening band of each percentage score (0–100).

    ``likely depression`` when ≤ 28, ``poor wellbeing`` when 29–50, else ``above 50``.

    Notes
    -----
    Topp CW et al. Psychother Psychosom 2015;84:167-76, doi:10.1159/000376585: ≤ 50
    screens for poor wellbeing / depression, ≤ 28 indicates likely depression. For whole
    raw scores ≤ 50% is the same as the scoring sheet's raw < 13 (SPEC §1.4).

    Examples
    --------
    >>> who5_band([28, 32, 50, 52])
    ['likely depression', 'poor wellbeing', 'poor wellbeing', 'above 50']
    """
    pct = np.asarray(percentage, dtype=float)
    return [
        None
        if np.isnan(p)
        else "likely depression"
        if p <= LIKELY_DEPRESSION_PCT
        else "poor wellbeing"
        if p <= POOR_WELLBEING_PCT
        else "above 50"
        for p in pct
    ]


def score_who5(items: pd.DataFrame) -> pd.DataFrame:
    """Score checked WHO-5 rows: ``who5_raw`` = sum (0–25) and ``who5_pct`` = raw × 4.

    Both rows carry the band of the percentage score; ``poor_band`` is pct ≤ 50.

    Notes
    -----
    WHO-5 scoring sheet (Psychiatric Research Unit, Hillerød), SPEC §1.4.
    """
    columns = list(INSTRUMENTS["who5"].columns)
    raw = (
        items[columns]
        .astype("Float64")
        .sum(axis=1, skipna=False)
        .to_numpy(dtype=float, na_value=np.nan)
    )
    pct = raw * 4
    bands = who5_band(pct)
    poor = pct <= POOR_WELLBEING_PCT
    return pd.concat(
        [
            long_scores(items.index, "who5_raw", raw, band=bands, poor_band=poor),
            long_scores(items.index, "who5_pct", pct, band=bands, poor_band=poor),
        ],
        ignore_index=True,
    )
