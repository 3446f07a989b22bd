"""Wellbeing change: did it improve, by how much, and for whom (GitHub issue 4).

The primary analysis is a linear mixed model with a random intercept per client,
which uses every available score and is valid when follow-ups are missing at
random given the scores and covariates in the model (Laird & Ware 1982). Paired
complete-case change is shown beside it, with standardised effect sizes, the
share of people with meaningful or reliable change (``spimpact.scoring``),
subgroup differences, the change expected from regression to the mean alone
(SPEC §5.4) and the minimum detectable change for the scheme's sample size.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from spimpact.models.mixed import MixedResult, fit_mixed
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import disclose_count, disclose_percentage, disclose_summary
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData, Section, Table
from spimpact.scoring import SCORES, classify_change

# The scores analysed for each measure (their analysis scale); raw totals that only
# duplicate a transformed scale are left out, and the ordinal single-item ONS
# loneliness question is not modelled as a continuous outcome.
ANALYSED_SCORES = {
    "swemwbs": ("swemwbs_metric",),
    "wemwbs": ("wemwbs_total",),
    "ons4": ("ons4_life_satisfaction", "ons4_worthwhile", "ons4_happiness", "ons4_anxiety"),
    "who5": ("who5_pct",),
    "eq5d5l": ("eq5d5l_index", "eq5d_vas"),
    "mycaw": ("mycaw_concern_1", "mycaw_wellbeing"),
    "ucla3": ("ucla3_total",),
}
SUBGROUPS = {
    "imd_quintile": "IMD quintile",
    "sex": "sex",
    "age_band": "age band",
    "ethnic_group": "ethnic group",
}
COVARIATES = ("sex", "age_band", "imd_quintile")
POWER = 0.80
MDC_ALPHA = 0.05
METHOD = (
    "Linear mixed model, random intercept per client (REML), adjusted for sex, age band "
    "and IMD quintile"
)


# eq=False: the fields hold arrays and frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class WellbeingResult:
    """Change in one wellbeing score (read-only; not yet disclosure-controlled).

    Attributes
    ----------
    score, label, higher_is_better
        The score analysed, as in :data:`spimpact.scoring.SCORES`.
    counts
        People with a score at each time point: ``timepoint, n_people``.
    model
        The primary mixed model (``value ~ C(timepoint) + covariates``).
    trajectory
        Model-estimated mean at each time point (``value ~ C(timepoint)``, so the
        means describe this scheme's clients): ``timepoint, estimate, std_error,
        conf_low, conf_high, n_people``.
    change
        Mixed-model change from baseline to each follow-up, adjusted for the
        covariates: ``timepoint, estimate, std_error, statistic, p_value, conf_low,
        conf_high, n_people`` (people with a score at that follow-up).
    paired
        Complete-case change per follow-up: ``timepoint, n_pairs, mean_change,
        sd_change, std_error, conf_low, conf_high, srm, effect_size,
        detectable_change``. ``srm`` is the standardised response mean, mean / SD
        of change, which is also Cohen's d_z; ``effect_size`` is mean change / SD
        at baseline (Kazis et al. 1989); ``detectable_change`` is the smallest
        true mean change detectable with 80% power (two-sided 5%).
    categories
        People per follow-up by meaningful and reliable change category:
        ``timepoint, classification, category, n, n_total``.
    subgroups
        Change within each subgroup level: ``subgroup, level, timepoint,
        estimate, std_error, conf_low, conf_high, n_people``.
    subgroup_tests
        Joint likelihood-ratio test (ML) that change is the same in every level:
        ``subgroup, statistic, df, p_value, n_levels``.
    regression_to_mean
        Change expected from regression to the mean alone beside the observed
        change: ``timepoint, baseline_mean, population_mean, test_retest,
        expected_change, observed_change, population_source``.
    individual_improvement
        Each person's change at each follow-up, signed so that positive is better
        (``timepoint, improvement``), for binned plots only: never published.
    diagnostics
        Plain-English notes on the fits and on what was left out.
    """

    score: str
    label: str
    higher_is_better: bool
    counts: pd.DataFrame
    model: MixedResult
    trajectory: pd.DataFrame
    change: pd.DataFrame
    paired: pd.DataFrame
    categories: pd.DataFrame
    subgroups: pd.DataFrame
    subgroup_tests: pd.DataFrame
    regression_to_mean: pd.DataFrame
    individual_improvement: pd.DataFrame
    diagnostics: tuple[str, ...]


def analyse_wellbeing(
    scores: pd.DataFrame,
    clients: pd.DataFrame,
    *,
    score: str,
    params: SchemeParams,
) -> WellbeingResult:
    """Estimate change from baseline in one wellbeing score, overall and by subgroup.

    Parameters
    ----------
    scores
        Long scores from ``spimpact.scoring.score_measures(...).scores``
        (``client_id, score, timepoint, value``; time point 0 is baseline).
    clients
        Client table with ``client_id`` and the subgroup columns ``sex``,
        ``age_band``, ``imd_quintile``, ``ethnic_group`` (missing ones are skipped).
    score
        A score name in :data:`spimpact.scoring.SCORES`, e.g. ``"swemwbs_metric"``.
    params
        Scheme parameters: ``conf_level``, disclosure rule (smallest group for a
        subgroup estimate), change thresholds.

    Returns
    -------
    WellbeingResult

    Raises
    ------
    ValueError
        For missing columns or an unknown score.
    InsufficientData
        When fewer than ``min_n_summary`` people have both a baseline and a follow-up.

    Notes
    -----
    Mixed model: random intercept per client fitted by REML with
    :func:`spimpact.models.mixed.fit_mixed`; change = contrast of marginal means
    (emmeans convention). Paired change: t interval with n - 1 df. Minimum
    detectable change: (z_{0.975} + z_{0.80}) SD_change / sqrt(n) (paired design,
    normal approximation). Regression to the mean: expected change =
    (1 - r)(population mean - baseline mean) with r the published test-retest
    reliability (SPEC §5.4; Barnett, van der Pols & Dobson 2005, Int J Epidemiol
    34:215). Subgroups: likelihood-ratio test of the time x subgroup interaction,
    both models fitted by ML.

    Examples
    --------
    >>> from spimpact.params import SchemeParams
    >>> rng = np.random.default_rng(3)
    >>> ids = np.repeat([f"c{i}" for i in range(60)], 2)
    >>> scores = pd.DataFrame({"client_id": ids, "score": "who5_pct",
    ...     "timepoint": np.tile([0, 1], 60),
    ...     "value": np.tile([40.0, 52.0], 60) + rng.normal(0, 8, 120)})
    >>> clients = pd.DataFrame({"client_id": ids[::2], "sex": "female"})
    >>> params = SchemeParams(scheme_id="demo", title="Demo", data_dir=".")
    >>> result = analyse_wellbeing(scores, clients, score="who5_pct", params=params)
    >>> round(float(result.change.estimate.iloc[0]))
    12
    """
    data = _score_frame(scores, clients, score)
    rule = params.disclosure.rule()
    info = SCORES[score]
    diagnostics: list[str] = []
    wide = data.pivot(index="client_id", columns="timepoint", values="value")
    if 0 not in wide.columns:
        raise InsufficientData(f"No baseline {info.label} scores were recorded.")
    followups = sorted(t for t in wide.columns if t > 0)
    n_pairs = {t: int(wide[[0, t]].dropna().shape[0]) for t in followups}
    followups = [t for t in followups if n_pairs[t] >= rule.min_n_summary]
    if not followups:
        raise InsufficientData(
            f"Fewer than {rule.min_n_summary} people have both a baseline and a follow-up "
            f"{info.label} score, so change cannot be estimated."
        )
    data = data[data.timepoint.isin([0, *followups])]
    counts = data.groupby("timepoint").client_id.nunique().rename("n_people").reset_index()
    conf_level = params.conf_level

    covariates = [c for c in COVARIATES if data[c].nunique() > 1]
    formula = "value ~ C(timepoint)" + "".join(f" + C({c})" for c in covariates)
    model = fit_mixed(formula, data, group="client_id")
    diagnostics += list(model.diagnostics)
    n_at = counts.set_index("timepoint").n_people
    change = model.contrasts("timepoint", reference=0, conf_level=conf_level)
    change = change.rename(columns={"level": "timepoint"}).drop(columns=["term", "reference"])
    change["n_people"] = change.timepoint.map(n_at).to_numpy()

    unadjusted = fit_mixed("value ~ C(timepoint)", data, group="client_id")
    trajectory = unadjusted.marginal_means("timepoint", conf_level=conf_level)
    trajectory = trajectory.rename(columns={"level": "timepoint"}).drop(columns="term")
    trajectory["n_people"] = trajectory.timepoint.map(n_at).to_numpy()

    paired, improvement = _paired_change(wide, followups, info.higher_is_better, conf_level)
    categories = _categories(data, score, params, followups)
    subgroups, subgroup_tests, notes = _subgroups(data, rule.min_n_summary, conf_level)
    diagnostics += notes
    rtm = _regression_to_mean(data, score, change)
    return WellbeingResult(
        score=score,
        label=info.label,
        higher_is_better=info.higher_is_better,
        counts=counts,
        model=model,
        trajectory=trajectory,
        change=change,
        paired=paired,
        categories=categories,
        subgroups=subgroups,
        subgroup_tests=subgroup_tests,
        regression_to_mean=rtm,
        individual_improvement=improvement,
        diagnostics=tuple(diagnostics),
    )


def _score_frame(scores: pd.DataFrame, clients: pd.DataFrame, score: str) -> pd.DataFrame:
    missing = [c for c in ("client_id", "score", "timepoint", "value") if c not in scores]
    if missing:
        raise ValueError(f"scores lack column(s) {', '.join(missing)}")
    if "client_id" not in clients:
        raise ValueError("clients lacks column 'client_id'")
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; see spimpact.scoring.SCORES")
    data = scores.loc[scores["score"] == score, ["client_id", "timepoint", "value"]].dropna()
    if data.duplicated(["client_id", "timepoint"]).any():
        raise ValueError(
            f"more than one {score} value for a client at one time point; scores must be "
            "unique per client, score and time point"
        )
    data = data.assign(timepoint=data["timepoint"].astype(int), value=data["value"].astype(float))
    people = clients[["client_id"]].copy()
    for column in (*COVARIATES, "ethnic_group"):
        # A missing covariate is its own level, so nobody is dropped for it.
        values = clients[column] if column in clients else pd.Series("unknown", clients.index)
        people[column] = values.astype("string").fillna("unknown").to_numpy()
    return data.merge(people, on="client_id", how="inner").reset_index(drop=True)


def _paired_change(wide, followups, higher_is_better, conf_level):
    rows, improvements = [], []
    baseline_sd = float(wide[0].std(ddof=1))
    z = stats.norm.ppf(1 - MDC_ALPHA / 2) + stats.norm.ppf(POWER)
    for t in followups:
        pairs = wide[[0, t]].dropna()
        diff = pairs[t] - pairs[0]
        n = len(diff)
        mean, sd = float(diff.mean()), float(diff.std(ddof=1))
        se = sd / np.sqrt(n)
        crit = stats.t.ppf(0.5 + conf_level / 2, n - 1)
        rows.append(
            {
                "timepoint": t,
                "n_pairs": n,
                "mean_change": mean,
                "sd_change": sd,
                "std_error": se,
                "conf_low": mean - crit * se,
                "conf_high": mean + crit * se,
                "srm": mean / sd if sd > 0 else np.nan,
                "effect_size": mean / baseline_sd if baseline_sd > 0 else np.nan,
                "detectable_change": z * sd / np.sqrt(n),
            }
        )
        sign = 1.0 if higher_is_better else -1.0
        improvements.append(pd.DataFrame({"timepoint": t, "improvement": sign * diff.to_numpy()}))
    return pd.DataFrame(rows), pd.concat(improvements, ignore_index=True)


def _categories(data, score, params, followups) -> pd.DataFrame:
    long = data.assign(score=score)[["client_id", "score", "timepoint", "value"]]
    classified = classify_change(long, thresholds=params.measures.thresholds)
    counts = classified.counts()
    counts = counts[counts.timepoint.isin(followups)].drop(columns="score")
    totals = counts.groupby(["timepoint", "classification"]).n.transform("sum")
    return counts.assign(n_total=totals).reset_index(drop=True)


def _subgroups(data, min_n, conf_level):
    estimates, tests, notes = [], [], []
    for column, name in SUBGROUPS.items():
        with_followup = data[data.timepoint > 0].groupby(column).client_id.nunique()
        levels = sorted(
            level for level, n in with_followup.items() if n >= min_n and level != "unknown"
        )
        if len(levels) < 2:
            notes.append(
                f"Change by {name} was not estimated: fewer than two groups have "
                f"{min_n} or more people with a follow-up."
            )
            continue
        subset = data[data[column].isin(levels)]
        full_formula = f"value ~ C(timepoint) * C({column})"
        reduced_formula = f"value ~ C(timepoint) + C({column})"
        try:
            full = fit_mixed(full_formula, subset, group="client_id", reml=False)
            reduced = fit_mixed(reduced_formula, subset, group="client_id", reml=False)
            by_level = fit_mixed(full_formula, subset, group="client_id")
        except ValueError as error:
            notes.append(f"Change by {name} could not be estimated: {error}.")
            continue
        df = len(full.fixed_names) - len(reduced.fixed_names)
        statistic = max(0.0, 2 * (full.loglik - reduced.loglik))
        tests.append(
            {
                "subgroup": column,
                "statistic": statistic,
                "df": df,
                "p_value": float(stats.chi2.sf(statistic, df)),
                "n_levels": len(levels),
            }
        )
        contrasts = by_level.contrasts("timepoint", reference=0, by=column, conf_level=conf_level)
        n_people = subset[subset.timepoint > 0].groupby([column, "timepoint"]).client_id.nunique()
        for row in contrasts.itertuples():
            estimates.append(
                {
                    "subgroup": column,
                    "level": row.by_level,
                    "timepoint": row.level,
                    "estimate": row.estimate,
                    "std_error": row.std_error,
                    "conf_low": row.conf_low,
                    "conf_high": row.conf_high,
                    "n_people": int(n_people.get((row.by_level, row.level), 0)),
                }
            )
    subgroup_columns = [
        "subgroup", "level", "timepoint", "estimate", "std_error", "conf_low", "conf_high",
        "n_people",
    ]  # fmt: skip
    test_columns = ["subgroup", "statistic", "df", "p_value", "n_levels"]
    return (
        pd.DataFrame(estimates, columns=subgroup_columns),
        pd.DataFrame(tests, columns=test_columns),
        notes,
    )


def _population_mean(data: pd.DataFrame, score: str) -> tuple[float, str | None]:
    """Return the population norm for the baseline clients, matched on sex where possible."""
    norms = SCORES[score].norms
    if not norms:
        return np.nan, None
    by_group = {norm.group: norm for norm in norms}
    if "men" in by_group and "women" in by_group:
        men, women = by_group["men"].mean, by_group["women"].mean
        sex = data.loc[data.timepoint == 0, "sex"]
        per_person = np.select([sex == "male", sex == "female"], [men, women], (men + women) / 2)
        return float(np.mean(per_person)), by_group["men"].source + " (matched on sex)"
    return float(norms[0].mean), norms[0].source


def _regression_to_mean(data, score, change) -> pd.DataFrame:
    info = SCORES[score]
    baseline_mean = float(data.loc[data.timepoint == 0, "value"].mean())
    population_mean, source = _population_mean(data, score)
    r = np.nan if info.test_retest is None else info.test_retest
    # Scores drift toward the population mean by (1 - r) of the gap, whatever happens.
    expected = (1 - r) * (population_mean - baseline_mean)
    return pd.DataFrame(
        {
            "timepoint": change.timepoint.to_numpy(),
            "baseline_mean": baseline_mean,
            "population_mean": population_mean,
            "test_retest": r,
            "expected_change": expected,
            "observed_change": change.estimate.to_numpy(),
            "population_source": source,
        }
    )


def wellbeing_section(scores: pd.DataFrame, clients: pd.DataFrame, *, params: SchemeParams):
    """Build the report section on wellbeing change for every scored measure.

    Parameters
    ----------
    scores
        Long scores from ``spimpact.scoring.score_measures(...).scores``.
    clients
        ``SchemeData.clients``.
    params
        Scheme parameters; ``params.measures.primary`` names the measure reported first
        and in the headline figure.

    Returns
    -------
    spimpact.publish.section.Section
        Disclosure-controlled tables, figures (trajectory, binned individual change,
        subgroup forest plot), commissioner text and headline rows.

    Raises
    ------
    InsufficientData
        When no scored measure has enough people with a baseline and a follow-up.
    """
    rule = params.disclosure.rule()
    labels = {int(k): v for k, v in params.measures.timepoints.items()}
    results, skipped = [], []
    for measure in _measure_order(scores, params.measures.primary):
        for score in ANALYSED_SCORES[measure]:
            if not (scores["score"] == score).any():
                continue
            try:
                results.append(analyse_wellbeing(scores, clients, score=score, params=params))
            except InsufficientData as reason:
                skipped.append(str(reason))
    if not results:
        raise InsufficientData(
            "Wellbeing change could not be estimated: "
            + (" ".join(skipped) if skipped else "no wellbeing scores were recorded.")
        )
    primary = results[0]
    tables = (
        Table("wellbeing_change", _change_caption(params), _change_table(results, labels, rule)),
        Table(
            "wellbeing_change_categories",
            "People with meaningful or reliable improvement or deterioration (complete cases); "
            "counts rounded to 5, 1-7 suppressed (*).",
            _category_table(results, labels, rule),
        ),
        Table(
            "wellbeing_subgroups",
            "Change from baseline by subgroup (mixed model with a time x subgroup "
            "interaction) and the joint likelihood-ratio test that change is the same in "
            "every group.",
            _subgroup_table(results, labels, rule),
        ),
        Table(
            "wellbeing_models",
            "Technical table: time terms and variance components of each mixed model "
            "(other covariate coefficients omitted).",
            _technical_table(results, rule),
        ),
    )
    figures = tuple(
        figure
        for figure in (
            _trajectory_figure(results, labels, rule, params.conf_level),
            _change_distribution_figure(primary, labels, rule),
            _forest_figure(primary, labels, rule),
        )
        if figure is not None
    )
    ordinal = [
        SCORES[name].label
        for name in sorted(set(scores["score"]))
        if name in SCORES and SCORES[name].ordinal
    ]
    skipped += [
        f"{label} is a single ordinal question, so its change is not modelled as a "
        "continuous score here." for label in ordinal
    ]  # fmt: skip
    notes = tuple(skipped) + tuple(
        f"{result.label}: {text}" for result in results for text in result.diagnostics
    )
    return Section(
        title="Wellbeing change",
        text=tuple(_commissioner_text(results, labels, rule, params.conf_level)),
        tables=tables,
        figures=figures,
        headline=_headline(results, labels, rule),
        notes=notes,
    )


def _measure_order(scores: pd.DataFrame, primary: str) -> list[str]:
    present = [m for m in ANALYSED_SCORES if scores["score"].isin(ANALYSED_SCORES[m]).any()]
    return sorted(present, key=lambda m: (m != primary, list(ANALYSED_SCORES).index(m)))


def _label(labels: dict, timepoint: int) -> str:
    return labels.get(int(timepoint), f"follow-up {timepoint}")


def _change_caption(params: SchemeParams) -> str:
    level = round(params.conf_level * 100)
    return (
        f"Change from baseline with {level}% confidence intervals: mixed model using every "
        "score (primary) beside paired change in people with both scores, standardised "
        "effect sizes, the change regression to the mean alone would produce, and the "
        "smallest change this sample could detect. Counts rounded to 5; means shown only "
        f"for {params.disclosure.min_n_summary}+ people."
    )


def _change_table(results, labels, rule) -> pd.DataFrame:
    rows = []
    for result in results:
        paired = result.paired.set_index("timepoint")
        rtm = result.regression_to_mean.set_index("timepoint")
        n_baseline = int(result.counts.set_index("timepoint").n_people.get(0, 0))
        for row in result.change.itertuples():
            pair = paired.loc[row.timepoint]
            rows.append(
                {
                    "score": result.label,
                    "follow_up": _label(labels, row.timepoint),
                    "n_baseline": n_baseline,
                    "n_follow_up": row.n_people,
                    "model_change": row.estimate,
                    "model_conf_low": row.conf_low,
                    "model_conf_high": row.conf_high,
                    "n_pairs": int(pair.n_pairs),
                    "paired_change": pair.mean_change,
                    "paired_conf_low": pair.conf_low,
                    "paired_conf_high": pair.conf_high,
                    "srm": pair.srm,
                    "effect_size": pair.effect_size,
                    "detectable_change": pair.detectable_change,
                    "rtm_expected_change": rtm.loc[row.timepoint, "expected_change"],
                }
            )
    table = pd.DataFrame(rows)
    for column in ("model_change", "model_conf_low", "model_conf_high"):
        table[column] = disclose_summary(table[column], table.n_follow_up, rule).round(2)
    paired_columns = (
        "paired_change", "paired_conf_low", "paired_conf_high", "srm", "effect_size",
        "detectable_change", "rtm_expected_change",
    )  # fmt: skip
    for column in paired_columns:
        table[column] = disclose_summary(table[column], table.n_pairs, rule).round(2)
    for column in ("n_baseline", "n_follow_up", "n_pairs"):
        table[column] = disclose_count(table[column].to_numpy(), rule).to_numpy()
    return table


def _category_table(results, labels, rule) -> pd.DataFrame:
    frames = []
    for result in results:
        categories = result.categories
        if categories.empty:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "score": result.label,
                    "follow_up": [_label(labels, t) for t in categories.timepoint],
                    "classification": categories.classification.to_numpy(),
                    "category": categories.category.to_numpy(),
                    "n": disclose_count(categories.n.to_numpy(), rule).to_numpy(),
                    "n_total": disclose_count(categories.n_total.to_numpy(), rule).to_numpy(),
                    "percent": disclose_percentage(
                        categories.n.to_numpy(), categories.n_total.to_numpy(), rule
                    ).to_numpy(),
                }
            )
        )
    columns = ["score", "follow_up", "classification", "category", "n", "n_total", "percent"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _subgroup_table(results, labels, rule) -> pd.DataFrame:
    frames = []
    for result in results:
        subgroups = result.subgroups
        if subgroups.empty:
            continue
        tests = result.subgroup_tests.set_index("subgroup")
        table = pd.DataFrame(
            {
                "score": result.label,
                "subgroup": subgroups.subgroup.map(SUBGROUPS).to_numpy(),
                "group": subgroups.level.to_numpy(),
                "follow_up": [_label(labels, t) for t in subgroups.timepoint],
                "n_people": disclose_count(subgroups.n_people.to_numpy(), rule).to_numpy(),
            }
        )
        for column in ("estimate", "conf_low", "conf_high"):
            table[column] = (
                disclose_summary(subgroups[column], subgroups.n_people, rule).round(2).to_numpy()
            )
        table["joint_test_p_value"] = subgroups.subgroup.map(tests.p_value).round(4).to_numpy()
        frames.append(table)
    columns = [
        "score", "subgroup", "group", "follow_up", "n_people", "estimate", "conf_low",
        "conf_high", "joint_test_p_value",
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _technical_table(results, rule) -> pd.DataFrame:
    frames = []
    for result in results:
        tidy = result.model.tidy()
        keep = (tidy.effect == "ran_pars") | tidy.term.str.startswith(("Intercept", "C(timepoint)"))
        tidy = tidy[keep].copy()
        tidy.insert(0, "score", result.label)
        tidy["n_observations"] = disclose_count(result.model.n_obs, rule).iloc[0]
        tidy["n_clients"] = disclose_count(result.model.n_groups, rule).iloc[0]
        frames.append(tidy)
    return pd.concat(frames, ignore_index=True)


def _trajectory_figure(results, labels, rule, conf_level) -> Figure:
    n_panels = len(results)
    columns = min(n_panels, 3)
    rows = int(np.ceil(n_panels / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for ax, result in zip(axes.ravel(), results, strict=False):
        trajectory = result.trajectory
        shown = disclose_summary(trajectory.estimate, trajectory.n_people, rule).notna().to_numpy()
        trajectory = trajectory[shown]
        ax.errorbar(
            trajectory.timepoint.to_numpy(),
            trajectory.estimate.to_numpy(),
            yerr=[
                (trajectory.estimate - trajectory.conf_low).to_numpy(),
                (trajectory.conf_high - trajectory.estimate).to_numpy(),
            ],
            fmt="o-",
            capsize=4,
            color="#005eb8",
        )
        ax.set_xticks(
            trajectory.timepoint.to_numpy(), [_label(labels, t) for t in trajectory.timepoint]
        )
        ax.set_title(result.label, fontsize=10)
        direction = "higher is better" if result.higher_is_better else "lower is better"
        ax.set_ylabel(f"mean ({direction})")
    for ax in axes.ravel()[n_panels:]:
        ax.set_visible(False)
    figure.suptitle(f"Mean score by time point (model estimate, {round(conf_level * 100)}% CI)")
    figure.tight_layout()
    return figure


def _change_distribution_figure(result, labels, rule) -> Figure | None:
    improvement = result.individual_improvement
    if improvement.empty:
        return None
    followups = sorted(improvement.timepoint.unique())
    figure, axes = plt.subplots(
        1, len(followups), figsize=(4.5 * len(followups), 3.4), squeeze=False
    )
    values = improvement.improvement.to_numpy()
    # Few, wide bins in small schemes, so that fewer bins fall under the
    # suppression threshold; about 25 people per bin on average, 4 to 15 bins.
    per_followup = len(values) / len(followups)
    edges = np.histogram_bin_edges(values, bins=int(np.clip(per_followup // 25, 4, 15)))
    for ax, t in zip(axes.ravel(), followups, strict=True):
        counts, _ = np.histogram(improvement.loc[improvement.timepoint == t, "improvement"], edges)
        safe = disclose_count(counts, rule)
        shown = safe.fillna(0).to_numpy(dtype=float)
        total = float(shown.sum()) or 1.0
        # Bars are shares of the disclosure-controlled counts; a bin of 1-7 people
        # is shaded and hatched over its whole height, so no small count can be read.
        ax.bar(edges[:-1], 100 * shown / total, width=np.diff(edges), align="edge",
               color="#41b6e6", edgecolor="white")  # fmt: skip
        for left, right, suppressed in zip(edges[:-1], edges[1:], safe.isna(), strict=True):
            if suppressed:
                ax.axvspan(left, right, facecolor="#e8edee", hatch="//", edgecolor="grey")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"Baseline to {_label(labels, t)}", fontsize=10)
        ax.set_xlabel("individual change (positive = better)")
        ax.set_ylabel("% of people (rounded counts)")
    figure.suptitle(f"{result.label}: distribution of individual change (hatched: 1-7 people)")
    figure.tight_layout()
    return figure


def _forest_figure(result, labels, rule) -> Figure | None:
    subgroups = result.subgroups
    if subgroups.empty:
        return None
    last = subgroups.timepoint.max()
    shown = subgroups[subgroups.timepoint == last].copy()
    shown = shown[disclose_summary(shown.estimate, shown.n_people, rule).notna().to_numpy()]
    if shown.empty:
        return None
    overall = result.change.set_index("timepoint").loc[last]
    figure, ax = plt.subplots(figsize=(6.5, 0.35 * len(shown) + 1.8))
    positions = np.arange(len(shown))[::-1]
    ax.errorbar(
        shown.estimate.to_numpy(),
        positions,
        xerr=[
            (shown.estimate - shown.conf_low).to_numpy(),
            (shown.conf_high - shown.estimate).to_numpy(),
        ],
        fmt="s",
        color="#005eb8",
        capsize=3,
    )
    ax.axvline(overall.estimate, color="#005eb8", linestyle=":", label="all clients")
    ax.axvline(0, color="grey", linewidth=0.8)
    names = [
        f"{SUBGROUPS[s]}: {level}" for s, level in zip(shown.subgroup, shown.level, strict=True)
    ]
    ax.set_yticks(positions, names)
    ax.set_xlabel(f"{result.label} change, baseline to {_label(labels, last)} (with CI)")
    ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return figure


def _format_change(value: float, decimals: int) -> str:
    return f"{value:+.{decimals}f}"


def _commissioner_text(results, labels, rule, conf_level) -> list[str]:
    paragraphs = []
    for result in results:
        change = result.change
        last = change.iloc[-1]
        n_shown = disclose_count(last.n_people, rule).iloc[0]
        if pd.isna(n_shown) or last.n_people < rule.min_n_summary:
            continue
        better = (last.estimate > 0) == result.higher_is_better
        significant = not (last.conf_low <= 0 <= last.conf_high)
        info = SCORES[result.score]
        decimals = 2 if info.maximum - info.minimum <= 2 else 1
        moved = "rose" if last.estimate > 0 else "fell"
        direction = "an improvement" if better else "a deterioration"
        level = round(conf_level * 100)
        verdict = (
            f"{result.label} {moved} on average by {abs(last.estimate):.{decimals}f} points "
            f"from baseline to {_label(labels, last.timepoint)}, {direction} "
            f"({'higher' if result.higher_is_better else 'lower'} is better; {level}% CI "
            f"{last.conf_low:.{decimals}f} to {last.conf_high:.{decimals}f}; about {n_shown} "
            "people with a follow-up score)."
        )
        if not significant:
            verdict += " This is within the range expected by chance."
        rtm = result.regression_to_mean.iloc[-1]
        if pd.notna(rtm.expected_change):
            rtm_better = (rtm.expected_change > 0) == result.higher_is_better
            verdict += (
                f" People were referred with an average baseline of {rtm.baseline_mean:.1f} "
                f"against a population average of {rtm.population_mean:.1f}; regression to the "
                "mean alone would move scores by about "
                f"{_format_change(rtm.expected_change, decimals)} "
                f"points ({'an apparent improvement' if rtm_better else 'an apparent decline'}),"
                " so only change beyond that can be credited to the scheme, and without a "
                "comparison group even that is not proof that the scheme caused it."
            )
        else:
            verdict += (
                " No published population norm and test-retest reliability are available to "
                "estimate how much of this is regression to the mean; without a comparison "
                "group, the change cannot be attributed to the scheme."
            )
        paired = result.paired.iloc[-1]
        verdict += (
            f" Among people with both scores the average change was "
            f"{_format_change(paired.mean_change, decimals)} (standardised response mean "
            f"{paired.srm:.2f}); this sample could detect a true average change of "
            f"{paired.detectable_change:.{decimals}f} points with 80% power."
        )
        tests = result.subgroup_tests
        differing = tests[tests.p_value < 0.05]
        if not differing.empty:
            names = ", ".join(SUBGROUPS[s] for s in differing.subgroup)
            verdict += f" Change differed by {names} (joint test p < 0.05)."
        elif not tests.empty:
            verdict += " There was no clear evidence that change differed between subgroups."
        paragraphs.append(verdict)
    return paragraphs


def _headline(results, labels, rule) -> pd.DataFrame:
    rows = []
    for result in results:
        for row in result.change.itertuples():
            if row.n_people < rule.min_n_summary:
                continue
            rows.append(
                {
                    "outcome_level": "person",
                    "outcome": (
                        f"{result.label} change, baseline to {_label(labels, row.timepoint)}"
                    ),
                    "measure": result.score,
                    "estimate": row.estimate,
                    "std_error": row.std_error,
                    "conf_low": row.conf_low,
                    "conf_high": row.conf_high,
                    "n": disclose_count(row.n_people, rule).iloc[0],
                    "method": METHOD,
                }
            )
    return pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))
