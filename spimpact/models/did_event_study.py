"""Dynamic (event-study) two-way fixed effects regression and its pre-trend test.

Re-exported by :mod:`spimpact.models.did`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from spimpact.models.did_fixed_effects import encode_groups, require_columns, require_numeric
from spimpact.models.did_honest import (
    event_study_inputs,
    honest_did_relative_magnitude,
    honest_did_smoothness,
)
from spimpact.models.did_staggered import never_treated_mask
from spimpact.models.did_tables import (
    bootstrap_level,
    format_table,
    tidy_at,
    tidy_from_fit,
    weights_of,
    wild_options,
)
from spimpact.models.linear_fit import LinearFit, fit_linear
from spimpact.models.result import EstimatorResult


@dataclass(frozen=True)
class PretrendTest:
    """Joint Wald test that all pre-treatment event-time coefficients are zero."""

    statistic: float
    df: int
    p_value: float
    distribution: str = "chi-squared"


@dataclass(frozen=True, eq=False)
class EventStudyResult(EstimatorResult):
    """Relative-time (event-study) coefficients from a two-way fixed effects regression.

    ``coefficients`` has one row per event time (reference excluded) with column
    ``event_time``; ``covariance`` is their covariance matrix, ordered as the rows.
    """

    coefficients: pd.DataFrame
    covariance: pd.DataFrame
    pretrend_test: PretrendTest
    reference: int
    window: tuple[int, int]
    se_type: str
    n_obs: int
    n_units: int
    n_treated_units: int
    n_clusters: int | None
    df: float | None
    other_terms: pd.DataFrame
    conf_level: float = 0.95

    def _level(self, conf_level: float | None) -> float:
        return bootstrap_level(self, super()._level(conf_level))

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom table of event-time coefficients, terms named ``event_time::<e>``."""
        return tidy_at(self.coefficients, conf_level, self.df)

    @property
    def event_times(self) -> np.ndarray:
        """Event times of the coefficients (reference excluded), in order."""
        return self.coefficients["event_time"].to_numpy()

    def summary(self) -> str:
        """Text summary with the pre-trend test and the SE type."""
        test = self.pretrend_test
        return (
            f"Event study (two-way fixed effects), window {self.window}, "
            f"reference event time {self.reference}\n"
            f"Observations: {self.n_obs}; units: {self.n_units} "
            f"({self.n_treated_units} ever treated)\n"
            f"Standard errors: {self.se_type}\n"
            f"Joint pre-trend Wald test: statistic {test.statistic:.4g} on {test.df} df "
            f"({test.distribution}), p = {test.p_value:.4g}\n\n" + format_table(self.tidy())
        )

    def plot(self, ax: plt.Axes | None = None) -> plt.Axes:
        """Coefficients with confidence intervals against event time; reference at 0."""
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        tidy = self.tidy()
        e = self.event_times
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.axvline(self.reference + 0.5, color="grey", linestyle=":", linewidth=0.8)
        ax.errorbar(
            e,
            tidy["estimate"],
            yerr=[tidy["estimate"] - tidy["conf_low"], tidy["conf_high"] - tidy["estimate"]],
            fmt="o",
            capsize=3,
        )
        ax.plot([self.reference], [0.0], "o", mfc="white", color="C0")
        ax.set_xlabel("Periods relative to treatment")
        ax.set_ylabel(f"Estimate ({self.conf_level:.0%} CI)")
        return ax

    def honest_did(self, mbar: Sequence[float], **kwargs) -> pd.DataFrame:
        """Rambachan & Roth relative-magnitude bounds; see :func:`honest_did_relative_magnitude`."""
        return honest_did_relative_magnitude(self, mbar=mbar, **kwargs)

    def honest_did_smoothness(self, m_values: Sequence[float], **kwargs) -> pd.DataFrame:
        """Rambachan & Roth smoothness (Delta^SD) FLCIs; see :func:`honest_did_smoothness`."""
        if self.reference != -1:
            raise ValueError("honest DiD bounds need the event study's reference period to be -1")
        beta, sigma, n_pre, n_post = event_study_inputs(
            self.event_times, self.coefficients["estimate"], self.covariance.to_numpy()
        )
        return honest_did_smoothness(
            beta, sigma, num_pre_periods=n_pre, num_post_periods=n_post, m_values=m_values, **kwargs
        )


