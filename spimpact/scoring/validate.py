"""Check item responses against each instrument before anything is scored.

Staff sometimes modify standard tools (e.g. a 0–10 version of a 1–5 scale; Wobi et al.
2025). A modified tool must be caught, not silently scored: rows whose items fall outside
the instrument's coding are excluded (never clipped) and summarised per measure, unless
the scheme's params declare the variant, in which case the items are mapped back to the
standard coding and the rows are marked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.scoring.instruments import INSTRUMENTS, ITEM_COLUMNS, Instrument

EXCLUSION_COLUMNS = ("row", "column", "value", "reason")
NON_STANDARD_COLUMNS = ("measure", "issue", "n_rows", "detail")
_N_EXAMPLES = 6
# Largest absolute value repeated in a published description of non-standard answers.
_SHOWN_LIMIT = 999
WITHHELD = "(withheld)"
# Codings a modified scale is most often recorded on, narrowest first (Wobi et al. 2025
# describe a 0–10 version of a 1–5 scale).
_COMMON_CODINGS = ((1, 7), (0, 10), (1, 10), (0, 100), (1, 100))
# Instruments whose items are summed into a total, so an item outside its coding also
# gives a total outside the published range.
_SUMMED = ("swemwbs", "wemwbs", "who5", "ucla3")


@dataclass(frozen=True)
class ItemCheck:
    """The outcome of :func:`validate_items`.

    Attributes
    ----------
    measures
        Rows that can be scored the standard way, items as nullable integers on the
        standard coding, with a ``variant`` column (``None``, or the declared variant's
        reason for rows mapped from a modified scale).
    exclusions
        One row per excluded measures row: ``row`` (the ``source_row``), ``column``,
        ``value`` (the first offending cell) and ``reason`` (every problem found).
    non_standard
        One row per problem per measure: ``measure, issue, n_rows, detail``. ``detail``
        gives example values, never identifiers.
    """

    measures: pd.DataFrame
    exclusions: pd.DataFrame
    non_standard: pd.DataFrame


def validate_items(
    measures: pd.DataFrame,
    *,
    variants: Mapping | None = None,
    max_missing_items: Mapping[str, int] | None = None,
) -> ItemCheck:
    """Check every measures row against its instrument and map declared scale variants.

    Parameters
    ----------
    measures
        The long measures table (``docs/data-contract.md``): ``measure``, ``source_row``
        and ``item_1`` … ``item_14`` (absent item columns count as blank); other columns
        are passed through (a ``variant`` column from an earlier check is kept).
    variants
        Measure name to :class:`spimpact.params.ScaleVariant` (``observed_min``,
        ``observed_max``, ``reason``). All rows of that measure are taken to be recorded
        on the observed range; the instrument's main items are mapped linearly onto the
        standard coding and rounded to the nearest whole response (halves up).
    max_missing_items
        Measure name to the number of required items that may be blank (default 0 for
        every measure). Use ``{"swemwbs": params.measures.swemwbs_max_missing_items}``
        for the opt-in SWEMWBS rule; scoring then imputes and flags the row.

    Returns
    -------
    ItemCheck
        ``measures`` (usable rows), ``exclusions`` and ``non_standard``.

    Raises
    ------
    ValueError
        If ``measure`` or ``source_row`` is missing, or a variant or missing-item rule
        names an unknown measure or is inconsistent.

    Notes
    -----
    Codings are those of ``docs/data-contract.md`` (SPEC §1). Items outside an
    instrument's coding are never clipped (SPEC §1.1 implementation rules); a variant is
    only mapped when the scheme declares it in params, so the change is visible.

    Examples
    --------
    >>> frame = pd.DataFrame({"measure": ["ucla3", "ucla3"], "source_row": [2, 3],
    ...                       "item_1": [1, 9], "item_2": [2, 2], "item_3": [3, 3]})
    >>> check = validate_items(frame)
    >>> check.measures["source_row"].tolist(), check.exclusions["row"].tolist()
    ([2], [3])
    """
    _check_columns(measures)
    variants = _check_variants(variants)
    max_missing = _check_max_missing(max_missing_items)

    frame = measures.reset_index(drop=True)  # a new frame: the caller's is not changed
    for column in ITEM_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.NA
    items_raw = frame[list(ITEM_COLUMNS)]
    answered = items_raw.apply(_is_answered).astype(bool)
    numeric = items_raw.apply(pd.to_numeric, errors="coerce").astype(float)
    whole = numeric.notna() & (np.mod(numeric.fillna(0), 1) == 0)

    problems: dict[int, list[tuple[str, object, str]]] = {}
    issues: list[dict] = []
    mapped = numeric.copy() if variants else numeric  # a copy only when items are mapped
    # Rows mapped by an earlier check keep their mark; mapping them again is refused.
    variant_reason = (
        frame["variant"].astype(object).where(frame["variant"].notna(), None)
        if "variant" in frame.columns
        else pd.Series([None] * len(frame), index=frame.index, dtype=object)
    )
    for name in variants:
        if variant_reason[frame["measure"] == name].notna().any():
            raise ValueError(
                f"measures rows of {name!r} were already mapped from a scale variant; "
                "check them again without variants"
            )

    known = frame["measure"].isin(list(INSTRUMENTS))
    blank = ~_is_answered(frame["measure"])
    names = frame["measure"].astype(str).where(~blank, "(blank)")
    for name, rows in frame.index[~known].groupby(names[~known]).items():
        for row in rows:
            value = None if name == "(blank)" else name
            _add(problems, row, "measure", value, _unknown_measure_reason(value))
        issues.append(
            _issue(
                name,
                "measure not given"
                if name == "(blank)"
                else "unknown measure: not an instrument spimpact scores",
                len(rows),
                "expected one of " + ", ".join(INSTRUMENTS),
            )
        )

    for name, instrument in INSTRUMENTS.items():
        rows = frame.index[frame["measure"] == name]
        if len(rows) == 0:
            continue
        variant = variants.get(name)
        issues.extend(
            _check_instrument(
                instrument,
                rows,
                items_raw,
                answered,
                numeric,
                whole,
                variant,
                max_missing.get(name, 0),
                problems,
            )
        )
        if variant is not None:
            usable = rows.difference(list(problems))
            columns = [item.column for item in instrument.main_items]
            mapped.loc[usable, columns] = _map_variant(
                numeric.loc[usable, columns], variant, instrument
            )
            variant_reason.loc[usable] = variant.reason
            if len(usable):
                issues.append(
                    _issue(
                        name,
                        f"recorded on a modified {variant.observed_min}–{variant.observed_max} "
                        f"scale; mapped to the standard {instrument.coding} coding as the "
                        "scheme's params declare",
                        len(usable),
                        f"reason given: {variant.reason}",
                    )
                )

    excluded = sorted(problems)
    kept = frame.drop(index=excluded) if excluded else frame
    for column in ITEM_COLUMNS:
        values = mapped[column] if not excluded else mapped.loc[kept.index, column]
        kept[column] = _to_int(values)
    kept["variant"] = variant_reason.loc[kept.index]
    return ItemCheck(
        measures=kept.reset_index(drop=True),
        exclusions=_exclusion_frame(frame, problems),
        non_standard=pd.DataFrame(issues, columns=list(NON_STANDARD_COLUMNS))
        .sort_values(["measure", "issue"], kind="stable")
        .reset_index(drop=True),
    )


def _check_instrument(
    instrument: Instrument,
    rows: pd.Index,
    items_raw: pd.DataFrame,
    answered: pd.DataFrame,
    numeric: pd.DataFrame,
    whole: pd.DataFrame,
    variant,
    max_missing: int,
    problems: dict,
) -> list[dict]:
    """Record every problem of this instrument's rows; return its per-measure issues."""
    name, issues = instrument.name, []
    own = set(instrument.columns)

    not_whole = answered.loc[rows] & ~whole.loc[rows]
    bad_rows = rows[not_whole.any(axis=1).to_numpy()]
    for row in bad_rows:
        for column in not_whole.columns[not_whole.loc[row].to_numpy()]:
            value = items_raw.at[row, column]
            _add(problems, row, column, value, f"{column} = {_show(value)} is not a whole number")
    if len(bad_rows):
        values = items_raw.loc[bad_rows].to_numpy()[not_whole.loc[bad_rows].to_numpy()]
        issues.append(
            _issue(
                name,
                "item responses that are not whole numbers",
                len(bad_rows),
                "values seen: " + _examples(values),
            )
        )

    extra = answered.loc[rows, [c for c in ITEM_COLUMNS if c not in own]]
    extra_rows = rows[extra.any(axis=1).to_numpy()]
    for row in extra_rows:
        columns = list(extra.columns[extra.loc[row].to_numpy()])
        _add(
            problems,
            row,
            columns[0],
            items_raw.at[row, columns[0]],
            f"{', '.join(columns)} filled but {instrument.label} has {len(instrument.items)} items",
        )
    if len(extra_rows):
        n_filled = int(extra.loc[extra_rows].sum(axis=1).max()) + len(instrument.items)
        issues.append(
            _issue(
                name,
                f"wrong item count: more items than the {len(instrument.items)} "
                f"{instrument.label} has",
                len(extra_rows),
                f"up to {n_filled} items filled" + _looks_like(instrument, n_filled),
            )
        )

    out_rows, out_values = [], []
    for item in instrument.items:
        low, high = item.low, item.high
        where = "the " + name + " coding"
        if variant is not None and item in instrument.main_items:
            low, high = variant.observed_min, variant.observed_max
            where = "the declared variant range"
        values = numeric.loc[rows, item.column]
        outside = whole.loc[rows, item.column] & ((values < low) | (values > high))
        for row in rows[outside.to_numpy()]:
            value = int(values.at[row])
            _add(
                problems,
                row,
                item.column,
                value,
                f"{item.column} = {_shown_number(value)} is outside {where} {low}–{high}",
            )
            out_rows.append(row)
            out_values.append((item, value))
    if out_rows:
        issues.append(_range_issue(instrument, rows, numeric, whole, out_rows, out_values, variant))

    required = [item.column for item in instrument.items if item.required]
    missing = ~answered.loc[rows, required]
    if instrument.min_answered is not None:
        n_answered = answered.loc[rows, list(instrument.columns)].sum(axis=1)
        short = rows[(n_answered < instrument.min_answered).to_numpy()]
        for row in short:
            _add(
                problems, row, instrument.columns[0], pd.NA, f"no {instrument.label} item answered"
            )
        if len(short):
            issues.append(_issue(name, "rows with no item answered", len(short), ""))
    else:
        n_missing = missing.sum(axis=1)
        short = rows[(n_missing > max_missing).to_numpy()]
        allowed = "all" if max_missing == 0 else f"all but {max_missing}"
        for row in short:
            columns = list(missing.columns[missing.loc[row].to_numpy()])
            _add(
                problems,
                row,
                columns[0],
                pd.NA,
                f"{', '.join(columns)} missing ({instrument.label} needs {allowed} of its "
                f"{len(required)} required items)",
            )
        if len(short):
            counts = missing.loc[short].sum(axis=0)
            counts = counts[counts > 0]
            issues.append(
                _issue(
                    name,
                    f"wrong item count: required items missing ({allowed} of "
                    f"{len(required)} needed)",
                    len(short),
                    ", ".join(f"{column} missing in {_rows(n)}" for column, n in counts.items()),
                )
            )
    return issues


