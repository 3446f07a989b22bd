"""Individual change from baseline: meaningful change and the reliable change index."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.scoring.registry import SCORES

RCI_CRITICAL = 1.96  # two-sided 95% (Jacobson & Truax 1991)
# Change scores are differences of table values (e.g. SWEMWBS metric 23.21 − 20.36), so
# a change equal to a threshold can land a rounding error below it.
_EPSILON = 1e-9
CHANGE_COLUMNS = (
    "client_id",
    "score",
    "timepoint",
    "baseline",
    "follow_up",
    "change",
    "improvement",
    "meaningful",
    "rci",
    "reliable",
)
METHOD_COLUMNS = (
    "score",
    "higher_is_better",
    "meaningful_change",
    "meaningful_source",
    "s_diff",
    "reliable_change",
    "reliable_basis",
)


@dataclass(frozen=True)
class ChangeClassification:
    """Per-person change from baseline, classified.

    Attributes
    ----------
    changes
        One row per client × score × follow-up: ``baseline``, ``follow_up``, ``change``
        (follow-up − baseline), ``improvement`` (the change signed so that positive is
        better, e.g. baseline − follow-up for MYCaW), ``meaningful`` (``improved``,
        ``no meaningful change``, ``deteriorated`` or ``None`` without a threshold),
        ``rci`` (Jacobson–Truax index, positive = better) and ``reliable`` (``reliable
        improvement``, ``no reliable change``, ``reliable deterioration`` or ``None``).
    methods
        One row per score: the thresholds used, their sources, the standard error of the
        difference ``s_diff`` and, in words, what the reliable change rests on.
    """

    changes: pd.DataFrame
    methods: pd.DataFrame

    def counts(self) -> pd.DataFrame:
        """Count people per ``score, timepoint, classification, category`` (not yet disclosed)."""
        frames = []
        for classification in ("meaningful", "reliable"):
            known = self.changes.dropna(subset=[classification])
            counted = (
                known.groupby(["score", "timepoint", classification], sort=True)
                .size()
                .rename("n")
                .reset_index()
                .rename(columns={classification: "category"})
            )
            counted.insert(2, "classification", classification)
            frames.append(counted)
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> str:
        """Describe the thresholds and the basis of reliable change for each score."""
        lines = []
        for method in self.methods.itertuples(index=False):
            label = SCORES[method.score].label
            meaningful = (
                f"meaningful change {method.meaningful_change:g} ({method.meaningful_source})"
                if pd.notna(method.meaningful_change)
                else "no published meaningful-change threshold"
            )
            reliable = (
                f"reliable change {method.reliable_change:.2f} ({method.reliable_basis})"
                if pd.notna(method.reliable_change)
                else "no reliable change index (no published reliability)"
            )
            lines.append(f"{label}: {meaningful}; {reliable}.")
        return "\n".join(lines)


def classify_change(
    scores: pd.DataFrame,
    *,
    thresholds: Mapping | None = None,
    reliability: Mapping[str, float] | None = None,
) -> ChangeClassification:
    """Classify each person's change from baseline to every follow-up, direction-aware.

    Parameters
    ----------
    scores
        Long scores (``client_id, score, timepoint, value``), e.g.
        ``score_measures(...).scores``; time point 0 is baseline.
    thresholds
        Score name to :class:`spimpact.params.ChangeThresholds` (``meaningful``,
        ``reliable``, ``source``), e.g. ``params.measures.thresholds``; overrides the
        defaults in :data:`spimpact.scoring.SCORES`.
    reliability
        Score name to a test–retest reliability (0–1) to use for the reliable change
        index with the scheme's baseline SD, instead of the published threshold.

    Returns
    -------
    ChangeClassification

    Raises
    ------
    ValueError
        For missing columns, unknown scores, duplicate client × score × time point rows
        or a reliability outside (0, 1).

    Notes
    -----
    Reliable change index (Jacobson NS, Truax P. J Consult Clin Psychol 1991;59(1):12-19):
    ``RCI = improvement / s_diff`` with ``s_diff = √2 · SEM`` and ``SEM = SD_baseline ·
    √(1 − r)``; ``|RCI| ≥ 1.96`` is reliable. The basis of ``s_diff`` is, in order: a
    ``reliability`` given here (with the baseline SD of this data); a reliable-change
    threshold ``T`` from ``thresholds`` or ``SCORES`` (``s_diff = T / 1.96``, so RCI ≥
    1.96 exactly when the change reaches T; SWEMWBS 2.87 = 2.77 SEM, Shah et al. 2018); a
    published SEM; a published test–retest reliability with the baseline SD.
    Meaningful change: SWEMWBS 1.03 metric points (1 SEM, Shah et al. 2018), WHO-5 10
    percentage points (WHO-5 scoring sheet); other scores have none by default.

    Examples
    --------
    >>> scores = pd.DataFrame({"client_id": ["a", "a"], "score": ["who5_pct"] * 2,
    ...                        "timepoint": [0, 1], "value": [40.0, 52.0]})
    >>> classify_change(scores).changes.loc[0, "meaningful"]
    'improved'
    """
    missing = [c for c in ("client_id", "score", "timepoint", "value") if c not in scores]
    if missing:
        raise ValueError(f"scores lack column(s) {', '.join(missing)}")
    unknown = sorted(set(scores["score"]) - set(SCORES))
    if unknown:
        raise ValueError(
            f"unknown score(s) {', '.join(map(str, unknown))}; see spimpact.scoring.SCORES"
        )
    thresholds = dict(thresholds or {})
    reliability = dict(reliability or {})
    for name, value in reliability.items():
        if name not in SCORES:
            raise ValueError(f"reliability given for unknown score {name!r}")
        if not 0 < value < 1:
            raise ValueError(f"reliability of {name!r} must be between 0 and 1, got {value}")
    for name in thresholds:
        if name not in SCORES:
            raise ValueError(f"thresholds given for unknown score {name!r}")
    duplicated = scores.duplicated(["client_id", "score", "timepoint"])
    if duplicated.any():
        first = scores.loc[duplicated].iloc[0]
        raise ValueError(
            f"more than one {first['score']} value at time point {first['timepoint']} for a "
            "client; scores must be unique per client, score and time point"
        )

    values = scores[["client_id", "score", "timepoint", "value"]].dropna(subset=["value"])
    baseline = values[values["timepoint"] == 0].drop(columns="timepoint")
    follow_up = values[values["timepoint"] > 0]
    changes = follow_up.merge(
        baseline, on=["client_id", "score"], suffixes=("_follow_up", "_baseline")
    ).rename(columns={"value_baseline": "baseline", "value_follow_up": "follow_up"})
    changes["change"] = changes["follow_up"] - changes["baseline"]
    sign = changes["score"].map(lambda s: 1.0 if SCORES[s].higher_is_better else -1.0)
    changes["improvement"] = changes["change"] * sign

    methods = [
        _method(name, thresholds.get(name), reliability.get(name), baseline)
        for name in sorted(set(changes["score"]), key=list(SCORES).index)
    ]
    method_frame = pd.DataFrame(methods, columns=list(METHOD_COLUMNS))
    by_score = method_frame.set_index("score")
    meaningful = changes["score"].map(by_score["meaningful_change"]).astype(float)
    s_diff = changes["score"].map(by_score["s_diff"]).astype(float)
    changes["meaningful"] = _classify(
        changes["improvement"], meaningful, ("improved", "no meaningful change", "deteriorated")
    )
    changes["rci"] = changes["improvement"] / s_diff
    changes["reliable"] = _classify(
        changes["rci"],
        pd.Series(np.where(s_diff.notna(), RCI_CRITICAL, np.nan), index=changes.index),
        ("reliable improvement", "no reliable change", "reliable deterioration"),
    )
    changes = changes.sort_values(["client_id", "score", "timepoint"], kind="stable")
    return ChangeClassification(
        changes=changes[list(CHANGE_COLUMNS)].reset_index(drop=True), methods=method_frame
    )


def _method(name: str, given, retest: float | None, baseline: pd.DataFrame) -> dict:
    """Thresholds and the standard error of the difference for one score, with sources."""
    info = SCORES[name]
    meaningful = getattr(given, "meaningful", None)
    meaningful_source = getattr(given, "source", None)
    if meaningful is None and info.meaningful_change is not None:
        meaningful, meaningful_source = info.meaningful_change, info.change_source
    baseline_values = baseline.loc[baseline["score"] == name, "value"]
    sd = float(baseline_values.std(ddof=1)) if len(baseline_values) > 1 else np.nan

    s_diff, basis = np.nan, None
    if retest is not None and np.isfinite(sd):
        s_diff = np.sqrt(2) * sd * np.sqrt(1 - retest)
        basis = (
            f"Jacobson-Truax with test-retest reliability {retest:g} as given and this "
            f"scheme's baseline SD {sd:.2f}"
        )
    elif getattr(given, "reliable", None) is not None:
        s_diff = given.reliable / RCI_CRITICAL
        basis = f"threshold {given.reliable:g} as given ({given.source})"
    elif info.reliable_change is not None:
        s_diff = info.reliable_change / RCI_CRITICAL
        basis = f"published threshold ({info.change_source})"
    elif info.sem is not None:
        s_diff = np.sqrt(2) * info.sem
        basis = f"Jacobson-Truax with published SEM {info.sem:g} ({info.sem_source})"
    elif info.test_retest is not None and np.isfinite(sd):
        s_diff = np.sqrt(2) * sd * np.sqrt(1 - info.test_retest)
        basis = (
            f"Jacobson-Truax with test-retest reliability {info.test_retest:g} "
            f"({info.test_retest_source}) and this scheme's baseline SD {sd:.2f}"
        )
    return {
        "score": name,
        "higher_is_better": info.higher_is_better,
        "meaningful_change": np.nan if meaningful is None else float(meaningful),
        "meaningful_source": meaningful_source,
        "s_diff": s_diff,
        "reliable_change": s_diff * RCI_CRITICAL,
        "reliable_basis": basis,
    }


def _classify(value: pd.Series, threshold: pd.Series, labels: tuple[str, str, str]) -> pd.Series:
    better, same, worse = labels
    out = np.where(
        value >= threshold - _EPSILON, better, np.where(value <= -threshold + _EPSILON, worse, same)
    ).astype(object)
    out[threshold.isna().to_numpy() | value.isna().to_numpy()] = None
    return pd.Series(out, index=value.index, dtype=object)
