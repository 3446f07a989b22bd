"""Attrition in a social prescribing scheme: who drops out, and the change allowing for it.

Follow-up questionnaires go missing for many clients, and those who stay differ from
those who leave (SPEC §5.3), so the complete-case change in wellbeing can be biased.
``analyse_attrition`` re-estimates the change from baseline to every follow-up by
sequential inverse probability weighting, a mixed model for repeated measures and
multiple imputation from it (all assuming data missing at random given what was
recorded), with a "back at baseline" imputation and a delta-adjusted tipping point for
data missing not at random (:mod:`spimpact.analyses.attrition.change`), and fits the
retention curves and dropout model of :mod:`spimpact.analyses.attrition.retention`.
Numbers only: :mod:`spimpact.analyses.attrition.section` turns them into the report
section.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.analyses.attrition.change import (
    METHOD_LABELS,
    estimate_change,
    estimates_tidy,
)
from spimpact.analyses.attrition.data import AttritionData, prepare_attrition_data
from spimpact.analyses.attrition.retention import RetentionResult, analyse_retention
from spimpact.models.ipw_sequential import SequentialIpwResult
from spimpact.models.result import EstimatorResult
from spimpact.models.tipping_point import TippingPointResult
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData
from spimpact.scoring import MAIN_SCORE, SCORES

MIN_PEOPLE = 20
MIN_COMPLETERS = 10
MIN_NON_COMPLETERS = 5
__all__ = ["METHOD_LABELS", "AttritionResult", "analyse_attrition", "estimate_change"]


# eq=False: the fields hold frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class AttritionResult(EstimatorResult):
    """The change in the primary score allowing for attrition, and retention (read-only).

    Not yet disclosure-controlled. ``tidy(conf_level=None)`` gives one row per method
    and follow-up (term ``<key>:<timepoint>`` of ``estimates``), recomputed at any
    level from each estimate's standard error and degrees of freedom.

    Attributes
    ----------
    data
        The one-row-per-client frame the estimators used.
    estimates
        The change by method and follow-up: ``key, method, timepoint, estimate,
        std_error, conf_low, conf_high, p_value, n, df`` (see ``estimate_change``).
    tipping
        Delta-adjusted multiple imputation of the change at the last follow-up.
    ipw
        The sequential inverse probability weighting fit (weights by visit).
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
    ipw: SequentialIpwResult
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

    @property
    def last_follow_up(self) -> int:
        """The follow-up whose change the tipping point is about."""
        return self.data.follow_ups[-1]

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        return estimates_tidy(self.estimates, conf_level)

    def summary(self) -> str:
        """The change by method, and the shifts at which the imputed change tips."""
        lines = [
            f"Change in {self.score} from baseline: {self.n_completers} of {self.n_people} "
            f"people returned time point {self.data.first_follow_up}; "
            f"{self.conf_level:.0%} intervals"
        ]
        for row in self.estimates.itertuples():
            lines.append(
                f"  time point {row.timepoint}, {row.method}: {row.estimate:+.3f} "
                f"({row.conf_low:.3f} to {row.conf_high:.3f}; n = {row.n})"
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
    Adjustments follow SPEC §5.4 and issue 13: sequential inverse probability weighting
    for monotone dropout (Robins, Rotnitzky & Zhao 1995; Hernán & Robins 2020, §12.6),
    a mixed model for repeated measures and multiple imputation from it (rbmi-style
    approximate Bayes, Wolbers et al. 2022) pooled by Rubin's rules, "back at
    baseline" imputation and a delta-adjusted tipping point with the shift inside the
    imputation loop (Ratitch, O'Kelly & Tosiello 2013). Settings come from
    ``params.measures.change_model`` and ``params.measures.missing_data``.
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
    settings = params.measures.missing_data
    try:
        estimates, tipping, ipw, notes = estimate_change(
            data,
            seed=params.seed,
            conf_level=params.conf_level,
            higher_is_better=info.higher_is_better,
            m=settings.n_imputations,
            covariances=params.measures.change_model.covariance_order,
            df=params.measures.change_model.df,
            truncate=settings.ipw_truncate,
        )
    except (ValueError, np.linalg.LinAlgError) as error:
        raise InsufficientData(
            f"The change allowing for attrition could not be estimated: {error}"
        ) from None
    retention = analyse_retention(scheme.clients, scheme.contacts, conf_level=params.conf_level)
    return AttritionResult(
        data=data,
        estimates=estimates,
        tipping=tipping,
        ipw=ipw,
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
