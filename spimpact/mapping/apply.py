"""Apply a mapping file: read a scheme's own exports and give the contract's tables.

The result (:class:`MappedTables`) is what :func:`spimpact.io.load_scheme` checks
against the data contract, exactly as if the tables had been written by hand, plus
the account of the mapping itself: which label became which code in how many rows,
which rows a mapping rule excluded and why, which source columns were not read.

Row identity: every contract row gets a ``source_row`` number unique within its table.
When a table comes from one source, row for row, it is the row's line in that source;
otherwise (several sources, several questionnaires on one row, one item per row) it is
a running number, and ``origins`` gives each number's source and line, which the
loader puts back into every exclusion.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact import contract
from spimpact.contract import TABLES
from spimpact.mapping import derive
from spimpact.mapping.model import ColumnRule, MappingError, MappingFile, TableMapping
from spimpact.readers import DataValidationError, read_table

__all__ = [
    "ACTIONS",
    "MAPPING_REPORT_COLUMNS",
    "MappedTables",
    "SourceRows",
    "apply_mapping",
    "read_source",
]

MAPPING_REPORT_COLUMNS = (
    "table",
    "column",
    "source",
    "source_column",
    "source_value",
    "target_value",
    "n_rows",
    "action",
    "declared",
)
ACTIONS = {
    "mapped": "the label was mapped to target_value",
    "unchanged": "the value is already a contract code and was kept",
    "excluded": "the label is not mapped (or not a valid code): its rows are excluded",
    "blank": "the label is not mapped, or the postcode not in the lookup: left blank",
    "missing": "the source cell is blank",
    "derived": "values made by a rule (date format, split, join, lookup, constant, sequence)",
    "read": "rows read from the source",
    "reshaped": "contract rows made from those rows (questionnaire layout)",
    "no_answers": "questionnaires on a row with no item answered: no contract row",
    "not_used": "coded events that are not used (e.g. declined referrals, total scores)",
}
# An undeclared label seen in the data is listed on its own only up to this many
# labels per column, and only when short; the rest are counted together as
# OTHER_LABELS, so free text typed into a coded column is never listed.
_MAX_LABELS = 50
_MAX_LABEL_CHARS = 40
OTHER_LABELS = "(other values)"
NOT_IN_LOOKUP = "(postcode not in the lookup)"


@dataclass(frozen=True)
class SourceRows:
    """Rows of one source after its column rules, before contract rows are made."""

    table: str
    label: str
    frame: pd.DataFrame  # the source as read (``source_row`` = its line)
    values: pd.DataFrame  # contract column -> text, same index
    problems: list[tuple]  # (frame index, column, value, reason)
    used_columns: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class MappedTables:
    """The contract tables a mapping made, with the account of the mapping.

    Attributes
    ----------
    tables
        Contract table name → text frame in the contract's column names, with
        ``source_row`` (see the module notes).
    origins
        Table name → frame ``source_row, source, row``: the source (``file`` or
        ``file [sheet]``) and the line or spreadsheet row of every contract row.
    exclusions
        ``table, source_row, column, value, reason``: rows a mapping rule excluded
        (a label not mapped, a date not in the mapped format, ...).
    report
        One row per label per column and per derived column, in
        :data:`MAPPING_REPORT_COLUMNS` (actions in :data:`ACTIONS`).
    files
        Table name → the (first) source file.
    ignored
        ``table, source, column``: source columns no rule reads (names only).
    """

    tables: dict[str, pd.DataFrame]
    origins: dict[str, pd.DataFrame]
    exclusions: pd.DataFrame
    report: pd.DataFrame
    files: dict[str, Path]
    ignored: pd.DataFrame


def read_source(mapping: MappingFile, source, key: str, source_dir: Path) -> pd.DataFrame:
    """Read one source of a mapping (headers kept as written); errors name the key."""
    path = Path(source_dir) / source.source
    if not path.exists():
        raise MappingError(
            [
                f"{mapping.name}: key '{key}.source': no file '{source.source}' "
                f"in {Path(source_dir).name}"
            ]
        )
    try:
        return read_table(path, sheet=source.sheet, header_row=source.header_row, keep_case=True)
    except DataValidationError as error:
        problems = [f"{mapping.name}: key '{key}.source': {p}" for p in error.problems]
        raise MappingError(problems) from None


def find_column(name: str, frame: pd.DataFrame, where: str, label: str) -> str:
    """The frame's column called ``name`` (case and spacing ignored), or a clear error."""
    columns = [c for c in frame.columns if c != "source_row"]
    wanted = derive.label_key(name)
    for column in columns:
        if derive.label_key(column) == wanted:
            return column
    hint = ""
    if columns:
        from rapidfuzz import fuzz, process

        best = process.extractOne(name, columns, scorer=fuzz.WRatio)
        if best and best[1] >= 60:
            hint = f"; closest: '{best[0]}'"
    raise MappingError([f"{where}: source column '{name}' not found in {label}{hint}"])


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].fillna("").astype(str).str.strip()


