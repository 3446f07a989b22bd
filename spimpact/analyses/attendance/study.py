"""The simulation study of GP-attendance designs: one replicate, and the summary table.

:func:`run_replicate` simulates one data set of a scenario
(:mod:`spimpact.synthetic.attendance_scenarios`) and fits the primary design, and
optionally the placebo, the sensitivity designs and the washout check, exactly as the
report does (the same :mod:`~spimpact.analyses.attendance.design` definitions, matching,
weights and standard errors), each against the truth of its own months.
:func:`summarise_study` turns replicates into bias, standard deviation and coverage per
scenario and design. ``benchmarks/bench_attendance_designs.py`` runs the full study; the
slow tests run a smaller one.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from spimpact.analyses.attendance.checks import check_washout, fit_design_event_study
from spimpact.analyses.attendance.design import (
    Design,
    placebo_design,
    primary_design,
    sensitivity_designs,
    study_designs,
)
from spimpact.analyses.attendance.estimate import fit_design
from spimpact.analyses.attendance.matched_sets import match_comparisons, stack_comparisons
from spimpact.params import ComparisonParams
from spimpact.publish.section import InsufficientData
from spimpact.synthetic.attendance_scenarios import (
    AttendanceScenario,
    simulate_attendance_scenario,
)

OUTCOME = "n_clinical"
RESULT_COLUMNS = (
    "scenario",
    "replicate",
    "design",
    "estimate",
    "std_error",
    "conf_low",
    "conf_high",
    "truth",
    "n_clients",
    "washout_check_passed",
)
#: Tolerances of the primary design in the study (the issue's "done when"): bias under
#: 10% of the effect, or under 0.005 appointments per person-month without an effect,
#: and 95% interval coverage between 93% and 97%.
RELATIVE_BIAS_TOLERANCE = 0.10
NULL_BIAS_TOLERANCE = 0.005
COVERAGE_RANGE = (0.93, 0.97)


def run_replicate(
    scenario: AttendanceScenario,
    replicate: int,
    *,
    seed: int = 20261201,
    comparison: ComparisonParams | None = None,
    alternatives: bool = False,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Simulate one data set and fit the designs; one row per design (``RESULT_COLUMNS``).

    Parameters
    ----------
    scenario
        The data-generating process.
    replicate
        Number of the replicate.
    seed
        Seed of the study; with the scenario's name and ``replicate`` it seeds the
        simulation and the wild bootstrap, so every replicate can be rerun alone.
    comparison
        The params ``comparison`` block (defaults: the project's defaults).
    alternatives
        Also fit the placebo and the sensitivity designs, and run the washout check.
    conf_level
        Level of the intervals.

    Returns
    -------
    pandas.DataFrame
        ``truth`` is each design's own estimand on the clients it analysed: the average
        effect over its post-period months (the rate ratio for the Poisson design), and
        0 for the placebo.
    """
    comparison = ComparisonParams() if comparison is None else comparison
    sequence = np.random.SeedSequence([seed, replicate, zlib.crc32(scenario.name.encode())])
    data = simulate_attendance_scenario(scenario, np.random.default_rng(sequence))
    bootstrap_seed = int(sequence.generate_state(1)[0])
    primary = primary_design(comparison)
    designs: list[Design] = [primary]
    if alternatives:
        designs += [
            placebo_design(comparison),
            *sensitivity_designs(comparison),
            *study_designs(comparison),
        ]
    samples: dict = {}
    rows = []
    for design in designs:
        row = {"scenario": scenario.name, "design": design.name}
        try:
            key = (
                design.history,
                design.propensity_matching,
                design.match_index_month,
                design.name == "placebo",
            )
            if key not in samples:
                samples[key] = (
                    match_comparisons(
                        data.people, data.panel, design, comparison, outcome=OUTCOME, min_clients=8
                    )
                    if design.propensity_matching
                    else stack_comparisons(data.people, data.panel, design, min_clients=8)
                )
            fit, inference, frame = fit_design(
                data.panel,
                samples[key],
                design,
                outcome=OUTCOME,
                comparison=comparison,
                conf_level=conf_level,
                seed=bootstrap_seed,
            )
        except (InsufficientData, ValueError, np.linalg.LinAlgError):
            rows.append({**row, "estimate": np.nan})
            continue
        clients = frame.loc[frame["treated"] == 1, "patient_id"].unique()
        truth = data.true_effect(design.post, clients=clients)
        if design.model == "poisson":
            tidy = fit.tidy(exponentiate=True).set_index("term").loc["treated_post"]
            value = truth["rate_ratio"]
        else:
            tidy = fit.tidy().set_index("term").loc[fit.att_term]
            value = 0.0 if design.name == "placebo" else truth["att"]
        row |= {
            "estimate": tidy["estimate"],
            "std_error": tidy["std_error"],
            "conf_low": tidy["conf_low"],
            "conf_high": tidy["conf_high"],
            "truth": value,
            "n_clients": len(clients),
        }
        if alternatives and design is primary:
            study = fit_design_event_study(
                data.panel,
                frame,
                design,
                outcome=OUTCOME,
                window=comparison.window_months,
                inference=inference,
                conf_level=conf_level,
            )
            row["washout_check_passed"] = check_washout(study, design, conf_level=conf_level).passed
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
    table["replicate"] = replicate
    return table


