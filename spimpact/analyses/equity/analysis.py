"""Who benefits: wellbeing change by deprivation and ethnic group, with a joint test.

Social prescribing is meant to reduce health inequalities, so the report asks not only
whether wellbeing improved but whether it improved as much for people from deprived
areas and from each ethnic group. The change from baseline to the first follow-up is
estimated per group from one linear mixed model with a group x time interaction
(``spimpact.models.mixed.fit_mixed``, random intercept per person, all available
follow-ups used: valid if missing follow-ups are missing at random given the group and
earlier scores), and a Wald test asks whether the changes differ between groups at
all. Groups with too few people followed up are left out of the model and named.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from spimpact.io import SchemeData
from spimpact.models.mixed import fit_mixed
from spimpact.models.tidy import make_tidy
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import disclose_count
from spimpact.publish.section import InsufficientData, Section, Table
from spimpact.scoring import MAIN_SCORE, SCORES

GROUPINGS = {
    "imd_quintile": "IMD quintile (1 = most deprived)",
    "ethnic_group": "Ethnic group",
}
# Fewest people with a follow-up for a group's change to be estimated: with a
# typical SD of change (~0.8 SD of the score) 20 people give an interval of about
# +/-0.35 SD, the widest that still says something; below that the group is named
# as too small rather than given a meaningless interval.
MIN_GROUP_FOLLOWED_UP = 20


@dataclass(frozen=True)
class GroupChangeResult:
    """Change in a score from baseline to a follow-up, per group, with a joint test.

    Attributes
    ----------
    changes
        One row per group: ``group, n_people, n_followed_up, estimate, std_error,
        statistic, p_value, conf_low, conf_high`` (change at ``timepoint``).
    too_small
        Groups left out because fewer than ``min_followed_up`` people were followed up.
    joint_statistic, joint_df, joint_p_value
        Wald chi-squared test that every group x time interaction is zero (the change
        is the same in every group).
    timepoint
        Follow-up at which changes are reported.
    diagnostics
        Model warnings in plain English.
    """

    by: str
    score: str
    timepoint: int
    changes: pd.DataFrame
    too_small: tuple[str, ...]
    joint_statistic: float
    joint_df: int
    joint_p_value: float
    n_people: int
    diagnostics: tuple[str, ...] = ()

    def tidy(self) -> pd.DataFrame:
        """Broom columns, one row per group (term = group label)."""
        out = self.changes.rename(columns={"group": "term"})
        return out[
            ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]
        ]

    def summary(self) -> str:
        """Describe the changes and the joint test."""
        lines = [
            f"Change in {self.score} from baseline to time point {self.timepoint} by {self.by}:"
        ]
        for row in self.changes.itertuples():
            lines.append(
                f"  {row.group}: {row.estimate:+.2f} ({row.conf_low:.2f} to {row.conf_high:.2f})"
            )
        lines.append(
            f"Joint test of no difference: chi-squared {self.joint_statistic:.2f} on "
            f"{self.joint_df} df, p = {self.joint_p_value:.3g}."
        )
        if self.too_small:
            lines.append("Too few followed up to estimate: " + ", ".join(self.too_small) + ".")
        lines.extend(self.diagnostics)
        return "\n".join(lines)

    def plot(self, ax=None, *, xlabel: str = "Change from baseline"):
        """Forest plot of the change in each group."""
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.4 * len(self.changes) + 1.5))
        y = np.arange(len(self.changes))[::-1]
        estimate = self.changes["estimate"].to_numpy(dtype=float)
        ax.errorbar(
            estimate,
            y,
            xerr=[
                estimate - self.changes["conf_low"].to_numpy(dtype=float),
                self.changes["conf_high"].to_numpy(dtype=float) - estimate,
            ],
            fmt="o",
            color="#005eb8",
        )
        ax.axvline(0, color="#425563", linewidth=1)
        ax.set_yticks(y, self.changes["group"].astype(str).tolist())
        ax.set_xlabel(xlabel)
        return ax


def fit_change_by_group(
    data: pd.DataFrame,
    *,
    by: str,
    value: str = "value",
    timepoint: str = "timepoint",
    person: str = "client_id",
    at: int = 1,
    min_followed_up: int = MIN_GROUP_FOLLOWED_UP,
    conf_level: float = 0.95,
    score: str = "score",
) -> GroupChangeResult:
    """Estimate the change from baseline (time point 0) to ``at`` in each group of ``by``.

    Parameters
    ----------
    data
        Long data: one row per person and time point, with ``value``, ``timepoint``
        (0 = baseline), ``person`` and the grouping column ``by``.
    by
        Grouping column (e.g. ``imd_quintile``); rows with it missing are dropped.
    at
        Follow-up time point at which the change is reported.
    min_followed_up
        Fewest people with a value at ``at`` for a group to be estimated.
    conf_level
        Confidence level of the intervals.
    score
        Name of the score, for the summary.

    Returns
    -------
    GroupChangeResult

    Notes
    -----
    Model: ``value ~ C(timepoint) * C(by)`` with a random intercept per person (REML).
    A group's change is the ``C(timepoint)[T.at]`` coefficient plus, outside the
    reference group, its interaction; its variance comes from the fixed-effect
    covariance. The joint test is the Wald chi-squared test that all time x group
    interactions are zero (df = (groups - 1) x (follow-ups)), the test of a
    difference in change between groups (Fitzmaurice, Laird & Ware 2011, *Applied
    Longitudinal Analysis*, ch. 5).
    """
    needed = [value, timepoint, person, by]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"columns {missing} not found in data")
    frame = data[needed].dropna().copy()
    frame[by] = frame[by].astype(str)
    if not (frame[timepoint] == 0).any() or not (frame[timepoint] == at).any():
        raise InsufficientData(f"No baseline or no time point {at} values to compare.")
    followed = frame[frame[timepoint] == at].groupby(by)[person].nunique()
    people = frame.groupby(by)[person].nunique()
    keep = sorted(followed[followed >= min_followed_up].index, key=_order)
    too_small = tuple(sorted((set(people.index) - set(keep)), key=_order))
    if len(keep) < 2:
        raise InsufficientData(
            f"Fewer than two groups of {by.replace('_', ' ')} have at least "
            f"{min_followed_up} people followed up, so changes cannot be compared"
            + (f" (too few in: {', '.join(too_small)})." if too_small else ".")
        )
    frame = frame[frame[by].isin(keep)].rename(
        columns={by: "group_", value: "value_", timepoint: "time_"}
    )
    frame["group_"] = pd.Categorical(frame["group_"], categories=keep)
    fit = fit_mixed("value_ ~ C(time_) * C(group_)", frame, group=person)
    names = list(fit.fixed_names)
    time_term = f"C(time_)[T.{at}]"
    if time_term not in names:
        raise InsufficientData(f"Time point {at} could not be estimated.")
    weights = np.zeros((len(keep), len(names)))
    for i, level in enumerate(keep):
        weights[i, names.index(time_term)] = 1
        if i > 0:
            weights[i, names.index(f"{time_term}:C(group_)[T.{level}]")] = 1
    estimate = weights @ fit.coef
    std_error = np.sqrt(np.einsum("ij,jk,ik->i", weights, fit.vcov, weights))
    changes = make_tidy(keep, estimate, std_error, conf_level=conf_level).rename(
        columns={"term": "group"}
    )
    changes.insert(1, "n_people", [int(people[g]) for g in keep])
    changes.insert(2, "n_followed_up", [int(followed[g]) for g in keep])
    interaction = [i for i, n in enumerate(names) if n.startswith("C(time_)") and ":" in n]
    beta = fit.coef[interaction]
    cov = fit.vcov[np.ix_(interaction, interaction)]
    statistic = float(beta @ np.linalg.solve(cov, beta))
    return GroupChangeResult(
        by=by,
        score=score,
        timepoint=at,
        changes=changes,
        too_small=too_small,
        joint_statistic=statistic,
        joint_df=len(interaction),
        joint_p_value=float(stats.chi2.sf(statistic, len(interaction))),
        n_people=int(frame[person].nunique()),
        diagnostics=tuple(fit.diagnostics),
    )


def _order(label: str):
    text = str(label)
    return (0, float(text), "") if text.replace(".", "", 1).isdigit() else (1, 0.0, text)


def benefit_by_group_section(
    scheme: SchemeData, scores: pd.DataFrame, *, params: SchemeParams, attendance=None
) -> Section:
    """Wellbeing change by IMD quintile and ethnic group, each with a joint test.

    Uses the scheme's primary measure (``params.measures.primary``) and its main
    score. People counts are rounded to 5 (``disclose_count``); groups with fewer than
    ``MIN_GROUP_FOLLOWED_UP`` people followed up are named but not estimated. When the
    scheme has GP appointment data, the attendance effect per group comes from
    ``spimpact.analyses.attendance.analysis.attendance_effect_by_group`` with its Cochran Q test;
    ``attendance`` may pass an ``analyse_attendance`` result to avoid refitting it.
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
    from spimpact.analyses.attendance.analysis import analyse_attendance, attendance_effect_by_group

    rule = params.disclosure.rule()
    try:
        result = analyse_attendance(scheme, params=params) if result is None else result
    except InsufficientData as reason:
        return [f"GP attendance by group cannot be shown: {reason}"], [], []
    text, tables, figures = [], [], []
    for by in groupings:
        label = GROUPINGS[by]
        effects = attendance_effect_by_group(scheme, params=params, by=by, result=result)
        joint = effects[effects["term"] == "joint_test_of_difference"].iloc[0]
        rows = effects[effects["term"] != "joint_test_of_difference"]
        table = pd.DataFrame(
            {
                label: rows["term"].to_numpy(),
                "n_clients": disclose_count(rows["n_clients"].to_numpy(), rule).to_numpy(),
                "estimate": rows["estimate"].round(1).to_numpy(),
                "conf_low": rows["conf_low"].round(1).to_numpy(),
                "conf_high": rows["conf_high"].round(1).to_numpy(),
            }
        )
        method = str(rows["method"].iloc[0])
        tables.append(
            Table(
                f"equity_attendance_{by}",
                f"GP appointments per 1,000 clients per year by {label.split(' (')[0].lower()} "
                f"({method})",
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
                f"{int(joint['df'])} df, p = {joint['p_value']:.3f}; "
                + (
                    "the effect differs between groups."
                    if joint["p_value"] < 1 - params.conf_level
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
