"""Multiple imputation by chained equations and Rubin's rules.

``impute_mice`` completes a data set ``m`` times (predictive mean matching for
continuous columns, logistic or multinomial draws for categories), ``pool_analyses``
runs an analysis on each completed copy and pools it by Rubin's rules
(``pool_rubin``), and ``fit_mice`` does both, as ``mice()``, ``with()`` and ``pool()``
do in R. Generic: any DataFrame and column names.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy

# --------------------------------------------------------------------------------------
# Rubin's rules
# --------------------------------------------------------------------------------------


def pool_rubin(estimates, variances, *, dfcom: float | None = None) -> pd.DataFrame:
    """Combine ``m`` complete-data estimates by Rubin's rules, as ``mice::pool()`` does.

    Parameters
    ----------
    estimates, variances
        ``m`` estimates and their squared standard errors: 1-D (one parameter) or
        ``(m, p)``; a DataFrame's columns name the terms (a Series' name names its one
        term).
    dfcom
        Degrees of freedom of the complete-data analysis (e.g. ``n - k`` for OLS), one
        number or one per term; ``None`` means a large sample (``dfcom = Inf`` in
        mice), for which the Barnard-Rubin degrees of freedom reduce to Rubin's
        ``(m - 1) / lambda^2``.

    Returns
    -------
    pandas.DataFrame
        One row per term with ``term, m, estimate, std_error, ubar, b, t, dfcom, df,
        riv, lambda, fmi``: ``ubar`` mean within-imputation variance, ``b`` between-
        imputation variance, ``t = ubar + (1 + 1/m) b``, ``std_error = sqrt(t)``,
        ``riv = (1 + 1/m) b / ubar``, ``lambda = (1 + 1/m) b / t``, ``df`` Barnard-Rubin,
        ``fmi = (riv + 2 / (df + 3)) / (riv + 1)``.

    Notes
    -----
    Rubin DB (1987), *Multiple Imputation for Nonresponse in Surveys*, p. 76; Barnard J,
    Rubin DB (1999), Biometrika 86:948-955; the definitions of ``mice::pool()`` and
    ``mice:::barnard.rubin()`` (mice 3.x; van Buuren, *Flexible Imputation of Missing
    Data*, 2nd ed., §2.3-2.4).

    Examples
    --------
    >>> pooled = pool_rubin([-1.5457, -1.428], [0.9723**2, 1.041**2], dfcom=23)
    >>> round(float(pooled["df"].iloc[0]), 3)
    20.97
    """
    q = _as_matrix(estimates, "estimates")
    u = _as_matrix(variances, "variances")
    if q.shape != u.shape:
        raise ValueError(f"estimates {q.shape} and variances {u.shape} must have the same shape")
    m = q.shape[0]
    if m < 2:
        raise ValueError(f"Rubin's rules need at least 2 imputations, got {m}")
    if (u.to_numpy() < 0).any() or not np.isfinite(u.to_numpy()).all():
        raise ValueError("variances must be finite and non-negative")
    dfcom = (
        np.full(q.shape[1], np.inf)
        if dfcom is None
        else np.broadcast_to(np.asarray(dfcom, dtype=float), (q.shape[1],))
    )
    if not (dfcom > 0).all():
        raise ValueError(f"dfcom must be positive, got {dfcom}")
    qbar = q.mean(axis=0).to_numpy()
    ubar = u.mean(axis=0).to_numpy()
    b = q.var(axis=0, ddof=1).to_numpy()
    t = ubar + (1 + 1 / m) * b
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = (1 + 1 / m) * b / t
        riv = (1 + 1 / m) * b / ubar
        df = _barnard_rubin(m, lam, dfcom)
        fmi = (riv + 2 / (df + 3)) / (riv + 1)
    return pd.DataFrame(
        {
            "term": [str(c) for c in q.columns],
            "m": m,
            "estimate": qbar,
            "std_error": np.sqrt(t),
            "ubar": ubar,
            "b": b,
            "t": t,
            "dfcom": dfcom,
            "df": df,
            "riv": riv,
            "lambda": lam,
            "fmi": fmi,
        }
    )


def _barnard_rubin(m: int, lam: np.ndarray, dfcom: np.ndarray) -> np.ndarray:
    dfold = (m - 1) / lam**2
    # mice's algebraically rearranged form: finite as lambda -> 0
    finite = np.where(np.isinf(dfcom), 1.0, dfcom)
    tmp = (1 - lam) * (1 + finite) * finite
    adjusted = (m - 1) * tmp / ((finite + 3) * (m - 1) + lam**2 * tmp)
    return np.where(np.isinf(dfcom), dfold, adjusted)


def _as_matrix(values, name: str) -> pd.DataFrame:
    if isinstance(values, pd.DataFrame):
        return values.astype(float)
    if isinstance(values, pd.Series):
        return (
            values.astype(float)
            .to_frame(values.name if values.name is not None else "estimate")
            .reset_index(drop=True)
        )
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        return pd.DataFrame({"estimate": array})
    if array.ndim == 2:
        return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])
    raise ValueError(f"{name} must be 1-D or 2-D, got {array.ndim} dimensions")


# --------------------------------------------------------------------------------------
# Multiple imputation by chained equations
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Imputations:
    """``m`` completed copies of a data set from chained equations.

    Attributes
    ----------
    datasets
        The completed data sets (all original columns, same index and order).
    missing
        Boolean frame, True where a value was imputed.
    methods
        Imputation method per incomplete column (``"pmm"`` or ``"logreg"``/``"polyreg"``).
    seed, max_iter, donors
        Settings used.
    """

    datasets: tuple[pd.DataFrame, ...]
    missing: pd.DataFrame
    methods: dict
    seed: int | None
    max_iter: int
    donors: int
    diagnostics: tuple[str, ...] = ()

    @property
    def m(self) -> int:
        """Number of imputed data sets."""
        return len(self.datasets)

    def shifted(self, column: str, delta: float, rows=None) -> tuple[pd.DataFrame, ...]:
        """Completed data sets with ``delta`` added to the imputed values of ``column``.

        ``rows`` (a boolean mask over the rows) restricts the shift further, e.g. to one
        follow-up time point.
        """
        if column not in self.missing.columns:
            raise ValueError(f"column {column!r} was not part of the imputation")
        mask = self.missing[column].to_numpy()
        if rows is not None:
            mask = mask & np.asarray(rows, dtype=bool)
        out = []
        for frame in self.datasets:
            frame = frame.copy()
            frame.loc[mask, column] = frame.loc[mask, column] + delta
            out.append(frame)
        return tuple(out)


def impute_mice(
    data: pd.DataFrame,
    *,
    m: int = 20,
    max_iter: int = 10,
    seed: int | np.random.Generator | None = None,
    donors: int = 5,
    columns: Sequence[str] | None = None,
) -> Imputations:
    """Impute missing values by chained equations (fully conditional specification).

    Continuous (numeric, non-boolean) columns are imputed by predictive mean matching;
    categorical columns (object, category or boolean dtype) by a logistic (two levels)
    or multinomial logistic (more levels) model with coefficients drawn from their
    approximate posterior. Every column in ``columns`` predicts every other; columns
    outside ``columns`` (e.g. an identifier) are carried along untouched.

    Parameters
    ----------
    data
        The data, one row per unit (wide format for repeated measures).
    m
        Number of imputed data sets.
    max_iter
        Iterations of the chained equations per data set.
    seed
        Seed or generator; the same seed gives the same imputations.
    donors
        Donor pool size for predictive mean matching (mice's default 5).
    columns
        Columns taking part in the imputation; default all.

    Returns
    -------
    Imputations

    Notes
    -----
    van Buuren S (2018), *Flexible Imputation of Missing Data*, 2nd ed., Algorithm 3.1
    (Bayesian linear regression draw) and 3.3 (predictive mean matching, type 1 matching
    as in ``mice.impute.pmm``: observed rows predicted with the least-squares estimate,
    missing rows with the drawn coefficients, a random donor among the ``donors``
    closest); §4.5 (fully conditional specification), starting from random draws of the
    observed values as ``mice()`` does. Categorical columns: a draw of the logistic /
    multinomial coefficients from their normal approximation (cf. ``mice.impute.logreg``,
    ``mice.impute.polyreg``).

    Examples
    --------
    >>> df = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6], "y": [1.1, np.nan, 3.2, 3.9, np.nan, 6.1]})
    >>> imp = impute_mice(df, m=2, max_iter=2, seed=1)
    >>> imp.m, int(imp.datasets[0]["y"].isna().sum())
    (2, 0)
    """
    if m < 1 or max_iter < 1 or donors < 1:
        raise ValueError(f"m, max_iter and donors must be positive, got {m}, {max_iter}, {donors}")
    columns = list(data.columns if columns is None else columns)
    unknown = [c for c in columns if c not in data.columns]
    if unknown:
        raise ValueError(f"columns not in the data: {unknown}")
    kinds = {}
    for column in columns:
        series = data[column]
        if series.notna().sum() == 0:
            raise ValueError(f"column {column!r} has no observed values to impute from")
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            kinds[column] = "categorical"
        else:
            kinds[column] = "continuous"
    missing = data[columns].isna()
    incomplete = [c for c in columns if missing[c].any()]
    methods = {
        c: (
            "pmm"
            if kinds[c] == "continuous"
            else ("logreg" if data[c].nunique() == 2 else "polyreg")
        )
        for c in incomplete
    }
    rng = np.random.default_rng(seed)
    diagnostics: set[str] = set()
    # complete predictors never change: build their design columns once
    complete_parts = {
        c: (
            data[c].to_numpy(dtype=float)[:, None]
            if kinds[c] == "continuous"
            else _dummies(data[c])
        )
        for c in columns
        if c not in incomplete
    }
    datasets = []
    for _ in range(m):
        frame = data.copy()
        for column in incomplete:
            observed = data[column].dropna().to_numpy()
            mask = missing[column].to_numpy()
            frame.loc[mask, column] = rng.choice(observed, size=int(mask.sum()), replace=True)
        for _ in range(max_iter):
            for column in incomplete:
                mask = missing[column].to_numpy()
                predictors = _design(
                    frame, [c for c in columns if c != column], kinds, complete_parts
                )
                if kinds[column] == "continuous":
                    frame.loc[mask, column] = _impute_pmm(
                        frame[column].to_numpy(dtype=float), predictors, mask, donors, rng
                    )
                else:
                    frame.loc[mask, column] = _impute_categorical(
                        frame[column], predictors, mask, rng, column, diagnostics
                    )
        datasets.append(frame)
    return Imputations(
        datasets=tuple(datasets),
        missing=missing,
        methods=methods,
        seed=seed if isinstance(seed, int) else None,
        max_iter=max_iter,
        donors=donors,
        diagnostics=tuple(sorted(diagnostics)),
    )


def _design(frame: pd.DataFrame, predictors: list[str], kinds: dict, fixed: dict) -> np.ndarray:
    parts = [np.ones((len(frame), 1))]
    for column in predictors:
        if column in fixed:
            parts.append(fixed[column])
        elif kinds[column] == "continuous":
            parts.append(frame[column].to_numpy(dtype=float)[:, None])
        else:
            parts.append(_dummies(frame[column]))
    return np.hstack(parts)


def _dummies(values: pd.Series) -> np.ndarray:
    return pd.get_dummies(values.astype("category"), drop_first=True, dtype=float).to_numpy()


def _informative(x_obs: np.ndarray) -> np.ndarray:
    """Columns to keep: the intercept and predictors that vary among the observed rows.

    A category absent from the observed rows gives an all-zero column, which no ridge
    penalty proportional to the diagonal can rescue (mice drops such columns too).
    """
    keep = x_obs.std(axis=0) > 0
    keep[0] = True
    return keep


def _impute_pmm(y, x, mask, donors, rng) -> np.ndarray:
    x = x[:, _informative(x[~mask])]
    x_obs, y_obs = x[~mask], y[~mask]
    beta_hat, beta_draw = _norm_draw(y_obs, x_obs, rng)
    yhat_obs = x_obs @ beta_hat
    yhat_mis = x[mask] @ beta_draw
    k = min(donors, len(y_obs))
    # The k nearest observed predictions lie within k places either side of where the
    # missing row's prediction falls in the sorted observed predictions: compare those
    # 2k candidates only (O(n log n), where a full distance matrix is O(n_obs n_mis)).
    order = np.argsort(yhat_obs, kind="stable")
    sorted_obs = yhat_obs[order]
    position = np.searchsorted(sorted_obs, yhat_mis)
    start = np.clip(position - k, 0, len(sorted_obs) - 2 * k if len(sorted_obs) > 2 * k else 0)
    window = start[:, None] + np.arange(min(2 * k, len(sorted_obs)))[None, :]
    distance = np.abs(sorted_obs[window] - yhat_mis[:, None])
    # a tiny random jitter breaks ties between equal distances at random, as mice does
    distance += rng.uniform(0, 1e-9, size=distance.shape)
    nearest = np.take_along_axis(window, np.argsort(distance, axis=1)[:, :k], axis=1)
    chosen = nearest[np.arange(len(yhat_mis)), rng.integers(0, k, size=len(yhat_mis))]
    return y_obs[order[chosen]]


def _norm_draw(y, x, rng, ridge: float = 1e-5):
    # van Buuren (2018) Algorithm 3.1 with mice's ridge penalty for stability
    xtx = x.T @ x
    penalty = ridge * np.diag(np.diag(xtx))
    v = np.linalg.inv(xtx + penalty)
    v = (v + v.T) / 2
    beta_hat = v @ x.T @ y
    residual = y - x @ beta_hat
    df = max(len(y) - x.shape[1], 1)
    sigma = np.sqrt(residual @ residual / rng.chisquare(df))
    beta_draw = beta_hat + sigma * (
        np.linalg.cholesky(v + 1e-12 * np.eye(len(v))) @ rng.standard_normal(x.shape[1])
    )
    return beta_hat, beta_draw


def _impute_categorical(series, x, mask, rng, column, diagnostics) -> np.ndarray:
    import statsmodels.api as sm

    x = x[:, _informative(x[~mask])]
    observed = series[~mask]
    levels = np.sort(observed.unique())
    codes = np.searchsorted(levels, observed.to_numpy())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = sm.MNLogit(codes, x[~mask]).fit(disp=0, maxiter=100)
    params = fit.params.to_numpy() if hasattr(fit.params, "to_numpy") else np.asarray(fit.params)
    cov = np.asarray(fit.cov_params())
    if caught or not np.isfinite(cov).all():
        diagnostics.add(
            f"The imputation model for {column!r} was unstable (sparse categories); its "
            "imputations use the point estimates without parameter uncertainty."
        )
        draw = params
    else:
        draw = rng.multivariate_normal(params.ravel(order="F"), cov, method="eigh").reshape(
            params.shape, order="F"
        )
    eta = np.column_stack([np.zeros(mask.sum()), x[mask] @ draw])
    prob = np.exp(eta - eta.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    u = rng.random(mask.sum())[:, None]
    index = (prob.cumsum(axis=1) < u).sum(axis=1)
    return levels[np.minimum(index, len(levels) - 1)]


@dataclass(frozen=True)
class MiResult(EstimatorResult):
    """An analysis repeated on each imputed data set and pooled by Rubin's rules.

    ``tidy(conf_level=None)`` gives the pooled estimates with Barnard-Rubin t
    p-values and intervals; ``plot()`` each imputation's estimate beside the pooled one.

    Attributes
    ----------
    pooled
        ``pool_rubin`` output (``term, m, estimate, std_error, ubar, b, t, dfcom, df,
        riv, lambda, fmi``).
    per_imputation
        ``imputation, term, estimate, std_error`` of every analysis.
    conf_level
        Level of the intervals ``tidy()`` gives by default.
    diagnostics
        Plain-English notes from the imputation (e.g. unstable imputation models).
    """

    pooled: pd.DataFrame
    per_imputation: pd.DataFrame
    conf_level: float
    diagnostics: tuple[str, ...] = field(default=())

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Pooled estimates with Barnard-Rubin t-based p-values and intervals."""
        df = self.pooled["df"].to_numpy()
        return make_tidy(
            self.pooled["term"],
            self.pooled["estimate"],
            self.pooled["std_error"],
            conf_level=conf_level,
            df=np.where(np.isfinite(df), df, 1e12),
        )

    def summary(self) -> str:
        """Text summary for people."""
        m = int(self.pooled["m"].iloc[0])
        table = self.tidy().merge(self.pooled[["term", "df", "fmi"]], on="term")
        return "\n".join(
            [
                f"Multiple imputation, m = {m}, pooled by Rubin's rules (Barnard-Rubin df)",
                table.to_string(index=False, float_format=lambda v: f"{v:.4f}"),
                *self.diagnostics,
            ]
        )

    def plot(self, ax=None):
        """Per-imputation estimates with the pooled estimate and interval, per term."""
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 0.6 + 0.5 * len(self.pooled)))
        tidy = self.tidy()
        positions = np.arange(len(tidy))
        for i, term in enumerate(tidy["term"]):
            values = self.per_imputation.loc[self.per_imputation["term"] == term, "estimate"]
            ax.scatter(values, np.full(len(values), i + 0.15), s=8, color="#999999")
        ax.errorbar(
            tidy["estimate"],
            positions,
            xerr=[tidy["estimate"] - tidy["conf_low"], tidy["conf_high"] - tidy["estimate"]],
            fmt="o",
            color="black",
        )
        ax.set_yticks(positions, tidy["term"])
        ax.set_xlabel("estimate (grey: each imputation)")
        return ax


