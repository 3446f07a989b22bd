"""Falsification built into the attendance analysis: event study, washout check, honest bounds.

* :func:`fit_design_event_study`: month-by-month differences between clients and their
  matched comparison patients over the whole window, relative to the last baseline
  month (the design's reference), with the design's weights.
* :func:`check_washout`: a data-driven check that the washout covers the rise seen in
  the event study: where the largest rise sits, whether the last baseline month already
  rises above the earlier ones, and whether the first post-period month is still above
  the later ones (family-wise error at most ``1 - conf_level``).
* :func:`honest_bounds`: Rambachan & Roth (2023) sensitivity of the design's estimate
  (the average over the post-period months) to violations of parallel trends, by
  relative magnitudes and by smoothness (Delta^SD, fixed-length confidence intervals),
  applied to this event study with its reference re-labelled -1 and the washout
  months treated as months after "treatment" whose effects are not targeted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from spimpact.analyses.attendance.design import Design
from spimpact.analyses.attendance.estimate import Inference, people_rows
from spimpact.analyses.attendance.matched_sets import PRACTICE
from spimpact.models.did import EventStudyResult
from spimpact.models.did_event_study_grouped import fit_event_study_grouped
from spimpact.models.did_honest import honest_did_relative_magnitude, honest_did_smoothness

#: Values of Mbar (relative magnitudes) and of M as multiples of the pre-period's largest
#: second difference (smoothness) for which honest bounds are reported.
RELATIVE_MAGNITUDES = (0.5, 1.0)
SMOOTHNESS_MULTIPLES = (0.0, 0.5, 1.0, 2.0)
#: Grid of the C-LF test inversion (HonestDiD's gridPoints) over +/-20 SE.
HONEST_GRID = 200
#: The washout check's tests: the peak scan and the two edge tests.
CHECK_TESTS = ("peak", "rise_before", "still_high_after")


@dataclass(frozen=True)
class WashoutCheck:
    """Whether the washout covers the rise around referral seen in the event study.

    Attributes
    ----------
    washout
        First and last month left out (``None`` when the design leaves none out).
    peak_month
        Month with the largest rise of clients over comparison patients relative to the
        baseline average, ``None`` when no month rises significantly (one-sided,
        Bonferroni over the months scanned).
    peak_inside
        Whether ``peak_month`` lies in the washout (``True`` when there is no peak).
    rise_before_p_value
        One-sided p-value that the last baseline month is above the average of the
        earlier baseline months (a rise that starts before the washout).
    still_high_after_p_value
        One-sided p-value that the first post-period month is above the average of the
        later ones (a rise not yet over when the post-period starts, or an effect that
        builds up).
    passed
        No sign that the washout is too short: the peak inside it and neither edge
        test significant. Each of the three tests runs at ``(1 - conf_level) / 3``, so
        the check as a whole raises a false alarm at most ``1 - conf_level`` of the
        time when the washout does cover the rise.
    profile
        ``months_since_index, estimate, conf_low, conf_high``: the event study relative
        to the baseline average (pointwise intervals).
    """

    washout: tuple[int, int] | None
    peak_month: int | None
    peak_inside: bool
    rise_before_p_value: float
    still_high_after_p_value: float
    passed: bool
    profile: pd.DataFrame


def honest_period_months(design: Design, window: int) -> int:
    """Months per period of the event study behind the honest bounds: 3 when they fit.

    Quarters (3-month periods ending at the last baseline month) keep the honest
    bounds' optimisation small; they are used when the baseline, the washout and the
    post-period are each whole quarters, otherwise single months.
    """
    baseline = design.baseline[1] - design.baseline[0] + 1
    washout = design.post[0] - design.baseline[1] - 1
    post = design.post[1] - design.post[0] + 1
    aligned = all(n % 3 == 0 for n in (baseline, washout, post))
    return 3 if aligned and design.baseline[0] == -window and design.post[1] == window - 1 else 1


def fit_design_event_study(
    panel: pd.DataFrame,
    frame: pd.DataFrame,
    design: Design,
    *,
    outcome: str,
    window: int,
    inference: Inference,
    conf_level: float,
    period_months: int = 1,
) -> EventStudyResult:
    """Event study of the matched sample over months ``-window`` to ``window - 1``.

    Person and period fixed effects, one coefficient per client period except the
    reference, the design's weights. Periods are ``period_months`` long and counted
    from the end of the baseline: period -1 (the reference) ends with the last baseline
    month, period 0 starts the month after it. Clustered as ``inference`` when that is
    by matched set or person, otherwise by matched set (clustering 2 x ``window``
    coefficients on a few practices gives a singular covariance, which neither the
    pre-trend test nor the honest bounds can use). Fitted without the rows x
    coefficients design (:func:`~spimpact.models.did_event_study_grouped.fit_event_study_grouped`,
    the numbers of :func:`~spimpact.models.did.fit_event_study`).
    """
    cluster = inference.cluster if inference.cluster != PRACTICE else "subclass"
    people = frame.drop_duplicates("patient_id")
    in_window = panel["months_since_index"].between(-window, window - 1)
    rows = people_rows(
        panel, people, in_window, ["weight", *{cluster} - {"patient_id"}], columns=[outcome]
    )
    period = (rows["months_since_index"] - design.baseline[1] - 1) // period_months
    first, last = int(period.min()), int(period.max())
    rows["period"] = period - first + 1
    rows["first_period"] = np.where(rows["treated"] == 1, 1 - first, 0).astype("int8")
    return fit_event_study_grouped(
        rows,
        outcome=outcome,
        unit="patient_id",
        time="period",
        first_treated="first_period",
        window=(first, last),
        reference=-1,
        cluster=cluster,
        weights="weight",
        conf_level=conf_level,
    )


def _full_path(
    event_study: EventStudyResult, design: Design
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Months, coefficients and covariance of a monthly study, the reference put back as 0."""
    months = event_study.event_times
    beta = event_study.coefficients["estimate"].to_numpy()
    sigma = event_study.covariance.to_numpy()
    position = int(np.searchsorted(months, event_study.reference))
    months = np.insert(months, position, event_study.reference)
    beta = np.insert(beta, position, 0.0)
    sigma = np.insert(np.insert(sigma, position, 0.0, axis=0), position, 0.0, axis=1)
    return months + design.baseline[1] + 1, beta, sigma


