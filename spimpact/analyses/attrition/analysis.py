"""Attrition in a social prescribing scheme: who drops out, when, and adjusted estimates.

Follow-up questionnaires go missing for many clients, and those who stay differ from
those who leave (SPEC §5.3), so the complete-case change in wellbeing can be biased.
This module describes the loss (retention funnel, time to disengagement, predictors of
dropout, completers against non-completers) and re-estimates the change from baseline
to the first follow-up by inverse probability weighting, multiple imputation and a mixed
model (all assuming data missing at random given what was recorded), with a
"no change for those who left" bound and a tipping-point analysis for data missing not
at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.models.attrition import (
    fit_ipw,
    fit_tipping_point,
    impute_mice,
    pool_analyses,
)
from spimpact.models.mixed import fit_mixed
from spimpact.models.survival import fit_cox, fit_kaplan_meier, fit_logrank
from spimpact.models.tidy import make_tidy
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import (
    disclose_count,
    disclose_percentage,
    disclose_summary,
)
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData, Section, Table
from spimpact.scoring import MAIN_SCORE, SCORES

# Categories with fewer people are pooled into "other or unknown" in the dropout models,
# so that no logistic or Cox coefficient rests on a handful of people (which would also
# make it unstable through separation).
MIN_CATEGORY_SIZE = 10
MIN_PEOPLE = 20
MIN_COMPLETERS = 10
MIN_NON_COMPLETERS = 5
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
METHOD_LABELS = {
    "complete_case": "Complete cases",
    "ipw": "Inverse probability weighting",
    "mi": "Multiple imputation",
    "mixed": "Mixed model",
    "baseline_carried_forward": "No change for those who left",
}

# The adjusted estimates (missing at random) that go to the ICB summary.
HEADLINE_METHODS = {
    "ipw": "uncontrolled before/after, inverse probability weighted for loss to follow-up",
    "mi": "uncontrolled before/after, multiple imputation of missing follow-ups (MICE, PMM)",
    "mixed": "uncontrolled before/after, linear mixed model of all scores (missing at random)",
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


def attrition_section(scheme, scores, *, params: SchemeParams) -> Section:
    """Report section on attrition: who drops out, when, and how robust the change is.

    Parameters
    ----------
    scheme
        ``spimpact.io.SchemeData``.
    scores
        Scored measures: the long frame of ``spimpact.scoring.score_measures`` (or the
        ``ScoredMeasures`` object holding it).
    params
        Scheme parameters: primary measure, time-point labels, seed, confidence level and
        disclosure rule.

    Returns
    -------
    Section
        Text, the funnel, completer comparison, dropout-predictor and estimate tables,
        retention and estimate figures, and headline rows (outcome level "person") for
        the adjusted estimates.

    Notes
    -----
    Adjustments follow SPEC §5.4: inverse probability weighting (Hernán & Robins 2020,
    §12.6), multiple imputation by chained equations with predictive mean matching (van
    Buuren 2018) pooled by Rubin's rules, a linear mixed model (valid under missing at
    random given earlier scores), baseline observation carried forward as a
    conservative bound, and a delta-adjusted tipping point (van Buuren 2018, §9.2).
    """
    rule = params.disclosure.rule()
    conf_level = params.conf_level
    score = primary_score(params)
    info = SCORES[score]
    scores = getattr(scores, "scores", scores)
    data = prepare_attrition_data(scheme.clients, scores, score=score)
    n_people = len(data.frame)
    n_completers = int(data.completed.sum())
    n_lost = n_people - n_completers
    follow_label = params.measures.timepoints.get(
        data.first_follow_up, f"follow-up {data.first_follow_up}"
    )
    if n_people < MIN_PEOPLE or n_completers < MIN_COMPLETERS:
        raise InsufficientData(
            f"Attrition could not be analysed: {info.label} needs at least {MIN_PEOPLE} people "
            f"with a baseline score and {MIN_COMPLETERS} with a {follow_label} score."
        )
    if n_lost < MIN_NON_COMPLETERS:
        raise InsufficientData(
            f"Almost everyone with a baseline {info.label} score also has a {follow_label} "
            "score, so loss to follow-up cannot materially bias the change."
        )

    estimates, tipping, notes = estimate_change(
        data, seed=params.seed, conf_level=conf_level, higher_is_better=info.higher_is_better
    )
    timeline = engagement_timeline(scheme.clients, scheme.contacts)
    funnel = make_table_funnel(scheme.clients, scheme.contacts, scores, score=score, params=params)
    balance = make_table_completer_balance(data, rule=rule)
    km_figure, logrank = _retention_figure_and_tests(timeline, conf_level=conf_level)
    cox_table, cox_notes = _dropout_predictors(timeline, conf_level=conf_level)
    notes += cox_notes

    estimates_public = estimates.assign(
        n=lambda d: disclose_count(d["n"].to_numpy(), rule).to_numpy()
    )
    outcome = f"{info.label} change, baseline to {follow_label}"
    headline = pd.DataFrame(
        {
            "outcome_level": "person",
            "outcome": outcome,
            "measure": score,
            "estimate": estimates_public["estimate"],
            "std_error": estimates_public["std_error"],
            "conf_low": estimates_public["conf_low"],
            "conf_high": estimates_public["conf_high"],
            "n": estimates_public["n"],
            "method": estimates_public["key"].map(HEADLINE_METHODS),
        }
    )
    headline = headline[estimates_public["key"].isin(list(HEADLINE_METHODS))]
    headline = headline.reset_index(drop=True)

    retained = disclose_percentage([n_completers], [n_people], rule).iloc[0]
    text = [
        _retention_sentence(n_people, n_completers, retained, follow_label, info.label, rule),
        _estimates_sentence(estimates, info, follow_label, conf_level),
        _tipping_sentence(tipping, info, follow_label),
        _covariates_sentence(data),
        (
            "Retention curves are Kaplan-Meier estimates of the time from referral to "
            "disengagement (discharge recorded as 'disengaged', dated by the last contact); "
            "people discharged for other reasons or still open are censored. Bands are "
            f"{conf_level:.0%} pointwise intervals from Greenwood's variance on the "
            "log(-log) scale (lifelines' exponential Greenwood). Curves from small groups "
            "can reveal individuals' dates, so a group is drawn only with at least 8 "
            "disengagements, each drawn step combines at least 8 of them, and each curve "
            "stops where fewer than 8 people remain at risk."
        ),
        (
            "All adjusted estimates assume that, given the recorded characteristics and "
            "earlier scores, those who left would have changed like those who stayed "
            "(missing at random); the last two rows of the estimates table show what "
            "happens if that is not true."
        ),
    ]
    tables = (
        Table(
            "attrition_funnel",
            "Retention from referral to discharge (counts rounded to 5; 1-7 suppressed)",
            funnel,
        ),
        Table(
            "attrition_completers_vs_non_completers",
            f"Baseline characteristics of people who did and did not return the {follow_label} "
            "questionnaire, with standardised mean differences (|SMD| > 0.1 is a notable "
            "difference)",
            balance,
        ),
        Table(
            "attrition_change_estimates",
            f"Change in {info.label} from baseline to {follow_label} by method "
            f"({conf_level:.0%} CI)",
            _public_estimates(estimates_public),
        ),
        Table(
            "attrition_tipping_point",
            "Delta-adjusted multiple imputation: the change if people who left had scored "
            "this many points worse than similar people who stayed",
            _public_tipping(tipping),
        ),
        Table(
            "attrition_dropout_predictors",
            "Predictors of disengagement among everyone referred: hazard ratios from a Cox "
            "model (each category against the first category of its characteristic)",
            cox_table,
        ),
        Table(
            "attrition_retention_logrank",
            "Log-rank tests of equal retention across groups",
            logrank,
        ),
    )
    return Section(
        title="Attrition: who drops out, and how robust is the change?",
        text=tuple(t for t in text if t),
        tables=tables,
        figures=(plot_change_estimates(estimates, info, follow_label), km_figure),
        headline=headline.reindex(columns=list(HEADLINE_COLUMNS)),
        notes=tuple(notes),
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
    candidates = _add_characteristics(frame, people)
    completed = frame[f"follow_up_{follow_ups[0]}"].notna()
    events = int(min(completed.sum(), (~completed).sum()))
    separated = _separated(frame, candidates, completed.astype(int))
    usable = [c for c in candidates if c not in separated]
    covariates = covariates_within_budget(frame, usable, events)
    terms = ["baseline", *(_term(frame, c) for c in covariates)]
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


def _separated(frame: pd.DataFrame, candidates, outcome: pd.Series) -> list[str]:
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


def _term(frame: pd.DataFrame, column: str) -> str:
    return column if pd.api.types.is_numeric_dtype(frame[column]) else f"C({column})"


def _add_characteristics(target: pd.DataFrame, source: pd.DataFrame) -> list[str]:
    """Copy age (or age band) and pooled sex, IMD and ethnic group from ``source`` rows.

    ``target`` and ``source`` are aligned row by row; returns the columns added.
    """
    added = []
    if "age" in source.columns and source["age"].notna().all():
        target["age"] = source["age"].to_numpy(dtype=float)
        added.append("age")
    elif "age_band" in source.columns:
        target["age_band"] = _pooled_categories(source["age_band"])
        added.append("age_band")
    for column in ("sex", "imd_quintile", "ethnic_group"):
        if column in source.columns:
            target[column] = _pooled_categories(source[column])
            added.append(column)
    return added


def _pooled_categories(values: pd.Series) -> np.ndarray:
    text = values.astype("string").fillna("unknown").str.lower()
    text = text.where(~text.isin(["unknown", "<na>", "nan"]), "other or unknown")
    counts = text.value_counts()
    small = counts[counts < MIN_CATEGORY_SIZE].index
    text = text.where(~text.isin(small), "other or unknown")
    return text.to_numpy(dtype=object)


# --------------------------------------------------------------------------------------
# Estimates of the change under different assumptions about those who left
# --------------------------------------------------------------------------------------


def estimate_change(
    data: AttritionData,
    *,
    seed: int,
    conf_level: float = 0.95,
    higher_is_better: bool = True,
    m: int = 20,
):
    """Change from baseline to the first follow-up by five methods, and the tipping point.

    Returns
    -------
    tuple
        ``(estimates, tipping, notes)``: a frame with ``key, method, estimate, std_error,
        conf_low, conf_high, p_value, n`` per method; the ``TippingPointResult``; a list of
        plain-English diagnostics.
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
    row = ipw.tidy().iloc[0]
    rows.append(_row("ipw", row, len(frame)))

    follow_columns = [f"follow_up_{t}" for t in data.follow_ups]
    imputation_columns = ["baseline", *follow_columns, *data.covariates]
    imputations = impute_mice(frame, m=m, max_iter=5, seed=seed, columns=imputation_columns)
    notes += list(imputations.diagnostics)
    first = follow_columns[0]

    def mean_change(completed_data: pd.DataFrame) -> pd.DataFrame:
        change = completed_data[first] - completed_data["baseline"]
        return pd.DataFrame(
            {
                "term": ["change"],
                "estimate": [change.mean()],
                "std_error": [change.std(ddof=1) / np.sqrt(len(change))],
            }
        )

    mi = pool_analyses(
        imputations.datasets, mean_change, dfcom=len(frame) - 1, conf_level=conf_level
    )
    rows.append(_row("mi", mi.tidy().iloc[0], len(frame)))

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
    columns = ["key", "method", "estimate", "std_error", "conf_low", "conf_high", "p_value", "n"]
    return estimates[columns], tipping, notes


