"""Linear mixed models with one grouping factor: fast exact fits and emmeans-style means.

``fit_mixed`` fits a random intercept, or a random intercept and one random slope,
by the exact profiled likelihood in :mod:`spimpact.models.mixed_profiled` (one
vectorised pass over the data plus a low-dimensional optimisation). Any other
random-effects structure is fitted by statsmodels ``MixedLM``, which also serves
as the test oracle for the fast path.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import patsy
import statsmodels.formula.api as smf
from statsmodels.tools.sm_exceptions import ConvergenceWarning

import spimpact.models.mixed_formula as mixed_formula
import spimpact.models.mixed_profiled as mixed_profiled
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import MIXED_TIDY_COLUMNS, make_tidy

# lme4 warns below 5 levels of a grouping factor (lmerControl check.nlev.gtreq.5):
# the between-group variance is then estimated from too few groups to trust.
MIN_GROUPS = 5


# eq=False: the fields hold arrays and frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class MixedResult(EstimatorResult):
    """A fitted linear mixed model (read-only).

    Attributes
    ----------
    formula, group, re_formula, reml
        The call that produced the fit.
    fixed_names
        Names of the fixed-effect coefficients (patsy naming, e.g. ``C(timepoint)[T.1]``).
    coef, vcov
        Fixed-effect estimates (an array, in ``fixed_names`` order; ``tidy()`` gives
        them by term) and their covariance matrix.
    random_names
        Names of the random effects, ``("(Intercept)",)`` or ``("(Intercept)", slope)``.
    random_cov
        Covariance matrix of the random effects.
    sigma2
        Residual variance.
    loglik
        Log-likelihood at the optimum; the restricted log-likelihood under REML.
    n_obs, n_groups
        Rows and groups used (rows with a missing value in any model variable are dropped).
    converged
        Whether the optimiser reported convergence (after retries).
    diagnostics
        Plain-English sentences about problems with the fit; empty when none.
    engine
        ``"profiled"`` (exact fast path) or ``"statsmodels"`` (general fallback).
    conf_level
        Default level of the intervals of ``tidy``, ``marginal_means``, ``contrasts``
        and ``plot``.
    """

    formula: str
    group: str
    re_formula: str | None
    reml: bool
    fixed_names: tuple[str, ...]
    # field(): without it the dataclass would take the base class's coef() method as
    # this field's default; the array shadows that method on every instance.
    coef: np.ndarray = field()
    vcov: np.ndarray
    random_names: tuple[str, ...]
    random_cov: np.ndarray
    sigma2: float
    loglik: float
    n_obs: int
    n_groups: int
    converged: bool
    diagnostics: tuple[str, ...]
    engine: str
    _design_info: patsy.DesignInfo = field(repr=False, compare=False)
    _grid_levels: dict = field(repr=False, compare=False)
    conf_level: float = 0.95

    @property
    def n_params(self) -> int:
        """Fixed effects plus covariance parameters plus the residual variance."""
        q = len(self.random_names)
        return len(self.fixed_names) + q * (q + 1) // 2 + 1

    @property
    def aic(self) -> float:
        """Akaike information criterion, -2 loglik + 2 k."""
        return -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> float:
        """Bayesian information criterion.

        Under REML the effective sample size is n - p (Pinheiro & Bates 2000, as in
        nlme); under ML it is n (as in lme4 and nlme).
        """
        n = self.n_obs - len(self.fixed_names) if self.reml else self.n_obs
        return -2 * self.loglik + np.log(n) * self.n_params

    @property
    def std_errors(self) -> np.ndarray:
        """Standard errors of the fixed effects."""
        return np.sqrt(np.diag(self.vcov))

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Fixed effects and variance parameters in the broom.mixed layout.

        Fixed effects carry Wald z statistics, p-values and intervals (normal
        reference: the analyses here have hundreds of groups; for very few groups
        the intervals are too narrow). Variance parameters are standard
        deviations and correlations with no standard error, as broom.mixed gives
        for lme4 fits.
        """
        fixed = make_tidy(self.fixed_names, self.coef, self.std_errors, conf_level=conf_level)
        fixed.insert(0, "effect", "fixed")
        fixed.insert(1, "group", pd.NA)
        sd = np.sqrt(np.diag(self.random_cov))
        terms = [f"sd__{name}" for name in self.random_names]
        estimates = list(sd)
        for (i, a), (j, b) in itertools.combinations(enumerate(self.random_names), 2):
            terms.append(f"cor__{a}.{b}")
            with np.errstate(invalid="ignore", divide="ignore"):
                estimates.append(self.random_cov[i, j] / (sd[i] * sd[j]))
        terms.append("sd__Observation")
        estimates.append(np.sqrt(self.sigma2))
        groups = [self.group] * (len(terms) - 1) + ["Residual"]
        ran_pars = pd.DataFrame(
            {
                "effect": "ran_pars",
                "group": groups,
                "term": terms,
                "estimate": estimates,
            }
        )
        out = pd.concat([fixed, ran_pars], ignore_index=True)
        return out.reindex(columns=list(MIXED_TIDY_COLUMNS))

    def marginal_means(self, term: str, *, by: str | None = None, conf_level: float | None = None):
        """Estimated marginal means at each level of the variable ``term``.

        Numeric covariates are held at their mean and the other categorical
        variables are averaged with equal weights, as emmeans does by default
        (Lenth, emmeans; Searle, Speed & Milliken 1980 "population marginal means").
        With ``by``, means are given separately at each level of that variable
        (emmeans' ``~ term | by``). ``conf_level`` defaults to the fitted level.

        Returns
        -------
        pandas.DataFrame
            Columns ``term, level, [by, by_level,] estimate, std_error, statistic,
            p_value, conf_low, conf_high``, one row per level (per ``by`` level).
        """
        conf_level = self._level(conf_level)
        frames = []
        for by_level in self._by_levels(by):
            levels, weights = self._marginal_rows(term, by, by_level)
            estimate = weights @ self.coef
            std_error = np.sqrt(np.einsum("ij,jk,ik->i", weights, self.vcov, weights))
            out = make_tidy([term] * len(levels), estimate, std_error, conf_level=conf_level)
            out.insert(1, "level", levels)
            frames.append(_with_by(out, by, by_level))
        return pd.concat(frames, ignore_index=True)

    def contrasts(
        self,
        term: str,
        *,
        reference=None,
        by: str | None = None,
        conf_level: float | None = None,
    ) -> pd.DataFrame:
        """Differences in marginal means between each level of ``term`` and ``reference``.

        ``reference`` defaults to the first level (e.g. baseline, time point 0). With
        ``by``, the contrasts are estimated within each level of that variable.
        ``conf_level`` defaults to the fitted level.

        Returns
        -------
        pandas.DataFrame
            Columns ``term, level, reference, [by, by_level,] estimate, std_error,
            statistic, p_value, conf_low, conf_high``, one row per non-reference level.
        """
        conf_level = self._level(conf_level)
        frames = []
        for by_level in self._by_levels(by):
            levels, weights = self._marginal_rows(term, by, by_level)
            chosen = levels[0] if reference is None else reference
            if chosen not in levels:
                raise ValueError(
                    f"reference {chosen!r} is not a level of {term!r}; levels are {levels}"
                )
            ref_row = weights[levels.index(chosen)]
            keep = [i for i, level in enumerate(levels) if level != chosen]
            diff = weights[keep] - ref_row
            estimate = diff @ self.coef
            std_error = np.sqrt(np.einsum("ij,jk,ik->i", diff, self.vcov, diff))
            out = make_tidy([term] * len(keep), estimate, std_error, conf_level=conf_level)
            out.insert(1, "level", [levels[i] for i in keep])
            out.insert(2, "reference", chosen)
            frames.append(_with_by(out, by, by_level))
        return pd.concat(frames, ignore_index=True)

    def _by_levels(self, by: str | None) -> list:
        if by is None:
            return [None]
        self._check_variable(by)
        if self._grid_levels[by]["kind"] != "categorical":
            raise ValueError(f"by={by!r} must be a categorical variable of the formula")
        return list(self._grid_levels[by]["levels"])

    def _check_variable(self, term: str) -> None:
        if term not in self._grid_levels:
            raise ValueError(
                f"term {term!r} is not a variable of the fixed-effects formula "
                f"{self.formula!r}; variables are {sorted(self._grid_levels)}"
            )

    def _marginal_rows(self, term: str, by=None, by_level=None) -> tuple[list, np.ndarray]:
        self._check_variable(term)
        focal_levels = list(self._grid_levels[term]["levels"])
        others = {k: v for k, v in self._grid_levels.items() if k not in (term, by)}
        categorical = {k: v["levels"] for k, v in others.items() if v["kind"] == "categorical"}
        numeric = {k: v["mean"] for k, v in others.items() if v["kind"] == "numeric"}
        rows = []
        for level in focal_levels:
            combos = list(itertools.product(*categorical.values())) or [()]
            grid = pd.DataFrame(combos, columns=list(categorical))
            grid[term] = [level] * len(grid)
            if by is not None:
                grid[by] = [by_level] * len(grid)
            for name, mean in numeric.items():
                grid[name] = mean
            (design,) = patsy.build_design_matrices([self._design_info], grid)
            rows.append(np.asarray(design).mean(axis=0))
        return focal_levels, np.vstack(rows)

    def summary(self) -> str:
        """Text summary for people, in the spirit of lme4's print method."""
        method = "REML" if self.reml else "maximum likelihood"
        tidy = self.tidy()
        fixed = tidy[tidy.effect == "fixed"]
        ran = tidy[tidy.effect == "ran_pars"]
        lines = [
            f"Linear mixed model fit by {method} ({self.engine})",
            f"Formula: {self.formula}; random: {self.re_formula or '1'} | {self.group}",
            f"log-likelihood {self.loglik:.4f}, AIC {self.aic:.2f}, BIC {self.bic:.2f}",
            f"Observations: {self.n_obs}; groups ({self.group}): {self.n_groups}",
            "",
            "Random effects:",
        ]
        for row in ran.itertuples():
            lines.append(f"  {row.group:<12} {row.term:<32} {row.estimate:12.4f}")
        lines += ["", "Fixed effects:"]
        lines.append(f"  {'term':<32} {'estimate':>12} {'std_error':>12} {'z':>9}")
        for row in fixed.itertuples():
            lines.append(
                f"  {row.term:<32} {row.estimate:12.4f} {row.std_error:12.4f} {row.statistic:9.3f}"
            )
        if self.diagnostics:
            lines += ["", "Diagnostics:"] + [f"  - {text}" for text in self.diagnostics]
        return "\n".join(lines)

    def plot(self, ax=None, conf_level: float | None = None):
        """Forest plot of the fixed effects (intercept omitted) with confidence intervals."""
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.4 * len(self.fixed_names) + 1.5))
        conf_level = self._level(conf_level)
        tidy = self.tidy(conf_level=conf_level)
        fixed = tidy[(tidy.effect == "fixed") & (tidy.term != "Intercept")]
        positions = np.arange(len(fixed))[::-1]
        estimate = fixed.estimate.to_numpy()
        ax.errorbar(
            estimate,
            positions,
            xerr=[estimate - fixed.conf_low.to_numpy(), fixed.conf_high.to_numpy() - estimate],
            fmt="o",
            color="black",
            capsize=3,
        )
        ax.axvline(0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_yticks(positions, fixed.term)
        ax.set_xlabel(f"estimate ({round(conf_level * 100)}% CI)")
        return ax


def _with_by(frame: pd.DataFrame, by: str | None, by_level) -> pd.DataFrame:
    if by is None:
        return frame
    position = list(frame.columns).index("estimate")
    frame.insert(position, "by", by)
    frame.insert(position + 1, "by_level", [by_level] * len(frame))
    return frame


def fit_mixed(
    formula: str,
    data: pd.DataFrame,
    *,
    group: str,
    re_formula: str | None = None,
    reml: bool = True,
    conf_level: float = 0.95,
) -> MixedResult:
    """Fit a linear mixed model with one grouping factor.

    Parameters
    ----------
    formula
        Fixed-effects formula in patsy syntax, e.g. ``"score ~ C(timepoint) + age"``.
    data
        One row per observation; rows with a missing value in any model variable
        are dropped.
    group
        Column holding the group (e.g. client) identifier.
    re_formula
        Random-effects formula: ``None`` or ``"1"`` for a random intercept,
        ``"~ x"`` / ``"1 + x"`` for a correlated random intercept and slope on the
        numeric column ``x`` (both fitted by the exact fast path); anything else
        (e.g. ``"0 + x"`` or several slopes) is passed to statsmodels ``MixedLM``.
    reml
        Restricted maximum likelihood (default) or maximum likelihood.
    conf_level
        Default level of the result's intervals (``tidy``, ``contrasts`` ...).

    Returns
    -------
    MixedResult

    Notes
    -----
    The fast path maximises the profiled (restricted) likelihood exactly as lme4
    does (Bates, Maechler, Bolker & Walker 2015, J Stat Softw 67(1), eqs. 34-41),
    using per-group sufficient statistics: with a random intercept M_i is the
    scalar 1 + theta^2 n_i (Sherman-Morrison), with an intercept and slope it is a
    2x2 matrix whose Cholesky factor is written out and vectorised over groups.
    Fixed-effect covariance is sigma^2 (X' V^-1 X)^-1 given the variance
    parameters, as in lme4 and nlme. Covariance parameters are optimised with
    L-BFGS-B, polished with Nelder-Mead and retried with Powell when that fails.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> ids = np.repeat(np.arange(2000), 3)
    >>> frame = pd.DataFrame({"client_id": ids, "timepoint": np.tile([0, 1, 2], 2000)})
    >>> frame["score"] = (2 * frame.timepoint + rng.normal(size=2000)[ids]
    ...                   + rng.normal(size=6000))
    >>> res = fit_mixed("score ~ C(timepoint)", frame, group="client_id")
    >>> res.contrasts("timepoint").estimate.round(1).tolist()
    [2.0, 4.0]
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    if group not in data.columns:
        raise ValueError(f"group column {group!r} is not in data; columns are {list(data)}")
    if "~" not in formula:
        raise ValueError(f"formula must have a response, e.g. 'score ~ x'; got {formula!r}")
    variables = mixed_formula.formula_variables(formula, data)
    slope_terms = mixed_formula.random_terms(re_formula)
    fast = slope_terms is not None and len(slope_terms) <= 1
    extra = [t for t in (slope_terms or []) if t in data.columns]
    if re_formula is not None and not fast:
        extra = [n for n in mixed_formula.IDENTIFIER.findall(re_formula) if n in data.columns]
    used = list(dict.fromkeys([*variables, group, *extra]))
    frame = data[used].dropna().reset_index(drop=True)
    if frame.empty:
        raise ValueError("no complete rows: every row has a missing value in a model variable")
    if fast and slope_terms:
        slope = slope_terms[0]
        if slope not in frame.columns or not pd.api.types.is_numeric_dtype(frame[slope]):
            raise ValueError(
                f"random slope {slope!r} must be a numeric column of data "
                f"(re_formula={re_formula!r})"
            )
    grid_levels = mixed_formula.grid_levels(frame, variables[1:], formula)
    design_frame = mixed_formula.as_categories(frame, grid_levels)
    try:
        # Missing rows are already dropped; skipping patsy's per-value NA scan and
        # passing factors as pandas categoricals keeps the design step vectorised.
        y_frame, x_frame = patsy.dmatrices(
            formula, design_frame, return_type="dataframe", NA_action=patsy.NAAction(NA_types=[])
        )
    except patsy.PatsyError as error:
        raise ValueError(f"cannot build the design of formula {formula!r}: {error}") from None
    fixed_names = tuple(x_frame.columns)
    x = x_frame.to_numpy(dtype=float)
    y = y_frame.to_numpy(dtype=float).ravel()
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError(
            f"the fixed-effects design of {formula!r} is rank deficient (columns "
            f"{list(fixed_names)}): some term is constant or a combination of others"
        )
    codes, uniques = pd.factorize(frame[group])
    n_groups = len(uniques)
    q = 1 + len(slope_terms) if fast else None
    if n_groups < 2:
        raise ValueError(f"group column {group!r} has {n_groups} level(s); at least 2 needed")
    if fast and len(y) <= n_groups * q:
        raise ValueError(
            f"number of observations ({len(y)}) must exceed the number of random effects "
            f"({n_groups * q})"
        )
    if fast:
        fit = _fit_profiled(x, y, codes, frame, slope_terms, reml)
    else:
        fit = _fit_statsmodels(formula, frame, group, re_formula, reml, fixed_names)
    diagnostics = list(fit["diagnostics"])
    if n_groups < MIN_GROUPS:
        diagnostics.append(
            f"Only {n_groups} groups ({group}): the between-group variance is estimated "
            f"from fewer than {MIN_GROUPS} groups, so it and every standard error are "
            "unreliable."
        )
    return MixedResult(
        formula=formula,
        group=group,
        re_formula=re_formula,
        reml=reml,
        fixed_names=fixed_names,
        coef=fit["coef"],
        vcov=fit["vcov"],
        random_names=fit["random_names"],
        random_cov=fit["random_cov"],
        sigma2=fit["sigma2"],
        loglik=fit["loglik"],
        n_obs=len(y),
        n_groups=n_groups,
        converged=fit["converged"],
        diagnostics=tuple(diagnostics),
        engine="profiled" if fast else "statsmodels",
        _design_info=x_frame.design_info,
        _grid_levels=grid_levels,
        conf_level=conf_level,
    )


def _fit_profiled(x, y, codes, frame, slope_terms, reml) -> dict:
    slope = frame[slope_terms[0]].to_numpy(dtype=float) if slope_terms else None
    sums = mixed_profiled.group_sums(x, y, codes, slope=slope)
    n_theta = 3 if slope_terms else 1
    solution = mixed_profiled.optimise_theta(sums, n_theta=n_theta, reml=reml)
    at_optimum = mixed_profiled.evaluate(solution.theta, sums, reml=reml)
    random_names = ("(Intercept)", *slope_terms)
    random_cov = mixed_profiled.random_effects_covariance(solution.theta, at_optimum.sigma2)
    diagnostics = []
    if not solution.converged:
        diagnostics.append(
            "The model did not converge after trying the "
            f"{', '.join(solution.optimisers_tried)} optimisers; estimates may be inaccurate."
        )
    diagnostics += _singularity_sentences(random_names, random_cov, solution.theta)
    return {
        "coef": at_optimum.coef,
        "vcov": at_optimum.sigma2 * np.linalg.inv(at_optimum.xtvx),
        "random_names": random_names,
        "random_cov": random_cov,
        "sigma2": at_optimum.sigma2,
        "loglik": -at_optimum.deviance / 2,
        "converged": solution.converged,
        "diagnostics": diagnostics,
    }


def _singularity_sentences(random_names, random_cov, theta=None) -> list[str]:
    sd = np.sqrt(np.clip(np.diag(random_cov), 0, None))
    singular = (
        mixed_profiled.is_singular(theta)
        if theta is not None
        else bool(np.any(sd < 1e-4 * max(1.0, sd.max())))
    )
    sentences = []
    if singular:
        zero = [name for name, value in zip(random_names, sd, strict=True) if value < 1e-3]
        which = ", ".join(zero) if zero else "a combination of random effects"
        sentences.append(
            f"Singular fit: the estimated between-group variance of {which} is zero, so the "
            "random-effects structure is more complex than the data support. Fixed effects "
            "remain usable; a simpler random-effects structure gives the same answer."
        )
    elif len(random_names) > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            cor = random_cov[0, 1] / (sd[0] * sd[1])
        if abs(cor) > 0.99:
            sentences.append(
                f"Boundary fit: the random intercept and slope are almost perfectly "
                f"correlated ({cor:.3f}), so the data cannot separate them."
            )
    return sentences


def _fit_statsmodels(formula, frame, group, re_formula, reml, fixed_names) -> dict:
    re = re_formula if re_formula.strip().startswith("~") else "~" + re_formula
    model = smf.mixedlm(formula, frame, groups=frame[group], re_formula=re)
    # statsmodels' L-BFGS can report convergence at a point well short of the
    # optimum (e.g. sleepstudy with a centred slope: log-likelihood -873.66 against
    # -871.81), so two gradient methods are run and the higher likelihood is kept;
    # the derivative-free methods are tried only when neither converges.
    attempts = []
    fits = []
    for method in ("lbfgs", "bfgs", "nm", "powell"):
        if method in ("nm", "powell") and any(ok for _, ok in fits):
            break
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                candidate = model.fit(reml=reml, method=method)
            except (np.linalg.LinAlgError, ValueError) as error:
                attempts.append(f"{method}: failed ({error})")
                continue
        problems = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        attempts.append(method)
        fits.append((candidate, bool(candidate.converged) and not problems))
    if not fits:
        raise ValueError(
            f"statsmodels MixedLM could not fit {formula!r} with random {re_formula!r}: "
            + "; ".join(attempts)
        )
    converged_fits = [fit for fit, ok in fits if ok]
    pool = converged_fits or [fit for fit, _ in fits]
    result = max(pool, key=lambda fit: fit.llf)
    converged = bool(converged_fits)
    diagnostics = []
    if not converged:
        diagnostics.append(
            "The model did not converge after trying the "
            f"{', '.join(attempts)} optimisers; estimates may be inaccurate."
        )
    random_cov = np.asarray(result.cov_re, dtype=float)
    random_names = tuple(
        "(Intercept)" if name in (group, "Group", "Intercept") else name
        for name in result.cov_re.columns
    )
    diagnostics += _singularity_sentences(random_names, random_cov)
    names = list(fixed_names)
    return {
        "coef": result.fe_params.loc[names].to_numpy(),
        "vcov": result.cov_params().loc[names, names].to_numpy(),
        "random_names": random_names,
        "random_cov": random_cov,
        "sigma2": float(result.scale),
        "loglik": float(result.llf),
        "converged": converged,
        "diagnostics": diagnostics,
    }
