"""Diagnostics of the attrition analysis, for the analyst-only notebook (issue 18).

Reads an :class:`~spimpact.analyses.attrition.AttritionResult` through its public
attributes (``data``, ``tipping``, ``retention`` and, where the analysis has it,
``ipw``). The weighting and imputation diagnostics refit the generic estimators on
``result.data`` (the one-row-per-client frame of the analysis) with the same
formulas. Outputs are row-level and exact: analyst tier only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.models.imputation import impute_mice
from spimpact.models.ipw import fit_ipw

TRUNCATIONS = ((0.0, 1.0), (0.01, 0.99), (0.05, 0.95))
WEIGHT_QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


def fit_first_follow_up_ipw(result, *, truncate: tuple[float, float] | None = None):
    """Inverse probability weighted change to the first follow-up (``fit_ipw``).

    Remaining in follow-up is modelled with ``result.data.censoring_formula`` (baseline
    score and the covariates the data support), as the analysis does.
    """
    data = result.data
    return fit_ipw(
        data.frame,
        outcome_formula="change ~ 1",
        censoring_formula=data.censoring_formula,
        truncate=None if truncate == (0.0, 1.0) else truncate,
        conf_level=result.conf_level,
    )


def dropout_models(result) -> dict[str, pd.DataFrame]:
    """The fitted models of who stops: tidy tables by name.

    ``returned follow-up (IPW model)``: log-odds of returning the first follow-up;
    ``by visit (sequential IPW)`` where the analysis weights every visit;
    ``disengagement (Cox)``: hazard ratios of disengaging, with the proportional-
    hazards test where computed.
    """
    tables = {"returned follow-up (IPW model)": fit_first_follow_up_ipw(result).censoring_model}
    ipw = getattr(result, "ipw", None)
    if ipw is not None and isinstance(getattr(ipw, "dropout_model", None), pd.DataFrame):
        tables["by visit (sequential IPW)"] = ipw.dropout_model
    cox = result.retention.dropout_model
    if cox is not None:
        tables["disengagement (Cox)"] = cox.tidy(exponentiate=True)
        if cox.proportional_hazards is not None:
            tables["proportional hazards test"] = cox.proportional_hazards
    return tables


def weight_distribution(result) -> pd.DataFrame:
    """Quantiles of the IPW weights of the people who returned the first follow-up.

    Columns ``quantile, weight``, then rows ``effective_sample_size`` and ``n``. Where the
    analysis fits weights per visit, see ``result.ipw.weight_summary`` too.
    """
    fit = fit_first_follow_up_ipw(result)
    weights = fit.weights.to_numpy(dtype=float)
    weights = weights[np.isfinite(weights) & (weights > 0)]
    rows = [(f"p{round(100 * q):02d}", float(np.quantile(weights, q))) for q in WEIGHT_QUANTILES]
    rows += [("effective_sample_size", float(fit.effective_sample_size)), ("n", len(weights))]
    return pd.DataFrame(rows, columns=["quantile", "weight"])


def truncation_sensitivity(result, truncations=TRUNCATIONS) -> pd.DataFrame:
    """The weighted change with the weights truncated at percentiles.

    One row per ``(lower, upper)`` percentile pair (``(0, 1)``: not truncated):
    ``lower, upper, estimate, std_error, conf_low, conf_high, effective_sample_size``.
    """
    rows = []
    for lower, upper in truncations:
        fit = fit_first_follow_up_ipw(result, truncate=(lower, upper))
        row = fit.tidy().iloc[0]
        rows.append(
            {
                "lower": lower,
                "upper": upper,
                "estimate": float(row["estimate"]),
                "std_error": float(row["std_error"]),
                "conf_low": float(row["conf_low"]),
                "conf_high": float(row["conf_high"]),
                "effective_sample_size": float(fit.effective_sample_size),
            }
        )
    return pd.DataFrame(rows)


def imputation_chains(result, *, seed: int, n_chains: int = 4, max_iter: int = 10) -> pd.DataFrame:
    """Mean and variance of the imputed values by chain and iteration (MICE trace plot).

    Each chain is ``impute_mice`` with one data set and seed ``seed + chain``; its state
    after ``k`` iterations is the same chain run for ``k`` iterations (its random draws
    come in the same order), so chains are run for 1, ..., ``max_iter`` iterations.
    Columns ``column, chain, iteration, mean, variance``. Chains that mix show no trend
    and overlap after the first few iterations (van Buuren 2018, §6.5.2).
    """
    data = result.data
    follow = [f"follow_up_{t}" for t in data.follow_ups]
    columns = ["baseline", *follow, *data.covariates]
    frame = data.frame
    incomplete = [c for c in follow if frame[c].isna().any()]
    rows = []
    for chain in range(n_chains):
        for iteration in range(1, max_iter + 1):
            imputed = impute_mice(frame, m=1, max_iter=iteration, seed=seed + chain,
                                  columns=columns)  # fmt: skip
            completed = imputed.datasets[0]
            for column in incomplete:
                values = completed.loc[imputed.missing[column], column].to_numpy(dtype=float)
                rows.append((column, chain, iteration, values.mean(), values.var(ddof=1)))
    return pd.DataFrame(rows, columns=["column", "chain", "iteration", "mean", "variance"])


def plot_imputation_chains(chains: pd.DataFrame):
    """Chain means and variances by iteration, one column of panels per imputed variable."""
    import matplotlib.pyplot as plt

    columns = list(dict.fromkeys(chains["column"]))
    figure, axes = plt.subplots(2, len(columns), figsize=(4 * len(columns), 5), squeeze=False)
    for j, column in enumerate(columns):
        for chain, trace in chains[chains["column"] == column].groupby("chain"):
            axes[0, j].plot(trace["iteration"], trace["mean"], label=f"chain {chain}")
            axes[1, j].plot(trace["iteration"], trace["variance"])
        axes[0, j].set_title(column)
        axes[0, j].set_ylabel("mean of imputed values")
        axes[1, j].set_ylabel("variance of imputed values")
        axes[1, j].set_xlabel("iteration")
    axes[0, 0].legend(frameon=False, fontsize=8)
    figure.tight_layout()
    return figure


def delta_sensitivity(result) -> pd.DataFrame:
    """The δ-adjusted change at every shift of the tipping-point grid (``tipping.tidy()``)."""
    return result.tipping.tidy()
