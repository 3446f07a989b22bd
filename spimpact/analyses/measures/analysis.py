"""Measures: score a scheme's questionnaires, describe wellbeing at referral and tool use.

``score_scheme`` scores every measure with the options its params set.
``analyse_wellbeing_at_referral`` gives the numbers of "Wellbeing at referral"
(baseline means against population norms, people in the poor bands, completeness per
time point, the baseline distributions and the primary measure's mean with its t
interval); ``analyse_measure_quality`` those of "Use of outcome measures"
(non-standard use and records not scored, by reason). Every count passes
``spimpact.publish.disclosure``; means and medians are kept only for at least
``min_n_summary`` people. The words are in ``spimpact.analyses.measures.section``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.io import SchemeData
from spimpact.models.paired import MeanResult, fit_mean
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import (
    DEFAULT_RULE,
    DisclosureRule,
    disclose_count,
    disclose_percentage,
    disclose_summary,
)
from spimpact.publish.section import InsufficientData
from spimpact.scoring import ScoredMeasures, score_measures
from spimpact.scoring.instruments import INSTRUMENTS
from spimpact.scoring.registry import MAIN_SCORE, SCORES

# Raw scores duplicate the analysis scale shown (SWEMWBS metric, WHO-5 percentage).
_NOT_SHOWN = ("swemwbs_raw", "who5_raw")
POOR_BAND_TEXT = {
    "ons4_life_satisfaction": "low (0–4)",
    "ons4_worthwhile": "low (0–4)",
    "ons4_happiness": "low (0–4)",
    "ons4_anxiety": "high anxiety (6–10)",
    "who5_pct": "poor wellbeing (50 or less)",
    "ucla3_total": "lonely (6–9)",
    "ons_loneliness": "lonely often or always",
}
# Share of UK adults in the poor band (SPEC §1.3; happiness and anxiety SECONDARY).
_NATIONAL_POOR_PERCENT = {"ons4_happiness": 8.9, "ons4_anxiety": 23.4}
_SEX_GROUPS = {"men": "male", "women": "female"}


def score_scheme(scheme: SchemeData, params: SchemeParams) -> ScoredMeasures:
    """Score every measure of ``scheme`` as checked on load (items are not checked twice).

    The EQ-5D value set and the SWEMWBS missing-item rule come from
    ``params.measures``; declared scale variants were applied by the loader.
    """
    return score_measures(
        scheme.measure_items,
        clients=scheme.clients,
        eq5d_value_set=params.measures.eq5d_value_set,
        swemwbs_max_missing_items=params.measures.swemwbs_max_missing_items,
    )


@dataclass(frozen=True)
class BaselineDistribution:
    """Histogram of one score at referral, counts disclosure-controlled.

    Attributes
    ----------
    score
        Score name (``spimpact.scoring.SCORES``).
    edges
        Bin edges: whole answers for short integer scales, else 14 equal bins.
    counts
        People per bin, rounded; bins of 1 to 7 people are withheld as 0.
    """

    score: str
    edges: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True)
class WellbeingAtReferralResult:
    """Scores at referral against population norms, and how complete the measures are.

    Attributes
    ----------
    n_people_published
        People with at least one scored questionnaire at referral
        (disclosure-controlled; missing when withheld).
    measures
        Instruments scored at referral, in ``INSTRUMENTS`` order.
    means
        ``score, group, n_people, mean, sd, median, population_mean,
        population_source``: per shown non-ordinal score, overall and by sex where a
        sex-specific norm exists. Summaries are withheld below ``min_n_summary``
        people; ``population_mean`` and ``population_source`` are blank without a norm.
    poor_bands
        ``score, band, n_people, n_in_band, percent, uk_percent`` (empty when no score
        has a poor band); ``uk_percent`` is blank where ONS publishes none.
    completeness
        ``measure, timepoint, n_people`` and, with clients, ``percent_of_clients``.
    distributions
        Baseline histograms of the shown scores with at least ``min_n_summary`` people.
    primary_score
        The primary measure's main score, or ``None``.
    primary_mean_published
        Its mean at referral, withheld below ``min_n_summary`` people.
    primary_mean
        Its mean with a t interval (``spimpact.models.paired.fit_mean``), or ``None``
        below ``min_n_summary`` (or 2) people.
    n_primary_published
        People behind ``primary_mean`` (disclosure-controlled).
    eq5d_value_set, has_eq5d_index
        Machine name of the EQ-5D value set, and whether any EQ-5D index was scored at
        referral.
    """

    n_people_published: int
    measures: tuple[str, ...]
    means: pd.DataFrame
    poor_bands: pd.DataFrame
    completeness: pd.DataFrame
    distributions: tuple[BaselineDistribution, ...]
    primary_score: str | None
    primary_mean_published: float
    primary_mean: MeanResult | None
    n_primary_published: int | None
    eq5d_value_set: str
    has_eq5d_index: bool


def analyse_wellbeing_at_referral(
    scores, clients: pd.DataFrame | None, *, params: SchemeParams | None = None
) -> WellbeingAtReferralResult:
    """Baseline scores against norms, poor bands, completeness and the primary measure's mean.

    Parameters
    ----------
    scores
        ``score_measures(...)`` result or its ``.scores`` frame.
    clients
        The scheme's clients (``client_id``, ``sex``): denominators for completeness and
        the sex split for sex-specific norms.
    params
        Scheme params (disclosure rule, EQ-5D value set, primary measure, confidence
        level); ``None`` uses the defaults.

    Raises
    ------
    InsufficientData
        When no questionnaire was scored at referral.
    """
    value_set = getattr(scores, "eq5d_value_set", None)
    frame = getattr(scores, "scores", scores)
    rule = params.disclosure.rule() if params is not None else DEFAULT_RULE
    value_set = value_set or (params.measures.eq5d_value_set if params else "dsu_5l_to_3l")
    baseline = frame[frame["timepoint"] == 0]
    if baseline.empty:
        raise InsufficientData(
            "No wellbeing questionnaire was scored at referral, so wellbeing at referral "
            "cannot be described."
        )
    primary = MAIN_SCORE.get(params.measures.primary if params else "swemwbs")
    values = baseline.loc[baseline["score"] == primary, "value"]
    conf_level = params.conf_level if params is not None else 0.95
    primary_fit = (
        fit_mean(values.to_numpy(dtype=float), conf_level=conf_level)
        if primary is not None and len(values) >= max(rule.min_n_summary, 2)
        else None
    )
    return WellbeingAtReferralResult(
        n_people_published=disclose_count([baseline["client_id"].nunique()], rule).iloc[0],
        measures=tuple(m for m in INSTRUMENTS if m in set(baseline["measure"])),
        means=baseline_means(baseline, _client_sex(clients), rule),
        poor_bands=poor_bands(baseline, rule),
        completeness=completeness(frame, clients, rule),
        distributions=baseline_distributions(baseline, rule),
        primary_score=primary,
        primary_mean_published=disclose_summary(
            values.mean() if len(values) else np.nan, len(values), rule
        )[0],
        primary_mean=primary_fit,
        n_primary_published=(
            disclose_count([primary_fit.n], rule).iloc[0] if primary_fit is not None else None
        ),
        eq5d_value_set=value_set,
        has_eq5d_index="eq5d5l_index" in set(baseline["score"]),
    )


def _client_sex(clients: pd.DataFrame | None) -> pd.Series:
    if clients is None or "sex" not in clients.columns or "client_id" not in clients.columns:
        return pd.Series(dtype=object)
    return clients.drop_duplicates("client_id").set_index("client_id")["sex"].astype(str)


def shown_scores(frame: pd.DataFrame) -> list[str]:
    """Scores in ``frame`` that the report shows, in ``SCORES`` order (raw scales left out)."""
    present = set(frame["score"])
    return [name for name in SCORES if name in present and name not in _NOT_SHOWN]


def baseline_means(baseline: pd.DataFrame, sex: pd.Series, rule: DisclosureRule) -> pd.DataFrame:
    """Means, SDs and medians at referral with the population norm of each group."""
    rows = []
    for name in shown_scores(baseline):
        info = SCORES[name]
        if info.ordinal:
            continue
        values = baseline.loc[baseline["score"] == name, ["client_id", "value"]]
        overall = [n for n in info.norms if n.group not in _SEX_GROUPS]
        groups = [("all", overall[0] if overall else None, values["value"])]
        if len(sex):
            client_sex = values["client_id"].map(sex)
            groups += [
                (n.group, n, values.loc[(client_sex == _SEX_GROUPS[n.group]).to_numpy(), "value"])
                for n in info.norms
                if n.group in _SEX_GROUPS
            ]
        for group, norm, group_values in groups:
            n = len(group_values)
            rows.append(
                {
                    "score": name,
                    "group": group,
                    "n_people": n,
                    "mean": disclose_summary(group_values.mean() if n else np.nan, n, rule)[0],
                    "sd": disclose_summary(group_values.std(ddof=1) if n > 1 else np.nan, n, rule)[
                        0
                    ],
                    "median": disclose_summary(group_values.median() if n else np.nan, n, rule)[0],
                    # Blank, not <NA>: a missing norm is not a suppressed value ("*").
                    "population_mean": norm.mean if norm is not None else "",
                    "population_source": norm.source if norm is not None else "",
                }
            )
    table = pd.DataFrame(rows)
    table["n_people"] = disclose_count(table["n_people"].to_numpy(), rule).to_numpy()
    for column in ("mean", "sd", "median"):
        table[column] = table[column].astype("Float64")
    return table


def poor_bands(baseline: pd.DataFrame, rule: DisclosureRule) -> pd.DataFrame:
    """People in each score's poor band at referral (and WHO-5 likely depression)."""
    rows = []
    for name in shown_scores(baseline):
        if name not in POOR_BAND_TEXT:
            continue
        values = baseline[baseline["score"] == name]
        bands = [(POOR_BAND_TEXT[name], values["poor_band"].fillna(False).astype(bool))]
        if name == "who5_pct":
            bands.append(("likely depression (28 or less)", values["band"] == "likely depression"))
        for text, in_band in bands:
            rows.append(
                {
                    "score": name,
                    "band": text,
                    "n_baseline": len(values),
                    "n_band": int(in_band.sum()),
                    # Blank where ONS publishes no national share (not a suppressed "*").
                    "uk_percent": _NATIONAL_POOR_PERCENT.get(name, "")
                    if "likely" not in text
                    else "",
                }
            )
    if not rows:
        return pd.DataFrame()
    raw = pd.DataFrame(rows)
    return pd.DataFrame(
        {
            "score": raw["score"],
            "band": raw["band"],
            "n_people": disclose_count(raw["n_baseline"].to_numpy(), rule).to_numpy(),
            "n_in_band": disclose_count(raw["n_band"].to_numpy(), rule).to_numpy(),
            "percent": disclose_percentage(
                raw["n_band"].to_numpy(), raw["n_baseline"].to_numpy(), rule
            ).to_numpy(),
            "uk_percent": raw["uk_percent"].astype(object),
        }
    )


