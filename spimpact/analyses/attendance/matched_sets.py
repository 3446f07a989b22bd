"""Matched sets of a client and comparison patients who share calendar time.

:func:`match_comparisons` builds the primary design's comparison group: comparison
patients indexed in the client's own calendar month (or, for clients left without one,
up to ``index_month_caliper`` months away), at the client's GP practice when practices
are recorded, matched 1:k on a propensity score of demographics and the trajectory of
attendance before the compared months. :func:`stack_comparisons` builds the
alternative without propensity matching: every comparison patient indexed in a client's
month, weighted per index-month stack as Wing, Freedman & Hollingsworth (2024).

Both return a :class:`MatchedSample` whose ``sets`` carry the weights the outcome models
use: a client 1 and each of its ``k`` comparison patients ``1/k`` (each set one
sub-experiment with its client counted once), or the stack weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.attendance.cohort import attendance_history, matching_columns
from spimpact.analyses.attendance.design import HISTORY_BINS, Design
from spimpact.models.matching import MatchResult, group_positions, match_nearest
from spimpact.publish.section import InsufficientData

PRACTICE = "practice_code"
INDEX_MONTH = "index_month"
SET_COLUMNS = ("patient_id", "treated", "subclass", "weight", "index_month_number", PRACTICE)


@dataclass(frozen=True, eq=False)
class MatchedSample:
    """The people a design compares, in matched sets, with their weights.

    Attributes
    ----------
    sets
        One row per person: ``patient_id, treated, subclass`` (the matched set, or the
        index-month stack), ``weight`` (client 1, comparison patients ``1/k`` of their
        set, or the stack's corrective weight), ``index_month_number`` (year x 12 +
        month - 1) and ``practice_code`` (``None`` when not recorded).
    matching
        The propensity matching (``None`` for index-month stacks); its weights and sets
        are those of ``sets``, so its balance describes the people analysed.
    covariates, exact
        Columns matched on (propensity model) and exactly.
    n_clients_eligible
        Clients with a month observed in both the baseline and the post-period.
    n_clients_nearby_month
        Clients whose comparison patients were indexed in a nearby month (caliper).
    diagnostics
        Plain-English notes gathered while matching.
    """

    sets: pd.DataFrame
    matching: MatchResult | None
    covariates: tuple[str, ...]
    exact: tuple[str, ...]
    n_clients_eligible: int
    n_clients_nearby_month: int
    diagnostics: tuple[str, ...]

    @property
    def n_clients(self) -> int:
        """Clients in a matched set."""
        return int((self.sets["treated"] == 1).sum())

    @property
    def n_comparison(self) -> int:
        """Comparison patients in a matched set."""
        return int((self.sets["treated"] == 0).sum())


def eligible_people(panel: pd.DataFrame, design: Design) -> pd.Index:
    """People with at least one observed month in the baseline and one in the post-period."""
    months = panel["months_since_index"]
    seen_before = panel.loc[months.between(*design.baseline), "patient_id"].unique()
    seen_after = panel.loc[months.between(*design.post), "patient_id"].unique()
    return pd.Index(np.intersect1d(seen_before, seen_after))


def _month_number(people: pd.DataFrame) -> pd.Series:
    dates = pd.to_datetime(people["index_date"])
    return dates.dt.year * 12 + dates.dt.month - 1


def _practices_known(people: pd.DataFrame) -> bool:
    return PRACTICE in people.columns and people[PRACTICE].notna().any()


def match_comparisons(
    people: pd.DataFrame,
    panel: pd.DataFrame,
    design: Design,
    comparison,
    *,
    outcome: str,
    min_clients: int,
) -> MatchedSample:
    """Match comparison patients to clients for ``design`` (see the module docstring).

    Parameters
    ----------
    people
        One row per person (:func:`~spimpact.analyses.attendance.cohort.cohort_people`):
        ``patient_id, index_date, treated, index_month`` and the covariates.
    panel
        Person x month panel covering ``design.months``.
    design
        The months compared and the history matched on.
    comparison
        The params ``comparison`` block (ratio, caliper, exact, covariates,
        ``index_month_caliper``, ``match_within_practice``).
    outcome
        Panel column whose history is matched on.
    min_clients
        Fewest eligible clients for a comparison (else :class:`InsufficientData`).

    Returns
    -------
    MatchedSample
    """
    diagnostics: list[str] = []
    eligible = eligible_people(panel, design)
    people = people[people["patient_id"].isin(eligible)].reset_index(drop=True)
    n_eligible = int((people["treated"] == 1).sum())
    if n_eligible < min_clients or (people["treated"] == 0).sum() == 0:
        raise InsufficientData(
            "Too few clients (or no comparison patients) have GP appointment data in the "
            "months compared before and after referral to compare their attendance with a "
            "matched group."
        )
    covariate_names = list(comparison.covariates)
    if "pre_attendance" in covariate_names:
        if design.history is None:
            covariate_names.remove("pre_attendance")
        else:
            history = attendance_history(panel, design.history, bins=HISTORY_BINS, outcome=outcome)
            people = people.merge(history, left_on="patient_id", right_index=True, how="left")
            unobserved = [c for c in history.columns if people[c].isna().all()]
            people = people.drop(columns=unobserved)
            if 0 < len(unobserved) < len(history.columns):
                diagnostics.append(
                    f"Prior attendance for the {design.name} design was matched on the part of "
                    f"months {design.history[0]} to {design.history[1]} before referral that the "
                    "appointment data cover."
                )
            if len(unobserved) == len(history.columns):
                covariate_names.remove("pre_attendance")
                diagnostics.append(
                    "Prior attendance was not used for matching: the appointment data do not "
                    f"go back to months {design.history[0]} to {design.history[1]} before "
                    "referral, the year before the compared months. Matching on the compared "
                    "months themselves would build regression to the mean into the comparison "
                    "group (Daw & Hatfield 2018, Health Serv Res 53:4138)."
                )
    exact = list(comparison.exact)
    if comparison.match_within_practice and _practices_known(people) and PRACTICE not in exact:
        exact.append(PRACTICE)
    if design.match_index_month:
        exact.append(INDEX_MONTH)
    people = people[_matching_input(people, covariate_names, exact)]
    candidates, covariates = matching_columns(people, covariate_names)
    candidates, _ = matching_columns(candidates, exact)
    result = match_nearest(
        candidates,
        treatment="treated",
        covariates=covariates,
        ratio=comparison.ratio,
        caliper=comparison.caliper,
        replace=False,
        exact=exact,
    )
    n_nearby = 0
    if comparison.index_month_caliper > 0 and design.match_index_month:
        result, n_nearby = _match_nearby_months(
            result, _month_number(candidates).to_numpy(), comparison.index_month_caliper
        )
    diagnostics.extend(result.diagnostics)
    if n_nearby:
        diagnostics.append(
            f"{n_nearby} clients had no comparison patient indexed in their own calendar month "
            f"and were matched to one indexed up to {comparison.index_month_caliper} month(s) "
            "away."
        )
    data = result.data
    matched = data["weights"] > 0
    sets = pd.DataFrame(
        {
            "patient_id": data.loc[matched, "patient_id"].to_numpy(),
            "treated": data.loc[matched, "treated"].astype(int).to_numpy(),
            "subclass": data.loc[matched, "subclass"].astype(int).to_numpy(),
            "index_month_number": _month_number(people).to_numpy()[matched.to_numpy()],
            PRACTICE: (
                people.loc[matched.to_numpy(), PRACTICE].to_numpy()
                if _practices_known(people)
                else None
            ),
        }
    )
    sets = set_weights(sets)
    return MatchedSample(
        sets=sets[list(SET_COLUMNS)],
        matching=result,
        covariates=tuple(covariates),
        exact=tuple(exact),
        n_clients_eligible=n_eligible,
        n_clients_nearby_month=n_nearby,
        diagnostics=tuple(diagnostics),
    )


def _matching_input(people: pd.DataFrame, covariates, exact) -> list[str]:
    """Columns the match reads (not every client attribute: the match keeps a copy)."""
    history = [c for c in people.columns if c.startswith("pre_attendance_months_")]
    wanted = ["patient_id", "treated", "index_date", PRACTICE, *covariates, *history, *exact]
    return [c for c in dict.fromkeys(wanted) if c in people.columns]


def set_weights(sets: pd.DataFrame) -> pd.DataFrame:
    """Weights per matched set: the client 1, each of its ``k`` comparisons ``1/k``.

    Sets left without a client or without a comparison are dropped.
    """
    counts = sets.groupby("subclass")["treated"].agg(["sum", "size"])
    complete = counts.index[(counts["sum"] == 1) & (counts["size"] > 1)]
    sets = sets[sets["subclass"].isin(complete)].copy()
    controls = (counts["size"] - counts["sum"]).reindex(sets["subclass"]).to_numpy()
    sets["weight"] = np.where(sets["treated"] == 1, 1.0, 1.0 / controls)
    return sets.sort_values(["subclass", "treated"], ascending=[True, False]).reset_index(drop=True)


def _match_nearby_months(
    result: MatchResult, month: np.ndarray, caliper_months: int
) -> tuple[MatchResult, int]:
    """Second pass: clients left unmatched take unused comparisons up to ``caliper_months`` away.

    Same exact strata except the index month, same propensity score and caliper, the
    same greedy order (descending propensity score) and ``ratio``; the nearest score
    first, then the nearest month.
    """
    data = result.data.copy()
    treated = data[result.treatment].astype(int).to_numpy() == 1
    weights = data["weights"].to_numpy(dtype=float)
    unmatched = np.flatnonzero(treated & (weights == 0))
    if unmatched.size == 0:
        return result, 0
    others = [c for c in result.exact if c != INDEX_MONTH]
    strata = (
        data.groupby(others, sort=False, observed=True).ngroup().to_numpy()
        if others
        else np.zeros(len(data), dtype=int)
    )
    distance = data["distance"].to_numpy(dtype=float)
    available = ~treated & (weights == 0)
    subclass = data["subclass"].to_numpy(dtype=object)
    next_set = int(pd.Series(subclass).dropna().max() or 0) + 1
    pairs = []
    n_matched = 0
    candidates_of = group_positions(strata, available)  # only these can ever be chosen
    for t in unmatched[np.argsort(-distance[unmatched], kind="stable")]:
        chosen = []
        candidates = candidates_of.get(strata[t].item(), np.array([], dtype=np.intp))
        for _ in range(result.ratio):
            pool = candidates[
                available[candidates] & (np.abs(month[candidates] - month[t]) <= caliper_months)
            ]
            if pool.size == 0:
                break
            gap = np.abs(distance[pool] - distance[t])
            if result.caliper_width is not None:
                keep = gap <= result.caliper_width
                pool, gap = pool[keep], gap[keep]
                if pool.size == 0:
                    break
            best = pool[np.lexsort((np.abs(month[pool] - month[t]), gap))[0]]
            available[best] = False
            chosen.append(best)
        if not chosen:
            continue
        n_matched += 1
        subclass[t] = next_set
        weights[t] = 1.0
        for c in chosen:
            subclass[c] = next_set
            weights[c] = 1.0 / len(chosen)
            pairs.append((next_set, data.index[t], data.index[c], abs(distance[c] - distance[t])))
        next_set += 1
    if n_matched == 0:
        return result, 0
    # MatchIt's scaling: every group's non-zero weights average 1
    for group in (treated, ~treated):
        positive = group & (weights > 0)
        weights[positive] = weights[positive] / weights[positive].mean()
    data["weights"] = weights
    data["subclass"] = pd.array(subclass, dtype="Int64")
    extra = pd.DataFrame(
        pairs, columns=["subclass", "treated_index", "control_index", "distance_gap"]
    )
    n_left = int((treated & (weights == 0)).sum())
    diagnostics = tuple(d for d in result.diagnostics if "found no control" not in d)
    if n_left:
        diagnostics += (
            f"{n_left} of {int(treated.sum())} clients found no comparison patient (within the "
            "caliper, the exact-matching strata and the index months allowed) and are left "
            "out; the estimate then describes the matched clients only.",
        )
    return (
        dataclasses.replace(
            result,
            data=data,
            pairs=pd.concat([result.pairs, extra], ignore_index=True),
            diagnostics=diagnostics,
        ),
        n_matched,
    )


def stack_comparisons(
    people: pd.DataFrame, panel: pd.DataFrame, design: Design, *, min_clients: int
) -> MatchedSample:
    """Index-month stacks: clients and every comparison patient indexed in the same month.

    Each calendar index month with clients is a sub-experiment; its comparison patients
    get the corrective weight ``(N_a^D / N^D) / (N_a^C / N^C)`` of Wing, Freedman &
    Hollingsworth (2024, eq. 6), clients 1, so that pooled estimates weight each month's
    contrast by its share of clients whatever the numbers of comparison patients.
    """
    eligible = eligible_people(panel, design)
    people = people[people["patient_id"].isin(eligible)].reset_index(drop=True)
    month = _month_number(people)
    client_months = set(month[people["treated"] == 1])
    frame = pd.DataFrame(
        {
            "patient_id": people["patient_id"].to_numpy(),
            "treated": people["treated"].astype(int).to_numpy(),
            "subclass": month.to_numpy(),
            "index_month_number": month.to_numpy(),
            PRACTICE: people[PRACTICE].to_numpy() if _practices_known(people) else None,
        }
    )
    frame = frame[frame["subclass"].isin(client_months)]
    counts = frame.groupby(["subclass", "treated"]).size().unstack(fill_value=0)
    counts = counts[(counts.get(0, 0) > 0) & (counts.get(1, 0) > 0)]
    frame = frame[frame["subclass"].isin(counts.index)].copy()
    if (frame["treated"] == 1).sum() < min_clients:
        raise InsufficientData("Too few clients share an index month with comparison patients.")
    share_treated = counts[1] / counts[1].sum()
    share_control = counts[0] / counts[0].sum()
    stack_weight = (share_treated / share_control).reindex(frame["subclass"]).to_numpy()
    frame["weight"] = np.where(frame["treated"] == 1, 1.0, stack_weight)
    frame = frame.sort_values(["subclass", "treated", "patient_id"], ascending=[True, False, True])
    return MatchedSample(
        sets=frame[list(SET_COLUMNS)].reset_index(drop=True),
        matching=None,
        covariates=(),
        exact=(INDEX_MONTH,),
        n_clients_eligible=int((people["treated"] == 1).sum()),
        n_clients_nearby_month=0,
        diagnostics=(),
    )
