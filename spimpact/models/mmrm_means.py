"""Reference grids of an MMRM: estimated marginal means in emmeans' conventions.

A marginal mean at a level of the focal variable is the average of model
predictions over a grid of the other covariates (Searle, Speed & Milliken 1980;
Lenth, R package emmeans): numeric covariates are held at their mean over the
rows used in the fit, and the levels of the other categorical covariates are
averaged either with equal weights (``weights="equal"``, emmeans' default and
SAS ``LSMEANS``) or in proportion to how often each combination of them occurs
among the rows used in the fit (``weights="proportional"``, emmeans'
``weights = "proportional"``, SAS ``OBSMARGINS``).
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import patsy

WEIGHTINGS = ("equal", "proportional")


def describe_variables(frame: pd.DataFrame, names, formula: str) -> dict:
    """How each covariate enters a reference grid: its levels in order, or its mean."""
    rhs = formula.split("~", 1)[1]
    out = {}
    for name in names:
        column = frame[name]
        as_factor = re.search(rf"C\(\s*{re.escape(name)}\b", rhs) is not None
        if isinstance(column.dtype, pd.CategoricalDtype):
            present = set(column.unique())
            levels = [level for level in column.cat.categories if level in present]
            out[name] = {"kind": "categorical", "levels": levels}
        elif as_factor or not pd.api.types.is_numeric_dtype(column) or column.dtype == bool:
            out[name] = {"kind": "categorical", "levels": sorted(column.unique().tolist())}
        else:
            out[name] = {"kind": "numeric", "mean": float(column.mean())}
    return out


def as_design_frame(frame: pd.DataFrame, variables: dict) -> pd.DataFrame:
    """``frame`` with every categorical covariate a pandas categorical of its levels."""
    out = frame.copy()
    for name, info in variables.items():
        if info["kind"] == "categorical":
            out[name] = pd.Categorical(out[name], categories=info["levels"])
    return out


def check_variable(variables: dict, name: str, formula: str, role: str) -> None:
    """Raise unless ``name`` is a categorical variable of the fixed-effects formula."""
    if name not in variables:
        raise ValueError(
            f"{role} {name!r} is not a variable of the fixed-effects formula {formula!r}; "
            f"variables are {sorted(variables)}"
        )
    if variables[name]["kind"] != "categorical":
        raise ValueError(
            f"{role} {name!r} is numeric in {formula!r}: marginal means need a categorical "
            f"variable (wrap it in C({name}) in the formula to treat it as one)"
        )


def grid_rows(
    design_info,
    variables: dict,
    term: str,
    *,
    by: str | None = None,
    by_level=None,
    weights: str = "equal",
    observed: pd.DataFrame | None = None,
) -> tuple[list, np.ndarray]:
    """Focal levels and the contrast rows (one per level) giving their marginal means.

    ``observed`` holds the categorical covariates of the rows used in the fit; it
    sets the weights when ``weights="proportional"``.
    """
    if weights not in WEIGHTINGS:
        raise ValueError(f"weights must be one of {list(WEIGHTINGS)}, got {weights!r}")
    focal_levels = list(variables[term]["levels"])
    others = {k: v for k, v in variables.items() if k not in (term, by)}
    categorical = {k: v["levels"] for k, v in others.items() if v["kind"] == "categorical"}
    numeric = {k: v["mean"] for k, v in others.items() if v["kind"] == "numeric"}
    combos = list(itertools.product(*categorical.values())) or [()]
    grid = pd.DataFrame(combos, columns=list(categorical))
    if weights == "equal" or not categorical:
        combo_weights = np.full(len(grid), 1.0 / len(grid))
    else:
        counts = observed.groupby(list(categorical), observed=True).size()
        keys = [tuple(row) if len(categorical) > 1 else row[0] for row in combos]
        combo_weights = np.array([float(counts.get(key, 0)) for key in keys])
        combo_weights = combo_weights / combo_weights.sum()
    rows = []
    for level in focal_levels:
        frame = grid.copy()
        frame[term] = [level] * len(frame)
        if by is not None:
            frame[by] = [by_level] * len(frame)
        for name, mean in numeric.items():
            frame[name] = mean
        frame = as_design_frame(frame, {k: v for k, v in variables.items() if k in frame})
        (design,) = patsy.build_design_matrices([design_info], frame)
        rows.append(combo_weights @ np.asarray(design))
    return focal_levels, np.vstack(rows)
