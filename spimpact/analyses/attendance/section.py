"""The GP-attendance report section: words, tables, figures and headline rows.

Built from an :class:`~spimpact.analyses.attendance.analysis.AttendanceResult`;
every number shown passes disclosure control (:mod:`spimpact.publish.disclosure`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.analyses.attendance.analysis import (
    PER_1000_PER_YEAR,
    AttendanceResult,
    analyse_attendance,
)
from spimpact.models.paired import minimum_detectable_change
from spimpact.publish.disclosure import disclose_count, disclose_summary, disclose_table
from spimpact.publish.section import HEADLINE_COLUMNS, Section, Table

OUTCOME_LABEL = "attended clinical appointments (GP, nurse, other clinical staff)"
POWER = 0.8
SECTION_TITLE = "GP attendance"
METHOD_LABELS = {
    "did": "Difference-in-differences against the matched comparison group (primary)",
    "did_gp": "Difference-in-differences, GP appointments only",
    "twfe": "Two-way fixed effects (person and calendar month)",
    "staggered": (
        "Callaway & Sant'Anna (2021), months since index, baseline before the "
        "pre-referral rise (anticipation months from params)"
    ),
    "before_after_clients": "Clients before and after referral (no comparison)",
    "before_after_comparison": "Comparison patients before and after their index date",
}


def attendance_section(scheme, *, params, result: AttendanceResult | None = None) -> Section:
    """Build the report section on whether GP-practice attendance changed after referral.

    Parameters
    ----------
    scheme
        :class:`spimpact.io.SchemeData`.
    params
        :class:`spimpact.params.SchemeParams`.
    result
        A result of :func:`analyse_attendance` for this scheme, to avoid refitting.

    Returns
    -------
    Section
        Text for commissioners, disclosure-controlled tables (``attendance_before_after``,
        ``attendance_estimates``, and for the matched design
        ``attendance_matching_sample`` and ``attendance_matching_balance``), the
        event-study figure and love plot, and ``headline`` rows (outcome level
        "system"): the change in appointments per 1,000 clients per year, the %
        change and the cost consequence.

    Raises
    ------
    InsufficientData
        Without GP appointment data or with too few people.

    Notes
    -----
    Estimators as :func:`analyse_attendance`. The cost consequence multiplies GP
    appointments averted (difference-in-differences on GP appointments only) by
    ``params.costs.gp_appointment_gbp``; nurse and other clinical appointments are
    not costed. The minimum detectable effect is ``(z_(1-a/2) + z_0.8) x SE`` of the
    primary estimate (Bloom 1995, Evaluation Review 19:547), i.e. 80% power.
    """
    result = analyse_attendance(scheme, params=params) if result is None else result
    rule = params.disclosure.rule()
    figures = []
    tables = [_before_after_table(result, rule)]
    if result.design == "before_after":
        text = _before_after_text(result, params)
        headline = _before_after_headline(result, params, rule)
        tables.append(_estimates_table(result))
        figure = _figure(result.plot())
        figures.append(figure)
    else:
        text = _matched_text(result, params)
        headline = _matched_headline(result, params, rule)
        tables += [
            _estimates_table(result),
            _matching_sample_table(result, rule),
            _balance_table(result),
        ]
        figures += [_figure(result.plot()), _figure(result.matching.plot())]
    return Section(
        title=SECTION_TITLE,
        text=tuple(text),
        tables=tuple(tables),
        figures=tuple(figures),
        headline=headline,
        notes=result.diagnostics,
    )


def _figure(ax):
    figure = ax.figure
    figure.tight_layout()
    return figure


def _estimate(result: AttendanceResult, term: str) -> pd.Series:
    return result.estimates.set_index("term").loc[term]


def _per_1000(row: pd.Series) -> tuple[float, float, float, float]:
    scale = PER_1000_PER_YEAR
    return (
        row["estimate"] * scale,
        row["std_error"] * scale,
        row["conf_low"] * scale,
        row["conf_high"] * scale,
    )


def _format(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}".replace("-", "\u2212")


def _ci(low: float, high: float, digits: int = 0) -> str:
    return f"{_format(low, digits)} to {_format(high, digits)}"


def _before_after_table(result: AttendanceResult, rule) -> Table:
    table = result.pre_post.copy()
    n_people = table["n_people"].to_numpy()
    frame = pd.DataFrame(
        {
            "group": table["group"],
            "period": table["period"],
            "n_people": disclose_count(n_people, rule).to_numpy(),
            "appointments_per_person_month": disclose_summary(
                table["appointments_per_person_month"].round(3), n_people, rule
            ).to_numpy(),
            "gp_appointments_per_person_month": disclose_summary(
                table["gp_appointments_per_person_month"].round(3), n_people, rule
            ).to_numpy(),
        }
    )
    frame["period"] = pd.Categorical(frame["period"], ["before", "after"])
    frame = frame.sort_values(["group", "period"], ascending=[False, True]).reset_index(drop=True)
    frame["period"] = frame["period"].astype(str)
    return Table(
        name="attendance_before_after",
        caption=(
            f"Mean {OUTCOME_LABEL} per person-month in the months before and after referral "
            "(index date for comparison patients). People counts rounded to the nearest 5; "
            "counts of 1-7 suppressed."
        ),
        frame=frame,
    )


def _estimates_table(result: AttendanceResult) -> Table:
    rows = []
    for _, row in result.estimates.iterrows():
        if row["term"] == "rate_ratio":
            rows.append(
                {
                    "method": "Poisson rate ratio (person and month fixed effects)",
                    "scale": "% change in the appointment rate",
                    "estimate": round(100 * (row["estimate"] - 1), 1),
                    "conf_low": round(100 * (row["conf_low"] - 1), 1),
                    "conf_high": round(100 * (row["conf_high"] - 1), 1),
                    "p_value": row["p_value"],
                }
            )
            continue
        estimate, _, low, high = _per_1000(row)
        rows.append(
            {
                "method": METHOD_LABELS[row["term"]],
                "scale": (
                    "GP appointments per 1,000 clients per year"
                    if row["term"] == "did_gp"
                    else "appointments per 1,000 people per year"
                ),
                "estimate": round(estimate),
                "conf_low": round(low),
                "conf_high": round(high),
                "p_value": row["p_value"],
            }
        )
    frame = pd.DataFrame(rows)
    frame["p_value"] = frame["p_value"].round(4)
    return Table(
        name="attendance_estimates",
        caption=(
            f"Change in {OUTCOME_LABEL} after referral, with {result.conf_level:.0%} "
            "confidence intervals; negative values are fewer appointments."
        ),
        frame=frame,
    )


def _matching_sample_table(result: AttendanceResult, rule) -> Table:
    sizes = result.matching.sample_sizes()
    frame = disclose_table(sizes, ["n_control", "n_treated"], rule).rename(
        columns={"n_control": "n_comparison_patients", "n_treated": "n_clients"}
    )
    return Table(
        name="attendance_matching_sample",
        caption="People available for matching, matched and left unmatched (rounded to 5).",
        frame=frame,
    )


def _balance_table(result: AttendanceResult) -> Table:
    balance = result.matching.balance()
    frame = pd.DataFrame(
        {
            "variable": balance["variable"].replace({"distance": "propensity score"}),
            "std_mean_diff_before": balance["std_mean_diff_before"].round(3),
            "std_mean_diff_after": balance["std_mean_diff_after"].round(3),
            "variance_ratio_after": balance["variance_ratio_after"].round(2),
        }
    )
    return Table(
        name="attendance_matching_balance",
        caption=(
            "Balance of clients and comparison patients before and after matching: "
            "standardised mean differences (client SD as denominator; |SMD| above 0.1 "
            "signals imbalance) and variance ratios (near 1 is good)."
        ),
        frame=frame,
    )


def _minimum_detectable(result: AttendanceResult) -> float:
    """Smallest change (per 1,000 clients per year) the primary estimate detects with POWER."""
    std_error = _estimate(result, "did")["std_error"]
    change = minimum_detectable_change(std_error, alpha=1 - result.conf_level, power=POWER)
    return float(change * PER_1000_PER_YEAR)


def _clients_pre_rate(result: AttendanceResult) -> float:
    table = result.pre_post.set_index(["group", "period"])
    return float(table.loc[("clients", "before"), "appointments_per_person_month"])


def _matched_text(result: AttendanceResult, params) -> list[str]:
    did = _estimate(result, "did")
    estimate, _, low, high = _per_1000(did)
    ratio = _estimate(result, "rate_ratio")
    clients_change = _per_1000(_estimate(result, "before_after_clients"))[0]
    comparison_change = _per_1000(_estimate(result, "before_after_comparison"))[0]
    twfe = _per_1000(_estimate(result, "twfe"))
    staggered = _per_1000(_estimate(result, "staggered"))
    did_gp = _estimate(result, "did_gp")
    cost = params.costs
    gp_change, _, gp_low, gp_high = _per_1000(did_gp)
    unit_cost = cost.gp_appointment_gbp
    level = f"{result.conf_level:.0%}"
    window = params.comparison.window_months
    matching = result.matching
    max_smd = matching.balance()["std_mean_diff_after"].abs().max()
    mde = _minimum_detectable(result)
    pre_rate = _clients_pre_rate(result) * PER_1000_PER_YEAR
    pretrend = result.event_study.pretrend_test
    matched_on = [
        c
        for c in params.comparison.covariates
        if c != "pre_attendance" or any("pre_attendance" in v for v in matching.covariates)
    ]
    text = [
        f"We counted {OUTCOME_LABEL} at the clients' GP practices in the {window} months "
        f"before and the {window} months after referral. Appointments with the social "
        "prescribing link worker are left out: they are the scheme itself, not an outcome. "
        "Did-not-attend and cancelled bookings and administrative slots are not counted.",
        f"Compared with a matched group of patients who were not referred, clients' "
        f"attendance changed by **{_format(estimate)} appointments per 1,000 clients per "
        f"year** ({level} confidence interval {_ci(low, high)}), a change of "
        f"{_format(100 * (ratio['estimate'] - 1), 1)}% ({level} CI "
        f"{_ci(100 * (ratio['conf_low'] - 1), 100 * (ratio['conf_high'] - 1), 1)}%).",
        f"Why a comparison group matters: people are usually referred when they are "
        f"attending a lot, and attendance tends to fall back afterwards whatever happens "
        f"(regression to the mean). Clients' own attendance changed by "
        f"{_format(clients_change)} appointments per 1,000 per year after referral; the "
        f"matched comparison patients' changed by {_format(comparison_change)} over the same "
        "months around their own index date. Only the difference between the two can be "
        "credited to the scheme; a plain before/after figure would also count the change "
        "that happens anyway.",
        f"Other estimators agree or disagree as follows: two-way fixed effects with calendar "
        f"months gives {_format(twfe[0])} ({_ci(twfe[2], twfe[3])}); the Callaway & "
        "Sant'Anna estimator "
        + (
            f"gives {_format(staggered[0])} ({_ci(staggered[2], staggered[3])})"
            if np.isfinite(staggered[0])
            else "could not be computed (too few clients observed for the whole window)"
        )
        + ". They can differ because the two-way "
        "fixed-effects regression mixes clients referred at different times and uses "
        "clients already referred as comparisons for those referred later, which can bias "
        "it when the effect changes with time since referral; Callaway & Sant'Anna "
        "compares each month after referral with a single baseline month "
        f"{params.comparison.anticipation_months + 1} months before referral (before the "
        "usual pre-referral rise), only against never-referred patients, and uses only "
        "people observed for the whole window. The primary estimate averages the whole "
        "year before referral instead.",
        f"Cost consequence: at £{unit_cost:,.0f} per GP appointment "
        f"({cost.source}; {cost.price_year} prices), the change in GP appointments "
        f"({_format(gp_change)} per 1,000 clients per year, {_ci(gp_low, gp_high)}) "
        f"is worth **£{_format(-gp_change * unit_cost)} per 1,000 clients per year** in GP "
        f"time freed ({level} CI £{_format(-gp_high * unit_cost)} to "
        f"£{_format(-gp_low * unit_cost)}; negative means more GP time used). This is a "
        "cost consequence, not a cash saving: freed appointments are used by other patients.",
        f"With about {_format(_safe_count(result.n_clients, params))} matched clients this "
        "analysis can detect (80% "
        f"power, {1 - result.conf_level:.0%} two-sided test) a change of about "
        f"{_format(mde)} appointments per 1,000 clients per year, "
        f"{_format(100 * mde / pre_rate, 0) if pre_rate > 0 else 'an unknown share'}% of "
        "clients' attendance before referral; smaller real effects may go undetected.",
        f"Clients were matched {params.comparison.ratio}:1 to comparison patients on a "
        f"propensity score of {', '.join(c.replace('_', ' ') for c in matched_on)}"
        + (f", exactly on {', '.join(params.comparison.exact)}" if params.comparison.exact else "")
        + f". After matching the largest standardised difference is {max_smd:.2f}"
        + (" (good balance)." if max_smd <= 0.1 else " (above 0.1: some imbalance remains).")
        + (
            f" {_count_words(result.n_clients_unmatched, params).capitalize()} clients could "
            "not be matched "
            "or lacked appointment data before and after referral and are not in the estimate."
            if result.n_clients_unmatched
            else ""
        ),
        "Before referral the two groups' attendance moved "
        + (
            "in parallel (test of differing pre-referral trends: "
            if pretrend.p_value >= 0.05
            else "differently (test of differing pre-referral trends: "
        )
        + f"p = {pretrend.p_value:.3f}); the figure shows the month-by-month difference "
        f"between the groups, relative to the earliest month ({-window} months before "
        "referral). "
        + (
            ""
            if pretrend.p_value >= 0.05
            else "Differences around the referral month are expected when clients are "
            "referred at a peak; treat the estimate with more caution."
        ),
    ]
    return text


def _before_after_text(result: AttendanceResult, params) -> list[str]:
    change = _estimate(result, "before_after_clients")
    estimate, _, low, high = _per_1000(change)
    level = f"{result.conf_level:.0%}"
    window = params.comparison.window_months
    return [
        "**Warning: no comparison group.** "
        + " ".join(d for d in result.diagnostics if "regression to the mean" in d),
        f"We counted {OUTCOME_LABEL} in the {window} months before and after referral "
        "(link-worker appointments, did-not-attend and cancelled bookings left out). "
        f"Clients' attendance changed by {_format(estimate)} appointments per 1,000 clients "
        f"per year ({level} CI {_ci(low, high)}). This is not an estimate of the scheme's "
        "effect. To estimate the effect, supply a comparison pool of similar patients "
        "who were not referred.",
    ]


def _headline_row(outcome, measure, estimate, std_error, low, high, n, method) -> dict:
    return {
        "outcome_level": "system",
        "outcome": outcome,
        "measure": measure,
        "estimate": estimate,
        "std_error": std_error,
        "conf_low": low,
        "conf_high": high,
        "n": n,
        "method": method,
    }


def _matched_headline(result: AttendanceResult, params, rule) -> pd.DataFrame:
    n = disclose_count([result.n_clients], rule).iloc[0]
    method = (
        f"Difference-in-differences, {params.comparison.ratio}:1 propensity-matched "
        "comparison group, SE clustered by person"
    )
    estimate, std_error, low, high = _per_1000(_estimate(result, "did"))
    ratio = _estimate(result, "rate_ratio")
    gp = _per_1000(_estimate(result, "did_gp"))
    cost = params.costs.gp_appointment_gbp
    rows = [
        _headline_row(
            "Change in GP-practice clinical appointments per 1,000 clients per year",
            "gp_appointments_per_1000_per_year",
            estimate,
            std_error,
            low,
            high,
            n,
            method,
        ),
        _headline_row(
            "% change in GP-practice clinical appointment rate",
            "gp_appointments_pct_change",
            100 * (ratio["estimate"] - 1),
            100 * ratio["std_error"],
            100 * (ratio["conf_low"] - 1),
            100 * (ratio["conf_high"] - 1),
            n,
            "Poisson regression with person and month fixed effects, matched comparison",
        ),
        _headline_row(
            f"Cost of GP appointments averted per 1,000 clients per year "
            f"(£, {params.costs.price_year} prices)",
            "gp_cost_averted_gbp_per_1000_per_year",
            -gp[0] * cost,
            gp[1] * cost,
            -gp[3] * cost,
            -gp[2] * cost,
            n,
            f"GP appointments averted (difference-in-differences) x £{cost:g} "
            f"({params.costs.source})",
        ),
    ]
    return pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))


def _before_after_headline(result: AttendanceResult, params, rule) -> pd.DataFrame:
    n = disclose_count([result.n_clients], rule).iloc[0]
    estimate, std_error, low, high = _per_1000(_estimate(result, "before_after_clients"))
    row = _headline_row(
        "Change in GP-practice clinical appointments per 1,000 clients per year "
        "(before/after only; not an effect estimate)",
        "gp_appointments_per_1000_per_year_before_after",
        estimate,
        std_error,
        low,
        high,
        n,
        "Before/after, no comparison group: regression to the mean not removed",
    )
    return pd.DataFrame([row], columns=list(HEADLINE_COLUMNS))


def _safe_count(n: int, params) -> float:
    """A count as published: rounded, or NaN when it is 1 to the threshold."""
    return float(disclose_count([n], params.disclosure.rule()).astype("Float64").iloc[0])


def _count_words(n: int, params) -> str:
    """A count for a sentence, disclosure-controlled."""
    safe = _safe_count(n, params)
    return (
        f"fewer than {params.disclosure.threshold + 1}" if np.isnan(safe) else f"about {safe:,.0f}"
    )
