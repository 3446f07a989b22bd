"""(Weighted) least squares with absorbed fixed effects and a choice of standard errors.

Private engine of :mod:`spimpact.models.did`, :mod:`spimpact.models.did_stacked`:
classical, CR1 (fixest/Stata conventions), CR2 with Satterthwaite degrees of freedom
(clubSandwich) or the restricted wild cluster bootstrap (boottest), see
:mod:`spimpact.models.cluster_inference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spimpact.models.cluster_inference import (
    BOOTSTRAP_WEIGHTS,
    Cr2Inference,
    WildBootstrapDesign,
    WildBootstrapTest,
    cr2_inference,
    explicit_dummies,
    split_fixed_effects,
)
from spimpact.models.did_fixed_effects import (
    cluster_meat,
    demean,
    encode_groups,
    fixest_k,
    is_nested,
    n_fixed_effect_parameters,
)
from spimpact.models.tidy import make_tidy

SE_TYPES = ("CR1", "CR2", "wild")


@dataclass(frozen=True)
class WildOptions:
    """Settings of the wild cluster bootstrap (``se="wild"``)."""

    n_draws: int = 9999
    weight_type: str = "rademacher"
    seed: int | None = 0


@dataclass(frozen=True, eq=False)
class LinearFit:
    """Coefficients and covariance of a (weighted) fit with absorbed fixed effects.

    ``term_df`` holds per-coefficient degrees of freedom (CR2 Satterthwaite), ``wild``
    the per-coefficient bootstrap tests; ``cr2``/``wild_design`` allow tests of further
    linear contrasts (e.g. an average of event-time effects).
    """

    terms: tuple[str, ...]
    coefficients: np.ndarray
    covariance: np.ndarray
    df: float | None
    se_type: str
    n_obs: int
    n_clusters: int | None
    residual_df: int
    term_df: np.ndarray | None = None
    wild: tuple[WildBootstrapTest, ...] | None = None
    cr2: Cr2Inference | None = None
    wild_design: WildBootstrapDesign | None = None
    wild_options: WildOptions | None = None
    conf_level: float = 0.95

    def contrast_row(self, term: str, contrast: np.ndarray) -> dict[str, float]:
        """Estimate, SE, df, p-value and interval of ``contrast' beta`` under this SE type."""
        c = np.asarray(contrast, dtype=float)
        estimate = float(c @ self.coefficients)
        std_error = float(np.sqrt(c @ self.covariance @ c))
        df = self.df
        if self.cr2 is not None:
            df = self.cr2.satterthwaite_df(c)
        row = make_tidy([term], [estimate], [std_error], conf_level=self.conf_level, df=df)
        out = row.iloc[0].to_dict()
        out["df"] = np.nan if df is None else float(df)
        if self.wild_design is not None:
            test = self.wild_design.test(
                c,
                conf_level=self.conf_level,
                n_draws=self.wild_options.n_draws,
                weight_type=self.wild_options.weight_type,
                seed=self.wild_options.seed,
            )
            out |= {"p_value": test.p_value, "conf_low": test.conf_low, "conf_high": test.conf_high}
        return out

    def table(self, conf_level: float | None = None) -> pd.DataFrame:
        """Broom table of the coefficients; bootstrap p-values and intervals for ``wild``."""
        level = self.conf_level if conf_level is None else conf_level
        df = self.term_df if self.term_df is not None else self.df
        table = make_tidy(
            self.terms,
            self.coefficients,
            np.sqrt(np.diag(self.covariance)),
            conf_level=level,
            df=df,
        )
        if self.wild is not None:
            if level != self.conf_level:
                raise ValueError(
                    f"wild bootstrap intervals were computed at conf_level {self.conf_level}; "
                    f"fit again with conf_level={level}"
                )
            table["p_value"] = [t.p_value for t in self.wild]
            table["conf_low"] = [t.conf_low for t in self.wild]
            table["conf_high"] = [t.conf_high for t in self.wild]
        return table


