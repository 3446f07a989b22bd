"""Mixed models for repeated measures (MMRM): ``fit_mmrm``.

A marginal linear model with no random effects: each subject's responses over
the visits are multivariate normal with mean X beta and a visits x visits
covariance matrix of a chosen structure, and subjects are independent. Subjects
with missed visits contribute the visits they have, so the estimates are valid
when data are missing at random given the observed responses and covariates,
provided the covariance is right (the reason to prefer an unstructured one).
This is the model of R ``mmrm`` (Sabanes Bove et al. 2024) and SAS PROC MIXED
with a ``REPEATED`` statement, and reproduces both; see
:mod:`spimpact.models.mmrm_likelihood` (likelihood),
:mod:`spimpact.models.mmrm_covariance` (structures),
:mod:`spimpact.models.mmrm_optimise` (optimiser),
:mod:`spimpact.models.mmrm_inference` (degrees of freedom) and
:mod:`spimpact.models.mmrm_means` (marginal means).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

import spimpact.models.mmrm_inference as inference
import spimpact.models.mmrm_likelihood as likelihood
import spimpact.models.mmrm_means as means
from spimpact.models.mixed_formula import formula_variables
from spimpact.models.mmrm_covariance import STRUCTURES, make_structure
from spimpact.models.mmrm_optimise import optimise, stacked_derivatives
from spimpact.models.mmrm_result import MmrmResult

__all__ = ["MmrmResult", "fit_mmrm"]

METHODS = ("REML", "ML")


def fit_mmrm(
    formula: str,
    data: pd.DataFrame,
    *,
    subject: str,
    visit: str,
    covariance: str = "us",
    method: str = "REML",
    df: str = "satterthwaite",
    weights=None,
    group: str | None = None,
    conf_level: float = 0.95,
    max_iterations: int = 200,
) -> MmrmResult:
    """Fit a mixed model for repeated measures.

    Parameters
    ----------
    formula
        Fixed effects in patsy syntax, e.g. ``"score ~ C(visit) * arm + age"``.
        Categorical columns keep the order of a pandas categorical (the first
        level is the reference); other text columns are sorted.
    data
        One row per subject and visit. Rows with a missing response are missed
        visits; rows with a missing value in any model variable are not used
        (counted in ``n_rows_dropped``).
    subject, visit
        Columns identifying the subject and the visit (at most one row per
        subject and visit). Visit levels keep a categorical's order, else sorted.
    covariance
        Residual covariance over visits: ``"us"`` (unstructured), ``"cs"``
        (compound symmetry), ``"ar1"`` (first-order autoregressive), ``"toep"``
        (Toeplitz), or the heterogeneous ``"csh"``, ``"ar1h"``, ``"toeph"``
        (a variance per visit).
    method
        ``"REML"`` (restricted maximum likelihood) or ``"ML"``.
    df
        Degrees of freedom (and covariance of the estimates) for tests and
        intervals: ``"satterthwaite"``, ``"kenward_roger"`` (with the Kenward-Roger
        adjusted covariance, as SAS ``DDFM=KR``; REML only),
        ``"kenward_roger_linear"`` (SAS ``DDFM=KR(LINEAR)``) or ``"residual"``
        (N minus the number of coefficients).
    weights
        Observation weights, a column name or values aligned with ``data``: the
        residual variance of an observation is divided by its weight (R mmrm
        ``weights``, SAS ``WEIGHT``).
    group
        Optional column (constant within subject): a separate covariance matrix of
        the same structure for each of its levels (R mmrm ``us(visit | group /
        subject)``, SAS ``REPEATED / GROUP=``).
    conf_level
        Default level of the intervals of ``tidy``, ``marginal_means`` ...
    max_iterations
        Iteration limit of each quasi-Newton optimiser.

    Returns
    -------
    MmrmResult

    Notes
    -----
    The likelihood is evaluated from per-pattern sufficient statistics (subjects
    grouped by which visits they attended), with analytic gradient and Hessian;
    the optimum is found by BFGS on an unconstrained scale then Newton-Raphson on
    SAS's parameters, with L-BFGS-B, then BFGS from an uncorrelated start, as
    fallbacks. Starting values are moment estimates from ordinary least-squares
    residuals. ``converged`` is
    SAS's relative Hessian criterion (<= 1e-8) with a positive definite Hessian.
    Satterthwaite degrees of freedom follow Fai & Cornelius (1996) and Kenward-
    Roger follows Kenward & Roger (1997) in SAS's parameterisation of each
    structure (variance and covariance elements for ``"us"``), which is what makes
    it match ``DDFM=KR``; R mmrm's default ``"Kenward-Roger"`` for ``us`` uses a
    Cholesky parameterisation instead, and its ``"Kenward-Roger-Linear"`` equals
    SAS and this function.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> n = 300
    >>> frame = pd.DataFrame({"id": np.repeat(np.arange(n), 3), "visit": np.tile([0, 1, 2], n)})
    >>> noise = rng.multivariate_normal([0, 0, 0], [[4, 2, 1], [2, 5, 3], [1, 3, 9]], n)
    >>> frame["score"] = 20 + 1.5 * frame.visit + noise.ravel()
    >>> fit = fit_mmrm("score ~ C(visit)", frame, subject="id", visit="visit")
    >>> fit.converged
    True
    >>> fit.contrasts().estimate.round(1).tolist()
    [1.4, 2.8]
    """
    _check_options(data, covariance, method, df, conf_level)
    reml = method == "REML"
    if "~" not in formula:
        raise ValueError(f"formula must have a response, e.g. 'score ~ visit'; got {formula!r}")
    for role, name in (("subject", subject), ("visit", visit), ("group", group)):
        if name is not None and name not in data.columns:
            raise ValueError(f"{role} column {name!r} is not in data; columns are {list(data)}")
    variables = formula_variables(formula, data)
    weight_values, weight_label = _weights(weights, data)
    used = list(dict.fromkeys([*variables, subject, visit, *([group] if group else [])]))
    frame = data[used].copy()
    frame["__weight"] = weight_values
    complete = frame.notna().all(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    frame = frame[complete]
    if frame.empty:
        raise ValueError("no complete rows: every row has a missing value in a model variable")
    _check_positive_weights(frame, weight_label)
    visit_levels = _levels(frame[visit])
    visit_codes = pd.Categorical(frame[visit], categories=visit_levels).codes.astype(int)
    _check_duplicates(frame, subject, visit)
    subject_codes, subject_levels = pd.factorize(frame[subject], sort=True)
    group_levels, group_codes = _group_codes(frame, subject, group)
    variable_info = means.describe_variables(frame, variables[1:], formula)
    if visit in variable_info and variable_info[visit]["kind"] == "categorical":
        variable_info[visit]["levels"] = list(visit_levels)
    design_frame = means.as_design_frame(frame, variable_info)
    try:
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
    if len(y) <= x.shape[1]:
        raise ValueError(
            f"{len(y)} observations cannot estimate {x.shape[1]} fixed effects and a covariance"
        )
    structure = make_structure(covariance, visit_levels)
    data_blocks = likelihood.build_data(
        x,
        y,
        frame["__weight"].to_numpy(float),
        subject_codes,
        visit_codes,
        group_codes,
        len(visit_levels),
    )
    start = _start(x, y, subject_codes, visit_codes, group_codes, len(group_levels), structure)
    solution = optimise(
        data_blocks, structure, len(group_levels), reml, start, max_iterations=max_iterations
    )
    return _result(
        formula=formula,
        subject=subject,
        visit=visit,
        covariance=covariance,
        method=method,
        df=df,
        group=group,
        weight_label=weight_label,
        conf_level=conf_level,
        fixed_names=fixed_names,
        structure=structure,
        group_levels=group_levels,
        solution=solution,
        data_blocks=data_blocks,
        reml=reml,
        n_dropped=n_dropped,
        n_subjects=len(subject_levels),
        x_frame=x_frame,
        variable_info=variable_info,
        frame=frame,
    )


def _check_options(data, covariance, method, df, conf_level) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if covariance not in STRUCTURES:
        raise ValueError(f"covariance must be one of {list(STRUCTURES)}, got {covariance!r}")
    if method not in METHODS:
        raise ValueError(f"method must be 'REML' or 'ML', got {method!r}")
    if df not in inference.DF_METHODS:
        raise ValueError(f"df must be one of {list(inference.DF_METHODS)}, got {df!r}")
    if df.startswith("kenward_roger") and method != "REML":
        raise ValueError("Kenward-Roger degrees of freedom need method='REML' (as in SAS and mmrm)")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")


def _weights(weights, data):
    if weights is None:
        return np.ones(len(data)), None
    if isinstance(weights, str):
        if weights not in data.columns:
            raise ValueError(f"weights column {weights!r} is not in data; columns are {list(data)}")
        return pd.to_numeric(data[weights], errors="coerce").to_numpy(float), weights
    values = np.asarray(weights, dtype=float)
    if values.shape != (len(data),):
        raise ValueError(
            f"weights must have one value per row of data ({len(data)}), got {values.shape}"
        )
    return values, "array"


def _check_positive_weights(frame, label) -> None:
    bad = frame.index[~(np.isfinite(frame["__weight"]) & (frame["__weight"] > 0))]
    if len(bad):
        row = bad[0]
        raise ValueError(
            f"weights ({label}) must be positive and finite: row {_plain(row)!r} has "
            f"{_plain(frame.loc[row, '__weight'])!r} ({len(bad)} such rows)"
        )


def _levels(column: pd.Series) -> tuple:
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.unique())
        return tuple(level for level in column.cat.categories if level in present)
    return tuple(sorted(column.unique().tolist()))


def _check_duplicates(frame, subject, visit) -> None:
    duplicated = frame.duplicated([subject, visit], keep=False)
    if duplicated.any():
        rows = frame.index[duplicated]
        who, when = (_plain(frame.at[rows[0], name]) for name in (subject, visit))
        raise ValueError(
            f"subject {who!r} has more than one row at {visit} {when!r} "
            f"(rows {list(rows[:4])}); an MMRM needs at most one observation per subject "
            "and visit"
        )


def _plain(value):
    """A numpy scalar as the Python value it holds, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value


