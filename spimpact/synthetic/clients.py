"""Clients of the scheme and what happened to them: referral, contacts, support, feedback."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.contract import ACTIVITY_TYPES, REFERRAL_SOURCES
from spimpact.synthetic.people import referral_dates, simulate_people, tokens
from spimpact.synthetic.schemes import EXTRACT_DATE, SchemeSpec

REFERRAL_SOURCE_P = (0.55, 0.17, 0.10, 0.08, 0.05, 0.03, 0.02)  # in REFERRAL_SOURCES order

THEMES = (
    "confidence",
    "isolation",
    "physical_activity",
    "money_worries",
    "housing",
    "mental_health",
    "new_skills",
    "friendship",
    "nature",
)


def simulate_clients(spec: SchemeSpec, areas: pd.DataFrame, rng, *, referred=None):
    """Referred people, and the latent wellbeing their scores come from.

    ``referred`` (start, end) dates the referrals in that window instead of the usual one.
    """
    n = spec.n_clients
    # SP reaches deprived areas more: weight areas towards low deciles.
    weights = areas["population"].to_numpy(float) * np.exp(-0.12 * areas["imd_decile"].to_numpy())
    people = simulate_people(n, areas, spec.ethnic_mix, rng, area_weights=weights)
    people.insert(0, "client_id", tokens(rng, n, spec.scheme_id[:2].upper() + "-"))
    people["referral_date"] = np.sort(referral_dates(n, rng, *(referred or ())))
    people["referral_source"] = rng.choice(REFERRAL_SOURCES, size=n, p=REFERRAL_SOURCE_P)
    z_imd = (people["imd_decile"].to_numpy() - 5.5) / 2.9
    z_age = (people["age"].to_numpy() - 54) / 19
    latent = pd.DataFrame(
        {
            "person": rng.normal(0, 1, size=n),  # standardised stable wellbeing
            "z_imd": z_imd,
            "z_age": z_age,
        }
    )
    # Engagement with the link worker: lower in the most deprived and the youngest.
    p_engage = 1 / (1 + np.exp(-(1.5 + 0.25 * z_imd + 0.3 * z_age)))
    people["_engaged"] = rng.uniform(size=n) < p_engage
    return people, latent


def public_clients(
    spec: SchemeSpec, clients: pd.DataFrame, rng, *, extract_date=EXTRACT_DATE
) -> pd.DataFrame:
    """The clients table as a scheme sends it: consent, discharge, age or birth date."""
    out = clients.copy()
    n = len(out)
    out["consent_data_use"] = np.where(rng.uniform(size=n) < 0.99, "true", "false")
    out["consent_contact"] = np.where(rng.uniform(size=n) < 0.9, "yes", "no")
    discharge_reason = np.where(out["_engaged"], "completed", "disengaged")
    roll = rng.uniform(size=n)
    discharge_reason = np.where(roll < 0.06, "declined", discharge_reason)
    discharge_reason = np.where((roll >= 0.06) & (roll < 0.09), "referred_on", discharge_reason)
    discharge_reason = np.where((roll >= 0.09) & (roll < 0.11), "moved_away", discharge_reason)
    discharge_reason = np.where(
        out["_last_contact"].isna() & (discharge_reason == "completed"),
        "disengaged",
        discharge_reason,
    )
    discharge_date = out["_last_contact"].fillna(out["referral_date"] + pd.Timedelta(days=30))
    discharge_date = discharge_date + pd.to_timedelta(rng.integers(0, 21, size=n), unit="D")
    open_case = discharge_date > extract_date
    out["discharge_date"] = discharge_date.where(~open_case)
    out["discharge_reason"] = pd.Series(discharge_reason, index=out.index).where(~open_case)
    out = out.drop(columns=[c for c in out.columns if c.startswith("_")])
    if spec.age_source == "date_of_birth":
        birth = out["referral_date"] - pd.to_timedelta(
            out["age"] * 365.25 + rng.integers(0, 365, size=n), unit="D"
        )
        out.insert(out.columns.get_loc("age"), "date_of_birth", birth.dt.normalize())
        out = out.drop(columns=["age"])
    return out


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row owner and position within owner for ``counts[i]`` rows per owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.arange(len(owner)) - starts


def simulate_contacts(clients: pd.DataFrame, rng, *, extract_date=EXTRACT_DATE) -> pd.DataFrame:
    """Link-worker contacts; adds each client's last contact date to ``clients``."""
    n = len(clients)
    n_contacts = np.where(
        is_engaged(clients), rng.integers(2, 9, size=n), rng.integers(0, 2, size=n)
    )
    owner, position = expand(n_contacts)
    gaps = rng.integers(3, 35, size=len(owner))
    cumulative = np.cumsum(gaps)
    starts = (np.cumsum(n_contacts) - n_contacts)[n_contacts > 0]
    offset = cumulative - np.repeat(cumulative[starts] - gaps[starts], n_contacts[n_contacts > 0])
    dates = clients["referral_date"].to_numpy()[owner] + offset.astype("timedelta64[D]")
    kinds = rng.choice(
        ["follow_up", "group_session", "telephone_check_in", "other"],
        size=len(owner),
        p=[0.55, 0.15, 0.25, 0.05],
    )
    contacts = pd.DataFrame(
        {
            "client_id": clients["client_id"].to_numpy()[owner],
            "contact_date": dates,
            "contact_type": np.where(position == 0, "initial_assessment", kinds),
            "mode": rng.choice(
                ["face_to_face", "telephone", "video", "home_visit"],
                size=len(owner),
                p=[0.55, 0.35, 0.05, 0.05],
            ),
            "duration_minutes": rng.choice([15, 30, 45, 60], size=len(owner)),
        }
    )
    contacts = contacts[contacts["contact_date"] <= extract_date].reset_index(drop=True)
    last = contacts.groupby("client_id")["contact_date"].max()
    clients["_last_contact"] = clients["client_id"].map(last)
    return contacts


