"""How a scheme's own labels were mapped to the data contract, safe to publish.

A mapping file (``docs/mapping.md``) turns local labels into contract codes ("Self
referral" to ``self``); loading counts every label it mapped and every label it could
not (``SchemeData.mapping_report``: ``table, column, source_value, target_value,
n_rows, action``). :func:`summarise_value_mapping` makes that account publishable:

* labels are shown only for coded fields (contract columns of kind code or boolean,
  and questionnaire time points), never for identifiers, dates, postcodes or free
  text;
* a label found in 1 to ``threshold`` rows is not shown (a value typed once may be a
  personal detail): such labels are pooled per field and outcome as "other labels";
  so is any label that looks like a number, date, e-mail address or postcode;
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

MAPPING_REPORT_COLUMNS = ("table", "column", "source_value", "target_value", "n_rows", "action")
MAPPED = "mapped"
# Labels are shown for these contract column kinds (and the columns below) only.
SHOWN_KINDS = ("code", "bool")
SHOWN_COLUMNS = (("measures", "timepoint"),)
NOT_SHOWN = "(values not shown: not a coded field)"
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
        ``table, column, source_value, target_value, n_rows, action`` with labels
        pooled as the module says and ``n_rows`` disclosure-controlled; ``action`` is
        ``mapped`` or what happened to the rows of an unmapped label (``exclude``,
        ``blank`` or ``keep``). Sorted by table and column in contract order, mapped
        labels first, then by count.
    n_rows_mapped, n_rows_not_mapped
        Unrounded numbers of values mapped and not mapped (for scoring data maturity;
        not for publication).
    n_labels_not_mapped
        Distinct labels not mapped.
    """

    table: pd.DataFrame
    n_rows_mapped: int
    n_rows_not_mapped: int
    n_labels_not_mapped: int

    @property
    def not_mapped(self) -> pd.DataFrame:
        """The rows of ``table`` whose labels were not mapped."""
        return self.table[self.table["action"] != MAPPED].reset_index(drop=True)


def summarise_value_mapping(
    report: pd.DataFrame | None, rule: DisclosureRule
) -> ValueMappingResult | None:
    """Publishable counts of the labels a mapping mapped and did not map.

    Parameters
    ----------
    report
        ``SchemeData.mapping_report`` (columns ``MAPPING_REPORT_COLUMNS``), or None
        when the scheme was loaded without a mapping.
    rule
        Disclosure rule.

    Returns
    -------
    ValueMappingResult or None
        None without a report (or with an empty one).

    Examples
    --------
    >>> from spimpact.publish.disclosure import DEFAULT_RULE
    >>> report = pd.DataFrame({
    ...     "table": ["clients"] * 5,
    ...     "column": ["referral_source"] * 5,
    ...     "source_value": ["Self referral", "GP", "Walk in", "Mrs Jones", "Dropped in"],
    ...     "target_value": ["self", "gp", None, None, None],
    ...     "n_rows": [212, 530, 9, 1, 7],
    ...     "action": ["mapped", "mapped", "exclude", "exclude", "exclude"],
    ... })
    >>> result = summarise_value_mapping(report, DEFAULT_RULE)
    >>> result.table[["source_value", "n_rows", "action"]].values.tolist()
    [['GP', 530, 'mapped'], ['Self referral', 210, 'mapped'], ['Walk in', 10, 'exclude'], \
['(other labels, each in 7 rows or fewer)', 10, 'exclude']]
    """
    if report is None or len(report) == 0:
        return None
    missing = [c for c in MAPPING_REPORT_COLUMNS if c not in report.columns]
    if missing:
        raise ValueError(f"mapping report lacks the columns {missing}")
    frame = report[list(MAPPING_REPORT_COLUMNS)].copy()
    frame["n_rows"] = pd.to_numeric(frame["n_rows"]).astype(int)
    frame["action"] = frame["action"].astype(str)
    pairs = zip(frame["table"], frame["column"], strict=True)
    coded = np.array([_is_coded(table, column) for table, column in pairs], dtype=bool)
    label = frame["source_value"].fillna("").astype(str)
    safe = ~label.str.contains(_LOOKS_PERSONAL) & (label.str.strip() != "")
    shown = coded & safe.to_numpy() & (frame["n_rows"] > rule.threshold).to_numpy()
    frame["source_value"] = np.where(
        shown, label, np.where(coded, other_labels(rule), NOT_SHOWN)
    ).astype(object)
    frame["target_value"] = (
        frame["target_value"].astype(object).where(frame["target_value"].notna(), None)
    )
    keys = ["table", "column", "source_value", "target_value", "action"]
    pooled = (
        frame.assign(target_value=frame["target_value"].fillna(""))
        .groupby(keys, as_index=False, sort=False)["n_rows"]
        .sum()
    )
    pooled["target_value"] = pooled["target_value"].replace("", None)
    pooled = _sorted(pooled)
    table = disclose_table(pooled, ["n_rows"], rule=rule, totals="columns", by=["table", "column"])
    not_mapped = frame["action"] != MAPPED
    return ValueMappingResult(
        table=table[list(MAPPING_REPORT_COLUMNS)].reset_index(drop=True),
        n_rows_mapped=int(frame.loc[~not_mapped, "n_rows"].sum()),
        n_rows_not_mapped=int(frame.loc[not_mapped, "n_rows"].sum()),
        n_labels_not_mapped=int(
            report.loc[not_mapped.to_numpy(), ["table", "column", "source_value"]]
            .drop_duplicates()
            .shape[0]
        ),
    )


def _is_coded(table: str, column: str) -> bool:
    if (table, column) in SHOWN_COLUMNS:
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
            _a=(frame["action"] != MAPPED).astype(int),
            _p=pooled_last.to_numpy(),
            _n=-frame["n_rows"],
        )
        .sort_values(["_t", "_c", "_a", "_p", "_n", "source_value"], kind="stable")
        .drop(columns=["_t", "_c", "_a", "_p", "_n"])
        .reset_index(drop=True)
    )
