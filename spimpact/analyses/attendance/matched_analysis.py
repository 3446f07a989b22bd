"""The matched design end to end: primary estimate, secondary outcomes, sensitivity, checks.

:func:`run_matched_design` takes the person x month panel and the cohort and returns a
:class:`MatchedAnalysis`: every fitted piece the attendance result and its report
section need. The designs come from :mod:`spimpact.analyses.attendance.design`, the
matched sets from :mod:`~spimpact.analyses.attendance.matched_sets`, the fits from
:mod:`~spimpact.analyses.attendance.estimate` and the falsification checks from
:mod:`~spimpact.analyses.attendance.checks`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.attendance.checks import (
    WashoutCheck,
    check_washout,
    fit_design_event_study,
    honest_bounds,
    honest_period_months,
)
from spimpact.analyses.attendance.design import (
    Design,
    placebo_design,
    primary_design,
    sensitivity_designs,
)
from spimpact.analyses.attendance.estimate import Inference, fit_design
from spimpact.analyses.attendance.matched_sets import (
    MatchedSample,
    match_comparisons,
    stack_comparisons,
)
from spimpact.models.did import EventStudyResult
from spimpact.models.tidy import TIDY_COLUMNS
from spimpact.publish.section import InsufficientData

#: Secondary outcomes: panel column, term in the estimates table, what it counts.
SECONDARY_OUTCOMES = (
    ("n_gp", "did_gp", "GP appointments per person-month"),
    ("n_clinical_face_to_face", "did_face_to_face", "face-to-face appointments per person-month"),
    ("n_clinical_remote", "did_remote", "remote appointments per person-month"),
)
SENSITIVITY_COLUMNS = (
    "design",
    "label",
    "months",
    "scale",
    *TIDY_COLUMNS[1:],
    "n_clients",
    "note",
)


@dataclass(frozen=True, eq=False)
class MatchedAnalysis:
    """Everything the matched design produced (read-only); see :func:`run_matched_design`."""

    primary: Design
    sample: MatchedSample
    inference: Inference
    frame: pd.DataFrame
    fit: object
    secondary: dict
    poisson: object | None
    sensitivity: pd.DataFrame
    placebo: object | None
    placebo_note: str
    event_study: EventStudyResult | None
    washout_check: WashoutCheck | None
    honest: pd.DataFrame | None
    diagnostics: tuple[str, ...]


def run_matched_design(
    panel: pd.DataFrame, people: pd.DataFrame, params, *, outcome: str
) -> MatchedAnalysis:
    """Fit the primary design, its secondary outcomes, sensitivity designs and checks.

    Parameters
    ----------
    panel
        Person x month panel reaching back to the earliest month any design reads.
    people
        The cohort (clients and comparison pool) with covariates.
    params
        Scheme params (``comparison``, ``conf_level``, ``seed``, ``disclosure``).
    outcome
        Panel column of the primary outcome.

    Raises
    ------
    InsufficientData
        When too few clients can be matched for the primary design.
    """
    comparison = params.comparison
    conf_level = params.conf_level
    min_clients = params.disclosure.min_n_summary
    options = {"comparison": comparison, "conf_level": conf_level, "seed": params.seed}
    diagnostics: list[str] = []
    primary = primary_design(comparison)
    sample = match_comparisons(
        people, panel, primary, comparison, outcome=outcome, min_clients=min_clients
    )
    diagnostics.extend(sample.diagnostics)
    fit, inference, frame = fit_design(panel, sample, primary, outcome=outcome, **options)
    secondary = {
        term: fit_design(panel, sample, primary, outcome=column, **options)[0]
        for column, term, _ in SECONDARY_OUTCOMES
    }
    samples = {(primary.history, True, True): sample}
    rows, poisson = [], None
    for design in sensitivity_designs(comparison):
        row, fitted = _sensitivity_row(panel, people, design, samples, params, outcome)
        rows.append(row)
        if design.model == "poisson":
            poisson = fitted
    sensitivity = pd.DataFrame(rows, columns=list(SENSITIVITY_COLUMNS))
    placebo, placebo_note = _fit_placebo(panel, people, params, outcome, options)
    event_study = washout = honest = None
    window = comparison.window_months
    study = {"outcome": outcome, "window": window, "inference": inference}
    try:
        event_study = fit_design_event_study(panel, frame, primary, **study, conf_level=conf_level)
        washout = check_washout(event_study, primary, conf_level=conf_level)
        width = honest_period_months(primary, window)
        binned = (
            event_study
            if width == 1
            else fit_design_event_study(
                panel, frame, primary, **study, conf_level=conf_level, period_months=width
            )
        )
        honest = honest_bounds(
            binned, primary, period_months=width, conf_level=conf_level, seed=params.seed
        )
    except (ValueError, np.linalg.LinAlgError) as error:
        diagnostics.append(f"The event study or its honest bounds could not be computed: {error}")
    return MatchedAnalysis(
        primary=primary,
        sample=sample,
        inference=inference,
        frame=frame,
        fit=fit,
        secondary=secondary,
        poisson=poisson,
        sensitivity=sensitivity,
        placebo=placebo,
        placebo_note=placebo_note,
        event_study=event_study,
        washout_check=washout,
        honest=honest,
        diagnostics=tuple(diagnostics),
    )


def _sample_for(panel, people, design: Design, samples: dict, params, outcome) -> MatchedSample:
    key = (design.history, design.propensity_matching, design.match_index_month)
    if key not in samples:
        if design.propensity_matching:
            samples[key] = match_comparisons(
                people,
                panel,
                design,
                params.comparison,
                outcome=outcome,
                min_clients=params.disclosure.min_n_summary,
            )
        else:
            samples[key] = stack_comparisons(
                people, panel, design, min_clients=params.disclosure.min_n_summary
            )
    return samples[key]


def _sensitivity_row(panel, people, design: Design, samples, params, outcome):
    """One row of the sensitivity table and the fitted model (``None`` when not estimable)."""
    scale = "rate ratio" if design.model == "poisson" else "appointments per person-month"
    base = {
        "design": design.name,
        "label": design.label,
        "months": design.describe_months(),
        "scale": scale,
    }
    try:
        sample = _sample_for(panel, people, design, samples, params, outcome)
        fit, _, frame = fit_design(
            panel,
            sample,
            design,
            outcome=outcome,
            comparison=params.comparison,
            conf_level=params.conf_level,
            seed=params.seed,
        )
    except (InsufficientData, ValueError) as error:
        return {
            **base,
            **dict.fromkeys(TIDY_COLUMNS[1:], np.nan),
            "n_clients": 0,
            "note": str(error),
        }, None
    if design.model == "poisson":
        row = fit.tidy(exponentiate=True).set_index("term").loc["treated_post"]
    else:
        row = fit.tidy().set_index("term").loc[fit.att_term]
    n_clients = int(frame.loc[frame["treated"] == 1, "patient_id"].nunique())
    values = {column: float(row[column]) for column in TIDY_COLUMNS[1:]}
    return {**base, **values, "n_clients": n_clients, "note": ""}, fit


def _fit_placebo(panel, people, params, outcome, options):
    """The placebo fit (``None`` with a reason when the data do not reach back far enough)."""
    design = placebo_design(params.comparison)
    try:
        sample = match_comparisons(
            people,
            panel,
            design,
            params.comparison,
            outcome=outcome,
            min_clients=params.disclosure.min_n_summary,
        )
        fit, _, _ = fit_design(panel, sample, design, outcome=outcome, **options)
    except (InsufficientData, ValueError):
        return None, (
            f"The placebo needs GP appointment data from {-design.baseline[0]} months before "
            "referral, which too few clients have."
        )
    note = ""
    if not any("pre_attendance" in c for c in sample.covariates):
        note = (
            "The placebo's comparison patients are matched on demographics only: the data do "
            f"not reach back {-design.history[0]} months before referral."
        )
    return fit, note
