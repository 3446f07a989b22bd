"""The "Data maturity" section: the scorecard and what to improve first, in words.

Turns a ``MaturityResult`` (``spimpact.analyses.maturity.analysis``) into text and the
``data_maturity`` table. ``MATURITY_COLUMNS`` and ``RATINGS`` are also importable from
here and from ``spimpact.analyses.maturity`` (the ICB summary reads the tables with them).
"""

from __future__ import annotations

from spimpact.analyses.maturity.analysis import (
    COMPLETE_FAIR,
    COMPLETE_GOOD,
    FOLLOW_UP_FAIR,
    FOLLOW_UP_GOOD,
    MATURITY_COLUMNS,
    RATINGS,
    analyse_maturity,
)
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.section import Section, Table

__all__ = ["MATURITY_COLUMNS", "RATINGS", "data_maturity_section"]


def data_maturity_section(
    scheme: SchemeData, scores, *, non_standard, params: SchemeParams
) -> Section:
    """Score how complete and consistent a scheme's data are, with what to improve first.

    Parameters
    ----------
    scheme
        ``spimpact.io.SchemeData`` (``clients``, ``measures``, optional ``contacts``,
        ``support_offered``, ``reconciliation``).
    scores
        Scored wellbeing measures (long frame with ``client_id, measure, timepoint,
        score, value``; a ``ScoredMeasures`` is accepted too).
    non_standard
        Non-standard instrument use found in scoring (``measure, issue, n_rows,
        detail``), or ``None``.
    params
        Scheme parameters: primary measure and disclosure rule.

    Returns
    -------
    Section
        Text for the report and a Table named ``data_maturity`` with columns
        ``MATURITY_COLUMNS``: ``percent`` and ``n_records`` disclosure-controlled,
        ``rating`` good/fair/poor, ``priority`` "1" = improve first ("" when good).

    Notes
    -----
    Items follow docs/data-contract.md and the minimum dataset of the PRSB Social
    Prescribing Information Standard v1.1 (person demographics, support offered,
    outcomes; SPEC section 2.1). Thresholds are spimpact recommendations stated in
    the text; ratings use unrounded shares, published percentages the rounded
    counts (NHS Digital disclosure rule, SPEC section 3.2).
    """
    result = analyse_maturity(scheme, scores, non_standard=non_standard, params=params)
    table = result.scorecard
    first = result.improve_first(3)
    text = [
        f"{result.n_good} of {len(table)} data checks are rated good. Good means at least "
        f"{COMPLETE_GOOD:g}% of records complete ({FOLLOW_UP_GOOD:g}% for follow-up), "
        f"fair at least {COMPLETE_FAIR:g}% ({FOLLOW_UP_FAIR:g}%); instrument and loading "
        "checks count rows that could not be used.",
    ]
    if first.empty:
        text.append("No check needs attention.")
    else:
        text.append(
            "What to improve first: "
            + " ".join(
                f"({int(p)}) {a}" for p, a in zip(first["priority"], first["improve"], strict=True)
            )
        )
    return Section(
        title="Data maturity",
        text=tuple(text),
        tables=(
            Table(
                name="data_maturity",
                caption="Data-maturity scorecard: share of records meeting each check",
                frame=table,
            ),
        ),
    )
