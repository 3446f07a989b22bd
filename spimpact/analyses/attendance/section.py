"""The GP-attendance report section: words, tables, figures and headline rows.

Built from an :class:`~spimpact.analyses.attendance.analysis.AttendanceResult`; every
number shown passes disclosure control (:mod:`spimpact.publish.disclosure`). The tables
and figures are in :mod:`~spimpact.analyses.attendance.section_tables`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.analyses.attendance.analysis import AttendanceResult, analyse_attendance
from spimpact.analyses.attendance.section_tables import (
    OUTCOME_LABEL,
    balance,
    balance_table,
    before_after_table,
    estimate_row,
    estimates_table,
    honest_table,
    love_plot,
    matching_sample_table,
    per_1000,
    percent,
    sensitivity_table,
)
from spimpact.models.paired import minimum_detectable_change
from spimpact.publish.disclosure import disclose_count
from spimpact.publish.section import HEADLINE_COLUMNS, Section

POWER = 0.8
SECTION_TITLE = "GP attendance"


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
        Text for commissioners (the estimand in words, the primary estimate, whether
        the conclusion survives the alternative designs, the placebo, the washout
        check, the pre-trend test and honest bounds, the standard errors used and why,
        the multiplicity adjustment), disclosure-controlled tables
        (``attendance_before_after``, ``attendance_estimates`` and for the matched
        design ``attendance_sensitivity``, ``attendance_honest_bounds``,
        ``attendance_matching_sample``, ``attendance_matching_balance``), the
        event-study figure and love plot, and ``headline`` rows (outcome level
        "system"): the change in appointments per 1,000 clients per year, the % change
        and the cost consequence.

    Raises
    ------
    InsufficientData
        Without GP appointment data or with too few people.

    Notes
    -----
    Estimators as :func:`analyse_attendance`. The cost consequence multiplies GP
    appointments averted (the primary design on GP appointments only) by
    ``params.costs.gp_appointment_gbp``; nurse and other clinical appointments are not
    costed. The minimum detectable effect is ``(z_(1-a/2) + z_0.8) x SE`` of the primary
    estimate (Bloom 1995, Evaluation Review 19:547), i.e. 80% power.
    """
    result = analyse_attendance(scheme, params=params) if result is None else result
    rule = params.disclosure.rule()
    tables = [before_after_table(result, rule), estimates_table(result)]
    if result.design == "before_after":
        text = _before_after_text(result, params)
        headline = _before_after_headline(result, params, rule)
        figures = [_figure(result.plot())]
    else:
        text = _matched_text(result, params)
        headline = _matched_headline(result, params, rule)
        tables.append(sensitivity_table(result, rule))
        if result.honest is not None:
            tables.append(honest_table(result))
        tables += [matching_sample_table(result, rule), balance_table(result)]
        figures = [_figure(result.plot()), _figure(love_plot(result))]
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


def _format(value: float, digits: int = 0) -> str:
    if not np.isfinite(value):
        return "unbounded" if np.isinf(value) else "not estimable"
    return f"{value:,.{digits}f}".replace("-", "\u2212")


def _ci(low: float, high: float, digits: int = 0) -> str:
    return f"{_format(low, digits)} to {_format(high, digits)}"


def _months(first: int, last: int) -> str:
    return f"{_format(first)} to {_format(last)}"


def _excludes_zero(low: float, high: float) -> bool:
    return bool(low > 0 or high < 0)


def conclusion_survives(result: AttendanceResult) -> tuple[str, list[str]]:
    """Whether the primary conclusion holds in every alternative design.

    The conclusion is the direction of the primary estimate when its interval excludes
    zero, otherwise "no clear change". An alternative agrees when its interval points
    the same way (or, for "no clear change", includes no change). Returns ``"all"``,
    ``"direction"`` (same sign everywhere, some intervals include no change) or
    ``"no"``, and the labels of the designs that disagree.
    """
    primary = estimate_row(result, "did")
    significant = _excludes_zero(primary["conf_low"], primary["conf_high"])
    sign = np.sign(primary["estimate"])
    disagree, weaker = [], []
    for _, row in result.sensitivity.iterrows():
        null = 1.0 if row["scale"] == "rate ratio" else 0.0
        low, high, estimate = (
            row["conf_low"] - null,
            row["conf_high"] - null,
            row["estimate"] - null,
        )
        if not np.isfinite(estimate):
            continue
        if significant:
            if np.sign(estimate) != sign:
                disagree.append(row["label"])
            elif not _excludes_zero(low, high):
                weaker.append(row["label"])
        elif _excludes_zero(low, high):
            disagree.append(row["label"])
    if disagree:
        return "no", disagree
    return ("direction", weaker) if weaker else ("all", [])


