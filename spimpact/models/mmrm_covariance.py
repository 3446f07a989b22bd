"""Residual covariance structures of the MMRM, in SAS PROC MIXED's parameterisation.

Each structure maps its *natural* parameters (those SAS prints under "Covariance
Parameter Estimates": variances, covariances, correlations) to the visits x visits
covariance matrix, with the first and second derivatives the likelihood, the
Satterthwaite degrees of freedom and the Kenward-Roger adjustment need. The
Kenward-Roger adjustment depends on the parameterisation through the second
derivatives (Kenward & Roger 1997, eq. 4); using SAS's makes ``DDFM=KR`` reproducible:
the unstructured, compound-symmetry and Toeplitz matrices are linear in their SAS
parameters (second derivatives zero), AR(1) and the heterogeneous structures are not.

The optimiser works on an unconstrained vector ``theta`` (log standard deviations,
a Cholesky factor, and tanh / logistic transforms of correlations or partial
autocorrelations) so that every step gives a positive definite matrix; the map
from ``theta`` to the natural parameters is written with complex-safe operations
so its Jacobian comes from the complex step (Squire & Trapp 1998), exact to
rounding.

>>> structure = make_structure("ar1", ["v1", "v2", "v3"])
>>> phi = structure.natural(np.array([np.log(2.0), np.arctanh(0.5)]))
>>> phi.round(6).tolist()
[4.0, 0.5]
>>> structure.sigma(phi)[0].round(6).tolist()
[4.0, 2.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRUCTURES = ("us", "cs", "csh", "ar1", "ar1h", "toep", "toeph")
HETEROGENEOUS = ("csh", "ar1h", "toeph")
DESCRIPTIONS = {
    "us": "unstructured",
    "cs": "compound symmetry",
    "csh": "heterogeneous compound symmetry",
    "ar1": "first-order autoregressive",
    "ar1h": "heterogeneous first-order autoregressive",
    "toep": "Toeplitz",
    "toeph": "heterogeneous Toeplitz",
}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def pacf_to_acf(pacf) -> list:
    """Autocorrelations at lags 1..m-1 from partial autocorrelations (Durbin-Levinson).

    Any partial autocorrelations in (-1, 1) give a positive definite Toeplitz
    correlation matrix (Barndorff-Nielsen & Schou 1973), which is why the Toeplitz
    structures are optimised on ``tanh``-transformed partial autocorrelations.
    Complex-safe.

    >>> [round(float(r), 6) for r in pacf_to_acf([0.5, 0.0])]
    [0.5, 0.25]
    """
    acf: list = []
    coefficients: list = []
    for k, partial in enumerate(pacf):
        if k == 0:
            coefficients = [partial]
            acf.append(partial)
            continue
        innovation = 1 - sum(coefficients[j] * acf[j] for j in range(k))
        acf.append(sum(coefficients[j] * acf[k - 1 - j] for j in range(k)) + partial * innovation)
        coefficients = [coefficients[j] - partial * coefficients[k - 1 - j] for j in range(k)] + [
            partial
        ]
    return acf


def acf_to_pacf(acf) -> np.ndarray:
    """Partial autocorrelations from autocorrelations (the inverse Durbin-Levinson step)."""
    acf = [float(a) for a in acf]
    pacf = []
    coefficients: list[float] = []
    for k in range(len(acf)):
        if k == 0:
            partial = acf[0]
            coefficients = [partial]
        else:
            numerator = acf[k] - sum(coefficients[j] * acf[k - 1 - j] for j in range(k))
            denominator = 1 - sum(coefficients[j] * acf[j] for j in range(k))
            partial = numerator / denominator if abs(denominator) > 1e-12 else 0.0
            partial = float(np.clip(partial, -0.9, 0.9))
            coefficients = [coefficients[j] - partial * coefficients[k - 1 - j] for j in range(k)]
            coefficients.append(partial)
        pacf.append(float(np.clip(partial, -0.9, 0.9)))
    return np.array(pacf)


@dataclass(frozen=True)
class CovarianceStructure:
    """One covariance structure over ``visits`` (labels in visit order).

    ``natural(theta)`` gives the SAS parameters, ``sigma``, ``dsigma`` and
    ``d2sigma`` the matrix and its derivatives with respect to them, stacked as
    arrays ``(m, m)``, ``(n, m, m)`` and ``(n, n, m, m)``.
    """

    name: str
    visits: tuple

    @property
    def n_visits(self) -> int:
        """Number of visits."""
        return len(self.visits)

    @property
    def n_theta(self) -> int:
        """Number of covariance parameters (the same on both scales)."""
        m = self.n_visits
        return {
            "us": m * (m + 1) // 2,
            "cs": 2,
            "ar1": 2,
            "toep": m,
            "csh": m + 1,
            "ar1h": m + 1,
            "toeph": 2 * m - 1,
        }[self.name]

    def parameter_names(self) -> list[str]:
        """Names of the natural parameters, after SAS's "Cov Parm" column."""
        v = [str(level) for level in self.visits]
        m = self.n_visits
        if self.name == "us":
            return [
                f"var({v[i]})" if i == j else f"cov({v[i]},{v[j]})"
                for i in range(m)
                for j in range(i + 1)
            ]
        if self.name == "cs":
            return ["covariance", "residual"]
        if self.name == "ar1":
            return ["variance", "rho"]
        if self.name == "toep":
            return ["variance"] + [f"covariance(lag {lag})" for lag in range(1, m)]
        variances = [f"var({level})" for level in v]
        if self.name in ("csh", "ar1h"):
            return [*variances, "rho"]
        return variances + [f"rho(lag {lag})" for lag in range(1, m)]

    # theta -> natural parameters (complex-safe) ------------------------------------
    def natural(self, theta):
        """Natural (SAS) parameters from the unconstrained vector ``theta``."""
        m = self.n_visits
        name = self.name
        if name == "us":
            lower = self._cholesky(theta)
            rows, cols = np.tril_indices(m)
            return (lower @ lower.T)[rows, cols]
        if name in ("cs", "ar1", "toep"):
            variance = np.exp(2 * theta[0])
            if name == "cs":
                rho = self._cs_rho(theta[1])
                return np.array([variance * rho, variance * (1 - rho)])
            if name == "ar1":
                return np.array([variance, np.tanh(theta[1])])
            acf = pacf_to_acf([np.tanh(t) for t in theta[1:]])
            return np.array([variance] + [variance * r for r in acf])
        variances = np.exp(2 * np.asarray(theta[:m]))
        rest = theta[m:]
        if name == "csh":
            correlation = [self._cs_rho(rest[0])]
        elif name == "ar1h":
            correlation = [np.tanh(rest[0])]
        else:
            correlation = pacf_to_acf([np.tanh(t) for t in rest])
        return np.concatenate([variances, np.array(correlation)])

    def _cholesky(self, theta):
        """Lower-triangular factor with log-diagonal; ``theta`` in row-major order."""
        m = self.n_visits
        theta = np.asarray(theta)
        lower = np.zeros((m, m), dtype=theta.dtype if np.iscomplexobj(theta) else float)
        rows, cols = np.tril_indices(m)
        diagonal = rows == cols
        lower[rows, cols] = np.where(diagonal, np.exp(np.where(diagonal, theta, 0)), theta)
        return lower

    def _cs_rho(self, z):
        low = -1.0 / (self.n_visits - 1)
        return low + (1 - low) * _sigmoid(z)

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """Jacobian d phi / d theta by the complex step: exact to rounding."""
        step = 1e-30
        columns = []
        for k in range(len(theta)):
            shifted = theta.astype(complex)
            shifted[k] += 1j * step
            columns.append(np.imag(self.natural(shifted)) / step)
        return np.column_stack(columns)

    def theta_gradient(self, theta: np.ndarray, phi, matrix_gradient: np.ndarray) -> np.ndarray:
        """Gradient in ``theta`` of a function whose derivative in Sigma is ``matrix_gradient``.

        ``matrix_gradient`` M is symmetric with d f = tr(M d Sigma). For ``"us"``,
        d f / d L = 2 M L (L the Cholesky factor), exact and cheaper than the
        Jacobian; other structures chain through the natural parameters.
        """
        if self.name == "us":
            lower = self._cholesky(theta)
            rows, cols = np.tril_indices(self.n_visits)
            by_factor = 2 * (matrix_gradient @ lower)[rows, cols]
            return np.where(rows == cols, by_factor * lower[rows, cols], by_factor)
        _, first, _ = self.derivatives(phi, order=1)
        d_phi = np.einsum("hab,ab->h", first, matrix_gradient)
        return self.jacobian(theta).T @ d_phi

    # natural parameters -> matrix and derivatives -----------------------------------
    def _lags(self) -> np.ndarray:
        index = np.arange(self.n_visits)
        return np.abs(index[:, None] - index[None, :])

    def _correlation(self, rho):
        """Correlation matrix and its first/second derivatives in the correlation parameters."""
        m = self.n_visits
        lags = self._lags()
        kind = {"cs": "cs", "csh": "cs", "ar1": "ar", "ar1h": "ar"}.get(self.name, "toep")
        if kind == "cs":
            off = 1 - np.eye(m)
            return np.eye(m) + rho[0] * off, off[None], np.zeros((1, 1, m, m))
        if kind == "ar":
            r = rho[0]
            first = np.where(lags >= 1, lags * r ** np.maximum(lags - 1, 0), 0.0)
            second = np.where(lags >= 2, lags * (lags - 1) * r ** np.maximum(lags - 2, 0), 0.0)
            return r**lags, first[None], second[None, None]
        n = m - 1
        correlation = np.eye(m)
        first = np.zeros((n, m, m))
        for lag in range(1, m):
            band = (lags == lag).astype(float)
            correlation = correlation + rho[lag - 1] * band
            first[lag - 1] = band
        return correlation, first, np.zeros((n, n, m, m))

    def sigma(self, phi) -> np.ndarray:
        """The visits x visits covariance matrix."""
        return self.derivatives(phi, order=0)[0]

    def derivatives(self, phi, order: int = 2):
        """``(sigma, dsigma, d2sigma)``: the matrix and its derivatives in ``phi``."""
        m = self.n_visits
        phi = np.asarray(phi, dtype=float)
        n = len(phi)
        name = self.name
        if name == "us":
            first = np.zeros((n, m, m))
            k = 0
            sigma = np.zeros((m, m))
            for i in range(m):
                for j in range(i + 1):
                    first[k, i, j] = first[k, j, i] = 1.0
                    sigma[i, j] = sigma[j, i] = phi[k]
                    k += 1
            return sigma, first, np.zeros((n, n, m, m))
        if name == "cs":
            first = np.stack([np.ones((m, m)), np.eye(m)])
            return phi[0] * first[0] + phi[1] * first[1], first, np.zeros((2, 2, m, m))
        if name == "toep":
            lags = self._lags()
            first = np.stack([(lags == lag).astype(float) for lag in range(m)])
            return np.einsum("l,lab->ab", phi, first), first, np.zeros((m, m, m, m))
        if name == "ar1":
            variance = phi[0]
            correlation, d_corr, d2_corr = self._correlation(phi[1:])
            first = np.stack([correlation, variance * d_corr[0]])
            second = np.zeros((2, 2, m, m))
            second[0, 1] = second[1, 0] = d_corr[0]
            second[1, 1] = variance * d2_corr[0, 0]
            return variance * correlation, first, second
        return self._heterogeneous(phi, m)

    def _heterogeneous(self, phi, m):
        """Sigma = s * C(rho) elementwise with s_jk = sqrt(v_j v_k)."""
        variances = phi[:m]
        correlation, d_corr, d2_corr = self._correlation(phi[m:])
        n_corr = len(phi) - m
        scale = np.sqrt(np.outer(variances, variances))
        eye = np.eye(m)
        # indicator[l, j, k] = delta_jl + delta_kl: which variances an element involves
        indicator = eye[:, :, None] + eye[:, None, :]
        d_scale = scale[None] * indicator / (2 * variances[:, None, None])
        d2_scale = scale[None, None] * (
            indicator[:, None]
            * indicator[None, :]
            / (4 * np.outer(variances, variances))[..., None, None]
        )
        d2_scale = (
            d2_scale
            - np.einsum("ln,ljk->lnjk", eye, indicator)
            * scale[None, None]
            / (2 * variances**2)[:, None, None, None]
        )
        n = m + n_corr
        first = np.zeros((n, m, m))
        second = np.zeros((n, n, m, m))
        first[:m] = d_scale * correlation[None]
        first[m:] = scale[None] * d_corr
        second[:m, :m] = d2_scale * correlation[None, None]
        cross = d_scale[:, None] * d_corr[None]
        second[:m, m:] = cross
        second[m:, :m] = np.swapaxes(cross, 0, 1)
        second[m:, m:] = scale[None, None] * d2_corr
        return scale * correlation, first, second

    def is_valid(self, phi) -> bool:
        """Whether ``phi`` gives a positive definite matrix (and |rho| < 1 for AR)."""
        phi = np.asarray(phi, dtype=float)
        if not np.all(np.isfinite(phi)):
            return False
        if self.name in ("ar1", "ar1h") and abs(phi[-1]) >= 1:
            return False
        if self.name in HETEROGENEOUS and np.any(phi[: self.n_visits] <= 0):
            return False
        try:
            np.linalg.cholesky(self.sigma(phi))
        except np.linalg.LinAlgError:
            return False
        return True

    # starting values ------------------------------------------------------------------
    def start(self, moments: np.ndarray) -> np.ndarray:
        """Unconstrained starting values from a moment estimate of the covariance.

        ``moments`` may hold NaN for visit pairs never observed together; the
        variances come from its diagonal, correlations from its average
        off-diagonal (or by-lag) correlations, clipped away from the boundary.
        """
        m = self.n_visits
        variances = np.diag(moments).copy()
        fallback = np.nanmean(variances) if np.any(np.isfinite(variances)) else 1.0
        variances = np.where(np.isfinite(variances) & (variances > 0), variances, fallback)
        variances = np.maximum(variances, 1e-6 * max(fallback, 1e-12))
        sd = np.sqrt(variances)
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = moments / np.outer(sd, sd)
        lags = self._lags()

        def mean_at(mask):
            values = correlation[mask]
            values = values[np.isfinite(values)]
            return float(np.mean(values)) if values.size else 0.0

        log_sd = np.log(sd)
        if self.name == "us":
            candidate = np.where(np.isfinite(moments), moments, 0.0)
            candidate = (candidate + candidate.T) / 2
            np.fill_diagonal(candidate, variances)
            eigen = np.linalg.eigvalsh(candidate)
            if eigen.min() <= 1e-6 * eigen.max():
                candidate = np.diag(variances)
            lower = np.linalg.cholesky(candidate)
            theta = [
                np.log(lower[i, j]) if i == j else lower[i, j]
                for i in range(m)
                for j in range(i + 1)
            ]
            return np.array(theta)
        if m == 1:
            rho_terms = np.zeros(self.n_theta - (m if self.name in HETEROGENEOUS else 1))
        elif self.name in ("cs", "csh"):
            low = -1.0 / (m - 1)
            rho = float(np.clip(mean_at(lags > 0), low + 0.05 * (1 - low), 0.9))
            share = (rho - low) / (1 - low)
            rho_terms = np.array([np.log(share / (1 - share))])
        elif self.name in ("ar1", "ar1h"):
            rho_terms = np.array([np.arctanh(np.clip(mean_at(lags == 1), -0.9, 0.9))])
        else:
            acf = [float(np.clip(mean_at(lags == lag), -0.9, 0.9)) for lag in range(1, m)]
            rho_terms = np.arctanh(acf_to_pacf(acf))
        if self.name in HETEROGENEOUS:
            return np.concatenate([log_sd, rho_terms])
        return np.concatenate([[np.log(np.sqrt(np.mean(variances)))], rho_terms])


def make_structure(name: str, visits) -> CovarianceStructure:
    """The structure called ``name`` over the visit labels ``visits``."""
    if name not in STRUCTURES:
        raise ValueError(f"covariance must be one of {list(STRUCTURES)}, got {name!r}")
    visits = tuple(visits)
    if name != "us" and len(visits) < 2:
        raise ValueError(
            f"covariance {name!r} needs at least 2 visits, got {len(visits)}: use 'us' "
            "(a single variance) with one visit"
        )
    return CovarianceStructure(name, visits)
