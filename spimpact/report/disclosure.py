"""Statistical disclosure control for every published count, percentage and summary.

Default rule (NHS Digital secondary-care outputs from September 2018, SPEC §3.2):
0 stays 0; 1-7 are suppressed; other counts are rounded to the nearest 5; totals
are computed from unrounded values and then rounded; a mean or median is shown only
when at least 8 people stand behind it; a percentage is computed from the rounded
numerator and denominator, to the precision the rounded denominator supports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SUPPRESSED = "*"


@dataclass(frozen=True)
class DisclosureRule:
    """Thresholds of the disclosure-control rule (set per scheme in params).

    Attributes
    ----------
    threshold
        Counts from 1 to ``threshold`` are suppressed.
    rounding
        Other counts are rounded to the nearest multiple of ``rounding``.
    min_n_summary
        Fewest people behind a published mean, median or percentage.
    one_decimal_denominator
        Smallest rounded denominator for a percentage with one decimal place.
    """

    threshold: int = 7
    rounding: int = 5
    min_n_summary: int = 8
    one_decimal_denominator: int = 4000

    def __post_init__(self):
        if self.threshold < 0 or self.rounding < 1 or self.min_n_summary < 1:
            raise ValueError(f"invalid disclosure rule {self}")


DEFAULT_RULE = DisclosureRule()


def round_half_up(values, base: int) -> np.ndarray:
    """Round non-negative counts to the nearest multiple of ``base``; halves go up."""
    values = np.asarray(values, dtype=float)
    return np.floor(values / base + 0.5) * base


def disclose_count(values, rule: DisclosureRule = DEFAULT_RULE) -> pd.Series:
    """Apply the count rule to one count or an array of counts.

    Returns a nullable integer Series: suppressed counts are ``<NA>``.

    Examples
    --------
    >>> disclose_count([0, 3, 8, 12, 13]).tolist()
    [0, <NA>, 10, 10, 15]
    """
    counts = pd.Series(np.atleast_1d(np.asarray(values, dtype=float)))
    if (counts.dropna() < 0).any():
        raise ValueError("counts must be non-negative")
    if ((counts.dropna() % 1) != 0).any():
        raise ValueError("counts must be whole numbers")
    rounded = pd.Series(round_half_up(counts, rule.rounding), index=counts.index)
    rounded[counts == 0] = 0
    rounded[(counts >= 1) & (counts <= rule.threshold)] = np.nan
    return rounded.astype("Int64")


def disclose_table(
    frame: pd.DataFrame, count_columns, rule: DisclosureRule = DEFAULT_RULE
) -> pd.DataFrame:
    """Return ``frame`` with every column in ``count_columns`` disclosure-controlled."""
    out = frame.copy()
    for column in count_columns:
        out[column] = disclose_count(frame[column].to_numpy(), rule).to_numpy()
    return out


def disclose_percentage(
    numerator, denominator, rule: DisclosureRule = DEFAULT_RULE
) -> pd.Series:
    """Percentage from the disclosure-controlled numerator and denominator.

    Suppressed when either count is suppressed or the denominator is below
    ``rule.min_n_summary``; one decimal place only when the rounded denominator is
    at least ``rule.one_decimal_denominator``, otherwise whole percentages.
    """
    numerator_safe = disclose_count(numerator, rule).astype("Float64")
    denominator_safe = disclose_count(denominator, rule).astype("Float64")
    raw_denominator = pd.Series(np.atleast_1d(np.asarray(denominator, dtype=float)))
    pct = 100 * numerator_safe / denominator_safe
    decimals = np.where(denominator_safe.fillna(0) >= rule.one_decimal_denominator, 1, 0)
    pct = pd.Series(
        [np.round(p, d) if pd.notna(p) else pd.NA for p, d in zip(pct, decimals, strict=True)],
        dtype="Float64",
    )
    pct[(raw_denominator < rule.min_n_summary).to_numpy()] = pd.NA
    return pct


def disclose_summary(value, n, rule: DisclosureRule = DEFAULT_RULE):
    """Return a mean or median only when at least ``rule.min_n_summary`` people are behind it."""
    values = pd.Series(np.atleast_1d(np.asarray(value, dtype=float)), dtype="Float64")
    n = np.atleast_1d(np.asarray(n, dtype=float))
    values[n < rule.min_n_summary] = pd.NA
    return values


def format_for_publication(frame: pd.DataFrame) -> pd.DataFrame:
    """Render suppressed or withheld cells as ``*`` for CSV and HTML output."""
    return frame.astype(object).where(frame.notna(), SUPPRESSED)
