"""Random-effects meta-analysis of one effect measured in several schemes or studies.

Inverse-variance pooling with a between-study variance ``tau2`` estimated by REML
(default) or DerSimonian-Laird, optional Hartung-Knapp(-Sidik-Jonkman) inference,
heterogeneity statistics (Q, I^2, H^2, Q-profile interval for tau^2), a prediction
interval, a forest plot and a funnel plot. Conventions follow R's metafor
(``rma.uni``), so results can be checked number for number against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import optimize, stats

from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy

METHODS = ("REML", "DL", "FE")

_REML_TOLERANCE = 1e-10
_REML_MAX_ITERATIONS = 200


@dataclass(frozen=True)
class MetaResult(EstimatorResult):
    """A fitted (random-effects) meta-analysis; read-only.

    Attributes
    ----------
    estimate, std_error
        Pooled effect and its standard error (Hartung-Knapp adjusted when requested).
    conf_low, conf_high
        Confidence interval of the pooled effect at ``conf_level``.
    statistic, p_value
        Wald z (or t with ``k - 1`` df under Hartung-Knapp) test of a zero effect.
    tau2, tau2_conf_low, tau2_conf_high
        Between-study variance and its Q-profile confidence interval.
    i2, h2
        I^2 (percent of total variability due to heterogeneity) and H^2.
    q, q_df, q_p_value
        Cochran's Q test of homogeneity (equal-effects weights).
    pi_low, pi_high
        Prediction interval for the true effect in a new study or scheme.
    estimates, std_errors, labels
        The inputs, kept for plotting.
    diagnostics
        Plain-English notes (few studies, non-convergence, zero tau^2).
    """

    method: str
    hartung_knapp: bool
    conf_level: float
    k: int
    estimate: float
    std_error: float
    statistic: float
    p_value: float
    conf_low: float
    conf_high: float
    tau2: float
    tau2_conf_low: float
    tau2_conf_high: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_p_value: float
    pi_low: float
    pi_high: float
    estimates: tuple[float, ...]
    std_errors: tuple[float, ...]
    labels: tuple[str, ...]
    diagnostics: tuple[str, ...] = field(default=())

    @property
    def tau(self) -> float:
        """Between-study standard deviation."""
        return float(np.sqrt(self.tau2))

    @property
    def weights(self) -> np.ndarray:
        """Relative weights (percent) of the studies in the pooled estimate."""
        w = 1 / (np.asarray(self.std_errors) ** 2 + self.tau2)
        return 100 * w / w.sum()

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Pooled effect as one broom row, term ``"overall"`` (as broom's ``tidy.rma``).

        A normal reference, or t on ``k - 1`` df under Hartung-Knapp.
        """
        return make_tidy(
            ["overall"],
            [self.estimate],
            [self.std_error],
            conf_level=conf_level,
            df=self.k - 1 if self.hartung_knapp else None,
        )

    def glance(self) -> pd.DataFrame:
        """Heterogeneity and model summary as one row (as broom's ``glance.rma``)."""
        return pd.DataFrame(
            {
                "k": [self.k],
                "method": [self.method],
                "hartung_knapp": [self.hartung_knapp],
                "tau2": [self.tau2],
                "tau2_conf_low": [self.tau2_conf_low],
                "tau2_conf_high": [self.tau2_conf_high],
                "i2": [self.i2],
                "h2": [self.h2],
                "q": [self.q],
                "q_df": [self.q_df],
                "q_p_value": [self.q_p_value],
                "pi_low": [self.pi_low],
                "pi_high": [self.pi_high],
            }
        )

    def summary(self) -> str:
        """Text for people, in metafor's order."""
        level = f"{100 * self.conf_level:g}%"
        model = "Equal-effects" if self.method == "FE" else "Random-effects"
        inference = " with Hartung-Knapp adjustment" if self.hartung_knapp else ""
        lines = [
            f"{model} meta-analysis (k = {self.k}; tau^2 estimator: {self.method}){inference}",
            f"tau^2 = {self.tau2:.4f} ({level} CI {self.tau2_conf_low:.4f} to "
            f"{self.tau2_conf_high:.4f}); I^2 = {self.i2:.2f}%; H^2 = {self.h2:.2f}",
            f"Q(df = {self.q_df}) = {self.q:.4f}, p = {self.q_p_value:.4g}",
            f"Pooled estimate {self.estimate:.4f} (SE {self.std_error:.4f}), {level} CI "
            f"{self.conf_low:.4f} to {self.conf_high:.4f}, p = {self.p_value:.4g}",
            f"{level} prediction interval for a new setting: "
            f"{self.pi_low:.4f} to {self.pi_high:.4f}",
        ]
        lines.extend(self.diagnostics)
        return "\n".join(lines)

    def plot(self, *, ax=None, xlabel: str = "Estimate", reference: float = 0.0):
        """Forest plot: each study's estimate and CI, the pooled diamond, the prediction interval.

        Returns
        -------
        matplotlib.axes.Axes
        """
        k = self.k
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 1.2 + 0.35 * (k + 2)))
        estimates = np.asarray(self.estimates)
        std_errors = np.asarray(self.std_errors)
        crit = stats.norm.ppf(0.5 + self.conf_level / 2)
        rows = np.arange(k, 0, -1) + 1
        weights = self.weights
        ax.hlines(rows, estimates - crit * std_errors, estimates + crit * std_errors, color="0.2")
        ax.scatter(estimates, rows, marker="s", s=20 + 2 * weights, color="0.2", zorder=3)
        diamond_x = [self.conf_low, self.estimate, self.conf_high, self.estimate]
        diamond_y = [0.5, 0.8, 0.5, 0.2]
        ax.fill(diamond_x, diamond_y, color="#005EB8", zorder=3)
        if self.method != "FE":
            ax.hlines(0.5, self.pi_low, self.pi_high, color="#005EB8", linestyle=":")
        ax.axvline(reference, color="0.5", linewidth=0.8)
        ax.set_yticks([*rows, 0.5])
        pooled = "Pooled (RE)" if self.method != "FE" else "Pooled (EE)"
        ax.set_yticklabels([*self.labels, pooled])
        ax.set_ylim(-0.2, k + 1.8)
        ax.set_xlabel(xlabel)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return ax


