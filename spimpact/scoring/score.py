"""One entry point: score a scheme's long measures table into one tidy long frame."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.scoring.eq5d import EQ5D_VALUE_SETS, score_eq5d5l
from spimpact.scoring.loneliness import score_ons_loneliness, score_ucla3
from spimpact.scoring.mycaw import score_mycaw
from spimpact.scoring.ons4 import score_ons4
from spimpact.scoring.registry import SCORES
from spimpact.scoring.swemwbs import score_swemwbs, score_wemwbs
from spimpact.scoring.validate import EXCLUSION_COLUMNS, ItemCheck, validate_items
from spimpact.scoring.who5 import score_who5

SCORE_COLUMNS = (
    "client_id",
    "measure",
    "timepoint",
    "date",
    "score",
    "value",
    "non_standard",
    "band",
    "poor_band",
    "note",
    "source_row",
)
# SWEMWBS (missing-item rule) and EQ-5D (client age and sex) are called with options.
_SCORERS = {
    "wemwbs": score_wemwbs,
    "ons4": score_ons4,
    "who5": score_who5,
    "mycaw": score_mycaw,
    "ucla3": score_ucla3,
    "ons_loneliness": score_ons_loneliness,
}


@dataclass(frozen=True)
class ScoredMeasures:
    """Scores of a scheme's measures.

    Attributes
    ----------
    scores
        Long frame ``client_id, measure, timepoint, date, score, value, non_standard,
        band, poor_band, note, source_row``: one row per client × time point × score.
        ``band`` is the published band (ONS4, WHO-5, UCLA-3, ONS loneliness), ``poor_band``
        whether it is the poor one, ``note`` why a row is non-standard.
    exclusions
        ``row, column, value, reason`` for every measures row (``row`` = ``source_row``)
        that could not be scored, or whose EQ-5D index could not be computed.
    non_standard
        Per-measure problems found by :func:`spimpact.scoring.validate_items`.
    eq5d_value_set
        Machine name of the EQ-5D value set used for ``eq5d5l_index``.
    """

    scores: pd.DataFrame
    exclusions: pd.DataFrame
    non_standard: pd.DataFrame
    eq5d_value_set: str

    @property
    def eq5d_value_set_label(self) -> str:
        """The value set in words, for the report."""
        return EQ5D_VALUE_SETS[self.eq5d_value_set]

    def summary(self) -> str:
        """Describe the value set, people scored per score and rows not scored."""
        lines = [f"EQ-5D value set: {self.eq5d_value_set_label}."]
        people = self.scores.groupby("score", sort=False)["client_id"].nunique()
        for score, n in people.items():
            lines.append(f"{SCORES[score].label}: {n} scored")
        lines.append(f"Rows not scored: {len(self.exclusions)}")
        return "\n".join(lines)


def score_measures(
    measures: pd.DataFrame | ItemCheck,
    *,
    clients: pd.DataFrame | None = None,
    eq5d_value_set: str = "dsu_5l_to_3l",
    swemwbs_max_missing_items: int = 0,
    variants: Mapping | None = None,
) -> ScoredMeasures:
    """Score every measures row of a scheme.

    Parameters
    ----------
    measures
        Either the result of :func:`validate_items` (as ``spimpact.io`` checks every
        scheme on load: its rows are scored as they are), or a raw long measures table
        (``client_id, measure, timepoint, date, item_1`` … ``item_14, source_row``),
        which is checked here first with ``variants`` and the missing-item rule.
    clients
        Needed for the default EQ-5D value set (NICE DSU mapping): ``client_id``, ``sex``
        and ``age`` (or ``age_band``).
    eq5d_value_set
        Machine name of the EQ-5D value set (:data:`EQ5D_VALUE_SETS`).
    swemwbs_max_missing_items
        0 (standard) or 1 (opt-in person-mean imputation of one item, flagged).
    variants
        Measure name to a declared scale variant (``observed_min``, ``observed_max``,
        ``reason``), applied when ``measures`` is a raw table.

    Returns
    -------
    ScoredMeasures

    Notes
    -----
    Scoring rules and sources per instrument are in the modules of ``spimpact.scoring``
    (SPEC §1). ONS4 and MYCaW items are separate scores, never summed.

    Examples
    --------
    >>> table = pd.DataFrame({"client_id": ["a"], "measure": ["who5"], "timepoint": [0],
    ...     "date": ["2026-01-05"], "source_row": [2], "item_1": [3], "item_2": [3],
    ...     "item_3": [2], "item_4": [2], "item_5": [3]})
    >>> score_measures(table).scores[["score", "value", "band"]].to_numpy().tolist()
    [['who5_raw', 13.0, 'above 50'], ['who5_pct', 52.0, 'above 50']]
    """
    if eq5d_value_set not in EQ5D_VALUE_SETS:
        raise ValueError(
            f"unknown EQ-5D value set {eq5d_value_set!r}; choose from {sorted(EQ5D_VALUE_SETS)}"
        )
    table = measures.measures if isinstance(measures, ItemCheck) else measures
    for column in ("client_id", "timepoint"):
        if column not in table.columns:
            raise ValueError(f"measures table lacks column {column!r}")
    check = (
        measures
        if isinstance(measures, ItemCheck)
        else validate_items(
            measures,
            variants=variants,
            max_missing_items={"swemwbs": swemwbs_max_missing_items},
        )
    )
    rows = check.measures
    if "date" not in rows.columns:
        rows = rows.assign(date=pd.NaT)
    frames, unscored = [], [check.exclusions]
    for measure, group in rows.groupby("measure", sort=True):
        if measure == "swemwbs":
            frames.append(score_swemwbs(group, max_missing_items=swemwbs_max_missing_items))
        elif measure == "eq5d5l":
            age, sex = _client_age_sex(group, clients, eq5d_value_set)
            scored, not_scored = score_eq5d5l(group, value_set=eq5d_value_set, age=age, sex=sex)
            frames.append(scored)
            unscored.append(_to_exclusions(not_scored, rows))
        else:
            frames.append(_SCORERS[measure](group))
    scores = _attach(frames, rows)
    exclusions = (
        pd.concat([frame for frame in unscored if len(frame)], ignore_index=True)
        if any(len(frame) for frame in unscored)
        else check.exclusions.iloc[0:0]
    )
    return ScoredMeasures(
        scores=scores,
        exclusions=exclusions.sort_values("row", kind="stable").reset_index(drop=True),
        non_standard=check.non_standard,
        eq5d_value_set=eq5d_value_set,
    )


def _attach(frames: list[pd.DataFrame], rows: pd.DataFrame) -> pd.DataFrame:
    """Join client, time point and variant details onto the scorers' long frames."""
    if not frames:
        return pd.DataFrame({column: [] for column in SCORE_COLUMNS})
    long = pd.concat(frames, ignore_index=True)
    context = rows.loc[
        long["index"], ["client_id", "measure", "timepoint", "date", "source_row", "variant"]
    ].reset_index(drop=True)
    long = pd.concat([long.drop(columns="index"), context], axis=1)
    mapped = long["variant"].notna()
    variant_note = "items mapped from a modified scale as params declare: " + long[
        "variant"
    ].astype(str)
    long["note"] = np.where(
        mapped,
        np.where(
            long["note"].notna(), long["note"].astype(str) + "; " + variant_note, variant_note
        ),
        long["note"],
    )
    long["note"] = long["note"].astype(object).where(long["note"].notna(), None)
    long["non_standard"] = long["non_standard"].astype(bool) | mapped
    long["score"] = pd.Categorical(long["score"], categories=list(SCORES), ordered=True)
    long = long.sort_values(["client_id", "measure", "timepoint", "score"], kind="stable")
    long["score"] = long["score"].astype(str)
    return long[list(SCORE_COLUMNS)].reset_index(drop=True)


