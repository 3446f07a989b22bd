"""Thin wrappers around lifelines: Kaplan-Meier, log-rank and Cox, as frozen results.

Kaplan-Meier intervals are lifelines' "exponential Greenwood" intervals: Greenwood's
variance on the log(-log S) scale, back-transformed (Kalbfleisch & Prentice 2002,
§1.3), i.e. R's ``survfit(..., conf.type = "log-log")``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from scipy import stats

from spimpact.models.result import EstimatorResult, ExponentiableResult
from spimpact.models.tidy import make_tidy

KM_COLUMNS = (
    "strata",
    "time",
    "n_risk",
    "n_event",
    "n_censor",
    "estimate",
    "conf_low",
    "conf_high",
)
OVERALL = "all"


def _check_survival_columns(data, duration, event, group=None):
    for column in (duration, event) + ((group,) if group else ()):
        if column not in data.columns:
            raise ValueError(f"column {column!r} is not in the data")
    if data[duration].isna().any() or (data[duration] < 0).any():
        raise ValueError(
            f"column {duration!r} must be non-negative durations with no missing values"
        )
    if not set(pd.unique(data[event].dropna())) <= {0, 1} or data[event].isna().any():
        raise ValueError(f"column {event!r} must be 0/1 (1 = the event happened)")
    if group and data[group].isna().any():
        raise ValueError(f"column {group!r} has missing values; give them an explicit category")


# eq=False: the fields hold data frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class KaplanMeierResult(EstimatorResult):
    """Kaplan-Meier survival curves, overall or by group.

    ``table`` has ``strata, time, n_risk, n_event, n_censor, estimate, conf_low,
    conf_high`` (broom's ``tidy.survfit`` layout) at every distinct time, and is row-level
    detail: publish only through ``plot`` or after disclosure control. lifelines
    computes the intervals at fit time, so ``tidy`` gives them only at ``conf_level``.
    """

    intervals_fixed_at_fit = True

    table: pd.DataFrame
    group: str | None
    conf_level: float

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """The survival table (one row per stratum and distinct time)."""
        return self.table.copy()

    def summary(self) -> str:
        """Text summary for people: events, people and median time per stratum."""
        lines = [
            f"Kaplan-Meier estimate, {self.conf_level:.0%} log(-log) (exponential Greenwood) "
            "intervals"
        ]
        for stratum, rows in self.table.groupby("strata", sort=True):
            below = rows.loc[rows["estimate"] <= 0.5, "time"]
            median = f"{below.iloc[0]:g}" if len(below) else "not reached"
            lines.append(
                f"{stratum}: {int(rows['n_risk'].iloc[0])} people, "
                f"{int(rows['n_event'].sum())} events, median time {median}"
            )
        return "\n".join(lines)

    def plot_points(self, *, min_at_risk: int = 8, min_events_per_step: int = 8) -> pd.DataFrame:
        """Return the disclosure-safe step points that ``plot`` draws.

        Each stratum's curve stops at the last time with at least ``min_at_risk`` people
        at risk, and drops only where at least ``min_events_per_step`` events have
        accumulated since the previous drawn drop, so no drawn step shows fewer than that
        many people's events. Strata with fewer than ``min_events_per_step`` events in
        all are left out.
        """
        points = []
        for stratum, rows in self.table.groupby("strata", sort=True):
            if rows["n_event"].sum() < min_events_per_step:
                continue
            rows = rows[rows["n_risk"] >= min_at_risk]
            kept = [
                {"strata": stratum, "time": 0.0, "estimate": 1.0, "conf_low": 1.0, "conf_high": 1.0}
            ]
            pending = 0
            for row in rows.itertuples(index=False):
                pending += row.n_event
                if pending >= min_events_per_step:
                    kept.append(
                        {
                            "strata": stratum,
                            "time": float(row.time),
                            "estimate": row.estimate,
                            "conf_low": row.conf_low,
                            "conf_high": row.conf_high,
                        }
                    )
                    pending = 0
            if len(rows):
                last = kept[-1]
                # the curve runs flat to the last time still shown
                kept.append({**last, "time": float(rows["time"].iloc[-1])})
            points.extend(kept)
        return pd.DataFrame(points, columns=["strata", "time", "estimate", "conf_low", "conf_high"])

    def plot(
        self,
        ax=None,
        *,
        min_at_risk: int = 8,
        min_events_per_step: int = 8,
        time_label: str = "time",
    ):
        """Draw the disclosure-safe curves with confidence bands (see ``plot_points``)."""
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        points = self.plot_points(min_at_risk=min_at_risk, min_events_per_step=min_events_per_step)
        for stratum, rows in points.groupby("strata", sort=True):
            line = ax.step(rows["time"], rows["estimate"], where="post", label=str(stratum))[0]
            ax.fill_between(
                rows["time"],
                rows["conf_low"],
                rows["conf_high"],
                step="post",
                alpha=0.2,
                color=line.get_color(),
            )
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(time_label)
        ax.set_ylabel("proportion still engaged")
        if points["strata"].nunique() > 1:
            ax.legend(frameon=False)
        return ax


def fit_kaplan_meier(
    data: pd.DataFrame,
    *,
    duration: str,
    event: str,
    group: str | None = None,
    conf_level: float = 0.95,
) -> KaplanMeierResult:
    """Kaplan-Meier estimate of survival (e.g. staying engaged), overall or by group.

    Parameters
    ----------
    data
        One row per person.
    duration
        Column of follow-up times (non-negative).
    event
        Column coded 1 if the event (e.g. disengagement) happened, 0 if censored.
    group
        Optional grouping column; one curve per value.
    conf_level
        Confidence level of the pointwise intervals.

    Notes
    -----
    Kaplan EL, Meier P (1958), JASA 53:457-481; lifelines ``KaplanMeierFitter``
    (Davidson-Pilon 2019, JOSS 4:1317) with its exponential Greenwood (log(-log))
    intervals, as R ``survival::survfit(conf.type = "log-log")``.

    Examples
    --------
    >>> df = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})
    >>> fit_kaplan_meier(df, duration="t", event="e").tidy()["estimate"].round(3).tolist()
    [0.8, 0.6, 0.3, 0.3]
    """
    _check_survival_columns(data, duration, event, group)
    groups = (
        [(OVERALL, data)] if group is None else sorted(data.groupby(group), key=lambda g: str(g[0]))
    )
    tables = []
    for label, frame in groups:
        fitter = KaplanMeierFitter(alpha=1 - conf_level)
        fitter.fit(frame[duration], frame[event].astype(int))
        events = fitter.event_table
        events = (
            events[events.index > 0]
            if (events.loc[events.index == 0, "observed"] == 0).all()
            else events
        )
        ci = fitter.confidence_interval_survival_function_
        table = pd.DataFrame(
            {
                "strata": str(label),
                "time": events.index.to_numpy(dtype=float),
                "n_risk": events["at_risk"].to_numpy(),
                "n_event": events["observed"].to_numpy(),
                "n_censor": events["censored"].to_numpy(),
                "estimate": fitter.survival_function_.loc[events.index].iloc[:, 0].to_numpy(),
                "conf_low": ci.loc[events.index].iloc[:, 0].to_numpy(),
                "conf_high": ci.loc[events.index].iloc[:, 1].to_numpy(),
            }
        )
        tables.append(table)
    return KaplanMeierResult(
        table=pd.concat(tables, ignore_index=True)[list(KM_COLUMNS)],
        group=group,
        conf_level=conf_level,
    )


@dataclass(frozen=True)
class LogRankResult(EstimatorResult):
    """Log-rank test of equal survival across groups.

    A test has no interval: ``tidy`` gives the same row (broom's ``glance.survdiff``
    layout) whatever ``conf_level`` is asked for.
    """

    statistic: float
    df: int
    p_value: float
    n_groups: int
    conf_level: float = 0.95

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """One-row table: ``statistic, df, p_value, method``."""
        return pd.DataFrame(
            {
                "statistic": [self.statistic],
                "df": [self.df],
                "p_value": [self.p_value],
                "method": ["log-rank"],
            }
        )

    def summary(self) -> str:
        """Text summary for people."""
        return (
            f"Log-rank test across {self.n_groups} groups: chi-square {self.statistic:.2f} "
            f"on {self.df} df, p = {self.p_value:.3g}"
        )


def fit_logrank(data: pd.DataFrame, *, duration: str, event: str, group: str) -> LogRankResult:
    """Log-rank (Mantel-Haenszel) test that survival is the same in every group.

    Notes
    -----
    Mantel N (1966), Cancer Chemother Rep 50:163-170; lifelines
    ``multivariate_logrank_test``, as R ``survival::survdiff(Surv(time, status) ~ group)``.
    """
    _check_survival_columns(data, duration, event, group)
    n_groups = data[group].nunique()
    if n_groups < 2:
        raise ValueError(f"column {group!r} needs at least two groups for a log-rank test")
    test = multivariate_logrank_test(data[duration], data[group], data[event].astype(int))
    return LogRankResult(
        statistic=float(test.test_statistic),
        df=int(n_groups - 1),
        p_value=float(test.p_value),
        n_groups=int(n_groups),
    )


@dataclass(frozen=True, eq=False)
class CoxResult(ExponentiableResult):
    """Cox proportional-hazards model (Efron ties), coefficients on the log-hazard scale.

    ``tidy(exponentiate=True)`` gives hazard ratios; intervals are Wald (normal) intervals
    from lifelines' coefficients and standard errors, so any level can be asked for.
    """

    coefficients: pd.DataFrame
    n: int
    n_events: int
    conf_level: float
    proportional_hazards: pd.DataFrame | None
    diagnostics: tuple[str, ...] = ()

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom table on the log-hazard scale."""
        table = self.coefficients
        return make_tidy(
            table["term"], table["estimate"], table["std_error"], conf_level=conf_level
        )

    def summary(self) -> str:
        """Text summary for people (hazard ratios)."""
        table = self.tidy(exponentiate=True)
        return "\n".join(
            [
                f"Cox proportional-hazards model: {self.n} people, {self.n_events} events "
                "(hazard ratios, Efron ties)",
                table.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
                *self.diagnostics,
            ]
        )

    def plot(self, ax=None):
        """Forest plot of hazard ratios with confidence intervals (log axis)."""
        table = self.tidy(exponentiate=True)
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 0.8 + 0.4 * len(table)))
        y = np.arange(len(table))[::-1]
        ax.errorbar(
            table["estimate"],
            y,
            xerr=[table["estimate"] - table["conf_low"], table["conf_high"] - table["estimate"]],
            fmt="o",
            color="black",
        )
        ax.axvline(1, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yticks(y, table["term"])
        ax.set_xlabel("hazard ratio")
        return ax


def fit_cox(
    data: pd.DataFrame,
    *,
    duration: str,
    event: str,
    formula: str,
    conf_level: float = 0.95,
    check_proportional_hazards: bool = True,
) -> CoxResult:
    """Fit a Cox proportional-hazards model with lifelines (Efron's method for ties).

    Parameters
    ----------
    data
        One row per person.
    duration, event
        Follow-up time and event indicator (1 = event).
    formula
        Right-hand side, e.g. ``"age + C(sex) + baseline_score"``.
    conf_level
        Confidence level of the Wald intervals.
    check_proportional_hazards
        Add Schoenfeld-residual tests of proportional hazards (``rank`` transform, as
        R's ``cox.zph(transform = "rank")``) and a diagnostic sentence per violation.

    Notes
    -----
    Cox DR (1972), JRSS B 34:187-220; Efron B (1977), JASA 72:557-565; lifelines
    ``CoxPHFitter``, as R ``survival::coxph(..., ties = "efron")``.
    """
    _check_survival_columns(data, duration, event)
    frame = data.copy()
    frame[event] = frame[event].astype(int)
    diagnostics = []
    fitter = CoxPHFitter(alpha=1 - conf_level)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitter.fit(frame, duration_col=duration, event_col=event, formula=formula)
    for item in caught:
        text = str(item.message).strip().split("\n")[0]
        diagnostics.append(f"The Cox model reported: {text}")
    summary = fitter.summary
    coefficients = make_tidy(
        summary.index.astype(str), summary["coef"], summary["se(coef)"], conf_level=conf_level
    )
    ph = None
    if check_proportional_hazards:
        ph = proportional_hazards_test(fitter, frame)
        for row in ph.itertuples(index=False):
            if row.p_value < 0.05:
                diagnostics.append(
                    f"The effect of {row.term} on the hazard changes over time (Schoenfeld test "
                    f"p = {row.p_value:.3f}); its hazard ratio is an average over follow-up."
                )
    return CoxResult(
        coefficients=coefficients,
        n=int(len(frame)),
        n_events=int(frame[event].sum()),
        conf_level=conf_level,
        proportional_hazards=ph,
        diagnostics=tuple(diagnostics),
    )


def proportional_hazards_test(fitter: CoxPHFitter, frame: pd.DataFrame) -> pd.DataFrame:
    """Schoenfeld-residual tests of proportional hazards of a fitted lifelines Cox model.

    The numbers of lifelines' ``proportional_hazard_test(fitter, frame,
    time_transform="rank")`` (one chi-squared test on 1 df per term), in O(n log n):
    lifelines builds the Schoenfeld residuals one row at a time with ``np.append``,
    which is quadratic (35 s for 100,000 people). Here the Efron-weighted covariate means
    of each distinct event time come from cumulative sums over the risk sets. No strata,
    as :func:`fit_cox` fits. Returns ``term, statistic, p_value``, sorted by term.
    """
    x, durations, events, weights, *_ = fitter._preprocess_dataframe(frame)
    x = x.to_numpy(dtype=float)
    time = durations.to_numpy(dtype=float)
    event = events.to_numpy(dtype=bool)
    phi = weights.to_numpy(dtype=float) * np.exp(x @ fitter.params_.to_numpy())
    phi_x = phi[:, None] * x
    first = np.r_[True, time[1:] != time[:-1]]  # rows are sorted by time
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    # risk set of a time: every row at or after its first row (lifelines' backward sums)
    risk_phi = np.cumsum(phi[::-1])[::-1][starts]
    risk_phi_x = np.cumsum(phi_x[::-1], axis=0)[::-1][starts]
    n_times = len(starts)
    n_ties = np.bincount(group, weights=event, minlength=n_times)
    tie_phi = np.bincount(group, weights=phi * event, minlength=n_times)
    tie_phi_x = np.column_stack(
        [
            np.bincount(group, weights=phi_x[:, k] * event, minlength=n_times)
            for k in range(x.shape[1])
        ]
    )
    mean = np.zeros_like(risk_phi_x)
    for tie in range(int(n_ties.max())):  # Efron: the l-th of m tied events
        at = n_ties > tie
        share = tie / n_ties[at]
        numerator = risk_phi_x[at] - share[:, None] * tie_phi_x[at]
        denominator = (risk_phi[at] - share * tie_phi[at]) * n_ties[at]
        mean[at] += numerator / denominator[:, None]
    n_deaths = int(event.sum())
    residuals = x[event] - mean[group[event]]
    scaled = n_deaths * residuals @ fitter.variance_matrix_.to_numpy()
    rank = np.cumsum(event)[event].astype(float)  # lifelines' "rank" transform
    centred = rank - rank.mean()
    statistic = (centred @ scaled) ** 2 / (
        n_deaths * fitter.standard_errors_.to_numpy() ** 2 * (centred**2).sum()
    )
    table = pd.DataFrame(
        {
            "term": fitter.params_.index.astype(str),
            "statistic": statistic,
            "p_value": stats.chi2.sf(statistic, 1),
        }
    )
    return table.sort_values("term", kind="stable").reset_index(drop=True)  # as lifelines