def _group_codes(frame, subject, group):
    if group is None:
        return ("all",), np.zeros(len(frame), dtype=int)
    per_subject = frame.groupby(subject, sort=False)[group].nunique()
    mixed = per_subject[per_subject > 1]
    if len(mixed):
        raise ValueError(
            f"group column {group!r} must be constant within subject; subject "
            f"{_plain(mixed.index[0])!r} has {int(mixed.iloc[0])} different values"
        )
    levels = _levels(frame[group])
    codes = pd.Categorical(frame[group], categories=levels).codes.astype(int)
    return levels, codes


def _start(x, y, subject_codes, visit_codes, group_codes, n_groups, structure):
    """Starting points from least-squares residuals: moment estimates, and uncorrelated.

    The first is each group's moment estimate of the covariance, the second the
    same variances with the correlations set to zero.
    """
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ beta
    m = structure.n_visits
    n_subjects = int(subject_codes.max()) + 1
    dense = np.full((n_subjects, m), np.nan)
    dense[subject_codes, visit_codes] = residual
    subject_group = np.zeros(n_subjects, dtype=int)
    subject_group[subject_codes] = group_codes
    thetas, diagonals = [], []
    for g in range(n_groups):
        block = dense[subject_group == g]
        seen = np.isfinite(block)
        filled = np.where(seen, block, 0.0)
        counts = seen.T.astype(float) @ seen.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            moments = (filled.T @ filled) / counts
        moments = np.where(counts >= 2, moments, np.nan)
        thetas.append(structure.start(moments))
        diagonals.append(structure.start(np.diag(np.diag(moments))))
    return [np.concatenate(thetas), np.concatenate(diagonals)]


