"""Report content about refreshes: the "analysis plan changed" box and the refresh history.

``plan_change_section`` compares the run's analysis plan with the frozen plan (or,
without a lock, with the plan of the previous refresh) and returns a box listing each
difference, dated by the refresh in which the change first appeared.
``refresh_history_section`` shows how each headline moved across refreshes (a small
trend chart and "changed since last refresh" flags) and the data-maturity ratings per
refresh against the scheme's improvement goals. Both read only the publishable history
store (``spimpact.report.history``) and this run's own published results.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spimpact.analyses.maturity.tracking import goal_progress, rating_history
from spimpact.params import SchemeParams
from spimpact.publish.section import Section, Table
from spimpact.report.history import History, refresh_flags, trend_table
from spimpact.report.plan import plan_differences, plan_record, plan_sha256

PLAN_CHANGE_COLUMNS = ("item", "before", "after", "changed_on")
MAX_TREND_PANELS = 9


def plan_change(
    params: SchemeParams, previous: History, *, lock: dict | None, data_to: str | None
) -> pd.DataFrame:
    """Each plan item that differs from the reference plan (``PLAN_CHANGE_COLUMNS``).

    The reference is the frozen plan (``lock``) when there is one, else the plan of
    the previous refresh (none without history). ``changed_on`` is the label of the
    first refresh of the run of refreshes, ending with this one, that used this plan.
    """
    current = plan_record(params)
    if lock is not None:
        reference = lock["plan"]
    else:
        last = previous.last()
        if last is None:
            return pd.DataFrame(columns=list(PLAN_CHANGE_COLUMNS))
        reference = json.loads(last["plan_json"]) if last["plan_json"] else None
    differences = plan_differences(reference, current)
    changed_on = data_to or "this refresh"
    current_hash = plan_sha256(current) or ""
    for row in previous.refreshes.iloc[::-1].itertuples(index=False):
        if row.plan_sha256 != current_hash:
            break
        changed_on = row.data_to or changed_on
    return pd.DataFrame(
        [(*difference, changed_on) for difference in differences],
        columns=list(PLAN_CHANGE_COLUMNS),
    )


def plan_change_section(changes: pd.DataFrame, *, locked: bool) -> Section | None:
    """The prominent box for a changed analysis plan; ``None`` when nothing changed."""
    if changes.empty:
        return None
    date = changes["changed_on"].iloc[0]
    against = "the plan frozen with `spimpact plan freeze`" if locked else "the previous refresh"
    items = "; ".join(
        f"**{row.item}**: {row.before} → {row.after}" for row in changes.itertuples(index=False)
    )
    return Section(
        title=f"Analysis plan changed on {date}",
        text=(
            f"**The analysis plan changed on {date}** (the refresh with data to that date). "
            f"Compared with {against}, {len(changes)} item(s) differ: {items}.",
            "Results in this report follow the new plan. Results published before the "
            "change followed the old one, so a difference between them may come from the "
            "change of plan rather than from the scheme.",
        ),
        tables=(Table("analysis_plan_changes", "Analysis plan: items that changed", changes),),
    )


def refresh_history_section(
    previous: History,
    current: pd.DataFrame,
    *,
    data_to: str | None,
    records: dict | None,
    scorecard: pd.DataFrame | None,
    params: SchemeParams,
) -> Section:
    """How the headline results and data maturity moved across refreshes.

    Parameters
    ----------
    previous
        The stored refreshes before this one (``History.before``).
    current
        This run's headline rows (``HEADLINE_COLUMNS``, disclosure-controlled).
    data_to, records
        This refresh's label and its rows per table (rounded).
    scorecard
        This refresh's data-maturity scorecard, or ``None`` when it was not produced.
    params
        Improvement goals (``maturity.goals``).
    """
    label = data_to or "this refresh"
    trend = trend_table(previous, current, data_to or "")
    flags = refresh_flags(previous, current, records)
    last = previous.last()
    text, tables, figures = [], [], []
    if last is None:
        text.append(
            f"This is the first refresh recorded for this scheme (data to {label}). Each "
            "later run of `spimpact run` adds its results to the history, and this section "
            "then shows how each headline moved and flags what changed."
        )
    else:
        n_refreshes = len(previous.refreshes) + 1
        text.append(
            f"Refresh {n_refreshes} (data to {label}); the previous refresh had data to "
            f"{last['data_to'] or 'an unknown date'}. "
            + (
                f"**{len(flags)} change(s) since the last refresh are flagged**: an estimate "
                "outside the previous refresh's confidence interval, fewer people behind a "
                "result, a result new or no longer reported, or fewer rows in the data."
                if len(flags)
                else "No result moved beyond the previous refresh's confidence interval and "
                "the data did not shrink."
            )
        )
        if len(flags):
            tables.append(Table("refresh_flags", "Changed since the last refresh", flags))
        figure = trend_figure(trend)
        if figure is not None:
            figures.append(figure)
    tables.append(
        Table("refresh_trend", "Headline results at each refresh (estimate and interval)", trend)
    )
    if scorecard is not None and len(scorecard):
        history = rating_history(previous.maturity, scorecard, data_to=data_to)
        tables.append(
            Table("maturity_history", "Data-maturity rating of each check at each refresh", history)
        )
        goals = params.maturity.goals
        if goals:
            progress = goal_progress(scorecard, goals, data_to=data_to)
            tables.append(Table("maturity_goals", "Data-maturity improvement goals", progress))
            met = int((progress["status"] == "met").sum())
            text.append(
                f"{met} of {len(progress)} data-maturity improvement goals are met at this "
                "refresh (goals are set in params under `maturity: goals:`; NHS England's "
                "social prescribing maturity framework asks ICBs to review them six-monthly)."
            )
        else:
            text.append(
                "No data-maturity improvement goals are set; a scheme can set six-monthly "
                "goals in params under `maturity: goals:` (check, target_percent, by)."
            )
    return Section(
        title="Changes since the last refresh",
        text=tuple(text),
        tables=tuple(tables),
        figures=tuple(figures),
    )


def trend_figure(trend: pd.DataFrame, *, max_panels: int = MAX_TREND_PANELS):
    """Small multiples: each headline's estimate and interval at every refresh.

    Only headlines reported at two or more refreshes are drawn (at most
    ``max_panels``); ``None`` when there are none.
    """
    keys = trend.dropna(subset=["estimate"]).groupby(["measure", "outcome", "method"], sort=True)
    panels = [(key, group) for key, group in keys if group["refresh"].nunique() >= 2]
    panels = panels[:max_panels]
    if not panels:
        return None
    n_cols = min(3, len(panels))
    n_rows = int(np.ceil(len(panels) / n_cols))
    fig = Figure(figsize=(3.4 * n_cols, 2.4 * n_rows))
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax, ((_, outcome, _), group) in zip(axes, panels, strict=False):
        x = np.arange(len(group))
        estimate = group["estimate"].to_numpy(float)
        low = group["conf_low"].to_numpy(float)
        high = group["conf_high"].to_numpy(float)
        has = ~(np.isnan(low) | np.isnan(high))
        ax.vlines(x[has], low[has], high[has], color="0.4")
        ax.plot(x, estimate, marker="o", color="#005EB8")
        ax.set_xticks(x)
        ax.set_xticklabels(group["data_to"].fillna("").astype(str), fontsize=7, rotation=30)
        ax.set_title(_short(outcome), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle("Headline results at each refresh (data to date; bars: interval)", fontsize=9)
    fig.tight_layout()
    return fig


def _short(text: str, limit: int = 48) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
