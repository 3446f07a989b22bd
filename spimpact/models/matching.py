"""Propensity-score nearest-neighbour matching with MatchIt's conventions and balance checks."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from spimpact.models.matching_balance import balance_table, is_categorical
from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy

#: Absolute standardised mean difference above which a covariate counts as imbalanced
#: (Austin 2009, Stat Med 28:3083; the threshold MatchIt's and cobalt's documentation use).
SMD_THRESHOLD = 0.1

BALANCE_STATISTICS = (
    "mean_treated",
    "mean_control",
    "std_mean_diff",
    "variance_ratio",
    "ecdf_mean",
    "ecdf_max",
)


# eq=False: the fields hold data frames, which have no single truth value.
@dataclass(frozen=True, eq=False)
class MatchResult(EstimatorResult):
    """A matched comparison group and its balance diagnostics (read-only).

    Attributes
    ----------
    data
        The input rows (original index) with added columns ``distance`` (propensity
        score), ``weights`` (MatchIt matching weights; 0 for unmatched units) and
        ``subclass`` (matched set number, ``<NA>`` when unmatched; with replacement a
        reused control shows its first set, and ``pairs`` lists every pairing).
    pairs
        One row per treated-control pair: ``subclass``, ``treated_index``,
        ``control_index`` (index labels of ``data``), ``distance_gap``.
    treatment, covariates, exact
        Column names used.
    ratio, replace, caliper
        Options as given; ``caliper`` in standard deviations of the distance.
    caliper_width
        The caliper on the propensity-score scale (``None`` without a caliper).
    propensity
        Tidy table of the logistic propensity model (log-odds scale), intervals at
        ``conf_level``.
    diagnostics
        Plain-English warnings, e.g. covariates still imbalanced after matching.
    conf_level
        Level of the propensity-model intervals in ``tidy``.
    """

    data: pd.DataFrame
    pairs: pd.DataFrame
    treatment: str
    covariates: tuple[str, ...]
    exact: tuple[str, ...]
    ratio: int
    replace: bool
    caliper: float | None
    caliper_width: float | None
    propensity: pd.DataFrame
    diagnostics: tuple[str, ...]
    conf_level: float = 0.95

    @property
    def matched(self) -> pd.DataFrame:
        """Rows with a positive matching weight, with ``weights`` and ``subclass``."""
        return self.data.loc[self.data["weights"] > 0]

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """Coefficients of the propensity-score model (log-odds), Wald z intervals."""
        table = self.propensity
        return make_tidy(
            table["term"], table["estimate"], table["std_error"], conf_level=conf_level
        )

    def sample_sizes(self) -> pd.DataFrame:
        """Count controls and treated units: all, matched, unmatched (as MatchIt's summary)."""
        treated = self.data[self.treatment].astype(int) == 1
        matched = self.data["weights"] > 0
        rows = []
        for label, mask in (("all", slice(None)), ("matched", matched), ("unmatched", ~matched)):
            subset = treated[mask]
            rows.append(
                {
                    "sample": label,
                    "n_control": int((~subset).sum()),
                    "n_treated": int(subset.sum()),
                }
            )
        return pd.DataFrame(rows)

    def balance(self) -> pd.DataFrame:
        """Covariate balance before and after matching, MatchIt's ``summary()`` conventions.

        Returns
        -------
        pandas.DataFrame
            One row per variable (``distance`` first, then each covariate, factor
            levels expanded, then exact-matching variables) with columns
            ``variable`` and, for ``_before`` (all data) and ``_after`` (matched
            data), ``mean_treated``, ``mean_control``, ``std_mean_diff``,
            ``variance_ratio`` (``NaN`` for binary variables), ``ecdf_mean`` and
            ``ecdf_max``.

        Notes
        -----
        Standardised mean differences for the ATT divide by the standard deviation of
        the treated group in the unmatched data, kept the same after matching;
        binary variables use ``sqrt(p (1 - p))`` (MatchIt ``summary.matchit``,
        ``s.d.denom = "treated"``; Stuart 2010, Stat Sci 25:1). Weighted variances
        use reliability weights as ``stats::cov.wt``; eCDF statistics compare the
        weighted empirical distribution functions at each observed value.
        """
        return balance_table(self.data, self.treatment, self.covariates, self.exact)

    def summary(self) -> str:
        """Text summary: method, sample sizes, balance and diagnostics."""
        method = (
            f"{self.ratio}:1 nearest-neighbour propensity-score matching "
            f"{'with' if self.replace else 'without'} replacement"
        )
        if self.caliper is not None:
            method += (
                f", caliper {self.caliper:g} SD of the propensity score ({self.caliper_width:.4f})"
            )
        if self.exact:
            method += f", exact on {', '.join(self.exact)}"
        table = self.balance()[
            ["variable", "std_mean_diff_before", "std_mean_diff_after", "variance_ratio_after"]
        ]
        lines = [
            method,
            "",
            self.sample_sizes().to_string(index=False),
            "",
            table.to_string(index=False, float_format=lambda x: f"{x:.4f}"),
        ]
        if self.diagnostics:
            lines += ["", *self.diagnostics]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Love plot: absolute standardised mean differences before and after matching.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        table = self.balance()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.35 * len(table) + 1.2))
        positions = np.arange(len(table))[::-1]
        ax.scatter(
            table["std_mean_diff_before"].abs(),
            positions,
            facecolors="none",
            edgecolors="#555555",
            label="All data",
        )
        ax.scatter(table["std_mean_diff_after"].abs(), positions, color="#005eb8", label="Matched")
        ax.axvline(SMD_THRESHOLD, color="#999999", linestyle="--", linewidth=1)
        ax.set_yticks(positions, table["variable"])
        ax.set_xlabel("Absolute standardised mean difference")
        ax.legend(loc="lower right", frameon=False)
        return ax


