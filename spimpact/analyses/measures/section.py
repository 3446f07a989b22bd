"""Report sections on the measures themselves: wellbeing at referral and how tools were used.

Every count goes through :mod:`spimpact.publish.disclosure`; means and medians are shown
only for at least ``min_n_summary`` people. Population figures come from
:data:`spimpact.scoring.SCORES` with their sources.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from spimpact.params import SchemeParams
from spimpact.publish.disclosure import (
    DEFAULT_RULE,
    DisclosureRule,
    disclose_count,
    disclose_percentage,
    disclose_summary,
)
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData, Section, Table
from spimpact.scoring.eq5d import EQ5D_VALUE_SETS
from spimpact.scoring.instruments import INSTRUMENTS
from spimpact.scoring.registry import MAIN_SCORE, SCORES

# Raw scores duplicate the analysis scale shown (SWEMWBS metric, WHO-5 percentage).
_NOT_SHOWN = ("swemwbs_raw", "who5_raw")
_POOR_BAND_TEXT = {
    "ons4_life_satisfaction": "low (0–4)",
    "ons4_worthwhile": "low (0–4)",
    "ons4_happiness": "low (0–4)",
    "ons4_anxiety": "high anxiety (6–10)",
    "who5_pct": "poor wellbeing (50 or less)",
    "ucla3_total": "lonely (6–9)",
    "ons_loneliness": "lonely often or always",
}
_ONS_2023 = "ONS, UK, April 2022 to March 2023"
# Share of UK adults in the poor band (SPEC §1.3; happiness and anxiety SECONDARY).
_NATIONAL_POOR_PERCENT = {"ons4_happiness": 8.9, "ons4_anxiety": 23.4}
_SEX_GROUPS = {"men": "male", "women": "female"}


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
    value_set = getattr(scores, "eq5d_value_set", None)
    frame = getattr(scores, "scores", scores)
    rule = params.disclosure.rule() if params is not None else DEFAULT_RULE
    value_set = value_set or (params.measures.eq5d_value_set if params else "dsu_5l_to_3l")
    baseline = frame[frame["timepoint"] == 0]
    if baseline.empty:
        raise InsufficientData(
            "No wellbeing questionnaire was scored at referral, so wellbeing at referral "
            "cannot be described."
        )
    sex = _client_sex(clients)
    means = _baseline_means(baseline, sex, rule)
    poor = _poor_bands(baseline, rule)
    completeness = _completeness(frame, clients, params, rule)
    figure = _baseline_figure(baseline, rule)
    text = _referral_text(baseline, poor, value_set, non_standard, rule, params)
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
        headline=_headline(baseline, params, rule),
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
    rule = params.disclosure.rule() if params is not None else DEFAULT_RULE
    variants = dict(params.measures.variants) if params is not None else {}
    issues = (
        non_standard
        if non_standard is not None
        else pd.DataFrame(columns=["measure", "issue", "n_rows", "detail"])
    )
    reasons = _exclusion_reasons(exclusions, rule)
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
        records = _records_text(row.n_rows, rule)
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
        n_records = _records_text(_n_exclusions(exclusions), rule)
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
                "Records": disclose_count(issues["n_rows"].to_numpy(), rule).to_numpy(),
                "Examples": issues["detail"].to_numpy(),
            }
        )
        tables.append(Table("measure_quality", "Non-standard use of outcome measures", quality))
    if len(reasons):
        tables.append(
            Table("measure_exclusions", "Questionnaire records not scored, by reason", reasons)
        )
    return Section(title="Use of outcome measures", text=tuple(text), tables=tuple(tables))


def _client_sex(clients: pd.DataFrame | None) -> pd.Series:
    if clients is None or "sex" not in clients.columns or "client_id" not in clients.columns:
        return pd.Series(dtype=object)
    return clients.drop_duplicates("client_id").set_index("client_id")["sex"].astype(str)


def _shown_scores(frame: pd.DataFrame) -> list[str]:
    present = set(frame["score"])
    return [name for name in SCORES if name in present and name not in _NOT_SHOWN]


def _baseline_means(baseline: pd.DataFrame, sex: pd.Series, rule: DisclosureRule) -> pd.DataFrame:
    rows = []
    for name in _shown_scores(baseline):
        info = SCORES[name]
        if info.ordinal:
            continue
        values = baseline.loc[baseline["score"] == name, ["client_id", "value"]]
        overall = [n for n in info.norms if n.group not in _SEX_GROUPS]
        groups = [("all", overall[0] if overall else None, values["value"])]
        if len(sex):
            client_sex = values["client_id"].map(sex)
            groups += [
                (n.group, n, values.loc[(client_sex == _SEX_GROUPS[n.group]).to_numpy(), "value"])
                for n in info.norms
                if n.group in _SEX_GROUPS
            ]
        for group, norm, group_values in groups:
            n = len(group_values)
            rows.append(
                {
                    "Measure": info.label + ("" if info.higher_is_better else " (lower is better)"),
                    "Group": group,
                    "People": n,
                    "Mean": disclose_summary(group_values.mean() if n else np.nan, n, rule)[0],
                    "SD": disclose_summary(group_values.std(ddof=1) if n > 1 else np.nan, n, rule)[
                        0
                    ],
                    "Median": disclose_summary(group_values.median() if n else np.nan, n, rule)[0],
                    # Blank, not <NA>: a missing norm is not a suppressed value ("*").
                    "Population mean": norm.mean if norm is not None else "",
                    "Population source": norm.source if norm is not None else "",
                }
            )
    table = pd.DataFrame(rows)
    table["People"] = disclose_count(table["People"].to_numpy(), rule).to_numpy()
    for column in ("Mean", "SD", "Median"):
        table[column] = table[column].astype("Float64")
    return table


def _poor_bands(baseline: pd.DataFrame, rule: DisclosureRule) -> pd.DataFrame:
    rows = []
    for name in _shown_scores(baseline):
        if name not in _POOR_BAND_TEXT:
            continue
        values = baseline[baseline["score"] == name]
        bands = [(_POOR_BAND_TEXT[name], values["poor_band"].fillna(False).astype(bool))]
        if name == "who5_pct":
            bands.append(("likely depression (28 or less)", values["band"] == "likely depression"))
        for text, in_band in bands:
            rows.append(
                {
                    "Measure": SCORES[name].label,
                    "Band": text,
                    "n_baseline": len(values),
                    "n_band": int(in_band.sum()),
                    # Blank where ONS publishes no national share (not a suppressed "*").
                    "UK percent": _NATIONAL_POOR_PERCENT.get(name, "")
                    if "likely" not in text
                    else "",
                }
            )
    if not rows:
        return pd.DataFrame()
    raw = pd.DataFrame(rows)
    return pd.DataFrame(
        {
            "Measure": raw["Measure"],
            "Band": raw["Band"],
            "People": disclose_count(raw["n_baseline"].to_numpy(), rule).to_numpy(),
            "In band": disclose_count(raw["n_band"].to_numpy(), rule).to_numpy(),
            "Percent": disclose_percentage(
                raw["n_band"].to_numpy(), raw["n_baseline"].to_numpy(), rule
            ).to_numpy(),
            "UK percent": raw["UK percent"].astype(object),
        }
    )


def _completeness(frame, clients, params, rule: DisclosureRule) -> pd.DataFrame:
    labels = dict(params.measures.timepoints) if params is not None else {0: "Baseline"}
    n_clients = clients["client_id"].nunique() if clients is not None else np.nan
    rows = []
    for measure in [m for m in INSTRUMENTS if m in set(frame["measure"])]:
        of_measure = frame[frame["measure"] == measure]
        for timepoint in sorted(of_measure["timepoint"].unique()):
            n = of_measure.loc[of_measure["timepoint"] == timepoint, "client_id"].nunique()
            rows.append(
                {
                    "Measure": INSTRUMENTS[measure].label,
                    "Time point": labels.get(int(timepoint), f"Time point {int(timepoint)}"),
                    "n": n,
                }
            )
    raw = pd.DataFrame(rows)
    out = raw[["Measure", "Time point"]].copy()
    out["People"] = disclose_count(raw["n"].to_numpy(), rule).to_numpy()
    if np.isfinite(n_clients):
        out["Percent of clients"] = disclose_percentage(
            raw["n"].to_numpy(), np.full(len(raw), n_clients), rule
        ).to_numpy()
    return out


def _baseline_figure(baseline: pd.DataFrame, rule: DisclosureRule) -> Figure | None:
    """Small multiples of the baseline distributions with the population average marked.

    Bars are disclosure-controlled counts (rounded to 5; bars for 1–7 people not drawn).
    """
    names = [
        name
        for name in _shown_scores(baseline)
        if (baseline["score"] == name).sum() >= rule.min_n_summary
    ]
    if not names:
        return None
    n_columns = min(3, len(names))
    n_rows = int(np.ceil(len(names) / n_columns))
    figure = Figure(figsize=(4 * n_columns, 2.8 * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        info = SCORES[name]
        values = baseline.loc[baseline["score"] == name, "value"].to_numpy(dtype=float)
        edges = _bin_edges(info.minimum, info.maximum, values)
        counts, _ = np.histogram(values, bins=edges)
        safe = disclose_count(counts, rule).astype("Float64").fillna(0).to_numpy(dtype=float)
        ax.bar(
            edges[:-1], safe, width=np.diff(edges), align="edge", color="#005eb8", edgecolor="white"
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
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    figure.suptitle("Scores at referral; dashed line: population average", fontsize=10)
    return figure


def _bin_edges(minimum: float, maximum: float, values: np.ndarray) -> np.ndarray:
    whole = np.all(np.mod(values, 1) == 0)
    if whole and maximum - minimum <= 10:
        return np.arange(minimum - 0.5, maximum + 1.5, 1.0)
    return np.linspace(minimum, maximum, 15)


def _referral_text(baseline, poor, value_set, non_standard, rule, params) -> list[str]:
    people = disclose_count([baseline["client_id"].nunique()], rule).iloc[0]
    measures = [INSTRUMENTS[m].label for m in INSTRUMENTS if m in set(baseline["measure"])]
    people_text = "fewer than 8" if pd.isna(people) else f"about {people}"
    text = [
        f"At referral, {people_text} people completed at least one wellbeing questionnaire "
        f"({', '.join(measures)}). Counts are rounded to the nearest 5 and averages are shown "
        "only for groups of 8 or more people."
    ]
    primary = MAIN_SCORE.get(params.measures.primary if params else "swemwbs")
    values = baseline.loc[baseline["score"] == primary, "value"]
    mean = disclose_summary(values.mean() if len(values) else np.nan, len(values), rule)[0]
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
    if "eq5d5l_index" in set(baseline["score"]):
        text.append(f"EQ-5D index values use the {EQ5D_VALUE_SETS[value_set]}.")
    if non_standard is not None and len(non_standard):
        text.append(
            "Some questionnaires were recorded in a non-standard way; they are described in "
            "'Use of outcome measures' and were not scored unless the scheme's settings map them."
        )
    return text


def _headline(baseline: pd.DataFrame, params, rule: DisclosureRule) -> pd.DataFrame | None:
    primary = MAIN_SCORE.get(params.measures.primary if params else "swemwbs")
    values = baseline.loc[baseline["score"] == primary, "value"].to_numpy(dtype=float)
    n = len(values)
    if primary is None or n < max(rule.min_n_summary, 2):
        return None
    conf_level = params.conf_level if params is not None else 0.95
    mean = float(values.mean())
    std_error = float(values.std(ddof=1) / np.sqrt(n))
    half_width = stats.t.ppf(0.5 + conf_level / 2, n - 1) * std_error
    info = SCORES[primary]
    norms = ", ".join(f"{norm.group} {norm.mean:g}" for norm in info.norms)
    row = {
        "outcome_level": "person",
        "outcome": f"{info.label} at referral (mean)",
        "measure": primary,
        "estimate": mean,
        "std_error": std_error,
        "conf_low": mean - half_width,
        "conf_high": mean + half_width,
        "n": disclose_count([n], rule).iloc[0],
        "method": "mean at referral, t interval"
        + (f"; population average {norms}" if norms else ""),
    }
    return pd.DataFrame([row], columns=list(HEADLINE_COLUMNS))


def _records_text(n_rows: int, rule: DisclosureRule) -> str:
    safe = disclose_count([n_rows], rule).iloc[0]
    if pd.isna(safe):
        return f"fewer than {rule.threshold + 1} records"
    return f"about {safe} records"


_REASON_GROUPS = (
    (
        "EQ-5D index not computed",
        "EQ-5D index not computed (the NICE DSU mapping needs an "
        "adult age and sex recorded as male or female)",
    ),
    ("unknown measure", "not a questionnaire spimpact scores"),
    ("is not a whole number", "an answer that is not a whole number"),
    ("filled but", "more items than the questionnaire has"),
    ("outside the declared variant", "an answer outside the declared modified scale"),
    ("is outside", "an answer outside the questionnaire's coding"),
    ("missing", "required items missing"),
    ("item answered", "no item answered"),
)


def _exclusion_reasons(exclusions: pd.DataFrame | None, rule: DisclosureRule) -> pd.DataFrame:
    if exclusions is None or exclusions.empty:
        return pd.DataFrame()
    if "table" in exclusions.columns:
        exclusions = exclusions[exclusions["table"] == "measures"]
    reasons = exclusions["reason"].astype(str).map(_reason_group)
    counts = reasons.value_counts().sort_index()
    if counts.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {"Reason": counts.index, "Records": disclose_count(counts.to_numpy(), rule).to_numpy()}
    )


def _n_exclusions(exclusions: pd.DataFrame) -> int:
    if "table" in exclusions.columns:
        exclusions = exclusions[exclusions["table"] == "measures"]
    return len(exclusions)


def _reason_group(reason: str) -> str:
    for fragment, group in _REASON_GROUPS:
        if fragment in reason:
            return group
    return "other"
