"""EQ-5D: the 5L index under each supported value set, the 3L UK index and EQ-VAS.

Which value set is used is always stated in the report; the default follows the
current NICE reference case (PMG36: the NICE DSU mapping of 5L onto the 3L UK value set).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.scoring._frames import long_scores
from spimpact.scoring.instruments import INSTRUMENTS
from spimpact.scoring.tables import eq5d_crosswalk, eq5d_decrements, eq5d_dsu

DIMENSIONS = ("MO", "SC", "UA", "PD", "AD")
EQ5D_VALUE_SETS = {
    "dsu_5l_to_3l": (
        "EQ-5D-5L mapped onto the EQ-5D-3L UK value set with the NICE Decision Support Unit "
        "age- and sex-specific mapping (Hernández Alava, Pudney & Wailoo 2023), the NICE "
        "reference case since the 2022 methods manual (PMG36)"
    ),
    "england_devlin2018": (
        "EQ-5D-5L value set for England (Devlin et al. 2018), which NICE does not recommend "
        "(position statement, 2019)"
    ),
    "uk_rowen2026": (
        "EQ-5D-5L UK value set (Rowen et al. 2026), proposed for the NICE reference case in "
        "consultation 3296 (not adopted at the time of writing)"
    ),
    "vanhout_crosswalk": (
        "van Hout et al. (2012) crosswalk of EQ-5D-5L onto the EQ-5D-3L UK value set, which "
        "NICE replaced by the DSU mapping in 2022"
    ),
}
DSU_AGE_BANDS = ("18-34", "35-44", "45-54", "55-64", "65+")
# Client age bands (data contract) that lie wholly inside one DSU band.
_CLIENT_TO_DSU_BAND = {
    "25-34": "18-34",
    "35-44": "35-44",
    "45-54": "45-54",
    "55-64": "55-64",
    "65-74": "65+",
    "75+": "65+",
}


def eq5d5l_index(states, *, value_set: str, age=None, sex=None):
    """Return the EQ-5D-5L index of each health state under ``value_set``.

    Parameters
    ----------
    states
        A state (``"12345"`` or ``12345``), an array of them, or a table with five
        columns in the order mobility, self-care, usual activities, pain/discomfort,
        anxiety/depression (levels 1–5). Missing states give NaN.
    value_set
        ``dsu_5l_to_3l`` (NICE DSU mapping onto the 3L UK value set; needs ``age`` and
        ``sex``), ``england_devlin2018``, ``uk_rowen2026`` or ``vanhout_crosswalk``.
    age
        For ``dsu_5l_to_3l``: age in years (18 and over) or an age band (``18-34``,
        ``35-44``, ``45-54``, ``55-64``, ``65+``, or a client band that lies inside one of
        them), one per state or a single value for all.
    sex
        For ``dsu_5l_to_3l``: ``male`` or ``female``, one per state or one for all.

    Returns
    -------
    float or numpy.ndarray

    Raises
    ------
    ValueError
        For an unknown value set, an invalid state, or a missing or unusable age or sex
        for the DSU mapping.

    Notes
    -----
    England: Devlin NJ et al. Health Econ 2018;27(1):7-22. UK: Rowen D et al. Value Health
    2026. Both ``1 − Σ decrements``. Crosswalk: van Hout B et al. Value Health
    2012;15(5):708-15. DSU: Hernández Alava M, Pudney S, Wailoo A. Pharmacoeconomics
    2023;41(2):199-207 (expected 3L value given the 5L state, age band and sex, so state
    11111 maps to about 0.985, not 1). Tables as in the ``eq5d`` R package (SPEC §1.5).

    Examples
    --------
    >>> eq5d5l_index("21232", value_set="england_devlin2018")
    0.73
    >>> round(eq5d5l_index("11111", value_set="dsu_5l_to_3l", age=50, sex="female"), 3)
    0.985
    """
    if value_set not in EQ5D_VALUE_SETS:
        raise ValueError(
            f"unknown EQ-5D value set {value_set!r}; expected one of {', '.join(EQ5D_VALUE_SETS)}"
        )
    scalar, codes, missing = _parse_states(states, levels=5)
    index = np.full(len(codes), np.nan)
    keep = ~missing
    if value_set in ("england_devlin2018", "uk_rowen2026"):
        index[keep] = _additive_index(codes[keep], value_set)
    elif value_set == "vanhout_crosswalk":
        index[keep] = eq5d_crosswalk().loc[codes[keep]].to_numpy()
    else:
        bands = _broadcast(dsu_age_band(age), len(codes), "age")
        sexes = _broadcast(_dsu_sex(sex), len(codes), "sex")
        keys = list(zip(codes[keep], bands[keep], sexes[keep], strict=True))
        index[keep] = eq5d_dsu().loc[keys].to_numpy()
    return float(index[0]) if scalar else index


def eq5d3l_index(states):
    """Return the EQ-5D-3L UK TTO index (Dolan 1997) of each 3L health state.

    Parameters
    ----------
    states
        As for :func:`eq5d5l_index`, with levels 1–3.

    Notes
    -----
    Dolan P. Med Care 1997;35(11):1095-108: ``1 − 0.081·[any level > 1] − 0.269·[any
    level = 3] − Σ decrements`` (SPEC §1.5); range −0.594 (33333) to 1.

    Examples
    --------
    >>> eq5d3l_index("22222")
    0.516
    """
    scalar, codes, missing = _parse_states(states, levels=3)
    index = np.full(len(codes), np.nan)
    if (~missing).any():
        levels = _levels(codes[~missing])
        decrements = eq5d_decrements()
        table = decrements[decrements["value_set"] == "uk_3l_dolan1997"].set_index("term")[
            "decrement"
        ]
        value = 1 - _sum_decrements(levels, table)
        value -= table["constant"] * (levels > 1).any(axis=1)
        value -= table["N3"] * (levels == 3).any(axis=1)
        index[~missing] = np.round(value, 3)
    return float(index[0]) if scalar else index


def dsu_age_band(age):
    """Map ages (years) or age bands to the NICE DSU mapping's age bands.

    Ages of 18 and over are banded 18-34, 35-44, 45-54, 55-64, 65+ (everyone over 64,
    including the few over 100 that the ``eq5d`` R package refuses, is in the open 65+
    band). A client band is accepted when it lies inside one DSU band; ``16-24`` does not,
    so it needs the age in years. Missing values stay ``None``.

    Raises
    ------
    ValueError
        For an age under 18 or a band that does not fit one DSU band.
    """
    values = np.atleast_1d(np.asarray(age, dtype=object)) if age is not None else np.array([None])
    bands = []
    for value in values:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            bands.append(None)
        elif isinstance(value, str):
            band = value if value in DSU_AGE_BANDS else _CLIENT_TO_DSU_BAND.get(value)
            if band is None:
                raise ValueError(
                    f"age band {value!r} does not lie inside one NICE DSU mapping band "
                    f"({', '.join(DSU_AGE_BANDS)}); give the age in years"
                )
            bands.append(band)
        else:
            years = float(value)
            if years < 18:
                raise ValueError(f"age {years:g}: the NICE DSU mapping covers ages 18 and over")
            edges = (35, 45, 55, 65)
            bands.append(DSU_AGE_BANDS[int(np.searchsorted(edges, years, side="right"))])
    return np.array(bands, dtype=object)


def score_eq5d5l(
    items: pd.DataFrame, *, value_set: str, age=None, sex=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score checked EQ-5D-5L rows: ``eq5d5l_index`` under ``value_set`` and ``eq5d_vas``.

    Returns
    -------
    (scores, unscored)
        ``scores``: the long score frame; ``unscored``: ``index, column, value, reason``
        for rows whose index could not be computed (the DSU mapping needs an adult age and
        male/female sex). EQ-VAS is scored whenever it was answered; it is never combined
        with the index (SPEC §1.5).
    """
    columns = list(INSTRUMENTS["eq5d5l"].columns[:5])
    states = items[columns].astype("Int64").astype(str).agg("".join, axis=1).to_numpy()
    usable = np.ones(len(items), dtype=bool)
    unscored = []
    if value_set == "dsu_5l_to_3l":
        age = _aligned(age, items.index)
        sex = _aligned(sex, items.index)
        for position, (row, a, s) in enumerate(zip(items.index, age, sex, strict=True)):
            reason = _dsu_problem(a, s)
            if reason is not None:
                usable[position] = False
                column = "sex" if reason.startswith("sex") else "age"
                value = s if column == "sex" else a
                unscored.append(
                    {
                        "index": row,
                        "column": column,
                        "value": None if pd.isna(value) else str(value),
                        "reason": reason,
                    }
                )
        index = np.full(len(items), np.nan)
        if usable.any():
            index[usable] = eq5d5l_index(
                states[usable], value_set=value_set, age=age[usable], sex=sex[usable]
            )
    else:
        index = eq5d5l_index(states, value_set=value_set)
    vas = items["item_6"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    has_vas = ~np.isnan(vas)
    scores = pd.concat(
        [
            long_scores(items.index[usable], "eq5d5l_index", index[usable]),
            long_scores(items.index[has_vas], "eq5d_vas", vas[has_vas]),
        ],
        ignore_index=True,
    )
    return scores, pd.DataFrame(unscored, columns=["index", "column", "value", "reason"])


def _dsu_problem(age, sex) -> str | None:
    why = " (NICE DSU mapping); choose another value set in params to score this row"
    if age is None or (not isinstance(age, str) and pd.isna(age)):
        return "age and age band missing" + why
    try:
        dsu_age_band(age)
    except ValueError as error:
        return str(error) + why
    if sex is None or pd.isna(sex) or str(sex).lower() not in ("male", "female"):
        return f"sex {sex!r} is not male or female" + why
    return None


def _aligned(values, index: pd.Index) -> np.ndarray:
    if values is None:
        return np.array([None] * len(index), dtype=object)
    if isinstance(values, pd.Series):
        return values.reindex(index).astype(object).to_numpy()
    return _broadcast(np.atleast_1d(np.asarray(values, dtype=object)), len(index), "value")


def _dsu_sex(sex) -> np.ndarray:
    values = np.atleast_1d(np.asarray(sex, dtype=object)) if sex is not None else np.array([None])
    out = []
    for value in values:
        text = None if value is None or pd.isna(value) else str(value).strip().lower()
        if text not in ("male", "female"):
            raise ValueError(
                f"sex {value!r}: the NICE DSU mapping needs 'male' or 'female' for every state"
            )
        out.append(text)
    return np.array(out, dtype=object)


def _broadcast(values: np.ndarray, n: int, what: str) -> np.ndarray:
    if len(values) == 1:
        values = np.repeat(values, n)
    if len(values) != n:
        raise ValueError(f"{what}: got {len(values)} values for {n} states")
    if what == "age" and any(v is None for v in values):
        raise ValueError("age: the NICE DSU mapping needs an age or age band for every state")
    return values


def _parse_states(states, *, levels: int) -> tuple[bool, np.ndarray, np.ndarray]:
    """Return (scalar?, state strings, missing mask), checking every given state."""
    if isinstance(states, pd.DataFrame) or np.ndim(states) == 2:
        table = pd.DataFrame(states)
        if table.shape[1] != 5:
            raise ValueError(f"a table of EQ-5D states needs 5 columns, got {table.shape[1]}")
        missing = table.isna().any(axis=1).to_numpy()
        codes = np.array(
            [
                "" if gap else "".join(str(int(float(v))) for v in row)
                for gap, row in zip(missing, table.to_numpy(dtype=object), strict=True)
            ],
            dtype=object,
        )
        scalar = False
    else:
        scalar = np.ndim(states) == 0
        flat = pd.Series(np.atleast_1d(np.asarray(states, dtype=object)))
        missing = flat.isna().to_numpy()
        codes = np.array(
            ["" if gap else str(v).strip() for gap, v in zip(missing, flat, strict=True)],
            dtype=object,
        )
    allowed = set("12345"[:levels])
    for code in codes[~missing]:
        if len(code) != 5 or not set(code) <= allowed:
            raise ValueError(
                f"EQ-5D state {code!r} is not 5 digits each from 1 to {levels} "
                "(mobility, self-care, usual activities, pain/discomfort, anxiety/depression)"
            )
    return scalar, codes, missing


def _levels(codes: np.ndarray) -> np.ndarray:
    return np.array([[int(c) for c in code] for code in codes], dtype=int).reshape(-1, 5)


def _sum_decrements(levels: np.ndarray, table: pd.Series) -> np.ndarray:
    total = np.zeros(len(levels))
    for position, dimension in enumerate(DIMENSIONS):
        level = levels[:, position]
        decrement = np.array(
            [0.0 if lv == 1 else table[f"{dimension}{lv}"] for lv in level], dtype=float
        )
        total += decrement
    return total


def _additive_index(codes: np.ndarray, value_set: str) -> np.ndarray:
    decrements = eq5d_decrements()
    table = decrements[decrements["value_set"] == value_set].set_index("term")["decrement"]
    # The published value sets are reported to 3 decimals; rounding removes float residue
    # (e.g. 0.7300000000000001) without changing any value, as decrements have 3 decimals.
    return np.round(1 - _sum_decrements(_levels(codes), table), 3)