def fit_random_effects(
    estimates,
    std_errors,
    *,
    method: str = "REML",
    hartung_knapp: bool = False,
    conf_level: float = 0.95,
    labels=None,
) -> MetaResult:
    """Pool effects from several studies or schemes by inverse-variance meta-analysis.

    Parameters
    ----------
    estimates, std_errors
        One estimate and its standard error per study (array-likes of equal length,
        at least two, standard errors positive).
    method
        Estimator of the between-study variance: ``"REML"`` (restricted maximum
        likelihood, Fisher scoring), ``"DL"`` (DerSimonian-Laird) or ``"FE"``
        (equal effects, tau^2 = 0).
    hartung_knapp
        Use the Hartung-Knapp-Sidik-Jonkman variance and t-distribution with
        ``k - 1`` degrees of freedom (metafor ``test="knha"``); recommended when
        few studies are pooled.
    conf_level
        Level of the confidence, prediction and tau^2 intervals.
    labels
        Study names for plots; defaults to ``"1"``, ``"2"``, ...

    Returns
    -------
    MetaResult

    Notes
    -----
    Model and estimators as in Viechtbauer (2005), J Educ Behav Stat 30(3):261-293
    and Viechtbauer (2010), J Stat Softw 36(3), metafor's ``rma.uni``: DerSimonian &
    Laird (1986) moment estimator; REML by Fisher scoring; I^2 and H^2 from the
    typical within-study variance (Higgins & Thompson 2002); Q-profile interval for
    tau^2 (Viechtbauer 2007, Stat Med 26:37-52); Hartung & Knapp (2001), Sidik &
    Jonkman (2002) adjustment without truncation; prediction interval
    ``estimate +/- crit * sqrt(SE^2 + tau^2)`` with a normal critical value, or t
    with ``k - 1`` df under Hartung-Knapp (metafor's ``predict.rma`` default).

    Examples
    --------
    >>> res = fit_random_effects([0.1, 0.3, 0.5], [0.1, 0.1, 0.2])
    >>> round(res.estimate, 3)
    0.255
    """
    y, v, labels = _validate(estimates, std_errors, labels, method, conf_level)
    k = len(y)
    diagnostics: list[str] = []
    if k < 5 and method != "FE":
        diagnostics.append(
            f"Only {k} results were pooled, so the between-scheme variation is estimated "
            "very imprecisely; the Hartung-Knapp interval is the safer guide."
        )

    w_fixed = 1 / v
    mu_fixed = np.sum(w_fixed * y) / np.sum(w_fixed)
    q = float(np.sum(w_fixed * (y - mu_fixed) ** 2))
    q_df = k - 1
    q_p_value = float(stats.chi2.sf(q, q_df))

    if method == "FE":
        tau2 = 0.0
    elif method == "DL":
        tau2 = _tau2_dersimonian_laird(y, v)
    else:
        tau2, converged = _tau2_reml(y, v)
        if not converged:
            diagnostics.append(
                "The REML estimate of between-scheme variance did not converge; the "
                "DerSimonian-Laird estimate was used instead."
            )
            tau2 = _tau2_dersimonian_laird(y, v)
            method = "DL"
    if method != "FE" and tau2 == 0:
        diagnostics.append(
            "No variation between schemes beyond chance was estimated (tau^2 = 0); the "
            "random-effects result equals the equal-effects result."
        )

    w = 1 / (v + tau2)
    estimate = float(np.sum(w * y) / np.sum(w))
    std_error = float(np.sqrt(1 / np.sum(w)))
    if hartung_knapp:
        scale = np.sum(w * (y - estimate) ** 2) / (k - 1)
        std_error = float(std_error * np.sqrt(scale))
        crit = stats.t.ppf(0.5 + conf_level / 2, k - 1)
    else:
        crit = stats.norm.ppf(0.5 + conf_level / 2)
    tidy = make_tidy(
        ["overall"],
        [estimate],
        [std_error],
        conf_level=conf_level,
        df=k - 1 if hartung_knapp else None,
    ).iloc[0]

    typical_variance = (k - 1) * np.sum(w_fixed) / (np.sum(w_fixed) ** 2 - np.sum(w_fixed**2))
    i2 = float(100 * tau2 / (tau2 + typical_variance))
    h2 = float((tau2 + typical_variance) / typical_variance)
    tau2_low, tau2_high = _tau2_q_profile(y, v, conf_level)
    pi_half_width = crit * np.sqrt(std_error**2 + tau2)

    return MetaResult(
        method=method,
        hartung_knapp=hartung_knapp,
        conf_level=conf_level,
        k=k,
        estimate=estimate,
        std_error=std_error,
        statistic=float(tidy["statistic"]),
        p_value=float(tidy["p_value"]),
        conf_low=float(tidy["conf_low"]),
        conf_high=float(tidy["conf_high"]),
        tau2=float(tau2),
        tau2_conf_low=tau2_low,
        tau2_conf_high=tau2_high,
        i2=i2,
        h2=h2,
        q=q,
        q_df=q_df,
        q_p_value=q_p_value,
        pi_low=float(estimate - pi_half_width),
        pi_high=float(estimate + pi_half_width),
        estimates=tuple(float(x) for x in y),
        std_errors=tuple(float(x) for x in np.sqrt(v)),
        labels=labels,
        diagnostics=tuple(diagnostics),
    )


