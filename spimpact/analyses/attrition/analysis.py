"""Attrition in a social prescribing scheme: who drops out, and the change allowing for it.

Follow-up questionnaires go missing for many clients, and those who stay differ from
those who leave (SPEC §5.3), so the complete-case change in wellbeing can be biased.
``analyse_attrition`` re-estimates the change from baseline to the first follow-up by
inverse probability weighting, multiple imputation and a mixed model (all assuming
data missing at random given what was recorded), with a "no change for those who
left" bound and a tipping-point analysis for data missing not at random, and fits the
retention curves and dropout model of :mod:`spimpact.analyses.attrition.retention`.
Numbers only: :mod:`spimpact.analyses.attrition.section` turns them into the report
section.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.attrition.data import AttritionData, prepare_attrition_data
from spimpact.analyses.attrition.retention import RetentionResult, analyse_retention
from spimpact.models.imputation import impute_mice, pool_analyses
from spimpact.models.ipw import fit_ipw
from spimpact.models.mixed import fit_mixed
from spimpact.models.paired import fit_mean
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy
from spimpact.models.tipping_point import TippingPointResult, fit_tipping_point
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData
from spimpact.scoring import MAIN_SCORE, SCORES

MIN_PEOPLE = 20
MIN_COMPLETERS = 10
MIN_NON_COMPLETERS = 5
METHOD_LABELS = {
    "complete_case": "Complete cases",
    "ipw": "Inverse probability weighting",
    "mi": "Multiple imputation",
    "mixed": "Mixed model",
    "baseline_carried_forward": "No change for those who left",
}


# eq=False: the fields hold frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class AttritionResult(EstimatorResult):
    """The change in the primary score allowing for attrition, and retention (read-only).

    Not yet disclosure-controlled. ``tidy(conf_level=None)`` gives one row per method
    (term = ``key`` of ``estimates``), recomputed at any level from each estimate's
    standard error and degrees of freedom.

    Attributes
    ----------
    data
        The one-row-per-client frame the estimators used.
    estimates
        The change by method: ``key, method, estimate, std_error, conf_low,
        conf_high, p_value, n, df`` (see ``estimate_change``).
    tipping
        Delta-adjusted multiple imputation of the change.
    retention
        Retention curves, log-rank tests and dropout model of everyone referred.
    conf_level
        Level of the intervals.
    diagnostics
        Plain-English notes on the weighting, imputation and mixed models.
    """

    data: AttritionData
    estimates: pd.DataFrame
    tipping: TippingPointResult
    retention: RetentionResult
    conf_level: float
    diagnostics: tuple[str, ...] = ()

    @property
    def score(self) -> str:
        """The score analysed."""
        return self.data.score

    @property
    def n_people(self) -> int:
        """People with a baseline score."""
        return len(self.data.frame)

    @property
    def n_completers(self) -> int:
        """People with a baseline and a first follow-up score."""
        return int(self.data.completed.sum())

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        rows = [
            make_tidy(
                [row.key],
                [row.estimate],
                [row.std_error],
                conf_level=conf_level,
                df=row.df if np.isfinite(row.df) else None,
            )
            for row in self.estimates.itertuples()
        ]
        return pd.concat(rows, ignore_index=True)

    def summary(self) -> str:
        """The change by method, and the shifts at which the imputed change tips."""
        lines = [
            f"Change in {self.score} from baseline to time point {self.data.first_follow_up}: "
            f"{self.n_completers} of {self.n_people} people returned it; "
            f"{self.conf_level:.0%} intervals"
        ]
        for row in self.estimates.itertuples():
            lines.append(
                f"  {row.method}: {row.estimate:+.3f} ({row.conf_low:.3f} to "
                f"{row.conf_high:.3f}; n = {row.n})"
            )
        lines += [f"  {line}" for line in self.tipping.summary().splitlines()[1:3]]
        lines += [f"  - {text}" for text in self.diagnostics]
        return "\n".join(lines)


def analyse_attrition(scheme, scores, *, params: SchemeParams) -> AttritionResult:
    """Estimate the change in the primary score allowing for attrition, and retention.

    Parameters
    ----------
    scheme
        ``spimpact.io.SchemeData`` (``clients`` and ``contacts`` are used).
    scores
        Scored measures: the long frame of ``spimpact.scoring.score_measures`` (or the
        ``ScoredMeasures`` object holding it).
    params
        Scheme parameters: primary measure, time-point labels, seed and confidence level.

    Returns
    -------
    AttritionResult

    Raises
    ------
    InsufficientData
        With fewer than ``MIN_PEOPLE`` people with a baseline score, fewer than
        ``MIN_COMPLETERS`` with the first follow-up, or fewer than
        ``MIN_NON_COMPLETERS`` without it (then attrition cannot bias the change).

    Notes
    -----
    Adjustments follow SPEC §5.4: inverse probability weighting (Hernán & Robins 2020,
    §12.6), multiple imputation by chained equations with predictive mean matching (van
    Buuren 2018) pooled by Rubin's rules, a linear mixed model (valid under missing at
    random given earlier scores), baseline observation carried forward as a
    conservative bound, and a delta-adjusted tipping point (van Buuren 2018, §9.2).
    """
    score = primary_score(params)
    info = SCORES[score]
    scores = getattr(scores, "scores", scores)
    data = prepare_attrition_data(scheme.clients, scores, score=score)
    n_people = len(data.frame)
    n_completers = int(data.completed.sum())
    follow_label = params.measures.timepoints.get(
        data.first_follow_up, f"follow-up {data.first_follow_up}"
    )
    if n_people < MIN_PEOPLE or n_completers < MIN_COMPLETERS:
        raise InsufficientData(
            f"Attrition could not be analysed: {info.label} needs at least {MIN_PEOPLE} people "
            f"with a baseline score and {MIN_COMPLETERS} with a {follow_label} score."
        )
    if n_people - n_completers < MIN_NON_COMPLETERS:
        raise InsufficientData(
            f"Almost everyone with a baseline {info.label} score also has a {follow_label} "
            "score, so loss to follow-up cannot materially bias the change."
        )
    estimates, tipping, notes = estimate_change(
        data,
        seed=params.seed,
        conf_level=params.conf_level,
        higher_is_better=info.higher_is_better,
    )
    retention = analyse_retention(scheme.clients, scheme.contacts, conf_level=params.conf_level)
    return AttritionResult(
        data=data,
        estimates=estimates,
        tipping=tipping,
        retention=retention,
        conf_level=params.conf_level,
        diagnostics=tuple(notes),
    )


def primary_score(params: SchemeParams) -> str:
    """Return the score analysed for the scheme's primary measure."""
    measure = params.measures.primary
    if measure not in MAIN_SCORE:
        raise ValueError(
            f"measures.primary {measure!r} has no primary score; expected one of "
            f"{sorted(MAIN_SCORE)}"
        )
    return MAIN_SCORE[measure]


