"""Who benefits: change in wellbeing and GP attendance by group, with a joint test.

Social prescribing is meant to reduce health inequalities, so the report asks not only
whether wellbeing improved but whether it improved as much for people from deprived
areas and from each ethnic group. The change from baseline to the first follow-up is
estimated per group from one linear mixed model with a group x time interaction
(``spimpact.models.mixed.fit_mixed``, random intercept per person, all available
follow-ups used: valid if missing follow-ups are missing at random given the group and
earlier scores), and a Wald test asks whether the changes differ between groups at
all. Groups with too few people followed up are left out of the model and named.
The GP-attendance effect per group (:func:`attendance_effect_by_group`) comes from the
primary attendance design fitted per group, with Cochran's Q test; the per-group and
joint tests are adjusted for multiplicity (:func:`adjust_subgroup_tests`).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from spimpact.analyses.attendance.analysis import (
    OUTCOME,
    PER_1000_PER_YEAR,
    AttendanceResult,
    analyse_attendance,
    fit_before_after_change,
)
from spimpact.analyses.attendance.estimate import choose_inference
from spimpact.models.did import fit_did_2x2
from spimpact.models.meta import fit_random_effects
from spimpact.models.mixed import fit_mixed
from spimpact.models.multiplicity import adjust_p_values
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import TIDY_COLUMNS, make_tidy
from spimpact.publish.section import InsufficientData

# Fewest people with a follow-up for a group's change to be estimated: with a
# typical SD of change (~0.8 SD of the score) 20 people give an interval of about
# +/-0.35 SD, the widest that still says something; below that the group is named
# as too small rather than given a meaningless interval.
MIN_GROUP_FOLLOWED_UP = 20


@dataclass(frozen=True)
class GroupChangeResult(EstimatorResult):
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
    n_people
        People in the model.
    diagnostics
        Model warnings in plain English.
    conf_level
        Level of the intervals in ``changes``.
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
    conf_level: float = 0.95

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom columns, one row per group (term = group label)."""
        return make_tidy(
            self.changes["group"],
            self.changes["estimate"],
            self.changes["std_error"],
            conf_level=conf_level,
        )

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
        conf_level=conf_level,
    )


def _order(label: str):
    text = str(label)
    return (0, float(text), "") if text.replace(".", "", 1).isdigit() else (1, 0.0, text)


def attendance_effect_by_group(
    scheme, *, params, by: str, result: AttendanceResult | None = None
) -> pd.DataFrame:
    """GP-attendance effect of the primary design within each level of a client column.

    Parameters
    ----------
    scheme, params
        As :func:`~spimpact.analyses.attendance.analyse_attendance`.
    by
        A column of ``scheme.clients`` (e.g. ``imd_quintile``, ``ethnic_group``).
        Comparison patients take the level of the client they are matched to, so
        matched sets stay together.
    result
        A result of ``analyse_attendance`` for this scheme, to avoid refitting.

    Returns
    -------
    pandas.DataFrame
        One row per level: ``by`` (the column name), ``term`` (the level),
        ``TIDY_COLUMNS`` in appointments per 1,000 clients per year, ``n_clients``
        (raw count: disclosure-control it before publishing); then one row
        ``term = "joint_test_of_difference"`` whose ``statistic`` is the Cochran Q
        chi-squared statistic, ``df`` its degrees of freedom and ``p_value`` the test
        that the effect is the same in every level. Levels with fewer than
        ``params.disclosure.min_n_summary`` clients get no estimate. Without a
        comparison group the rows are before/after changes (``method`` says so).
        :func:`adjust_subgroup_tests` adds the multiplicity-adjusted p-values.

    Notes
    -----
    The primary design (same months, matched sets, weights) fitted separately in each
    level, with standard errors chosen as for the primary estimate
    (:func:`~spimpact.analyses.attendance.estimate.choose_inference`) on the level's own
    data. Levels hold disjoint matched sets, so the estimates are independent and the
    heterogeneity statistic ``Q = sum w_g (b_g - b_w)^2`` with ``w_g = 1 / se_g^2`` is
    chi-squared on ``G - 1`` df under equal effects (Cochran 1954), as
    :func:`spimpact.models.meta.fit_random_effects` reports it.
    """
    result = analyse_attendance(scheme, params=params) if result is None else result
    if by not in scheme.clients.columns:
        raise ValueError(f"by: '{by}' is not a column of the clients table")
    levels = scheme.clients.set_index("client_id")[by]
    frame = result.person_periods.copy()
    if result.design == "matched_did":
        client_level = (
            frame.loc[frame["treated"] == 1, ["subclass", "patient_id"]]
            .drop_duplicates("subclass")
            .assign(level=lambda d: d["patient_id"].map(levels))
            .set_index("subclass")["level"]
        )
        frame["level"] = frame["subclass"].map(client_level)
        method = "matched difference-in-differences, the primary design"
    else:
        frame["level"] = frame["patient_id"].map(levels)
        method = "before/after only (no comparison group; not an effect estimate)"
    rows = []
    for level, cell in frame.dropna(subset=["level"]).groupby("level", sort=True):
        n_clients = int(cell.loc[cell["treated"] == 1, "patient_id"].nunique())
        tidy = _attendance_effect(cell, result.design, n_clients, params)
        tidy["term"] = str(level)
        for column in ("estimate", "std_error", "conf_low", "conf_high"):
            tidy[column] = tidy[column] * PER_1000_PER_YEAR
        tidy["n_clients"] = n_clients
        rows.append(tidy)
    table = pd.concat(rows, ignore_index=True)
    joint = {"term": "joint_test_of_difference", **dict.fromkeys(TIDY_COLUMNS[1:], np.nan)}
    joint.update(_heterogeneity(table, params.conf_level))
    joint["n_clients"] = int(table["n_clients"].sum())
    table = pd.concat([table, pd.DataFrame([joint])], ignore_index=True)
    table.insert(0, "by", by)
    table["method"] = method
    return table


