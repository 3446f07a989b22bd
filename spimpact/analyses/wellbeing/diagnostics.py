"""Diagnostics of the wellbeing change model, for the analyst-only notebook (issue 18).

Everything here reads a fitted :class:`~spimpact.analyses.wellbeing.WellbeingResult`
through its public attributes (``score``, ``model.formula``, ``model.fixed_names``,
``model.coef``, ``counts``, ``trajectory``) so it works for whichever change model
the result holds (a random-intercept model or an MMRM). Outputs are row-level and
exact: they belong to the analyst tier (``outputs/_analyst/``), never to a report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from spimpact.analyses.wellbeing.analysis import _score_frame
from spimpact.models.mixed import fit_mixed

# Covariance structures compared for an MMRM (those of spimpact.models.mmrm).
MMRM_STRUCTURES = ("us", "toeph", "toep", "ar1h", "ar1", "csh", "cs")
CONVERGENCE_FIELDS = (
    "converged",
    "convergence_criterion",
    "optimisers_tried",
    "engine",
    "covariance_type",
    "method",
    "df_method",
    "reml",
    "loglik",
    "n_obs",
    "n_subjects",
    "n_groups",
    "n_rows_dropped",
)


def model_data(result, scores: pd.DataFrame, clients: pd.DataFrame) -> pd.DataFrame:
    """The rows the change model was fitted to: one per client and time point analysed."""
    data = _score_frame(scores, clients, result.score)
    return data[data["timepoint"].isin(result.counts["timepoint"])].reset_index(drop=True)


def fitted_values(model, data: pd.DataFrame) -> np.ndarray:
    """Population-level fitted values ``X b`` of ``model`` on ``data``.

    The design is rebuilt from ``model.formula`` with patsy and its columns matched to
    ``model.fixed_names``, so any fitted linear model with those attributes works.
    """
    rhs = model.formula.split("~", 1)[1]
    design = patsy.dmatrix(rhs, data, return_type="dataframe", NA_action="raise")
    missing = [name for name in model.fixed_names if name not in design.columns]
    if missing:
        raise ValueError(f"the model's terms {missing} cannot be rebuilt from the data")
    return design[list(model.fixed_names)].to_numpy() @ np.asarray(model.coef, dtype=float)


def residual_table(result, scores: pd.DataFrame, clients: pd.DataFrame) -> pd.DataFrame:
    """Observed, fitted and residual value of every score the model used.

    Columns ``client_id, timepoint, value, fitted, residual`` (marginal residuals:
    observed minus the population-level fit).
    """
    data = model_data(result, scores, clients)
    fitted = fitted_values(result.model, data)
    return pd.DataFrame(
        {
            "client_id": data["client_id"].to_numpy(),
            "timepoint": data["timepoint"].to_numpy(),
            "value": data["value"].to_numpy(),
            "fitted": fitted,
            "residual": data["value"].to_numpy() - fitted,
        }
    )


def client_effects(residuals: pd.DataFrame) -> pd.DataFrame:
    """Each client's mean marginal residual: an unshrunk estimate of their own level.

    Columns ``client_id, n_scores, mean_residual``, largest absolute deviation first
    (ties by client id), for spotting clients far from the model.
    """
    table = (
        residuals.groupby("client_id", sort=True)["residual"]
        .agg(n_scores="size", mean_residual="mean")
        .reset_index()
    )
    order = np.lexsort((table["client_id"].astype(str), -table["mean_residual"].abs()))
    return table.iloc[order].reset_index(drop=True)


def observed_vs_fitted(result, residuals: pd.DataFrame) -> pd.DataFrame:
    """Mean observed and fitted score at each time point beside the model's trajectory.

    Columns ``timepoint, n_people, observed_mean, fitted_mean, model_mean`` (the last
    from ``result.trajectory``).
    """
    table = (
        residuals.groupby("timepoint")
        .agg(
            n_people=("client_id", "nunique"),
            observed_mean=("value", "mean"),
            fitted_mean=("fitted", "mean"),
        )
        .reset_index()
    )
    model_mean = result.trajectory.set_index("timepoint")["estimate"]
    table["model_mean"] = table["timepoint"].map(model_mean).to_numpy(dtype=float)
    return table


def change_coefficient(model, timepoint: int) -> float:
    """The model's change from baseline to ``timepoint`` (its ``C(timepoint)[T.t]`` term).

    With additive covariates this coefficient is the adjusted change the report shows.
    """
    name = f"C(timepoint)[T.{timepoint}]"
    if name not in model.fixed_names:
        raise ValueError(f"the model has no term {name}")
    return float(np.asarray(model.coef, dtype=float)[list(model.fixed_names).index(name)])


def refit(model, data: pd.DataFrame):
    """Fit ``model``'s specification again on ``data`` (same formula, same options)."""
    if hasattr(model, "covariance_type"):
        from spimpact.models.mmrm import fit_mmrm

        return fit_mmrm(
            model.formula,
            data,
            subject=model.subject,
            visit=model.visit,
            covariance=model.covariance_type,
            method=model.method,
            df=model.df_method,
            conf_level=model.conf_level,
        )
    return fit_mixed(
        model.formula, data, group=model.group, re_formula=model.re_formula, reml=model.reml
    )