def summarise_study(results: pd.DataFrame) -> pd.DataFrame:
    """Bias, spread and coverage per scenario and design.

    Returns one row per scenario and design: ``n_replicates``, ``truth`` (mean),
    ``bias`` (mean of estimate minus truth), ``relative_bias`` (bias over the mean
    truth, when the truth is an effect: not for null effects or rate ratios),
    ``mc_se_bias`` (Monte Carlo standard error of the bias), ``sd_estimate``,
    ``mean_std_error``, ``coverage`` (share of intervals containing the truth),
    ``mc_se_coverage`` and ``washout_check_flagged`` (share of replicates whose washout
    check failed, where it was run).
    """
    results = results.dropna(subset=["estimate"]).copy()
    results["error"] = results["estimate"] - results["truth"]
    results["covered"] = (results["conf_low"] <= results["truth"]) & (
        results["truth"] <= results["conf_high"]
    )
    grouped = results.groupby(["scenario", "design"], sort=False)
    table = grouped.agg(
        n_replicates=("error", "size"),
        truth=("truth", "mean"),
        bias=("error", "mean"),
        sd_error=("error", "std"),
        sd_estimate=("estimate", "std"),
        mean_std_error=("std_error", "mean"),
        coverage=("covered", "mean"),
    ).reset_index()
    table["mc_se_bias"] = table["sd_error"] / np.sqrt(table["n_replicates"])
    table["mc_se_coverage"] = np.sqrt(
        table["coverage"] * (1 - table["coverage"]) / table["n_replicates"]
    )
    is_effect = (table["truth"].abs() > 1e-9) & (table["design"] != "poisson")
    table["relative_bias"] = np.where(is_effect, table["bias"] / table["truth"].abs(), np.nan)
    flagged = results.dropna(subset=["washout_check_passed"])
    share = 1 - flagged.groupby(["scenario", "design"])["washout_check_passed"].mean()
    table["washout_check_flagged"] = [
        share.get((s, d), np.nan) for s, d in zip(table["scenario"], table["design"], strict=True)
    ]
    return table.drop(columns="sd_error")


def primary_passes(row: pd.Series) -> bool:
    """Whether a summary row of the primary design meets the study's tolerances."""
    if np.isfinite(row["relative_bias"]):
        bias_ok = abs(row["relative_bias"]) < RELATIVE_BIAS_TOLERANCE
    else:
        bias_ok = abs(row["bias"]) < NULL_BIAS_TOLERANCE
    low, high = COVERAGE_RANGE
    return bool(bias_ok and low <= row["coverage"] <= high)
