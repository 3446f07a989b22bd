"""The scheme data contract in code: tables, columns, types and allowed values.

``docs/data-contract.md`` is the human version of this module; keep them in step.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERRAL_SOURCES = (
    "gp",
    "practice_staff",
    "self",
    "vcse",
    "secondary_care",
    "social_care",
    "other",
)
AGE_BANDS = ("16-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75+")
SEXES = ("female", "male", "other", "unknown")
ETHNIC_CATEGORIES = tuple("ABCDEFGHJKLMNPRS") + ("Z", "99")
ETHNIC_GROUPS = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian"),
    **dict.fromkeys("MNP", "Black"),
    **dict.fromkeys("RS", "Other"),
    "Z": "Unknown",
    "99": "Unknown",
}
DISCHARGE_REASONS = (
    "completed",
    "disengaged",
    "declined",
    "moved_away",
    "died",
    "referred_on",
    "other",
)
MEASURES = ("swemwbs", "wemwbs", "ons4", "who5", "eq5d5l", "mycaw", "ucla3", "ons_loneliness")
CONTACT_TYPES = ("initial_assessment", "follow_up", "group_session", "telephone_check_in", "other")
MODES = ("face_to_face", "telephone", "video", "online", "home_visit")
STAFF_ROLES = ("gp", "nurse", "other_clinical", "admin", "social_prescribing_link_worker")
APPOINTMENT_STATUSES = ("attended", "dna", "cancelled")
FEEDBACK_TYPES = ("case_study", "formal", "informal")
ACTIVITY_TYPES = (
    "arts_culture",
    "physical_activity",
    "nature_green",
    "befriending_social",
    "advice_welfare_debt",
    "housing",
    "employment_learning",
    "mental_health_support",
    "volunteering",
    "other",
)
# Feedback themes that may always be published (a controlled vocabulary of the needs and
# outcomes social prescribing addresses; NHS England SP summary guide, SPEC section 2.3).
# Other theme labels are published only under the rules of spimpact.publish.gate.
FEEDBACK_THEMES = (
    "anxiety", "arts", "benefits", "bereavement", "carer_support", "community",
    "confidence", "debt", "employment", "exercise", "food", "friendship", "gardening",
    "health", "housing", "independence", "isolation", "learning", "loneliness",
    "mental_health", "money_worries", "nature", "new_skills", "physical_activity",
    "purpose", "relationships", "sleep", "staff", "support", "transport", "volunteering",
    "wellbeing",
)  # fmt: skip
POPULATION_DIMENSIONS = (
    "total",
    "age_band",
    "sex",
    "imd_quintile",
    "imd_decile",
    "ethnic_group",
    "lsoa_code",
)
N_ITEMS = 14
# Tables whose records belong to one referral episode of a client.
EPISODE_TABLES = ("clients", "measures", "contacts", "support_offered")

# NHS Person Stated Gender codes and common spellings accepted on load.
SEX_ALIASES = {"1": "male", "2": "female", "9": "other", "x": "unknown", "0": "unknown",
               "f": "female", "m": "male", "u": "unknown", "not known": "unknown"}  # fmt: skip
ETHNIC_ALIASES = {"X": "99"}  # HES "not known"
# Tables validated in SQL straight from their file (spimpact.streaming) when it has at
# least ``stream_rows`` rows (``load_scheme``; this many by default). GP appointments are
# the one table that grows to tens of millions of rows; its checks need no other table
# but the patient keys.
STREAMABLE_TABLES = ("gp_appointments",)
STREAM_MIN_ROWS = 1_000_000
BOOL_TRUE = ("true", "yes", "y", "1")
BOOL_FALSE = ("false", "no", "n", "0")


@dataclass(frozen=True)
class Column:
    """One column of a contract table.

    ``kind`` is one of ``text, code, int, float, date, bool``; ``allowed`` lists the
    codes of a ``code`` column; ``minimum``/``maximum`` bound numbers; ``pattern`` is
    a full-match regular expression for ``text``.
    """

    name: str
    kind: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None

    def expectation(self) -> str:
        """What a valid value looks like, in words."""
        if self.kind == "code":
            return "one of " + ", ".join(self.allowed or ())
        if self.kind == "date":
            return "a date written YYYY-MM-DD"
        if self.kind == "bool":
            return "true/false, yes/no, y/n or 1/0"
        if self.kind in ("int", "float"):
            noun = "a whole number" if self.kind == "int" else "a number"
            if self.minimum is not None and self.maximum is not None:
                return f"{noun} from {self.minimum:g} to {self.maximum:g}"
            if self.minimum is not None:
                return f"{noun} of at least {self.minimum:g}"
            return noun
        if self.pattern:
            return f"text matching {self.pattern}"
        return "text"


@dataclass(frozen=True)
class TableSpec:
    """A contract table: its columns and the groups of which one column is needed."""

    name: str
    required: bool
    columns: tuple[Column, ...]
    one_of: tuple[tuple[str, ...], ...] = ()
    person_key: str | None = None  # column that may be given as nhs_number instead

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of every column of the table."""
        return tuple(c.name for c in self.columns)

    def header_problems(self, present, file_name: str) -> list[str]:
        """What a file whose header holds the columns ``present`` lacks, one line each."""
        present = set(present)
        problems = []
        for column in self.columns:
            if column.required and column.name not in present:
                problems.append(
                    f"{file_name} row 1, column '{column.name}': required column missing "
                    f"(expected {column.expectation()})"
                )
        for group in self.one_of:
            if not present.intersection(group):
                names = ", ".join(repr(g) for g in group)
                problems.append(f"{file_name} row 1: one of the columns {names} is required")
        return problems


