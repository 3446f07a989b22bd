"""The attrition data: one row per client with a baseline score, and their characteristics.

``prepare_attrition_data`` builds the frame the weighting, imputation and mixed
models share; the helpers here pool small categories and choose the characteristics
a model with a given number of events can afford (used by the dropout models too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Categories with fewer people are pooled into "other or unknown" in the dropout models,
# so that no logistic or Cox coefficient rests on a handful of people (which would also
# make it unstable through separation).
MIN_CATEGORY_SIZE = 10
# The characteristics retention is compared across (log-rank tests), with their labels.
SUBGROUPS = {
    "imd_quintile": "IMD quintile",
    "age_band": "Age band",
    "sex": "Sex",
    "ethnic_group": "Ethnic group",
}
CHARACTERISTIC_LABELS = {
    "baseline": "Baseline score",
    "age": "Age (years)",
    "age_band": "Age band",
    **SUBGROUPS,
}
# Events per parameter needed before another covariate joins the dropout models
# (Peduzzi et al. 1996, J Clin Epidemiol 49:1373-1379).
EVENTS_PER_PARAMETER = 10


@dataclass(frozen=True)
class AttritionData:
    """One row per client with a baseline score, in the shape the estimators need.

    ``frame`` has ``client_id, baseline, follow_up_<t>`` (one per follow-up time point,
    missing where not returned), ``change`` (first follow-up minus baseline) and the
    baseline ``characteristics`` (complete: missing categories are "other or unknown").
    ``covariates`` are the characteristics the dropout and imputation models use: as
    many as the number of people lost (or kept, if fewer) supports at
    ``EVENTS_PER_PARAMETER`` per parameter, in the order age, sex, IMD, ethnic group.
    """

    frame: pd.DataFrame
    score: str
    follow_ups: tuple[int, ...]
    covariates: tuple[str, ...]
    characteristics: tuple[str, ...]
    censoring_formula: str

    @property
    def first_follow_up(self) -> int:
        """The follow-up time point whose change is estimated."""
        return self.follow_ups[0]

    @property
    def completed(self) -> pd.Series:
        """Whether each client returned the first follow-up."""
        return self.frame[f"follow_up_{self.first_follow_up}"].notna()


def prepare_attrition_data(
    clients: pd.DataFrame, scores: pd.DataFrame, *, score: str
) -> AttritionData:
    """Build the one-row-per-client frame for the attrition estimators.

    Only standard (not ``non_standard``) scores of ``score`` are used. Clients without a
    baseline score are left out (they have no change to lose). Covariates: ``age``
    (numeric when recorded for everyone, otherwise ``age_band``), ``sex``,
    ``imd_quintile`` and ``ethnic_group`` as categories, small categories pooled.
    """
    needed = {"client_id", "score", "timepoint", "value"}
    missing = needed - set(scores.columns)
    if missing:
        raise ValueError(f"scores is missing columns {sorted(missing)}")
    rows = scores[scores["score"] == score]
    if "non_standard" in rows.columns:
        rows = rows[~rows["non_standard"].fillna(False).astype(bool)]
    rows = rows.dropna(subset=["value"])
    wide = rows.pivot_table(index="client_id", columns="timepoint", values="value", aggfunc="first")
    if 0 not in wide.columns:
        empty = pd.DataFrame(columns=["client_id", "baseline", "follow_up_1", "change"])
        return AttritionData(empty, score, (1,), (), (), "baseline")
    follow_ups = tuple(sorted(int(t) for t in wide.columns if t > 0)) or (1,)
    frame = pd.DataFrame({"client_id": wide.index.astype(str), "baseline": wide[0].to_numpy()})
    for t in follow_ups:
        frame[f"follow_up_{t}"] = wide[t].to_numpy() if t in wide.columns else np.nan
    frame = frame.dropna(subset=["baseline"]).reset_index(drop=True)
    frame["change"] = frame[f"follow_up_{follow_ups[0]}"] - frame["baseline"]
    people = clients.assign(client_id=clients["client_id"].astype(str)).set_index("client_id")
    people = people.reindex(frame["client_id"])
    candidates = add_characteristics(frame, people)
    completed = frame[f"follow_up_{follow_ups[0]}"].notna()
    events = int(min(completed.sum(), (~completed).sum()))
    separated = separated_characteristics(frame, candidates, completed.astype(int))
    usable = [c for c in candidates if c not in separated]
    covariates = covariates_within_budget(frame, usable, events)
    terms = ["baseline", *(model_term(frame, c) for c in covariates)]
    return AttritionData(
        frame=frame,
        score=score,
        follow_ups=follow_ups,
        covariates=tuple(covariates),
        characteristics=tuple(candidates),
        censoring_formula=" + ".join(terms),
    )


def covariates_within_budget(
    frame: pd.DataFrame, candidates, events: int, *, n_fixed: int = 2
) -> tuple[str, ...]:
    """Return the candidate columns a model with ``events`` events can afford, in order.

    ``n_fixed`` parameters come first (intercept and baseline score for the logistic
    models; none for the Cox model of everyone referred); each further column
    joins only while there are at least ``EVENTS_PER_PARAMETER`` events per parameter
    (a category with ``k`` levels costs ``k - 1``); columns with one level are skipped.
    """
    chosen = []
    n_parameters = n_fixed
    for column in candidates:
        cost = 1 if column == "age" else frame[column].nunique() - 1
        if cost < 1 or events < EVENTS_PER_PARAMETER * (n_parameters + cost):
            continue
        chosen.append(column)
        n_parameters += cost
    return tuple(chosen)


def separated_characteristics(frame: pd.DataFrame, candidates, outcome: pd.Series) -> list[str]:
    """Categorical candidates with a category in which the 0/1 ``outcome`` never varies.

    Such a category makes a logistic or Cox coefficient infinite (separation), so the
    characteristic is left out of that model.
    """
    out = []
    for column in candidates:
        if pd.api.types.is_numeric_dtype(frame[column]):
            continue
        by_level = outcome.groupby(frame[column].to_numpy())
        if by_level.max().eq(0).any() or by_level.min().eq(1).any():
            out.append(column)
    return out


def model_term(frame: pd.DataFrame, column: str) -> str:
    """Formula term of ``column``: as it is when numeric, ``C(column)`` for a category."""
    return column if pd.api.types.is_numeric_dtype(frame[column]) else f"C({column})"


def add_characteristics(target: pd.DataFrame, source: pd.DataFrame) -> list[str]:
    """Copy age (or age band) and pooled sex, IMD and ethnic group from ``source`` rows.

    ``target`` and ``source`` are aligned row by row; returns the columns added.
    """
    added = []
    if "age" in source.columns and source["age"].notna().all():
        target["age"] = source["age"].to_numpy(dtype=float)
        added.append("age")
    elif "age_band" in source.columns:
        target["age_band"] = pooled_categories(source["age_band"])
        added.append("age_band")
    for column in ("sex", "imd_quintile", "ethnic_group"):
        if column in source.columns:
            target[column] = pooled_categories(source[column])
            added.append(column)
    return added


def pooled_categories(values: pd.Series) -> np.ndarray:
    """Lower-cased categories; missing, unknown and small ones become "other or unknown".

    A category is small with fewer than ``MIN_CATEGORY_SIZE`` people.

    Examples
    --------
    >>> pooled_categories(pd.Series(["A"] * 10 + ["B", None]))[-2:].tolist()
    ['other or unknown', 'other or unknown']
    """
    text = values.astype("string").fillna("unknown").str.lower()
    text = text.where(~text.isin(["unknown", "<na>", "nan"]), "other or unknown")
    counts = text.value_counts()
    small = counts[counts < MIN_CATEGORY_SIZE].index
    text = text.where(~text.isin(small), "other or unknown")
    return text.to_numpy(dtype=object)
