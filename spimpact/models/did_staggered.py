"""Callaway & Sant'Anna (2021) group-time ATTs for staggered adoption, and their aggregations.

Re-exported by :mod:`spimpact.models.did`. Under unconditional parallel trends each
ATT(g, t) is a 2x2 difference in mean outcome changes between cohort ``g`` and a
comparison group; with covariates it is Sant'Anna & Zhao's doubly robust 2x2
estimator. Influence functions, aggregations and their standard errors follow
R ``did`` (``att_gt``, ``aggte``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from spimpact.models.did_fixed_effects import require_columns, require_numeric
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy

CONTROL_GROUPS = ("never_treated", "not_yet_treated")
AGGREGATIONS = ("simple", "group", "dynamic", "calendar")


def never_treated_mask(first_treated: pd.Series) -> pd.Series:
    """Never-treated units: ``first_treated`` 0, missing or infinite (R ``did`` uses 0)."""
    values = pd.to_numeric(first_treated, errors="raise").astype(float)
    return values.isna() | np.isinf(values) | (values == 0)


# eq=False: the fields hold data frames and arrays, which have no single truth value.
@dataclass(frozen=True, eq=False)
class AggregateResult(EstimatorResult):
    """An aggregation of group-time ATTs (R ``aggte``).

    ``att``/``std_error`` are the overall summary; ``effects`` holds the
    disaggregated rows (``group``, ``event_time`` or ``time`` plus ``att``,
    ``std_error``) for ``group``, ``dynamic`` and ``calendar``; empty for ``simple``.
    ``influence`` holds the n_units x len(effects) influence functions of the
    disaggregated effects (for a simultaneous band).
    """

    kind: str
    att: float
    std_error: float
    effects: pd.DataFrame
    n_units: int
    conf_level: float = 0.95
    influence: np.ndarray | None = field(default=None, repr=False)

    def simultaneous_band(
        self, *, n_draws: int = 999, seed: int | np.random.Generator | None = None
    ) -> pd.DataFrame:
        """Uniform confidence band over the disaggregated effects by multiplier bootstrap.

        Parameters
        ----------
        n_draws
            Bootstrap draws (R ``did``'s ``biters``, default 999).
        seed
            Seed or generator; the band is reproducible for a given seed.

        Returns
        -------
        pandas.DataFrame
            The effects with bootstrap ``std_error``, ``conf_low``/``conf_high`` of the
            simultaneous band and the ``critical_value`` used.

        Notes
        -----
        R ``did``'s multiplier bootstrap (Callaway & Sant'Anna 2021, section 4.1):
        Rademacher multipliers on the influence functions, standard errors from the
        bootstrap interquartile range divided by ``qnorm(.75) - qnorm(.25)``, and the
        critical value the ``conf_level`` quantile of the largest absolute
        t-statistic across effects.
        """
        if self.influence is None or self._key is None:
            raise ValueError("a simultaneous band needs the group, dynamic or calendar aggregation")
        if n_draws < 100:
            raise ValueError(f"n_draws must be at least 100, got {n_draws}")
        rng = np.random.default_rng(seed)
        n = self.influence.shape[0]
        draws = np.empty((n_draws, self.influence.shape[1]))
        chunk = max(1, 2_000_000 // n)
        for start in range(0, n_draws, chunk):
            stop = min(start + chunk, n_draws)
            multipliers = rng.choice([-1.0, 1.0], size=(stop - start, n))
            draws[start:stop] = multipliers @ self.influence / n
        quartiles = np.quantile(draws, [0.25, 0.75], axis=0)
        std_error = (quartiles[1] - quartiles[0]) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
        critical = float(np.quantile(np.max(np.abs(draws / std_error), axis=1), self.conf_level))
        out = self.effects.copy()
        out["std_error"] = std_error
        out["conf_low"] = out["att"] - critical * std_error
        out["conf_high"] = out["att"] + critical * std_error
        out["critical_value"] = critical
        return out

    @property
    def _key(self) -> str | None:
        return {"group": "group", "dynamic": "event_time", "calendar": "time"}.get(self.kind)

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom rows: ``overall`` first, then e.g. ``event_time::2`` or ``group::2006``."""
        terms = ["overall"]
        estimates = [self.att]
        ses = [self.std_error]
        if self._key is not None:
            terms += [f"{self._key}::{v}" for v in self.effects[self._key]]
            estimates += self.effects["att"].tolist()
            ses += self.effects["std_error"].tolist()
        return make_tidy(terms, estimates, ses, conf_level=conf_level)

    def summary(self) -> str:
        """Text summary of the aggregation, pointwise intervals."""
        t = self.tidy()
        return (
            f"Callaway & Sant'Anna (2021) aggregation: {self.kind}\n"
            f"Overall ATT {self.att:.6g} (SE {self.std_error:.6g}), {self.conf_level:.0%} CI "
            f"{t.conf_low.iloc[0]:.6g} to {t.conf_high.iloc[0]:.6g}; units: {self.n_units}\n"
            "Analytic influence-function standard errors; pointwise intervals.\n\n"
            + t.to_string(index=False, float_format=lambda v: f"{v:.6g}")
        )

    def plot(self, ax: plt.Axes | None = None) -> plt.Axes:
        """Disaggregated effects with pointwise confidence intervals."""
        if self._key is None:
            raise ValueError("the 'simple' aggregation has a single number; nothing to plot")
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        t = self.tidy().iloc[1:]
        x = self.effects[self._key].to_numpy()
        ax.axhline(0, color="grey", linewidth=0.8)
        colours = np.where(x < 0, "C3", "C0") if self.kind == "dynamic" else "C0"
        ax.errorbar(
            x,
            t["estimate"],
            yerr=[t["estimate"] - t["conf_low"], t["conf_high"] - t["estimate"]],
            fmt="none",
            ecolor="grey",
            capsize=3,
        )
        ax.scatter(x, t["estimate"], c=colours, zorder=3)
        ax.set_xlabel(
            {"group": "Cohort", "dynamic": "Periods since treatment"}.get(
                self.kind, "Calendar period"
            )
        )
        ax.set_ylabel(f"ATT ({self.conf_level:.0%} CI)")
        return ax


