"""SNOMED-coded GP extracts: a long table of coded events turned into contract tables.

GP clinical systems export one row per coded event: patient, date, SNOMED CT code and,
for observations, a numeric value. With code lists (:mod:`spimpact.mapping.codelists`):

* each *accepted* referral to social prescribing (871731000000106, recorded "for the
  first interaction in an episode of care only") starts an episode of a client:
  ``clients`` gets one row per accepted referral, numbered ``episode`` 1, 2, ... by
  date, ``referral_source`` from the mapping (``gp`` by default), and the patient's
  demographics from the mapping's ``clients`` table (keyed by the same patient id);
* declined and offered referrals are counted in the mapping report (not clients);
* codes of questionnaire items give ``measures`` rows (one per patient, date and
  measure), attributed to the episode running on their date and numbered ``timepoint``
  0, 1, ... within it; a total-score code is counted and not used, because the data
  contract scores questionnaires from their items;
* every other code is counted together and not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.linkage import episode_on
from spimpact.mapping import derive
from spimpact.mapping.apply import (
    _count_row,
    convert_cell_text,
    convert_rows,
    evaluate_rule,
    read_source,
)
from spimpact.mapping.codelists import read_codelist
from spimpact.mapping.model import MappingFile

__all__ = ["CodedTables", "coded_tables"]

REFERRAL_KINDS = ("accepted", "declined", "offered")


@dataclass(frozen=True)
class CodedTables:
    """Contract rows made from coded events, as ``apply_mapping`` collects them."""

    pieces: dict[str, tuple[pd.DataFrame, str, list[tuple]]]
    report: pd.DataFrame
    files: dict[str, Path]
    ignored: list[tuple[str, str, str]]


def _events(mapping: MappingFile, source_dir: Path):
    coded = mapping.coded_events
    frame = read_source(mapping, coded, "coded_events", source_dir)
    events = pd.DataFrame(index=frame.index)
    problems: list[tuple] = []
    used = set()
    for name, rule in coded.columns.items():
        where = f"{mapping.name}: key 'coded_events.columns.{name}'"
        text, _ = evaluate_rule(rule, frame, where, coded.label(), source_dir)
        used |= set(rule.source_columns)
        if name == "date":
            text, rows, _ = convert_cell_text(
                "clients",
                "referral_date",
                rule,
                text,
                where,
                coded.label(),
                ", ".join(rule.source_columns),
            )
            problems += rows
        events[name] = text
    if "value" not in events:
        events["value"] = ""
    events["line"] = frame["source_row"]
    ignored = [
        ("clients", coded.label(), c)
        for c in frame.columns
        if c != "source_row" and derive.label_key(c) not in {derive.label_key(u) for u in used}
    ]
    return events, problems, ignored


def coded_tables(mapping: MappingFile, source_dir: Path) -> CodedTables:
    """Clients (and measures) from the coded events a mapping names."""
    coded = mapping.coded_events
    label = coded.label()
    events, event_problems, ignored = _events(mapping, source_dir)
    bad_lines = {i for i, *_ in event_problems}
    reports: list[pd.DataFrame] = [_count_row("clients", "", label, "", "read", len(events))]
    kinds = pd.Series("", index=events.index, dtype=object)
    for kind in REFERRAL_KINDS:
        reference = getattr(coded, f"referral_{kind}")
        if reference is None:
            continue
        codes = read_codelist(reference, mapping, key=f"coded_events.referral_{kind}")
        hit = events["code"].isin(codes["code"]) & (kinds == "")
        kinds[hit] = kind
        for code, n in events.loc[hit, "code"].value_counts().sort_index().items():
            action = "mapped" if kind == "accepted" else "not_used"
            reports.append(_code_row("clients", label, code, f"referral {kind}", n, action))
    item_codes = pd.concat(
        [
            read_codelist(r, mapping, key=f"coded_events.measures[{k}]", items=True)
            for k, r in enumerate(coded.measures)
        ]
        or [pd.DataFrame(columns=["code", "measure", "item"])],
        ignore_index=True,
    ).drop_duplicates("code")
    items = events.merge(item_codes[["code", "measure", "item"]], on="code", how="inner")
    items.index = events.index[events["code"].isin(item_codes["code"])]
    for (code, measure, item), n in items.groupby(["code", "measure", "item"]).size().items():
        what = f"{measure} {'total score' if item == 'total' else f'item {item}'}"
        action = "not_used" if item == "total" else "mapped"
        reports.append(_code_row("measures", label, code, what, n, action))
    other = (kinds == "") & ~events["code"].isin(item_codes["code"])
    reports.append(_code_row("clients", label, None, "(other codes)", int(other.sum()), "not_used"))
    accepted = events[(kinds == "accepted") & ~events.index.isin(bad_lines)]
    clients, client_problems, demo_report, demo_ignored = _clients(mapping, accepted, source_dir)
    reports += demo_report
    ignored += demo_ignored
    pieces = {"clients": (clients, label, client_problems)}
    files = {"clients": Path(source_dir) / coded.source}
    scored = items[(items["item"] != "total") & ~items.index.isin(bad_lines)]
    if len(scored):
        measures, measure_problems = _measures(scored, clients)
        pieces["measures"] = (measures, label, measure_problems)
        files["measures"] = files["clients"]
        reports.append(_count_row("measures", "", label, "", "reshaped", len(measures)))
    reports.append(_count_row("clients", "", label, "", "reshaped", len(clients)))
    return CodedTables(pieces, pd.concat(reports, ignore_index=True), files, ignored)


def _code_row(table, label, code, target, n, action) -> pd.DataFrame:
    row = _count_row(table, "code", label, "code", action, int(n))
    return row.assign(source_value=code, target_value=target, declared=code is not None)


def _clients(mapping: MappingFile, accepted: pd.DataFrame, source_dir: Path):
    """One client row per accepted referral, with the patient's demographics joined."""
    coded = mapping.coded_events
    first_per_day = ~accepted.duplicated(["patient_id", "date"])
    clients = pd.DataFrame(
        {
            "client_id": accepted["patient_id"],
            "referral_date": accepted["date"],
            "referral_source": coded.referral_source,
            "_line": accepted["line"],
        }
    )[first_per_day.to_numpy()].reset_index(drop=True)
    clients["episode"] = derive.number_in_sequence(clients, ["client_id"], "referral_date", start=1)
    reports = []
    n_repeated = int((~first_per_day).sum())
    if n_repeated:
        reports.append(
            _count_row("clients", "code", coded.label(), "code", "not_used", n_repeated).assign(
                target_value="referral accepted again on the same day"
            )
        )
    problems: list[tuple] = []
    sources = mapping.sources("clients")
    if not sources:
        return clients, problems, reports, []
    rows, report = convert_rows(mapping, "clients", sources[0], "tables.clients", source_dir)
    reports += report
    demographics = rows.values.assign(_demo_line=rows.frame["source_row"].to_numpy())
    demo_problems: dict[str, list[tuple]] = {}
    for i, column, value, why in rows.problems:
        patient = demographics.at[i, "client_id"]
        demo_problems.setdefault(patient, []).append(
            (column, value, f"{sources[0].label()} row {demographics.at[i, '_demo_line']}: {why}")
        )
    first = ~demographics["client_id"].duplicated()
    keep = [
        c for c in demographics.columns if c not in ("referral_date", "referral_source", "episode")
    ]
    joined = clients.merge(demographics.loc[first, keep], on="client_id", how="left")
    for position, row in joined.iterrows():
        if pd.isna(row["_demo_line"]):
            problems.append(
                (
                    position,
                    "client_id",
                    row["client_id"],
                    f"no row for this patient in {sources[0].label()} (demographics)",
                )
            )
        for column, value, why in demo_problems.get(row["client_id"], []):
            problems.append((position, column, value, why))
    not_referred = ~demographics["client_id"].isin(clients["client_id"])
    reports.append(
        _count_row(
            "clients", "", sources[0].label(), "", "not_used", int(not_referred.sum())
        ).assign(target_value="patients without an accepted referral")
    )
    ignored = [
        ("clients", rows.label, c)
        for c in rows.frame.columns
        if c != "source_row" and c not in rows.used_columns
    ]
    return joined.drop(columns=["_demo_line"]).fillna(""), problems, reports, ignored