def check_weights(weights: np.ndarray | None, *, name: str) -> None:
    """Raise a clear ``ValueError`` for missing, infinite or negative weights."""
    if weights is None:
        return
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"weights column {name!r}: {int(bad.sum())} value(s) missing, infinite or negative "
            f"(first at row position {first}: {weights[first]!r}); weights must be >= 0"
        )


def _column_rank(matrix: np.ndarray, gram: np.ndarray) -> int:
    """``np.linalg.matrix_rank(matrix)`` for a tall matrix, given ``gram = matrix' matrix``.

    When the Gram matrix is clearly well conditioned (smallest eigenvalue above 1e-8
    of the largest, i.e. every singular value above 1e-4 of the largest, far above
    numpy's tolerance ``S.max() * max(n, k) * eps``) the rank is full; otherwise the
    singular values are computed from the R of a QR decomposition, with numpy's
    tolerance, so the answer is always numpy's.
    """
    k = matrix.shape[1]
    if k == 0:
        return 0
    eigenvalues = np.linalg.eigvalsh(gram)
    if eigenvalues[-1] > 0 and eigenvalues[0] > 1e-8 * eigenvalues[-1]:
        return k
    triangle = np.linalg.qr(matrix, mode="r") if matrix.shape[0] > k else matrix
    singular = np.linalg.svd(triangle, compute_uv=False)
    tolerance = singular.max(initial=0.0) * max(matrix.shape) * np.finfo(float).eps
    return int((singular > tolerance).sum())