def _result(**kw) -> MmrmResult:
    solution = kw["solution"]
    structure = kw["structure"]
    derivs = solution.derivatives
    state = solution.state
    vcov_model = state.xtvx_inv
    diagnostics = _diagnostics(solution, kw["n_subjects"], structure)
    w = None
    if solution.hessian_positive_definite:
        # W: inverse observed information of the covariance parameters (the
        # Hessian of -log L = deviance / 2), as SAS and R mmrm use.
        w = 2 * np.linalg.inv(derivs.hessian)
    kr_sums = {}
    if w is not None and kw["reml"]:
        firsts, seconds = stacked_derivatives(structure, solution.phis)
        for linear in (False, True):
            kr_sums[linear] = likelihood.kenward_roger_sum(
                kw["data_blocks"], state, firsts, seconds, w, linear=linear
            )
    residual_df = kw["data_blocks"].n_obs - len(kw["fixed_names"])
    vcov, df_coef = inference.coefficient_inference(
        kw["df"], vcov_model, derivs.p, w, kr_sums, residual_df
    )
    visits = structure.visits
    names = structure.parameter_names()
    group_levels = kw["group_levels"]
    grouped = kw["group"] is not None
    sigmas = [structure.sigma(phi) for phi in solution.phis]
    if grouped:
        index = pd.MultiIndex.from_tuples(
            [(level, v) for level in group_levels for v in visits], names=[kw["group"], kw["visit"]]
        )
        covariance = pd.DataFrame(np.vstack(sigmas), index=index, columns=list(visits))
        param_names = [f"{level}: {name}" for level in group_levels for name in names]
    else:
        covariance = pd.DataFrame(sigmas[0], index=list(visits), columns=list(visits))
        param_names = names
    covariance.columns.name = kw["visit"]
    categorical = [n for n, v in kw["variable_info"].items() if v["kind"] == "categorical"]
    return MmrmResult(
        formula=kw["formula"],
        subject=kw["subject"],
        visit=kw["visit"],
        covariance_type=kw["covariance"],
        method=kw["method"],
        df_method=kw["df"],
        group=kw["group"],
        weights=kw["weight_label"],
        fixed_names=kw["fixed_names"],
        coef=state.beta,
        vcov=vcov,
        vcov_model=vcov_model,
        df_coef=df_coef,
        covariance=covariance,
        cov_params=pd.Series(np.concatenate(solution.phis), index=param_names),
        cov_params_vcov=w if w is not None else np.full((len(param_names),) * 2, np.nan),
        loglik=-state.deviance / 2,
        n_obs=kw["data_blocks"].n_obs,
        n_subjects=kw["n_subjects"],
        n_rows_dropped=kw["n_dropped"],
        visits=visits,
        converged=solution.converged,
        convergence_criterion=solution.criterion,
        optimisers_tried=solution.optimisers_tried,
        diagnostics=tuple(diagnostics),
        _design_info=kw["x_frame"].design_info,
        _variables=kw["variable_info"],
        _observed=kw["frame"][categorical].reset_index(drop=True),
        _p_h=derivs.p,
        _residual_df=residual_df,
        _kr_sums=kr_sums,
        conf_level=kw["conf_level"],
    )


