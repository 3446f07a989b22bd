"""Sequential inverse probability weighting for monotone dropout from repeated measures.

Each subject is followed over ordered visits until they first miss one (monotone
dropout). The probability of still being observed at each visit, given what was
recorded at the previous one (the previous score and any other predictors), is
modelled by a pooled logistic regression over the subject-visits at risk; the
cumulative product of its inverses weights the outcome model. The standard errors
come from the stacked estimating equations of the dropout models and the weighted
outcome model, so they account for estimating the weights. Generic: any DataFrame and
column names; the social-prescribing use sits in ``spimpact.analyses.attrition``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm

from spimpact.models.ipw import _check_complete, _split_formula, _translate_warnings
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy

_OBSERVED = "_spimpact_observed"
_SUBJECT = "_spimpact_subject"


# eq=False: the fields hold arrays and frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class SequentialIpwResult(EstimatorResult):
    """Outcome model weighted by the inverse probability of remaining under follow-up.

    ``tidy(conf_level=None)`` gives the weighted outcome model with standard errors
    from the stacked estimating equations (weights estimated); ``plot()`` the weights
    by visit.

    Attributes
    ----------
    coefficients
        Outcome-model estimates with the stacked-sandwich variance (``term, estimate,
        std_error``) at ``conf_level``, normal reference.
    coefficients_weights_known
        The same estimates with the usual robust (cluster-by-subject) sandwich that
        treats the weights as known, as ``geepack::geeglm(..., corstr =
        "independence")`` reports: conservative when the dropout model is right.
    vcov
        Stacked-sandwich covariance of the outcome-model coefficients.
    weights
        Weight of every row the outcome model used, indexed like the input data.
    dropout_model, numerator_model
        Tidy tables (log-odds of being observed) of the denominator and numerator
        models; ``numerator_model`` is ``None`` for unstabilised weights.
    weight_summary
        Per visit: ``visit, n_at_risk, n_observed, weight_min, weight_mean,
        weight_max, effective_sample_size``.
    n_subjects
        Subjects observed at the first visit (the ones followed).
    n_set_aside
        Rows observed after a subject's first missed visit: not used (monotone
        dropout), counted here.
    n_truncated, truncation_bounds
        Weights clipped by ``truncate`` and the values they were clipped to.
    stabilized, truncate, conf_level
        Settings of the fit.
    diagnostics
        Plain-English notes (non-convergence, separation, truncation, set-aside rows).
    """

    coefficients: pd.DataFrame
    coefficients_weights_known: pd.DataFrame
    vcov: pd.DataFrame
    weights: pd.Series
    dropout_model: pd.DataFrame
    numerator_model: pd.DataFrame | None
    weight_summary: pd.DataFrame
    n_subjects: int
    n_set_aside: int
    n_truncated: int
    truncation_bounds: tuple[float, float] | None
    stabilized: bool
    truncate: tuple[float, float] | None
    conf_level: float
    diagnostics: tuple[str, ...] = ()

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        return make_tidy(
            self.coefficients["term"],
            self.coefficients["estimate"],
            self.coefficients["std_error"],
            conf_level=conf_level,
        )

    def summary(self) -> str:
        """Text summary for people."""
        lines = [
            "Sequential inverse probability weighting for monotone dropout",
            f"subjects: {self.n_subjects}; weights "
            f"{'stabilised' if self.stabilized else 'unstabilised'}",
            self.weight_summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
            "standard errors from the stacked estimating equations (weights estimated)",
            self.tidy().to_string(index=False, float_format=lambda v: f"{v:.4f}"),
        ]
        lines += list(self.diagnostics)
        return "\n".join(lines)

    def plot(self, ax=None):
        """Box plot of the weights at each visit after the first."""
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        summary = self.weight_summary.iloc[1:]
        ax.vlines(summary["visit"], summary["weight_min"], summary["weight_max"], color="#41719c")
        ax.plot(summary["visit"], summary["weight_mean"], "o", color="#08519c")
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_xlabel("visit")
        ax.set_ylabel("weight (range and mean)")
        return ax


def fit_sequential_ipw(
    data: pd.DataFrame,
    *,
    subject: str,
    visit: str,
    outcome: str,
    outcome_formula: str,
    dropout_formula: str,
    numerator_formula: str | None = None,
    stabilized: bool = True,
    truncate: tuple[float, float] | None = None,
    weights: str | None = None,
    conf_level: float = 0.95,
) -> SequentialIpwResult:
    """Fit an outcome model weighted for monotone dropout, visit by visit.

    Parameters
    ----------
    data
        Long data, one row per subject and visit (rows of missed visits may be absent
        or have a missing ``outcome``). Visits are ordered by ``visit``; the first is
        everyone's entry and subjects without an ``outcome`` there are not followed.
    subject, visit, outcome
        Column names. A subject is observed at a visit when ``outcome`` is recorded;
        values recorded after a first missed visit are set aside (monotone dropout).
    outcome_formula
        ``"y ~ regressors"`` for the weighted outcome model, fitted on the observed
        rows whose left-hand side is recorded (e.g. ``"change ~ 0 + C(visit)"``).
    dropout_formula
        Right-hand side of the model for being observed at visit ``k`` among those
        observed at ``k - 1``, evaluated on the subject's row at visit ``k - 1`` with
        ``visit`` set to ``k`` and the outcome there available as
        ``previous_<outcome>`` (e.g. ``"C(visit) + previous_score + age"``).
    numerator_formula
        Right-hand side of the numerator model of stabilised weights, on the same
        rows; default ``C(<visit>)`` (the share still observed at each visit).
    stabilized
        Stabilised weights (default) or ``1 / P``.
    truncate
        Optional ``(lower, upper)`` quantiles at which the weights of the rows after
        the first visit are clipped; clipped weights are treated as constants in the
        variance.
    weights
        Optional column of known base weights (e.g. sampling or treatment weights)
        that multiply the dropout weights; treated as fixed.
    conf_level
        Level of the (normal) Wald intervals.

    Returns
    -------
    SequentialIpwResult

    Notes
    -----
    Robins JM, Rotnitzky A, Zhao LP (1995), JASA 90:106-121 (weighted estimating
    equations for monotone dropout); Hernán MA, Robins JM, *Causal Inference: What
    If* (2020), §12.6 and ch. 17 (inverse probability of censoring weights, pooled
    logistic models for time-varying censoring); Cole SR, Hernán MA (2008), Am J
    Epidemiol 168:656-664 (stabilisation, truncation). Variance: the empirical
    sandwich of the stacked estimating equations (logistic scores of the weight
    models and the weighted outcome equations, clustered by subject; Stefanski &
    Boos 2002, Am Stat 56:29-38), whose outcome block is smaller than the
    weights-known sandwich when the dropout model is correct (Lunceford & Davidian
    2004, Stat Med 23:2937-2960).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> n = 400
    >>> y = np.cumsum(rng.normal(1, 1, size=(n, 3)), axis=1)
    >>> stay = np.cumprod(rng.random((n, 3)) < 1 / (1 + np.exp(-(y - 1))), axis=1)
    >>> stay[:, 0] = 1
    >>> long = pd.DataFrame({"id": np.repeat(np.arange(n), 3), "t": np.tile([0, 1, 2], n),
    ...                      "y": np.where(stay, y, np.nan).ravel()})
    >>> res = fit_sequential_ipw(long, subject="id", visit="t", outcome="y",
    ...     outcome_formula="y ~ 0 + C(t)", dropout_formula="C(t) + previous_y")
    >>> res.n_subjects
    400
    """
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    for name, column in (("subject", subject), ("visit", visit), ("outcome", outcome)):
        if column not in data.columns:
            raise ValueError(f"{name} column {column!r} is not in the data")
    response, outcome_rhs = _split_formula(outcome_formula, "outcome_formula")
    if response is None or response not in data.columns:
        raise ValueError(
            f"outcome_formula needs a column of the data on the left of '~': {outcome_formula!r}"
        )
    lhs, dropout_rhs = _split_formula(dropout_formula, "dropout_formula")
    if lhs is not None:
        raise ValueError(
            "dropout_formula is the right-hand side only (being observed is built from the "
            f"outcome); got left-hand side {lhs!r}"
        )
    numerator_rhs = f"C({visit})" if numerator_formula is None else numerator_formula
    numerator_rhs = _split_formula(numerator_rhs, "numerator_formula")[1]
    if truncate is not None and not (0 <= truncate[0] < truncate[1] <= 1):
        raise ValueError(
            "truncate must be (lower, upper) quantiles with 0 <= lower < upper <= 1, "
            f"got {truncate}"
        )
    if weights is not None and (
        weights not in data.columns or data[weights].isna().any() or (data[weights] < 0).any()
    ):
        raise ValueError(f"weights column {weights!r} must exist and be non-negative and complete")
    if data.duplicated([subject, visit]).any():
        row = int(np.flatnonzero(data.duplicated([subject, visit]).to_numpy())[0])
        raise ValueError(
            f"data row {row}: more than one row for {subject} {data[subject].iloc[row]} at "
            f"{visit} {data[visit].iloc[row]}; expected one row per subject and visit"
        )

    diagnostics: list[str] = []
    frame, risk, n_set_aside = _monotone_frames(data, subject, visit, outcome)
    if n_set_aside:
        diagnostics.append(
            f"{n_set_aside} values recorded after a subject's first missed visit were set "
            "aside (the weights assume monotone dropout)."
        )
    if risk.empty:
        raise ValueError("no subject is at risk of dropout: there is only one visit")
    if risk[_OBSERVED].all():
        diagnostics.append("Nobody dropped out, so every weight is 1.")
    x_den = _design(dropout_rhs, risk)
    alpha, p_den, den_tidy = _logistic(risk[_OBSERVED], x_den, "dropout model", diagnostics)
    if stabilized:
        x_num = _design(numerator_rhs, risk)
        _, p_num, num_tidy = _logistic(risk[_OBSERVED], x_num, "numerator model", diagnostics)
    else:
        x_num, p_num, num_tidy = None, np.ones(len(risk)), None

    # Cumulative weight of each observed row: the product over visits up to it.
    risk = risk.assign(_ratio=p_num / p_den)
    risk["_cumulative"] = risk.groupby(_SUBJECT, sort=False)["_ratio"].cumprod()
    observed_risk = risk[risk["_row"] >= 0]
    frame["_weight"] = 1.0
    frame.loc[observed_risk["_row"].to_numpy(), "_weight"] = observed_risk["_cumulative"].to_numpy()

    later = frame[visit] != frame[visit].min()
    n_truncated, bounds, clipped = 0, None, np.zeros(len(frame), dtype=bool)
    if truncate is not None and later.any():
        low, high = np.quantile(frame.loc[later, "_weight"], list(truncate))
        outside = (frame["_weight"] < low) | (frame["_weight"] > high)
        clipped = (later & outside).to_numpy()
        n_truncated = int(clipped.sum())
        bounds = (float(low), float(high))
        frame.loc[later, "_weight"] = frame.loc[later, "_weight"].clip(low, high)
        diagnostics.append(
            f"{n_truncated} weights were truncated at the {truncate[0]:.1%} and "
            f"{truncate[1]:.1%} quantiles ({low:.3f} and {high:.3f})."
        )
    if later.any() and frame.loc[later, "_weight"].max() > 10 * frame.loc[later, "_weight"].mean():
        diagnostics.append(
            f"The largest weight ({frame.loc[later, '_weight'].max():.1f}) is more than 10 times "
            "the mean: a few people stand for many who were lost; consider truncating."
        )

    used = frame[frame[response].notna()]
    u = _design(outcome_rhs, used)
    y = used[[response]].astype(float)
    base = used[weights].to_numpy(dtype=float) if weights is not None else np.ones(len(used))
    w = used["_weight"].to_numpy() * base
    y, u_mat = y.to_numpy()[:, 0], u.to_numpy()
    beta = np.linalg.lstsq(u_mat * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    residual = y - u_mat @ beta

    vcov, known = _stacked_vcov(
        risk=risk,
        x_den=x_den.to_numpy(),
        p_den=p_den,
        x_num=None if x_num is None else x_num.to_numpy(),
        p_num=p_num,
        used=used,
        u=u_mat,
        w=w,
        residual=residual,
        clipped=clipped[frame.index.get_indexer(used.index)],
    )
    names = list(u.columns)
    coefficients = make_tidy(names, beta, np.sqrt(np.diag(vcov)), conf_level=conf_level)
    coefficients_known = make_tidy(names, beta, np.sqrt(np.diag(known)), conf_level=conf_level)
    weight_series = pd.Series(w, index=data.index[used["_row"].to_numpy()], name="weight")
    return SequentialIpwResult(
        coefficients=coefficients,
        coefficients_weights_known=coefficients_known,
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        weights=weight_series,
        dropout_model=den_tidy,
        numerator_model=num_tidy,
        weight_summary=_weight_summary(frame, risk, visit),
        n_subjects=int(frame[_SUBJECT].nunique()),
        n_set_aside=n_set_aside,
        n_truncated=n_truncated,
        truncation_bounds=bounds,
        stabilized=stabilized,
        truncate=truncate,
        conf_level=conf_level,
        diagnostics=tuple(diagnostics),
    )


def _monotone_frames(data, subject, visit, outcome):
    """Observed rows up to each subject's first missed visit, and the at-risk rows.

    Returns ``(frame, risk, n_set_aside)``: ``frame`` holds the kept observed rows
    (``_row`` = position in ``data``); ``risk`` one row per subject and visit at which
    they could have been observed (the previous row's columns, ``visit`` set to the
    visit at risk, ``previous_<outcome>``, ``_OBSERVED`` 0/1).
    """
    visits = np.sort(data[visit].dropna().unique())
    position = {v: k for k, v in enumerate(visits)}
    table = data.reset_index(drop=True).assign(_row=np.arange(len(data)))
    table[_SUBJECT] = table[subject]
    table["_k"] = table[visit].map(position)
    observed = table[table[outcome].notna()].sort_values([_SUBJECT, "_k"], kind="stable")
    first = observed.groupby(_SUBJECT, sort=False)["_k"].transform("min")
    observed = observed[first == 0]
    # monotone: the number of visits in a row from the first is the rank of each visit
    run = observed.groupby(_SUBJECT, sort=False).cumcount()
    kept = observed[observed["_k"] == run]
    n_set_aside = int(len(observed) - len(kept))
    last = kept.groupby(_SUBJECT, sort=False)["_k"].transform("max")
    previous = kept[kept["_k"] < len(visits) - 1].copy()
    previous[f"previous_{outcome}"] = previous[outcome]
    previous[_OBSERVED] = (previous["_k"] < last.loc[previous.index]).astype(int)
    previous["_k"] = previous["_k"] + 1
    previous[visit] = visits[previous["_k"].to_numpy()]
    # the row of the next visit, where observed, receives the weight
    next_rows = kept.set_index([_SUBJECT, "_k"])["_row"]
    keys = pd.MultiIndex.from_arrays([previous[_SUBJECT], previous["_k"]])
    previous["_row"] = next_rows.reindex(keys).fillna(-1).to_numpy(dtype=int)
    risk = previous.drop(columns=[outcome]).sort_values([_SUBJECT, "_k"], kind="stable")
    risk = risk.reset_index(drop=True)
    frame = kept.set_index("_row", drop=False).sort_index()
    frame.index.name = None
    return frame, risk, n_set_aside


def _design(rhs: str, frame: pd.DataFrame) -> pd.DataFrame:
    try:
        return patsy.dmatrix(rhs, frame, NA_action="raise", return_type="dataframe")
    except patsy.PatsyError:
        _check_complete(frame, rhs)
        raise


def _logistic(response, design, label, diagnostics):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = sm.GLM(response.to_numpy(dtype=float), design, family=sm.families.Binomial()).fit()
    diagnostics += _translate_warnings(caught, label)
    if not fit.converged:
        diagnostics.append(f"The {label} did not converge; its weights may be unreliable.")
    tidy = make_tidy(design.columns, fit.params.to_numpy(), fit.bse.to_numpy())
    return fit.params.to_numpy(), np.asarray(fit.fittedvalues, dtype=float), tidy


def _stacked_vcov(*, risk, x_den, p_den, x_num, p_num, used, u, w, residual, clipped):
    """Sandwich covariance of the outcome coefficients from the stacked equations.

    Returns ``(stacked, weights_known)``, both for the outcome block only.
    """
    subjects = pd.Index(pd.unique(np.concatenate([risk[_SUBJECT], used[_SUBJECT]])))
    risk_id = subjects.get_indexer(risk[_SUBJECT])
    used_id = subjects.get_indexer(used[_SUBJECT])
    n_subjects = len(subjects)
    # (design, fitted probability, sign of d log(weight) / d log(probability))
    models = [(x_den, p_den, -1.0)] + ([(x_num, p_num, 1.0)] if x_num is not None else [])
    r = risk[_OBSERVED].to_numpy(dtype=float)

    # Per-subject estimating functions, stacked: logistic scores, then the outcome.
    scores = [_by_subject(x * (r - p)[:, None], risk_id, n_subjects) for x, p, _ in models]
    outcome_rows = u * (w * residual)[:, None]
    scores.append(_by_subject(outcome_rows, used_id, n_subjects))
    psi = np.hstack(scores)
    meat = psi.T @ psi

    sizes = [x.shape[1] for x, _, _ in models] + [u.shape[1]]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    bread = np.zeros((offsets[-1], offsets[-1]))
    for k, (x, p, _) in enumerate(models):
        sl = slice(offsets[k], offsets[k + 1])
        bread[sl, sl] = -(x * (p * (1 - p))[:, None]).T @ x
    out = slice(offsets[-2], offsets[-1])
    bread[out, out] = -(u * w[:, None]).T @ u
    # d weight / d parameters: the cumulative sum over the visits up to each row of
    # d log(ratio) (log p_num - log p_den), i.e. -/+ (1 - p) x.
    observed_at = risk["_row"].to_numpy()
    used_rows = used["_row"].to_numpy()
    for k, (x, p, sign) in enumerate(models):
        d_log = sign * x * (1 - p)[:, None]
        cumulative = pd.DataFrame(d_log).groupby(risk[_SUBJECT].to_numpy(), sort=False).cumsum()
        by_row = pd.DataFrame(cumulative.to_numpy(), index=observed_at)
        by_row = by_row[observed_at >= 0]
        derivative = by_row.reindex(used_rows).fillna(0.0).to_numpy()
        derivative[clipped] = 0.0
        rows = u * (w * residual)[:, None]
        bread[out, offsets[k] : offsets[k + 1]] = rows.T @ derivative
    inverse = np.linalg.inv(bread)
    stacked = (inverse @ meat @ inverse.T)[out, out]
    outcome_bread = np.linalg.inv(bread[out, out])
    outcome_meat = meat[out, out]
    known = outcome_bread @ outcome_meat @ outcome_bread.T
    return stacked, known


def _by_subject(rows: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, rows.shape[1]))
    np.add.at(out, ids, rows)
    return out


def _weight_summary(frame, risk, visit) -> pd.DataFrame:
    at_risk = risk.groupby(visit).size()
    rows = []
    for value, group in frame.groupby(visit, sort=True):
        weights = group["_weight"].to_numpy()
        rows.append(
            {
                "visit": value,
                "n_at_risk": int(at_risk.get(value, len(group))),
                "n_observed": len(group),
                "weight_min": float(weights.min()),
                "weight_mean": float(weights.mean()),
                "weight_max": float(weights.max()),
                "effective_sample_size": float(weights.sum() ** 2 / (weights**2).sum()),
            }
        )
    return pd.DataFrame(rows)
