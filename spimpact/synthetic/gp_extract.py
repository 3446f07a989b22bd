"""A coded GP extract: an example scheme as the ICB's GP data service sends it.

A scheme whose link workers record in the GP clinical system has no referral table:
its referrals are SNOMED CT codes in a long table of coded events, one row per
patient, date and code (``871731000000106`` referral to social prescribing accepted,
``871711000000103`` declined, ``871691000000100`` offered), and its questionnaire
answers are coded events too, with the answer as the event's value, under local codes
the practices set up (no national code exists for the items; ``params/mappings/``
holds the code list). Beside the events come the patients' demographics, their GP
appointments in the clinical system's own labels, the ICB's comparison cohort, the
link workers' own records and the population. The ICB's data service replaces NHS
numbers by its own pseudonyms before anything leaves it, so every file carries the
same ``Patient_ID``. :func:`write_gp_extract` writes them and returns the true mapping.

What a coded extract cannot carry is lost on the way: referral source (every
referral is a GP's), consent and closure of episodes, time-point labels (forms are
numbered in date order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.synthetic.exporting import ExportTruth, as_int_text, local_dates, relabel
from spimpact.synthetic.people import tokens

EVENTS_FILE = "GP_Extract_Coded_Events.csv"
PATIENTS_FILE = "GP_Extract_Patients.csv"
APPOINTMENTS_FILE = "GP_Extract_Appointments.csv"
COHORT_FILE = "ICB_Comparison_Cohort.csv"

ACCEPTED, DECLINED, OFFERED = "871731000000106", "871711000000103", "871691000000100"
# Local codes of the questionnaire items (code, measure, item), as the practices' code
# list in params/mappings/riverside_wellbeing_codes.csv names them.
ITEM_CODES = {
    ("ons4", 1): "RVSP0001",
    ("ons4", 2): "RVSP0002",
    ("ons4", 3): "RVSP0003",
    ("ons4", 4): "RVSP0004",
    ("ucla3", 1): "RVSP0011",
    ("ucla3", 2): "RVSP0012",
    ("ucla3", 3): "RVSP0013",
    ("ons_loneliness", 1): "RVSP0021",
}
EVENT_HEADERS = {"patient_id": "Patient_ID", "date": "Event_Date", "code": "SNOMED_Code",
                 "value": "Value"}  # fmt: skip

PATIENT_HEADERS = {
    "client_id": "Patient_ID",
    "date_of_birth": "Date_Of_Birth",
    "sex": "Gender",
    "ethnic_category": "Ethnic_Category",
    "lsoa_code": "LSOA_2011",
    "imd_decile": "IMD_Decile",
    "practice_code": "Practice_Code",
}
GENDER = {"female": "Female", "male": "Male", "other": "Indeterminate", "unknown": "Unknown"}
# The data service writes the national code and its description: "A - White - British".
ETHNIC_DESCRIPTIONS = {
    "A": "White - British",
    "B": "White - Irish",
    "C": "White - Any other White background",
    "D": "Mixed - White and Black Caribbean",
    "E": "Mixed - White and Black African",
    "F": "Mixed - White and Asian",
    "G": "Mixed - Any other mixed background",
    "H": "Asian or Asian British - Indian",
    "J": "Asian or Asian British - Pakistani",
    "K": "Asian or Asian British - Bangladeshi",
    "L": "Asian or Asian British - Any other Asian background",
    "M": "Black or Black British - Caribbean",
    "N": "Black or Black British - African",
    "P": "Black or Black British - Any other Black background",
    "R": "Other Ethnic Groups - Chinese",
    "S": "Other Ethnic Groups - Any other ethnic group",
    "Z": "Not stated",
    "99": "Not known",
}

APPOINTMENT_HEADERS = {
    "patient_id": "Patient_ID",
    "appointment_date": "Appointment_Date",
    "staff_role": "Clinician_Type",
    "mode": "Consultation_Mode",
    "status": "Appointment_Status",
    "slot_category": "National_Slot_Category",
}
CLINICIANS = {
    "gp": ("GP", "GP Registrar"),
    "nurse": ("Practice Nurse", "Advanced Nurse Practitioner"),
    "other_clinical": ("Healthcare Assistant", "Clinical Pharmacist", "Physiotherapist"),
    "admin": ("Administrator", "Receptionist"),
    "social_prescribing_link_worker": "Social Prescribing Link Worker",
}
CONSULTATION_MODES = {
    "face_to_face": "Face-to-Face",
    "telephone": "Telephone",
    "video": "Video Conference",
    "online": "Online",
    "home_visit": "Home Visit",
}
STATUSES = {
    "attended": "Finished",
    "dna": "Did Not Attend",
    "cancelled": ("Cancelled by Patient", "Cancelled by Unit"),
}

COHORT_HEADERS = {
    "patient_id": "Patient_ID",
    "index_date": "Index_Date",
    "age": "Age_At_Index",
    "sex": "Gender",
    "ethnic_category": "Ethnic_Category",
    "lsoa_code": "LSOA_2011",
    "imd_decile": "IMD_Decile",
    "practice_code": "Practice_Code",
}
APPOINTMENT_DATE_FORMAT = "%d/%m/%Y"
# Share of clients whose referral was first offered (an "offered" code some days
# before the accepted one), and declined referrals per client (people who are not
# clients, taken from the comparison cohort when there is one).
P_OFFERED, DECLINED_PER_CLIENT = 0.4, 0.12


def write_gp_extract(tables: dict, folder: Path, rng) -> ExportTruth:
    """Write ``tables`` (keyed by ``nhs_number``) as a pseudonymised GP extract.

    Parameters
    ----------
    tables
        Contract tables of one scheme keyed by NHS number (``clients``, ``measures``,
        optionally ``gp_appointments``, ``comparison_pool``, ``contacts``,
        ``support_offered``, ``feedback``, ``population``).
    folder
        Where to write the extract's files.
    rng
        ``numpy.random.Generator``.

    Returns
    -------
    ExportTruth
    """
    folder = Path(folder)
    truth = ExportTruth()
    pseudonym = _pseudonyms(tables, rng)
    clients = tables["clients"]
    pool = tables.get("comparison_pool")

    events = pd.concat(
        [_referral_events(clients, pool, pseudonym, rng), _item_events(tables["measures"],
                                                                        pseudonym)],
        ignore_index=True,
    ).sort_values(["date", "patient_id", "code"], kind="stable")  # fmt: skip
    events["date"] = local_dates(events["date"], "%Y-%m-%d")
    truth.add_columns(EVENTS_FILE, "coded_events", EVENT_HEADERS)
    _write(events[list(EVENT_HEADERS)].rename(columns=EVENT_HEADERS), folder / EVENTS_FILE)

    patients = _patients(clients, pool, pseudonym, rng, truth)
    _write(patients, folder / PATIENTS_FILE)

    if "gp_appointments" in tables:
        appointments = tables["gp_appointments"].copy()
        appointments["patient_id"] = appointments.pop("nhs_number").map(pseudonym)
        appointments = appointments[list(APPOINTMENT_HEADERS)]
        for column, labels in (("staff_role", CLINICIANS), ("mode", CONSULTATION_MODES),
                               ("status", STATUSES)):  # fmt: skip
            appointments[column] = relabel(appointments[column], labels, rng, p_other=0.2)
            truth.add_labels("gp_appointments", column, labels, appointments[column])
        appointments["appointment_date"] = local_dates(
            appointments["appointment_date"], APPOINTMENT_DATE_FORMAT
        )
        truth.add_columns(APPOINTMENTS_FILE, "gp_appointments", APPOINTMENT_HEADERS)
        _write(appointments.rename(columns=APPOINTMENT_HEADERS), folder / APPOINTMENTS_FILE)
    if pool is not None:
        cohort = pool.copy()
        cohort["patient_id"] = cohort.pop("nhs_number").map(pseudonym)
        cohort = cohort[list(COHORT_HEADERS)]
        cohort["sex"] = relabel(cohort["sex"], GENDER, rng)
        cohort["ethnic_category"] = _ethnicity(cohort["ethnic_category"])
        cohort["index_date"] = local_dates(cohort["index_date"], "%Y-%m-%d")
        for column in ("age", "imd_decile"):
            cohort[column] = as_int_text(cohort[column])
        truth.add_columns(COHORT_FILE, "comparison_pool", COHORT_HEADERS)
        _write(cohort.rename(columns=COHORT_HEADERS), folder / COHORT_FILE)
    # the link workers' own records and the population, pseudonymised alike
    for name in ("contacts", "support_offered", "feedback", "population"):
        frame = tables.get(name)
        if frame is None:
            continue
        frame = frame.copy()
        if "nhs_number" in frame:
            position = frame.columns.get_loc("nhs_number")
            frame.insert(position, "client_id", frame.pop("nhs_number").map(pseudonym))
        frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    return truth


def _pseudonyms(tables: dict, rng) -> dict[str, str]:
    """The data service's pseudonym of every NHS number in the extract."""
    numbers = pd.concat(
        [
            tables["clients"]["nhs_number"],
            tables.get("comparison_pool", pd.DataFrame({"nhs_number": []}))["nhs_number"],
        ]
    ).unique()
    return dict(zip(numbers, tokens(rng, len(numbers), "P"), strict=True))


