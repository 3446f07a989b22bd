"""Reach: whom a scheme reaches, whom it may be missing, and how referrals move on.

Referral rates per 1,000 catchment population by deprivation, age, sex and ethnic
group (with rate ratios against the scheme average), the slope and relative index of
inequality across IMD deciles, the pathway from referral to engagement to completion,
reach by neighbourhood (map or funnel plot) and KPI control charts. Every published
count passes ``spimpact.publish.disclosure``; crude rates, their intervals and rate
ratios are withheld wherever their count is.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from spimpact.io import SchemeData
from spimpact.models.inequality import fit_sii, rate_ci, wilson_ci
from spimpact.models.spc import xmr
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import (
    DisclosureRule,
    disclose_count,
    disclose_percentage,
    disclose_table,
)
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData, Section, Table

REACH_DIMENSIONS = {
    "imd_quintile": "IMD quintile (1 = most deprived)",
    "age_band": "Age band",
    "sex": "Sex",
    "ethnic_group": "Ethnic group",
}
PER = 1000
# Fewest referrals per area before an area rate is worth drawing (primary suppression
# uses the disclosure threshold; this is the same number, kept apart for clarity).
FUNNEL_LEVELS = (0.95, 0.998)


def _category_text(values: pd.Series) -> pd.Series:
    """Categories as text, so '1' in population matches quintile 1 in clients."""
    text = values.astype("string")
    return text.str.replace(r"\.0$", "", regex=True).fillna("Not recorded")


def _population(scheme: SchemeData) -> pd.DataFrame:
    population = scheme.population
    if population is None or population.empty:
        raise InsufficientData(
            "No catchment population was supplied (population.csv), so referral rates "
            "per 1,000 people cannot be calculated."
        )
    out = population[["dimension", "category", "population"]].copy()
    out["category"] = _category_text(out["category"])
    return out


def _period_text(clients: pd.DataFrame) -> str:
    first, last = clients["referral_date"].min(), clients["referral_date"].max()
    return f"{first:%B %Y} to {last:%B %Y}"


def tabulate_reach(
    clients: pd.DataFrame,
    population: pd.DataFrame,
    *,
    dimensions=tuple(REACH_DIMENSIONS),
    conf_level: float = 0.95,
    per: float = PER,
) -> pd.DataFrame:
    """Referrals per ``per`` population by category, with rate ratios to the scheme average.

    Parameters
    ----------
    clients
        One row per referral with the ``dimensions`` columns.
    population
        Long denominators: ``dimension, category, population`` (a ``total`` row,
        category ``all``, gives the scheme average's denominator).
    dimensions
        Client columns to break down by.
    conf_level
        Confidence level of the intervals.
    per
        Rate multiplier.

    Returns
    -------
    pandas.DataFrame
        Raw (not yet disclosure-controlled) ``dimension, category, n_referrals,
        population, rate, conf_low, conf_high, rate_ratio, rate_ratio_conf_low,
        rate_ratio_conf_high``; categories without a denominator (e.g. ethnicity not
        recorded) have missing rates.

    Notes
    -----
    Rate limits: Byar's method, exact Poisson below 10 referrals (PHEindicatormethods
    ``phe_rate``). Rate ratio of a category to the whole catchment, whose referrals
    include the category's: by the delta method with Poisson counts,
    ``var(log RR) = 1/O_g - 1/O_total`` (the covariance of a part with its total).
    """
    total_rows = population[population["dimension"] == "total"]
    total_population = float(total_rows["population"].sum()) if len(total_rows) else np.nan
    n_total = len(clients)
    frames = []
    for dimension in dimensions:
        if dimension not in clients.columns:
            raise ValueError(f"clients has no column {dimension!r} to break reach down by")
        counts = _category_text(clients[dimension]).value_counts()
        denominators = population[population["dimension"] == dimension].set_index("category")[
            "population"
        ]
        categories = sorted(set(counts.index) | set(denominators.index), key=_sort_key)
        frame = pd.DataFrame(
            {
                "dimension": dimension,
                "category": categories,
                "n_referrals": [int(counts.get(c, 0)) for c in categories],
                "population": [float(denominators.get(c, np.nan)) for c in categories],
            }
        )
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    return add_reach_rates(
        table,
        n_total=n_total,
        total_population=total_population,
        conf_level=conf_level,
        per=per,
    )


def add_reach_rates(
    table: pd.DataFrame,
    *,
    n_total: float,
    total_population: float,
    conf_level: float = 0.95,
    per: float = PER,
) -> pd.DataFrame:
    """Add rates, their limits and rate ratios to a table of ``n_referrals`` and ``population``.

    Rows whose count is missing (withheld) or whose population is missing or zero get
    missing rates. See ``tabulate_reach`` for the methods.
    """
    table = table.copy()
    counts = pd.to_numeric(table["n_referrals"], errors="coerce").astype(float)
    population = pd.to_numeric(table["population"], errors="coerce").astype(float)
    usable = (population > 0) & counts.notna()
    for column in ("rate", "conf_low", "conf_high"):
        table[column] = np.nan
    if usable.any():
        intervals = rate_ci(counts[usable], population[usable], conf_level=conf_level, per=per)
        table.loc[usable, ["rate", "conf_low", "conf_high"]] = intervals[
            ["rate", "conf_low", "conf_high"]
        ].to_numpy()
    average = n_total / total_population * per if total_population > 0 else np.nan
    z = stats.norm.ppf(0.5 + conf_level / 2)
    table["rate_ratio"] = table["rate"] / average
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.clip(1 / counts - 1 / n_total, 0, None))
    table["rate_ratio_conf_low"] = table["rate_ratio"] * np.exp(-z * se)
    table["rate_ratio_conf_high"] = table["rate_ratio"] * np.exp(z * se)
    table.loc[counts == 0, ["rate_ratio_conf_low", "rate_ratio_conf_high"]] = np.nan
    return table


def _sort_key(category: str):
    text = str(category)
    return (0, float(text), "") if text.replace(".", "", 1).isdigit() else (1, 0.0, text)


def publish_reach(
    table: pd.DataFrame,
    rule: DisclosureRule,
    *,
    n_total: int,
    total_population: float,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Disclosure-controlled reach table, with rates recomputed from the published counts.

    Counts are suppressed (1 to ``rule.threshold``) and rounded, with secondary
    suppression within each dimension (its categories add up to the published
    total). Rates, limits and rate ratios are then computed from the rounded counts
    (and the rounded scheme total): a crude rate from an exact count and a published
    denominator would give the exact count back, defeating the rounding. Withheld
    counts give withheld rates.
    """
    safe = disclose_table(table, ["n_referrals"], rule, totals="columns", by="dimension")
    safe = safe[["dimension", "category", "n_referrals", "population"]]
    n_total_safe = disclose_count([n_total], rule).astype(float).iloc[0]
    out = add_reach_rates(
        safe,
        n_total=n_total_safe,
        total_population=total_population,
        conf_level=conf_level,
    )
    for column in ("rate", "conf_low", "conf_high"):
        out[column] = out[column].astype("Float64").round(1)
    for column in ("rate_ratio", "rate_ratio_conf_low", "rate_ratio_conf_high"):
        out[column] = out[column].astype("Float64").round(2)
    out["population"] = out["population"].astype("Int64")
    return out