def _range_issue(instrument, rows, numeric, whole, out_rows, out_values, variant) -> dict:
    """Describe items outside the coding, guessing the scale the scheme really used."""
    out_rows = sorted(set(out_rows))
    main = [item.column for item in instrument.main_items]
    seen = numeric.loc[out_rows, main].where(whole.loc[out_rows, main]).stack()
    outside = sorted({value for _, value in out_values})
    shown = list(dict.fromkeys(_shown_number(v) for v in outside))
    detail = f"values outside the coding: {', '.join(shown[:_N_EXAMPLES])}"
    if len(shown) > _N_EXAMPLES:
        detail += ", …"
    if WITHHELD in shown:
        detail += f" (values beyond ±{_SHOWN_LIMIT} are not shown)"
    if variant is not None:
        issue = (
            f"items outside the declared {variant.observed_min}–{variant.observed_max} "
            "variant range"
        )
    elif len(seen) and any(item in instrument.main_items for item, _ in out_values):
        observed_min, observed_max = int(seen.min()), int(seen.max())
        guess = _guess_coding(instrument, observed_min, observed_max)
        if guess is not None:
            issue = (
                f"items look like a {guess[0]}–{guess[1]} scale where {instrument.coding} "
                f"is expected (max observed {_shown_number(observed_max)})"
            )
        else:
            issue = (
                f"items outside the {instrument.coding} coding (observed "
                f"{_shown_number(observed_min)} to {_shown_number(observed_max)})"
            )
        if instrument.name in _SUMMED:
            totals = numeric.loc[out_rows, main].sum(axis=1)
            n_items = len(main)
            detail += (
                f"; totals up to {_shown_number(int(totals.max()))} where "
                f"{n_items * instrument.low}–"
                f"{n_items * instrument.high} is possible"
            )
    else:
        item = out_values[0][0]
        issue = f"{item.label} outside its {item.low}–{item.high} coding"
    return _issue(instrument.name, issue, len(out_rows), detail)


