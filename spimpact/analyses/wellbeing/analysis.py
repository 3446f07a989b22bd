"""Wellbeing change in one score: did it improve, by how much, and for whom (issues 4, 13).

The primary analysis is a mixed model for repeated measures (MMRM): a mean per time
point and an unstructured residual covariance (with a pre-specified fallback when the
data cannot support it), fitted by REML, with t intervals on Kenward-Roger (or
Satterthwaite) degrees of freedom so that small schemes get honest intervals. It uses
every available score and is valid when follow-ups are missing at random given the
earlier scores and the covariates, whatever the variances and correlations over time
(Mallinckrodt et al. 2008, Drug Inf J 42:303). The random-intercept model of issue 4,
which assumes equal variances and correlations, is kept as a sensitivity row. Paired
complete-case change is estimated beside it, with standardised effect sizes, the
share of people with meaningful or reliable change (``spimpact.scoring``),
subgroup differences, the change expected from regression to the mean alone
(SPEC §5.4) and the minimum detectable change for the scheme's sample size.
Numbers only: :mod:`spimpact.analyses.wellbeing.section` turns them into the
report section.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from spimpact.models.mixed import MixedResult, fit_mixed
from spimpact.models.mmrm_fallback import fit_mmrm_fallback
from spimpact.models.paired import fit_paired_change, minimum_detectable_change
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import TIDY_COLUMNS, make_tidy
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData
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


# eq=False: the fields hold arrays and frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class WellbeingResult(EstimatorResult):
    """Change in one wellbeing score (read-only; not yet disclosure-controlled).

    ``tidy(conf_level=None)`` gives the MMRM change from baseline to each follow-up
    (term ``timepoint <t> - 0``; t intervals on the model's degrees of freedom),
    recomputed at any level; ``summary()`` describes the change in words for analysts.

    Attributes
    ----------
    score
        The score analysed, a name in :data:`spimpact.scoring.SCORES`; ``label`` and
        ``higher_is_better`` are read from there.
    conf_level
        Level of the intervals in the frames below.
    counts
        People with a score at each time point: ``timepoint, n_people``.
    model
        The primary MMRM (``value ~ C(timepoint) + covariates``); its
        ``covariance_type`` is the structure that converged first.
    random_intercept
        The random-intercept model with the same fixed effects (sensitivity).
    trajectory
        Model-estimated mean at each time point (MMRM ``value ~ C(timepoint)``, so the
        means describe this scheme's clients): ``timepoint, estimate, std_error,
        conf_low, conf_high, df, n_people``.
    change
        MMRM change from baseline to each follow-up, adjusted for the covariates:
        ``timepoint, estimate, std_error, statistic, p_value, conf_low, conf_high, df,
        n_people`` (people with a score at that follow-up; t intervals on ``df``).
    random_intercept_change
        The same change from the random-intercept model (normal intervals):
        ``timepoint, estimate, std_error, statistic, p_value, conf_low, conf_high``.
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
    conf_level: float
    counts: pd.DataFrame
    model: object
    random_intercept: MixedResult
    trajectory: pd.DataFrame
    change: pd.DataFrame
    random_intercept_change: pd.DataFrame
    paired: pd.DataFrame
    categories: pd.DataFrame
    subgroups: pd.DataFrame
    subgroup_tests: pd.DataFrame
    regression_to_mean: pd.DataFrame
    individual_improvement: pd.DataFrame
    diagnostics: tuple[str, ...]

    @property
    def label(self) -> str:
        """Name of the score for people, e.g. ``"SWEMWBS (metric score)"``."""
        return SCORES[self.score].label

    @property
    def higher_is_better(self) -> bool:
        """Whether a higher score means better wellbeing."""
        return SCORES[self.score].higher_is_better

    @property
    def covariates(self) -> tuple[str, ...]:
        """The covariates the headline model adjusts for (chosen by the people it has)."""
        return tuple(c for c in COVARIATES if f"C({c})" in self.model.formula)

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        return make_tidy(
            [f"timepoint {t} - 0" for t in self.change["timepoint"]],
            self.change["estimate"],
            self.change["std_error"],
            conf_level=conf_level,
            df=self.change["df"].to_numpy(dtype=float),
        )

    def summary(self) -> str:
        """The change at each follow-up, model and paired, with the fit's diagnostics."""
        direction = "higher" if self.higher_is_better else "lower"
        lines = [
            f"Change from baseline in {self.label} ({direction} is better); MMRM with "
            f"{self.model.covariance_type} covariance, {self.conf_level:.0%} t intervals "
            f"({self.model.df_method} df)"
        ]
        paired = self.paired.set_index("timepoint")
        for row in self.change.itertuples():
            pair = paired.loc[row.timepoint]
            lines.append(
                f"  time point {row.timepoint}: {row.estimate:+.3f} ({row.conf_low:.3f} to "
                f"{row.conf_high:.3f}; df {row.df:.1f}; n = {row.n_people}); "
                f"paired {pair.mean_change:+.3f} "
                f"({pair.conf_low:.3f} to {pair.conf_high:.3f}; n = {int(pair.n_pairs)}), "
                f"detectable change {pair.detectable_change:.3f}"
            )
        lines += [f"  - {text}" for text in self.diagnostics]
        return "\n".join(lines)


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
    Headline: MMRM fitted by REML with :func:`spimpact.models.mmrm.fit_mmrm`,
    covariance structures tried in ``params.measures.change_model.covariance_order``;
    change = contrast of marginal means (emmeans convention) with a t interval on the
    Kenward-Roger (Kenward & Roger 1997, Biometrics 53:983) or Satterthwaite degrees of
    freedom. Sensitivity: random intercept per client
    (:func:`spimpact.models.mixed.fit_mixed`), normal intervals. Paired change: t
    interval with n - 1 df (:func:`spimpact.models.paired.fit_paired_change`). Minimum
    detectable change: (z_{0.975} + z_{0.80}) SD_change / sqrt(n) (paired design,
    normal approximation; :func:`spimpact.models.paired.minimum_detectable_change`).
    Regression to the mean: expected change = (1 - r)(population mean - baseline mean) with r the
    published test-retest reliability (SPEC §5.4; Barnett, van der Pols & Dobson
    2005, Int J Epidemiol 34:215). Subgroups: likelihood-ratio test of the time x
    subgroup interaction, both models fitted by ML.

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

    settings = params.measures.change_model
    covariates, note = choose_covariates(data, settings.people_per_covariate_parameter)
    diagnostics += [note] if note else []
    formula = "value ~ C(timepoint)" + "".join(f" + C({c})" for c in covariates)
    model, notes = fit_change_model(formula, data, params)
    diagnostics += [*notes, *model.diagnostics]
    n_at = counts.set_index("timepoint").n_people
    change = model.contrasts("timepoint", reference=0, conf_level=conf_level)
    change = change.rename(columns={"level": "timepoint"}).drop(columns=["term", "reference"])
    change["timepoint"] = change["timepoint"].astype(int)
    change["n_people"] = change.timepoint.map(n_at).to_numpy()

    random_intercept = fit_mixed(formula, data, group="client_id")
    diagnostics += [f"Random-intercept model: {text}" for text in random_intercept.diagnostics]
    ri_change = random_intercept.contrasts("timepoint", reference=0, conf_level=conf_level)
    ri_change = ri_change.rename(columns={"level": "timepoint"})
    ri_change = ri_change[["timepoint", *TIDY_COLUMNS[1:]]].reset_index(drop=True)

    unadjusted, _ = fit_change_model("value ~ C(timepoint)", data, params)
    trajectory = unadjusted.marginal_means("timepoint", conf_level=conf_level)
    trajectory = trajectory.rename(columns={"level": "timepoint"}).drop(columns="term")
    trajectory["timepoint"] = trajectory["timepoint"].astype(int)
    trajectory["n_people"] = trajectory.timepoint.map(n_at).to_numpy()

    paired, improvement = _paired_change(wide, followups, info.higher_is_better, conf_level)
    categories = _categories(data, score, params, followups)
    subgroups, subgroup_tests, notes = _subgroups(data, rule.min_n_summary, conf_level)
    diagnostics += notes
    rtm = _regression_to_mean(data, score, change)
    return WellbeingResult(
        score=score,
        conf_level=conf_level,
        counts=counts,
        model=model,
        random_intercept=random_intercept,
        trajectory=trajectory,
        change=change,
        random_intercept_change=ri_change,
        paired=paired,
        categories=categories,
        subgroups=subgroups,
        subgroup_tests=subgroup_tests,
        regression_to_mean=rtm,
        individual_improvement=improvement,
        diagnostics=tuple(diagnostics),
    )


def choose_covariates(data: pd.DataFrame, people_per_parameter: int):
    """Covariates (in ``COVARIATES`` order) that the people with a follow-up can support.

    A covariate with ``k`` levels costs ``k - 1`` parameters; it joins while there are
    at least ``people_per_parameter`` people with a follow-up per covariate parameter,
    so a small scheme's change is not spread across sex x age x IMD cells. Returns
    ``(covariates, note)``, the note naming any left out (``None`` if none were).
    """
    n_people = int(data.loc[data.timepoint > 0, "client_id"].nunique())
    chosen, cost, left = [], 0, []
    for column in COVARIATES:
        extra = data[column].nunique() - 1
        if extra < 1:
            continue
        if n_people >= people_per_parameter * (cost + extra):
            chosen.append(column)
            cost += extra
        else:
            left.append(column.replace("_", " "))
    note = None
    if left:
        note = (
            f"The model is not adjusted for {', '.join(left)}: with {n_people} people with a "
            f"follow-up it can afford one covariate parameter per {people_per_parameter} people."
        )
    return chosen, note


def fit_change_model(formula: str, data: pd.DataFrame, params: SchemeParams):
    """The headline MMRM of ``formula``, trying the params' covariance structures in order.

    Returns ``(result, notes)`` from
    :func:`spimpact.models.mmrm_fallback.fit_mmrm_fallback` (subject ``client_id``,
    visit ``timepoint``, REML, the params' df method and confidence level).
    """
    settings = params.measures.change_model
    try:
        return fit_mmrm_fallback(
            formula,
            data,
            subject="client_id",
            visit="timepoint",
            covariances=settings.covariance_order,
            df=settings.df,
            conf_level=params.conf_level,
        )
    except ValueError as error:
        raise InsufficientData(f"The change model could not be fitted: {error}") from None


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
    for t in followups:
        pairs = wide[[0, t]].dropna()
        change = fit_paired_change(pairs[0], pairs[t], conf_level=conf_level)
        interval = change.tidy().iloc[0]
        rows.append(
            {
                "timepoint": t,
                "n_pairs": change.n,
                "mean_change": change.estimate,
                "sd_change": change.sd,
                "std_error": change.std_error,
                "conf_low": interval.conf_low,
                "conf_high": interval.conf_high,
                "srm": change.standardised,
                "effect_size": change.estimate / baseline_sd if baseline_sd > 0 else np.nan,
                "detectable_change": float(
                    minimum_detectable_change(change.std_error, alpha=MDC_ALPHA, power=POWER)
                ),
            }
        )
        sign = 1.0 if higher_is_better else -1.0
        improvement = sign * (pairs[t] - pairs[0]).to_numpy()
        improvements.append(pd.DataFrame({"timepoint": t, "improvement": improvement}))
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
