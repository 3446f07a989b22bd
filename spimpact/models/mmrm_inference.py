"""Degrees of freedom and the fixed-effect covariance of an MMRM.

Three methods, as SAS PROC MIXED's ``DDFM=`` option and R mmrm's ``method``:

- ``"satterthwaite"``: for a contrast l, nu = 2 (l Phi l')^2 / (g' W g) with
  g_h = d(l Phi l')/d phi_h = l Phi P_h Phi l' (Satterthwaite 1946; Fai & Cornelius
  1996), Phi = (X'V^-1X)^-1 the model-based covariance and W the asymptotic
  covariance of the covariance parameters (inverse observed information).
- ``"kenward_roger"``: the adjusted covariance
  Phi_A = Phi + 2 Phi [sum_hj W_hj (Q_hj - P_h Phi P_j - R_hj / 4)] Phi and the
  scaled-F degrees of freedom of Kenward & Roger (1997), in SAS's parameterisation
  of the covariance (see :mod:`spimpact.models.mmrm_covariance`);
  ``"kenward_roger_linear"`` drops R_hj (SAS ``DDFM=KR(LINEAR)``, R mmrm
  ``vcov = "Kenward-Roger-Linear"``).
- ``"residual"``: N - rank(X) for every contrast (SAS ``DDFM=RESIDUAL``).

>>> vcov = np.array([[2.0]]); p_h = np.array([[[1.0]]]); w = np.array([[0.5]])
>>> float(satterthwaite_df(np.array([[1.0]]), vcov, p_h, w)[0])
1.0
"""

from __future__ import annotations

import numpy as np

DF_METHODS = ("satterthwaite", "kenward_roger", "kenward_roger_linear", "residual")


def _gradients(contrasts: np.ndarray, vcov: np.ndarray, p_h: np.ndarray) -> np.ndarray:
    """g[r, h] = l_r Phi P_h Phi l_r' for each contrast row."""
    left = contrasts @ vcov
    return np.einsum("hrq,rq->rh", left @ p_h, left)


def satterthwaite_df(contrasts, vcov, p_h, w) -> np.ndarray:
    """Satterthwaite degrees of freedom of each one-dimensional contrast (row)."""
    contrasts = np.atleast_2d(contrasts)
    variance = np.einsum("rp,pq,rq->r", contrasts, vcov, contrasts)
    gradient = _gradients(contrasts, vcov, p_h)
    denominator = np.einsum("rh,hj,rj->r", gradient, w, gradient)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2 * variance**2 / denominator


def kenward_roger_vcov(vcov, p_h, w, q_minus_r) -> np.ndarray:
    """Phi_A: the Kenward-Roger adjusted covariance of the fixed effects.

    ``q_minus_r`` is sum_hj W_hj (Q_hj - R_hj / 4) (see
    :func:`spimpact.models.mmrm_likelihood.kenward_roger_sum`).
    """
    pphi = np.einsum("hpq,qr->hpr", p_h, vcov)
    ppp = np.einsum("hj,hpq,jqr->pr", w, pphi, p_h)
    inner = q_minus_r - ppp
    adjusted = vcov + 2 * vcov @ inner @ vcov
    return (adjusted + adjusted.T) / 2


def kenward_roger_df(contrast, vcov, p_h, w) -> tuple[float, float]:
    """Denominator df m and F scale lambda for the contrast matrix ``contrast`` (rows).

    Kenward & Roger (1997) section 4, as written out in R mmrm's Kenward-Roger
    vignette; Phi is the unadjusted covariance there, as in SAS and pbkrtest.
    """
    contrast = np.atleast_2d(contrast)
    rank = contrast.shape[0]
    middle = contrast.T @ np.linalg.solve(contrast @ vcov @ contrast.T, contrast)
    pieces = np.einsum("pr,hrs->hps", middle @ vcov, p_h) @ vcov
    traces = np.einsum("hpp->h", pieces)
    a1 = float(traces @ w @ traces)
    a2 = float(np.einsum("hj,hpq,jqp->", w, pieces, pieces))
    b = (a1 + 6 * a2) / (2 * rank)
    g = ((rank + 1) * a1 - (rank + 4) * a2) / ((rank + 2) * a2)
    denominator = 3 * rank + 2 * (1 - g)
    c1, c2, c3 = g / denominator, (rank - g) / denominator, (rank + 2 - g) / denominator
    e_star = 1 / (1 - a2 / rank)
    v_star = 2 / rank * (1 + c1 * b) / ((1 - c2 * b) ** 2 * (1 - c3 * b))
    rho = v_star / (2 * e_star**2)
    m = 4 + (rank + 2) / (rank * rho - 1)
    return float(m), float(m / (e_star * (m - 2)))


def contrast_df(contrasts, *, method: str, vcov, p_h, w, residual_df: int) -> np.ndarray:
    """Degrees of freedom of each one-dimensional contrast under ``method``."""
    contrasts = np.atleast_2d(contrasts)
    if method == "residual":
        return np.full(contrasts.shape[0], float(residual_df))
    if w is None:
        return np.full(contrasts.shape[0], np.nan)
    if method == "satterthwaite":
        return satterthwaite_df(contrasts, vcov, p_h, w)
    return np.array(
        [
            kenward_roger_df(row[None], vcov, p_h, w)[0] if np.any(row) else np.nan
            for row in contrasts
        ]
    )


def coefficient_inference(method, vcov_model, p_h, w, kr_sums, residual_df):
    """The covariance of the estimates and each coefficient's df under ``method``.

    ``kr_sums`` maps ``linear`` (bool) to sum_hj W_hj (Q_hj - R_hj / 4) (R dropped
    when linear); it is empty when W is unavailable or the fit is ML.
    """
    vcov = vcov_model
    kenward_roger = method.startswith("kenward_roger")
    if kenward_roger and kr_sums:
        linear = method == "kenward_roger_linear"
        vcov = kenward_roger_vcov(vcov_model, p_h, w, kr_sums[linear])
    df = contrast_df(
        np.eye(len(vcov_model)),
        method="kenward_roger" if kenward_roger else method,
        vcov=vcov_model,
        p_h=p_h,
        w=w,
        residual_df=residual_df,
    )
    return vcov, df
