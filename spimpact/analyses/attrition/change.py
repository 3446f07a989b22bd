"""The change in a score allowing for missing follow-ups, by method (issues 9 and 13).

All methods estimate the average change from baseline at each follow-up among the
people with a baseline score:

* ``complete_case``: people with both scores (paired t interval);
* ``ipw``: sequential inverse probability weighting for monotone dropout, the weights
  from the previous score and the characteristics (stacked-sandwich standard errors);
* ``mmrm``: mixed model for repeated measures of every score, the change allowed to
  depend on the characteristics (time x centred characteristics), Kenward-Roger df;
* ``mi``: multiple imputation from that MMRM (approximate Bayes draws), each completed
  data set analysed by the same MMRM and pooled by Rubin's rules (Barnard-Rubin df);
* ``return_to_baseline``: the same imputation, but people who left are imputed as if
  back at their baseline level (a missing-not-at-random scenario);

and the delta-adjusted tipping point: the shift, added inside the imputation to every
visit after someone left, at which the conclusion at the last follow-up changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.analyses.attrition.data import AttritionData
from spimpact.models.imputation import pool_analyses
from spimpact.models.ipw_sequential import SequentialIpwResult, fit_sequential_ipw
from spimpact.models.mmrm_fallback import DEFAULT_ORDER, fit_mmrm_fallback
from spimpact.models.paired import fit_mean
from spimpact.models.reference_based import draw_imputation_model
from spimpact.models.tidy import make_tidy
from spimpact.models.tipping_point import fit_delta_adjusted

METHOD_LABELS = {
    "complete_case": "Complete cases",
    "ipw": "Sequential inverse probability weighting",
    "mmrm": "Mixed model for repeated measures",
    "mi": "Multiple imputation (missing at random)",
    "return_to_baseline": "Multiple imputation, people who left back at baseline",
}
ESTIMATE_COLUMNS = [
    "key", "method", "timepoint", "estimate", "std_error", "conf_low", "conf_high",
    "p_value", "n", "df",
]  # fmt: skip
# Points on the tipping-point grid (plus up to two refinements of each root).
N_DELTAS = 7
# People recorded at the last follow-up per time x characteristic parameter before a
# characteristic's interaction with time joins the MMRM and imputation model.
PEOPLE_PER_PARAMETER = 10


def long_scores(data: AttritionData) -> tuple[pd.DataFrame, list[str]]:
    """One row per person and time point, with the characteristics centred.

    Returns ``(long, z_columns)``. Categories become centred indicators and age is
    centred, so that in ``value ~ C(timepoint) * (z...)`` the time coefficients are the
    change averaged over the people with a baseline score.
    """
    frame = data.frame
    centred = pd.DataFrame({"client_id": frame["client_id"]})
    for column in data.covariates:
        if pd.api.types.is_numeric_dtype(frame[column]):
            parts = frame[[column]].astype(float)
        else:
            parts = pd.get_dummies(frame[column], drop_first=True, dtype=float)
        for k, values in enumerate(parts.T.to_numpy()):
            centred[f"z_{column}_{k}"] = values - values.mean()
    z_terms = [c for c in centred.columns if c != "client_id"]
    columns = {"baseline": 0, **{f"follow_up_{t}": t for t in data.follow_ups}}
    long = frame.melt(
        id_vars=["client_id"], value_vars=list(columns), var_name="column", value_name="value"
    )
    long["timepoint"] = long["column"].map(columns).astype(int)
    long = long.drop(columns="column").merge(centred, on="client_id", how="left")
    long = long.sort_values(["client_id", "timepoint"], kind="stable").reset_index(drop=True)
    return long, z_terms


def estimate_change(
    data: AttritionData,
    *,
    seed: int,
    conf_level: float = 0.95,
    higher_is_better: bool = True,
    m: int = 20,
    covariances=DEFAULT_ORDER,
    df: str = "kenward_roger",
    truncate: tuple[float, float] = (0.01, 0.99),
):
    """Change from baseline at every follow-up by each method, and the tipping point.

    Returns
    -------
    tuple
        ``(estimates, tipping, ipw, notes)``: a frame with ``ESTIMATE_COLUMNS`` (one row
        per method and follow-up; ``df`` infinite for a normal interval), the
        ``TippingPointResult`` for the last follow-up, the ``SequentialIpwResult`` and
        plain-English notes.
    """
    long, z_terms = long_scores(data)
    notes: list[str] = []
    n_last = int(long.loc[long["timepoint"] == data.follow_ups[-1], "value"].notna().sum())
    affordable = max(0, n_last // PEOPLE_PER_PARAMETER - 1)
    if affordable < len(z_terms):
        notes.append(
            f"Only {n_last} people have a score at the last follow-up, so the mixed model and "
            f"the imputation allow the change to depend on {affordable} of the "
            f"{len(z_terms)} characteristic terms (at least {PEOPLE_PER_PARAMETER} people per "
            "term); the weighting uses them all."
        )
    model_terms = z_terms[:affordable]
    interactions = f" * ({' + '.join(model_terms)})" if model_terms else ""
    formula = "value ~ C(timepoint)" + interactions
    last = data.follow_ups[-1]
    rows: list[dict] = []
    n_people = len(data.frame)

    wide = long.pivot(index="client_id", columns="timepoint", values="value")
    for t in data.follow_ups:
        pairs = wide[[0, t]].dropna()
        if len(pairs) >= 2:
            mean = fit_mean(pairs[t] - pairs[0], conf_level=conf_level, term="change")
            rows.append(_row("complete_case", t, mean.tidy().iloc[0], mean.n, mean.df))

    ipw = _sequential_ipw(long, z_terms, conf_level, truncate=None)
    notes += list(ipw.diagnostics)
    for row in ipw.tidy().itertuples():
        t = int(row.term.split("[")[1].rstrip("]"))
        rows.append(_row("ipw", t, row._asdict(), n_people, np.inf))
    truncated = _sequential_ipw(long, z_terms, conf_level, truncate=truncate)
    notes.append(_truncation_note(ipw, truncated, truncate, last))

    mmrm, fallback_notes = fit_mmrm_fallback(
        formula, long.dropna(subset=["value"]), subject="client_id", visit="timepoint",
        covariances=covariances, df=df, conf_level=conf_level,
    )  # fmt: skip
    notes += [*fallback_notes, *mmrm.diagnostics]
    fixed = mmrm.tidy().set_index("term")
    for t in data.follow_ups:
        row = fixed.loc[_term(t)]
        rows.append(_row("mmrm", t, row, mmrm.n_subjects, row["df"]))

    draws = draw_imputation_model(
        long, formula=formula, subject="client_id", visit="timepoint",
        covariance=mmrm.covariance_type, m=m, seed=seed,
    )  # fmt: skip
    notes += list(draws.diagnostics)

    # completed data sets keep the draws' row order (subject by subject, visits sorted)
    n_visits = len(draws.visits)
    people = draws.data.iloc[::n_visits]
    design = np.column_stack([np.ones(len(people)), people[model_terms].to_numpy(dtype=float)])
    positions = [draws.visits.index(t) for t in data.follow_ups]

    def analysis(completed: pd.DataFrame) -> pd.DataFrame:
        values = completed["value"].to_numpy(dtype=float).reshape(-1, n_visits)
        return _change_regression(values, design, positions, data.follow_ups)

    imputation_seed = int(np.random.default_rng(seed).integers(2**31))
    for key, strategy in (("mi", "mar"), ("return_to_baseline", "return_to_baseline")):
        pooled = pool_analyses(
            draws.impute(strategy=strategy, seed=imputation_seed), analysis,
            dfcom="analysis", conf_level=conf_level,
        )  # fmt: skip
        tidy = pooled.tidy().set_index("term")
        pooled_df = pooled.pooled.set_index("term")["df"]
        for t in data.follow_ups:
            rows.append(_row(key, t, tidy.loc[_term(t)], n_people, pooled_df[_term(t)]))

    estimates = pd.DataFrame(rows)
    estimates["method"] = estimates["key"].map(METHOD_LABELS)
    mi_last = estimates[(estimates["key"] == "mi") & (estimates["timepoint"] == last)].iloc[0]
    share_missing = float(wide[last].isna().mean())
    worse = -1.0 if higher_is_better else 1.0
    # the change at the last visit moves by at least delta x (share imputed there), so
    # it reaches zero by about |estimate| / share; the grid reaches one and a half times
    reach = 1.5 * max(abs(mi_last["estimate"]), 4 * mi_last["std_error"]) / max(share_missing, 1e-9)
    tipping = fit_delta_adjusted(
        lambda delta: draws.impute(strategy="mar", delta=delta, seed=imputation_seed),
        analysis,
        term=_term(last),
        deltas=worse * np.linspace(0, reach, N_DELTAS),
        dfcom="analysis",
        conf_level=conf_level,
    )
    return estimates[ESTIMATE_COLUMNS], tipping, ipw, notes


def analyse_completed(completed: pd.DataFrame, z_terms, follow_ups) -> pd.DataFrame:
    """The MMRM change at each follow-up in one completed data set, in closed form.

    With no missing values and the time x characteristics model (every time point its
    own intercept and slopes), the unstructured MMRM's generalised least squares
    estimate is ordinary least squares at each time point (Zellner 1962: identical
    regressors), and its change at follow-up ``t`` is the intercept of the least-squares
    regression of ``value_t - value_0`` on the centred characteristics, with standard
    error and ``n - p`` degrees of freedom from that regression (tested against
    :func:`spimpact.models.mmrm.fit_mmrm` in the tests).
    """
    wide = completed.pivot(index="client_id", columns="timepoint", values="value")
    people = completed.drop_duplicates("client_id").set_index("client_id").loc[wide.index]
    x = np.column_stack([np.ones(len(wide)), people[list(z_terms)].to_numpy(dtype=float)])
    positions = [list(wide.columns).index(t) for t in follow_ups]
    return _change_regression(wide.to_numpy(dtype=float), x, positions, follow_ups)


def _change_regression(values, x, positions, follow_ups) -> pd.DataFrame:
    """Intercept of the regression of (visit - first visit) on ``x``, per follow-up."""
    gram = np.linalg.inv(x.T @ x)
    n, p = x.shape
    estimates, errors = [], []
    for position in positions:
        change = values[:, position] - values[:, 0]
        coefficients = gram @ (x.T @ change)
        residual = change - x @ coefficients
        variance = residual @ residual / (n - p)
        estimates.append(coefficients[0])
        errors.append(np.sqrt(variance * gram[0, 0]))
    return pd.DataFrame(
        {
            "term": [_term(t) for t in follow_ups],
            "estimate": estimates,
            "std_error": errors,
            "df": float(n - p),
        }
    )


def _term(timepoint: int) -> str:
    return f"C(timepoint)[T.{timepoint}]"


def _sequential_ipw(long, z_terms, conf_level, *, truncate) -> SequentialIpwResult:
    baseline = long[long["timepoint"] == 0].set_index("client_id")["value"]
    frame = long.assign(
        change=lambda d: np.where(
            d["timepoint"] > 0, d["value"] - d["client_id"].map(baseline), np.nan
        )
    )
    predictors = " + ".join(["C(timepoint) * previous_value", *z_terms])
    return fit_sequential_ipw(
        frame,
        subject="client_id",
        visit="timepoint",
        outcome="value",
        outcome_formula="change ~ 0 + C(timepoint)",
        dropout_formula=predictors,
        truncate=truncate,
        conf_level=conf_level,
    )


def _truncation_note(ipw, truncated, truncate, last) -> str:
    term = f"C(timepoint)[{last}]"
    full = ipw.tidy().set_index("term").loc[term, "estimate"]
    clipped = truncated.tidy().set_index("term").loc[term, "estimate"]
    summary = ipw.weight_summary.set_index("visit").loc[last]
    return (
        f"Sequential weights at the last follow-up range from {summary.weight_min:.2f} to "
        f"{summary.weight_max:.2f} (effective sample size {summary.effective_sample_size:.0f} "
        f"of {int(summary.n_observed)}); truncating them at the {truncate[0]:.0%} and "
        f"{truncate[1]:.0%} quantiles ({truncated.n_truncated} weights) moves the change "
        f"there from {full:+.2f} to {clipped:+.2f}."
    )


def _row(key: str, timepoint: int, tidy_row, n: int, df: float) -> dict:
    get = tidy_row.get if hasattr(tidy_row, "get") else tidy_row.__getitem__
    return {
        "key": key,
        "timepoint": int(timepoint),
        "estimate": float(get("estimate")),
        "std_error": float(get("std_error")),
        "conf_low": float(get("conf_low")),
        "conf_high": float(get("conf_high")),
        "p_value": float(get("p_value")),
        "n": int(n),
        "df": float(df),
    }


def estimates_tidy(estimates: pd.DataFrame, conf_level: float) -> pd.DataFrame:
    """The estimates frame as a tidy table at ``conf_level`` (term ``key:timepoint``)."""
    rows = [
        make_tidy(
            [f"{row.key}:{row.timepoint}"],
            [row.estimate],
            [row.std_error],
            conf_level=conf_level,
            df=row.df if np.isfinite(row.df) else None,
        )
        for row in estimates.itertuples()
    ]
    return pd.concat(rows, ignore_index=True)
