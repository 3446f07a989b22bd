"""Foundation numbers: who was referred, data quality, and referrals over time.

``analyse_overview`` counts referrals by source and demographic group,
``analyse_data_quality`` reconciles rows read, used and excluded, measures the
completeness of every contract field and counts the labels a mapping file mapped and
did not map (``spimpact.analyses.overview.mapping``), and ``analyse_referrals`` charts referrals per
month (or quarter) as a Making Data Count XmR chart (``spimpact.models.spc.xmr``). Every
count passes ``spimpact.publish.disclosure``. The words are in
``spimpact.analyses.overview.section``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.overview.mapping import ValueMappingResult, summarise_value_mapping
from spimpact.contract import TABLES
from spimpact.io import SchemeData, StreamedTable
from spimpact.models.spc import XmrResult, xmr
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import (
    DisclosureRule,
    disclose_count,
    disclose_percentage,
    disclose_table,
)
from spimpact.publish.section import InsufficientData

DEMOGRAPHICS = ("age_band", "sex", "ethnic_group", "imd_quintile")
# Fewest complete periods an XmR chart of referrals is drawn with.
MIN_SPC_POINTS = 12


def count_table(values: pd.Series, label: str, rule: DisclosureRule) -> pd.DataFrame:
    """Disclosure-controlled counts and percentages of each category, plus the total.

    The total is computed from unrounded counts and then rounded (SPEC §3.2), and
    secondary suppression stops a single suppressed cell being recovered from it.
    Columns: ``label`` (the categories, then ``"Total"``), ``n``, ``percent``.
    """
    counts = values.astype(object).fillna("Not recorded").astype(str).value_counts().sort_index()
    frame = pd.DataFrame({label: counts.index, "n": counts.to_numpy()})
    total = int(counts.sum())
    safe = disclose_table(frame, ["n"], rule=rule, totals="columns")
    safe["percent"] = disclose_percentage(frame["n"], np.full(len(frame), total), rule).to_numpy()
    safe.loc[safe["n"].isna(), "percent"] = pd.NA
    total_row = pd.DataFrame(
        {
            label: ["Total"],
            "n": disclose_count([total], rule).to_numpy(),
            "percent": [100.0 if total >= rule.min_n_summary else pd.NA],
        }
    )
    return pd.concat([safe, total_row], ignore_index=True)


@dataclass(frozen=True)
class OverviewResult:
    """Referrals at a glance.

    Attributes
    ----------
    first_referral, last_referral
        Dates of the first and last referral.
    n_clients_published
        Referrals whose records could be used (disclosure-controlled; missing when
        withheld).
    referral_sources
        ``count_table`` of referral sources (first column ``referral_source``).
    demographics
        ``count_table`` per demographic column the clients carry, keyed by column, in
        ``DEMOGRAPHICS`` order (first column named after it).
    """

    first_referral: pd.Timestamp
    last_referral: pd.Timestamp
    n_clients_published: int
    referral_sources: pd.DataFrame
    demographics: dict[str, pd.DataFrame]


def analyse_overview(scheme: SchemeData, *, params: SchemeParams) -> OverviewResult:
    """Count referrals by source and demographic group.

    Raises ``InsufficientData`` without usable client records.
    """
    rule = params.disclosure.rule()
    clients = scheme.clients
    if clients.empty:
        raise InsufficientData(
            "No usable client records were found, so there is nothing to describe."
        )
    return OverviewResult(
        first_referral=clients["referral_date"].min(),
        last_referral=clients["referral_date"].max(),
        n_clients_published=disclose_count([len(clients)], rule).iloc[0],
        referral_sources=count_table(clients["referral_source"], "referral_source", rule),
        demographics={
            column: count_table(clients[column], column, rule)
            for column in DEMOGRAPHICS
            if column in clients
        },
    )


@dataclass(frozen=True)
class DataQualityResult:
    """Rows read, used and excluded, why, and how complete each contract field is.

    Attributes
    ----------
    reconciliation
        ``table, n_read, n_used, n_excluded`` (disclosure-controlled).
    exclusion_reasons
        ``table, column, reason, n_rows``: the first reason of each excluded row,
        without the offending value (disclosure-controlled).
    completeness
        ``table, column, status, percent_complete`` for every contract field of the
        tables supplied (identifiers and questionnaire items left out).
    ignored_columns
        ``table.column`` of columns outside the data contract, sorted.
    missing_tables
        Contract tables the scheme did not supply.
    value_mapping
        How the scheme's own labels were mapped to contract codes
        (:func:`spimpact.analyses.overview.mapping.summarise_value_mapping`); None
        when the scheme was loaded without a mapping file.
    episode_rule
        Which referral episode of each client every analysis uses (``first`` or
        ``last``; params ``episodes``).
    episodes
        ``(clients referred more than once, episodes not analysed)``, exact counts for
        the section to pass through disclosure control; None when the data hold one
        referral per client (no ``episode`` column).
    """

    reconciliation: pd.DataFrame
    exclusion_reasons: pd.DataFrame
    completeness: pd.DataFrame
    ignored_columns: tuple[str, ...]
    missing_tables: tuple[str, ...]
    value_mapping: ValueMappingResult | None = None
    episode_rule: str = "first"
    episodes: tuple[int, int] | None = None


def count_episodes(episodes: pd.DataFrame | None) -> tuple[int, int] | None:
    """Clients with more than one usable referral episode, and episodes not analysed.

    ``episodes`` is ``SchemeData.episodes``; None when it has no ``episode`` column.

    Examples
    --------
    >>> frame = pd.DataFrame({"client_id": ["a", "a", "b"], "episode": [1, 2, 1],
    ...                       "analysed": [True, False, True]})
    >>> count_episodes(frame)
    (1, 1)
    """
    if episodes is None or "episode" not in episodes or episodes["episode"].isna().all():
        return None
    per_client = episodes.groupby("client_id")["episode"].size()
    return int((per_client > 1).sum()), int((~episodes["analysed"].astype(bool)).sum())


def analyse_data_quality(scheme: SchemeData, *, params: SchemeParams) -> DataQualityResult:
    """Reconcile rows, count exclusion reasons and measure field completeness."""
    rule = params.disclosure.rule()
    reconciliation = disclose_table(
        scheme.reconciliation, ["n_read", "n_used", "n_excluded"], rule=rule
    )
    reasons = (
        scheme.exclusions.drop_duplicates(["table", "row"])
        # the first reason of each row, without the offending value (values stay internal)
        .assign(
            reason=lambda f: (
                f["reason"].str.split(";").str[0].str.replace(r" = [^ ;]+", "", regex=True)
            )
        )
        .groupby(["table", "column", "reason"], as_index=False)
        .size()
        .rename(columns={"size": "n_rows"})
    )
    return DataQualityResult(
        reconciliation=reconciliation,
        exclusion_reasons=disclose_table(reasons, ["n_rows"], rule=rule),
        completeness=field_completeness(scheme),
        ignored_columns=tuple(
            sorted(f"{t}.{c}" for t, c in scheme.ignored_columns.itertuples(index=False))
        ),
        missing_tables=tuple(name for name in TABLES if scheme.table(name) is None),
        value_mapping=summarise_value_mapping(getattr(scheme, "mapping_report", None), rule),
        episode_rule=getattr(scheme, "episode_rule", "first"),
        episodes=count_episodes(getattr(scheme, "episodes", None)),
    )


def field_completeness(scheme: SchemeData) -> pd.DataFrame:
    """Percentage of used rows with a value, for every field of the data contract."""
    rows = []
    for name, spec in TABLES.items():
        frame = scheme.table(name)
        if frame is None or frame.empty:
            continue
        for column in spec.columns:
            if column.name in ("nhs_number", "date_of_birth") or column.name.startswith("item_"):
                continue
            if column.name not in frame.columns:
                share = 0.0
            elif isinstance(frame, StreamedTable):  # rows on disk: counted in SQL
                share = frame.percent_present(column.name)
            else:
                share = frame[column.name].notna().mean() * 100
            rows.append(
                (name, column.name, "required" if column.required else "optional", round(share, 1))
            )
    return pd.DataFrame(rows, columns=["table", "column", "status", "percent_complete"])


def complete_period_counts(dates: pd.Series, period: str) -> pd.Series:
    """Referrals per period, zeros included, without the usually part-covered first and last."""
    counts = dates.dt.to_period(period).value_counts().sort_index()
    full = pd.period_range(counts.index.min(), counts.index.max(), freq=period)
    return counts.reindex(full, fill_value=0).iloc[1:-1]


@dataclass(frozen=True)
class ReferralsResult:
    """Referrals per period, rounded, as an XmR chart.

    Attributes
    ----------
    unit
        ``"month"``, or ``"quarter"`` when a month has 1 to 7 referrals.
    chart
        XmR chart of the rounded counts of the complete periods.
    """

    unit: str
    chart: XmrResult


def analyse_referrals(scheme: SchemeData, *, params: SchemeParams) -> ReferralsResult:
    """Referrals per month as a Making Data Count XmR chart of rounded counts.

    Monthly counts are rounded before charting; when a month has 1 to 7 referrals the
    chart uses quarters instead. Raises ``InsufficientData`` when a quarter does too,
    or there are fewer than ``MIN_SPC_POINTS`` complete periods.
    """
    rule = params.disclosure.rule()
    dates = scheme.clients["referral_date"].dropna()
    for period, unit in (("M", "month"), ("Q", "quarter")):
        counts = complete_period_counts(dates, period)
        if len(counts) >= MIN_SPC_POINTS and not ((counts >= 1) & (counts <= rule.threshold)).any():
            rounded = disclose_count(counts.to_numpy(), rule).astype(float).to_numpy()
            chart = xmr(rounded, dates=counts.index.to_timestamp(), improvement=None)
            return ReferralsResult(unit=unit, chart=chart)
    raise InsufficientData(
        "Referrals per month or quarter are too few to chart without revealing small "
        "counts, or there are fewer than 12 complete periods."
    )
