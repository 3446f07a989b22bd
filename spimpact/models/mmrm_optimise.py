"""Maximising the MMRM likelihood: quasi-Newton on an unconstrained scale, then Newton.

The covariance parameters are first optimised by BFGS on the unconstrained
``theta`` scale (every step a positive definite matrix) with the analytic
gradient; the solution is then polished by Newton-Raphson with step halving on
the natural (SAS) parameters with the analytic observed Hessian, which is what
SAS PROC MIXED runs throughout. Convergence is declared with SAS's default
relative Hessian criterion, g' H^-1 g / |deviance| <= 1e-8 (PROC MIXED
``CONVH``), and a positive definite Hessian. When BFGS fails, L-BFGS-B is tried,
then BFGS from a start with no correlation, and the best point found is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

import spimpact.models.mmrm_likelihood as likelihood
from spimpact.models.mmrm_covariance import CovarianceStructure

# SAS PROC MIXED's default relative Hessian convergence criterion (CONVH=1e-8).
RELATIVE_HESSIAN_TOLERANCE = 1e-8


@dataclass(frozen=True)
class Solution:
    """The optimum: natural parameters per group, and the fit at that point."""

    phis: tuple[np.ndarray, ...]
    state: likelihood.Profile
    derivatives: likelihood.Derivatives
    offsets: tuple[int, ...]
    converged: bool
    criterion: float
    optimisers_tried: tuple[str, ...]
    newton_iterations: int
    hessian_positive_definite: bool


class _Objective:
    """Deviance and its theta-gradient, cached on the last point."""

    def __init__(self, data, structure: CovarianceStructure, n_groups: int, reml: bool):
        self.data = data
        self.structure = structure
        self.n_groups = n_groups
        self.reml = reml
        self.size = structure.n_theta
        self._last = None

    def split(self, theta):
        return [theta[g * self.size : (g + 1) * self.size] for g in range(self.n_groups)]

    def __call__(self, theta):
        theta = np.asarray(theta, dtype=float)
        if self._last is not None and np.array_equal(self._last[0], theta):
            return self._last[1], self._last[2]
        value, gradient = self._evaluate(theta)
        self._last = (theta.copy(), value, gradient)
        return value, gradient

    def _evaluate(self, theta):
        structure = self.structure
        pieces = self.split(theta)
        with np.errstate(over="ignore", invalid="ignore"):
            phis = [structure.natural(piece) for piece in pieces]
        if not all(np.all(np.isfinite(phi)) for phi in phis):
            return np.inf, np.zeros_like(theta)
        sigmas = [structure.sigma(phi) for phi in phis]
        state = likelihood.profile(self.data, sigmas, self.reml)
        if state is None or not np.isfinite(state.deviance):
            return np.inf, np.zeros_like(theta)
        matrix = likelihood.matrix_gradient(self.data, state, self.reml)
        gradient = []
        for g, (piece, phi) in enumerate(zip(pieces, phis, strict=True)):
            gradient.append(structure.theta_gradient(piece, phi, matrix[g]))
        return state.deviance, np.concatenate(gradient)


def _natural_state(data, structure, phis, reml):
    sigmas = [structure.sigma(phi) for phi in phis]
    return likelihood.profile(data, sigmas, reml)


def stacked_derivatives(structure, phis):
    """First and second derivatives of each group's matrix, stacked over groups."""
    firsts, seconds = zip(*(structure.derivatives(phi)[1:] for phi in phis), strict=True)
    return np.stack(firsts), np.stack(seconds)


def _derivatives(data, structure, phis, state, reml):
    firsts, seconds = stacked_derivatives(structure, phis)
    return likelihood.derivatives(data, state, firsts, seconds, reml)