def _guess_coding(instrument: Instrument, observed_min: int, observed_max: int):
    """Return the narrowest common coding holding every value seen, if the values exceed the top."""
    if observed_max <= instrument.high or observed_min < 0:
        return None
    for low, high in _COMMON_CODINGS:
        if low <= observed_min and observed_max <= high and high > instrument.high:
            return low, high
    return None


def _looks_like(instrument: Instrument, n_filled: int) -> str:
    if instrument.name == "swemwbs" and n_filled == 14:
        return " (looks like the 14-item WEMWBS recorded as SWEMWBS)"
    return ""


def _map_variant(values: pd.DataFrame, variant, instrument: Instrument) -> pd.DataFrame:
    """Linear map of ``observed_min``–``observed_max`` onto the standard coding, halves up."""
    scale = (instrument.high - instrument.low) / (variant.observed_max - variant.observed_min)
    standard = instrument.low + (values - variant.observed_min) * scale
    # floor(x + 0.5) rounds halves up, whereas numpy's round sends 2.5 to 2 and 3.5 to 4.
    return np.floor(standard + 0.5 + 1e-9)


def _is_answered(column: pd.Series) -> pd.Series:
    blank = column.isna()
    if column.dtype == object or pd.api.types.is_string_dtype(column):
        blank |= column.astype("string").str.strip().fillna("").eq("")
    return ~blank


