"""GP appointments of clients and of a comparison pool, with a known effect of referral.

Clients have a transient rise in attendance around referral that comparison patients do
not share (each scheme its own asymmetric shape, :data:`~spimpact.synthetic.
attendance_shapes.PEAK_SHAPES`): the trap a plain before/after comparison, or a design
that compares the months of the rise, falls into. Months are whole months from the index
date (month 0 starts on it), as in the attendance panel, with three years of history.
The truth in ``truth.json`` is the average effect on clients over the months the primary
design compares after referral (months 3 to 11), computed from the simulated rates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.synthetic.attendance_scenarios import (
    HISTORY_MONTHS,
    TRUTH_POST_MONTHS,
    calendar_level,
)
from spimpact.synthetic.attendance_shapes import effect_by_month, peak_profile
from spimpact.synthetic.clients import expand
from spimpact.synthetic.people import referral_dates, simulate_people, tokens
from spimpact.synthetic.schemes import EXTRACT_DATE, WINDOW_MONTHS, SchemeSpec


def simulate_pool(spec: SchemeSpec, areas, rng) -> pd.DataFrame:
    """Comparison patients: ``comparison_ratio`` people per client, from the same areas."""
    n = spec.n_clients * spec.comparison_ratio
    pool = simulate_people(n, areas, spec.ethnic_mix, rng)
    pool.insert(0, "patient_id", tokens(rng, n, "CP-"))
    pool.insert(1, "index_date", np.sort(referral_dates(n, rng)))
    return pool


def month_starts(index_dates: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Start of month ``m`` after each index date: the index day, clamped to the month's end.

    As the attendance panel counts months (and SQL ``add_months``). Returns a
    ``datetime64[D]`` array of shape ``(len(index_dates), len(months) + 1)``: the last
    column is the end of the last month.

    Examples
    --------
    >>> month_starts(np.array(["2024-01-31"], dtype="datetime64[D]"), np.arange(2)).tolist()
    [[datetime.date(2024, 1, 31), datetime.date(2024, 2, 29), datetime.date(2024, 3, 31)]]
    """
    index_dates = np.asarray(index_dates).astype("datetime64[D]")
    first_of_month = index_dates.astype("datetime64[M]")
    day = (index_dates - first_of_month.astype("datetime64[D]")).astype(int)
    edges = np.append(months, months[-1] + 1)
    month = first_of_month[:, None] + edges[None, :].astype("timedelta64[M]")
    length = ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(int)
    return month.astype("datetime64[D]") + np.minimum(day[:, None], length - 1)


