"""The "Reach" section: rates by group, the deprivation gradient and the pathway in words.

Turns a ``ReachResult`` (``spimpact.analyses.reach.analysis``) into text, tables, a
forest plot of rate ratios and the SII headline row.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.analyses.reach.analysis import REACH_DIMENSIONS, analyse_reach
from spimpact.io import SchemeData
from spimpact.models.inequality import SiiResult
from spimpact.params import SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, Section, Table


def reach_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Reach by deprivation, age, sex and ethnic group; SII/RII; referral pathway."""
    result = analyse_reach(scheme, params=params)
    level = f"{100 * result.conf_level:g}%"
    n_total = result.n_referrals_published
    text = [
        f"From {result.first_referral:%B %Y} to {result.last_referral:%B %Y} the scheme "
        f"received about {count_words(n_total)} referrals from a catchment of "
        f"{int(result.total_population):,} people: {result.overall_rate:.1f} per 1,000 "
        f"({level} CI {result.overall_conf_low:.1f} to {result.overall_conf_high:.1f}). The "
        "table gives the rate in each group and its ratio to the scheme average: a ratio "
        "below 1 means the group is referred less often than its share of the catchment "
        "would suggest, which may mean the scheme is missing it.",
        "Counts are rounded to the nearest 5 and counts of 1 to 7 are hidden (`*`), as is "
        "the next smallest count in the same breakdown where the total would reveal a "
        "hidden one; rates and ratios from hidden counts are hidden too. Groups with no "
        "catchment figure (for example ethnicity not recorded) have no rate.",
    ]
    tables = [
        Table(
            "reach_rates",
            "Referrals per 1,000 catchment population by group, with rate ratios to the "
            "scheme average",
            result.rates,
        )
    ]
    figures = [_plot_rate_ratios(result.rates)]
    headline_rows = []
    fit = result.sii
    if fit is None:
        text.append(result.sii_missing_reason)
    else:
        text.append(_sii_sentence(fit, result.sii_quantile, level))
        tables.append(
            Table(
                "reach_sii",
                "Slope and relative index of inequality in referral rates across deprivation",
                _sii_table(fit),
            )
        )
        headline_rows.append(
            {
                "outcome_level": "system",
                "outcome": "Gap in referrals per 1,000 between the least and most deprived "
                "areas (slope index of inequality)",
                "measure": "referral_rate_sii",
                "estimate": fit.sii,
                "std_error": np.nan,
                "conf_low": fit.sii_conf_low,
                "conf_high": fit.sii_conf_high,
                "n": n_total,
                "method": "PHE slope index of inequality, log-transformed rates, simulation CI",
            }
        )
    pathway = result.pathway
    total_row = pathway.iloc[0]
    engaged_text = (
        f"{_pct(total_row['percent_engaged'])} had at least one contact with a link worker and "
        if "n_engaged" in pathway.columns
        else "Engagement cannot be shown because no contacts were supplied; "
    )
    text.append(
        f"Of those referred, {engaged_text}{_pct(total_row['percent_completed'])} completed "
        "(discharged as completed or gave a follow-up wellbeing measure). Bu et al. (2024) "
        "found only 38% of referrals to social prescribing in England received any "
        "intervention. The pathway table shows where each group drops out."
    )
    tables.append(
        Table("reach_pathway", "From referral to engagement to completion, by group", pathway)
    )
    headline = (
        pd.DataFrame(headline_rows, columns=list(HEADLINE_COLUMNS)) if headline_rows else None
    )
    return Section(
        title="Reach",
        text=tuple(text),
        tables=tuple(tables),
        figures=tuple(figures),
        headline=headline,
    )


def count_words(n) -> str:
    """A published count in words: "fewer than 8" when it is withheld."""
    return "fewer than 8" if pd.isna(n) else f"{int(n):,}"


def _pct(value) -> str:
    return "an undisclosable share" if pd.isna(value) else f"{value:g}%"


def _sii_sentence(fit: SiiResult, quantile_name: str, level: str) -> str:
    direction = (
        "more deprived areas are referred more often"
        if fit.sii < 0
        else "less deprived areas are referred more often"
    )
    certain = (
        "the interval rules out no gradient"
        if fit.sii_conf_low > 0 or fit.sii_conf_high < 0
        else "the interval is consistent with no gradient"
    )
    return (
        f"Across IMD {quantile_name.split('_')[1]}s the slope index of inequality is "
        f"{fit.sii:.1f} referrals per 1,000 ({level} CI {fit.sii_conf_low:.1f} to "
        f"{fit.sii_conf_high:.1f}): the modelled rate in the least deprived areas minus that "
        f"in the most deprived, so {direction}; {certain}. The relative index of inequality "
        f"is {fit.rii:.2f} ({level} CI {fit.rii_conf_low:.2f} to {fit.rii_conf_high:.2f}), "
        "the ratio of those two rates. Method: PHE/OHID slope index of inequality "
        "(PHEindicatormethods `phe_sii`), log-transformed rates, simulation intervals."
    )


def _sii_table(fit: SiiResult) -> pd.DataFrame:
    tidy = fit.tidy()
    tidy["term"] = tidy["term"].map(
        {"sii": "Slope index of inequality (per 1,000)", "rii": "Relative index of inequality"}
    )
    return tidy[["term", "estimate", "conf_low", "conf_high"]].round(3)


def _plot_rate_ratios(safe: pd.DataFrame):
    shown = safe.dropna(subset=["rate_ratio"])
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * len(shown) + 1)))
    labels = [
        f"{REACH_DIMENSIONS.get(d, d).split(' (')[0]}: {c}"
        for d, c in zip(shown["dimension"], shown["category"], strict=True)
    ]
    y = np.arange(len(shown))[::-1]
    estimate = shown["rate_ratio"].astype(float).to_numpy()
    low = shown["rate_ratio_conf_low"].astype(float).to_numpy()
    high = shown["rate_ratio_conf_high"].astype(float).to_numpy()
    ax.errorbar(estimate, y, xerr=[estimate - low, high - estimate], fmt="o", color="#005eb8")
    ax.axvline(1, color="#425563", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(y, labels)
    ax.set_xlabel("Referral rate ratio to the scheme average (log scale)")
    ax.set_title("Referral rates by group relative to the scheme average")
    fig.tight_layout()
    return fig