def pool_analyses(
    datasets: Sequence[pd.DataFrame],
    analysis: Callable[[pd.DataFrame], object],
    *,
    dfcom: float | str | None = None,
    conf_level: float = 0.95,
) -> MiResult:
    """Run ``analysis`` on each completed data set and pool its estimates by Rubin's rules.

    ``analysis`` returns either a result with ``.tidy()`` or a DataFrame with ``term,
    estimate, std_error`` (and ``df`` where the analysis has small-sample degrees of
    freedom); for mixed-model tidy tables (with an ``effect`` column) only the fixed
    effects are pooled. ``dfcom="analysis"`` takes each term's complete-data degrees of
    freedom from the analyses' ``df`` column (their mean over the imputations, as rbmi
    does for its ANCOVA).
    """
    tidies = [_as_tidy(analysis(frame)) for frame in datasets]
    if isinstance(dfcom, str):
        if dfcom != "analysis":
            raise ValueError(f"dfcom must be a number, None or 'analysis', got {dfcom!r}")
        if any("df" not in tidy.columns for tidy in tidies):
            raise ValueError("dfcom='analysis' needs a 'df' column in the analysis output")
        dfcom = np.mean([tidy["df"].to_numpy(dtype=float) for tidy in tidies], axis=0)
    terms = [str(t) for t in tidies[0]["term"]]
    if any([str(t) for t in tidy["term"]] != terms for tidy in tidies):
        raise ValueError("the analysis did not return the same terms on every imputed data set")
    estimates = np.array([tidy["estimate"].to_numpy(dtype=float) for tidy in tidies])
    std_errors = np.array([tidy["std_error"].to_numpy(dtype=float) for tidy in tidies])
    pooled = pool_rubin(
        pd.DataFrame(estimates, columns=terms),
        pd.DataFrame(std_errors**2, columns=terms),
        dfcom=dfcom,
    )
    per = pd.DataFrame(
        {
            "imputation": np.repeat(np.arange(1, len(tidies) + 1), len(terms)),
            "term": terms * len(tidies),
            "estimate": estimates.ravel(),
            "std_error": std_errors.ravel(),
        }
    )
    return MiResult(pooled=pooled, per_imputation=per, conf_level=conf_level)


