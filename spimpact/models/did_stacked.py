"""Stacked difference-in-differences with corrective weights (Wing, Freedman & Hollingsworth 2024).

Re-exported by :mod:`spimpact.models.did`. One clean sub-experiment per adoption
cohort -- the cohort's units against units not yet treated through ``kappa_post``
periods after its adoption (or never treated), over event times
``-kappa_pre..kappa_post`` -- stacked, weighted so that every sub-experiment's controls
carry the same share as its treated units, and analysed by one weighted event-study
regression with reference period -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spimpact.models.did_fixed_effects import encode_groups, require_columns, require_numeric
from spimpact.models.did_honest import event_study_inputs, honest_did_smoothness
from spimpact.models.did_staggered import never_treated_mask
from spimpact.models.did_tables import bootstrap_level
from spimpact.models.linear_fit import LinearFit, WildOptions, check_weights, fit_linear
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy

REFERENCE = -1
AGGREGATIONS = ("simple",)


@dataclass(frozen=True)
class StackedAggregateResult(EstimatorResult):
    """An average of stacked event-study effects (``kind="simple"``: event times 0..kappa_post).

    ``att`` and ``std_error`` are the estimate and its standard error; ``df`` the
    degrees of freedom of the t reference (``None``: normal); with the wild bootstrap
    ``p_value``/``conf_low``/``conf_high`` are the bootstrap ones, fixed at fit time.
    """

    kind: str
    att: float
    std_error: float
    df: float | None
    p_value: float
    conf_low: float
    conf_high: float
    event_times: tuple[int, ...]
    se_type: str
    conf_level: float = 0.95

    def _level(self, conf_level: float | None) -> float:
        return bootstrap_level(
            self, super()._level(conf_level), bootstrapped=self.se_type.startswith("wild")
        )

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """One broom row, term ``simple``."""
        table = make_tidy(
            [self.kind], [self.att], [self.std_error], conf_level=conf_level, df=self.df
        )
        if self.se_type.startswith("wild"):
            table["p_value"] = self.p_value
            table["conf_low"] = self.conf_low
            table["conf_high"] = self.conf_high
        return table

    def summary(self) -> str:
        """One line: the average effect, its interval and the event times averaged."""
        row = self.tidy().iloc[0]
        return (
            f"Stacked DiD, {self.kind} average of event times {list(self.event_times)}: "
            f"{self.att:.6g} (SE {self.std_error:.6g}), {self.conf_level:.0%} CI "
            f"{row.conf_low:.6g} to {row.conf_high:.6g}, p = {row.p_value:.4g}\n"
            f"Standard errors: {self.se_type}"
        )


# eq=False: the fields hold data frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class StackedDidResult(EstimatorResult):
    """A weighted stacked event study.

    ``event_study`` has one row per event time except the reference -1: ``event_time,
    estimate, std_error, statistic, p_value, conf_low, conf_high``; ``covariance`` is
    their covariance matrix (rows in the same order). ``stacks`` describes the
    sub-experiments (``sub_experiment`` = adoption time, ``n_treated``, ``n_control``
    units, ``control_weight``); ``excluded_cohorts`` lists adoption times left out and
    why; ``stacked_data`` is the stacked panel with columns ``sub_experiment``,
    ``event_time``, ``treated`` and ``stack_weight`` added.
    """

    event_study: pd.DataFrame
    covariance: pd.DataFrame
    stacks: pd.DataFrame
    excluded_cohorts: pd.DataFrame
    kappa_pre: int
    kappa_post: int
    se_type: str
    n_obs: int
    n_units: int
    n_clusters: int | None
    df: float | None
    conf_level: float = 0.95
    stacked_data: pd.DataFrame = field(default=None, repr=False)
    _fit: LinearFit = field(default=None, repr=False)

    reference: int = REFERENCE

    def _level(self, conf_level: float | None) -> float:
        return bootstrap_level(
            self, super()._level(conf_level), bootstrapped=self.se_type.startswith("wild")
        )

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Broom table of the event-time effects, terms ``event_time::<e>``."""
        if self.se_type.startswith("wild"):
            table = self.event_study.drop(columns="event_time").copy()
            table.insert(0, "term", [f"event_time::{e}" for e in self.event_study.event_time])
            return table[
                ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]
            ]
        term_df = self._fit.term_df if self._fit.term_df is not None else self.df
        return make_tidy(
            [f"event_time::{e}" for e in self.event_study.event_time],
            self.event_study.estimate,
            self.event_study.std_error,
            conf_level=conf_level,
            df=term_df,
        )

    def aggregate(self, kind: str = "simple") -> StackedAggregateResult:
        """Average effect over event times 0..kappa_post (``kind="simple"``).

        This is the trimmed aggregate ATT of Wing, Freedman & Hollingsworth (2024):
        every post-period event time counts equally; its standard error comes from the
        covariance of the event-time coefficients (the design's standard-error type).
        """
        if kind not in AGGREGATIONS:
            raise ValueError(f"kind must be one of {AGGREGATIONS}, got {kind!r}")
        post = self.event_study.event_time.to_numpy() >= 0
        contrast = post / post.sum()
        row = self._fit.contrast_row(kind, contrast)
        return StackedAggregateResult(
            kind=kind,
            att=float(row["estimate"]),
            std_error=float(row["std_error"]),
            df=None if np.isnan(row["df"]) else float(row["df"]),
            p_value=float(row["p_value"]),
            conf_low=float(row["conf_low"]),
            conf_high=float(row["conf_high"]),
            event_times=tuple(int(e) for e in self.event_study.event_time[post]),
            se_type=self.se_type,
            conf_level=self.conf_level,
        )

    def honest_did_smoothness(self, m_values, **kwargs) -> pd.DataFrame:
        """Rambachan & Roth smoothness (Delta^SD) FLCIs for this event study.

        See :func:`spimpact.models.did_honest.honest_did_smoothness`; needs
        ``kappa_pre >= 2`` (at least one pre-period coefficient besides the reference).
        """
        beta, sigma, n_pre, n_post = event_study_inputs(
            self.event_study.event_time, self.event_study.estimate, self.covariance.to_numpy()
        )
        return honest_did_smoothness(
            beta, sigma, num_pre_periods=n_pre, num_post_periods=n_post, m_values=m_values, **kwargs
        )

    def summary(self) -> str:
        """Text summary: the sub-experiments, their weights and the event study."""
        agg = self.aggregate()
        excluded = (
            "none"
            if self.excluded_cohorts.empty
            else "; ".join(
                f"{r.first_treated} ({r.reason})" for r in self.excluded_cohorts.itertuples()
            )
        )
        return (
            f"Stacked event study (Wing, Freedman & Hollingsworth 2024), event times "
            f"-{self.kappa_pre}..{self.kappa_post}, reference {self.reference}\n"
            f"Observations: {self.n_obs}; units: {self.n_units}; "
            f"sub-experiments: {len(self.stacks)}; cohorts left out: {excluded}\n"
            f"Standard errors: {self.se_type}\n"
            + self.stacks.to_string(index=False, float_format=lambda v: f"{v:.6g}")
            + "\n\n"
            + self.tidy().to_string(index=False, float_format=lambda v: f"{v:.6g}")
            + "\n\n"
            + agg.summary()
        )

    def plot(self, ax: plt.Axes | None = None) -> plt.Axes:
        """Event-time effects with confidence intervals; the reference period at 0."""
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        tidy = self.tidy()
        e = self.event_study.event_time.to_numpy()
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.axvline(-0.5, color="grey", linestyle=":", linewidth=0.8)
        ax.errorbar(
            e,
            tidy["estimate"],
            yerr=[tidy["estimate"] - tidy["conf_low"], tidy["conf_high"] - tidy["estimate"]],
            fmt="o",
            capsize=3,
        )
        ax.plot([self.reference], [0.0], "o", mfc="white", color="C0")
        ax.set_xlabel("Periods relative to adoption")
        ax.set_ylabel(f"Estimate ({self.conf_level:.0%} CI)")
        return ax


