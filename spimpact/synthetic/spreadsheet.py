"""A small charity's caseload workbook: an example scheme as a spreadsheet arrives.

One ``.xlsx`` file kept by hand: a merged title row above the header, the charity's
own column names and labels ("Self referral", "White - British", practice names
instead of ODS codes), dates as Excel dates shown day/month/year, questionnaire
dates typed as text, home postcodes instead of LSOAs, one sheet per kind of record
and a free-text notes column. GP appointments and the population come from the ICB
in the contract's own shape. :func:`write_spreadsheet_export` writes it all and
returns the true mapping (:class:`~spimpact.synthetic.exporting.ExportTruth`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.synthetic.exporting import ExportTruth, local_dates, pick_rows, relabel
from spimpact.synthetic.places import postcode_lookup, postcodes_for, practice_names
from spimpact.synthetic.schemes import EXTRACT_DATE

WORKBOOK = "caseload.xlsx"
LOOKUP = "postcode_lookup.csv"

REFERRAL_SHEET = "Referrals"
CLIENT_HEADERS = {
    "client_id": "Ref",
    "referral_date": "Date referred",
    "referral_source": "Referred by",
    "age": "Age",
    "date_of_birth": "DOB",
    "sex": "Gender",
    "ethnic_category": "Ethnicity",
    "practice_code": "GP surgery",
    "consent_data_use": "Consent to share data",
    "consent_contact": "OK to contact",
    "discharge_date": "Date closed",
    "discharge_reason": "Reason closed",
}
POSTCODE_HEADER = "Postcode"
NOTES_HEADER = "Notes"
REFERRED_BY = {
    "gp": ("GP", "Dr referral"),
    "practice_staff": ("Practice nurse/staff",),
    "self": ("Self referral", "Self-referral"),
    "vcse": ("Voluntary sector",),
    "secondary_care": ("Hospital",),
    "social_care": ("Adult social care",),
    "other": ("Other",),
}
# Written for a few clients; the charity's mapping does not place it, so they are excluded.
UNPLACED_SOURCE = "See notes"
GENDER = {"female": "Female", "male": "Male", "other": "Non-binary", "unknown": "Prefer not to say"}
ETHNICITY = {
    "A": "White - British",
    "B": "White - Irish",
    "C": "White - Other",
    "D": "Mixed - White and Black Caribbean",
    "E": "Mixed - White and Black African",
    "F": "Mixed - White and Asian",
    "G": "Mixed - Other",
    "H": "Asian - Indian",
    "J": "Asian - Pakistani",
    "K": "Asian - Bangladeshi",
    "L": "Asian - Other",
    "M": "Black - Caribbean",
    "N": "Black - African",
    "P": "Black - Other",
    "R": "Chinese",
    "S": "Other ethnic group",
    "Z": "Prefer not to say",
    "99": "Not known",
}
YES_NO = {"true": "Y", "false": "N", "yes": "Y", "no": "N"}
CLOSED_BECAUSE = {
    "completed": "Completed",
    "disengaged": "Disengaged",
    "declined": "Declined",
    "moved_away": "Moved away",
    "died": "Died",
    "referred_on": "Referred on",
    "other": "Other",
}
NOTES = (
    "Called twice, no answer",
    "Prefers afternoon appointments",
    "Carer attends sessions too",
    "Interested in the walking group",
    "",
    "",
    "",
)

STAGE_HEADER, DATE_HEADER = "Review", "Date completed"
STAGES = {"0": "Initial", "1": "3 month review", "2": "6 month review"}
SWEMWBS_ITEMS = (
    "1. Optimistic about the future",
    "2. Feeling useful",
    "3. Feeling relaxed",
    "4. Dealing with problems well",
    "5. Thinking clearly",
    "6. Feeling close to others",
    "7. Able to make up my own mind",
)

CONTACT_SHEET = "Contacts"
CONTACT_HEADERS = {
    "client_id": "Ref",
    "contact_date": "Date",
    "contact_type": "Type",
    "mode": "How",
    "duration_minutes": "Mins",
}
CONTACT_TYPES = {
    "initial_assessment": "Initial assessment",
    "follow_up": "Follow up",
    "group_session": "Group session",
    "telephone_check_in": "Phone check in",
    "other": "Other",
}
MODES = {
    "face_to_face": "Face to face",
    "telephone": "Phone",
    "video": "Video call",
    "online": "Online",
    "home_visit": "Home visit",
}

ACTIVITY_SHEET = "Activities"
ACTIVITY_HEADERS = {
    "client_id": "Ref",
    "date": "Date",
    "activity_type": "Activity",
    "organisation_id": "Org ref",
}
ACTIVITIES = {
    "arts_culture": "Arts and crafts",
    "physical_activity": "Exercise / walking group",
    "nature_green": "Gardening / green space",
    "befriending_social": "Befriending",
    "advice_welfare_debt": "Benefits and debt advice",
    "housing": "Housing support",
    "employment_learning": "Adult learning / jobs",
    "mental_health_support": "Talking therapies",
    "volunteering": "Volunteering",
    "other": "Other",
}

FEEDBACK_SHEET = "Feedback"
FEEDBACK_HEADERS = {
    "feedback_id": "Feedback no",
    "client_id": "Ref",
    "date": "Date",
    "feedback_type": "Type",
    "themes": "Themes",
    "consent_to_quote": "OK to quote?",
    "text": "Comments",
}
FEEDBACK_TYPES = {"case_study": "Case study", "formal": "Formal", "informal": "Informal"}


def write_spreadsheet_export(
    tables: dict, folder: Path, rng, *, title: str, n_unplaced: int = 9
) -> ExportTruth:
    """Write ``tables`` as a caseload workbook (plus the ICB's CSVs) into ``folder``.

    Parameters
    ----------
    tables
        Contract tables of one scheme keyed by ``client_id`` (``clients``,
        ``measures``; optionally ``contacts``, ``support_offered``, ``feedback``,
        ``gp_appointments``, ``population``).
    folder
        Where to write ``caseload.xlsx``, ``postcode_lookup.csv`` and the ICB's tables.
    rng
        ``numpy.random.Generator``.
    title
        The scheme's name, written in the title row.
    n_unplaced
        Clients whose referral source is written as a label no mapping places
        (``"See notes"``); 0 for a lossless export.

    Returns
    -------
    ExportTruth
    """
    folder = Path(folder)
    truth = ExportTruth()
    lookup = postcode_lookup(_areas(tables), "V", rng)
    lookup.to_csv(folder / LOOKUP, index=False)
    with _Workbook(folder / WORKBOOK) as book:
        clients = _client_sheet(tables["clients"], lookup, rng, n_unplaced, truth)
        book.write(REFERRAL_SHEET, clients, title=f"{title}: referrals", as_of=EXTRACT_DATE)
        for measure, sheet in _measure_sheets(tables["measures"], truth):
            book.write(measure.upper(), sheet)
        for name, sheet_name, headers, labels in (
            ("contacts", CONTACT_SHEET, CONTACT_HEADERS,
             {"contact_type": CONTACT_TYPES, "mode": MODES}),
            ("support_offered", ACTIVITY_SHEET, ACTIVITY_HEADERS,
             {"activity_type": ACTIVITIES}),
            ("feedback", FEEDBACK_SHEET, FEEDBACK_HEADERS,
             {"feedback_type": FEEDBACK_TYPES, "consent_to_quote": YES_NO}),
        ):  # fmt: skip
            frame = tables.get(name)
            if frame is None:
                continue
            sheet = frame[[c for c in headers if c in frame]].copy()
            for column, mapping in labels.items():
                sheet[column] = relabel(sheet[column], mapping, rng, p_other=0)
                truth.add_labels(name, column, mapping, sheet[column])
            truth.add_columns(f"{WORKBOOK}#{sheet_name}", name, headers)
            book.write(sheet_name, sheet.rename(columns=headers))
    for name in ("gp_appointments", "population"):
        if name in tables:
            tables[name].to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    return truth


def _areas(tables: dict) -> list[str]:
    population = tables.get("population")
    if population is not None:
        return population.loc[population["dimension"] == "lsoa_code", "category"].tolist()
    return sorted(tables["clients"]["lsoa_code"].dropna().unique())


def _client_sheet(clients, lookup, rng, n_unplaced: int, truth: ExportTruth) -> pd.DataFrame:
    headers = {c: h for c, h in CLIENT_HEADERS.items() if c in clients}
    sheet = clients[list(headers)].copy()
    practice = practice_names(clients["practice_code"]) if "practice_code" in clients else {}
    labels = {
        "referral_source": REFERRED_BY,
        "sex": GENDER,
        "ethnic_category": ETHNICITY,
        "discharge_reason": CLOSED_BECAUSE,
        "consent_data_use": YES_NO,
        "consent_contact": YES_NO,
        "practice_code": practice,
    }
    for column, mapping in labels.items():
        if column in sheet:
            sheet[column] = relabel(sheet[column], mapping, rng)
    unplaced = pick_rows(len(sheet), n_unplaced, rng)
    sheet.iloc[unplaced, sheet.columns.get_loc("referral_source")] = UNPLACED_SOURCE
    for column, mapping in labels.items():
        if column in sheet:
            truth.add_labels("clients", column, mapping, sheet[column])
    if len(unplaced):
        truth.labels[("clients", "referral_source", UNPLACED_SOURCE)] = None
    position = sheet.columns.get_loc("ethnic_category") + 1
    sheet.insert(position, POSTCODE_HEADER, postcodes_for(clients["lsoa_code"], lookup, rng,
                                                          untidy=0.2))  # fmt: skip
    sheet[NOTES_HEADER] = rng.choice(np.array(NOTES, dtype=object), size=len(sheet))
    source = f"{WORKBOOK}#{REFERRAL_SHEET}"
    truth.add_columns(source, "clients", headers)
    truth.columns[(source, POSTCODE_HEADER)] = ("clients", "lsoa_code")
    return sheet.rename(columns=headers)


def _measure_sheets(measures: pd.DataFrame, truth: ExportTruth):
    """One sheet per questionnaire, one row per form, dates typed as text."""
    for measure, forms in measures.groupby("measure", sort=True):
        items = [c for c in forms.columns if c.startswith("item_") and forms[c].notna().any()]
        names = SWEMWBS_ITEMS if measure == "swemwbs" else [f"Q{k + 1}" for k in range(len(items))]
        headers = {
            "client_id": "Ref",
            "timepoint": STAGE_HEADER,
            "date": DATE_HEADER,
            **dict(zip(items, names, strict=True)),
        }
        sheet = forms[list(headers)].copy()
        sheet["timepoint"] = sheet["timepoint"].astype(str).map(STAGES)
        sheet["date"] = local_dates(sheet["date"], "%d/%m/%Y")
        truth.add_columns(f"{WORKBOOK}#{measure.upper()}", "measures", headers)
        truth.add_labels("measures", "timepoint", STAGES, sheet["timepoint"])
        yield measure, sheet.rename(columns=headers)


class _Workbook:
    """An xlsx workbook written with XlsxWriter, byte-identical for the same content."""

    def __init__(self, path: Path):
        import xlsxwriter

        self.book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
        # a fixed creation time keeps the file byte-identical from run to run
        self.book.set_properties({"created": datetime(2025, 12, 31)})
        self.date = self.book.add_format({"num_format": "dd/mm/yyyy"})
        self.bold = self.book.add_format({"bold": True})
        self.title = self.book.add_format({"bold": True, "font_size": 14})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.book.close()

    def write(self, name: str, frame: pd.DataFrame, *, title: str | None = None, as_of=None):
        """One sheet: optional merged title row and 'as at' row, then header and rows."""
        sheet = self.book.add_worksheet(name)
        row = 0
        if title is not None:
            sheet.merge_range(0, 0, 0, len(frame.columns) - 1, title, self.title)
            sheet.write_string(1, 0, f"Data as at {as_of:%d/%m/%Y}. Confidential.")
            row = 3
        for col, header in enumerate(frame.columns):
            sheet.write_string(row, col, str(header), self.bold)
        for col, header in enumerate(frame.columns):
            values = frame[header]
            is_date = pd.api.types.is_datetime64_any_dtype(values)
            for offset, value in enumerate(values.tolist(), start=row + 1):
                if value is None or (not isinstance(value, str) and pd.isna(value)):
                    continue
                if is_date:
                    sheet.write_datetime(offset, col, pd.Timestamp(value).to_pydatetime(),
                                         self.date)  # fmt: skip
                elif isinstance(value, str):
                    sheet.write_string(offset, col, value)
                else:
                    sheet.write_number(offset, col, float(value))