def _estimand_text(result: AttendanceResult, params, window: int) -> str:
    design = result.primary
    count = _count_words(result.n_clients, params)
    before = params.comparison.washout_months_before
    after = params.comparison.washout_months_after
    return (
        f"**What is estimated.** The average change in {OUTCOME_LABEL} per client per month "
        f"over months {_months(*design.post)} after referral, for the clients who could be "
        f"matched ({count}, each counted once), compared with what their attendance would "
        "have been without the scheme. That counterfactual comes from comparison patients "
        "matched to each client: indexed in the same calendar month, at the same GP "
        "practice where practices are recorded, and similar in age, sex, deprivation, "
        "ethnic group and attendance over the two years before the compared months. "
        f"Each person's months {_months(*design.baseline)} are compared with their months "
        f"{_months(*design.post)}; the {before + after} months from {_format(-before)} to "
        f"{after - 1} are left out (a washout): people tend to be referred after a run of "
        "appointments, so clients' attendance rises before referral and falls back "
        "afterwards whatever the scheme does, and comparison patients do not share that "
        f"rise. Appointments with the link worker, did-not-attend and cancelled bookings "
        f"are not counted. The analysis window is {window} months either side of referral."
    )


def _headline_text(result: AttendanceResult) -> str:
    estimate, _, low, high = per_1000(estimate_row(result, "did"))
    ratio = estimate_row(result, "rate_ratio")
    level = f"{result.conf_level:.0%}"
    text = (
        f"Compared with the matched comparison patients, clients' attendance changed by "
        f"**{_format(estimate)} appointments per 1,000 clients per year** ({level} "
        f"confidence interval {_ci(low, high)})"
    )
    if np.isfinite(ratio["estimate"]):
        pct, pct_low, pct_high = percent(ratio)
        text += (
            f", a change of {_format(pct, 1)}% in the appointment rate ({level} CI "
            f"{_ci(pct_low, pct_high, 1)}%)"
        )
    return text + "."


def _sensitivity_text(result: AttendanceResult) -> str:
    verdict, designs = conclusion_survives(result)
    primary = estimate_row(result, "did")
    conclusion = (
        ("fewer" if primary["estimate"] < 0 else "more") + " appointments"
        if _excludes_zero(primary["conf_low"], primary["conf_high"])
        else "no clear change"
    )
    if verdict == "all":
        return (
            f"**Does it depend on the design?** The conclusion ({conclusion}) survives all "
            f"{len(result.sensitivity)} alternative designs in the sensitivity table."
        )
    listed = "; ".join(d[0].lower() + d[1:] for d in designs)
    if verdict == "direction":
        return (
            f"**Does it depend on the design?** Every alternative design points the same way "
            f"({conclusion}), but in some the interval includes no change: {listed}."
        )
    check = result.washout_check
    rise = check is not None and check.peak_month is not None
    return (
        f"**Does it depend on the design?** The conclusion ({conclusion}) does not survive "
        f"every alternative design ({len(designs)} of {len(result.sensitivity)} disagree: "
        f"{listed}). "
        + (
            "Designs that compare the months around referral include the rise in clients' "
            f"attendance seen here (largest in month {_format(check.peak_month)}) and its "
            "fall back, so they are expected to differ; the primary design leaves those "
            "months out."
            if rise
            else "Treat the primary estimate with caution."
        )
    )


def _checks_text(result: AttendanceResult, params) -> list[str]:
    text = []
    check = result.washout_check
    design = result.primary
    if check is not None:
        where = (
            "no month stands out from the baseline"
            if check.peak_month is None
            else f"clients' attendance relative to the comparison group peaks in month "
            f"{_format(check.peak_month)}"
        )
        if check.passed:
            verdict = (
                "The washout covers it: the last baseline month is not above the earlier "
                f"ones (p = {check.rise_before_p_value:.2f}) and the first post-period month "
                f"is not above the later ones (p = {check.still_high_after_p_value:.2f})."
            )
        else:
            verdict = (
                "**The washout may be too short**: "
                + ("the peak lies outside it; " if not check.peak_inside else "")
                + f"last baseline month above the earlier ones: p = "
                f"{check.rise_before_p_value:.2f}; first post-period month above the later "
                f"ones: p = {check.still_high_after_p_value:.2f}. The rise may start earlier "
                "or last longer than the months left out (or the effect builds up "
                "gradually); consider longer `comparison.washout_months_before` / "
                "`washout_months_after` and compare the sensitivity table's longer washout."
            )
        text.append(f"**Washout check.** In the event study {where}. {verdict}")
    placebo = estimate_row(result, "placebo")
    shift = params.comparison.placebo_months_earlier
    if np.isfinite(placebo["estimate"]):
        estimate, _, low, high = per_1000(placebo)
        near_zero = not _excludes_zero(low, high)
        text.append(
            f"**Placebo.** Repeating the whole analysis as if referral had happened {shift} "
            f"months earlier (when the scheme cannot have had any effect) gives "
            f"{_format(estimate)} appointments per 1,000 clients per year "
            f"({_ci(low, high)}): "
            + (
                "no sign that clients and comparison patients drift apart anyway."
                if near_zero
                else "**not zero**: clients' attendance was already changing differently "
                "from the comparison group's before referral, so the primary estimate may "
                "be biased."
            )
        )
    if result.event_study is not None:
        test = result.event_study.pretrend_test
        text.append(
            f"**Trends before referral.** Relative to month {_format(design.baseline[1])}, the "
            f"baseline months {'differ' if test.p_value < 0.05 else 'do not differ'} between "
            f"the groups (joint test p = {test.p_value:.3f}); the figure shows each month's "
            "difference relative to the baseline average, the washout shaded."
        )
    if result.honest is not None:
        text.append(_honest_text(result))
    return text