def _measures(items: pd.DataFrame, clients: pd.DataFrame):
    """One measures row per patient, date and measure; episode by date; timepoint in order."""
    problems: list[tuple] = []
    rows = []
    for position, ((patient, date, measure), group) in enumerate(
        items.groupby(["patient_id", "date", "measure"], sort=True)
    ):
        row = {"client_id": patient, "date": date, "measure": measure}
        row["_line"] = int(group["line"].min())
        for item, value, line in zip(group["item"], group["value"], group["line"], strict=True):
            number = pd.to_numeric(value, errors="coerce")
            if np.isnan(number):
                problems.append((position, f"item_{item}", value, f"row {line}: expected a number"))
                continue
            text = str(int(number)) if float(number).is_integer() else str(number)
            if row.get(f"item_{item}", text) != text:
                problems.append((position, f"item_{item}", text, f"row {line}: item coded twice"))
            row[f"item_{item}"] = text
        rows.append(row)
    measures = pd.DataFrame(rows).fillna("")
    starts = clients[["client_id", "episode", "referral_date"]].assign(
        referral_date=lambda f: pd.to_datetime(f["referral_date"], errors="coerce")
    )
    dated = measures.assign(date=pd.to_datetime(measures["date"], errors="coerce"))
    measures["episode"] = episode_on(dated, "date", starts).fillna("").to_numpy()
    by = ["client_id", "episode", "measure"]
    measures["timepoint"] = derive.number_in_sequence(measures, by, "date", start=0)
    return measures, problems
