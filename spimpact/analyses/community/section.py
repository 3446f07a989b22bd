"""The "Connecting people to their community" section: support offered in words.

Turns a ``CommunityResult`` (``spimpact.analyses.community.analysis``) into text, the
activity table, a bar chart and headline rows at the ``community`` level of the common
outcomes framework.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spimpact.analyses.community.analysis import analyse_community
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, Section, Table


def community_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Support offered: the activities and community organisations clients were connected to.

    Parameters
    ----------
    scheme
        ``spimpact.io.SchemeData``; uses ``support_offered`` and ``clients``.
    params
        Scheme parameters (disclosure rule).

    Returns
    -------
    Section
        Table ``support_by_activity`` (clients and referrals per activity type,
        disclosure-controlled), a bar chart, and headline rows at the ``community``
        level of the common outcomes framework: clients connected to at least one
        activity (count and percentage of clients) and organisations referred to.

    Notes
    -----
    "Support offered" is one of the four sets of the PRSB Social Prescribing
    Information Standard minimum dataset (SPEC section 2.1). Counts of people pass the
    disclosure rule (SPEC section 3.2); the number of organisations is not about
    individuals and is shown as counted.
    """
    result = analyse_community(scheme, params=params)
    connected = result.n_clients_connected_published
    total = result.n_clients_published
    percent = result.percent_connected
    n_organisations = result.n_organisations
    headline = pd.DataFrame(
        [
            ("community", "Clients connected to at least one community activity",
             "n_clients_connected", connected, total,
             "count of clients with a support-offered record"),
            ("community", "Percentage of clients connected to a community activity",
             "pct_clients_connected", percent, total,
             "clients with a support-offered record / clients referred"),
            ("community", "Community organisations clients were referred to",
             "n_organisations", n_organisations, connected,
             "distinct organisation_id in support offered"),
        ],
        columns=["outcome_level", "outcome", "measure", "estimate", "n", "method"],
    )  # fmt: skip
    headline["estimate"] = pd.to_numeric(headline["estimate"], errors="coerce").astype(float)
    headline["n"] = pd.array(headline["n"], dtype="Int64")
    for column in ("std_error", "conf_low", "conf_high"):
        headline[column] = np.nan
    headline = headline.reindex(columns=list(HEADLINE_COLUMNS))

    text = [
        f"Link workers connected {_count_text(connected)} clients "
        f"({'*' if pd.isna(percent) else f'{percent:g}%'} of {_count_text(total)} referred) "
        f"to community support, through {n_organisations:,} community organisations.",
        "The table shows how many clients were connected to each kind of activity; a "
        "client can be connected to several.",
    ]
    return Section(
        title="Connecting people to their community",
        text=tuple(text),
        tables=(
            Table(
                "support_by_activity",
                "Clients and referrals by type of activity (counts rounded to 5; 1-7 shown as *)",
                result.activities,
            ),
        ),
        figures=(_plot_activities(result.activities),),
        headline=headline,
    )


def _count_text(value) -> str:
    return "fewer than 8" if pd.isna(value) else f"{int(value):,}"


def _plot_activities(table: pd.DataFrame):
    shown = table.dropna(subset=["n_clients"])
    shown = shown[shown["n_clients"] > 0].sort_values("n_clients", kind="stable")
    fig = Figure(figsize=(6.5, 0.8 + 0.35 * max(len(shown), 1)))
    ax = fig.subplots()
    ax.barh(shown["activity"], shown["n_clients"].astype(float), color="#005EB8")
    ax.set_xlabel("Clients connected (rounded to 5; suppressed groups omitted)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig
