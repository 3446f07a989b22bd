"""The GP-attendance estimators fitted from per-cell sums (sufficient statistics).

When a person x month panel is too large to collect, :func:`sum_panel_cells` reduces it
with one ``GROUP BY`` in DuckDB SQL (on a data frame or on Parquet files, which are never
loaded whole) to cells: row counts, outcome sums and sums of squares per combination of
keys. The fits below then give the full-panel estimates exactly (to rounding), under
the conditions stated here.

What is sufficient for what. "Group" is a person-level key on which the regressors
depend (for referrals, the referral month ``first_treated``; never-referred people
form one group), "balanced" means one row per person in every period.

- Linear two-way fixed effects (:func:`fit_twfe_from_cells`) and the event study
  (:func:`fit_event_study_from_cells`), person and period effects absorbed, balanced
  panel, regressors functions of (group, period): the within-transformed regressors
  then depend on (group, period) only, so ``X~'y = sum X~_gt S_gt``. Point estimates
  need the per (group, period) counts and outcome sums. The CR1 standard error
  clustered by a variable that contains whole people needs the same per (cluster,
  group, period): a cluster's score is ``sum X~ (S - n fitted)``, the person effects
  dropping out because ``X~`` sums to zero over each person's periods; fixest's K is
  unchanged (person effects are nested in such clusters). Clustering by person makes
  the cells the panel itself. Classical SEs need person-level residuals: not offered.
- Poisson with person and period effects (:func:`fit_poisson_from_cells`), balanced
  panel: the person effect concentrates out, ``mu_it = Y_i p_gt`` with ``Y_i`` the
  person's total, so the likelihood equations for the slopes and period effects
  involve the data only through the per (group, period) outcome sums (with person
  totals ``Y_g``, their sums). Model-based SEs are exact from those; CR1 by a cluster of
  whole people from per (cluster, group, period) sums; the correction's n counts the
  rows of people whose outcome is not always zero (``n_rows_informative``), the rows a
  fixed-effects Poisson fit keeps. The reported deviance is the cells' own.
- The 2x2 difference-in-differences without fixed effects (:func:`fit_did_2x2_from_cells`):
  the regressors are constant within (treated, post) cells, so OLS equals weighted least
  squares on cell means; classical SEs add the within-cell sums of squares, CR1 SEs need
  the cells split by cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import patsy

from spimpact.models.count import PoissonResult, poisson_fit
from spimpact.models.did import DidResult, TwfeResult
from spimpact.models.did_event_study import (
    EventStudyResult,
    event_study_result,
    event_time_design,
)
from spimpact.models.did_fixed_effects import design_matrices, encode_groups, require_columns
from spimpact.models.did_staggered import never_treated_mask
from spimpact.models.did_tables import tidy_from_fit
from spimpact.models.linear_fit import LinearFit, fit_linear

COUNT = "n_rows"
INFORMATIVE_COUNT = "n_rows_informative"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sum_panel_cells(
    source: pd.DataFrame | str | Path,
    *,
    by: Sequence[str],
    outcome: str,
    unit: str | None = None,
) -> pd.DataFrame:
    """Per-cell counts, outcome means, sums and sums of squares by one DuckDB ``GROUP BY``.

    Parameters
    ----------
    source
        The panel: a data frame, or a Parquet file or glob (read by DuckDB, never
        loaded whole).
    by
        Cell keys, e.g. ``["practice", "first_treated", "month"]``.
    outcome
        Numeric outcome column.
    unit
        Person column; when given, ``n_rows_informative`` counts the rows of people whose
        outcome total is not zero (the rows a fixed-effects Poisson fit keeps).

    Returns
    -------
    pandas.DataFrame
        One row per cell, sorted by ``by``: the keys, ``n_rows``, ``<outcome>`` (mean),
        ``<outcome>_sum``, ``<outcome>_sum_of_squares`` and, with ``unit``,
        ``n_rows_informative``.

    Raises
    ------
    ValueError
        If a column is missing, or a key or the outcome is missing in any row (the fits
        on cells need the complete panel; nothing is dropped silently).

    Examples
    --------
    >>> panel = pd.DataFrame({"g": [0, 0, 1, 1], "t": [1, 2, 1, 2], "y": [1.0, 2, 3, 5]})
    >>> sum_panel_cells(panel, by=["g"], outcome="y")["y_sum"].tolist()
    [3.0, 8.0]
    """
    keys = list(by)
    connection = duckdb.connect()
    if isinstance(source, pd.DataFrame):
        require_columns(source, [*keys, outcome, unit], role="sum_panel_cells")
        connection.register("panel_source", source)
        relation = "panel_source"
        where = "data frame"
    else:
        path = str(source).replace("'", "''")
        relation = f"read_parquet('{path}')"
        where = str(source)
        names = [row[0] for row in connection.sql(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        missing = [c for c in [*keys, outcome, unit] if c is not None and c not in names]
        if missing:
            raise ValueError(
                f"sum_panel_cells: {where}: column(s) {missing} not found; columns: {names}"
            )
    y = _quote(outcome)
    key_list = ", ".join(_quote(k) for k in keys)
    informative = ""
    if unit is not None:
        relation = (
            f"(SELECT *, SUM({y}) OVER (PARTITION BY {_quote(unit)}) AS _unit_total "
            f"FROM {relation})"
        )
        informative = f", COUNT(*) FILTER (WHERE _unit_total <> 0) AS {INFORMATIVE_COUNT}"
    query = (
        f"SELECT {key_list}, COUNT(*) AS {COUNT}, COUNT(*) - COUNT({y}) AS _n_missing, "
        f"AVG({y}) AS {y}, SUM({y}) AS {_quote(outcome + '_sum')}, "
        f"SUM({y} * {y}) AS {_quote(outcome + '_sum_of_squares')}{informative} "
        f"FROM {relation} GROUP BY {key_list} ORDER BY {key_list}"
    )
    cells = connection.sql(query).df()
    connection.close()
    n_missing = int(cells["_n_missing"].sum())
    null_keys = cells[keys].isna().any(axis=1)
    if n_missing or null_keys.any():
        raise ValueError(
            f"sum_panel_cells: {where}: {n_missing} row(s) with a missing {outcome!r} and "
            f"{int(cells.loc[null_keys, COUNT].sum())} row(s) with a missing key in {keys}; "
            "the fits on cells need a complete panel"
        )
    return cells.drop(columns="_n_missing")


def _balanced_codes(
    cells: pd.DataFrame, unit_keys: Sequence[str], time: str, count: str, *, role: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of the cell-level units and periods; checks every unit has every period once.

    Returns the unit codes, the period codes and the number of people (the count of a
    unit's cells, the same in every period of a balanced panel).
    """
    units = cells.groupby(list(unit_keys), sort=True).ngroup().to_numpy(np.int64)
    periods, n_periods = encode_groups(cells[time])
    n_units = int(units.max()) + 1
    cell_id = units * n_periods + periods
    counts = cells[count].to_numpy(float)
    n_cells = n_units * n_periods
    if len(cells) != n_cells or (np.bincount(cell_id, minlength=n_cells) != 1).any():
        raise ValueError(
            f"{role}: every combination of {list(unit_keys)} needs exactly one cell in each "
            f"of the {n_periods} periods of {time!r} (a balanced panel); got {len(cells)} "
            f"cells for {n_units} combinations"
        )
    per_unit = np.zeros((n_units, n_periods))
    per_unit[units, periods] = counts
    uneven = np.flatnonzero(per_unit.min(axis=1) != per_unit.max(axis=1))
    if uneven.size:
        first = cells.loc[units == uneven[0], list(unit_keys)].iloc[0].to_dict()
        raise ValueError(
            f"{role}: the panel is not balanced: the cells of {first} have different "
            f"{count!r} in different periods ({sorted(set(per_unit[uneven[0]]))})"
        )
    return units, periods, int(per_unit[:, 0].sum())