def evaluate_rule(
    rule: ColumnRule, frame: pd.DataFrame, where: str, label: str, source_dir: Path
) -> tuple[pd.Series, pd.Series]:
    """The text a rule gives for every row, and the mask of postcodes not found."""
    not_found = pd.Series(False, index=frame.index)
    columns = [find_column(c, frame, where, label) for c in rule.source_columns]
    if rule.column is not None:
        return _text(frame, columns[0]), not_found
    if rule.constant is not None:
        constant = rule.constant
        text = str(constant).lower() if isinstance(constant, bool) else str(constant)
        return pd.Series(text, index=frame.index, dtype=object), not_found
    if rule.concat is not None:
        sep = " " if rule.sep is None else rule.sep
        return derive.concat_columns([frame[c] for c in columns], sep), not_found
    if rule.split is not None:
        return derive.split_column(frame[columns[0]], rule.sep, rule.part), not_found
    if rule.postcode is not None:
        lookup = Path(source_dir) / rule.lookup.file
        if not os.path.lexists(lookup):
            raise MappingError(
                [
                    f"{where[:-1]}.lookup': no lookup file '{rule.lookup.file}' "
                    f"in {Path(source_dir).name}"
                ]
            )
        try:
            return derive.lookup_lsoa(
                frame[columns[0]], lookup, rule.lookup.postcode, rule.lookup.lsoa
            )
        except Exception as error:  # noqa: BLE001 - duckdb names the missing column
            raise MappingError(
                [f"{where[:-1]}.lookup': cannot use {lookup.name}: {error}"]
            ) from None
    return pd.Series("", index=frame.index, dtype=object), not_found  # sequence: filled later


def valid_codes(table: str, name: str, text: pd.Series) -> pd.Series:
    """Which cells are already valid values of contract column ``name``."""
    column = TABLES[table].column(name)
    if column.kind == "code":
        return contract.normalise_codes(name, text).isin(column.allowed or ())
    if column.kind == "bool":
        return text.str.lower().isin(contract.BOOL_TRUE + contract.BOOL_FALSE)
    if column.kind in ("int", "float"):
        return pd.to_numeric(text, errors="coerce").notna()
    return pd.Series(True, index=text.index)


