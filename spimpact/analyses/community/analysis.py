"""Support offered: the activities and community organisations clients were connected to.

"Support offered" is one of the four sets of the PRSB Social Prescribing Information
Standard minimum dataset (SPEC section 2.1). ``analyse_community`` counts clients and
referrals per activity type and the organisations referred to; counts of people pass
the disclosure rule (SPEC section 3.2), the number of organisations is not about
individuals and is kept as counted. The words are in
``spimpact.analyses.community.section``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import disclose_count, disclose_percentage, disclose_table
from spimpact.publish.section import InsufficientData

ACTIVITY_LABELS = {
    "arts_culture": "Arts and culture",
    "physical_activity": "Physical activity",
    "nature_green": "Nature and green spaces",
    "befriending_social": "Befriending and social groups",
    "advice_welfare_debt": "Advice, welfare and debt",
    "housing": "Housing",
    "employment_learning": "Employment and learning",
    "mental_health_support": "Mental health support",
    "volunteering": "Volunteering",
    "other": "Other",
}


@dataclass(frozen=True)
class CommunityResult:
    """Clients connected to community support, by activity, and the organisations involved.

    Attributes
    ----------
    activities
        ``activity, n_clients, n_referrals`` for every activity type in
        ``ACTIVITY_LABELS`` order, disclosure-controlled; a client can be connected to
        several activities.
    n_clients_connected_published
        Clients with at least one support-offered record (disclosure-controlled;
        missing when withheld).
    n_clients_published
        Clients referred (disclosure-controlled; missing when withheld).
    percent_connected
        Clients connected as a percentage of those referred, from the rounded counts
        (missing when withheld).
    n_organisations
        Distinct ``organisation_id`` in support offered.
    """

    activities: pd.DataFrame
    n_clients_connected_published: int
    n_clients_published: int
    percent_connected: float
    n_organisations: int


def analyse_community(scheme: SchemeData, *, params: SchemeParams) -> CommunityResult:
    """Count clients and referrals per activity and the organisations clients were sent to.

    Raises ``InsufficientData`` when the scheme supplied no support-offered records.
    """
    support = scheme.support_offered
    if support is None or len(support) == 0:
        raise InsufficientData(
            "The scheme supplied no 'support offered' records, so the activities and "
            "organisations people were connected to cannot be described."
        )
    rule = params.disclosure.rule()
    n_clients_total = scheme.clients["client_id"].nunique()
    by_activity = (
        support.groupby("activity_type")
        .agg(n_clients=("client_id", "nunique"), n_referrals=("client_id", "size"))
        .reindex(list(ACTIVITY_LABELS), fill_value=0)
    )
    activities = disclose_table(
        pd.DataFrame(
            {
                "activity": [ACTIVITY_LABELS[a] for a in by_activity.index],
                "n_clients": by_activity["n_clients"].to_numpy(),
                "n_referrals": by_activity["n_referrals"].to_numpy(),
            }
        ),
        ["n_clients", "n_referrals"],
        rule,
    )
    n_connected = support["client_id"].nunique()
    n_organisations = (
        support["organisation_id"].dropna().nunique() if "organisation_id" in support else 0
    )
    return CommunityResult(
        activities=activities,
        n_clients_connected_published=disclose_count([n_connected], rule).iloc[0],
        n_clients_published=disclose_count([n_clients_total], rule).iloc[0],
        percent_connected=disclose_percentage([n_connected], [n_clients_total], rule).iloc[0],
        n_organisations=n_organisations,
    )
