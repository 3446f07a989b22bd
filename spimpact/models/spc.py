"""Statistical process control: XmR charts following NHS England's "Making Data Count".

An XmR (individuals and moving range) chart plots a measure over time against its mean
and its natural process limits, ``mean +/- 2.66 x mean moving range``, and flags points
that show *special cause* variation:

1. a point outside the process limits (``outside_limits``);
2. a *shift*: a run of 7 or more consecutive points above, or below, the mean
   (``shift``);
3. a *trend*: a run of 7 or more consecutive points each higher, or each lower, than the
   one before (``trend``); an equal value breaks the run;
4. two out of three consecutive points beyond two sigma (``mean +/- 2/3 x 2.66 x
   mean moving range``, inside the limits) with all three on the same side of the mean
   (``two_in_three``); only the points beyond two sigma are flagged.

Run lengths: the Making Data Count (MDC) Excel tools and NHSRplotthedots use 7 points
for both shift and trend; the MDC Excel tool also lets users choose 6
(NHSRplotthedots issue #202, "allow users to choose between 6 or 7 points, as allowed
in MDC's Excel tool"), so both are parameters here with MDC's default of 7. When a point
meets several rules it is labelled by the first of: outside limits, trend, two in
three, shift (the precedence of NHSRplotthedots ``ptd_special_cause_type``).

Sources: NHS England / NHS Improvement, *Making Data Count: Strengthening your
decisions* (2019, updated 2021); NHS-R community, NHSRplotthedots 0.2.0
(R/ptd_spc_standard.R, R/ptd_calculate_point_type.R, vignettes/deviations.Rmd);
Wheeler (2000), *Understanding Variation*, for the 2.66 constant (3 / d2, d2 = 1.128).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from spimpact.models.result import EstimatorResult
from spimpact.models.tidy import make_tidy

# Bias-correction constant d2 for ranges of two points: mean moving range / d2 estimates
# the within-process standard deviation (Wheeler 2000).
D2 = 1.128
# 3 / d2 for moving ranges of two points, Wheeler (2000).
LIMIT_FACTOR = 2.66
# Degrees of freedom of sigma from the mean of n - 1 moving ranges: about 0.62 (n - 1)
# (Wheeler 1995, Advanced Topics in Statistical Process Control).
MOVING_RANGE_DF_FACTOR = 0.62
# Moving ranges above 3.267 x the mean moving range (D4 for n = 2) are screened out of
# the limits when ``screen_outliers`` is set (Nelson 1982; Provost & Murray 2011, p.155).
SCREEN_FACTOR = 3.267
# Fewer baseline points give "trial limits" (NHSRplotthedots warns below 12 points;
# MDC advises 15-20 points before drawing firm conclusions).
MIN_FIRM_BASELINE = 12

MDC_COLOURS = {
    "common_cause": "#a6a6a6",
    "special_cause_improvement": "#00b0f0",
    "special_cause_concern": "#e46c0a",
    "special_cause_neutral_high": "#490092",
    "special_cause_neutral_low": "#490092",
}

POINT_TYPE_LABELS = {
    "common_cause": "Common cause variation",
    "special_cause_improvement": "Special cause variation: improvement",
    "special_cause_concern": "Special cause variation: concern",
    "special_cause_neutral_high": "Special cause variation: higher values",
    "special_cause_neutral_low": "Special cause variation: lower values",
}

_IMPROVEMENT_SIGN = {"up": 1, "down": -1, None: 0}


# eq=False: the fields hold a data frame, which has no single truth value.
@dataclass(frozen=True, eq=False)
class XmrResult(EstimatorResult):
    """An XmR chart: points with their limits and special-cause flags.

    Attributes
    ----------
    points
        One row per time point, in time order, with columns ``date, value,
        moving_range, mean, lower, upper, outside_limits, shift, trend, two_in_three,
        special_cause, special_cause_type, point_type``. ``special_cause_type`` is one of
        ``above_upper_limit, below_lower_limit, trend_increasing, trend_decreasing,
        two_in_three_above, two_in_three_below, shift_above, shift_below`` or
        ``common_cause``; ``point_type`` is the MDC colour class.
    mean, lower, upper
        Centre line and process limits.
    mean_moving_range
        Mean moving range of the baseline points (after screening, if any).
    n_baseline
        Points the mean and limits were computed from.
    improvement
        ``"up"``, ``"down"`` or ``None`` (no direction is better).
    shift_points, trend_points
        Run lengths used for the shift and trend rules.
    diagnostics
        Plain-English caveats, e.g. trial limits from too few points.
    conf_level
        Level of the interval ``tidy`` gives for the process mean (not the process
        limits, which are fixed at three sigma).
    """

    points: pd.DataFrame
    mean: float
    lower: float
    upper: float
    mean_moving_range: float
    n_baseline: int
    improvement: str | None
    shift_points: int
    trend_points: int
    diagnostics: tuple[str, ...] = ()
    conf_level: float = 0.95

    @property
    def variation(self) -> str:
        """MDC variation icon: the point type of the latest point."""
        return str(self.points["point_type"].iloc[-1])

    @property
    def n_special_cause(self) -> int:
        """Number of points flagged by any special-cause rule."""
        return int(self.points["special_cause"].sum())

    def summary(self) -> str:
        """Describe the chart in words for a report reader."""
        lines = [
            f"XmR chart of {len(self.points)} points (limits from the first {self.n_baseline}).",
            f"Mean {self.mean:.3g}; process limits {self.lower:.3g} to {self.upper:.3g}.",
            f"Latest point: {POINT_TYPE_LABELS[self.variation].lower()}.",
            f"{self.n_special_cause} point(s) show special cause variation.",
        ]
        counts = self.points.loc[self.points["special_cause"], "special_cause_type"]
        for rule, count in counts.value_counts().sort_index().items():
            lines.append(f"  {rule.replace('_', ' ')}: {count}")
        lines.extend(self.diagnostics)
        return "\n".join(lines)

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        """The centre line as an estimate of the process mean, one broom row ``mean``.

        Its standard error is the within-process standard deviation estimated from
        the moving ranges, mean moving range / d2 (d2 = 1.128), over the square root
        of the number of baseline points: the uncertainty of the centre line when the
        baseline points vary by common cause only. The reference is Student t on
        0.62 (n - 1) degrees of freedom, the information in a mean moving range of n
        points (Wheeler 1995, *Advanced Topics in Statistical Process Control*). The
        process limits (``lower``, ``upper``) bound single points and are not
        confidence limits.
        """
        std_error = self.mean_moving_range / D2 / np.sqrt(self.n_baseline)
        df = MOVING_RANGE_DF_FACTOR * (self.n_baseline - 1)
        return make_tidy(["mean"], [self.mean], [std_error], conf_level=conf_level, df=df)

    def plot(
        self, ax: Axes | None = None, *, title: str | None = None, ylabel: str | None = None
    ) -> Axes:
        """Draw the chart in Making Data Count style.

        Common-cause points are grey, improvement blue, concern orange and special
        cause with no better direction purple; the mean is a solid line and the
        process limits dashed. The MDC variation icon (a coloured disc with H or L)
        sits in the top right corner.
        """
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3.5))
        pts = self.points
        x = pts["date"]
        ax.plot(x, pts["value"], color=MDC_COLOURS["common_cause"], linewidth=1.2, zorder=1)
        colours = pts["point_type"].map(MDC_COLOURS)
        ax.scatter(x, pts["value"], c=colours.tolist(), s=22, zorder=2)
        ax.plot(x, pts["mean"], color="black", linewidth=1, label="Mean")
        ax.plot(
            x, pts["upper"], color="#7f7f7f", linestyle="--", linewidth=1, label="Process limits"
        )
        ax.plot(x, pts["lower"], color="#7f7f7f", linestyle="--", linewidth=1)
        variation = self.variation
        letter = {"special_cause_neutral_high": "H", "special_cause_neutral_low": "L"}.get(
            variation, ""
        )
        if variation in ("special_cause_improvement", "special_cause_concern"):
            high = _latest_direction(pts) > 0
            letter = "H" if high else "L"
        ax.annotate(
            letter or "~",
            xy=(0.97, 0.9),
            xycoords="axes fraction",
            ha="center",
            va="center",
            color="white",
            fontweight="bold",
            bbox={"boxstyle": "circle", "facecolor": MDC_COLOURS[variation], "edgecolor": "none"},
        )
        ax.set_ylabel(ylabel or "Value")
        if title:
            ax.set_title(title)
        ax.legend(loc="upper left", fontsize="small", frameon=False)
        return ax


def _latest_direction(points: pd.DataFrame) -> int:
    kind = points["special_cause_type"].iloc[-1]
    return 1 if kind.endswith(("above", "above_upper_limit", "increasing")) else -1


def _run_bounds(flags: np.ndarray, length: int) -> list[tuple[int, int]]:
    """(start, stop) of every run of at least ``length`` consecutive ``True`` flags."""
    bounds = []
    start = 0
    n = len(flags)
    while start < n:
        if not flags[start]:
            start += 1
            continue
        stop = start
        while stop < n and flags[stop]:
            stop += 1
        if stop - start >= length:
            bounds.append((start, stop))
        start = stop
    return bounds


def _runs(flags: np.ndarray, length: int) -> np.ndarray:
    """Mark every point inside a run of at least ``length`` consecutive ``True`` flags."""
    out = np.zeros(len(flags), dtype=bool)
    for start, stop in _run_bounds(flags, length):
        out[start:stop] = True
    return out


def _trend(values: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in a run of ``length`` strictly increasing (or decreasing) values.

    Returns the flag and the direction (+1/-1) of the run each flagged point belongs
    to; a point ending one run and starting the next takes the later run's direction,
    as NHSRplotthedots does.
    """
    steps = np.sign(np.diff(values))
    runs = []
    for sign in (1, -1):
        # Step i joins points i and i + 1, so length - 1 equal steps span ``length`` points.
        runs += [(start, stop, sign) for start, stop in _run_bounds(steps == sign, length - 1)]
    flagged = np.zeros(len(values), dtype=bool)
    direction = np.zeros(len(values), dtype=int)
    for start, stop, sign in sorted(runs):
        flagged[start : stop + 1] = True
        direction[start : stop + 1] = sign
    return flagged, direction


