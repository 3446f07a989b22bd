"""Fit a design on its matched sample: the estimate, its weights and its standard errors.

The difference-in-differences is taken on person means: each person's mean appointments
per observed month in the baseline and in the post-period (two rows per person), so that
a person observed for fewer months (referred late, or leaving the practice) is still one
person, and the estimate is the weighted mean over clients of their own change minus
that of their matched comparison patients. :func:`choose_inference` picks standard
errors that match the design (clustered by GP practice when practices are known, else
by matched set); :func:`fit_design` runs the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.attendance.design import Design
from spimpact.analyses.attendance.matched_sets import PRACTICE, MatchedSample, set_weights
from spimpact.models.count import fit_poisson
from spimpact.models.did import fit_did_2x2

#: Fewest practices for clustering by practice at all: below this even the wild cluster
#: bootstrap is unreliable (MacKinnon & Webb 2018), so matched sets are used instead.
MIN_PRACTICES_FOR_BOOTSTRAP = 6


@dataclass(frozen=True)
class Inference:
    """How standard errors are computed for a design.

    Attributes
    ----------
    se
        ``"CR2"`` (Bell-McCaffrey with Satterthwaite degrees of freedom), ``"wild"``
        (restricted wild cluster bootstrap, Webb weights) or ``"CR1"``.
    cluster
        Column clustered on: ``practice_code``, ``subclass`` (matched set) or
        ``patient_id``.
    n_clusters
        Number of clusters.
    reason
        Why, in words for the report.
    """

    se: str
    cluster: str
    n_clusters: int
    reason: str


def person_means(panel: pd.DataFrame, design: Design, *, outcome: str) -> pd.DataFrame:
    """Each person's mean ``outcome`` per observed month in the baseline and post-period.

    Returns one row per person and period: ``patient_id, post`` (0 baseline, 1 post),
    ``value`` and ``n_months``, sorted by person and period; people observed in only one
    of the periods are left out.
    """
    months = panel["months_since_index"].to_numpy()
    post = (months >= design.post[0]) & (months <= design.post[1])
    keep = post | ((months >= design.baseline[0]) & (months <= design.baseline[1]))
    ids = panel["patient_id"].to_numpy()[keep]
    if np.issubdtype(ids.dtype, np.integer) and ids.size and ids.min() >= 0:
        # people already coded 0..n-1 (the analysis panel): no sort needed
        codes, people = ids, np.arange(int(ids.max()) + 1, dtype=ids.dtype)
    else:
        codes, people = pd.factorize(ids, sort=True)
    cell = 2 * codes.astype(np.int64) + post[keep]
    size = 2 * len(people)
    n_months = np.bincount(cell, minlength=size)
    values = panel[outcome].to_numpy()[keep].astype(float)
    total = np.bincount(cell, weights=values, minlength=size)
    both = (n_months[0::2] > 0) & (n_months[1::2] > 0)
    n_months = n_months.reshape(-1, 2)[both]
    total = total.reshape(-1, 2)[both]
    return pd.DataFrame(
        {
            "patient_id": np.repeat(np.asarray(people)[both], 2),
            "post": np.tile([0, 1], int(both.sum())),
            "value": (total / n_months).ravel(),
            "n_months": n_months.ravel(),
        }
    )


def people_rows(
    panel: pd.DataFrame, people: pd.DataFrame, months: pd.Series, attach, *, columns
) -> pd.DataFrame:
    """The panel's rows in ``months`` of ``people``, with the people's ``attach`` columns.

    ``patient_id, treated, months_since_index`` and ``columns`` of the panel: the inner
    join of the panel with ``people`` (one row each) without copying every panel column.
    """
    rows = panel.loc[months, ["patient_id", "treated", "months_since_index", *columns]]
    position = pd.Index(people["patient_id"]).get_indexer(rows["patient_id"])
    keep = position >= 0
    rows = rows[keep].reset_index(drop=True)
    for name in attach:
        rows[name] = people[name].to_numpy()[position[keep]]
    return rows


def design_frame(
    panel: pd.DataFrame, sample: MatchedSample, design: Design, *, outcome: str
) -> pd.DataFrame:
    """Person-period means of the sample's people with their set, weight and practice.

    For matched sets the weights are recomputed among the people observed in both
    periods of ``design`` (a set loses a comparison patient: the others share its
    weight; a set loses its client: the set is dropped).
    """
    means = person_means(panel, design, outcome=outcome)
    sets = sample.sets[sample.sets["patient_id"].isin(means["patient_id"])]
    if sample.matching is not None:
        sets = set_weights(sets)
    frame = sets.merge(means, on="patient_id", how="inner")
    return frame.sort_values(["subclass", "patient_id", "post"]).reset_index(drop=True)


def choose_inference(frame: pd.DataFrame, comparison, *, matched: bool) -> Inference:
    """Standard errors that match the design (docs/methods.md, "GP attendance").

    Practices recorded for the people analysed: clustered by practice, CR2 with
    Satterthwaite degrees of freedom from ``comparison.min_practices_for_cr2``
    practices up, otherwise the wild cluster bootstrap (from
    ``MIN_PRACTICES_FOR_BOOTSTRAP`` practices). Otherwise clustered by matched set,
    which is valid for matching without replacement (Abadie & Spiess 2022), or by
    person without matching.
    """
    practices = frame[PRACTICE] if PRACTICE in frame else pd.Series(dtype=object)
    n_practices = int(practices.nunique()) if practices.notna().all() else 0
    if n_practices >= comparison.min_practices_for_cr2:
        return Inference(
            "CR2",
            PRACTICE,
            n_practices,
            f"clustered by GP practice ({n_practices} practices), bias-reduced (CR2) with "
            "Satterthwaite degrees of freedom, because people at the same practice share "
            "its appointment system and its changes",
        )
    if n_practices >= MIN_PRACTICES_FOR_BOOTSTRAP:
        return Inference(
            "wild",
            PRACTICE,
            n_practices,
            f"clustered by GP practice with the wild cluster bootstrap ({n_practices} "
            f"practices: fewer than {comparison.min_practices_for_cr2}, too few for "
            "sandwich standard errors to be trusted)",
        )
    unit = "subclass" if matched else "patient_id"
    clusters = int(frame[unit].nunique())
    if matched:
        reason = (
            f"clustered by matched set ({clusters} sets), valid for matching without "
            "replacement (Abadie & Spiess 2022)"
        )
    else:
        reason = f"clustered by person ({clusters} people)"
    if 0 < n_practices < MIN_PRACTICES_FOR_BOOTSTRAP:
        reason += (
            f"; with only {n_practices} GP practices, correlation within a practice cannot "
            "be allowed for"
        )
    elif PRACTICE in frame and practices.isna().any() and practices.notna().any():
        reason += "; GP practice is not recorded for everyone, so it cannot be clustered on"
    return Inference("CR1", unit, clusters, reason)


def fit_design(
    panel: pd.DataFrame,
    sample: MatchedSample,
    design: Design,
    *,
    outcome: str,
    comparison,
    conf_level: float,
    seed: int,
):
    """Fit ``design`` on ``sample``: a weighted DiD of person means, or the Poisson model.

    Returns
    -------
    tuple
        ``(fit, inference, frame)``: the :class:`~spimpact.models.did.DidResult` (term
        ``treated:post``) or :class:`~spimpact.models.count.PoissonResult` (term
        ``treated_post``), the :class:`Inference` used and the person-period frame.
    """
    frame = design_frame(panel, sample, design, outcome=outcome)
    matched = sample.matching is not None
    inference = choose_inference(frame, comparison, matched=matched)
    if design.model == "poisson":
        fit = _fit_poisson(panel, frame, design, outcome, inference, conf_level, matched)
        return fit, inference, frame
    fit = fit_did_2x2(
        frame,
        outcome="value",
        treated="treated",
        post="post",
        cluster=inference.cluster,
        weights="weight",
        se=inference.se,
        bootstrap_draws=comparison.bootstrap_draws,
        bootstrap_weights="webb",
        seed=seed,
        conf_level=conf_level,
    )
    return fit, inference, frame


def _fit_poisson(panel, frame, design, outcome, inference, conf_level, matched):
    """Poisson rate ratio on the person-months of the design, person and month fixed effects."""
    # CR1 only for the Poisson model: by practice when there are enough practices for a
    # sandwich to be trusted, otherwise by matched set (or person)
    cluster = inference.cluster
    if inference.se == "wild":
        cluster = "subclass" if matched else "patient_id"
    people = frame.drop_duplicates("patient_id")
    months = panel["months_since_index"]
    in_design = months.between(*design.baseline) | months.between(*design.post)
    rows = people_rows(
        panel, people, in_design, ["weight", *{cluster} - {"patient_id"}], columns=[outcome]
    )
    rows["treated_post"] = rows["treated"] * rows["months_since_index"].between(*design.post)
    return fit_poisson(
        f"{outcome} ~ treated_post",
        rows,
        absorb=["patient_id", "months_since_index"],
        cluster=cluster,
        weights="weight",
        conf_level=conf_level,
    )
