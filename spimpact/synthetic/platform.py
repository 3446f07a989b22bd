"""A case-management platform's CSV export: an example scheme as a platform sends it.

One CSV per screen of the platform, encoded Windows-1252 as many export buttons do,
with the platform's own headers and labels (2021-census ethnicity wording, closure
outcomes, "Z12345 - Surgery name" practices), UK day/month/year dates (month names
in the assessments), home postcodes beside the platform's own IMD decile, a
multi-line free-text field, and a long questionnaire table with one row per question
answered. :func:`write_platform_export` writes it and returns the true mapping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.synthetic.exporting import ExportTruth, as_int_text, local_dates, relabel
from spimpact.synthetic.places import postcode_lookup, postcodes_for, practice_names

ENCODING = "cp1252"
PREFIX = "CaseLink_"
CLIENTS_FILE = PREFIX + "Clients.csv"
ASSESSMENTS_FILE = PREFIX + "Assessments.csv"
SESSIONS_FILE = PREFIX + "Sessions.csv"
ONWARD_FILE = PREFIX + "Onward_Referrals.csv"
FEEDBACK_FILE = PREFIX + "Feedback.csv"
LOOKUP = "postcode_lookup.csv"
DATE_FORMAT = "%d/%m/%Y"
ASSESSMENT_DATE_FORMAT = "%d-%b-%Y"

CLIENT_HEADERS = {
    "client_id": "Person ID",
    "referral_date": "Referral Received",
    "referral_source": "Referral Route",
    "age": "Age at Referral",
    "date_of_birth": "Date of Birth",
    "sex": "Gender Identity",
    "ethnic_category": "Ethnic Origin",
    "imd_decile": "IMD Decile",
    "practice_code": "Registered Practice",
    "consent_data_use": "Consent - Data Sharing",
    "consent_contact": "Consent - Contact",
    "discharge_date": "Case Closed",
    "discharge_reason": "Closure Outcome",
}
POSTCODE_HEADER = "Home Postcode"
REASON_HEADER = "Reason for Referral"
ROUTES = {
    "gp": "GP Practice",
    "practice_staff": "Practice Team (non-GP)",
    "self": "Self",
    "vcse": "Community / Voluntary Organisation",
    "secondary_care": "Hospital / Secondary Care",
    "social_care": "Social Care",
    "other": "Other",
}
GENDER = {"female": "Woman", "male": "Man", "other": "Non-binary / other", "unknown": "Not known"}
ETHNICITY = {
    "A": "White: English, Welsh, Scottish, Northern Irish or British",
    "B": "White: Irish",
    "C": ("White: Any other White background", "White: Gypsy or Irish Traveller", "White: Roma"),
    "D": "Mixed: White and Black Caribbean",
    "E": "Mixed: White and Black African",
    "F": "Mixed: White and Asian",
    "G": "Mixed: Any other Mixed or multiple ethnic background",
    "H": "Asian or Asian British: Indian",
    "J": "Asian or Asian British: Pakistani",
    "K": "Asian or Asian British: Bangladeshi",
    "L": "Asian or Asian British: Any other Asian background",
    "M": "Black, Black British, Caribbean or African: Caribbean",
    "N": "Black, Black British, Caribbean or African: African",
    "P": "Black, Black British, Caribbean or African: Any other Black background",
    "R": "Asian or Asian British: Chinese",
    "S": ("Other ethnic group: Arab", "Other ethnic group: Any other ethnic group"),
    "Z": "Declined to answer",
    "99": "Not recorded",
}
CONSENT = {"true": "Consented", "false": "Not consented", "yes": "Consented", "no": "Not consented"}
OUTCOMES = {
    "completed": "Goals achieved",
    "disengaged": "Lost contact",
    "declined": "Declined service",
    "moved_away": "Moved out of area",
    "died": "Deceased",
    "referred_on": "Signposted \u2013 other service",  # en dash, as the platform writes it
    "other": "Other",
}
REASONS = (
    "Low mood since retiring.\nLives alone; daughter abroad.",
    "Debt worries and poor sleep",
    "Isolation after bereavement",
    "Wants to get more active\n(knee pain)",
    "",
)

ASSESSMENT_HEADERS = {
    "client_id": "Person ID",
    "measure": "Assessment",
    "timepoint": "Stage",
    "date": "Completed",
    "item": "Question No",
    "value": "Score",
}
QUESTION_HEADER = "Question"
ASSESSMENTS = {
    "who5": "WHO-5 Wellbeing Index",
    "eq5d5l": "EQ-5D-5L",
    "mycaw": "MYCaW",
    "swemwbs": "SWEMWBS",
    "ons4": "ONS Personal Wellbeing (ONS4)",
    "ucla3": "UCLA 3-item Loneliness",
    "ons_loneliness": "ONS Loneliness",
    "wemwbs": "WEMWBS",
}
STAGES = {"0": "Initial Assessment", "1": "Review", "2": "Final Review"}
QUESTIONS = {
    "who5": ("Cheerful and in good spirits", "Calm and relaxed", "Active and vigorous",
             "Woke up fresh and rested", "Daily life filled with interesting things"),
    "eq5d5l": ("Mobility", "Self-care", "Usual activities", "Pain / discomfort",
               "Anxiety / depression", "Health today (0-100)"),
    "mycaw": ("Concern 1: how bad", "Concern 2: how bad", "Wellbeing"),
}  # fmt: skip

SESSION_HEADERS = {
    "client_id": "Person ID",
    "contact_date": "Session Date",
    "contact_type": "Session Type",
    "mode": "Delivery Method",
    "duration_minutes": "Duration (mins)",
}
SESSION_TYPES = {
    "initial_assessment": "Initial Assessment",
    "follow_up": "Follow-up",
    "group_session": "Group Session",
    "telephone_check_in": "Welfare Call",
    "other": "Other",
}
DELIVERY = {
    "face_to_face": "In person",
    "telephone": "Telephone",
    "video": "Video",
    "online": "Online",
    "home_visit": "Home Visit",
}
ONWARD_HEADERS = {
    "client_id": "Person ID",
    "date": "Referral Date",
    "activity_type": "Service Category",
    "organisation_id": "Provider Ref",
}
SERVICES = {
    "arts_culture": "Arts & Culture",
    "physical_activity": "Physical Activity",
    "nature_green": "Green / Nature",
    "befriending_social": "Befriending & Social Groups",
    "advice_welfare_debt": "Welfare, Benefits & Debt",
    "housing": "Housing",
    "employment_learning": "Employment & Learning",
    "mental_health_support": "Mental Health Support",
    "volunteering": "Volunteering",
    "other": "Other",
}
FEEDBACK_HEADERS = {
    "feedback_id": "Feedback Ref",
    "client_id": "Person ID",
    "date": "Received",
    "feedback_type": "Feedback Type",
    "themes": "Tags",
    "consent_to_quote": "Quote Permission",
    "text": "Feedback",
}
FEEDBACK_TYPES = {"case_study": "Case Study", "formal": "Survey", "informal": "Comment"}
QUOTE = {"true": "Granted", "false": "Not granted"}


def write_platform_export(tables: dict, folder: Path, rng) -> ExportTruth:
    """Write ``tables`` as the platform's CSV export (plus the ICB's CSVs) into ``folder``.

    Parameters
    ----------
    tables
        Contract tables of one scheme keyed by ``client_id``.
    folder
        Where to write the ``CaseLink_*.csv`` files, ``postcode_lookup.csv`` and the
        ICB's ``population.csv`` / ``gp_appointments.csv`` when present.
    rng
        ``numpy.random.Generator``.

    Returns
    -------
    ExportTruth
    """
    folder = Path(folder)
    truth = ExportTruth()
    population = tables.get("population")
    areas = (
        population.loc[population["dimension"] == "lsoa_code", "category"].tolist()
        if population is not None
        else sorted(tables["clients"]["lsoa_code"].dropna().unique())
    )
    lookup = postcode_lookup(areas, "H", rng)
    lookup.to_csv(folder / LOOKUP, index=False)

    clients = _clients(tables["clients"], lookup, rng, truth)
    _write(clients, folder / CLIENTS_FILE)
    _write(_assessments(tables["measures"], truth), folder / ASSESSMENTS_FILE)
    for name, file, headers, labels in (
        ("contacts", SESSIONS_FILE, SESSION_HEADERS,
         {"contact_type": SESSION_TYPES, "mode": DELIVERY}),
        ("support_offered", ONWARD_FILE, ONWARD_HEADERS, {"activity_type": SERVICES}),
        ("feedback", FEEDBACK_FILE, FEEDBACK_HEADERS,
         {"feedback_type": FEEDBACK_TYPES, "consent_to_quote": QUOTE}),
    ):  # fmt: skip
        frame = tables.get(name)
        if frame is None:
            continue
        out = frame[[c for c in headers if c in frame]].copy()
        for column, mapping in labels.items():
            out[column] = relabel(out[column], mapping, rng)
            truth.add_labels(name, column, mapping, out[column])
        for column in out.columns:
            if pd.api.types.is_datetime64_any_dtype(out[column]):
                out[column] = local_dates(out[column], DATE_FORMAT)
        if "duration_minutes" in out:
            out["duration_minutes"] = as_int_text(out["duration_minutes"])
        truth.add_columns(file, name, headers)
        _write(out.rename(columns=headers), folder / file)
    for name in ("gp_appointments", "population"):
        if name in tables:
            tables[name].to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    return truth


def _clients(clients: pd.DataFrame, lookup, rng, truth: ExportTruth) -> pd.DataFrame:
    headers = {c: h for c, h in CLIENT_HEADERS.items() if c in clients}
    out = clients[list(headers)].copy()
    names = practice_names(clients["practice_code"], first=6) if "practice_code" in clients else {}
    practices = {code: f"{code} - {name}" for code, name in names.items()}
    labels = {
        "referral_source": ROUTES,
        "sex": GENDER,
        "ethnic_category": ETHNICITY,
        "consent_data_use": CONSENT,
        "consent_contact": CONSENT,
        "discharge_reason": OUTCOMES,
    }
    for column, mapping in labels.items():
        if column in out:
            out[column] = relabel(out[column], mapping, rng)
            truth.add_labels("clients", column, mapping, out[column])
    if "practice_code" in out:
        out["practice_code"] = relabel(out["practice_code"], practices, rng)
    for column in ("referral_date", "date_of_birth", "discharge_date"):
        if column in out:
            out[column] = local_dates(out[column], DATE_FORMAT)
    for column in ("age", "imd_decile"):
        if column in out:
            out[column] = as_int_text(out[column])
    position = out.columns.get_loc("ethnic_category") + 1
    out.insert(position, POSTCODE_HEADER, postcodes_for(clients["lsoa_code"], lookup, rng,
                                                        untidy=0.1))  # fmt: skip
    out[REASON_HEADER] = rng.choice(np.array(REASONS, dtype=object), size=len(out))
    truth.add_columns(CLIENTS_FILE, "clients", headers)
    truth.columns[(CLIENTS_FILE, POSTCODE_HEADER)] = ("clients", "lsoa_code")
    return out.rename(columns=headers)


def _assessments(measures: pd.DataFrame, truth: ExportTruth) -> pd.DataFrame:
    """One row per question answered, in the order the forms were completed."""
    items = [c for c in measures.columns if c.startswith("item_")]
    long = measures.melt(
        id_vars=["client_id", "measure", "timepoint", "date"],
        value_vars=items,
        var_name="item",
        value_name="value",
    ).dropna(subset=["value"])
    long["item"] = long["item"].str.removeprefix("item_").astype(int)
    long = long.sort_values(["date", "client_id", "measure", "timepoint", "item"], kind="stable")
    long["question"] = [
        QUESTIONS[m][k - 1] if m in QUESTIONS else f"Item {k}"
        for m, k in zip(long["measure"], long["item"], strict=True)
    ]
    long["measure"] = long["measure"].map(ASSESSMENTS)
    long["timepoint"] = long["timepoint"].astype(str).map(STAGES)
    long["date"] = local_dates(long["date"], ASSESSMENT_DATE_FORMAT)
    long["value"] = as_int_text(long["value"])
    long["item"] = long["item"].astype(str)
    truth.add_columns(ASSESSMENTS_FILE, "measures", ASSESSMENT_HEADERS)
    truth.add_labels("measures", "measure", ASSESSMENTS, long["measure"])
    truth.add_labels("measures", "timepoint", STAGES, long["timepoint"])
    out = long[list(ASSESSMENT_HEADERS)].rename(columns=ASSESSMENT_HEADERS)
    out.insert(out.columns.get_loc("Question No") + 1, QUESTION_HEADER, long["question"].to_numpy())
    return out.reset_index(drop=True)


def _write(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, encoding=ENCODING, lineterminator="\r\n")
