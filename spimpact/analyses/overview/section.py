"""Foundation sections: scheme overview, data quality and referrals over time."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.contract import TABLES
from spimpact.io import SchemeData
from spimpact.models.spc import xmr
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import (
    DisclosureRule,
    disclose_count,
    disclose_percentage,
    disclose_table,
)
from spimpact.publish.section import InsufficientData, Section, Table

DEMOGRAPHIC_COLUMNS = {
    "age_band": "Age band",
    "sex": "Sex",
    "ethnic_group": "Ethnic group",
    "imd_quintile": "IMD quintile (1 = most deprived)",
}


def count_table(values: pd.Series, label: str, rule: DisclosureRule) -> pd.DataFrame:
    """Disclosure-controlled counts and percentages of each category, plus the total.

    The total is computed from unrounded counts and then rounded (SPEC §3.2), and
    secondary suppression stops a single suppressed cell being recovered from it.
    """
    counts = values.fillna("Not recorded").astype(str).value_counts().sort_index()
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


def overview_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Who was referred, when, from where: the scheme at a glance."""
    rule = params.disclosure.rule()
    clients = scheme.clients
    if clients.empty:
        raise InsufficientData(
            "No usable client records were found, so there is nothing to describe."
        )
    first, last = clients["referral_date"].min(), clients["referral_date"].max()
    n_clients = disclose_count([len(clients)], rule).iloc[0]
    n_text = "fewer than 8" if pd.isna(n_clients) else f"about {int(n_clients):,}"
    tables = [
        Table(
            "referral_sources",
            "Referrals by source",
            count_table(clients["referral_source"], "Referral source", rule),
        ),
        *(
            Table(
                f"demographics_{column}",
                f"Referrals by {label.split(' (')[0].lower()}",
                count_table(clients[column], label, rule),
            )
            for column, label in DEMOGRAPHIC_COLUMNS.items()
            if column in clients
        ),
    ]
    text = (
        f"**{params.title}** ({params.scheme_id}). This report covers {n_text} people referred "
        f"between {first:%B %Y} and {last:%B %Y} whose records could be used "
        "(see Data quality for every record that could not).",
        "All counts in this report are rounded to the nearest 5 and counts of 1 to 7 are "
        "not shown, so that no individual can be identified; totals are rounded from exact "
        "values and need not equal the sum of the rounded rows.",
    )
    return Section(
        title="Scheme overview",
        text=text,
        tables=tuple(tables),
        figures=(_sources_figure(tables[0].frame),),
    )


def _sources_figure(sources: pd.DataFrame):
    shown = sources[(sources.iloc[:, 0] != "Total") & sources["n"].notna()]
    fig, ax = plt.subplots(figsize=(7, 0.4 * max(len(shown), 3) + 1))
    ax.barh(shown.iloc[:, 0].astype(str), shown["n"].astype(float), color="#005eb8")
    ax.invert_yaxis()
    ax.set_xlabel("Referrals (rounded to the nearest 5)")
    ax.set_title("Where referrals came from")
    fig.tight_layout()
    return fig


def data_quality_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Rows read, used and excluded; why; and completeness of every contract field."""
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
    reasons = disclose_table(reasons, ["n_rows"], rule=rule)
    completeness = _completeness(scheme)
    tables = [
        Table(
            "reconciliation",
            "Every row read is either used or excluded with a reason",
            reconciliation,
        ),
        Table("exclusion_reasons", "Why rows were excluded (first reason per row)", reasons),
        Table(
            "completeness",
            "Completeness of each field in the data contract (% of used rows with a value)",
            completeness,
        ),
    ]
    text = [
        "Rows that broke the data contract (docs/data-contract.md) were excluded and are "
        "counted here with their reason; the full list with row numbers is available to the "
        "scheme's analyst from `spimpact validate` and is never published.",
    ]
    if not scheme.ignored_columns.empty:
        ignored = ", ".join(
            sorted(f"{t}.{c}" for t, c in scheme.ignored_columns.itertuples(index=False))
        )
        text.append(f"Columns outside the data contract were not read: {ignored}.")
    missing = [name for name in TABLES if scheme.table(name) is None]
    if missing:
        text.append(
            f"Tables not supplied: {', '.join(missing)}; the analyses that need them say so below."
        )
    return Section(title="Data quality", text=tuple(text), tables=tuple(tables))


def _completeness(scheme: SchemeData) -> pd.DataFrame:
    rows = []
    for name, spec in TABLES.items():
        frame = scheme.table(name)
        if frame is None or frame.empty:
            continue
        for column in spec.columns:
            if column.name in ("nhs_number", "date_of_birth") or column.name.startswith("item_"):
                continue
            share = frame[column.name].notna().mean() * 100 if column.name in frame else 0.0
            rows.append(
                (name, column.name, "required" if column.required else "optional", round(share, 1))
            )
    return pd.DataFrame(rows, columns=["table", "column", "status", "percent_complete"])


def _complete_period_counts(dates: pd.Series, period: str) -> pd.Series:
    """Referrals per period, zeros included, without the usually part-covered first and last."""
    counts = dates.dt.to_period(period).value_counts().sort_index()
    full = pd.period_range(counts.index.min(), counts.index.max(), freq=period)
    return counts.reindex(full, fill_value=0).iloc[1:-1]


def referrals_spc_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Referrals per month as a Making Data Count XmR chart.

    Monthly counts are rounded to the nearest 5 before charting (every published count
    passes disclosure control); when a month has 1 to 7 referrals the chart uses
    quarters instead, and when a quarter does too it is not drawn.
    """
    rule = params.disclosure.rule()
    dates = scheme.clients["referral_date"].dropna()
    for period, label in (("M", "month"), ("Q", "quarter")):  # noqa: B007 - used after the loop
        counts = _complete_period_counts(dates, period)
        if len(counts) >= 12 and not ((counts >= 1) & (counts <= rule.threshold)).any():
            break
    else:
        raise InsufficientData(
            "Referrals per month or quarter are too few to chart without revealing small "
            "counts, or there are fewer than 12 complete periods."
        )
    rounded = disclose_count(counts.to_numpy(), rule).astype(float).to_numpy()
    chart = xmr(rounded, dates=counts.index.to_timestamp(), improvement=None)
    ax = chart.plot(title=f"Referrals per {label} (XmR chart)", ylabel=f"Referrals per {label}")
    special = chart.points[chart.points["special_cause"]]
    text = [
        f"Referrals per {label}, rounded to the nearest 5, against the mean "
        f"({chart.mean:.0f}) and natural process limits ({max(chart.lower, 0):.0f} to "
        f"{chart.upper:.0f}) of an XmR chart (NHS England, *Making Data Count*). "
        + (
            f"{len(special)} {label}s show special-cause variation ("
            + ", ".join(sorted(special["special_cause_type"].str.replace("_", " ").unique()))
            + "): something changed beyond the usual month-to-month variation."
            if len(special)
            else "No point shows special-cause variation: the referral rate has been stable."
        ),
        f"The first and last {label}s are left out because they are usually only partly covered.",
    ]
    table = chart.points[["date", "value", "mean", "lower", "upper", "special_cause_type"]].rename(
        columns={"value": "referrals_rounded"}
    )
    table["date"] = pd.to_datetime(table["date"]).dt.strftime("%Y-%m")
    return Section(
        title=f"Referrals per {label}",
        text=tuple(text),
        tables=(Table("referrals_spc", f"Referrals per {label} with XmR limits", table),),
        figures=(ax.figure,),
    )
