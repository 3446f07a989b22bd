"""A report section: what an analysis hands to the report, already safe to publish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

HEADLINE_COLUMNS = (
    "outcome_level",  # person, system or community (NHS SP common outcomes framework)
    "outcome",  # e.g. "SWEMWBS metric change, baseline to 3 months"
    "measure",  # machine name, e.g. "swemwbs_metric"
    "estimate",
    "std_error",
    "conf_low",
    "conf_high",
    "n",  # people behind the estimate (disclosure-controlled when published)
    "method",
    "conf_level",  # level of conf_low/conf_high, e.g. 0.95 (empty when there is no interval)
)


class InsufficientData(Exception):
    """Raised by an analysis when the data cannot support it; the message is shown as is."""


@dataclass(frozen=True)
class Table:
    """A publishable table: ``name`` is its file stem in ``tables/``."""

    name: str
    caption: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class Section:
    """One report section.

    ``text`` holds Markdown paragraphs written for a commissioner; ``tables`` and
    ``figures`` must already have passed disclosure control; ``headline`` holds
    rows with ``HEADLINE_COLUMNS`` for the ICB summary.
    """

    title: str
    text: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    headline: pd.DataFrame | None = None
    notes: tuple[str, ...] = field(default=())


def build_section(title: str, analysis: Callable[[], Section]) -> Section:
    """Run ``analysis``; if the data cannot support it, return a section that says why.

    ``InsufficientData`` becomes its plain message; any other error becomes a
    sentence naming the error, so one failing analysis never stops the report.
    """
    try:
        return analysis()
    except InsufficientData as reason:
        return Section(title=title, text=(str(reason),))
    except Exception as error:  # noqa: BLE001 - a report degrades section by section
        return Section(
            title=title,
            text=(
                f"This section could not be produced: {type(error).__name__}: {error}. "
                "The rest of the report is unaffected.",
            ),
        )