def fit_event_study(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    first_treated: str,
    window: tuple[int, int],
    reference: int = -1,
    cluster: str | None = None,
    covariates: Sequence[str] | None = None,
    conf_level: float = 0.95,
    weights: str | None = None,
    se: str | None = None,
    bootstrap_draws: int = 9999,
    bootstrap_weights: str = "rademacher",
    seed: int | None = 0,
) -> EventStudyResult:
    """Dynamic (event-study) two-way fixed effects regression.

    Regresses ``outcome`` on indicators of event time ``e = time - first_treated``
    for ever-treated units, each event time in ``window`` except ``reference``,
    plus ``covariates``, with unit and time fixed effects absorbed. Event times
    outside the window are binned into the end points (Schmidheiny & Siegloch
    2023), so the end-point coefficients are averages over the binned periods.

    Parameters
    ----------
    data
        Long panel, one row per unit-time; ``time`` and ``first_treated`` on the
        same integer scale (e.g. months).
    outcome, unit, time, first_treated
        Column names. Never-treated units have ``first_treated`` equal to 0, NaN or
        infinity (as in R ``did``).
    window
        ``(lowest, highest)`` event time estimated, e.g. ``(-6, 6)``.
    reference
        Omitted event time (default -1, the period before treatment).
    cluster
        Column to cluster on (usually ``unit``); ``None`` gives classical SEs.
    covariates
        Time-varying numeric columns added linearly.
    conf_level
        Confidence level for intervals.
    weights
        Column of non-negative regression weights (matching or stack weights); the
        fit is weighted least squares, rows with weight 0 are dropped. ``None``: OLS.
    se
        ``None`` (classical without ``cluster``, CR1 with it), ``"CR1"``, ``"CR2"``
        (Bell-McCaffrey / Pustejovsky-Tipton with Satterthwaite degrees of freedom per
        coefficient, as R ``clubSandwich``) or ``"wild"`` (restricted wild cluster
        bootstrap p-values and intervals, as Stata ``boottest``; for few clusters).
        ``"CR1"``, ``"CR2"`` and ``"wild"`` need ``cluster``.
    bootstrap_draws, bootstrap_weights, seed
        ``se="wild"`` only: number of draws (all 2^G sign patterns are used instead
        when there are fewer), ``"rademacher"`` or ``"webb"``, and the seed.

    Returns
    -------
    EventStudyResult
        With ``pretrend_test``: a Wald chi-squared test that all pre-treatment
        coefficients (event times < 0 other than the reference) are zero.

    Notes
    -----
    The same specification as R ``fixest::feols(y ~ x + i(rel_time, ref = -1) |
    unit + time)``. With staggered adoption and heterogeneous effects these
    coefficients mix cohorts (Sun & Abraham 2021); prefer
    :func:`fit_staggered_did` then. The pre-trend test has low power (Roth 2022):
    pair it with :meth:`EventStudyResult.honest_did`.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(100), 8), "t": np.tile(np.arange(8), 100)})
    >>> d["g"] = np.where(d.id < 50, 4, 0)
    >>> d["y"] = np.where((d.g > 0) & (d.t >= d.g), 1.0, 0.0) + rng.normal(0, 0.1, 800)
    >>> es = fit_event_study(d, outcome="y", unit="id", time="t", first_treated="g",
    ...                      window=(-4, 3))
    >>> round(float(es.tidy().estimate.iloc[-1]), 1)
    1.0
    """
    covariates = list(covariates or [])
    require_columns(
        data,
        [outcome, unit, time, first_treated, cluster, weights, *covariates],
        role="fit_event_study",
    )
    require_numeric(data, [time, first_treated], role="fit_event_study")
    low, high = (int(window[0]), int(window[1]))
    if not low <= reference <= high or low >= high:
        raise ValueError(
            f"window must be (lowest, highest) with lowest < highest and contain the "
            f"reference {reference}; got {window}"
        )
    columns = [outcome, unit, time, first_treated, *covariates]
    if cluster is not None and cluster not in columns:
        columns.append(cluster)
    if weights is not None and weights not in columns:
        columns.append(weights)
    complete = np.ones(len(data), dtype=bool)
    for name in columns:
        if name != first_treated:
            complete &= data[name].notna().to_numpy()
    # no copy of the panel when no row has a missing value
    frame = data if complete.all() else data.loc[complete, columns]
    never = never_treated_mask(frame[first_treated])
    if never.all():
        raise ValueError(f"no unit is ever treated: column {first_treated!r} is all 0/NaN/inf")
    event_time = (frame[time] - frame[first_treated].where(~never)).clip(low, high)
    event_times = [e for e in range(low, high + 1) if e != reference]
    x = event_time_design(event_time.to_numpy(float), (low, high), reference, len(covariates))
    if covariates:
        x[:, : len(covariates)] = frame[covariates].to_numpy(float)
    terms = [*covariates, *(f"event_time::{e}" for e in event_times)]
    unit_codes, n_units = encode_groups(frame[unit])
    time_codes, _ = encode_groups(frame[time])
    cluster_codes = None if cluster is None else encode_groups(frame[cluster])[0]
    fit = fit_linear(
        frame[outcome].to_numpy(float),
        x,
        terms,
        absorb=(unit_codes, time_codes),
        cluster=cluster_codes,
        cluster_name=cluster,
        weights=weights_of(frame, weights, role="fit_event_study"),
        se=se,
        conf_level=conf_level,
        wild=wild_options(bootstrap_draws, bootstrap_weights, seed),
    )
    return event_study_result(
        fit,
        event_times,
        n_covariates=len(covariates),
        reference=reference,
        window=(low, high),
        n_units=n_units,
        n_treated_units=int(np.unique(unit_codes[~never.to_numpy()]).size),
    )


