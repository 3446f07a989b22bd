"""Loneliness: the UCLA 3-item scale (3–9) and the ONS direct question (ordinal)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.scoring._frames import long_scores
from spimpact.scoring.instruments import INSTRUMENTS

UCLA3_LONELY_FROM = 6
ONS_LONELINESS_LABELS = {
    1: "often/always",
    2: "some of the time",
    3: "occasionally",
    4: "hardly ever",
    5: "never",
}


def score_ucla3(items: pd.DataFrame) -> pd.DataFrame:
    """Score checked UCLA-3 rows: ``ucla3_total`` = sum of 3 items (3–9), lonely when ≥ 6.

    Notes
    -----
    Hughes ME et al. Res Aging 2004;26(6):655-72; items coded hardly ever 1, some of the
    time 2, often 3, no reversed items; 3–5 "not lonely", 6–9 "lonely" (SPEC §1.7; the
    cut-off is SECONDARY).
    """
    columns = list(INSTRUMENTS["ucla3"].columns)
    total = (
        items[columns]
        .astype("Float64")
        .sum(axis=1, skipna=False)
        .to_numpy(dtype=float, na_value=np.nan)
    )
    lonely = total >= UCLA3_LONELY_FROM
    bands = np.where(lonely, "lonely", "not lonely")
    return long_scores(items.index, "ucla3_total", total, band=bands, poor_band=lonely)


def score_ons_loneliness(items: pd.DataFrame) -> pd.DataFrame:
    """Score checked rows of the ONS direct question, kept ordinal (1 often/always … 5 never).

    ``poor_band`` marks "often/always", the ONS chronic-loneliness category.

    Notes
    -----
    ONS, Measuring loneliness: guidance for use of the national indicators on surveys
    (SPEC §1.7).
    """
    codes = items["item_1"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    bands = [ONS_LONELINESS_LABELS[int(code)] for code in codes]
    return long_scores(items.index, "ons_loneliness", codes, band=bands, poor_band=codes == 1)
