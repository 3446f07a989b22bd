"""Shapes of the transient rise in GP attendance around referral, and of the effect.

Shared by the example schemes (:mod:`spimpact.synthetic.appointments`) and the
simulation scenarios (:mod:`spimpact.synthetic.attendance_scenarios`). A shape gives,
for months relative to the index date (month 0 starts on it), the share of a person's
peak size added to their attendance: ``rate = base x (1 + size x shape(month))``.
Months not listed add nothing, so every rise is transient.
"""

from __future__ import annotations

import numpy as np

PEAK_SHAPES: dict[str, dict[int, float]] = {
    "none": {},
    # clients' rise in the three months before referral (an "Ashenfelter dip" seen
    # backwards: referral follows a run of consultations), gone by referral
    "before": {-3: 0.4, -2: 0.8, -1: 1.0},
    # a rise that peaks in the month of referral and fades over the next two months
    "around_index": {-2: 0.3, -1: 0.8, 0: 1.0, 1: 0.6, 2: 0.2},
    # symmetric, for comparison patients indexed at a consultation
    "symmetric": {-2: 0.3, -1: 0.6, 0: 1.0, 1: 0.6, 2: 0.3},
    # the example schemes: each its own asymmetric shape, inside months -3 to 2
    "north_shore": {-3: 0.35, -2: 0.7, -1: 1.0, 0: 0.45, 1: 0.1},
    "riverside": {-2: 0.25, -1: 0.6, 0: 1.0, 1: 0.5, 2: 0.15},
    # longer than the default washout (months -6 to 5): outside the design's assumption
    "long": {
        -6: 0.1,
        -5: 0.2,
        -4: 0.35,
        -3: 0.5,
        -2: 0.75,
        -1: 1.0,
        0: 0.9,
        1: 0.6,
        2: 0.4,
        3: 0.25,
        4: 0.15,
        5: 0.08,
    },
}


def peak_profile(shape: str, months: np.ndarray) -> np.ndarray:
    """The shape's share of the peak size in each of ``months`` (0 outside the shape).

    Examples
    --------
    >>> peak_profile("before", np.arange(-4, 1)).tolist()
    [0.0, 0.4, 0.8, 1.0, 0.0]
    """
    if shape not in PEAK_SHAPES:
        raise ValueError(f"unknown peak shape {shape!r}; choose from {sorted(PEAK_SHAPES)}")
    profile = PEAK_SHAPES[shape]
    return np.array([profile.get(int(m), 0.0) for m in months])


def effect_by_month(rate_ratio: float, months: np.ndarray) -> np.ndarray:
    """Multiplier of attendance: none up to month 0, half the effect in months 1-2, then full.

    Examples
    --------
    >>> effect_by_month(0.8, np.arange(0, 4)).tolist()
    [1.0, 0.9, 0.9, 0.8]
    """
    months = np.asarray(months)
    half = 1 - (1 - rate_ratio) / 2
    return np.where(months >= 3, rate_ratio, np.where(months >= 1, half, 1.0))
