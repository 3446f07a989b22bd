"""How a scheme's own labels were mapped to the data contract, safe to publish.

A mapping file (``docs/mapping.md``) turns local labels into contract codes ("Self
referral" to ``self``); loading counts every label it mapped and every label it could
not (``SchemeData.mapping_report``, columns
:data:`spimpact.mapping.MAPPING_REPORT_COLUMNS`, actions
:data:`spimpact.mapping.ACTIONS`). :func:`summarise_value_mapping` makes that account
publishable:

* labels are shown only for coded fields (contract columns of kind code or boolean,
  and questionnaire time points) or when the mapping file itself lists them (as
  practice names mapped to ODS codes), never for identifiers, dates, postcodes or
  free text;
* a label found in 1 to ``threshold`` rows is not shown (a value typed once may be a
  personal detail): such labels are pooled per field and outcome as "other labels";
  so is any label that looks like a number, date, e-mail address or postcode;
* only contract columns are listed (questionnaire item responses are checked, and
  their problems counted, by the measures sections);
* blank cells and postcodes missing from the lookup are counted without values;
  bookkeeping of the rules (rows read, dates converted) is left to the reconciliation;
* every count passes :func:`spimpact.publish.disclosure.disclose_table` (1-7
  suppressed, others rounded to 5, with secondary suppression within each field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.contract import TABLES
from spimpact.params import DisclosureRule
from spimpact.publish.disclosure import disclose_table

VALUE_MAPPING_COLUMNS = (
    "table",
    "column",
    "source",
    "source_column",
    "source_value",
    "target_value",
    "n_rows",
    "action",
)
# Report actions shown: labels (with a value), blank cells and postcodes not found.
PLACED = ("mapped", "unchanged")
NOT_PLACED = ("excluded", "blank")
SHOWN_ACTIONS = (*PLACED, *NOT_PLACED, "missing")
# Labels are shown for these contract column kinds (and the columns below) only.
SHOWN_KINDS = ("code", "bool")
SHOWN_COLUMNS = (("measures", "timepoint"),)
NOT_SHOWN = "(values not shown: not a coded field)"
BLANK = "(blank)"
NOT_IN_LOOKUP = "(not found in the lookup)"
SEVERAL = "(several codes)"
OTHER_CODES = "(other codes)"
# The report's column of a coded GP extract's codes (spimpact.mapping.coded).
CODE = "code"
# Anything shaped like a phone or NHS number, a date, an e-mail address or a postcode.
_LOOKS_PERSONAL = re.compile(
    r"\d{4,}|@|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b",
    re.IGNORECASE,
)


def other_labels(rule: DisclosureRule) -> str:
    """The pooled label of labels not shown one by one."""
    return f"(other labels, each in {rule.threshold} rows or fewer)"


@dataclass(frozen=True)
class ValueMappingResult:
    """Labels mapped and not mapped to the data contract.

    Attributes
    ----------
    table
        ``VALUE_MAPPING_COLUMNS``: one row per shown label (pooled as the module
        says) with ``n_rows`` disclosure-controlled; ``action`` as in
        :data:`spimpact.mapping.ACTIONS` (``mapped``, ``unchanged``: already a
        contract code, ``excluded``, ``blank``, ``missing``: blank cell). Sorted by
        table and column in contract order, placed labels first, then by count.
    n_rows_placed, n_rows_not_placed
        Unrounded numbers of non-blank values in mapped coded fields that were placed
        (mapped or already a code) and not placed (excluded or left blank); for
        scoring data maturity, not for publication.
    n_labels_not_placed
        Distinct labels not placed.
    """

    table: pd.DataFrame
    n_rows_placed: int
    n_rows_not_placed: int
    n_labels_not_placed: int

    @property
    def not_placed(self) -> pd.DataFrame:
        """The rows of ``table`` whose values were not placed."""
        return self.table[self.table["action"].isin(NOT_PLACED)].reset_index(drop=True)


def summarise_value_mapping(
    report: pd.DataFrame | None, rule: DisclosureRule
) -> ValueMappingResult | None:
    """Publishable counts of the labels a mapping placed and did not place.

    Parameters
    ----------
    report
        ``SchemeData.mapping_report`` (``spimpact.mapping.MAPPING_REPORT_COLUMNS``),
        or None / empty when the scheme was loaded without a mapping.
    rule
        Disclosure rule.

    Returns
    -------
    ValueMappingResult or None
        None without a report.

    Examples
    --------
    >>> from spimpact.publish.disclosure import DEFAULT_RULE
    >>> report = pd.DataFrame({
    ...     "table": "clients", "column": "referral_source", "source": "referrals.csv",
    ...     "source_column": "Referred by",
    ...     "source_value": ["Self referral", "GP", "Walk in", "Mrs Jones", "Dropped in"],
    ...     "target_value": ["self", "gp", None, None, None],
    ...     "n_rows": [212, 530, 9, 1, 7],
    ...     "action": ["mapped", "mapped", "excluded", "excluded", "excluded"],
    ... })
    >>> result = summarise_value_mapping(report, DEFAULT_RULE)
    >>> result.table[["source_value", "n_rows", "action"]].values.tolist()
    [['GP', 530, 'mapped'], ['Self referral', 210, 'mapped'], ['Walk in', 10, 'excluded'], \
['(other labels, each in 7 rows or fewer)', 10, 'excluded']]
    """
    if report is None or len(report) == 0:
        return None
    missing = [c for c in VALUE_MAPPING_COLUMNS if c not in report.columns]
    if missing:
        raise ValueError(f"mapping report lacks the columns {missing}")
    pairs = zip(report["table"], report["column"], strict=True)
    in_contract = np.array([t in TABLES and c in TABLES[t].names for t, c in pairs], dtype=bool)
    has_value = report["source_value"].notna()
    action = report["action"].astype(str)
    # coded GP events: the codes used (referrals, items) and not used (declined, offered
    # referrals, total scores, other codes)
    events = (report["column"] == CODE).to_numpy() & action.isin(["mapped", "not_used"])
    # labels, blank cells and postcodes not in the lookup (a count without a value), of
    # contract columns (questionnaire items are checked by the measures section)
    keep = events | (
        in_contract
        & ((has_value & action.isin(SHOWN_ACTIONS)) | (~has_value & (action == "blank"))).to_numpy()
    )
    if not keep.any():
        return None
    frame = report.loc[keep, list(VALUE_MAPPING_COLUMNS)].copy()
    frame["action"] = frame["action"].astype(str)
    frame["n_rows"] = pd.to_numeric(frame["n_rows"]).astype(int)
    pairs = zip(frame["table"], frame["column"], strict=True)
    coded = np.array([_is_coded(table, column) for table, column in pairs], dtype=bool)
    declared = (
        report.loc[keep, "declared"].fillna(False).astype(bool).to_numpy()
        if "declared" in report
        else np.zeros(len(frame), dtype=bool)
    )
    label = frame["source_value"].fillna("").astype(str)
    # codes from the code lists (SNOMED CT concept ids are long numbers) are safe
    listed_code = (frame["column"] == CODE).to_numpy() & declared
    safe = (~label.str.contains(_LOOKS_PERSONAL)).to_numpy() | listed_code
    shown = (coded | declared) & safe & (frame["n_rows"] > rule.threshold).to_numpy()
    display = np.where(shown, label, np.where(coded, other_labels(rule), NOT_SHOWN))
    display = np.where(frame["action"] == "missing", BLANK, display)
    no_value = frame["source_value"].isna().to_numpy()
    display = np.where(no_value, NOT_IN_LOOKUP, display)
    display = np.where(no_value & (frame["column"] == CODE).to_numpy(), OTHER_CODES, display)
    frame["source_value"] = display.astype(object)
    target = frame["target_value"].astype(object)
    frame["target_value"] = target.where(target.notna() & (target != ""), "").astype(str)
    # labels not shown are pooled per field and outcome, whatever code they were mapped to
    pooled_rows = ~shown & ~frame["source_value"].isin([BLANK, NOT_IN_LOOKUP, OTHER_CODES])
    frame["_group"] = np.where(pooled_rows, frame["source_value"], frame["target_value"])
    keys = ["table", "column", "source", "source_column", "source_value", "action", "_group"]
    pooled = frame.groupby(keys, as_index=False, sort=False).agg(
        n_rows=("n_rows", "sum"), target_value=("target_value", _one_or_several)
    )
    pooled["target_value"] = pooled["target_value"].replace("", None)
    table = disclose_table(
        _sorted(pooled), ["n_rows"], rule=rule, totals="columns", by=["table", "column"]
    )
    labelled = report[has_value.to_numpy() & in_contract]
    placed = labelled["action"].isin(PLACED)
    not_placed = labelled["action"].isin(NOT_PLACED)
    return ValueMappingResult(
        table=table[list(VALUE_MAPPING_COLUMNS)].reset_index(drop=True),
        n_rows_placed=int(pd.to_numeric(labelled.loc[placed, "n_rows"]).sum()),
        n_rows_not_placed=int(pd.to_numeric(labelled.loc[not_placed, "n_rows"]).sum()),
        n_labels_not_placed=len(
            labelled.loc[not_placed, ["table", "column", "source_value"]].drop_duplicates()
        ),
    )


def _one_or_several(targets: pd.Series) -> str:
    """The code a pooled group of labels was mapped to, or ``(several codes)``."""
    distinct = sorted(set(targets))
    return distinct[0] if len(distinct) == 1 else SEVERAL


def _is_coded(table: str, column: str) -> bool:
    if (table, column) in SHOWN_COLUMNS or column == CODE:
        return True
    spec = TABLES.get(table)
    if spec is None or column not in spec.names:
        return False
    return spec.column(column).kind in SHOWN_KINDS


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    tables = list(TABLES)
    table_rank = frame["table"].map(lambda t: tables.index(t) if t in tables else len(tables))
    column_rank = [
        TABLES[t].names.index(c) if t in TABLES and c in TABLES[t].names else len(TABLES)
        for t, c in zip(frame["table"], frame["column"], strict=True)
    ]
    pooled_last = frame["source_value"].str.startswith("(").astype(int)
    return (
        frame.assign(
            _t=table_rank.to_numpy(),
            _c=column_rank,
            _a=(~frame["action"].isin(PLACED)).astype(int),
            _p=pooled_last.to_numpy(),
            _n=-frame["n_rows"],
        )
        .sort_values(["_t", "_c", "_a", "_p", "_n", "source_value"], kind="stable")
        .drop(columns=["_t", "_c", "_a", "_p", "_n"])
        .reset_index(drop=True)
    )