def _diagnostics(solution, n_subjects, structure) -> list[str]:
    sentences = []
    for phi in solution.phis:
        eigenvalues = np.linalg.eigvalsh(structure.sigma(phi))
        if eigenvalues[0] <= 1e-8 * eigenvalues[-1]:
            sentences.append(
                "The estimated covariance matrix is singular: some combination of visits has "
                "no residual variance, which happens when a visit has too few subjects to "
                f"estimate the {structure.name!r} structure; the fit cannot be trusted, use a "
                "simpler covariance structure."
            )
            break
    if not solution.hessian_positive_definite:
        sentences.append(
            "The Hessian of the likelihood is not positive definite at the solution: the "
            f"{structure.name!r} covariance is at the edge of what it allows (a variance or "
            "correlation at its limit) or is not identified by these data, so the degrees of "
            "freedom cannot be computed; use a simpler covariance structure."
        )
    elif not solution.converged:
        sentences.append(
            f"The optimisers ({', '.join(solution.optimisers_tried)}) stopped before the "
            f"convergence criterion was met (relative criterion {solution.criterion:.2g} > 1e-8); "
            "estimates may be inaccurate."
        )
    n_params = structure.n_theta * len(solution.phis)
    if n_subjects < 2 * n_params:
        sentences.append(
            f"Only {n_subjects} subjects for {n_params} covariance parameters: the covariance "
            "is poorly estimated; consider a structure with fewer parameters."
        )
    return sentences
