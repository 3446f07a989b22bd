"""Retention: time from referral to disengagement, by group, and who drops out.

Everyone referred counts here, with or without a questionnaire: Kaplan-Meier
retention curves (overall, by IMD quintile and by age band), log-rank tests of equal
retention across groups and a Cox model of the time to disengagement. Numbers only:
:mod:`spimpact.analyses.attrition.section` draws and tabulates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from spimpact.analyses.attrition.data import (
    CHARACTERISTIC_LABELS,
    EVENTS_PER_PARAMETER,
    SUBGROUPS,
    add_characteristics,
    covariates_within_budget,
    model_term,
    pooled_categories,
    separated_characteristics,
)
from spimpact.models.survival import (
    CoxResult,
    KaplanMeierResult,
    LogRankResult,
    fit_cox,
    fit_kaplan_meier,
    fit_logrank,
)

# The characteristics with a retention curve per group, beside the overall curve.
CURVE_GROUPS = ("imd_quintile", "age_band")


# eq=False: the fields hold frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class RetentionResult:
    """Retention among everyone referred (read-only; not yet disclosure-controlled).

    Attributes
    ----------
    curves
        Kaplan-Meier fits: ``"all"`` and, where recorded, one per column of
        ``CURVE_GROUPS`` (small categories pooled).
    logrank
        Log-rank test per characteristic of ``SUBGROUPS`` with at least two groups.
    dropout_model
        Cox model of the time to disengagement; ``None`` when too few people
        disengaged or the fit failed (``diagnostics`` says which).
    diagnostics
        Plain-English notes on the dropout model.
    """

    curves: dict[str, KaplanMeierResult]
    logrank: dict[str, LogRankResult]
    dropout_model: CoxResult | None
    diagnostics: tuple[str, ...] = field(default=())


def analyse_retention(
    clients: pd.DataFrame, contacts: pd.DataFrame | None, *, conf_level: float = 0.95
) -> RetentionResult:
    """Fit the retention curves, log-rank tests and dropout model of everyone referred.

    Parameters
    ----------
    clients
        Client table: ``client_id, referral_date`` and, where recorded,
        ``discharge_date, discharge_reason`` and the characteristics.
    contacts
        Contacts (``client_id, contact_date``) or ``None``.
    conf_level
        Level of the pointwise bands and hazard-ratio intervals.

    Notes
    -----
    Kaplan-Meier with log(-log) Greenwood bands, the log-rank (Mantel 1966) test and
    a Cox model with Efron ties, all from :mod:`spimpact.models.survival`.
    """
    timeline = engagement_timeline(clients, contacts)
    curves = {
        "all": fit_kaplan_meier(
            timeline, duration="days", event="disengaged", conf_level=conf_level
        )
    }
    for column in CURVE_GROUPS:
        if column not in timeline.columns:
            continue
        groups = timeline.assign(**{column: pooled_categories(timeline[column])})
        curves[column] = fit_kaplan_meier(
            groups, duration="days", event="disengaged", group=column, conf_level=conf_level
        )
    logrank = {}
    for column in SUBGROUPS:
        if column not in timeline.columns:
            continue
        groups = timeline.assign(**{column: pooled_categories(timeline[column])})
        if groups[column].nunique() < 2:
            continue
        logrank[column] = fit_logrank(groups, duration="days", event="disengaged", group=column)
    dropout_model, notes = fit_dropout_model(timeline, conf_level=conf_level)
    return RetentionResult(
        curves=curves, logrank=logrank, dropout_model=dropout_model, diagnostics=tuple(notes)
    )


def engagement_timeline(clients: pd.DataFrame, contacts: pd.DataFrame | None) -> pd.DataFrame:
    """Days from referral to disengagement (event) or censoring, one row per client.

    Disengagement is a discharge with reason ``disengaged``, dated by the last contact when
    contacts are recorded (the last time the person engaged), else by the discharge
    date. Other discharges are censored at discharge; open referrals at their last
    contact (or, with no contact, at referral, contributing no time).
    """
    frame = clients[["client_id", "referral_date"]].copy()
    frame["client_id"] = frame["client_id"].astype(str)
    for column in ("discharge_date", "discharge_reason"):
        frame[column] = clients[column].to_numpy() if column in clients.columns else pd.NA
    frame["discharge_date"] = pd.to_datetime(frame["discharge_date"])
    frame["referral_date"] = pd.to_datetime(frame["referral_date"])
    if contacts is not None and len(contacts):
        last = (
            contacts.assign(client_id=contacts["client_id"].astype(str))
            .groupby("client_id")["contact_date"]
            .max()
        )
        frame["last_contact"] = pd.to_datetime(frame["client_id"].map(last))
    else:
        frame["last_contact"] = pd.NaT
    event = (frame["discharge_reason"] == "disengaged").fillna(False).astype(bool)
    event_date = frame["last_contact"].where(frame["last_contact"].notna(), frame["discharge_date"])
    censor_date = frame["discharge_date"].where(
        frame["discharge_date"].notna(), frame["last_contact"]
    )
    end = event_date.where(event, censor_date).fillna(frame["referral_date"])
    days = (end - frame["referral_date"]).dt.days.clip(lower=0)
    out = clients.copy()
    out["client_id"] = out["client_id"].astype(str)
    out["days"] = days.to_numpy(dtype=float)
    out["disengaged"] = event.astype(int).to_numpy()
    return out


def fit_dropout_model(
    timeline: pd.DataFrame, *, conf_level: float = 0.95
) -> tuple[CoxResult | None, list[str]]:
    """Cox model of time to disengagement among everyone referred.

    The characteristics join while the events allow ``EVENTS_PER_PARAMETER`` per
    parameter; one with a category in which nobody (or everybody) disengaged is left
    out. Baseline scores are not in this model: people who disengage early often never
    complete a baseline questionnaire, so the model uses what is known for everyone.

    Returns
    -------
    tuple
        ``(model, notes)``: the fitted ``CoxResult`` (``None`` when too few people
        disengaged or the fit failed) and plain-English notes.
    """
    people = timeline[["client_id", "days", "disengaged"]].copy()
    candidates = add_characteristics(people, timeline)
    events = int(people["disengaged"].sum())
    # a category in which nobody (or everybody) disengaged has an infinite hazard ratio
    # (separation): leave such characteristics out rather than publish a meaningless one
    separated = separated_characteristics(people, candidates, people["disengaged"])
    candidates = [c for c in candidates if c not in separated]
    notes = [
        f"{CHARACTERISTIC_LABELS[c]} is left out of the dropout model: in at least one of its "
        "categories nobody (or everybody) disengaged."
        for c in separated
    ]
    chosen = covariates_within_budget(people, candidates, events, n_fixed=0)
    if not chosen:
        return None, [
            *notes,
            f"Too few people disengaged ({events}) to model who drops out "
            f"(at least {EVENTS_PER_PARAMETER} per model parameter are needed).",
        ]
    terms = " + ".join(model_term(people, c) for c in chosen)
    try:
        cox = fit_cox(
            people, duration="days", event="disengaged", formula=terms, conf_level=conf_level
        )
    except Exception as error:  # noqa: BLE001 - lifelines raises several types on failure
        return None, [*notes, f"The dropout model could not be fitted: {error}"]
    return cox, [*notes, *cox.diagnostics]