def client_influence(
    result, scores: pd.DataFrame, clients: pd.DataFrame, *, n_clients: int = 10
) -> pd.DataFrame:
    """Change at the first follow-up with each of the most outlying clients left out.

    The ``n_clients`` clients with the largest absolute mean residual are dropped one
    at a time and the model refitted (``refit``). Columns ``client_id, mean_residual,
    change_without, shift`` (``change_without`` minus the full-data change), largest
    absolute shift first; a first row ``client_id = "(none)"`` holds the full-data fit.
    """
    data = model_data(result, scores, clients)
    residuals = residual_table(result, scores, clients)
    timepoint = int(result.change["timepoint"].iloc[0])
    full = change_coefficient(result.model, timepoint)
    rows = []
    for row in client_effects(residuals).head(n_clients).itertuples():
        fit = refit(result.model, data[data["client_id"] != row.client_id])
        change = change_coefficient(fit, timepoint)
        rows.append((row.client_id, row.mean_residual, change, change - full))
    table = pd.DataFrame(rows, columns=["client_id", "mean_residual", "change_without", "shift"])
    table = table.iloc[np.argsort(-table["shift"].abs().to_numpy(), kind="stable")]
    head = pd.DataFrame([("(none)", np.nan, full, 0.0)], columns=table.columns)
    return pd.concat([head, table], ignore_index=True)


def covariance_comparison(result, scores: pd.DataFrame, clients: pd.DataFrame) -> pd.DataFrame:
    """Information criteria of the change model under other covariance structures.

    An MMRM is refitted with every structure of ``MMRM_STRUCTURES``; a random-intercept
    model is compared with a random intercept and slope on time. All fits use the
    model's own estimation method, so AICs are comparable (same fixed effects).
    Columns ``structure, n_params, loglik, aic, bic, converged, used`` (``used`` marks
    the structure the report's model has), lowest AIC first; a structure that cannot
    be fitted has NaN criteria and its reason in ``note``.
    """
    model = result.model
    data = model_data(result, scores, clients)
    rows = []
    if hasattr(model, "covariance_type"):
        from spimpact.models.mmrm import fit_mmrm

        for structure in MMRM_STRUCTURES:
            try:
                fit = fit_mmrm(
                    model.formula,
                    data,
                    subject=model.subject,
                    visit=model.visit,
                    covariance=structure,
                    method=model.method,
                    df=model.df_method,
                )
            except (ValueError, np.linalg.LinAlgError) as error:
                rows.append(_criteria_row(structure, None, model.covariance_type, str(error)))
                continue
            rows.append(_criteria_row(structure, fit, model.covariance_type))
    else:
        used = "random intercept" if model.re_formula is None else f"random {model.re_formula}"
        rows.append(_criteria_row(used, model, used))
        slope = "random intercept and slope on time"
        try:
            fit = fit_mixed(model.formula, data, group=model.group, re_formula="~timepoint")
            rows.append(_criteria_row(slope, fit, used))
        except (ValueError, np.linalg.LinAlgError) as error:
            rows.append(_criteria_row(slope, None, used, str(error)))
    table = pd.DataFrame(rows)
    return table.sort_values(["aic", "structure"], na_position="last").reset_index(drop=True)


