"""Difference-in-differences estimators: 2x2, two-way fixed effects, event study, staggered.

Generic estimators on any DataFrame; the GP-attendance analysis for social
prescribing sits on top of them elsewhere. Each returns a frozen result with
``.tidy()`` (broom columns), ``.summary()`` and, where a picture helps, ``.plot()``.

The staggered-adoption estimator (Callaway & Sant'Anna 2021) lives in
:mod:`spimpact.models.did_staggered` and the Rambachan & Roth (2023) sensitivity
analysis in :mod:`spimpact.models.did_honest`; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import patsy
from scipy import stats

from spimpact.models.did_fixed_effects import (
    LinearFit,
    design_matrices,
    encode_groups,
    fit_linear,
    require_columns,
    require_numeric,
)
from spimpact.models.did_honest import honest_did_relative_magnitude
from spimpact.models.did_staggered import (
    AggregateResult,
    StaggeredDidResult,
    fit_staggered_did,
    never_treated_mask,
)
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy

__all__ = [
    "AggregateResult",
    "DidResult",
    "EventStudyResult",
    "PretrendTest",
    "StaggeredDidResult",
    "TwfeResult",
    "fit_did_2x2",
    "fit_event_study",
    "fit_staggered_did",
    "fit_twfe",
    "honest_did_relative_magnitude",
]


def _check_binary(data: pd.DataFrame, column: str) -> pd.Series:
    values = data[column]
    if values.dtype == bool:
        return values.astype(float)
    observed = set(pd.unique(values.dropna()))
    if not observed <= {0, 1}:
        raise ValueError(
            f"column {column!r} must be 0/1 or boolean; found values "
            f"{sorted(observed, key=str)[:5]}"
        )
    return values.astype(float)


def _tidy_from_fit(fit: LinearFit, conf_level: float) -> pd.DataFrame:
    return make_tidy(
        fit.terms,
        fit.coefficients,
        np.sqrt(np.diag(fit.covariance)),
        conf_level=conf_level,
        df=fit.df,
    )


def _format_table(tidy: pd.DataFrame) -> str:
    return tidy.to_string(index=False, float_format=lambda v: f"{v:.6g}")


def _tidy_at(coefficients: pd.DataFrame, conf_level: float, df: float | None) -> pd.DataFrame:
    """The broom table of stored coefficients, intervals at ``conf_level``."""
    return make_tidy(
        coefficients["term"],
        coefficients["estimate"],
        coefficients["std_error"],
        conf_level=conf_level,
        df=df,
    )


# eq=False: the fields hold data frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class DidResult(EstimatorResult):
    """A 2x2 difference-in-differences fit.

    ``att`` is the coefficient on ``treated x post``; ``coefficients`` the full
    broom table of the regression; ``se_type`` says which standard errors were used.
    """

    att: float
    std_error: float
    att_term: str
    coefficients: pd.DataFrame
    se_type: str
    n_obs: int
    n_clusters: int | None
    df: float | None
    conf_level: float = 0.95

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom table of all coefficients; the ATT row is ``att_term``."""
        return _tidy_at(self.coefficients, conf_level, self.df)

    def summary(self) -> str:
        """Text summary naming the estimate and the type of standard error."""
        row = self.tidy().set_index("term").loc[self.att_term]
        return (
            "Difference-in-differences (2x2, OLS)\n"
            f"ATT ({self.att_term}): {self.att:.6g} (SE {self.std_error:.6g}), "
            f"{self.conf_level:.0%} CI {row.conf_low:.6g} to {row.conf_high:.6g}\n"
            f"Standard errors: {self.se_type}; observations: {self.n_obs}\n\n"
            + _format_table(self.tidy())
        )


