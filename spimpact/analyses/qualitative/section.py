"""The "What people told us" section: feedback themes, quotes and the joint display in words.

Turns a ``FeedbackResult`` (``spimpact.analyses.qualitative.analysis``) into text
(with the scrubbed, consented quotes), tables and a figure of the joint display.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spimpact.analyses.qualitative.analysis import FEEDBACK_TYPE_LABELS, analyse_feedback
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.section import Section, Table
from spimpact.scoring import SCORES


def qualitative_section(
    scheme: SchemeData, scores, *, params: SchemeParams, approved: Mapping[str, str] | None = None
) -> Section:
    """Feedback and case studies: themes, types, subgroups, consented quotes and a joint display.

    Parameters
    ----------
    scheme
        ``spimpact.io.SchemeData``; uses ``feedback`` and ``clients``.
    scores
        Scored wellbeing measures (long frame ``client_id, measure, timepoint, score,
        value``; a ``ScoredMeasures`` is accepted too), for the joint display.
    params
        Scheme parameters: primary measure, confidence level, seed (quote selection)
        and disclosure rule.
    approved
        Approved quotes (feedback id -> fingerprint); only these are quoted, other
        consented comments are shown only through their themes.

    Returns
    -------
    Section
        Tables ``feedback_by_type``, ``feedback_by_theme``, ``feedback_themes_by_subgroup``
        and ``feedback_joint_display``; scrubbed quotes in the text; a figure of the
        joint display.

    Notes
    -----
    Counts pass the NHS Digital disclosure rule (SPEC section 3.2). Quotes come only
    from feedback given with consent to quote and are scrubbed of identifiers
    (``spimpact.publish.scrub.scrub_text``). The joint
    display places each theme beside quantitative change, as in mixed-methods joint
    displays (Guetterman, Fetters & Creswell 2015, Ann Fam Med 13(6):554-561); the
    difference in mean change uses Welch's t interval and is descriptive: people who
    raise a theme differ from others in many ways.
    """
    result = analyse_feedback(scheme, scores, params=params, approved=approved)
    rule = params.disclosure.rule()
    text = [
        f"The scheme recorded {_count_text(result.n_feedback_published)} pieces of feedback "
        f"({_count_text(result.n_linked_published)} linked to a client). "
        "The tables count feedback by type and by theme; one piece of feedback can "
        "mention several themes.",
    ]
    text.extend(_quote_lines(result.quotes, result.awaiting_review_themes))
    text.append(
        "**Descriptive only.** The joint display sets each theme beside the change in "
        "wellbeing of the clients whose feedback mentions it. People who raise a theme "
        "differ from others in many ways, so a difference here does not show that the "
        "theme caused the change. Means are shown only where at least "
        f"{rule.min_n_summary} people stand behind them."
    )
    tables = [
        Table("feedback_by_type", "Feedback by type (counts rounded to 5; 1-7 shown as *)",
              result.by_type),
        Table("feedback_by_theme", "Feedback by theme (one item may have several themes)",
              result.by_theme),
        Table("feedback_themes_by_subgroup",
              "Themes by client subgroup (linked feedback only)", result.by_subgroup),
    ]  # fmt: skip
    figures = []
    if result.joint is not None:
        tables.append(
            Table(
                "feedback_joint_display",
                "Joint display (descriptive): mean wellbeing change of clients whose "
                "feedback mentions each theme versus other clients",
                result.joint,
            )
        )
        figure = _plot_joint(result.joint, result.joint_score)
        if figure is not None:
            figures.append(figure)
    return Section(
        title="What people told us",
        text=tuple(text),
        tables=tuple(tables),
        figures=tuple(figures),
    )


def _count_text(value) -> str:
    return "fewer than 8" if pd.isna(value) else f"{int(value):,}"


def _quote_lines(quotes: pd.DataFrame, awaiting: tuple[str, ...] = ()) -> list[str]:
    lines = []
    if awaiting:
        lines.append(
            "Some feedback given with consent to quote has not been approved by a reviewer "
            "(`spimpact quotes review`), so it is shown only through its themes: "
            f"{_markdown_safe(', '.join(t.replace('_', ' ') for t in awaiting))}."
        )
    if quotes.empty:
        if not awaiting:
            lines.append("No feedback came with consent to quote, so no quotes are shown.")
        return lines
    lines.append(
        f"Quotes from feedback given with consent to quote and approved by a reviewer "
        f"({len(quotes)} chosen at random; names, places, dates and contact details removed):"
    )
    for row in quotes.itertuples(index=False):
        kind = FEEDBACK_TYPE_LABELS.get(row.feedback_type, str(row.feedback_type)).lower()
        lines.append(
            f"> “{_markdown_safe(row.text)}” ({kind}; themes: "
            f"{_markdown_safe(row.themes.replace('_', ' '))})"
        )
    return lines


def _markdown_safe(text: str) -> str:
    """Quote free text literally: Markdown markup characters escaped (the page escapes HTML)."""
    text = " ".join(str(text).split())
    text = re.sub(r"([\\`*_{}#|])", r"\\\1", text)
    # "[...](...)" would become a link; placeholders like "[name]" stay readable.
    return text.replace("](", "]\\(")


def _plot_joint(table: pd.DataFrame, score_name: str):
    shown = table.dropna(subset=["difference"])
    if shown.empty:
        return None
    fig = Figure(figsize=(6.5, 0.8 + 0.4 * len(shown)))
    ax = fig.subplots()
    y = np.arange(len(shown))[::-1]
    ax.hlines(y, shown["conf_low"].astype(float), shown["conf_high"].astype(float), color="0.3")
    ax.scatter(shown["difference"].astype(float), y, color="#005EB8", zorder=3)
    ax.axvline(0, color="0.5", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(shown["theme"].str.replace("_", " "))
    label = SCORES[score_name].label if score_name in SCORES else score_name
    ax.set_xlabel(
        f"Difference in mean change of {label}\n(clients mentioning the theme minus others)"
    )
    ax.set_title("Descriptive joint display: not evidence of cause", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig
