"""Formulas of the mixed model: the columns they name, the random terms, the reference grid.

Helpers of :func:`spimpact.models.mixed.fit_mixed`: which columns a patsy formula
uses, whether a random-effects formula fits the exact fast path, and how each
covariate enters the emmeans-style reference grid of marginal means.
"""

from __future__ import annotations

import re

import pandas as pd

# A column name as it can appear in a formula (patsy allows dots).
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def random_terms(re_formula: str | None) -> list[str] | None:
    """Slope names for the fast path, or ``None`` when the structure needs statsmodels."""
    if re_formula is None:
        return []
    terms = [t.strip() for t in re_formula.replace("~", "").split("+") if t.strip()]
    if any(t in ("0", "-1") or "-" in t for t in terms):
        return None
    slopes = [t for t in terms if t != "1"]
    if not all(IDENTIFIER.fullmatch(t) for t in slopes):
        return None
    return slopes


def formula_variables(formula: str, data: pd.DataFrame) -> list[str]:
    """Columns of ``data`` named in ``formula``, response first."""
    lhs, rhs = formula.split("~", 1)
    found = []
    for side in (lhs, rhs):
        for name in IDENTIFIER.findall(side):
            if name in data.columns and name not in found:
                found.append(name)
    response = [n for n in IDENTIFIER.findall(lhs) if n in data.columns]
    if not response:
        raise ValueError(f"the response of {formula!r} is not a column of data")
    return found


def as_categories(frame: pd.DataFrame, grid_levels: dict) -> pd.DataFrame:
    """``frame`` with each categorical covariate a pandas categorical of its grid levels."""
    out = frame.copy()
    for name, info in grid_levels.items():
        if info["kind"] == "categorical":
            out[name] = pd.Categorical(out[name], categories=info["levels"])
    return out


def grid_levels(frame: pd.DataFrame, variables, formula: str) -> dict:
    """How each covariate enters a reference grid: its levels, or its mean."""
    rhs = formula.split("~", 1)[1]
    out = {}
    for name in variables:
        as_factor = re.search(rf"C\(\s*{re.escape(name)}\b", rhs) is not None
        column = frame[name]
        if as_factor or not pd.api.types.is_numeric_dtype(column) or column.dtype == bool:
            out[name] = {"kind": "categorical", "levels": sorted(column.unique().tolist())}
        else:
            out[name] = {
                "kind": "numeric",
                "levels": sorted(column.unique().tolist()),
                "mean": float(column.mean()),
            }
    return out
