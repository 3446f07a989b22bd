"""Tables and figures of the GP-attendance section, disclosure controlled.

Built from an :class:`~spimpact.analyses.attendance.analysis.AttendanceResult`; people
counts pass :mod:`spimpact.publish.disclosure`, means only with enough people behind them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.analyses.attendance.analysis import PER_1000_PER_YEAR, AttendanceResult
from spimpact.analyses.attendance.matched_sets import INDEX_MONTH, PRACTICE
from spimpact.models.matching import SMD_THRESHOLD
from spimpact.publish.disclosure import disclose_count, disclose_summary, disclose_table
from spimpact.publish.section import Table

OUTCOME_LABEL = "attended clinical appointments (GP, nurse, other clinical staff)"
ESTIMATE_LABELS = {
    "did": "All clinical appointments: matched difference-in-differences (primary)",
    "did_gp": "GP appointments only (secondary)",
    "did_face_to_face": "Face-to-face appointments (secondary)",
    "did_remote": "Telephone, video and online appointments (secondary)",
    "rate_ratio": "All clinical appointments: Poisson rate ratio, % change",
    "placebo": "Placebo: index date moved earlier (should be near zero)",
    "before_after_clients": "Clients before and after referral (no comparison)",
    "before_after_comparison": "Comparison patients before and after their index date",
}


def estimate_row(result: AttendanceResult, term: str) -> pd.Series:
    """The ``term`` row of the estimates table."""
    return result.estimates.set_index("term").loc[term]


def per_1000(row: pd.Series) -> tuple[float, float, float, float]:
    """Estimate, SE and interval of a per-person-month row, per 1,000 people per year."""
    scale = PER_1000_PER_YEAR
    return tuple(float(row[c]) * scale for c in ("estimate", "std_error", "conf_low", "conf_high"))


def percent(row: pd.Series) -> tuple[float, float, float]:
    """A rate-ratio row as a % change: estimate, lower and upper limits."""
    return tuple(100 * (float(row[c]) - 1) for c in ("estimate", "conf_low", "conf_high"))


def before_after_table(result: AttendanceResult, rule) -> Table:
    """Mean appointments per person-month in the baseline and post-period, by group."""
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
    design = result.primary
    return Table(
        name="attendance_before_after",
        caption=(
            f"Mean {OUTCOME_LABEL} per person-month, before (months {design.baseline[0]} to "
            f"{design.baseline[1]}) and after (months {design.post[0]} to {design.post[1]}) "
            "referral (index date for comparison patients); each person's monthly mean, "
            "averaged with the estimate's weights. People counts rounded to the nearest 5; "
            "counts of 1-7 suppressed."
        ),
        frame=frame,
    )


def estimates_table(result: AttendanceResult) -> Table:
    """Primary, secondary (Holm-adjusted p-values), rate ratio, placebo, before/after rows."""
    holm = result.secondary_tests.set_index("term")["p_value_holm"]
    rows = []
    for _, row in result.estimates.iterrows():
        term = row["term"]
        if term == "rate_ratio":
            estimate, low, high = percent(row)
            scale, digits = "% change in the appointment rate", 1
        else:
            estimate, _, low, high = per_1000(row)
            scale, digits = "appointments per 1,000 people per year", 0
        rows.append(
            {
                "estimate_of": ESTIMATE_LABELS[term],
                "scale": scale,
                "estimate": round(estimate, digits),
                "conf_low": round(low, digits),
                "conf_high": round(high, digits),
                "p_value": round(float(row["p_value"]), 4),
                "p_value_holm": round(float(holm[term]), 4) if term in holm.index else np.nan,
            }
        )
    return Table(
        name="attendance_estimates",
        caption=(
            f"Change in {OUTCOME_LABEL} after referral, with {result.conf_level:.0%} "
            "confidence intervals; negative values are fewer appointments. The secondary "
            "outcomes' p-values are also given adjusted for testing three of them (Holm)."
        ),
        frame=pd.DataFrame(rows),
    )


def sensitivity_table(result: AttendanceResult, rule) -> Table:
    """The primary estimate beside each alternative design."""
    primary = estimate_row(result, "did")
    rows = [
        {
            "design": result.primary.label,
            "months_compared": result.primary.describe_months(),
            "scale": "appointments per 1,000 clients per year",
            "estimate": round(per_1000(primary)[0]),
            "conf_low": round(per_1000(primary)[2]),
            "conf_high": round(per_1000(primary)[3]),
            "n_clients": result.n_clients,
        }
    ]
    for _, row in result.sensitivity.iterrows():
        if row["scale"] == "rate ratio":
            estimate, low, high = (round(v, 1) for v in percent(row))
            scale = "% change in the appointment rate"
        else:
            estimate, _, low, high = (round(v) if np.isfinite(v) else np.nan for v in per_1000(row))
            scale = "appointments per 1,000 clients per year"
        rows.append(
            {
                "design": row["label"],
                "months_compared": row["months"],
                "scale": scale,
                "estimate": estimate,
                "conf_low": low,
                "conf_high": high,
                "n_clients": int(row["n_clients"]),
            }
        )
    frame = pd.DataFrame(rows)
    frame["n_clients"] = disclose_count(frame["n_clients"].to_numpy(), rule).to_numpy()
    return Table(
        name="attendance_sensitivity",
        caption=(
            f"The primary estimate beside alternative designs ({result.conf_level:.0%} "
            "confidence intervals). Designs that compare the months around referral include "
            "clients' pre-referral rise and its fall back. Client counts rounded to 5."
        ),
        frame=frame,
    )


def honest_table(result: AttendanceResult) -> Table:
    """Honest confidence intervals (Rambachan & Roth) for the primary estimate."""
    honest = result.honest
    scale = PER_1000_PER_YEAR
    frame = pd.DataFrame(
        {
            "restriction": honest["restriction"],
            "how_large": [
                f"Mbar = {m:g}" if r == "relative magnitudes" else f"M = {m:g} x baseline"
                for r, m in zip(honest["restriction"], honest["m_multiple"], strict=True)
            ],
            "conf_low": (honest["conf_low"] * scale).round(),
            "conf_high": (honest["conf_high"] * scale).round(),
            "method": honest["method"],
        }
    )
    return Table(
        name="attendance_honest_bounds",
        caption=(
            "How far the primary estimate's conclusion depends on parallel trends "
            "(Rambachan & Roth 2023), appointments per 1,000 clients per year. Relative "
            "magnitudes: after referral the groups' trends may drift apart by up to Mbar "
            "times the largest quarter-to-quarter drift seen in the baseline. Smoothness: "
            "the difference in trends may bend by up to M per quarter, M a multiple of the "
            "largest bend seen in the baseline (0: a straight-line trend continued). "
            f"Intervals at {result.conf_level:.0%}; infinite limits mean the data cannot "
            "rule anything out under that assumption."
        ),
        frame=frame,
    )


def matching_sample_table(result: AttendanceResult, rule) -> Table:
    """People available, matched and unmatched, by group."""
    sizes = result.matching.sample_sizes()
    frame = disclose_table(sizes, ["n_control", "n_treated"], rule).rename(
        columns={"n_control": "n_comparison_patients", "n_treated": "n_clients"}
    )
    return Table(
        name="attendance_matching_sample",
        caption=(
            "People eligible for matching (a month observed before and after the index "
            "date), matched and left unmatched (rounded to 5)."
        ),
        frame=frame,
    )


def balance(result: AttendanceResult) -> pd.DataFrame:
    """Balance rows without the exactly matched index month and practice levels."""
    table = result.matching.balance()
    exact = (INDEX_MONTH, PRACTICE)
    keep = ~table["variable"].str.startswith(exact)
    return table[keep].reset_index(drop=True)


def balance_table(result: AttendanceResult) -> Table:
    """Standardised mean differences and variance ratios before and after matching."""
    table = balance(result)
    frame = pd.DataFrame(
        {
            "variable": table["variable"].replace({"distance": "propensity score"}),
            "std_mean_diff_before": table["std_mean_diff_before"].round(3),
            "std_mean_diff_after": table["std_mean_diff_after"].round(3),
            "variance_ratio_after": table["variance_ratio_after"].round(2),
        }
    )
    return Table(
        name="attendance_matching_balance",
        caption=(
            "Balance of clients and comparison patients before and after matching: "
            "standardised mean differences (client SD as denominator; |SMD| above 0.1 "
            "signals imbalance) and variance ratios (near 1 is good). Calendar index month "
            "and practice are matched exactly and not listed."
        ),
        frame=frame,
    )


def love_plot(result: AttendanceResult):
    """Absolute standardised mean differences before and after matching (exact ones left out)."""
    table = balance(result)
    _, ax = plt.subplots(figsize=(6, 0.35 * len(table) + 1.2))
    positions = np.arange(len(table))[::-1]
    ax.scatter(
        table["std_mean_diff_before"].abs(),
        positions,
        facecolors="none",
        edgecolors="#555555",
        label="All eligible",
    )
    ax.scatter(table["std_mean_diff_after"].abs(), positions, color="#005eb8", label="Matched")
    ax.axvline(SMD_THRESHOLD, color="#999999", linestyle="--", linewidth=1)
    ax.set_yticks(positions, table["variable"].replace({"distance": "propensity score"}))
    ax.set_xlabel("Absolute standardised mean difference")
    ax.legend(loc="lower right", frameon=False)
    return ax
