"""``spimpact map``: propose a mapping file from a folder of a scheme's exports.

Every file (and every sheet of a workbook) is profiled (:mod:`spimpact.mapping.profile`),
given the contract table it fits best, and its columns the contract columns they
resemble most by header (RapidFuzz against :mod:`spimpact.mapping.vocabulary`) and by
content (dates, numbers, code labels). Labels of coded columns are matched to contract
codes, date formats detected, questionnaire items grouped into forms (wide) or found
one per row (long), and a long table of SNOMED-coded events recognised as a GP
extract. The result is a commented YAML mapping for the analyst to check and edit:
what could not be placed is listed, never guessed silently. Only headers and labels
of coded columns are written, never free text or identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spimpact.contract import TABLES
from spimpact.mapping.apply import valid_codes
from spimpact.mapping.profile import ColumnProfile, match_label, match_timepoints
from spimpact.mapping.sources import (
    CODE_HEADERS,
    Source,
    fit_table,
    is_coded_events,
    is_lookup,
    item_groups,
    long_columns,
    quote,
    read_sources,
    squash,
)
from spimpact.mapping.vocabulary import (
    LABELS,
    MEASURE_ITEMS,
    POSTCODE,
    WEMWBS_RESPONSES,
    normal,
)

__all__ = ["PLACED_COLUMNS", "Proposal", "propose_mapping"]

PLACED_COLUMNS = ("kind", "table", "target", "source", "source_column", "label", "score")


@dataclass(frozen=True)
class Proposal:
    """A proposed mapping: the YAML text and what was placed, for checking.

    ``placed`` has :data:`PLACED_COLUMNS`: ``kind`` is ``table`` (a source given a
    table), ``column`` (a source column given a contract column) or ``label`` (a label
    given a code, ``target`` being ``column=code``); ``unplaced`` lists in words what
    needs the analyst.
    """

    text: str
    placed: pd.DataFrame
    unplaced: tuple[str, ...]


def propose_mapping(source_dir: str | Path) -> Proposal:
    r"""Propose a mapping for the exports in ``source_dir``.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "referrals.csv").write_text(
    ...     "Client Ref,Date of referral,Referred by,Gender,Ethnicity,Age\n"
    ...     "a1,05/04/2024,GP Surgery,Female,White - British,44\n"
    ...     "a2,13/04/2024,Self referral,Male,Asian or Asian British - Indian,61\n")
    >>> proposal = propose_mapping(folder)
    >>> placed = proposal.placed[proposal.placed["kind"] == "column"]
    >>> dict(zip(placed["target"], placed["source_column"]))["referral_date"]
    'Date of referral'
    >>> "GP Surgery" in proposal.text and '"%d/%m/%Y"' in proposal.text
    True
    """
    source_dir = Path(source_dir)
    unplaced: list[str] = []
    sources = read_sources(source_dir, unplaced)
    lookups = [s for s in sources if is_lookup(s)]
    coded = next((s for s in sources if is_coded_events(s) and s not in lookups), None)
    for source in sources:
        if source in lookups or source is coded:
            continue
        fits = {t: fit_table(t, source, coded is not None) for t in TABLES}
        best = max(fits, key=lambda t: (fits[t][0], -list(TABLES).index(t)))
        if fits[best][0] < 2:
            unplaced.append(f"{source.label}: fits no contract table (check it by hand)")
            continue
        source.table, source.columns = best, fits[best][1]
    if coded is not None:
        coded.role = "coded_events"
    writer = _Writer(source_dir, lookups, unplaced)
    text = writer.write(sources, coded)
    return Proposal(
        text=text,
        placed=pd.DataFrame(writer.placed, columns=list(PLACED_COLUMNS)),
        unplaced=tuple(unplaced),
    )


class _Writer:
    """Writes the YAML and records what was placed."""

    def __init__(self, source_dir: Path, lookups: list[Source], unplaced: list[str]):
        self.source_dir = source_dir
        self.lookups = lookups
        self.unplaced = unplaced
        self.placed: list[tuple] = []
        self.lines: list[str] = []

    def write(self, sources: list[Source], coded: Source | None) -> str:
        lines = self.lines
        lines += [
            f"# Mapping proposed by `spimpact map` for {self.source_dir.name}/. Check every line,",
            "# edit what is wrong, then check it against the exports with",
            f"#   spimpact validate {self.source_dir.name} --mapping <this file>",
            "# 'CHECK' marks a guess; labels that could not be placed are commented out (their",
            "# rows are excluded until you map them); the end lists what could not be placed.",
            "version: 1",
        ]
        if coded is not None:
            self._coded(coded)
        by_table: dict[str, list[Source]] = {}
        for source in sources:
            if source.table:
                by_table.setdefault(source.table, []).append(source)
        lines.append("tables:")
        for table in TABLES:
            for k, source in enumerate(by_table.get(table, [])):
                self._table(table, source, k, len(by_table[table]), coded is not None)
        if self.unplaced:
            lines.append("")
            lines.append("# Could not place:")
            lines += [f"#   - {u}" for u in self.unplaced]
        return "\n".join(lines) + "\n"

    def _source_keys(self, source: Source, indent: str) -> None:
        self.lines.append(f"{indent}source: {quote(source.path.name)}")
        if source.sheet is not None:
            self.lines.append(f"{indent}sheet: {quote(source.sheet)}")
        if source.header_row:
            self.lines.append(f"{indent}header_row: {source.header_row}  # rows above are titles")

    def _table(self, table: str, source: Source, k: int, n: int, coded: bool) -> None:
        lines = self.lines
        self.placed.append(("table", table, table, source.label, "", "", 100))
        if n == 1:
            lines.append(f"  {table}:")
            indent = "    "
        else:
            if k == 0:
                lines.append(f"  {table}:")
            lines.append("    - source: " + quote(source.path.name))
            source_lines = []
            if source.sheet is not None:
                source_lines.append(f"      sheet: {quote(source.sheet)}")
            if source.header_row:
                source_lines.append(f"      header_row: {source.header_row}")
            lines += source_lines
            indent = "      "
        if n == 1:
            self._source_keys(source, indent)
        lines.append(f"{indent}columns:")
        columns = dict(source.columns)
        forms = item_groups(source) if table == "measures" else []
        question, answer = long_columns(source) if table == "measures" else (None, None)
        if forms or question:
            for name in list(columns):
                if name.startswith("item_") or (
                    question and columns[name][0] in (question, answer)
                ):
                    columns.pop(name)
        in_forms = {c for _, group in forms for c in group}
        columns = {c: v for c, v in columns.items() if v[0] not in in_forms}
        if len(forms) > 1:  # each form takes its own date and time point
            columns = {c: v for c, v in columns.items() if c not in ("date", "timepoint")}
        order = list(TABLES[table].names)
        columns = dict(sorted(columns.items(), key=lambda kv: order.index(kv[0])))
        for column, (name, score) in columns.items():
            self._column(table, column, source, name, score, indent + "  ")
        self._derived(table, source, columns, forms, question, indent + "  ", coded)
        if forms:
            self._forms(source, forms, columns, indent)
        elif question:
            self._long(source, question, answer, columns, indent)
        for column in TABLES[table].columns:
            derived = table == "measures" and (forms or question)
            covered = column.name in columns or (
                coded and table == "clients" and column.name in ("referral_date", "referral_source")
            )
            if column.required and not covered and not derived:
                lines.append(f"{indent}  # {column.name}: ???   # required: could not place")
                self.unplaced.append(f"{source.label}: no column for required '{column.name}'")

    def _column(self, table, column, source, name, score, indent) -> None:
        lines = self.lines
        profile = source.profiles[name]
        self.placed.append(("column", table, column, source.label, name, "", score))
        check = "" if score >= 90 else f"  # CHECK (match {score})"
        spec = TABLES[table].column(column)
        if spec.kind == "date" and profile.date_format not in (None, "iso"):
            lines.append(f"{indent}{column}: {_date_rule(name, profile.date_format)}{check}")
            return
        if spec.pattern and profile.labels is not None:
            split = _split_rule(source.frame[name], spec.pattern)
            if split is not None:
                lines.append(f"{indent}{column}: {split}{check}")
                return
        if column == "timepoint" and profile.labels and profile.numeric_share < 0.8:
            stages = match_timepoints(profile.labels)
            lines.append(f"{indent}{column}:{check}")
            lines.append(f"{indent}  column: {quote(name)}")
            lines.append(f"{indent}  values:   # CHECK: time points in the order of the stages")
            for label in profile.labels:
                if label in stages:
                    lines.append(f"{indent}    {quote(label)}: {stages[label]}")
                    self.placed.append(
                        ("label", table, f"{column}={stages[label]}", source.label, name, label, 90)
                    )
                else:
                    lines.append(f"{indent}    # {quote(label)}: ???   # could not place")
                    self.unplaced.append(f"{source.label}: stage {quote(label)} of '{name}'")
            return
        labels = [v for v in profile.labels if column in LABELS or spec.kind == "code"]
        to_map = [v for v in labels if not valid_codes(table, column, pd.Series([v])).iloc[0]]
        if not to_map or column not in LABELS:
            lines.append(f"{indent}{column}: {quote(name)}{check}")
            if to_map and spec.kind == "code":
                lines.append(
                    f"{indent}# CHECK: labels not in the contract's codes: "
                    + ", ".join(quote(v) for v in to_map[:10])
                )
            return
        lines.append(f"{indent}{column}:{check}")
        lines.append(f"{indent}  column: {quote(name)}")
        lines.append(f"{indent}  values:")
        for label in to_map:
            code, sure = match_label(column, label)
            if code is None:
                lines.append(f"{indent}    # {quote(label)}: ???   # could not place")
                self.unplaced.append(f"{source.label}: label {quote(label)} of '{name}' ({column})")
                continue
            note = "" if sure == 100 else f"  # CHECK (match {sure})"
            lines.append(f"{indent}    {quote(label)}: {quote(code)}{note}")
            self.placed.append(
                ("label", table, f"{column}={code}", source.label, name, label, sure)
            )

    def _derived(self, table, source, columns, forms, question, indent, coded) -> None:
        lines = self.lines
        if table == "clients" and "client_id" in columns and not coded:
            if not source.profiles[columns["client_id"][0]].unique and "episode" not in columns:
                lines.append(
                    f"{indent}episode: {{sequence: true}}   # a client appears more than once"
                )
        if table in ("clients", "comparison_pool") and "lsoa_code" not in columns:
            postcode = next(
                (
                    n
                    for n, p in source.profiles.items()
                    if p.postcode_share > 0.8 or p.key in POSTCODE
                ),
                None,
            )
            if postcode is not None:
                self._postcode(postcode, indent, source)
        if table == "measures" and "timepoint" not in columns and not forms:
            lines.append(f"{indent}timepoint: {{sequence: true}}   # CHECK: numbered by date")

    def _postcode(self, postcode: str, indent: str, source: Source) -> None:
        lookup = self.lookups[0] if self.lookups else None
        if lookup is None:
            self.lines.append(
                f"{indent}# lsoa_code: {{postcode: {quote(postcode)}, lookup: {{file: "
                '"postcode_lsoa.csv", postcode: "pcds", lsoa: "lsoa21"}}   # add a lookup file'
            )
            self.unplaced.append(
                f"{source.label}: postcodes in '{postcode}' need a postcode to LSOA lookup file "
                "(e.g. the ONS Postcode Directory) in the folder"
            )
            return
        pc = next(n for n, p in lookup.profiles.items() if p.postcode_share > 0.8)
        lsoa = next(n for n, p in lookup.profiles.items() if p.lsoa_share > 0.8)
        self.lines.append(
            f"{indent}lsoa_code: {{postcode: {quote(postcode)}, lookup: "
            f"{{file: {quote(lookup.path.name)}, postcode: {quote(pc)}, lsoa: {quote(lsoa)}}}}}"
        )
        self.placed.append(("column", "clients", "lsoa_code", source.label, postcode, "", 90))

    def _forms(self, source: Source, forms, columns, indent) -> None:
        lines = self.lines
        lines.append(f"{indent}questionnaire:")
        lines.append(f"{indent}  layout: wide")
        responses = self._responses(source, [c for _, g in forms for c in g])
        if responses:
            lines.append(f"{indent}  responses: {{{responses}}}")
        lines.append(f"{indent}  forms:")
        seen: dict[str, int] = {}
        dates = {n: p for n, p in source.profiles.items() if p.date_format is not None}
        stages = match_timepoints([prefix for prefix, _ in forms])
        for prefix, group in forms:
            measure = _measure_of(f"{prefix} {normal(source.sheet or '')}", len(group))
            timepoint = stages.get(prefix)
            if timepoint is None:
                timepoint = seen.get(measure, -1) + 1
            seen[measure] = max(seen.get(measure, -1), timepoint)
            form = [f"items: [{', '.join(quote(c) for c in group)}]"]
            if "measure" not in columns:
                form.append(f"measure: {quote(measure)}   # CHECK ({len(group)} items)")
            for k, name in enumerate(group, start=1):
                self.placed.append(
                    ("column", "measures", f"item_{k}", source.label, name, prefix, 80)
                )
            if "timepoint" not in columns:
                form.append(f"timepoint: {timepoint}")
            if "date" not in columns:
                date = _date_for(prefix, timepoint, dates)
                if date is not None:
                    form.append(f"date: {_date_rule(date, dates[date].date_format)}")
                    self.placed.append(
                        ("column", "measures", "date", source.label, date, prefix, 80)
                    )
                else:
                    form.append("# date: ???   # could not place")
                    self.unplaced.append(f"{source.label}: no date for the form '{prefix}'")
            lines.append(f"{indent}    - {form[0]}")
            lines += [f"{indent}      {line}" for line in form[1:]]

    def _responses(self, source: Source, item_columns: list[str]) -> str:
        labels = {v for c in item_columns for v in source.profiles[c].labels}
        words = [v for v in labels if pd.to_numeric(pd.Series([v]), errors="coerce").isna().all()]
        mapped = {v: WEMWBS_RESPONSES[normal(v)] for v in words if normal(v) in WEMWBS_RESPONSES}
        for v in set(words) - set(mapped):
            self.unplaced.append(f"{source.label}: answer label {quote(v)}")
        return ", ".join(
            f"{quote(k)}: {v}" for k, v in sorted(mapped.items(), key=lambda kv: kv[1])
        )

    def _long(self, source: Source, question: str, answer: str, columns, indent) -> None:
        lines = self.lines
        lines.append(f"{indent}questionnaire:")
        lines.append(f"{indent}  layout: long")
        profile = source.profiles[question]
        if profile.numeric_share >= 0.99:
            lines.append(f"{indent}  item: {quote(question)}")
        else:
            order = list(dict.fromkeys(source.frame[question].fillna("").astype(str).str.strip()))
            order = [v for v in order if v][:14]
            lines.append(f"{indent}  item:   # CHECK: item numbers in order of first appearance")
            lines.append(f"{indent}    column: {quote(question)}")
            lines.append(f"{indent}    values:")
            lines += [f"{indent}      {quote(v)}: {k}" for k, v in enumerate(order, start=1)]
        lines.append(f"{indent}  response: {quote(answer)}")
        responses = self._responses(source, [answer])
        if responses:
            lines.append(f"{indent}  responses: {{{responses}}}")
        self.placed.append(("column", "measures", "item", source.label, question, "", 80))
        self.placed.append(("column", "measures", "response", source.label, answer, "", 80))

    def _coded(self, coded: Source) -> None:
        lines = self.lines
        self.placed.append(("table", "coded_events", "coded_events", coded.label, "", "", 100))
        lines.append("coded_events:   # a GP extract of coded events (SNOMED CT)")
        self._source_keys(coded, "  ")
        lines.append("  columns:")
        wanted = {
            "patient_id": ["patient id", "patient", "id", "person id", "patientid"],
            "date": ["date", "event date", "eventdate", "consultation date", "entry date"],
            "code": sorted(CODE_HEADERS),
            "value": ["value", "numeric value", "numericvalue", "result", "score"],
        }
        used = set()
        for column, synonyms in wanted.items():
            name = next(
                (
                    n
                    for n, p in coded.profiles.items()
                    if n not in used and squash(p.key) in {squash(s) for s in synonyms}
                ),
                None,
            )
            if name is None:
                if column != "value":
                    lines.append(f"    # {column}: ???   # required: could not place")
                    self.unplaced.append(f"{coded.label}: no column for '{column}'")
                continue
            used.add(name)
            self.placed.append(("column", "coded_events", column, coded.label, name, "", 90))
            profile = coded.profiles[name]
            if column == "date" and profile.date_format not in (None, "iso"):
                lines.append(f"    {column}: {_date_rule(name, profile.date_format)}")
            else:
                lines.append(f"    {column}: {quote(name)}")
        lines.append("  # code lists: builtin:<name> or CSV files (code,term) beside this file")
        lines.append('  referral_accepted: "builtin:social_prescribing_referral_accepted"')
        lines.append('  referral_declined: "builtin:social_prescribing_referral_declined"')
        lines.append(
            '  referral_offered: "builtin:social_prescribing_referral_offered"  # UNCONFIRMED'
        )
        lines.append('  measures: ["builtin:wellbeing_scores"]')


def _split_rule(values: pd.Series, pattern: str) -> str | None:
    """A split rule when cells hold a code and more ("A81001 - Riverside Surgery")."""
    text = values.fillna("").astype(str).str.strip()
    text = text[text != ""]
    if text.empty or text.str.fullmatch(pattern).mean() > 0.8:
        return None
    for sep in (" - ", " – ", ": ", " (", ","):
        first = text.str.split(sep, n=1, regex=False).str[0].str.strip()
        if first.str.fullmatch(pattern).mean() > 0.8:
            return f"{{split: {quote(values.name)}, sep: {quote(sep)}, part: 1}}"
    return None


def _date_rule(name: str, date_format: str | None) -> str:
    if date_format in (None, "iso"):
        return quote(name)
    return f"{{column: {quote(name)}, date_format: {quote(date_format)}}}"


def _measure_of(prefix: str, n_items: int) -> str:
    for measure, synonyms in LABELS["measure"].items():
        if any(s in prefix for s in [measure, *synonyms] if len(s) > 3):
            return measure
    by_items = {v: k for k, v in reversed(MEASURE_ITEMS.items())}
    return by_items.get(n_items, "swemwbs")


def _timepoint_of(prefix: str) -> int | None:
    return match_timepoints([prefix]).get(prefix)


def _date_for(prefix: str, timepoint: int, dates: dict[str, ColumnProfile]) -> str | None:
    words = set(prefix.split()) - {"q", "item", "question"}
    for name, profile in dates.items():
        if words and words & set(profile.key.split()):
            return name
    for name, profile in dates.items():
        if _timepoint_of(profile.key) == timepoint:
            return name
    generic = [n for n, p in dates.items() if "date" in p.key or "completed" in p.key]
    return (
        generic[0]
        if len(generic) == 1
        else (generic[timepoint] if timepoint < len(generic) else None)
    )
