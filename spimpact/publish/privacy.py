"""A privacy scan of rendered outputs: no identifier from the inputs, no small count.

``scan_outputs`` reads every text file a scheme's report wrote (HTML, notebook, CSV,
JSON, Markdown) and looks for

* identifiers from the inputs: client ids and pseudonyms, comparison-pool and
  appointment patient ids, feedback ids, NHS numbers (as written in the source files,
  with or without spaces) and dates of birth (ISO and dd/mm/yyyy);
* free text of feedback given without consent to quote (any run of
  ``TEXT_SHINGLE_WORDS`` consecutive words from it);
* counts from 1 to the disclosure threshold in count columns of ``tables/*.csv``;
* any number shaped like an NHS number that passes its Modulus 11 check, wherever it
  came from (an NHS number typed into a free-text or numeric field);
* secrets the caller names (the pseudonymisation key);
* active content in HTML and notebooks (a script, a ``<meta>``, ``<style>``, ``<base>``,
  ``<form>`` or embedded frame in the body, an event-handler or ``style`` attribute,
  a ``javascript:`` link), which the publishing gate never writes;
* CSV cells a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first).

Embedded images (``data:`` URIs) are skipped: base64 is not readable text and would
only produce chance matches.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spimpact.identifiers import is_valid_nhs_number
from spimpact.io import SchemeData, find_table_file, read_table
from spimpact.publish.disclosure import DEFAULT_RULE, DisclosureRule
from spimpact.streaming import StreamedTable, raw_distinct

TEXT_SUFFIXES = {".html", ".htm", ".ipynb", ".csv", ".json", ".md", ".txt", ".svg", ".tsv"}
# Eight consecutive words of a non-consented comment count as quoting it.
TEXT_SHINGLE_WORDS = 8
COUNT_COLUMN = re.compile(r"^(n|n_.+|.+_n|.*count.*|.*_rounded|referrals|events)$", re.IGNORECASE)
_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\\n]+", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9']+")
# Ids follow the data contract (letters, digits, '-' and '_'); NHS numbers and dates
# have fixed shapes. Tokenising once and intersecting sets keeps the scan fast.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_SPACED_NHS = re.compile(r"\b\d{3} \d{3} \d{4}\b")
_DATES = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{2}/\d{2}/\d{4}\b")
FINDING_COLUMNS = ("file", "kind", "detail")
# Marks every analyst-only file (e.g. the quote review sheet): never in a publishable folder.
ANALYST_ONLY_MARK = "SPIMPACT-ANALYST-ONLY: not for publication"
_TEN_DIGITS = re.compile(r"(?<![\w.])(\d{3}) ?(\d{3}) ?(\d{4})(?![\w.])")
_ACTIVE = re.compile(
    r"<\s*(?:script|style|meta|link|base|form|iframe|frame|object|embed|applet|svg|math|"
    r"template|input|button|textarea|select)\b"
    r"|\son[a-z]+\s*=|\sstyle\s*=|\s(?:src|href|action|formaction)\s*=\s*\\?[\"']?\s*"
    r"(?:javascript|vbscript|data:text)",
    re.IGNORECASE,
)
_FORMULA = re.compile(r"[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class PrivacyScan:
    """Result of ``scan_outputs``: one row per finding (``file, kind, detail``)."""

    findings: pd.DataFrame
    n_files: int
    n_identifiers: int

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return self.findings.empty

    def summary(self) -> str:
        """Say what was scanned and what, if anything, was found (never the value itself)."""
        head = (
            f"Scanned {self.n_files} output file(s) for {self.n_identifiers} identifier(s) "
            "from the inputs and for small counts in tables."
        )
        if self.clean:
            return head + " Nothing was found."
        counts = self.findings.groupby(["file", "kind"]).size()
        lines = [head, f"{len(self.findings)} finding(s):"]
        lines += [f"  {file}: {n} x {kind}" for (file, kind), n in counts.items()]
        return "\n".join(lines)


# The raw columns the scan takes identifiers from (as written in the inputs).
_RAW_IDENTIFIER_COLUMNS = ("client_id", "patient_id", "nhs_number", "date_of_birth")


def _raw_source(scheme: SchemeData, name: str) -> pd.DataFrame | None:
    path = scheme.source_files.get(name) if scheme.source_files else None
    path = path or find_table_file(Path(scheme.data_dir), name)
    if path is None or not Path(path).exists():
        return None
    if isinstance(scheme.table(name), StreamedTable):
        # a table too large for pandas: the distinct identifiers, read by streaming
        return raw_distinct(Path(path), _RAW_IDENTIFIER_COLUMNS)
    return read_table(Path(path))


def _text_values(frame: pd.DataFrame | StreamedTable | None, column: str) -> set[str]:
    if frame is None or column not in frame.columns:
        return set()
    if isinstance(frame, StreamedTable):
        frame = pd.DataFrame({column: frame.distinct(column)})
    values = frame[column].dropna().astype(str).str.strip()
    return {v for v in values if v}


def _nhs_forms(number: str) -> set[str]:
    digits = re.sub(r"\D", "", number)
    if len(digits) != 10:
        return {number}
    return {digits, f"{digits[:3]} {digits[3:6]} {digits[6:]}"}


def _date_forms(value: str) -> set[str]:
    date = pd.to_datetime(value, errors="coerce")
    if pd.isna(date):
        return {value}
    return {f"{date:%Y-%m-%d}", f"{date:%d/%m/%Y}"}


def collect_identifiers(scheme: SchemeData) -> dict[str, set[str]]:
    """Gather identifier strings to look for, by kind, from the loaded and raw input tables."""
    identifiers: dict[str, set[str]] = {
        "client id": _text_values(scheme.clients, "client_id"),
        "patient id": _text_values(scheme.comparison_pool, "patient_id")
        | _text_values(scheme.gp_appointments, "patient_id"),
        "feedback id": _text_values(scheme.feedback, "feedback_id"),
        "NHS number": set(),
        "date of birth": set(),
    }
    tables = ("clients", "comparison_pool", "gp_appointments", "feedback", "measures")
    for name in (*tables, "contacts", "support_offered"):
        raw = _raw_source(scheme, name)
        for column in ("client_id", "patient_id"):
            key = "client id" if column == "client_id" else "patient id"
            identifiers[key] |= _text_values(raw, column)
        for number in _text_values(raw, "nhs_number"):
            identifiers["NHS number"] |= _nhs_forms(number)
        for born in _text_values(raw, "date_of_birth"):
            identifiers["date of birth"] |= _date_forms(born)
    return identifiers


def _non_consented_shingles(scheme: SchemeData, approved=None) -> set[tuple[str, ...]]:
    feedback = scheme.feedback
    if feedback is None or "text" not in feedback.columns:
        return set()
    consent = feedback["consent_to_quote"].astype("boolean").fillna(False)
    if approved is not None:  # only quotes a person approved may be published
        consent &= feedback["feedback_id"].astype(str).isin(set(approved))
    withheld: set[tuple[str, ...]] = set()
    for text in feedback.loc[~consent, "text"].dropna().astype(str):
        withheld |= _shingles(text)
    # Word runs that a consented comment also contains may be quoted from that one.
    for text in feedback.loc[consent, "text"].dropna().astype(str):
        withheld -= _shingles(text)
    return withheld


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    k = TEXT_SHINGLE_WORDS
    return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}


def _small_counts(path: Path, rule: DisclosureRule) -> list[str]:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return []
    found = []
    for column in table.columns:
        if not COUNT_COLUMN.match(str(column)):
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        small = values[(values >= 1) & (values <= rule.threshold) & (values % 1 == 0)]
        if len(small):
            found.append(f"column '{column}': {len(small)} count(s) between 1 and {rule.threshold}")
    return found


def _valid_nhs_numbers(text: str) -> set[str]:
    found = set()
    for match in _TEN_DIGITS.finditer(text):
        digits = "".join(match.groups())
        if is_valid_nhs_number(digits):
            found.add(digits)
    return found


def _active_content(path: Path, text: str) -> int:
    """Pieces of active markup outside the head the gate writes (HTML) or anywhere (ipynb)."""
    if path.suffix.lower() in (".html", ".htm"):
        head_end = text.lower().find("</head>")
        text = text[head_end + len("</head>") :] if head_end >= 0 else text
    elif path.suffix.lower() != ".ipynb":
        return 0
    return len(_ACTIVE.findall(text))


def _formula_cells(path: Path) -> int:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return 0
    return sum(
        1
        for row in rows
        for cell in row
        if _FORMULA.match(cell) and not _PLAIN_NUMBER.fullmatch(cell)
    )


def scan_outputs(
    output_dir,
    scheme_data: SchemeData,
    *,
    rule: DisclosureRule = DEFAULT_RULE,
    secrets: Iterable[str] = (),
    approved_quotes: Iterable[str] | None = None,
) -> PrivacyScan:
    """Scan every output file of one scheme for identifiers and small counts.

    Parameters
    ----------
    output_dir
        The scheme's output folder (``outputs/<scheme_id>/``), scanned recursively.
    scheme_data
        The scheme's loaded data (``spimpact.io.load_scheme``); its raw source files
        are re-read for NHS numbers and dates of birth, which loading drops.
    rule
        Disclosure rule whose threshold defines a small count.
    secrets
        Strings that must appear nowhere (e.g. the pseudonymisation key).
    approved_quotes
        Ids of the quotes a person approved: words of any other comment (consented or
        not) found in the outputs are a finding. ``None`` checks consent only.

    Returns
    -------
    PrivacyScan
        Findings name the file and the kind of identifier, never the value.

    Notes
    -----
    Follows OpenSAFELY's output checking: outputs released from the secure
    environment are "moderately sensitive" (level 4) aggregates, never row-level
    (level 3) data; this scan is the automated part of that check (docs/outputs.md).
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise ValueError(f"output folder {output_dir} does not exist")
    identifiers = collect_identifiers(scheme_data)
    # Short ids could match ordinary words or numbers by chance; real ids are longer.
    identifiers = {kind: {v for v in values if len(v) >= 6} for kind, values in identifiers.items()}
    shingles = _non_consented_shingles(
        scheme_data, None if approved_quotes is None else set(approved_quotes)
    )
    findings = []
    files = sorted(
        p for p in output_dir.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
    )
    for path in files:
        name = str(path.relative_to(output_dir))
        text = _DATA_URI.sub("", path.read_text(encoding="utf-8", errors="replace"))
        tokens = set(_TOKEN.findall(text)) | set(_SPACED_NHS.findall(text))
        tokens |= set(_DATES.findall(text))
        for kind, values in identifiers.items():
            hits = values & tokens
            if hits:
                findings.append((name, kind, f"{len(hits)} {kind}(s) found"))
        if shingles and shingles & _shingles(text):
            findings.append((name, "feedback text without consent", "quoted words found"))
        if path.suffix.lower() == ".csv" and path.parent.name == "tables":
            findings += [(name, "small count", detail) for detail in _small_counts(path, rule)]
        nhs_shaped = _valid_nhs_numbers(text) - identifiers.get("NHS number", set())
        if nhs_shaped:
            findings.append(
                (name, "NHS number", f"{len(nhs_shaped)} number(s) passing the NHS check digit")
            )
        if ANALYST_ONLY_MARK in text:
            findings.append((name, "analyst-only file", "an analyst-only file (e.g. quote review)"))
        if any(secret and secret in text for secret in secrets):
            findings.append((name, "secret", "a secret (e.g. the pseudonymisation key) found"))
        n_active = _active_content(path, text)
        if n_active:
            findings.append((name, "active content", f"{n_active} piece(s) of active markup"))
        if path.suffix.lower() == ".csv":
            n_formulas = _formula_cells(path)
            if n_formulas:
                findings.append((name, "spreadsheet formula", f"{n_formulas} formula-like cell(s)"))
    return PrivacyScan(
        findings=pd.DataFrame(findings, columns=list(FINDING_COLUMNS)),
        n_files=len(files),
        n_identifiers=sum(len(v) for v in identifiers.values()),
    )