@dataclass(frozen=True, eq=False)
class StaggeredDidResult(EstimatorResult):
    """Group-time average treatment effects ATT(g, t).

    ``group_time`` has columns ``group, time, att, std_error, n_treated, n_control``
    (pre-treatment rows, ``time < group``, are placebo estimates for a pre-test).
    ``influence`` holds the n_units x n_gt influence-function matrix (rows in the
    order of ``unit_groups``), kept so that aggregations get exact standard errors.
    """

    group_time: pd.DataFrame
    control: str
    n_units: int
    unit_groups: np.ndarray = field(repr=False)
    influence: np.ndarray = field(repr=False)
    pretrend_statistic: float
    pretrend_df: int
    pretrend_p_value: float
    diagnostics: tuple[str, ...] = ()
    conf_level: float = 0.95

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom rows, one per ATT(g, t), terms ``ATT(g,t)``."""
        gt = self.group_time
        terms = [f"ATT({g},{t})" for g, t in zip(gt["group"], gt["time"], strict=True)]
        return make_tidy(terms, gt["att"], gt["std_error"], conf_level=conf_level)

    def summary(self) -> str:
        """Text summary with the pre-test of parallel trends."""
        lines = [
            "Callaway & Sant'Anna (2021) group-time ATTs, unconditional parallel trends",
            f"Comparison group: {self.control.replace('_', ' ')}; units: {self.n_units}",
            "Analytic influence-function standard errors; pointwise intervals.",
            f"Wald pre-test of parallel trends: chi2 = {self.pretrend_statistic:.4g} on "
            f"{self.pretrend_df} df, p = {self.pretrend_p_value:.4g}",
            *self.diagnostics,
            "",
            self.tidy().to_string(index=False, float_format=lambda v: f"{v:.6g}"),
        ]
        return "\n".join(lines)

    def aggregate(self, kind: str = "simple") -> AggregateResult:
        """Aggregate ATT(g, t) as R ``did::aggte(type = kind)`` with analytic SEs.

        ``simple``: cohort-size weighted average of post-treatment ATT(g, t);
        ``group``: average per cohort, then cohort-size weighted; ``dynamic``: by
        event time ``e = t - g`` (overall = mean over ``e >= 0``); ``calendar``:
        by period, overall = mean over periods. Weights are estimated, and their
        estimation enters the influence function (the ``wif`` term in R ``did``).
        """
        if kind not in AGGREGATIONS:
            raise ValueError(f"kind must be one of {AGGREGATIONS}, got {kind!r}")
        gt = self.group_time
        att = gt["att"].to_numpy()
        group = gt["group"].to_numpy()
        time = gt["time"].to_numpy()
        cohorts = np.unique(self.unit_groups[self.unit_groups > 0])
        cohort_share = np.array([np.mean(self.unit_groups == g) for g in cohorts])
        pg = cohort_share[np.searchsorted(cohorts, group)]
        n = self.n_units

        def combine(
            which: np.ndarray, weights: np.ndarray, with_wif: bool
        ) -> tuple[float, np.ndarray]:
            estimate = float(np.sum(att[which] * weights))
            inf = self.influence[:, which] @ weights
            if with_wif:
                inf = inf + _weight_influence_times(which, att[which], pg, self.unit_groups, group)
            return estimate, inf

        def se(inf: np.ndarray) -> float:
            return float(np.sqrt(np.mean(inf**2) / n))

        post = group <= time
        if kind == "simple":
            which = np.flatnonzero(post)
            estimate, inf = combine(which, pg[which] / pg[which].sum(), True)
            return AggregateResult(kind, estimate, se(inf), pd.DataFrame(), n, self.conf_level)

        rows = []
        influences = []
        if kind == "group":
            keys = cohorts
            for g in cohorts:
                which = np.flatnonzero((group == g) & post)
                estimate, inf = combine(which, pg[which] / pg[which].sum(), False)
                rows.append((g, estimate, se(inf)))
                influences.append(inf)
            effect_att = np.array([r[1] for r in rows])
            inf_matrix = np.column_stack(influences)
            overall = float(np.sum(effect_att * cohort_share) / cohort_share.sum())
            overall_inf = inf_matrix @ (
                cohort_share / cohort_share.sum()
            ) + _weight_influence_times(
                np.arange(len(cohorts)), effect_att, cohort_share, self.unit_groups, cohorts
            )
        elif kind == "dynamic":
            event = time - group
            keys = np.unique(event)
            for e in keys:
                which = np.flatnonzero(event == e)
                estimate, inf = combine(which, pg[which] / pg[which].sum(), True)
                rows.append((e, estimate, se(inf)))
                influences.append(inf)
            positive = keys >= 0
            effect_att = np.array([r[1] for r in rows])
            overall = float(np.mean(effect_att[positive]))
            overall_inf = np.column_stack(influences)[:, positive].mean(axis=1)
        else:
            periods = np.unique(time[post])
            keys = periods
            for t in periods:
                which = np.flatnonzero((time == t) & post)
                estimate, inf = combine(which, pg[which] / pg[which].sum(), True)
                rows.append((t, estimate, se(inf)))
                influences.append(inf)
            overall = float(np.mean([r[1] for r in rows]))
            overall_inf = np.column_stack(influences).mean(axis=1)
        key_name = {"group": "group", "dynamic": "event_time", "calendar": "time"}[kind]
        effects = pd.DataFrame(rows, columns=[key_name, "att", "std_error"])
        effects[key_name] = np.asarray(keys).astype(int)
        return AggregateResult(
            kind,
            overall,
            se(overall_inf),
            effects,
            n,
            self.conf_level,
            influence=np.column_stack(influences),
        )

    def plot(self, ax: plt.Axes | None = None) -> plt.Axes:
        """Event-study picture: the ``dynamic`` aggregation with pointwise intervals."""
        return self.aggregate("dynamic").plot(ax=ax)


def _weight_influence_times(
    which: np.ndarray,
    values: np.ndarray,
    pg: np.ndarray,
    unit_groups: np.ndarray,
    group: np.ndarray,
) -> np.ndarray:
    """Influence of estimating the cohort-share weights, times ``values``.

    Equals R ``did:::wif(keepers = which, ...) %*% values`` without forming the
    n x k matrix: with ``c_ik = 1{G_i = g_k} - p_k`` and ``S = sum_k p_k`` it is
    ``sum_k c_ik v_k / S - (sum_k c_ik) (sum_k p_k v_k) / S^2``.
    """
    weights = pg[which]
    total = weights.sum()
    cohorts, position = np.unique(group[which], return_inverse=True)
    value_by_cohort = np.bincount(position, weights=values, minlength=cohorts.size)
    count_by_cohort = np.bincount(position, minlength=cohorts.size).astype(float)
    index = np.searchsorted(cohorts, unit_groups)
    index = np.clip(index, 0, cohorts.size - 1)
    member = cohorts[index] == unit_groups
    value_sum = np.where(member, value_by_cohort[index], 0.0) - weights @ values
    count_sum = np.where(member, count_by_cohort[index], 0.0) - total
    return value_sum / total - count_sum * (weights @ values) / total**2


def fit_staggered_did(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    first_treated: str,
    control: str = "never_treated",
    covariates: Sequence[str] | None = None,
    anticipation: int = 0,
    conf_level: float = 0.95,
) -> StaggeredDidResult:
    """Group-time average treatment effects under staggered adoption.

    Parameters
    ----------
    data
        Long panel, one row per unit-time. Units not observed in every period are
        dropped (listed in ``diagnostics``), as R ``did`` does for panels.
    outcome, unit, time
        Column names; ``time`` holds integer periods (e.g. months since a fixed date).
    first_treated
        First treated period on the ``time`` scale; never-treated units 0, NaN or
        infinity. Units treated in or before the first period are dropped.
    control
        ``"never_treated"`` or ``"not_yet_treated"`` (never treated plus units first
        treated after both periods of the comparison).
    covariates
        Numeric columns for conditional parallel trends, taken at each comparison's
        base period. ``None`` (default) assumes unconditional parallel trends.
    anticipation
        Number of periods before ``first_treated`` in which outcomes may already move
        (R ``did``'s ``anticipation``): post-treatment ATT(g, t) then compare t with
        ``g - anticipation - 1``, pre-treatment cells stop at ``g - anticipation - 1``,
        and not-yet-treated comparisons must stay untreated until ``t + anticipation``.
        ATT(g, t) for the anticipation periods themselves are reported but enter
        neither the pre-test nor the aggregates of post-treatment effects.
    conf_level
        Confidence level for intervals.

    Returns
    -------
    StaggeredDidResult
        ``.group_time`` and ``.aggregate(kind)`` for ``simple``, ``group``,
        ``dynamic`` and ``calendar``.

    Notes
    -----
    Callaway & Sant'Anna (2021), J Econometrics 225(2):200-230, with R ``did``'s
    conventions: "varying" base period (pre-treatment ATT(g, t) compare t with
    t - 1; post-treatment ones compare t with g - 1 - anticipation), analytic
    standard errors ``sqrt(mean(psi^2) / n)`` from the influence functions,
    clustered at the unit level. Without covariates the outcome-regression, IPW
    and doubly robust estimators coincide and each ATT(g, t) is a difference of
    mean changes. With covariates each ATT(g, t) is the doubly robust estimator of
    Sant'Anna & Zhao (2020), J Econometrics 219(1):101-122 (R ``DRDID::drdid_panel``,
    R ``did``'s default ``est_method = "dr"``): a logit propensity score and a
    linear outcome regression of the change on the comparison units, with their
    estimation effects in the influence function and comparison units with
    propensity >= 0.995 trimmed. Uniform bands over event times, cohorts or periods
    come from the seeded multiplier bootstrap in
    :meth:`AggregateResult.simultaneous_band`.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(300), 6), "t": np.tile(np.arange(1, 7), 300)})
    >>> d["g"] = np.select([d.id < 100, d.id < 200], [3, 5], 0)
    >>> d["y"] = d.t * 0.2 + np.where((d.g > 0) & (d.t >= d.g), 1.0, 0.0) + rng.normal(0, .1, 1800)
    >>> res = fit_staggered_did(d, outcome="y", unit="id", time="t", first_treated="g")
    >>> round(res.aggregate("simple").att, 1)
    1.0
    """
    if control not in CONTROL_GROUPS:
        raise ValueError(f"control must be one of {CONTROL_GROUPS}, got {control!r}")
    if int(anticipation) != anticipation or anticipation < 0:
        raise ValueError(f"anticipation must be a whole number of periods >= 0, got {anticipation}")
    covariates = list(covariates or [])
    require_columns(
        data, [outcome, unit, time, first_treated, *covariates], role="fit_staggered_did"
    )
    require_numeric(data, [time, first_treated], role="fit_staggered_did")
    for name in covariates:
        if not pd.api.types.is_numeric_dtype(data[name]):
            raise ValueError(f"covariate {name!r} must be numeric (code categories as 0/1 columns)")
    frame = data[[unit, time, outcome, first_treated, *covariates]].copy()
    if frame[[unit, time, outcome]].isna().any().any():
        bad = frame[[unit, time, outcome]].isna().any()
        raise ValueError(f"missing values in column(s) {list(bad[bad].index)}")
    if frame.duplicated([unit, time]).any():
        raise ValueError(f"more than one row per ({unit!r}, {time!r}); expected a panel")
    never = never_treated_mask(frame[first_treated])
    frame["_g"] = np.where(never, 0.0, frame[first_treated].astype(float))
    if (frame.groupby(unit)["_g"].nunique() > 1).any():
        raise ValueError(f"column {first_treated!r} must be constant within each unit")
    diagnostics = []
    wide = frame.pivot(index=unit, columns=time, values=outcome)
    complete = wide.notna().all(axis=1)
    if not complete.all():
        diagnostics.append(
            f"{int((~complete).sum())} unit(s) not observed in every period were dropped "
            "(balanced panel required)."
        )
        wide = wide.loc[complete]
    periods = np.asarray(wide.columns, dtype=float)
    unit_groups = frame.groupby(unit)["_g"].first().loc[wide.index].to_numpy()
    always = (unit_groups > 0) & (unit_groups <= periods[0])
    if always.any():
        diagnostics.append(
            f"{int(always.sum())} unit(s) treated in or before the first period were dropped."
        )
        wide = wide.loc[~always]
        unit_groups = unit_groups[~always]
    # per-period design matrices [1, covariates] aligned with the rows of ``wide``
    designs = None
    if covariates:
        by_period = [
            frame.pivot(index=unit, columns=time, values=c).loc[wide.index] for c in covariates
        ]
        if any(p.isna().to_numpy().any() for p in by_period):
            raise ValueError(f"missing values in covariate column(s) {covariates}")
        designs = [
            np.column_stack(
                [np.ones(len(wide))] + [p.iloc[:, k].to_numpy(float) for p in by_period]
            )
            for k in range(wide.shape[1])
        ]
    y = wide.to_numpy(float)
    n = y.shape[0]
    cohorts = np.unique(unit_groups[unit_groups > 0])
    if cohorts.size == 0:
        raise ValueError(f"no unit is treated after the first period in column {first_treated!r}")
    if control == "never_treated" and not (unit_groups == 0).any():
        raise ValueError(
            "control='never_treated' needs never-treated units (first_treated 0/NaN/inf); "
            "use control='not_yet_treated'"
        )
    rows = []
    influence = []
    for g in cohorts:
        before = np.flatnonzero(periods < g - anticipation)
        if before.size == 0:
            diagnostics.append(f"cohort {g:g} skipped: no period before its anticipation window.")
            continue
        g_base = before[-1]
        for ti in range(1, len(periods)):
            t = periods[ti]
            base = g_base if t >= g - anticipation else ti - 1
            is_treated = unit_groups == g
            if control == "never_treated":
                is_control = unit_groups == 0
            else:
                latest = max(t, periods[base]) + anticipation
                is_control = (unit_groups == 0) | ((unit_groups > latest) & (unit_groups != g))
            n_treated, n_control = int(is_treated.sum()), int(is_control.sum())
            if n_control == 0:
                diagnostics.append(f"ATT({g:g},{t:g}) skipped: no comparison units.")
                continue
            change = y[:, ti] - y[:, base]
            psi = np.zeros(n)
            if designs is None:
                mean_treated = change[is_treated].mean()
                mean_control = change[is_control].mean()
                att = mean_treated - mean_control
                psi[is_treated] = n / n_treated * (change[is_treated] - mean_treated)
                psi[is_control] = -n / n_control * (change[is_control] - mean_control)
            else:
                in_cell = is_treated | is_control
                att, cell_psi, note = _doubly_robust_panel(
                    change[in_cell], is_treated[in_cell], designs[base][in_cell]
                )
                if note:
                    diagnostics.append(f"ATT({g:g},{t:g}): {note}")
                psi[in_cell] = n / in_cell.sum() * cell_psi
            rows.append((g, t, att, np.sqrt(np.mean(psi**2) / n), n_treated, n_control))
            influence.append(psi)
    group_time = pd.DataFrame(
        rows, columns=["group", "time", "att", "std_error", "n_treated", "n_control"]
    )
    group_time[["group", "time"]] = group_time[["group", "time"]].astype(int)
    influence_matrix = np.column_stack(influence)
    statistic, df, p_value = _pretest(group_time, influence_matrix, n, anticipation)
    return StaggeredDidResult(
        group_time=group_time,
        control=control,
        n_units=n,
        unit_groups=unit_groups,
        influence=influence_matrix,
        pretrend_statistic=statistic,
        pretrend_df=df,
        pretrend_p_value=p_value,
        diagnostics=tuple(diagnostics),
        conf_level=conf_level,
    )


def _doubly_robust_panel(
    change: np.ndarray, treated: np.ndarray, x: np.ndarray
) -> tuple[float, np.ndarray, str]:
    """Sant'Anna & Zhao (2020) doubly robust DiD for panel data, as R ``DRDID::drdid_panel``.

    Returns the ATT, its influence function (one value per unit of the cell) and a
    diagnostic sentence ("" when the propensity-score fit was unremarkable).
    """
    n = change.size
    d = treated.astype(float)
    if np.linalg.matrix_rank(x[~treated]) < x.shape[1]:
        raise ValueError(
            "the covariates are collinear (or constant) among the comparison units of a "
            "group-time cell; remove or recode them"
        )
    gamma, converged = _logit(x, d)
    note = "" if converged else "propensity-score logit did not converge; estimate unreliable."
    ps = np.minimum(1 / (1 + np.exp(-(x @ gamma))), 1 - 1e-6)
    keep = np.where(treated, True, ps < 0.995)  # DRDID trims comparison units at ps >= .995
    control_x = x[~treated]
    beta = np.linalg.lstsq(control_x, change[~treated], rcond=None)[0]
    fitted_change = x @ beta
    w_treat = keep * d
    w_cont = keep * ps * (1 - d) / (1 - ps)
    residual = change - fitted_change
    eta_treat = np.mean(w_treat * residual) / np.mean(w_treat)
    eta_cont = np.mean(w_cont * residual) / np.mean(w_cont)
    # estimation effect of the outcome regression and of the propensity score
    ols_weights = 1 - d
    xpx_inverse = np.linalg.inv((ols_weights[:, None] * x).T @ x / n)
    ols_linear = (ols_weights * residual)[:, None] * x @ xpx_inverse
    information = (ps * (1 - ps))[:, None] * x
    ps_linear = (d - ps)[:, None] * x @ (np.linalg.inv(x.T @ information) * n)
    inf_treat = (
        w_treat * residual
        - w_treat * eta_treat
        - ols_linear @ np.mean(w_treat[:, None] * x, axis=0)
    ) / np.mean(w_treat)
    m2 = np.mean((w_cont * (residual - eta_cont))[:, None] * x, axis=0)
    m3 = np.mean(w_cont[:, None] * x, axis=0)
    inf_control = (
        w_cont * residual - w_cont * eta_cont + ps_linear @ m2 - ols_linear @ m3
    ) / np.mean(w_cont)
    return float(eta_treat - eta_cont), inf_treat - inf_control, note


def _logit(x: np.ndarray, d: np.ndarray, max_iterations: int = 100) -> tuple[np.ndarray, bool]:
    """Logistic regression by Newton-Raphson; returns coefficients and convergence."""
    gamma = np.zeros(x.shape[1])
    for _ in range(max_iterations):
        p = 1 / (1 + np.exp(-(x @ gamma)))
        step = np.linalg.solve(x.T @ ((p * (1 - p))[:, None] * x), x.T @ (d - p))
        gamma = gamma + step
        if np.max(np.abs(step)) < 1e-10:
            return gamma, True
    return gamma, False


def _pretest(
    group_time: pd.DataFrame, influence: np.ndarray, n: int, anticipation: int = 0
) -> tuple[float, int, float]:
    """Wald test that all pre-treatment ATT(g, t) are zero (R ``did``'s pre-test).

    Periods inside the anticipation window are not pre-treatment periods.
    """
    pre = np.flatnonzero((group_time["group"] - anticipation > group_time["time"]).to_numpy())
    if pre.size == 0:
        return float("nan"), 0, float("nan")
    v = influence[:, pre].T @ influence[:, pre] / n / n
    b = group_time["att"].to_numpy()[pre]
    statistic = float(b @ np.linalg.solve(v, b))
    return statistic, int(pre.size), float(stats.chi2.sf(statistic, pre.size))
