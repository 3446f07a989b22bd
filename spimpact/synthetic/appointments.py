"""GP appointments of clients and of a comparison pool, with a known effect of referral.

Every person has a transient rise in attendance around the index month (larger on
average for clients): the regression-to-the-mean trap that the matched comparison
is there to avoid. The true rate ratio and the average effect on clients go to
``truth.json``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.synthetic.clients import expand
from spimpact.synthetic.people import referral_dates, simulate_people, tokens
from spimpact.synthetic.schemes import EXTRACT_DATE, WINDOW_MONTHS, SchemeSpec


def simulate_pool(spec: SchemeSpec, areas, rng) -> pd.DataFrame:
    """Comparison patients: ``comparison_ratio`` people per client, from the same areas."""
    n = spec.n_clients * spec.comparison_ratio
    pool = simulate_people(n, areas, spec.ethnic_mix, rng)
    pool.insert(0, "patient_id", tokens(rng, n, "CP-"))
    pool.insert(1, "index_date", np.sort(referral_dates(n, rng)))
    pool["peak"] = rng.gamma(1.2, 0.35, size=n)  # smaller pre-index rises than clients on average
    return pool


def simulate_appointments(spec: SchemeSpec, clients, pool, rng, *, extract_date=EXTRACT_DATE):
    """Everyone's GP appointments and the truth of the effect on attendance."""
    people = clients[["client_id", "referral_date", "age", "imd_decile"]].rename(
        columns={"client_id": "patient_id", "referral_date": "index_date"}
    )
    people["treated"] = True
    people["peak"] = rng.gamma(2.0, 0.45, size=len(people))
    if pool is not None:
        other = pool[["patient_id", "index_date", "age", "imd_decile", "peak"]].assign(
            treated=False
        )
        people = pd.concat([people, other], ignore_index=True)
    n = len(people)
    base_rate = rng.gamma(3.0, 0.13, size=n) * np.exp(
        0.006 * (people["age"].to_numpy() - 50) - 0.03 * (people["imd_decile"].to_numpy() - 5)
    )
    base_rate = base_rate * np.where(people["treated"], 1.25, 1.0)
    # two years of history before the index month: the earlier year is what matching on
    # prior attendance may use without touching the months the comparison itself uses
    # month 0 is the month of referral (or index date); analyses compare months -12..-1
    # with months 0..11
    months = np.arange(-2 * WINDOW_MONTHS, WINDOW_MONTHS)
    # transient rise peaking in the index month, decaying after it (regression to the mean)
    shape = np.exp(-np.abs(months) / 1.5)
    rate = base_rate[:, None] * (1 + people["peak"].to_numpy()[:, None] * shape[None, :])
    # the scheme's effect starts the month after referral: partial for 3 months, then full
    effect = np.where(
        months > 0, np.where(months <= 3, 1 - (1 - spec.gp_rate_ratio) / 2, spec.gp_rate_ratio), 1.0
    )
    treated = people["treated"].to_numpy()
    rate_treated = rate * np.where(treated[:, None], effect[None, :], 1.0)
    month_start = people["index_date"].to_numpy().astype("datetime64[M]")[:, None] + months[
        None, :
    ].astype("timedelta64[M]")
    in_extract = month_start <= np.datetime64(extract_date, "M")
    counts = rng.poisson(rate_treated) * in_extract
    # truth: average effect on clients per observed person-month in months 0..11
    # (month 0, the month of referral, has no effect yet)
    post = (months >= 0)[None, :] & in_extract & treated[:, None]
    att = float(((rate_treated - rate)[post]).mean())
    truth = {
        "rate_ratio_months_1_to_3": round(1 - (1 - spec.gp_rate_ratio) / 2, 4),
        "rate_ratio_months_4_to_11": spec.gp_rate_ratio,
        "gp_att_per_person_month": round(att, 5),
        "outcome": (
            "attended clinical appointments (all clinical staff, link-worker slots excluded) "
            "per person-month"
        ),
        "window_months": WINDOW_MONTHS,
    }
    person_idx, month_idx = np.nonzero(counts)
    reps = counts[person_idx, month_idx]
    person_idx = np.repeat(person_idx, reps)
    month_idx = np.repeat(month_idx, reps)
    start = month_start[person_idx, month_idx].astype("datetime64[D]")
    dates = start + rng.integers(0, 28, size=len(start)).astype("timedelta64[D]")
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
    appointments = appointments[appointments["appointment_date"] <= extract_date]
    appointments = appointments.sort_values(
        ["appointment_date", "patient_id", "staff_role"], kind="stable"
    )
    return appointments.reset_index(drop=True), truth