def _newton(data, structure, phis, reml, offsets, max_iterations=50):
    """Newton-Raphson with step halving on the natural parameters."""
    phis = [np.asarray(phi, dtype=float) for phi in phis]
    state = _natural_state(data, structure, phis, reml)
    derivs = _derivatives(data, structure, phis, state, reml)
    iterations = 0
    for _ in range(max_iterations):
        try:
            np.linalg.cholesky(derivs.hessian)
        except np.linalg.LinAlgError:
            break
        step = np.linalg.solve(derivs.hessian, derivs.gradient)
        decrement = float(derivs.gradient @ step)
        if decrement <= 1e-14 * max(1.0, abs(state.deviance)):
            break
        accepted = False
        size = 1.0
        flat = np.concatenate(phis)
        while size > 1e-10:
            candidate = flat - size * step
            trial = [candidate[offsets[g] : offsets[g + 1]] for g in range(len(phis))]
            if all(structure.is_valid(phi) for phi in trial):
                trial_state = _natural_state(data, structure, trial, reml)
                if trial_state is not None and trial_state.deviance <= state.deviance + 1e-10 * max(
                    1.0, abs(state.deviance)
                ):
                    accepted = True
                    break
            size /= 2
        if not accepted:
            break
        phis, state = trial, trial_state
        derivs = _derivatives(data, structure, phis, state, reml)
        iterations += 1
    return phis, state, derivs, iterations


def optimise(
    data: likelihood.Data,
    structure: CovarianceStructure,
    n_groups: int,
    reml: bool,
    starts: list[np.ndarray],
    *,
    max_iterations: int = 200,
) -> Solution:
    """Maximise the (restricted) likelihood from the unconstrained starting points.

    BFGS then L-BFGS-B from ``starts[0]``, then BFGS from each further start,
    stopping at the first that converges; the best point found is returned.
    """
    objective = _Objective(data, structure, n_groups, reml)
    offsets = tuple(g * structure.n_theta for g in range(n_groups + 1))
    attempts = [("BFGS", "BFGS", starts[0]), ("L-BFGS-B", "L-BFGS-B", starts[0])]
    attempts += [(f"BFGS (start {k + 2})", "BFGS", start) for k, start in enumerate(starts[1:])]
    tried = []
    best = None
    for label, method, start in attempts:
        tried.append(label)
        result = scipy.optimize.minimize(
            objective, start, jac=True, method=method, options={"maxiter": max_iterations}
        )
        if not np.isfinite(result.fun):
            continue
        phis = [structure.natural(piece) for piece in objective.split(result.x)]
        phis, state, derivs, iterations = _newton(data, structure, phis, reml, offsets)
        criterion, positive = _criterion(derivs, state)
        candidate = (phis, state, derivs, iterations, criterion, positive)
        if best is None or state.deviance < best[1].deviance - 1e-9:
            best = candidate
        if positive and criterion <= RELATIVE_HESSIAN_TOLERANCE:
            break
    if best is None:
        raise ValueError(
            "the likelihood could not be evaluated at any point tried: the covariance "
            f"structure {structure.name!r} does not suit these data"
        )
    phis, state, derivs, iterations, criterion, positive = best
    return Solution(
        phis=tuple(phis),
        state=state,
        derivatives=derivs,
        offsets=offsets,
        converged=bool(positive and criterion <= RELATIVE_HESSIAN_TOLERANCE),
        criterion=criterion,
        optimisers_tried=tuple(tried),
        newton_iterations=iterations,
        hessian_positive_definite=positive,
    )


def _criterion(derivs, state) -> tuple[float, bool]:
    """SAS's relative Hessian criterion g'H^-1 g / |f| and whether H is positive definite."""
    try:
        np.linalg.cholesky(derivs.hessian)
    except np.linalg.LinAlgError:
        gradient_norm = float(np.max(np.abs(derivs.gradient)))
        return gradient_norm / max(1.0, abs(state.deviance)), False
    step = np.linalg.solve(derivs.hessian, derivs.gradient)
    return abs(float(derivs.gradient @ step)) / max(1.0, abs(state.deviance)), True