def completeness(frame: pd.DataFrame, clients, rule: DisclosureRule) -> pd.DataFrame:
    """People with a scored questionnaire per measure and time point (and % of clients)."""
    n_clients = clients["client_id"].nunique() if clients is not None else np.nan
    rows = []
    for measure in [m for m in INSTRUMENTS if m in set(frame["measure"])]:
        of_measure = frame[frame["measure"] == measure]
        for timepoint in sorted(of_measure["timepoint"].unique()):
            n = of_measure.loc[of_measure["timepoint"] == timepoint, "client_id"].nunique()
            rows.append({"measure": measure, "timepoint": int(timepoint), "n": n})
    raw = pd.DataFrame(rows)
    out = raw[["measure", "timepoint"]].copy()
    out["n_people"] = disclose_count(raw["n"].to_numpy(), rule).to_numpy()
    if np.isfinite(n_clients):
        out["percent_of_clients"] = disclose_percentage(
            raw["n"].to_numpy(), np.full(len(raw), n_clients), rule
        ).to_numpy()
    return out


def baseline_distributions(
    baseline: pd.DataFrame, rule: DisclosureRule
) -> tuple[BaselineDistribution, ...]:
    """Histograms of the shown scores at referral with at least ``min_n_summary`` people."""
    names = [
        name
        for name in shown_scores(baseline)
        if (baseline["score"] == name).sum() >= rule.min_n_summary
    ]
    out = []
    for name in names:
        info = SCORES[name]
        values = baseline.loc[baseline["score"] == name, "value"].to_numpy(dtype=float)
        edges = _bin_edges(info.minimum, info.maximum, values)
        counts, _ = np.histogram(values, bins=edges)
        safe = disclose_count(counts, rule).astype("Float64").fillna(0).to_numpy(dtype=float)
        out.append(BaselineDistribution(score=name, edges=edges, counts=safe))
    return tuple(out)


