"""GP attendance before and after social prescribing, against a matched comparison group.

``analyse_attendance`` turns a scheme's appointment records into an
:class:`AttendanceResult`: numbers only (estimates, matching, event study, the
before/after table). The words, tables and headline rows are built from it in
:mod:`spimpact.analyses.attendance.section`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.attendance.cohort import cohort_people, matching_columns, prior_attendance
from spimpact.analyses.attendance.panel import build_panel
from spimpact.models.count import fit_poisson
from spimpact.models.did import EventStudyResult, fit_did_2x2, fit_event_study, fit_twfe
from spimpact.models.did_staggered import AggregateResult, fit_staggered_did
from spimpact.models.matching import MatchResult, match_nearest
from spimpact.models.paired import MeanResult, fit_paired_change
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import TIDY_COLUMNS, make_tidy
from spimpact.publish.section import InsufficientData

OUTCOME = "n_clinical"
PER_PERSON_MONTH = "appointments per person-month"
# Appointments per person-month times 12 months times 1,000 people.
PER_1000_PER_YEAR = 12 * 1000


@dataclass(frozen=True)
class EstimateSource:
    """One row of the attendance estimates table and the fitted model it is read from.

    Attributes
    ----------
    name
        Term in the estimates table (``did``, ``rate_ratio`` ...).
    scale
        What the estimate measures (``appointments per person-month``, ``rate ratio``).
    fit
        The fitted result (``None`` when it could not be estimated: a row of NaN).
    fit_term
        The row of ``fit.tidy()`` that holds the estimate.
    exponentiate
        Read the fit's exponentiated table (a rate ratio from a Poisson model).
    """

    name: str
    scale: str
    fit: object | None
    fit_term: str = ""
    exponentiate: bool = False

    def tidy(self, conf_level: float) -> pd.DataFrame:
        """One row: ``TIDY_COLUMNS`` (term = ``name``) plus ``scale``, at ``conf_level``."""
        if self.fit is None:
            row = make_tidy([self.name], [np.nan], [np.nan], conf_level=conf_level)
        else:
            options = {"exponentiate": True} if self.exponentiate else {}
            table = self.fit.tidy(conf_level=conf_level, **options)
            row = table.loc[table["term"] == self.fit_term, list(TIDY_COLUMNS)].copy()
            if len(row) != 1:
                raise ValueError(
                    f"expected one '{self.fit_term}' row in the fitted model, got {len(row)}"
                )
        row["term"] = self.name
        row["scale"] = self.scale
        return row


@dataclass(frozen=True)
class AttendanceResult(EstimatorResult):
    """A scheme's GP attendance analysis (read-only).

    Attributes
    ----------
    design
        ``"matched_did"`` (clients against a matched comparison group) or
        ``"before_after"`` (clients only; regression to the mean not removed).
    panel
        Person x month panel of the people analysed (``PANEL_COLUMNS`` plus
        ``treated_post``).
    sources
        The fitted models behind each row of ``estimates``.
    matching
        The :class:`~spimpact.models.matching.MatchResult` (``None`` without a
        comparison group).
    event_study
        Event-study fit (``None`` without a comparison group).
    n_clients, n_comparison
        People analysed in each group.
    n_clients_unmatched
        Clients left out because no comparable patient was found or their
        pre-referral months were not observed.
    pre_post
        Mean appointments per person-month before and after the index date, by
        group, with the number of people and person-months (not yet disclosure
        controlled).
    diagnostics
        Plain-English warnings gathered on the way.
    conf_level
        Confidence level of every interval.
    """

    design: str
    panel: pd.DataFrame
    sources: tuple[EstimateSource, ...]
    matching: MatchResult | None
    event_study: EventStudyResult | None
    n_clients: int
    n_comparison: int
    n_clients_unmatched: int
    pre_post: pd.DataFrame
    diagnostics: tuple[str, ...]
    conf_level: float

    @property
    def estimates(self) -> pd.DataFrame:
        """Tidy table at ``conf_level`` (``TIDY_COLUMNS`` plus ``scale``).

        Rows ``did`` (appointments per person-month), ``did_gp`` (GP appointments
        only), ``twfe``, ``staggered``, ``rate_ratio`` (Poisson, ratio scale),
        ``before_after_clients``, ``before_after_comparison`` for the matched design;
        ``before_after_clients`` alone without a comparison group.
        """
        return self.tidy()

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        rows = [source.tidy(conf_level) for source in self.sources]
        return pd.concat(rows, ignore_index=True)

    def summary(self) -> str:
        """Text summary of the estimates and diagnostics."""
        lines = [
            f"GP attendance, design: {self.design}; clients {self.n_clients}, "
            f"comparison patients {self.n_comparison}",
            self.estimates.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
            *self.diagnostics,
        ]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Event-study picture (matched design) or mean attendance by month (before/after)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        if self.event_study is not None:
            study = self.event_study
            tidy = study.tidy()
            months = study.event_times
            ax.axhline(0, color="grey", linewidth=0.8)
            ax.axvline(-0.5, color="grey", linestyle=":", linewidth=1)
            ax.errorbar(
                months,
                tidy["estimate"],
                yerr=[tidy["estimate"] - tidy["conf_low"], tidy["conf_high"] - tidy["estimate"]],
                fmt="o",
                capsize=3,
                color="#005eb8",
            )
            ax.plot([study.reference], [0.0], "o", mfc="white", color="#005eb8")
            ax.set_xlabel("Months since referral (index date for comparison patients)")
            ax.set_ylabel("Clients minus comparison\n(appointments per person-month)")
            ax.set_title(
                f"Difference relative to month {study.reference}; dotted line: referral "
                f"({self.conf_level:.0%} intervals)",
                fontsize=10,
            )
            return ax
        monthly = self.panel.groupby("months_since_index")[OUTCOME].mean()
        ax.plot(monthly.index, monthly.to_numpy(), marker="o")
        ax.axvline(-0.5, color="grey", linestyle=":")
        ax.set_xlabel("Months since referral")
        ax.set_ylabel("Appointments per person-month")
        return ax


def analyse_attendance(scheme, *, params) -> AttendanceResult:
    """Estimate the change in GP-practice attendance after referral to social prescribing.

    Parameters
    ----------
    scheme
        :class:`spimpact.io.SchemeData` with ``gp_appointments`` (and
        ``comparison_pool`` for the matched design).
    params
        :class:`spimpact.params.SchemeParams`; uses ``comparison`` (window,
        matching options), ``conf_level`` and ``seed``.

    Returns
    -------
    AttendanceResult

    Raises
    ------
    InsufficientData
        When there are no GP appointment data or too few people to analyse.

    Notes
    -----
    Matched design (the default when a comparison pool is supplied and
    ``params.comparison.enabled``): clients and pool patients are matched 1:k on a
    logistic propensity score (MatchIt conventions, :func:`match_nearest`) of the
    params covariates, including prior attendance (mean appointments per month in the
    two halves of the year before the analysis window, months -24 to -19 and -18 to -13
    for a 12-month window: never the compared months themselves, which would build
    regression to the mean into the comparison group, Daw & Hatfield 2018), exactly on
    the params ``exact`` columns. Effects are then estimated on the matched
    person x month panel: 2x2 difference-in-differences by OLS with standard errors
    clustered by person (the primary estimate), a Poisson model with person and
    month-since-index fixed effects for the rate ratio (fixest ``fepois``
    conventions), a calendar-month two-way fixed-effects regression, Callaway &
    Sant'Anna (2021) in months since the index date with comparison patients as the
    never-treated group, and an event study (reference: the earliest month of the window,
    far from the pre-referral peak). SPEC §5.4.
    """
    if scheme.gp_appointments is None or scheme.gp_appointments.empty:
        raise InsufficientData(
            "No GP appointment data were supplied for this scheme, so changes in GP "
            "attendance cannot be assessed."
        )
    comparison = params.comparison
    window = comparison.window_months
    use_pool = (
        comparison.enabled
        and scheme.comparison_pool is not None
        and not scheme.comparison_pool.empty
    )
    people = cohort_people(scheme, include_pool=use_pool)
    # Twice the window: the earlier half is the attendance history used for matching,
    # kept apart from the months the difference-in-differences compares.
    history = build_panel(
        scheme.gp_appointments,
        people[["patient_id", "index_date", "treated"]],
        window_months=2 * window,
    )
    panel = history[history["months_since_index"].between(-window, window - 1)]
    panel = panel.reset_index(drop=True)
    diagnostics: list[str] = []
    if not use_pool:
        return _before_after(panel, people, params, diagnostics)
    return _matched(panel, history, people, params, diagnostics)


def _with_treated_post(panel: pd.DataFrame) -> pd.DataFrame:
    panel = panel.copy()
    panel["treated_post"] = panel["treated"] * panel["post"]
    return panel


def _pre_post_table(panel: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for treated, group in panel.groupby("treated"):
        for post, cell in group.groupby("post"):
            rows.append(
                {
                    "group": "clients" if treated == 1 else "comparison",
                    "period": "after" if post == 1 else "before",
                    "n_people": int(cell["patient_id"].nunique()),
                    "n_person_months": len(cell),
                    "appointments_per_person_month": float(cell[OUTCOME].mean()),
                    "gp_appointments_per_person_month": float(cell["n_gp"].mean()),
                }
            )
    return pd.DataFrame(rows)


def fit_before_after_change(
    panel: pd.DataFrame, *, outcome: str = OUTCOME, conf_level: float = 0.95
) -> MeanResult | None:
    """Mean within-person change (after minus before) of monthly attendance.

    Each person's mean appointments per month after the index date minus before it,
    averaged over the people observed in both periods, with a paired t interval
    (:func:`spimpact.models.paired.fit_paired_change`). ``None`` when fewer than two
    people were observed in both periods, so no interval can be formed.
    """
    means = panel.groupby(["patient_id", "post"])[outcome].mean().unstack("post")
    means = means.reindex(columns=[0, 1]).dropna()
    if len(means) < 2:
        return None
    return fit_paired_change(means[0], means[1], conf_level=conf_level)


def _before_after(panel, people, params, diagnostics) -> AttendanceResult:
    panel = _with_treated_post(panel[panel["treated"] == 1])
    clients = panel["patient_id"].nunique()
    if clients < params.disclosure.min_n_summary:
        raise InsufficientData(
            "Too few clients have GP appointment data inside the observation window to "
            "summarise attendance safely."
        )
    change = fit_before_after_change(panel, conf_level=params.conf_level)
    sources = (EstimateSource("before_after_clients", PER_PERSON_MONTH, change, "change"),)
    reason = (
        "The comparison group is switched off in this scheme's parameters"
        if not params.comparison.enabled
        else "No comparison pool was supplied"
    )
    diagnostics.append(
        f"{reason}, so this is a plain before/after comparison. People are usually referred "
        "when their attendance is at a peak, and attendance falls back afterwards whether "
        "or not social prescribing helps (regression to the mean). A fall shown here is "
        "therefore likely to overstate any effect of the scheme."
    )
    return AttendanceResult(
        design="before_after",
        panel=panel,
        sources=sources,
        matching=None,
        event_study=None,
        n_clients=int(clients),
        n_comparison=0,
        n_clients_unmatched=int((people["treated"] == 1).sum() - clients),
        pre_post=_pre_post_table(panel),
        diagnostics=tuple(diagnostics),
        conf_level=params.conf_level,
    )


def _matched(panel, history, people, params, diagnostics) -> AttendanceResult:
    comparison = params.comparison
    conf_level = params.conf_level
    window = comparison.window_months
    n_clients_total = int((people["treated"] == 1).sum())
    # Only people with months inside the analysis window before and after the index date
    # can contribute to a before/after contrast.
    in_window = panel.groupby("patient_id")["post"].agg(["min", "max"])
    both = in_window.index[(in_window["min"] == 0) & (in_window["max"] == 1)]
    people = people[people["patient_id"].isin(both)]
    n_no_window = n_clients_total - int((people["treated"] == 1).sum())
    if n_no_window:
        diagnostics.append(
            f"{n_no_window} clients were left out because the appointment data do not cover "
            "months both before and after their referral."
        )
    covariate_names = list(comparison.covariates)
    if "pre_attendance" in covariate_names:
        pre = prior_attendance(history, window, outcome=OUTCOME)
        people = people.merge(pre, left_on="patient_id", right_index=True, how="left")
        if people[pre.columns].isna().all(axis=None):
            covariate_names.remove("pre_attendance")
            diagnostics.append(
                f"Prior attendance was not used for matching: the appointment data do not go "
                f"back beyond the {window} months before referral that the comparison itself "
                "uses. Matching on those same months would build regression to the mean into "
                "the comparison group (comparison patients picked for a chance high count "
                "fall back afterwards) and bias the estimate (Daw & Hatfield 2018, Health Serv "
                "Res 53:4138)."
            )
    candidates, covariates = matching_columns(people, covariate_names)
    candidates, _ = matching_columns(candidates, comparison.exact)
    n_clients_candidates = int((candidates["treated"] == 1).sum())
    if n_clients_candidates < params.disclosure.min_n_summary:
        raise InsufficientData(
            "Too few clients have GP appointment data before and after referral to compare "
            "their attendance with a matched group."
        )
    matching = match_nearest(
        candidates.reset_index(drop=True),
        treatment="treated",
        covariates=covariates,
        ratio=comparison.ratio,
        caliper=comparison.caliper,
        replace=False,
        exact=list(comparison.exact) or None,
    )
    diagnostics.extend(matching.diagnostics)
    matched = matching.matched[["patient_id", "treated", "subclass", "weights"]]
    if not np.allclose(matched["weights"], 1.0):
        # The panel estimators take no weights; with unequal numbers of controls per
        # client the comparison group is then not exactly the matched-set average.
        diagnostics.append(
            "Some clients received fewer comparison patients than others; the estimates "
            "weight every matched person equally rather than by matched set."
        )
    analysed = _with_treated_post(panel.merge(matched[["patient_id", "subclass"]], on="patient_id"))
    n_clients = int(matched["treated"].sum())
    n_comparison = int(len(matched) - n_clients)

    did = fit_did_2x2(
        analysed,
        outcome=OUTCOME,
        treated="treated",
        post="post",
        cluster="patient_id",
        conf_level=conf_level,
    )
    did_gp = fit_did_2x2(
        analysed,
        outcome="n_gp",
        treated="treated",
        post="post",
        cluster="patient_id",
        conf_level=conf_level,
    )
    poisson = fit_poisson(
        f"{OUTCOME} ~ treated_post",
        analysed,
        absorb=["patient_id", "months_since_index"],
        cluster="patient_id",
        conf_level=conf_level,
    )
    diagnostics.extend(poisson.diagnostics)
    twfe = fit_twfe(
        f"{OUTCOME} ~ treated_post",
        analysed,
        unit="patient_id",
        time="calendar_month",
        cluster="patient_id",
        conf_level=conf_level,
    )
    relative = analysed.assign(
        period=analysed["months_since_index"] + window + 1,
        first_period=np.where(analysed["treated"] == 1, window + 1, 0),
    )
    staggered = _fit_staggered(relative, window, params, diagnostics)
    event_study = fit_event_study(
        relative,
        outcome=OUTCOME,
        unit="patient_id",
        time="period",
        first_treated="first_period",
        window=(-window, window - 1),
        # The month before referral is the attendance peak in social prescribing, so the
        # earliest month, far from it, is the clearer baseline for the picture.
        reference=-window,
        cluster="patient_id",
        conf_level=conf_level,
    )
    sources = [
        EstimateSource("did", PER_PERSON_MONTH, did, did.att_term),
        EstimateSource("did_gp", "GP appointments per person-month", did_gp, did_gp.att_term),
        EstimateSource("twfe", PER_PERSON_MONTH, twfe, "treated_post"),
        EstimateSource("staggered", PER_PERSON_MONTH, staggered, "overall"),
        EstimateSource("rate_ratio", "rate ratio", poisson, "treated_post", exponentiate=True),
    ]
    for treated, term in ((1, "before_after_clients"), (0, "before_after_comparison")):
        group = analysed[analysed["treated"] == treated]
        change = fit_before_after_change(group, conf_level=conf_level)
        sources.append(EstimateSource(term, PER_PERSON_MONTH, change, "change"))
    return AttendanceResult(
        design="matched_did",
        panel=analysed,
        sources=tuple(sources),
        matching=matching,
        event_study=event_study,
        n_clients=n_clients,
        n_comparison=n_comparison,
        n_clients_unmatched=n_clients_total - n_clients,
        pre_post=_pre_post_table(analysed),
        diagnostics=tuple(diagnostics),
        conf_level=conf_level,
    )


def _fit_staggered(relative, window, params, diagnostics) -> AggregateResult | None:
    """Callaway & Sant'Anna on people observed for the whole window (``None``: too few).

    Clients are aligned at their own referral month and compared with never-referred
    matched patients aligned at their index month. The months of pre-referral rise
    (``params.comparison.anticipation_months``) are treated as anticipation, so the
    baseline is the month before them rather than the referral peak.
    """
    months = relative.groupby("patient_id")["period"].nunique()
    complete = months.index[months == 2 * window]
    n_complete = relative.loc[
        relative["patient_id"].isin(complete) & (relative["treated"] == 1), "patient_id"
    ].nunique()
    if n_complete < params.disclosure.min_n_summary:
        diagnostics.append(
            "The Callaway & Sant'Anna estimate was not computed: it needs clients observed "
            f"for all {2 * window} months around referral, and only {n_complete} are."
        )
        return None
    return fit_staggered_did(
        relative[relative["patient_id"].isin(complete)],
        outcome=OUTCOME,
        unit="patient_id",
        time="period",
        first_treated="first_period",
        anticipation=params.comparison.anticipation_months,
        conf_level=params.conf_level,
    ).aggregate("simple")
