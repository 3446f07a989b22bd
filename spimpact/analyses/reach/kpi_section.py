"""The "Scheme KPIs over time" section: engagement and completion control charts in words.

Turns a ``KpiResult`` (``spimpact.analyses.reach.kpis``) into text, one XmR chart and
one table per KPI.
"""

from __future__ import annotations

import pandas as pd

from spimpact.analyses.reach.kpis import COMPLETION_LAG_MONTHS, MIN_SPC_POINTS, analyse_kpis
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData, Section, Table

KPI_LABELS = {"engaged": "Engagement (any contact)", "completed": "Follow-up completion"}


def kpi_spc_section(scheme: SchemeData, scores: pd.DataFrame | None, *, params: SchemeParams):
    """Engagement and follow-up completion per referral cohort as XmR charts.

    For each month's referrals (quarters when months are too small): the percentage
    with any contact (engagement) and the percentage who completed (discharged as
    completed or gave a follow-up measure), each as a Making Data Count XmR chart with
    special-cause flags; higher is better. Percentages come from counts rounded to
    the nearest 5. The first and last periods are dropped as part-covered, and
    completion is charted only for cohorts referred at least
    ``COMPLETION_LAG_MONTHS`` months before the data end. Referral counts themselves
    are charted in the "Referrals over time" section.
    """
    rule = params.disclosure.rule()
    result = analyse_kpis(scheme, scores, params=params)
    text, tables, figures = [], [], []
    for kpi in result.charts:
        label, unit, chart = KPI_LABELS[kpi.stage], kpi.unit, kpi.chart
        if chart is None:
            text.append(
                f"{label} per {unit} is not charted: it needs at least {MIN_SPC_POINTS} "
                f"complete {unit}s with at least {rule.min_n_summary} referrals each."
            )
            continue
        ax = chart.plot(title=f"{label} (% of each {unit}'s referrals, XmR chart)", ylabel="%")
        figures.append(ax.figure)
        special = chart.points[chart.points["special_cause"]]
        rules = ", ".join(sorted(special["special_cause_type"].str.replace("_", " ").unique()))
        text.append(
            f"**{label}.** Mean {chart.mean:.0f}% of each {unit}'s referrals; natural process "
            f"limits {max(chart.lower, 0):.0f}% to {min(chart.upper, 100):.0f}%. "
            + (
                f"{len(special)} {unit}(s) show special-cause variation "
                f"({rules}); "
                f"the latest {unit} shows "
                + chart.variation.replace("_", " ").replace("special cause", "special-cause")
                + "."
                if len(special)
                else "No point shows special-cause variation: the process is stable."
            )
        )
        table = chart.points[
            ["date", "value", "mean", "lower", "upper", "special_cause_type", "point_type"]
        ].rename(columns={"value": "percent"})
        table["date"] = pd.to_datetime(table["date"]).dt.strftime("%Y-%m")
        for column in ("mean", "lower", "upper"):
            table[column] = table[column].round(1)
        tables.append(Table(f"kpi_{kpi.stage}_spc", f"{label} per {unit} with XmR limits", table))
    if not figures:
        raise InsufficientData(" ".join(text))
    typical = result.typical_referrals
    if 0 < typical < 100:
        # numerator and denominator each move by up to half the rounding base
        error = 100 * rule.rounding / typical
        text.append(
            f"With about {5 * round(typical / 5):.0f} referrals a month, rounding the counts "
            f"can move a monthly percentage by up to about {error:.0f} points, so only large "
            "changes will show as special causes."
        )
    text.append(
        "Percentages are computed from counts rounded to the nearest 5. The first and last "
        f"periods are left out as part-covered; completion is shown only for referrals made "
        f"at least {COMPLETION_LAG_MONTHS} months before the latest data, so that their "
        "follow-ups were due. Rules: a point outside the limits, 7 points in a row above or "
        "below the mean, 7 rising or falling, or 2 of 3 near a limit (NHS England, *Making "
        "Data Count*)."
    )
    return Section(
        title="Scheme KPIs over time",
        text=tuple(text),
        tables=tuple(tables),
        figures=tuple(figures),
    )