def match_nearest(
    data: pd.DataFrame,
    *,
    treatment: str,
    covariates,
    ratio: int = 1,
    caliper: float | None = None,
    replace: bool = False,
    exact=None,
    conf_level: float = 0.95,
) -> MatchResult:
    """Greedy nearest-neighbour matching on a logistic propensity score (ATT).

    Parameters
    ----------
    data
        One row per unit.
    treatment
        Column of 0/1 (or boolean) treatment indicators.
    covariates
        Columns of the propensity model; text, categorical or boolean columns
        become indicator variables.
    ratio
        Controls per treated unit.
    caliper
        Largest allowed propensity-score difference, in standard deviations of the
        propensity score across all units; treated units without a control inside
        the caliper stay unmatched.
    replace
        Whether a control may be matched to more than one treated unit.
    exact
        Columns on which matched units must agree exactly (e.g. sex, practice,
        index month).
    conf_level
        Level of the propensity-model intervals reported by ``tidy``.

    Returns
    -------
    MatchResult

    Notes
    -----
    Reproduces ``MatchIt::matchit(method = "nearest", distance = "glm")`` (Ho, Imai,
    King & Stuart 2011, J Stat Softw 42(8); MatchIt 4.7): the propensity score is a
    logistic regression fitted by IRLS; without replacement treated units are
    matched in descending propensity order (``m.order = "largest"``), one control
    per treated unit per round for ``ratio`` rounds; with replacement each treated
    unit takes its ``ratio`` nearest controls in data order. Weights are MatchIt's:
    treated 1, a control ``sum(1 / k)`` over the treated units it serves (``k``
    controls each), each group rescaled to a mean non-zero weight of 1.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> frame = pd.DataFrame({"x": rng.normal(size=200)})
    >>> frame["treated"] = (rng.uniform(size=200) < 1 / (1 + np.exp(1 - frame["x"]))).astype(int)
    >>> result = match_nearest(frame, treatment="treated", covariates=["x"])
    >>> int(result.sample_sizes().loc[1, "n_treated"]) == int(frame["treated"].sum())
    True
    """
    covariates = _as_tuple(covariates, "covariates")
    exact = _as_tuple(exact, "exact") if exact is not None else ()
    _check_input(data, treatment, covariates, exact, ratio, caliper)
    treated = data[treatment].astype(int).to_numpy() == 1

    diagnostics: list[str] = []
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    distance, propensity = _fit_propensity(data, treated, covariates, diagnostics, conf_level)

    caliper_width = None if caliper is None else caliper * float(np.std(distance, ddof=1))
    strata = (
        data.groupby(list(exact), sort=False, observed=True).ngroup().to_numpy()
        if exact
        else np.zeros(len(data), dtype=int)
    )
    pairs = _greedy_match(distance, treated, strata, ratio, caliper_width, replace)
    weights, subclass = _matching_weights(pairs, treated)

    out = data.copy()
    out["distance"] = distance
    out["weights"] = weights
    out["subclass"] = pd.array(subclass, dtype="Int64")
    pair_frame = pd.DataFrame(
        {
            "subclass": [p[0] + 1 for p in pairs],
            "treated_index": data.index[[p[1] for p in pairs]],
            "control_index": data.index[[p[2] for p in pairs]],
            "distance_gap": [abs(distance[p[1]] - distance[p[2]]) for p in pairs],
        }
    )
    n_unmatched = int(treated.sum() - (weights[treated] > 0).sum())
    if n_unmatched:
        diagnostics.append(
            f"{n_unmatched} of {int(treated.sum())} treated units found no control "
            "(within the caliper or exact-matching strata) and are left out; the estimate "
            "then describes the matched treated units only."
        )
    result = MatchResult(
        data=out,
        pairs=pair_frame,
        treatment=treatment,
        covariates=covariates,
        exact=exact,
        ratio=ratio,
        replace=replace,
        caliper=caliper,
        caliper_width=caliper_width,
        propensity=propensity,
        diagnostics=(),
        conf_level=conf_level,
    )
    balance = result.balance()
    imbalanced = balance.loc[balance["std_mean_diff_after"].abs() > SMD_THRESHOLD, "variable"]
    imbalanced = [name for name in imbalanced if name != "distance"]
    if imbalanced:
        diagnostics.append(
            "After matching, the groups still differ on "
            + ", ".join(imbalanced)
            + f" (standardised mean difference above {SMD_THRESHOLD}); the comparison "
            "may be biased by these differences."
        )
    return dataclasses.replace(result, diagnostics=tuple(diagnostics))