def map_labels(
    text: pd.Series, values: dict | None, unmapped: str, valid: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Labels mapped by ``values``; returns the new text and each row's action."""
    lookup = {derive.label_key(k): str(v) for k, v in (values or {}).items()}
    target = text.map(lambda v: lookup.get(derive.label_key(v)))
    blank = text == ""
    action = pd.Series("excluded", index=text.index, dtype=object)
    action[valid] = "unchanged"
    if values is not None and unmapped == "blank":
        action[~valid] = "blank"
    action[target.notna()] = "mapped"
    action[blank] = "missing"
    result = target.where(target.notna(), text)
    result = result.where(~action.isin(["blank", "missing"]), "")
    return result.astype(object), action


def label_report(
    table: str, column: str, label: str, source_column: str, text, target, action, declared
) -> pd.DataFrame:
    """Counts per (label, action, target) of one column, with long tails collapsed."""
    frame = pd.DataFrame(
        {
            "source_value": text.to_numpy(),
            "target_value": target.to_numpy(),
            "action": action.to_numpy(),
        }
    )
    counts = frame.groupby(["source_value", "action", "target_value"], dropna=False).size()
    counts = counts.rename("n_rows").reset_index()
    counts["declared"] = counts["source_value"].map(lambda v: derive.label_key(v) in declared)
    undeclared = ~counts["declared"] & counts["action"].isin(["excluded", "blank", "unchanged"])
    # long undeclared values look like free text: never listed one by one
    collapse = undeclared & counts["source_value"].astype(str).str.len().gt(_MAX_LABEL_CHARS)
    if undeclared.sum() > _MAX_LABELS:
        collapse = undeclared
    if collapse.any():
        undeclared = collapse
        tail = counts[undeclared].groupby(["action"], as_index=False)["n_rows"].sum()
        tail = tail.assign(source_value=OTHER_LABELS, target_value="", declared=False)
        counts = pd.concat([counts[~undeclared], tail], ignore_index=True)
    counts.loc[counts["action"].isin(["excluded", "blank", "missing"]), "target_value"] = None
    counts.loc[counts["action"] == "missing", "source_value"] = ""
    return counts.assign(table=table, column=column, source=label, source_column=source_column)


def convert_rows(
    mapping: MappingFile, table: str, source: TableMapping, key: str, source_dir: Path
) -> tuple[SourceRows, list[pd.DataFrame]]:
    """Read one source and apply its column rules (not the questionnaire layout)."""
    frame = read_source(mapping, source, key, source_dir)
    label = source.label()
    values = pd.DataFrame(index=frame.index)
    problems: list[tuple] = []
    reports: list[pd.DataFrame] = []
    used: set[str] = set()
    errors: list[str] = []
    for name, rule in source.columns.items():
        where = f"{mapping.name}: key '{key}.columns.{name}'"
        try:
            text, not_found = evaluate_rule(rule, frame, where, label, source_dir)
        except MappingError as error:
            errors += error.problems
            continue
        used |= {find_column(c, frame, where, label) for c in rule.source_columns}
        source_column = ", ".join(rule.source_columns) or "(rule)"
        text, rows, report = convert_cell_text(table, name, rule, text, where, label, source_column)
        problems += [(i, name, v, why) for i, v, why in rows]
        reports += report
        if rule.postcode is not None:
            reports.append(
                _count_row(table, name, label, source_column, "blank", int(not_found.sum())).assign(
                    source_value=NOT_IN_LOOKUP, declared=True
                )
            )
        values[name] = text
    if errors:
        raise MappingError(errors)
    return SourceRows(table, label, frame, values, problems, used), reports


def convert_cell_text(table, name, rule, text, where, label, source_column):
    """Dates and labels of one mapped column: the text, row problems and report rows."""
    column = TABLES[table].column(name) if name in TABLES[table].names else None
    rows: list[tuple] = []
    reports: list[pd.DataFrame] = []
    if column is not None and column.kind == "date":
        original = text
        text, bad = derive.convert_dates(text, rule.date_format)
        if rule.date_format is not None:
            expected = (
                "an Excel day number or a date"
                if rule.date_format.lower() == "excel"
                else f"a date written as {rule.date_format}"
            )
            shown = "(withheld)" if name == "date_of_birth" else None
            rows += [
                (i, shown or v, f"expected {expected} ({_key_of(where)})")
                for i, v in zip(text.index[bad], original[bad], strict=True)
            ]
            reports.append(
                _count_row(table, name, label, source_column, "derived", int((text != "").sum()))
            )
    elif column is not None and column.kind in ("code", "bool") or rule.values is not None:
        valid = valid_codes(table, name, text) if column is not None else text.ne("")
        mapped, action = map_labels(text, rule.values, rule.unmapped_action, valid)
        declared = {derive.label_key(k) for k in (rule.values or {})}
        shown = mapped
        if column is not None and column.kind == "code":
            shown = mapped.where(action != "unchanged", contract.normalise_codes(name, mapped))
        report = label_report(table, name, label, source_column, text, shown, action, declared)
        reports.append(report)
        if rule.values is not None and rule.unmapped_action == "exclude":
            bad = action == "excluded"
            rows += [
                (i, v, f"label not in the mapping's values for '{name}' ({_key_of(where)})")
                for i, v in zip(text.index[bad], text[bad], strict=True)
            ]
            mapped = mapped.where(~bad, "")
        text = mapped
    elif rule.concat is not None or rule.split is not None or rule.constant is not None:
        reports.append(
            _count_row(table, name, label, source_column, "derived", int((text != "").sum()))
        )
    return text, rows, reports


def _key_of(where: str) -> str:
    """``mapping.yaml key 'tables.x.columns.y'`` from a message prefix."""
    return where.replace(": key", " key", 1)


def _count_row(table, column, label, source_column, action, n_rows) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "table": table,
                "column": column,
                "source": label,
                "source_column": source_column,
                "source_value": None,
                "target_value": None,
                "n_rows": n_rows,
                "action": action,
                "declared": False,
            }
        ]
    )


