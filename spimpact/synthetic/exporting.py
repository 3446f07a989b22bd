"""Shared steps of the messy exports: local labels, local dates, the key mapping they imply.

An export module turns a scheme's contract tables into the files its platform or
spreadsheet produces. Each renames columns and relabels codes through plain
dictionaries (contract value to the local label or labels); :class:`ExportTruth`
collects what was done, so a test can score ``spimpact map``'s proposal against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class ExportTruth:
    """The true mapping behind an export: which header and which label is which.

    Attributes
    ----------
    columns
        ``(source, header) -> (table, column)``: ``source`` is the file (and sheet,
        ``file#sheet``), ``column`` the contract column the header holds.
    labels
        ``(table, column, label) -> code``; ``code`` is ``None`` for a label that
        stands for no contract code (its rows are excluded on load).
    """

    columns: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    labels: dict[tuple[str, str, str], str | None] = field(default_factory=dict)

    def add_columns(self, source: str, table: str, headers: dict[str, str]) -> None:
        """Record ``{contract column: header}`` of one source."""
        for column, header in headers.items():
            self.columns[(source, header)] = (table, column)

    def add_labels(self, table: str, column: str, labels: dict, used: pd.Series) -> None:
        """Record the labels of ``labels`` (code to label or labels) that occur in ``used``."""
        present = set(used.dropna().astype(str))
        for code, options in labels.items():
            for label in (options,) if isinstance(options, str) else options:
                if label in present:
                    self.labels[(table, column, label)] = code


def relabel(values: pd.Series, labels: dict, rng, *, p_other: float = 0.15) -> pd.Series:
    """Local labels for contract codes; blank stays blank.

    ``labels`` maps a code to one label or a tuple of labels; with a tuple the first
    is written most often and each other spelling with probability ``p_other``.
    Codes without a label raise ``KeyError`` (an export must place every code).
    """
    codes = values.astype(object).where(values.notna(), None).to_numpy()
    roll = rng.uniform(size=len(codes))
    pick = rng.integers(0, 1 << 30, size=len(codes))
    out = []
    for code, r, k in zip(codes, roll, pick, strict=True):
        if code is None:
            out.append(None)
            continue
        options = labels[str(code)]
        if isinstance(options, str) or len(options) == 1 or r >= p_other * (len(options) - 1):
            out.append(options if isinstance(options, str) else options[0])
        else:
            out.append(options[1 + k % (len(options) - 1)])
    return pd.Series(out, index=values.index, dtype=object)


def local_dates(values: pd.Series, date_format: str) -> pd.Series:
    """Dates written as text in ``date_format`` (blank when missing)."""
    dates = pd.to_datetime(values)
    return dates.dt.strftime(date_format).where(dates.notna(), None)


def flip(labels: dict[str, str]) -> dict[str, str]:
    """``{label: code}`` of a one-label-per-code dictionary."""
    return {label: code for code, label in labels.items()}


def as_int_text(values: pd.Series) -> pd.Series:
    """Whole numbers as text without a decimal point (blank when missing)."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.map(lambda v: None if pd.isna(v) else str(int(v))).astype(object)


def pick_rows(n: int, count: int, rng) -> np.ndarray:
    """``count`` distinct row positions out of ``n`` (all when ``count >= n``), sorted."""
    count = min(count, n)
    return np.sort(rng.choice(n, size=count, replace=False)) if count else np.array([], int)
