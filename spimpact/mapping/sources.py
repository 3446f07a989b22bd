"""The exports in a folder as ``spimpact map`` sees them: sources, their best tables.

Every CSV, spreadsheet sheet and Parquet file is read and its columns profiled
(:mod:`spimpact.mapping.profile`); :func:`fit_table` scores how well a source fits a
contract table by a one-to-one assignment of its columns; questionnaire items are
found as numbered columns (wide) or a question/answer pair (long); a table of
SNOMED codes is a coded GP extract, a postcode/LSOA table a lookup.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spimpact.contract import TABLES
from spimpact.files import FileRefused, check_regular_file
from spimpact.mapping.profile import ColumnProfile, profile_column, score_column
from spimpact.readers import EXCEL_SUFFIXES, TABLE_SUFFIXES, DataValidationError, read_table

__all__ = [
    "CODE_HEADERS", "THRESHOLD", "Source", "fit_table", "is_coded_events", "is_lookup",
    "item_groups", "long_columns", "quote", "read_sources", "squash",
]  # fmt: skip

THRESHOLD = 75
CODE_HEADERS = {
    "code",
    "snomed code",
    "snomed",
    "snomedct",
    "snomed ct code",
    "concept id",
    "clinical code",
    "read code",
    "event code",
    "snomed concept id",
}
_QUESTION = {
    "question",
    "item",
    "question text",
    "item number",
    "question number",
    "question id",
    "item text",
    "question no",
    "item no",
    "q no",
    "qno",
    "q number",
    "question num",
}
_ANSWER = {
    "answer",
    "response",
    "score",
    "value",
    "answer value",
    "response value",
    "item score",
    "result",
}


@dataclass
class Source:
    """One source file (or sheet), its profiled columns and the table it was given."""

    path: Path
    sheet: str | None
    header_row: int | None
    frame: pd.DataFrame
    profiles: dict[str, ColumnProfile]
    table: str | None = None
    columns: dict[str, tuple[str, int]] = field(default_factory=dict)
    role: str = ""

    @property
    def label(self) -> str:
        """``file`` or ``file [sheet]``."""
        return self.path.name if self.sheet is None else f"{self.path.name} [{self.sheet}]"


def quote(value) -> str:
    """A YAML scalar for any text (JSON strings are YAML double-quoted scalars)."""
    return json.dumps(str(value), ensure_ascii=False)


def read_sources(source_dir: Path, unplaced: list[str]) -> list[Source]:
    """Every readable table in the folder (each sheet of a workbook); problems to ``unplaced``."""
    sources = []
    for path in sorted(p for p in source_dir.iterdir() if p.suffix.lower() in TABLE_SUFFIXES):
        try:  # only regular files: a link, folder or device is never read
            check_regular_file(path, what="table")
        except FileRefused as error:
            unplaced.append(str(error))
            continue
        sheets: list[str | None] = [None]
        if path.suffix.lower() in EXCEL_SUFFIXES:
            from python_calamine import CalamineWorkbook

            try:
                sheets = list(CalamineWorkbook.from_path(str(path)).sheet_names)
            except Exception:  # noqa: BLE001 - reported below as unreadable
                unplaced.append(f"{path.name}: cannot read the workbook")
                continue
        for sheet in sheets:
            try:
                frame = read_table(path, sheet=sheet, keep_case=True)
            except DataValidationError as error:
                unplaced.append(f"{path.name}: {error.problems[0]}")
                continue
            if frame.shape[1] < 3 or frame.empty:
                if sheet is None or frame.shape[1] >= 2:
                    unplaced.append(f"{path.name}{f' [{sheet}]' if sheet else ''}: no table")
                continue
            header = frame.attrs.get("header_row")
            profiles = {c: profile_column(c, frame[c]) for c in frame.columns[1:]}
            sources.append(
                Source(path, sheet, header if header and header > 1 else None, frame, profiles)
            )
    return sources


def assign_columns(table: str, source: Source, skip=()) -> dict[str, tuple[str, int]]:
    """Greedy one-to-one assignment of source columns to the table's contract columns."""
    pairs = []
    for column in TABLES[table].names:
        if column in skip:
            continue
        for name, profile in source.profiles.items():
            score = score_column(table, column, profile)
            if score >= THRESHOLD:
                pairs.append((score, column, name))
    chosen, used = {}, set()
    for score, column, name in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if column not in chosen and name not in used:
            chosen[column] = (name, score)
            used.add(name)
    return chosen


