"""Qualitative evidence: feedback themes, consented quotes and a descriptive joint display.

Providers hold case studies and feedback that carry impact numbers miss.
``analyse_feedback`` turns the ``feedback`` table into results that are safe to
publish: counts pass disclosure control, quotes are chosen only from feedback given
with consent and scrubbed of identifiers (``spimpact.publish.scrub``), and the joint
display sets each theme beside the wellbeing change of the clients who raised it,
which is descriptive. The words are in ``spimpact.analyses.qualitative.section``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.qualitative.approval import review_candidates
from spimpact.contract import FEEDBACK_THEMES
from spimpact.io import SchemeData
from spimpact.models.paired import fit_welch
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import (
    DisclosureRule,
    disclose_count,
    disclose_percentage,
    disclose_summary,
    disclose_table,
)
from spimpact.publish.gate import OTHER_LABEL, publish_labels
from spimpact.publish.section import InsufficientData
from spimpact.scoring import MAIN_SCORE

FEEDBACK_TYPE_LABELS = {"case_study": "Case study", "formal": "Formal", "informal": "Informal"}
SUBGROUP_DIMENSIONS = (
    ("sex", "Sex"),
    ("age_band", "Age band"),
    ("ethnic_group", "Ethnic group"),
    ("imd_quintile", "IMD quintile (1 = most deprived)"),
)
MAX_QUOTES = 6
NO_THEME = "(no theme recorded)"


def publishable_themes(long: pd.DataFrame, rule: DisclosureRule) -> pd.DataFrame:
    """Theme labels as they may be published (``spimpact.publish.gate.publish_labels``).

    Labels of the contract's vocabulary (``FEEDBACK_THEMES``) are kept; any other label
    is kept only if it is a short plain label the scrubber leaves unchanged and more
    than ``rule.threshold`` pieces of feedback carry it, else it becomes
    ``OTHER_LABEL``. Themes are typed by staff and can hold anything (a name, an NHS
    number, a date of birth), whatever the consent to quote.
    """
    counts = long.groupby("theme")["feedback_id"].nunique()
    themes = long["theme"].where(long["theme"] == NO_THEME, None)
    recorded = long["theme"] != NO_THEME
    themes[recorded] = publish_labels(
        long.loc[recorded, "theme"],
        FEEDBACK_THEMES,
        counts=counts,
        min_count=rule.threshold + 1,
    )
    out = long.assign(theme=themes)
    return out.drop_duplicates(["feedback_id", "theme"]).reset_index(drop=True)


def split_themes(feedback: pd.DataFrame) -> pd.DataFrame:
    """One row per feedback item and theme (``feedback_id, client_id, feedback_type, theme``).

    Theme labels are trimmed and lower-cased; feedback without a theme gets
    ``"(no theme recorded)"``.
    """
    themes = feedback["themes"].fillna("").astype(str).str.split(";")
    long = feedback.assign(theme=themes).explode("theme")
    long["theme"] = long["theme"].str.strip().str.lower().replace("", NO_THEME)
    long = long.drop_duplicates(["feedback_id", "theme"])
    return long[["feedback_id", "client_id", "feedback_type", "theme"]].reset_index(drop=True)


@dataclass(frozen=True)
class FeedbackResult:
    """Feedback counted by type, theme and client subgroup; quotes; the joint display.

    Attributes
    ----------
    n_feedback_published, n_linked_published
        Pieces of feedback, and those linked to a client (disclosure-controlled;
        missing when withheld).
    by_type
        ``feedback_type, n_feedback`` (labels of ``FEEDBACK_TYPE_LABELS``).
    by_theme
        ``theme, n_feedback, n_clients``, most mentioned first; labels as published
        (``publishable_themes``).
    by_subgroup
        ``dimension, category, theme, n_feedback, n_feedback_in_group,
        percent_of_group`` for feedback linked to a client.
    quotes
        Feedback chosen at random (seeded) from that given with consent to quote and
        approved by a person (``spimpact.analyses.qualitative.approval``):
        ``feedback_id, feedback_type, themes`` (comma-separated) and ``text``,
        scrubbed of identifiers. Empty when none is approved.
    awaiting_review_themes
        Published theme labels of consented comments not (or no longer) approved: they
        are shown only as themes.
    joint
        The joint display: per theme, the mean change in the primary score of
        clients whose feedback mentions it and of the others, and the Welch
        difference with its interval (withheld below ``min_n_summary`` people);
        ``None`` without change scores.
    joint_score
        The score the joint display uses (e.g. ``swemwbs_metric``), or ``None``.
    """

    n_feedback_published: int
    n_linked_published: int
    by_type: pd.DataFrame
    by_theme: pd.DataFrame
    by_subgroup: pd.DataFrame
    quotes: pd.DataFrame
    joint: pd.DataFrame | None
    joint_score: str | None
    awaiting_review_themes: tuple[str, ...] = ()


def analyse_feedback(
    scheme: SchemeData, scores, *, params: SchemeParams, approved: Mapping[str, str] | None = None
) -> FeedbackResult:
    """Count, quote and set beside wellbeing change the scheme's feedback and case studies.

    Parameters
    ----------
    scheme
        Uses ``feedback`` and ``clients``.
    scores
        Scored wellbeing measures (long frame ``client_id, measure, timepoint, score,
        value``; a ``ScoredMeasures`` is accepted too), for the joint display.
    params
        Primary measure, confidence level, seed (quote selection) and disclosure rule.
    approved
        Approved quotes (feedback id -> fingerprint of the scrubbed text,
        ``spimpact.analyses.qualitative.approval.read_approvals``). Only these are
        quoted; ``None`` or empty means no quote is published.

    Raises ``InsufficientData`` when the scheme supplied no feedback.

    Notes
    -----
    Counts pass the NHS Digital disclosure rule (SPEC section 3.2). The joint display
    follows mixed-methods joint displays (Guetterman, Fetters & Creswell 2015, Ann Fam
    Med 13(6):554-561); the difference in mean change uses Welch's t interval
    (``spimpact.models.paired.fit_welch``) and is descriptive.
    """
    feedback = scheme.feedback
    if feedback is None or len(feedback) == 0:
        raise InsufficientData(
            "The scheme supplied no feedback or case studies, so there is no qualitative "
            "evidence to summarise."
        )
    rule = params.disclosure.rule()
    long = publishable_themes(split_themes(feedback), rule)

    by_type = (
        feedback.groupby("feedback_type").size().reindex(list(FEEDBACK_TYPE_LABELS), fill_value=0)
    )
    type_table = disclose_table(
        pd.DataFrame(
            {
                "feedback_type": [FEEDBACK_TYPE_LABELS[t] for t in by_type.index],
                "n_feedback": by_type.to_numpy(),
            }
        ),
        ["n_feedback"],
        rule,
    )
    theme_counts = (
        long.groupby("theme")
        .agg(n_feedback=("feedback_id", "nunique"), n_clients=("client_id", "nunique"))
        .reset_index()
        .sort_values(["n_feedback", "theme"], ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    theme_table = disclose_table(theme_counts, ["n_feedback", "n_clients"], rule)
    subgroup_table = themes_by_subgroup(long, scheme.clients, rule)
    score_name = MAIN_SCORE.get(params.measures.primary)
    joint = joint_display(long, getattr(scores, "scores", scores), params)
    n_linked = int(feedback["client_id"].notna().sum())
    quotes, awaiting = choose_quotes(feedback, long, seed=params.seed, approved=approved or {})
    return FeedbackResult(
        n_feedback_published=disclose_count([len(feedback)], rule).iloc[0],
        n_linked_published=disclose_count([n_linked], rule).iloc[0],
        by_type=type_table,
        by_theme=theme_table,
        by_subgroup=subgroup_table,
        quotes=quotes,
        joint=joint,
        joint_score=score_name if joint is not None else None,
        awaiting_review_themes=awaiting,
    )


def themes_by_subgroup(
    long: pd.DataFrame, clients: pd.DataFrame, rule: DisclosureRule
) -> pd.DataFrame:
    """Linked feedback per theme within each client subgroup, disclosure-controlled."""
    linked = long.dropna(subset=["client_id"]).merge(
        clients, on="client_id", how="inner", suffixes=("", "_client")
    )
    rows = []
    for column, label in SUBGROUP_DIMENSIONS:
        if column not in linked.columns:
            continue
        group_sizes = linked.groupby(column)["feedback_id"].nunique()
        counts = linked.groupby([column, "theme"])["feedback_id"].nunique()
        for (category, theme), n in counts.items():
            rows.append((label, str(category), theme, int(n), int(group_sizes[category])))
    frame = pd.DataFrame(
        rows, columns=["dimension", "category", "theme", "n_feedback", "n_feedback_in_group"]
    )
    frame["percent_of_group"] = disclose_percentage(
        frame["n_feedback"].to_numpy(), frame["n_feedback_in_group"].to_numpy(), rule
    ).to_numpy()
    frame = disclose_table(frame, ["n_feedback", "n_feedback_in_group"], rule)
    return frame.sort_values(["dimension", "category", "theme"], kind="stable").reset_index(
        drop=True
    )


def choose_quotes(
    feedback: pd.DataFrame, long: pd.DataFrame, *, seed, approved: Mapping[str, str]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Up to ``MAX_QUOTES`` approved consented comments chosen at random, scrubbed.

    A comment is quoted only when its id is in ``approved`` with the fingerprint of
    its scrubbed text (``quote_fingerprint``). Returns the quotes
    (``feedback_id, feedback_type, themes, text`` in ``feedback_id`` order) and the
    sorted theme labels of consented comments that are not approved.
    """
    themes = long.groupby("feedback_id")["theme"].agg(lambda t: ", ".join(sorted(t)))
    candidates = review_candidates(feedback, themes)
    columns = ["feedback_id", "feedback_type", "themes", "text"]
    ok = candidates["feedback_id"].map(approved).eq(candidates["fingerprint"]).astype(bool)
    waiting = long[long["feedback_id"].astype(str).isin(candidates.loc[~ok, "feedback_id"])]
    awaiting = tuple(sorted(set(waiting["theme"]) - {NO_THEME}))
    chosen = candidates[ok]
    if chosen.empty:
        return pd.DataFrame(columns=columns), awaiting
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(chosen), size=min(MAX_QUOTES, len(chosen)), replace=False))
    return chosen.iloc[picked][columns].reset_index(drop=True), awaiting