def tabulate_pathway(
    clients: pd.DataFrame,
    contacts: pd.DataFrame | None,
    follow_up_ids,
    *,
    dimensions=tuple(REACH_DIMENSIONS),
) -> pd.DataFrame:
    """Count people referred, engaged (any contact) and completed, per category.

    ``completed`` means a discharge reason of ``completed`` or at least one follow-up
    wellbeing measure (``follow_up_ids``). Engagement is missing when the scheme sent
    no contacts table. Returns raw counts: ``dimension, category, n_referred,
    n_engaged, n_completed``.
    """
    engaged = clients["client_id"].isin(contacts["client_id"]) if contacts is not None else None
    completed = clients["discharge_reason"].eq("completed").fillna(False) | clients[
        "client_id"
    ].isin(set(follow_up_ids))
    rows = [("total", "All referrals", clients.index)]
    for dimension in dimensions:
        categories = _category_text(clients[dimension])
        for category in sorted(categories.unique(), key=_sort_key):
            rows.append((dimension, category, clients.index[categories == category]))
    return pd.DataFrame(
        [
            {
                "dimension": dimension,
                "category": category,
                "n_referred": len(index),
                "n_engaged": int(engaged.loc[index].sum()) if engaged is not None else pd.NA,
                "n_completed": int(completed.loc[index].sum()),
            }
            for dimension, category, index in rows
        ]
    )