def event_study_result(
    fit: LinearFit,
    event_times: Sequence[int],
    *,
    n_covariates: int,
    reference: int,
    window: tuple[int, int],
    n_units: int,
    n_treated_units: int,
) -> EventStudyResult:
    """Event-study result and pre-trend test of a fit on covariates, then indicators."""
    conf_level = fit.conf_level
    table = tidy_from_fit(fit, conf_level)
    coefficients = table.iloc[n_covariates:].reset_index(drop=True)
    coefficients.insert(1, "event_time", list(event_times))
    covariance = fit.covariance[n_covariates:, n_covariates:]
    pre = [i for i, e in enumerate(event_times) if e < 0]
    if pre:
        b = coefficients["estimate"].to_numpy()[pre]
        v = covariance[np.ix_(pre, pre)]
        statistic = float(b @ np.linalg.solve(v, b))
        pretrend = PretrendTest(statistic, len(pre), float(stats.chi2.sf(statistic, len(pre))))
    else:
        pretrend = PretrendTest(float("nan"), 0, float("nan"))
    names = coefficients["term"].tolist()
    return EventStudyResult(
        coefficients=coefficients,
        covariance=pd.DataFrame(covariance, index=names, columns=names),
        pretrend_test=pretrend,
        reference=int(reference),
        window=window,
        se_type=fit.se_type,
        n_obs=fit.n_obs,
        n_units=n_units,
        n_treated_units=n_treated_units,
        n_clusters=fit.n_clusters,
        df=fit.df,
        other_terms=table.iloc[:n_covariates].reset_index(drop=True),
        conf_level=conf_level,
    )


def event_time_design(
    event_time: np.ndarray, window: tuple[int, int], reference: int, n_covariates: int
) -> np.ndarray:
    """Design of ``n_covariates`` empty columns and the event-time indicators.

    One indicator per event time of ``window`` except ``reference``, Fortran-ordered,
    set by one scatter. ``event_time`` is already clipped to the window; NaN (never treated) and
    non-integer values match no event time.
    """
    low, high = window
    n_events = high - low
    x = np.zeros((event_time.size, n_covariates + n_events), order="F")
    column_of = np.arange(n_covariates, n_covariates + n_events + 1)
    column_of[reference - low :] -= 1
    column_of[reference - low] = -1
    rows = np.flatnonzero(np.isfinite(event_time) & (event_time == np.round(event_time)))
    columns = column_of[event_time[rows].astype(np.int64) - low]
    matched = columns >= 0
    x[rows[matched], columns[matched]] = 1.0
    return x
