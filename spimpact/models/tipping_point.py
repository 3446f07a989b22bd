"""Sensitivity to data missing not at random: delta adjustment and the tipping point.

:func:`fit_delta_adjusted` takes any function that imputes the data for a shift
``delta`` (e.g. :meth:`spimpact.models.reference_based.ImputationModelDraws.impute`,
which shifts inside the imputation loop) and any analysis that ``pool_analyses``
accepts, and finds the shifts at which the conclusion changes.
:func:`fit_tipping_point` is the older form on chained-equation ``Imputations``,
shifting one column after imputation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.models.imputation import Imputations, pool_analyses
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import TIDY_COLUMNS, make_tidy


@dataclass(frozen=True)
class TippingPointResult(EstimatorResult):
    """Pooled estimates of one term as imputed values are shifted by ``delta``.

    ``tidy(conf_level=None)`` gives one row per delta: ``delta`` and the broom
    columns of ``term`` (Barnard-Rubin t intervals); ``plot()`` the estimate and its
    band against the shift.

    Attributes
    ----------
    term
        The pooled term followed.
    table
        One row per delta at ``conf_level``: ``delta``, the tidy columns of ``term``
        (without ``term``) and ``df``, the Barnard-Rubin degrees of freedom.
    delta_no_significance
        Shift at which the ``conf_level`` confidence interval first reaches zero
        (interpolated between grid points); ``None`` if it never does on the grid.
    delta_no_effect
        Shift at which the pooled estimate reaches zero; ``None`` if never on the grid.
    """

    term: str
    table: pd.DataFrame
    delta_no_significance: float | None
    delta_no_effect: float | None
    conf_level: float

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        df = self.table["df"].to_numpy(dtype=float)
        out = make_tidy(
            [self.term] * len(self.table),
            self.table["estimate"],
            self.table["std_error"],
            conf_level=conf_level,
            df=np.where(np.isfinite(df), df, 1e12),
        )
        out.insert(0, "delta", self.table["delta"].to_numpy())
        return out

    def summary(self) -> str:
        """Text summary for people."""

        def say(value):
            return "not reached on the grid" if value is None else f"{value:.2f}"

        return "\n".join(
            [
                f"Delta-adjusted multiple imputation for {self.term!r}",
                f"shift at which significance is lost: {say(self.delta_no_significance)}",
                f"shift at which the estimate reaches zero: {say(self.delta_no_effect)}",
                self.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
            ]
        )

    def plot(self, ax=None):
        """Estimate and confidence band against the shift."""
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        t = self.table
        ax.fill_between(t["delta"], t["conf_low"], t["conf_high"], color="#c6dbef")
        ax.plot(t["delta"], t["estimate"], color="#08519c")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlabel("shift added to imputed values")
        ax.set_ylabel(self.term)
        return ax


def fit_delta_adjusted(
    impute: Callable[[float], Sequence[pd.DataFrame]],
    analysis: Callable[[pd.DataFrame], object],
    *,
    term: str,
    deltas: Sequence[float],
    dfcom: float | str | None = None,
    conf_level: float = 0.95,
    refine: int = 2,
) -> TippingPointResult:
    """Pooled estimate of ``term`` for each shift, and the shifts where the conclusion changes.

    For each ``delta`` the data are imputed by ``impute(delta)``, ``analysis`` is run on
    every completed data set and pooled by Rubin's rules
    (:func:`spimpact.models.imputation.pool_analyses`), and the pooled ``term`` is
    recorded. The tipping points (the confidence limit nearer zero, and the estimate,
    reaching zero) are found by linear interpolation on the grid and then refined by
    ``refine`` regula falsi steps, each imputing and analysing once more at the
    interpolated shift (those shifts join the table).

    Parameters
    ----------
    impute
        ``delta -> completed data sets``; use common random numbers (the same seed for
        every shift) so that the pooled results vary smoothly with ``delta``.
    analysis
        Completed data set -> result with ``.tidy()`` or a tidy DataFrame.
    term
        The pooled term followed.
    deltas
        The grid of shifts (at least two).
    dfcom
        Complete-data degrees of freedom for the Barnard-Rubin df (see
        ``pool_analyses``; ``"analysis"`` reads them from the analyses).
    conf_level
        Level of the intervals.
    refine
        Extra evaluations per tipping point found on the grid.

    Returns
    -------
    TippingPointResult

    Notes
    -----
    Ratitch B, O'Kelly M, Tosiello R (2013), Pharm Stat 12:337-347 (delta-adjusted
    tipping-point analysis); Cro S, Morris TP, Kenward MG, Carpenter JR (2020), Stat
    Med 39:2815-2842 (reference-based sensitivity analysis).

    Examples
    --------
    >>> y = 1 + np.random.default_rng(2).normal(size=80)
    >>> missing = np.arange(80) < 20
    >>> def impute(delta):
    ...     noise = np.random.default_rng(7).normal(size=(3, 80))  # same draws for every delta
    ...     return [pd.DataFrame({"y": np.where(missing, y[~missing].mean() + e + delta, y)})
    ...             for e in noise]
    >>> def mean_y(data):
    ...     se = data.y.std() / np.sqrt(len(data))
    ...     return pd.DataFrame({"term": ["mean"], "estimate": [data.y.mean()], "std_error": [se]})
    >>> res = fit_delta_adjusted(impute, mean_y, term="mean", deltas=[-8, -4, 0])
    >>> bool(res.delta_no_effect < res.delta_no_significance < 0)
    True
    """
    if len(deltas) < 2:
        raise ValueError("deltas needs at least two values")

    def evaluate(delta: float) -> dict:
        result = pool_analyses(impute(delta), analysis, dfcom=dfcom, conf_level=conf_level)
        pooled = result.tidy()
        if term not in set(pooled["term"]):
            raise ValueError(f"term {term!r} is not in the analysis output: {list(pooled['term'])}")
        chosen = (pooled["term"] == term).to_numpy()
        row = pooled.loc[chosen].iloc[0]
        return {
            "delta": float(delta),
            **{c: row[c] for c in TIDY_COLUMNS if c != "term"},
            "df": float(result.pooled.loc[chosen, "df"].iloc[0]),
        }

    rows = {float(delta): evaluate(delta) for delta in sorted(set(map(float, deltas)))}
    table = pd.DataFrame([rows[d] for d in sorted(rows)])
    at_zero = table.iloc[(table["delta"].abs()).argmin()]
    bound = "conf_low" if at_zero["estimate"] > 0 else "conf_high"
    for column in (bound, "estimate"):
        for _ in range(refine):
            root = _crossing(table["delta"], table[column])
            if root is None or np.isclose(list(rows), root, rtol=1e-9, atol=1e-12).any():
                break
            rows[root] = evaluate(root)
            table = pd.DataFrame([rows[d] for d in sorted(rows)])
    return TippingPointResult(
        term=term,
        table=table,
        delta_no_significance=_crossing(table["delta"], table[bound]),
        delta_no_effect=_crossing(table["delta"], table["estimate"]),
        conf_level=conf_level,
    )


def fit_tipping_point(
    imputations: Imputations,
    analysis: Callable[[pd.DataFrame], object],
    *,
    column: str,
    term: str,
    deltas: Sequence[float],
    rows=None,
    dfcom: float | None = None,
    conf_level: float = 0.95,
) -> TippingPointResult:
    """Delta adjustment after chained-equation imputation: shift one column, re-analyse.

    For each ``delta`` the imputed (not observed) values of ``column`` are shifted by
    ``delta`` in every imputed data set, ``analysis`` is re-run and pooled, and the
    pooled ``term`` is recorded; tipping points are interpolated on the grid
    (:func:`fit_delta_adjusted` with ``refine=0``).

    Notes
    -----
    van Buuren S (2018), *Flexible Imputation of Missing Data*, 2nd ed., §3.8.4 and §9.2
    (delta adjustment, "pattern-mixture" sensitivity analysis under MNAR). The shift is
    applied after imputation to the analysed column only, which equals in-loop
    adjustment only when that column predicts no other incomplete column; for repeated
    measures use :func:`fit_delta_adjusted` with
    :class:`spimpact.models.reference_based.ImputationModelDraws`.

    Examples
    --------
    >>> from spimpact.models.imputation import impute_mice
    >>> rng = np.random.default_rng(2)
    >>> df = pd.DataFrame({"x": rng.normal(size=80)})
    >>> df["y"] = 1 + df.x + rng.normal(size=80)
    >>> df.loc[:19, "y"] = np.nan
    >>> def mean_y(data):
    ...     se = data.y.std() / np.sqrt(len(data))
    ...     return pd.DataFrame({"term": ["mean"], "estimate": [data.y.mean()], "std_error": [se]})
    >>> imputations = impute_mice(df, m=3, max_iter=2, seed=1)
    >>> res = fit_tipping_point(imputations, mean_y, column="y", term="mean", deltas=[-8, -4, 0])
    >>> res.delta_no_effect < 0
    True
    """
    return fit_delta_adjusted(
        lambda delta: imputations.shifted(column, delta, rows),
        analysis,
        term=term,
        deltas=deltas,
        dfcom=dfcom,
        conf_level=conf_level,
        refine=0,
    )


def _crossing(x: pd.Series, y: pd.Series) -> float | None:
    """Return the root of ``y(x)`` closest to ``x = 0``, interpolating linearly on the grid."""
    x, y = x.to_numpy(), y.to_numpy()
    roots = []
    for i in range(len(x) - 1):
        if y[i] == 0:
            roots.append(x[i])
        elif np.sign(y[i]) != np.sign(y[i + 1]) and y[i + 1] != 0:
            roots.append(x[i] - y[i] * (x[i + 1] - x[i]) / (y[i + 1] - y[i]))
    if y[-1] == 0:
        roots.append(x[-1])
    if not roots:
        return None
    return float(min(roots, key=abs))
