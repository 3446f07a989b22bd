"""A plain-language front page written from the report's own headline results.

Every sentence is generated from the ``headline`` rows of the other sections, so its
wording of direction ("an increase", "a decrease") and of certainty ("the interval rules out no
change") follows the numbers: it cannot say more than they do.
"""

from __future__ import annotations

import re

import pandas as pd

from spimpact.params import SchemeParams
from spimpact.report.section import HEADLINE_COLUMNS, InsufficientData, Section
from spimpact.scoring import SCORES

_LEVEL_ORDER = {"person": 0, "system": 1, "community": 2}
_CONTROLLED = re.compile(
    r"\bcomparison\b|\bmatched\b|difference-in-differences|\bDiD\b|\bcontrol group|\bcontrols\b",
    re.IGNORECASE,
)
_UNCONTROLLED = re.compile(r"uncontrolled|\bno comparison|without (?:a )?comparison", re.IGNORECASE)


def collect_headlines(sections) -> pd.DataFrame:
    """Stack the ``headline`` rows of several sections into one frame (``HEADLINE_COLUMNS``)."""
    frames = [
        section.headline
        for section in sections
        if section.headline is not None and len(section.headline) > 0
    ]
    if not frames:
        return pd.DataFrame(columns=list(HEADLINE_COLUMNS))
    headlines = pd.concat(frames, ignore_index=True)
    missing = [column for column in HEADLINE_COLUMNS if column not in headlines.columns]
    if missing:
        raise ValueError(f"headline rows are missing columns {missing}")
    return headlines[list(HEADLINE_COLUMNS)]


def describe_result(row, *, conf_level: float = 0.95) -> str:
    """One sentence giving an estimate, its direction, its interval and how sure we can be.

    Direction words follow the sign of the estimate; "rules out no change" is used only
    when the confidence interval excludes zero, otherwise the sentence says the data
    are consistent with no change. For a score with a known direction (SCORES
    registry) the sentence also says whether the change is an improvement.
    """
    estimate, low, high = float(row["estimate"]), row["conf_low"], row["conf_high"]
    level = f"{100 * conf_level:g}%"
    outcome = _lower_first(str(row["outcome"]))
    people = _people(row["n"])
    if estimate > 0:
        direction = f"an increase of {_number(estimate)}"
    elif estimate < 0:
        direction = f"a decrease of {_number(-estimate)}"
    else:
        direction = "no change"
    sentence = f"For {outcome}, our best estimate is {direction}{people}"
    if pd.isna(low) or pd.isna(high):
        return (
            sentence
            + "; no confidence interval could be calculated, so we cannot say how sure this is."
        )
    low, high = float(low), float(high)
    sentence += f" ({level} confidence interval {_number(low)} to {_number(high)})"
    info = SCORES.get(str(row["measure"]))
    if low > 0 or high < 0:
        if info is not None and estimate != 0:
            better = (estimate > 0) == info.higher_is_better
            judgement = "an improvement" if better else "a worsening"
            return sentence + f"; the interval rules out no change, so this looks like {judgement}."
        return sentence + "; the interval rules out no change."
    return sentence + (
        "; the interval includes no change, so we cannot be sure there was a real change "
        "either way."
    )


def front_page_section(sections, *, params: SchemeParams) -> Section:
    """Five or six plain sentences for a commissioner, from the other sections' headlines.

    Parameters
    ----------
    sections
        The report's other ``Section`` objects; their ``headline`` frames are used.
    params
        The scheme's parameters (title, primary measure, confidence level).

    Returns
    -------
    Section
        Titled "At a glance", with the sentences as one paragraph each and the
        headline rows it was written from as its ``headline``.

    Raises
    ------
    InsufficientData
        When no section produced a headline result.

    Notes
    -----
    What was measured, the best estimate, how sure we are and what could bias it, in
    that order, as recommended for plain-language summaries (Cochrane plain language
    summary guidance; SPEC section 5.3 for the biases named).
    """
    headlines = collect_headlines(sections)
    headlines = headlines[headlines["estimate"].notna()]
    if headlines.empty:
        raise InsufficientData(
            "No headline result could be estimated from this scheme's data, so there is no "
            "summary to give."
        )
    headlines = headlines.assign(
        _level=headlines["outcome_level"].map(_LEVEL_ORDER).fillna(3),
        _primary=~headlines["measure"].astype(str).str.startswith(params.measures.primary),
    ).sort_values(["_level", "_primary"], kind="stable")
    outcomes = headlines["outcome"].astype(str).tolist()
    sentences = [
        f"This report looks at {_count_phrase(len(outcomes))} measured for people referred to "
        f"{params.title}: {_join(_lower_first(o) for o in outcomes)}."
    ]
    person = headlines[headlines["outcome_level"] == "person"]
    system = headlines[headlines["outcome_level"] == "system"]
    community = headlines[headlines["outcome_level"] == "community"]
    if not person.empty:
        sentences.append(describe_result(person.iloc[0], conf_level=params.conf_level))
    if not system.empty:
        sentences.append(describe_result(system.iloc[0], conf_level=params.conf_level))
    if person.empty and system.empty:
        sentences.append(describe_result(headlines.iloc[0], conf_level=params.conf_level))
    if not community.empty:
        row = community.iloc[0]
        sentences.append(
            f"In the community, {_lower_first(str(row['outcome']))}: "
            f"{_number(float(row['estimate']))}{_people(row['n'])}."
        )
    sentences.extend(_bias_sentences(headlines))
    return Section(
        title="At a glance",
        text=tuple(sentences),
        headline=headlines[list(HEADLINE_COLUMNS)].reset_index(drop=True),
    )


def _bias_sentences(headlines: pd.DataFrame) -> list[str]:
    methods = headlines["method"].fillna("").astype(str)
    controlled = methods.map(lambda m: bool(_CONTROLLED.search(m)) and not _UNCONTROLLED.search(m))
    sentences = []
    if controlled.all():
        sentences.append(
            "Where people were compared with a similar group who were not referred, "
            "differences that were not measured can still bias the result."
        )
    else:
        sentences.append(
            "There was no comparison group, so part of any change may be people recovering "
            "from a low point that prompted their referral (regression to the mean) rather "
            "than the effect of the scheme."
        )
    if (headlines["outcome_level"] == "person").any():
        sentences[-1] += (
            " Wellbeing was only known for people who completed a follow-up questionnaire, "
            "who may have been doing better than those who did not."
        )
    return sentences


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def _people(n) -> str:
    if pd.isna(n):
        return " among a small number of people (fewer than 8)"
    return f" among {int(n):,} people"


def _count_phrase(k: int) -> str:
    return "one outcome" if k == 1 else f"{k} outcomes"


def _join(items) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _lower_first(text: str) -> str:
    # Keep acronyms and instrument names (SWEMWBS, GP) in capitals.
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text