def _client_age_sex(group: pd.DataFrame, clients: pd.DataFrame | None, value_set: str):
    """Age (years, else band) and sex of each row's client, for the DSU mapping."""
    if value_set != "dsu_5l_to_3l":
        return None, None
    if clients is None:
        return (pd.Series([None] * len(group), index=group.index, dtype=object),) * 2
    if "client_id" not in clients.columns or "sex" not in clients.columns:
        raise ValueError("clients table needs client_id and sex for the NICE DSU EQ-5D mapping")
    lookup = clients.drop_duplicates("client_id").set_index("client_id")
    age = pd.Series([None] * len(group), index=group.index, dtype=object)
    for column in ("age_band", "age"):  # age in years wins over a band when both are given
        if column in lookup.columns:
            values = group["client_id"].map(lookup[column])
            age = age.where(values.isna(), values.astype(object))
    sex = group["client_id"].map(lookup["sex"]).astype(object)
    return age, sex


def _to_exclusions(not_scored: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    if not_scored.empty:
        return pd.DataFrame(columns=list(EXCLUSION_COLUMNS))
    return pd.DataFrame(
        {
            "row": rows.loc[not_scored["index"], "source_row"].to_numpy().astype("int64"),
            "column": not_scored["column"].to_numpy(),
            "value": not_scored["value"].to_numpy(),
            "reason": ("EQ-5D index not computed: " + not_scored["reason"]).to_numpy(),
        }
    )
