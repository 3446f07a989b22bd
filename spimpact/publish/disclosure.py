"""Statistical disclosure control for every published count, percentage and summary.

Default rule (NHS Digital secondary-care outputs from September 2018, SPEC §3.2):
0 stays 0; 1-7 are suppressed; other counts are rounded to the nearest 5; totals
are computed from unrounded values and then rounded; a mean or median is shown only
when at least 8 people stand behind it; a percentage is computed from the rounded
numerator and denominator, to the precision the rounded denominator supports.

Secondary suppression (SPEC §3.2, the HES rule before September 2018): when a table's
row or column totals are published, a row or column with exactly one suppressed cell
would let a reader recover that cell by subtraction, so the next smallest cell in it is
suppressed too, repeating until no row or column has a lone suppressed cell
(``secondary_suppression``). ``DisclosureRule.named("legacy_1to5_secondary")`` gives the
old rule (1-5 suppressed, no rounding); with the default rule rounding already blurs
differences, but ``disclose_table(..., totals=...)`` still applies the greedy step.

Crude rates from a count are suppressed with their count (``disclose_rate``); complex
calculations (standardised rates, confidence intervals, model estimates) need no
control (NHS Digital 2018 method).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from spimpact.params import DisclosureRule

__all__ = [
    "DEFAULT_RULE",
    "SUPPRESSED",
    "DisclosureRule",
    "disclose_count",
    "disclose_counts_in_text",
    "disclose_percentage",
    "disclose_rate",
    "disclose_summary",
    "disclose_table",
    "format_for_publication",
    "round_half_up",
    "secondary_suppression",
]

SUPPRESSED = "*"


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


def secondary_suppression(counts, suppressed, *, totals: str = "both", groups=None) -> np.ndarray:
    """Extend a suppression mask so that no published total reveals a suppressed cell.

    Parameters
    ----------
    counts
        2-D array of raw counts (rows x columns).
    suppressed
        Boolean array of the same shape: cells already suppressed (primary).
    totals
        Which totals are published: ``"rows"`` (a total per row, across columns),
        ``"columns"`` (a total per column, down the rows), or ``"both"``.
    groups
        Optional label per row; column totals are then published within each group
        (e.g. one total per dimension in a long table of categories).

    Returns
    -------
    numpy.ndarray
        The extended boolean mask.

    Notes
    -----
    Greedy algorithm of the pre-2018 HES rule (SPEC §3.2 ``legacy_1to5_secondary``):
    while some published line (row, or column within a group) holds exactly one
    suppressed cell, suppress that line's smallest unsuppressed non-zero cell
    (a zero only when no non-zero cell is left). Each pass can create new lone cells
    in crossing lines, so it repeats until stable.

    Examples
    --------
    >>> counts = np.array([[3, 20, 40], [30, 25, 50]])
    >>> secondary_suppression(counts, counts <= 7, totals="rows").astype(int).tolist()
    [[1, 1, 0], [0, 0, 0]]
    """
    if totals not in ("rows", "columns", "both"):
        raise ValueError(f"totals must be 'rows', 'columns' or 'both', got {totals!r}")
    counts = np.asarray(counts, dtype=float)
    mask = np.array(suppressed, dtype=bool, copy=True)
    if counts.ndim != 2 or counts.shape != mask.shape:
        raise ValueError("counts and suppressed must be 2-D arrays of the same shape")
    groups = np.zeros(counts.shape[0]) if groups is None else np.asarray(groups)
    lines = []
    if totals in ("rows", "both"):
        lines += [(np.array([i]), np.arange(counts.shape[1])) for i in range(counts.shape[0])]
    if totals in ("columns", "both"):
        for label in pd.unique(groups):
            rows = np.flatnonzero(groups == label)
            lines += [(rows, np.array([j])) for j in range(counts.shape[1])]
    changed = True
    while changed:
        changed = False
        for rows, cols in lines:
            cells = [(i, j) for i in rows for j in cols]
            if len(cells) < 2 or sum(mask[c] for c in cells) != 1:
                continue
            open_cells = [c for c in cells if not mask[c]]
            nonzero = [c for c in open_cells if counts[c] > 0]
            candidates = nonzero or open_cells
            mask[min(candidates, key=lambda c: (counts[c], c))] = True
            changed = True
    return mask


def disclose_table(
    frame: pd.DataFrame,
    count_columns,
    rule: DisclosureRule = DEFAULT_RULE,
    *,
    totals: str | None = None,
    by=None,
) -> pd.DataFrame:
    """Return ``frame`` with every column in ``count_columns`` disclosure-controlled.

    Parameters
    ----------
    frame
        Table with raw counts.
    count_columns
        Columns holding counts of people or events.
    rule
        Disclosure rule (thresholds).
    totals
        ``None`` (no totals are published alongside), ``"rows"``, ``"columns"`` or
        ``"both"``: which totals of the ``count_columns`` block are published or
        derivable; cells are then also suppressed by ``secondary_suppression``.
    by
        Column(s) grouping the rows for column totals, e.g. ``"dimension"`` in a long
        table of categories whose counts add up to the scheme total per dimension.

    Examples
    --------
    >>> table = pd.DataFrame({"group": ["a", "b", "c"], "n": [3, 20, 40]})
    >>> disclose_table(table, ["n"], totals="columns")["n"].tolist()
    [<NA>, <NA>, 40]
    """
    count_columns = list(count_columns)
    missing = [c for c in count_columns if c not in frame.columns]
    if missing:
        raise ValueError(f"count columns {missing} not found in the table")
    out = frame.copy()
    for column in count_columns:
        out[column] = disclose_count(frame[column].to_numpy(), rule).set_axis(frame.index)
    if totals is not None and count_columns:
        raw = frame[count_columns].to_numpy(dtype=float)
        primary = out[count_columns].isna().to_numpy() & ~np.isnan(raw)
        groups = None
        if by is not None:
            groups = (
                frame[by].astype(str).agg("|".join, axis=1)
                if isinstance(by, list)
                else (frame[by].astype(str))
            )
            groups = groups.to_numpy()
        mask = secondary_suppression(raw, primary, totals=totals, groups=groups)
        for j, column in enumerate(count_columns):
            out[column] = out[column].mask(mask[:, j])
    return out


def disclose_rate(rate, numerator, rule: DisclosureRule = DEFAULT_RULE) -> pd.Series:
    """Suppress a crude rate whose numerator count would be suppressed.

    A crude rate and its denominator give back the count, so the rate is withheld
    when the count is 1 to ``rule.threshold``; other rates are shown unrounded
    (SPEC §3.2: the rule applies to counts; rates from safe counts are not rounded).
    """
    rates = pd.Series(np.atleast_1d(np.asarray(rate, dtype=float)), dtype="Float64")
    counts = np.atleast_1d(np.asarray(numerator, dtype=float))
    if len(counts) != len(rates):
        raise ValueError("rate and numerator must have the same length")
    rates[((counts >= 1) & (counts <= rule.threshold))] = pd.NA
    return rates


def disclose_percentage(numerator, denominator, rule: DisclosureRule = DEFAULT_RULE) -> pd.Series:
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


_COUNT_NOUN = re.compile(
    r"^(?:\s+of\s+\d[\d,]*)?(?:[^.;:()\d]{0,30}?)\b(?:units?|unit\(s\)|clients?|people|persons?|patients?|rows?|"
    r"row\(s\)|records?|referrals?|events?|individuals?)\b"
)
_INTEGER = re.compile(r"(?<!than )(?<![\w.\-–£/])(?:\d{1,3}(?:,\d{3})+|\d+)(?![\w.%/–-])")


def disclose_counts_in_text(text: str, rule: DisclosureRule = DEFAULT_RULE) -> str:
    """Apply the count rule to the counts of people or records written in a sentence.

    A whole number followed (within a few words, before any punctuation) by a noun
    such as "clients", "people", "rows" or "units" is a count: 1 to ``threshold``
    becomes "fewer than {threshold + 1}", others are rounded. Other numbers (years,
    months, decimals, percentages, money) are left alone. Used on diagnostics that
    generic estimators write with exact counts before they reach a report.

    Examples
    --------
    >>> disclose_counts_in_text("82 of 7916 treated units found no control; see 2018 paper.")
    '80 of 7,915 treated units found no control; see 2018 paper.'
    >>> disclose_counts_in_text("3 clients were left out")
    'fewer than 8 clients were left out'
    """

    def replace(match: re.Match) -> str:
        following = text[match.end() :]
        if not _COUNT_NOUN.match(following):
            return match.group(0)
        value = int(match.group(0).replace(",", ""))
        safe = disclose_count([value], rule).iloc[0]
        return f"fewer than {rule.threshold + 1}" if pd.isna(safe) else f"{int(safe):,}"

    return _INTEGER.sub(replace, text)