def joint_display(long: pd.DataFrame, scores, params: SchemeParams) -> pd.DataFrame | None:
    """Mean change of clients mentioning each theme against the others, with Welch's interval.

    Change is from baseline to each client's first follow-up in the primary measure's
    main score. Means are withheld below ``min_n_summary`` people and the difference
    unless both groups reach it. ``None`` without change scores.
    """
    primary = params.measures.primary
    score_name = MAIN_SCORE.get(primary)
    if scores is None or score_name is None or len(scores) == 0:
        return None
    change = change_scores(scores[scores["score"] == score_name])
    if change.empty:
        return None
    rule = params.disclosure.rule()
    rows = []
    for theme in sorted(set(long["theme"]) - {NO_THEME, OTHER_LABEL}):
        mentioned = set(long.loc[long["theme"] == theme, "client_id"].dropna())
        with_theme = change[change.index.isin(mentioned)]
        others = change[~change.index.isin(mentioned)]
        difference, low, high = _welch_interval(with_theme, others, params.conf_level)
        enough = len(with_theme) >= rule.min_n_summary and len(others) >= rule.min_n_summary
        rows.append(
            (
                theme,
                len(with_theme),
                with_theme.mean() if len(with_theme) else np.nan,
                len(others),
                others.mean() if len(others) else np.nan,
                difference if enough else np.nan,
                low if enough else np.nan,
                high if enough else np.nan,
            )
        )
    if not rows:
        return None
    table = pd.DataFrame(
        rows,
        columns=[
            "theme",
            "n_with_theme",
            "mean_change_with_theme",
            "n_others",
            "mean_change_others",
            "difference",
            "conf_low",
            "conf_high",
        ],
    )
    table["mean_change_with_theme"] = disclose_summary(
        table["mean_change_with_theme"], table["n_with_theme"], rule
    ).to_numpy()
    table["mean_change_others"] = disclose_summary(
        table["mean_change_others"], table["n_others"], rule
    ).to_numpy()
    table = disclose_table(table, ["n_with_theme", "n_others"], rule)
    for column in ("difference", "conf_low", "conf_high"):
        table[column] = table[column].astype("Float64")
    table.insert(1, "score", score_name)
    return table


def change_scores(scores: pd.DataFrame) -> pd.Series:
    """Change from baseline to each client's first follow-up, indexed by client."""
    baseline = scores[scores["timepoint"] == 0].drop_duplicates("client_id").set_index("client_id")
    follow = scores[scores["timepoint"] > 0].sort_values(["client_id", "timepoint"])
    first = follow.drop_duplicates("client_id").set_index("client_id")
    both = baseline.index.intersection(first.index)
    change = first.loc[both, "value"].astype(float) - baseline.loc[both, "value"].astype(float)
    return change.dropna().sort_index()


def _welch_interval(a: pd.Series, b: pd.Series, conf_level: float):
    """Difference in means and Welch interval; missing with fewer than 2 in either group."""
    if len(a) < 2 or len(b) < 2:
        return np.nan, np.nan, np.nan
    row = fit_welch(a, b, conf_level=conf_level).tidy().iloc[0]
    return float(row["estimate"]), float(row["conf_low"]), float(row["conf_high"])
