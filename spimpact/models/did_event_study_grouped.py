"""Event study without the rows x k design: the same fit as ``fit_event_study`` in O(rows) memory.

:func:`spimpact.models.did_event_study.fit_event_study` builds the dense design of
event-time indicators and within-transforms it: rows x k floats, twice. An indicator's
within-transform is ``x_j - a_j[unit] - b_j[period]``, and its unit and period effects
follow exactly from its counts by unit and period (a small period x period solve with the
unit effects concentrated out), so only row codes, the residuals, k x k cross-products and
per-cluster score sums are ever held.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from spimpact.models.did_event_study import EventStudyResult, event_study_result
from spimpact.models.did_fixed_effects import (
    encode_groups,
    fixest_k,
    is_nested,
    n_fixed_effect_parameters,
    require_columns,
    require_numeric,
)
from spimpact.models.did_staggered import never_treated_mask
from spimpact.models.did_tables import weights_of
from spimpact.models.linear_fit import LinearFit

ROLE = "fit_event_study_grouped"


@dataclass(frozen=True, eq=False)
class TwoWayProjection:
    """Exact weighted projection off unit and period effects, weights constant in a unit.

    With ``C`` the unit x period table of row counts (dense when it is at most twice the
    rows, as ``did_fixed_effects._demean_two_way`` decides, sparse otherwise), ``w_u`` the
    weight and
    ``n_u`` the rows of unit u, and ``V`` the weighted sums of a vector by unit and by
    period, the period effects solve the small system
    ``(diag(W_t) - C' diag(w_u / n_u) C) b = V_t - C'(V_u / n_u)`` with ``b_0 = 0``
    (``W_t`` the summed weights of period t) and ``a_u = V_u / (w_u n_u) - (C b)_u / n_u``:
    the normal equations of ``did_fixed_effects._demean_two_way`` with a table of counts,
    not of weights, and only k x k-sized work per projected indicator.
    """

    unit: np.ndarray
    time: np.ndarray
    row_weight: np.ndarray | None
    unit_weight: np.ndarray
    unit_rows: np.ndarray
    counts: np.ndarray | sparse.csr_matrix
    system: np.ndarray

    @classmethod
    def build(
        cls,
        unit: np.ndarray,
        time: np.ndarray,
        unit_weight: np.ndarray | None,
        row_weight: np.ndarray | None,
    ) -> TwoWayProjection:
        """Projection for unit and period codes (0..levels-1) and the weights of both."""
        n_units, n_times = int(unit.max()) + 1, int(time.max()) + 1
        unit_rows = np.bincount(unit, minlength=n_units).astype(float)
        weight = np.ones(n_units) if unit_weight is None else unit_weight
        if n_units * n_times <= 2 * unit.size:
            key = unit * n_times
            key += time
            counts = np.bincount(key, minlength=n_units * n_times)
            del key
            counts = counts.astype(float).reshape(n_units, n_times)
            between = (counts * (weight / unit_rows)[:, None]).T @ counts
        else:
            counts = sparse.csr_matrix(
                (np.ones(unit.size), (unit.astype(np.int32), time.astype(np.int32))),
                shape=(n_units, n_times),
            )
            between = (counts.T @ sparse.diags(weight / unit_rows) @ counts).toarray()
        time_weight = np.bincount(time, weights=row_weight, minlength=n_times)
        system = np.diag(time_weight) - between
        return cls(unit, time, row_weight, weight, unit_rows, counts, system[1:, 1:])

    def sum_by_time(self, per_unit: np.ndarray) -> np.ndarray:
        """``C' v``: a per-unit vector summed over each period's rows."""
        if sparse.issparse(self.counts):
            return self.counts.T @ per_unit
        # einsum, not BLAS: threaded matrix-vector products stall on a busy machine
        return np.einsum("ut,u->t", self.counts, per_unit)

    def sum_by_unit(self, per_time: np.ndarray) -> np.ndarray:
        """``C b``: a per-period vector summed over each unit's rows."""
        if sparse.issparse(self.counts):
            return self.counts @ per_time
        return np.einsum("ut,t->u", self.counts, per_time)

    def effects(self, unit_sum: np.ndarray, time_sum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit and period effects of a vector from its weighted sums by unit and period."""
        time_effect = np.zeros(self.system.shape[0] + 1)
        rhs = time_sum - self.sum_by_time(unit_sum / self.unit_rows)
        time_effect[1:] = np.linalg.lstsq(self.system, rhs[1:], rcond=None)[0]
        unit_effect = (unit_sum / self.unit_weight - self.sum_by_unit(time_effect)) / self.unit_rows
        return unit_effect, time_effect

    def residual(self, values: np.ndarray) -> np.ndarray:
        """``values`` minus its weighted least-squares fit on unit and period dummies."""
        weighted = values if self.row_weight is None else values * self.row_weight
        unit_effect, time_effect = self.effects(
            np.bincount(self.unit, weights=weighted, minlength=self.unit_rows.size),
            np.bincount(self.time, weights=weighted, minlength=self.system.shape[0] + 1),
        )
        del weighted
        out = values - unit_effect[self.unit]
        out -= time_effect[self.time]
        return out


def event_codes(event_time: np.ndarray, window: tuple[int, int], reference: int) -> np.ndarray:
    """Column of each row among the event-time indicators; ``high - low`` for none.

    The columns of :func:`~spimpact.models.did_event_study.event_time_design`:
    ``event_time`` is clipped to ``window``; the reference, NaN (never treated) and
    non-integer event times match no indicator.
    """
    low, high = window
    n_events = high - low
    column_of = np.arange(n_events + 2)
    column_of[reference - low :] -= 1
    column_of[reference - low] = n_events
    column_of[-1] = n_events
    # one slot past the window for the rows that match no event time
    valid = np.isfinite(event_time) & (event_time == np.round(event_time))
    slot = np.where(valid, event_time - low, n_events + 1).astype(np.intp)
    del valid
    return column_of[slot]


def _check_outcome(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    """The outcome as floats; a ``ValueError`` naming a non-numeric or infinite value."""
    if not pd.api.types.is_numeric_dtype(frame[outcome]) or frame[outcome].dtype == bool:
        raise ValueError(
            f"{ROLE}: outcome column {outcome!r} must be numeric, got dtype {frame[outcome].dtype}"
        )
    y = frame[outcome].to_numpy(float)
    infinite = np.isinf(y)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        row = frame.index[first : first + 1].tolist()[0]
        raise ValueError(
            f"{ROLE}: outcome column {outcome!r} has {int(infinite.sum())} infinite value(s) "
            f"(first at row {row!r}: {float(y[first])!r}); values must be finite"
        )
    return y


def _unit_weights(
    w: np.ndarray, unit_codes: np.ndarray, labels: pd.Series, *, unit: str, weights: str
) -> np.ndarray:
    """One weight per unit; a ``ValueError`` naming a unit whose weights vary over time."""
    per_unit = np.empty(int(unit_codes.max()) + 1)
    per_unit[unit_codes] = w
    varies = per_unit[unit_codes] != w
    if varies.any():
        first = int(np.flatnonzero(varies)[0])
        label = labels.iloc[first : first + 1].tolist()[0]
        raise ValueError(
            f"{ROLE}: weights column {weights!r} must be constant within each {unit!r}; "
            f"{unit!r} = {label!r} has weights {float(w[first])!r} and "
            f"{float(per_unit[unit_codes[first]])!r} (use fit_event_study for weights that vary "
            "within a unit)"
        )
    return per_unit


def fit_event_study_grouped(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    first_treated: str,
    window: tuple[int, int],
    reference: int = -1,
    cluster: str | None = None,
    weights: str | None = None,
    conf_level: float = 0.95,
) -> EventStudyResult:
    """Dynamic two-way fixed effects regression in memory of a few row-length vectors.

    The fit of :func:`~spimpact.models.did_event_study.fit_event_study` without
    covariates and with its default standard errors (classical without ``cluster``, CR1
    with it): the same coefficients, covariance, degrees of freedom, counts and pre-trend
    test, for balanced or unbalanced panels, never building the rows x k design.

    Parameters
    ----------
    data
        Long panel, one row per unit-time; ``time`` and ``first_treated`` on the same
        integer scale. Any subset of periods may be observed per unit.
    outcome, unit, time, first_treated
        Column names. Never-treated units have ``first_treated`` 0, NaN or infinity.
    window
        ``(lowest, highest)`` event time estimated; event times outside are binned
        into the end points.
    reference
        Omitted event time (default -1).
    cluster
        Column to cluster on (CR1, fixest conventions); ``None`` gives classical SEs.
    weights
        Column of non-negative regression weights, constant within each unit (matching
        weights); rows with weight 0 are dropped. ``None``: OLS.
    conf_level
        Confidence level for intervals.

    Returns
    -------
    EventStudyResult
        As :func:`~spimpact.models.did_event_study.fit_event_study` returns.

    Notes
    -----
    Frisch-Waugh-Lovell: each event-time indicator ``x_j`` is projected off the unit and
    period dummies exactly (:class:`TwoWayProjection`), giving unit and period effects
    ``(a_j, b_j)`` but no row vector; ``X~'WX~ = X~'WX``, ``X~'Wy`` and the CR1 scores
    (per-cluster sums of ``w e x~_j``) are then sums of ``w``, ``w y`` or ``w e`` by code,
    unit, period and cluster, weighted by ``a_j`` and ``b_j``; the residuals ``e`` are the
    projection of ``y - X beta``. Weights must be constant within a unit, which keeps
    the projection's system period x period. Degrees of freedom and the
    small-sample factor are those of ``fit_linear`` (fixest's ``ssc`` defaults), so the
    result equals R ``fixest::feols(y ~ i(rel_time, ref = -1) | unit + time)``, which
    ``fit_event_study`` is tested against. Collinearity is detected from the k x k
    cross-product (condition number above ``1 / (rows * eps)``), not from the design.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(100), 8), "t": np.tile(np.arange(8), 100)})
    >>> d["g"] = np.where(d.id < 50, 4, 0)
    >>> d["y"] = np.where((d.g > 0) & (d.t >= d.g), 1.0, 0.0) + rng.normal(0, 0.1, 800)
    >>> es = fit_event_study_grouped(d, outcome="y", unit="id", time="t", first_treated="g",
    ...                              window=(-4, 3), cluster="id")
    >>> round(float(es.tidy().estimate.iloc[-1]), 1)
    1.0
    """
    require_columns(data, [outcome, unit, time, first_treated, cluster, weights], role=ROLE)
    require_numeric(data, [time, first_treated], role=ROLE)
    low, high = (int(window[0]), int(window[1]))
    if not low <= reference <= high or low >= high:
        raise ValueError(
            f"window must be (lowest, highest) with lowest < highest and contain the "
            f"reference {reference}; got {window}"
        )
    columns = list(
        dict.fromkeys(c for c in (outcome, unit, time, first_treated, cluster, weights) if c)
    )
    complete = np.ones(len(data), dtype=bool)
    for name in columns:
        if name != first_treated:
            complete &= data[name].notna().to_numpy()
    # as fit_event_study: no copy of the panel when no row has a missing value
    frame = data if complete.all() else data.loc[complete, columns]
    y = _check_outcome(frame, outcome)
    never = never_treated_mask(frame[first_treated]).to_numpy()
    if never.all():
        raise ValueError(f"no unit is ever treated: column {first_treated!r} is all 0/NaN/inf")
    event_time = np.array(frame[time], dtype=float)
    start = np.array(frame[first_treated], dtype=float)
    start[never] = np.nan
    event_time -= start
    del start
    codes = event_codes(np.clip(event_time, low, high, out=event_time), (low, high), reference)
    del event_time
    event_times = [e for e in range(low, high + 1) if e != reference]
    unit_codes, n_units = encode_groups(frame[unit])
    n_treated_units = int(np.unique(unit_codes[~never]).size)
    time_codes = encode_groups(frame[time])[0]
    cluster_codes = None
    if cluster is not None:
        cluster_codes = unit_codes if cluster == unit else encode_groups(frame[cluster])[0]
    w = weights_of(frame, weights, role=ROLE)
    labels = frame[unit]
    if w is not None and not (w > 0).all():
        # zero weights are dropped, as fit_linear (and fixest) drop them
        keep = w > 0
        y, codes, w, labels = y[keep], codes[keep], w[keep], labels[keep]
        unit_codes = encode_groups(pd.Series(unit_codes[keep]))[0]
        time_codes = encode_groups(pd.Series(time_codes[keep]))[0]
        if cluster == unit:
            cluster_codes = unit_codes
        elif cluster_codes is not None:
            cluster_codes = encode_groups(pd.Series(cluster_codes[keep]))[0]
    unit_weight = (
        None if w is None else _unit_weights(w, unit_codes, labels, unit=unit, weights=weights)
    )
    fit = _fit_indicators(
        y,
        codes,
        len(event_times),
        TwoWayProjection.build(unit_codes, time_codes, unit_weight, w),
        cluster_codes,
        cluster_name=cluster,
        conf_level=conf_level,
        terms=[f"event_time::{e}" for e in event_times],
    )
    return event_study_result(
        fit,
        event_times,
        n_covariates=0,
        reference=reference,
        window=(low, high),
        n_units=n_units,
        n_treated_units=n_treated_units,
    )


def _fit_indicators(
    y: np.ndarray,
    codes: np.ndarray,
    k: int,
    projection: TwoWayProjection,
    cluster: np.ndarray | None,
    *,
    cluster_name: str | None,
    conf_level: float,
    terms: list[str],
) -> LinearFit:
    """``fit_linear`` of ``y`` on the indicators of ``codes`` (k = none) with two-way effects.

    Indicator j's projection is ``x~_j = x_j - a_j[unit] - b_j[time]`` with ``(a_j, b_j)``
    from its sums by unit (``w_u N_uj``, N the unit x code counts) and by period (``M_tj``,
    M the weighted period x code counts), so every sum over rows of ``w x~_j z`` is a sum
    of ``w z`` by code, unit and period: no row-length work per indicator.
    """
    n, unit, time, w = y.size, projection.unit, projection.time, projection.row_weight
    n_units, n_times = projection.unit_rows.size, projection.system.shape[0] + 1
    indicated = np.flatnonzero(codes < k)
    by_code = sparse.csc_matrix(
        (
            np.ones(indicated.size),
            (unit[indicated].astype(np.int32), codes[indicated].astype(np.int32)),
        ),
        shape=(n_units, k),
    )
    del indicated
    key = time * (k + 1)
    key += codes
    by_time_code = np.bincount(key, weights=w, minlength=n_times * (k + 1))
    del key
    by_time_code = by_time_code.reshape(n_times, k + 1)[:, :k]
    code_weight = by_time_code.sum(axis=0)
    wy = y if w is None else w * y
    y_by_code = np.bincount(codes, weights=wy, minlength=k + 1)[:k]
    y_by_unit = np.bincount(unit, weights=wy, minlength=n_units)
    y_by_time = np.bincount(time, weights=wy, minlength=n_times)
    del wy

    def unit_and_time_effects(j: int) -> tuple[np.ndarray, np.ndarray]:
        count = by_code[:, j].toarray().ravel()
        return projection.effects(projection.unit_weight * count, by_time_code[:, j])

    time_effects = np.empty((n_times, k))
    gram, cross = np.empty((k, k)), np.empty(k)
    for j in range(k):
        unit_effect, time_effects[:, j] = unit_and_time_effects(j)
        # X~'WX~ = X~'WX: the projected column is W-orthogonal to the fixed effects
        gram[j] = -(by_code.T @ (projection.unit_weight * unit_effect))
        gram[j] -= time_effects[:, j] @ by_time_code
        gram[j, j] += code_weight[j]
        cross[j] = y_by_code[j] - unit_effect @ y_by_unit - time_effects[:, j] @ y_by_time
    gram = (gram + gram.T) / 2
    eigenvalues = np.linalg.eigvalsh(gram)
    if not eigenvalues[0] > max(n, k) * np.finfo(float).eps * eigenvalues[-1]:
        raise ValueError(
            "The regressors are collinear with each other or with the absorbed fixed "
            f"effects (the cross-product of the within-transformed indicators is singular: "
            f"{terms})."
        )
    bread = np.linalg.inv(gram)
    coefficients = bread @ cross
    residuals = projection.residual(y - np.append(coefficients, 0.0)[codes])
    weighted_residuals = residuals if w is None else residuals * w
    sizes = [n_units, n_times]
    residual_df = n - (k + n_fixed_effect_parameters(sizes))
    common = {
        "terms": tuple(terms),
        "coefficients": coefficients,
        "n_obs": n,
        "residual_df": residual_df,
        "conf_level": conf_level,
    }
    if cluster is None:
        sigma2 = float(weighted_residuals @ residuals) / residual_df
        return LinearFit(
            covariance=sigma2 * bread,
            df=float(residual_df),
            se_type=f"classical (homoskedastic) {'OLS' if w is None else 'WLS'}",
            n_clusters=None,
            **common,
        )
    del residuals
    n_clusters = int(cluster.max()) + 1
    # per-cluster sums of w e x~_j = sums of w e by (cluster, code), minus a_j and b_j
    # weighted by the sums of w e by (unit, cluster) and (cluster, period)
    key = cluster * (k + 1)
    key += codes
    scores = np.bincount(key, weights=weighted_residuals, minlength=n_clusters * (k + 1))
    scores = scores.reshape(n_clusters, k + 1)[:, :k]
    del key
    by_cluster_time = sparse.csr_matrix(
        (weighted_residuals, (cluster.astype(np.int32), time.astype(np.int32))),
        shape=(n_clusters, n_times),
    )
    scores -= by_cluster_time @ time_effects
    del by_cluster_time
    nested = [is_nested(unit, cluster), is_nested(time, cluster)]
    if nested[0]:
        cluster_of_unit = np.empty(n_units, dtype=np.intp)
        cluster_of_unit[unit] = cluster
        unit_residual = np.bincount(unit, weights=weighted_residuals, minlength=n_units)
        for j in range(k):
            scores[:, j] -= np.bincount(
                cluster_of_unit,
                weights=unit_residual * unit_and_time_effects(j)[0],
                minlength=n_clusters,
            )
    else:
        by_cluster_unit = sparse.csr_matrix(
            (weighted_residuals, (cluster.astype(np.int32), unit.astype(np.int32))),
            shape=(n_clusters, n_units),
        )
        for j in range(k):
            scores[:, j] -= by_cluster_unit @ unit_and_time_effects(j)[0]
    k_adjust = fixest_k(k, sizes, nested)
    adjustment = n_clusters / (n_clusters - 1) * (n - 1) / (n - k_adjust)
    return LinearFit(
        covariance=adjustment * bread @ (scores.T @ scores) @ bread,
        df=float(n_clusters - 1),
        se_type=f"cluster-robust CR1 by {cluster_name} ({n_clusters} clusters)",
        n_clusters=n_clusters,
        **common,
    )