def _bin_edges(minimum: float, maximum: float, values: np.ndarray) -> np.ndarray:
    whole = np.all(np.mod(values, 1) == 0)
    if whole and maximum - minimum <= 10:
        return np.arange(minimum - 0.5, maximum + 1.5, 1.0)
    return np.linspace(minimum, maximum, 15)


@dataclass(frozen=True)
class MeasureQualityResult:
    """Non-standard use of outcome measures and records not scored, by reason.

    Attributes
    ----------
    issues
        ``measure, issue, n_rows, n_rows_published, detail``: one row per problem
        found by ``spimpact.scoring.validate_items``.
    exclusion_reasons
        ``reason, n_records`` (disclosure-controlled): records of the measures table
        not scored, grouped into plain reasons; empty when there are none.
    n_excluded_published
        All records of the measures table not scored (disclosure-controlled).
    """

    issues: pd.DataFrame
    exclusion_reasons: pd.DataFrame
    n_excluded_published: int | None


def analyse_measure_quality(
    non_standard: pd.DataFrame | None,
    exclusions: pd.DataFrame | None,
    *,
    params: SchemeParams | None = None,
) -> MeasureQualityResult:
    """Count non-standard questionnaire records and those not scored, by reason.

    ``exclusions`` (``row, column, value, reason``) may carry a ``table`` column; only
    the measures table's rows are counted.
    """
    rule = params.disclosure.rule() if params is not None else DEFAULT_RULE
    issues = (
        non_standard
        if non_standard is not None
        else pd.DataFrame(columns=["measure", "issue", "n_rows", "detail"])
    )
    issues = issues.assign(
        n_rows_published=disclose_count(issues["n_rows"].to_numpy(), rule).to_numpy()
    )[["measure", "issue", "n_rows", "n_rows_published", "detail"]]
    has_exclusions = exclusions is not None and not exclusions.empty
    return MeasureQualityResult(
        issues=issues,
        exclusion_reasons=exclusion_reasons(exclusions, rule),
        n_excluded_published=(
            disclose_count([_n_exclusions(exclusions)], rule).iloc[0] if has_exclusions else None
        ),
    )