def _honest_text(result: AttendanceResult) -> str:
    honest = result.honest
    rows = honest[honest["restriction"] == "relative magnitudes"]
    robust = rows[
        [_excludes_zero(lo, hi) for lo, hi in zip(rows.conf_low, rows.conf_high, strict=True)]
    ]
    largest = robust["m"].max() if len(robust) else None
    smooth = honest[(honest["restriction"] == "smoothness") & (honest["m_multiple"] == 0)]
    line = (
        "**Honest bounds.** Parallel trends cannot be tested after referral. If the groups' "
        "trends drifted apart after referral "
        + (
            f"by up to {largest:g} times the largest drift seen between baseline quarters, the "
            "interval would still exclude no change"
            if largest is not None
            else "by even half the largest drift seen between baseline quarters, the interval "
            "would include no change"
        )
    )
    if len(smooth):
        low, high = smooth.iloc[0][["conf_low", "conf_high"]] * 1000 * 12
        line += (
            f"; continuing the baseline's straight-line trend gives {_ci(low, high)} "
            "appointments per 1,000 clients per year"
        )
    return line + " (table: Rambachan & Roth 2023, HonestDiD's methods)."


def _inference_text(result: AttendanceResult) -> str:
    return (
        f"**Standard errors.** {result.inference.reason[0].upper()}"
        f"{result.inference.reason[1:]}. Matched comparison patients are chosen without "
        "replacement, so clustering on matched sets (or on practices that contain them) "
        "accounts for the matching (Abadie & Spiess 2022)."
    )


def _matched_text(result: AttendanceResult, params) -> list[str]:
    window = params.comparison.window_months
    level = f"{result.conf_level:.0%}"
    clients_change = per_1000(estimate_row(result, "before_after_clients"))[0]
    comparison_change = per_1000(estimate_row(result, "before_after_comparison"))[0]
    cost = params.costs
    gp_change, _, gp_low, gp_high = per_1000(estimate_row(result, "did_gp"))
    unit_cost = cost.gp_appointment_gbp
    mde = _minimum_detectable(result)
    pre_rate = _clients_pre_rate(result) * 1000 * 12
    max_smd = balance(result)["std_mean_diff_after"].abs().max()
    text = [
        _estimand_text(result, params, window),
        _headline_text(result),
        f"Why a comparison group matters: clients' own attendance changed by "
        f"{_format(clients_change)} appointments per 1,000 per year between the compared "
        f"months; the matched comparison patients' changed by {_format(comparison_change)} "
        "over the same months around their own index date (attendance changes over time for "
        "everyone, and people referred at a high point fall back: regression to the mean). "
        "Only the difference can be credited to the scheme.",
        _sensitivity_text(result),
        *_checks_text(result, params),
        _inference_text(result),
        "**Several tests.** The primary estimate is the one pre-specified test. The three "
        "secondary outcomes (GP appointments only, face-to-face and remote appointments) "
        "are one family: their p-values are also shown adjusted by Holm's method. "
        "Attendance by group (in the equity section) is adjusted too.",
        f"Cost consequence: at £{unit_cost:,.0f} per GP appointment ({cost.source}; "
        f"{cost.price_year} prices), the change in GP appointments ({_format(gp_change)} per "
        f"1,000 clients per year, {_ci(gp_low, gp_high)}) is worth "
        f"**£{_format(-gp_change * unit_cost)} per 1,000 clients per year** in GP time freed "
        f"({level} CI £{_format(-gp_high * unit_cost)} to £{_format(-gp_low * unit_cost)}; "
        "negative means more GP time used). This is a cost consequence, not a cash saving: "
        "freed appointments are used by other patients.",
        f"With about {_format(_safe_count(result.n_clients, params))} matched clients this "
        f"analysis can detect (80% power, {1 - result.conf_level:.0%} two-sided test) a "
        f"change of about {_format(mde)} appointments per 1,000 clients per year, "
        f"{_format(100 * mde / pre_rate, 0) if pre_rate > 0 else 'an unknown share'}% of "
        "clients' attendance before referral; smaller real effects may go undetected.",
        f"Matching: {params.comparison.ratio} comparison patient(s) per client, exactly on "
        f"{', '.join(_exact_words(result))}, then the nearest propensity score. After "
        f"matching the largest standardised difference is {max_smd:.2f}"
        + (
            " (good balance)."
            if max_smd <= 0.1
            else " (above 0.1: some imbalance remains; "
            "stable differences in level cancel in the before/after comparison)."
        )
        + (
            f" {_count_words(result.n_clients_unmatched, params).capitalize()} clients could "
            "not be matched or lacked appointment data before and after referral and are not "
            "in the estimate."
            if result.n_clients_unmatched
            else ""
        ),
    ]
    return text


