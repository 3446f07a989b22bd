"""The long shape every instrument scorer returns, before client columns are attached."""

from __future__ import annotations

import numpy as np
import pandas as pd

SCORE_FRAME_COLUMNS = ("index", "score", "value", "band", "poor_band", "non_standard", "note")


def long_scores(index, score: str, value, *, band=None, poor_band=None, note=None) -> pd.DataFrame:
    """One row per input row for one score; ``index`` points back to the measures row."""
    index = pd.Index(index)
    n = len(index)
    note = pd.Series([None] * n if note is None else list(note), dtype=object)
    return pd.DataFrame(
        {
            "index": index.to_numpy(),
            "score": score,
            "value": np.asarray(value, dtype=float),
            "band": pd.Series([None] * n if band is None else list(band), dtype=object),
            "poor_band": pd.array(
                [pd.NA] * n if poor_band is None else list(poor_band), dtype="boolean"
            ),
            "non_standard": note.notna().to_numpy(),
            "note": note,
        }
    )


def cut_bands(values, edges, labels) -> list:
    """Label each value with the band whose upper edge (inclusive) it does not exceed."""
    values = np.asarray(values, dtype=float)
    position = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return [None if np.isnan(v) else labels[p] for v, p in zip(values, position, strict=True)]


def round_half_up(values) -> np.ndarray:
    """Round to whole numbers with halves going up (numpy's round sends 2.5 to 2)."""
    return np.floor(np.asarray(values, dtype=float) + 0.5)