def i2_from_tau2(tau2: float, std_errors) -> float:
    """I^2 (percent) implied by ``tau2`` given the studies' standard errors."""
    v = np.asarray(std_errors, dtype=float) ** 2
    w = 1 / v
    typical_variance = (len(v) - 1) * np.sum(w) / (np.sum(w) ** 2 - np.sum(w**2))
    return float(100 * tau2 / (tau2 + typical_variance))


def plot_funnel(
    result: MetaResult,
    *,
    sizes=None,
    ax=None,
    xlabel: str = "Estimate",
):
    """Funnel plot of each study's estimate against its precision or its size.

    Parameters
    ----------
    result
        A fitted meta-analysis.
    sizes
        Optional number of people behind each estimate; when given the y axis is
        size (larger at the top), otherwise the standard error (smaller at the top)
        with the pseudo-confidence funnel ``estimate +/- z * SE`` around the pooled
        equal-effects estimate, as metafor's ``funnel()``.
    ax
        Axes to draw on.
    xlabel
        Label of the effect axis.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Sterne & Egger (2001), J Clin Epidemiol 54:1046-1055: standard error is the
    recommended vertical axis; asymmetry may reflect small-study effects, selective
    reporting or true heterogeneity, and is hard to judge with few studies.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    estimates = np.asarray(result.estimates)
    std_errors = np.asarray(result.std_errors)
    ax.axvline(result.estimate, color="#005EB8", linewidth=1)
    if sizes is not None:
        sizes = np.asarray(sizes, dtype=float)
        if sizes.shape != estimates.shape:
            raise ValueError(
                f"sizes must have one value per study ({len(estimates)}), got {sizes.shape[0]}"
            )
        ax.scatter(estimates, sizes, color="0.2", zorder=3)
        ax.set_ylabel("Number of people")
        ax.set_ylim(bottom=0)
    else:
        crit = stats.norm.ppf(0.5 + result.conf_level / 2)
        se_max = std_errors.max() * 1.1
        se_grid = np.array([0.0, se_max])
        w = 1 / std_errors**2
        centre = float(np.sum(w * estimates) / np.sum(w))
        ax.plot(centre - crit * se_grid, se_grid, color="0.5", linestyle="--")
        ax.plot(centre + crit * se_grid, se_grid, color="0.5", linestyle="--")
        ax.scatter(estimates, std_errors, color="0.2", zorder=3)
        ax.set_ylim(se_max, 0)
        ax.set_ylabel("Standard error")
    ax.set_xlabel(xlabel)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def _validate(estimates, std_errors, labels, method, conf_level):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    y = np.asarray(estimates, dtype=float).ravel()
    se = np.asarray(std_errors, dtype=float).ravel()
    if y.shape != se.shape:
        raise ValueError(
            f"estimates and std_errors must have the same length, got {len(y)} and {len(se)}"
        )
    if len(y) < 2:
        raise ValueError(f"a meta-analysis needs at least 2 estimates, got {len(y)}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"estimates must be finite numbers, got {y.tolist()}")
    if not np.all(np.isfinite(se)) or np.any(se <= 0):
        raise ValueError(f"std_errors must be positive finite numbers, got {se.tolist()}")
    if labels is None:
        labels = tuple(str(i + 1) for i in range(len(y)))
    else:
        labels = tuple(str(label) for label in labels)
        if len(labels) != len(y):
            raise ValueError(f"labels must have {len(y)} entries, got {len(labels)}")
    return y, se**2, labels


def _tau2_dersimonian_laird(y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / v
    mu = np.sum(w * y) / np.sum(w)
    q = np.sum(w * (y - mu) ** 2)
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    return float(max(0.0, (q - (len(y) - 1)) / c))


def _tau2_reml(y: np.ndarray, v: np.ndarray) -> tuple[float, bool]:
    """Fisher scoring for the REML estimate (Viechtbauer 2005, eq. 17), truncated at 0."""
    tau2 = _tau2_dersimonian_laird(y, v)
    for _ in range(_REML_MAX_ITERATIONS):
        w = 1 / (v + tau2)
        # P = W - W 1 1' W / sum(W): the REML projection for an intercept-only model.
        p_matrix = np.diag(w) - np.outer(w, w) / np.sum(w)
        p_y = p_matrix @ y
        step = (p_y @ p_y - np.trace(p_matrix)) / np.sum(p_matrix * p_matrix)
        new_tau2 = max(0.0, tau2 + step)
        if abs(new_tau2 - tau2) < _REML_TOLERANCE:
            return new_tau2, True
        tau2 = new_tau2
    return tau2, False


def _generalised_q(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu) ** 2))


def _tau2_q_profile(y: np.ndarray, v: np.ndarray, conf_level: float) -> tuple[float, float]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007).

    The generalised Q statistic decreases in tau^2 and follows chi^2 with k - 1 df
    at the true tau^2; the bounds are where it crosses the chi^2 quantiles. A bound
    below zero is truncated to zero, as in metafor's ``confint.rma.uni``.
    """
    df = len(y) - 1
    upper_quantile = stats.chi2.ppf(0.5 + conf_level / 2, df)
    lower_quantile = stats.chi2.ppf(0.5 - conf_level / 2, df)

    def solve(target: float) -> float:
        if _generalised_q(0.0, y, v) <= target:
            return 0.0
        high = max(1.0, 10 * np.var(y))
        while _generalised_q(high, y, v) > target:
            high *= 10
        return float(
            optimize.brentq(
                lambda t: _generalised_q(t, y, v) - target, 0.0, high, xtol=1e-12, rtol=1e-12
            )
        )

    return solve(upper_quantile), solve(lower_quantile)
