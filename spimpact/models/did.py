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

import pandas as pd
import patsy

from spimpact.models.did_event_study import EventStudyResult, PretrendTest, fit_event_study
from spimpact.models.did_fixed_effects import (
    design_matrices,
    encode_groups,
    require_columns,
)
from spimpact.models.did_honest import honest_did_relative_magnitude
from spimpact.models.did_stacked import StackedDidResult, fit_stacked_did
from spimpact.models.did_staggered import (
    AggregateResult,
    StaggeredDidResult,
    fit_staggered_did,
)
from spimpact.models.did_tables import (
    bootstrap_level,
    check_binary,
    format_table,
    tidy_at,
    tidy_from_fit,
    weights_of,
    wild_options,
)
from spimpact.models.linear_fit import fit_linear
from spimpact.models.result import EstimatorResult

__all__ = [
    "AggregateResult",
    "DidResult",
    "EventStudyResult",
    "PretrendTest",
    "StackedDidResult",
    "StaggeredDidResult",
    "TwfeResult",
    "fit_did_2x2",
    "fit_event_study",
    "fit_stacked_did",
    "fit_staggered_did",
    "fit_twfe",
    "honest_did_relative_magnitude",
]


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

    def _level(self, conf_level: float | None) -> float:
        return bootstrap_level(self, super()._level(conf_level))

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom table of all coefficients; the ATT row is ``att_term``."""
        return tidy_at(self.coefficients, conf_level, self.df)

    def summary(self) -> str:
        """Text summary naming the estimate and the type of standard error."""
        row = self.tidy().set_index("term").loc[self.att_term]
        return (
            "Difference-in-differences (2x2, OLS)\n"
            f"ATT ({self.att_term}): {self.att:.6g} (SE {self.std_error:.6g}), "
            f"{self.conf_level:.0%} CI {row.conf_low:.6g} to {row.conf_high:.6g}\n"
            f"Standard errors: {self.se_type}; observations: {self.n_obs}\n\n"
            + format_table(self.tidy())
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
    weights: str | None = None,
    se: str | None = None,
    bootstrap_draws: int = 9999,
    bootstrap_weights: str = "rademacher",
    seed: int | None = 0,
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
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> d = pd.DataFrame({"g": np.repeat([0, 1], 200), "p": np.tile([0, 1], 200)})
    >>> d["y"] = 1 + 0.5 * d.g + 0.3 * d.p + 2.0 * d.g * d.p + rng.normal(0, 0.1, 400)
    >>> round(fit_did_2x2(d, outcome="y", treated="g", post="p").att, 1)
    2.0
    """
    covariates = list(covariates or [])
    require_columns(
        data, [outcome, treated, post, cluster, weights, *covariates], role="fit_did_2x2"
    )
    frame = pd.DataFrame(
        {
            "_y": pd.to_numeric(data[outcome], errors="raise"),
            "_treated": check_binary(data, treated),
            "_post": check_binary(data, post),
        },
        index=data.index,
    )
    for i, name in enumerate(covariates):
        frame[f"_x{i}"] = data[name]
    if cluster is not None:
        frame["_cluster"] = data[cluster]
    if weights is not None:
        frame["_weight"] = data[weights]
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
    fit = fit_linear(
        y,
        x,
        terms,
        cluster=cluster_codes,
        cluster_name=cluster,
        weights=weights_of(frame, "_weight" if weights else None, role="fit_did_2x2"),
        se=se,
        conf_level=conf_level,
        wild=wild_options(bootstrap_draws, bootstrap_weights, seed),
    )
    coefficients = tidy_from_fit(fit, conf_level)
    att_term = f"{treated}:{post}"
    row = coefficients.set_index("term").loc[att_term]
    att_df = fit.df if fit.term_df is None else float(row["df"])
    return DidResult(
        att=float(row.estimate),
        std_error=float(row.std_error),
        att_term=att_term,
        coefficients=coefficients,
        se_type=fit.se_type,
        n_obs=fit.n_obs,
        n_clusters=fit.n_clusters,
        df=att_df,
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

    def _level(self, conf_level: float | None) -> float:
        return bootstrap_level(self, super()._level(conf_level))

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom table of the slope coefficients (fixed effects are not reported)."""
        return tidy_at(self.coefficients, conf_level, self.df)

    def summary(self) -> str:
        """Text summary stating the fixed effects absorbed and the SE type."""
        return (
            f"Two-way fixed effects OLS: {self.formula}\n"
            f"Absorbed: {self.n_units} unit and {self.n_times} time fixed effects; "
            f"observations: {self.n_obs}\n"
            f"Standard errors: {self.se_type}\n\n" + format_table(self.tidy())
        )


def fit_twfe(
    formula: str,
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    cluster: str | None = None,
    conf_level: float = 0.95,
    weights: str | None = None,
    se: str | None = None,
    bootstrap_draws: int = 9999,
    bootstrap_weights: str = "rademacher",
    seed: int | None = 0,
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
    TwfeResult

    Notes
    -----
    Two-way within transformation, exact for unbalanced panels: closed form on a balanced
    panel, else the period effects' normal equations solved with the unit effects
    concentrated out, or alternating projections (Gaure 2013) when the smaller factor
    has many levels (:func:`~spimpact.models.did_fixed_effects.demean`); for panels too
    large to collect see :func:`~spimpact.models.cell_fits.fit_twfe_from_cells`. Degrees
    of freedom count the absorbed levels as R ``plm`` and
    ``fixest`` do (Baltagi 2021, *Econometric Analysis of Panel Data*, ch. 3).
    Clustered SEs follow fixest's defaults (CR1; fixed effects nested in the
    clusters dropped from K).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(50), 4), "t": np.tile(np.arange(4), 50)})
    >>> d["x"] = rng.normal(size=200)
    >>> d["y"] = 1.5 * d.x + d.id * 0.1 + d.t + rng.normal(0, 0.1, 200)
    >>> round(float(fit_twfe("y ~ x", d, unit="id", time="t").tidy().estimate[0]), 1)
    1.5
    """
    require_columns(data, [unit, time, cluster, weights], role="fit_twfe")
    env = patsy.EvalEnvironment.capture(1)
    y, x, terms, kept = design_matrices(formula, data, eval_env=env, drop_intercept=True)
    # patsy keeps every row when none has a missing value: no copy of the panel then
    rows = data if len(kept) == len(data) else data.loc[kept]
    if rows[unit].isna().any() or rows[time].isna().any():
        raise ValueError(f"columns {unit!r} and {time!r} must not contain missing values")
    unit_codes, n_units = encode_groups(rows[unit])
    time_codes, n_times = encode_groups(rows[time])
    cluster_codes = None
    if cluster is not None:
        if rows[cluster].isna().any():
            raise ValueError(f"cluster column {cluster!r} contains missing values")
        cluster_codes = encode_groups(rows[cluster])[0]
    fit = fit_linear(
        y,
        x,
        terms,
        absorb=(unit_codes, time_codes),
        cluster=cluster_codes,
        cluster_name=cluster,
        weights=weights_of(rows, weights, role="fit_twfe"),
        se=se,
        conf_level=conf_level,
        wild=wild_options(bootstrap_draws, bootstrap_weights, seed),
    )
    return TwfeResult(
        coefficients=tidy_from_fit(fit, conf_level),
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
