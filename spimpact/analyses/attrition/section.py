"""The attrition section: who drops out, when, and how robust the change is.

Turns :class:`~spimpact.analyses.attrition.analysis.AttritionResult` into a
disclosure-controlled :class:`~spimpact.publish.section.Section`: the retention
funnel, completers against non-completers, the change by method and its tipping
point, dropout predictors, retention curves, text and headline rows.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.analyses.attrition.analysis import analyse_attrition
from spimpact.analyses.attrition.data import (
    CHARACTERISTIC_LABELS,
    EVENTS_PER_PARAMETER,
    SUBGROUPS,
    AttritionData,
)
from spimpact.analyses.attrition.retention import CURVE_GROUPS, RetentionResult
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import (
    disclose_count,
    disclose_percentage,
    disclose_summary,
)
from spimpact.publish.section import HEADLINE_COLUMNS, Section, Table
from spimpact.scoring import SCORES

# The adjusted estimates (missing at random) that go to the ICB summary; the mixed model
# for repeated measures is the wellbeing section's headline already.
HEADLINE_METHODS = {
    "ipw": "uncontrolled before/after, sequential inverse probability weighting for dropout",
    "mi": "uncontrolled before/after, multiple imputation from a mixed model for repeated "
    "measures (missing at random)",
}


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

    Raises
    ------
    InsufficientData
        When too few people have a baseline score, a follow-up, or none (see
        :func:`~spimpact.analyses.attrition.analysis.analyse_attrition`).
    """
    result = analyse_attrition(scheme, scores, params=params)
    rule = params.disclosure.rule()
    conf_level = params.conf_level
    score = result.score
    info = SCORES[score]
    scores = getattr(scores, "scores", scores)
    data, estimates, tipping = result.data, result.estimates, result.tipping
    n_people, n_completers = result.n_people, result.n_completers

    def label(t: int) -> str:
        return params.measures.timepoints.get(int(t), f"follow-up {t}")

    follow_label = label(data.first_follow_up)
    last_label = label(result.last_follow_up)
    funnel = make_table_funnel(scheme.clients, scheme.contacts, scores, score=score, params=params)
    balance = make_table_completer_balance(data, rule=rule)
    notes = [*result.diagnostics, *result.retention.diagnostics]

    estimates_public = estimates.assign(
        n=lambda d: disclose_count(d["n"].to_numpy(), rule).to_numpy()
    )
    headline = pd.DataFrame(
        {
            "outcome_level": "person",
            "outcome": [
                f"{info.label} change, baseline to {label(t)}"
                for t in estimates_public["timepoint"]
            ],
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
        _estimates_sentence(estimates, info, result.last_follow_up, last_label, conf_level),
        _tipping_sentence(tipping, info, last_label),
        _covariates_sentence(data),
        _weights_sentence(result.ipw, result.last_follow_up, last_label),
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
            "The weighted, mixed-model and imputed estimates assume that, given the recorded "
            "characteristics and earlier scores, those who left would have changed like "
            "those who stayed (missing at random). The 'back at baseline' imputation and the "
            "tipping point show what happens if that is not true: the shift is added to "
            "every score imputed after someone left, inside the imputation, so a worse score "
            "at one follow-up also lowers the next."
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
            f"Change in {info.label} from baseline to each follow-up by method "
            f"({conf_level:.0%} CI; t intervals on df degrees of freedom where finite)",
            _public_estimates(estimates_public, label),
        ),
        Table(
            "attrition_tipping_point",
            f"Delta-adjusted multiple imputation: the change to {last_label} if people who "
            "left had scored this many points worse, at every follow-up after they left, "
            "than similar people who stayed",
            _public_tipping(tipping),
        ),
        Table(
            "attrition_ipw_weights",
            "Sequential inverse probability weights by follow-up: people at risk of leaving, "
            "people still there, and the spread of their weights (effective sample size: "
            "the number of equally weighted people the weights are worth)",
            make_table_ipw_weights(result.ipw, label, rule),
        ),
        Table(
            "attrition_dropout_predictors",
            "Predictors of disengagement among everyone referred: hazard ratios from a Cox "
            "model (each category against the first category of its characteristic)",
            make_table_dropout_predictors(result.retention),
        ),
        Table(
            "attrition_retention_logrank",
            "Log-rank tests of equal retention across groups",
            make_table_logrank(result.retention),
        ),
    )
    return Section(
        title="Attrition: who drops out, and how robust is the change?",
        text=tuple(t for t in text if t),
        tables=tables,
        figures=(
            plot_change_estimates(
                estimates[estimates["timepoint"] == result.last_follow_up], info, last_label
            ),
            plot_retention(result.retention),
        ),
        headline=headline.reindex(columns=list(HEADLINE_COLUMNS)),
        notes=tuple(notes),
    )


def _public_estimates(estimates: pd.DataFrame, label) -> pd.DataFrame:
    out = estimates.drop(columns=["key"]).rename(columns={"n": "n_people"})
    out.insert(0, "follow_up", [label(t) for t in out.pop("timepoint")])
    numeric = ["estimate", "std_error", "conf_low", "conf_high"]
    out[numeric] = out[numeric].round(2)
    out["p_value"] = out["p_value"].round(4)
    out["df"] = out["df"].round(1)
    return out.sort_values("follow_up", kind="stable").reset_index(drop=True)


