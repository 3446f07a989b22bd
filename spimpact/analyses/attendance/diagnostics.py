"""Diagnostics of the GP attendance analysis, for the analyst-only notebook (issue 18).

Reads an :class:`~spimpact.analyses.attendance.AttendanceResult` through its public
attributes (``matching``, ``event_study``, ``panel``, ``tidy()``) and, where a version
of the analysis has them, ``sensitivity``, ``inference`` and ``person_periods``; what a
result does not hold gives an empty table with a note. Outputs are row-level and exact:
analyst tier only (``outputs/_analyst/``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.analyses.attendance.cohort import cohort_people

OUTCOME = "n_clinical"


def propensity_overlap(result) -> pd.DataFrame:
    """Propensity-score distribution of clients and comparison patients, before and after.

    Columns ``group, sample, n, min, p05, p25, median, p75, p95, max`` (``sample``:
    ``all`` or ``matched``); empty without a matched comparison group.
    """
    matching = getattr(result, "matching", None)
    if matching is None:
        return pd.DataFrame()
    data = matching.data
    rows = []
    for sample, frame in (("all", data), ("matched", data[data["weights"] > 0])):
        for treated, group in ((1, "clients"), (0, "comparison")):
            values = frame.loc[frame[matching.treatment].astype(int) == treated, "distance"]
            quantiles = (
                np.quantile(values, [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1])
                if len(values)
                else [np.nan] * 7
            )
            rows.append((group, sample, len(values), *map(float, quantiles)))
    columns = ["group", "sample", "n", "min", "p05", "p25", "median", "p75", "p95", "max"]
    return pd.DataFrame(rows, columns=columns)


def plot_propensity_overlap(result):
    """Histograms of the propensity score by group, all data and matched; the Figure."""
    import matplotlib.pyplot as plt

    matching = result.matching
    data = matching.data
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
    bins = np.linspace(float(data["distance"].min()), float(data["distance"].max()), 31)
    for ax, (title, frame) in zip(
        axes, (("All data", data), ("Matched", data[data["weights"] > 0])), strict=True
    ):
        treated = frame[matching.treatment].astype(int) == 1
        ax.hist(frame.loc[~treated, "distance"], bins=bins, alpha=0.6, density=True,
                label="comparison")  # fmt: skip
        ax.hist(frame.loc[treated, "distance"], bins=bins, alpha=0.6, density=True,
                label="clients")  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("Propensity score")
    axes[0].legend(frameon=False)
    figure.tight_layout()
    return figure


def matched_set_sizes(result) -> pd.DataFrame:
    """How many comparison patients each matched client has: ``n_controls, n_clients``."""
    matching = getattr(result, "matching", None)
    if matching is None or len(matching.pairs) == 0:
        return pd.DataFrame(columns=["n_controls", "n_clients"])
    per_client = matching.pairs.groupby("treated_index").size()
    table = per_client.value_counts().sort_index().rename_axis("n_controls")
    return table.rename("n_clients").reset_index()


def matching_weights(result) -> pd.DataFrame:
    """Distribution of the weights the estimate uses, by group.

    Columns ``group, n, n_zero, mean, sd, max, effective_n`` (Kish's effective sample
    size of the positive weights, ``(sum w)^2 / sum w^2``). Uses the panel's ``weight``
    column when the analysis has one (one row per person), else the matching weights.
    """
    panel = getattr(result, "panel", None)
    if panel is not None and "weight" in panel.columns:
        people = panel.drop_duplicates("patient_id")[["treated", "weight"]]
        weights, treated = people["weight"], people["treated"].astype(int)
    elif getattr(result, "matching", None) is not None:
        data = result.matching.data
        weights, treated = data["weights"], data[result.matching.treatment].astype(int)
    else:
        return pd.DataFrame()
    rows = []
    for flag, group in ((1, "clients"), (0, "comparison")):
        w = weights[treated == flag].to_numpy(dtype=float)
        positive = w[w > 0]
        rows.append(
            {
                "group": group,
                "n": len(w),
                "n_zero": int((w == 0).sum()),
                "mean": float(w.mean()) if len(w) else np.nan,
                "sd": float(w.std(ddof=1)) if len(w) > 1 else np.nan,
                "max": float(w.max()) if len(w) else np.nan,
                "effective_n": effective_sample_size(positive),
            }
        )
    return pd.DataFrame(rows)


def effective_sample_size(weights) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (NaN without weights).

    >>> effective_sample_size([1, 1, 1, 1])
    4.0
    >>> round(effective_sample_size([1, 1, 2]), 3)
    2.667
    """
    weights = np.asarray(weights, dtype=float)
    if len(weights) == 0 or not np.any(weights > 0):
        return float("nan")
    return float(weights.sum() ** 2 / np.sum(weights**2))