def _as_tuple(value, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    value = tuple(value)
    if not value and name == "covariates":
        raise ValueError("covariates must name at least one column")
    return value


def _check_input(data, treatment, covariates, exact, ratio, caliper) -> None:
    missing = [c for c in (treatment, *covariates, *exact) if c not in data.columns]
    if missing:
        raise ValueError(f"columns not in data: {', '.join(missing)}")
    values = set(pd.unique(data[treatment].astype("object")))
    if not values <= {0, 1}:  # True/False compare equal to 1/0
        raise ValueError(
            f"treatment column '{treatment}' must hold 0/1 or true/false, "
            f"got {sorted(map(str, values))}"
        )
    if len(values) < 2:
        raise ValueError(f"treatment column '{treatment}' must contain treated and control units")
    for column in (*covariates, *exact):
        n_missing = int(data[column].isna().sum())
        if n_missing:
            raise ValueError(
                f"column '{column}' has {n_missing} missing values; matching needs complete "
                "covariates (impute or add a missing-value category first)"
            )
    if int(ratio) != ratio or ratio < 1:
        raise ValueError(f"ratio must be a whole number >= 1, got {ratio}")
    if caliper is not None and not caliper > 0:
        raise ValueError(f"caliper must be positive (standard deviations), got {caliper}")


def _model_design(data: pd.DataFrame, covariates) -> pd.DataFrame:
    parts = []
    for column in covariates:
        series = data[column]
        if pd.api.types.is_bool_dtype(series):
            parts.append(series.astype(float).rename(column))
        elif is_categorical(series):
            parts.append(
                pd.get_dummies(
                    series.astype(str), prefix=column, prefix_sep="", drop_first=True
                ).astype(float)
            )
        else:
            parts.append(series.astype(float).rename(column))
    return sm.add_constant(pd.concat(parts, axis=1), has_constant="add")


def _fit_propensity(data, treated, covariates, diagnostics, conf_level):
    design = _model_design(data, covariates)
    model = sm.GLM(treated.astype(float), design.to_numpy(), family=sm.families.Binomial())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit()
    for warning in caught:
        if issubclass(warning.category, PerfectSeparationWarning):
            diagnostics.append(
                "The propensity model separates the groups perfectly on some covariate: "
                "some clients have no comparable comparison patients."
            )
        elif issubclass(warning.category, ConvergenceWarning):
            diagnostics.append("The propensity model did not converge; treat matches with care.")
    propensity = make_tidy(list(design.columns), fit.params, fit.bse, conf_level=conf_level)
    return np.asarray(fit.fittedvalues, dtype=float), propensity


class _Neighbours:
    """Controls of one stratum sorted by distance, with O(alpha) removal (union-find skips)."""

    def __init__(self, index: np.ndarray, distance: np.ndarray):
        order = np.argsort(distance[index], kind="stable")
        self.index = index[order]
        self.values = distance[self.index]
        size = len(self.index)
        # right[i]: smallest available position >= i (size = none); left: largest <= i (-1).
        self.right = np.arange(size + 1)
        self.left = np.arange(-1, size) + 1  # shifted by one so position -1 maps to 0

    def _find_right(self, position: int) -> int:
        root = position
        while self.right[root] != root:
            root = self.right[root]
        while self.right[position] != root:
            self.right[position], position = root, self.right[position]
        return root

    def _find_left(self, position: int) -> int:
        shifted = position + 1
        root = shifted
        while self.left[root] != root:
            root = self.left[root]
        while self.left[shifted] != root:
            self.left[shifted], shifted = root, self.left[shifted]
        return root - 1

    def remove(self, position: int) -> None:
        self.right[position] = position + 1
        self.left[position + 1] = position

    def nearest(self, value: float, caliper: float | None, exclude=()) -> int | None:
        """Position of the nearest available control, ties to the lower distance."""
        start = int(np.searchsorted(self.values, value, side="right"))
        left = self._find_left(start - 1)
        right = self._find_right(start)
        while left >= 0 and self.index[left] in exclude:
            left = self._find_left(left - 1)
        while right < len(self.index) and self.index[right] in exclude:
            right = self._find_right(right + 1)
        candidates = []
        if left >= 0:
            candidates.append((value - self.values[left], 0, left))
        if right < len(self.index):
            candidates.append((self.values[right] - value, 1, right))
        if not candidates:
            return None
        gap, _, position = min(candidates)
        if caliper is not None and gap > caliper:
            return None
        return position


def group_positions(labels: np.ndarray, mask: np.ndarray) -> dict:
    """Positions (ascending) of the rows where ``mask`` holds, for each label (one sort).

    >>> group_positions(np.array([2, 1, 2, 1, 2]), np.array([True, True, False, True, True]))
    {1: array([1, 3]), 2: array([0, 4])}
    """
    rows = np.flatnonzero(mask)
    rows = rows[np.argsort(labels[rows], kind="stable")]
    keys, starts = np.unique(labels[rows], return_index=True)
    return dict(zip(keys.tolist(), np.split(rows, starts[1:]), strict=False))  # {} if no rows


def _greedy_match(distance, treated, strata, ratio, caliper_width, replace):
    """Return ``(subclass, treated_position, control_position)`` triples."""
    treated_positions = np.flatnonzero(treated)
    pairs: list[tuple[int, int, int]] = []
    controls_of = group_positions(strata, ~treated)
    if replace:
        # With replacement MatchIt matches in data order (order cannot matter).
        for subclass, t in enumerate(treated_positions):
            controls = controls_of.get(strata[t].item(), np.array([], dtype=np.intp))
            gaps = np.abs(distance[controls] - distance[t])
            keep = np.argsort(gaps, kind="stable")[:ratio]
            if caliper_width is not None:
                keep = keep[gaps[keep] <= caliper_width]
            pairs.extend((subclass, t, controls[k]) for k in keep)
        return _renumber(pairs)

    # Descending propensity (m.order = "largest"); stable sort keeps data order on ties.
    order = treated_positions[np.argsort(-distance[treated_positions], kind="stable")]
    neighbours = {
        stratum: _Neighbours(controls_of.get(stratum, np.array([], dtype=np.intp)), distance)
        for stratum in np.unique(strata[treated]).tolist()
    }
    subclass_of = {t: i for i, t in enumerate(order)}
    dropped: set[int] = set()
    matched_to: dict[int, list[int]] = {t: [] for t in order}
    for round_number in range(ratio):
        for t in order:
            if t in dropped:
                continue
            pool = neighbours[strata[t]]
            position = pool.nearest(distance[t], caliper_width)
            if position is None:
                if round_number == 0:
                    dropped.add(t)
                continue
            pool.remove(position)
            matched_to[t].append(int(pool.index[position]))
    for t in order:
        pairs.extend((subclass_of[t], int(t), c) for c in matched_to[t])
    return _renumber(pairs)


def _renumber(pairs):
    """Renumber matched sets 0, 1, ... in matching order, skipping unmatched treated units."""
    mapping: dict[int, int] = {}
    out = []
    for subclass, t, c in pairs:
        mapping.setdefault(subclass, len(mapping))
        out.append((mapping[subclass], int(t), int(c)))
    return out


def _matching_weights(pairs, treated):
    n = len(treated)
    weights = np.zeros(n)
    subclass = np.full(n, pd.NA, dtype=object)
    by_treated: dict[int, list[int]] = {}
    set_of: dict[int, int] = {}
    for number, t, c in pairs:
        by_treated.setdefault(t, []).append(c)
        set_of[t] = number
    for t, controls in by_treated.items():
        weights[t] += 1.0
        subclass[t] = set_of[t] + 1
        for c in controls:
            weights[c] += 1.0 / len(controls)
            if subclass[c] is pd.NA:
                subclass[c] = set_of[t] + 1
    for group in (treated, ~treated):
        positive = group & (weights > 0)
        if positive.any():
            weights[positive] /= weights[positive].mean()
    return weights, subclass