def _cluster_codes(cells: pd.DataFrame, cluster: str | None) -> np.ndarray | None:
    return None if cluster is None else encode_groups(cells[cluster])[0]


def fit_twfe_from_cells(
    formula: str,
    cells: pd.DataFrame,
    *,
    group: str,
    time: str,
    cluster: str,
    count: str = COUNT,
    conf_level: float = 0.95,
) -> TwfeResult:
    """:func:`~spimpact.models.did.fit_twfe` (person and period effects) from cells.

    Parameters
    ----------
    formula
        As for ``fit_twfe``, its outcome the cell mean (``<outcome>`` of
        :func:`sum_panel_cells`); every regressor must be a function of (``group``,
        ``time``), e.g. ``treated_now`` computed from the referral month and the month.
    cells
        One row per (``cluster``, ``group``, ``time``) from a balanced panel.
    group, time
        The person-level key the regressors depend on, and the period.
    cluster
        Column containing whole people; the CR1 SE clustered by it is exact.
    count
        Column of the rows per cell.
    conf_level
        Confidence level for intervals.

    Returns
    -------
    TwfeResult
        Equal to ``fit_twfe(formula, panel, unit=person, time=time, cluster=cluster)``;
        ``n_units`` counts people.

    Notes
    -----
    Sufficiency is explained in the module docstring. The cell-level units are the
    (cluster, group) combinations, whose effects, weighted by the counts, give the same
    within-transformed regressors as the person effects in a balanced panel.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(60), 6), "t": np.tile(np.arange(6), 60)})
    >>> d["g"], d["practice"] = np.where(d.id < 30, 3, 0), d.id // 6
    >>> d["y"] = 2.0 * ((d.g > 0) & (d.t >= d.g)) + d.t + rng.normal(0, 0.1, 360)
    >>> cells = sum_panel_cells(d, by=["practice", "g", "t"], outcome="y")
    >>> cells["treated_now"] = ((cells.g > 0) & (cells.t >= cells.g)).astype(float)
    >>> fit = fit_twfe_from_cells("y ~ treated_now", cells, group="g", time="t",
    ...                           cluster="practice")
    >>> round(float(fit.tidy().estimate[0]), 1)
    2.0
    """
    require_columns(cells, [group, time, cluster, count], role="fit_twfe_from_cells")
    env = patsy.EvalEnvironment.capture(1)
    y, x, terms, kept = design_matrices(formula, cells, eval_env=env, drop_intercept=True)
    if len(kept) != len(cells):
        raise ValueError(
            f"fit_twfe_from_cells: {len(cells) - len(kept)} cell(s) have missing values"
        )
    units, periods, n_people = _balanced_codes(
        cells, [cluster, group], time, count, role="fit_twfe_from_cells"
    )
    counts = cells[count].to_numpy(float)
    fit = fit_linear(
        y,
        x,
        terms,
        absorb=(units, periods),
        cluster=_cluster_codes(cells, cluster),
        cluster_name=cluster,
        weights=counts,
        conf_level=conf_level,
        n_obs=int(counts.sum()),
    )
    return TwfeResult(
        coefficients=tidy_from_fit(fit, conf_level),
        covariance=pd.DataFrame(fit.covariance, index=fit.terms, columns=fit.terms),
        se_type=fit.se_type,
        n_obs=fit.n_obs,
        n_units=n_people,
        n_times=int(periods.max()) + 1,
        n_clusters=fit.n_clusters,
        df=fit.df,
        formula=formula,
        conf_level=conf_level,
    )