def simulate_appointments(spec: SchemeSpec, clients, pool, rng):
    """Everyone's GP appointments and the truth of the effect on attendance."""
    people = clients[["client_id", "referral_date", "age", "imd_decile"]].rename(
        columns={"client_id": "patient_id", "referral_date": "index_date"}
    )
    people["treated"] = True
    if pool is not None:
        other = pool[["patient_id", "index_date", "age", "imd_decile"]].assign(treated=False)
        people = pd.concat([people, other], ignore_index=True)
    treated = people["treated"].to_numpy()
    n = len(people)
    base_rate = rng.gamma(3.0, 0.13, size=n) * np.exp(
        0.006 * (people["age"].to_numpy() - 50) - 0.03 * (people["imd_decile"].to_numpy() - 5)
    )
    base_rate = base_rate * np.where(treated, 1.25, 1.0)
    # clients only: a transient rise of person-specific size, in the scheme's own shape
    peak_size = np.where(treated, rng.gamma(2.0, 0.45, size=n), 0.0)
    months = np.arange(-HISTORY_MONTHS, WINDOW_MONTHS)
    starts = month_starts(people["index_date"].to_numpy(), months)
    calendar = starts[:, :-1].astype("datetime64[M]").astype(int)  # months since 1970
    season = calendar_level(calendar - (2023 - 1970) * 12, secular_trend=False)
    untreated = (
        base_rate[:, None]
        * season
        * (1 + peak_size[:, None] * peak_profile(spec.client_peak, months)[None, :])
    )
    effect = effect_by_month(spec.gp_rate_ratio, months)
    rate = untreated * np.where(treated[:, None], effect[None, :], 1.0)
    # a month is in the extract when it ends by the extract date (as the panel keeps it)
    in_extract = starts[:, 1:] <= np.datetime64(EXTRACT_DATE + pd.Timedelta(days=1), "D")
    counts = rng.poisson(rate) * in_extract
    truth = _truth(spec, months, rate[treated], untreated[treated], in_extract[treated])
    person_idx, month_idx = np.nonzero(counts)
    reps = counts[person_idx, month_idx]
    person_idx = np.repeat(person_idx, reps)
    month_idx = np.repeat(month_idx, reps)
    start = starts[person_idx, month_idx]
    length = (starts[person_idx, month_idx + 1] - start).astype(int)
    dates = start + np.floor(rng.uniform(size=len(start)) * length).astype("timedelta64[D]")
    m = len(dates)
    role = rng.choice(["gp", "nurse", "other_clinical"], size=m, p=[0.6, 0.28, 0.12])
    appointments = pd.DataFrame(
        {
            "patient_id": people["patient_id"].to_numpy()[person_idx],
            "appointment_date": dates,
            "staff_role": role,
            "mode": rng.choice(
                ["face_to_face", "telephone", "video", "online", "home_visit"],
                size=m,
                p=[0.62, 0.3, 0.03, 0.03, 0.02],
            ),
            "status": "attended",
            "slot_category": rng.choice(
                [
                    "General Consultation Routine",
                    "General Consultation Acute",
                    "Clinical Triage",
                    "Planned Clinics",
                ],
                size=m,
                p=[0.45, 0.3, 0.15, 0.1],
            ),
        }
    )
    # Did-not-attend and cancelled bookings, admin slots and link-worker slots: not outcomes.
    noise_n = int(0.12 * m)
    noise_src = rng.integers(0, m, size=noise_n)
    noise = appointments.iloc[noise_src].copy()
    noise["status"] = rng.choice(["dna", "cancelled"], size=noise_n, p=[0.6, 0.4])
    admin = appointments.iloc[rng.integers(0, m, size=int(0.04 * m))].copy()
    admin["staff_role"] = "admin"
    admin["slot_category"] = "Non-contractual chargeable work"
    lw_owner, lw_k = expand(rng.integers(1, 4, size=len(clients)))
    lw_dates = clients["referral_date"].to_numpy()[lw_owner] + (
        7 + 21 * lw_k + rng.integers(0, 7, size=len(lw_k))
    ).astype("timedelta64[D]")
    link_worker = pd.DataFrame(
        {
            "patient_id": clients["client_id"].to_numpy()[lw_owner],
            "appointment_date": lw_dates,
            "staff_role": "social_prescribing_link_worker",
            "mode": "face_to_face",
            "status": "attended",
            "slot_category": "Social Prescribing Service",
        }
    )
    appointments = pd.concat([appointments, noise, admin, link_worker], ignore_index=True)
    appointments["appointment_date"] = pd.to_datetime(appointments["appointment_date"])
    appointments = appointments[appointments["appointment_date"] <= EXTRACT_DATE]
    appointments = appointments.sort_values(
        ["appointment_date", "patient_id", "staff_role"], kind="stable"
    )
    return appointments.reset_index(drop=True), truth


def _truth(spec: SchemeSpec, months, rate, untreated, observed) -> dict:
    """The true effect on clients over the primary design's post-period months.

    ``gp_att_per_person_month``: mean over clients (with an observed month in the year
    before referral and one in months 3 to 11) of their mean effect per observed month
    3 to 11, in appointments per person-month; ``gp_rate_ratio_post``: their expected
    appointments with the effect over those without it, over the same person-months.
    """
    first, last = TRUTH_POST_MONTHS
    post = observed & ((months >= first) & (months <= last))[None, :]
    before = observed & ((months >= -WINDOW_MONTHS) & (months < 0))[None, :]
    eligible = post.any(axis=1) & before.any(axis=1)
    difference = np.where(post, rate - untreated, 0.0)[eligible]
    per_client = difference.sum(axis=1) / post[eligible].sum(axis=1)
    mask = post[eligible]
    return {
        "gp_att_per_person_month": round(float(per_client.mean()), 5),
        "gp_rate_ratio_post": round(
            float(rate[eligible][mask].sum() / untreated[eligible][mask].sum()), 4
        ),
        "rate_ratio_months_1_to_2": round(1 - (1 - spec.gp_rate_ratio) / 2, 4),
        "rate_ratio_from_month_3": spec.gp_rate_ratio,
        "post_months": [first, last],
        "pre_referral_rise": spec.client_peak,
        "outcome": (
            "attended clinical appointments (all clinical staff, link-worker slots excluded) "
            "per person-month"
        ),
        "estimand": (
            f"average effect on clients (each counted once) over months {first} to {last} "
            "after referral, per observed month"
        ),
        "window_months": WINDOW_MONTHS,
    }