def fit_did_2x2(
    data: pd.DataFrame,
    *,
    outcome: str,
    treated: str,
    post: str,
    covariates: Sequence[str] | None = None,
    cluster: str | None = None,
    conf_level: float = 0.95,
) -> DidResult:
    """Canonical 2x2 difference-in-differences by OLS.

    Fits ``outcome ~ treated + post + treated:post + covariates``; the coefficient on
    ``treated:post`` is the ATT under parallel trends.

    Parameters
    ----------
    data
        One row per unit-period (panel) or per observation (repeated cross-sections).
    outcome, treated, post
        Column names; ``treated`` and ``post`` must be 0/1 or boolean.
    covariates
        Extra column names (numeric or categorical) added linearly.
    cluster
        Column to cluster on; ``None`` gives classical OLS standard errors.
    conf_level
        Confidence level for intervals.

    Returns
    -------
    DidResult

    Notes
    -----
    Angrist & Pischke (2009), *Mostly Harmless Econometrics*, section 5.2;
    Wooldridge (2020), *Introductory Econometrics*, section 13.2 (Example 13.3,
    KIELMC). Cluster-robust standard errors are CR1,
    ``G/(G-1) * (n-1)/(n-K)``, with a t reference on ``G - 1`` degrees of freedom,
    as Stata ``regress, vce(cluster)`` and R ``fixest``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> d = pd.DataFrame({"g": np.repeat([0, 1], 200), "p": np.tile([0, 1], 200)})
    >>> d["y"] = 1 + 0.5 * d.g + 0.3 * d.p + 2.0 * d.g * d.p + rng.normal(0, 0.1, 400)
    >>> round(fit_did_2x2(d, outcome="y", treated="g", post="p").att, 1)
    2.0
    """
    covariates = list(covariates or [])
    require_columns(data, [outcome, treated, post, cluster, *covariates], role="fit_did_2x2")
    frame = pd.DataFrame(
        {
            "_y": pd.to_numeric(data[outcome], errors="raise"),
            "_treated": _check_binary(data, treated),
            "_post": _check_binary(data, post),
        },
        index=data.index,
    )
    for i, name in enumerate(covariates):
        frame[f"_x{i}"] = data[name]
    if cluster is not None:
        frame["_cluster"] = data[cluster]
    frame = frame.dropna()
    rhs = " + ".join(
        ["_treated", "_post", "_treated:_post", *(f"_x{i}" for i in range(len(covariates)))]
    )
    y, x, terms, _ = design_matrices(
        f"_y ~ {rhs}", frame, eval_env=patsy.EvalEnvironment.capture(0), drop_intercept=False
    )
    renames = {"_treated": treated, "_post": post, "_treated:_post": f"{treated}:{post}"}
    renames |= {f"_x{i}": name for i, name in enumerate(covariates)}
    terms = [_rename_term(t, renames) for t in terms]
    cluster_codes = None if cluster is None else encode_groups(frame["_cluster"])[0]
    fit = fit_linear(y, x, terms, cluster=cluster_codes, cluster_name=cluster)
    coefficients = _tidy_from_fit(fit, conf_level)
    att_term = f"{treated}:{post}"
    row = coefficients.set_index("term").loc[att_term]
    return DidResult(
        att=float(row.estimate),
        std_error=float(row.std_error),
        att_term=att_term,
        coefficients=coefficients,
        se_type=fit.se_type,
        n_obs=fit.n_obs,
        n_clusters=fit.n_clusters,
        df=fit.df,
        conf_level=conf_level,
    )


def _rename_term(term: str, renames: dict[str, str]) -> str:
    if term in renames:
        return renames[term]
    # categorical covariates come back as "_x0[T.level]"
    for old, new in renames.items():
        if term.startswith(old + "["):
            return new + term[len(old) :]
    return term


