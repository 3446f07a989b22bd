"""Reach by neighbourhood: referral rates per area against exact Poisson funnel limits.

Area counts are rounded by the disclosure rule; areas with 1 to 7 referrals, and the
next smallest where the total would reveal one, are hidden rather than merged, and
rates come from the rounded counts. Each area is placed against exact Poisson funnel
limits at 95% and 99.8% around the scheme average (Spiegelhalter 2005,
``spimpact.models.inequality.poisson_funnel_limits``). Boundaries for a map are read
when the scheme supplies them. The words and pictures are in
``spimpact.analyses.reach.area_section``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.analyses.reach.analysis import PER, catchment_population
from spimpact.boundaries import read_boundaries
from spimpact.io import SchemeData
from spimpact.models.inequality import poisson_funnel_limits
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import disclose_count, disclose_table
from spimpact.publish.section import InsufficientData

FUNNEL_LEVELS = (0.95, 0.998)


def tabulate_areas(clients: pd.DataFrame, population: pd.DataFrame, area_column: str):
    """Referrals and population per area (raw counts), areas from the population table.

    Returns the table (``area, population, n_referrals``, sorted by area) and the
    number of referrals from areas outside it.
    """
    if area_column not in clients.columns:
        raise InsufficientData(
            f"Client records have no {area_column!r} column, so reach by area cannot be shown."
        )
    denominators = population[population["dimension"] == area_column]
    if denominators.empty:
        raise InsufficientData(
            f"The catchment population has no rows for {area_column!r}, so area rates cannot "
            "be calculated."
        )
    counts = clients[area_column].astype("string").value_counts()
    areas = denominators[["category", "population"]].rename(columns={"category": "area"})
    areas = areas.assign(n_referrals=[int(counts.get(a, 0)) for a in areas["area"]])
    outside = int(len(clients) - areas["n_referrals"].sum())
    return areas.sort_values("area").reset_index(drop=True), outside


def funnel_positions(areas: pd.DataFrame, target_rate: float) -> pd.Series:
    """Where each area's rate per 1,000 lies against the funnel limits around ``target_rate``.

    ``"within limits"``, or ``"above (outside 95% limits)"`` ... ``"below (outside
    99.8% limits)"`` (the widest limits crossed); missing where the rate is.
    """
    position = pd.Series(pd.NA, index=areas.index, dtype="string")
    known = areas["rate"].notna()
    for level in FUNNEL_LEVELS:
        tail = (1 - level) / 2
        low = poisson_funnel_limits(target_rate, areas["population"], tail) * PER
        high = poisson_funnel_limits(target_rate, areas["population"], 1 - tail) * PER
        label = f"outside {100 * level:g}% limits"
        position[known & (areas["rate"] < low)] = f"below ({label})"
        position[known & (areas["rate"] > high)] = f"above ({label})"
    position[known & position.isna()] = "within limits"
    return position


@dataclass(frozen=True)
class AreaResult:
    """Referral rates by area with their funnel-plot positions.

    Attributes
    ----------
    area_column
        The client column that names each area (e.g. ``lsoa_code``).
    areas
        Disclosure-controlled ``area, population, n_referrals, rate, funnel_position``
        (rates per 1,000 from the rounded counts; hidden counts give hidden rates).
    target_rate
        The scheme average, referrals per person, from the rounded total.
    n_hidden
        Areas whose count is withheld.
    n_above, n_below
        Areas above and below the 99.8% funnel limits.
    n_outside_catchment, n_outside_catchment_published
        Referrals from areas not in the catchment table, exact and
        disclosure-controlled (missing when withheld).
    shapes
        Boundary rings per area (``spimpact.boundaries.read_boundaries``), or ``None``
        when the scheme supplied no boundaries.
    """

    area_column: str
    areas: pd.DataFrame
    target_rate: float
    n_hidden: int
    n_above: int
    n_below: int
    n_outside_catchment: int
    n_outside_catchment_published: int
    shapes: dict[str, list[np.ndarray]] | None


def analyse_areas(scheme: SchemeData, *, params: SchemeParams) -> AreaResult:
    """Referral rates per area, their funnel positions, and boundaries for a map if given.

    Boundaries come from ``params.boundaries`` or, failing that, ``boundaries.geojson``
    in the scheme's data folder. Raises ``InsufficientData`` without a catchment
    population by area or with too few referrals with a known area.
    """
    rule = params.disclosure.rule()
    population = catchment_population(scheme)
    raw, outside = tabulate_areas(scheme.clients, population, params.area_column)
    safe = disclose_table(raw, ["n_referrals"], rule, totals="columns")
    counts = safe["n_referrals"].astype("Float64")
    safe["rate"] = (counts / safe["population"] * PER).round(1)
    n_area_total = float(raw["n_referrals"].sum())
    total_safe = disclose_count([n_area_total], rule).astype(float).iloc[0]
    if pd.isna(total_safe) or raw["population"].sum() <= 0:
        raise InsufficientData("Too few referrals with a known area to show reach by area.")
    target = total_safe / float(raw["population"].sum())
    position = funnel_positions(safe, target)
    safe["funnel_position"] = position
    boundaries = params.boundaries
    if boundaries is None and (Path(scheme.data_dir) / "boundaries.geojson").exists():
        boundaries = Path(scheme.data_dir) / "boundaries.geojson"
    shapes = read_boundaries(boundaries, params.area_column) if boundaries is not None else None
    return AreaResult(
        area_column=params.area_column,
        areas=safe,
        target_rate=target,
        n_hidden=int(safe["n_referrals"].isna().sum()),
        n_above=int(position.str.startswith("above (outside 99.8").sum()),
        n_below=int(position.str.startswith("below (outside 99.8").sum()),
        n_outside_catchment=outside,
        n_outside_catchment_published=disclose_count([outside], rule).iloc[0],
        shapes=shapes,
    )
