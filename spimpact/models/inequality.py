"""Inequality measures: intervals for rates and proportions, funnel limits, and SII/RII.

Generic estimators on any DataFrame; the social-prescribing reach analysis
(``spimpact.analyses.reach``) sits on top of them. Methods follow the Office for Health
Improvement and Disparities / UKHSA package PHEindicatormethods (``phe_rate``,
``phe_proportion``, ``phe_sii``) so that numbers agree with Fingertips; funnel-plot
limits follow Spiegelhalter (2005).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from scipy import stats

from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import TIDY_COLUMNS

# Byar's approximation is poor for few events; PHEindicatormethods switches to the
# exact Poisson interval below 10 events (phe_rate, R/Rates.R).
BYAR_MIN_EVENTS = 10


def _z(conf_level: float) -> float:
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    return float(stats.norm.ppf(0.5 + conf_level / 2))


def _counts(values, name: str) -> np.ndarray:
    array = np.atleast_1d(np.asarray(values, dtype=float))
    if np.isnan(array).any():
        raise ValueError(
            f"{name} has missing values at positions {np.flatnonzero(np.isnan(array))[:5].tolist()}"
        )
    if (array < 0).any():
        raise ValueError(f"{name} must be non-negative, got {array[array < 0][:3].tolist()}")
    return array


def rate_ci(events, population, *, conf_level: float = 0.95, per: float = 1.0) -> pd.DataFrame:
    """Crude rate with Byar's (>= 10 events) or exact Poisson (< 10 events) limits.

    Parameters
    ----------
    events, population
        Counts of events and the population at risk (or person-time), arrays of
        equal length.
    conf_level
        Confidence level, e.g. 0.95.
    per
        Multiplier, e.g. 1000 for a rate per 1,000.

    Returns
    -------
    pandas.DataFrame
        Columns ``events, population, rate, conf_low, conf_high, method``.

    Notes
    -----
    Byar's method (Breslow & Day 1987, vol. II): lower
    ``O (1 - 1/(9 O) - z / (3 sqrt(O)))^3``, upper with ``O + 1``. Exact limits from
    the chi-squared quantiles ``qchisq(a/2, 2O)/2`` and ``qchisq(1 - a/2, 2O + 2)/2``.
    As PHEindicatormethods ``phe_rate``.

    Examples
    --------
    >>> rate_ci([65], [100], per=100).round(4)[["rate", "conf_low", "conf_high"]].values.tolist()
    [[65.0, 50.1632, 82.8491]]
    """
    z = _z(conf_level)
    events = _counts(events, "events")
    population = _counts(population, "population")
    if events.shape != population.shape:
        raise ValueError("events and population must have the same length")
    if (population == 0).any():
        raise ValueError("population must be positive to compute a rate")
    alpha = 1 - conf_level
    with np.errstate(divide="ignore", invalid="ignore"):
        byar_low = events * (1 - 1 / (9 * events) - z / (3 * np.sqrt(events))) ** 3
        upper_events = events + 1
        byar_high = (
            upper_events * (1 - 1 / (9 * upper_events) + z / (3 * np.sqrt(upper_events))) ** 3
        )
        exact_low = np.where(events > 0, stats.chi2.ppf(alpha / 2, 2 * events) / 2, 0.0)
    exact_high = stats.chi2.ppf(1 - alpha / 2, 2 * events + 2) / 2
    exact = events < BYAR_MIN_EVENTS
    low = np.where(exact, exact_low, byar_low)
    high = np.where(exact, exact_high, byar_high)
    return pd.DataFrame(
        {
            "events": events,
            "population": population,
            "rate": events / population * per,
            "conf_low": low / population * per,
            "conf_high": high / population * per,
            "method": np.where(exact, "exact", "byar"),
        }
    )


def wilson_ci(successes, trials, *, conf_level: float = 0.95) -> pd.DataFrame:
    """Proportion with Wilson score limits.

    Returns
    -------
    pandas.DataFrame
        Columns ``successes, trials, proportion, conf_low, conf_high``.

    Notes
    -----
    Wilson (1927), as PHEindicatormethods ``phe_proportion``; identical to
    statsmodels ``proportion_confint(method="wilson")``, which computes the limits.

    Examples
    --------
    >>> wilson_ci([65], [100]).round(6)[["conf_low", "conf_high"]].values.tolist()
    [[0.552544, 0.736358]]
    """
    from statsmodels.stats.proportion import proportion_confint

    _z(conf_level)
    successes = _counts(successes, "successes")
    trials = _counts(trials, "trials")
    if successes.shape != trials.shape:
        raise ValueError("successes and trials must have the same length")
    if (successes > trials).any() or (trials == 0).any():
        raise ValueError("need 0 <= successes <= trials and trials > 0")
    low, high = proportion_confint(successes, trials, alpha=1 - conf_level, method="wilson")
    return pd.DataFrame(
        {
            "successes": successes,
            "trials": trials,
            "proportion": successes / trials,
            "conf_low": np.asarray(low, dtype=float),
            "conf_high": np.asarray(high, dtype=float),
        }
    )


def poisson_funnel_limits(target_rate: float, population, p: float) -> np.ndarray:
    """Exact Poisson funnel limit for a rate: the ``p`` quantile of O / n under the target.

    Parameters
    ----------
    target_rate
        Events per person under the null (e.g. the scheme average).
    population
        Denominators ``n``.
    p
        Quantile, e.g. 0.025, 0.975, 0.001 or 0.999.

    Returns
    -------
    numpy.ndarray
        The limit as a rate per person, one per denominator (multiply by 1,000 for a
        rate per 1,000).

    Notes
    -----
    Spiegelhalter (2005), Funnel plots for comparing institutional performance, Stat
    Med 24:1185-1202, appendix A.1.1: with ``r_p`` the ``p`` quantile of a Poisson with
    mean ``target_rate x n``, the limit is ``(r_p - a) / n`` where
    ``a = (F(r_p) - p) / (F(r_p) - F(r_p - 1))`` interpolates between integers so the
    limits are smooth in ``n``.

    Examples
    --------
    >>> (poisson_funnel_limits(0.03, [1000, 4000], 0.975) * 1000).round(2).tolist()
    [40.72, 35.36]
    """
    n = np.asarray(population, dtype=float)
    mean = target_rate * n
    r = stats.poisson.ppf(p, mean)
    upper_cdf = stats.poisson.cdf(r, mean)
    lower_cdf = stats.poisson.cdf(r - 1, mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(upper_cdf > lower_cdf, (upper_cdf - p) / (upper_cdf - lower_cdf), 0.0)
    return np.clip(r - alpha, 0, None) / n


def cumulative_rank_midpoints(population) -> np.ndarray:
    """Relative rank of each ordered group: the midpoint of its cumulative population share.

    Examples
    --------
    >>> cumulative_rank_midpoints([12, 10, 78]).round(2).tolist()
    [0.06, 0.17, 0.61]
    """
    share = np.asarray(population, dtype=float)
    share = share / share.sum()
    return np.cumsum(share) - share / 2


_VALUE_TYPES = ("normal", "rate", "proportion")


# eq=False: the fields hold a data frame, which has no single truth value.
@dataclass(frozen=True, eq=False)
class SiiResult(EstimatorResult):
    """Slope and relative index of inequality with simulation confidence limits.

    The limits are simulated at fit time, so ``tidy`` gives them only at
    ``conf_level``; fit again for another level.

    Attributes
    ----------
    sii
        Slope index of inequality: fitted value at relative rank 1 (the last quantile,
        e.g. least deprived) minus that at rank 0 (the first, e.g. most deprived),
        times ``multiplier``.
    rii
        Relative index of inequality: fitted value at rank 1 / fitted value at rank 0
        (inverted when ``multiplier`` is negative).
    intercept
        Fitted value at rank 0.
    sii_conf_low, sii_conf_high, rii_conf_low, rii_conf_high
        Simulation limits at ``conf_level``.
    sii_std_error
        Standard deviation of the simulated SIIs (``nan`` when ``transform``).
    slope_statistic
        Fitted slope over the SD of the simulated slopes on the fitting scale.
    fit_intercept, fit_slope
        Regression coefficients on the fitting scale (log/logit when ``transform``),
        before ``multiplier``.
    quantiles
        Per quantile: ``quantile, population, value, std_error, relative_rank``.
    """

    sii: float
    rii: float
    intercept: float
    sii_conf_low: float
    sii_conf_high: float
    rii_conf_low: float
    rii_conf_high: float
    sii_std_error: float
    slope_statistic: float
    fit_intercept: float
    fit_slope: float
    conf_level: float
    value_type: str
    transform: bool
    multiplier: float
    repetitions: int
    quantiles: pd.DataFrame

    intervals_fixed_at_fit = True

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom-style table with rows ``sii`` and ``rii``.

        The interval is the simulation percentile interval (PHEindicatormethods). The
        SII row's ``std_error`` is the SD of the simulated SIIs (missing when
        ``transform``, where the SII is a back-transformed difference); its statistic
        and p-value test a zero slope on the fitting scale. The RII row has only the
        estimate and the simulation interval.
        """
        p_value = 2 * stats.norm.sf(abs(self.slope_statistic))
        return pd.DataFrame(
            {
                "term": ["sii", "rii"],
                "estimate": [self.sii, self.rii],
                "std_error": [self.sii_std_error, np.nan],
                "statistic": [self.slope_statistic, np.nan],
                "p_value": [p_value, np.nan],
                "conf_low": [self.sii_conf_low, self.rii_conf_low],
                "conf_high": [self.sii_conf_high, self.rii_conf_high],
            },
            columns=list(TIDY_COLUMNS),
        )

    def summary(self) -> str:
        """Describe the gradient in words."""
        pct = round(self.conf_level * 100, 1)
        return "\n".join(
            [
                f"Slope index of inequality {self.sii:.4g} "
                f"({pct:g}% CI {self.sii_conf_low:.4g} to {self.sii_conf_high:.4g}).",
                f"Relative index of inequality {self.rii:.4g} "
                f"({pct:g}% CI {self.rii_conf_low:.4g} to {self.rii_conf_high:.4g}).",
                f"{len(self.quantiles)} quantiles, {self.value_type} indicator"
                + (", transformed before fitting" if self.transform else "")
                + f"; limits from {self.repetitions:,} simulations.",
            ]
        )

    def plot(
        self,
        ax: Axes | None = None,
        *,
        xlabel: str = "Relative rank (0 = first quantile)",
        ylabel: str = "Value",
    ) -> Axes:
        """Quantile values against relative rank, with the fitted line (curve if transformed)."""
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        scale = abs(self.multiplier)
        q = self.quantiles
        ax.scatter(q["relative_rank"], q["value"] * scale, color="#005eb8", zorder=2)
        ranks = np.linspace(0, 1, 50)
        fitted = self.fit_intercept + self.fit_slope * ranks
        if self.transform:
            fitted = _LINKS[self.value_type][1](fitted)
        ax.plot(ranks, fitted * scale, color="#425563")
        ax.set_xlim(0, 1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        return ax


def _logit(p):
    return np.log(p / (1 - p))


def _expit(x):
    return 1 / (1 + np.exp(-x))


_LINKS = {"rate": (np.log, np.exp), "proportion": (_logit, _expit), "normal": (None, None)}


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def fit_sii(
    data: pd.DataFrame,
    *,
    quantile: str,
    population: str,
    value: str,
    std_error: str | None = None,
    conf_low: str | None = None,
    conf_high: str | None = None,
    value_type: str = "normal",
    transform: bool = False,
    multiplier: float = 1.0,
    conf_level: float = 0.95,
    repetitions: int = 100_000,
    seed=None,
) -> SiiResult:
    """Slope and relative index of inequality across ordered quantiles (PHE method).

    Parameters
    ----------
    data
        One row per quantile (e.g. IMD decile).
    quantile
        Column ordering the quantiles: the first (smallest) is relative rank ~0, e.g.
        decile 1 = most deprived.
    population
        Column of quantile populations (all positive).
    value
        Column of indicator values (rates or proportions on their natural scale,
        e.g. 0.05 or 50 per 1,000 divided by the multiplier: pass the unscaled value
        and use ``multiplier`` for presentation).
    std_error, conf_low, conf_high
        Either a standard error column (only when ``transform`` is false) or 95%
        confidence limits, from which the standard error is derived on the
        log (rate) or logit (proportion) scale: ``(upper - lower) / (2 x 1.96)``.
    value_type
        ``"normal"``, ``"rate"`` or ``"proportion"``.
    transform
        Fit on the log (rate) or logit (proportion) scale and transform back, as
        PHE recommends for rates and proportions.
    multiplier
        Scale the SII (e.g. 1000 for per 1,000); a negative multiplier flips the
        polarity and inverts the RII.
    conf_level
        Confidence level of the simulation interval.
    repetitions
        Number of simulations (at least 1,000).
    seed
        int or ``numpy.random.Generator``.

    Returns
    -------
    SiiResult

    Notes
    -----
    Low & Low (2004), J Public Health 26:388-395, as implemented in
    PHEindicatormethods ``phe_sii``: the regression
    ``y sqrt(a) = c sqrt(a) + SII b sqrt(a)`` (no intercept term), with ``a`` each
    quantile's population share and ``b`` its cumulative rank midpoint; the interval
    comes from re-fitting on ``repetitions`` draws of every quantile's value from a
    normal distribution with its standard error (on the log/logit scale for rates and
    proportions), taking the ``round(R (1 - conf)/2)``-th and ``round(R (1 + conf)/2)``-th
    sorted draws. With ``transform`` the interval is centred on the fitted
    midpoint and mapped back as in ``phe_sii``. Unlike ``phe_sii`` a negative
    multiplier (not a multiplier below 1) swaps the back-transformed rate limits.

    Examples
    --------
    >>> frame = pd.DataFrame({"decile": range(1, 11), "pop": [1000] * 10,
    ...                       "value": np.linspace(70, 80, 10), "se": [1.0] * 10})
    >>> fit = fit_sii(frame, quantile="decile", population="pop", value="value",
    ...               std_error="se", repetitions=1000, seed=1)
    >>> round(fit.sii, 3)
    11.111
    """
    if value_type not in _VALUE_TYPES:
        raise ValueError(f"value_type must be one of {_VALUE_TYPES}, got {value_type!r}")
    if transform and value_type == "normal":
        raise ValueError("transform=True needs value_type 'rate' or 'proportion'")
    if transform and std_error is not None:
        raise ValueError("with transform=True give conf_low and conf_high, not std_error")
    if std_error is None and (conf_low is None or conf_high is None):
        raise ValueError("give either std_error or both conf_low and conf_high")
    if repetitions < 1000:
        raise ValueError(f"repetitions must be at least 1000, got {repetitions}")
    _z(conf_level)
    columns = [quantile, population, value] + [
        c for c in (std_error, conf_low, conf_high) if c is not None
    ]
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"columns {missing} not found in data")
    frame = data[columns].sort_values(quantile).reset_index(drop=True)
    if frame[columns].isna().any().any():
        bad = frame.loc[frame[columns].isna().any(axis=1), quantile].tolist()
        raise ValueError(f"quantiles {bad} have missing population, value or interval")
    if frame[quantile].duplicated().any():
        raise ValueError(f"column {quantile!r} has repeated quantiles")
    if not 5 <= len(frame) <= 100:
        raise ValueError(f"the SII needs 5 to 100 quantiles, got {len(frame)}")
    pop = frame[population].to_numpy(dtype=float)
    if (pop <= 0).any():
        raise ValueError(f"column {population!r} must be positive for every quantile")
    y = frame[value].to_numpy(dtype=float)
    if value_type == "proportion" and ((y <= 0) | (y >= 1)).any():
        raise ValueError(f"column {value!r}: proportions must be strictly between 0 and 1")
    if value_type == "rate" and (y <= 0).any():
        raise ValueError(f"column {value!r}: rates must be positive for a log scale")

    link, inverse = _LINKS[value_type]
    y_link = y if link is None else link(y)
    if std_error is not None:
        se = frame[std_error].to_numpy(dtype=float)
    else:
        low = frame[conf_low].to_numpy(dtype=float)
        high = frame[conf_high].to_numpy(dtype=float)
        if link is not None:
            low, high = link(low), link(high)
        # phe_sii assumes 95% limits whatever conf_level is asked for the SII.
        se = (high - low) / stats.norm.ppf(0.975) / 2
    if (se < 0).any() or not np.isfinite(se).all():
        raise ValueError("standard errors must be finite and non-negative")

    share = pop / pop.sum()
    rank = cumulative_rank_midpoints(pop)
    sqrt_a = np.sqrt(share)
    design = np.column_stack([sqrt_a, rank * sqrt_a])
    solver = np.linalg.solve(design.T @ design, design.T)  # (X'X)^-1 X'

    fit_scale = y_link if transform else y
    intercept_fit, slope_fit = solver @ (fit_scale * sqrt_a)

    draws = _rng(seed).normal(y_link[:, None], se[:, None], size=(len(y), repetitions))
    if not transform and inverse is not None:
        draws = inverse(draws)
    params = solver @ (draws * sqrt_a[:, None])
    sim_intercept, sim_slope = params[0], params[1]
    upper_q = conf_level + (1 - conf_level) / 2
    positions = np.round(repetitions * np.array([1 - upper_q, upper_q])).astype(int) - 1

    def _limits(simulated):
        ordered = np.sort(simulated)
        return ordered[positions[0]], ordered[positions[1]]

    negative = multiplier < 0
    if not transform:
        sii = multiplier * slope_fit
        rii = (intercept_fit + slope_fit) / intercept_fit
        sim_sii = sim_slope * multiplier
        sim_rii = (sim_slope + sim_intercept) / sim_intercept
        if negative:
            rii, sim_rii = 1 / rii, 1 / sim_rii
        sii_low, sii_high = _limits(sim_sii)
        rii_low, rii_high = _limits(sim_rii)
        intercept = intercept_fit
        sii_std_error = float(np.std(sim_sii, ddof=1))
        slope_statistic = sii / sii_std_error
    else:
        at_one = intercept_fit + slope_fit
        midpoint = (intercept_fit + at_one) / 2
        sii = (inverse(at_one) - inverse(intercept_fit)) * multiplier
        rii = inverse(at_one) / inverse(intercept_fit)
        if negative:
            rii = 1 / rii
        intercept = inverse(intercept_fit) * abs(multiplier)
        slope_low, slope_high = _limits(sim_slope)
        ends = []
        for slope in (slope_low, slope_high):
            start, end = midpoint - slope / 2, midpoint + slope / 2
            ends.append(
                ((inverse(end) - inverse(start)) * multiplier, inverse(end) / inverse(start))
            )
        (sii_a, rii_a), (sii_b, rii_b) = ends
        if negative:
            sii_low, sii_high = sii_b, sii_a
            rii_low, rii_high = 1 / rii_b, 1 / rii_a
        else:
            sii_low, sii_high = sii_a, sii_b
            rii_low, rii_high = rii_a, rii_b
        sii_std_error = np.nan
        slope_statistic = slope_fit / float(np.std(sim_slope, ddof=1))

    quantiles = pd.DataFrame(
        {
            "quantile": frame[quantile].to_numpy(),
            "population": pop,
            "value": y,
            "std_error": se,
            "relative_rank": rank,
        }
    )
    return SiiResult(
        sii=float(sii),
        rii=float(rii),
        intercept=float(intercept),
        sii_conf_low=float(sii_low),
        sii_conf_high=float(sii_high),
        rii_conf_low=float(rii_low),
        rii_conf_high=float(rii_high),
        sii_std_error=sii_std_error,
        slope_statistic=float(slope_statistic),
        fit_intercept=float(intercept_fit),
        fit_slope=float(slope_fit),
        conf_level=conf_level,
        value_type=value_type,
        transform=transform,
        multiplier=float(multiplier),
        repetitions=int(repetitions),
        quantiles=quantiles,
    )
