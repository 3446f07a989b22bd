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

from spimpact.models.imputation import pool_rubin
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


def imputation_stability(result) -> pd.DataFrame:
    """The pooled change at each follow-up as imputed data sets are added.

    The analysis imputes from draws of the mixed model's parameters (reference-based
    multiple imputation): each data set is drawn independently, with no chain to
    converge, so the check that matters is whether ``m`` imputations are enough. One
    row per term and ``k = 2 .. m``: the estimate and standard error pooled from the
    first ``k`` imputations by Rubin's rules, ``mc_error = sqrt(b / k)`` (the Monte
    Carlo standard error of the pooled estimate) and ``fmi``. With enough imputations
    the curve is flat and ``mc_error`` is under a tenth of ``std_error`` (White, Royston
    & Wood 2011, Statistics in Medicine 30:377-399, section 7).
    Columns ``term, k, estimate, std_error, mc_error, fmi``.
    """
    mi = result.mi
    if mi is None:
        raise ValueError("the attrition result carries no multiple imputation")
    per = mi.per_imputation
    dfcom = mi.pooled.set_index("term")["dfcom"]
    rows = []
    for term, own in per.groupby("term", sort=False):
        own = own.sort_values("imputation")
        for k in range(2, len(own) + 1):
            first = own.iloc[:k]
            pooled = pool_rubin(
                first["estimate"].rename(term),
                (first["std_error"] ** 2).rename(term),
                dfcom=float(dfcom[term]),
            ).iloc[0]
            rows.append(
                (term, k, pooled["estimate"], pooled["std_error"],
                 float(np.sqrt(pooled["b"] / k)), pooled["fmi"])
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["term", "k", "estimate", "std_error", "mc_error", "fmi"])


def plot_imputation_stability(stability: pd.DataFrame):
    """Pooled estimate against the number of imputations, with its Monte Carlo band."""
    import matplotlib.pyplot as plt

    terms = list(dict.fromkeys(stability["term"]))
    figure, axes = plt.subplots(1, len(terms), figsize=(4 * len(terms), 3.5), squeeze=False)
    for axis, term in zip(axes[0], terms, strict=True):
        own = stability[stability["term"] == term]
        axis.plot(own["k"], own["estimate"], color="#005eb8")
        axis.fill_between(
            own["k"],
            own["estimate"] - 1.96 * own["mc_error"],
            own["estimate"] + 1.96 * own["mc_error"],
            color="#005eb8",
            alpha=0.2,
            label="±1.96 Monte Carlo SE",
        )
        axis.set_title(term)
        axis.set_xlabel("imputed data sets pooled")
    axes[0, 0].set_ylabel("pooled change")
    axes[0, 0].legend(frameon=False, fontsize=8)
    figure.tight_layout()
    return figure


def delta_sensitivity(result) -> pd.DataFrame:
    """The δ-adjusted change at every shift of the tipping-point grid (``tipping.tidy()``)."""
    return result.tipping.tidy()
