"""Report sections on the measures themselves: wellbeing at referral and how tools were used.

Turns the results of ``spimpact.analyses.measures.analysis`` into words, tables (with
the column names readers see) and figures. Population figures come from
:data:`spimpact.scoring.SCORES` with their sources.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spimpact.analyses.measures.analysis import (
    BaselineDistribution,
    MeasureQualityResult,
    WellbeingAtReferralResult,
    analyse_measure_quality,
    analyse_wellbeing_at_referral,
)
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import DEFAULT_RULE
from spimpact.publish.section import HEADLINE_COLUMNS, Section, Table
from spimpact.scoring.eq5d import EQ5D_VALUE_SETS
from spimpact.scoring.instruments import INSTRUMENTS
from spimpact.scoring.registry import SCORES

_MEANS_COLUMNS = {
    "score": "Measure",
    "group": "Group",
    "n_people": "People",
    "mean": "Mean",
    "sd": "SD",
    "median": "Median",
    "population_mean": "Population mean",
    "population_source": "Population source",
}
_POOR_BAND_COLUMNS = {
    "score": "Measure",
    "band": "Band",
    "n_people": "People",
    "n_in_band": "In band",
    "percent": "Percent",
    "uk_percent": "UK percent",
}
_COMPLETENESS_COLUMNS = {
    "measure": "Measure",
    "timepoint": "Time point",
    "n_people": "People",
    "percent_of_clients": "Percent of clients",
}


def wellbeing_at_referral_section(
    scores,
    clients: pd.DataFrame | None,
    *,
    non_standard: pd.DataFrame | None = None,
    params: SchemeParams | None = None,
) -> Section:
    """Build "Wellbeing at referral": baseline scores against population norms.

    Parameters
    ----------
    scores
        ``score_measures(...)`` result or its ``.scores`` frame.
    clients
        The scheme's clients (``client_id``, ``sex``): denominators for completeness and
        the sex split for sex-specific norms.
    non_standard
        ``validate_items(...).non_standard``; when not empty the text points to the
        section on the use of outcome measures.
    params
        Scheme params (disclosure rule, time point labels, EQ-5D value set, primary
        measure, confidence level).

    Returns
    -------
    Section
        Tables ``wellbeing_at_referral`` (means against norms), ``wellbeing_poor_bands``
        and ``measure_completeness``, a figure of baseline distributions, and one headline
        row for the primary measure.

    Raises
    ------
    InsufficientData
        When no questionnaire was scored at referral.

    Notes
    -----
    Norms: SWEMWBS, Health Survey for England 2010–13 (Ng Fat et al. 2017); WEMWBS, HSE
    2016; ONS4, ONS 2022/23 (SPEC §1). Counts follow the disclosure rule of SPEC §3.2.
    """
    result = analyse_wellbeing_at_referral(scores, clients, params=params)
    means = result.means.rename(columns=_MEANS_COLUMNS)
    means["Measure"] = [
        SCORES[name].label + ("" if SCORES[name].higher_is_better else " (lower is better)")
        for name in result.means["score"]
    ]
    poor = result.poor_bands
    if len(poor):
        poor = poor.rename(columns=_POOR_BAND_COLUMNS)
        poor["Measure"] = [SCORES[name].label for name in result.poor_bands["score"]]
    labels = dict(params.measures.timepoints) if params is not None else {0: "Baseline"}
    completeness = result.completeness.rename(columns=_COMPLETENESS_COLUMNS)
    completeness["Measure"] = [INSTRUMENTS[m].label for m in result.completeness["measure"]]
    completeness["Time point"] = [
        labels.get(t, f"Time point {t}") for t in result.completeness["timepoint"]
    ]
    figure = _baseline_figure(result.distributions)
    text = _referral_text(result, poor, non_standard)
    tables = [
        Table(
            "wellbeing_at_referral",
            "Scores at referral against population averages (higher is better unless "
            "stated; means only for 8 or more people)",
            means,
        ),
        Table(
            "measure_completeness",
            "People with a scored questionnaire at each time point",
            completeness,
        ),
    ]
    if len(poor):
        tables.insert(
            1, Table("wellbeing_poor_bands", "People in the poor wellbeing band at referral", poor)
        )
    return Section(
        title="Wellbeing at referral",
        text=tuple(text),
        tables=tuple(tables),
        figures=(figure,) if figure is not None else (),
        headline=_headline(result),
        notes=(
            "Population averages come from general population surveys; people referred to "
            "social prescribing differ from the population in age, health and deprivation, "
            "so the comparison describes need, it does not measure an effect.",
        ),
    )


def measure_quality_section(
    non_standard: pd.DataFrame | None,
    exclusions: pd.DataFrame | None,
    *,
    params: SchemeParams | None = None,
) -> Section:
    """Build "Use of outcome measures": modified or incomplete questionnaires, in plain words.

    Parameters
    ----------
    non_standard
        ``validate_items(...).non_standard`` (``measure, issue, n_rows, detail``).
    exclusions
        Rows that could not be scored (``row, column, value, reason``), e.g.
        ``score_measures(...).exclusions``; a ``table`` column, if present, restricts
        them to the measures table. Only counts by reason are published.
    params
        Scheme params: disclosure rule and the declared scale variants.

    Returns
    -------
    Section
        Text per measure, table ``measure_quality`` (problem, records, examples) and
        ``measure_exclusions`` (records not scored, by reason).

    Notes
    -----
    Staff adapting standard tools (e.g. a 0–10 version of a 1–5 scale) was reported by
    Wobi et al. (2025); such answers are excluded, never clipped, unless params map them.
    """
    result: MeasureQualityResult = analyse_measure_quality(non_standard, exclusions, params=params)
    rule = params.disclosure.rule() if params is not None else DEFAULT_RULE
    variants = dict(params.measures.variants) if params is not None else {}
    issues = result.issues
    reasons = result.exclusion_reasons.rename(columns={"reason": "Reason", "n_records": "Records"})
    text = []
    for name, variant in sorted(variants.items()):
        instrument = INSTRUMENTS[name]
        text.append(
            f"The scheme records {instrument.label} on a {variant.observed_min}–"
            f"{variant.observed_max} scale instead of the standard {instrument.coding} "
            f"(reason given: {variant.reason}). As the scheme's settings declare, those answers "
            f"were mapped in proportion onto {instrument.coding} and rounded to whole answers; "
            "results that use them are marked non-standard and are not directly comparable "
            "with published norms."
        )
    for row in issues.itertuples(index=False):
        label = INSTRUMENTS[row.measure].label if row.measure in INSTRUMENTS else row.measure
        records = _records_text(row.n_rows_published, rule.threshold)
        sentence = f"**{label}**: {row.issue}, in {records}."
        if "mapped to the standard" not in row.issue:
            sentence += " These records were not scored; no answer was changed or clipped."
        text.append(sentence)
    if issues["issue"].astype(str).str.contains("scale where").any():
        text.append(
            "Answers recorded on a modified scale that happen to fall inside the standard range "
            "cannot be told apart from standard answers, so the counts above are a lower bound. "
            "If the scheme used a modified form, say so in its params (measures.variants) so "
            "that it is mapped openly, or return to the standard form."
        )
    if len(reasons):
        n_records = _records_text(result.n_excluded_published, rule.threshold)
        text.append(
            f"In all, {n_records} could not be scored in full; the table gives the reasons. "
            "Where only the EQ-5D index is missing, EQ-VAS was still scored. An EQ-5D index can "
            "be computed for everyone by choosing a value set that does not depend on age and "
            "sex (params measures.eq5d_value_set), at the cost of departing from the NICE "
            "reference case."
            if reasons["Reason"].str.startswith("EQ-5D").any()
            else f"In all, {n_records} could not be scored; the table gives the reasons."
        )
    if not text and reasons.empty:
        text.append(
            "Every questionnaire answer was within its instrument's standard coding and had the "
            "expected number of items, so no questionnaire was set aside or adjusted because of "
            "how the instrument was used."
        )
    tables = []
    if len(issues):
        quality = pd.DataFrame(
            {
                "Measure": [
                    INSTRUMENTS[m].label if m in INSTRUMENTS else m for m in issues["measure"]
                ],
                "Problem": issues["issue"].to_numpy(),
                "Records": issues["n_rows_published"].to_numpy(),
                "Examples": issues["detail"].to_numpy(),
            }
        )
        tables.append(Table("measure_quality", "Non-standard use of outcome measures", quality))
    if len(reasons):
        tables.append(
            Table("measure_exclusions", "Questionnaire records not scored, by reason", reasons)
        )
    return Section(title="Use of outcome measures", text=tuple(text), tables=tuple(tables))


def _baseline_figure(distributions: tuple[BaselineDistribution, ...]) -> Figure | None:
    """Small multiples of the baseline distributions with the population average marked.

    Bars are disclosure-controlled counts (rounded to 5; bars for 1–7 people not drawn).
    """
    if not distributions:
        return None
    n_columns = min(3, len(distributions))
    n_rows = int(np.ceil(len(distributions) / n_columns))
    figure = Figure(figsize=(4 * n_columns, 2.8 * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    for ax, distribution in zip(axes, distributions, strict=False):
        info = SCORES[distribution.score]
        edges = distribution.edges
        ax.bar(
            edges[:-1],
            distribution.counts,
            width=np.diff(edges),
            align="edge",
            color="#005eb8",
            edgecolor="white",
        )
        for norm in info.norms:
            ax.axvline(norm.mean, color="#d5281b", linestyle="--", linewidth=1)
            ax.annotate(
                norm.group,
                (norm.mean, ax.get_ylim()[1] * 0.95),
                fontsize=7,
                color="#d5281b",
                rotation=90,
                va="top",
                ha="right",
            )
        ax.set_title(info.label, fontsize=9)
        if info.ordinal:
            ax.set_xlabel("1 = often/always … 5 = never", fontsize=8)
        else:
            worse = "" if info.higher_is_better else " (lower is better)"
            ax.set_xlabel("score at referral" + worse, fontsize=8)
        ax.set_ylabel("people (rounded to 5)", fontsize=8)
    for ax in axes[len(distributions) :]:
        ax.set_visible(False)
    figure.suptitle("Scores at referral; dashed line: population average", fontsize=10)
    return figure


def _referral_text(
    result: WellbeingAtReferralResult, poor: pd.DataFrame, non_standard: pd.DataFrame | None
) -> list[str]:
    people = result.n_people_published
    measures = [INSTRUMENTS[m].label for m in result.measures]
    people_text = "fewer than 8" if pd.isna(people) else f"about {people}"
    text = [
        f"At referral, {people_text} people completed at least one wellbeing questionnaire "
        f"({', '.join(measures)}). Counts are rounded to the nearest 5 and averages are shown "
        "only for groups of 8 or more people."
    ]
    primary = result.primary_score
    mean = result.primary_mean_published
    if pd.notna(mean) and not SCORES[primary].ordinal:
        info = SCORES[primary]
        decimals = 3 if info.maximum - info.minimum <= 2 else 1
        sentence = f"The average {info.label} at referral was {mean:.{decimals}f}"
        if info.norms:
            norms = "; ".join(f"{n.mean:g} for {n.group}" for n in info.norms)
            sentence += f", against population averages of {norms} ({info.norms[0].source})"
        text.append(sentence + ".")
    if len(poor):
        shares = [
            f"{r.Percent:g}% {r.Band} on {r.Measure}"
            for r in poor.itertuples(index=False)
            if pd.notna(r.Percent)
        ]
        if shares:
            text.append("At referral: " + "; ".join(shares) + ".")
    if result.has_eq5d_index:
        text.append(f"EQ-5D index values use the {EQ5D_VALUE_SETS[result.eq5d_value_set]}.")
    if non_standard is not None and len(non_standard):
        text.append(
            "Some questionnaires were recorded in a non-standard way; they are described in "
            "'Use of outcome measures' and were not scored unless the scheme's settings map them."
        )
    return text


def _headline(result: WellbeingAtReferralResult) -> pd.DataFrame | None:
    fit = result.primary_mean
    if fit is None:
        return None
    interval = fit.tidy().iloc[0]
    info = SCORES[result.primary_score]
    norms = ", ".join(f"{norm.group} {norm.mean:g}" for norm in info.norms)
    row = {
        "outcome_level": "person",
        "outcome": f"{info.label} at referral (mean)",
        "measure": result.primary_score,
        "estimate": fit.estimate,
        "std_error": fit.std_error,
        "conf_low": interval["conf_low"],
        "conf_high": interval["conf_high"],
        "n": result.n_primary_published,
        "method": "mean at referral, t interval"
        + (f"; population average {norms}" if norms else ""),
    }
    return pd.DataFrame([row], columns=list(HEADLINE_COLUMNS))


def _records_text(n_published, threshold: int) -> str:
    if pd.isna(n_published):
        return f"fewer than {threshold + 1} records"
    return f"about {n_published} records"
