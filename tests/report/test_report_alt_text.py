"""Alt text is read back from what a figure plots."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spimpact.publish.section import HEADLINE_COLUMNS
from spimpact.report.alt_text import describe_figure, figure_alt


def test_bars_name_the_highest_and_lowest():
    fig = Figure()
    ax = fig.subplots()
    ax.barh(["gp", "self", "vcse"], [85, 10, 20])
    ax.set_title("Where referrals came from")
    fig.canvas.draw()
    assert describe_figure(fig) == (
        "Where referrals came from: 3 bars from 10 to 85; highest gp (85), lowest self (10)."
    )


def test_error_bars_list_estimates_and_reference_lines_are_ignored():
    fig = Figure()
    ax = fig.subplots()
    ax.errorbar([1.2, 0.8], [0, 1], xerr=[[0.1, 0.1], [0.2, 0.2]], fmt="o")
    ax.set_yticks([0, 1], ["Age 16-24", "Age 75+"])
    ax.axvline(1.0)
    fig.canvas.draw()
    assert describe_figure(fig) == "2 estimates with intervals: Age 16-24 1.20, Age 75+ 0.80."


def test_headline_finding_is_added_and_follows_the_interval():
    fig = Figure()
    ax = fig.subplots()
    ax.plot(pd.to_datetime(["2024-01-01", "2024-06-01"]), [10, 30], label="Referrals")
    fig.canvas.draw()
    headline = pd.DataFrame(
        [("person", "SWEMWBS change", "swemwbs_metric", 2.0, 0.4, 1.2, 2.8, 40, "m", 0.95)],
        columns=list(HEADLINE_COLUMNS),
    )
    alt = figure_alt(fig, title="Wellbeing", headline=headline)
    assert "Referrals goes from 10 at Jan 2024 to 30 at Jun 2024" in alt
    assert "an increase of 2 among 40 people" in alt and "rules out no change" in alt
    no_interval = headline.assign(conf_low=np.nan, conf_high=np.nan)
    assert "rules out" not in figure_alt(fig, title="Wellbeing", headline=no_interval)


def test_maps_give_the_range_of_shaded_values():
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    fig = Figure()
    ax = fig.subplots()
    areas = PatchCollection([Rectangle((i, 0), 1, 1) for i in range(3)])
    areas.set_array(np.array([2.0, 8.0, np.nan]))
    ax.add_collection(areas)
    ax.set_title("Referrals per 1,000 by area")
    assert describe_figure(fig) == (
        "Referrals per 1,000 by area: 3 shaded areas, values from 2 to 8 (median 5)."
    )