def _mean_row(key: str, values: pd.Series, conf_level: float) -> dict:
    n = int(values.notna().sum())
    se = float(values.std(ddof=1) / np.sqrt(n))
    tidy = make_tidy(["change"], [float(values.mean())], [se], conf_level=conf_level, df=n - 1)
    return _row(key, tidy.iloc[0], n)


def _row(key: str, tidy_row, n: int) -> dict:
    return {
        "key": key,
        "estimate": float(tidy_row["estimate"]),
        "std_error": float(tidy_row["std_error"]),
        "conf_low": float(tidy_row["conf_low"]),
        "conf_high": float(tidy_row["conf_high"]),
        "p_value": float(tidy_row["p_value"]),
        "n": int(n),
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
    return _row("mixed", row, res.n_groups), list(res.diagnostics)


def _public_estimates(estimates: pd.DataFrame) -> pd.DataFrame:
    out = estimates.drop(columns=["key"]).rename(columns={"n": "n_people"})
    numeric = ["estimate", "std_error", "conf_low", "conf_high"]
    out[numeric] = out[numeric].round(2)
    out["p_value"] = out["p_value"].round(4)
    return out.reset_index(drop=True)


def _public_tipping(tipping) -> pd.DataFrame:
    table = tipping.tidy()[["delta", "estimate", "conf_low", "conf_high", "p_value"]]
    table = table.iloc[::2].rename(columns={"delta": "shift_points"})
    return table.round(
        {"shift_points": 2, "estimate": 2, "conf_low": 2, "conf_high": 2, "p_value": 4}
    ).reset_index(drop=True)


def plot_change_estimates(estimates: pd.DataFrame, info, follow_label: str):
    """One figure: the change by each method with its confidence interval."""
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    y = np.arange(len(estimates))[::-1]
    ax.errorbar(
        estimates["estimate"],
        y,
        xerr=[
            estimates["estimate"] - estimates["conf_low"],
            estimates["conf_high"] - estimates["estimate"],
        ],
        fmt="o",
        color="#08519c",
        capsize=3,
    )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(y, estimates["method"])
    ax.set_xlabel(f"change in {info.label}, baseline to {follow_label}")
    ax.set_title("Estimated change, by assumption about people who left", fontsize=10)
    fig.tight_layout()
    return fig


def _retention_sentence(n_people, n_completers, retained, follow_label, label, rule) -> str:
    n_base = disclose_count([n_people], rule).iloc[0]
    n_done = disclose_count([n_completers], rule).iloc[0]
    if pd.isna(n_base) or pd.isna(n_done):
        return ""
    share = "" if pd.isna(retained) else f" ({retained:g}%)"
    return (
        f"Of about {n_base} people with a baseline {label}, about {n_done}{share} "
        f"returned the {follow_label} questionnaire."
    )


def _estimates_sentence(estimates, info, follow_label, conf_level) -> str:
    by_key = estimates.set_index("key")
    cc = by_key.loc["complete_case"]
    adjusted = by_key.drop(index=["complete_case", "baseline_carried_forward"])
    low, high = adjusted["estimate"].min(), adjusted["estimate"].max()
    return (
        f"Among people who returned both questionnaires the average change was "
        f"{cc['estimate']:+.2f} points ({conf_level:.0%} CI {cc['conf_low']:.2f} to "
        f"{cc['conf_high']:.2f}). Allowing for who left (weighting, imputation, mixed model) "
        f"the estimates range from {low:+.2f} to {high:+.2f}; assuming no change at all for "
        f"those who left gives {by_key.loc['baseline_carried_forward', 'estimate']:+.2f}."
    )


def _covariates_sentence(data: AttritionData) -> str:
    names = {
        "age": "age",
        "age_band": "age band",
        "sex": "sex",
        "imd_quintile": "IMD quintile",
        "ethnic_group": "ethnic group",
    }
    used = ["baseline score", *(names[c] for c in data.covariates)]
    left = [names[c] for c in data.characteristics if c not in data.covariates]
    listed = used[0] if len(used) == 1 else ", ".join(used[:-1]) + " and " + used[-1]
    sentence = f"The weighting, imputation and dropout models take account of {listed}."
    if left:
        sentence += (
            f" Too few people were lost (or kept) to also allow for {', '.join(left)} "
            f"(at least {EVENTS_PER_PARAMETER} per model parameter are needed)."
        )
    return sentence


def _tipping_sentence(tipping, info, follow_label) -> str:
    at_zero = tipping.table.iloc[tipping.table["delta"].abs().argmin()]
    improved = at_zero["estimate"] > 0 if info.higher_is_better else at_zero["estimate"] < 0
    significant = at_zero["conf_low"] > 0 or at_zero["conf_high"] < 0
    if not (improved and significant):
        return (
            "The multiply-imputed change is not a statistically significant improvement even "
            "if people who left are like similar people who stayed, so there is no tipping "
            "point to report."
        )
    parts = []
    if tipping.delta_no_significance is not None:
        parts.append(
            f"would no longer be statistically significant only if people who left had scored "
            f"{abs(tipping.delta_no_significance):.1f} points worse at {follow_label} than "
            "similar people who stayed"
        )
    if tipping.delta_no_effect is not None:
        parts.append(
            "would disappear only if they had scored "
            f"{abs(tipping.delta_no_effect):.1f} points worse"
        )
    if not parts:
        return "The improvement survives every shift examined for people who left."
    return f"The improvement in {info.label} " + ", and ".join(parts) + "."


# --------------------------------------------------------------------------------------
# Describe: funnel, completers against non-completers, time to disengagement
# --------------------------------------------------------------------------------------


def make_table_funnel(
    clients, contacts, scores, *, score: str, params: SchemeParams
) -> pd.DataFrame:
    """Retention funnel: referred, contacted, baseline score, each follow-up, discharged.

    Counts are disclosure-controlled; percentages are of those referred, computed from
    the rounded counts.
    """
    rule = params.disclosure.rule()
    ids = clients["client_id"].astype(str)
    stages = [("Referred", ids.nunique())]
    if contacts is not None:
        stages.append(
            (
                "Had a contact with the scheme",
                contacts["client_id"]
                .astype(str)
                .isin(ids)
                .pipe(lambda s: contacts.loc[s, "client_id"].astype(str).nunique()),
            )
        )
    rows = scores[(scores["score"] == score) & scores["value"].notna()]
    if "non_standard" in rows.columns:
        rows = rows[~rows["non_standard"].fillna(False).astype(bool)]
    with_baseline = set(rows.loc[rows["timepoint"] == 0, "client_id"].astype(str))
    stages.append((f"Baseline {SCORES[score].label}", len(with_baseline)))
    for t in sorted(int(t) for t in rows["timepoint"].unique() if t > 0):
        label = params.measures.timepoints.get(t, f"follow-up {t}")
        returned = set(rows.loc[rows["timepoint"] == t, "client_id"].astype(str)) & with_baseline
        stages.append((f"{label} {SCORES[score].label} (with a baseline)", len(returned)))
    if "discharge_date" in clients.columns:
        stages.append(("Discharged", int(clients["discharge_date"].notna().sum())))
        if "discharge_reason" in clients.columns:
            stages.append(
                ("Discharged as completed", int((clients["discharge_reason"] == "completed").sum()))
            )
    frame = pd.DataFrame(stages, columns=["stage", "n_people"])
    referred = frame["n_people"].iloc[0]
    frame["percent_of_referred"] = disclose_percentage(
        frame["n_people"].to_numpy(), np.full(len(frame), referred), rule
    ).to_numpy()
    frame["n_people"] = disclose_count(frame["n_people"].to_numpy(), rule).to_numpy()
    return frame


def make_table_completer_balance(data: AttritionData, *, rule) -> pd.DataFrame:
    """Baseline characteristics of completers and non-completers, with standardised differences.

    Continuous variables: means (shown only for at least ``rule.min_n_summary`` people);
    categories: disclosure-controlled counts and percentages. The standardised mean
    difference is that of Austin (2009, Stat Med 28:3083-3107); it is withheld where
    either group's category count would be suppressed.
    """
    frame = data.frame
    done = data.completed.to_numpy()
    rows = []
    n1, n0 = int(done.sum()), int((~done).sum())
    continuous = ["baseline"] + [c for c in data.characteristics if c == "age"]
    for column in continuous:
        x1, x0 = frame.loc[done, column], frame.loc[~done, column]
        pooled_sd = np.sqrt((x1.var(ddof=1) + x0.var(ddof=1)) / 2)
        smd = (x1.mean() - x0.mean()) / pooled_sd if pooled_sd > 0 else np.nan
        rows.append(
            {
                "characteristic": CHARACTERISTIC_LABELS[column],
                "level": "mean",
                "completers": disclose_summary(x1.mean(), n1, rule).iloc[0],
                "non_completers": disclose_summary(x0.mean(), n0, rule).iloc[0],
                "smd": smd,
                "_n1": n1,
                "_n0": n0,
            }
        )
    for column in data.characteristics:
        if column == "age":
            continue
        for level in sorted(frame[column].unique(), key=str):
            k1 = int((frame.loc[done, column] == level).sum())
            k0 = int((frame.loc[~done, column] == level).sum())
            p1, p0 = k1 / n1, k0 / n0
            denominator = np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
            rows.append(
                {
                    "characteristic": CHARACTERISTIC_LABELS[column],
                    "level": str(level),
                    "completers": disclose_percentage([k1], [n1], rule).iloc[0],
                    "non_completers": disclose_percentage([k0], [n0], rule).iloc[0],
                    "smd": (p1 - p0) / denominator if denominator > 0 else 0.0,
                    "_n1": k1,
                    "_n0": k0,
                }
            )
    table = pd.DataFrame(rows)
    small = ((table["_n1"] >= 1) & (table["_n1"] <= rule.threshold)) | (
        (table["_n0"] >= 1) & (table["_n0"] <= rule.threshold)
    )
    table["smd"] = table["smd"].round(3).astype("Float64").mask(small.to_numpy())
    table["completers"] = table["completers"].astype("Float64").round(1)
    table["non_completers"] = table["non_completers"].astype("Float64").round(1)
    return table.drop(columns=["_n1", "_n0"])


def engagement_timeline(clients: pd.DataFrame, contacts: pd.DataFrame | None) -> pd.DataFrame:
    """Days from referral to disengagement (event) or censoring, one row per client.

    Disengagement is a discharge with reason ``disengaged``, dated by the last contact when
    contacts are recorded (the last time the person engaged), else by the discharge
    date. Other discharges are censored at discharge; open referrals at their last
    contact (or, with no contact, at referral, contributing no time).
    """
    frame = clients[["client_id", "referral_date"]].copy()
    frame["client_id"] = frame["client_id"].astype(str)
    for column in ("discharge_date", "discharge_reason"):
        frame[column] = clients[column].to_numpy() if column in clients.columns else pd.NA
    frame["discharge_date"] = pd.to_datetime(frame["discharge_date"])
    frame["referral_date"] = pd.to_datetime(frame["referral_date"])
    if contacts is not None and len(contacts):
        last = (
            contacts.assign(client_id=contacts["client_id"].astype(str))
            .groupby("client_id")["contact_date"]
            .max()
        )
        frame["last_contact"] = pd.to_datetime(frame["client_id"].map(last))
    else:
        frame["last_contact"] = pd.NaT
    event = (frame["discharge_reason"] == "disengaged").fillna(False).astype(bool)
    event_date = frame["last_contact"].where(frame["last_contact"].notna(), frame["discharge_date"])
    censor_date = frame["discharge_date"].where(
        frame["discharge_date"].notna(), frame["last_contact"]
    )
    end = event_date.where(event, censor_date).fillna(frame["referral_date"])
    days = (end - frame["referral_date"]).dt.days.clip(lower=0)
    out = clients.copy()
    out["client_id"] = out["client_id"].astype(str)
    out["days"] = days.to_numpy(dtype=float)
    out["disengaged"] = event.astype(int).to_numpy()
    return out


def _retention_figure_and_tests(timeline: pd.DataFrame, *, conf_level: float):
    overall = fit_kaplan_meier(timeline, duration="days", event="disengaged", conf_level=conf_level)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    overall.plot(axes[0], time_label="days since referral")
    axes[0].set_title("All referred")
    tests = []
    for ax, column in zip(axes[1:], ("imd_quintile", "age_band"), strict=True):
        if column not in timeline.columns:
            ax.set_visible(False)
            continue
        groups = timeline.assign(**{column: _pooled_categories(timeline[column])})
        km = fit_kaplan_meier(
            groups, duration="days", event="disengaged", group=column, conf_level=conf_level
        )
        km.plot(ax, time_label="days since referral")
        ax.set_title({"imd_quintile": "By IMD quintile", "age_band": "By age band"}[column])
    for column, label in SUBGROUPS.items():
        if column not in timeline.columns:
            continue
        groups = timeline.assign(**{column: _pooled_categories(timeline[column])})
        if groups[column].nunique() < 2:
            continue
        test = fit_logrank(groups, duration="days", event="disengaged", group=column)
        tests.append(
            {
                "grouping": label,
                "chi_square": round(test.statistic, 2),
                "df": test.df,
                "p_value": round(test.p_value, 4),
            }
        )
    fig.tight_layout()
    return fig, pd.DataFrame(tests, columns=["grouping", "chi_square", "df", "p_value"])


def _dropout_predictors(timeline: pd.DataFrame, *, conf_level: float):
    """Cox model of time to disengagement among everyone referred.

    Baseline scores are not in this model: people who disengage early often never
    complete a baseline questionnaire, so the model uses what is known for everyone.
    """
    people = timeline[["client_id", "days", "disengaged"]].copy()
    candidates = _add_characteristics(people, timeline)
    columns = ["term", "hazard_ratio", "conf_low", "conf_high", "p_value"]
    events = int(people["disengaged"].sum())
    # a category in which nobody (or everybody) disengaged has an infinite hazard ratio
    # (separation): leave such characteristics out rather than publish a meaningless one
    separated = _separated(people, candidates, people["disengaged"])
    candidates = [c for c in candidates if c not in separated]
    notes = [
        f"{CHARACTERISTIC_LABELS[c]} is left out of the dropout model: in at least one of its "
        "categories nobody (or everybody) disengaged."
        for c in separated
    ]
    chosen = covariates_within_budget(people, candidates, events, n_fixed=0)
    if not chosen:
        return pd.DataFrame(columns=columns), [
            *notes,
            f"Too few people disengaged ({events}) to model who drops out "
            f"(at least {EVENTS_PER_PARAMETER} per model parameter are needed).",
        ]
    terms = " + ".join(_term(people, c) for c in chosen)
    try:
        cox = fit_cox(
            people, duration="days", event="disengaged", formula=terms, conf_level=conf_level
        )
    except Exception as error:  # noqa: BLE001 - lifelines raises several types on failure
        return pd.DataFrame(columns=columns), [
            *notes,
            f"The dropout model could not be fitted: {error}",
        ]
    table = cox.tidy(exponentiate=True).rename(columns={"estimate": "hazard_ratio"})[columns]
    table["term"] = table["term"].map(_readable_term)
    table = table.round({"hazard_ratio": 3, "conf_low": 3, "conf_high": 3, "p_value": 4})
    return table, [*notes, *cox.diagnostics]


def _readable_term(term: str) -> str:
    if term.startswith("C(") and "[T." in term:
        variable = term[2 : term.index(")")]
        level = term[term.index("[T.") + 3 : -1]
        return f"{CHARACTERISTIC_LABELS.get(variable, variable)}: {level}"
    return {"baseline": "Baseline score (per point)", "age": "Age (per year)"}.get(term, term)
