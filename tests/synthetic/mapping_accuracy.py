"""Score a `spimpact map` proposal against a scheme's true (edited, committed) mapping.

Items scored, each counted once:

* columns: every contract column the true mapping fills from a source column (a plain
  column, a split, a postcode lookup), every questionnaire item column (wide forms:
  ``item_k``; long layout: the item and response columns) and the columns of a coded
  GP extract (patient, date, code, value), per source; a proposal
  places it correctly when it gives the same contract column of the same table the
  same source column (case and spacing ignored);
* labels: every distinct label found in the data of a column the true mapping maps
  with ``values``; correct when the proposal maps it to the same code, or leaves it
  unmapped where the label already is that code ("Female" is ``female`` on load), or,
  for a label the true mapping deliberately leaves unmapped, leaves it unmapped.

Sources already in the contract's shape (every rule reads the column of the same
name) are left out: placing them is trivial. Time-point labels are labels of the
``timepoint`` column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from spimpact.contract import TABLES, normalise_codes
from spimpact.mapping.derive import label_key
from spimpact.mapping.model import MappingFile


@dataclass(frozen=True)
class Accuracy:
    """Items placed correctly out of items to place, and what was missed."""

    n_columns: int
    n_columns_correct: int
    n_labels: int
    n_labels_correct: int
    missed: tuple[str, ...]

    @property
    def share(self) -> float:
        """Share of all items (columns and labels) placed correctly."""
        return (self.n_columns_correct + self.n_labels_correct) / (self.n_columns + self.n_labels)


def _is_identity(source) -> bool:
    return all(
        rule.column is not None and label_key(rule.column) == label_key(name)
        for name, rule in source.columns.items()
    )


def true_items(mapping: MappingFile, report: pd.DataFrame):
    """The columns and labels a proposal should place: ``{(source, table, target): source
    column}`` and ``{(table, column, label): code or None}`` (None: leave unmapped)."""
    columns: dict[tuple[str, str, str], str] = {}
    labels: dict[tuple[str, str, str], str | None] = {}
    seen = report[report["source_value"].notna() & (report["action"] != "missing")]
    coded = mapping.coded_events
    if coded is not None:
        for name, rule in coded.columns.items():
            columns[(coded.label(), "coded_events", name)] = rule.source_columns[0]
    for table in mapping.tables:
        for source in mapping.sources(table):
            if _is_identity(source):
                continue
            label = source.label()
            for name, rule in source.columns.items():
                if rule.source_columns and rule.concat is None:
                    columns[(label, table, name)] = rule.source_columns[0]
                if rule.values is None:
                    continue
                values = {label_key(k): str(v) for k, v in rule.values.items()}
                here = seen[
                    (seen["table"] == table) & (seen["column"] == name) & (seen["source"] == label)
                ]
                for value in here["source_value"].astype(str).unique():
                    labels[(table, name, label_key(value))] = values.get(label_key(value))
            questionnaire = source.questionnaire
            if questionnaire is None:
                continue
            if questionnaire.layout == "long":
                columns[(label, table, "item")] = questionnaire.item.source_columns[0]
                columns[(label, table, "response")] = questionnaire.response.source_columns[0]
            for form in questionnaire.forms or ():
                for k, item in enumerate(form.items, start=1):
                    if item is not None:
                        columns[(label, table, f"item_{k}")] = item
    return columns, labels


def _already_code(table: str, column: str, label: str) -> str | None:
    """The contract code a label already is, as the loader reads it (else None)."""
    spec = TABLES[table].column(column) if column in TABLES[table].names else None
    if spec is None or spec.kind != "code":
        return None
    code = normalise_codes(column, pd.Series([label])).iloc[0]
    return code if code in (spec.allowed or ()) else None


def score_proposal(placed: pd.DataFrame, mapping: MappingFile, report: pd.DataFrame) -> Accuracy:
    """Compare ``Proposal.placed`` with the true mapping (and the labels in the data)."""
    columns, labels = true_items(mapping, report)
    proposed_columns: dict[tuple[str, str, str], set[str]] = {}
    proposed_labels: dict[tuple[str, str, str], str] = {}
    for row in placed.itertuples(index=False):
        if row.kind == "column":
            key = (row.source, row.table, row.target)
            proposed_columns.setdefault(key, set()).add(label_key(row.source_column))
        elif row.kind == "label":
            column, code = row.target.split("=", 1)
            proposed_labels[(row.table, column, label_key(row.label))] = code
    missed = []
    n_columns_correct = 0
    for key, expected in sorted(columns.items()):
        if label_key(expected) in proposed_columns.get(key, set()):
            n_columns_correct += 1
        else:
            missed.append(f"column {key[0]} {key[1]}.{key[2]} <- '{expected}'")
    n_labels_correct = 0
    for key, code in sorted(labels.items(), key=lambda kv: kv[0]):
        proposed = proposed_labels.get(key, _already_code(*key))
        if proposed == code:
            n_labels_correct += 1
        else:
            missed.append(f"label {key[0]}.{key[1]} '{key[2]}' -> {code}")
    return Accuracy(len(columns), n_columns_correct, len(labels), n_labels_correct, tuple(missed))