def item_groups(source: Source) -> list[tuple[str, list[str]]]:
    """Columns numbered 1..k (k >= 3) that share a prefix, or all lead with their number.

    "Q1" … "Q7", "Baseline SWEMWBS 1" …, or "1. Optimistic about the future" … give one
    form each; the prefix (with the sheet name) later tells the measure and time point.
    """
    groups: dict[str, dict[int, str]] = {}
    for name, profile in source.profiles.items():
        answers = profile.numeric_share + (1 if profile.labels else 0) > 0.5
        trailing = re.match(r"^(.*?)\s*(?:q|item|question)?\s*(\d{1,2})$", profile.key)
        leading = re.match(r"^(?:q|item|question)?\s*(\d{1,2})\s+\D.*$", profile.key)
        if answers and (trailing or leading):
            prefix, number = (trailing.group(1), trailing.group(2)) if trailing else (
                "", leading.group(1)
            )  # fmt: skip
            if 1 <= int(number) <= 14:
                groups.setdefault(prefix, {}).setdefault(int(number), name)
    forms = []
    for prefix, numbered in groups.items():
        k = len(numbered)
        if k >= 3 and sorted(numbered) == list(range(1, k + 1)):
            forms.append((prefix, [numbered[n] for n in range(1, k + 1)]))
    return forms


def fit_table(table: str, source: Source, coded: bool) -> tuple[float, dict]:
    """How well a source fits a table (higher is better) and its column assignment.

    Matched columns add their score (required ones twice); a required column or
    one-of group left unmatched costs 1.5, unless questionnaire forms supply it;
    questionnaire forms add 3 each. ``coded``: clients come from coded events, so the
    referral columns are not looked for.
    """
    spec = TABLES[table]
    skip = ("referral_date", "referral_source", "episode") if coded and table == "clients" else ()
    chosen = assign_columns(table, source, skip)
    fit = sum(
        score / 100 * (2 if spec.column(c).required else 1) for c, (_, score) in chosen.items()
    )
    forms = item_groups(source) if table == "measures" else []
    long = table == "measures" and long_columns(source)[0] is not None
    for column in spec.columns:
        derivable = (
            table == "measures"
            and column.name in ("measure", "timepoint", "date")
            and (forms or long)
        )
        if column.required and column.name not in chosen and column.name not in skip:
            fit -= 0 if derivable else 1.5
    for group in spec.one_of:
        if not set(group) & set(chosen) and not set(group) & set(skip):
            fit -= 1.5
    fit += 3 * len(forms) + (3 if long else 0)
    return fit, chosen


def long_columns(source: Source) -> tuple[str | None, str | None]:
    """The item and answer columns of a one-item-per-row export (numbered items first)."""
    questions = [n for n, p in source.profiles.items() if p.key in _QUESTION]
    questions.sort(key=lambda n: -source.profiles[n].numeric_share)
    answer = next((n for n, p in source.profiles.items() if p.key in _ANSWER), None)
    return (questions[0], answer) if questions and answer else (None, None)


def squash(key: str) -> str:
    """A normalised header without spaces ("snomed code" -> "snomedcode")."""
    return key.replace(" ", "")


def is_coded_events(source: Source) -> bool:
    """A long table of coded events: a column called like a code, or holding SNOMED-like codes."""
    headers = {squash(h) for h in CODE_HEADERS}
    return any(
        squash(p.key) in headers or (p.code_share > 0.6 and "code" in p.key)
        for p in source.profiles.values()
    )


def is_lookup(source: Source) -> bool:
    """A code list (``code, term``) or a postcode to LSOA lookup, not scheme data."""
    keys = {p.key for p in source.profiles.values()}
    if {"code", "term"} <= keys:
        return True
    has_postcode = any(p.postcode_share > 0.8 for p in source.profiles.values())
    has_lsoa = any(p.lsoa_share > 0.8 for p in source.profiles.values())
    return has_postcode and has_lsoa
