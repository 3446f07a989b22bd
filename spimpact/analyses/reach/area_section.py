"""The "Reach by area" section: a map when boundaries are given, else a funnel plot.

Turns an ``AreaResult`` (``spimpact.analyses.reach.areas``) into text, the area table
and one picture.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.analyses.reach.analysis import PER
from spimpact.analyses.reach.areas import FUNNEL_LEVELS, analyse_areas
from spimpact.analyses.reach.section import count_words
from spimpact.io import SchemeData
from spimpact.models.inequality import poisson_funnel_limits
from spimpact.params import SchemeParams
from spimpact.publish.section import Section, Table


def area_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Reach by neighbourhood: a choropleth map when boundaries are given, else a funnel plot.

    Area counts are rounded to 5; areas with 1 to 7 referrals, and the next smallest
    where the total would reveal one, are hidden (hatched on the map, left off the
    funnel plot) rather than merged, and rates come from the rounded counts. The
    funnel plot's limits are exact Poisson limits at 95% and 99.8% around the scheme
    average (Spiegelhalter 2005); it is not a league table.
    """
    result = analyse_areas(scheme, params=params)
    areas = result.areas
    column = result.area_column
    title = f"Referrals per 1,000 population by {column.replace('_', ' ')}"
    text = [
        f"Referral rates in {len(areas)} areas ({column}). Counts are rounded to "
        f"the nearest 5; {result.n_hidden} area(s) with 1 to 7 referrals (or whose count the "
        "total would reveal) are hidden, not merged, and rates use the rounded counts. Hidden "
        "areas have few referrals, so they may be among those the scheme reaches least.",
    ]
    if result.shapes is not None:
        figure = _plot_map(areas, result.shapes, title)
        unmapped = sorted(set(areas["area"]) - set(result.shapes))
        text.append(
            "The map shades each area by its referral rate; hatched areas are hidden."
            + (f" {len(unmapped)} area(s) have no boundary and are not drawn." if unmapped else "")
        )
    else:
        figure = _plot_funnel(areas, result.target_rate, title)
        text.append(
            "The funnel plot shows each area's rate against its population, with the range "
            "expected from chance alone around the scheme average (95% and 99.8% limits): "
            "areas outside the 99.8% limits differ by more than chance."
        )
    text.append(
        f"Against exact Poisson funnel limits (Spiegelhalter 2005), {result.n_above} area(s) "
        f"have more referrals and {result.n_below} fewer than chance around the scheme average "
        "would explain at the 99.8% level; the latter may be neighbourhoods the scheme is "
        "missing."
    )
    if result.n_outside_catchment:
        text.append(
            f"About {count_words(result.n_outside_catchment_published)} referrals come "
            "from areas outside the catchment table and are not shown."
        )
    table = areas.assign(population=areas["population"].astype("Int64"))
    return Section(
        title="Reach by area",
        text=tuple(text),
        tables=(Table("reach_areas", f"{title}, with funnel-plot position", table),),
        figures=(figure,),
    )


def _plot_map(areas: pd.DataFrame, shapes: dict, title: str):
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Polygon

    fig, ax = plt.subplots(figsize=(7, 6))
    shown = areas[areas["rate"].notna()]
    cmap = plt.get_cmap("Blues")
    vmax = float(shown["rate"].max()) if len(shown) else 1.0
    patches, colours, hidden = [], [], []
    for area, rate in zip(areas["area"], areas["rate"], strict=True):
        for ring in shapes.get(str(area), []):
            polygon = Polygon(ring, closed=True)
            if pd.isna(rate):
                hidden.append(polygon)
            else:
                patches.append(polygon)
                colours.append(float(rate))
    collection = PatchCollection(patches, cmap=cmap, edgecolor="white", linewidth=0.5)
    collection.set_array(np.asarray(colours))
    collection.set_clim(0, vmax)
    ax.add_collection(collection)
    ax.add_collection(
        PatchCollection(hidden, facecolor="#e8edee", edgecolor="white", hatch="///", linewidth=0.5)
    )
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.colorbar(collection, ax=ax, label="Referrals per 1,000 population", shrink=0.7)
    ax.set_title(title)
    return fig


def _plot_funnel(areas: pd.DataFrame, target_rate: float, title: str):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    shown = areas[areas["rate"].notna()]
    n = np.linspace(max(areas["population"].min() * 0.8, 1), areas["population"].max() * 1.1, 200)
    for level, style in zip(FUNNEL_LEVELS, ("--", ":"), strict=True):
        tail = (1 - level) / 2
        for p in (tail, 1 - tail):
            ax.plot(
                n,
                poisson_funnel_limits(target_rate, n, p) * PER,
                color="#425563",
                linestyle=style,
                linewidth=1,
                label=f"{100 * level:g}% limits" if p == tail else None,
            )
    ax.axhline(target_rate * PER, color="black", linewidth=1, label="Scheme average")
    ax.scatter(shown["population"], shown["rate"], color="#005eb8", s=18, zorder=3)
    ax.set_xlabel("Area population")
    ax.set_ylabel("Referrals per 1,000 population")
    ax.set_title(title)
    ax.legend(fontsize="small", frameon=False)
    return fig
