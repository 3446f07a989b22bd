"""The ICB page's "Since the last refresh" part (issue 17).

Reads only what the scheme reports published (``tables/analysis_plan_changes.csv``,
``refresh_flags.csv``, ``refresh_trend.csv``): schemes whose analysis plan changed are
marked, flagged results listed and the headlines of each scheme with two or more
refreshes drawn across them. Every value is escaped; figures are embedded PNGs.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spimpact.publish import gate


def read_refresh_tables(outputs_dir: Path, statuses: pd.DataFrame):
    """Every scheme's published refresh tables, stacked with the scheme id.

    The tables are ``analysis_plan_changes``, ``refresh_flags`` and ``refresh_trend``
    (empty frames when no scheme published them).
    """
    frames = {"analysis_plan_changes": [], "refresh_flags": [], "refresh_trend": []}
    for scheme_id in statuses["scheme_id"]:
        for name, found in frames.items():
            path = outputs_dir / scheme_id / "tables" / f"{name}.csv"
            if path.is_file():
                frame = pd.read_csv(path, dtype=str, keep_default_na=False)
                found.append(frame.assign(scheme_id=scheme_id))
    return {
        name: pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["scheme_id"])
        for name, found in frames.items()
    }


def refresh_html(outputs_dir: Path, statuses: pd.DataFrame) -> str:
    """The ICB page's "Since the last refresh" part.

    Schemes whose analysis plan changed are marked; flagged changes are listed, with a
    small trend chart of the headline results of each scheme with two or more refreshes.
    """
    tables = read_refresh_tables(outputs_dir, statuses)
    plan, flags, trend = (
        tables["analysis_plan_changes"],
        tables["refresh_flags"],
        tables["refresh_trend"],
    )
    titles = dict(zip(statuses["scheme_id"], statuses["title"], strict=True))
    parts = [
        "<h2>Since the last refresh</h2><p>Each run of <code>spimpact run</code> adds its "
        "results to the refresh history. A scheme is marked when its analysis plan changed "
        "from the plan it froze (or from its previous refresh), and a result is flagged when "
        "it moved beyond the previous refresh's confidence interval, fewer people stand "
        "behind it, it is new or no longer reported, or the data shrank.</p>"
    ]
    if plan.empty and flags.empty:
        parts.append("<p>No analysis plan changed and nothing was flagged.</p>")
    for scheme_id, group in plan.groupby("scheme_id", sort=True):
        items = ", ".join(html.escape(str(item)) for item in group["item"])
        parts.append(
            f'<p class="failed">&#9888; {html.escape(str(titles.get(scheme_id, scheme_id)))}: '
            f"analysis plan changed on {html.escape(str(group['changed_on'].iloc[0]))} "
            f"({items}).</p>"
        )
    if not flags.empty:
        shown = pd.DataFrame(
            {
                "Scheme": flags["scheme_id"].map(titles),
                "Result": flags["outcome"],
                "Before": flags["previous_estimate"],
                "Now": flags["estimate"],
                "Changed since last refresh": flags["flag"],
            }
        )
        parts.append(gate.table(shown))
    for scheme_id in sorted(set(trend["scheme_id"])):
        figure = _trend_panel(trend[trend["scheme_id"] == scheme_id], titles.get(scheme_id))
        if figure is not None:
            alt = f"Headline results of {titles.get(scheme_id, scheme_id)} at each refresh"
            parts.append(
                f"<figure><img alt='{html.escape(alt)}' src='data:image/png;base64,"
                f"{_png(figure)}'><figcaption class='note'>{html.escape(alt)} (bars: "
                "confidence intervals).</figcaption></figure>"
            )
    return "".join(parts)


def _trend_panel(trend: pd.DataFrame, title) -> Figure | None:
    trend = trend.assign(
        estimate=pd.to_numeric(trend.get("estimate"), errors="coerce"),
        refresh=pd.to_numeric(trend.get("refresh"), errors="coerce"),
    ).dropna(subset=["estimate", "refresh"])
    groups = [g for _, g in trend.groupby(["measure", "outcome", "method"], sort=True)]
    groups = [g for g in groups if g["refresh"].nunique() >= 2][:6]
    if not groups:
        return None
    fig = Figure(figsize=(2.6 * len(groups), 2.2))
    axes = np.atleast_1d(fig.subplots(1, len(groups), squeeze=False)).ravel()
    for ax, group in zip(axes, groups, strict=True):
        x = np.arange(len(group))
        low = pd.to_numeric(group["conf_low"], errors="coerce").to_numpy(float)
        high = pd.to_numeric(group["conf_high"], errors="coerce").to_numpy(float)
        has = ~(np.isnan(low) | np.isnan(high))
        ax.vlines(x[has], low[has], high[has], color="0.4")
        ax.plot(x, group["estimate"].to_numpy(float), marker="o", color="#005eb8")
        ax.set_xticks(x)
        ax.set_xticklabels(group["data_to"].astype(str), fontsize=6, rotation=30)
        outcome = str(group["outcome"].iloc[0])
        ax.set_title(outcome if len(outcome) <= 34 else outcome[:33] + "…", fontsize=7)
        ax.tick_params(axis="y", labelsize=6)
    fig.suptitle(str(title), fontsize=8)
    fig.tight_layout()
    return fig


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")
