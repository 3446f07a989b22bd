"""GP attendance before and after social prescribing, against a matched comparison group.

``analyse_attendance`` turns a scheme's appointment records into an
:class:`AttendanceResult`: numbers only (the primary estimate and its design, secondary
outcomes, the sensitivity table, the placebo, the event study with its washout check and
honest bounds, matching and the before/after table). The words, tables and headline rows
are built from it in :mod:`spimpact.analyses.attendance.section`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.attendance.checks import WashoutCheck
from spimpact.analyses.attendance.cohort import cohort_people
from spimpact.analyses.attendance.design import Design, placebo_design, primary_design
from spimpact.analyses.attendance.estimate import Inference, person_means
from spimpact.analyses.attendance.matched_analysis import (
    SECONDARY_OUTCOMES,
    run_matched_design,
)
from spimpact.analyses.attendance.panel import PANEL_COLUMNS, build_coded_panel
from spimpact.engine import spark_session
from spimpact.models.did import EventStudyResult
from spimpact.models.matching import MatchResult
from spimpact.models.multiplicity import adjust_p_values
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


# eq=False: the fields hold data frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class AttendanceResult(EstimatorResult):
    """A scheme's GP attendance analysis (read-only).

    Attributes
    ----------
    design
        ``"matched_did"`` (clients against a matched comparison group) or
        ``"before_after"`` (clients only; not an effect estimate).
    primary
        The primary :class:`~spimpact.analyses.attendance.design.Design`: the months
        compared (baseline, washout, post-period) and the history matched on.
    panel
        Person x month panel of the people analysed over the window (``PANEL_COLUMNS``
        plus ``subclass``, ``weight``, ``period`` (``baseline``, ``washout``, ``post`` or
        ``outside``) and ``treated_post``).
    person_periods
        The primary design's data: one row per person and period (baseline, post) with
        the person's mean appointments per month (``value``), ``subclass``, ``weight``
        and ``practice_code``.
    sources
        The fitted models behind each row of ``estimates``.
    sensitivity
        The primary estimate's alternatives, one row per design: ``design, label,
        months, scale`` and the tidy columns, ``n_clients`` and ``note``.
    matching
        The :class:`~spimpact.models.matching.MatchResult` (``None`` without a
        comparison group).
    inference
        How the primary standard errors were computed, and why.
    event_study
        Event study over the whole window relative to the last baseline month
        (``None`` without a comparison group or when it could not be fitted).
    washout_check
        Whether the washout covers the rise seen in the event study.
    honest
        Rambachan & Roth honest confidence intervals for the primary estimate
        (relative magnitudes and smoothness), ``None`` when not computed.
    n_clients, n_comparison
        People analysed in each group.
    n_clients_unmatched
        Clients left out: no comparable patient, or their months were not observed.
    n_clients_nearby_month
        Clients matched to comparison patients indexed in a nearby calendar month.
    pre_post
        Mean appointments per person-month in the baseline and the post-period, by
        group (weighted as the estimate), with the number of people and person-months
        (not yet disclosure controlled).
    diagnostics
        Plain-English warnings gathered on the way.
    conf_level
        Confidence level of every interval.
    """

    design: str
    primary: Design
    panel: pd.DataFrame
    person_periods: pd.DataFrame
    sources: tuple[EstimateSource, ...]
    sensitivity: pd.DataFrame
    matching: MatchResult | None
    inference: Inference | None
    event_study: EventStudyResult | None
    washout_check: WashoutCheck | None
    honest: pd.DataFrame | None
    n_clients: int
    n_comparison: int
    n_clients_unmatched: int
    n_clients_nearby_month: int
    pre_post: pd.DataFrame
    diagnostics: tuple[str, ...]
    conf_level: float

    @property
    def estimates(self) -> pd.DataFrame:
        """Tidy table at ``conf_level`` (``TIDY_COLUMNS`` plus ``scale``).

        Matched design: ``did`` (the primary estimate, appointments per person-month),
        the secondary outcomes ``did_gp``, ``did_face_to_face``, ``did_remote``,
        ``rate_ratio`` (Poisson, ratio scale), ``placebo`` (index date moved earlier),
        ``before_after_clients`` and ``before_after_comparison``. Without a comparison
        group ``before_after_clients`` alone.
        """
        return self.tidy()

    @property
    def secondary_tests(self) -> pd.DataFrame:
        """Secondary outcomes' p-values with Holm's adjustment across them.

        ``term, scale, p_value, p_value_holm``: the three secondary outcomes are one
        family; the primary estimate is not adjusted (it is the one pre-specified test).
        """
        table = self.estimates
        rows = table[table["term"].isin([term for _, term, _ in SECONDARY_OUTCOMES])]
        rows = rows[["term", "scale", "p_value"]].reset_index(drop=True)
        rows["p_value_holm"] = adjust_p_values(rows["p_value"].to_numpy(), method="holm")
        return rows

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        rows = [source.tidy(conf_level) for source in self.sources]
        return pd.concat(rows, ignore_index=True)

    def summary(self) -> str:
        """Text summary of the estimates and diagnostics."""
        lines = [
            f"GP attendance, design: {self.design} ({self.primary.describe_months()}); "
            f"clients {self.n_clients}, comparison patients {self.n_comparison}",
            self.estimates.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
            *self.diagnostics,
        ]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Event study relative to the baseline (matched) or mean attendance by month."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        design = self.primary
        if self.washout_check is not None:
            profile = self.washout_check.profile
            months = profile["months_since_index"].to_numpy()
            ax.axhline(0, color="grey", linewidth=0.8)
            if self.washout_check.washout is not None:
                first, last = self.washout_check.washout
                ax.axvspan(first - 0.5, last + 0.5, color="#e8edee", zorder=0, label="washout")
            ax.errorbar(
                months,
                profile["estimate"],
                yerr=[
                    profile["estimate"] - profile["conf_low"],
                    profile["conf_high"] - profile["estimate"],
                ],
                fmt="o",
                capsize=3,
                color="#005eb8",
            )
            ax.axvline(-0.5, color="grey", linestyle=":", linewidth=1)
            ax.set_xlabel("Months since referral (index date for comparison patients)")
            ax.set_ylabel("Clients minus comparison, relative\nto baseline (appts per month)")
            ax.set_title(
                f"Baseline months {design.baseline[0]} to {design.baseline[1]}, post-period "
                f"{design.post[0]} to {design.post[1]}; shaded: washout "
                f"({self.conf_level:.0%} intervals)",
                fontsize=9,
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
        :class:`spimpact.params.SchemeParams`; uses ``comparison`` (window, washout,
        matching and inference options), ``conf_level``, ``seed`` and ``disclosure``.

    Returns
    -------
    AttendanceResult

    Raises
    ------
    InsufficientData
        When there are no GP appointment data or too few people to analyse.

    Notes
    -----
    The primary design (docs/methods.md, "GP attendance"; SPEC §5.4) compares each
    client's mean monthly attended clinical appointments in the baseline (months
    ``-window`` to ``-(washout_months_before + 1)``) and the post-period (months
    ``washout_months_after`` to ``window - 1``) with the same change in comparison
    patients matched to them: indexed in the same calendar month (or up to
    ``index_month_caliper`` months away), at the same practice when practices are
    recorded, exactly on the params ``exact`` columns and 1:k on a propensity score of
    the params covariates, including the trajectory of attendance in the year before
    the baseline (four quarters; never the compared months, which would build regression
    to the mean into the comparison group, Daw & Hatfield 2018). The washout leaves out
    the transient rise in attendance before and around referral that clients have and
    comparison patients do not. The estimate is a weighted difference-in-differences of
    person means (each client counted once, each matched set a stack with Wing,
    Freedman & Hollingsworth 2024 weights), with standard errors clustered by GP
    practice (CR2, or the wild cluster bootstrap with fewer than
    ``min_practices_for_cr2`` practices) or by matched set (Abadie & Spiess 2022).
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
    primary = primary_design(comparison)
    earliest = min(primary.months[0], placebo_design(comparison).months[0])
    if params.engine == "spark":
        spark_session(params.spark.master, params.spark.config)  # the session build_panel uses
    # people as integer codes while analysing (a text id per person-month would hold
    # most of the memory of a large scheme); the result carries the ids again
    panel, ids = build_coded_panel(
        scheme.gp_appointments,
        people[["patient_id", "index_date", "treated"]],
        window_months=window,
        months_before=-earliest,
        engine=params.engine,
    )
    people["patient_id"] = _codes(people["patient_id"], ids)  # in place: no second copy
    analyse = _matched if use_pool else _before_after
    result = analyse(panel, people, primary, params)
    del panel  # every person's months: not needed for the result
    return _with_ids(result, ids, people)


def _codes(patient_id: pd.Series, ids: np.ndarray) -> np.ndarray:
    return np.searchsorted(ids, patient_id.astype(str).to_numpy(dtype=object)).astype("int32")


def _with_ids(result: AttendanceResult, ids: np.ndarray, people: pd.DataFrame):
    """``result`` with people's ids in place of their codes, and the panel's dates back."""
    index_date = np.empty(len(ids), dtype="datetime64[ns]")
    index_date[people["patient_id"].to_numpy()] = people["index_date"].to_numpy("datetime64[ns]")
    panel = result.panel  # made by the analysis for the result: changed in place
    codes = panel["patient_id"].to_numpy()
    dates = pd.DatetimeIndex(index_date[codes])
    month = (dates.year * 12 + dates.month - 1).to_numpy("int32")
    panel["patient_id"] = ids[codes]  # each id object shared by the person's months
    panel.insert(PANEL_COLUMNS.index("index_date"), "index_date", dates)
    calendar_month = month + panel["months_since_index"].to_numpy()
    panel.insert(PANEL_COLUMNS.index("calendar_month"), "calendar_month", calendar_month)
    person_periods = result.person_periods.assign(
        patient_id=ids[result.person_periods["patient_id"].to_numpy()]
    )
    matching = result.matching
    if matching is not None:
        data = matching.data.assign(patient_id=ids[matching.data["patient_id"].to_numpy()])
        matching = dataclasses.replace(matching, data=data)
    return dataclasses.replace(
        result, panel=panel, person_periods=person_periods, matching=matching
    )


PERIODS = np.array(["baseline", "post", "washout", "outside"], dtype=object)


def _labelled_panel(panel: pd.DataFrame, design: Design, window: int) -> pd.DataFrame:
    """The window's person-months with the design's period of each month and treated_post."""
    panel = panel[panel["months_since_index"].between(-window, window - 1)]
    months = panel["months_since_index"]
    period = np.select(
        [
            months.between(*design.baseline),
            months.between(*design.post),
            months.between(design.baseline[1] + 1, design.post[0] - 1),
        ],
        [0, 1, 2],
        default=3,
    )
    # the four labels shared by every row, not one text object per person-month
    panel = panel.assign(
        period=PERIODS[period], treated_post=panel["treated"] * (period == 1).astype("int8")
    )
    return panel.reset_index(drop=True)


def _pre_post_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Weighted mean of person means by group and period (baseline, post)."""
    rows = []
    for (treated, post), cell in frame.groupby(["treated", "post"]):
        weights = cell["weight"].to_numpy(dtype=float)
        rows.append(
            {
                "group": "clients" if treated == 1 else "comparison",
                "period": "after" if post == 1 else "before",
                "n_people": int(cell["patient_id"].nunique()),
                "n_person_months": int(cell["n_months"].sum()),
                "appointments_per_person_month": float(np.average(cell["value"], weights=weights)),
                "gp_appointments_per_person_month": float(
                    np.average(cell["value_gp"], weights=weights)
                ),
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


def _before_after(panel, people, primary: Design, params) -> AttendanceResult:
    window = params.comparison.window_months
    clients = panel[panel["treated"] == 1]
    frame = person_means(clients, primary, outcome=OUTCOME)
    gp = person_means(clients, primary, outcome="n_gp")
    frame = frame.merge(
        gp[["patient_id", "post", "value"]].rename(columns={"value": "value_gp"}),
        on=["patient_id", "post"],
    ).assign(treated=1, weight=1.0, subclass=pd.NA, practice_code=None)
    n_clients = int(frame["patient_id"].nunique())
    if n_clients < params.disclosure.min_n_summary:
        raise InsufficientData(
            "Too few clients have GP appointment data before and after referral to "
            "summarise attendance safely."
        )
    change = fit_before_after_change(
        frame.rename(columns={"value": OUTCOME}), conf_level=params.conf_level
    )
    sources = (EstimateSource("before_after_clients", PER_PERSON_MONTH, change, "change"),)
    reason = (
        "The comparison group is switched off in this scheme's parameters"
        if not params.comparison.enabled
        else "No comparison pool was supplied"
    )
    diagnostics = (
        f"{reason}, so this is a plain before/after comparison. People are usually referred "
        "when their attendance is at a peak, and attendance falls back afterwards whether "
        "or not social prescribing helps (regression to the mean). The months around "
        "referral are left out, but anything else that changed over the same time is not "
        "removed, so a change shown here is not an estimate of the scheme's effect.",
    )
    analysed = _labelled_panel(clients, primary, window)
    return AttendanceResult(
        design="before_after",
        primary=primary,
        panel=analysed[analysed["patient_id"].isin(frame["patient_id"])].reset_index(drop=True),
        person_periods=frame,
        sources=sources,
        sensitivity=pd.DataFrame(),
        matching=None,
        inference=None,
        event_study=None,
        washout_check=None,
        honest=None,
        n_clients=n_clients,
        n_comparison=0,
        n_clients_unmatched=int((people["treated"] == 1).sum() - n_clients),
        n_clients_nearby_month=0,
        pre_post=_pre_post_table(frame),
        diagnostics=diagnostics,
        conf_level=params.conf_level,
    )


def _matched(panel, people, primary: Design, params) -> AttendanceResult:
    conf_level = params.conf_level
    window = params.comparison.window_months
    analysis = run_matched_design(panel, people, params, outcome=OUTCOME)
    frame = analysis.frame
    gp = analysis.secondary  # fitted on the same people, months and weights
    gp_means = person_means(
        panel[panel["patient_id"].isin(frame["patient_id"])], primary, outcome="n_gp"
    )
    frame = frame.merge(
        gp_means[["patient_id", "post", "value"]].rename(columns={"value": "value_gp"}),
        on=["patient_id", "post"],
        how="left",
    )
    sources = [EstimateSource("did", PER_PERSON_MONTH, analysis.fit, analysis.fit.att_term)]
    for _, term, scale in SECONDARY_OUTCOMES:
        fit = gp[term]
        sources.append(EstimateSource(term, scale, fit, fit.att_term))
    sources.append(
        EstimateSource(
            "rate_ratio", "rate ratio", analysis.poisson, "treated_post", exponentiate=True
        )
    )
    placebo = analysis.placebo
    sources.append(
        EstimateSource(
            "placebo", PER_PERSON_MONTH, placebo, "" if placebo is None else placebo.att_term
        )
    )
    for treated, term in ((1, "before_after_clients"), (0, "before_after_comparison")):
        group = frame[frame["treated"] == treated].rename(columns={"value": OUTCOME})
        change = fit_before_after_change(group, conf_level=conf_level)
        sources.append(EstimateSource(term, PER_PERSON_MONTH, change, "change"))
    sets = analysis.sample.sets
    analysed = _labelled_panel(panel[panel["patient_id"].isin(sets["patient_id"])], primary, window)
    analysed = analysed.merge(sets[["patient_id", "subclass", "weight"]], on="patient_id")
    diagnostics = list(analysis.diagnostics)
    if analysis.placebo_note:
        diagnostics.append(analysis.placebo_note)
    n_clients = int(frame.loc[frame["treated"] == 1, "patient_id"].nunique())
    return AttendanceResult(
        design="matched_did",
        primary=primary,
        panel=analysed,
        person_periods=frame,
        sources=tuple(sources),
        sensitivity=analysis.sensitivity,
        matching=analysis.sample.matching,
        inference=analysis.inference,
        event_study=analysis.event_study,
        washout_check=analysis.washout_check,
        honest=analysis.honest,
        n_clients=n_clients,
        n_comparison=int(frame.loc[frame["treated"] == 0, "patient_id"].nunique()),
        n_clients_unmatched=int((people["treated"] == 1).sum()) - n_clients,
        n_clients_nearby_month=analysis.sample.n_clients_nearby_month,
        pre_post=_pre_post_table(frame),
        diagnostics=tuple(diagnostics),
        conf_level=conf_level,
    )