def fit_event_study_from_cells(
    cells: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    first_treated: str,
    window: tuple[int, int],
    cluster: str,
    reference: int = -1,
    count: str = COUNT,
    conf_level: float = 0.95,
) -> EventStudyResult:
    """:func:`~spimpact.models.did.fit_event_study` from (cluster, cohort, period) cells.

    Parameters
    ----------
    cells
        One row per (``cluster``, ``first_treated``, ``time``) of a balanced panel, as
        from ``sum_panel_cells(panel, by=[cluster, first_treated, time], ...)``.
    outcome
        Column of cell means of the outcome.
    time, first_treated, window, reference
        As for ``fit_event_study`` (never treated: ``first_treated`` 0, NaN or infinity).
    cluster
        Column containing whole people (practice, or person); CR1 by it is exact.
    count
        Column of the rows per cell.
    conf_level
        Confidence level for intervals.

    Returns
    -------
    EventStudyResult
        Equal to ``fit_event_study(panel, unit=person, cluster=cluster, ...)`` without
        covariates; ``n_units`` and ``n_treated_units`` count people.

    Notes
    -----
    The event-time indicators are functions of (cohort, period), so the cohort is the
    group of the module docstring's sufficiency argument.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(100), 8), "t": np.tile(np.arange(8), 100)})
    >>> d["g"], d["practice"] = np.where(d.id < 50, 4, 0), d.id // 10
    >>> d["y"] = np.where((d.g > 0) & (d.t >= d.g), 1.0, 0.0) + rng.normal(0, 0.1, 800)
    >>> cells = sum_panel_cells(d, by=["practice", "g", "t"], outcome="y")
    >>> es = fit_event_study_from_cells(cells, outcome="y", time="t", first_treated="g",
    ...                                 window=(-4, 3), cluster="practice")
    >>> round(float(es.tidy().estimate.iloc[-1]), 1)
    1.0
    """
    require_columns(
        cells, [outcome, time, first_treated, cluster, count], role="fit_event_study_from_cells"
    )
    low, high = (int(window[0]), int(window[1]))
    if not low <= reference <= high or low >= high:
        raise ValueError(
            f"window must be (lowest, highest) with lowest < highest and contain the "
            f"reference {reference}; got {window}"
        )
    never = never_treated_mask(cells[first_treated])
    if never.all():
        raise ValueError(f"no unit is ever treated: column {first_treated!r} is all 0/NaN/inf")
    # never-treated people form one group whatever their code (0, NaN or infinity)
    cohort = cells[first_treated].astype(float).where(~never, -np.inf)
    keyed = cells.assign(_cohort=cohort)
    units, periods, n_people = _balanced_codes(
        keyed, [cluster, "_cohort"], time, count, role="fit_event_study_from_cells"
    )
    event_time = (cells[time] - cells[first_treated].where(~never)).clip(low, high)
    x = event_time_design(event_time.to_numpy(float), (low, high), reference, 0)
    event_times = [e for e in range(low, high + 1) if e != reference]
    counts = cells[count].to_numpy(float)
    fit = fit_linear(
        cells[outcome].to_numpy(float),
        x,
        [f"event_time::{e}" for e in event_times],
        absorb=(units, periods),
        cluster=_cluster_codes(cells, cluster),
        cluster_name=cluster,
        weights=counts,
        conf_level=conf_level,
        n_obs=int(counts.sum()),
    )
    n_periods = int(periods.max()) + 1
    return event_study_result(
        fit,
        event_times,
        n_covariates=0,
        reference=reference,
        window=(low, high),
        n_units=n_people,
        n_treated_units=int(round(counts[~never.to_numpy()].sum() / n_periods)),
    )


