"""Published scoring tables shipped as package data (``spimpact/data``, see its README)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import pandas as pd


def _read(name: str, **kwargs) -> pd.DataFrame:
    with files("spimpact").joinpath("data", name).open("rb") as handle:
        return pd.read_csv(handle, **kwargs)


@cache
def swemwbs_conversion() -> pd.Series:
    """Return the SWEMWBS raw-to-metric table as a Series indexed by raw total (7–35)."""
    table = _read("swemwbs_raw_to_metric.csv")
    return table.set_index("raw_score")["metric_score"]


@cache
def eq5d_decrements() -> pd.DataFrame:
    """Return value-set decrements: columns ``value_set, term, decrement``."""
    return _read("eq5d_value_set_decrements.csv")


@cache
def eq5d_crosswalk() -> pd.Series:
    """Return the van Hout (2012) crosswalk value indexed by 5L state string."""
    table = _read("eq5d5l_crosswalk_3l_uk_vanhout2012.csv", dtype={"state": str})
    return table.set_index("state")["crosswalk_eq5d3l_uk_vanhout2012"]


@cache
def eq5d_dsu() -> pd.Series:
    """Return the NICE DSU 5L-to-3L values indexed by (state, age_band, sex)."""
    table = _read("eq5d5l_dsu_3l_uk_hernandez2023.csv", dtype={"state": str})
    return table.set_index(["state", "age_band", "sex"])["mapped_eq5d3l_uk"]
