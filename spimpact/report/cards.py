"""Key-figure cards for page one of a scheme report.

Five cards: people referred, referrals per 1,000 residents, wellbeing change, GP
attendance change and follow-up rate. Each gives the figure (with its interval where
there is one), a one-line verdict in plain English that follows the numbers (see
``spimpact.report.front_page.describe_result``) and a strength-of-evidence mark
(filled and empty circles plus words, so colour is never the only cue): a
comparison group and follow-up of at least ``GOOD_FOLLOW_UP`` of people make the
evidence stronger, either one moderate, neither weaker. Every number is one the
report already publishes under disclosure control.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from spimpact.analyses.reach.analysis import PER, catchment_population
from spimpact.models.inequality import rate_ci
from spimpact.publish import gate
from spimpact.publish.disclosure import disclose_count
from spimpact.publish.section import InsufficientData
from spimpact.report.front_page import _CONTROLLED, _UNCONTROLLED, is_change
from spimpact.scoring import SCORES

GOOD_FOLLOW_UP = 0.6
_GP = re.compile(r"\bgp\b|attend|appointment", re.IGNORECASE)
_STRENGTH = {
    3: ("●●●", "Stronger evidence"),
    2: ("●●○", "Moderate evidence"),
    1: ("●○○", "Weaker evidence"),
    0: ("○○○", "No estimate"),
}


@dataclass(frozen=True)
class Card:
    """One key figure: label, value, interval text, verdict and evidence strength (0-3).

    ``what``: what the value measures, in the report's words (the headline's outcome).
    """

    label: str
    value: str
    interval: str
    verdict: str
    strength: int
    evidence: str
    tone: str = "neutral"  # better, worse, unclear or neutral: colour plus an arrow in words
    what: str = ""


def key_cards(report, headlines: pd.DataFrame, funnel: pd.DataFrame | None) -> list[Card]:
    """The five cards of ``report`` (a ``SchemeReport``) from its headline rows and funnel."""
    rule = report.params.disclosure.rule()
    follow_up = follow_up_rate(funnel)
    cards = [_referred(report, rule), _reach(report, rule)]
    primary = report.params.measures.primary
    change = headlines.apply(is_change, axis=1) if len(headlines) else pd.Series(dtype=bool)
    person = (
        headlines[(headlines["outcome_level"] == "person") & change]
        if len(headlines)
        else headlines
    )
    wellbeing = person[person["measure"].astype(str).str.startswith(primary)]
    cards.append(
        _change_card("Wellbeing change", wellbeing if len(wellbeing) else person, follow_up, report)
    )
    system = (
        headlines[(headlines["outcome_level"] == "system") & change]
        if len(headlines)
        else headlines
    )
    gp = system[
        (system["outcome"].astype(str) + " " + system["measure"].astype(str)).str.contains(_GP)
    ]
    cards.append(_change_card("GP attendance change", gp, None, report, lower_is_better=True))
    cards.append(_follow_up_card(follow_up))
    return cards


def follow_up_rate(funnel: pd.DataFrame | None) -> tuple[float, str] | None:
    """Share of people with a baseline score who have a first follow-up, from the funnel.

    ``funnel`` is the attrition section's published funnel (``stage``, ``n_people``):
    the rate is computed from its rounded counts, as every published percentage is.
    """
    if funnel is None or funnel.empty or not {"stage", "n_people"} <= set(funnel.columns):
        return None
    stages = funnel["stage"].astype(str)
    baseline = funnel[stages.str.startswith("Baseline")]
    follow = funnel[stages.str.contains(r"\(with a baseline\)")]
    if baseline.empty or follow.empty:
        return None
    n_base, n_follow = baseline["n_people"].iloc[0], follow["n_people"].iloc[0]
    if pd.isna(n_base) or pd.isna(n_follow) or float(n_base) <= 0:
        return None
    label = follow["stage"].iloc[0].split(" ")[0:2]
    return float(n_follow) / float(n_base), " ".join(label)


def _referred(report, rule) -> Card:
    clients = report.scheme.clients
    n = disclose_count([len(clients)], rule).iloc[0]
    if pd.isna(n):
        return Card("People referred", "fewer than 8", "", "Too few to report.", 0, "")
    dates = pd.to_datetime(clients["referral_date"])
    return Card(
        "People referred",
        f"{int(n):,}",
        f"{dates.min():%b %Y} to {dates.max():%b %Y}",
        "Counted from records (rounded to 5).",
        3,
        "A count, not an estimate",
    )


def _reach(report, rule) -> Card:
    label = "Referred per 1,000 residents"
    try:
        population = catchment_population(report.scheme)
    except InsufficientData:
        return Card(label, "not available", "", "No catchment population was supplied.", 0, "")
    total = float(population.loc[population["dimension"] == "total", "population"].sum())
    n = disclose_count([len(report.scheme.clients)], rule).iloc[0]
    if total <= 0 or pd.isna(n):
        return Card(label, "not available", "", "No total catchment population.", 0, "")
    level = report.params.conf_level
    rate = rate_ci([n], [total], conf_level=level, per=PER).iloc[0]
    return Card(
        label,
        _num(rate["rate"]),
        f"{level:.0%} CI {_num(rate['conf_low'])} to {_num(rate['conf_high'])}",
        f"Catchment of {total:,.0f} people.",
        3,
        "Counts and census population",
    )


def _change_card(label, rows, follow_up, report, *, lower_is_better=None) -> Card:
    rows = rows[rows["estimate"].notna()] if len(rows) else rows
    if rows is None or not len(rows):
        return Card(label, "not available", "", "This report could not estimate it.", 0, "")
    row = rows.iloc[0]
    estimate, low, high = float(row["estimate"]), row["conf_low"], row["conf_high"]
    level = row["conf_level"] if pd.notna(row.get("conf_level")) else report.params.conf_level
    method = str(row["method"])
    controlled = bool(_CONTROLLED.search(method)) and not _UNCONTROLLED.search(method)
    good_follow = follow_up is not None and follow_up[0] >= GOOD_FOLLOW_UP
    strength = 1 + int(controlled) + int(good_follow)
    evidence = ("comparison group" if controlled else "no comparison group") + (
        "" if follow_up is None else f"; {follow_up[0]:.0%} followed up"
    )
    info = SCORES.get(str(row["measure"]))
    higher_better = info.higher_is_better if info is not None else None
    if higher_better is None and lower_is_better is not None:
        higher_better = not lower_is_better
    interval = ""
    if pd.isna(low) or pd.isna(high):
        verdict, tone = (
            "No interval could be calculated, so we cannot say how sure this is.",
            "unclear",
        )
    else:
        interval = f"{float(level):.0%} CI {_num(float(low))} to {_num(float(high))}"
        if low > 0 or high < 0:
            better = (estimate > 0) == higher_better if higher_better is not None else None
            if better is None:
                verdict, tone = "A clear change (the interval rules out none).", "neutral"
            elif better:
                verdict, tone = "✓ Improved: the interval rules out no change.", "better"
            else:
                verdict, tone = "✗ Worse: the interval rules out no change.", "worse"
        else:
            verdict, tone = "? Unclear: the interval includes no change.", "unclear"
    sign = "+" if estimate > 0 else ""
    value = f"{sign}{_num(estimate)}"
    return Card(label, value, interval, verdict, strength, evidence, tone, str(row["outcome"]))


def _follow_up_card(follow_up) -> Card:
    label = "Follow-up rate"
    if follow_up is None:
        return Card(label, "not available", "", "No follow-up could be counted.", 0, "")
    rate, when = follow_up
    good = rate >= GOOD_FOLLOW_UP
    verdict = (
        f"Good: most people were measured again ({when})."
        if good
        else f"Low: many were not measured again ({when}); results may be biased."
    )
    return Card(
        label,
        f"{rate:.0%}",
        "of people with a baseline score",
        verdict,
        3 if good else 1,
        "followed up",
        "better" if good else "worse",
    )


def cards_html(cards: list[Card]) -> str:
    """The row of cards as escaped HTML (a list, so screen readers count them)."""
    items = []
    for card in cards:
        icon, words = _STRENGTH[card.strength]
        evidence = f"{words}: {card.evidence}" if card.evidence else words
        interval = f'<p class="card-ci">{gate.escape(card.interval)}</p>' if card.interval else ""
        what = f'<p class="card-what">{gate.escape(card.what)}</p>' if card.what else ""
        items.append(
            f'<li class="card card-{card.tone}">'
            f'<h3 class="card-label">{gate.escape(card.label)}</h3>'
            f'<p class="card-value">{gate.escape(card.value)}</p>{what}{interval}'
            f'<p class="card-verdict">{gate.escape(card.verdict)}</p>'
            f'<p class="card-evidence"><span aria-hidden="true">{icon}</span> '
            f"{gate.escape(evidence)}</p></li>"
        )
    return f'<ul class="cards" aria-label="Key figures">{"".join(items)}</ul>'


def _num(value: float) -> str:
    value = float(value)
    if value.is_integer():
        return f"{int(value):,}"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"
