"""A report section: what an analysis hands to the report, already safe to publish."""

from __future__ import annotations

import re
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


def build_section(
    title: str,
    analysis: Callable[[], Section],
    *,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> Section:
    """Run ``analysis``; if the data cannot support it, return a section that says why.

    ``InsufficientData`` becomes its plain message; any other error becomes a
    sentence naming the error, so one failing analysis never stops the report. An
    unexpected error's message can quote input values (a library error repeating a
    cell, a file's content), so the published sentence keeps only its first line with
    quoted text and long numbers removed (``redact_error``); ``on_error(title, error)``
    receives the full error to keep internally.
    """
    try:
        return analysis()
    except InsufficientData as reason:
        return Section(title=title, text=(str(reason),))
    except Exception as error:  # noqa: BLE001 - a report degrades section by section
        if on_error is not None:
            on_error(title, error)
        return Section(
            title=title,
            text=(
                f"This section could not be produced: {redact_error(error)}. "
                "The rest of the report is unaffected.",
            ),
        )


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”|\([^()]*\d[^()]*\)")
_LONG_NUMBER = re.compile(r"\d[\d ./-]{4,}\d")


def redact_error(error: BaseException, *, max_chars: int = 160) -> str:
    """The error's type and first line, without quoted text, long numbers or paths.

    Examples
    --------
    >>> redact_error(KeyError("943 476 5919"))
    'KeyError: …'
    >>> redact_error(ValueError("bad value 'Jane Smith' at 12/03/1960 in /srv/x/y.csv"))
    'ValueError: bad value … at … in …'
    """
    text = redact_message(str(error), max_chars=max_chars)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def redact_message(message: str, *, max_chars: int = 160) -> str:
    """The first line of an error message without quoted text, long numbers or paths."""
    lines = str(message).strip().splitlines()
    text = _QUOTED.sub("…", lines[0] if lines else "")
    text = _LONG_NUMBER.sub("…", text)
    text = re.sub(r"(?:[A-Za-z]:)?[\\/]\S*", "…", text)  # paths
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