def is_engaged(clients: pd.DataFrame) -> np.ndarray:
    """Whether each client engaged with the link worker."""
    return clients["_engaged"].to_numpy()


def simulate_support(clients, rng, *, extract_date=EXTRACT_DATE) -> pd.DataFrame:
    """Activities each engaged client was offered."""
    counts = np.where(is_engaged(clients), rng.integers(1, 4, size=len(clients)), 0)
    owner, _ = expand(counts)
    dates = clients["referral_date"].to_numpy()[owner] + rng.integers(
        7, 60, size=len(owner)
    ).astype("timedelta64[D]")
    support = pd.DataFrame(
        {
            "client_id": clients["client_id"].to_numpy()[owner],
            "date": dates,
            "activity_type": rng.choice(ACTIVITY_TYPES, size=len(owner)),
            "organisation_id": [f"ORG-{k:03d}" for k in rng.integers(1, 41, size=len(owner))],
        }
    )
    return support[support["date"] <= extract_date].reset_index(drop=True)


_FIRST = (
    "Margaret",
    "David",
    "Aisha",
    "Tomasz",
    "Priya",
    "John",
    "Grace",
    "Mohammed",
    "Sian",
    "Kwame",
)

_LAST = (
    "Okafor",
    "Hughes",
    "Patel",
    "Nowak",
    "Begum",
    "Murphy",
    "Evans",
    "Khan",
    "Lloyd",
    "Mensah",
)


_PLACES = (
    "Riverside Community Centre",
    "St Mark's Church Hall",
    "Hillcrest Library",
    "North Shore Allotments",
)

_SENTENCES = {
    "confidence": "I feel more confident going out on my own now.",
    "isolation": "Before this I hardly spoke to anyone from one week to the next.",
    "physical_activity": "The walking group got me moving again.",
    "money_worries": "The advice session sorted out my benefits and the debt letters stopped.",
    "housing": "They helped me get the damp in my flat looked at.",
    "mental_health": "My mood is a lot better than when I was first referred.",
    "new_skills": "I learnt to use the computer at the library course.",
    "friendship": "I have made real friends at the group.",
    "nature": "Being outside at the garden project calms me down.",
}


def simulate_feedback(clients, latent, rng, *, extract_date=EXTRACT_DATE) -> pd.DataFrame:
    """Free-text feedback, some with names, phone numbers and dates to redact."""
    mask = is_engaged(clients) & (rng.uniform(size=len(clients)) < 0.12)
    rows = []
    for k, i in enumerate(np.flatnonzero(mask)):
        good = latent["person"].iloc[i] > 0
        p = np.full(len(THEMES), 1.0)
        if good:
            p[[0, 7]] += 1.5  # better-off clients talk more about confidence and friendship
        themes = sorted(set(rng.choice(THEMES, size=int(rng.integers(1, 4)), p=p / p.sum())))
        name = f"{rng.choice(('Mrs', 'Mr', 'Ms'))} {rng.choice(_FIRST)} {rng.choice(_LAST)}"
        when = clients["referral_date"].iloc[i] + pd.Timedelta(days=int(rng.integers(60, 200)))
        text = " ".join(_SENTENCES[t] for t in themes)
        extra = rng.integers(0, 4)
        if extra == 1:
            text = f"{name} told us: {text}"
        elif extra == 2:
            text += (
                f" You can ring me on 07700 900{rng.integers(100, 999)} if you want to hear more."
            )
        elif extra == 3:
            text += f" I first went to {rng.choice(_PLACES)} on {when:%d/%m/%Y}."
        rows.append(
            (
                f"FB-{k + 1:05d}",
                clients["client_id"].iloc[i] if rng.uniform() < 0.9 else None,
                min(when, extract_date),
                rng.choice(["case_study", "formal", "informal"], p=[0.15, 0.35, 0.5]),
                ";".join(themes),
                "true" if rng.uniform() < 0.6 else "false",
                text,
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "feedback_id",
            "client_id",
            "date",
            "feedback_type",
            "themes",
            "consent_to_quote",
            "text",
        ],
    )