def publish_pathway(table: pd.DataFrame, rule: DisclosureRule) -> pd.DataFrame:
    """Disclosure-controlled pathway counts with percentages of those referred.

    Percentages come from the rounded counts (``disclose_percentage``) and are
    withheld with either count; so is the Wilson interval, computed from the rounded
    counts.
    """
    has_engaged = table["n_engaged"].notna().all()
    count_columns = ["n_referred", "n_completed"] + (["n_engaged"] if has_engaged else [])
    body = table[table["dimension"] != "total"]
    safe_body = disclose_table(body, count_columns, rule, totals="columns", by="dimension")
    safe_total = disclose_table(table[table["dimension"] == "total"], count_columns, rule)
    safe = pd.concat([safe_total, safe_body]).loc[table.index]
    for stage in ("engaged", "completed"):
        column = f"n_{stage}"
        if column not in count_columns:
            safe[f"percent_{stage}"] = pd.NA
            continue
        percent = disclose_percentage(table[column], table["n_referred"], rule).to_numpy()
        withheld = safe[column].isna().to_numpy() | safe["n_referred"].isna().to_numpy()
        percent = pd.Series(percent, index=table.index, dtype="Float64").mask(withheld)
        safe[f"percent_{stage}"] = percent
        # The interval uses the rounded counts so it cannot be inverted to exact ones.
        numerator = safe[column].astype("Float64").fillna(0).to_numpy(dtype=float)
        denominator = safe["n_referred"].astype("Float64").fillna(0).to_numpy(dtype=float)
        interval = wilson_ci(np.minimum(numerator, denominator), np.maximum(denominator, 1))
        for bound in ("conf_low", "conf_high"):
            values = pd.Series(
                (100 * interval[bound]).round(0).to_numpy(), index=table.index, dtype="Float64"
            )
            safe[f"percent_{stage}_{bound}"] = values.mask(percent.isna())
    if not has_engaged:
        safe = safe.drop(columns=["n_engaged"])
    return safe


def _follow_up_ids(scheme: SchemeData, scores: pd.DataFrame | None) -> set:
    source = scores if scores is not None and len(scores) else scheme.measures
    if source is None or source.empty:
        return set()
    return set(source.loc[source["timepoint"] > 0, "client_id"])


def fit_referral_sii(
    clients: pd.DataFrame,
    population: pd.DataFrame,
    *,
    conf_level: float = 0.95,
    seed=None,
    repetitions: int = 100_000,
):
    """SII and RII of referral rates per 1,000 across IMD deciles (or quintiles).

    Deciles are ordered 1 (most deprived) to 10, so the SII is the modelled rate in
    the least deprived areas minus that in the most deprived: negative when more
    deprived areas are referred more. Rates are log-transformed before fitting, as
    PHE recommends for rates (``fit_sii(..., value_type="rate", transform=True)``).
    Raises ``InsufficientData`` when fewer than 5 quantiles have population and
    referrals.
    """
    for dimension in ("imd_decile", "imd_quintile"):
        denominators = population[population["dimension"] == dimension]
        if dimension in clients.columns and len(denominators) >= 5:
            break
    else:
        raise InsufficientData(
            "The catchment population is not broken down by IMD decile or quintile, so "
            "the slope index of inequality cannot be calculated."
        )
    counts = _category_text(clients[dimension]).value_counts()
    frame = denominators.assign(
        quantile=pd.to_numeric(denominators["category"], errors="coerce"),
        events=[int(counts.get(c, 0)) for c in denominators["category"]],
    ).dropna(subset=["quantile"])
    frame = frame[frame["population"] > 0]
    if len(frame) < 5 or (frame["events"] == 0).any():
        raise InsufficientData(
            "The slope index of inequality needs referrals from at least 5 "
            f"{dimension.replace('_', ' ')}s and none with no referrals; this scheme's data "
            "do not have that."
        )
    limits = rate_ci(frame["events"], frame["population"], conf_level=0.95)
    frame = frame.assign(
        rate=limits["rate"].to_numpy(),
        low=limits["conf_low"].to_numpy(),
        high=limits["conf_high"].to_numpy(),
    )
    fit = fit_sii(
        frame,
        quantile="quantile",
        population="population",
        value="rate",
        conf_low="low",
        conf_high="high",
        value_type="rate",
        transform=True,
        multiplier=PER,
        conf_level=conf_level,
        repetitions=repetitions,
        seed=seed,
    )
    return fit, dimension