def _two_in_three(beyond_two_sigma: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Points beyond two sigma that are two (or three) of three on one side of the mean."""
    n = len(side)
    out = np.zeros(n, dtype=bool)
    for k in range(n - 2):
        window = slice(k, k + 3)
        if beyond_two_sigma[window].sum() >= 2 and abs(side[window].sum()) == 3:
            out[window] |= beyond_two_sigma[window]
    return out


def xmr(
    values,
    *,
    dates=None,
    baseline: int | None = None,
    improvement: str | None = None,
    shift_points: int = 7,
    trend_points: int = 7,
    screen_outliers: bool = False,
    conf_level: float = 0.95,
) -> XmrResult:
    """Build an XmR chart with Making Data Count special-cause rules.

    Parameters
    ----------
    values
        Numbers in time order (e.g. monthly referrals); no missing values.
    dates
        Time of each value, strictly increasing; ``None`` numbers the points 1, 2, ...
    baseline
        Compute the mean and limits from the first ``baseline`` points only and hold
        them fixed afterwards (NHSRplotthedots ``fix_after_n_points``); ``None`` uses
        all points.
    improvement
        ``"up"`` if higher values are better, ``"down"`` if lower are, ``None`` if
        neither: special-cause points are then coloured as improvement (blue),
        concern (orange) or neutral (purple).
    shift_points, trend_points
        Run lengths of the shift and trend rules; MDC default 7, the MDC Excel tool
        also offers 6.
    screen_outliers
        Drop moving ranges above 3.267 x the mean moving range before computing the
        limits (NHSRplotthedots' default). The MDC Excel tools do not screen, so the
        default is ``False``.
    conf_level
        Level of the interval for the process mean given by ``tidy``.

    Returns
    -------
    XmrResult

    Notes
    -----
    Limits are ``mean +/- 2.66 x mean moving range`` (Wheeler 2000); "two sigma" is
    ``2/3`` of that distance. Rules and precedence follow NHS England's *Making Data
    Count* guidance as implemented in NHSRplotthedots 0.2.0 (see the module docstring).

    Examples
    --------
    >>> chart = xmr([1, 2, 1, 2, 10, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1], improvement="up")
    >>> round(chart.upper, 2), chart.points["point_type"].iloc[4]
    (6.95, 'special_cause_improvement')
    """
    y = np.asarray(values, dtype=float)
    if y.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {y.shape}")
    if len(y) < 2:
        raise ValueError(f"an XmR chart needs at least 2 values, got {len(y)}")
    if not np.isfinite(y).all():
        bad = np.flatnonzero(~np.isfinite(y)).tolist()
        raise ValueError(f"values must be finite numbers; positions {bad} are missing or infinite")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")
    if improvement not in _IMPROVEMENT_SIGN:
        raise ValueError(f"improvement must be 'up', 'down' or None, got {improvement!r}")
    for name, length in (("shift_points", shift_points), ("trend_points", trend_points)):
        if length < 2:
            raise ValueError(f"{name} must be at least 2, got {length}")
    if dates is None:
        x = pd.Series(np.arange(1, len(y) + 1), name="date")
    else:
        x = pd.Series(list(dates), name="date")
        if len(x) != len(y):
            raise ValueError(f"dates has {len(x)} entries but values has {len(y)}")
        if not x.is_monotonic_increasing or x.duplicated().any():
            raise ValueError("dates must be strictly increasing (one value per period, in order)")
    n_baseline = len(y) if baseline is None else int(baseline)
    if not 2 <= n_baseline <= len(y):
        raise ValueError(f"baseline must be between 2 and {len(y)} points, got {baseline}")

    base = y[:n_baseline]
    mean = float(base.mean())
    moving_ranges = np.abs(np.diff(base))
    mean_moving_range = float(moving_ranges.mean())
    if screen_outliers:
        moving_ranges = moving_ranges[moving_ranges < SCREEN_FACTOR * mean_moving_range]
        mean_moving_range = float(moving_ranges.mean())
    half_width = LIMIT_FACTOR * mean_moving_range
    lower, upper = mean - half_width, mean + half_width
    two_sigma = 2 * half_width / 3

    side = np.sign(y - mean).astype(int)
    outside = (y > upper) | (y < lower)
    beyond_two_sigma = ~outside & (np.abs(y - mean) > two_sigma)
    shift = _runs(side == 1, shift_points) | _runs(side == -1, shift_points)
    trend, trend_direction = _trend(y, trend_points)
    two_in_three = _two_in_three(beyond_two_sigma, side)

    side_word = np.where(side > 0, "above", "below")
    kind = np.select(
        [outside, trend, two_in_three, shift],
        [
            np.where(side > 0, "above_upper_limit", "below_lower_limit"),
            np.where(trend_direction > 0, "trend_increasing", "trend_decreasing"),
            np.char.add("two_in_three_", side_word),
            np.char.add("shift_", side_word),
        ],
        default="common_cause",
    )
    direction = np.select([outside, trend, two_in_three | shift], [side, trend_direction, side], 0)
    sign = _IMPROVEMENT_SIGN[improvement]
    if sign == 0:
        point_type = np.select(
            [direction > 0, direction < 0],
            ["special_cause_neutral_high", "special_cause_neutral_low"],
            default="common_cause",
        )
    else:
        point_type = np.select(
            [direction * sign > 0, direction * sign < 0],
            ["special_cause_improvement", "special_cause_concern"],
            default="common_cause",
        )

    points = pd.DataFrame(
        {
            "date": x.to_numpy(),
            "value": y,
            "moving_range": np.concatenate([[np.nan], np.abs(np.diff(y))]),
            "mean": mean,
            "lower": lower,
            "upper": upper,
            "outside_limits": outside,
            "shift": shift,
            "trend": trend,
            "two_in_three": two_in_three,
            "special_cause": kind != "common_cause",
            "special_cause_type": kind,
            "point_type": point_type,
        }
    )
    diagnostics = []
    if n_baseline < MIN_FIRM_BASELINE:
        diagnostics.append(
            f"The limits are trial limits from only {n_baseline} points; they become "
            f"reliable with at least {MIN_FIRM_BASELINE} (Making Data Count advises 15-20)."
        )
    return XmrResult(
        points=points,
        mean=mean,
        lower=lower,
        upper=upper,
        mean_moving_range=mean_moving_range,
        n_baseline=n_baseline,
        improvement=improvement,
        shift_points=shift_points,
        trend_points=trend_points,
        diagnostics=tuple(diagnostics),
        conf_level=conf_level,
    )