@dataclass(frozen=True, eq=False)
class TwfeResult(EstimatorResult):
    """A linear model with unit and time fixed effects absorbed."""

    coefficients: pd.DataFrame
    covariance: pd.DataFrame
    se_type: str
    n_obs: int
    n_units: int
    n_times: int
    n_clusters: int | None
    df: float | None
    formula: str
    conf_level: float = 0.95

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom table of the slope coefficients (fixed effects are not reported)."""
        return _tidy_at(self.coefficients, conf_level, self.df)

    def summary(self) -> str:
        """Text summary stating the fixed effects absorbed and the SE type."""
        return (
            f"Two-way fixed effects OLS: {self.formula}\n"
            f"Absorbed: {self.n_units} unit and {self.n_times} time fixed effects; "
            f"observations: {self.n_obs}\n"
            f"Standard errors: {self.se_type}\n\n" + _format_table(self.tidy())
        )


def fit_twfe(
    formula: str,
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    cluster: str | None = None,
    conf_level: float = 0.95,
) -> TwfeResult:
    """Linear regression with unit and time fixed effects absorbed (within estimator).

    Parameters
    ----------
    formula
        patsy formula without fixed effects, e.g. ``"y ~ treated_now + x1"``.
    data
        Long panel, one row per unit-time.
    unit, time
        Columns identifying the panel; both sets of dummies are absorbed.
    cluster
        Column to cluster on (often ``unit``). ``None`` gives classical standard
        errors: clustering is never implied, and ``summary()`` states which was used.
    conf_level
        Confidence level for intervals.

    Returns
    -------
    TwfeResult

    Notes
    -----
    Two-way within transformation by alternating projections (Gaure 2013), exact for
    unbalanced panels; degrees of freedom count the absorbed levels as R ``plm`` and
    ``fixest`` do (Baltagi 2021, *Econometric Analysis of Panel Data*, ch. 3).
    Clustered SEs follow fixest's defaults (CR1; fixed effects nested in the
    clusters dropped from K).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(50), 4), "t": np.tile(np.arange(4), 50)})
    >>> d["x"] = rng.normal(size=200)
    >>> d["y"] = 1.5 * d.x + d.id * 0.1 + d.t + rng.normal(0, 0.1, 200)
    >>> round(float(fit_twfe("y ~ x", d, unit="id", time="t").tidy().estimate[0]), 1)
    1.5
    """
    require_columns(data, [unit, time, cluster], role="fit_twfe")
    env = patsy.EvalEnvironment.capture(1)
    y, x, terms, kept = design_matrices(formula, data, eval_env=env, drop_intercept=True)
    rows = data.loc[kept]
    if rows[[unit, time]].isna().any().any():
        raise ValueError(f"columns {unit!r} and {time!r} must not contain missing values")
    unit_codes, n_units = encode_groups(rows[unit])
    time_codes, n_times = encode_groups(rows[time])
    cluster_codes = None
    if cluster is not None:
        if rows[cluster].isna().any():
            raise ValueError(f"cluster column {cluster!r} contains missing values")
        cluster_codes = encode_groups(rows[cluster])[0]
    fit = fit_linear(
        y, x, terms, absorb=(unit_codes, time_codes), cluster=cluster_codes, cluster_name=cluster
    )
    return TwfeResult(
        coefficients=_tidy_from_fit(fit, conf_level),
        covariance=pd.DataFrame(fit.covariance, index=fit.terms, columns=fit.terms),
        se_type=fit.se_type,
        n_obs=fit.n_obs,
        n_units=n_units,
        n_times=n_times,
        n_clusters=fit.n_clusters,
        df=fit.df,
        formula=formula,
        conf_level=conf_level,
    )


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

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom table of event-time coefficients, terms named ``event_time::<e>``."""
        return _tidy_at(self.coefficients, conf_level, self.df)

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
            f"({test.distribution}), p = {test.p_value:.4g}\n\n" + _format_table(self.tidy())
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
        data, [outcome, unit, time, first_treated, cluster, *covariates], role="fit_event_study"
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
    frame = data[columns].copy()
    frame = frame.dropna(subset=[c for c in columns if c != first_treated])
    never = never_treated_mask(frame[first_treated])
    if never.all():
        raise ValueError(f"no unit is ever treated: column {first_treated!r} is all 0/NaN/inf")
    event_time = (frame[time] - frame[first_treated].where(~never)).clip(low, high)
    event_times = [e for e in range(low, high + 1) if e != reference]
    dummies = np.column_stack([(event_time == e).to_numpy(float) for e in event_times])
    covariate_matrix = (
        frame[covariates].to_numpy(float) if covariates else np.empty((len(frame), 0))
    )
    x = np.column_stack([covariate_matrix, dummies])
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
    )
    table = _tidy_from_fit(fit, conf_level)
    n_cov = len(covariates)
    coefficients = table.iloc[n_cov:].reset_index(drop=True)
    coefficients.insert(1, "event_time", event_times)
    covariance = fit.covariance[n_cov:, n_cov:]
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
        window=(low, high),
        se_type=fit.se_type,
        n_obs=fit.n_obs,
        n_units=n_units,
        n_treated_units=int(frame.loc[~never, unit].nunique()),
        n_clusters=fit.n_clusters,
        df=fit.df,
        other_terms=table.iloc[:n_cov].reset_index(drop=True),
        conf_level=conf_level,
    )
