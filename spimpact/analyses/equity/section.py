"""The "Who benefits" report section: wellbeing and GP-attendance change by group.

Built from :func:`~spimpact.analyses.equity.analysis.fit_change_by_group` and
:func:`~spimpact.analyses.equity.analysis.attendance_effect_by_group`; people counts
pass disclosure control (:mod:`spimpact.publish.disclosure`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.analyses.attendance import analyse_attendance
from spimpact.analyses.equity.analysis import (
    MIN_GROUP_FOLLOWED_UP,
    adjust_subgroup_tests,
    attendance_effect_by_group,
    fit_change_by_group,
)
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import disclose_count
from spimpact.publish.section import InsufficientData, Section, Table
from spimpact.scoring import MAIN_SCORE, SCORES

GROUPINGS = {
    "imd_quintile": "IMD quintile (1 = most deprived)",
    "ethnic_group": "Ethnic group",
}


def benefit_by_group_section(
    scheme: SchemeData, scores: pd.DataFrame, *, params: SchemeParams, attendance=None
) -> Section:
    """Wellbeing change by IMD quintile and ethnic group, each with a joint test.

    Uses the scheme's primary measure (``params.measures.primary``) and its main
    score. People counts are rounded to 5 (``disclose_count``); groups with fewer than
    ``MIN_GROUP_FOLLOWED_UP`` people followed up are named but not estimated. When the
    scheme has GP appointment data, the attendance effect per group comes from
    :func:`~spimpact.analyses.equity.analysis.attendance_effect_by_group` with its Cochran Q
    test; ``attendance`` may pass an ``analyse_attendance`` result to avoid refitting it.
    """
    rule = params.disclosure.rule()
    score = MAIN_SCORE.get(params.measures.primary)
    if score is None or scores is None or scores.empty:
        raise InsufficientData("No scored wellbeing measures, so benefit by group cannot be shown.")
    info = SCORES[score]
    values = scores.loc[scores["score"] == score, ["client_id", "timepoint", "value"]]
    if values.empty:
        raise InsufficientData(f"No {info.label} scores were recorded.")
    data = values.merge(
        scheme.clients[["client_id", *[g for g in GROUPINGS if g in scheme.clients.columns]]],
        on="client_id",
        how="inner",
    )
    labels = params.measures.timepoints
    at = 1
    level = f"{100 * params.conf_level:g}%"
    better = "higher" if info.higher_is_better else "lower"
    text = [
        f"Change in {info.label} from {labels.get(0, 'baseline').lower()} to "
        f"{labels.get(at, f'time point {at}')} in each group, from one mixed model with a "
        f"group x time interaction (all follow-ups used; {better} scores are better). The "
        "joint test asks whether the change differs between groups at all; a large p-value "
        "means the data show no difference, not that there is none. Groups with fewer than "
        f"{MIN_GROUP_FOLLOWED_UP} people followed up are not estimated."
    ]
    tables, figures = [], []
    for by, label in GROUPINGS.items():
        if by not in data.columns:
            continue
        try:
            result = fit_change_by_group(
                data, by=by, at=at, conf_level=params.conf_level, score=info.label
            )
        except InsufficientData as reason:
            text.append(f"**{label}.** {reason}")
            continue
        table = result.changes[
            ["group", "n_people", "n_followed_up", "estimate", "conf_low", "conf_high"]
        ].copy()
        for column in ("n_people", "n_followed_up"):
            table[column] = disclose_count(table[column].to_numpy(), rule).to_numpy()
        decimals = 3 if info.maximum - info.minimum <= 2 else 2
        # adding 0.0 turns a rounded -0.0 into 0.0
        table[["estimate", "conf_low", "conf_high"]] = (
            table[["estimate", "conf_low", "conf_high"]].round(decimals) + 0.0
        )
        table = table.rename(columns={"group": label})
        tables.append(
            Table(
                f"equity_change_{by}",
                f"Change in {info.label} by {label.split(' (')[0].lower()}",
                table,
            )
        )
        ax = result.plot(xlabel=f"Change in {info.label} ({level} CI)")
        ax.set_title(f"Change by {label.split(' (')[0].lower()}")
        ax.figure.tight_layout()
        figures.append(ax.figure)
        differs = result.joint_p_value < 1 - params.conf_level
        sentence = (
            f"**{label}.** Joint test of no difference in change between groups: "
            f"chi-squared {result.joint_statistic:.1f} on {result.joint_df} df, "
            f"p = {result.joint_p_value:.3f}; "
            + (
                "the change differs between groups."
                if differs
                else "no difference between groups is shown."
            )
        )
        if result.too_small:
            sentence += (
                " Too few people were followed up to estimate the change for: "
                + ", ".join(result.too_small)
                + "; the scheme cannot yet say whether these groups benefit."
            )
        sentence += "".join(f" {d}" for d in result.diagnostics)
        text.append(sentence)
    attendance_text, attendance_tables, attendance_figures = _attendance_by_group(
        scheme,
        [g for g in GROUPINGS if g in scheme.clients.columns],
        params=params,
        result=attendance,
    )
    text += attendance_text
    tables += attendance_tables
    figures += attendance_figures
    if not tables:
        raise InsufficientData(" ".join(text[1:]) or "No group could be estimated.")
    return Section(
        title="Who benefits",
        text=tuple(text),
        tables=tuple(tables),
        figures=tuple(figures),
    )


def _attendance_by_group(scheme: SchemeData, groupings, *, params: SchemeParams, result=None):
    """Text, tables and figures for the GP-attendance effect by group (may be empty)."""
    if scheme.gp_appointments is None or scheme.gp_appointments.empty:
        return (
            ["GP attendance by group cannot be shown: the scheme supplied no GP appointment data."],
            [],
            [],
        )
    rule = params.disclosure.rule()
    try:
        result = analyse_attendance(scheme, params=params) if result is None else result
    except InsufficientData as reason:
        return [f"GP attendance by group cannot be shown: {reason}"], [], []
    text, tables, figures = [], [], []
    every = adjust_subgroup_tests(
        pd.concat(
            [
                attendance_effect_by_group(scheme, params=params, by=by, result=result)
                for by in groupings
            ],
            ignore_index=True,
        )
    )
    for by in groupings:
        label = GROUPINGS[by]
        effects = every[every["by"] == by]
        joint = effects[effects["term"] == "joint_test_of_difference"].iloc[0]
        rows = effects[effects["term"] != "joint_test_of_difference"]
        table = pd.DataFrame(
            {
                label: rows["term"].to_numpy(),
                "n_clients": disclose_count(rows["n_clients"].to_numpy(), rule).to_numpy(),
                "estimate": rows["estimate"].round(1).to_numpy(),
                "conf_low": rows["conf_low"].round(1).to_numpy(),
                "conf_high": rows["conf_high"].round(1).to_numpy(),
                "p_value": rows["p_value"].round(4).to_numpy(),
                "p_value_bh": rows["p_value_adjusted"].round(4).to_numpy(),
            }
        )
        method = str(rows["method"].iloc[0])
        tables.append(
            Table(
                f"equity_attendance_{by}",
                f"GP appointments per 1,000 clients per year by {label.split(' (')[0].lower()} "
                f"({method}); p_value_bh: adjusted for the number of groups tested "
                "(Benjamini-Hochberg false discovery rate)",
                table,
            )
        )
        shown = rows.dropna(subset=["estimate"])
        if len(shown):
            fig, ax = plt.subplots(figsize=(6, 0.4 * len(shown) + 1.5))
            y = np.arange(len(shown))[::-1]
            est = shown["estimate"].to_numpy(dtype=float)
            ax.errorbar(
                est,
                y,
                xerr=[
                    est - shown["conf_low"].to_numpy(float),
                    shown["conf_high"].to_numpy(float) - est,
                ],
                fmt="o",
                color="#005eb8",
            )
            ax.axvline(0, color="#425563", linewidth=1)
            ax.set_yticks(y, shown["term"].astype(str).tolist())
            ax.set_xlabel("GP appointments per 1,000 clients per year")
            ax.set_title(f"GP attendance by {label.split(' (')[0].lower()}")
            fig.tight_layout()
            figures.append(fig)
        missing = rows.loc[rows["estimate"].isna(), "term"].astype(str).tolist()
        if pd.notna(joint["p_value"]):
            sentence = (
                f"**GP attendance by {label.split(' (')[0].lower()}** ({method}): test of "
                f"no difference between groups (Cochran Q) {joint['statistic']:.1f} on "
                f"{int(joint['df'])} df, p = {joint['p_value']:.3f} (Holm-adjusted across "
                f"the {len(groupings)} groupings: {joint['p_value_adjusted']:.3f}); "
                + (
                    "the effect differs between groups."
                    if joint["p_value_adjusted"] < 1 - params.conf_level
                    else "no difference between groups is shown."
                )
            )
        else:
            sentence = (
                f"**GP attendance by {label.split(' (')[0].lower()}**: fewer than two groups "
                "could be estimated, so groups cannot be compared."
            )
        if missing:
            sentence += (
                f" Too few clients to estimate: {', '.join(missing)}; the scheme cannot say "
                "whether attendance changed for these groups."
            )
        text.append(sentence)
    return text, tables, figures
