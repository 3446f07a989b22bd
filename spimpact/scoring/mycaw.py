"""MYCaW: concern 1, concern 2 and wellbeing, each 0 (best) to 6 (worst), kept separate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.scoring._frames import long_scores

MYCAW_SCORES = ("mycaw_concern_1", "mycaw_concern_2", "mycaw_wellbeing")


def score_mycaw(items: pd.DataFrame) -> pd.DataFrame:
    """Score checked MYCaW rows: one score per answered item (concern 2 is optional).

    Higher is worse, so change is read as baseline − follow-up (positive = improvement);
    :func:`spimpact.scoring.classify_change` does this from ``SCORES``.

    Notes
    -----
    Paterson C et al. Complement Ther Med 2007;15(1):38-45 (SPEC §1.6). Concerns are
    personal, so they are reported separately, never summed across people.
    """
    frames = []
    for number, score in enumerate(MYCAW_SCORES, start=1):
        values = items[f"item_{number}"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        answered = ~np.isnan(values)
        frames.append(long_scores(items.index[answered], score, values[answered]))
    return pd.concat(frames, ignore_index=True)