def fit_poisson_from_cells(
    formula: str,
    cells: pd.DataFrame,
    *,
    group: str,
    time: str,
    cluster: str | None = None,
    count: str = INFORMATIVE_COUNT,
    conf_level: float = 0.95,
) -> PoissonResult:
    """Poisson regression with person and period effects absorbed, from cells.

    Parameters
    ----------
    formula
        Outcome the cell *sum* (``<outcome>_sum`` of :func:`sum_panel_cells`), regressors
        functions of (``group``, ``time``), e.g. ``"attendances_sum ~ treated_now"``.
    cells
        One row per (``group``, ``time``), or per (``cluster``, ``group``, ``time``) for
        clustered SEs, of a balanced panel.
    group, time
        The person-level key the regressors depend on, and the period.
    cluster
        Column containing whole people, or ``None`` for model-based SEs.
    count
        Column counting the rows of people whose outcome is not always zero
        (``n_rows_informative`` from ``sum_panel_cells(..., unit=person)``).
    conf_level
        Confidence level for intervals.

    Returns
    -------
    PoissonResult
        Estimates and SEs equal to ``fit_poisson(formula, panel, absorb=[person, time],
        cluster=cluster)`` (outcome the person-month count); ``n_obs`` the rows that fit
        keeps; the deviance is the cells'.

    Notes
    -----
    Sufficiency is explained in the module docstring (Hausman, Hall & Griliches 1984:
    the fixed-effects Poisson likelihood conditions on person totals). Cells whose
    cell-level unit or period has a zero total are dropped, as the panel fit drops those
    people and periods.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(4000), 6), "t": np.tile(np.arange(6), 4000)})
    >>> d["g"] = np.where(d.id < 2000, 3, 0)
    >>> now = (d.g > 0) & (d.t >= d.g)
    >>> d["visits"] = rng.poisson(np.exp(0.5 * now + rng.normal(0, 0.3, 4000)[d.id]))
    >>> cells = sum_panel_cells(d, by=["g", "t"], outcome="visits", unit="id")
    >>> cells["treated_now"] = ((cells.g > 0) & (cells.t >= cells.g)).astype(float)
    >>> fit = fit_poisson_from_cells("visits_sum ~ treated_now", cells, group="g", time="t")
    >>> round(float(fit.tidy(exponentiate=True).estimate[0]), 1)
    1.6
    """
    require_columns(cells, [group, time, cluster, count], role="fit_poisson_from_cells")
    env = patsy.EvalEnvironment.capture(1)
    y, x, terms, kept = design_matrices(formula, cells, eval_env=env, drop_intercept=True)
    if len(kept) != len(cells):
        raise ValueError(
            f"fit_poisson_from_cells: {len(cells) - len(kept)} cell(s) have missing values"
        )
    if (y < 0).any():
        raise ValueError(f"the outcome of {formula!r} must be non-negative sums of counts")
    unit_keys = [group] if cluster is None else [cluster, group]
    units, periods, _ = _balanced_codes(
        cells, unit_keys, time, count, role="fit_poisson_from_cells"
    )
    keep = np.ones(len(cells), dtype=bool)
    diagnostics = []
    for name, codes in (("+".join(unit_keys), units), (time, periods)):
        drop = (np.bincount(codes, weights=y)[codes] == 0) & keep
        if drop.any():
            diagnostics.append(
                f"{int(drop.sum())} cell(s) in {name!r} groups whose outcome is always 0 were "
                "dropped (they carry no information about the coefficients)."
            )
            keep &= ~drop
    cells_kept = cells.loc[keep]
    counts = cells_kept[count].to_numpy(float)
    return poisson_fit(
        y[keep],
        x[keep],
        np.zeros(int(keep.sum())),
        np.ones(int(keep.sum())),
        terms=terms,
        groups={
            " x ".join(unit_keys): encode_groups(pd.Series(units[keep]))[0],
            time: encode_groups(pd.Series(periods[keep]))[0],
        },
        cluster=(cluster, _cluster_codes(cells_kept, cluster)),
        n_obs=int(counts.sum()),
        formula=formula,
        diagnostics=diagnostics,
        conf_level=conf_level,
    )