def _referral_events(clients, pool, pseudonym, rng) -> pd.DataFrame:
    ids = clients["nhs_number"].map(pseudonym)
    accepted = pd.DataFrame(
        {"patient_id": ids, "date": clients["referral_date"], "code": ACCEPTED, "value": ""}
    )
    offered = accepted[rng.uniform(size=len(accepted)) < P_OFFERED].copy()
    offered["code"] = OFFERED
    offered["date"] = offered["date"] - pd.to_timedelta(
        rng.integers(1, 15, size=len(offered)), unit="D"
    )
    frames = [accepted, offered]
    n_declined = int(round(DECLINED_PER_CLIENT * len(clients)))
    if pool is not None and n_declined:
        who = pool.iloc[np.sort(rng.choice(len(pool), size=n_declined, replace=False))]
        frames.append(
            pd.DataFrame(
                {
                    "patient_id": who["nhs_number"].map(pseudonym).to_numpy(),
                    "date": pd.to_datetime(who["index_date"]).to_numpy(),
                    "code": DECLINED,
                    "value": "",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _item_events(measures: pd.DataFrame, pseudonym) -> pd.DataFrame:
    items = [c for c in measures.columns if c.startswith("item_")]
    long = measures.melt(
        id_vars=["nhs_number", "measure", "date"], value_vars=items, var_name="item"
    ).dropna(subset=["value"])
    long["item"] = long["item"].str.removeprefix("item_").astype(int)
    codes = [ITEM_CODES[(m, k)] for m, k in zip(long["measure"], long["item"], strict=True)]
    return pd.DataFrame(
        {
            "patient_id": long["nhs_number"].map(pseudonym).to_numpy(),
            "date": pd.to_datetime(long["date"]).to_numpy(),
            "code": codes,
            "value": as_int_text(long["value"]).to_numpy(),
        }
    )


def _ethnicity(codes: pd.Series) -> pd.Series:
    """``A - White - British``: the national code and its description, blank if unknown."""
    return codes.map(
        lambda c: None if c is None or pd.isna(c) else f"{c} - {ETHNIC_DESCRIPTIONS[c]}"
    )


def _patients(clients, pool, pseudonym, rng, truth: ExportTruth) -> pd.DataFrame:
    """Demographics of the clients, with a date of birth giving their age at referral."""
    frame = clients.copy()
    frame["client_id"] = frame.pop("nhs_number").map(pseudonym)
    referral = pd.to_datetime(frame["referral_date"])
    # a birthday within the year before the referral's anniversary keeps the age
    days = rng.integers(1, 365, size=len(frame))
    birth = pd.to_datetime(
        [
            (r - pd.DateOffset(years=int(a))) - pd.Timedelta(days=int(d))
            for r, a, d in zip(referral, frame["age"], days, strict=True)
        ]
    )
    frame["date_of_birth"] = local_dates(pd.Series(birth, index=frame.index), "%d/%m/%Y")
    frame = frame[list(PATIENT_HEADERS)]
    frame["sex"] = relabel(frame["sex"], GENDER, rng)
    frame["ethnic_category"] = _ethnicity(frame["ethnic_category"])
    frame["imd_decile"] = as_int_text(frame["imd_decile"])
    truth.add_labels("clients", "sex", GENDER, frame["sex"])
    truth.add_columns(PATIENTS_FILE, "clients", PATIENT_HEADERS)
    return frame.rename(columns=PATIENT_HEADERS)


def _write(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)