def adjust_subgroup_tests(effects: pd.DataFrame) -> pd.DataFrame:
    """Multiplicity-adjusted p-values for the attendance effects by group.

    ``effects``: the tables of :func:`attendance_effect_by_group` for every grouping,
    stacked. Adds ``p_value_adjusted`` and ``adjustment``: the per-level tests (many:
    every level of every grouping) by Benjamini & Hochberg's false discovery rate, the
    joint tests of difference (one per grouping) by Holm's method.

    Examples
    --------
    >>> effects = pd.DataFrame({"term": ["a", "b", "joint_test_of_difference"],
    ...                         "p_value": [0.01, 0.04, 0.2]})
    >>> adjust_subgroup_tests(effects)["p_value_adjusted"].round(3).tolist()
    [0.02, 0.04, 0.2]
    """
    effects = effects.copy()
    joint = effects["term"] == "joint_test_of_difference"
    adjusted = np.full(len(effects), np.nan)
    adjusted[~joint.to_numpy()] = adjust_p_values(effects.loc[~joint, "p_value"], method="fdr_bh")
    adjusted[joint.to_numpy()] = adjust_p_values(effects.loc[joint, "p_value"], method="holm")
    effects["p_value_adjusted"] = adjusted
    effects["adjustment"] = np.where(joint, "Holm", "Benjamini-Hochberg")
    return effects


def _attendance_effect(cell: pd.DataFrame, design: str, n_clients: int, params) -> pd.DataFrame:
    """One tidy row: the group's effect (or before/after change), NaN when too few clients."""
    if n_clients < params.disclosure.min_n_summary:
        return make_tidy(["level"], [np.nan], [np.nan], conf_level=params.conf_level)
    if design == "matched_did":
        inference = choose_inference(cell, params.comparison, matched=True)
        fit = fit_did_2x2(
            cell,
            outcome="value",
            treated="treated",
            post="post",
            cluster=inference.cluster,
            weights="weight",
            se=inference.se,
            bootstrap_draws=params.comparison.bootstrap_draws,
            bootstrap_weights="webb",
            seed=params.seed,
            conf_level=params.conf_level,
        )
        tidy = fit.tidy()
        return tidy.loc[tidy["term"] == fit.att_term, list(TIDY_COLUMNS)].copy()
    change = fit_before_after_change(
        cell.rename(columns={"value": OUTCOME}), conf_level=params.conf_level
    )
    if change is None:
        return make_tidy(["level"], [np.nan], [np.nan], conf_level=params.conf_level)
    return change.tidy()


def _heterogeneity(table: pd.DataFrame, conf_level: float) -> dict:
    """Cochran's Q across the estimable groups: ``statistic``, ``p_value``, ``df``."""
    valid = table.dropna(subset=["estimate", "std_error"])
    valid = valid[valid["std_error"] > 0]
    if len(valid) < 2:
        return {"statistic": np.nan, "p_value": np.nan, "df": np.nan}
    # Q and its test use the equal-effects weights whatever the tau^2 estimator, so
    # "FE" gives them without fitting a between-group variance that is not reported.
    meta = fit_random_effects(
        valid["estimate"], valid["std_error"], method="FE", conf_level=conf_level
    )
    return {"statistic": meta.q, "p_value": meta.q_p_value, "df": meta.q_df}