def _exact_words(result: AttendanceResult) -> list[str]:
    names = {"index_month": "calendar month of referral", "practice_code": "GP practice"}
    words = [names.get(c, c.replace("_", " ")) for c in result.matching.exact]
    if result.n_clients_nearby_month:
        words = [
            w
            if w != names["index_month"]
            else "calendar month of referral (or a neighbouring month where none was available)"
            for w in words
        ]
    return words


def _minimum_detectable(result: AttendanceResult) -> float:
    """Smallest change (per 1,000 clients per year) the primary estimate detects with POWER."""
    std_error = estimate_row(result, "did")["std_error"]
    change = minimum_detectable_change(std_error, alpha=1 - result.conf_level, power=POWER)
    return float(change * 1000 * 12)


def _clients_pre_rate(result: AttendanceResult) -> float:
    table = result.pre_post.set_index(["group", "period"])
    return float(table.loc[("clients", "before"), "appointments_per_person_month"])


def _before_after_text(result: AttendanceResult, params) -> list[str]:
    estimate, _, low, high = per_1000(estimate_row(result, "before_after_clients"))
    level = f"{result.conf_level:.0%}"
    design = result.primary
    return [
        "**Warning: no comparison group.** "
        + " ".join(d for d in result.diagnostics if "regression to the mean" in d),
        f"We counted {OUTCOME_LABEL} in months {_months(*design.baseline)} before and "
        f"{_months(*design.post)} after referral (the months around referral, link-worker "
        "appointments, did-not-attend and cancelled bookings left out). Clients' attendance "
        f"changed by {_format(estimate)} appointments per 1,000 clients per year ({level} CI "
        f"{_ci(low, high)}). This is not an estimate of the scheme's effect. To estimate the "
        "effect, supply a comparison pool of similar patients who were not referred.",
    ]


def _headline_row(outcome, measure, estimate, std_error, low, high, n, method, level) -> dict:
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
        "conf_level": level,
    }


def _matched_headline(result: AttendanceResult, params, rule) -> pd.DataFrame:
    n = disclose_count([result.n_clients], rule).iloc[0]
    design = result.primary
    level = result.conf_level
    method = (
        f"Matched difference-in-differences (months {design.baseline[0]} to "
        f"{design.baseline[1]} against {design.post[0]} to {design.post[1]}, washout "
        f"between), {params.comparison.ratio}:1 comparison patients matched on calendar "
        f"month, practice and prior attendance; SE {result.inference.se} by "
        f"{result.inference.cluster.replace('_', ' ')}"
    )
    estimate, std_error, low, high = per_1000(estimate_row(result, "did"))
    ratio = estimate_row(result, "rate_ratio")
    gp = per_1000(estimate_row(result, "did_gp"))
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
            level,
        ),
        _headline_row(
            "% change in GP-practice clinical appointment rate",
            "gp_appointments_pct_change",
            100 * (ratio["estimate"] - 1),
            100 * ratio["std_error"],
            100 * (ratio["conf_low"] - 1),
            100 * (ratio["conf_high"] - 1),
            n,
            "Poisson regression with person and month fixed effects, same months and "
            "matched comparison",
            level,
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
            f"GP appointments averted (primary design) x £{cost:g} ({params.costs.source})",
            level,
        ),
    ]
    return pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))


def _before_after_headline(result: AttendanceResult, params, rule) -> pd.DataFrame:
    n = disclose_count([result.n_clients], rule).iloc[0]
    estimate, std_error, low, high = per_1000(estimate_row(result, "before_after_clients"))
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
        result.conf_level,
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
