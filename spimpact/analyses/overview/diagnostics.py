"""Data-quality diagnostics for the analyst-only notebook (issue 18).

The report shows exclusions only as disclosure-controlled counts by reason. Here the
analyst sees every excluded row with its source file and line, how complete each
field is month by month (recording drift) and how measures are used by site or
link worker where the data record one. Row-level and exact: analyst tier only.
"""

from __future__ import annotations

import pandas as pd

from spimpact.contract import TABLES
from spimpact.io import SchemeData

# Client columns that name where or by whom a client was seen, when a scheme records one.
SITE_COLUMNS = ("link_worker", "link_worker_id", "site", "site_id", "practice_code")


def exclusions_list(scheme: SchemeData) -> pd.DataFrame:
    """Every excluded row with its source file and line: ``reason, file, line, column, value``.

    For data mapped from a scheme's own export the file and line are those of the
    export (the ``source`` and ``line`` the loader records). Sorted by reason, file and
    line. ``value`` is as logged on load (identifying values are withheld there already).
    """
    exclusions = scheme.exclusions
    files = {name: path.name for name, path in scheme.source_files.items()}
    file = exclusions["table"].map(lambda t: files.get(t, f"{t}.csv"))
    line = exclusions["row"]
    if "source" in exclusions and "line" in exclusions:  # rows mapped from a scheme's export
        file = exclusions["source"].where(exclusions["source"].notna(), file)
        line = exclusions["line"].where(exclusions["line"].notna(), line)
    table = pd.DataFrame(
        {
            "reason": exclusions["reason"].astype(str).to_numpy(),
            "file": file.astype(str).to_numpy(),
            "line": pd.to_numeric(line).astype("Int64").to_numpy(),
            "column": exclusions["column"].to_numpy(),
            "value": exclusions["value"].to_numpy(),
        }
    )
    return table.sort_values(["reason", "file", "line"], kind="stable").reset_index(drop=True)


def exclusions_by_reason(scheme: SchemeData) -> pd.DataFrame:
    """Excluded rows per reason and file (exact counts): ``reason, file, n_rows, lines``.

    ``lines`` lists the source line numbers (the first 20, then "...").
    """
    table = exclusions_list(scheme)
    rows = []
    for (reason, file), group in table.groupby(["reason", "file"], sort=True):
        lines = sorted(set(group["line"].dropna().astype(int)))
        shown = ", ".join(map(str, lines[:20])) + (", ..." if len(lines) > 20 else "")
        rows.append((reason, file, len(lines), shown))
    return pd.DataFrame(rows, columns=["reason", "file", "n_rows", "lines"])


def completeness_by_month(scheme: SchemeData) -> pd.DataFrame:
    """Percentage of clients referred each month with each field recorded.

    Client fields of the data contract (identifiers and dates of birth left out), plus
    ``baseline measure`` and ``follow-up measure``: the share of the month's clients
    with any measure at time point 0, and at a later time point. Columns
    ``referral_month, n_clients`` and one per field; a drop over time is drift in
    recording.
    """
    clients = scheme.clients
    months = pd.to_datetime(clients["referral_date"]).dt.to_period("M").astype(str)
    fields = [
        c.name
        for c in TABLES["clients"].columns
        if c.name in clients.columns
        and c.name not in ("client_id", "nhs_number", "date_of_birth", "referral_date")
    ]
    recorded = clients[fields].notna().astype(float)
    measures = scheme.measures
    for label, at_baseline in (("baseline measure", True), ("follow-up measure", False)):
        timepoints = measures["timepoint"].astype(int)
        ids = set(measures.loc[(timepoints == 0) if at_baseline else (timepoints > 0), "client_id"])
        recorded[label] = clients["client_id"].isin(ids).astype(float).to_numpy()
    table = (recorded * 100).groupby(months.to_numpy()).mean().round(1)
    table.insert(0, "n_clients", months.value_counts().reindex(table.index).to_numpy())
    return table.rename_axis("referral_month").reset_index()


def measure_use_by_site(scheme: SchemeData, columns=SITE_COLUMNS) -> pd.DataFrame:
    """How measures are used by each site or link worker, where the clients table records one.

    For the first of ``columns`` the clients table has: ``<column>, n_clients,
    percent_baseline, percent_follow_up, measures`` (the measures used, most used
    first). Empty when none is recorded.
    """
    clients = scheme.clients
    present = [c for c in columns if c in clients.columns]
    if not present:
        return pd.DataFrame()
    by = present[0]
    measures = scheme.measures.merge(clients[["client_id", by]], on="client_id", how="inner")
    timepoints = measures["timepoint"].astype(int)
    baseline = set(measures.loc[timepoints == 0, "client_id"])
    follow_up = set(measures.loc[timepoints > 0, "client_id"])
    rows = []
    groups = clients.assign(**{by: clients[by].astype("string").fillna("(not recorded)")})
    for site, group in groups.groupby(by, sort=True):
        ids = group["client_id"]
        used = measures.loc[measures["client_id"].isin(ids), "measure"].value_counts()
        rows.append(
            {
                by: site,
                "n_clients": len(group),
                "percent_baseline": round(100 * ids.isin(baseline).mean(), 1),
                "percent_follow_up": round(100 * ids.isin(follow_up).mean(), 1),
                "measures": ", ".join(f"{m} ({n})" for m, n in used.items()),
            }
        )
    return pd.DataFrame(rows)