def _as_tidy(result) -> pd.DataFrame:
    tidy = result.tidy() if hasattr(result, "tidy") else result
    if not isinstance(tidy, pd.DataFrame) or not {"term", "estimate", "std_error"} <= set(tidy):
        raise ValueError(
            "analysis must return a result with .tidy() or a DataFrame with columns "
            "term, estimate, std_error"
        )
    if "effect" in tidy.columns:
        tidy = tidy[tidy["effect"] == "fixed"]
    columns = ["term", "estimate", "std_error"] + (["df"] if "df" in tidy.columns else [])
    return tidy[columns].reset_index(drop=True)


def fit_mice(
    data: pd.DataFrame,
    analysis: Callable[[pd.DataFrame], object],
    *,
    m: int = 20,
    max_iter: int = 10,
    seed: int | np.random.Generator | None = None,
    donors: int = 5,
    columns: Sequence[str] | None = None,
    dfcom: float | None = None,
    conf_level: float = 0.95,
) -> MiResult:
    """Impute by chained equations (``impute_mice``), analyse each data set, pool.

    See ``impute_mice`` for the imputation and ``pool_rubin`` for the pooling.

    Notes
    -----
    van Buuren S (2018), *Flexible Imputation of Missing Data*, 2nd ed., §5.1 (the
    impute-analyse-pool workflow of ``mice()``, ``with()``, ``pool()``).

    Examples
    --------
    >>> import statsmodels.formula.api as smf
    >>> rng = np.random.default_rng(3)
    >>> df = pd.DataFrame({"x": rng.normal(size=60)})
    >>> df["y"] = df.x + rng.normal(size=60)
    >>> df.loc[:9, "y"] = np.nan
    >>> def ols(d):
    ...     fit = smf.ols("y ~ x", d).fit()
    ...     return pd.DataFrame({"term": fit.params.index, "estimate": fit.params,
    ...                          "std_error": fit.bse})
    >>> fit_mice(df, ols, m=3, max_iter=3, seed=1).tidy().shape[0]
    2
    """
    imputations = impute_mice(
        data, m=m, max_iter=max_iter, seed=seed, donors=donors, columns=columns
    )
    result = pool_analyses(imputations.datasets, analysis, dfcom=dfcom, conf_level=conf_level)
    return MiResult(
        pooled=result.pooled,
        per_imputation=result.per_imputation,
        conf_level=conf_level,
        diagnostics=imputations.diagnostics,
    )