def reach_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Reach by deprivation, age, sex and ethnic group; SII/RII; referral pathway."""
    rule = params.disclosure.rule()
    clients = scheme.clients
    if clients.empty:
        raise InsufficientData("No usable referrals were found, so reach cannot be described.")
    population = _population(scheme)
    dimensions = [d for d in REACH_DIMENSIONS if d in clients.columns]
    raw = tabulate_reach(clients, population, dimensions=dimensions, conf_level=params.conf_level)
    total_population = float(population.loc[population["dimension"] == "total", "population"].sum())
    if total_population <= 0:
        raise InsufficientData(
            "The catchment population has no 'total' row, so the scheme average rate "
            "cannot be calculated."
        )
    safe = publish_reach(
        raw,
        rule,
        n_total=len(clients),
        total_population=total_population,
        conf_level=params.conf_level,
    )
    level = f"{100 * params.conf_level:g}%"
    n_total = disclose_count([len(clients)], rule).iloc[0]
    if pd.isna(n_total):
        raise InsufficientData(
            "Fewer than 8 referrals: reach cannot be shown without revealing them."
        )
    # the headline rate uses the rounded total, as the table does
    overall = rate_ci([n_total], [total_population], conf_level=params.conf_level, per=PER)
    text = [
        f"From {_period_text(clients)} the scheme received about {_count_words(n_total)} "
        f"referrals from a catchment of {int(total_population):,} people: "
        f"{overall['rate'].iloc[0]:.1f} per 1,000 ({level} CI {overall['conf_low'].iloc[0]:.1f} "
        f"to {overall['conf_high'].iloc[0]:.1f}). The table gives the rate in each group "
        "and its ratio to the scheme average: a ratio below 1 means the group is referred "
        "less often than its share of the catchment would suggest, which may mean the "
        "scheme is missing it.",
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
            safe,
        )
    ]
    figures = [_plot_rate_ratios(safe)]
    headline_rows = []
    try:
        fit, quantile_name = fit_referral_sii(
            clients, population, conf_level=params.conf_level, seed=params.seed
        )
    except InsufficientData as reason:
        text.append(str(reason))
    else:
        text.append(_sii_sentence(fit, quantile_name, level))
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
    pathway_raw = tabulate_pathway(
        clients, scheme.contacts, _follow_up_ids(scheme, None), dimensions=dimensions
    )
    pathway = publish_pathway(pathway_raw, rule)
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


def _count_words(n) -> str:
    return "fewer than 8" if pd.isna(n) else f"{int(n):,}"


def _pct(value) -> str:
    return "an undisclosable share" if pd.isna(value) else f"{value:g}%"


def _sii_sentence(fit, quantile_name: str, level: str) -> str:
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


def _sii_table(fit) -> pd.DataFrame:
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


# ---------------------------------------------------------------------------------
# KPIs over time


# Follow-ups are due some months after referral: a cohort's completion is only
# judged once its referrals have had this long (the default schedule's last
# follow-up is at 6 months).
COMPLETION_LAG_MONTHS = 6
MIN_SPC_POINTS = 12


def tabulate_monthly_kpis(
    clients: pd.DataFrame, contacts: pd.DataFrame | None, follow_up_ids, *, freq: str = "M"
) -> pd.DataFrame:
    """Referral cohorts per period with the numbers engaged and completed (raw counts).

    Returns ``period, n_referred, n_engaged, n_completed`` for every period from the
    first to the last referral (empty periods included); ``n_engaged`` is missing
    without a contacts table.
    """
    period = clients["referral_date"].dt.to_period(freq)
    engaged = clients["client_id"].isin(contacts["client_id"]) if contacts is not None else None
    completed = clients["discharge_reason"].eq("completed").fillna(False) | clients[
        "client_id"
    ].isin(set(follow_up_ids))
    frame = pd.DataFrame(
        {
            "period": period,
            "referred": 1,
            "engaged": engaged.astype(int) if engaged is not None else 0,
            "completed": completed.astype(int),
        }
    )
    grouped = frame.groupby("period").sum()
    full = pd.period_range(period.min(), period.max(), freq=freq)
    grouped = grouped.reindex(full, fill_value=0)
    out = pd.DataFrame(
        {
            "period": grouped.index,
            "n_referred": grouped["referred"].to_numpy(),
            "n_engaged": grouped["engaged"].to_numpy() if engaged is not None else pd.NA,
            "n_completed": grouped["completed"].to_numpy(),
        }
    )
    return out


def _last_activity(scheme: SchemeData, scores: pd.DataFrame | None) -> pd.Timestamp:
    dates = [scheme.clients["referral_date"].max(), scheme.clients["discharge_date"].max()]
    if scheme.contacts is not None and len(scheme.contacts):
        dates.append(scheme.contacts["contact_date"].max())
    source = scores if scores is not None and len(scores) else scheme.measures
    if source is not None and len(source) and "date" in source:
        dates.append(pd.to_datetime(source["date"]).max())
    return max(d for d in dates if pd.notna(d))


def _kpi_chart(kpis: pd.DataFrame, stage: str, label: str, rule: DisclosureRule, unit: str):
    """XmR chart of a monthly percentage from rounded counts, or a reason it cannot be drawn."""
    percent = disclose_percentage(kpis[f"n_{stage}"], kpis["n_referred"], rule)
    if percent.isna().any() or len(kpis) < MIN_SPC_POINTS:
        return None, (
            f"{label} per {unit} is not charted: it needs at least {MIN_SPC_POINTS} complete "
            f"{unit}s with at least {rule.min_n_summary} referrals each."
        )
    dates = kpis["period"].dt.to_timestamp()
    chart = xmr(percent.astype(float).to_numpy(), dates=dates, improvement="up")
    ax = chart.plot(title=f"{label} (% of each {unit}'s referrals, XmR chart)", ylabel="%")
    return chart, ax


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
    clients = scheme.clients
    if clients.empty:
        raise InsufficientData("No usable referrals were found, so KPIs cannot be charted.")
    follow_ups = _follow_up_ids(scheme, scores)
    last = _last_activity(scheme, scores)
    stages = [("completed", "Follow-up completion")]
    if scheme.contacts is not None:
        stages.insert(0, ("engaged", "Engagement (any contact)"))
    text, tables, figures = [], [], []
    for stage, label in stages:
        drawn = False
        for freq, unit in (("M", "month"), ("Q", "quarter")):
            kpis = tabulate_monthly_kpis(clients, scheme.contacts, follow_ups, freq=freq).iloc[1:-1]
            if stage == "completed":
                cutoff = (last - pd.DateOffset(months=COMPLETION_LAG_MONTHS)).to_period(freq)
                kpis = kpis[kpis["period"] < cutoff]
            chart, result = _kpi_chart(kpis, stage, label, rule, unit)
            if chart is not None:
                drawn = True
                break
        if not drawn:
            text.append(result)
            continue
        figures.append(result.figure)
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
        tables.append(Table(f"kpi_{stage}_spc", f"{label} per {unit} with XmR limits", table))
    if not figures:
        raise InsufficientData(" ".join(text))
    typical = float(np.median(tabulate_monthly_kpis(clients, None, follow_ups)["n_referred"]))
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


# ---------------------------------------------------------------------------------
# Reach by area


def poisson_funnel_limits(target_rate: float, population, p: float) -> np.ndarray:
    """Exact Poisson funnel limit for a rate: the ``p`` quantile of O / n under the target.

    Parameters
    ----------
    target_rate
        Events per person under the null (e.g. the scheme average).
    population
        Denominators ``n``.
    p
        Quantile, e.g. 0.025, 0.975, 0.001 or 0.999.

    Notes
    -----
    Spiegelhalter (2005), Funnel plots for comparing institutional performance, Stat
    Med 24:1185-1202, appendix A.1.1: with ``r_p`` the ``p`` quantile of a Poisson with
    mean ``target_rate x n``, the limit is ``(r_p - a) / n`` where
    ``a = (F(r_p) - p) / (F(r_p) - F(r_p - 1))`` interpolates between integers so the
    limits are smooth in ``n``.
    """
    n = np.asarray(population, dtype=float)
    mean = target_rate * n
    r = stats.poisson.ppf(p, mean)
    upper_cdf = stats.poisson.cdf(r, mean)
    lower_cdf = stats.poisson.cdf(r - 1, mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(upper_cdf > lower_cdf, (upper_cdf - p) / (upper_cdf - lower_cdf), 0.0)
    return np.clip(r - alpha, 0, None) / n


def tabulate_areas(clients: pd.DataFrame, population: pd.DataFrame, area_column: str):
    """Referrals and population per area (raw counts), areas from the population table."""
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


def read_boundaries(path, area_property: str) -> dict[str, list[np.ndarray]]:
    """Polygon rings per area from a GeoJSON FeatureCollection (Polygon/MultiPolygon)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read GeoJSON boundaries: {error}") from None
    shapes: dict[str, list[np.ndarray]] = {}
    for number, feature in enumerate(data.get("features", []), start=1):
        code = (feature.get("properties") or {}).get(area_property)
        geometry = feature.get("geometry") or {}
        if code is None:
            raise ValueError(f"{path}: feature {number} has no property {area_property!r}")
        if geometry.get("type") == "Polygon":
            polygons = [geometry["coordinates"]]
        elif geometry.get("type") == "MultiPolygon":
            polygons = geometry["coordinates"]
        else:
            raise ValueError(
                f"{path}: feature {number} ({code}) has geometry {geometry.get('type')!r}; "
                "expected Polygon or MultiPolygon"
            )
        # outer rings only: holes are rare in LSOAs and do not change the colouring
        shapes.setdefault(str(code), []).extend(np.asarray(poly[0], float) for poly in polygons)
    return shapes


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


