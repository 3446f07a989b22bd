"""Scheme KPIs over time: engagement and follow-up completion per referral cohort.

For each month's referrals (quarters when months are too small) the percentage with
any contact (engagement) and the percentage who completed (discharged as completed or
gave a follow-up measure), each as a Making Data Count XmR chart
(``spimpact.models.spc.xmr``). Percentages come from counts rounded by the disclosure
rule. The first and last periods are dropped as part-covered, and completion is
charted only for cohorts referred at least ``COMPLETION_LAG_MONTHS`` months before the
data end. The words are in ``spimpact.analyses.reach.kpi_section``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.reach.analysis import completed_mask, follow_up_ids
from spimpact.io import SchemeData
from spimpact.models.spc import XmrResult, xmr
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import DisclosureRule, disclose_percentage
from spimpact.publish.section import InsufficientData

# Follow-ups are due some months after referral: a cohort's completion is only
# judged once its referrals have had this long (the default schedule's last
# follow-up is at 6 months).
COMPLETION_LAG_MONTHS = 6
MIN_SPC_POINTS = 12
# Periods tried in turn: months, then quarters when months are too small.
PERIODS = (("M", "month"), ("Q", "quarter"))


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
    completed = completed_mask(clients, follow_up_ids)
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


def last_activity(scheme: SchemeData, scores: pd.DataFrame | None) -> pd.Timestamp:
    """The latest date in the scheme's data: referral, discharge, contact or measure."""
    clients = scheme.clients
    dates = [clients[c].max() for c in ("referral_date", "discharge_date") if c in clients]
    if scheme.contacts is not None and len(scheme.contacts):
        dates.append(scheme.contacts["contact_date"].max())
    source = scores if scores is not None and len(scores) else scheme.measures
    if source is not None and len(source) and "date" in source:
        dates.append(pd.to_datetime(source["date"]).max())
    return max(d for d in dates if pd.notna(d))


def chart_kpi(kpis: pd.DataFrame, stage: str, rule: DisclosureRule) -> XmrResult | None:
    """XmR chart of a period's percentage from rounded counts; ``None`` if it cannot be drawn.

    It cannot when a period has too few referrals to publish a percentage or there
    are fewer than ``MIN_SPC_POINTS`` periods.
    """
    percent = disclose_percentage(kpis[f"n_{stage}"], kpis["n_referred"], rule)
    if percent.isna().any() or len(kpis) < MIN_SPC_POINTS:
        return None
    dates = kpis["period"].dt.to_timestamp()
    return xmr(percent.astype(float).to_numpy(), dates=dates, improvement="up")


@dataclass(frozen=True)
class KpiChart:
    """One KPI's control chart.

    Attributes
    ----------
    stage
        ``"engaged"`` (any contact) or ``"completed"`` (discharged as completed or gave
        a follow-up measure).
    unit
        Period of the chart, ``"month"`` or ``"quarter"`` (the last one tried when it
        could not be drawn).
    chart
        The XmR chart of the percentage of each period's referrals; ``None`` when
        neither months nor quarters have enough referrals or points.
    """

    stage: str
    unit: str
    chart: XmrResult | None


@dataclass(frozen=True)
class KpiResult:
    """Engagement and completion charts, and the typical monthly referrals behind them.

    Attributes
    ----------
    charts
        One ``KpiChart`` per stage, engagement first (left out without contacts).
    typical_referrals
        Median referrals per month, from first to last referral: how far rounding can
        move a monthly percentage.
    """

    charts: tuple[KpiChart, ...]
    typical_referrals: float


def analyse_kpis(
    scheme: SchemeData, scores: pd.DataFrame | None, *, params: SchemeParams
) -> KpiResult:
    """Engagement and follow-up completion per referral cohort as XmR charts.

    Raises ``InsufficientData`` without referrals.
    """
    rule = params.disclosure.rule()
    clients = scheme.clients
    if clients.empty:
        raise InsufficientData("No usable referrals were found, so KPIs cannot be charted.")
    follow_ups = follow_up_ids(scheme, scores)
    last = last_activity(scheme, scores)
    stages = ["completed"]
    if scheme.contacts is not None:
        stages.insert(0, "engaged")
    charts = tuple(
        _chart_stage(stage, clients, scheme.contacts, follow_ups, last, rule) for stage in stages
    )
    typical = float(np.median(tabulate_monthly_kpis(clients, None, follow_ups)["n_referred"]))
    return KpiResult(charts=charts, typical_referrals=typical)


def _chart_stage(stage, clients, contacts, follow_ups, last, rule: DisclosureRule) -> KpiChart:
    """The stage's chart by month, else by quarter, else none (naming the last period tried)."""
    for freq, unit in PERIODS:
        kpis = tabulate_monthly_kpis(clients, contacts, follow_ups, freq=freq).iloc[1:-1]
        if stage == "completed":
            cutoff = (last - pd.DateOffset(months=COMPLETION_LAG_MONTHS)).to_period(freq)
            kpis = kpis[kpis["period"] < cutoff]
        chart = chart_kpi(kpis, stage, rule)
        if chart is not None:
            return KpiChart(stage=stage, unit=unit, chart=chart)
    return KpiChart(stage=stage, unit=unit, chart=None)