def check_washout(event_study: EventStudyResult, design: Design, *, conf_level: float):
    """Check that the washout covers the rise around referral (see :class:`WashoutCheck`).

    ``event_study``: the monthly study of :func:`fit_design_event_study`.
    """
    months, beta, sigma = _full_path(event_study, design)
    baseline = (months >= design.baseline[0]) & (months <= design.baseline[1])
    post = (months >= design.post[0]) & (months <= design.post[1])
    relative = np.eye(months.size) - baseline[None, :] / baseline.sum()
    gamma = relative @ beta
    gamma_var = np.einsum("ij,jk,ik->i", relative, sigma, relative)
    critical = stats.norm.ppf(0.5 + conf_level / 2)
    se = np.sqrt(np.maximum(gamma_var, 0.0))
    profile = pd.DataFrame(
        {
            "months_since_index": months,
            "estimate": gamma,
            "conf_low": gamma - critical * se,
            "conf_high": gamma + critical * se,
        }
    )
    washout = (design.baseline[1] + 1, design.post[0] - 1)
    if washout[0] > washout[1]:
        washout = None
    # Three tests, each at alpha / 3 (Bonferroni), and the peak scan Bonferroni over the
    # months it scans: without a rise outside the washout the check raises a false alarm
    # at most alpha of the time (pointwise, 24 months raised one in three).
    alpha = 1 - conf_level
    part = alpha / len(CHECK_TESTS)
    scan_critical = stats.norm.isf(part / months.size)
    rises = gamma - scan_critical * se > 0
    peak_month = int(months[np.argmax(np.where(rises, gamma, -np.inf))]) if rises.any() else None
    peak_inside = peak_month is None or (
        washout is not None and washout[0] <= peak_month <= washout[1]
    )
    rise_before = _edge_p_value(months, beta, sigma, baseline, last=True)
    still_high = _edge_p_value(months, beta, sigma, post, last=False)
    passed = bool(peak_inside and not rise_before < part and not still_high < part)
    return WashoutCheck(
        washout=washout,
        peak_month=peak_month,
        peak_inside=bool(peak_inside),
        rise_before_p_value=rise_before,
        still_high_after_p_value=still_high,
        passed=passed,
        profile=profile,
    )