def _to_int(values: pd.Series) -> pd.Series:
    # built from the arrays: pandas' float-to-Int64 cast checks each value in Python
    floats = values.to_numpy(dtype=float).round()
    missing = np.isnan(floats)
    integers = np.where(missing, 0, floats).astype("int64")
    return pd.Series(pd.arrays.IntegerArray(integers, missing), index=values.index)


def _add(problems: dict, row, column: str, value, reason: str) -> None:
    problems.setdefault(row, []).append((column, value, reason))


def _unknown_measure_reason(name: str | None) -> str:
    what = "measure missing" if name is None else f"unknown measure {name!r}"
    return f"{what}; expected one of {', '.join(INSTRUMENTS)}"


def _issue(measure: str, issue: str, n_rows: int, detail: str) -> dict:
    return {"measure": measure, "issue": issue, "n_rows": int(n_rows), "detail": detail}


def _shown_number(value) -> str:
    """A value for a published description: a plausible answer on some scale, or withheld.

    Answers on any questionnaire scale have at most three digits; a longer number typed
    into an item (an NHS number, a date of birth as 19600201, a phone number) is never
    repeated.
    """
    if abs(float(value)) <= _SHOWN_LIMIT:
        return f"{float(value):g}"
    return WITHHELD


def _show(value) -> str:
    """Show a cell value as people read it: numbers plainly, text quoted, at most 20 characters.

    Numbers beyond ±999 and text with digits are withheld (``_shown_number``): they are
    not answers on any scale and may be an identifier (an NHS number, a date of birth)
    typed into the wrong field.
    """
    if isinstance(value, int | float | np.integer | np.floating):
        return _shown_number(value)
    text = str(value)
    return WITHHELD if re.search(r"\d", text) else repr(text[:20])


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _examples(values) -> str:
    distinct = sorted({_show(value) for value in values})
    text = ", ".join(distinct[:_N_EXAMPLES])
    return text + (", …" if len(distinct) > _N_EXAMPLES else "")


def _exclusion_frame(frame: pd.DataFrame, problems: dict) -> pd.DataFrame:
    records = []
    for row in sorted(problems):
        column, value, _ = problems[row][0]
        records.append(
            {
                "row": int(frame.at[row, "source_row"]),
                "column": column,
                "value": None if pd.isna(value) else _show(value).strip("'"),
                "reason": "; ".join(reason for _, _, reason in problems[row]),
            }
        )
    exclusions = pd.DataFrame(records, columns=list(EXCLUSION_COLUMNS))
    exclusions["row"] = exclusions["row"].astype("int64")
    return exclusions.sort_values("row", kind="stable").reset_index(drop=True)


def _check_columns(measures: pd.DataFrame) -> None:
    if not isinstance(measures, pd.DataFrame):
        raise ValueError(f"measures must be a pandas DataFrame, got {type(measures).__name__}")
    missing = [c for c in ("measure", "source_row") if c not in measures.columns]
    if missing:
        raise ValueError(f"measures table lacks column(s) {', '.join(missing)}")


def _check_variants(variants: Mapping | None) -> dict:
    variants = dict(variants or {})
    for name, variant in variants.items():
        if name not in INSTRUMENTS:
            raise ValueError(
                f"scale variant given for unknown measure {name!r}; expected one "
                f"of {', '.join(INSTRUMENTS)}"
            )
        for attribute in ("observed_min", "observed_max", "reason"):
            if not hasattr(variant, attribute):
                raise ValueError(
                    f"scale variant for {name!r} lacks {attribute!r}; pass a "
                    "spimpact.params.ScaleVariant"
                )
        if variant.observed_max <= variant.observed_min:
            raise ValueError(
                f"scale variant for {name!r}: observed_max "
                f"({variant.observed_max}) must exceed observed_min "
                f"({variant.observed_min})"
            )
    return variants


def _check_max_missing(max_missing_items: Mapping[str, int] | None) -> dict:
    max_missing = dict(max_missing_items or {})
    for name, n in max_missing.items():
        if name not in INSTRUMENTS:
            raise ValueError(f"max_missing_items names unknown measure {name!r}")
        if not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"max_missing_items[{name!r}] must be a whole number >= 0, got {n!r}")
        if n >= len(INSTRUMENTS[name].items):
            raise ValueError(f"max_missing_items[{name!r}] = {n} would allow a row with no answers")
    return max_missing