def make_table_ipw_weights(ipw, label, rule) -> pd.DataFrame:
    """Sequential IPW weights by follow-up, counts disclosure-controlled."""
    summary = ipw.weight_summary
    summary = summary[summary["visit"] != summary["visit"].min()]
    table = pd.DataFrame(
        {
            "follow_up": [label(t) for t in summary["visit"]],
            "n_at_risk": disclose_count(summary["n_at_risk"].to_numpy(), rule).to_numpy(),
            "n_observed": disclose_count(summary["n_observed"].to_numpy(), rule).to_numpy(),
        }
    )
    for column in ("weight_min", "weight_mean", "weight_max"):
        values = disclose_summary(summary[column], summary["n_observed"], rule)
        table[column] = values.round(2).to_numpy()
    ess = disclose_count(np.round(summary["effective_sample_size"].to_numpy()), rule)
    table["effective_sample_size"] = ess.to_numpy()
    return table


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


def _estimates_sentence(estimates, info, last, last_label, conf_level) -> str:
    by_key = estimates[estimates["timepoint"] == last].set_index("key")
    adjusted = by_key.loc[["ipw", "mmrm", "mi"]]
    low, high = adjusted["estimate"].min(), adjusted["estimate"].max()
    sentence = ""
    if "complete_case" in by_key.index:
        cc = by_key.loc["complete_case"]
        sentence = (
            f"Among people who returned both questionnaires the average change to {last_label} "
            f"was {cc['estimate']:+.2f} points ({conf_level:.0%} CI {cc['conf_low']:.2f} to "
            f"{cc['conf_high']:.2f}). "
        )
    back = by_key.loc["return_to_baseline"]
    return sentence + (
        "Allowing for who left (sequential weighting, mixed model, imputation) the estimates "
        f"range from {low:+.2f} to {high:+.2f}; imputing those who left as back at their "
        f"baseline level gives {back['estimate']:+.2f} ({back['conf_low']:.2f} to "
        f"{back['conf_high']:.2f})."
    )


def _weights_sentence(ipw, last, last_label) -> str:
    summary = ipw.weight_summary.set_index("visit")
    if last not in summary.index:
        return ""
    row = summary.loc[last]
    return (
        f"The sequential weights at {last_label} range from {row['weight_min']:.2f} to "
        f"{row['weight_max']:.2f}; the standard errors of the weighted estimates allow for "
        "the weights being estimated (stacked estimating equations)."
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
            f"{abs(tipping.delta_no_significance):.1f} points worse at each follow-up after "
            f"they left than similar people who stayed (the conclusion at {follow_label} "
            "changes at this shift)"
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
# Tables and figures: funnel, completers against non-completers, retention, dropout
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


def plot_retention(retention: RetentionResult):
    """Kaplan-Meier retention curves: everyone referred, by IMD quintile, by age band."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    retention.curves["all"].plot(axes[0], time_label="days since referral")
    axes[0].set_title("All referred")
    for ax, column in zip(axes[1:], CURVE_GROUPS, strict=True):
        if column not in retention.curves:
            ax.set_visible(False)
            continue
        retention.curves[column].plot(ax, time_label="days since referral")
        ax.set_title({"imd_quintile": "By IMD quintile", "age_band": "By age band"}[column])
    fig.tight_layout()
    return fig


def make_table_logrank(retention: RetentionResult) -> pd.DataFrame:
    """Log-rank tests of equal retention across the groups of each characteristic."""
    rows = [
        {
            "grouping": SUBGROUPS[column],
            "chi_square": round(test.statistic, 2),
            "df": test.df,
            "p_value": round(test.p_value, 4),
        }
        for column, test in retention.logrank.items()
    ]
    return pd.DataFrame(rows, columns=["grouping", "chi_square", "df", "p_value"])


def make_table_dropout_predictors(retention: RetentionResult) -> pd.DataFrame:
    """Hazard ratios of the dropout model, each category against the first of its kind."""
    columns = ["term", "hazard_ratio", "conf_low", "conf_high", "p_value"]
    if retention.dropout_model is None:
        return pd.DataFrame(columns=columns)
    tidy = retention.dropout_model.tidy(exponentiate=True)
    table = tidy.rename(columns={"estimate": "hazard_ratio"})[columns]
    table["term"] = table["term"].map(_readable_term)
    return table.round({"hazard_ratio": 3, "conf_low": 3, "conf_high": 3, "p_value": 4})


def _readable_term(term: str) -> str:
    if term.startswith("C(") and "[T." in term:
        variable = term[2 : term.index(")")]
        level = term[term.index("[T.") + 3 : -1]
        return f"{CHARACTERISTIC_LABELS.get(variable, variable)}: {level}"
    return {"baseline": "Baseline score (per point)", "age": "Age (per year)"}.get(term, term)
