"""Data maturity: how complete and consistent a scheme's data are, and what to fix first.

Each check is the share of records that meet a standard (an item of the data
contract or of the Social Prescribing Information Standard recorded, the scheme's
primary measure used, a follow-up collected, instruments used as published, the
scheme's own labels placed by its mapping file). Checks
are rated good, fair or poor against stated thresholds, and the weakest are ranked
first as what to improve. ``analyse_maturity`` returns the scorecard; the words are in
``spimpact.analyses.maturity.section``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.overview.mapping import summarise_value_mapping
from spimpact.io import SchemeData
from spimpact.params import DisclosureRule, SchemeParams
from spimpact.publish.disclosure import disclose_count, disclose_percentage
from spimpact.publish.section import InsufficientData

MATURITY_COLUMNS = ("domain", "check", "percent", "n_records", "rating", "priority", "improve")
RATINGS = ("good", "fair", "poor")


@dataclass(frozen=True)
class _Check:
    domain: str
    check: str
    numerator: int
    denominator: int
    good: float  # percent at or above which the check is rated good
    fair: float
    improve: str
    higher_is_better: bool = True


# Completeness thresholds (RECOMMENDATION, SPEC section 2.1): 95% of records is the
# level NHS data-quality dashboards treat as complete; below 80% an item cannot
# support subgroup analysis. Follow-up: published SP evaluations retained 68-75%
# (SPEC section 5.3), so 70% is good and below 50% makes change estimates unreliable.
COMPLETE_GOOD, COMPLETE_FAIR = 95.0, 80.0
# Follow-up timing (RECOMMENDATION): within 4 weeks of schedule; 80% good, 60% fair.
_FOLLOW_UP_WINDOW_DAYS = 28
_DAYS_PER_MONTH = 365.25 / 12
FOLLOW_UP_GOOD, FOLLOW_UP_FAIR = 70.0, 50.0

_CLIENT_ITEMS = (
    # column, label, what counts as recorded, advice
    ("age_band", "age or age band", None, "Record age (or date of birth) at referral."),
    ("sex", "sex", ("unknown",), "Record sex using NHS Person Stated Gender codes."),
    (
        "ethnic_category",
        "ethnic category",
        ("Z", "99"),
        "Ask and record ethnic category (NHS Data Dictionary codes); 'not stated' "
        "hides inequalities.",
    ),
    ("lsoa_code", "home area (LSOA)", None,
     "Record the LSOA (or postcode) to measure deprivation."),
    ("imd_decile", "deprivation decile", None, "Add the IMD decile of the client's home area."),
    ("practice_code", "GP practice", None, "Record the client's GP practice ODS code."),
    ("consent_contact", "consent to follow-up contact", None,
     "Record consent to follow-up contact at referral."),
)  # fmt: skip
_DISCHARGE_ADVICE = "Record why each episode closed (completed, disengaged ...)."


@dataclass(frozen=True)
class MaturityResult:
    """The data-maturity scorecard.

    Attributes
    ----------
    scorecard
        One row per check with columns ``MATURITY_COLUMNS``: ``percent`` and
        ``n_records`` disclosure-controlled, ``rating`` good/fair/poor (from the
        unrounded share), ``priority`` "1" = improve first ("" when good), ``improve``
        the advice.
    """

    scorecard: pd.DataFrame

    @property
    def n_good(self) -> int:
        """Checks rated good."""
        return int((self.scorecard["rating"] == "good").sum())

    def improve_first(self, n: int = 3) -> pd.DataFrame:
        """The ``n`` checks to improve first, in priority order."""
        ranked = self.scorecard[self.scorecard["priority"] != ""]
        return ranked.sort_values("priority", key=lambda p: p.astype(int)).head(n)


def analyse_maturity(
    scheme: SchemeData, scores, *, non_standard, params: SchemeParams
) -> MaturityResult:
    """Score how complete and consistent a scheme's data are, ranked by what to improve.

    Parameters
    ----------
    scheme
        ``clients``, ``measures``, optional ``contacts``, ``support_offered``,
        ``reconciliation``.
    scores
        Scored wellbeing measures (long frame with ``client_id, measure, timepoint,
        score, value``; a ``ScoredMeasures`` is accepted too).
    non_standard
        Non-standard instrument use found in scoring (``measure, issue, n_rows,
        detail``), or ``None``.
    params
        Scheme parameters: primary measure and disclosure rule.

    Raises ``InsufficientData`` without client records.

    Notes
    -----
    Items follow docs/data-contract.md and the minimum dataset of the PRSB Social
    Prescribing Information Standard v1.1 (person demographics, support offered,
    outcomes; SPEC section 2.1). Thresholds are spimpact recommendations; ratings use
    unrounded shares, published percentages the rounded counts (NHS Digital disclosure
    rule, SPEC section 3.2).
    """
    scores = getattr(scores, "scores", scores)
    clients = scheme.clients
    if clients is None or clients.empty:
        raise InsufficientData("There are no client records, so data maturity cannot be scored.")
    checks = (
        _completeness_checks(clients)
        + _standard_checks(scheme)
        + _measure_checks(scheme.measures, scores, params)
        + _timing_checks(scheme.measures, params)
        + _instrument_checks(scheme.measures, non_standard)
        + _loading_checks(scheme.reconciliation)
        + _mapping_checks(getattr(scheme, "mapping_report", None))
    )
    return MaturityResult(scorecard=_score_checks(checks, params))


def _completeness_checks(clients: pd.DataFrame) -> list[_Check]:
    n = len(clients)
    checks = []
    for column, label, unknown_codes, advice in _CLIENT_ITEMS:
        if column in clients.columns:
            values = clients[column]
            recorded = values.notna()
            if unknown_codes:
                recorded &= ~values.astype(str).isin(unknown_codes)
            numerator = int(recorded.sum())
        else:
            numerator = 0
        checks.append(
            _Check("Completeness", f"clients with {label} recorded", numerator, n,
                   COMPLETE_GOOD, COMPLETE_FAIR, advice)
        )  # fmt: skip
    # A discharge reason is only expected once an episode has closed.
    discharged = (
        clients["discharge_date"].notna()
        if "discharge_date" in clients.columns
        else pd.Series(False, index=clients.index)
    )
    reason = (
        clients["discharge_reason"].notna()
        if "discharge_reason" in clients.columns
        else pd.Series(False, index=clients.index)
    )
    checks.append(
        _Check("Completeness", "discharged clients with a discharge reason",
               int((discharged & reason).sum()), int(discharged.sum()),
               COMPLETE_GOOD, COMPLETE_FAIR, _DISCHARGE_ADVICE)
    )  # fmt: skip
    return checks


def _standard_checks(scheme) -> list[_Check]:
    """PRSB minimum dataset: support offered and link-worker contacts per client.

    Not every referral should have them: people who declined have no contacts, and
    only people who completed their time with the scheme are expected to have been
    connected to support. Each check counts only the clients it applies to.
    """
    clients = scheme.clients
    reason = clients["discharge_reason"] if "discharge_reason" in clients else None
    declined = set() if reason is None else set(clients.loc[reason == "declined", "client_id"])
    completed = set() if reason is None else set(clients.loc[reason == "completed", "client_id"])
    not_declined = set(clients["client_id"]) - declined
    checks = []
    for table, label, expected, advice in (
        ("support_offered", "clients who completed, with support offered recorded",
         completed or not_declined,
         "Record each activity or organisation the client was connected to (PRSB "
         "'support offered')."),
        ("contacts", "clients who did not decline, with link-worker contacts recorded",
         not_declined, "Record every link-worker contact with its date and type."),
    ):  # fmt: skip
        frame = getattr(scheme, table, None)
        numerator = 0 if frame is None else len(expected & set(frame["client_id"]))
        checks.append(
            _Check("SP Information Standard", label, numerator, len(expected),
                   COMPLETE_GOOD, COMPLETE_FAIR, advice)
        )  # fmt: skip
    return checks


def _measure_checks(measures: pd.DataFrame, scores: pd.DataFrame, params: SchemeParams):
    primary = params.measures.primary
    baseline = measures[measures["timepoint"] == 0]
    n_clients = measures["client_id"].nunique() if len(measures) else 0
    checks = [
        _Check(
            "Measure use",
            f"clients with a baseline {primary.upper()}",
            int(baseline.loc[baseline["measure"] == primary, "client_id"].nunique()),
            int(baseline["client_id"].nunique()) if len(baseline) else 0,
            90.0,
            70.0,
            f"Use {primary.upper()} (the scheme's primary measure) at every baseline so "
            "results are comparable across clients and schemes.",
        )
    ]
    n_measures = baseline["measure"].nunique()
    checks.append(
        _Check(
            "Measure use",
            f"baseline questionnaires that are the primary measure ({n_measures} measures used)",
            int((baseline["measure"] == primary).sum()),
            len(baseline),
            90.0,
            70.0,
            "Agree one wellbeing measure for all link workers; mixing questionnaires "
            "splits the sample.",
        )
    )
    scored = scores[scores["measure"] == primary] if scores is not None else scores
    if scored is not None and len(scored):
        with_baseline = set(scored.loc[scored["timepoint"] == 0, "client_id"])
        followed = set(scored.loc[scored["timepoint"] > 0, "client_id"]) & with_baseline
        numerator, denominator = len(followed), len(with_baseline)
    else:
        numerator, denominator = 0, n_clients
    checks.append(
        _Check(
            "Follow-up",
            f"clients with a scored baseline {primary.upper()} who have a follow-up",
            numerator,
            denominator,
            FOLLOW_UP_GOOD,
            FOLLOW_UP_FAIR,
            "Book the follow-up questionnaire at the first contact and collect it by "
            "phone if the client has left the service.",
        )
    )
    return checks


def _timing_checks(measures: pd.DataFrame, params: SchemeParams) -> list[_Check]:
    """First follow-ups completed within four weeks of their scheduled time.

    The schedule is read from the params label of time point 1 ("3 months",
    "12 weeks"); without a readable label the check is skipped.
    """
    label = params.measures.timepoints.get(1, "")
    match = re.search(r"(\d+)\s*(month|week)", label, re.IGNORECASE)
    if match is None or "date" not in measures.columns:
        return []
    days_per_unit = _DAYS_PER_MONTH if match.group(2).lower() == "month" else 7.0
    scheduled_days = int(match.group(1)) * days_per_unit
    primary = measures[measures["measure"] == params.measures.primary]
    baseline = primary[primary["timepoint"] == 0].drop_duplicates("client_id")
    follow = primary[primary["timepoint"] == 1].drop_duplicates("client_id")
    paired = follow.merge(baseline, on="client_id", suffixes=("", "_baseline"))
    days = (paired["date"] - paired["date_baseline"]).dt.days
    on_time = int(((days - scheduled_days).abs() <= _FOLLOW_UP_WINDOW_DAYS).sum())
    return [
        _Check(
            "Measure use",
            f"first follow-ups within 4 weeks of the scheduled {label}",
            on_time,
            len(paired),
            80.0,
            60.0,
            f"Collect the {label} follow-up close to its date; follow-ups spread over "
            "many months measure different things.",
        )
    ]


def _instrument_checks(measures: pd.DataFrame, non_standard) -> list[_Check]:
    n_rows = len(measures)
    n_bad = 0
    detail = ""
    if non_standard is not None and len(non_standard):
        n_bad = int(pd.to_numeric(non_standard["n_rows"], errors="coerce").fillna(0).sum())
        detail = ", ".join(sorted(set(non_standard["measure"].astype(str).str.upper())))
    # Non-standard rows are often excluded from ``measures`` on load, so they are
    # counted against all rows read.
    denominator = n_rows + n_bad
    return [
        _Check(
            "Instrument use",
            "questionnaires recorded on the published response scale",
            denominator - n_bad,
            denominator,
            99.0,
            95.0,
            f"Use the published response scale and wording for {detail}; modified "
            "scales cannot be compared with norms or other schemes."
            if detail
            else "Keep using the published response scales.",
        )
    ]


def _loading_checks(reconciliation) -> list[_Check]:
    if reconciliation is None or reconciliation.empty:
        return []
    n_read = int(reconciliation["n_read"].sum())
    n_used = int(reconciliation["n_used"].sum())
    return [
        _Check(
            "Data quality",
            "rows that passed the data contract checks",
            n_used,
            n_read,
            99.0,
            95.0,
            "Fix the excluded rows listed in the validation report (invalid codes, "
            "impossible dates, orphan records) at source.",
        )
    ]


def _mapping_checks(report) -> list[_Check]:
    """Values of the scheme's own exports that its mapping file places in the contract.

    Only for a scheme loaded through a mapping file (``SchemeData.mapping_report``);
    blank cells count under completeness, not here.
    """
    mapping = summarise_value_mapping(report, DisclosureRule())
    if mapping is None or mapping.n_rows_placed + mapping.n_rows_not_placed == 0:
        return []
    n_labels = mapping.n_labels_not_placed
    return [
        _Check(
            "Data quality",
            "values in coded fields that the mapping file places in the data contract",
            mapping.n_rows_placed,
            mapping.n_rows_placed + mapping.n_rows_not_placed,
            99.0,
            95.0,
            "Record coded fields (referral source, ethnicity, outcomes ...) from fixed "
            "drop-down lists and add any new label to the mapping file"
            + (f": {n_labels} label(s) could not be placed." if n_labels else "."),
        )
    ]


def _score_checks(checks: list[_Check], params: SchemeParams) -> pd.DataFrame:
    rule = params.disclosure.rule()
    numerators = np.array([c.numerator for c in checks])
    denominators = np.array([c.denominator for c in checks])
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(denominators > 0, 100 * numerators / np.maximum(denominators, 1), np.nan)
    ratings = [
        "poor" if np.isnan(p) else "good" if p >= c.good else "fair" if p >= c.fair else "poor"
        for p, c in zip(raw, checks, strict=True)
    ]
    table = pd.DataFrame(
        {
            "domain": [c.domain for c in checks],
            "check": [c.check for c in checks],
            "percent": disclose_percentage(numerators, denominators, rule).to_numpy(),
            "n_records": disclose_count(denominators, rule).to_numpy(),
            "rating": ratings,
            "improve": [c.improve for c in checks],
        }
    )
    # Poor before fair; within a rating the furthest below its "good" threshold first.
    gap = np.array([c.good for c in checks]) - np.nan_to_num(raw, nan=0.0)
    order = pd.DataFrame({"rank": [RATINGS.index(r) for r in ratings], "gap": gap})
    needs_work = order["rank"] > 0
    ranked = order[needs_work].sort_values(["rank", "gap"], ascending=[False, False], kind="stable")
    # Blank, not <NA>, for checks that need no work: <NA> is published as "*", which
    # readers take for a suppressed value.
    priority = pd.Series("", index=table.index, dtype=object)
    priority[ranked.index] = [str(rank) for rank in range(1, len(ranked) + 1)]
    table["priority"] = priority
    return table[list(MATURITY_COLUMNS)]
