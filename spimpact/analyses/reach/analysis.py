"""Reach: referral rates by group against the catchment, the deprivation gradient, the pathway.

Referral rates per 1,000 catchment population by deprivation, age, sex and ethnic
group (with rate ratios against the scheme average), the slope and relative index of
inequality across IMD deciles, and the pathway from referral to engagement to
completion. ``analyse_reach`` returns a ``ReachResult`` whose tables are already
disclosure-controlled (``spimpact.publish.disclosure``): crude rates, their intervals
and rate ratios are computed from the rounded counts and withheld wherever their count
is. The words are in ``spimpact.analyses.reach.section``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from spimpact.io import SchemeData
from spimpact.models.inequality import SiiResult, fit_sii, rate_ci, wilson_ci
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import (
    DisclosureRule,
    disclose_count,
    disclose_percentage,
    disclose_table,
)
from spimpact.publish.section import InsufficientData

REACH_DIMENSIONS = {
    "imd_quintile": "IMD quintile (1 = most deprived)",
    "age_band": "Age band",
    "sex": "Sex",
    "ethnic_group": "Ethnic group",
}
PER = 1000


def category_text(values: pd.Series) -> pd.Series:
    """Categories as text, so '1' in population matches quintile 1 in clients."""
    text = values.astype("string")
    return text.str.replace(r"\.0$", "", regex=True).fillna("Not recorded")


def catchment_population(scheme: SchemeData) -> pd.DataFrame:
    """The scheme's long catchment denominators (``dimension, category, population``).

    Raises ``InsufficientData`` when the scheme supplied no population table.
    """
    population = scheme.population
    if population is None or population.empty:
        raise InsufficientData(
            "No catchment population was supplied (population.csv), so referral rates "
            "per 1,000 people cannot be calculated."
        )
    out = population[["dimension", "category", "population"]].copy()
    out["category"] = category_text(out["category"])
    return out


def completed_mask(clients: pd.DataFrame, follow_up_ids) -> pd.Series:
    """Whether each client completed.

    Completed means discharged as ``completed`` (when the scheme records discharge) or
    at least one follow-up measure (``follow_up_ids``).
    """
    followed_up = clients["client_id"].isin(set(follow_up_ids))
    if "discharge_reason" not in clients:
        return followed_up
    return clients["discharge_reason"].eq("completed").fillna(False).astype(bool) | followed_up


def follow_up_ids(scheme: SchemeData, scores: pd.DataFrame | None) -> set:
    """Clients with at least one follow-up measure (scored if given, else as recorded)."""
    source = scores if scores is not None and len(scores) else scheme.measures
    if source is None or source.empty:
        return set()
    return set(source.loc[source["timepoint"] > 0, "client_id"])


def sort_key(category: str):
    """Numbers in numeric order first, then text."""
    text = str(category)
    return (0, float(text), "") if text.replace(".", "", 1).isdigit() else (1, 0.0, text)


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
        counts = category_text(clients[dimension]).value_counts()
        denominators = population[population["dimension"] == dimension].set_index("category")[
            "population"
        ]
        categories = sorted(set(counts.index) | set(denominators.index), key=sort_key)
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
    completed = completed_mask(clients, follow_up_ids)
    rows = [("total", "All referrals", clients.index)]
    for dimension in dimensions:
        categories = category_text(clients[dimension])
        for category in sorted(categories.unique(), key=sort_key):
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


def fit_referral_sii(
    clients: pd.DataFrame,
    population: pd.DataFrame,
    *,
    conf_level: float = 0.95,
    seed=None,
    repetitions: int = 100_000,
) -> tuple[SiiResult, str]:
    """SII and RII of referral rates per 1,000 across IMD deciles (or quintiles).

    Deciles are ordered 1 (most deprived) to 10, so the SII is the modelled rate in
    the least deprived areas minus that in the most deprived: negative when more
    deprived areas are referred more. Rates are log-transformed before fitting, as
    PHE recommends for rates (``fit_sii(..., value_type="rate", transform=True)``).
    Returns the fit and the name of the quantile column used. Raises
    ``InsufficientData`` when fewer than 5 quantiles have population and referrals.
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
    counts = category_text(clients[dimension]).value_counts()
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


