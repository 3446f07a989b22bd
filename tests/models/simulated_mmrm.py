"""Simulated repeated measures with unequal variances by visit and MAR dropout.

Shared by the MMRM tests and benchmark: subjects have 4 visits with means
MEANS, standard deviations SDS and AR(1) correlation RHO; from visit 1 on, a
subject drops out (monotone) with a probability that rises with their previous
observed score, so the data are missing at random but not completely at random.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MEANS = np.array([20.0, 21.0, 22.0, 23.0])
SDS = np.array([2.0, 3.0, 4.5, 6.0])
RHO = 0.6


def true_covariance() -> np.ndarray:
    lags = np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    return RHO**lags * np.outer(SDS, SDS)


def simulate(n_subjects: int, rng: np.random.Generator, *, dropout: float = 1.0) -> pd.DataFrame:
    """One data set: ``id, visit, score`` rows for the visits each subject attended.

    ``dropout`` scales the log-odds slope of dropping out on the previous score
    (0: missing completely at random, rate about 12% per visit).
    """
    scores = MEANS + rng.multivariate_normal(np.zeros(4), true_covariance(), n_subjects)
    attended = np.ones((n_subjects, 4), dtype=bool)
    for visit in range(1, 4):
        previous = (scores[:, visit - 1] - MEANS[visit - 1]) / SDS[visit - 1]
        probability = 1 / (1 + np.exp(-(-2.0 + dropout * 1.2 * previous)))
        attended[:, visit] = attended[:, visit - 1] & (rng.random(n_subjects) >= probability)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n_subjects), 4),
            "visit": np.tile(np.arange(4), n_subjects),
            "score": scores.ravel(),
        }
    )
    return frame[attended.ravel()].reset_index(drop=True)