def fit_linear(
    y: np.ndarray,
    x: np.ndarray,
    terms: Sequence[str],
    *,
    absorb: Sequence[np.ndarray] = (),
    cluster: np.ndarray | None = None,
    cluster_name: str | None = None,
    weights: np.ndarray | None = None,
    se: str | None = None,
    conf_level: float = 0.95,
    wild: WildOptions | None = None,
    n_obs: int | None = None,
) -> LinearFit:
    """Weighted least squares of ``y`` on ``x`` after absorbing ``absorb``.

    ``se=None`` keeps the historical default: classical without ``cluster``, CR1 with it.
    Classical: ``s^2 (X'WX)^-1``, ``s^2 = sum w u^2 / (n - K)``, K counting absorbed
    levels. CR1 as Stata/fixest, ``G/(G-1) * (n-1)/(n-K)`` with fixed effects nested in
    the clusters dropped from K, t reference on ``G - 1`` df. ``"CR2"``: Pustejovsky &
    Tipton (2018) with Satterthwaite df per coefficient. ``"wild"``: CR1 standard errors
    with restricted wild cluster bootstrap p-values and intervals. Rows with weight 0
    are dropped (as fixest does). ``n_obs`` says the rows are cell means with ``weights``
    their counts (see :mod:`spimpact.models.cell_fits`): it replaces the number of rows
    in the CR1 correction; only CR1 with ``cluster`` is exact then.
    """
    if n_obs is not None and (cluster is None or se not in (None, "CR1")):
        raise ValueError(
            "a fit on cell means is exact only for CR1 standard errors clustered by a "
            f"column of the cells; got cluster={cluster_name!r}, se={se!r}"
        )
    if se is not None and se not in SE_TYPES:
        raise ValueError(f"se must be one of {SE_TYPES} or None, got {se!r}")
    if se is not None and cluster is None:
        raise ValueError(f"se={se!r} needs a cluster column")
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        keep = weights > 0
        if not keep.all():
            y, x, weights = y[keep], x[keep], weights[keep]
            absorb = [encode_groups(pd.Series(g[keep]))[0] for g in absorb]
            if cluster is not None:
                cluster = encode_groups(pd.Series(cluster[keep]))[0]
    absorb = list(absorb)
    n_rows = y.shape[0]
    n = n_rows if n_obs is None else int(n_obs)
    sizes = [int(g.max()) + 1 for g in absorb]
    yx = np.empty((n_rows, x.shape[1] + 1), order="F")
    yx[:, 0] = y
    yx[:, 1:] = x
    if absorb:
        yx = demean(yx, absorb, weights=weights, copy=False)
    root = np.ones(n_rows) if weights is None else np.sqrt(weights)
    if weights is not None:
        yx *= root[:, None]
    y_star, x_star = yx[:, 0], yx[:, 1:]
    gram = x_star.T @ x_star
    rank = _column_rank(x_star, gram)
    if rank < x_star.shape[1]:
        raise ValueError(
            "The regressors are collinear with each other or with the absorbed fixed "
            f"effects (rank {rank} < {x_star.shape[1]} columns: {list(terms)})."
        )
    bread = np.linalg.inv(gram)
    coefficients = bread @ (x_star.T @ y_star)
    residuals_star = y_star - x_star @ coefficients
    k_full = x.shape[1] + n_fixed_effect_parameters(sizes)
    residual_df = n - k_full
    weighted = weights is not None
    common = {
        "terms": tuple(terms),
        "coefficients": coefficients,
        "n_obs": n,
        "residual_df": residual_df,
        "conf_level": conf_level,
    }
    if cluster is None:
        sigma2 = residuals_star @ residuals_star / residual_df
        return LinearFit(
            covariance=sigma2 * bread,
            df=float(residual_df),
            se_type=f"classical (homoskedastic) {'WLS' if weighted else 'OLS'}",
            n_clusters=None,
            **common,
        )
    meat, n_clusters = cluster_meat(x_star, cluster, residuals_star)
    nested = [is_nested(g, cluster) for g in absorb]
    k = fixest_k(x.shape[1], sizes, nested)
    adjustment = n_clusters / (n_clusters - 1) * (n - 1) / (n - k)
    cr1 = adjustment * bread @ meat @ bread
    if se in (None, "CR1"):
        return LinearFit(
            covariance=cr1,
            df=float(n_clusters - 1),
            se_type=f"cluster-robust CR1 by {cluster_name} ({n_clusters} clusters)",
            n_clusters=n_clusters,
            **common,
        )
    if se == "CR2":
        kept, others = split_fixed_effects(absorb, cluster)
        # without a nested factor, the constant the absorbed factors carried is explicit
        constant = np.ones((n_rows, 1 if kept is None and absorb else 0))
        t_matrix = np.column_stack([x, explicit_dummies(others, n_rows), constant])
        residuals = residuals_star / root
        inference = cr2_inference(
            t_matrix, residuals, cluster, k=x.shape[1], nested=kept, weights=weights
        )
        covariance = inference.covariance
        term_df = np.array([inference.satterthwaite_df(c) for c in np.eye(x.shape[1])])
        return LinearFit(
            covariance=covariance,
            df=None,
            se_type=(
                f"cluster-robust CR2 by {cluster_name} ({n_clusters} clusters), "
                "Satterthwaite degrees of freedom"
            ),
            n_clusters=n_clusters,
            term_df=term_df,
            cr2=inference,
            **common,
        )
    options = wild or WildOptions()
    if options.weight_type not in BOOTSTRAP_WEIGHTS:
        raise ValueError(
            f"bootstrap weights must be one of {BOOTSTRAP_WEIGHTS}, got {options.weight_type!r}"
        )
    design = WildBootstrapDesign(
        x_hat=x_star,
        residuals=residuals_star,
        coefficients=coefficients,
        cluster=cluster,
        groups=tuple(absorb),
        sqrt_weights=root,
    )
    tests = tuple(
        design.test(
            c,
            conf_level=conf_level,
            n_draws=options.n_draws,
            weight_type=options.weight_type,
            seed=options.seed,
        )
        for c in np.eye(x.shape[1])
    )
    n_draws = tests[0].n_draws
    how = "all sign patterns enumerated" if tests[0].enumerated else f"{n_draws} draws"
    return LinearFit(
        covariance=cr1,
        df=float(n_clusters - 1),
        se_type=(
            f"wild cluster bootstrap by {cluster_name} ({n_clusters} clusters; restricted, "
            f"{options.weight_type} weights, {how}); standard errors CR1"
        ),
        n_clusters=n_clusters,
        wild=tests,
        wild_design=design,
        wild_options=options,
        **common,
    )
