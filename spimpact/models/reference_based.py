"""Reference-based and delta-adjusted multiple imputation of repeated measures (after rbmi).

The imputation model is a mixed model for repeated measures (MMRM): a mean
``X_ij beta`` per subject and visit and a visits x visits residual covariance.
:func:`draw_imputation_model` draws its parameters ``m`` times (approximate Bayes:
refitting the MMRM on bootstrap samples of subjects, rbmi's ``method_approxbayes``),
and :meth:`ImputationModelDraws.impute` completes the data once per draw:

* missing visits before a subject's last recorded one (intermittent) are imputed
  under missing at random, jointly from their conditional normal distribution;
* visits after the last recorded one (dropout) are imputed one at a time, each from its
  conditional distribution given every earlier visit, recorded or imputed, with
  ``delta`` added *inside* the loop: the shift of one visit enters the conditioning of
  the next, as in SAS PROC MI's ``MNAR ADJUST`` with monotone regression;
* ``strategy="return_to_baseline"`` imputes dropout visits around the subject's
  baseline mean instead of their own visit means (rbmi's jump to reference, with the
  first visit as the reference), keeping the subject's recorded deviations.

Generic: any long DataFrame and column names. Pool the analyses of the completed data
with :func:`spimpact.models.imputation.pool_analyses`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy

STRATEGIES = ("mar", "return_to_baseline")
METHODS = ("approx_bayes", "conditional_mean")


# eq=False: the fields hold arrays and frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class ImputationModelDraws:
    """Draws of an MMRM's parameters and the data they impute (rbmi's ``draws()``).

    Attributes
    ----------
    data
        One row per subject and visit (subjects in order of first appearance, visits
        sorted), the outcome missing where it was not recorded, the subject's other
        columns carried to every visit.
    subject, visit, outcome
        Column names.
    visits
        The visits, in order.
    design
        Fixed-effects design, ``(n_subjects, n_visits, n_parameters)``.
    betas, sigmas
        The drawn fixed effects ``(m, p)`` and covariance matrices ``(m, V, V)``.
    method
        ``"approx_bayes"`` (bootstrap draws) or ``"conditional_mean"`` (one draw at
        the estimate; imputations are conditional expectations, no noise).
    covariance
        The covariance structure of the MMRM fits.
    n_failures
        Bootstrap samples that were redrawn because the MMRM could not be fitted.
    diagnostics
        Plain-English notes.
    """

    data: pd.DataFrame
    subject: str
    visit: str
    outcome: str
    visits: tuple
    design: np.ndarray
    betas: np.ndarray
    sigmas: np.ndarray
    method: str = "approx_bayes"
    covariance: str = "us"
    n_failures: int = 0
    diagnostics: tuple[str, ...] = ()

    @property
    def m(self) -> int:
        """Number of parameter draws (imputed data sets)."""
        return len(self.betas)

    @property
    def observed(self) -> np.ndarray:
        """``(n_subjects, n_visits)``: whether the outcome was recorded."""
        n_visits = len(self.visits)
        return self.data[self.outcome].notna().to_numpy().reshape(-1, n_visits)

    @classmethod
    def from_parameters(
        cls,
        data: pd.DataFrame,
        *,
        formula: str,
        subject: str,
        visit: str,
        beta,
        sigma,
    ) -> ImputationModelDraws:
        """One draw at given parameters: conditional-mean imputation at known values.

        ``beta`` follows the columns of the formula's right-hand side (patsy order);
        ``sigma`` is the visits x visits covariance in visit order.
        """
        outcome, grid, design = _grid(data, formula, subject, visit)
        beta = np.asarray(beta, dtype=float)
        sigma = np.asarray(sigma, dtype=float)
        if beta.shape != (design.shape[2],):
            raise ValueError(f"beta needs {design.shape[2]} values, got {beta.shape}")
        if sigma.shape != (design.shape[1],) * 2:
            raise ValueError(f"sigma must be {design.shape[1]} x {design.shape[1]}")
        return cls(
            data=grid,
            subject=subject,
            visit=visit,
            outcome=outcome,
            visits=tuple(grid[visit].iloc[: design.shape[1]]),
            design=design,
            betas=beta[None, :],
            sigmas=sigma[None, :, :],
            method="conditional_mean",
            covariance="given",
        )

    def impute(
        self,
        *,
        strategy: str = "mar",
        delta: float | Mapping = 0.0,
        seed: int | np.random.Generator | None = None,
    ) -> tuple[pd.DataFrame, ...]:
        """Complete the data once per draw.

        Parameters
        ----------
        strategy
            ``"mar"`` (dropouts continue like similar people who stayed) or
            ``"return_to_baseline"`` (their later visits are centred on their baseline
            mean).
        delta
            Shift added to every imputed dropout visit (a number), or per visit (a
            mapping visit -> shift, others 0); applied inside the sequential loop.
        seed
            Seed of the normal draws; the same seed gives the same draws for every
            ``delta`` and ``strategy`` (common random numbers), so the results vary
            smoothly with ``delta``.

        Returns
        -------
        tuple of pandas.DataFrame
            ``m`` completed copies of ``data``; the column ``imputed`` marks the
            imputed rows.
        """
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        shifts = _shifts(delta, self.visits)
        rng = np.random.default_rng(seed)
        observed = self.observed
        n_subjects, n_visits = observed.shape
        y = self.data[self.outcome].to_numpy(dtype=float).reshape(n_subjects, n_visits)
        patterns = _patterns(observed)
        out = []
        for draw in range(self.m):
            normals = rng.standard_normal((n_subjects, n_visits))
            if self.method == "conditional_mean":
                normals[:] = 0.0
            mean = self.design @ self.betas[draw]
            completed = _impute_draw(
                y, patterns, mean, self.sigmas[draw], normals, shifts, strategy
            )
            frame = self.data.copy()
            frame[self.outcome] = completed.ravel()
            frame["imputed"] = ~observed.ravel()
            out.append(frame)
        return tuple(out)


def draw_imputation_model(
    data: pd.DataFrame,
    *,
    formula: str,
    subject: str,
    visit: str,
    covariance: str = "us",
    m: int = 20,
    method: str = "approx_bayes",
    seed: int | np.random.Generator | None = None,
    max_failures: int | None = None,
    max_iterations: int = 40,
) -> ImputationModelDraws:
    """Draw the parameters of an MMRM imputation model (rbmi's ``draws()``).

    Parameters
    ----------
    data
        Long data with one row per subject and visit at which the outcome was recorded
        (rows with a missing outcome are allowed); other columns in ``formula`` must be
        constant within subject, since they are carried to the visits that are missing.
    formula
        ``"outcome ~ fixed effects"`` of the MMRM, e.g. ``"value ~ C(visit) + age"``.
    subject, visit
        Column names.
    covariance
        Residual covariance structure of :func:`spimpact.models.mmrm.fit_mmrm`.
    m
        Number of draws.
    method
        ``"approx_bayes"``: each draw refits the MMRM on a bootstrap sample of subjects
        (rbmi ``method_approxbayes``; von Hippel & Bartlett 2021, Stat Sci 36:400);
        ``"conditional_mean"``: one draw at the estimate, for conditional-mean
        imputation (point estimates only; rbmi ``method_condmean``).
    seed
        Seed of the bootstrap samples.
    max_failures
        Bootstrap samples that may fail to fit (and are redrawn) before giving up;
        default ``m``.
    max_iterations
        Optimiser iterations allowed for each fit (a bootstrap sample that needs more
        is redrawn rather than waited for).

    Returns
    -------
    ImputationModelDraws

    Notes
    -----
    Fixed effects of each draw are the generalised least squares estimate given the
    draw's covariance (which the REML estimate is). Wolbers M, Noci A, Delmar P,
    Gower-Page C, Yiu S, Bartlett JW (2022), Pharm Stat 21:1246-1257 (reference-based
    imputation, conditional mean and approximate Bayes methods; R package rbmi);
    Carpenter JR, Roger JH, Kenward MG (2013), J Biopharm Stat 23:1352-1371.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> n = 60
    >>> long = pd.DataFrame({"id": np.repeat(np.arange(n), 3), "t": np.tile([0, 1, 2], n)})
    >>> long["y"] = 20 + long.t + np.repeat(rng.normal(0, 3, n), 3) + rng.normal(0, 1, 3 * n)
    >>> long.loc[(long.t == 2) & (long.id < 20), "y"] = np.nan
    >>> draws = draw_imputation_model(long, formula="y ~ C(t)", subject="id", visit="t",
    ...                               m=3, seed=1)
    >>> completed = draws.impute(strategy="mar", seed=2)
    >>> len(completed), int(completed[0].y.isna().sum())
    (3, 0)
    """
    from spimpact.models.mmrm import fit_mmrm

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if m < 1 or (method == "approx_bayes" and m < 2):
        raise ValueError(f"m must be at least 2 for approximate Bayes draws, got {m}")
    outcome, grid, design = _grid(data, formula, subject, visit)
    n_subjects, n_visits, _ = design.shape
    visits = tuple(grid[visit].iloc[:n_visits])
    observed = grid[outcome].notna().to_numpy().reshape(n_subjects, n_visits)
    y = grid[outcome].to_numpy(dtype=float).reshape(n_subjects, n_visits)
    recorded = grid[grid[outcome].notna()]

    def fit(rows: pd.DataFrame):
        result = fit_mmrm(
            formula, rows, subject=subject, visit=visit, covariance=covariance,
            max_iterations=max_iterations,
        )  # fmt: skip
        if not result.converged:
            raise ValueError("the MMRM did not converge")
        sigma = result.covariance.reindex(index=list(visits), columns=list(visits))
        return sigma.to_numpy(dtype=float)

    if method == "conditional_mean":
        sigma = fit(recorded)
        beta = _gls(y, observed, design, sigma)
        return ImputationModelDraws(
            data=grid, subject=subject, visit=visit, outcome=outcome, visits=visits,
            design=design, betas=beta[None, :], sigmas=sigma[None], method=method,
            covariance=covariance,
        )  # fmt: skip

    rng = np.random.default_rng(seed)
    limit = m if max_failures is None else max_failures
    betas, sigmas, failures = [], [], 0
    while len(betas) < m:
        chosen = rng.integers(0, n_subjects, n_subjects)
        rows = np.concatenate([np.arange(i * n_visits, (i + 1) * n_visits) for i in chosen])
        sample = grid.iloc[rows].copy()
        # a subject drawn twice counts as two subjects
        sample[subject] = np.repeat(np.arange(n_subjects), n_visits)
        sample = sample[sample[outcome].notna()]
        x = design[chosen]
        try:
            recorded_rows = x[observed[chosen]]
            # rank of the small cross-product: an SVD of the whole design is slow
            if np.linalg.matrix_rank(recorded_rows.T @ recorded_rows) < x.shape[2]:
                raise ValueError("a category is missing from the bootstrap sample")
            sigma = fit(sample)
            beta = _gls(y[chosen], observed[chosen], x, sigma)
        except (ValueError, np.linalg.LinAlgError) as error:
            failures += 1
            if failures > limit:
                raise ValueError(
                    f"{failures} bootstrap samples could not be fitted (last: {error}); "
                    "the imputation model is too rich for these data"
                ) from None
            continue
        betas.append(beta)
        sigmas.append(sigma)
    diagnostics = ()
    if failures:
        diagnostics = (
            f"{failures} bootstrap samples of the imputation model could not be fitted and "
            "were redrawn.",
        )
    return ImputationModelDraws(
        data=grid, subject=subject, visit=visit, outcome=outcome, visits=visits,
        design=design, betas=np.array(betas), sigmas=np.array(sigmas), method=method,
        covariance=covariance, n_failures=failures, diagnostics=diagnostics,
    )  # fmt: skip


def _grid(data: pd.DataFrame, formula: str, subject: str, visit: str):
    """Every subject at every visit, subject columns carried; and the design array."""
    if "~" not in formula:
        raise ValueError(f"formula needs an outcome on the left of '~': {formula!r}")
    outcome, rhs = (part.strip() for part in formula.split("~", 1))
    for name, column in (("subject", subject), ("visit", visit), ("outcome", outcome)):
        if column not in data.columns:
            raise ValueError(f"{name} column {column!r} is not in the data")
    if data.duplicated([subject, visit]).any():
        row = int(np.flatnonzero(data.duplicated([subject, visit]).to_numpy())[0])
        raise ValueError(
            f"data row {row}: more than one row for {subject} {data[subject].iloc[row]} at "
            f"{visit} {data[visit].iloc[row]}; expected one row per subject and visit"
        )
    recorded = data.groupby(subject, sort=False)[outcome].count()
    if (recorded == 0).any():
        raise ValueError(
            f"{subject} {recorded.index[recorded == 0][0]} has no recorded {outcome}; "
            "subjects without any recorded value cannot be imputed from their own data"
        )
    visits = np.sort(data[visit].dropna().unique())
    subjects = pd.unique(data[subject])
    carried = [c for c in data.columns if c not in (visit, outcome)]
    constant = data.groupby(subject, sort=False)[carried].nunique(dropna=False).max()
    varying = [c for c in carried if constant[c] > 1 and c in rhs]
    if varying:
        raise ValueError(
            f"column(s) {varying} vary within {subject}; the imputation model's covariates "
            "must be constant within subject (they are carried to missing visits)"
        )
    people = data.drop_duplicates(subject).set_index(subject)[[c for c in carried if c != subject]]
    index = pd.MultiIndex.from_product([subjects, visits], names=[subject, visit])
    grid = (
        data.set_index([subject, visit])[[outcome]]
        .reindex(index)
        .reset_index()
        .join(people, on=subject)
    )
    try:
        design = patsy.dmatrix(rhs, grid, NA_action="raise", return_type="dataframe")
    except patsy.PatsyError as error:
        raise ValueError(f"cannot build the imputation model '{rhs}': {error}") from None
    array = design.to_numpy(dtype=float).reshape(len(subjects), len(visits), -1)
    return outcome, grid, array


def _shifts(delta, visits) -> np.ndarray:
    if isinstance(delta, Mapping):
        unknown = [v for v in delta if v not in visits]
        if unknown:
            raise ValueError(f"delta names visits {unknown} that are not in the data")
        return np.array([float(delta.get(v, 0.0)) for v in visits])
    return np.full(len(visits), float(delta))


def _gls(y, observed, design, sigma) -> np.ndarray:
    """Generalised least squares estimate of the fixed effects given the covariance."""
    p = design.shape[2]
    xtx, xty = np.zeros((p, p)), np.zeros(p)
    for pattern, rows in _patterns(observed):
        seen = np.asarray(pattern)
        inverse = np.linalg.inv(sigma[np.ix_(seen, seen)])
        x = design[rows][:, seen, :]
        xtx += np.einsum("nvp,vw,nwq->pq", x, inverse, x)
        xty += np.einsum("nvp,vw,nw->p", x, inverse, y[rows][:, seen])
    return np.linalg.solve(xtx, xty)


def _patterns(observed: np.ndarray):
    """``(pattern, rows)`` for each distinct row of the 0/1 ``observed`` matrix."""
    unique, inverse = np.unique(observed, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return [(tuple(pattern), np.flatnonzero(inverse == k)) for k, pattern in enumerate(unique)]


def _impute_draw(y, patterns, mean, sigma, normals, shifts, strategy) -> np.ndarray:
    """Impute every subject's missing visits for one parameter draw."""
    out = y.copy()
    n_visits = y.shape[1]
    for pattern, rows in patterns:
        seen = np.asarray(pattern)
        if seen.all():
            continue
        last = int(np.flatnonzero(seen).max())
        values, mu = out[rows], mean[rows]
        z = normals[rows]
        # intermittent gaps: joint draw given everything recorded, missing at random
        gaps = ~seen & (np.arange(n_visits) < last)
        if gaps.any():
            values[:, gaps] = _conditional_draw(values, mu, sigma, seen, gaps, z[:, gaps])
        # the reference mean: own means up to the last visit, then by strategy
        reference = mu.copy()
        if strategy == "return_to_baseline":
            reference[:, last + 1 :] = mu[:, [0]]
        for j in range(last + 1, n_visits):
            before = np.arange(n_visits) < j
            target = np.arange(n_visits) == j
            values[:, j] = (
                _conditional_draw(values, reference, sigma, before, target, z[:, [j]])[:, 0]
                + shifts[j]
            )
        out[rows] = values
    return out


def _conditional_draw(values, mu, sigma, given, target, z) -> np.ndarray:
    """Draw ``target`` visits given the ``given`` ones (rows of ``values``), N(mu, sigma)."""
    s_gg = sigma[np.ix_(given, given)]
    s_tg = sigma[np.ix_(target, given)]
    s_tt = sigma[np.ix_(target, target)]
    coefficients = np.linalg.solve(s_gg, s_tg.T).T
    centre = mu[:, target] + (values[:, given] - mu[:, given]) @ coefficients.T
    spread = s_tt - coefficients @ s_tg.T
    root = np.linalg.cholesky((spread + spread.T) / 2 + 1e-12 * np.eye(len(spread)))
    return centre + z @ root.T