_ID = r"[A-Za-z0-9_\-]{1,64}"
_LSOA = r"E01\d{6}"
_PRACTICE = r"[A-Z]\d{5}"
_NHS = Column("nhs_number", "text")
# A client's referral episode: several rows of one client in ``clients`` are several
# episodes (re-referrals) when this column tells them apart. Records of other tables
# may name their episode; otherwise they belong to the episode running on their date.
_EPISODE = Column("episode", "text", pattern=_ID)


def _person_columns() -> tuple[Column, ...]:
    return (
        Column("age", "int", minimum=16, maximum=110),
        Column("age_band", "code", allowed=AGE_BANDS),
        Column("date_of_birth", "date"),
        Column("sex", "code", required=True, allowed=SEXES),
        Column("ethnic_category", "code", required=True, allowed=ETHNIC_CATEGORIES),
        Column("lsoa_code", "text", pattern=_LSOA),
        Column("imd_decile", "int", minimum=1, maximum=10),
        Column("practice_code", "text", pattern=_PRACTICE),
    )


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "clients",
            required=True,
            person_key="client_id",
            one_of=(("client_id", "nhs_number"), ("age", "age_band", "date_of_birth")),
            columns=(
                Column("client_id", "text", pattern=_ID),
                _NHS,
                _EPISODE,
                Column("referral_date", "date", required=True),
                Column("referral_source", "code", required=True, allowed=REFERRAL_SOURCES),
                *_person_columns(),
                Column("imd_edition", "code", allowed=("2019", "2025")),
                Column("consent_data_use", "bool"),
                Column("consent_contact", "bool"),
                Column("discharge_date", "date"),
                Column("discharge_reason", "code", allowed=DISCHARGE_REASONS),
            ),
        ),
        TableSpec(
            "measures",
            required=True,
            person_key="client_id",
            one_of=(("client_id", "nhs_number"),),
            columns=(
                Column("client_id", "text", pattern=_ID),
                _NHS,
                _EPISODE,
                Column("measure", "code", required=True, allowed=MEASURES),
                Column("timepoint", "int", required=True, minimum=0, maximum=20),
                Column("date", "date", required=True),
                *(Column(f"item_{k}", "int") for k in range(1, N_ITEMS + 1)),
            ),
        ),
        TableSpec(
            "contacts",
            required=False,
            person_key="client_id",
            one_of=(("client_id", "nhs_number"),),
            columns=(
                Column("client_id", "text", pattern=_ID),
                _NHS,
                _EPISODE,
                Column("contact_date", "date", required=True),
                Column("contact_type", "code", required=True, allowed=CONTACT_TYPES),
                Column("mode", "code", allowed=MODES),
                Column("duration_minutes", "int", minimum=1, maximum=480),
            ),
        ),
        TableSpec(
            "support_offered",
            required=False,
            person_key="client_id",
            one_of=(("client_id", "nhs_number"),),
            columns=(
                Column("client_id", "text", pattern=_ID),
                _NHS,
                _EPISODE,
                Column("date", "date", required=True),
                Column("activity_type", "code", required=True, allowed=ACTIVITY_TYPES),
                Column("organisation_id", "text", pattern=_ID),
            ),
        ),
        TableSpec(
            "gp_appointments",
            required=False,
            person_key="patient_id",
            one_of=(("patient_id", "nhs_number"),),
            columns=(
                Column("patient_id", "text", pattern=_ID),
                _NHS,
                Column("appointment_date", "date", required=True),
                Column("staff_role", "code", required=True, allowed=STAFF_ROLES),
                Column("mode", "code", required=True, allowed=MODES),
                Column("status", "code", required=True, allowed=APPOINTMENT_STATUSES),
                Column("slot_category", "text"),
            ),
        ),
        TableSpec(
            "comparison_pool",
            required=False,
            person_key="patient_id",
            one_of=(("patient_id", "nhs_number"), ("age", "age_band", "date_of_birth")),
            columns=(
                Column("patient_id", "text", pattern=_ID),
                _NHS,
                Column("index_date", "date", required=True),
                *_person_columns(),
            ),
        ),
        TableSpec(
            "feedback",
            required=False,
            person_key="client_id",
            columns=(
                Column("feedback_id", "text", required=True, pattern=_ID),
                Column("client_id", "text", pattern=_ID),
                _NHS,
                Column("date", "date", required=True),
                Column("feedback_type", "code", required=True, allowed=FEEDBACK_TYPES),
                Column("themes", "text"),
                Column("consent_to_quote", "bool", required=True),
                Column("text", "text"),
            ),
        ),
        TableSpec(
            "population",
            required=False,
            columns=(
                Column("dimension", "code", required=True, allowed=POPULATION_DIMENSIONS),
                Column("category", "text", required=True),
                Column("population", "int", required=True, minimum=0),
            ),
        ),
    )
}