def event_study_table(result) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Event-study coefficients (``event_time`` and tidy columns) and the pre-trend test.

    The test is the joint Wald test that every pre-referral coefficient is zero:
    one row ``statistic, df, p_value, distribution``. Both empty without an event study.
    """
    study = getattr(result, "event_study", None)
    if study is None:
        return pd.DataFrame(), pd.DataFrame()
    table = study.tidy().assign(event_time=study.event_times)
    test = study.pretrend_test
    pretrend = pd.DataFrame(
        [
            {
                "statistic": test.statistic,
                "df": test.df,
                "p_value": test.p_value,
                "distribution": test.distribution,
            }
        ]
    )
    return table[["event_time", *[c for c in table.columns if c != "event_time"]]], pretrend


def alternative_designs(result) -> pd.DataFrame:
    """Every estimate the analysis made (all designs and checks), at its level.

    The result's own sensitivity table when it has one, else its estimates
    (``tidy()`` with the ``scale`` of each row).
    """
    sensitivity = getattr(result, "sensitivity", None)
    if isinstance(sensitivity, pd.DataFrame) and len(sensitivity):
        return sensitivity.reset_index(drop=True)
    return result.tidy()


def placebo_estimates(result) -> pd.DataFrame:
    """Rows of the estimates whose term names a placebo or falsification check.

    Empty (no rows) when this version of the analysis has no placebo.
    """
    table = result.tidy()
    return table[table["term"].str.contains("placebo|falsification", case=False)].reset_index(
        drop=True
    )


def practice_clustering(result, scheme) -> tuple[pd.DataFrame, pd.DataFrame]:
    """People analysed per GP practice by group, and how alike people of a practice are.

    Returns ``(practices, summary)``: ``practice_code, n_clients, n_comparison`` per
    practice, and one row ``n_practices, icc_pre_attendance, se, cluster, n_clusters``:
    the one-way ANOVA intraclass correlation of people's mean attendance before
    referral within practices (``icc``), and how the analysis clustered its standard
    errors where it records that (``inference``).
    """
    people = cohort_people(scheme, include_pool=scheme.comparison_pool is not None)
    if "practice_code" not in people.columns:
        return pd.DataFrame(), pd.DataFrame()
    panel = result.panel
    pre = (
        panel[panel["months_since_index"] < 0]
        .groupby("patient_id")[OUTCOME]
        .mean()
        .rename("pre_attendance")
        .reset_index()
    )
    people = people[["patient_id", "treated", "practice_code"]].drop_duplicates("patient_id")
    analysed = people[people["patient_id"].isin(panel["patient_id"])]
    practices = (
        analysed.assign(practice_code=analysed["practice_code"].fillna("(unknown)"))
        .groupby("practice_code")["treated"]
        .agg(n_clients="sum", n_people="size")
        .reset_index()
    )
    practices["n_comparison"] = practices["n_people"] - practices["n_clients"]
    practices = practices[["practice_code", "n_clients", "n_comparison"]]
    known = pre.merge(analysed.dropna(subset=["practice_code"]), on="patient_id")
    inference = getattr(result, "inference", None)
    summary = pd.DataFrame(
        [
            {
                "n_practices": int(known["practice_code"].nunique()),
                "icc_pre_attendance": anova_icc(known["pre_attendance"], known["practice_code"]),
                "se": getattr(inference, "se", "as fitted"),
                "cluster": getattr(inference, "cluster", "patient_id"),
                "n_clusters": getattr(inference, "n_clusters", np.nan),
            }
        ]
    )
    return practices, summary


def anova_icc(values, groups) -> float:
    """One-way ANOVA intraclass correlation of ``values`` within ``groups``.

    ``(MSB - MSW) / (MSB + (n0 - 1) MSW)`` with ``n0 = (N - sum n_i^2 / N) / (k - 1)``
    for unequal group sizes (Donner 1986, Int Stat Rev 54:67); NaN with fewer than
    two groups or no within-group variation.

    >>> round(anova_icc([1, 1, 2, 2, 3, 3], ["a", "a", "b", "b", "c", "c"]), 3)
    1.0
    """
    frame = pd.DataFrame({"y": np.asarray(values, dtype=float), "g": np.asarray(groups)})
    sizes = frame.groupby("g")["y"].size()
    k, n = len(sizes), len(frame)
    if k < 2 or n <= k:
        return float("nan")
    means = frame.groupby("g")["y"].transform("mean")
    ss_within = float(((frame["y"] - means) ** 2).sum())
    ss_between = float((sizes * (frame.groupby("g")["y"].mean() - frame["y"].mean()) ** 2).sum())
    ms_between, ms_within = ss_between / (k - 1), ss_within / (n - k)
    n0 = (n - float((sizes**2).sum()) / n) / (k - 1)
    denominator = ms_between + (n0 - 1) * ms_within
    return float((ms_between - ms_within) / denominator) if denominator > 0 else float("nan")