@dataclass(frozen=True)
class ReachResult:
    """Who the scheme reaches: rates by group, the deprivation gradient and the pathway.

    Attributes
    ----------
    first_referral, last_referral
        Dates of the first and last referral.
    n_referrals_published
        All referrals, disclosure-controlled (rounded to the rule's base).
    total_population
        The catchment population (the ``total`` row).
    overall_rate, overall_conf_low, overall_conf_high
        Referrals per 1,000 catchment population from the rounded total, with its
        interval at ``conf_level``.
    rates
        ``publish_reach`` table: referrals, rates and rate ratios by group.
    sii, sii_quantile
        The slope and relative index of inequality across IMD deciles (or quintiles,
        named by ``sii_quantile``), or ``None``.
    sii_missing_reason
        Why the SII could not be calculated (``None`` when it was).
    pathway
        ``publish_pathway`` table: referred, engaged and completed by group; the first
        row is the total.
    conf_level
        Level of the intervals.
    """

    first_referral: pd.Timestamp
    last_referral: pd.Timestamp
    n_referrals_published: int
    total_population: float
    overall_rate: float
    overall_conf_low: float
    overall_conf_high: float
    rates: pd.DataFrame
    sii: SiiResult | None
    sii_quantile: str | None
    sii_missing_reason: str | None
    pathway: pd.DataFrame
    conf_level: float


def analyse_reach(scheme: SchemeData, *, params: SchemeParams) -> ReachResult:
    """Referral rates by group, SII/RII across deprivation and the referral pathway.

    Raises ``InsufficientData`` without referrals, without a catchment population (or
    its ``total`` row), or with fewer referrals than the disclosure rule publishes.
    The SII is left out, with its reason, when the catchment has no deprivation
    breakdown.
    """
    rule = params.disclosure.rule()
    clients = scheme.clients
    if clients.empty:
        raise InsufficientData("No usable referrals were found, so reach cannot be described.")
    population = catchment_population(scheme)
    dimensions = [d for d in REACH_DIMENSIONS if d in clients.columns]
    raw = tabulate_reach(clients, population, dimensions=dimensions, conf_level=params.conf_level)
    total_population = float(population.loc[population["dimension"] == "total", "population"].sum())
    if total_population <= 0:
        raise InsufficientData(
            "The catchment population has no 'total' row, so the scheme average rate "
            "cannot be calculated."
        )
    rates = publish_reach(
        raw,
        rule,
        n_total=len(clients),
        total_population=total_population,
        conf_level=params.conf_level,
    )
    n_total = disclose_count([len(clients)], rule).iloc[0]
    if pd.isna(n_total):
        raise InsufficientData(
            "Fewer than 8 referrals: reach cannot be shown without revealing them."
        )
    # the headline rate uses the rounded total, as the table does
    overall = rate_ci([n_total], [total_population], conf_level=params.conf_level, per=PER)
    try:
        fit, quantile_name = fit_referral_sii(
            clients, population, conf_level=params.conf_level, seed=params.seed
        )
        reason = None
    except InsufficientData as missing:
        fit, quantile_name, reason = None, None, str(missing)
    pathway_raw = tabulate_pathway(
        clients, scheme.contacts, follow_up_ids(scheme, None), dimensions=dimensions
    )
    return ReachResult(
        first_referral=clients["referral_date"].min(),
        last_referral=clients["referral_date"].max(),
        n_referrals_published=n_total,
        total_population=total_population,
        overall_rate=overall["rate"].iloc[0],
        overall_conf_low=overall["conf_low"].iloc[0],
        overall_conf_high=overall["conf_high"].iloc[0],
        rates=rates,
        sii=fit,
        sii_quantile=quantile_name,
        sii_missing_reason=reason,
        pathway=publish_pathway(pathway_raw, rule),
        conf_level=params.conf_level,
    )