def age_band(age):
    """Contract age band of an age in whole years (vectorised over a Series)."""
    import pandas as pd

    bins = [15, 24, 34, 44, 54, 64, 74, 200]
    return pd.cut(age, bins=bins, labels=list(AGE_BANDS)).astype(object)


def normalise_codes(name: str, text):
    """Contract spelling of the codes of column ``name`` (a Series of stripped text).

    Sex accepts NHS Person Stated Gender codes and common spellings; ethnic category
    HES ``X`` and 2-character local codes (their first character); other codes are
    matched in lower case. Values that are not codes are returned as they are, to be
    rejected by the caller.
    """
    if name == "sex":
        lowered = text.str.lower()
        return lowered.map(lambda v: SEX_ALIASES.get(v, v))
    if name == "ethnic_category":
        upper = text.str.upper()
        upper = upper.map(lambda v: ETHNIC_ALIASES.get(v, v))
        # a 2-character local code: the national code is its first character
        return upper.where(upper.isin(ETHNIC_CATEGORIES) | (upper.str.len() != 2), upper.str[0])
    if name in ("age_band", "imd_edition"):
        return text
    return text.str.lower()


def population_category_patterns() -> dict[str, str]:
    """Per population dimension, a full-match pattern of the categories it may hold.

    Categories are published in reach tables, so they are held to the codes of the
    dimension they belong to (the same codes as ``clients``); free text is refused.
    """
    import re

    def one_of(values) -> str:
        return "|".join(re.escape(str(v)) for v in values)

    return {
        "total": "all",
        "age_band": one_of(AGE_BANDS),
        "sex": one_of(SEXES),
        "imd_quintile": r"[1-5](?:\.0)?",
        "imd_decile": r"(?:[1-9]|10)(?:\.0)?",
        "ethnic_group": one_of(sorted(set(ETHNIC_GROUPS.values()))),
        "lsoa_code": _LSOA,
    }


def derive_person_columns(tables: dict) -> dict:
    """Add the derived person columns (age, age band, IMD quintile, ethnic group).

    On ``clients`` and ``comparison_pool`` of ``tables`` (table name to frame); the
    date of birth is dropped once the age is known: it must not travel further.
    """
    for name in ("clients", "comparison_pool"):
        if name not in tables:
            continue
        frame = tables[name].copy()
        index_date = frame["referral_date"] if name == "clients" else frame["index_date"]
        if "date_of_birth" in frame:
            years = whole_years(frame["date_of_birth"], index_date)
            frame["age"] = frame["age"].fillna(years) if "age" in frame else years
            frame = frame.drop(columns=["date_of_birth"])
        if "age" in frame:
            derived = age_band(frame["age"].astype(float))
            frame["age_band"] = (
                frame["age_band"].fillna(derived) if "age_band" in frame else derived
            )
        if "imd_decile" in frame:
            frame["imd_quintile"] = ((frame["imd_decile"] + 1) // 2).astype("Int64")
        frame["ethnic_group"] = frame["ethnic_category"].map(ETHNIC_GROUPS)
        tables[name] = frame
    return tables


def whole_years(born, on):
    """Whole years from dates ``born`` to dates ``on`` (Series; ``Int64``)."""
    years = on.dt.year - born.dt.year
    before_birthday = (on.dt.month < born.dt.month) | (
        (on.dt.month == born.dt.month) & (on.dt.day < born.dt.day)
    )
    return (years - before_birthday.astype(int)).astype("Int64")