def area_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Reach by neighbourhood: a choropleth map when boundaries are given, else a funnel plot.

    Area counts are rounded to 5; areas with 1 to 7 referrals, and the next smallest
    where the total would reveal one, are hidden (hatched on the map, left off the
    funnel plot) rather than merged, and rates come from the rounded counts. The
    funnel plot's limits are exact Poisson limits at 95% and 99.8% around the scheme
    average (Spiegelhalter 2005); it is not a league table.
    """
    rule = params.disclosure.rule()
    population = _population(scheme)
    raw, outside = tabulate_areas(scheme.clients, population, params.area_column)
    safe = disclose_table(raw, ["n_referrals"], rule, totals="columns")
    counts = safe["n_referrals"].astype("Float64")
    safe["rate"] = (counts / safe["population"] * PER).round(1)
    n_area_total = float(raw["n_referrals"].sum())
    total_safe = disclose_count([n_area_total], rule).astype(float).iloc[0]
    if pd.isna(total_safe) or raw["population"].sum() <= 0:
        raise InsufficientData("Too few referrals with a known area to show reach by area.")
    target = total_safe / float(raw["population"].sum())
    position = pd.Series(pd.NA, index=safe.index, dtype="string")
    known = safe["rate"].notna()
    for level in FUNNEL_LEVELS:
        tail = (1 - level) / 2
        low = poisson_funnel_limits(target, safe["population"], tail) * PER
        high = poisson_funnel_limits(target, safe["population"], 1 - tail) * PER
        label = f"outside {100 * level:g}% limits"
        position[known & (safe["rate"] < low)] = f"below ({label})"
        position[known & (safe["rate"] > high)] = f"above ({label})"
    position[known & position.isna()] = "within limits"
    safe["funnel_position"] = position
    n_hidden = int(safe["n_referrals"].isna().sum())
    title = f"Referrals per 1,000 population by {params.area_column.replace('_', ' ')}"
    text = [
        f"Referral rates in {len(safe)} areas ({params.area_column}). Counts are rounded to "
        f"the nearest 5; {n_hidden} area(s) with 1 to 7 referrals (or whose count the total "
        "would reveal) are hidden, not merged, and rates use the rounded counts. Hidden "
        "areas have few referrals, so they may be among those the scheme reaches least.",
    ]
    boundaries = params.boundaries
    if boundaries is None and (Path(scheme.data_dir) / "boundaries.geojson").exists():
        boundaries = Path(scheme.data_dir) / "boundaries.geojson"
    if boundaries is not None:
        shapes = read_boundaries(boundaries, params.area_column)
        figure = _plot_map(safe, shapes, title)
        unmapped = sorted(set(safe["area"]) - set(shapes))
        text.append(
            "The map shades each area by its referral rate; hatched areas are hidden."
            + (f" {len(unmapped)} area(s) have no boundary and are not drawn." if unmapped else "")
        )
    else:
        figure = _plot_funnel(safe, target, title)
        text.append(
            "The funnel plot shows each area's rate against its population, with the range "
            "expected from chance alone around the scheme average (95% and 99.8% limits): "
            "areas outside the 99.8% limits differ by more than chance."
        )
    above = int(position.str.startswith("above (outside 99.8").sum())
    below = int(position.str.startswith("below (outside 99.8").sum())
    text.append(
        f"Against exact Poisson funnel limits (Spiegelhalter 2005), {above} area(s) have more "
        f"referrals and {below} fewer than chance around the scheme average would explain at "
        "the 99.8% level; the latter may be neighbourhoods the scheme is missing."
    )
    if outside:
        text.append(
            f"About {_count_words(disclose_count([outside], rule).iloc[0])} referrals come "
            "from areas outside the catchment table and are not shown."
        )
    safe["population"] = safe["population"].astype("Int64")
    return Section(
        title="Reach by area",
        text=tuple(text),
        tables=(Table("reach_areas", f"{title}, with funnel-plot position", safe),),
        figures=(figure,),
    )
