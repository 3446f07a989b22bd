"""Means and mean differences with t intervals: one-sample, paired change, Welch.

The small estimators every analysis needs beside its models: the mean of a sample
(a paired change is the mean of the differences) with a Student t interval on
n - 1 degrees of freedom, the Welch two-sample difference, and the minimum
detectable change for a given standard error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy


@dataclass(frozen=True)
class MeanResult(EstimatorResult):
    """The mean of a sample with its t interval (read-only).

    Attributes
    ----------
    term
        Name of the estimate in the tidy table (``"mean"`` or ``"change"``).
    estimate, std_error
        Sample mean and its standard error, SD / sqrt(n).
    sd
        Sample standard deviation (n - 1 denominator).
    n
        Observations used (missing values dropped).
    """

    term: str
    estimate: float
    std_error: float
    sd: float
    n: int
    conf_level: float = 0.95

    @property
    def df(self) -> float:
        """Degrees of freedom of the t reference, n - 1."""
        return float(self.n - 1)

    @property
    def standardised(self) -> float:
        """Mean over SD: the standardised response mean of a paired change."""
        return self.estimate / self.sd if self.sd > 0 else np.nan

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        df = self.df if self.n > 1 else None
        return make_tidy(
            [self.term], [self.estimate], [self.std_error], conf_level=conf_level, df=df
        )

    def summary(self) -> str:
        """One line: estimate, interval, n."""
        row = self.tidy().iloc[0]
        return (
            f"{self.term}: {self.estimate:.4g} (SE {self.std_error:.4g}, n = {self.n}), "
            f"{self.conf_level:.0%} t interval {row.conf_low:.4g} to {row.conf_high:.4g}"
        )


@dataclass(frozen=True)
class WelchResult(EstimatorResult):
    """Difference in means of two independent samples, Welch's unequal-variance t.

    Attributes
    ----------
    estimate, std_error, df
        Mean of ``a`` minus mean of ``b``, its standard error and the
        Welch-Satterthwaite degrees of freedom.
    n_a, n_b
        Observations in each sample.
    """

    estimate: float
    std_error: float
    df: float
    n_a: int
    n_b: int
    conf_level: float = 0.95

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        return make_tidy(
            ["difference"], [self.estimate], [self.std_error], conf_level=conf_level, df=self.df
        )

    def summary(self) -> str:
        """One line: difference, interval, sample sizes."""
        row = self.tidy().iloc[0]
        return (
            f"Difference in means {self.estimate:.4g} (Welch SE {self.std_error:.4g}, "
            f"df {self.df:.1f}; n = {self.n_a} and {self.n_b}), {self.conf_level:.0%} interval "
            f"{row.conf_low:.4g} to {row.conf_high:.4g}"
        )


def fit_mean(values, *, conf_level: float = 0.95, term: str = "mean") -> MeanResult:
    """Mean of ``values`` with a Student t interval on n - 1 degrees of freedom.

    Missing values are dropped. With fewer than two values the standard error is NaN.

    Examples
    --------
    >>> result = fit_mean([1.0, 2.0, 3.0, 4.0])
    >>> round(float(result.tidy().conf_low.iloc[0]), 4)
    0.4457
    """
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    n = len(array)
    if n == 0:
        return MeanResult(term, np.nan, np.nan, np.nan, 0, conf_level)
    mean = float(array.mean())
    sd = float(array.std(ddof=1)) if n > 1 else np.nan
    return MeanResult(term, mean, sd / np.sqrt(n), sd, n, conf_level)


def fit_paired_change(before, after, *, conf_level: float = 0.95) -> MeanResult:
    """Mean within-person change, ``after - before``, with a paired t interval.

    Pairs with either value missing are dropped.

    Notes
    -----
    The paired t interval is the one-sample interval of the differences (Student
    1908); its standardised mean is the standardised response mean (Liang et al.
    1990).

    Examples
    --------
    >>> result = fit_paired_change([10, 12, 9, 11], [12, 13, 12, 12])
    >>> float(result.estimate), result.n
    (1.75, 4)
    """
    before = np.asarray(before, dtype=float)
    after = np.asarray(after, dtype=float)
    if before.shape != after.shape:
        raise ValueError("before and after must have the same length")
    return fit_mean(after - before, conf_level=conf_level, term="change")


def fit_welch(a, b, *, conf_level: float = 0.95) -> WelchResult:
    """Mean of ``a`` minus mean of ``b`` with Welch's t interval (scipy ``ttest_ind``).

    Missing values are dropped; with fewer than two values in either sample the
    estimate and interval are NaN.

    Examples
    --------
    >>> result = fit_welch([5.0, 6.0, 7.0], [1.0, 2.0, 3.0, 4.0])
    >>> round(float(result.estimate), 2), round(float(result.df), 2)
    (3.5, 4.96)
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return WelchResult(np.nan, np.nan, np.nan, len(a), len(b), conf_level)
    test = stats.ttest_ind(a, b, equal_var=False)
    std_error = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    return WelchResult(
        float(a.mean() - b.mean()), std_error, float(test.df), len(a), len(b), conf_level
    )


def minimum_detectable_change(std_error, *, alpha: float = 0.05, power: float = 0.8):
    """Smallest true change a two-sided test at ``alpha`` detects with ``power``.

    ``(z_{1 - alpha/2} + z_power) * std_error``, the normal approximation used for
    sample-size calculations (e.g. Machin et al., *Sample Sizes for Clinical, Laboratory
    and Epidemiology Studies*, 4th ed., ch. 1).

    Examples
    --------
    >>> round(float(minimum_detectable_change(1.0)), 3)
    2.802
    """
    multiplier = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return multiplier * np.asarray(std_error, dtype=float)
