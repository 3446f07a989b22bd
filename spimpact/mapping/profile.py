"""What a source column looks like, and which contract column or code it most resembles.

Used by ``spimpact map`` (:mod:`spimpact.mapping.propose`) to place columns and labels:
header names are matched to :data:`spimpact.mapping.vocabulary.HEADERS` with RapidFuzz,
and what the cells hold (dates and their format, numbers, NHS numbers, postcodes,
labels from a code list) confirms or rules out a match. Nothing here is written out:
the proposal only ever carries labels of coded columns, never free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
from rapidfuzz import fuzz

from spimpact.contract import TABLES
from spimpact.identifiers import is_valid_nhs_number
from spimpact.mapping.derive import convert_dates
from spimpact.mapping.vocabulary import HEADERS, LABELS, TIMEPOINTS, normal

__all__ = [
    "DATE_FORMATS",
    "ColumnProfile",
    "detect_date_format",
    "match_label",
    "match_timepoints",
    "profile_column",
    "score_column",
]
_NEGATIONS = {"not", "no", "never", "without", "didn", "dont", "don"}

# Tried in this order; a day-first format wins a tie (UK exports).
DATE_FORMATS = (
    "iso",
    "%d/%m/%Y",
    "%d/%m/%y",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%d %B %Y",
    "%d-%b-%y",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "excel",
)
_POSTCODE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}$")
_LSOA = re.compile(r"^[EW]01\d{6}$")
MAX_LABELS = 40
# Longest label of a coded column: the 2021 Census ethnic categories run to about 95
# characters ("Black, Black British, Caribbean or African: Any other Black, ...").
MAX_LABEL_CHARS = 100
_SAMPLE = 2000


@dataclass(frozen=True)
class ColumnProfile:
    """What one source column holds (from at most 2,000 of its non-blank cells)."""

    name: str
    key: str  # normalised header
    n_filled: int
    n_distinct: int
    labels: tuple[str, ...]  # distinct values when few and short (a coded column)
    date_format: str | None  # best format when most cells are dates
    date_share: float
    numeric_share: float
    integer_range: tuple[float, float] | None
    nhs_share: float
    postcode_share: float
    lsoa_share: float
    code_share: float  # long digit strings, as SNOMED CT codes are
    unique: bool
    sample: tuple[str, ...] = ()  # a few cells, held in memory only, to test patterns


def detect_date_format(values: pd.Series) -> tuple[str | None, float]:
    """The format that reads most of ``values`` as dates, and the share it reads.

    >>> detect_date_format(pd.Series(["05/04/2024", "13/04/2024", ""]))
    ('%d/%m/%Y', 1.0)
    """
    values = values[values.astype(str).str.strip() != ""]
    if values.empty:
        return None, 0.0
    best, best_share = None, 0.0
    numeric = pd.to_numeric(values, errors="coerce")
    for date_format in DATE_FORMATS:
        if date_format == "excel" and not numeric.between(20000, 80000).mean() > 0.8:
            continue
        if date_format != "excel" and numeric.notna().mean() > 0.5:
            continue
        iso, bad = convert_dates(values, None if date_format == "iso" else date_format)
        if date_format == "iso":
            bad = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce").isna()
        share = float(1 - bad.mean())
        if share > best_share + 1e-9:
            best, best_share = date_format, share
    return best, best_share


def profile_column(name: str, values: pd.Series) -> ColumnProfile:
    """Profile one source column."""
    text = values.fillna("").astype(str).str.strip()
    filled = text[text != ""]
    sample = filled.iloc[:_SAMPLE]
    distinct = filled.unique()
    labels = (
        tuple(sorted(distinct, key=str.casefold))
        if 0 < len(distinct) <= MAX_LABELS and all(len(v) <= MAX_LABEL_CHARS for v in distinct)
        else ()
    )
    date_format, date_share = detect_date_format(sample)
    numbers = pd.to_numeric(sample, errors="coerce")
    whole = numbers.dropna()
    whole = whole[whole % 1 == 0]
    upper = sample.str.upper()
    return ColumnProfile(
        name=name,
        key=normal(name),
        n_filled=len(filled),
        n_distinct=len(distinct),
        labels=labels,
        date_format=date_format if date_share >= 0.8 else None,
        date_share=date_share,
        numeric_share=float(numbers.notna().mean()) if len(sample) else 0.0,
        integer_range=(float(whole.min()), float(whole.max())) if len(whole) else None,
        nhs_share=float(sample.map(is_valid_nhs_number).mean()) if len(sample) else 0.0,
        postcode_share=float(upper.str.match(_POSTCODE).mean()) if len(sample) else 0.0,
        lsoa_share=float(upper.str.match(_LSOA).mean()) if len(sample) else 0.0,
        code_share=float(sample.str.fullmatch(r"\d{6,18}").mean()) if len(sample) else 0.0,
        unique=len(distinct) == len(filled) and len(filled) > 0,
        sample=tuple(sample.iloc[:200]),
    )


def _segments(label: str) -> list[str]:
    """The label, and its last part after ':' or ' - ' ("White: Irish" -> "irish")."""
    whole = normal(label)
    parts = re.split(r":|\s-\s|\s–\s|/", str(label))
    last = normal(parts[-1]) if len(parts) > 1 else ""
    return [s for s in (whole, last) if s]


@lru_cache(maxsize=65536)
def match_label(column: str, label: str) -> tuple[str | None, int]:
    """The contract code a local label most likely means, and how sure (0-100).

    A label matches a code when it, or its last part after ':' or ' - ', is one of the
    code's synonyms; else when it holds every word of synonyms of one code only (the
    longest wins; "Welfare, Benefits & Debt"); else when it is spelt nearly like one
    (RapidFuzz token sort ratio of 88 or more). A negated label ("Not attended") never
    matches a synonym without the negation.

    >>> match_label("ethnic_category", "Asian or Asian British: Pakistani")
    ('J', 100)
    >>> match_label("activity_type", "Welfare, Benefits & Debt")
    ('advice_welfare_debt', 95)
    >>> match_label("status", "Not attended")
    ('dna', 100)
    """
    vocabulary = LABELS.get(column)
    if not vocabulary:
        return None, 0
    segments = _segments(label)
    for segment in segments:
        for code, synonyms in vocabulary.items():
            if segment in synonyms or segment == normal(code):
                return code, 100
    words = set(segments[0].split())
    negated = bool(words & _NEGATIONS)
    contained: dict[str, int] = {}
    for code, synonyms in vocabulary.items():
        for synonym in synonyms:
            synonym_words = set(synonym.split())
            if negated != bool(synonym_words & _NEGATIONS):
                continue
            if synonym_words <= words and (len(synonym) >= 4 or synonym_words == words):
                contained[code] = max(contained.get(code, 0), len(synonym))
    if contained:
        ranked = sorted(contained.items(), key=lambda kv: -kv[1])
        if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
            return ranked[0][0], 95
    best, best_score = None, 0
    for segment in segments:
        for code, synonyms in vocabulary.items():
            for synonym in [*synonyms, normal(code)]:
                if len(synonym) < 3 or len(segment) < 3:
                    continue
                if negated != bool(set(synonym.split()) & _NEGATIONS):
                    continue
                score = fuzz.token_sort_ratio(segment, synonym)
                if score > best_score:
                    best, best_score = code, int(score)
    return (best, best_score) if best_score >= 88 else (None, best_score)


def match_timepoints(labels) -> dict[str, int]:
    """Time point numbers of stage labels ("Initial Assessment" 0, "Review" 1, ...).

    Labels meaning the last review ("Final Review", "Exit") come after every other one.

    >>> match_timepoints(["Final Review", "Initial Assessment", "Review"])
    {'Final Review': 2, 'Initial Assessment': 0, 'Review': 1}
    """
    found, last = {}, []
    for label in labels:
        key = normal(label)
        exact = [t for t, words in TIMEPOINTS.items() if key in words]
        partial = [
            t
            for t in ("last", 0, 1, 2)
            if any(re.fullmatch(rf"(.* )?{re.escape(w)}( .*)?", key)
                   for w in TIMEPOINTS[t] if len(w) > 3)
        ]  # fmt: skip
        timepoint = (exact or partial or [None])[0]
        if timepoint == "last":
            last.append(label)
        elif timepoint is not None:
            found[label] = timepoint
    after = max(found.values(), default=0) + 1
    return dict(sorted({**found, **dict.fromkeys(last, after)}.items()))


@lru_cache(maxsize=65536)
def header_score(table: str, column: str, key: str) -> int:
    """How close a normalised header is to what exports call ``table.column`` (0-100)."""
    synonyms = [*HEADERS.get(table, {}).get(column, []), normal(column)]
    if key in synonyms:
        return 100
    return int(max(fuzz.token_sort_ratio(key, s) for s in synonyms))


def score_column(table: str, column: str, profile: ColumnProfile) -> int:
    """Header likeness corrected by what the cells hold; 75 or more is a match."""
    spec = TABLES[table].column(column)
    score = header_score(table, column, profile.key)
    if profile.n_filled == 0:
        return score - 10
    is_date = profile.date_format is not None
    if spec.kind == "date":
        score += 10 if is_date else -40
    elif is_date:
        score -= 40
    if column == "nhs_number":
        score += 30 if profile.nhs_share > 0.8 else -40
    elif profile.nhs_share > 0.8:
        score -= 30
    if column == "timepoint" and profile.labels and profile.numeric_share < 0.8:
        placed = len(match_timepoints(profile.labels)) / len(profile.labels)
        score += int(20 * placed) - (40 if placed < 0.5 else 0)
    elif spec.kind in ("int", "float"):
        score += -40 if profile.numeric_share < 0.8 else 0
        if profile.integer_range and spec.minimum is not None and spec.maximum is not None:
            low, high = profile.integer_range
            score += 5 if spec.minimum <= low and high <= spec.maximum else -25
    if column in LABELS and profile.labels:
        placed = sum(match_label(column, v)[0] is not None for v in profile.labels)
        share = placed / len(profile.labels)
        score += int(30 * share) - (20 if share < 0.3 else 0)
    elif spec.kind == "code" and not profile.labels:
        score -= 30
    if column == "lsoa_code":
        score += 30 if profile.lsoa_share > 0.8 else -30
    elif spec.kind == "text" and spec.pattern and profile.sample:
        cells = pd.Series(profile.sample)
        first = cells.str.split(r" - |: | \(|,", regex=True).str[0].str.strip()
        if (
            max(cells.str.fullmatch(spec.pattern).mean(), first.str.fullmatch(spec.pattern).mean())
            < 0.5
        ):
            score -= 40
    if column in ("client_id", "patient_id", "feedback_id") and profile.numeric_share < 1:
        score += 5
    return score