def _criteria_row(structure: str, fit, used: str, note: str = "") -> dict:
    if fit is None:
        values = {"n_params": np.nan, "loglik": np.nan, "aic": np.nan, "bic": np.nan}
        converged = False
    else:
        values = {
            "n_params": fit.n_params,
            "loglik": float(fit.loglik),
            "aic": float(fit.aic),
            "bic": float(fit.bic),
        }
        converged = bool(fit.converged)
        note = " ".join(fit.diagnostics)
    return {"structure": structure, **values, "converged": converged, "used": structure == used,
            "note": note}  # fmt: skip


def convergence_record(result) -> pd.DataFrame:
    """What the optimiser did for each model of the result: ``model, item, value``.

    Reads ``CONVERGENCE_FIELDS`` where the model has them, then its diagnostics.
    """
    rows = []
    models = {"change model": result.model}
    for name in ("random_intercept",):
        if getattr(result, name, None) is not None:
            models[name.replace("_", " ")] = getattr(result, name)
    for label, model in models.items():
        for item in CONVERGENCE_FIELDS:
            if hasattr(model, item):
                value = getattr(model, item)
                if isinstance(value, tuple | list):
                    value = ", ".join(map(str, value))
                rows.append((label, item, str(value)))
        for text in getattr(model, "diagnostics", ()):
            rows.append((label, "diagnostic", text))
    for text in result.diagnostics:
        rows.append(("analysis", "diagnostic", text))
    return pd.DataFrame(rows, columns=["model", "item", "value"])


def plot_residuals(residuals: pd.DataFrame):
    """Residuals against fitted values and a normal Q-Q plot; returns the Figure."""
    import matplotlib.pyplot as plt
    from scipy import stats

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    left.scatter(residuals["fitted"], residuals["residual"], s=8, alpha=0.5, color="#005eb8")
    left.axhline(0, color="grey", linewidth=0.8)
    left.set_xlabel("Fitted value")
    left.set_ylabel("Residual")
    (theoretical, ordered), _ = stats.probplot(residuals["residual"].to_numpy(), dist="norm")
    right.scatter(theoretical, ordered, s=8, alpha=0.5, color="#005eb8")
    low, high = float(np.min(theoretical)), float(np.max(theoretical))
    scale = float(residuals["residual"].std(ddof=1))
    right.plot([low, high], [low * scale, high * scale], color="grey", linewidth=0.8)
    right.set_xlabel("Normal quantile")
    right.set_ylabel("Residual")
    figure.tight_layout()
    return figure


def plot_trajectories(residuals: pd.DataFrame, summary: pd.DataFrame, *, n_clients: int = 30):
    """Observed trajectories of the first ``n_clients`` clients (by id) and the mean fits."""
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4))
    shown = sorted(residuals["client_id"].astype(str).unique())[:n_clients]
    for _, person in residuals[residuals["client_id"].astype(str).isin(shown)].groupby("client_id"):
        ax.plot(person["timepoint"], person["value"], color="#bbbbbb", linewidth=0.7)
    ax.plot(summary["timepoint"], summary["observed_mean"], "o-", label="observed mean")
    ax.plot(summary["timepoint"], summary["fitted_mean"], "s--", label="fitted mean")
    ax.plot(summary["timepoint"], summary["model_mean"], "^:", label="model trajectory")
    ax.set_xticks(summary["timepoint"])
    ax.set_xlabel("Time point")
    ax.set_ylabel("Score")
    ax.legend(frameon=False)
    figure.tight_layout()
    return figure
