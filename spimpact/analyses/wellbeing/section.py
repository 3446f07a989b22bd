"""The wellbeing change section: tables, figures, text and headline rows.

Turns :class:`~spimpact.analyses.wellbeing.analysis.WellbeingResult` for every
scored measure into a disclosure-controlled
:class:`~spimpact.publish.section.Section`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spimpact.analyses.wellbeing.analysis import ANALYSED_SCORES, SUBGROUPS, analyse_wellbeing
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import disclose_count, disclose_percentage, disclose_summary
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData, Section, Table
from spimpact.scoring import SCORES

METHOD = (
    "Mixed model for repeated measures (unstructured covariance where the data support "
    "it; REML; t interval on small-sample degrees of freedom)"
)
DF_LABELS = {
    "kenward_roger": "Kenward-Roger",
    "satterthwaite": "Satterthwaite",
    "residual": "residual",
}
COVARIANCE_LABELS = {
    "us": "unstructured",
    "toeph": "heterogeneous Toeplitz",
    "toep": "Toeplitz",
    "ar1h": "heterogeneous first-order autoregressive",
    "ar1": "first-order autoregressive",
    "csh": "heterogeneous compound symmetry",
    "cs": "compound symmetry",
}


def wellbeing_section(scores: pd.DataFrame, clients: pd.DataFrame, *, params: SchemeParams):
    """Build the report section on wellbeing change for every scored measure.

    Parameters
    ----------
    scores
        Long scores from ``spimpact.scoring.score_measures(...).scores``.
    clients
        ``SchemeData.clients``.
    params
        Scheme parameters; ``params.measures.primary`` names the measure reported first
        and in the headline figure.

    Returns
    -------
    spimpact.publish.section.Section
        Disclosure-controlled tables, figures (trajectory, binned individual change,
        subgroup forest plot), commissioner text and headline rows.

    Raises
    ------
    InsufficientData
        When no scored measure has enough people with a baseline and a follow-up.
    """
    rule = params.disclosure.rule()
    labels = {int(k): v for k, v in params.measures.timepoints.items()}
    results, skipped = [], []
    for measure in _measure_order(scores, params.measures.primary):
        for score in ANALYSED_SCORES[measure]:
            if not (scores["score"] == score).any():
                continue
            try:
                results.append(analyse_wellbeing(scores, clients, score=score, params=params))
            except InsufficientData as reason:
                skipped.append(str(reason))
    if not results:
        raise InsufficientData(
            "Wellbeing change could not be estimated: "
            + (" ".join(skipped) if skipped else "no wellbeing scores were recorded.")
        )
    primary = results[0]
    tables = (
        Table("wellbeing_change", _change_caption(params), _change_table(results, labels, rule)),
        Table(
            "wellbeing_model_sensitivity",
            "Change from baseline by model: the headline mixed model for repeated measures "
            "(its own variance at each time point and correlation between time points) "
            "beside the random-intercept model (equal variances and correlations, normal "
            "intervals), which is biased when variances differ and follow-ups are missing "
            "because of earlier scores.",
            _sensitivity_table(results, labels, rule),
        ),
        Table(
            "wellbeing_change_categories",
            "People with meaningful or reliable improvement or deterioration (complete cases); "
            "counts rounded to 5, 1-7 suppressed (*).",
            _category_table(results, labels, rule),
        ),
        Table(
            "wellbeing_subgroups",
            "Change from baseline by subgroup (mixed model with a time x subgroup "
            "interaction) and the joint likelihood-ratio test that change is the same in "
            "every group.",
            _subgroup_table(results, labels, rule),
        ),
        Table(
            "wellbeing_models",
            "Technical table: time terms and variance components of each mixed model "
            "(other covariate coefficients omitted).",
            _technical_table(results, rule),
        ),
    )
    figures = tuple(
        figure
        for figure in (
            _trajectory_figure(results, labels, rule, params.conf_level),
            _change_distribution_figure(primary, labels, rule),
            _forest_figure(primary, labels, rule),
        )
        if figure is not None
    )
    ordinal = [
        SCORES[name].label
        for name in sorted(set(scores["score"]))
        if name in SCORES and SCORES[name].ordinal
    ]
    skipped += [
        f"{label} is a single ordinal question, so its change is not modelled as a "
        "continuous score here." for label in ordinal
    ]  # fmt: skip
    notes = tuple(skipped) + tuple(
        f"{result.label}: {text}" for result in results for text in result.diagnostics
    )
    return Section(
        title="Wellbeing change",
        text=tuple(_commissioner_text(results, labels, rule, params.conf_level)),
        tables=tables,
        figures=figures,
        headline=_headline(results, labels, rule),
        notes=notes,
    )


def _measure_order(scores: pd.DataFrame, primary: str) -> list[str]:
    present = [m for m in ANALYSED_SCORES if scores["score"].isin(ANALYSED_SCORES[m]).any()]
    return sorted(present, key=lambda m: (m != primary, list(ANALYSED_SCORES).index(m)))


def _label(labels: dict, timepoint: int) -> str:
    return labels.get(int(timepoint), f"follow-up {timepoint}")


def _change_caption(params: SchemeParams) -> str:
    level = round(params.conf_level * 100)
    return (
        f"Change from baseline with {level}% confidence intervals: mixed model for repeated "
        "measures using every score (primary; t interval on model_df degrees of freedom) "
        "beside paired change in people with both scores, standardised "
        "effect sizes, the change regression to the mean alone would produce, and the "
        "smallest change this sample could detect. Counts rounded to 5; means shown only "
        f"for {params.disclosure.min_n_summary}+ people."
    )


def _change_table(results, labels, rule) -> pd.DataFrame:
    rows = []
    for result in results:
        paired = result.paired.set_index("timepoint")
        rtm = result.regression_to_mean.set_index("timepoint")
        n_baseline = int(result.counts.set_index("timepoint").n_people.get(0, 0))
        for row in result.change.itertuples():
            pair = paired.loc[row.timepoint]
            rows.append(
                {
                    "score": result.label,
                    "follow_up": _label(labels, row.timepoint),
                    "n_baseline": n_baseline,
                    "n_follow_up": row.n_people,
                    "model_change": row.estimate,
                    "model_conf_low": row.conf_low,
                    "model_conf_high": row.conf_high,
                    "model_df": row.df,
                    "n_pairs": int(pair.n_pairs),
                    "paired_change": pair.mean_change,
                    "paired_conf_low": pair.conf_low,
                    "paired_conf_high": pair.conf_high,
                    "srm": pair.srm,
                    "effect_size": pair.effect_size,
                    "detectable_change": pair.detectable_change,
                    "rtm_expected_change": rtm.loc[row.timepoint, "expected_change"],
                }
            )
    table = pd.DataFrame(rows)
    for column in ("model_change", "model_conf_low", "model_conf_high"):
        table[column] = disclose_summary(table[column], table.n_follow_up, rule).round(2)
    table["model_df"] = disclose_summary(table["model_df"], table.n_follow_up, rule).round(1)
    paired_columns = (
        "paired_change", "paired_conf_low", "paired_conf_high", "srm", "effect_size",
        "detectable_change", "rtm_expected_change",
    )  # fmt: skip
    for column in paired_columns:
        table[column] = disclose_summary(table[column], table.n_pairs, rule).round(2)
    for column in ("n_baseline", "n_follow_up", "n_pairs"):
        table[column] = disclose_count(table[column].to_numpy(), rule).to_numpy()
    return table


def _sensitivity_table(results, labels, rule) -> pd.DataFrame:
    rows = []
    for result in results:
        ri = result.random_intercept_change.set_index("timepoint")
        covariance = _covariance_label(result.model)
        for row in result.change.itertuples():
            common = {
                "score": result.label,
                "follow_up": _label(labels, row.timepoint),
                "n_follow_up": row.n_people,
            }
            rows.append(
                {
                    **common,
                    "model": f"MMRM, {covariance} covariance (headline)",
                    "estimate": row.estimate,
                    "conf_low": row.conf_low,
                    "conf_high": row.conf_high,
                    "df": row.df,
                }
            )
            other = ri.loc[row.timepoint]
            rows.append(
                {
                    **common,
                    "model": "Random intercept per client (sensitivity)",
                    "estimate": other.estimate,
                    "conf_low": other.conf_low,
                    "conf_high": other.conf_high,
                    "df": np.inf,
                }
            )
    table = pd.DataFrame(rows)
    for column in ("estimate", "conf_low", "conf_high"):
        table[column] = disclose_summary(table[column], table.n_follow_up, rule).round(2)
    table["df"] = table["df"].round(1)
    table["n_follow_up"] = disclose_count(table["n_follow_up"].to_numpy(), rule).to_numpy()
    return table


def _category_table(results, labels, rule) -> pd.DataFrame:
    frames = []
    for result in results:
        categories = result.categories
        if categories.empty:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "score": result.label,
                    "follow_up": [_label(labels, t) for t in categories.timepoint],
                    "classification": categories.classification.to_numpy(),
                    "category": categories.category.to_numpy(),
                    "n": disclose_count(categories.n.to_numpy(), rule).to_numpy(),
                    "n_total": disclose_count(categories.n_total.to_numpy(), rule).to_numpy(),
                    "percent": disclose_percentage(
                        categories.n.to_numpy(), categories.n_total.to_numpy(), rule
                    ).to_numpy(),
                }
            )
        )
    columns = ["score", "follow_up", "classification", "category", "n", "n_total", "percent"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _subgroup_table(results, labels, rule) -> pd.DataFrame:
    frames = []
    for result in results:
        subgroups = result.subgroups
        if subgroups.empty:
            continue
        tests = result.subgroup_tests.set_index("subgroup")
        table = pd.DataFrame(
            {
                "score": result.label,
                "subgroup": subgroups.subgroup.map(SUBGROUPS).to_numpy(),
                "group": subgroups.level.to_numpy(),
                "follow_up": [_label(labels, t) for t in subgroups.timepoint],
                "n_people": disclose_count(subgroups.n_people.to_numpy(), rule).to_numpy(),
            }
        )
        for column in ("estimate", "conf_low", "conf_high"):
            table[column] = (
                disclose_summary(subgroups[column], subgroups.n_people, rule).round(2).to_numpy()
            )
        table["joint_test_p_value"] = subgroups.subgroup.map(tests.p_value).round(4).to_numpy()
        frames.append(table)
    columns = [
        "score", "subgroup", "group", "follow_up", "n_people", "estimate", "conf_low",
        "conf_high", "joint_test_p_value",
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _technical_table(results, rule) -> pd.DataFrame:
    frames = []
    for result in results:
        for name, model in (("MMRM", result.model), ("random intercept", result.random_intercept)):
            tidy = model.tidy()
            keep = (tidy.effect == "ran_pars") | tidy.term.str.startswith(
                ("Intercept", "C(timepoint)")
            )
            tidy = tidy[keep].copy()
            tidy.insert(0, "score", result.label)
            covariance = getattr(model, "covariance_type", "random intercept")
            tidy.insert(1, "model", f"{name} ({COVARIANCE_LABELS.get(covariance, covariance)})")
            tidy["n_observations"] = disclose_count(model.n_obs, rule).iloc[0]
            n_clients = getattr(model, "n_subjects", getattr(model, "n_groups", None))
            tidy["n_clients"] = disclose_count(n_clients, rule).iloc[0]
            frames.append(tidy.drop(columns=["df"], errors="ignore"))
    return pd.concat(frames, ignore_index=True)


def _trajectory_figure(results, labels, rule, conf_level) -> Figure:
    n_panels = len(results)
    columns = min(n_panels, 3)
    rows = int(np.ceil(n_panels / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for ax, result in zip(axes.ravel(), results, strict=False):
        trajectory = result.trajectory
        shown = disclose_summary(trajectory.estimate, trajectory.n_people, rule).notna().to_numpy()
        trajectory = trajectory[shown]
        ax.errorbar(
            trajectory.timepoint.to_numpy(),
            trajectory.estimate.to_numpy(),
            yerr=[
                (trajectory.estimate - trajectory.conf_low).to_numpy(),
                (trajectory.conf_high - trajectory.estimate).to_numpy(),
            ],
            fmt="o-",
            capsize=4,
            color="#005eb8",
        )
        ax.set_xticks(
            trajectory.timepoint.to_numpy(), [_label(labels, t) for t in trajectory.timepoint]
        )
        ax.set_title(result.label, fontsize=10)
        direction = "higher is better" if result.higher_is_better else "lower is better"
        ax.set_ylabel(f"mean ({direction})")
    for ax in axes.ravel()[n_panels:]:
        ax.set_visible(False)
    figure.suptitle(f"Mean score by time point (model estimate, {round(conf_level * 100)}% CI)")
    figure.tight_layout()
    return figure


def _change_distribution_figure(result, labels, rule) -> Figure | None:
    improvement = result.individual_improvement
    if improvement.empty:
        return None
    followups = sorted(improvement.timepoint.unique())
    figure, axes = plt.subplots(
        1, len(followups), figsize=(4.5 * len(followups), 3.4), squeeze=False
    )
    values = improvement.improvement.to_numpy()
    # Few, wide bins in small schemes, so that fewer bins fall under the
    # suppression threshold; about 25 people per bin on average, 4 to 15 bins.
    per_followup = len(values) / len(followups)
    edges = np.histogram_bin_edges(values, bins=int(np.clip(per_followup // 25, 4, 15)))
    for ax, t in zip(axes.ravel(), followups, strict=True):
        counts, _ = np.histogram(improvement.loc[improvement.timepoint == t, "improvement"], edges)
        safe = disclose_count(counts, rule)
        shown = safe.fillna(0).to_numpy(dtype=float)
        total = float(shown.sum()) or 1.0
        # Bars are shares of the disclosure-controlled counts; a bin of 1-7 people
        # is shaded and hatched over its whole height, so no small count can be read.
        ax.bar(edges[:-1], 100 * shown / total, width=np.diff(edges), align="edge",
               color="#41b6e6", edgecolor="white")  # fmt: skip
        for left, right, suppressed in zip(edges[:-1], edges[1:], safe.isna(), strict=True):
            if suppressed:
                ax.axvspan(left, right, facecolor="#e8edee", hatch="//", edgecolor="grey")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"Baseline to {_label(labels, t)}", fontsize=10)
        ax.set_xlabel("individual change (positive = better)")
        ax.set_ylabel("% of people (rounded counts)")
    figure.suptitle(f"{result.label}: distribution of individual change (hatched: 1-7 people)")
    figure.tight_layout()
    return figure


def _forest_figure(result, labels, rule) -> Figure | None:
    subgroups = result.subgroups
    if subgroups.empty:
        return None
    last = subgroups.timepoint.max()
    shown = subgroups[subgroups.timepoint == last].copy()
    shown = shown[disclose_summary(shown.estimate, shown.n_people, rule).notna().to_numpy()]
    if shown.empty:
        return None
    overall = result.change.set_index("timepoint").loc[last]
    figure, ax = plt.subplots(figsize=(6.5, 0.35 * len(shown) + 1.8))
    positions = np.arange(len(shown))[::-1]
    ax.errorbar(
        shown.estimate.to_numpy(),
        positions,
        xerr=[
            (shown.estimate - shown.conf_low).to_numpy(),
            (shown.conf_high - shown.estimate).to_numpy(),
        ],
        fmt="s",
        color="#005eb8",
        capsize=3,
    )
    ax.axvline(overall.estimate, color="#005eb8", linestyle=":", label="all clients")
    ax.axvline(0, color="grey", linewidth=0.8)
    names = [
        f"{SUBGROUPS[s]}: {level}" for s, level in zip(shown.subgroup, shown.level, strict=True)
    ]
    ax.set_yticks(positions, names)
    ax.set_xlabel(f"{result.label} change, baseline to {_label(labels, last)} (with CI)")
    ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return figure


def _covariance_label(model) -> str:
    return COVARIANCE_LABELS.get(model.covariance_type, model.covariance_type)


def _format_change(value: float, decimals: int) -> str:
    return f"{value:+.{decimals}f}"


def _commissioner_text(results, labels, rule, conf_level) -> list[str]:
    paragraphs = []
    for result in results:
        change = result.change
        last = change.iloc[-1]
        n_shown = disclose_count(last.n_people, rule).iloc[0]
        if pd.isna(n_shown) or last.n_people < rule.min_n_summary:
            continue
        better = (last.estimate > 0) == result.higher_is_better
        significant = not (last.conf_low <= 0 <= last.conf_high)
        info = SCORES[result.score]
        decimals = 2 if info.maximum - info.minimum <= 2 else 1
        moved = "rose" if last.estimate > 0 else "fell"
        direction = "an improvement" if better else "a deterioration"
        level = round(conf_level * 100)
        verdict = (
            f"{result.label} {moved} on average by {abs(last.estimate):.{decimals}f} points "
            f"from baseline to {_label(labels, last.timepoint)}, {direction} "
            f"({'higher' if result.higher_is_better else 'lower'} is better; {level}% CI "
            f"{last.conf_low:.{decimals}f} to {last.conf_high:.{decimals}f}; about {n_shown} "
            "people with a follow-up score). The model allows the spread of scores and their "
            "correlation to differ between time points "
            f"({_covariance_label(result.model)} covariance) and its interval uses "
            f"{last.df:.0f} degrees of freedom "
            f"({DF_LABELS.get(result.model.df_method, result.model.df_method)}), so it stays "
            "honest in a small scheme."
        )
        if not significant:
            verdict += " This is within the range expected by chance."
        rtm = result.regression_to_mean.iloc[-1]
        if pd.notna(rtm.expected_change):
            rtm_better = (rtm.expected_change > 0) == result.higher_is_better
            verdict += (
                f" People were referred with an average baseline of {rtm.baseline_mean:.1f} "
                f"against a population average of {rtm.population_mean:.1f}; regression to the "
                "mean alone would move scores by about "
                f"{_format_change(rtm.expected_change, decimals)} "
                f"points ({'an apparent improvement' if rtm_better else 'an apparent decline'}),"
                " so only change beyond that can be credited to the scheme, and without a "
                "comparison group even that is not proof that the scheme caused it."
            )
        else:
            verdict += (
                " No published population norm and test-retest reliability are available to "
                "estimate how much of this is regression to the mean; without a comparison "
                "group, the change cannot be attributed to the scheme."
            )
        paired = result.paired.iloc[-1]
        verdict += (
            f" Among people with both scores the average change was "
            f"{_format_change(paired.mean_change, decimals)} (standardised response mean "
            f"{paired.srm:.2f}); this sample could detect a true average change of "
            f"{paired.detectable_change:.{decimals}f} points with 80% power."
        )
        tests = result.subgroup_tests
        differing = tests[tests.p_value < 0.05]
        if not differing.empty:
            names = ", ".join(SUBGROUPS[s] for s in differing.subgroup)
            verdict += f" Change differed by {names} (joint test p < 0.05)."
        elif not tests.empty:
            verdict += " There was no clear evidence that change differed between subgroups."
        paragraphs.append(verdict)
    return paragraphs


def _headline(results, labels, rule) -> pd.DataFrame:
    rows = []
    for result in results:
        for row in result.change.itertuples():
            if row.n_people < rule.min_n_summary:
                continue
            rows.append(
                {
                    "outcome_level": "person",
                    "outcome": (
                        f"{result.label} change, baseline to {_label(labels, row.timepoint)}"
                    ),
                    "measure": result.score,
                    "estimate": row.estimate,
                    "std_error": row.std_error,
                    "conf_low": row.conf_low,
                    "conf_high": row.conf_high,
                    "n": disclose_count(row.n_people, rule).iloc[0],
                    "method": METHOD,
                }
            )
    return pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))