def estimate_change(
    data: AttritionData,
    *,
    seed: int,
    conf_level: float = 0.95,
    higher_is_better: bool = True,
    m: int = 20,
):
    """Change from baseline to the first follow-up by five methods, and the tipping point.

    Methods (``key``): ``complete_case`` (people with both scores), ``ipw``
    (inverse probability of remaining weighted, :func:`spimpact.models.ipw.fit_ipw`),
    ``mi`` (multiple imputation, :func:`spimpact.models.imputation.impute_mice`),
    ``mixed`` (random-intercept model of every score) and
    ``baseline_carried_forward`` (no change for those who left). Means and their t
    intervals come from :func:`spimpact.models.paired.fit_mean`.

    Returns
    -------
    tuple
        ``(estimates, tipping, notes)``: a frame with ``key, method, estimate, std_error,
        conf_low, conf_high, p_value, n, df`` per method (``df`` the degrees of freedom
        of the t interval, infinite for a normal one); the ``TippingPointResult``; a
        list of plain-English diagnostics.
    """
    frame = data.frame
    completed = data.completed
    notes: list[str] = []
    rows = []

    observed = frame.loc[completed, "change"]
    rows.append(_mean_row("complete_case", observed, conf_level))

    ipw = fit_ipw(
        frame,
        outcome_formula="change ~ 1",
        censoring_formula=data.censoring_formula,
        conf_level=conf_level,
    )
    notes += list(ipw.diagnostics)
    rows.append(_row("ipw", ipw.tidy().iloc[0], len(frame), df=np.inf))

    follow_columns = [f"follow_up_{t}" for t in data.follow_ups]
    imputation_columns = ["baseline", *follow_columns, *data.covariates]
    imputations = impute_mice(frame, m=m, max_iter=5, seed=seed, columns=imputation_columns)
    notes += list(imputations.diagnostics)
    first = follow_columns[0]

    def mean_change(completed_data: pd.DataFrame):
        change = completed_data[first] - completed_data["baseline"]
        return fit_mean(change, conf_level=conf_level, term="change")

    mi = pool_analyses(
        imputations.datasets, mean_change, dfcom=len(frame) - 1, conf_level=conf_level
    )
    rows.append(_row("mi", mi.tidy().iloc[0], len(frame), df=float(mi.pooled["df"].iloc[0])))

    mixed_row, mixed_notes = _mixed_change(data, follow_columns, conf_level)
    notes += mixed_notes
    if mixed_row is not None:
        rows.append(mixed_row)

    carried = frame["change"].where(completed, 0.0)
    rows.append(_mean_row("baseline_carried_forward", carried, conf_level))

    mi_estimate = float(mi.pooled["estimate"].iloc[0])
    share_missing = float((~completed).mean())
    worse = -1.0 if higher_is_better else 1.0
    # the pooled mean moves by delta x (share imputed), so it reaches zero near
    # |estimate| / share; the grid reaches one and a half times that
    reach = (
        1.5
        * max(abs(mi_estimate), float(mi.pooled["std_error"].iloc[0]) * 4)
        / max(share_missing, 1e-9)
    )
    deltas = worse * np.linspace(0, reach, 21)
    tipping = fit_tipping_point(
        imputations,
        mean_change,
        column=first,
        term="change",
        deltas=deltas,
        dfcom=len(frame) - 1,
        conf_level=conf_level,
    )
    estimates = pd.DataFrame(rows)
    estimates["method"] = estimates["key"].map(METHOD_LABELS)
    columns = [
        "key", "method", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n", "df",
    ]  # fmt: skip
    return estimates[columns], tipping, notes