def apply_mapping(mapping: MappingFile, source_dir: str | Path) -> MappedTables:
    """Read every source a mapping names and make the contract tables.

    Parameters
    ----------
    mapping
        A validated mapping (:func:`spimpact.mapping.load_mapping`).
    source_dir
        The folder holding the scheme's exports (and any postcode lookup).

    Raises
    ------
    MappingError
        A source file, sheet or column the mapping names is missing; every message
        names the mapping file, the key and the source column.
    """
    from spimpact.mapping.coded import coded_tables
    from spimpact.mapping.questionnaire import contract_rows

    source_dir = Path(source_dir)
    pieces: dict[str, list[tuple[pd.DataFrame, str, list[tuple]]]] = {}
    reports: list[pd.DataFrame] = []
    ignored: list[tuple[str, str, str]] = []
    files: dict[str, Path] = {}
    errors: list[str] = []
    for table in TABLES:
        sources = mapping.sources(table)
        if mapping.coded_events is not None and table == "clients":
            continue  # the demographics of coded clients are joined by coded_tables
        for k, source in enumerate(sources):
            key = f"tables.{table}" + (f"[{k}]" if len(sources) > 1 else "")
            try:
                rows, report = convert_rows(mapping, table, source, key, source_dir)
                made, problems, more_report, used = contract_rows(rows, source, mapping, key)
            except MappingError as error:
                errors += error.problems
                continue
            files.setdefault(table, source_dir / source.source)
            reports += [*report, *more_report]
            pieces.setdefault(table, []).append((made, rows.label, problems))
            ignored += [
                (table, rows.label, c)
                for c in rows.frame.columns
                if c != "source_row" and c not in rows.used_columns | used
            ]
    if mapping.coded_events is not None:
        try:
            coded = coded_tables(mapping, source_dir)
        except MappingError as error:
            errors += error.problems
        else:
            for table, piece in coded.pieces.items():
                pieces.setdefault(table, []).append(piece)
            reports.append(coded.report)
            files.update({t: f for t, f in coded.files.items() if t not in files})
            ignored += coded.ignored
    if errors:
        raise MappingError(errors)
    tables, origins, exclusions = {}, {}, []
    for table, parts in pieces.items():
        tables[table], origins[table], excluded = _number_rows(table, parts)
        exclusions += excluded
    tables = _sequences(tables)
    report = pd.concat(reports, ignore_index=True) if reports else pd.DataFrame()
    report = report.reindex(columns=list(MAPPING_REPORT_COLUMNS))
    report["n_rows"] = report["n_rows"].fillna(0).astype(int)
    report["declared"] = report["declared"].fillna(False).astype(bool)
    return MappedTables(
        tables=tables,
        origins=origins,
        exclusions=pd.DataFrame(
            exclusions, columns=["table", "source_row", "column", "value", "reason"]
        ),
        report=report.sort_values(
            ["table", "column", "source", "action", "source_value"],
            kind="stable",
            na_position="first",
        ).reset_index(drop=True),
        files=files,
        ignored=pd.DataFrame(ignored, columns=["table", "source", "column"]).drop_duplicates(),
    )


def _number_rows(table: str, parts) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple]]:
    """Give the rows of a table unique ``source_row`` numbers and keep their origin."""
    frames, origins, excluded = [], [], []
    lines_are_unique = len(parts) == 1 and parts[0][0]["_line"].is_unique
    offset = 0
    for made, label, problems in parts:
        made = made.reset_index(drop=True)
        ids = made["_line"].to_numpy() if lines_are_unique else np.arange(1, len(made) + 1) + offset
        offset += len(made)
        by_position = dict(zip(made["_position"], ids, strict=True)) if "_position" in made else {}
        excluded += [
            (table, int(by_position.get(p, ids[p])), c, v, why) for p, c, v, why in problems
        ]
        origins.append(pd.DataFrame({"source_row": ids, "source": label, "row": made["_line"]}))
        frames.append(
            made.drop(columns=["_line", "_position"], errors="ignore").assign(source_row=ids)
        )
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[["source_row", *[c for c in frame.columns if c != "source_row"]]]
    frame = frame.fillna("")
    return frame, pd.concat(origins, ignore_index=True), excluded


def _sequences(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Fill ``episode`` and ``timepoint`` columns left blank by ``sequence`` rules."""
    person = "client_id"
    if "clients" in tables and "episode" in tables["clients"]:
        clients = tables["clients"]
        if clients["episode"].eq("").all():
            key = person if person in clients and clients[person].ne("").any() else "nhs_number"
            clients["episode"] = derive.number_in_sequence(clients, [key], "referral_date", start=1)
    if "measures" in tables and "timepoint" in tables["measures"]:
        measures = tables["measures"]
        if measures["timepoint"].eq("").all():
            key = person if person in measures and measures[person].ne("").any() else "nhs_number"
            by = [key, *(["episode"] if "episode" in measures else []), "measure"]
            measures["timepoint"] = derive.number_in_sequence(measures, by, "date", start=0)
    return tables