def _edge_p_value(months, beta, sigma, period, *, last: bool) -> float:
    """One-sided p-value that the period's edge month is above the period's other months."""
    positions = np.flatnonzero(period)
    if positions.size < 2:
        return float("nan")
    edge = positions[-1] if last else positions[0]
    contrast = np.zeros(months.size)
    contrast[positions] = -1.0 / (positions.size - 1)
    contrast[edge] = 1.0
    estimate = float(contrast @ beta)
    se = float(np.sqrt(contrast @ sigma @ contrast))
    return float(stats.norm.sf(estimate / se)) if se > 0 else float("nan")


def honest_bounds(
    event_study: EventStudyResult,
    design: Design,
    *,
    period_months: int,
    conf_level: float,
    seed: int,
) -> pd.DataFrame:
    """Honest confidence intervals for the design's estimate over its post-period months.

    ``event_study``: from :func:`fit_design_event_study` with ``period_months``
    (reference -1: the last baseline period). The target is the mean of the periods
    that make up the post-period; the washout periods count as periods after
    "treatment" whose effects are not targeted (the rise is not restricted).

    Returns one row per restriction and value: ``restriction`` (``relative magnitudes``
    or ``smoothness``), ``m`` (Mbar, or M in appointments per person-month per period
    squared), ``m_multiple`` (Mbar, or M as a multiple of the largest absolute second
    difference of the baseline coefficients), ``conf_low``, ``conf_high``, ``method``.
    Relative magnitudes use HonestDiD's conditional least-favourable hybrid (C-LF) on
    quarterly periods and its conservative Bonferroni projection on monthly ones
    (C-LF with a dozen monthly periods is too slow to run in a report).
    """
    periods = event_study.event_times
    beta = event_study.coefficients["estimate"].to_numpy()
    sigma = event_study.covariance.to_numpy()
    post = periods >= 0
    first_month = design.baseline[1] + 1 + periods[post] * period_months
    weights = (first_month >= design.post[0]).astype(float)
    weights = weights / weights.sum()
    n_pre = int((~post).sum())
    relative = honest_did_relative_magnitude(
        event_study,
        mbar=list(RELATIVE_MAGNITUDES),
        post_weights=weights,
        conf_level=conf_level,
        method="C-LF" if period_months > 1 else "bonferroni",
        n_grid=HONEST_GRID,
        seed=seed,
    )
    baseline_path = np.r_[beta[:n_pre], 0.0]
    second = np.abs(np.diff(baseline_path, n=2)) if baseline_path.size >= 3 else np.zeros(1)
    scale = float(second.max())
    smooth = honest_did_smoothness(
        beta,
        sigma,
        num_pre_periods=n_pre,
        num_post_periods=int(post.sum()),
        m_values=[multiple * scale for multiple in SMOOTHNESS_MULTIPLES],
        method="FLCI",
        l_vec=weights,
        conf_level=conf_level,
    )
    rows = [
        pd.DataFrame(
            {
                "restriction": "relative magnitudes",
                "m": relative["mbar"],
                "m_multiple": relative["mbar"],
                "conf_low": relative["conf_low"],
                "conf_high": relative["conf_high"],
                "method": relative["method"],
            }
        ),
        pd.DataFrame(
            {
                "restriction": "smoothness",
                "m": smooth["m"],
                "m_multiple": list(SMOOTHNESS_MULTIPLES),
                "conf_low": smooth["conf_low"],
                "conf_high": smooth["conf_high"],
                "method": smooth["method"],
            }
        ),
    ]
    return pd.concat(rows, ignore_index=True)
