"""ONS4 personal wellbeing: four items reported separately, never summed, with ONS bands."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.scoring._frames import cut_bands, long_scores

ONS4_SCORES = (
    "ons4_life_satisfaction",
    "ons4_worthwhile",
    "ons4_happiness",
    "ons4_anxiety",
)
# Upper edges (inclusive) and labels of the ONS threshold bands (ONS FOI response, SPEC §1.3).
_POSITIVE_BANDS = ((4, 6, 8, 10), ("low", "medium", "high", "very high"))
_ANXIETY_BANDS = ((1, 3, 5, 10), ("very low", "low", "medium", "high"))


def ons4_band(values, *, score: str) -> list:
    """Return the ONS threshold band of each 0–10 response.

    Life satisfaction, worthwhile and happiness: low 0–4, medium 5–6, high 7–8, very high
    9–10. Anxiety (reversed): very low 0–1, low 2–3, medium 4–5, high 6–10.

    Parameters
    ----------
    values
        Whole-number responses 0–10 (NaN gives ``None``).
    score
        One of ``ons4_life_satisfaction``, ``ons4_worthwhile``, ``ons4_happiness``,
        ``ons4_anxiety``.

    Notes
    -----
    ONS threshold bands from the ONS FOI response "a set of annual UK SWB score
    distributions" (SPEC §1.3). ONS reports "poor" wellbeing as the low band of the
    positive items and the high band of anxiety.

    Examples
    --------
    >>> ons4_band([4, 5, 9], score="ons4_happiness")
    ['low', 'medium', 'very high']
    >>> ons4_band([1, 6], score="ons4_anxiety")
    ['very low', 'high']
    """
    if score not in ONS4_SCORES:
        raise ValueError(f"unknown ONS4 score {score!r}; expected one of {', '.join(ONS4_SCORES)}")
    values = np.asarray(values, dtype=float)
    outside = ~np.isnan(values) & ((values < 0) | (values > 10) | (values % 1 != 0))
    if outside.any():
        raise ValueError(f"ONS4 response {values[outside][0]:g} is not a whole number from 0 to 10")
    edges, labels = _ANXIETY_BANDS if score == "ons4_anxiety" else _POSITIVE_BANDS
    return cut_bands(values, edges, labels)


def score_ons4(items: pd.DataFrame) -> pd.DataFrame:
    """Score checked ONS4 rows: each answered item as its own score with its ONS band.

    Notes
    -----
    ONS makes no composite score (ONS personal well-being FAQ), so the items are never
    summed (SPEC §1.3).
    """
    frames = []
    for number, score in enumerate(ONS4_SCORES, start=1):
        values = items[f"item_{number}"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        answered = ~np.isnan(values)
        bands = ons4_band(values[answered], score=score)
        poor = [band == ("high" if score == "ons4_anxiety" else "low") for band in bands]
        frames.append(
            long_scores(items.index[answered], score, values[answered], band=bands, poor_band=poor)
        )
    return pd.concat(frames, ignore_index=True)