_REASON_GROUPS = (
    (
        "EQ-5D index not computed",
        "EQ-5D index not computed (the NICE DSU mapping needs an "
        "adult age and sex recorded as male or female)",
    ),
    ("unknown measure", "not a questionnaire spimpact scores"),
    ("is not a whole number", "an answer that is not a whole number"),
    ("filled but", "more items than the questionnaire has"),
    ("outside the declared variant", "an answer outside the declared modified scale"),
    ("is outside", "an answer outside the questionnaire's coding"),
    ("missing", "required items missing"),
    ("item answered", "no item answered"),
)


def exclusion_reasons(exclusions: pd.DataFrame | None, rule: DisclosureRule) -> pd.DataFrame:
    """Measures records not scored, counted by plain reason (``reason, n_records``)."""
    if exclusions is None or exclusions.empty:
        return pd.DataFrame()
    if "table" in exclusions.columns:
        exclusions = exclusions[exclusions["table"] == "measures"]
    reasons = exclusions["reason"].astype(str).map(_reason_group)
    counts = reasons.value_counts().sort_index()
    if counts.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {"reason": counts.index, "n_records": disclose_count(counts.to_numpy(), rule).to_numpy()}
    )


def _n_exclusions(exclusions: pd.DataFrame) -> int:
    if "table" in exclusions.columns:
        exclusions = exclusions[exclusions["table"] == "measures"]
    return len(exclusions)


def _reason_group(reason: str) -> str:
    for fragment, group in _REASON_GROUPS:
        if fragment in reason:
            return group
    return "other"