def stack_sub_experiments(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    first_treated: str,
    kappa_pre: int,
    kappa_post: int,
    weights: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stacked clean sub-experiments with corrective weights, and the cohorts left out.

    Returns the stacked rows (columns added: ``sub_experiment``, ``event_time``,
    ``treated``, ``stack_weight``) and a table of excluded cohorts with the reason.
    Weights follow the authors' ``compute_weights()``: treated rows 1, control rows
    ``(treated share of the sub-experiment) / (control share of the sub-experiment)``,
    shares computed within each event time (sums of ``weights`` when given, which then
    multiply the corrective weights).
    """
    per_unit = data.groupby(unit)[first_treated].nunique(dropna=False)
    if (per_unit > 1).any():
        bad = per_unit[per_unit > 1].index[0]
        raise ValueError(
            f"column {first_treated!r} must be constant within each unit; unit {bad!r} has "
            f"{int(per_unit[bad])} different values"
        )
    adoption = data[first_treated].where(~never_treated_mask(data[first_treated]))
    min_time, max_time = data[time].min(), data[time].max()
    cohorts = np.sort(adoption.dropna().unique())
    pieces, excluded = [], []
    for a in cohorts:
        if a - kappa_pre < min_time or a + kappa_post > max_time:
            excluded.append((a, f"event window {a - kappa_pre}..{a + kappa_post} outside the data"))
            continue
        in_window = data[time].between(a - kappa_pre, a + kappa_post)
        treated = adoption == a
        clean = adoption.isna() | (adoption > a + kappa_post)
        piece = data.loc[in_window & (treated | clean)].copy()
        if not clean[in_window].any():
            excluded.append((a, "no clean controls"))
            continue
        piece["sub_experiment"] = a
        piece["event_time"] = (piece[time] - a).astype(int)
        piece["treated"] = treated[piece.index].astype(int)
        pieces.append(piece)
    excluded_table = pd.DataFrame(excluded, columns=["first_treated", "reason"])
    if not pieces:
        raise ValueError(
            f"no feasible sub-experiment: every adoption cohort in {first_treated!r} "
            f"lacks a full window of {kappa_pre} pre and {kappa_post} post periods in "
            f"{time!r} ({min_time}..{max_time}) or clean controls"
        )
    stacked = pd.concat(pieces, ignore_index=True)
    base = stacked[weights].astype(float) if weights else pd.Series(1.0, index=stacked.index)
    keys = ["event_time", "treated"]
    total = base.groupby([stacked[k] for k in keys]).transform("sum")
    sub = base.groupby([stacked["sub_experiment"], *[stacked[k] for k in keys]]).transform("sum")
    share = sub / total
    frame = pd.DataFrame({"share": share, "event_time": stacked.event_time})
    frame["sub_experiment"] = stacked.sub_experiment
    frame["treated"] = stacked.treated
    treated_share = (
        frame[frame.treated == 1]
        .groupby(["sub_experiment", "event_time"])["share"]
        .first()
        .rename("treated_share")
    )
    frame = frame.join(treated_share, on=["sub_experiment", "event_time"])
    corrective = np.where(frame.treated == 1, 1.0, frame.treated_share / frame.share)
    stacked["stack_weight"] = base.to_numpy() * corrective
    return stacked, excluded_table


def fit_stacked_did(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    first_treated: str,
    kappa_pre: int,
    kappa_post: int,
    cluster: str | None = None,
    weights: str | None = None,
    se: str | None = None,
    conf_level: float = 0.95,
    bootstrap_draws: int = 9999,
    bootstrap_weights: str = "rademacher",
    seed: int | None = 0,
) -> StackedDidResult:
    """Stacked event study with the corrective weights of Wing, Freedman & Hollingsworth.

    Parameters
    ----------
    data
        Long panel, one row per unit-time; ``time`` and ``first_treated`` on the same
        integer scale.
    outcome, unit, time, first_treated
        Column names; ``first_treated`` is the adoption time, 0 (or NaN/inf) for never
        treated, constant within a unit (as in :func:`fit_staggered_did`).
    kappa_pre, kappa_post
        Pre- and post-periods of every sub-experiment's window (``kappa_pre >= 1``).
        Cohorts whose window does not fit in the data are left out (the paper's
        inclusion criterion); controls are units not treated before
        ``adoption + kappa_post + 1`` or never.
    cluster
        Column to cluster on; ``None`` clusters on ``unit`` (a unit appears in several
        sub-experiments, so its rows are never independent).
    weights
        Optional column of unit weights (e.g. matching weights) multiplied into the
        corrective weights.
    se
        ``None``/``"CR1"`` (the paper's cluster-robust SEs), ``"CR2"`` or ``"wild"``; see
        :func:`spimpact.models.did.fit_event_study`.
    conf_level, bootstrap_draws, bootstrap_weights, seed
        Interval level and the wild bootstrap's settings.

    Returns
    -------
    StackedDidResult
        ``.event_study`` and ``.aggregate("simple")``.

    Notes
    -----
    Wing, Freedman & Hollingsworth (2024), "Stacked Difference-in-Differences", NBER
    WP 32054, and their replication example (GitHub hollina/stacked-did-weights): the
    regression ``outcome ~ i(event_time, treated, ref = -1) | treated + event_time``
    weighted by the corrective weights Q, the same as R ``fixest::feols`` there.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(60), 10), "t": np.tile(np.arange(10), 60)})
    >>> d["g"] = np.select([d.id < 20, d.id < 40], [4, 6], 0)
    >>> d["y"] = np.where((d.g > 0) & (d.t >= d.g), 1.0, 0.0) + rng.normal(0, 0.1, 600)
    >>> res = fit_stacked_did(d, outcome="y", unit="id", time="t", first_treated="g",
    ...                       kappa_pre=3, kappa_post=2)
    >>> round(res.aggregate("simple").att, 1)
    1.0
    """
    require_columns(
        data, [outcome, unit, time, first_treated, cluster, weights], role="fit_stacked_did"
    )
    require_numeric(data, [time, first_treated], role="fit_stacked_did")
    if int(kappa_pre) != kappa_pre or int(kappa_post) != kappa_post:
        raise ValueError(
            f"kappa_pre and kappa_post must be integers, got {kappa_pre}, {kappa_post}"
        )
    if kappa_pre < 1 or kappa_post < 0:
        raise ValueError(
            f"need kappa_pre >= 1 (the reference period -1) and kappa_post >= 0; got "
            f"{kappa_pre}, {kappa_post}"
        )
    columns = list(
        dict.fromkeys(c for c in [outcome, unit, time, first_treated, cluster, weights] if c)
    )
    frame = data[columns].dropna(subset=[c for c in columns if c != first_treated])
    if weights is not None:
        check_weights(frame[weights].to_numpy(float), name=weights)
    stacked, excluded = stack_sub_experiments(
        frame,
        unit=unit,
        time=time,
        first_treated=first_treated,
        kappa_pre=int(kappa_pre),
        kappa_post=int(kappa_post),
        weights=weights,
    )
    event_times = [e for e in range(-int(kappa_pre), int(kappa_post) + 1) if e != REFERENCE]
    x = np.column_stack(
        [((stacked.event_time == e) & (stacked.treated == 1)).to_numpy(float) for e in event_times]
    )
    cluster_column = unit if cluster is None else cluster
    fit = fit_linear(
        stacked[outcome].to_numpy(float),
        x,
        [f"event_time::{e}" for e in event_times],
        absorb=(
            encode_groups(stacked.treated)[0],
            encode_groups(stacked.event_time)[0],
        ),
        cluster=encode_groups(stacked[cluster_column])[0],
        cluster_name=cluster_column,
        weights=stacked.stack_weight.to_numpy(float),
        se="CR1" if se is None else se,
        conf_level=conf_level,
        wild=WildOptions(n_draws=bootstrap_draws, weight_type=bootstrap_weights, seed=seed),
    )
    table = fit.table(conf_level)
    event_study = table.drop(columns="term")
    event_study.insert(0, "event_time", event_times)
    stacks = (
        stacked[stacked.event_time == 0]
        .groupby("sub_experiment")
        .agg(
            n_treated=("treated", "sum"),
            n_control=("treated", lambda s: int((s == 0).sum())),
        )
        .reset_index()
    )
    control_weight = (
        stacked[(stacked.event_time == 0) & (stacked.treated == 0)]
        .groupby("sub_experiment")["stack_weight"]
        .mean()
    )
    stacks["control_weight"] = stacks.sub_experiment.map(control_weight)
    names = list(table.term)
    return StackedDidResult(
        event_study=event_study,
        covariance=pd.DataFrame(fit.covariance, index=names, columns=names),
        stacks=stacks,
        excluded_cohorts=excluded,
        kappa_pre=int(kappa_pre),
        kappa_post=int(kappa_post),
        se_type=fit.se_type,
        n_obs=fit.n_obs,
        n_units=int(stacked[unit].nunique()),
        n_clusters=fit.n_clusters,
        df=fit.df,
        conf_level=conf_level,
        stacked_data=stacked,
        _fit=fit,
    )