def fit_did_2x2_from_cells(
    cells: pd.DataFrame,
    *,
    outcome: str,
    treated: str,
    post: str,
    cluster: str | None = None,
    count: str = COUNT,
    sum_of_squares: str | None = None,
    conf_level: float = 0.95,
) -> DidResult:
    """:func:`~spimpact.models.did.fit_did_2x2` (no covariates) from cells.

    Parameters
    ----------
    cells
        One row per (``treated``, ``post``), or per (``cluster``, ``treated``, ``post``).
    outcome
        Column of cell means.
    treated, post
        0/1 columns.
    cluster
        Column to cluster on (CR1); ``None``: classical SEs, which need
        ``sum_of_squares``.
    count
        Column of the rows per cell.
    sum_of_squares
        Column of per-cell sums of squared outcomes (``<outcome>_sum_of_squares``).
    conf_level
        Confidence level for intervals.

    Returns
    -------
    DidResult
        Equal to ``fit_did_2x2(rows, outcome=..., treated=..., post=..., cluster=...)``.

    Notes
    -----
    Classical SEs: the residual sum of squares is the weighted sum over cells of squared
    mean residuals plus the within-cell sums of squares ``sum y^2 - n mean^2``.

    Examples
    --------
    >>> d = pd.DataFrame({"g": np.repeat([0, 1], 200), "p": np.tile([0, 1], 200)})
    >>> d["y"] = 1 + 0.5 * d.g + 0.3 * d.p + 2.0 * d.g * d.p + np.tile([0.1, -0.1], 200)
    >>> cells = sum_panel_cells(d, by=["g", "p"], outcome="y")
    >>> fit = fit_did_2x2_from_cells(cells, outcome="y", treated="g", post="p",
    ...                              sum_of_squares="y_sum_of_squares")
    >>> round(fit.att, 1)
    2.0
    """
    require_columns(
        cells, [outcome, treated, post, cluster, count, sum_of_squares], role="fit_did_2x2"
    )
    if cluster is None and sum_of_squares is None:
        raise ValueError(
            "fit_did_2x2_from_cells: classical standard errors need the per-cell sums of "
            "squares (sum_of_squares=...), or cluster on a column of the cells"
        )
    counts = cells[count].to_numpy(float)
    means = cells[outcome].to_numpy(float)
    t = cells[treated].to_numpy(float)
    p = cells[post].to_numpy(float)
    if not (np.isin(t, (0, 1)).all() and np.isin(p, (0, 1)).all()):
        raise ValueError(f"columns {treated!r} and {post!r} must be 0/1")
    x = np.column_stack([np.ones(len(cells)), t, p, t * p])
    terms = ["(Intercept)", treated, post, f"{treated}:{post}"]
    n = int(counts.sum())
    if cluster is not None:
        fit = fit_linear(
            means,
            x,
            terms,
            cluster=_cluster_codes(cells, cluster),
            cluster_name=cluster,
            weights=counts,
            conf_level=conf_level,
            n_obs=n,
        )
    else:
        bread = np.linalg.inv(x.T @ (counts[:, None] * x))
        beta = bread @ (x.T @ (counts * means))
        residuals = means - x @ beta
        within = cells[sum_of_squares].to_numpy(float) - counts * means**2
        residual_df = n - x.shape[1]
        sigma2 = float(np.sum(counts * residuals**2) + np.sum(within)) / residual_df
        fit = LinearFit(
            terms=tuple(terms),
            coefficients=beta,
            covariance=sigma2 * bread,
            df=float(residual_df),
            se_type="classical (homoskedastic) OLS",
            n_obs=n,
            n_clusters=None,
            residual_df=residual_df,
            conf_level=conf_level,
        )
    coefficients = tidy_from_fit(fit, conf_level)
    att_term = f"{treated}:{post}"
    row = coefficients.set_index("term").loc[att_term]
    return DidResult(
        att=float(row.estimate),
        std_error=float(row.std_error),
        att_term=att_term,
        coefficients=coefficients,
        se_type=fit.se_type,
        n_obs=n,
        n_clusters=fit.n_clusters,
        df=fit.df,
        conf_level=conf_level,
    )
