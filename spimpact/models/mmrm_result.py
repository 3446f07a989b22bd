"""The fitted MMRM: a frozen result with tidy, marginal means, contrasts, summary and plot."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import patsy

import spimpact.models.mmrm_inference as inference
import spimpact.models.mmrm_means as means
from spimpact.models.mmrm_covariance import DESCRIPTIONS
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import MIXED_TIDY_COLUMNS, make_tidy

DF_LABELS = {
    "satterthwaite": "Satterthwaite",
    "kenward_roger": "Kenward-Roger",
    "kenward_roger_linear": "Kenward-Roger (linear)",
    "residual": "residual",
}


# eq=False: the fields hold arrays and frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class MmrmResult(EstimatorResult):
    """A fitted mixed model for repeated measures (read-only).

    Attributes
    ----------
    formula, subject, visit, covariance_type, method, df_method, group, weights
        The call that produced the fit (``weights`` is the column name, ``"array"``
        for weights passed as values, or ``None``).
    fixed_names
        Names of the fixed-effect coefficients (patsy naming, e.g. ``ARMCD[T.TRT]``).
    coef
        Fixed-effect estimates, in ``fixed_names`` order.
    vcov
        Covariance of ``coef`` used for inference: Kenward-Roger adjusted under
        ``df_method="kenward_roger"`` (or ``"kenward_roger_linear"``), otherwise the
        model-based ``vcov_model``.
    vcov_model
        Model-based covariance (X'V^-1X)^-1 at the estimated covariance.
    df_coef
        Degrees of freedom of each coefficient's t test.
    covariance
        Estimated visits x visits residual covariance (a DataFrame; with ``group``,
        rows are indexed by (group level, visit)).
    cov_params, cov_params_vcov
        The covariance parameters in SAS PROC MIXED's parameterisation (a Series,
        prefixed by the group level when grouped) and their asymptotic covariance
        (inverse observed information), the W of Satterthwaite and Kenward-Roger.
    loglik
        Log-likelihood at the optimum (the restricted log-likelihood under REML).
    n_obs, n_subjects, n_rows_dropped
        Observations and subjects used; rows dropped for a missing value in a
        model variable (a missing response is how a missed visit is recorded).
    visits
        Visit levels, in order.
    converged, convergence_criterion, optimisers_tried
        Whether SAS's relative Hessian criterion (<= 1e-8) was met with a positive
        definite Hessian; the criterion's value; the optimisers run.
    diagnostics
        Plain-English sentences about problems with the fit; empty when none.
    conf_level
        Default level of the intervals.
    """

    formula: str
    subject: str
    visit: str
    covariance_type: str
    method: str
    df_method: str
    group: str | None
    weights: str | None
    fixed_names: tuple[str, ...]
    # field(): without it the dataclass would take the base class's coef() method as
    # this field's default; the array shadows that method on every instance.
    coef: np.ndarray = field()
    vcov: np.ndarray
    vcov_model: np.ndarray
    df_coef: np.ndarray
    covariance: pd.DataFrame
    cov_params: pd.Series
    cov_params_vcov: np.ndarray
    loglik: float
    n_obs: int
    n_subjects: int
    n_rows_dropped: int
    visits: tuple
    converged: bool
    convergence_criterion: float
    optimisers_tried: tuple[str, ...]
    diagnostics: tuple[str, ...]
    _design_info: patsy.DesignInfo = field(repr=False, compare=False)
    _variables: dict = field(repr=False, compare=False)
    _observed: pd.DataFrame = field(repr=False, compare=False)
    _p_h: np.ndarray = field(repr=False, compare=False)
    _residual_df: int = field(repr=False, compare=False)
    _kr_sums: dict = field(repr=False, compare=False)
    conf_level: float = 0.95

    def with_df(self, df: str) -> MmrmResult:
        """The same fit with another degrees-of-freedom method (a new result, no refit).

        ``df`` is one of ``"satterthwaite"``, ``"kenward_roger"``,
        ``"kenward_roger_linear"`` or ``"residual"``; ``vcov``, ``df_coef`` and every
        table follow it.
        """
        if df not in inference.DF_METHODS:
            raise ValueError(f"df must be one of {list(inference.DF_METHODS)}, got {df!r}")
        if df.startswith("kenward_roger") and self.method != "REML":
            raise ValueError("Kenward-Roger degrees of freedom need method='REML'")
        w = None if np.isnan(self.cov_params_vcov).any() else self.cov_params_vcov
        vcov, df_coef = inference.coefficient_inference(
            df, self.vcov_model, self._p_h, w, self._kr_sums, self._residual_df
        )
        return dataclasses.replace(self, df_method=df, vcov=vcov, df_coef=df_coef)

    # information criteria ---------------------------------------------------------
    @property
    def n_cov_params(self) -> int:
        """Number of covariance parameters."""
        return len(self.cov_params)

    @property
    def n_params(self) -> int:
        """Parameters counted by AIC and BIC: covariance ones, plus fixed effects under ML."""
        return self.n_cov_params + (len(self.fixed_names) if self.method == "ML" else 0)

    @property
    def aic(self) -> float:
        """Akaike information criterion, -2 loglik + 2 k (k as SAS PROC MIXED counts it).

        Under REML k is the number of covariance parameters (SAS, R mmrm); under ML
        the fixed effects count too (SAS, and R ``AIC(logLik(fit))``; R mmrm's own
        ``AIC`` method counts covariance parameters only).
        """
        return -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> float:
        """Bayesian information criterion, -2 loglik + log(n_subjects) k, as R mmrm."""
        return -2 * self.loglik + np.log(self.n_subjects) * self.n_params

    @property
    def std_errors(self) -> np.ndarray:
        """Standard errors of the fixed effects (from ``vcov``)."""
        return np.sqrt(np.diag(self.vcov))

    # tidy -------------------------------------------------------------------------
    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Fixed effects with t tests on ``df``, then the covariance as SDs and correlations.

        Columns: ``effect, group, term, estimate, std_error, statistic, p_value,
        conf_low, conf_high, df``; covariance rows (``effect == "ran_pars"``) carry
        ``sd__<visit>`` and ``cor__<visit>.<visit>`` without standard errors, as
        broom.mixed gives variance components.
        """
        fixed = make_tidy(
            self.fixed_names, self.coef, self.std_errors, conf_level=conf_level, df=self.df_coef
        )
        fixed.insert(0, "effect", "fixed")
        fixed.insert(1, "group", pd.NA)
        fixed["df"] = self.df_coef
        rows = []
        for group_level, matrix in self._covariance_blocks():
            sd = np.sqrt(np.diag(matrix))
            label = "Residual" if group_level is None else f"Residual {group_level}"
            for visit, value in zip(self.visits, sd, strict=True):
                rows.append((label, f"sd__{visit}", value))
            for (i, a), (j, b) in itertools.combinations(enumerate(self.visits), 2):
                rows.append((label, f"cor__{a}.{b}", matrix[i, j] / (sd[i] * sd[j])))
        ran_pars = pd.DataFrame(rows, columns=["group", "term", "estimate"])
        ran_pars.insert(0, "effect", "ran_pars")
        out = pd.concat([fixed, ran_pars], ignore_index=True)
        return out.reindex(columns=[*MIXED_TIDY_COLUMNS, "df"])

    def _covariance_blocks(self):
        if self.group is None:
            return [(None, self.covariance.to_numpy())]
        levels = self.covariance.index.get_level_values(0).unique()
        return [(level, self.covariance.loc[level].to_numpy()) for level in levels]

    # inference on linear combinations --------------------------------------------
    def linear_combinations(
        self, contrasts, labels=None, *, conf_level: float | None = None
    ) -> pd.DataFrame:
        """Test the linear combinations ``contrasts @ coef`` with the fit's df method.

        Parameters
        ----------
        contrasts
            Array (n, p): one row of weights on the coefficients per combination.
        labels
            Names of the rows (``term`` column); default ``"L1", "L2", ...``.
        conf_level
            Level of the intervals; ``None`` uses the fitted level.

        Returns
        -------
        pandas.DataFrame
            ``term, estimate, std_error, statistic, p_value, conf_low, conf_high, df``.
        """
        conf_level = self._level(conf_level)
        contrasts = np.atleast_2d(np.asarray(contrasts, dtype=float))
        if contrasts.shape[1] != len(self.coef):
            raise ValueError(
                f"contrasts need {len(self.coef)} columns (one per coefficient), "
                f"got {contrasts.shape[1]}"
            )
        labels = labels if labels is not None else [f"L{i + 1}" for i in range(len(contrasts))]
        estimate = contrasts @ self.coef
        std_error = np.sqrt(np.einsum("rp,pq,rq->r", contrasts, self.vcov, contrasts))
        df = self._df(contrasts)
        out = make_tidy(labels, estimate, std_error, conf_level=conf_level, df=df)
        out["df"] = df
        return out

    def _df(self, contrasts) -> np.ndarray:
        method = self.df_method.replace("_linear", "")
        return inference.contrast_df(
            contrasts,
            method=method,
            vcov=self.vcov_model,
            p_h=self._p_h,
            w=self.cov_params_vcov,
            residual_df=self._residual_df,
        )

    def marginal_means(
        self,
        term: str | None = None,
        *,
        by: str | None = None,
        weights: str = "equal",
        conf_level: float | None = None,
    ) -> pd.DataFrame:
        """Estimated marginal means at each level of ``term`` (default: the visit).

        Numeric covariates are held at their mean and the other categorical
        covariates averaged with ``weights="equal"`` (emmeans' default, SAS
        ``LSMEANS``) or ``"proportional"`` weights (see :mod:`spimpact.models.mmrm_means`).
        With ``by``, means are given at each level of that variable (emmeans'
        ``~ term | by``). Standard errors and degrees of freedom follow the fit's
        df method.

        Returns
        -------
        pandas.DataFrame
            ``term, level, [by, by_level,] estimate, std_error, statistic, p_value,
            conf_low, conf_high, df``, one row per level (per ``by`` level).
        """
        term = self.visit if term is None else term
        frames = []
        for by_level in self._by_levels(term, by):
            levels, rows = self._grid(term, by, by_level, weights)
            out = self.linear_combinations(rows, [term] * len(levels), conf_level=conf_level)
            out.insert(1, "level", levels)
            frames.append(_with_by(out, by, by_level))
        return pd.concat(frames, ignore_index=True)

    def contrasts(
        self,
        term: str | None = None,
        *,
        reference=None,
        by: str | None = None,
        weights: str = "equal",
        conf_level: float | None = None,
    ) -> pd.DataFrame:
        """Differences in marginal means between each level of ``term`` and ``reference``.

        ``term`` defaults to the visit and ``reference`` to its first level (change
        from the first visit). With ``by`` (e.g. ``term="arm", by="visit"``) the
        differences are estimated within each level of ``by``.

        Returns
        -------
        pandas.DataFrame
            ``term, level, reference, [by, by_level,] estimate, std_error, statistic,
            p_value, conf_low, conf_high, df``, one row per non-reference level.
        """
        term = self.visit if term is None else term
        frames = []
        for by_level in self._by_levels(term, by):
            levels, rows = self._grid(term, by, by_level, weights)
            chosen = levels[0] if reference is None else reference
            if chosen not in levels:
                raise ValueError(
                    f"reference {chosen!r} is not a level of {term!r}; levels are {levels}"
                )
            keep = [i for i, level in enumerate(levels) if level != chosen]
            differences = rows[keep] - rows[levels.index(chosen)]
            out = self.linear_combinations(differences, [term] * len(keep), conf_level=conf_level)
            out.insert(1, "level", [levels[i] for i in keep])
            out.insert(2, "reference", chosen)
            frames.append(_with_by(out, by, by_level))
        return pd.concat(frames, ignore_index=True)

    def _by_levels(self, term: str, by: str | None) -> list:
        means.check_variable(self._variables, term, self.formula, "term")
        if by is None:
            return [None]
        means.check_variable(self._variables, by, self.formula, "by")
        if by == term:
            raise ValueError(f"by must differ from term, both are {term!r}")
        return list(self._variables[by]["levels"])

    def _grid(self, term, by, by_level, weights):
        return means.grid_rows(
            self._design_info,
            self._variables,
            term,
            by=by,
            by_level=by_level,
            weights=weights,
            observed=self._observed,
        )

    # text and pictures ------------------------------------------------------------
    def summary(self) -> str:
        """Text summary for people, after R mmrm's ``summary`` print."""
        tidy = self.tidy()
        fixed = tidy[tidy.effect == "fixed"]
        structure = DESCRIPTIONS[self.covariance_type]
        grouped = f", separately by {self.group}" if self.group else ""
        lines = [
            f"Mixed model for repeated measures fitted by {self.method}",
            f"Formula: {self.formula}; subject: {self.subject}; visit: {self.visit}",
            f"Covariance: {structure} ({self.n_cov_params} parameters{grouped})",
            f"Degrees of freedom: {DF_LABELS[self.df_method]}",
            f"Observations: {self.n_obs} from {self.n_subjects} subjects over "
            f"{len(self.visits)} visits ({self.n_rows_dropped} rows with a missing value "
            "not used)",
        ]
        if self.weights is not None:
            lines.append(f"Weights: {self.weights}")
        lines += [
            f"log-likelihood {self.loglik:.4f}, AIC {self.aic:.2f}, BIC {self.bic:.2f}",
            "",
            "Fixed effects:",
            f"  {'term':<34} {'estimate':>11} {'std_error':>10} {'df':>8} {'t':>8} {'p':>9}",
        ]
        for row in fixed.itertuples():
            lines.append(
                f"  {row.term:<34} {row.estimate:11.4f} {row.std_error:10.4f} {row.df:8.2f} "
                f"{row.statistic:8.3f} {row.p_value:9.4g}"
            )
        lines += ["", "Residual covariance:", self.covariance.round(4).to_string()]
        status = "converged" if self.converged else "did NOT converge"
        lines += [
            "",
            f"Optimisation {status} (relative criterion {self.convergence_criterion:.2g})",
        ]
        if self.diagnostics:
            lines += ["", "Diagnostics:"] + [f"  - {text}" for text in self.diagnostics]
        return "\n".join(lines)

    def plot(self, ax=None, *, by: str | None = None, conf_level: float | None = None):
        """Marginal means at each visit with confidence intervals (one line per ``by`` level)."""
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        conf_level = self._level(conf_level)
        table = self.marginal_means(by=by, conf_level=conf_level)
        groups = [(None, table)] if by is None else list(table.groupby("by_level", sort=False))
        positions = np.arange(len(self.visits), dtype=float)
        width = 0.08 * (len(groups) - 1)
        for k, (label, frame) in enumerate(groups):
            shift = positions[: len(frame)] + (k * 0.08 - width / 2 if len(groups) > 1 else 0)
            estimate = frame.estimate.to_numpy()
            ax.errorbar(
                shift,
                estimate,
                yerr=[estimate - frame.conf_low.to_numpy(), frame.conf_high.to_numpy() - estimate],
                fmt="o-",
                capsize=3,
                label=None if label is None else f"{by} = {label}",
            )
        ax.set_xticks(positions, [str(v) for v in self.visits])
        ax.set_xlabel(self.visit)
        ax.set_ylabel(f"marginal mean ({round(conf_level * 100)}% CI)")
        if by is not None:
            ax.legend()
        return ax


def _with_by(frame: pd.DataFrame, by: str | None, by_level) -> pd.DataFrame:
    if by is None:
        return frame
    position = list(frame.columns).index("estimate")
    frame.insert(position, "by", by)
    frame.insert(position + 1, "by_level", [by_level] * len(frame))
    return frame
