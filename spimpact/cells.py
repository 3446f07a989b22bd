"""Cells of a table being loaded: numbers parsed fast, excluded rows logged safely.

Used by :mod:`spimpact.io`. ``parse_numbers`` turns text cells into numbers with Arrow
compute functions (no per-cell Python loop), so a table of millions of rows loads in
seconds; ``ExclusionLog`` records every excluded row as arrays and never keeps the value
of an identifying column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spimpact.contract import TABLES

EXCLUSION_COLUMNS = ("table", "row", "column", "value", "reason")
WITHHELD = "(withheld)"
# Columns whose values identify a person: an exclusion names the row and the rule broken
# but never repeats the value (`spimpact validate` prints exclusions).
IDENTIFYING_COLUMNS = frozenset({"nhs_number", "date_of_birth", "text", "themes"})
# Ten digits, spaced or not, anywhere in a value: an NHS number typed in the wrong column;
# a date outside a date column: most likely a date of birth typed in the wrong place.
_NHS_SHAPED = r"(?:^|\D)\d{3}[ -]?\d{3}[ -]?\d{4}(?:\D|$)"
_DATE_SHAPED = r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}"
_DATE_COLUMNS = frozenset(
    column.name for spec in TABLES.values() for column in spec.columns if column.kind == "date"
)


class ExclusionLog:
    """Accumulates row-level exclusions for one table.

    Rows are kept as arrays, one batch per call, so that a table with millions of
    excluded rows costs a few bytes per row rather than a Python tuple each.
    """

    def __init__(self, table: str):
        self.table = table
        self.batches: list[pd.DataFrame] = []

    def add(self, rows, column, values, reason) -> None:
        """Record rows; ``column``, ``values`` and ``reason`` are one string or one per row.

        Values of identifying columns (``IDENTIFYING_COLUMNS``), values shaped like an
        NHS number and dates outside date columns are recorded as ``(withheld)``:
        exclusions are shown by ``spimpact validate`` and must not print them.
        """
        rows = np.asarray(rows, dtype="int64").reshape(-1)
        if len(rows) == 0:
            return

        def per_row(x):
            """One entry per row; repeated values share one object (8 bytes a row)."""
            if isinstance(x, str):
                return np.full(len(rows), x, dtype=object)
            array = np.asarray(list(x) if not hasattr(x, "__array__") else x, dtype=object)
            if len(array) != len(rows):
                raise ValueError("one value per row expected")
            codes, uniques = pd.factorize(array, use_na_sentinel=True)
            shared = np.asarray(list(uniques) + [np.nan], dtype=object)
            return shared[codes]

        columns = per_row(column)
        shown = per_row(values)
        codes, uniques = pd.factorize(shown, use_na_sentinel=True)
        text = pd.Series([str(u) for u in uniques], dtype="string[pyarrow]")
        nhs_shaped = np.append(text.str.contains(_NHS_SHAPED).to_numpy(dtype=bool), False)
        date_shaped = np.append(text.str.contains(_DATE_SHAPED).to_numpy(dtype=bool), False)
        names = pd.Series(columns)
        withheld = (
            nhs_shaped[codes]
            | (date_shaped[codes] & ~names.isin(_DATE_COLUMNS).to_numpy())
            | names.isin(IDENTIFYING_COLUMNS).to_numpy()
        )
        shown[withheld] = WITHHELD
        self.batches.append(
            pd.DataFrame(
                {
                    "table": self.table,
                    "row": rows,
                    "column": columns,
                    "value": shown,
                    "reason": per_row(reason),
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        """Every exclusion recorded (``EXCLUSION_COLUMNS``), in the order recorded."""
        if not self.batches:
            return pd.DataFrame(columns=list(EXCLUSION_COLUMNS))
        return pd.concat(self.batches, ignore_index=True)[list(EXCLUSION_COLUMNS)]

    def excluded_rows(self) -> np.ndarray:
        """Source rows with at least one exclusion, sorted and unique."""
        if not self.batches:
            return np.array([], dtype="int64")
        return np.unique(np.concatenate([b["row"].to_numpy() for b in self.batches]))


def nullable_int(values: pd.Series) -> pd.Series:
    """Whole numbers held as floats (NaN for missing) as ``Int64``, without a Python loop."""
    floats = values.to_numpy(dtype=float)
    missing = np.isnan(floats)
    integers = np.where(missing, 0, floats).astype("int64")
    return pd.Series(pd.arrays.IntegerArray(integers, missing), index=values.index)


_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"


def parse_numbers(text: pd.Series) -> pd.Series:
    """Numbers from stripped text; anything else (blank, words, dates) gives NaN.

    Matches the plain decimal forms ``pd.to_numeric`` accepts (sign, decimals,
    exponent) without its per-cell Python loop: a table of millions of rows parses in
    about a second per column.
    """
    strings = pa.array(text.astype("string[pyarrow]").array, type=pa.string())
    number_like = pc.match_substring_regex(strings, _NUMBER)
    kept = pc.if_else(number_like, strings, pa.scalar(None, pa.string()))
    values = pc.cast(kept, pa.float64()).to_numpy(zero_copy_only=False)
    values = np.where(np.isfinite(values), values, np.nan)  # "1e400" is not a number we take
    return pd.Series(values, index=text.index, dtype=float)
