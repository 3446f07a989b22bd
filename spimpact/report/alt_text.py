"""Alternative text for a report figure that states what the figure shows, from its numbers.

A screen-reader user should learn the finding, not "a chart". ``describe_figure``
reads the plotted data back from a matplotlib figure (lines, bars, error bars,
points) and says, per panel, where a series starts and ends and its range, or which
bars are highest and lowest. Every number read back was drawn from
disclosure-controlled data, so the text discloses nothing the image does not.
``figure_alt`` adds the section's headline finding when it has one.
"""

from __future__ import annotations

import math

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.category import StrCategoryFormatter
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedFormatter

from spimpact.report.front_page import describe_result

_MAX_PANELS = 4
_MAX_CHARS = 900


def figure_alt(figure, *, title: str, headline: pd.DataFrame | None = None, conf_level=0.95):
    """Alt text for ``figure`` of section ``title``: its data summary and headline finding.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(); ax = fig.subplots()
    >>> _ = ax.plot([1, 2, 3], [10, 12, 30], label="Referrals"); _ = ax.set_title("Monthly")
    >>> figure_alt(fig, title="Referrals over time")
    'Chart for Referrals over time. Monthly: Referrals goes from 10 at 1 to 30 at 3 (lowest 10, highest 30).'
    """  # noqa: E501
    parts = [f"Chart for {title}."]
    described = describe_figure(figure)
    if described:
        parts.append(described)
    if headline is not None and len(headline):
        row = headline[headline["estimate"].notna()]
        if len(row):
            parts.append("Finding: " + describe_result(row.iloc[0], conf_level=conf_level))
    text = " ".join(parts)
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"


def describe_figure(figure) -> str:
    """One or two sentences per panel of ``figure`` built from the plotted values."""
    sentences = []
    axes = [
        ax
        for ax in figure.axes
        if ax.get_visible() and ax.has_data() and not hasattr(ax, "_colorbar")  # not a key
    ]
    for ax in axes[:_MAX_PANELS]:
        try:
            sentence = _describe_axes(ax)
        except (TypeError, ValueError, OverflowError, IndexError):
            sentence = ""
        if sentence:
            label = ax.get_title() or ax.get_ylabel()
            sentences.append(f"{label}: {sentence}" if label else sentence)
    if len(axes) > _MAX_PANELS:
        sentences.append(f"{len(axes) - _MAX_PANELS} more panel(s) follow the same layout.")
    return " ".join(sentences)


def _describe_axes(ax) -> str:
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    if bars:
        return _describe_bars(ax, bars[0])
    errorbars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    if errorbars:
        return _describe_errorbars(ax, errorbars[0])
    lines = [line for line in ax.get_lines() if _is_series(ax, line)]
    if lines:
        described = [_describe_line(ax, line) for line in lines[:3]]
        return "; ".join(d for d in described if d) + "."
    shaded = [c for c in ax.collections if c.get_array() is not None and len(c.get_array())]
    if shaded and not isinstance(shaded[0], PathCollection):
        values = np.ma.compressed(np.ma.masked_invalid(np.asarray(shaded[0].get_array(), float)))
        if len(values):
            return (
                f"{len(shaded[0].get_array())} shaded areas, values from {_num(values.min())} "
                f"to {_num(values.max())} (median {_num(np.median(values))})."
            )
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    if points:
        offsets = np.asarray(points[0].get_offsets(), dtype=float)
        if len(offsets):
            y = offsets[:, 1]
            y = y[np.isfinite(y)]
            if len(y):
                return f"{len(offsets)} points, values from {_num(y.min())} to {_num(y.max())}."
    return ""


def _is_series(ax, line: Line2D) -> bool:
    if line.get_transform() != ax.transData:
        return False  # reference lines drawn in axes coordinates (axhline, axvline)
    x, y = _xy(line)
    return len(x) >= 2 and not np.allclose(x, x[0]) and len(np.unique(y)) > 1


def _xy(line: Line2D):
    x = np.asarray(
        mdates.date2num(line.get_xdata()) if _dates(line.get_xdata()) else line.get_xdata()
    )
    x = np.asarray(x, dtype=float)
    y = np.asarray(line.get_ydata(), dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _dates(values) -> bool:
    values = np.asarray(values)
    return values.dtype.kind == "M" or (
        values.dtype == object and len(values) and hasattr(values[0], "year")
    )


def _describe_line(ax, line: Line2D) -> str:
    x, y = _xy(line)
    label = line.get_label()
    name = label if label and not label.startswith("_") else "the series"
    return (
        f"{name} goes from {_num(y[0])} at {_x_label(ax, x[0])} to {_num(y[-1])} at "
        f"{_x_label(ax, x[-1])} (lowest {_num(y.min())}, highest {_num(y.max())})"
    )


def _describe_bars(ax, container: BarContainer) -> str:
    horizontal = container.orientation == "horizontal"
    values, positions = [], []
    for patch in container.patches:
        values.append(patch.get_width() if horizontal else patch.get_height())
        positions.append(
            patch.get_y() + patch.get_height() / 2
            if horizontal
            else patch.get_x() + patch.get_width() / 2
        )
    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    if not keep.any():
        return ""
    ticks = _tick_names(ax.yaxis if horizontal else ax.xaxis)
    names = [ticks.get(round(p, 6), "") for p in positions]
    order = np.argsort(values[keep], kind="stable")
    kept_names = [n for n, k in zip(names, keep, strict=True) if k]
    kept = values[keep]
    high, low = order[-1], order[0]
    text = f"{int(keep.sum())} bars from {_num(kept[low])} to {_num(kept[high])}"
    if kept_names[high] and kept_names[low]:
        text += (
            f"; highest {kept_names[high]} ({_num(kept[high])}), "
            f"lowest {kept_names[low]} ({_num(kept[low])})"
        )
    return text + "."


def _describe_errorbars(ax, container: ErrorbarContainer) -> str:
    line = container.lines[0]
    if line is None:
        return ""
    x, y = (np.asarray(v, dtype=float) for v in line.get_data())
    horizontal = len(np.unique(y)) == len(y) and container.has_xerr and not container.has_yerr
    values, positions = (x, y) if horizontal else (y, x)
    keep = np.isfinite(values)
    if not keep.any():
        return ""
    ticks = _tick_names(ax.yaxis if horizontal else ax.xaxis)
    names = [ticks.get(round(float(p), 6), "") for p in positions]
    listed = [
        f"{n} {_num(v)}" if n else _num(v) for n, v, k in zip(names, values, keep, strict=True) if k
    ][:8]
    return f"{int(keep.sum())} estimates with intervals: " + ", ".join(listed) + "."


def _tick_names(axis) -> dict[float, str]:
    names = {}
    for location, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels(), strict=False):
        text = label.get_text()
        if text:
            names[round(float(location), 6)] = text
    return names


def _x_label(ax, value: float) -> str:
    if _is_date_axis(ax):
        try:
            return mdates.num2date(value).strftime("%b %Y")
        except (ValueError, OverflowError):
            return _num(value)
    if not isinstance(ax.xaxis.get_major_formatter(), (FixedFormatter, StrCategoryFormatter)):
        return _num(value)
    return _tick_names(ax.xaxis).get(round(float(value), 6), _num(value))


def _is_date_axis(ax) -> bool:
    converter = getattr(ax.xaxis, "get_converter", lambda: ax.xaxis.converter)()
    return isinstance(converter, (mdates.DateConverter, mdates._SwitchableDateConverter))


def _num(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        return "not available"
    if value.is_integer() and abs(value) < 1e12:
        return f"{int(value):,}"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"