def _mean_row(key: str, values: pd.Series, conf_level: float) -> dict:
    mean = fit_mean(values, conf_level=conf_level, term="change")
    return _row(key, mean.tidy().iloc[0], mean.n, df=mean.df)


def _row(key: str, tidy_row, n: int, *, df: float) -> dict:
    return {
        "key": key,
        "estimate": float(tidy_row["estimate"]),
        "std_error": float(tidy_row["std_error"]),
        "conf_low": float(tidy_row["conf_low"]),
        "conf_high": float(tidy_row["conf_high"]),
        "p_value": float(tidy_row["p_value"]),
        "n": int(n),
        "df": float(df),
    }


def _mixed_change(data: AttritionData, follow_columns, conf_level):
    """Mean change from a random-intercept model with time-by-characteristic interactions.

    The characteristics are centred at their means over the people with a baseline score
    (categories as centred indicators), so the coefficient of the first follow-up is the
    change averaged over those people; the interactions let the change depend on the
    characteristics that predict dropout, which the missing-at-random assumption needs
    (Molenberghs & Kenward 2007, Missing Data in Clinical Studies, ch. 7).
    """
    frame = data.frame
    centred = pd.DataFrame({"client_id": frame["client_id"]})
    for column in data.covariates:
        if pd.api.types.is_numeric_dtype(frame[column]):
            parts = frame[[column]].astype(float)
        else:
            parts = pd.get_dummies(frame[column], drop_first=True, dtype=float)
        for k, values in enumerate(parts.T.to_numpy()):
            centred[f"z_{column}_{k}"] = values - values.mean()
    z_terms = [c for c in centred.columns if c != "client_id"]
    long = frame.melt(
        id_vars=["client_id"],
        value_vars=["baseline", *follow_columns],
        var_name="column",
        value_name="score",
    ).dropna(subset=["score"])
    long["timepoint"] = long["column"].map(
        {"baseline": 0, **{c: int(c.rsplit("_", 1)[1]) for c in follow_columns}}
    )
    long = long.merge(centred, on="client_id", how="left")
    formula = "score ~ C(timepoint)" + (f" * ({' + '.join(z_terms)})" if z_terms else "")
    try:
        res = fit_mixed(formula, long, group="client_id")
    except (ValueError, np.linalg.LinAlgError) as error:
        return None, [f"The mixed model could not be fitted: {error}"]
    fixed = res.tidy(conf_level=conf_level)
    term = f"C(timepoint)[T.{data.first_follow_up}]"
    row = fixed[(fixed["effect"] == "fixed") & (fixed["term"] == term)].iloc[0]
    return _row("mixed", row, res.n_groups, df=np.inf), list(res.diagnostics)
